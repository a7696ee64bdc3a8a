"""Lesson 02's widget: a photo through a classic convolution kernel, and the feature map."""

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.widgets._core import _interactive

# A few classic 3x3 kernels: what a first convolutional layer often learns by itself.
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x (vertical edges)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y (horizontal edges)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian (all edges)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


def _convolve_grey(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlate a grey image (H, W) with an odd square kernel, as nn.Conv2d does; the
    zero padding keeps the size."""
    grey = torch.from_numpy(image)[None, None]                  # (1, 1, H, W)
    weight = torch.from_numpy(kernel)[None, None]               # (1, 1, k, k)
    return torch.nn.functional.conv2d(grey, weight, padding=kernel.shape[0] // 2)[0, 0].numpy()


def convolution_figure(image: np.ndarray, kernel_name: str):
    """A photo (turned grey), the kernel, and the feature map the kernel produces.

    ``image`` is (H, W) or (H, W, 3) with values 0-255; ``kernel_name`` is one of ``KERNELS``.
    """
    if kernel_name not in KERNELS:
        raise ValueError(f"Unknown kernel {kernel_name!r}. Choose one of: {', '.join(KERNELS)}.")
    grey = np.asarray(image, dtype=np.float32)
    grey = grey.mean(axis=-1) / 255 if grey.ndim == 3 else grey / 255
    kernel = np.asarray(KERNELS[kernel_name], dtype=np.float32)
    feature_map = _convolve_grey(grey, kernel)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(10, 3.9),
                                              gridspec_kw={"width_ratios": [4, 1.5, 4]})
    left.imshow(grey, cmap="gray")
    left.set_title("input (grey levels)")
    limit = np.abs(kernel).max()
    middle.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel):
        middle.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=10,
                    color="white" if abs(value) > limit / 2 else "black")
    middle.set_title(f"kernel:\n{kernel_name}", fontsize=10)
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
        plt.show()  # into the widget's output (see _interactive)

    return _interactive(draw, photo=ipywidgets.Dropdown(options=list(photos)),
                        kernel=ipywidgets.Dropdown(options=list(KERNELS)))
