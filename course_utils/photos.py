"""Real photographs and textures that ship inside scikit-image, scikit-learn and matplotlib.

No download is needed: these files are part of the installed packages. Lessons use them for
pre-processing, filters, augmentation and patch demos, and the glyph generator crops its
backgrounds from them.
"""

import functools
import os

import matplotlib
import numpy as np
from PIL import Image

# scikit-image's bundled colour photographs (name -> loader name in skimage.data).
_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry")
# scikit-image's bundled grey-level photographs and textures.
_SKIMAGE_TEXTURES = ("brick", "grass", "gravel", "camera", "moon", "coins", "clock", "page", "text")


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Turn a grey-level or RGBA uint8 image into an (H, W, 3) uint8 array."""
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


@functools.cache
def _load_all() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    images = {name: _as_rgb(getattr(skimage.data, name)()) for name in _SKIMAGE_PHOTOS}
    sample = load_sample_images()
    for filename, image in zip(sample.filenames, sample.images):
        images[os.path.splitext(os.path.basename(filename))[0]] = _as_rgb(image)
    hopper = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    with Image.open(hopper) as picture:
        images["grace_hopper"] = _as_rgb(np.asarray(picture.convert("RGB")))
    for name in _SKIMAGE_TEXTURES:
        images[name] = _as_rgb(getattr(skimage.data, name)())
    return images


def _photo_names(include_textures: bool = True) -> list[str]:
    """Names accepted by :func:`load_photo`, colour photographs first."""
    names = [name for name in _load_all() if name not in _SKIMAGE_TEXTURES]
    return names + list(_SKIMAGE_TEXTURES) if include_textures else names


def load_photo(name: str) -> np.ndarray:
    """One bundled photograph as an (H, W, 3) uint8 array (a fresh copy: edit it freely)."""
    images = _load_all()
    if name not in images:
        raise ValueError(f"Unknown photo {name!r}. Available: {', '.join(_photo_names())}.")
    return images[name].copy()


def load_photos(include_textures: bool = True) -> dict[str, np.ndarray]:
    """All bundled photographs, name -> (H, W, 3) uint8 array, colour photographs first; the
    grey-level photographs and textures (brick, grass, camera, ...) only with ``include_textures``."""
    return {name: load_photo(name) for name in _photo_names(include_textures)}
