"""Lesson 06 exercises: two augmentations written by hand, the Sobel filter and cutout (part 1,
exercises 2-3).

The references are the package's own (course_utils.augment), which the lesson's pipelines use.
A wrong answer is diagnosed by the exercise's slips, each the reference with one common mistake
(see course_utils.checks.Slip), or by a property of the answer (an exception at the border, the
input changed in place).
"""

from functools import partial

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as v2

from course_utils import augment
from course_utils.augment import SOBEL_MAX_MAGNITUDE, SOBEL_X, SOBEL_Y
from course_utils.checks import Case, Slip, check_function, compare

# ---- reference solutions ---------------------------------------------------------------------

sobel = augment.sobel
cutout = augment.cutout


# ---- exercise 1: the Sobel filter ------------------------------------------------------------

def _step_edge():
    """One RGB image of 6 x 8, dark (0.2) on the left half, bright (0.8) on the right half."""
    images = torch.full((1, 3, 6, 8), 0.2)
    images[..., 4:] = 0.8
    return images


def _sobel_cases():
    random_rgb = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    random_grey = torch.rand(1, 1, 5, 6, generator=torch.Generator().manual_seed(1))
    return [Case("a vertical step edge (one RGB image of 6 x 8)", (_step_edge(),),
                 hint="the only edge is between columns 3 and 4: there gx = 4 * 0.6 = 2.4 and "
                      "gy = 0, so the answer is 2.4 / (4 * sqrt(2)) = 0.424 in columns 3 and 4 "
                      "and 0 everywhere else, the image's own border included."),
            Case("2 random RGB images of 7 x 9", (random_rgb,),
                 hint="compare your luminance with v2.functional.rgb_to_grayscale(images), then "
                      "your gx and gy with F.conv2d of it, padded, with SOBEL_X and SOBEL_Y."),
            Case("one random grey image of 5 x 6", (random_grey,),
                 hint="a grey image is its own luminance: with one channel there is nothing to "
                      "convert, and the answer has one channel too (avoid squeeze(), which would "
                      "drop the batch and channel axes of size 1).")]


def check_sobel(student):
    # 1e-3: a luminance of 0.299 R + 0.587 G + 0.114 B (the rounded weights) is right too.
    return check_function(student, sobel, _sobel_cases(), exercise="Exercise 2 (Sobel filter)",
                          atol=1e-3, slips=SOBEL_SLIPS)


def _sobel_variant(images, *, grey="luminance", padding="replicate", kernels="x and y",
                   magnitude="sqrt", scale=True, channels="repeat"):
    """sobel of a batch (N, C, H, W) with one thing changed (the defaults give the reference)."""
    n, c, h, w = images.shape
    if grey == "each channel":                          # every channel filtered on its own
        luminance = images.reshape(n * c, 1, h, w)
    elif grey == "mean":
        luminance = images.mean(dim=1, keepdim=True)
    else:
        luminance = images if c == 1 else v2.functional.rgb_to_grayscale(images)   # (N, 1, H, W)
    if padding == "replicate":
        luminance = F.pad(luminance, (1, 1, 1, 1), mode="replicate")
    elif padding == "zeros":
        luminance = F.pad(luminance, (1, 1, 1, 1))
    weights = torch.stack([SOBEL_X, SOBEL_Y])[:, None]                  # (2, 1, 3, 3)
    gx, gy = F.conv2d(luminance, weights).unbind(dim=1)                 # (N, H, W) each
    if kernels == "x only":
        gy = torch.zeros_like(gy)
    edges = (gx.square() + gy.square()).sqrt() if magnitude == "sqrt" else gx.abs() + gy.abs()
    if scale:
        edges = edges / SOBEL_MAX_MAGNITUDE
    edges = edges[:, None]                                              # (N, 1, H', W')
    if grey == "each channel":
        return edges.reshape(n, c, *edges.shape[2:])
    return edges.expand(-1, c, -1, -1) if channels == "repeat" else edges


def _no_padding_hint(images):
    n, c, h, w = images.shape
    return (f"your edges are ({n}, {c}, {h - 2}, {w - 2}), one pixel short on every side: a 3 x 3 "
            f"kernel slid over a {h} x {w} image without padding fits in {h - 2} x {w - 2} places. "
            f"Pad the luminance by one pixel first, repeating the edge pixels: "
            f"F.pad(grey, (1, 1, 1, 1), mode='replicate').")


def _one_channel_hint(images):
    c = images.shape[1]
    return (f"your edges have one channel; the image has {c}: repeat the edges on every channel "
            f"(edges.expand(-1, {c}, -1, -1), or .repeat(1, {c}, 1, 1)), so that the result has "
            f"the image's shape and can replace it in an augmentation pipeline.")


# A flipped kernel is no slip: conv2d computes a cross-correlation, so flipping SOBEL_X (or
# using the true convolution) only changes the sign of gx, and swapping the two kernels swaps
# gx and gy; the magnitude sqrt(gx**2 + gy**2) is the same either way, so the answer is right.
SOBEL_SLIPS = [
    Slip("zero padding",
         "your edges light up along the image's border, where the image is flat: padding with "
         "zeros (F.pad's default, or conv2d's padding=1) puts a black frame around the image, and "
         "the step from black to the border pixels is an edge. Pad by repeating the edge pixels, "
         "F.pad(grey, (1, 1, 1, 1), mode='replicate'), then conv2d without padding.",
         partial(_sobel_variant, padding="zeros")),
    Slip("no padding", _no_padding_hint, partial(_sobel_variant, padding="none")),
    Slip("x kernel only",
         "only left-to-right changes show: SOBEL_X finds vertical edges, and horizontal ones need "
         "SOBEL_Y, which looks from top to bottom. The magnitude combines both, "
         "sqrt(gx**2 + gy**2) (the step edge passed because it has no horizontal edge).",
         partial(_sobel_variant, kernels="x only")),
    Slip("|gx| + |gy|",
         "|gx| + |gy| is a cheap stand-in for the gradient's length and too large on slanted "
         "edges (by up to sqrt(2)): the magnitude is the length of the vector (gx, gy), "
         "sqrt(gx**2 + gy**2).", partial(_sobel_variant, magnitude="abs sum")),
    Slip("not scaled",
         "your edges go above 1: a Sobel response reaches 4 (1 + 2 + 1 times a step of 1), so the "
         "magnitude reaches 4 * sqrt(2); divide by SOBEL_MAX_MAGNITUDE = 4 * sqrt(2) to get an "
         "image in [0, 1], as every augmentation must return.",
         partial(_sobel_variant, scale=False)),
    Slip("mean of the channels",
         "the channels were averaged with equal weights: the luminance weighs them as the eye "
         "does, 0.2989 R + 0.587 G + 0.114 B (v2.functional.rgb_to_grayscale), so a green edge "
         "counts five times as much as a blue one.", partial(_sobel_variant, grey="mean")),
    Slip("each channel on its own",
         "each colour channel got its own edges: compute the edges once, on the luminance "
         "(0.2989 R + 0.587 G + 0.114 B), and repeat them on every channel, so that the result "
         "is a grey edge image.", partial(_sobel_variant, grey="each channel")),
    Slip("one channel", _one_channel_hint, partial(_sobel_variant, channels="one")),
]


# ---- exercise 2: cutout ----------------------------------------------------------------------

def _distinct_images(n, c, h, w):
    """Images with no 0 in them (0.01 to 1, every pixel different), so any pixel set to 0 shows."""
    return torch.linspace(0.01, 1.0, n * c * h * w).reshape(n, c, h, w)


def _cutout_cases():
    return [Case("a 3 x 3 square inside 2 RGB images of 6 x 8",
                 (_distinct_images(2, 3, 6, 8), 3), {"top": 1, "left": 4},
                 hint="the square covers rows top .. top + size - 1 = 1 .. 3 and columns "
                      "left .. left + size - 1 = 4 .. 6, on every channel of every image; all "
                      "other pixels are copied unchanged."),
            Case("a 4 x 4 square that runs past the bottom-right corner",
                 (_distinct_images(1, 1, 6, 6), 4), {"top": 3, "left": 4},
                 hint="rows 3 .. 6 and columns 4 .. 7, of which rows 3 .. 5 and columns 4 .. 5 "
                      "are inside the 6 x 6 image: only those are set to 0."),
            Case("a 4 x 4 square that starts above and left of the image",
                 (_distinct_images(1, 1, 6, 6), 4), {"top": -2, "left": -1},
                 hint="top = -2 and left = -1: the square covers rows -2 .. 1 and columns "
                      "-1 .. 2, so rows 0 .. 1 and columns 0 .. 2 of the image are set to 0."),
            Case("one place per image, 3 grey images of 5 x 5",
                 (_distinct_images(3, 1, 5, 5), 2),
                 {"top": torch.tensor([0, 3, 1]), "left": torch.tensor([2, 0, 3])},
                 hint="here top and left hold one number per image: image i's square starts at "
                      "row top[i], column left[i]. torch.as_tensor(top).expand(N) gives N "
                      "numbers whether you were given one or N; then loop over the images.")]


def check_cutout(student):
    return check_function(student, cutout, _cutout_cases(), exercise="Exercise 3 (cutout)",
                          diagnose=_diagnose_cutout, slips=CUTOUT_SLIPS)


def _cutout_variant(images, size, *, top, left, extra=0, swapped=False, clip_negative=True,
                    clip="slice"):
    """cutout of a batch (N, C, H, W) with one thing changed (the defaults give the reference)."""
    result = images.clone()
    tops = torch.as_tensor(top).reshape(-1).expand(len(images))
    lefts = torch.as_tensor(left).reshape(-1).expand(len(images))
    for image, row, column in zip(result, tops.tolist(), lefts.tolist()):
        if swapped:
            row, column = column, row
        if clip_negative:  # a negative start would count from the end of the axis
            row, column = max(row, 0), max(column, 0)
        end_row, end_column = row + size + extra, column + size + extra
        if clip == "none":  # a whole size x size square of zeros, assigned into the image
            image[:, row:end_row, column:end_column] = torch.zeros(len(image), size, size)
        else:
            image[:, row:end_row, column:end_column] = 0
    return result


NOT_CLIPPED = ("the square runs past the image here, and your code needs all of it inside: "
               "only the part that overlaps the image can be set to 0. Slicing clips by itself "
               "(images[..., top:top + size, ...] stops at the border), so assign the number 0 to "
               "the slice rather than a size x size block of zeros, and start the slice at "
               "max(top, 0).")
IN_PLACE = ("your answer is right, but you set the pixels to 0 in the tensor you were given, so "
            "the caller's images changed too: in a pipeline, the data set's own images would "
            "lose a square at every epoch. Work on a copy, images.clone(), and return it.")
RETURNED_NOTHING = ("your function returned None: return the copy of the images with the square "
                    "set to 0 (and leave the images you were given unchanged).")

CUTOUT_SLIPS = [
    Slip("one pixel too many",
         "your square is size + 1 pixels wide: a slice stops before its end, so rows top .. "
         "top + size - 1 are images[..., top:top + size, :], exactly size rows (and the same for "
         "the columns).", partial(_cutout_variant, extra=1)),
    Slip("top and left swapped",
         "your square is at the mirror place, rows and columns swapped: top is a row (axis -2, "
         "the height), left a column (axis -1, the width).",
         partial(_cutout_variant, swapped=True)),
    Slip("negative start wraps",
         "nothing was set to 0 near the top or left edge: a slice that starts at a negative "
         "number counts from the end of the axis (images[..., -2:2, :] is empty), so a square "
         "that starts above or left of the image must start at max(top, 0) and max(left, 0).",
         partial(_cutout_variant, clip_negative=False)),
    Slip("not clipped", NOT_CLIPPED, partial(_cutout_variant, clip="none")),
]


def _runs_past_the_image(case) -> bool:
    images, size = case.args
    height, width = images.shape[-2:]
    tops = torch.as_tensor(case.kwargs["top"]).reshape(-1)
    lefts = torch.as_tensor(case.kwargs["left"]).reshape(-1)
    return bool((tops < 0).any() or (lefts < 0).any() or (tops + size > height).any()
                or (lefts + size > width).any())


def _diagnose_cutout(case, expected, got):
    """An exception where the square crosses the border, nothing returned, or the input changed."""
    if isinstance(got, Exception):
        return NOT_CLIPPED if _runs_past_the_image(case) else None
    if got is None:
        return RETURNED_NOTHING
    if compare(expected, got) is None:  # a right answer fails only when the input was changed
        return IN_PLACE
    return None
