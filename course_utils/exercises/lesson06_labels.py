"""Lesson 06 exercises: making the most of few labels: k labels per class (part 1, exercise 1),
a linear probe, a frozen backbone with a new head (part 2, exercise 2), and pseudo-labels
(part 2, exercise 4).

The references are the package's own (course_utils.data, .finetune and .pseudo_labels). A wrong
answer is diagnosed by the exercise's slips, each the reference with one common mistake (see
course_utils.checks.Slip), or by a property of the answer: a draw that is not seeded, a model
whose trainable parameters, head or backbone are not those of a linear probe.
"""

from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import nn

from course_utils import cnn, data, finetune, pseudo_labels
from course_utils.checks import (Case, Slip, check_function, compare, describe_value, first_names,
                                 report, run_check)

# ---- reference solutions ---------------------------------------------------------------------

labels_per_class = data.labels_per_class
select_pseudo_labels = pseudo_labels.select_pseudo_labels


def prepare_linear_probe(model: nn.Module, num_classes: int) -> nn.Module:
    """A linear probe of ``model``: a new head with ``num_classes`` outputs, the rest frozen.
    Returns ``model``, changed in place."""
    finetune.replace_head(model, num_classes)
    finetune.freeze(model)  # by default everything but the head
    return model


# ---- exercise 3: k labels per class ----------------------------------------------------------

def _labels_cases():
    balanced = torch.tensor([2, 0, 1, 1, 0, 2, 0, 2, 1, 0, 1, 2])
    unbalanced = torch.tensor([0, 2, 0, 1, 0, 2, 0, 0, 1, 2, 0, 2, 1, 0, 2])  # 7, 3 and 5
    return [Case("12 labels, 4 of each of 3 classes, k = 2", (balanced, 2), {"seed": 0},
                 hint="walk the permutation order = torch.randperm(len(labels), generator="
                      "torch.Generator().manual_seed(seed)) from the start, and keep the first "
                      "k positions of each class; return the k * num_classes positions, sorted."),
            Case("15 labels, 7, 3 and 5 of 3 classes, k = 3", (unbalanced, 3), {"seed": 1},
                 hint="class 1 has exactly k = 3 examples, so all three are chosen; the other "
                      "classes keep only the first 3 of theirs met along the permutation."),
            Case("10 labels of 4 classes, k = 1", (torch.tensor([3, 1, 0, 2, 0, 3, 1, 2, 0, 3]), 1),
                 {"seed": 2},
                 hint="k = 1: one example per class, 4 in all; each is the first position of "
                      "its class along the permutation.")]


class MovedGlobalRandomNumbers(Exception):
    """The learner's draw changed torch's global random numbers."""


GLOBAL_GENERATOR = ("your draw used torch's global random numbers (torch.manual_seed or a "
                    "randperm without generator=): the right subset, but every cell after it now "
                    "gets other random numbers than it would have. Give randperm a generator of "
                    "its own, generator=torch.Generator().manual_seed(seed).")


def _keeping_global_random_numbers(student):
    """``student``, raising MovedGlobalRandomNumbers if a call changes torch's global state."""
    def run(labels, k, *, seed):
        before = torch.get_rng_state()
        answer = student(labels, k, seed=seed)
        if not torch.equal(before, torch.get_rng_state()):
            raise MovedGlobalRandomNumbers("the call changed torch's global random numbers")
        return answer
    return run


def check_labels_per_class(student):
    exercise = "Exercise 1 (labels per class)"
    if student is labels_per_class or not callable(student):
        result = run_check(student, labels_per_class, _labels_cases(), exercise=exercise)
    else:
        result = run_check(_keeping_global_random_numbers(student), labels_per_class,
                           _labels_cases(), exercise=exercise,
                           diagnose=partial(_diagnose_labels, student), slips=LABELS_SLIPS)
        raised = f"your code raised {MovedGlobalRandomNumbers.__name__}: "
        if result.message.startswith(raised):  # the check found it, not the learner's code
            result = replace(result, message="the draw is right but moved the global random "
                                             "numbers: " + result.message.removeprefix(raised))
    report(result)
    return student if result.passed else labels_per_class


def _labels_variant(labels, k, *, seed, draw="one permutation", budget="k per class",
                    positions="original", sort=True):
    """labels_per_class with one thing changed (the defaults give the reference)."""
    generator = torch.Generator().manual_seed(seed)
    classes = range(int(labels.max()) + (0 if budget == "last class dropped" else 1))
    if draw == "no shuffle":
        order = torch.arange(len(labels))
    else:
        order = torch.randperm(len(labels), generator=generator)
    if budget == "k in all":
        chosen = [order[:k]]
    elif draw == "per class":  # a permutation of each class's own positions
        members = [torch.nonzero(labels == label).flatten() for label in classes]
        chosen = [positions[torch.randperm(len(positions), generator=generator)[:k]]
                  for positions in members]
    elif positions == "shuffled":  # positions in labels[order], not in labels
        chosen = [torch.nonzero(labels[order] == label).flatten()[:k] for label in classes]
    elif positions == "mask on order":  # labels == c selects positions of labels, not of order
        chosen = [order[labels == label][:k] for label in classes]
    else:
        chosen = [order[labels[order] == label][:k] for label in classes]
    chosen = torch.cat(chosen)
    return chosen.sort().values if sort else chosen


UNSEEDED = ("two calls with the same seed chose different examples: draw the permutation with a "
            "generator seeded by the seed argument, torch.randperm(len(labels), "
            "generator=torch.Generator().manual_seed(seed)), so that the same seed always picks "
            "the same examples (a label budget must be the same at every run to be compared).")

LABELS_SLIPS = [
    Slip("no shuffle",
         "you kept the first k examples of each class in the data set's own order: that is no "
         "random draw (a data set is often stored by source or by date, so its first examples "
         "are not a fair sample). Take the first k of each class in the order of the "
         "permutation instead.", partial(_labels_variant, draw="no shuffle")),
    Slip("k in all",
         "you chose k examples in all; k is the number per class, so the answer has k * "
         "num_classes indices, k of every class.", partial(_labels_variant, budget="k in all")),
    Slip("not sorted",
         "the right examples, in another order: return them sorted (torch.cat(...).sort().values),"
         " so that the subset keeps the data set's order.", partial(_labels_variant, sort=False)),
    Slip("positions in the shuffled order",
         "your indices are positions in the shuffled labels, labels[order], not in labels: "
         "labels[yours] are not the classes you picked. The position in the data set of the "
         "example at place i of the permutation is order[i]: keep order[labels[order] == c][:k].",
         partial(_labels_variant, positions="shuffled")),
    Slip("mask of labels applied to the permutation",
         "order[labels == c] keeps the entries of order at the places where labels is c, so the "
         "mask and the permutation do not line up: the indices it gives are of any class. Read "
         "the labels in the permutation's order first, labels[order] == c, then keep "
         "order[labels[order] == c][:k].", partial(_labels_variant, positions="mask on order")),
    Slip("last class dropped",
         "the last class is missing: range(labels.max()) stops before labels.max(). The classes "
         "are 0 to labels.max() included: range(int(labels.max()) + 1).",
         partial(_labels_variant, budget="last class dropped")),
    Slip("a permutation per class",
         "you drew a permutation of each class's positions: a fair draw too, but another one than "
         "the instructions', so it cannot be checked. Draw one permutation of all len(labels) "
         "positions, then keep, for each class, the first k of its positions met along it.",
         partial(_labels_variant, draw="per class")),
]


def _diagnose_labels(student, case, expected, got):
    """A draw that is not seeded by the seed argument: two calls give two answers; or one that
    moved the global random numbers."""
    if isinstance(got, Exception) and not isinstance(got, MovedGlobalRandomNumbers):
        return None
    labels, k = case.args
    answers = []
    for global_seed in (1001, 1002):  # whatever the global generator's state, the same answer
        with torch.random.fork_rng():
            torch.manual_seed(global_seed)
            answers.append(student(labels.clone(), k, **case.kwargs))
    if compare(*answers) is not None:
        return UNSEEDED
    return GLOBAL_GENERATOR if isinstance(got, MovedGlobalRandomNumbers) else None


# ---- exercise 4: a linear probe --------------------------------------------------------------

@dataclass(frozen=True)
class _Pretrained:
    """The 'pretrained' course ResNet of a case, rebuilt with the same weights at every call."""

    settings: dict
    device: str = "cpu"  # "meta": a stand-in for a GPU, where a head built on the CPU stands out

    def build(self) -> nn.Module:
        torch.manual_seed(0)  # the caller forks the random numbers
        return cnn.ResNet(**self.settings).to(self.device)

    def __repr__(self) -> str:
        where = "" if self.device == "cpu" else f" on the {self.device} device"
        return (f"ResNet({', '.join(f'{key}={value!r}' for key, value in self.settings.items())})"
                + where)


class WrongProbe(Exception):
    """The model is not a linear probe; ``hint`` says what to change."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint




NOT_A_MODEL = "return the model at the end of your function, once its head is replaced."
NOT_IN_PLACE = ("change the model you are given and return it: a copy (copy.deepcopy) or a new "
                "model leaves the caller's model unprepared, and doubles the memory.")
HEAD_ELSEWHERE = ("the new head was built on the CPU while the model is elsewhere (here the meta "
                  "device, on a GPU in the full profile): move it next to the backbone, "
                  "nn.Linear(...).to(model.head.weight.device), before replacing the old one.")
HEAD_NOT_LINEAR = ("replace the head by one new layer, nn.Linear(model.head.in_features, "
                   "num_classes), the linear classifier that the probe trains.")
HEAD_NOT_REPLACED = ("the old head scores the old task's classes, which mean nothing for the new "
                     "one: set model.head = nn.Linear(model.head.in_features, num_classes).")
OLD_CLASSES = ("your new head has the old head's number of outputs (model.head.out_features): "
               "the new task has num_classes classes, one output each.")
WRONG_FEATURES = ("the head reads the backbone's features, whose number does not change: take "
                  "in_features from the old head, model.head.in_features.")
REINITIALISED = ("the pretrained weights are what a linear probe reuses: replace the head only, "
                 "and leave every other layer as it is (no new model, no reset_parameters(), no "
                 "init on the backbone).")
FROZE_EVERYTHING = ("nothing is left to train: you froze every parameter after replacing the "
                    "head, so the new head is frozen too. Freeze first and then replace the head "
                    "(a new layer is trainable), or keep requires_grad = True for the head. "
                    "(model.head.requires_grad = True only sets an attribute of the module: use "
                    "model.head.requires_grad_(True), or set it on each of its parameters.)")
INVERTED = ("the test is the wrong way round: the backbone must be frozen and the head trained "
            "(requires_grad = name.startswith('head.')), not the other way.")
NOTHING_FROZEN = ("nothing was frozen: set requires_grad = False on every parameter of the "
                  "backbone (all but the head), so that the optimiser only trains the new head "
                  "and the pretrained features stay as they are.")
PARTLY_FROZEN = ("a linear probe trains the head alone: freeze every parameter whose name does "
                 "not start with 'head.', the backbone's norms and biases included.")
HEAD_FROZEN = ("the new head is what a linear probe trains: every one of its parameters must keep "
               "requires_grad = True.")
FORWARD_FAILS = "the model must still classify a batch of images: (N, C, H, W) -> (N, num_classes)."


def _check_probe(model, given: nn.Module, old_head: nn.Linear, pretrained: dict, num_classes: int,
                 images) -> None:
    """Raise a WrongProbe that says what is wrong unless ``model`` is a linear probe of the model
    ``given`` to the learner's function, changed in place."""
    if not isinstance(model, nn.Module):
        raise WrongProbe(f"prepare_linear_probe returned {describe_value(model)}, not the model",
                         NOT_A_MODEL)
    if model is not given:
        raise WrongProbe("prepare_linear_probe returned another model than the one it was given",
                         NOT_IN_PLACE)
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise WrongProbe(f"model.head is {describe_value(head)}, not an nn.Linear", HEAD_NOT_LINEAR)
    if head is old_head:
        raise WrongProbe(f"model.head is still the old layer, with {old_head.out_features} "
                         f"outputs", HEAD_NOT_REPLACED)
    if head.out_features != num_classes:
        raise WrongProbe(f"the new head has {head.out_features} outputs instead of num_classes = "
                         f"{num_classes}", OLD_CLASSES if head.out_features == old_head.out_features
                         else f"give the new head num_classes = {num_classes} outputs.")
    if head.in_features != old_head.in_features:
        raise WrongProbe(f"the new head takes {head.in_features} features but the backbone gives "
                         f"{old_head.in_features}", WRONG_FEATURES)
    if head.weight.device != old_head.weight.device:
        raise WrongProbe(f"the new head is on the {head.weight.device} device, the model on the "
                         f"{old_head.weight.device} device", HEAD_ELSEWHERE)
    parameters = dict(model.named_parameters())
    on_meta = old_head.weight.is_meta  # meta tensors have shapes, no values to compare
    changed = [name for name, weights in pretrained.items()
               if name not in parameters or parameters[name].shape != weights.shape
               or (not on_meta and not torch.equal(parameters[name].detach(), weights))]
    if changed:
        raise WrongProbe(f"the backbone's weights changed: {first_names(changed)} ({len(changed)} of "
                         f"its {len(pretrained)} tensors differ from the pretrained ones)",
                         REINITIALISED)
    trainable = finetune.trainable_parameters(model)
    head_names = [f"head.{name}" for name, _ in head.named_parameters()]
    backbone_trains = [name for name in trainable if name not in head_names]
    head_frozen = [name for name in head_names if name not in trainable]
    if not trainable:
        raise WrongProbe("no parameter is trainable (requires_grad is False everywhere)",
                         FROZE_EVERYTHING)
    if backbone_trains and head_frozen:
        raise WrongProbe(f"the head is frozen ({first_names(head_frozen)}) and the backbone trains "
                         f"({first_names(backbone_trains)})", INVERTED)
    if backbone_trains:
        hint = NOTHING_FROZEN if len(backbone_trains) == len(pretrained) else PARTLY_FROZEN
        raise WrongProbe(f"{len(backbone_trains)} of the backbone's {len(pretrained)} parameters "
                         f"still train: {first_names(backbone_trains)}", hint)
    if head_frozen:
        raise WrongProbe(f"part of the new head is frozen: {first_names(head_frozen)}", HEAD_FROZEN)
    try:
        with torch.no_grad():
            logits = model.eval()(images)
    except Exception as error:
        raise WrongProbe(f"the model fails on a batch of images: {type(error).__name__}: {error}",
                         FORWARD_FAILS) from error
    if not isinstance(logits, torch.Tensor) or logits.shape != (len(images), num_classes):
        raise WrongProbe(f"the model's output for {len(images)} images is "
                         f"{describe_value(logits)}, not ({len(images)}, {num_classes})",
                         FORWARD_FAILS)


def _probe_outcome(prepare):
    """What ``prepare`` (called like prepare_linear_probe) makes of a case's pretrained model:
    the names of the trainable parameters, once the model is checked to be a linear probe."""
    def run(model: _Pretrained, num_classes: int):
        with torch.random.fork_rng():  # the notebook's random numbers go on as they were
            pretrained_model = model.build()
            images = torch.rand(2, model.settings.get("in_channels", 3), 16, 16,
                                device=model.device)
            old_head = pretrained_model.head
            pretrained = {name: weights.detach().clone()
                          for name, weights in pretrained_model.named_parameters()
                          if not name.startswith("head.")}
            probe = prepare(pretrained_model, num_classes)
            _check_probe(probe, pretrained_model, old_head, pretrained, num_classes, images)
        return finetune.trainable_parameters(probe)
    return run


def check_freeze_and_replace_head(student):
    cases = [Case("a ResNet for 10 classes, probed for 3",
                  (_Pretrained({"num_classes": 10, "widths": (4, 8), "depths": (1, 1)}), 3)),
             Case("a grey ResNet of three stages for 5 classes, probed for 2",
                  (_Pretrained({"num_classes": 5, "in_channels": 1, "widths": (4, 8, 8),
                                "depths": (1, 1, 1)}), 2)),
             Case("a ResNet for 4 classes, probed for 7",
                  (_Pretrained({"num_classes": 4, "widths": (6, 6), "depths": (2, 1)}), 7)),
             Case("a ResNet for 6 classes on the meta device (as if on a GPU), probed for 3",
                  (_Pretrained({"num_classes": 6, "widths": (4, 8), "depths": (1, 1)},
                               device="meta"), 3))]
    exercise = "Exercise 2 of part 2 (linear probe)"
    if student is prepare_linear_probe or not callable(student):
        result = run_check(student, prepare_linear_probe, cases, exercise=exercise)
    else:
        result = run_check(_probe_outcome(student), _probe_outcome(prepare_linear_probe), cases,
                           exercise=exercise, diagnose=_diagnose_probe)
        raised = f"your code raised {WrongProbe.__name__}: "
        if result.message.startswith(raised):  # the check found it, not the learner's code
            result = replace(result, message="the model is not a linear probe: "
                                             + result.message.removeprefix(raised))
    report(result)
    return student if result.passed else prepare_linear_probe


def _diagnose_probe(case, expected, got):
    return got.hint if isinstance(got, WrongProbe) else None


def _probe_variant(model, num_classes, *, trains="head", head_outputs="new",
                   reset_backbone=False):
    """prepare_linear_probe by hand, the head replaced and then the parameters frozen, with one
    thing changed (the defaults give a right answer)."""
    if reset_backbone:
        for layer in model.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    outputs = num_classes if head_outputs == "new" else model.head.out_features
    model.head = nn.Linear(model.head.in_features, outputs).to(model.head.weight.device)
    for name, parameter in model.named_parameters():
        in_head = name.startswith("head.")
        parameter.requires_grad = {"head": in_head, "everything": True, "nothing": False,
                                   "backbone": not in_head}[trains]
    return model


# Not passed to the check, which names these mistakes by the property each breaks (the
# parameters that train, the head's size, the backbone's weights); the tests run them.
PROBE_SLIPS = [
    Slip("nothing frozen", NOTHING_FROZEN, partial(_probe_variant, trains="everything")),
    Slip("froze everything after replacing", FROZE_EVERYTHING,
         partial(_probe_variant, trains="nothing")),
    Slip("inverted", INVERTED, partial(_probe_variant, trains="backbone")),
    Slip("old number of classes", OLD_CLASSES, partial(_probe_variant, head_outputs="old")),
    Slip("backbone re-initialised", REINITIALISED, partial(_probe_variant, reset_backbone=True)),
]


# ---- exercise 5: pseudo-labels ---------------------------------------------------------------

def _pseudo_cases():
    at_the_threshold = torch.tensor([[0.75, 0.20, 0.05],   # exactly at the threshold
                                     [0.10, 0.30, 0.60],
                                     [0.04, 0.06, 0.90],
                                     [0.25, 0.75, 0.00],   # exactly at the threshold
                                     [0.40, 0.35, 0.25]])
    unsure = torch.tensor([[0.30, 0.20, 0.40, 0.10],
                           [0.85, 0.05, 0.05, 0.05],
                           [0.25, 0.25, 0.10, 0.40]])
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    return [Case("5 images of 3 classes, threshold 0.75", (at_the_threshold, 0.75),
                 hint="rows 0, 2 and 3 have a largest probability of at least 0.75 (rows 0 and "
                      "3 exactly 0.75): indices [0, 2, 3], labels [0, 2, 1]."),
            Case("3 images of 4 classes, none sure enough (threshold 0.9)", (unsure, 0.9),
                 hint="no row reaches 0.9: both answers are empty int64 tensors of shape (0,), "
                      "not None and not an error."),
            Case("6 images of 3 classes, threshold 0.3", (logits.softmax(dim=1), 0.3),
                 hint="with 3 classes the largest probability is at least 1/3, so every row is "
                      "kept: indices 0 .. 5, and labels the argmax of every row.")]


def check_select_pseudo_labels(student):
    return check_function(student, select_pseudo_labels, _pseudo_cases(),
                          exercise="Exercise 4 of part 2 (pseudo-labels)", slips=PSEUDO_SLIPS,
                          output_names=("indices", "labels"))


def _pseudo_variant(probabilities, threshold, *, keep=">=", confidence="max", labels="argmax",
                    indices="row numbers", labelled="kept rows"):
    """select_pseudo_labels with one thing changed (the defaults give the reference)."""
    best, best_class = probabilities.max(dim=1)                          # (N,), (N,)
    scores = best if confidence == "max" else probabilities[:, 0]
    kept = scores >= threshold if keep == ">=" else scores > threshold  # (N,) bool
    row_labels = {"argmax": best_class, "argmin": probabilities.argmin(dim=1),
                  "values": best}[labels]
    rows = torch.nonzero(kept).flatten()
    answer_labels = row_labels[rows] if labelled == "kept rows" else row_labels
    return (rows if indices == "row numbers" else kept), answer_labels


PSEUDO_SLIPS = [
    Slip("> instead of >=",
         "the rows whose largest probability is exactly the threshold are missing: 'at least the "
         "threshold' is >=, and > leaves them out.", partial(_pseudo_variant, keep=">")),
    Slip("probability of class 0",
         "you compared the probability of class 0 with the threshold: a row's confidence is its "
         "largest probability, whatever the class, probabilities.max(dim=1).values.",
         partial(_pseudo_variant, confidence="class 0")),
    Slip("boolean mask",
         "indices is a mask, one True or False per row: the answer is the numbers of the kept "
         "rows, torch.nonzero(mask).flatten() (the same as mask.nonzero()[:, 0]).",
         partial(_pseudo_variant, indices="mask")),
    Slip("labels of every row",
         "labels has one entry per row of probabilities: keep the labels of the kept rows only, "
         "labels[indices], so that labels[i] is the pseudo-label of row indices[i].",
         partial(_pseudo_variant, labelled="all rows")),
    Slip("argmin",
         "your labels are the least probable classes: a pseudo-label is the model's best guess, "
         "the most probable class, argmax.", partial(_pseudo_variant, labels="argmin")),
    Slip("the largest probability as the label",
         "your labels are the largest probabilities themselves (floats): the label is the class "
         "where the maximum is, argmax(dim=1), the second output of probabilities.max(dim=1).",
         partial(_pseudo_variant, labels="values")),
]
