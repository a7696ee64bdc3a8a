"""Tests of the synthetic glyphs dataset (course_utils.glyphs)."""

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from course_utils.glyphs import LETTERS, font_paths, generate_glyphs, glyph_masks

TIME_LIMIT_S = 20.0


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def fresh_process():
    """20,000 images made in a new Python process, timed from a cold start of the photo loader."""
    script = textwrap.dedent("""
        import hashlib, json, time
        from course_utils.glyphs import generate_glyphs
        start = time.perf_counter()
        images, labels = generate_glyphs(20000, seed=0)
        seconds = time.perf_counter() - start
        digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
        print(json.dumps({"seconds": seconds, "digest": digest}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def large():
    return generate_glyphs(20000, seed=0)


def test_letters():
    assert LETTERS == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize("image_size", [16, 32, 48])
def test_shapes_and_dtypes(image_size):
    images, labels = generate_glyphs(30, seed=1, image_size=image_size)
    assert images.shape == (30, image_size, image_size, 3)
    assert images.dtype == np.uint8
    assert labels.shape == (30,)
    assert labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < 26


@pytest.mark.parametrize("kwargs, match", [
    ({"num_images": 0}, r"num_images must be a positive integer, got 0"),
    ({"num_images": -3}, r"num_images must be a positive integer"),
    ({"num_images": 2.5}, r"num_images must be a positive integer, got 2.5"),
    ({"num_images": True}, r"num_images must be a positive integer"),
    ({"num_images": 10, "seed": -1}, r"seed must be a non-negative integer, got -1"),
    ({"num_images": 10, "seed": "0"}, r"seed must be a non-negative integer"),
    ({"num_images": 10, "image_size": 8}, r"image_size must be an integer >= 16, got 8"),
    ({"num_images": 10, "image_size": 32.0}, r"image_size must be an integer >= 16"),
])
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_glyphs(**kwargs)


def test_numpy_integers_are_accepted():
    images, labels = generate_glyphs(np.int64(5), seed=np.int32(2))
    assert images.shape == (5, 32, 32, 3)


def test_same_seed_same_data_whatever_the_global_random_state():
    np.random.seed(1)
    torch.manual_seed(1)
    first = generate_glyphs(300, seed=5)
    np.random.seed(2)
    torch.manual_seed(2)
    np.random.rand(10)
    torch.rand(10)
    second = generate_glyphs(300, seed=5)
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])


def test_global_random_state_is_untouched():
    np.random.seed(3)
    torch.manual_seed(3)
    expected_np, expected_torch = np.random.rand(), torch.rand(1)
    np.random.seed(3)
    torch.manual_seed(3)
    generate_glyphs(50, seed=0)
    assert np.random.rand() == expected_np
    assert torch.equal(torch.rand(1), expected_torch)


def test_different_seeds_differ():
    images_a, labels_a = generate_glyphs(200, seed=5)
    images_b, labels_b = generate_glyphs(200, seed=6)
    assert not np.array_equal(labels_a, labels_b)
    assert np.abs(images_a.astype(int) - images_b.astype(int)).mean() > 20


def test_independent_of_torch_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = generate_glyphs(1500, seed=7)
        torch.set_num_threads(2)
        two = generate_glyphs(1500, seed=7)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(one[0], two[0])
    assert np.array_equal(one[1], two[1])


def test_same_data_in_a_new_process(fresh_process, large):
    assert fresh_process["digest"] == _digest(*large)


def test_20000_images_in_under_20_seconds(fresh_process):
    assert fresh_process["seconds"] < TIME_LIMIT_S, (
        f"20,000 images took {fresh_process['seconds']:.1f} s (limit {TIME_LIMIT_S} s)")


def test_fonts_are_text_fonts():
    names = [path.name for path in font_paths()]
    assert len(names) >= 15
    for expected in ("DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf",
                     "STIXGeneral.ttf", "cmr10.ttf", "cmmi10.ttf"):
        assert expected in names
    for name in names:
        assert not any(part in name for part in ("cmex10", "cmsy10", "STIXSiz", "STIXNonUni",
                                                 "LastResort", "Display")), name
    assert all(path.is_file() for path in font_paths())


@pytest.fixture(scope="module")
def masks():
    return glyph_masks(64).numpy()


@pytest.mark.parametrize("index, name", list(enumerate(path.name for path in font_paths())))
def test_every_font_draws_every_letter_distinctly(masks, index, name):
    letters = masks[index]
    for letter, mask in zip(LETTERS, letters):
        assert mask.max() > 0.5, f"{name} draws no {letter}"
    assert len({mask.tobytes() for mask in letters}) == 26, (
        f"{name} draws the same shape for different letters")


def test_glyph_masks_have_ink_inside_the_square(masks):
    assert masks.shape == (len(font_paths()), 26, 64, 64) and masks.dtype == np.float32
    border = np.concatenate([masks[..., 0, :], masks[..., -1, :], masks[..., :, 0],
                             masks[..., :, -1]], axis=-1)
    assert border.max() == 0, "a letter touches the edge of its square and would be clipped"
    # Same capital height in every font: "I" stays narrow and "W" wide.
    widths = (masks > 0.5).any(axis=2).sum(axis=-1)  # (fonts, 26)
    assert (widths[:, LETTERS.index("I")] < widths[:, LETTERS.index("W")]).all()
    copy = glyph_masks(64)
    copy.zero_()
    assert glyph_masks(64).max() > 0.5, "glyph_masks must hand out a copy"
    with pytest.raises(ValueError, match="resolution must be an integer >= 16"):
        glyph_masks(8)


@pytest.mark.parametrize("num_images", [2600, 2601])
def test_classes_are_balanced(num_images):
    _, labels = generate_glyphs(num_images, seed=3)
    counts = np.bincount(labels, minlength=26)
    assert counts.size == 26
    assert counts.max() - counts.min() <= 1
    assert not np.array_equal(labels[:26], np.arange(26)), "labels should be shuffled"


def test_images_are_not_flat(large):
    images = large[0][:2000].astype(np.float32)
    assert images.reshape(len(images), -1).std(axis=1).min() > 5
    assert 40 < images.mean() < 215


def test_letters_are_learnable_but_not_trivially(large):
    """A nearest-class-mean classifier on raw pixels is well above chance but far from perfect."""
    images, labels = large
    pixels = images.reshape(len(images), -1).astype(np.float32) / 255
    train, test = slice(0, 15000), slice(15000, None)
    means = np.stack([pixels[train][labels[train] == k].mean(axis=0) for k in range(26)])
    # Squared distances up to a per-image constant: |m|^2 - 2 x.m
    distances = (means**2).sum(axis=1)[None, :] - 2 * pixels[test] @ means.T
    accuracy = (distances.argmin(axis=1) == labels[test]).mean()
    assert 2.5 / 26 < accuracy < 0.5, f"nearest-class-mean accuracy {accuracy:.3f}"
