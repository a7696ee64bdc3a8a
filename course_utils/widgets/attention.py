"""Lesson 03's widget: one query among 2-D keys, and the attention weights it gets."""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.plotting import plot_probabilities
from course_utils.widgets._core import _interactive


def attention_query_figure(keys, key_names: Sequence[str], angle_degrees: float, length: float):
    """2-D keys and one query (given by its angle and length); the attention weights it gets.

    The weights are softmax(q . k_i / sqrt(2)): turning the query changes *which* keys win,
    lengthening it (like a larger dimension without the 1/sqrt(d) scaling) makes the choice harder.
    """
    keys = np.asarray(keys, dtype=np.float64)
    if keys.ndim != 2 or keys.shape[1] != 2 or len(keys) != len(key_names):
        raise ValueError(f"keys must have shape (n, 2) with one name each, got {keys.shape}")
    if length <= 0:
        raise ValueError(f"the query's length must be positive, got {length}")
    angle = np.deg2rad(angle_degrees)
    query = length * np.array([np.cos(angle), np.sin(angle)])
    weights = torch.softmax(torch.from_numpy(keys @ query / np.sqrt(2)), dim=0).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    limit = np.abs(keys).max() * 1.4
    arrow = query / length * limit * 0.8  # the direction only: a long query would leave the plot
    for (x, y), name, weight in zip(keys, key_names, weights):
        left.scatter(x, y, s=60 + 600 * weight, color="tab:blue", alpha=0.4 + 0.6 * weight)
        left.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=10)
    left.annotate("", xy=arrow, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 2})
    left.text(*(arrow * 1.08), f"query\n(length {length:.3g})", color="tab:red", fontsize=10)
    left.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal",
             title="keys (dot size = attention weight)")
    left.axhline(0, color="grey", lw=0.5)
    left.axvline(0, color="grey", lw=0.5)
    plot_probabilities(weights, list(key_names), ax=right, color="tab:orange",
                       title=f"weights = softmax(q . k / sqrt(2))\nthe largest is {weights.max():.2f}")
    fig.tight_layout()
    return fig


def attention_query_widget(keys, key_names: Sequence[str]):
    """Sliders for the query's direction and length that redraw :func:`attention_query_figure`."""
    import ipywidgets

    def draw(angle, length):
        attention_query_figure(keys, key_names, angle, length)
        plt.show()  # into the widget's output (see _interactive)

    return _interactive(
        draw, angle=ipywidgets.FloatSlider(value=30, min=-180, max=180, step=5, description="angle"),
        length=ipywidgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1.3, step=0.05,
                                         description="length"))
