"""Lesson 02 exercises on layers: normalisation by hand, group norm, squeeze-and-excite and the
residual block.

The references of the two module exercises are the package's own blocks (course_utils.cnn),
which later lessons import. A wrong answer is explained by the exercise's slips, each the
reference with one common mistake (see course_utils.checks.Slip); the modules' slips are
forward passes with one thing changed, run on the reference module with the learner's weights.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checks import Case, Slip, check_function, check_module
from course_utils.cnn import BasicBlock, SqueezeExcite

# ---- normalisation ---------------------------------------------------------------------------

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
    return check_function(student, normalize, cases, exercise="Exercise 5 (normalisation by hand)",
                          slips=NORMALIZE_SLIPS)


def _normalize_variant(x, dims, eps=1e-5, *, keepdim=True, unbiased=False, eps_inside=True):
    """normalize with one thing changed (the defaults give the reference)."""
    variance = x.var(dim=dims, keepdim=keepdim, unbiased=unbiased)
    scale = torch.sqrt(variance + eps) if eps_inside else torch.sqrt(variance) + eps
    return (x - x.mean(dim=dims, keepdim=keepdim)) / scale


NORMALIZE_SLIPS = [
    Slip("no keepdim",  # it raises: the statistics no longer line up with x's axes
         "without keepdim=True the mean and variance lose the reduced axes, so they no longer "
         "broadcast against x: x.mean(dim=dims, keepdim=True) keeps them, with size 1.",
         partial(_normalize_variant, keepdim=False)),
    Slip("unbiased variance",
         "use the biased variance, unbiased=False, as the normalisation layers do: torch's var "
         "and std divide by n - 1 unless told otherwise.", partial(_normalize_variant, unbiased=True)),
    Slip("eps outside the root",
         "add eps to the variance, inside the square root: (x - mean) / sqrt(variance + eps), not "
         "(std + eps); it matters when the variance is close to eps.",
         partial(_normalize_variant, eps_inside=False)),
]


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


# ---- squeeze-and-excite ----------------------------------------------------------------------

def _structure(student_cls, init_kwargs) -> dict[str, tuple] | None:
    """Parameter and buffer names and shapes of the learner's module, or None if it cannot be built."""
    try:
        with torch.random.fork_rng():
            module = student_cls(**init_kwargs)
        return {name: tuple(value.shape) for name, value in module.state_dict().items()}
    except Exception:  # undone, or a bug that the check itself reports
        return None


def _identity(x):
    return x


_GATES_ON = {"channels": lambda gates: gates[..., :, None, None],  # (N, C, 1, 1), or (C, 1, 1)
             "height": lambda gates: gates[:, None, :, None],
             "width": lambda gates: gates[:, None, None, :],
             "one axis added": lambda gates: gates[:, :, None]}


def _squeeze_excite_variant(se, x, *, pool=torch.mean, dims=(2, 3), hidden=torch.relu,
                            gate=torch.sigmoid, gates_on="channels"):
    """SqueezeExcite's forward pass with one thing changed (the defaults give the reference)."""
    gates = gate(se.fc2(hidden(se.fc1(pool(x, dim=dims)))))
    return x * _GATES_ON[gates_on](gates)


SQUEEZE_EXCITE_SLIPS = [
    Slip("no sigmoid", "the gates need a sigmoid after fc2, so that each lies in (0, 1).",
         partial(_squeeze_excite_variant, gate=_identity)),
    Slip("no ReLU", "put a ReLU between fc1 and fc2 (fc1, ReLU, fc2, sigmoid).",
         partial(_squeeze_excite_variant, hidden=_identity)),
    Slip("activations swapped",
         "ReLU goes after fc1 and the sigmoid after fc2, not the other way round.",
         partial(_squeeze_excite_variant, hidden=torch.sigmoid, gate=torch.relu)),
    Slip("softmax",
         "use a sigmoid, not a softmax: each channel gets its own gate in (0, 1); a softmax would "
         "make the channels compete for one total of 1.",
         partial(_squeeze_excite_variant, gate=partial(torch.softmax, dim=-1))),
    Slip("max pooling",
         "squeeze with the mean over H and W (global average pooling), not the maximum.",
         partial(_squeeze_excite_variant, pool=torch.amax)),
    Slip("pooled over the batch",
         "average over H and W only (dims 2 and 3): averaging over the batch too gives every "
         "image the same gates.", partial(_squeeze_excite_variant, dims=(0, 2, 3))),
    Slip("gates on the width axis",
         "the gates (N, C) must scale channels: reshape them to (N, C, 1, 1); (N, 1, 1, C) "
         "scales the columns of each map instead.",
         partial(_squeeze_excite_variant, gates_on="width")),
    Slip("gates on the height axis",
         "the gates (N, C) must scale channels: reshape them to (N, C, 1, 1); (N, 1, C, 1) "
         "scales the rows of each map instead.",
         partial(_squeeze_excite_variant, gates_on="height")),
    Slip("one axis added",  # it raises: (N, C, 1) lines up with (C, H, W), not (N, C)
         "the gates (N, C) need two axes of size 1 to broadcast over H and W: "
         "gates[:, :, None, None], shape (N, C, 1, 1).",
         partial(_squeeze_excite_variant, gates_on="one axis added")),
]


def _diagnose_squeeze_excite(case, expected, got):
    init_kwargs, x = case.args
    if isinstance(got, torch.Tensor) and got.shape == x.shape[:2]:
        return "that is the gates (N, C): return the input x scaled by them, x * gates[:, :, None, None]."
    return None


def _se_structure_hint(student_cls, init_kwargs) -> str | None:
    shapes = _structure(student_cls, init_kwargs)
    channels, reduction = init_kwargs["channels"], init_kwargs["reduction"]
    hidden = channels // reduction
    if shapes is None or "fc1.weight" not in shapes:
        return None
    if shapes["fc1.weight"] != (hidden, channels):
        return (f"fc1 reduces the {channels} channels to channels // reduction = {hidden} features "
                f"(nn.Linear({channels}, {hidden})); fc2 maps them back to {channels}.")
    return None


def check_squeeze_excite(student_cls):
    generator = torch.Generator().manual_seed(5)
    hint = ("squeeze x to (N, C) with a mean over H and W; fc1, ReLU, fc2, sigmoid give the gates "
            "(N, C); return x * gates reshaped to (N, C, 1, 1).")
    # Channel offsets make some of fc1's outputs negative, so a missing ReLU shows; in the first
    # case C = H = W, so gates broadcast along the wrong axis run (wrongly) instead of failing.
    init_and_inputs = [
        ("4 channels on 4x4 maps, reduction 2", {"channels": 4, "reduction": 2},
         torch.randn(3, 4, 4, 4, generator=generator) + 3 * torch.randn(3, 4, 1, 1, generator=generator)),
        ("8 channels, reduction 4", {"channels": 8, "reduction": 4},
         torch.randn(2, 8, 5, 5, generator=generator) + 3 * torch.randn(2, 8, 1, 1, generator=generator)),
        ("a batch of one", {"channels": 16, "reduction": 8}, torch.randn(1, 16, 3, 3, generator=generator)),
    ]
    cases = [Case(name, (init_kwargs, x), hint=_se_structure_hint(student_cls, init_kwargs) or hint)
             for name, init_kwargs, x in init_and_inputs]
    return check_module(student_cls, SqueezeExcite, cases, exercise="Exercise 7 (squeeze-and-excite)",
                        diagnose=_diagnose_squeeze_excite, slips=SQUEEZE_EXCITE_SLIPS)


def _randomise_batch_norms(block: nn.Module) -> None:
    """Random batch-norm scales and shifts, so that a block that mixes up its norms (or adds the
    shortcut before bn2) cannot pass by luck: fresh norms are all 1s and 0s."""
    with torch.no_grad():
        for norm in block.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.weight.copy_(1 + 0.5 * torch.randn_like(norm.weight))
                norm.bias.copy_(0.5 * torch.randn_like(norm.bias))


def _basic_block_variant(block, x, *, stride_in_conv2=False, relu_after_bn1=True,
                         shortcut="after bn2", final_relu="after the addition"):
    """BasicBlock's forward pass with one thing changed (the defaults give the reference)."""
    if stride_in_conv2:
        out = F.conv2d(x, block.conv1.weight, padding=1)
    else:
        out = block.conv1(x)
    out = block.bn1(out)
    if relu_after_bn1:
        out = torch.relu(out)
    if stride_in_conv2:
        out = F.conv2d(out, block.conv2.weight, stride=block.conv1.stride, padding=1)
    else:
        out = block.conv2(out)
    if shortcut == "before bn2":
        return torch.relu(block.bn2(out + block.shortcut(x)))
    out = block.bn2(out)
    if shortcut == "none":
        return torch.relu(out)
    if final_relu == "after the addition":
        return torch.relu(out + block.shortcut(x))
    if final_relu == "none":
        return out + block.shortcut(x)
    out = torch.relu(out) + block.shortcut(x)
    return torch.relu(out) if final_relu == "before and after the addition" else out


RESIDUAL_BLOCK_SLIPS = [
    Slip("no shortcut",
         "add the shortcut before the final ReLU: relu(bn2(conv2(...)) + self.shortcut(x)); "
         "without it this is a plain block.", partial(_basic_block_variant, shortcut="none")),
    Slip("no final ReLU",
         "apply the final ReLU after adding the shortcut: relu(F(x) + shortcut(x)).",
         partial(_basic_block_variant, final_relu="none")),
    Slip("ReLU before the addition",
         "the final ReLU comes after the addition, relu(F(x) + shortcut(x)); do not apply it to "
         "F(x) before adding.", partial(_basic_block_variant, final_relu="before the addition")),
    Slip("ReLU before and after the addition",
         "F(x) = bn2(conv2(...)) is added as it is: the only ReLU after bn2 is the one after the "
         "addition.", partial(_basic_block_variant, final_relu="before and after the addition")),
    Slip("no ReLU after bn1", "put a ReLU between bn1 and conv2: relu(bn1(conv1(x))).",
         partial(_basic_block_variant, relu_after_bn1=False)),
    Slip("shortcut before bn2",
         "add the shortcut after bn2: bn2 normalises F(x) alone, relu(bn2(conv2(...)) + "
         "shortcut(x)).", partial(_basic_block_variant, shortcut="before bn2")),
    Slip("stride in conv2",
         "the stride belongs to conv1, the first 3x3 convolution (as in torchvision's ResNet); "
         "conv2 always has stride 1.", partial(_basic_block_variant, stride_in_conv2=True)),
]


def _block_structure_hint(student_cls, init_kwargs) -> str | None:
    shapes = _structure(student_cls, init_kwargs)
    if shapes is None:
        return None
    shortcut = {name for name in shapes if name.startswith("shortcut.")}
    projection = init_kwargs.get("stride", 1) != 1 or init_kwargs["in_channels"] != init_kwargs["channels"]
    if not projection and shortcut:
        return ("when stride is 1 and in_channels == channels, the shortcut is the identity "
                "(nn.Identity()): x is added as it is, without a projection.")
    if projection and not shortcut:
        return ("here the block changes the number of channels or the size, so x cannot be added "
                "as it is: self.shortcut must be a projection, nn.Sequential(nn.Conv2d(in_channels, "
                "channels, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(channels)).")
    if projection and "shortcut.1.weight" not in shortcut:
        return ("the projection shortcut needs batch norm after its 1x1 convolution, like every "
                "convolution of the block: nn.Sequential(nn.Conv2d(..., kernel_size=1, "
                "stride=stride, bias=False), nn.BatchNorm2d(channels)).")
    return None


def check_residual_block(student_cls):
    generator = torch.Generator().manual_seed(6)
    hint = ("relu(bn1(conv1(x))), then bn2(conv2(.)), add self.shortcut(x), and only then the "
            "final ReLU; conv1 carries the stride.")
    projection_hint = ("this case needs the projection shortcut: x goes through self.shortcut (a "
                       "1x1 convolution with the block's stride, then batch norm) before it is "
                       "added; conv1 carries the stride.")
    init_and_inputs = [
        ("identity shortcut, 4 channels", {"in_channels": 4, "channels": 4},
         torch.randn(3, 4, 6, 6, generator=generator), hint),
        ("stride 2 and 4 -> 8 channels", {"in_channels": 4, "channels": 8, "stride": 2},
         torch.randn(2, 4, 6, 6, generator=generator), projection_hint),
        ("stride 1, 8 -> 16 channels", {"in_channels": 8, "channels": 16},
         torch.randn(2, 8, 4, 4, generator=generator), projection_hint),
        ("stride 2, 8 channels kept", {"in_channels": 8, "channels": 8, "stride": 2},
         torch.randn(2, 8, 5, 5, generator=generator), projection_hint),
    ]
    cases = [Case(name, (init_kwargs, x), hint=_block_structure_hint(student_cls, init_kwargs) or default)
             for name, init_kwargs, x, default in init_and_inputs]
    return check_module(student_cls, BasicBlock, cases, exercise="Exercise 4 (residual block)",
                        slips=RESIDUAL_BLOCK_SLIPS, prepare=_randomise_batch_norms)
