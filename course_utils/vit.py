"""The Vision Transformer [Dosovitskiy et al., 2021], as taught in lesson 05.

An image is cut into square patches; each patch, flattened, is mapped linearly to a vector of
size ``dim`` (a token). A learned class token is put in front of the patch tokens, learned
position embeddings are added, and a stack of pre-norm Transformer encoder layers (lesson 04's
:class:`~course_utils.transformer.EncoderLayer`, with a GELU feed-forward) mixes the tokens.
The class token's final vector, layer-normed, goes through a linear head to the logits.

The layout follows torchvision's ``vit_b_16`` closely enough to have exactly its parameter
count; :func:`vit_config` gives the paper's model sizes.
"""

import math

import torch
from torch import nn

from course_utils.transformer import EncoderLayer


def _check_patch_size(image_size: int, patch_size: int) -> None:
    if image_size % patch_size != 0:
        raise ValueError(f"image_size ({image_size}) must be divisible by patch_size "
                         f"({patch_size}), so that the patches tile the image exactly; e.g. "
                         f"224 / 16 gives 14 x 14 patches")


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Images (N, C, H, W) -> patches (N, P, C * patch_size**2), P = (H / p) * (W / p).

    Patches are numbered row by row, left to right; each is flattened channel first, then row,
    then column, the layout of a convolution's kernel (C, p, p), so a linear map of these vectors
    and a convolution with kernel = stride = p compute the same thing.
    """
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    for size in (h, w):
        _check_patch_size(size, patch_size)
    rows, columns = h // patch_size, w // patch_size
    patches = images.reshape(n, c, rows, patch_size, columns, patch_size)
    patches = patches.permute(0, 2, 4, 1, 3, 5)                # (N, rows, columns, C, p, p)
    return patches.reshape(n, rows * columns, c * patch_size * patch_size)


def unpatchify(patches: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The inverse of :func:`patchify` for square images: (N, P, C * p**2) -> (N, C, H, W)."""
    if patches.ndim != 3:
        raise ValueError(f"expected patches (N, P, C * p * p), got shape {tuple(patches.shape)}")
    n, count, size = patches.shape
    side, channels = math.isqrt(count), size // (patch_size * patch_size)
    if side * side != count or channels * patch_size * patch_size != size:
        raise ValueError(f"{count} patches of {size} values are not a square grid of "
                         f"{patch_size} x {patch_size} patches")
    grid = patches.reshape(n, side, side, channels, patch_size, patch_size)
    grid = grid.permute(0, 3, 1, 4, 2, 5)                        # (N, C, rows, p, columns, p)
    return grid.reshape(n, channels, side * patch_size, side * patch_size)


def attention_rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout [Abnar & Zuidema, 2020]: how much each output token draws on each input
    token through all the layers. ``maps`` are the layers' attention weights (N, heads, T, T),
    bottom layer first (:meth:`VisionTransformer.attention_maps`). Per layer, the heads are
    averaged and the residual connection is accounted for as half the weight on the token
    itself, ``0.5 A + 0.5 I`` (rows renormalised); the layers' matrices are multiplied, the top
    layer's on the left. Returns (N, T, T), whose rows sum to 1; row 0 is the class token's.
    """
    if not maps:
        raise ValueError("attention_rollout needs the attention maps of at least one layer")
    rollout = None
    for weights in maps:
        mixed = weights.mean(dim=1)                                        # (N, T, T)
        mixed = 0.5 * mixed + 0.5 * torch.eye(mixed.shape[-1], device=mixed.device)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout


class PatchEmbedding(nn.Module):
    """Images (N, C, H, W) -> patch tokens (N, P, dim), P = (H / patch_size) * (W / patch_size).

    A linear map of every flattened patch is a convolution whose kernel and stride are both the
    patch size: each output position sees exactly one patch, and patches do not overlap.
    Patches are numbered row by row, left to right.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int):
        super().__init__()
        _check_patch_size(image_size, patch_size)
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.projection = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, expected))}), got "
                             f"{tuple(images.shape)}: resize or crop them to {self.image_size} x "
                             f"{self.image_size}, or build the model for their size")
        patches = self.projection(images)           # (N, dim, H / patch_size, W / patch_size)
        return patches.flatten(2).transpose(1, 2)   # (N, P, dim)


class VisionTransformer(nn.Module):
    """Images (N, in_channels, image_size, image_size) -> logits (N, num_classes).

    ``depth`` pre-norm encoder layers of width ``dim`` with ``num_heads`` heads and a GELU
    feed-forward of width ``int(dim * mlp_ratio)``; ``dropout`` after the position embeddings
    and inside every layer. ``fused=True`` (the default, for training) uses PyTorch's fused
    attention kernel in :meth:`forward`; ``False`` computes the weights step by step, as
    :meth:`attention_maps` always does.
    """

    def __init__(self, *, image_size: int, patch_size: int, in_channels: int = 3, num_classes: int,
                 dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, fused: bool = True):
        super().__init__()
        self.patch_embedding = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.num_patches = self.patch_embedding.num_patches
        self.class_token = nn.Parameter(torch.empty(1, 1, dim))
        self.position_embedding = nn.Parameter(torch.empty(1, 1 + self.num_patches, dim))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList([
            EncoderLayer(dim, num_heads, mlp_ratio=mlp_ratio, activation=nn.GELU, dropout=dropout,
                         norm_first=True, fused=fused)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)  # pre-norm layers output raw sums: normalise once at the end
        self.head = nn.Linear(dim, num_classes)
        # Small random starts (std 0.02, cut at two standard deviations), as in BERT and timm.
        for parameter in (self.class_token, self.position_embedding):
            nn.init.trunc_normal_(parameter, std=0.02, a=-0.04, b=0.04)

    def _tokens(self, images: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(images)                            # (N, P, dim)
        class_token = self.class_token.expand(patches.shape[0], -1, -1)   # (N, 1, dim)
        tokens = torch.cat([class_token, patches], dim=1)                 # (N, 1 + P, dim)
        return self.dropout(tokens + self.position_embedding)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Every token after the last layer, normalised: (N, 1 + P, dim), the class token first."""
        x = self._tokens(images)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """What the head sees: the class token's vector after the last layer, normalised, (N, dim)."""
        return self.encode(images)[:, 0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # (N, num_classes)

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's self-attention weights, (N, heads, 1 + P, 1 + P) each, bottom layer
        first; token 0 is the class token, so ``maps[i][:, :, 0, 1:]`` is how the class token
        attends to the patches. Computed without gradients; call ``eval()`` first if the model
        has dropout."""
        x = self._tokens(images)
        maps = []
        for layer in self.layers:
            x, weights = layer(x, need_weights=True)
            maps.append(weights)
        return maps


_VIT_SIZES = {  # [Dosovitskiy et al., 2021], table 1; the MLP's width is 4 dim in both
    "B": dict(dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "L": dict(dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
}
VIT_NAMES = ("ViT-B/16", "ViT-B/32", "ViT-L/16", "ViT-L/32")


def vit_config(name: str) -> dict:
    """The :class:`VisionTransformer` arguments of one of the paper's models, ``VIT_NAMES``, for
    224 x 224 RGB images and the 1000 ImageNet classes: ``VisionTransformer(**vit_config(name))``.
    "ViT-B/16" is the Base size with 16 x 16 patches."""
    if name not in VIT_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(VIT_NAMES)}")
    size, patch_size = name.removeprefix("ViT-").split("/")
    return dict(image_size=224, patch_size=int(patch_size), in_channels=3, num_classes=1000,
                **_VIT_SIZES[size])
