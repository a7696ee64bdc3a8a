"""Convolutional building blocks and small networks, as taught in lesson 02.

Everything here is written out in lesson 02 first; later lessons import it from here. The
networks are small versions of the classic designs, sized for 32x32 images (glyphs, CIFAR-10)
so that they train in seconds on a CPU:

* :class:`VGGNet`: stacks of 3x3 convolutions, 2x2 max-pooling, channels doubled after each pool;
* :class:`ResNet`: a stem, stages of :class:`BasicBlock` or :class:`Bottleneck` residual blocks
  (optionally with :class:`SqueezeExcite`), global average pooling and a linear head;
* :class:`ConvNeXt`: a patchify stem, stages of :class:`ConvNeXtBlock`, downsampling layers;
* :class:`PlainNet` and its residual twin, for the degradation experiment.

All blocks take and return tensors of shape (N, C, H, W).
"""

import torch
from torch import nn


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1: keeps the size at stride 1, halves it at stride 2."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The identity when shapes match, else a strided 1x1 convolution + BN (a "projection")."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation [Hu et al., 2018]: re-weight channels by a learned gate in (0, 1).

    squeeze: global average pool (N, C, H, W) -> (N, C); excite: C -> C/r -> C with ReLU then
    sigmoid; scale: multiply each channel of the input by its gate.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3))                                   # (N, C)
        gates = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))  # (N, C)
        return x * gates[:, :, None, None]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut: out = relu(F(x) + shortcut(x)).

    The shortcut is the identity unless the block changes the size or the number of channels;
    then it is a 1x1 convolution with the same stride (the "projection" shortcut).
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *,
                 squeeze_excite: bool = False, residual: bool = True):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se = SqueezeExcite(out_channels) if squeeze_excite else nn.Identity()
        self.residual = residual
        self.shortcut = shortcut(in_channels, out_channels, stride) if residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        if self.residual:
            out = out + self.shortcut(x)
        return torch.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with batch norm, plus a shortcut [He et al., 2016].

    Used from ResNet-50 on: the 3x3 convolution runs on 4x fewer channels, which makes deep
    networks affordable.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *,
                 squeeze_excite: bool = False, residual: bool = True):
        super().__init__()
        out_channels = channels * self.expansion
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False),
                                    nn.BatchNorm2d(channels), nn.ReLU())
        self.conv = nn.Sequential(_conv3x3(channels, channels, stride),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        self.expand = nn.Sequential(nn.Conv2d(channels, out_channels, 1, bias=False),
                                    nn.BatchNorm2d(out_channels))
        self.se = SqueezeExcite(out_channels) if squeeze_excite else nn.Identity()
        self.residual = residual
        self.shortcut = shortcut(in_channels, out_channels, stride) if residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.expand(self.conv(self.reduce(x))))
        if self.residual:
            out = out + self.shortcut(x)
        return torch.relu(out)


class ResNet(nn.Module):
    """A small ResNet for 32x32 images: 3x3 stem, stages of blocks, global average pool, linear.

    ``depths[i]`` blocks with ``widths[i]`` channels in stage i; every stage after the first
    halves the resolution with a stride-2 first block, as ResNet does after its stem. (The
    ImageNet ResNets start with a 7x7 stride-2 convolution and a max-pool, which would shrink
    32x32 images too early; CIFAR ResNets use a 3x3 stem like this one.)
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, widths=(16, 32, 64),
                 depths=(2, 2, 2), block: type = BasicBlock, squeeze_excite: bool = False):
        super().__init__()
        self.stem = nn.Sequential(_conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU())
        layers, channels = [], widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths)):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(block(channels, width, stride, squeeze_excite=squeeze_excite))
                channels = width * block.expansion
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the head sees: the last stage's maps averaged over the image, (N, C)."""
        return self.stages(self.stem(x)).mean(dim=(2, 3))  # global average pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))               # (N, num_classes)


class VGGNet(nn.Module):
    """A small VGG: per stage, ``depth`` 3x3 conv + BN + ReLU, then 2x2 max-pool; then a linear head.

    Channels double after every pool ([Simonyan & Zisserman, 2015]; BN was added later and makes
    the small version train in a few epochs).
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, widths=(16, 32, 64),
                 depth: int = 2):
        super().__init__()
        layers, channels = [], in_channels
        for width in widths:
            for _ in range(depth):
                layers += [_conv3x3(channels, width), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor, at every position separately."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)                       # (N, H, W, C)
        return super().forward(x).permute(0, 3, 1, 2)   # back to (N, C, H, W)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block [Liu et al., 2022]: depthwise 7x7, LayerNorm, 1x1 up (x4), GELU, 1x1 down,
    layer scale, residual. The 1x1 convolutions are written as Linear layers on (N, H, W, C).
    """

    def __init__(self, dim: int, *, mlp_ratio: int = 4, kernel_size: int = 7,
                 layer_scale_init: float = 1e-6):
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, mlp_ratio * dim)
        self.project = nn.Linear(mlp_ratio * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.depthwise(x).permute(0, 2, 3, 1)                  # (N, H, W, C)
        out = self.project(nn.functional.gelu(self.expand(self.norm(out))))
        return x + (self.gamma * out).permute(0, 3, 1, 2)            # (N, C, H, W)


class ConvNeXt(nn.Module):
    """A small ConvNeXt: a 2x2 stride-2 "patchify" stem, stages of blocks separated by
    LayerNorm + 2x2 stride-2 convolutions, global average pool, LayerNorm, linear head.
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, widths=(32, 64, 128),
                 depths=(1, 1, 1), kernel_size: int = 7, layer_scale_init: float = 1e-6):
        super().__init__()
        layers = [nn.Conv2d(in_channels, widths[0], kernel_size=2, stride=2),
                  LayerNorm2d(widths[0])]
        for stage, (width, depth) in enumerate(zip(widths, depths)):
            if stage > 0:
                layers += [LayerNorm2d(widths[stage - 1]),
                           nn.Conv2d(widths[stage - 1], width, kernel_size=2, stride=2)]
            layers += [ConvNeXtBlock(width, kernel_size=kernel_size,
                                     layer_scale_init=layer_scale_init) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(widths[-1])
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x).mean(dim=(2, 3))))


class PlainNet(nn.Module):
    """``depth`` 3x3 conv layers of equal width (BN + ReLU), with or without shortcuts.

    With ``residual=True`` every pair of layers becomes a :class:`BasicBlock`, so the plain and
    residual networks have the same layers and parameters; only the shortcuts differ.
    """

    def __init__(self, *, num_classes: int, in_channels: int = 1, width: int = 16,
                 depth: int = 20, residual: bool = False):
        super().__init__()
        if depth < 3 or depth % 2 == 0:
            raise ValueError(f"depth counts the stem plus pairs of layers: use an odd number "
                             f">= 3, got {depth}")
        self.stem = nn.Sequential(_conv3x3(in_channels, width), nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(*[BasicBlock(width, width, residual=residual)
                                      for _ in range((depth - 1) // 2)])
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))
