"""Font digits: synthetic 8x8 digits in the style of scikit-learn's ``load_digits``, for lesson
06's synthetic-to-real experiment (train on these alone, test on the real handwritten digits).

scikit-learn's digits (the UCI "optdigits" set) were written by hand and scanned as 32x32 black
and white bitmaps, the digit filling the bitmap's height; each bitmap was cut into 64
non-overlapping 4x4 blocks, and each of the 8x8 pixels counts the inked pixels of its block,
0 (blank) to 16 (all ink). This module makes the same kind of picture from printed digits:

1. draw each digit 0-9 once in each text font that ships with matplotlib (those of
   :func:`course_utils.glyphs.font_paths`);
2. per image, pick a font at random and distort the digit: width/height ratio, rotation (up to
   15 degrees either way), shear (-5 to 25 degrees, top to the left: the real digits lean back
   a little more than printed ones), thicker strokes on three images in four (the real digits'
   strokes are thick: about 30 % of their bitmap is ink);
3. scale it to 85-100 % of the bitmap's height, centre it, shift it by up to a pixel, and
   binarise it (ink where more than half a pixel is covered);
4. count the ink of every 4x4 block: an 8x8 image with values 0-16, ink high, like sklearn's.

The gap between these and the real digits (printed vs. handwritten shapes) is the point of the
experiment. Everything comes from one seeded generator: ``generate_font_digits(n, seed)`` always
returns the same images.
"""

import functools

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from course_utils.glyphs import check_int, font_paths, render_characters

DIGITS = "0123456789"
BITMAP_SIZE = 32  # the scanned bitmap of the real digits
BLOCK_SIZE = 4    # 32 / 4 = 8 pixels a side
_MASK_SIZE = 64   # resolution of the clean drawings the distortions start from
# cmmi10 (TeX maths italic) draws old-style figures, whose 3, 4, 5, 7 and 9 hang below the line.
_EXCLUDED_FONTS = ("cmmi10",)


@functools.cache
def _digit_masks() -> torch.Tensor:
    """Every digit in every font, upright and centred, its height half the square's (room to
    rotate and stretch). float32 tensor (num_fonts, 10, 64, 64), 1 where there is ink."""
    fonts = [path for path in font_paths() if path.stem not in _EXCLUDED_FONTS]
    masks = np.zeros((len(fonts), len(DIGITS), _MASK_SIZE, _MASK_SIZE), np.float32)
    for f, path in enumerate(fonts):
        height = max(bitmap.shape[0] for bitmap in render_characters(path, 100, DIGITS))
        pixels = 100 * 0.5 * _MASK_SIZE / height
        for i, bitmap in enumerate(render_characters(path, pixels, DIGITS)):
            h, w = bitmap.shape
            top, left = (_MASK_SIZE - h) // 2, (_MASK_SIZE - w) // 2
            masks[f, i, top:top + h, left:left + w] = bitmap
    return torch.from_numpy(masks)


def _distort(rng: np.random.Generator, masks: torch.Tensor) -> np.ndarray:
    """Randomly stretch, rotate and shear masks (n, R, R) about their centre: (n, R, R)."""
    n = masks.shape[0]
    aspect = np.exp(rng.uniform(-0.25, 0.15, n))
    angle = np.deg2rad(rng.uniform(-15, 15, n))
    shear = np.tan(np.deg2rad(rng.uniform(-5, 25, n)))  # > 0: top to the left
    # Forward map (digit -> image) is rotation @ shear @ stretch; grid_sample needs its inverse.
    cos, sin = np.cos(angle), np.sin(angle)
    a, b = cos * aspect, (cos * shear - sin) / aspect
    c, d = sin * aspect, (sin * shear + cos) / aspect
    det = a * d - b * c
    inverse = np.stack([np.stack([d, -b], 1), np.stack([-c, a], 1)], 1) / det[:, None, None]
    theta = np.concatenate([inverse, np.zeros((n, 2, 1))], axis=2)       # (n, 2, 3), no shift
    theta = torch.from_numpy(theta.astype(np.float32))
    grid = F.affine_grid(theta, (n, 1, _MASK_SIZE, _MASK_SIZE), align_corners=False)
    return F.grid_sample(masks[:, None], grid, align_corners=False)[:, 0].numpy()


def _fit_to_bitmap(ink: np.ndarray, height: float, shift: np.ndarray) -> np.ndarray:
    """Crop one drawing (R, R) to its ink, scale it to ``height`` (a fraction of the bitmap),
    keeping its proportions, centre it, move it by ``shift`` (rows, columns) pixels: (32, 32)."""
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.5), np.flatnonzero(ink.max(axis=0) > 0.5)
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = min(height * BITMAP_SIZE / crop.shape[0], BITMAP_SIZE / crop.shape[1])
    h = max(1, round(crop.shape[0] * scale))
    w = max(1, round(crop.shape[1] * scale))
    resized = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR))
    top = int(np.clip((BITMAP_SIZE - h) // 2 + shift[0], 0, BITMAP_SIZE - h))
    left = int(np.clip((BITMAP_SIZE - w) // 2 + shift[1], 0, BITMAP_SIZE - w))
    bitmap = np.zeros((BITMAP_SIZE, BITMAP_SIZE), np.float32)
    bitmap[top:top + h, left:left + w] = resized
    return bitmap


def _thicken(bitmaps: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Thicker strokes: a maximum over a (width x width) window of each binary bitmap
    (n, S, S) (width 1 leaves it unchanged), the ink spreading down and to the right."""
    out = bitmaps.copy()
    for dy in range(widths.max()):
        for dx in range(widths.max()):
            moved = np.zeros_like(bitmaps)
            moved[:, dy:, dx:] = bitmaps[:, :BITMAP_SIZE - dy, :BITMAP_SIZE - dx]
            selected = (widths > max(dy, dx))[:, None, None]
            out = np.maximum(out, moved * selected)
    return out


def generate_font_digits(num_images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate printed digits in the format of ``sklearn.datasets.load_digits().images``.

    The result depends only on the arguments (not on NumPy's or torch's global random state).
    2,000 images take well under a second.

    Args:
        num_images: how many images to make, a positive integer.
        seed: seed of the random generator, a non-negative integer. Use different seeds for
            training and test data.

    Returns:
        ``(images, labels)``: images is a float64 array (num_images, 8, 8) of whole numbers 0-16,
        the ink in each 4x4 block of a 32x32 bitmap (16: all ink), as sklearn's; labels is an
        int64 array (num_images,) of the digits 0-9, each equally often (up to one image), in
        random order.
    """
    num_images = check_int("num_images", num_images, 1, "a positive integer")
    seed = check_int("seed", seed, 0, "a non-negative integer")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(DIGITS)).astype(np.int64)
    masks = _digit_masks()
    fonts = rng.integers(masks.shape[0], size=num_images)
    drawings = _distort(rng, masks[torch.from_numpy(fonts), torch.from_numpy(labels)])
    heights = rng.uniform(0.85, 1.0, num_images)
    shifts = rng.integers(-1, 2, size=(num_images, 2))
    bitmaps = np.stack([_fit_to_bitmap(drawing, height, shift)
                        for drawing, height, shift in zip(drawings, heights, shifts)])
    bitmaps = (bitmaps > 0.5).astype(np.float32)
    bitmaps = _thicken(bitmaps, rng.choice([1, 2, 2, 3], size=num_images))
    blocks = bitmaps.reshape(num_images, 8, BLOCK_SIZE, 8, BLOCK_SIZE)  # (n, row, 4, col, 4)
    return blocks.sum(axis=(2, 4)).astype(np.float64), labels
