"""Lesson 05 exercises 1-3: cutting images into patches and back, and the patch embedding as a
convolution.

The references are the package's own code (course_utils.vit) where it has it; the convolution,
which the package builds inside PatchEmbedding, is written out here. A wrong answer is diagnosed
by the exercise's slips, each the reference with one common mistake (see course_utils.checks.Slip),
or by a property of the answer (a wrong shape, a constant offset).
"""

import copy
import math
from dataclasses import replace
from functools import partial

import torch
from torch import nn

from course_utils import vit
from course_utils.checks import (Case, Slip, check_function, describe_value, report, run_check,
                                 seeded)

# ---- reference solutions ---------------------------------------------------------------------

patchify = vit.patchify
unpatchify = vit.unpatchify


def conv_from_linear(linear: nn.Linear, patch_size: int, in_channels: int) -> nn.Conv2d:
    """The convolution that applies ``linear`` to every patch: kernel = stride = patch_size.

    Each row of ``linear.weight`` (dim, C * p * p) lists a patch's values in patchify's order,
    channel first, which is a kernel's layout (C, p, p): the weight is only reshaped.
    """
    dim = linear.out_features
    conv = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(dim, in_channels, patch_size, patch_size))
        conv.bias.copy_(linear.bias)
    return conv


# ---- exercise 1: patchify --------------------------------------------------------------------

def _numbered_images(n, c, h, w):
    """Images holding 0, 1, 2, ... in memory order, so that any pixel moved shows."""
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w)


def check_patchify(student):
    cases = [Case("2 RGB images of 8 x 8, patches of 4", (_numbered_images(2, 3, 8, 8), 4),
                  hint="the pixels hold 0, 1, 2, ...: patch 0 of image 0 is "
                       "images[0, :, :4, :4].flatten(), which starts 0, 1, 2, 3, 8, 9, 10, 11; "
                       "compare your patches[0, 0] with it."),
             Case("one grey image of 6 x 6, patches of 2", (_numbered_images(1, 1, 6, 6), 2),
                  hint="one image of one channel, a 3 x 3 grid of patches: the answer is "
                       "(1, 9, 4). Take C from images.shape (here 1) instead of assuming 3 "
                       "colour channels, and avoid squeeze(), which drops the axes of size 1."),
             Case("2 RGB images of 8 x 12 (wider than tall), patches of 4",
                  (_numbered_images(2, 3, 8, 12), 4),
                  hint="8 x 12 images are 2 rows of 3 patches, P = 6: the rows come from H, "
                       "the columns from W.")]
    return check_function(student, patchify, cases, exercise="Exercise 1 (patchify)",
                          diagnose=_diagnose_patchify, slips=PATCHIFY_SLIPS)


_PATCH_LAYOUTS = {"C, p, p": ["C", "y", "x"], "p, p, C": ["y", "x", "C"],
                  "transposed": ["C", "x", "y"]}  # y: row within a patch, x: column within it
_GRID_ORDERS = {"row by row": ["rows", "columns"], "column by column": ["columns", "rows"]}


def _patchify_variant(images, patch_size, *, permute=True, order="row by row", layout="C, p, p",
                      columns_from="W"):
    """patchify with one thing changed (the defaults give the reference)."""
    n, c, h, w = images.shape
    p = patch_size
    rows, columns = h // p, (w if columns_from == "W" else h) // p
    if not permute:
        return images.reshape(n, rows * columns, c * p * p)
    grid = images.reshape(n, c, rows, p, columns, p)
    axes = ["N", "C", "rows", "y", "columns", "x"]
    wanted = ["N"] + _GRID_ORDERS[order] + _PATCH_LAYOUTS[layout]
    return grid.permute(*[axes.index(axis) for axis in wanted]).reshape(n, rows * columns, c * p * p)


PATCHIFY_SLIPS = [
    Slip("reshape without permute",
         "a plain reshape takes the pixels in memory order, so each 'patch' is a strip of whole "
         "image rows, not a p x p square: split H into (rows, p) and W into (columns, p), and "
         "permute the axes before the final reshape.",
         partial(_patchify_variant, permute=False)),
    Slip("channels last",
         "each patch is flattened pixel by pixel, the C values of one pixel together (p, p, C); "
         "flatten it channel first, (C, p, p): all of channel 0's p x p values, then channel 1's, "
         "the layout of a convolution's kernel.", partial(_patchify_variant, layout="p, p, C")),
    Slip("column by column",
         "the patches are numbered column by column (down the first column first); number them "
         "row by row, left to right, as text is read: the second patch is to the right of the "
         "first.",
         partial(_patchify_variant, order="column by column")),
    Slip("patch transposed",
         "each patch is transposed: its rows and columns are swapped. Keep the two pixel axes in "
         "the image's order, row within the patch, then column within the patch.",
         partial(_patchify_variant, layout="transposed")),
    Slip("grid from H only",
         "the number of patches per row was taken from H: an image that is not square has "
         "H / p rows and W / p columns of patches.",
         partial(_patchify_variant, columns_from="H")),
]


def _diagnose_patchify(case, expected, got):
    """A wrong shape, told with the case's numbers."""
    if not isinstance(got, torch.Tensor) or got.shape == expected.shape:
        return None
    (n, c, h, w), p = case.args[0].shape, case.args[1]
    _, count, size = expected.shape
    if tuple(got.shape) == (n, size, count):
        return (f"the last two axes are swapped: yours is (N, C * p * p, P) = {tuple(got.shape)}, "
                f"as F.unfold returns it; transpose(1, 2) gives (N, P, C * p * p).")
    return (f"the answer is (N, P, C * p * p) = ({n}, {count}, {size}): P = ({h} / {p}) * "
            f"({w} / {p}) = {count} patches per image, each of C * p * p = {c} * {p} * {p} = "
            f"{size} values; yours is {tuple(got.shape)}.")


# ---- exercise 2: unpatchify ------------------------------------------------------------------

def check_unpatchify(student):
    random_images = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    cases = [Case("4 patches of 4 x 4 from 2 RGB images of 8 x 8",
                  (patchify(_numbered_images(2, 3, 8, 8), 4), 4),
                  hint="patches[0, 1] is the second patch of the top row of a 2 x 2 grid: it "
                       "belongs in images[0, :, :4, 4:]; check where yours put it."),
             Case("9 patches of 2 x 2 from one grey image of 6 x 6",
                  (patchify(_numbered_images(1, 1, 6, 6), 2), 2),
                  hint="9 patches of 4 values with p = 2 are a 3 x 3 grid of one channel: one "
                       "image (1, 1, 6, 6); avoid squeeze(), which drops the axes of size 1."),
             Case("9 patches of 4 x 4 from 3 random RGB images of 12 x 12",
                  (patchify(random_images, 4), 4),
                  hint="unpatchify(patchify(images, p), p) must give the images back exactly.")]
    return check_function(student, unpatchify, cases, exercise="Exercise 2 (unpatchify)",
                          diagnose=_diagnose_unpatchify, slips=UNPATCHIFY_SLIPS)


def _unpatchify_variant(patches, patch_size, *, permute=True, order="row by row",
                        layout="C, p, p", side="sqrt(P) * p", channels="size / p^2"):
    """unpatchify with one thing changed (the defaults give the reference)."""
    n, count, size = patches.shape
    p = patch_size
    grid_side = math.isqrt(count)
    c = size // (p * p) if channels == "size / p^2" else size // p
    image_side = grid_side * p if side == "sqrt(P) * p" else grid_side
    if not permute:
        return patches.reshape(n, c, image_side, image_side)
    axes = ["N"] + _GRID_ORDERS[order] + _PATCH_LAYOUTS[layout]
    sizes = {"N": n, "rows": grid_side, "columns": grid_side, "C": c, "y": p, "x": p}
    grid = patches.reshape(*[sizes[axis] for axis in axes])
    wanted = ["N", "C", "rows", "y", "columns", "x"]
    return grid.permute(*[axes.index(axis) for axis in wanted]).reshape(n, c, image_side, image_side)


def _permute_reused(patches, patch_size):
    """unpatchify written with patchify's permute instead of its inverse."""
    n, count, size = patches.shape
    side, c = math.isqrt(count), size // (patch_size * patch_size)
    grid = patches.reshape(n, side, side, c, patch_size, patch_size).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(n, c, side * patch_size, side * patch_size)


def _side_hint(patches, patch_size):
    grid_side = math.isqrt(patches.shape[1])
    return (f"the image's side is the number of patches per row times the patch size: "
            f"sqrt({patches.shape[1]}) * {patch_size} = {grid_side * patch_size} pixels, not "
            f"sqrt(P) = {grid_side}.")


def _channels_hint(patches, patch_size):
    size = patches.shape[2]
    return (f"each patch holds C * p * p values, so C = {size} / ({patch_size} * {patch_size}) = "
            f"{size // patch_size ** 2}; dividing by p once gives {size // patch_size}.")


UNPATCHIFY_SLIPS = [
    Slip("reshape without permute",
         "a plain reshape lays each patch's values out as consecutive pixels of the image, in "
         "strips: view the patches as (N, rows, columns, C, p, p) and permute the axes to "
         "(N, C, rows, p, columns, p) before the final reshape.",
         partial(_unpatchify_variant, permute=False)),
    Slip("channels last",
         "each patch's values were read as (p, p, C), the C values of a pixel together; "
         "patchify flattens a patch channel first, (C, p, p), so read it back that way.",
         partial(_unpatchify_variant, layout="p, p, C")),
    Slip("column by column",
         "the patches were placed column by column; they are numbered row by row, left to "
         "right: the second patch goes to the right of the first, not below it.",
         partial(_unpatchify_variant, order="column by column")),
    Slip("patch transposed",
         "each patch came back transposed (its rows and columns swapped): in (N, rows, "
         "columns, C, p, p) the first p is the row within the patch, the second the column.",
         partial(_unpatchify_variant, layout="transposed")),
    Slip("patchify's permute reused",
         "that is patchify's permute, (0, 2, 4, 1, 3, 5), applied again: undoing a permute needs "
         "its inverse. Your grid is (N, rows, columns, C, p, p); ask where each axis of the "
         "image (N, C, rows, p, columns, p) sits in it: permute(0, 3, 1, 4, 2, 5).",
         _permute_reused),
    Slip("side sqrt(P)", _side_hint, partial(_unpatchify_variant, side="sqrt(P)")),
    Slip("channels size / p", _channels_hint, partial(_unpatchify_variant, channels="size / p")),
]


def _diagnose_unpatchify(case, expected, got):
    """A wrong shape, told with the case's numbers."""
    if not isinstance(got, torch.Tensor) or got.shape == expected.shape:
        return None
    patches, p = case.args
    n, c, side, _ = expected.shape
    return (f"the answer is (N, C, H, W) = {tuple(expected.shape)}: {patches.shape[1]} patches "
            f"form a {side // p} x {side // p} grid of {p} x {p} pixels, and {patches.shape[2]} "
            f"values per patch are {c} channel(s) of {p} x {p}; yours is {tuple(got.shape)}.")


# ---- exercise 3: the patch embedding as a convolution ----------------------------------------

def _linear_and_images(in_channels, patch_size, dim, count, side, seed):
    """A linear layer on flattened patches and images to run it on, the same at every call.

    The cases' own seeds (for a learner's conv left with its random weights) are other numbers:
    a fresh Conv2d drawn from the linear layer's seed would have its very weights."""
    with seeded(100 + seed):  # the notebook's random numbers go on as they were
        linear = nn.Linear(in_channels * patch_size * patch_size, dim)
        images = torch.randn(count, in_channels, side, side)
    return linear, patch_size, in_channels, images


class WrongConvolution(Exception):
    """The returned module is not a convolution over patches; ``hint`` says what to change."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _check_is_patch_convolution(conv, linear, patch_size, in_channels, images):
    p, dim = patch_size, linear.out_features
    if not isinstance(conv, nn.Conv2d):
        raise WrongConvolution(
            f"conv_from_linear returned {describe_value(conv)}, not an nn.Conv2d",
            "is the return statement missing?" if conv is None else
            "build an nn.Conv2d, copy the linear layer's parameters into it and return it.")
    if (conv.in_channels, conv.out_channels) != (in_channels, dim):
        raise WrongConvolution(
            f"the Conv2d maps {conv.in_channels} channel(s) to {conv.out_channels}",
            f"it must take the images' {in_channels} channel(s) to the linear layer's {dim} "
            f"outputs (linear.out_features), one output channel per output.")
    if tuple(conv.kernel_size) != (p, p):
        raise WrongConvolution(
            f"the Conv2d's kernel is {conv.kernel_size[0]} x {conv.kernel_size[1]}",
            f"each output must see exactly one whole patch: a {p} x {p} kernel.")
    if conv.padding != (0, 0):  # a tuple of numbers, or a string such as "same"
        raise WrongConvolution(
            f"the Conv2d pads the images (padding={conv.padding!r})",
            "with padding the windows straddle the patches' borders; the patches tile the image "
            "exactly, so no padding is needed.")
    if tuple(conv.stride) != (p, p):
        h, w = images.shape[-2:]
        rows, columns = (h - p) // conv.stride[0] + 1, (w - p) // conv.stride[1] + 1
        raise WrongConvolution(
            f"the Conv2d's stride is {tuple(conv.stride)}, so its {p} x {p} windows "
            f"{'overlap' if min(conv.stride) < p else 'skip pixels'}: each {h} x {w} image gives "
            f"{rows} x {columns} = {rows * columns} outputs instead of its {h // p} x {w // p} = "
            f"{(h // p) * (w // p)} patches",
            "the windows must tile the image, one per patch: the stride is the patch size.")


def _patch_tokens_of(make_conv):
    """The tokens (N, P, dim) that ``make_conv``'s convolution gives on a case's images,
    flattened as PatchEmbedding does (``make_conv`` is called like conv_from_linear)."""
    def run(linear, patch_size, in_channels, images):
        # A copy: an attempt that edits the linear layer leaves the case's own as it was.
        conv = make_conv(copy.deepcopy(linear), patch_size, in_channels)
        _check_is_patch_convolution(conv, linear, patch_size, in_channels, images)
        with torch.no_grad():
            return conv(images).flatten(2).transpose(1, 2)
    return run


def _linear_on_patches(linear, patch_size, in_channels, images):
    """What the convolution must compute: the linear layer on every flattened patch."""
    with torch.no_grad():
        return linear(patchify(images, patch_size))


def check_conv_from_linear(student):
    hint = ("the Conv2d's output at each patch must be linear(patchify(images, p)) there: "
            "compare conv.weight.flatten(1) with linear.weight, and conv.bias with linear.bias "
            "(each pair must be equal).")
    cases = [Case("2 RGB images of 8 x 8, patches of 4, dim 6", _linear_and_images(3, 4, 6, 2, 8, 0),
                  hint=hint, seed=0),
             Case("one grey image of 6 x 6, patches of 2, dim 5",
                  _linear_and_images(1, 2, 5, 1, 6, 1), hint=hint, seed=1),
             Case("3 two-channel images of 12 x 12, patches of 3, dim 4",
                  _linear_and_images(2, 3, 4, 3, 12, 2), hint=hint, seed=2)]
    exercise = "Exercise 3 (conv from linear)"
    if student is conv_from_linear or not callable(student):
        result = run_check(student, conv_from_linear, cases, exercise=exercise)
    else:
        slips = [replace(slip, fn=_patch_tokens_of(slip.fn)) for slip in CONV_SLIPS]
        result = run_check(_patch_tokens_of(student), _linear_on_patches, cases, exercise=exercise,
                           diagnose=_diagnose_conv, slips=slips)
        raised = f"your code raised {WrongConvolution.__name__}: "
        if result.message.startswith(raised):  # the check found it, not the learner's code
            result = replace(result, message="the returned module is not the patch convolution: "
                                             + result.message.removeprefix(raised))
    report(result)
    return student if result.passed else conv_from_linear


def _conv_variant(linear, patch_size, in_channels, *, kernel="C, p, p", copy_parameters=True):
    """conv_from_linear with one thing changed (the defaults give the reference)."""
    dim, p, c = linear.out_features, patch_size, in_channels
    conv = nn.Conv2d(c, dim, kernel_size=p, stride=p)
    if copy_parameters:
        kernels = {"C, p, p": lambda w: w.reshape(dim, c, p, p),
                   "p, p, C": lambda w: w.reshape(dim, p, p, c).permute(0, 3, 1, 2),
                   "transposed": lambda w: w.reshape(dim, c, p, p).transpose(2, 3),
                   "weight.T": lambda w: w.T.reshape(dim, c, p, p)}
        with torch.no_grad():
            conv.weight.copy_(kernels[kernel](linear.weight))
            conv.bias.copy_(linear.bias)
    return conv


CONV_SLIPS = [  # each builds a convolution, like conv_from_linear; the check runs it on the images
    Slip("kernel channels last",
         "the kernels' values are in the wrong order: each row of linear.weight lists a patch "
         "as patchify flattens it, channel first (C, p, p), which is already a kernel's layout; "
         "reading it as (p, p, C) mixes the channels.",
         partial(_conv_variant, kernel="p, p, C")),
    Slip("kernel transposed",
         "each p x p kernel is transposed (its rows and columns swapped): the pixel at row i, "
         "column j of a patch gets the weight meant for row j, column i. Reshape linear.weight "
         "to (dim, C, p, p) without a transpose.", partial(_conv_variant, kernel="transposed")),
    Slip("weight.T",
         "nn.Linear stores its weight as (out_features, in_features) = (dim, C * p * p), one row "
         "per output: reshape linear.weight itself, not linear.weight.T.",
         partial(_conv_variant, kernel="weight.T")),
    Slip("weights not copied",
         "the Conv2d still has its own random weights and bias: copy the linear layer's into it "
         "(under torch.no_grad()).", partial(_conv_variant, copy_parameters=False)),
]

NO_BIAS = ("every output is off by minus the linear layer's bias, the same at every patch: the "
           "Conv2d has no bias (bias=False) or a zero one; give it linear.bias.")
BIAS_NOT_COPIED = ("the weights are right, but each output feature is off by the same amount at "
                   "every patch: the Conv2d kept its own random bias; copy linear.bias into it.")


WEIGHT_NOT_RESHAPED = ("linear.weight has shape (dim, C * p * p) and a Conv2d's weight (dim, C, "
                       "p, p): reshape linear.weight to the kernel's shape before copying it in.")


def _diagnose_conv(case, expected, got):
    """What is wrong with the returned module itself, or a bias left out (a constant offset)."""
    if isinstance(got, WrongConvolution):
        return got.hint
    if isinstance(got, RuntimeError) and ("must match the size" in str(got)
                                          or "at least three dimensions" in str(got)):
        return WEIGHT_NOT_RESHAPED
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    offset = got - expected                                           # (N, P, dim)
    if torch.allclose(offset, offset[:1, :1].expand_as(offset), atol=1e-5):
        bias = case.args[0].bias
        return NO_BIAS if torch.allclose(offset[0, 0], -bias, atol=1e-5) else BIAS_NOT_COPIED
    return None
