import pytest
import torch
import torch.nn.functional as F

from course_utils import finetune
from course_utils.checks import compare
from course_utils.exercises import lesson06, lesson06_recall, lesson06_transfer

from exercise_attempts import (assert_each_slip_named_alone,  # tests/exercise_attempts.py
                               assert_undone_wrong_and_right)

PASSED = "\N{WHITE HEAVY CHECK MARK}"


def per_class_accuracy_by_a_loop(predictions, labels, num_classes):
    accuracies = []
    for label in range(num_classes):
        of_the_class = labels == label
        accuracies.append((predictions[of_the_class] == label).float().mean())  # empty: NaN
    return torch.stack(accuracies)


def optimizer_head_group_first(model, *, backbone_lr, head_lr):
    head = [p for p in model.head.parameters() if p.requires_grad]
    backbone = [p for name, p in model.named_parameters()
                if p.requires_grad and not name.startswith("head.")]
    return torch.optim.AdamW([{"params": head, "lr": head_lr},
                              {"params": backbone, "lr": backbone_lr}])


def optimizer_from_the_package(model, *, backbone_lr, head_lr):
    return torch.optim.AdamW(finetune.parameter_groups(model, lr=head_lr, backbone_lr=backbone_lr))


def features_by_adaptive_pooling_in_eval_mode(model, images):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        features = F.adaptive_avg_pool2d(model.stages(model.stem(images)), 1).flatten(1)
    model.train(was_training)  # leaving the model as it was is right too
    return features


CASES = [
    (lesson06.check_per_class_accuracy, lesson06_recall.per_class_accuracy,
     lesson06_recall.PER_CLASS_SLIPS[2].fn, "that is the precision"),
    (lesson06.check_fine_tuning_optimizer, lesson06_transfer.fine_tuning_optimizer,
     lesson06_transfer.OPTIMIZER_SLIPS[2].fn, "the learning rates are swapped"),
    (lesson06.check_extract_features, lesson06_transfer.extract_features,
     lesson06_transfer.FEATURES_SLIPS[4].fn, "Call model.eval() first"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES,
                         ids=["per-class accuracy", "fine-tuning optimizer", "features"])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys)


SLIP_LISTS = {
    "per-class accuracy": (lesson06.check_per_class_accuracy, lesson06_recall.PER_CLASS_SLIPS),
    "fine-tuning optimizer": (lesson06.check_fine_tuning_optimizer,
                              lesson06_transfer.OPTIMIZER_SLIPS),
    "features": (lesson06.check_extract_features, lesson06_transfer.FEATURES_SLIPS),
}


@pytest.mark.parametrize("exercise", SLIP_LISTS)
def test_each_listed_slip_is_named_alone(exercise, capsys):
    assert_each_slip_named_alone(*SLIP_LISTS[exercise], capsys)


@pytest.mark.parametrize("check, attempt", [
    (lesson06.check_per_class_accuracy, lesson06_recall.PER_CLASS_SLIPS[0].fn),
    (lesson06.check_fine_tuning_optimizer, lesson06_transfer.OPTIMIZER_SLIPS[3].fn),
    (lesson06.check_extract_features, lesson06_transfer.FEATURES_SLIPS[2].fn),
], ids=["per-class accuracy", "fine-tuning optimizer", "features"])
def test_checks_leave_the_random_numbers_alone(check, attempt, capsys):
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    check(attempt)   # a wrong attempt: the check builds its models again to diagnose it
    assert torch.equal(torch.rand(3), expected_next)


# ---- exercise 6: per-class accuracy -------------------------------------------------------------

def test_per_class_accuracy_by_a_loop_passes(capsys):
    assert (lesson06.check_per_class_accuracy(per_class_accuracy_by_a_loop)
            is per_class_accuracy_by_a_loop)
    assert PASSED in capsys.readouterr().out


def test_per_class_reference_is_recall_with_nan_for_an_absent_class():
    predictions, labels = torch.tensor([0, 1, 1, 3]), torch.tensor([0, 0, 1, 3])
    accuracies = lesson06_recall.per_class_accuracy(predictions, labels, 5)
    assert accuracies.dtype == torch.float32 and accuracies.shape == (5,)
    assert accuracies[[0, 1, 3]].tolist() == [0.5, 1.0, 1.0]
    assert accuracies[[2, 4]].isnan().all()


def test_per_class_cases_cover_the_edges():
    ordinary, middle_absent, last_absent, all_wrong = lesson06_recall._per_class_cases()
    for case in (middle_absent, last_absent, all_wrong):
        assert lesson06_recall.per_class_accuracy(*case.args).isnan().any()
    predictions, labels, num_classes = last_absent.args
    assert labels.max() < num_classes - 2   # bincount without minlength is too short
    predictions, labels, _ = all_wrong.args
    assert not (predictions == labels).any()


@pytest.mark.parametrize("slip", lesson06_recall.PER_CLASS_SLIPS, ids=lambda slip: slip.name)
def test_each_per_class_slip_differs_from_the_reference_on_a_case(slip):
    differs = []
    for case in lesson06_recall._per_class_cases():
        try:
            slipped = slip.fn(*case.args)
        except Exception:
            differs.append(True)
            continue
        differs.append(compare(lesson06_recall.per_class_accuracy(*case.args), slipped) is not None)
    assert any(differs)


# ---- exercise 7: an optimiser for fine-tuning ---------------------------------------------------

@pytest.mark.parametrize("attempt", [optimizer_head_group_first, optimizer_from_the_package,
                                     lesson06_transfer._optimizer_variant],
                         ids=["head group first", "package groups",
                              "the slips' variant, unchanged"])
def test_optimizer_right_answers_pass(attempt, capsys):
    """Group order does not matter, nor an empty backbone group when the backbone is frozen."""
    assert lesson06.check_fine_tuning_optimizer(attempt) is attempt
    assert PASSED in capsys.readouterr().out


def _with_weight_decay(model, *, backbone_lr, head_lr):
    groups = finetune.parameter_groups(model, lr=head_lr, backbone_lr=backbone_lr)
    return torch.optim.AdamW(groups, weight_decay=0.0)


def _adam(model, *, backbone_lr, head_lr):
    return torch.optim.Adam(finetune.parameter_groups(model, lr=head_lr, backbone_lr=backbone_lr))


def _backbone_only(model, *, backbone_lr, head_lr):
    backbone = [p for name, p in model.named_parameters()
                if p.requires_grad and not name.startswith("head.")]
    return torch.optim.AdamW([{"params": backbone, "lr": backbone_lr}])


def _returns_nothing(model, *, backbone_lr, head_lr):
    return None


@pytest.mark.parametrize("attempt, message, hint", [
    (_with_weight_decay, "weight_decay 0 instead of AdamW's default 0.01",
     lesson06_transfer.WEIGHT_DECAY),
    (_adam, "it is torch.optim.Adam, not torch.optim.AdamW", lesson06_transfer.NOT_ADAMW),
    (_backbone_only, "2 trainable parameters are in no group: head.weight, head.bias",
     lesson06_transfer.MISSING),
    (_returns_nothing, "returned None, not an optimiser", lesson06_transfer.NOT_AN_OPTIMIZER),
], ids=["weight decay", "Adam", "head left out", "None"])
def test_optimizer_mistakes_name_what_is_wrong(attempt, message, hint, capsys):
    assert lesson06.check_fine_tuning_optimizer(attempt) is lesson06_transfer.fine_tuning_optimizer
    out = capsys.readouterr().out
    assert "\N{CROSS MARK}" in out and message in out and hint in out
    assert "raised WrongResult" not in out and "not the one asked for" in out


def test_optimizer_counted_twice_is_reported_as_the_learners_error(capsys):
    lesson06.check_fine_tuning_optimizer(lesson06_transfer.OPTIMIZER_SLIPS[3].fn)
    out = capsys.readouterr().out
    assert "your code raised ValueError: some parameters appear in more than one" in out
    assert lesson06_transfer.COUNTED_TWICE in out


# ---- exercise 8: features before the head -------------------------------------------------------

def test_features_by_adaptive_pooling_pass(capsys):
    attempt = features_by_adaptive_pooling_in_eval_mode
    assert lesson06.check_extract_features(attempt) is attempt
    assert PASSED in capsys.readouterr().out


def test_features_cases_tell_train_mode_from_eval_mode():
    """The cases' models have BatchNorm statistics of their own, so that forgetting eval()
    changes the values, not only the buffers."""
    for case in lesson06_transfer._features_cases():
        model, images = case.args
        with torch.random.fork_rng():
            network = model.build()
            assert network.training
            assert not torch.allclose(network.stem[1].running_mean, torch.zeros(1))
            in_train_mode = lesson06_transfer.FEATURES_SLIPS[4].fn(model.build(), images)
            in_eval_mode = lesson06_transfer.extract_features(model.build(), images)
        assert not torch.allclose(in_train_mode, in_eval_mode)


def test_features_head_slip_quotes_the_number_of_classes(capsys):
    lesson06.check_extract_features(lesson06_transfer.FEATURES_SLIPS[0].fn)
    out = capsys.readouterr().out
    assert "expected shape (2, 8) but got shape (2, 5)" in out and "5 columns, one per class" in out


def test_features_squeezed_get_the_case_hint(capsys):
    lesson06.check_extract_features(
        lambda model, images: lesson06_transfer.extract_features(model, images).squeeze())
    out = capsys.readouterr().out
    assert "one grey image" in out and "avoid squeeze()" in out


def test_features_error_in_the_learners_code_is_reported_as_theirs(capsys):
    def typo(model, images):
        return model.stages(model.stme(images)).mean(dim=(2, 3))

    lesson06.check_extract_features(typo)
    out = capsys.readouterr().out
    assert "your code raised AttributeError" in out and "stme" in out
