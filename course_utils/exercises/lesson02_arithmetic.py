"""Lesson 02 exercises on convolution arithmetic: output size, parameters and multiply-adds,
receptive field.

A wrong answer is explained by the exercise's slips, each the formula with one common mistake
(see course_utils.checks.Slip). A slip is named only if it also gives the right answers on the
cases passed before the failing one, so the simple cases come first: they tell apart slips
that agree on AlexNet's sizes.
"""

from course_utils.checks import Case, Slip, check_function

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


# ---- the usual slips -------------------------------------------------------------------------

def _size_slip(formula):
    """A variant of conv_output_size computed by ``formula(size, span, kernel, stride, padding, dilation)``."""
    def variant(size, kernel_size, stride=1, padding=0, dilation=1):
        span = dilation * (kernel_size - 1) + 1
        return formula(size, span, kernel_size, stride, padding, dilation)
    return variant


SIZE_SLIPS = [
    Slip("no + 1",
         "you left out the + 1: the kernel's first position counts too (a kernel exactly as wide "
         "as the padded input fits once).",
         _size_slip(lambda n, span, k, s, p, d: (n + 2 * p - span) // s)),
    Slip("padding once", "padding is added on both sides of the input: 2 * padding, not padding.",
         _size_slip(lambda n, span, k, s, p, d: (n + p - span) // s + 1)),
    Slip("+ 1 inside the division",
         "the + 1 comes after the floor division: (n + 2p - k) // s + 1, not (n + 2p - k + 1) // s.",
         _size_slip(lambda n, span, k, s, p, d: (n + 2 * p - span + 1) // s)),
    Slip("true division",
         "/ is true division and gives a float (AlexNet at 224: 55.25); round down with //.",
         _size_slip(lambda n, span, k, s, p, d: (n + 2 * p - span) / s + 1)),
    Slip("rounded up",
         "you rounded up; a kernel that would stick out of the padded input is not applied, so "
         "round down (//).", _size_slip(lambda n, span, k, s, p, d: -(-(n + 2 * p - span) // s) + 1)),
    Slip("no stride", "divide by the stride: the kernel moves stride pixels at each step.",
         _size_slip(lambda n, span, k, s, p, d: n + 2 * p - span + 1)),
    Slip("dilation ignored",
         "dilation is ignored: a kernel with dilation d spans d * (kernel_size - 1) + 1 input "
         "pixels; use that in place of kernel_size.",
         _size_slip(lambda n, span, k, s, p, d: (n + 2 * p - k) // s + 1)),
    Slip("dilated span d * k",
         "a dilated kernel spans d * (kernel_size - 1) + 1 pixels, not d * kernel_size (its taps "
         "are d apart: k taps have k - 1 gaps).",
         _size_slip(lambda n, span, k, s, p, d: (n + 2 * p - d * k) // s + 1)),
]

COST_SLIPS = [  # part 0: the parameters, part 1: the multiply-adds
    Slip("no biases", "every filter also has 1 bias: out_channels * (in_channels * k * k + 1) "
         "parameters.", lambda c_in, c_out, k, h, w: c_out * c_in * k * k, part=0),
    Slip("k weights per channel", "a k x k filter has k * k weights per input channel (use "
         "kernel_size ** 2).", lambda c_in, c_out, k, h, w: c_out * (c_in * k + 1), part=0),
    Slip("one filter", "that is one filter: the layer has out_channels filters of in_channels * "
         "k * k + 1 parameters.", lambda c_in, c_out, k, h, w: c_in * k * k + 1, part=0),
    Slip("height squared", "the number of outputs per channel is out_height * out_width, not "
         "out_height squared.", lambda c_in, c_out, k, h, w: c_out * h * h * c_in * k * k, part=1),
    Slip("bias additions counted", "this exercise does not count the bias additions as "
         "multiply-adds: out_channels * H_out * W_out * in_channels * k * k.",
         lambda c_in, c_out, k, h, w: c_out * h * w * (c_in * k * k + 1), part=1),
    Slip("k inputs per channel", "each output is a dot product over in_channels * k * k inputs "
         "(use kernel_size ** 2).", lambda c_in, c_out, k, h, w: c_out * h * w * c_in * k, part=1),
    Slip("one output channel", "that is one output channel: multiply by out_channels, every "
         "filter makes its own map.", lambda c_in, c_out, k, h, w: h * w * c_in * k * k, part=1),
]


def _field_slip(update, start=1):
    """A variant of receptive_field whose loop body is ``update(field, jump, k, s) -> (field, jump)``."""
    def variant(layers):
        field, jump = start, 1
        for kernel_size, stride in layers:
            field, jump = update(field, jump, kernel_size, stride)
        return field
    return variant


FIELD_SLIPS = [
    Slip("stride ignored",
         "the stride is ignored: after a stride-s layer, one step in its output is s input "
         "pixels, so keep a jump (start 1), widen the field by (k - 1) * jump and then multiply "
         "the jump by s.", _field_slip(lambda r, j, k, s: (r + k - 1, j))),
    Slip("jump updated first",
         "widen the field with the jump from *before* this layer's stride: field += (k - 1) * "
         "jump, then jump *= stride.", _field_slip(lambda r, j, k, s: (r + (k - 1) * j * s, j * s))),
    Slip("field starts at 0",
         "the field starts at 1 pixel (with no layer, an output pixel sees one input pixel), not 0.",
         _field_slip(lambda r, j, k, s: (r + (k - 1) * j, j * s), start=0)),
]


# ---- checks ----------------------------------------------------------------------------------

def check_conv_output_size(student):
    hint = ("output = floor((size + 2 * padding - span) / stride) + 1, where span = dilation * "
            "(kernel_size - 1) + 1 is the width the kernel covers; // rounds down.")
    cases = [Case("3x3, no padding", (7, 3, 1, 0), hint=hint),
             Case("3x3, padding 1 keeps the size", (32, 3, 1, 1), hint=hint),
             Case("AlexNet conv1 at 227", (227, 11, 4, 2), hint=hint),
             Case("AlexNet conv1 at 224 (torchvision)", (224, 11, 4, 2), hint=hint),
             Case("3x3, stride 2, padding 1 halves it", (32, 3, 2, 1), hint=hint),
             Case("2x2 max-pool, stride 2", (13, 2, 2, 0), hint=hint),
             Case("only size and kernel_size given", (7, 3),
                  hint="call it with only size and kernel_size: stride, padding and dilation "
                       "have the defaults 1, 0 and 1."),
             Case("3x3 with dilation 2 and padding 2 keeps the size", (32, 3, 1, 2, 2), hint=hint),
             Case("dilation 3, stride 2, no padding", (20, 3, 2, 0, 3), hint=hint)]
    return check_function(student, conv_output_size, cases, exercise="Exercise 1 (output size)",
                          slips=SIZE_SLIPS)


def check_conv_cost(student):
    hint = ("each of the out_channels filters has in_channels * k * k weights and 1 bias; every "
            "output value (out_channels * H_out * W_out of them) costs in_channels * k * k MACs.")
    cases = [Case("AlexNet conv1", (3, 64, 11, 56, 56), hint=hint),
             Case("a 3x3 VGG layer", (64, 128, 3, 112, 112), hint=hint),
             Case("a 1x1 convolution", (256, 64, 1, 14, 14), hint=hint),
             Case("non-square output", (8, 16, 5, 10, 20), hint=hint)]
    return check_function(student, conv_cost, cases, exercise="Exercise 2 (parameters and MACs)",
                          output_names=("parameters", "multiply-adds"), slips=COST_SLIPS)


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
                          slips=FIELD_SLIPS)
