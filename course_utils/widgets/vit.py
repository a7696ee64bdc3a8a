"""Lesson 05's widget: what a Vision Transformer's class token attends to.

The class token's row of an attention matrix (row 0: its weights over the class token itself and
the P patches) is drawn as a heat map on the patch grid, and over the image. The matrix is one
head of one layer, the mean of a layer's heads, or the attention rollout over all the layers
(:func:`course_utils.vit.attention_rollout`).
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.vit import attention_rollout
from course_utils.widgets._core import _interactive


def _display_image(image) -> np.ndarray:
    """A torch tensor (C, H, W) or a numpy array (H, W, C), C = 1 or 3, values in [0, 1], to an
    (H, W, 3) array for imshow."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"a tensor image must have shape (3, H, W) or (1, H, W), "
                             f"got {tuple(image.shape)}")
        image = image.detach().cpu().float().permute(1, 2, 0).numpy()
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"a numpy image must have shape (H, W, 3) or (H, W, 1), got "
                         f"{image.shape}; a (C, H, W) image should be a torch tensor")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.clip(image, 0, 1)


def _check_maps(maps) -> list[torch.Tensor]:
    """The maps of one image as (heads, T, T) tensors, checked: T = 1 + P, P a square number."""
    if not isinstance(maps, (list, tuple)) or not maps:
        raise ValueError("maps must be a non-empty list of attention maps, one (heads, T, T) "
                         "tensor per layer, bottom layer first")
    maps = [torch.as_tensor(weights) for weights in maps]
    shape = tuple(maps[0].shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"each layer's maps must have shape (heads, T, T), got {shape}; for a "
                         f"batch from attention_maps, pass [weights[i] for weights in maps]")
    if any(tuple(weights.shape) != shape for weights in maps):
        raise ValueError(f"every layer's maps must have the same shape, got "
                         f"{[tuple(weights.shape) for weights in maps]}")
    patches = shape[1] - 1
    if patches < 1 or math.isqrt(patches) ** 2 != patches:
        raise ValueError(f"the maps have T = {shape[1]} tokens, so P = {patches} patches, which is "
                         f"not a square grid: T must be 1 (the class token) + side * side")
    return maps


def _is_number_up_to(value, largest: int) -> bool:
    """Whether ``value`` is an integer from 1 to ``largest`` (True and False are not numbers)."""
    return (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and 1 <= value <= largest)


def _chosen_matrix(maps: list[torch.Tensor], layer: int, head) -> tuple[torch.Tensor, str]:
    """The (T, T) attention matrix picked by ``layer`` and ``head``, and its name for a title."""
    layers, heads = len(maps), maps[0].shape[0]
    if not _is_number_up_to(layer, layers):
        raise ValueError(f"layer must be a layer number from 1 to {layers} (1 = the bottom layer), "
                         f"got {layer!r}")
    if head == "rollout":
        rollout = attention_rollout([weights[None] for weights in maps])[0]
        return rollout, f"rollout over all {layers} layers\n(layer slider ignored)"
    if head == "mean":
        return maps[layer - 1].mean(dim=0), f"layer {layer}, mean of {heads} heads"
    if not _is_number_up_to(head, heads):
        raise ValueError(f"head must be a head number from 1 to {heads}, 'mean' or 'rollout', "
                         f"got {head!r}")
    return maps[layer - 1][head - 1], f"layer {layer}, head {head}"


def class_token_attention_figure(image, maps, *, layer: int, head, class_name: str | None = None,
                                 predicted: str | None = None):
    """One image, its class token's attention over the patches, and that attention over the image.

    Args:
        image: the image as the model saw it, already in [0, 1] for display: a torch tensor
            (3, H, W) (or (1, H, W)) or a numpy array (H, W, 3).
        maps: the attention maps of this one image, a list of (heads, T, T) tensors, one per
            layer, bottom layer first; T = 1 + P with P = side * side patches. From a batch,
            ``[weights[i] for weights in model.attention_maps(images)]``.
        layer: the layer number, 1 (bottom) to ``len(maps)``.
        head: a head number from 1 to heads, ``"mean"`` (the mean of the layer's heads) or
            ``"rollout"`` (attention rollout over all the layers; ``layer`` is then ignored).
        class_name, predicted: the image's label and the model's prediction, as names, for the
            image's title.

    Row 0 of the chosen matrix is the class token's attention; its columns 1: (the patches) are
    drawn on the side x side grid. Column 0, the class token's attention to itself, is not on the
    grid: its share is printed under the heat map.
    """
    maps = _check_maps(maps)
    matrix, choice = _chosen_matrix(maps, layer, head)
    image = _display_image(image)
    side = math.isqrt(matrix.shape[-1] - 1)
    height, width = image.shape[:2]
    if height % side or width % side:
        raise ValueError(f"the image is {height} x {width} pixels, which a {side} x {side} grid of "
                         f"patches does not tile: pass the image the maps were computed from")
    class_row = matrix[0].detach().cpu().double().numpy()
    to_itself, heat = class_row[0], class_row[1:].reshape(side, side)  # patches row by row
    patch_height, patch_width = height // side, width // side
    overlay = np.kron(heat, np.ones((patch_height, patch_width)))     # (H, W), nearest upsampling

    fig, (image_ax, heat_ax, overlay_ax) = plt.subplots(1, 3, figsize=(10, 3.6))
    # Fixed margins: room for three-line titles and a two-line label (the constrained layout
    # lets the square panels' titles run off the figure).
    fig.subplots_adjust(left=0.02, right=0.98, top=0.8, bottom=0.14, wspace=0.3)
    image_ax.imshow(image, interpolation="nearest")
    described = [part for part in (class_name and f"label {class_name}",
                                   predicted and f"predicted {predicted}") if part]
    title = ", ".join(described) if described else "image"
    image_ax.set_title(title if len(title) <= 30 else "\n".join(described), fontsize=11)

    shown = heat_ax.imshow(heat, cmap="inferno", vmin=0, vmax=heat.max(), interpolation="nearest")
    heat_ax.set_title(f"{choice}\nlargest weight {heat.max():.2g}", fontsize=10)
    heat_ax.set_xlabel(f"class token to itself: {to_itself:.0%}\n(not on the grid)", fontsize=10)
    colourbar = fig.colorbar(shown, ax=heat_ax, fraction=0.046, pad=0.03)
    colourbar.ax.tick_params(labelsize=10)

    overlay_ax.imshow(image, interpolation="nearest")
    overlay_ax.imshow(overlay, cmap="inferno", vmin=0, vmax=heat.max(), alpha=0.6,
                      interpolation="nearest")
    for position in range(1, side):  # the patch grid, on pixel edges
        overlay_ax.axvline(position * patch_width - 0.5, color="white", lw=0.5, alpha=0.6)
        overlay_ax.axhline(position * patch_height - 0.5, color="white", lw=0.5, alpha=0.6)
    overlay_ax.set_title(f"over the image\n({side} x {side} patches)", fontsize=10)

    for ax in (image_ax, heat_ax, overlay_ax):
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def class_token_attention_widget(images, maps, *, class_names=None, labels=None, predictions=None):
    """Sliders for the image and the layer, a menu for the head, redrawing
    :func:`class_token_attention_figure`.

    ``images`` (N, 3, H, W) in [0, 1]; ``maps`` the list ``model.attention_maps(images)``, one
    (N, heads, T, T) tensor per layer; ``labels`` and ``predictions`` (N,) class indices, named by
    ``class_names`` when given.
    """
    import ipywidgets

    if not isinstance(maps, (list, tuple)) or not maps or torch.as_tensor(maps[0]).ndim != 4:
        raise ValueError("maps must be the list from model.attention_maps(images): one "
                         "(N, heads, T, T) tensor per layer")
    count, heads = maps[0].shape[0], maps[0].shape[1]
    if len(images) != count:
        raise ValueError(f"got {len(images)} images but maps for {count}: compute the maps with "
                         f"model.attention_maps(images) on these same images")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values is not None and len(values) != count:
            raise ValueError(f"got {len(values)} {name} for {count} images: give one per image")

    def name_of(index) -> str:
        index = int(index)
        return class_names[index] if class_names is not None else str(index)

    def draw(image, layer, head):
        class_token_attention_figure(
            images[image], [weights[image] for weights in maps], layer=layer, head=head,
            class_name=None if labels is None else name_of(labels[image]),
            predicted=None if predictions is None else name_of(predictions[image]))
        plt.show()  # into the widget's output (see _interactive)

    head_options = [("mean of heads", "mean"), *((f"head {h}", h) for h in range(1, heads + 1)),
                    ("rollout (all layers)", "rollout")]
    return _interactive(
        draw, image=ipywidgets.IntSlider(value=0, min=0, max=count - 1, description="image"),
        layer=ipywidgets.IntSlider(value=len(maps), min=1, max=len(maps), description="layer"),
        head=ipywidgets.Dropdown(options=head_options, value="mean", description="head"))
