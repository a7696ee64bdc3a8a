import math

import numpy as np
import pytest
import scipy.ndimage
import torch
import torchvision.transforms.v2 as v2

from course_utils.augment import (DEFORMATIONS, SOBEL_MAX_MAGNITUDE, ColourDrop, Cutout,
                                  RandomQuarterTurn, Sobel, compose, cutout, sobel)
from course_utils.config import seeded
from course_utils.data import ImageDataset, TwoViews

NAMES = ["crop and resize", "flip", "colour drop", "colour jitter", "rotation", "cutout",
         "Gaussian noise", "Gaussian blur", "Sobel filter"]
SHAPES = [(3, 32, 32), (4, 3, 32, 32)]


def random_images(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_the_nine_deformations_in_order():
    assert list(DEFORMATIONS) == NAMES


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_deformations_keep_shape_dtype_and_range(name, shape, strength):
    images = random_images(shape)
    with seeded(1):
        result = DEFORMATIONS[name](strength, 32)(images)
    assert result.shape == images.shape and result.dtype == images.dtype
    assert result.min() >= 0 and result.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name):
    images = random_images((4, 3, 32, 32))
    transform = compose([name], strength=0.5)
    with seeded(3):
        first = transform(images)
    with seeded(3):
        second = transform(images)
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_give_different_outputs(name):
    images = random_images((4, 3, 32, 32))
    transform = compose([name], strength=0.5)
    outputs = []
    for seed in range(8):
        with seeded(seed):
            outputs.append(transform(images))
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


def test_strength_zero_is_about_the_identity():
    images = random_images((3, 32, 32))
    for name in NAMES:
        with seeded(0):
            result = DEFORMATIONS[name](0.0, 32)(images)
        assert torch.allclose(result, images, atol=1e-5), name


def test_own_transforms_draw_from_torch_global_generator():
    images = random_images((4, 3, 32, 32))
    for transform in (Cutout(8), RandomQuarterTurn()):
        torch.manual_seed(5)
        first = transform(images)
        torch.manual_seed(5)
        assert torch.equal(first, transform(images))


def test_sobel_of_a_constant_image_is_zero():
    for value in (0.0, 0.7, 1.0):
        edges = sobel(torch.full((3, 16, 16), value))
        assert edges.shape == (3, 16, 16) and edges.abs().max() < 1e-6  # 0 up to rounding


def test_sobel_is_largest_at_a_vertical_step_edge():
    image = torch.zeros(1, 16, 16)
    image[:, :, 8:] = 1.0
    edges = sobel(image)[0]
    column_strength = edges.mean(0)
    assert set(column_strength.argsort(descending=True)[:2].tolist()) == {7, 8}
    assert torch.allclose(edges[:, 7], torch.full((16,), 4 / SOBEL_MAX_MAGNITUDE))
    assert edges[:, :6].abs().max() == 0 and edges[:, 10:].abs().max() == 0


def test_sobel_matches_scipy_up_to_the_scale():
    grey = random_images((20, 24))
    expected = np.hypot(scipy.ndimage.sobel(grey.double().numpy(), axis=0),
                        scipy.ndimage.sobel(grey.double().numpy(), axis=1))
    ours = sobel(grey.double()[None])[0].numpy() * 4 * math.sqrt(2)
    np.testing.assert_allclose(ours[1:-1, 1:-1], expected[1:-1, 1:-1], rtol=1e-10, atol=1e-10)


def test_sobel_keeps_channels_and_uses_luminance():
    image = random_images((2, 3, 12, 12))
    edges = sobel(image)
    assert edges.shape == image.shape
    assert torch.equal(edges[:, 0], edges[:, 1]) and torch.equal(edges[:, 0], edges[:, 2])
    grey = v2.functional.rgb_to_grayscale(image)
    assert torch.allclose(edges[:, :1], sobel(grey), atol=1e-6)
    assert torch.equal(Sobel()(image), edges)


def test_cutout_zeroes_exactly_the_square():
    images = random_images((2, 3, 16, 16)) * 0.9 + 0.1  # no zeros of its own
    result = cutout(images, 5, top=3, left=[2, 9])
    zeros = result == 0
    assert (zeros.sum((-2, -1)) == 25).all()
    assert zeros[0, :, 3:8, 2:7].all() and zeros[1, :, 3:8, 9:14].all()
    assert torch.equal(result[~zeros], images[~zeros])
    assert images.min() > 0  # the input itself is not changed


def test_cutout_is_clipped_at_the_borders():
    image = torch.ones(1, 10, 10)
    assert (cutout(image, 4, top=-2, left=8) == 0).sum() == 2 * 2
    assert torch.equal(cutout(image, 0, top=3, left=3), image)


def test_cutout_transform_gives_each_image_its_own_square():
    images = torch.ones(6, 1, 32, 32)
    with seeded(0):
        result = Cutout(8)(images)
    masks = result == 0
    assert masks.any((-2, -1)).all()
    assert any(not torch.equal(masks[0], mask) for mask in masks[1:])


def test_quarter_turn_is_an_exact_rot90():
    images = random_images((8, 3, 12, 12))
    with seeded(0):
        turned = RandomQuarterTurn()(images)
    turns = []
    for image, result in zip(images, turned):
        matches = [k for k in range(4) if torch.equal(result, torch.rot90(image, k, (-2, -1)))]
        assert len(matches) == 1
        turns.append(matches[0])
    assert len(set(turns)) > 1  # each image its own turn


def test_half_turn_only():
    image = random_images((3, 12, 12))
    for seed in range(5):
        with seeded(seed):
            assert torch.equal(RandomQuarterTurn(turns=(2,))(image), torch.rot90(image, 2, (1, 2)))


def test_quarter_turn_refuses_bad_turns_and_non_square_images():
    with pytest.raises(ValueError, match="turns"):
        RandomQuarterTurn(turns=(4,))
    with pytest.raises(ValueError, match="square"):
        RandomQuarterTurn()(torch.rand(3, 8, 12))


def test_colour_drop_keeps_three_equal_channels():
    result = ColourDrop()(random_images((3, 8, 8)))
    assert result.shape == (3, 8, 8)
    assert torch.allclose(result[0], result[1]) and torch.allclose(result[1], result[2])


def test_compose_in_order_and_rejects_unknown_names():
    augment = compose(["flip", "cutout"], strength=1.0, image_size=32)
    assert isinstance(augment, v2.Compose)
    assert isinstance(augment.transforms[0], v2.RandomHorizontalFlip)
    assert isinstance(augment.transforms[1], Cutout)
    with pytest.raises(ValueError, match="unknown deformation 'blur'") as error:
        compose(["flip", "blur"])
    for name in NAMES:
        assert repr(name) in str(error.value)
    with pytest.raises(ValueError, match="strength"):
        compose(["flip"], strength=2.0)


def test_helpful_errors_for_wrong_inputs():
    augment = compose(["flip", "Sobel filter"])
    hint = r"convert to float in \[0, 1\] first \(image.float\(\) / 255\)"
    with pytest.raises(ValueError, match=hint):
        augment(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="dimensions"):
        Cutout(4)(torch.rand(8, 8))
    with pytest.raises(ValueError, match="255"):
        sobel(torch.rand(3, 8, 8) * 255)
    with pytest.raises(ValueError, match="channels"):
        sobel(torch.rand(2, 8, 8))


def test_two_views_of_one_image_differ():
    images = (random_images((1, 3, 32, 32)) * 255).to(torch.uint8)
    pairs = TwoViews(ImageDataset(images, torch.zeros(1)),
                     compose(["crop and resize", "flip", "colour jitter"], strength=0.5))
    with seeded(0):
        first, second, label = pairs[0]
    assert first.shape == second.shape == (3, 32, 32)
    assert not torch.equal(first, second)
