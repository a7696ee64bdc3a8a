import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import augment, cnn, finetune
from course_utils.checks import compare
from course_utils.exercises import lesson06, lesson06_augment, lesson06_labels

from exercise_attempts import (assert_each_slip_named_alone,  # tests/exercise_attempts.py
                               assert_undone_wrong_and_right)

SOBEL_KERNELS = torch.stack([augment.SOBEL_X, augment.SOBEL_Y])[:, None]   # (2, 1, 3, 3)


def sobel_by_hand(images, *, red=0.2989, kernels=SOBEL_KERNELS, padding="replicate"):
    grey = images if images.shape[1] == 1 else (
        red * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]
    if padding == "replicate":
        gradients = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    else:
        gradients = F.conv2d(grey, kernels, padding=1)
    magnitude = (gradients[:, :1] ** 2 + gradients[:, 1:] ** 2).sqrt() / augment.SOBEL_MAX_MAGNITUDE
    return magnitude.repeat(1, images.shape[1], 1, 1)


def cutout_with_a_mask(images, size, *, top, left):
    n, _, height, width = images.shape
    top = torch.as_tensor(top).reshape(-1).expand(n)[:, None]
    left = torch.as_tensor(left).reshape(-1).expand(n)[:, None]
    rows, columns = torch.arange(height)[None], torch.arange(width)[None]
    in_rows = (rows >= top) & (rows < top + size)                        # (N, H)
    in_columns = (columns >= left) & (columns < left + size)             # (N, W)
    return images * ~(in_rows[:, None, :, None] & in_columns[:, None, None, :])


def cutout_in_place(images, size, *, top, left):
    tops = torch.as_tensor(top).reshape(-1).expand(len(images)).tolist()
    lefts = torch.as_tensor(left).reshape(-1).expand(len(images)).tolist()
    for image, row, column in zip(images, tops, lefts):
        image[:, max(row, 0):row + size, max(column, 0):column + size] = 0
    return images


def labels_by_hand(labels, k, *, seed):
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for label in range(int(labels.max()) + 1):
        chosen += [int(i) for i in order if labels[i] == label][:k]
    return torch.tensor(sorted(chosen))


def labels_unseeded(labels, k, *, seed):
    order = torch.randperm(len(labels))
    return torch.cat([order[labels[order] == label][:k]
                      for label in range(int(labels.max()) + 1)]).sort().values


def probe_by_hand(model, num_classes):
    for parameter in model.parameters():
        parameter.requires_grad = False
    model.head = nn.Linear(model.head.in_features, num_classes).to(model.head.weight.device)
    return model


def probe_by_the_package_in_the_other_order(model, num_classes):
    finetune.freeze(model, train=())  # everything frozen: replace_head's new layer trains
    return finetune.replace_head(model, num_classes)


def pseudo_labels_by_hand(probabilities, threshold):
    confidence = probabilities.max(dim=1).values
    indices = torch.nonzero(confidence >= threshold).flatten()
    return indices, probabilities[indices].argmax(dim=1)


CASES = [
    (lesson06.check_sobel, lesson06.sobel, lesson06_augment.SOBEL_SLIPS[0].fn,
     "black frame around the image"),
    (lesson06.check_cutout, lesson06.cutout, lesson06_augment.CUTOUT_SLIPS[1].fn,
     "rows and columns swapped"),
    (lesson06.check_labels_per_class, lesson06.labels_per_class, labels_unseeded,
     "two calls with the same seed chose different examples"),
    (lesson06.check_freeze_and_replace_head, lesson06.prepare_linear_probe,
     lesson06_labels.PROBE_SLIPS[0].fn, "nothing was frozen"),
    (lesson06.check_select_pseudo_labels, lesson06.select_pseudo_labels,
     lesson06_labels.PSEUDO_SLIPS[0].fn, "exactly the threshold are missing"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[0].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys)


# ---- one regression test per slip --------------------------------------------------------------

SLIP_LISTS = {
    "sobel": (lesson06.check_sobel, lesson06.SOBEL_SLIPS),
    "cutout": (lesson06.check_cutout, lesson06.CUTOUT_SLIPS),
    "labels per class": (lesson06.check_labels_per_class, lesson06.LABELS_SLIPS),
    "linear probe": (lesson06.check_freeze_and_replace_head, lesson06.PROBE_SLIPS),
    "pseudo-labels": (lesson06.check_select_pseudo_labels, lesson06.PSEUDO_SLIPS),
}


@pytest.mark.parametrize("exercise", SLIP_LISTS)
def test_each_listed_slip_is_named_alone(exercise, capsys):
    assert_each_slip_named_alone(*SLIP_LISTS[exercise], capsys)


VALUE_SLIPS = {  # exercise: (reference, slips, the check's cases)
    "sobel": (lesson06.sobel, lesson06.SOBEL_SLIPS, lesson06_augment._sobel_cases()),
    "cutout": (lesson06.cutout, lesson06.CUTOUT_SLIPS, lesson06_augment._cutout_cases()),
    "labels per class": (lesson06.labels_per_class, lesson06.LABELS_SLIPS,
                         lesson06_labels._labels_cases()),
    "pseudo-labels": (lesson06.select_pseudo_labels, lesson06.PSEUDO_SLIPS,
                      lesson06_labels._pseudo_cases()),
}


@pytest.mark.parametrize("slip, reference, cases", [
    pytest.param(slip, reference, cases, id=f"{exercise}: {slip.name}")
    for exercise, (reference, slips, cases) in VALUE_SLIPS.items() for slip in slips])
def test_each_slip_differs_from_the_reference_on_a_case(slip, reference, cases):
    def output(fn, case):
        try:
            return fn(*case.args, **case.kwargs)
        except Exception as error:
            return error

    differs = []
    for case in cases:
        slipped = output(slip.fn, case)
        expected = reference(*case.args, **case.kwargs)
        differs.append(isinstance(slipped, Exception)
                       or compare(expected, slipped, atol=1e-3) is not None)
    assert any(differs)


# ---- exercise 1: the Sobel filter ---------------------------------------------------------------

@pytest.mark.parametrize("attempt", [
    sobel_by_hand,
    lambda images: sobel_by_hand(images, red=0.299),                      # the rounded weights
    lambda images: sobel_by_hand(images, kernels=SOBEL_KERNELS.flip(-1, -2)),  # a true convolution
    lambda images: sobel_by_hand(images, kernels=SOBEL_KERNELS.flip(0)),  # the kernels swapped
], ids=["by hand", "0.299 R", "kernels flipped", "kernels swapped"])
def test_sobel_right_answers_pass(attempt, capsys):
    """A flipped kernel (convolution instead of cross-correlation) only changes the signs of gx
    and gy, so it is right, and there is no slip for it."""
    assert lesson06.check_sobel(attempt) is attempt
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


def test_sobel_with_conv2d_padding_is_named_as_zero_padding(capsys):
    lesson06.check_sobel(lambda images: sobel_by_hand(images, padding="zeros"))
    assert lesson06_augment.SOBEL_SLIPS[0].hint in capsys.readouterr().out


def test_sobel_size_slips_quote_the_case(capsys):
    lesson06.check_sobel(lambda images: sobel_by_hand(images)[..., 1:-1, 1:-1])
    assert "your edges are (1, 3, 4, 6)" in capsys.readouterr().out
    lesson06.check_sobel(lambda images: sobel_by_hand(images)[:, :1])
    assert "the image has 3: repeat the edges" in capsys.readouterr().out


# ---- exercise 2: cutout -------------------------------------------------------------------------

def test_cutout_with_a_mask_passes(capsys):
    assert lesson06.check_cutout(cutout_with_a_mask) is cutout_with_a_mask
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


def test_cutout_in_place_is_told_so(capsys):
    assert lesson06.check_cutout(cutout_in_place) is lesson06.cutout
    out = capsys.readouterr().out
    assert "changed its input in place" in out and lesson06_augment.IN_PLACE in out


def test_cutout_returning_nothing_is_told_so(capsys):
    lesson06.check_cutout(lambda images, size, *, top, left: None)
    assert lesson06_augment.RETURNED_NOTHING in capsys.readouterr().out


def test_cutout_error_at_the_border_is_diagnosed_whatever_the_message(capsys):
    def with_a_block_of_zeros(images, size, *, top, left):
        result = images.clone()
        result[:, :, top:top + size, left:left + size] = torch.zeros(size, size)
        return result

    lesson06.check_cutout(with_a_block_of_zeros)
    out = capsys.readouterr().out
    assert "raised RuntimeError" in out and lesson06_augment.NOT_CLIPPED in out


def test_cutout_that_ignores_one_place_per_image_gets_the_case_hint(capsys):
    def one_place(images, size, *, top, left):
        result = images.clone()
        result[:, :, max(int(top), 0):top + size, max(int(left), 0):left + size] = 0
        return result

    lesson06.check_cutout(one_place)
    out = capsys.readouterr().out
    assert "one place per image" in out and "torch.as_tensor(top).expand(N)" in out


# ---- exercise 3: k labels per class -------------------------------------------------------------

def test_labels_by_hand_pass(capsys):
    with torch.random.fork_rng():
        assert lesson06.check_labels_per_class(labels_by_hand) is labels_by_hand
    assert capsys.readouterr().out.count("\N{WHITE HEAVY CHECK MARK}") == 1


def test_labels_unseeded_is_named_alone(capsys):
    lesson06.check_labels_per_class(labels_unseeded)
    out = capsys.readouterr().out
    assert lesson06_labels.UNSEEDED in out
    assert not any(slip.hint in out for slip in lesson06.LABELS_SLIPS)


def test_labels_as_a_list_are_not_called_unseeded(capsys):
    def as_a_list(labels, k, *, seed):
        return labels_by_hand(labels, k, seed=seed).tolist()

    lesson06.check_labels_per_class(as_a_list)
    out = capsys.readouterr().out
    assert "expected a torch.Tensor but got list" in out and lesson06_labels.UNSEEDED not in out


def test_labels_check_leaves_the_random_numbers_alone(capsys):
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    lesson06.check_labels_per_class(lesson06.LABELS_SLIPS[0].fn)   # diagnosed: runs it again
    assert torch.equal(torch.rand(3), expected_next)


# ---- exercise 4: a linear probe -----------------------------------------------------------------

@pytest.mark.parametrize("attempt", [probe_by_hand, probe_by_the_package_in_the_other_order,
                                     lesson06_labels._probe_variant],
                         ids=["by hand", "package, freeze first", "the slips' variant, unchanged"])
def test_probe_right_answers_pass(attempt, capsys):
    assert lesson06.check_freeze_and_replace_head(attempt) is attempt
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


def test_probe_reference_trains_only_the_new_head():
    model = cnn.ResNet(num_classes=10, widths=(4, 8), depths=(1, 1))
    old_stem = model.stem[0].weight.detach().clone()
    probe = lesson06.prepare_linear_probe(model, 3)
    assert probe is model and probe.head.out_features == 3
    assert finetune.trainable_parameters(probe) == ["head.weight", "head.bias"]
    assert torch.equal(probe.stem[0].weight, old_stem)


def _returns_nothing(model, num_classes):
    return None


def _head_kept(model, num_classes):
    finetune.freeze(model)
    return model


def _head_in_a_sequential(model, num_classes):
    probe_by_hand(model, num_classes)
    model.head = nn.Sequential(model.head)
    return model


def _one_backbone_weight_trains(model, num_classes):
    probe_by_hand(model, num_classes)
    model.stages[0].conv1.weight.requires_grad = True
    return model


def _head_bias_frozen(model, num_classes):
    probe_by_hand(model, num_classes)
    model.head.bias.requires_grad = False
    return model


def _a_new_model(model, num_classes):
    return probe_by_hand(cnn.ResNet(num_classes=10, widths=(4, 8), depths=(1, 1)), num_classes)


@pytest.mark.parametrize("attempt, message, hint", [
    (_returns_nothing, "returned None, not the model", lesson06_labels.NOT_A_MODEL),
    (_head_kept, "still the old layer", lesson06_labels.HEAD_NOT_REPLACED),
    (_head_in_a_sequential, "model.head is a Sequential model, not an nn.Linear",
     lesson06_labels.HEAD_NOT_LINEAR),
    (_one_backbone_weight_trains, "1 of the backbone's 18 parameters still train: "
     "stages.0.conv1.weight", lesson06_labels.PARTLY_FROZEN),
    (_head_bias_frozen, "part of the new head is frozen: head.bias", lesson06_labels.HEAD_FROZEN),
    (_a_new_model, "returned another model than the one it was given",
     lesson06_labels.NOT_IN_PLACE),
], ids=["None", "head kept", "head in a Sequential", "one backbone weight trains",
        "head bias frozen", "a new model"])
def test_probe_mistakes_name_what_is_wrong(attempt, message, hint, capsys):
    assert lesson06.check_freeze_and_replace_head(attempt) is lesson06.prepare_linear_probe
    out = capsys.readouterr().out
    assert "\N{CROSS MARK}" in out and message in out and hint in out
    assert "raised WrongProbe" not in out and "not a linear probe" in out


def test_probe_names_the_offending_parameters(capsys):
    lesson06.check_freeze_and_replace_head(lesson06.PROBE_SLIPS[0].fn)   # nothing frozen
    out = capsys.readouterr().out
    assert "still train: stem.0.weight, stem.1.weight, stem.1.bias and 15 more" in out


def test_probe_check_leaves_the_random_numbers_alone(capsys):
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    lesson06.check_freeze_and_replace_head(probe_by_hand)
    assert torch.equal(torch.rand(3), expected_next)


def test_probe_error_in_the_learners_code_is_reported_as_theirs(capsys):
    def typo(model, num_classes):
        model.haed.requires_grad_(False)
        return model

    lesson06.check_freeze_and_replace_head(typo)
    out = capsys.readouterr().out
    assert "your code raised AttributeError" in out and "haed" in out


# ---- exercise 5: pseudo-labels ------------------------------------------------------------------

def test_pseudo_labels_by_hand_pass(capsys):
    assert lesson06.check_select_pseudo_labels(pseudo_labels_by_hand) is pseudo_labels_by_hand
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


def test_pseudo_label_cases_cover_the_edges():
    at, none_above, all_above = lesson06_labels._pseudo_cases()
    probabilities, threshold = at.args
    assert (probabilities.max(dim=1).values == threshold).sum() == 2   # rows exactly at it
    assert len(lesson06.select_pseudo_labels(*none_above.args)[0]) == 0
    assert len(lesson06.select_pseudo_labels(*all_above.args)[0]) == 6


def _probe_of_a_copy(model, num_classes):
    import copy

    return lesson06.prepare_linear_probe(copy.deepcopy(model), num_classes)


def _probe_on_the_cpu(model, num_classes):
    model.head = nn.Linear(model.head.in_features, num_classes)  # forgot .to(device)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith("head.")
    return model


@pytest.mark.parametrize("attempt, message", [
    (_probe_of_a_copy, "returned another model than the one it was given"),
    (_probe_on_the_cpu, "the new head is on the cpu device, the model on the meta device")],
    ids=["a copy", "head on the CPU"])
def test_probe_of_a_copy_or_on_another_device_is_named(attempt, message, capsys):
    assert lesson06.check_freeze_and_replace_head(attempt) is lesson06.prepare_linear_probe
    assert message in capsys.readouterr().out


def test_labels_drawn_with_the_global_generator_are_named(capsys):
    def global_seed(labels, k, *, seed):
        torch.manual_seed(seed)  # same numbers as the instructions' generator, but global
        order = torch.randperm(len(labels))
        return torch.cat([order[labels[order] == c][:k] for c in range(int(labels.max()) + 1)]).sort().values

    assert lesson06.check_labels_per_class(global_seed) is lesson06.labels_per_class
    assert "global random numbers" in capsys.readouterr().out
