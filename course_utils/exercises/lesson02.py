"""Lesson 02 exercises: convolution arithmetic, receptive fields, normalisation, SE and residual blocks.

The references of the two module exercises are the package's own blocks (course_utils.cnn),
which later lessons import.
"""

import torch
from torch import nn

from course_utils.checks import Case, check_function, check_module
from course_utils.cnn import SqueezeExcite

# ---- reference solutions ---------------------------------------------------------------------


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a convolution or pooling layer."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_cost(in_channels: int, out_channels: int, kernel_size: int, out_height: int,
              out_width: int) -> tuple[int, int]:
    """(parameters with biases, multiply-adds without biases) of a square-kernel Conv2d."""
    weights_per_filter = in_channels * kernel_size * kernel_size
    params = out_channels * (weights_per_filter + 1)
    macs = out_channels * out_height * out_width * weights_per_filter
    return params, macs


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Receptive field (in input pixels) of one output pixel after ``(kernel_size, stride)`` layers."""
    field, jump = 1, 1
    for kernel_size, stride in layers:
        field += (kernel_size - 1) * jump  # each layer widens the field by k-1 input-steps
        jump *= stride                     # distance in input pixels between neighbouring outputs
    return field


def normalize(x: torch.Tensor, dims: tuple[int, ...], eps: float = 1e-5) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps), statistics over ``dims`` (biased variance)."""
    mean = x.mean(dim=dims, keepdim=True)
    variance = x.var(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(variance + eps)


def group_norm(x: torch.Tensor, num_groups: int, eps: float = 1e-5) -> torch.Tensor:
    """Group normalisation of (N, C, H, W) without the learned scale and shift."""
    n, c, h, w = x.shape
    grouped = x.reshape(n, num_groups, c // num_groups, h, w)
    return normalize(grouped, dims=(2, 3, 4), eps=eps).reshape(n, c, h, w)


class ResidualBlock(nn.Module):
    """The exercise's residual block: conv-BN-ReLU-conv-BN, plus x, then ReLU (same size in and out)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


# ---- checks ----------------------------------------------------------------------------------

def check_conv_output_size(student):
    hint = "output = floor((size + 2 * padding - kernel_size) / stride) + 1; use // for the floor."
    cases = [Case("AlexNet conv1 at 227", (227, 11, 4, 2), hint=hint),
             Case("AlexNet conv1 at 224 (torchvision)", (224, 11, 4, 2),
                  hint=hint + " The division must round down: (224 + 4 - 11) / 4 = 54.25 -> 54, "
                       "plus 1 gives 55."),
             Case("3x3, padding 1 keeps the size", (32, 3, 1, 1), hint=hint),
             Case("3x3, stride 2, padding 1 halves it", (32, 3, 2, 1), hint=hint),
             Case("2x2 max-pool, stride 2", (13, 2, 2, 0), hint=hint),
             Case("no padding", (7, 3), hint="stride and padding have defaults 1 and 0.")]
    return check_function(student, conv_output_size, cases, exercise="Exercise 1 (output size)")


def check_conv_cost(student):
    hint = ("each of the out_channels filters has in_channels * k * k weights and 1 bias; every "
            "output value (out_channels * H_out * W_out of them) costs in_channels * k * k MACs.")
    cases = [Case("AlexNet conv1", (3, 64, 11, 56, 56), hint=hint),
             Case("a 3x3 VGG layer", (64, 128, 3, 112, 112), hint=hint),
             Case("a 1x1 convolution", (256, 64, 1, 14, 14), hint=hint),
             Case("non-square output", (8, 16, 5, 10, 20),
                  hint="use out_height * out_width, not out_height squared.")]
    return check_function(student, conv_cost, cases, exercise="Exercise 2 (parameters and MACs)",
                          output_names=("parameters", "multiply-adds"))


def check_receptive_field(student):
    hint = ("start with field = 1 and jump = 1; each layer adds (kernel_size - 1) * jump to the "
            "field, then multiplies jump by its stride.")
    cases = [Case("one 3x3", ([(3, 1)],), hint=hint),
             Case("two 3x3 (VGG)", ([(3, 1), (3, 1)],), hint=hint),
             Case("three 3x3", ([(3, 1)] * 3,), hint=hint),
             Case("3x3, 3x3, pool, 3x3", ([(3, 1), (3, 1), (2, 2), (3, 1)],),
                  hint="after a stride-2 layer, one step in the output is 2 input pixels: " + hint),
             Case("AlexNet conv1, pool1, conv2", ([(11, 4), (3, 2), (5, 1)],), hint=hint),
             Case("no layers", ([],), hint="with no layers an output pixel sees 1 input pixel.")]
    return check_function(student, receptive_field, cases, exercise="Exercise 3 (receptive field)")


def check_normalize(student):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 5, 5, generator=generator) * 3 + 2
    hint = ("mean and variance over exactly the listed dims with keepdim=True; biased variance "
            "(unbiased=False, as the normalisation layers use); add eps inside the square root.")
    cases = [Case("batch norm axes (0, 2, 3)", (x, (0, 2, 3)), hint=hint),
             Case("layer norm axes (1, 2, 3)", (x, (1, 2, 3)), hint=hint),
             Case("instance norm axes (2, 3)", (x, (2, 3)), hint=hint),
             Case("a batch of one", (x[:1], (1, 2, 3)), hint=hint),
             Case("a small variance, close to eps", (x[:2] * 1e-3, (2, 3)),
                  hint="with a variance close to eps, where eps goes matters: divide by "
                       "sqrt(variance + eps), not by (std + eps)."),
             Case("a constant input", (torch.full((2, 3, 4, 4), 7.0), (2, 3)),
                  hint="variance 0: eps keeps the division finite and the output is 0.")]
    return check_function(student, normalize, cases, exercise="Exercise 5 (normalisation by hand)")


def check_group_norm(student):
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(3, 8, 4, 4, generator=generator) * 2 - 1
    hint = ("reshape (N, C, H, W) to (N, G, C // G, H, W), normalise over the last three axes, "
            "reshape back.")
    cases = [Case("4 groups", (x, 4), hint=hint),
             Case("1 group = layer norm", (x, 1), hint=hint),
             Case("8 groups = instance norm", (x, 8), hint=hint),
             Case("a batch of one", (x[:1], 2), hint=hint)]
    return check_function(student, group_norm, cases, exercise="Exercise 6 (group norm)")


def check_squeeze_excite(student_cls):
    generator = torch.Generator().manual_seed(5)
    hint = ("name the layers fc1 (C -> C // reduction) and fc2 (back to C); squeeze with a mean "
            "over H and W, ReLU between the layers, sigmoid at the end, and multiply x by the "
            "gates reshaped to (N, C, 1, 1).")
    # Channel offsets make some of fc1's outputs negative, so a missing ReLU shows.
    offsets = 3 * torch.randn(2, 8, 1, 1, generator=generator)
    cases = [Case("8 channels, reduction 4", ({"channels": 8, "reduction": 4},
                                              torch.randn(2, 8, 5, 5, generator=generator) + offsets),
                  hint=hint),
             Case("a batch of one", ({"channels": 16, "reduction": 8},
                                     torch.randn(1, 16, 3, 3, generator=generator)),
                  hint=hint + " Average over the spatial axes (2, 3) only, never over the batch.")]
    return check_module(student_cls, SqueezeExcite, cases, exercise="Exercise 7 (squeeze-and-excite)")


def check_residual_block(student_cls):
    generator = torch.Generator().manual_seed(6)
    hint = ("name the layers conv1, bn1, conv2, bn2; relu(bn1(conv1(x))), then bn2(conv2(.)), "
            "add the input x, and only then the final ReLU.")
    cases = [Case("4 channels", ({"channels": 4}, torch.randn(3, 4, 6, 6, generator=generator)),
                  hint=hint),
             Case("a batch of two", ({"channels": 8}, torch.randn(2, 8, 4, 4, generator=generator)),
                  hint=hint)]
    return check_module(student_cls, ResidualBlock, cases, exercise="Exercise 4 (residual block)")
