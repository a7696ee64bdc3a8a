import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.cnn import SqueezeExcite
from course_utils.exercises import lesson02

from exercise_attempts import assert_undone_wrong_and_right  # tests/exercise_attempts.py


def test_references_match_torch():
    conv = nn.Conv2d(3, 64, 11, stride=4, padding=2)
    out = conv(torch.zeros(1, 3, 227, 227))
    assert out.shape[-1] == lesson02.conv_output_size(227, 11, 4, 2) == 56
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
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].sum(dim=1))
    assert rows.max() - rows.min() + 1 == lesson02.receptive_field(layers)


class NotDoneSE(nn.Module):
    def __init__(self, channels, reduction=4):
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


class NoSkip(lesson02.ResidualBlock):
    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def wrong_output_size(size, kernel_size, stride=1, padding=0):
    return (size + padding - kernel_size) // stride + 1


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
    (lesson02.check_residual_block, lesson02.ResidualBlock, NoSkip, "add the input x"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys, not_done_class=NotDoneSE)


def test_module_with_wrong_parameter_names_is_explained(capsys):
    lesson02.check_squeeze_excite(SEWrongNames)
    out = capsys.readouterr().out
    assert "parameters do not match" in out and "lacks fc1.weight" in out and "squeeze.weight" in out


class BlockWithBiases(lesson02.ResidualBlock):
    def __init__(self, channels):
        super().__init__(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
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
    assert "conv1.bias, conv2.bias, which the instructions do not ask for (bias=False?)" in \
        capsys.readouterr().out
    lesson02.check_squeeze_excite(SEWithoutReLU)
    out = capsys.readouterr().out
    assert "wrong on the case '8 channels, reduction 4'" in out and "ReLU between" in out
    lesson02.check_normalize(eps_outside_the_root)
    assert "sqrt(variance + eps)" in capsys.readouterr().out
    lesson02.check_group_norm(group_norm_not_reshaped_back)
    assert "reshape you did not undo" in capsys.readouterr().out
    lesson02.check_conv_cost(wrong_cost)
    assert "parameters: expected 23,296 but got 23,232" in capsys.readouterr().out
