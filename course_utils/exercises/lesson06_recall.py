"""Lesson 06 exercise 4 of part 1: the accuracy of each class (its recall), which the lesson uses
to find the letters a classifier still recognises after a mirror or a half turn.

The answer is checked on its values; its slips are each the reference with one common mistake
(see course_utils.checks.Slip).
"""

from functools import partial

import torch

from course_utils.checks import Case, Slip, report, run_check

# ---- reference solution ----------------------------------------------------------------------

def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor,
                       num_classes: int) -> torch.Tensor:
    """For each class c, the share of the examples labelled c that were predicted c (its recall):
    a float tensor (num_classes,), NaN for a class with no example (0 / 0).

    ``predictions`` and ``labels`` are 1-D int64 tensors of the same length."""
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes)  # (num_classes,)
    examples = torch.bincount(labels, minlength=num_classes)                        # (num_classes,)
    return correct / examples


# ---- part 1, exercise 4: per-class accuracy --------------------------------------------------

def _per_class_cases():
    # (predictions, labels)
    four_classes = (torch.tensor([0, 0, 1, 1, 2, 2, 2, 3, 2, 3]),
                    torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3]))
    class_2_absent = (torch.tensor([0, 2, 3, 1, 1, 2, 3]), torch.tensor([0, 1, 3, 3, 1, 0, 3]))
    last_two_absent = (torch.tensor([0, 1, 2, 0, 1, 4, 2]), torch.tensor([0, 1, 2, 2, 1, 0, 2]))
    all_wrong = (torch.tensor([1, 2, 0, 2, 0]), torch.tensor([0, 1, 2, 0, 1]))
    return [Case("10 examples of 4 classes", (*four_classes, 4),
                 hint="class 0 has 3 examples, 2 of them predicted 0: 2/3; then 1/2, 3/4 and "
                      "1/1. For each class, count the examples of that class predicted right "
                      "and divide by the number of examples of that class."),
            Case("7 examples of 4 classes, none of class 2", (*class_2_absent, 4),
                 hint="class 2 has no example, so its accuracy is 0 / 0 = NaN: the answer still "
                      "has num_classes = 4 entries, [1/2, 1/2, NaN, 2/3]."),
            Case("7 examples of 5 classes, none of classes 3 and 4", (*last_two_absent, 5),
                 hint="the last two classes have no example (one is predicted, wrongly): the "
                      "answer has num_classes = 5 entries, the last two NaN."),
            Case("5 examples of 4 classes, every prediction wrong", (*all_wrong, 4),
                 hint="no prediction is right, so every class with examples scores 0 and class 3, "
                      "which has none, NaN: [0, 0, 0, NaN].")]


PER_CLASS_PASSED = (" A class whose accuracy is NaN has no example: torch.nanmean(accuracies) "
                    "averages the others.")


def check_per_class_accuracy(student):
    """Exercise 4 of part 1: ``per_class_accuracy(predictions, labels, num_classes)`` -> a float tensor
    (num_classes,) whose entry c is the share of the examples labelled c that were predicted c,
    NaN for a class with no example; ``predictions`` and ``labels`` are 1-D int64 tensors of
    the same length. Returns the function the notebook should use next."""
    result = run_check(student, per_class_accuracy, _per_class_cases(),
                       exercise="Exercise 4 (per-class accuracy)", slips=PER_CLASS_SLIPS)
    if result.passed:
        result.message += PER_CLASS_PASSED
    report(result)
    return student if result.passed else per_class_accuracy


def _per_class_variant(predictions, labels, num_classes, *, divide_by="class", minlength=True,
                       answer="fractions", absent="nan"):
    """per_class_accuracy with one thing changed (the defaults give the reference)."""
    length = {"minlength": num_classes} if minlength else {}
    correct = torch.bincount(labels[predictions == labels], **length)      # (num_classes,)
    if answer == "counts":
        return correct
    if divide_by == "class":
        examples = torch.bincount(labels, **length)
    elif divide_by == "prediction":
        examples = torch.bincount(predictions, **length)
    else:  # every example
        examples = torch.full_like(correct, len(labels))
    accuracies = correct / (examples.clamp(min=1) if absent == "zero" else examples)
    return accuracies.tolist() if answer == "list" else accuracies


PER_CLASS_SLIPS = [
    Slip("divided by all the examples",
         "you divided each class's correct count by the number of all the examples, so the "
         "classes' numbers add up to the overall accuracy instead of each being out of 1: "
         "divide by the number of examples of that class, torch.bincount(labels, "
         "minlength=num_classes).", partial(_per_class_variant, divide_by="all")),
    Slip("bincount without minlength",
         "torch.bincount(x) has max(x) + 1 entries, so when the last classes have no example "
         "(or no right prediction) it is too short. Pass minlength=num_classes to every "
         "bincount, so that each has one entry per class.",
         partial(_per_class_variant, minlength=False)),
    Slip("divided by the predictions (precision)",
         "you divided by how often each class was predicted: that is the precision (of the "
         "examples predicted c, the share that are c). The accuracy of class c is its recall: "
         "of the examples whose true label is c, the share predicted c, so count the classes in "
         "labels, not in predictions.", partial(_per_class_variant, divide_by="prediction")),
    Slip("counts, not fractions",
         "you returned how many examples of each class were predicted right: divide each count "
         "by the number of examples of that class, so that every entry is a share between 0 "
         "and 1.", partial(_per_class_variant, answer="counts")),
    Slip("0 for a class with no example",
         "a class with no example has no accuracy, and 0 would say the classifier gets all of "
         "it wrong: leave 0 / 0, which torch makes NaN (do not clamp the counts or replace the "
         "NaN), so that the missing class shows as missing and torch.nanmean skips it.",
         partial(_per_class_variant, absent="zero")),
    Slip("a Python list",
         "the right numbers, but in a Python list: return one tensor, e.g. correct / examples "
         "with both counts as tensors (or torch.tensor(your_list)), so that the notebook can "
         "index, compare and plot it like any other tensor.",
         partial(_per_class_variant, answer="list")),
]
