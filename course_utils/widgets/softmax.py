"""Lesson 01's widget: how the temperature T reshapes softmax(z / T)."""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.plotting import plot_probabilities
from course_utils.widgets._core import _interactive


def temperature_figure(logits, temperature: float, class_names: Sequence[str] | None = None):
    """Logits next to softmax(logits / T), with the entropy of the result in the title."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    probabilities = torch.softmax(torch.from_numpy(scaled), dim=-1).numpy()
    entropy = float(-(probabilities * np.log(np.clip(probabilities, 1e-300, None))).sum())
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    plot_probabilities(scaled, class_names, ax=left, ylim=None, color="tab:gray",
                       ylabel="logit / T", title=f"scaled logits z / T  (T = {temperature:.2f})")
    plot_probabilities(probabilities, class_names, ax=right, color="tab:orange",
                       title=f"softmax(z / T): entropy {entropy:.2f} nats "
                             f"(max {np.log(len(probabilities)):.2f})")
    fig.tight_layout()
    return fig


def temperature_widget(logits, class_names: Sequence[str] | None = None):
    """A slider over the temperature T that redraws :func:`temperature_figure`."""
    import ipywidgets

    slider = ipywidgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1.3, step=0.05,
                                       description="T", continuous_update=True)

    def draw(temperature):
        temperature_figure(logits, temperature, class_names)
        plt.show()  # into the widget's output (see _interactive)

    return _interactive(draw, temperature=slider)
