"""Data augmentation, as taught in lesson 06: the notes' deformations of an image.

The notes' figure (from SimCLR [Chen et al., 2020]) shows an image and nine deformations of it:
crop and resize, flip, colour drop, colour jitter, rotation, cutout, Gaussian noise, Gaussian
blur and Sobel filtering. Where torchvision's transforms v2 have one it is used as it is; the
others (Sobel, cutout, rotation by quarter turns) are written here.

Every transform takes a float image (C, H, W) or a batch (N, C, H, W) with values in [0, 1] and
returns a tensor of the same shape and dtype, still in [0, 1]. Random choices come only from
torch's global generator, so a block under ``course_utils.config.seeded(seed)`` repeats exactly.
torchvision's transforms draw once per call (a batch is flipped or cropped as a whole); the ones
written here (:class:`Cutout`, :class:`RandomQuarterTurn`) draw for each image of a batch.

For training on the device, :func:`random_affine` (rotation, zoom and shift) and
:func:`random_half_turns` deform a whole batch at once with a draw per image; they also accept
normalised images. :func:`simclr_views` draws the views of SimCLR and DINO the same way (a
random resized crop, brightness and contrast, channel shuffle, colour drop; images in [0, 1]).

:data:`DEFORMATIONS` maps each name to a function ``(strength, image_size) -> transform``, and
:func:`compose` chains them::

    augment = compose(["crop and resize", "flip", "colour jitter"], strength=0.5, image_size=32)
    pairs = TwoViews(unlabelled, augment)       # course_utils.data, for SimCLR and DINO
"""

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as v2
from torch import nn

# The Sobel kernels: a derivative (-1, 0, 1) across, a smoothing (1, 2, 1) along. SOBEL_X
# responds to changes from left to right (vertical edges), SOBEL_Y from top to bottom.
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0],
                        [-2.0, 0.0, 2.0],
                        [-1.0, 0.0, 1.0]])
SOBEL_Y = SOBEL_X.T.contiguous()
# For values in [0, 1] each response is at most 1 + 2 + 1 = 4, so the magnitude is at most
# sqrt(4**2 + 4**2) = 4 * sqrt(2): dividing by it puts every image's edges on the same scale.
SOBEL_MAX_MAGNITUDE = 4 * math.sqrt(2)


def check_images(images: torch.Tensor) -> None:
    """Raise a ValueError that says what to do unless ``images`` is a float tensor (C, H, W) or
    (N, C, H, W) with values in [0, 1] (the values are checked on the CPU only)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected an image tensor (C, H, W) or a batch (N, C, H, W), got "
                        f"{type(images).__name__}; a PIL image can be turned into one with "
                        f"v2.functional.to_image(picture).float() / 255")
    if not images.is_floating_point():
        raise ValueError(f"the image is {images.dtype}: convert to float in [0, 1] first "
                         f"(image.float() / 255)")
    if images.ndim not in (3, 4):
        raise ValueError(f"expected an image (C, H, W) or a batch of images (N, C, H, W), got "
                         f"{images.ndim} dimensions, shape {tuple(images.shape)}; add a channel "
                         f"axis to a grey image (image[None]) or stack a list (torch.stack)")
    if images.device.type != "cpu":
        return  # reading values back would make the host wait for the GPU at every call
    low, high = torch.aminmax(images)
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"values must lie in [0, 1], got {low.item():.3g} to {high.item():.3g}: "
                         f"divide by 255 if they are 0..255, and augment before normalising "
                         f"(put v2.Normalize after the augmentation)")


def sobel(images: torch.Tensor) -> torch.Tensor:
    """Edges: the gradient magnitude of the luminance, by the 3x3 kernels SOBEL_X and SOBEL_Y.

    Args:
        images: float (C, H, W) or (N, C, H, W) in [0, 1], with 1 (grey) or 3 (RGB) channels.

    Returns:
        The same shape: sqrt(gx**2 + gy**2) / (4 * sqrt(2)) repeated on every channel, in [0, 1]
        (0 where the image is flat). Borders are padded by repeating the edge pixels, so the
        border of an image is not mistaken for an edge.
    """
    check_images(images)
    batch = images if images.ndim == 4 else images[None]  # (N, C, H, W)
    channels = batch.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"sobel needs a grey (1 channel) or RGB (3 channels) image, got "
                         f"{channels} channels")
    # Luminance 0.2989 R + 0.587 G + 0.114 B (ITU-R 601), as torchvision computes it.
    grey = batch if channels == 1 else v2.functional.rgb_to_grayscale(batch)  # (N, 1, H, W)
    kernels = torch.stack([SOBEL_X, SOBEL_Y])[:, None].to(batch)  # (2, 1, 3, 3)
    gradients = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, H, W)
    magnitude = gradients.square().sum(1, keepdim=True).sqrt() / SOBEL_MAX_MAGNITUDE
    edges = magnitude.clamp(0, 1).expand(-1, channels, -1, -1).contiguous()
    return edges if images.ndim == 4 else edges[0]


class Sobel(nn.Module):
    """The transform ``sobel``: replaces an image by its edges (deterministic)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return sobel(images)


def _places(value, count: int, name: str) -> torch.Tensor:
    """``value`` (an int, or one per image) as an int64 tensor of shape (count,)."""
    places = torch.as_tensor(value, dtype=torch.long).reshape(-1)
    if places.numel() == 1:
        places = places.expand(count)
    if places.shape != (count,):
        raise ValueError(f"{name} must be one number or one per image ({count}), got "
                         f"{places.numel()} values")
    return places


def cutout(images: torch.Tensor, size: int, *, top, left) -> torch.Tensor:
    """A copy of ``images`` with a size x size square set to 0 (black), clipped at the borders.

    Args:
        images: float (C, H, W) or (N, C, H, W) in [0, 1].
        size: side of the square in pixels (0 changes nothing).
        top, left: row and column of the square's top-left corner; may be negative or run past
            the image (the square is clipped). For a batch, one number for all images or a
            sequence / tensor with one per image.
    """
    check_images(images)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a whole number of pixels >= 0, got {size!r}")
    batch = images if images.ndim == 4 else images[None]  # (N, C, H, W)
    n, _, height, width = batch.shape
    top = _places(top, n, "top").to(batch.device)[:, None]  # (N, 1)
    left = _places(left, n, "left").to(batch.device)[:, None]
    rows = torch.arange(height, device=batch.device)[None]  # (1, H)
    columns = torch.arange(width, device=batch.device)[None]  # (1, W)
    in_rows = (rows >= top) & (rows < top + size)  # (N, H)
    in_columns = (columns >= left) & (columns < left + size)  # (N, W)
    square = in_rows[:, None, :, None] & in_columns[:, None, None, :]  # (N, 1, H, W)
    result = batch.masked_fill(square, 0.0)
    return result if images.ndim == 4 else result[0]


class Cutout(nn.Module):
    """Cutout [DeVries & Taylor, 2017]: black out a size x size square whose centre is drawn
    uniformly anywhere in the image, so that part of the square may fall outside. Each image of
    a batch gets its own square."""

    def __init__(self, size: int):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a whole number of pixels >= 0, got {size!r}")
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        count = images.shape[0] if images.ndim == 4 else 1
        height, width = images.shape[-2:]
        centre_row = torch.randint(height, (count,))
        centre_column = torch.randint(width, (count,))
        half = self.size // 2
        return cutout(images, self.size, top=centre_row - half, left=centre_column - half)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomQuarterTurn(nn.Module):
    """Rotate each image by k quarter turns (90 * k degrees, counter-clockwise), k drawn
    uniformly from ``turns``; exact, by torch.rot90. Quarter turns need square images."""

    def __init__(self, turns: tuple[int, ...] = (0, 1, 2, 3)):
        super().__init__()
        if len(turns) == 0 or any(turn not in (0, 1, 2, 3) for turn in turns):
            raise ValueError(f"turns must be a non-empty choice of 0, 1, 2, 3 quarter turns, "
                             f"e.g. (1, 2, 3) for 90, 180 and 270 degrees; got {turns!r}")
        self.turns = tuple(turns)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        height, width = images.shape[-2:]
        if height != width and any(turn % 2 for turn in self.turns):
            raise ValueError(f"a quarter turn of a {height}x{width} image changes its shape; "
                             f"crop it to a square first, or use turns=(0, 2)")
        batch = images if images.ndim == 4 else images[None]  # (N, C, H, W)
        choices = torch.tensor(self.turns)[torch.randint(len(self.turns), (len(batch),))]
        result = batch.clone()
        for turn in set(self.turns):
            chosen = (choices == turn).to(batch.device)
            result[chosen] = torch.rot90(batch[chosen], turn, dims=(-2, -1))
        return result if images.ndim == 4 else result[0]

    def extra_repr(self) -> str:
        return f"turns={self.turns}"


class ColourDrop(v2.RandomGrayscale):
    """Colour drop: with probability ``p`` replace the image by its grey version, keeping the
    number of channels (torchvision's RandomGrayscale, applied always by default)."""

    def __init__(self, p: float = 1.0):
        super().__init__(p)


def _blur(strength: float, image_size: int) -> v2.GaussianBlur:
    largest_sigma = 0.1 + 1.9 * strength
    kernel_size = 2 * math.ceil(3 * largest_sigma) + 1  # covers +-3 sigma
    kernel_size = min(kernel_size, max(1, image_size - 1 - image_size % 2))  # odd, < image
    return v2.GaussianBlur(kernel_size, sigma=(0.1, largest_sigma))


# name -> (strength in [0, 1], image_size) -> transform. Strength 0 is (about) the identity.
# For an operation that has no size (flip, colour drop, rotation, Sobel) the strength is the
# chance that it is applied. Otherwise:
#   crop and resize  crop a share of the area drawn from [1 - 0.92 s, 1], aspect ratio from
#                    [(3/4)**s, (4/3)**s], resized to image_size (s = 1: SimCLR's 0.08 to 1)
#   colour jitter    brightness, contrast, saturation up to 0.8 s, hue up to 0.2 s (SimCLR's)
#   cutout           a square of side s * image_size / 2 (s = 1: 16 for 32x32, as DeVries)
#   Gaussian noise   standard deviation 0.2 s added to every value, then clipped to [0, 1]
#   Gaussian blur    sigma drawn from [0.1, 0.1 + 1.9 s] pixels (s = 1: SimCLR's 0.1 to 2)
DEFORMATIONS = {
    "crop and resize": lambda s, size: v2.RandomResizedCrop(
        size, scale=(1 - 0.92 * s, 1.0), ratio=((3 / 4) ** s, (4 / 3) ** s)),
    "flip": lambda s, size: v2.RandomHorizontalFlip(p=s),
    "colour drop": lambda s, size: ColourDrop(p=s),
    "colour jitter": lambda s, size: v2.ColorJitter(
        brightness=0.8 * s, contrast=0.8 * s, saturation=0.8 * s, hue=0.2 * s),
    "rotation": lambda s, size: v2.RandomApply([RandomQuarterTurn(turns=(1, 2, 3))], p=s),
    "cutout": lambda s, size: Cutout(round(s * size / 2)),
    "Gaussian noise": lambda s, size: v2.GaussianNoise(sigma=0.2 * s, clip=True),
    "Gaussian blur": _blur,
    "Sobel filter": lambda s, size: v2.RandomApply([Sobel()], p=s),
}


class Augmentation(v2.Compose):
    """A v2.Compose that first checks its input (float, (C, H, W) or (N, C, H, W), in [0, 1])."""

    def forward(self, *inputs):
        if inputs and isinstance(inputs[0], torch.Tensor):
            check_images(inputs[0])
        return super().forward(*inputs)


def compose(names, strength: float = 0.5, image_size: int = 32) -> v2.Compose:
    """The deformations ``names`` (keys of DEFORMATIONS), applied in the order given, all at
    ``strength`` in [0, 1], for images of side ``image_size`` (crop and resize outputs it)."""
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in DEFORMATIONS]
    if unknown:
        valid = ", ".join(repr(name) for name in DEFORMATIONS)
        raise ValueError(f"unknown deformation {unknown[0]!r}; the valid names are {valid}")
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1] (0: about no change, 1: strong), "
                         f"got {strength}")
    return Augmentation([DEFORMATIONS[name](strength, image_size) for name in names])


def random_affine(images: torch.Tensor, *, degrees: float = 15.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1)) -> torch.Tensor:
    """Rotate, scale and shift every image of a batch (N, C, H, W) by its own random amounts:
    an angle in [-degrees, degrees], a zoom in ``scale``, a shift of up to ``translate`` of the
    side in each direction. One ``affine_grid`` + ``grid_sample`` for the whole batch, so it
    runs where the batch is (on the GPU inside the training step) and draws per image, unlike
    torchvision's v2.RandomAffine, which draws once per call. Pixels from outside the image
    copy the border. Works on normalised images too (no [0, 1] check)."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"expected a float batch (N, C, H, W), got {images.dtype} of shape "
                         f"{tuple(images.shape)}")
    if degrees < 0 or translate < 0 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"need degrees >= 0, translate >= 0 and 0 < scale[0] <= scale[1], got "
                         f"degrees={degrees}, translate={translate}, scale={scale}")
    count, device = len(images), images.device
    angle = (torch.rand(count, device=device) * 2 - 1) * math.radians(degrees)
    zoom = torch.empty(count, device=device).uniform_(*scale)
    # affine_grid works in coordinates from -1 to 1, so a shift of a fraction f of the side is 2f.
    shift = (torch.rand(2, count, device=device) * 2 - 1) * 2 * translate
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[0]], dim=1),
                         torch.stack([sin, cos, shift[1]], dim=1)], dim=1)   # (N, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def random_half_turns(images: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Turn each image of a batch (N, C, H, W) upside down (180 degrees) with probability ``p``,
    drawn per image on the batch's device."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(images.shape)}")
    upside_down = torch.rand(len(images), device=images.device) < p
    return torch.where(upside_down[:, None, None, None], images.flip(-2, -1), images)


# ---- the views of SimCLR and DINO, drawn per image on the device ------------------------------

def _check_batch(images: torch.Tensor) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"expected a float batch (N, C, H, W), got {images.dtype} of shape "
                         f"{tuple(images.shape)}")


def random_resized_crop(images: torch.Tensor, *, scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Crop each image of a batch (N, C, H, W) to a random share ``scale`` of its area with a
    random aspect ratio from ``ratio``, at a random place inside it, and resize the crop back to
    H x W: SimCLR's most important deformation, as one ``affine_grid`` call, a draw per image."""
    _check_batch(images)
    if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1], got "
                         f"scale={scale}, ratio={ratio}")
    count, device = len(images), images.device
    area = torch.empty(count, device=device).uniform_(*scale)
    aspect = torch.empty(count, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1])).exp()
    width = (area * aspect).sqrt().clamp(max=1)   # the crop's sides, as fractions of the image's
    height = (area / aspect).sqrt().clamp(max=1)
    # affine_grid's coordinates run from -1 to 1: a centre within 1 - side keeps the crop inside.
    centre_x = (torch.rand(count, device=device) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(count, device=device) * 2 - 1) * (1 - height)
    zeros = torch.zeros(count, device=device)
    theta = torch.stack([torch.stack([width, zeros, centre_x], dim=1),
                         torch.stack([zeros, height, centre_y], dim=1)], dim=1)   # (N, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def random_brightness_contrast(images: torch.Tensor, *, brightness: float = 0.4,
                               contrast: float = 0.4) -> torch.Tensor:
    """Scale each image's brightness by a factor from [1 - brightness, 1 + brightness] and its
    contrast (around the image's mean) by one from [1 - contrast, 1 + contrast]; values in [0, 1]
    stay in [0, 1]. A draw per image."""
    _check_batch(images)
    count, device = len(images), images.device
    shape = (count, 1, 1, 1)
    gain = 1 + (torch.rand(shape, device=device) * 2 - 1) * brightness
    stretch = 1 + (torch.rand(shape, device=device) * 2 - 1) * contrast
    brighter = images * gain
    mean = brighter.mean(dim=(1, 2, 3), keepdim=True)
    return ((brighter - mean) * stretch + mean).clamp(0, 1)


def random_channel_shuffle(images: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """With probability ``p`` per image, put its colour channels in a random order (a colour
    change that keeps every edge): a draw per image."""
    _check_batch(images)
    count, channels = images.shape[:2]
    order = torch.rand(count, channels, device=images.device).argsort(dim=1)
    keep = torch.rand(count, device=images.device) >= p
    order[keep] = torch.arange(channels, device=images.device)
    index = order[:, :, None, None].expand_as(images)
    return torch.gather(images, 1, index)


def random_grey(images: torch.Tensor, p: float = 0.2) -> torch.Tensor:
    """With probability ``p`` per image, replace an RGB image by its luminance on all three
    channels (SimCLR's colour drop), a draw per image."""
    _check_batch(images)
    grey = v2.functional.rgb_to_grayscale(images, num_output_channels=3)
    chosen = torch.rand(len(images), device=images.device) < p
    return torch.where(chosen[:, None, None, None], grey, images)


def simclr_views(images: torch.Tensor, *, crop_scale: tuple[float, float] = (0.2, 1.0),
                 brightness: float = 0.4, contrast: float = 0.4, shuffle_p: float = 0.5,
                 grey_p: float = 0.2) -> torch.Tensor:
    """One random view of each image of an RGB batch in [0, 1] for SimCLR or DINO: a random
    resized crop, then brightness and contrast, a channel shuffle and colour drop, each drawn
    per image. Call it twice on a batch for the two views. No flip: for letters it changes the
    label's meaning (lesson 06)."""
    views = random_resized_crop(images, scale=crop_scale)
    views = random_brightness_contrast(views, brightness=brightness, contrast=contrast)
    views = random_channel_shuffle(views, p=shuffle_p)
    return random_grey(views, p=grey_p)
