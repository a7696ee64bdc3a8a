"""Glyphs: the course's own synthetic image-classification dataset of capital letters.

Each image is a small RGB picture (32 x 32 by default) of one capital letter A-Z; the label is
the letter's position in the alphabet (A = 0, ..., Z = 25). The pictures are *made*, not
photographed: a program draws every one of them.

Why synthetic data? Collecting and labelling real pictures is slow and expensive. When we know
how the pictures come about, we can generate as many as we like, and the labels are correct by
construction, because we chose the letter before drawing it. The price is the "reality gap": a
network learns exactly the variation we put in and nothing more. That is why the generator
piles on randomness, so a model cannot succeed by memorising one clean drawing per letter:

* the shape: about 20 fonts that ship with matplotlib (sans-serif, serif, monospace, bold,
  italic and the TeX "Computer Modern" faces), each drawn once at high resolution;
* the geometry: a random size (60-100 % of the frame), width/height ratio, rotation (up to
  20 degrees either way), shear (up to 15 degrees) and shift of a few pixels;
* the background: a random crop of a real photograph or texture bundled with scikit-image,
  scikit-learn or matplotlib (cat, coffee cup, astronaut, bricks, grass, gravel, ...), randomly
  mirrored, tinted and with its contrast reduced;
* the colour: a random letter colour, pushed lighter or darker when needed so that it stands out
  from the background behind it;
* the camera: a Gaussian blur of random strength on about a third of the images, and a little
  pixel noise on all of them.

Everything comes from one seeded random generator, so ``generate_glyphs(n, seed)`` returns the
same images every time, in every process: use different seeds for the training and test sets.
"""

import functools
import pathlib

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ft2font import FT2Font
from PIL import Image

from course_utils.photos import load_photos

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# matplotlib fonts without ordinary Latin capitals: maths symbols and big delimiters (cmex10,
# cmsy10, STIXSiz*, STIXNonUni*), a placeholder font (LastResort) and the "Display" fonts,
# which only hold a few glyphs.
_EXCLUDED_FONTS = ("cmex10", "cmsy10", "STIXSiz", "STIXNonUni", "LastResort", "Display")
# "text" and "page" are printed text: a crop of them would show other letters next to ours.
_EXCLUDED_BACKGROUNDS = ("text", "page")
_CHUNK = 1024  # images drawn at once, to bound memory (fixed: the random draws go chunk by chunk)


def check_int(name: str, value, minimum: int, allowed: str) -> int:
    """``value`` as an int when it is a whole number >= ``minimum``, else a ValueError saying
    what ``name`` must be (``allowed``, e.g. "a positive integer")."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return int(value)


def render_characters(path: pathlib.Path, pixels: float,
                      characters: str = LETTERS) -> list[np.ndarray]:
    """Draw each of ``characters`` in one font, cropped to its ink: one (h, w) float32 array in
    [0, 1] per character, (0, 0) for a character the font leaves blank."""
    font = FT2Font(str(path))
    font.set_size(pixels, 72)  # at 72 dpi one point is one pixel
    bitmaps = []
    for character in characters:
        font.set_text(character)
        font.draw_glyphs_to_bitmap(antialiased=True)
        ink = np.asarray(font.get_image(), dtype=np.float32) / 255
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        if rows.size == 0:
            bitmaps.append(np.zeros((0, 0), np.float32))
        else:
            bitmaps.append(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    return bitmaps


@functools.cache
def _usable_fonts() -> tuple[pathlib.Path, ...]:
    folder = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    usable = []
    for path in sorted(folder.glob("*.ttf")):
        if any(part in path.name for part in _EXCLUDED_FONTS):
            continue
        charmap = FT2Font(str(path)).get_charmap()
        if not all(ord(letter) in charmap for letter in LETTERS):
            continue
        bitmaps = render_characters(path, 24)
        # Every letter must leave ink, and placeholder fonts draw the same box for all of them.
        distinct = {(b.shape, b.tobytes()) for b in bitmaps}
        if all(b.size > 0 for b in bitmaps) and len(distinct) == len(LETTERS):
            usable.append(path)
    return tuple(usable)


def font_paths() -> list[pathlib.Path]:
    """matplotlib's bundled text fonts that draw all 26 Latin capitals, sorted by file name."""
    return list(_usable_fonts())


def glyph_masks(resolution: int = 64) -> torch.Tensor:
    """The generator's raw material: every letter in every font of :func:`font_paths`, drawn
    once, upright and centred, before any randomness.

    Returns:
        float32 tensor (num_fonts, 26, resolution, resolution), 1 where there is ink (a copy).
    """
    resolution = check_int("resolution", resolution, 16, "an integer >= 16")
    return _glyph_masks(resolution).clone()


@functools.cache
def _glyph_masks(resolution: int) -> torch.Tensor:
    """Every (font, letter) pair drawn once, centred in a square.

    Returns:
        float32 tensor of shape (num_fonts, 26, resolution, resolution), 1 where there is ink.
    """
    fonts = _usable_fonts()
    masks = np.zeros((len(fonts), len(LETTERS), resolution, resolution), np.float32)
    for f, path in enumerate(fonts):
        probe = render_characters(path, 100)
        cap_height = probe[LETTERS.index("H")].shape[0]
        largest = max(max(bitmap.shape) for bitmap in probe)
        # Same capital height in every font (so "I" stays narrow and "W" wide), but nothing
        # may touch the border of the square.
        pixels = 100 * min(0.72 * resolution / cap_height, 0.94 * resolution / largest)
        for i, bitmap in enumerate(render_characters(path, pixels)):
            h, w = bitmap.shape
            top, left = (resolution - h) // 2, (resolution - w) // 2
            masks[f, i, top:top + h, left:left + w] = bitmap
    return torch.from_numpy(masks)


@functools.cache
def _background_pool(image_size: int) -> tuple[np.ndarray, ...]:
    """Each bundled photo and texture shrunk so its short side is 2 or 4 frames long.

    At these scales a crop of ``image_size`` pixels shows recognisable structure (fur, bricks,
    an edge of a cup) rather than a flat patch of colour. Returns float32 (H, W, 3) arrays in
    [0, 1].
    """
    pool = []
    for name, photo in load_photos().items():
        if name in _EXCLUDED_BACKGROUNDS:
            continue
        for frames in (2, 4):
            scale = frames * image_size / min(photo.shape[:2])
            size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
            resized = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
            resized = resized.astype(np.float32) / 255
            resized.setflags(write=False)
            pool.append(resized)
    return tuple(pool)


def _letter_alphas(rng: np.random.Generator, masks: torch.Tensor, image_size: int) -> np.ndarray:
    """Randomly scale, stretch, rotate, shear and shift masks (n, R, R) into (n, S, S) float32."""
    n = masks.shape[0]
    scale = rng.uniform(0.6, 1.0, n)
    aspect = np.exp(rng.uniform(-0.15, 0.15, n))
    angle = np.deg2rad(rng.uniform(-20, 20, n))
    shear = np.tan(np.deg2rad(rng.uniform(-15, 15, n)))
    shift = rng.uniform(-0.12, 0.12, (n, 2))  # in units of half the frame
    # Forward map (letter -> image) is rotation @ shear @ scaling; grid_sample needs its inverse.
    sx, sy = scale * aspect, scale / aspect
    cos, sin = np.cos(angle), np.sin(angle)
    a, b = cos * sx, (cos * shear - sin) * sy
    c, d = sin * sx, (sin * shear + cos) * sy
    det = a * d - b * c
    # Draw at twice the final size and average 2x2 blocks: cheap anti-aliasing.
    size = 2 * image_size
    centres = ((2 * np.arange(size) + 1) / size - 1).astype(np.float32)
    x = centres[None, None, :] - shift[:, 0, None, None].astype(np.float32)
    y = centres[None, :, None] - shift[:, 1, None, None].astype(np.float32)
    inverse = (np.stack([d, -b, -c, a], axis=1) / det[:, None]).astype(np.float32)
    inverse = inverse[:, :, None, None]
    grid = np.empty((n, size, size, 2), np.float32)
    grid[..., 0] = inverse[:, 0] * x + inverse[:, 1] * y
    grid[..., 1] = inverse[:, 2] * x + inverse[:, 3] * y
    sampled = F.grid_sample(masks[:, None], torch.from_numpy(grid), mode="bilinear",
                            padding_mode="zeros", align_corners=False)[:, 0].numpy()
    return 0.25 * (sampled[:, ::2, ::2] + sampled[:, 1::2, ::2]
                   + sampled[:, ::2, 1::2] + sampled[:, 1::2, 1::2])


def _backgrounds(rng: np.random.Generator, n: int, image_size: int) -> np.ndarray:
    """Random crops of the background pool, mirrored, tinted, softened: (n, S, S, 3) float32."""
    pool = _background_pool(image_size)
    sources = rng.integers(len(pool), size=n)
    corners = rng.random((n, 2))
    crops = np.empty((n, image_size, image_size, 3), np.float32)
    for i, (source, (u, v)) in enumerate(zip(sources, corners)):
        picture = pool[source]
        top = int(u * (picture.shape[0] - image_size + 1))
        left = int(v * (picture.shape[1] - image_size + 1))
        crops[i] = picture[top:top + image_size, left:left + image_size]
    mirror = rng.random(n) < 0.5
    crops[mirror] = crops[mirror, :, ::-1]
    tint = rng.uniform(0.7, 1.3, (n, 1, 1, 3)).astype(np.float32)
    # A busy background can drown a small letter; shrinking its contrast keeps letters legible.
    contrast = rng.uniform(0.4, 0.9, (n, 1, 1, 1)).astype(np.float32)
    mean = crops.reshape(n, -1).mean(axis=1)[:, None, None, None]
    crops -= mean
    crops *= contrast
    crops += mean
    crops *= tint
    return np.clip(crops, 0, 1, out=crops)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Perceived brightness (Rec. 601 weights) of RGB values in [0, 1]; drops the last axis."""
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _letter_colours(rng: np.random.Generator, alpha: np.ndarray,
                    background: np.ndarray) -> np.ndarray:
    """Random colours (n, 3) that differ in luminance from the background under each letter."""
    n = alpha.shape[0]
    colour = rng.random((n, 3)).astype(np.float32)
    gap = rng.uniform(0.35, 0.55, n).astype(np.float32)
    weights = alpha / np.maximum(alpha.sum(axis=(1, 2), keepdims=True), 1e-6)
    behind = (weights * _luminance(background)).sum(axis=(1, 2))
    own = _luminance(colour)
    # On a light background darken the colour (scale towards black) until it is `gap` darker;
    # on a dark one lighten it (mix with white) until it is `gap` lighter.
    darker = colour * np.minimum(1, np.maximum(behind - gap, 0) / np.maximum(own, 1e-6))[:, None]
    lighter_mix = np.minimum(1, (1 - np.minimum(behind + gap, 1)) / np.maximum(1 - own, 1e-6))
    lighter = 1 - (1 - colour) * lighter_mix[:, None]
    return np.where((behind > 0.5)[:, None], darker, lighter)


def _blur(images: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Gaussian blur of (n, S, S, 3) images, each with its own sigma (n,), in pixels."""
    radius = max(1, int(np.ceil(3 * sigmas.max())))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernels = np.exp(-offsets**2 / (2 * sigmas[:, None] ** 2))
    kernels /= kernels.sum(axis=1, keepdims=True)
    size = images.shape[1]
    for axis in (1, 2):  # rows then columns: a 2-D Gaussian is separable
        padding = [(0, 0)] * 4
        padding[axis] = (radius, radius)
        padded = np.pad(images, padding, mode="edge")
        out = np.zeros_like(images)
        for k in range(2 * radius + 1):
            window = padded[:, k:k + size] if axis == 1 else padded[:, :, k:k + size]
            out += kernels[:, k, None, None, None] * window
        images = out
    return images


def _draw_chunk(rng: np.random.Generator, labels: np.ndarray, image_size: int) -> np.ndarray:
    """Draw the images for ``labels`` (n,); returns (n, S, S, 3) uint8."""
    n = labels.shape[0]
    masks = _glyph_masks(max(64, 2 * image_size))
    fonts = rng.integers(masks.shape[0], size=n)
    chosen = masks[torch.from_numpy(fonts), torch.from_numpy(labels)]
    alpha = _letter_alphas(rng, chosen, image_size)
    background = _backgrounds(rng, n, image_size)
    colour = _letter_colours(rng, alpha, background)
    images = background + alpha[..., None] * (colour[:, None, None, :] - background)
    blurred = np.flatnonzero(rng.random(n) < 0.35)
    if blurred.size:
        sigmas = rng.uniform(0.4, 1.0, blurred.size).astype(np.float32) * image_size / 32
        images[blurred] = _blur(images[blurred], sigmas)
    # Uniform rather than Gaussian noise: it looks the same and is several times faster to draw.
    noise = rng.uniform(0, 0.07, (n, 1, 1, 1)).astype(np.float32)
    images += noise * (rng.random(images.shape, dtype=np.float32) - 0.5)
    images *= 255
    return np.clip(np.rint(images, out=images), 0, 255, out=images).astype(np.uint8)


def generate_glyphs(num_images: int, seed: int = 0,
                    image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Generate the glyphs dataset: random capital letters on random photo backgrounds.

    The result depends only on the three arguments (not on NumPy's or torch's global random
    state), so the same call always returns the same images. 20,000 images take a few seconds.

    Args:
        num_images: how many images to make, a positive integer.
        seed: seed of the random generator, a non-negative integer. Use different seeds for
            training and test data.
        image_size: height and width of the square images in pixels, an integer >= 16.

    Returns:
        ``(images, labels)``: images is a uint8 array of shape (num_images, image_size,
        image_size, 3) with values 0-255 (height, width, RGB channels last); labels is an int64
        array of shape (num_images,) with values 0-25, the index of the letter in ``LETTERS``.
        Every letter appears equally often, up to one image, in random order.
    """
    num_images = check_int("num_images", num_images, 1, "a positive integer")
    seed = check_int("seed", seed, 0, "a non-negative integer")
    image_size = check_int("image_size", image_size, 16, "an integer >= 16")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(LETTERS)).astype(np.int64)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    for start in range(0, num_images, _CHUNK):
        images[start:start + _CHUNK] = _draw_chunk(rng, labels[start:start + _CHUNK], image_size)
    return images, labels
