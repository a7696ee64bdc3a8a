import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checks import gradient_of
from course_utils.cnn import BasicBlock, SqueezeExcite
from course_utils.exercises import lesson02
from course_utils.exercises import lesson02_arithmetic as arithmetic
from course_utils.exercises import lesson02_layers as layers

from exercise_attempts import assert_undone_wrong_and_right  # tests/exercise_attempts.py


def said(capsys) -> str:
    """The check's printed verdict with its line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())


def test_references_match_torch():
    conv = nn.Conv2d(3, 64, 11, stride=4, padding=2)
    out = conv(torch.zeros(1, 3, 227, 227))
    assert out.shape[-1] == lesson02.conv_output_size(227, 11, 4, 2) == 56
    dilated = nn.Conv2d(1, 1, 3, stride=2, dilation=3)
    assert dilated(torch.zeros(1, 1, 20, 20)).shape[-1] == lesson02.conv_output_size(20, 3, 2, 0, 3)
    params, macs = lesson02.conv_cost(3, 64, 11, 56, 56)
    assert params == sum(p.numel() for p in conv.parameters()) and macs == 72_855_552
    x = torch.randn(4, 8, 5, 5)
    assert torch.allclose(lesson02.normalize(x, (0, 2, 3)),
                          F.batch_norm(x, None, None, training=True), atol=1e-5)
    assert torch.allclose(lesson02.normalize(x, (1, 2, 3)), F.layer_norm(x, x.shape[1:]), atol=1e-5)
    assert torch.allclose(lesson02.normalize(x, (2, 3)), F.instance_norm(x), atol=1e-5)
    assert torch.allclose(lesson02.group_norm(x, 4), F.group_norm(x, 4), atol=1e-5)


def test_receptive_field_matches_gradient_footprint():
    """The formula agrees with the pixels that actually influence the central output."""
    layers = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 2)]
    net = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, bias=False) for k, s in layers])
    for conv in net:
        nn.init.constant_(conv.weight, 1.0)
    centre = net(torch.zeros(1, 1, 64, 64)).shape[-1] // 2
    footprint = gradient_of(lambda x: net(x)[0, 0, centre, centre], torch.zeros(1, 1, 64, 64))
    rows = torch.nonzero(footprint[0, 0].sum(dim=1))
    assert rows.max() - rows.min() + 1 == lesson02.receptive_field(layers)


class NotDone(nn.Module):
    """A module exercise as the student notebook ships it."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError


class SEWithoutSigmoid(SqueezeExcite):
    def forward(self, x):
        return x * self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3)))))[:, :, None, None]


class SEWrongNames(nn.Module):
    def __init__(self, channels, reduction=4):
        super().__init__()
        self.squeeze = nn.Linear(channels, channels // reduction)
        self.excite = nn.Linear(channels // reduction, channels)

    def forward(self, x):
        return x


class NoSkip(BasicBlock):
    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def wrong_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1


def wrong_cost(c_in, c_out, k, h, w):
    return c_out * c_in * k * k, c_out * h * h * c_in * k * k


def wrong_field(layers):
    return 1 + sum(k - 1 for k, _ in layers)


def wrong_normalize(x, dims, eps=1e-5):
    return (x - x.mean(dim=dims, keepdim=True)) / x.std(dim=dims, keepdim=True)


def wrong_group_norm(x, num_groups, eps=1e-5):
    return lesson02.normalize(x, (2, 3), eps)


CASES = [
    (lesson02.check_conv_output_size, lesson02.conv_output_size, wrong_output_size, "2 * padding"),
    (lesson02.check_conv_cost, lesson02.conv_cost, wrong_cost, "bias"),
    (lesson02.check_receptive_field, lesson02.receptive_field, wrong_field, "stride"),
    (lesson02.check_normalize, lesson02.normalize, wrong_normalize, "unbiased=False"),
    (lesson02.check_group_norm, lesson02.group_norm, wrong_group_norm, "reshape"),
    (lesson02.check_squeeze_excite, SqueezeExcite, SEWithoutSigmoid, "sigmoid"),
    (lesson02.check_residual_block, BasicBlock, NoSkip, "shortcut"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys, not_done_class=NotDone)


def test_module_with_wrong_parameter_names_is_explained(capsys):
    lesson02.check_squeeze_excite(SEWrongNames)
    out = said(capsys)
    assert "parameters do not match" in out and "lacks fc1.weight" in out and "squeeze.weight" in out


class BlockWithBiases(BasicBlock):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__(in_channels, channels, stride)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)


class SEWithoutReLU(SqueezeExcite):
    def forward(self, x):
        return x * torch.sigmoid(self.fc2(self.fc1(x.mean(dim=(2, 3)))))[:, :, None, None]


def eps_outside_the_root(x, dims, eps=1e-5):
    mean = x.mean(dim=dims, keepdim=True)
    return (x - mean) / (x.var(dim=dims, keepdim=True, unbiased=False).sqrt() + eps)


def group_norm_not_reshaped_back(x, num_groups, eps=1e-5):
    n, c, h, w = x.shape
    return lesson02.normalize(x.reshape(n, num_groups, c // num_groups, h, w), (2, 3, 4), eps)


def test_slips_found_by_a_learner_are_caught_and_explained(capsys):
    lesson02.check_residual_block(BlockWithBiases)
    assert "conv1.bias, conv2.bias, which the instructions do not ask for (bias=False?)" in said(capsys)
    lesson02.check_squeeze_excite(SEWithoutReLU)
    out = said(capsys)
    assert "on the case '4 channels on 4x4 maps, reduction 2'" in out and "ReLU between" in out
    lesson02.check_normalize(eps_outside_the_root)
    assert "sqrt(variance + eps)" in said(capsys)
    lesson02.check_group_norm(group_norm_not_reshaped_back)
    assert "reshape you did not undo" in said(capsys)
    lesson02.check_conv_cost(wrong_cost)
    assert "parameters: expected 23,296 but got 23,232" in said(capsys)


# ---- each diagnosed slip is named (and only the hint for that slip is shown) -----------------

@pytest.mark.parametrize("slip", arithmetic.SIZE_SLIPS, ids=lambda slip: slip.name)
def test_each_output_size_slip_is_named(slip, capsys):
    assert lesson02.check_conv_output_size(slip.fn) is lesson02.conv_output_size
    out = said(capsys)
    assert slip.hint in out
    assert not any(other.hint in out for other in arithmetic.SIZE_SLIPS if other is not slip)


def test_a_float_answer_is_named_as_a_float(capsys):
    lesson02.check_conv_output_size(lambda *args: float(lesson02.conv_output_size(*args)))
    out = said(capsys)
    assert "the float 5.0" in out and "expected 5 but got 5" not in out


def test_two_slips_at_once_are_named_one_at_a_time(capsys):
    def two_slips(size, kernel_size, stride=1, padding=0, dilation=1):
        return (size + padding - kernel_size) // stride  # padding once and no + 1

    def one_slip_left(size, kernel_size, stride=1, padding=0, dilation=1):
        return (size + padding - kernel_size) // stride + 1

    hints = {slip.name: slip.hint for slip in arithmetic.SIZE_SLIPS}
    lesson02.check_conv_output_size(two_slips)
    out = said(capsys)
    assert hints["no + 1"] in out and hints["padding once"] not in out
    lesson02.check_conv_output_size(one_slip_left)
    out = said(capsys)
    assert hints["padding once"] in out and hints["no + 1"] not in out


def test_an_unknown_mistake_gets_the_formula(capsys):
    lesson02.check_conv_output_size(lambda size, kernel_size, stride=1, padding=0, dilation=1: size)
    out = said(capsys)
    assert "span = dilation * (kernel_size - 1) + 1" in out
    assert not any(slip.hint in out for slip in arithmetic.SIZE_SLIPS)


@pytest.mark.parametrize("slip", arithmetic.COST_SLIPS, ids=lambda slip: slip.name)
def test_each_conv_cost_slip_is_named(slip, capsys):
    def attempt(*args):
        right = list(lesson02.conv_cost(*args))
        right[slip.part] = slip.fn(*args)
        return tuple(right)
    lesson02.check_conv_cost(attempt)
    out = said(capsys)
    assert slip.hint in out
    assert not any(other.hint in out for other in arithmetic.COST_SLIPS if other is not slip)


def test_a_wrong_count_of_each_kind_is_explained_by_the_first(capsys):
    lesson02.check_conv_cost(wrong_cost)  # no biases, and out_height squared
    out = said(capsys)
    hints = [slip.hint for slip in arithmetic.COST_SLIPS]
    assert hints[0] in out and not any(hint in out for hint in hints[1:])


@pytest.mark.parametrize("slip", arithmetic.FIELD_SLIPS, ids=lambda slip: slip.name)
def test_each_receptive_field_slip_is_named(slip, capsys):
    lesson02.check_receptive_field(slip.fn)
    assert slip.hint in said(capsys)


@pytest.mark.parametrize("slip", layers.NORMALIZE_SLIPS, ids=lambda slip: slip.name)
def test_each_normalize_slip_is_named(slip, capsys):
    assert lesson02.check_normalize(slip.fn) is lesson02.normalize
    out = said(capsys)
    assert slip.hint in out
    assert not any(other.hint in out for other in layers.NORMALIZE_SLIPS if other is not slip)


def test_statistics_without_keepdim_raise_and_are_explained(capsys):
    def normalize_without_keepdim(x, dims, eps=1e-5):
        return (x - x.mean(dim=dims)) / torch.sqrt(x.var(dim=dims, unbiased=False) + eps)

    lesson02.check_normalize(normalize_without_keepdim)
    out = said(capsys)
    assert "your code raised RuntimeError" in out and "x.mean(dim=dims, keepdim=True)" in out


def learner_module(reference, slip):
    """A learner's module class whose forward pass makes the slip."""
    return type("Mine", (reference,), {"forward": lambda self, x: slip.fn(self, x)})


@pytest.mark.parametrize("slip", layers.SQUEEZE_EXCITE_SLIPS, ids=lambda slip: slip.name)
def test_each_squeeze_excite_slip_is_named(slip, capsys):
    assert lesson02.check_squeeze_excite(learner_module(SqueezeExcite, slip)) is SqueezeExcite
    out = said(capsys)
    assert slip.hint in out
    assert not any(other.hint in out for other in layers.SQUEEZE_EXCITE_SLIPS if other is not slip)


def test_squeeze_excite_returning_the_gates_is_named(capsys):
    class Gates(SqueezeExcite):
        def forward(self, x):
            return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
    lesson02.check_squeeze_excite(Gates)
    assert "that is the gates (N, C)" in said(capsys)


def test_squeeze_excite_without_reduction_is_named(capsys):
    class NoReduction(SqueezeExcite):
        def __init__(self, channels, reduction=4):
            super().__init__(channels, reduction=1)
    lesson02.check_squeeze_excite(NoReduction)
    out = said(capsys)
    assert "fc1.weight has shape (4, 4) instead of (2, 4)" in out
    assert "fc1 reduces the 4 channels to channels // reduction = 2 features" in out


@pytest.mark.parametrize("slip", layers.RESIDUAL_BLOCK_SLIPS, ids=lambda slip: slip.name)
def test_each_residual_block_slip_is_named(slip, capsys):
    assert lesson02.check_residual_block(learner_module(BasicBlock, slip)) is BasicBlock
    out = said(capsys)
    assert slip.hint in out
    assert not any(other.hint in out for other in layers.RESIDUAL_BLOCK_SLIPS if other is not slip)


class IdentityOnly(nn.Module):
    """A learner's block that always adds x as it is (no projection)."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)


class ProjectionWithoutNorm(IdentityOnly):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__(in_channels, channels, stride)
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


class ProjectionAlways(ProjectionWithoutNorm):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__(in_channels, channels, stride)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(channels))


def test_residual_block_shortcut_slips_are_named(capsys):
    lesson02.check_residual_block(IdentityOnly)
    out = said(capsys)
    assert "case 'stride 2 and 4 -> 8 channels'" in out and "lacks shortcut.0.weight" in out
    assert "x cannot be added as it is" in out
    lesson02.check_residual_block(ProjectionWithoutNorm)
    out = said(capsys)
    assert "lacks shortcut.1.weight" in out and "needs batch norm after its 1x1 convolution" in out
    lesson02.check_residual_block(ProjectionAlways)
    out = said(capsys)
    assert "case 'identity shortcut, 4 channels'" in out and "the shortcut is the identity" in out


def test_diagnosing_leaves_the_random_numbers_alone():
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    lesson02.check_residual_block(learner_module(BasicBlock, layers.RESIDUAL_BLOCK_SLIPS[1]))
    lesson02.check_squeeze_excite(learner_module(SqueezeExcite, layers.SQUEEZE_EXCITE_SLIPS[4]))
    assert torch.equal(torch.rand(3), expected)
