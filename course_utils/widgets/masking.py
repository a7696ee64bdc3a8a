"""Lesson 07's widget: remove a share of an image's patches and let the masked auto-encoder
paint them back, live.

Each row is one image: what the encoder is given (the visible patches, the removed ones grey),
what the decoder makes of it (its prediction of the removed patches, the visible ones pasted
back as they were), and the original, as in the figure of He et al. (2022).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.widgets._core import _interactive


def _shown(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Normalised images (N, 3, H, W) back to [0, 1], as (N, H, W, 3) for imshow."""
    pixels = images.detach().cpu() * std.cpu() + mean.cpu()
    return pixels.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def masking_figure(model, images: torch.Tensor, mask_ratio: float, *, mean: torch.Tensor,
                   std: torch.Tensor, seed: int = 0, titles=None):
    """Masked input / reconstruction / original for each of ``images`` (normalised with
    ``mean`` and ``std``, on the model's device), ``mask_ratio`` of the patches removed; the
    same ``seed`` removes the same patches. The title gives the error on the removed patches."""
    from course_utils.pretext import mae_pictures, masked_mse
    from course_utils.vit import patchify

    if not 0 <= mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    masked, pasted, original = mae_pictures(model, images, mask_ratio, seed=seed)
    grey = masked == 0
    shown_masked = _shown(masked, mean, std)
    shown_masked[grey.all(dim=1).cpu().numpy()] = 0.5
    with torch.no_grad():
        prediction, mask = model(images, mask_ratio, torch.Generator().manual_seed(seed))
        error = masked_mse(prediction, patchify(images, model.patch_size), mask).item()
    columns = [("masked input", shown_masked), ("reconstruction", _shown(pasted, mean, std)),
               ("original", _shown(original, mean, std))]
    rows = len(images)
    fig, axes = plt.subplots(rows, 3, squeeze=False, figsize=(6.6, 2.2 * rows + 0.6),
                             layout="constrained")
    kept = int(model.encoder.num_patches * (1 - mask_ratio))
    fig.suptitle(f"{mask_ratio:.0%} of the patches removed ({kept} of "
                 f"{model.encoder.num_patches} visible); error on them {error:.3f}", fontsize=12)
    for row in range(rows):
        for column, (title, pictures) in enumerate(columns):
            ax = axes[row, column]
            ax.imshow(pictures[row], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=11)
        if titles is not None:
            axes[row, 0].set_ylabel(str(titles[row]), fontsize=11)
    return fig


def masking_widget(model, images: torch.Tensor, *, mean: torch.Tensor, std: torch.Tensor,
                   mask_ratio: float = 0.75, titles=None):
    """A mask-ratio slider and a "new draw" button redrawing :func:`masking_figure`."""
    import ipywidgets

    ratio_slider = ipywidgets.FloatSlider(value=mask_ratio, min=0.0, max=0.95, step=0.05,
                                          description="mask ratio", continuous_update=False)
    draw_number = ipywidgets.BoundedIntText(value=0, min=0, max=10**6, description="draw",
                                            layout=ipywidgets.Layout(width="160px"))
    new_draw = ipywidgets.Button(description="new draw")

    def next_draw(_button):
        draw_number.value += 1

    new_draw.on_click(next_draw)

    def draw(mask_ratio, seed):
        masking_figure(model, images, mask_ratio, mean=mean, std=std, seed=seed, titles=titles)
        plt.show()

    widget = _interactive(draw, mask_ratio=ratio_slider, seed=draw_number)
    widget.children = (ratio_slider, ipywidgets.HBox([new_draw, draw_number]), widget.out)
    return widget
