"""Lesson 06's widget: compose data augmentations and tune their strength, live.

Each row of the figure is one image: the original, then a few augmented views of it, each drawn
by :func:`course_utils.augment.compose` (the pipeline the lesson trains with), so what the
learner sees is what the model would see.
"""

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.augment import DEFORMATIONS, check_images, compose
from course_utils.config import seeded
from course_utils.widgets._core import _interactive

DEFAULT_DEFORMATIONS = ["crop and resize", "flip", "colour jitter"]


def _as_image_list(images) -> list[torch.Tensor]:
    """One image (C, H, W), a batch (N, C, H, W) or a list of images, as a checked list."""
    if isinstance(images, torch.Tensor):
        check_images(images)  # says what is wrong with a tensor of another shape
        images = [images] if images.ndim == 3 else list(images)
    images = list(images)
    if not images:
        raise ValueError("images is empty: pass one image (C, H, W) or a list of them")
    for image in images:
        check_images(image)
        if image.ndim != 3:
            raise ValueError(f"each image of the list must be one image (C, H, W), got shape "
                             f"{tuple(image.shape)}; pass a batch (N, C, H, W) as it is, not in a "
                             f"list")
    return images


def _for_display(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image in [0, 1], C = 1 or 3, as an (H, W, 3) array for imshow."""
    shown = image.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()  # (H, W, C)
    return np.repeat(shown, 3, axis=-1) if shown.shape[-1] == 1 else shown


def augmentation_figure(images, names, strength: float, *, seed: int = 0, copies: int = 4,
                        titles=None):
    """Each image next to ``copies`` augmented views of it.

    Args:
        images: a float image (3, H, W) in [0, 1], a list of a few of them (one row each, sizes
            may differ) or a batch (N, 3, H, W).
        names: the deformations, keys of ``course_utils.augment.DEFORMATIONS``, applied in this
            order; empty: no deformation (every view equals the original).
        strength: in [0, 1], for all of them (see ``compose``).
        seed: the draw; the same seed draws the same views. The caller's random numbers are left
            as they were (``course_utils.config.seeded``).
        copies: how many views per image.
        titles: one name per image (e.g. its class), written beside its row.

    Views are drawn one after the other from one generator seeded with ``seed`` for each row, so
    they differ from one another, and rows of the same size get the same random choices in each
    column (the same crop, the same flip...). Each row's pipeline is built for its own size
    (``compose(names, strength, image_size=H)``).
    """
    images = _as_image_list(images)
    names = [names] if isinstance(names, str) else list(names)
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be a whole number of views >= 1, got {copies!r}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images: give one per image")
    if names:  # compose checks the names and the strength
        pipelines = [compose(names, strength, image_size=image.shape[-2]) for image in images]
        # No-break spaces inside the names, so that a line breaks only between two of them.
        described = " \u2192 ".join(name.replace(" ", "\u00a0") for name in names)
        described += f"   (strength\u00a0{strength:.2f})"
    else:
        pipelines = [None] * len(images)
        described = "no deformation: every view is the original"

    columns, rows = copies + 1, len(images)
    cell = min(2.0, 10 / columns)  # inches per panel: the figure is at most 10 inches wide
    characters_per_line = int(columns * cell * 72 / (0.6 * 12))  # about 0.6 em a character, 12 pt
    header = [line.replace("\u00a0", " ") for line in textwrap.wrap(described, characters_per_line)]
    height = rows * (cell + 0.3) + 0.3 * len(header) + 0.2  # a title line above each row
    fig, axes = plt.subplots(rows, columns, squeeze=False, figsize=(columns * cell, height),
                             layout="constrained")
    fig.suptitle("\n".join(header), fontsize=12)
    for row, (image, augment) in enumerate(zip(images, pipelines)):
        views = []
        with seeded(seed):
            for _ in range(copies):
                views.append(image.clone() if augment is None else augment(image))
        for column, (ax, shown) in enumerate(zip(axes[row], [image, *views])):
            ax.imshow(_for_display(shown), interpolation="nearest", vmin=0, vmax=1)
            ax.set_title("original" if column == 0 else f"view {column}", fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        if titles is not None:
            axes[row, 0].set_ylabel(str(titles[row]), fontsize=11)
    return fig


def augmentation_widget(images, *, names=None, strength: float = 0.5, copies: int = 4):
    """A checkbox per deformation, a strength slider and a "new draw" button, redrawing
    :func:`augmentation_figure`.

    ``images``: as for :func:`augmentation_figure` (a few images (3, H, W) in [0, 1]);
    ``names``: the deformations ticked at the start (default: crop and resize, flip, colour
    jitter). Ticked deformations apply in the order of the checkboxes, that of DEFORMATIONS.
    """
    import ipywidgets

    images = _as_image_list(images)
    chosen = DEFAULT_DEFORMATIONS if names is None else ([names] if isinstance(names, str)
                                                         else list(names))
    if chosen:
        compose(chosen, strength)  # the augment module's errors for an unknown name or strength

    checkboxes = {name: ipywidgets.Checkbox(value=name in chosen, description=name, indent=False)
                  for name in DEFORMATIONS}
    # Redrawn when the slider is let go: a figure of 3 rows takes about a second to draw.
    strength_slider = ipywidgets.FloatSlider(value=strength, min=0, max=1, step=0.05,
                                             description="strength", continuous_update=False)
    draw_number = ipywidgets.BoundedIntText(value=0, min=0, max=10**6, description="draw",
                                            layout=ipywidgets.Layout(width="160px"))
    new_draw = ipywidgets.Button(description="new draw")

    def next_draw(_button):
        draw_number.value += 1  # a new value redraws

    new_draw.on_click(next_draw)

    def draw(strength, seed, **ticked):
        names = [name for name in DEFORMATIONS if ticked[name]]
        augmentation_figure(images, names, strength, seed=seed, copies=copies)
        plt.show()  # into the widget's output (see _interactive)

    widget = _interactive(draw, strength=strength_slider, seed=draw_number, **checkboxes)
    order_note = ipywidgets.HTML("Ticked deformations apply one after the other, in the order "
                                 "listed (left to right, row by row).")
    grid = ipywidgets.GridBox(list(checkboxes.values()),
                              layout=ipywidgets.Layout(grid_template_columns="repeat(3, 220px)"))
    widget.children = (grid, order_note, strength_slider,
                       ipywidgets.HBox([new_draw, draw_number]), widget.out)
    return widget
