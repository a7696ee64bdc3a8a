import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import plotting  # noqa: E402


def test_confusion_matrix_counts():
    fig = plotting.plot_confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], list("abc"))
    ax = fig.axes[0]
    assert np.asarray(ax.images[0].get_array()).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert sorted(text.get_text() for text in ax.texts) == ["1", "1", "1", "1", "2"]  # no zeros
    rates = plotting.plot_confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], list("abc"),
                                           normalize=True).axes[0].images[0].get_array()
    assert np.allclose(rates, [[0.5, 0.5, 0], [0, 1, 0], [1 / 3, 0, 2 / 3]])
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_confusion_matrix([0, 1], [0], ["a", "b"])
    plt.close("all")


def test_figures_are_returned():
    images = torch.rand(5, 3, 8, 8)
    fig = plotting.show_images(images, [0, 1, 2, 0, 1], ["a", "b", "c"], predictions=[0, 1, 1, 0, 1])
    assert fig.axes[2].title.get_color() == "red"
    history = {"train_loss": [1.0, 0.5], "train_accuracy": [0.5, 0.8],
               "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.7]}
    assert len(plotting.plot_history(history).axes) == 2
    fig = plotting.plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["x", "y"], normalize=True)
    assert fig.axes[0].get_xlabel() == "predicted class"
    assert plotting.plot_probabilities(np.array([0.2, 0.8]), ["p", "q"]).axes
    plt.close("all")


def test_show_images_needs_images():
    with pytest.raises(ValueError, match="at least one"):
        plotting.show_images([])


def test_normalization_figure_has_four_panels():
    fig = plotting.plot_normalization_axes()
    assert len(fig.axes) == 4 and "group norm" in fig.axes[3].get_title()
    plt.close(fig)


def test_confusion_matrix_refuses_labels_outside_the_classes():
    with pytest.raises(ValueError, match="targets contain 3, outside the classes 0..2"):
        plotting.plot_confusion_matrix([0, 1, 3], [0, 1, 2], list("abc"))
    with pytest.raises(ValueError, match="predictions contain -1"):
        plotting.plot_confusion_matrix([0, 1, 2], [0, -1, 2], list("abc"))


def test_legibility_problems_name_small_text_and_shrinking_figures():
    import matplotlib.pyplot as plt

    from course_utils.plotting import legibility_problems

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot([1, 2])
    ax.set_title("fine")
    assert legibility_problems(fig) == []
    ax.set_title("too small", fontsize=8)
    assert legibility_problems(fig) == ["text shown at 8 pt (e.g. 'too small')"]
    wide, wide_ax = plt.subplots(figsize=(15, 3))
    wide_ax.plot([1, 2])
    problems = legibility_problems(wide)
    assert "shown at 6.7 pt" in problems[0] and "15 in wide" in problems[-1]
    plt.close("all")


@pytest.mark.parametrize("count, ncols", [(24, 12), (16, 8), (16, 16), (3, 8)])
def test_image_grids_fit_the_notebook_and_stay_legible(count, ncols):
    names = ["automobile", "airplane", "bird"]
    labels, predictions = [i % 3 for i in range(count)], [(i + 1) % 3 for i in range(count)]
    fig = plotting.show_images(torch.rand(count, 1, 8, 8), labels, names, predictions=predictions,
                               ncols=ncols, title="a grid")
    assert fig.get_figwidth() <= plotting.NOTEBOOK_WIDTH_IN + 1e-9
    assert plotting.legibility_problems(fig) == []
    plt.close(fig)
