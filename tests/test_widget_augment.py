import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import widgets  # noqa: E402
from course_utils.augment import DEFORMATIONS  # noqa: E402
from course_utils.plotting import legibility_problems  # noqa: E402

NAMES = ["crop and resize", "flip", "colour jitter"]


def _images(count: int = 2, size: int = 32) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(3, size, size, generator=generator) for _ in range(count)]


def _panels(fig) -> list[np.ndarray]:
    """The arrays shown, row by row: the original, then the views."""
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]


def _draw(*args, **kwargs) -> list[np.ndarray]:
    fig = widgets.augmentation_figure(*args, **kwargs)
    panels = _panels(fig)
    plt.close(fig)
    return panels


def test_figure_has_a_row_per_image_and_legible_titles():
    images = _images(3)
    fig = widgets.augmentation_figure(images, NAMES, 0.5, copies=4, titles=["a", "b", "c"])
    assert len(fig.axes) == 3 * 5
    assert [ax.get_title() for ax in fig.axes[:5]] == ["original", "view 1", "view 2", "view 3",
                                                      "view 4"]
    assert [fig.axes[5 * row].get_ylabel() for row in range(3)] == ["a", "b", "c"]
    suptitle = fig.get_suptitle()
    assert "crop and resize \u2192 flip \u2192 colour jitter" in suptitle and "0.50" in suptitle
    np.testing.assert_allclose(_panels(fig)[0], images[0].permute(1, 2, 0).numpy())
    assert fig.get_size_inches()[0] <= 10
    assert legibility_problems(fig) == []
    plt.close(fig)


def test_long_pipelines_wrap_between_names_and_stay_legible():
    fig = widgets.augmentation_figure(_images(1), list(DEFORMATIONS), 1.0, copies=6)
    lines = fig.get_suptitle().split("\n")
    assert len(lines) > 1
    assert "Gaussian blur" in fig.get_suptitle()  # lines break between names, not inside
    assert legibility_problems(fig) == []
    plt.close(fig)


def test_same_seed_same_views_and_other_seeds_differ():
    images = _images()
    first = _draw(images, NAMES, 0.5, seed=3)
    again = _draw(images, NAMES, 0.5, seed=3)
    other = _draw(images, NAMES, 0.5, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    views = [panel for position, panel in enumerate(first) if position % 5]
    assert not any(np.array_equal(a, b) for a, b in zip(views, views[1:]))  # each view differs
    assert not any(np.array_equal(a, b) for position, (a, b) in enumerate(zip(first, other))
                   if position % 5)


def test_figure_leaves_the_callers_random_numbers_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    plt.close(widgets.augmentation_figure(_images(), NAMES, 0.7, seed=9))
    assert torch.equal(torch.rand(5), expected)


def test_no_deformation_gives_copies_of_the_original():
    image = _images(1)[0]
    fig = widgets.augmentation_figure(image, [], 0.5, copies=3)
    panels = _panels(fig)
    assert len(panels) == 4 and all(np.array_equal(panel, panels[0]) for panel in panels)
    assert fig.get_suptitle().startswith("no deformation")
    plt.close(fig)


def test_images_of_different_sizes_and_a_batch():
    images = [torch.rand(3, 32, 32), torch.rand(3, 24, 24)]
    panels = _draw(images, ["crop and resize", "rotation", "cutout"], 1.0, copies=2)
    assert [panel.shape[:2] for panel in panels] == [(32, 32)] * 3 + [(24, 24)] * 3
    assert len(_draw(torch.rand(2, 3, 32, 32), ["flip"], 0.5, copies=1)) == 4


def test_bad_input_gets_the_augment_modules_errors():
    image = _images(1)[0]
    with pytest.raises(ValueError, match="unknown deformation 'mirror'; the valid names are"):
        widgets.augmentation_figure(image, ["flip", "mirror"], 0.5)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        widgets.augmentation_figure(image, ["flip"], 1.5)
    with pytest.raises(ValueError, match=r"got 2 dimensions.*image\[None\]"):
        widgets.augmentation_figure(image[0], ["flip"], 0.5)
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\].*divide by 255"):
        widgets.augmentation_figure([image * 255], ["flip"], 0.5)
    with pytest.raises(ValueError, match="one image \\(C, H, W\\).*not in a list"):
        widgets.augmentation_figure([image[None]], ["flip"], 0.5)
    with pytest.raises(ValueError, match="copies must be"):
        widgets.augmentation_figure(image, ["flip"], 0.5, copies=0)
    with pytest.raises(ValueError, match="unknown deformation 'mirror'"):
        widgets.augmentation_widget([image], names=["mirror"])
    plt.close("all")


def _controls(widget):
    grid, note, strength, buttons = widget.children[:4]
    checkboxes = {box.description: box for box in grid.children}
    new_draw, draw_number = buttons.children
    return checkboxes, note, strength, new_draw, draw_number


def test_widget_builds_with_the_default_deformations():
    checkboxes, note, strength, new_draw, draw_number = _controls(
        widgets.augmentation_widget(_images()))
    assert list(checkboxes) == list(DEFORMATIONS)
    assert [name for name, box in checkboxes.items() if box.value] == NAMES
    assert "order" in note.value
    assert (strength.description, strength.value, strength.min, strength.max, strength.step) == \
        ("strength", 0.5, 0.0, 1.0, 0.05)
    assert (new_draw.description, draw_number.value) == ("new draw", 0)
    assert "crop and resize \u2192 flip \u2192 colour jitter" in plt.gcf().get_suptitle()
    plt.close("all")


def test_widget_redraws_on_every_change():
    widget = widgets.augmentation_widget(_images(1), names=["Sobel filter", "cutout"],
                                         strength=0.25, copies=2)
    checkboxes, _, strength, new_draw, draw_number = _controls(widget)
    assert [name for name, box in checkboxes.items() if box.value] == ["cutout", "Sobel filter"]
    # each change redraws; outside a notebook the figure stays open
    checkboxes["flip"].value = True
    assert "flip \u2192 cutout \u2192 Sobel filter" in plt.gcf().get_suptitle()
    strength.value = 0.8
    assert "0.80" in plt.gcf().get_suptitle()
    before = _panels(plt.gcf())
    new_draw.click()
    assert draw_number.value == 1
    assert not all(np.array_equal(a, b) for a, b in zip(before, _panels(plt.gcf())))
    for box in checkboxes.values():
        box.value = False
    assert plt.gcf().get_suptitle().startswith("no deformation")
    assert len(plt.gcf().axes) == 3
    plt.close("all")
