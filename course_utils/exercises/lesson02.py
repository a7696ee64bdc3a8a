"""Lesson 02 exercises: convolution arithmetic, receptive fields, normalisation, SE and residual blocks.

The references of the two module exercises are the package's own blocks (course_utils.cnn),
which later lessons import. A wrong answer is explained by running named variants of the
reference, each with one common slip: when a variant gives the learner's answers, its slip is
named (for the functions: on every case; for the modules: on the failing case).
"""

import copy

import torch
from torch import nn

from course_utils.checks import Case, check_function, check_module, compare
from course_utils.cnn import BasicBlock, SqueezeExcite

# ---- reference solutions ---------------------------------------------------------------------


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output height (or width) of a convolution or pooling layer."""
    span = dilation * (kernel_size - 1) + 1  # input pixels covered by one (dilated) kernel
    return (size + 2 * padding - span) // stride + 1


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


# ---- naming a slip ---------------------------------------------------------------------------

def _slip_of(student, slips, cases, part=None):
    """The advice of the first slip whose variant gives the learner's answers on every case.

    ``slips`` is a list of (variant, advice); ``part`` compares one item of tuple answers only.
    """
    answers = []
    for case in cases:
        try:
            answers.append(student(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs)))
        except Exception:  # the learner's code failing elsewhere: no single slip explains it
            return None
    for variant, advice in slips:
        for case, answer in zip(cases, answers):
            expected = variant(*case.args, **case.kwargs)
            if part is not None:
                if not isinstance(answer, (tuple, list)) or len(answer) <= part:
                    break
                expected, answer = expected[part], answer[part]
            if compare(expected, answer) is not None or type(answer) is not type(expected):
                break
        else:
            return advice
    return None


def _size_slip(formula):
    """A variant of conv_output_size computed by ``formula(size, span, kernel, stride, padding, dilation)``."""
    def variant(size, kernel_size, stride=1, padding=0, dilation=1):
        span = dilation * (kernel_size - 1) + 1
        return formula(size, span, kernel_size, stride, padding, dilation)
    return variant


_SIZE_SLIPS = [
    (_size_slip(lambda n, span, k, s, p, d: (n + 2 * p - span) // s),
     "you left out the + 1: the kernel's first position counts too (a kernel exactly as wide as "
     "the padded input fits once)."),
    (_size_slip(lambda n, span, k, s, p, d: (n + p - span) // s + 1),
     "padding is added on both sides of the input: 2 * padding, not padding."),
    (_size_slip(lambda n, span, k, s, p, d: (n + 2 * p - span + 1) // s),
     "the + 1 comes after the floor division: (n + 2p - k) // s + 1, not (n + 2p - k + 1) // s."),
    (_size_slip(lambda n, span, k, s, p, d: (n + 2 * p - span) / s + 1),
     "/ is true division and gives a float (AlexNet at 224: 55.25); round down with //."),
    (_size_slip(lambda n, span, k, s, p, d: -(-(n + 2 * p - span) // s) + 1),
     "you rounded up; a kernel that would stick out of the padded input is not applied, so "
     "round down (//)."),
    (_size_slip(lambda n, span, k, s, p, d: n + 2 * p - span + 1),
     "divide by the stride: the kernel moves stride pixels at each step."),
    (_size_slip(lambda n, span, k, s, p, d: (n + 2 * p - k) // s + 1),
     "dilation is ignored: a kernel with dilation d spans d * (kernel_size - 1) + 1 input "
     "pixels; use that in place of kernel_size."),
    (_size_slip(lambda n, span, k, s, p, d: (n + 2 * p - d * k) // s + 1),
     "a dilated kernel spans d * (kernel_size - 1) + 1 pixels, not d * kernel_size (its taps are "
     "d apart: k taps have k - 1 gaps)."),
]

_COST_PARAM_SLIPS = [
    (lambda c_in, c_out, k, h, w: (c_out * c_in * k * k, None),
     "every filter also has 1 bias: out_channels * (in_channels * k * k + 1) parameters."),
    (lambda c_in, c_out, k, h, w: (c_out * (c_in * k + 1), None),
     "a k x k filter has k * k weights per input channel (use kernel_size ** 2)."),
    (lambda c_in, c_out, k, h, w: (c_in * k * k + 1, None),
     "that is one filter: the layer has out_channels filters of in_channels * k * k + 1 parameters."),
]
_COST_MAC_SLIPS = [
    (lambda c_in, c_out, k, h, w: (None, c_out * h * h * c_in * k * k),
     "the number of outputs per channel is out_height * out_width, not out_height squared."),
    (lambda c_in, c_out, k, h, w: (None, c_out * h * w * (c_in * k * k + 1)),
     "this exercise does not count the bias additions as multiply-adds: "
     "out_channels * H_out * W_out * in_channels * k * k."),
    (lambda c_in, c_out, k, h, w: (None, c_out * h * w * c_in * k),
     "each output is a dot product over in_channels * k * k inputs (use kernel_size ** 2)."),
    (lambda c_in, c_out, k, h, w: (None, h * w * c_in * k * k),
     "that is one output channel: multiply by out_channels, every filter makes its own map."),
]


def _field_slip(update):
    """A variant of receptive_field whose loop body is ``update(field, jump, k, s) -> (field, jump)``."""
    def variant(layers):
        field, jump = 1, 1
        for kernel_size, stride in layers:
            field, jump = update(field, jump, kernel_size, stride)
        return field
    return variant


_FIELD_SLIPS = [
    (_field_slip(lambda r, j, k, s: (r + k - 1, j)),
     "the stride is ignored: after a stride-s layer, one step in its output is s input pixels, "
     "so keep a jump (start 1), widen the field by (k - 1) * jump and then multiply the jump by s."),
    (_field_slip(lambda r, j, k, s: (r + (k - 1) * j * s, j * s)),
     "widen the field with the jump from *before* this layer's stride: field += (k - 1) * jump, "
     "then jump *= stride."),
    (lambda layers: _field_slip(lambda r, j, k, s: (r + (k - 1) * j, j * s))(layers) - 1,
     "the field starts at 1 pixel (with no layer, an output pixel sees one input pixel), not 0."),
]


# ---- checks ----------------------------------------------------------------------------------

def check_conv_output_size(student):
    hint = ("output = floor((size + 2 * padding - span) / stride) + 1, where span = dilation * "
            "(kernel_size - 1) + 1 is the width the kernel covers; // rounds down.")
    cases = [Case("AlexNet conv1 at 227", (227, 11, 4, 2), hint=hint),
             Case("AlexNet conv1 at 224 (torchvision)", (224, 11, 4, 2), hint=hint),
             Case("3x3, padding 1 keeps the size", (32, 3, 1, 1), hint=hint),
             Case("3x3, stride 2, padding 1 halves it", (32, 3, 2, 1), hint=hint),
             Case("2x2 max-pool, stride 2", (13, 2, 2, 0), hint=hint),
             Case("no padding", (7, 3),
                  hint="call it with only size and kernel_size: stride, padding and dilation "
                       "have the defaults 1, 0 and 1."),
             Case("3x3 with dilation 2 and padding 2 keeps the size", (32, 3, 1, 2, 2), hint=hint),
             Case("dilation 3, stride 2, no padding", (20, 3, 2, 0, 3), hint=hint)]
    return check_function(student, conv_output_size, cases, exercise="Exercise 1 (output size)",
                          diagnose=lambda case, expected, got: _slip_of(student, _SIZE_SLIPS, cases))


def check_conv_cost(student):
    hint = ("each of the out_channels filters has in_channels * k * k weights and 1 bias; every "
            "output value (out_channels * H_out * W_out of them) costs in_channels * k * k MACs.")
    cases = [Case("AlexNet conv1", (3, 64, 11, 56, 56), hint=hint),
             Case("a 3x3 VGG layer", (64, 128, 3, 112, 112), hint=hint),
             Case("a 1x1 convolution", (256, 64, 1, 14, 14), hint=hint),
             Case("non-square output", (8, 16, 5, 10, 20), hint=hint)]

    def diagnose(case, expected, got):
        return (_slip_of(student, _COST_PARAM_SLIPS, cases, part=0)
                or _slip_of(student, _COST_MAC_SLIPS, cases, part=1))
    return check_function(student, conv_cost, cases, exercise="Exercise 2 (parameters and MACs)",
                          output_names=("parameters", "multiply-adds"), diagnose=diagnose)


def check_receptive_field(student):
    hint = ("start with field = 1 and jump = 1; each layer adds (kernel_size - 1) * jump to the "
            "field, then multiplies jump by its stride.")
    cases = [Case("one 3x3", ([(3, 1)],), hint=hint),
             Case("two 3x3 (VGG)", ([(3, 1), (3, 1)],), hint=hint),
             Case("three 3x3", ([(3, 1)] * 3,), hint=hint),
             Case("3x3, 3x3, pool, 3x3", ([(3, 1), (3, 1), (2, 2), (3, 1)],), hint=hint),
             Case("AlexNet conv1, pool1, conv2", ([(11, 4), (3, 2), (5, 1)],), hint=hint),
             Case("no layers", ([],), hint="with no layers an output pixel sees 1 input pixel.")]
    return check_function(student, receptive_field, cases, exercise="Exercise 3 (receptive field)",
                          diagnose=lambda case, expected, got: _slip_of(student, _FIELD_SLIPS, cases))


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


# ---- module exercises: a variant per slip, run on the failing case ----------------------------

def _structure(student_cls, init_kwargs) -> dict[str, tuple] | None:
    """Parameter and buffer names and shapes of the learner's module, or None if it cannot be built."""
    try:
        with torch.random.fork_rng():
            module = student_cls(**init_kwargs)
        return {name: tuple(value.shape) for name, value in module.state_dict().items()}
    except Exception:  # undone, or a bug that the check itself reports
        return None


def _variant_matches(variant_cls, reference_cls, prepare, case, got) -> bool:
    """Whether the variant, with the weights check_module gave the learner, answers ``got``."""
    init_kwargs, inputs = case.args
    with torch.random.fork_rng():  # as in check_module: the notebook's random numbers stay put
        torch.manual_seed(0)
        reference = reference_cls(**init_kwargs)
        if prepare is not None:
            prepare(reference)
        variant = variant_cls(**init_kwargs)
    variant.load_state_dict(reference.state_dict())
    with torch.no_grad():
        answer = variant(inputs)
    return answer.shape == got.shape and torch.allclose(answer, got, atol=1e-5)


class _SESlip(SqueezeExcite):
    """The reference SE block with one common mistake (``slip``), to name the learner's."""

    slip = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = (0, 2, 3) if self.slip == "pooled over the batch" else (2, 3)
        squeezed = x.amax(dim=dims) if self.slip == "max pooling" else x.mean(dim=dims)
        hidden = self.fc1(squeezed)
        if self.slip == "activations swapped":
            return x * torch.relu(self.fc2(torch.sigmoid(hidden)))[..., :, None, None]
        if self.slip != "no ReLU":
            hidden = torch.relu(hidden)
        gates = self.fc2(hidden)
        if self.slip == "softmax":
            gates = torch.softmax(gates, dim=-1)
        elif self.slip != "no sigmoid":
            gates = torch.sigmoid(gates)
        if self.slip == "gates on the width axis":
            return x * gates[:, None, None, :]
        if self.slip == "gates on the height axis":
            return x * gates[:, None, :, None]
        return x * gates[..., :, None, None]  # (N, C, 1, 1), or (C, 1, 1) when pooled over the batch


_SE_SLIPS = {
    "no sigmoid": "the gates need a sigmoid after fc2, so that each lies in (0, 1).",
    "no ReLU": "put a ReLU between fc1 and fc2 (fc1, ReLU, fc2, sigmoid).",
    "activations swapped": "ReLU goes after fc1 and the sigmoid after fc2, not the other way round.",
    "softmax": "use a sigmoid, not a softmax: each channel gets its own gate in (0, 1); a softmax "
               "would make the channels compete for one total of 1.",
    "max pooling": "squeeze with the mean over H and W (global average pooling), not the maximum.",
    "pooled over the batch": "average over H and W only (dims 2 and 3): averaging over the batch "
                             "too gives every image the same gates.",
    "gates on the width axis": "the gates (N, C) must scale channels: reshape them to (N, C, 1, 1); "
                               "(N, 1, 1, C) scales the columns of each map instead.",
    "gates on the height axis": "the gates (N, C) must scale channels: reshape them to (N, C, 1, 1); "
                                "(N, 1, C, 1) scales the rows of each map instead.",
}


def _diagnose_squeeze_excite(case, expected, got):
    if not isinstance(got, torch.Tensor):
        return None
    init_kwargs, x = case.args
    if got.shape == x.shape[:2]:
        return "that is the gates (N, C): return the input x scaled by them, x * gates[:, :, None, None]."
    for slip, advice in _SE_SLIPS.items():
        variant = type("SEVariant", (_SESlip,), {"slip": slip})
        try:
            if _variant_matches(variant, SqueezeExcite, None, case, got):
                return advice
        except RuntimeError:  # this slip cannot run on this case's shapes
            continue
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
                        diagnose=_diagnose_squeeze_excite)


def _randomise_batch_norms(block: nn.Module) -> None:
    """Random batch-norm scales and shifts, so that a block that mixes up its norms (or adds the
    shortcut before bn2) cannot pass by luck: fresh norms are all 1s and 0s."""
    with torch.no_grad():
        for norm in block.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.weight.copy_(1 + 0.5 * torch.randn_like(norm.weight))
                norm.bias.copy_(0.5 * torch.randn_like(norm.bias))


class _BlockSlip(BasicBlock):
    """The reference basic block with one common mistake (``slip``), to name the learner's."""

    slip = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slip = self.slip
        if slip == "stride in conv2":
            stride = self.conv1.stride
            out = nn.functional.conv2d(x, self.conv1.weight, padding=1)
            out = nn.functional.conv2d(torch.relu(self.bn1(out)), self.conv2.weight, stride=stride,
                                       padding=1)
            return torch.relu(self.bn2(out) + self.shortcut(x))
        out = self.bn1(self.conv1(x))
        if slip != "no ReLU after bn1":
            out = torch.relu(out)
        if slip == "shortcut before bn2":
            return torch.relu(self.bn2(self.conv2(out) + self.shortcut(x)))
        out = self.bn2(self.conv2(out))
        if slip == "no shortcut":
            return torch.relu(out)
        if slip == "ReLU before the addition":
            return torch.relu(out) + self.shortcut(x)
        if slip == "ReLU before and after the addition":
            return torch.relu(torch.relu(out) + self.shortcut(x))
        return out + self.shortcut(x)  # "no final ReLU"


_BLOCK_SLIPS = {
    "no shortcut": "add the shortcut before the final ReLU: relu(bn2(conv2(...)) + "
                   "self.shortcut(x)); without it this is a plain block.",
    "no final ReLU": "apply the final ReLU after adding the shortcut: relu(F(x) + shortcut(x)).",
    "ReLU before the addition": "the final ReLU comes after the addition, relu(F(x) + "
                                "shortcut(x)); do not apply it to F(x) before adding.",
    "ReLU before and after the addition": "F(x) = bn2(conv2(...)) is added as it is: the only "
                                          "ReLU after bn2 is the one after the addition.",
    "no ReLU after bn1": "put a ReLU between bn1 and conv2: relu(bn1(conv1(x))).",
    "shortcut before bn2": "add the shortcut after bn2: bn2 normalises F(x) alone, "
                           "relu(bn2(conv2(...)) + shortcut(x)).",
    "stride in conv2": "the stride belongs to conv1, the first 3x3 convolution (as in "
                       "torchvision's ResNet); conv2 always has stride 1.",
}


def _diagnose_residual_block(case, expected, got):
    if not isinstance(got, torch.Tensor):
        return None
    for slip, advice in _BLOCK_SLIPS.items():
        variant = type("BlockVariant", (_BlockSlip,), {"slip": slip})
        try:
            if _variant_matches(variant, BasicBlock, _randomise_batch_norms, case, got):
                return advice
        except RuntimeError:
            continue
    return None


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
                        diagnose=_diagnose_residual_block, prepare=_randomise_batch_norms)
