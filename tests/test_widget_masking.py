"""Lesson 07's masking widget: masked input / reconstruction / original, redrawn live."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import pretext, widgets  # noqa: E402

MEAN, STD = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25)


def _model_and_images(count=2):
    torch.manual_seed(0)
    return pretext.MaskedAutoEncoder().eval(), torch.randn(count, 3, 16, 16)


def _panels(fig):
    return [ax.images[0].get_array().copy() for ax in fig.axes if ax.images]


def test_figure_has_three_columns_per_image_and_says_the_ratio():
    model, images = _model_and_images()
    fig = widgets.masking_figure(model, images, 0.75, mean=MEAN, std=STD, titles=["A", "B"])
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["masked input", "reconstruction", "original"]
    assert "75% of the patches removed (16 of 64 visible)" in fig.get_suptitle()
    masked, rebuilt, original = _panels(fig)[:3]
    grey = np.all(masked == 0.5, axis=-1)
    assert 0.6 < grey.mean() < 0.9                       # about 48 of the 64 patches
    assert np.allclose(rebuilt[~grey], original[~grey])  # visible patches pasted back
    plt.close("all")


def test_figure_refuses_a_ratio_out_of_range():
    model, images = _model_and_images(1)
    with pytest.raises(ValueError, match="mask_ratio"):
        widgets.masking_figure(model, images, 1.0, mean=MEAN, std=STD)


def test_widget_redraws_on_the_slider_and_the_button():
    model, images = _model_and_images(1)
    widget = widgets.masking_widget(model, images, mean=MEAN, std=STD)
    slider, buttons = widget.children[:2]
    new_draw, draw_number = buttons.children
    assert (slider.description, slider.value) == ("mask ratio", 0.75)
    slider.value = 0.5
    assert "50% of the patches removed" in plt.gcf().get_suptitle()
    before = _panels(plt.gcf())[0]
    new_draw.click()
    assert draw_number.value == 1
    assert not np.array_equal(before, _panels(plt.gcf())[0])
    plt.close("all")
