"""Tests of the bundled photographs (course_utils.photos)."""

import numpy as np
import pytest

from course_utils.photos import load_photo, load_photos


def test_photos_are_rgb_uint8_colour_photographs_first():
    photos = load_photos()
    assert list(photos)[:2] == ["astronaut", "chelsea"]
    assert {"grace_hopper", "china", "brick", "camera"} <= set(photos)
    for name, image in photos.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= 64, name
    colour = load_photos(include_textures=False)
    assert list(colour) == list(photos)[:len(colour)] and "brick" not in colour
    assert "camera" in photos and "camera" not in colour


def test_each_photo_is_a_fresh_copy():
    first = load_photo("chelsea")
    first[:] = 0
    assert load_photo("chelsea").max() > 0


def test_unknown_photo_lists_the_names():
    with pytest.raises(ValueError, match="Unknown photo 'cat'. Available: astronaut, chelsea"):
        load_photo("cat")
