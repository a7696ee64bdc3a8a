"""Figures: image grids, training curves, confusion matrices, probability bars.

Every function takes data (and optionally an ``ax``) and returns the matplotlib figure. None of
them trains, moves a model or changes global state (no rcParams on import).
"""

import math
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _to_numpy_image(image) -> np.ndarray:
    """(C, H, W) or (H, W, C) or (H, W), tensor or array, to an (H, W[, 3]) array for imshow."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 1)
    return image


_LABEL_FONTSIZE = 11  # points: image titles stay readable on a projector (MIN_FONT_PT and more)


def show_images(images, labels: Sequence | None = None, class_names: Sequence[str] | None = None,
                *, predictions: Sequence | None = None, ncols: int = 8, scale: float = 1.4,
                title: str | None = None, cmap: str = "gray"):
    """A grid of images with their labels (and predictions, wrong ones in red).

    The figure is at most the notebook's width (``NOTEBOOK_WIDTH_IN``): with many columns the
    cells shrink below ``scale`` inches, never the text, and a label too long for its cell wraps.

    Args:
        images: (N, C, H, W) or (N, H, W, C) tensor/array, or a list of images.
        labels: N class indices (or strings); shown as titles.
        class_names: names for the class indices.
        predictions: N predicted class indices; shown as "label / prediction".
    """
    count = len(images)
    if count == 0:
        raise ValueError("show_images needs at least one image")
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    cell = min(scale, NOTEBOOK_WIDTH_IN / ncols)

    def name(index):
        index = int(index) if not isinstance(index, str) else index
        return class_names[index] if class_names is not None and not isinstance(index, str) else str(index)

    texts, colors = [], []
    if labels is not None:
        characters_per_line = max(4, int(cell * 72 / (0.6 * _LABEL_FONTSIZE)))  # ~0.6 em a character
        for position in range(count):
            text, color = name(labels[position]), "black"
            if predictions is not None:
                text += f" / {name(predictions[position])}"
                color = "black" if int(predictions[position]) == int(labels[position]) else "red"
            texts.append(textwrap.fill(text, characters_per_line, break_long_words=False))
            colors.append(color)
    label_lines = max((text.count("\n") + 1 for text in texts), default=0)
    label_height = 0.25 * label_lines  # inches above each image
    height = (cell + label_height) * nrows + 0.5 * bool(title)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, height), squeeze=False)
    for position, ax in enumerate(axes.flat):
        ax.axis("off")
        if position >= count:
            continue
        image = _to_numpy_image(images[position])
        top = 255 if image.dtype == np.uint8 else 1  # fixed range: faint images stay faint
        ax.imshow(image, cmap=cmap, interpolation="nearest", vmin=0, vmax=top)
        if texts:
            ax.set_title(texts[position], fontsize=_LABEL_FONTSIZE, color=colors[position])
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def plot_history(history: dict[str, list[float]], *, title: str | None = None):
    """Loss and accuracy per epoch, train and (if present) val, side by side."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for split, style in (("train", "-o"), ("val", "--s")):
        if f"{split}_loss" in history:
            loss_ax.plot(epochs, history[f"{split}_loss"], style, label=split, markersize=4)
            acc_ax.plot(epochs, history[f"{split}_accuracy"], style, label=split, markersize=4)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _confusion_matrix(targets, predictions, num_classes: int) -> np.ndarray:
    """Counts[i, j] = number of samples of true class i predicted as class j."""
    targets = np.asarray(targets, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if targets.shape != predictions.shape:
        raise ValueError(f"targets {targets.shape} and predictions {predictions.shape} differ in shape")
    for label, values in (("targets", targets), ("predictions", predictions)):
        outside = values[(values < 0) | (values >= num_classes)]
        if outside.size:
            raise ValueError(f"{label} contain {outside[0]}, outside the classes 0..{num_classes - 1}")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (targets, predictions), 1)
    return counts


def plot_confusion_matrix(targets, predictions, class_names: Sequence[str], *,
                          normalize: bool = False, ax=None, title: str = "confusion matrix"):
    """Confusion matrix with counts (or row-normalised rates) written in the cells."""
    counts = _confusion_matrix(targets, predictions, len(class_names))
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    cell = min(0.6, (NOTEBOOK_WIDTH_IN - 1.5) / len(class_names))  # inches: the whole fits the notebook
    size = max(4.0, cell * len(class_names) + 1.5)
    if ax is None:
        fig, ax = plt.subplots(figsize=(size, size))
    else:
        fig = ax.figure
    image = ax.imshow(values, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90 if len(class_names) > 12 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if cell >= 0.45:  # room for a 3-digit count at 10 pt
        threshold = values.max() / 2
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                if counts[i, j]:
                    text = f"{values[i, j]:.2f}" if normalize else str(counts[i, j])
                    ax.text(j, i, text, ha="center", va="center", fontsize=10,
                            color="white" if values[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_probabilities(probabilities, class_names: Sequence[str] | None = None, *, ax=None,
                       title: str = "", color: str = "tab:blue", ylim: tuple | None = (0, 1.1),
                       ylabel: str = "probability"):
    """A bar chart of one probability vector (or of logits, with ``ylim=None``)."""
    values = np.asarray(probabilities.detach().cpu() if isinstance(probabilities, torch.Tensor)
                        else probabilities, dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(3.0, 0.5 * len(values) + 1), 3))
    else:
        fig = ax.figure
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(values))]
    bars = ax.bar(names, values, color=color)
    ax.bar_label(bars, fmt="%.2f", fontsize=10)
    ax.set(title=title, ylabel=ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.axhline(0, color="black", linewidth=0.8)
    return fig


def plot_normalization_axes(num_samples: int = 4, num_channels: int = 6, num_groups: int = 3):
    """Which values share one mean and variance in batch, layer, instance and group norm.

    Each panel is a batch: rows are samples (N), columns channels (C), and every cell stands for
    the H x W positions of one channel of one sample. One set of values normalised together is
    highlighted; the others are normalised the same way, separately.
    """
    group_size = num_channels // num_groups
    highlight = {
        "batch norm\none channel, all samples": lambda n, c: c == 1,
        "layer norm\none sample, all channels": lambda n, c: n == 1,
        "instance norm\none sample, one channel": lambda n, c: n == 1 and c == 1,
        f"group norm ({num_groups} groups)\none sample, one group": lambda n, c: n == 1 and c // group_size == 0,
    }
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), layout="constrained")
    for ax, (title, chosen) in zip(axes.flatten(), highlight.items()):
        for n in range(num_samples):
            for c in range(num_channels):
                color = "tab:orange" if chosen(n, c) else "#dde6f0"
                ax.add_patch(plt.Rectangle((c + 0.06, n + 0.06), 0.88, 0.88, color=color))
                for step in (0.36, 0.64):  # a hint of the H x W pixels inside each cell
                    ax.plot([c + 0.06, c + 0.94], [n + step] * 2, color="white", lw=0.6)
                    ax.plot([c + step] * 2, [n + 0.06, n + 0.94], color="white", lw=0.6)
        ax.set_xlim(0, num_channels)
        ax.set_ylim(num_samples, 0)
        ax.set_aspect("equal")
        ax.set_xticks(np.arange(num_channels) + 0.5, [f"c{c}" for c in range(num_channels)])
        ax.set_yticks(np.arange(num_samples) + 0.5, [f"x{n}" for n in range(num_samples)])
        ax.set_xlabel("channels C (each cell: H x W values)")
        ax.set_title(title, fontsize=10)
    for ax in axes[:, 0]:
        ax.set_ylabel("samples in the batch N")
    fig.suptitle("Same formula, different sets: the orange values share one mean and variance")
    return fig


# A notebook's output area is about 1000 px wide in JupyterLab at a 1400 px window; matplotlib's
# inline figures are 100 dpi, so a figure up to 10 in wide is shown at its own size, and a wider
# one is shrunk with all its text.
NOTEBOOK_WIDTH_IN = 10.0
MIN_FONT_PT = 10.0


def legibility_problems(fig) -> list[str]:
    """What would be hard to read on a projector: text smaller than ``MIN_FONT_PT`` once the
    figure is shrunk to the notebook's width (``NOTEBOOK_WIDTH_IN``). Empty when all is legible."""
    from matplotlib.text import Text

    width = fig.get_figwidth()
    shrink = min(1.0, NOTEBOOK_WIDTH_IN / width)
    fig.draw_without_rendering()  # lays out tick labels, so they are checked too
    small = {}
    for text in fig.findobj(Text):
        label = text.get_text().strip()
        if label and text.get_visible() and text.get_fontsize() * shrink < MIN_FONT_PT - 1e-6:
            small.setdefault(round(text.get_fontsize() * shrink, 1), label)
    problems = [f"text shown at {size:g} pt (e.g. {label[:30]!r})" for size, label in sorted(small.items())]
    if problems and shrink < 1:
        problems.append(f"the figure is {width:g} in wide and shrinks to the notebook's "
                        f"{NOTEBOOK_WIDTH_IN:g} in")
    return problems


def plot_step_losses(ax, losses, *, window: int = 20, label: str = "mean of {window}"):
    """Every step's loss in light grey and its moving average over ``window`` steps (fewer when
    the run is shorter), centred on the steps it averages."""
    losses = np.asarray(losses, dtype=float)
    ax.plot(losses, color="lightgrey", label="every step")
    window = max(1, min(window, len(losses)))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax.plot(np.arange(len(smooth)) + window // 2, smooth, color="C0",
            label=label.format(window=window))

