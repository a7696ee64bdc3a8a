"""Interactive widgets. Each is a thin shell around a pure function that returns a figure,
so the figure can be tested (and shown statically) without a browser."""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.plotting import plot_probabilities


def softmax_with_temperature(logits, temperature: float) -> np.ndarray:
    """softmax(logits / T) over the last axis, as a NumPy array."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(logits / temperature, dim=-1).numpy()


def temperature_figure(logits, temperature: float, class_names: Sequence[str] | None = None):
    """Logits next to softmax(logits / T), with the entropy of the result in the title."""
    probabilities = softmax_with_temperature(logits, temperature)
    entropy = float(-(probabilities * np.log(np.clip(probabilities, 1e-300, None))).sum())
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    plot_probabilities(np.asarray(logits, dtype=float) / temperature, class_names, ax=left,
                       ylim=None, color="tab:gray", ylabel="logit / T",
                       title=f"scaled logits z / T  (T = {temperature:.2f})")
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
        plt.show()  # returning the figure too would make ipywidgets display it twice

    return ipywidgets.interactive(draw, temperature=slider)


# A few classic 3x3 (and 5x5) kernels: what a first convolutional layer often learns by itself.
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x (vertical edges)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y (horizontal edges)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian (all edges)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


def convolve_grey(image: np.ndarray, kernel) -> np.ndarray:
    """Cross-correlate a grey image (H, W) with ``kernel`` (as nn.Conv2d does), same size out."""
    kernel = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be a square 2-D array of odd size, got shape {tuple(kernel.shape)}")
    grey = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
    out = torch.nn.functional.conv2d(grey, kernel[None, None], padding=kernel.shape[0] // 2)
    return out[0, 0].numpy()


def convolution_figure(image: np.ndarray, kernel_name: str):
    """A photo (turned grey), the kernel, and the feature map the kernel produces."""
    if kernel_name not in KERNELS:
        raise ValueError(f"Unknown kernel {kernel_name!r}. Choose one of: {', '.join(KERNELS)}.")
    grey = np.asarray(image, dtype=np.float32)
    grey = grey.mean(axis=-1) / 255 if grey.ndim == 3 else grey / 255
    kernel = np.asarray(KERNELS[kernel_name], dtype=np.float32)
    feature_map = convolve_grey(grey, kernel)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(12, 4.2),
                                              gridspec_kw={"width_ratios": [4, 1.3, 4]})
    left.imshow(grey, cmap="gray")
    left.set_title("input (grey levels)")
    limit = np.abs(kernel).max()
    middle.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel):
        middle.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=8)
    middle.set_title(f"kernel:\n{kernel_name}", fontsize=9)
    signed = kernel.min() < 0 and kernel_name not in ("sharpen", "identity")
    bound = np.abs(feature_map).max() if signed else None
    right.imshow(feature_map, cmap="RdBu_r" if signed else "gray",
                 vmin=-bound if signed else 0, vmax=bound if signed else 1)
    right.set_title("feature map (red +, blue -)" if signed else "feature map")
    for ax in (left, middle, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def convolution_widget(photos: dict[str, np.ndarray]):
    """Pick a photo and a kernel; see the feature map (see :func:`convolution_figure`)."""
    import ipywidgets

    def draw(photo, kernel):
        convolution_figure(photos[photo], kernel)
        plt.show()  # returning the figure would make ipywidgets display it twice

    return ipywidgets.interactive(draw, photo=ipywidgets.Dropdown(options=list(photos)),
                                  kernel=ipywidgets.Dropdown(options=list(KERNELS)))
