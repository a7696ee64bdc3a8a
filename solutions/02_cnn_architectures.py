# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (dl-course)
#     language: python
#     name: dl-course
# ---

# %% [markdown]
# # Lesson 02 · CNN architectures: from AlexNet to ConvNeXt
#
# Lesson 01 ended with a linear classifier: one template per class, and no way to represent
# "a 7 with or without a crossbar". Convolutional networks stack many small, learned filters so
# that later layers can combine what earlier layers detected. This lesson follows the
# architectures that made image classification work, and asks of each *what problem did it
# solve?*
#
# **You will learn**
#
# 1. to compute what a convolutional layer costs: output size, parameters, multiply-adds,
#    memory; and where AlexNet keeps its parameters versus its compute;
# 2. VGG's design rules, and why two 3x3 convolutions beat one 5x5 (receptive fields);
# 3. the *degradation problem* of deep plain networks, shown by experiment, and how residual
#    connections (ResNet) remove it;
# 4. batch, layer, instance and group normalisation as one formula over different axes;
# 5. squeeze-and-excitation and the ConvNeXt block;
# 6. how images are pre-processed, and how to choose an architecture without being a hero;
# 7. how small VGG, ResNet and ConvNeXt networks compare when trained side by side.
#
# Exercises are checked as in lesson 01: ⌛ not done (the reference is used), ❌ what failed,
# ✅ done.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
import torchvision.transforms.functional as TF

from course_utils import cnn, setup
from course_utils.complexity import count_parameters, format_table, layer_table, total_macs
from course_utils.data import load_dataset
from course_utils.exercises import lesson02 as checks
from course_utils.photos import load_photo, load_photos
from course_utils.plotting import plot_normalization_axes, show_images
from course_utils.training import evaluate, fit
from course_utils.widgets import convolution_figure, convolution_widget

cfg = setup(seed=0)

# %%
# Degradation experiment (section 4): plain vs residual networks on the 8x8 digits.
DEGRADATION_EPOCHS = cfg.pick(quick=6, full=30)
SHALLOW_DEPTH, DEEP_DEPTH, DEGRADATION_WIDTH = 5, 31, 16
# Side-by-side comparison (section 9) on the synthetic glyphs.
NUM_GLYPHS = cfg.pick(quick=5_000, full=60_000)
GLYPH_SIZE = cfg.pick(quick=16, full=32)
COMPARE_EPOCHS = cfg.pick(quick=5, full=30)
BATCH_SIZE = 64
LEARNING_RATE = 2e-3

# %% [markdown]
# ## 1. Convolution in one picture
#
# A convolutional layer slides small filters (*kernels*) over the image. At every position a
# filter computes a weighted sum of the pixels under it (plus a bias): one number of the output
# *feature map*. The same weights are used at every position (**weight sharing**), so a filter
# that detects a vertical edge detects it anywhere, and the layer needs far fewer parameters
# than a fully-connected one. Strictly speaking deep-learning libraries compute a
# cross-correlation (the kernel is not flipped); since the kernel is learned, nobody minds.
#
# The widget applies classic hand-made kernels to real photographs that ship with
# scikit-image, scikit-learn and matplotlib. The first layer of a trained CNN learns filters
# much like these edge and blob detectors by itself [Krizhevsky et al., 2012].

# %%
photos = load_photos(include_textures=False)
fig = convolution_figure(photos["chelsea"], "Sobel x (vertical edges)")

# %%
convolution_widget(photos)

# %% [markdown]
# ### Exercise 1: output size
#
# A convolution (or pooling) with kernel size $k$, stride $s$ and padding $p$ maps an input of
# size $n$ to
#
# $$n_{\text{out}} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .$$
#
# (Count the positions where the kernel fits inside the padded input, stepping $s$ at a time.)

# %%
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a convolution or pooling layer."""
    # TODO: the formula above; // rounds down.
    ### BEGIN SOLUTION
    return (size + 2 * padding - kernel_size) // stride + 1
    ### END SOLUTION


# %%
conv_output_size = checks.check_conv_output_size(conv_output_size)
print("torchvision's AlexNet conv1 (11x11, stride 4, padding 2) on a 227x227 image:",
      conv_output_size(227, kernel_size=11, stride=4, padding=2))
print("the same layer on a 224x224 image:", conv_output_size(224, 11, 4, 2))

# %% [markdown]
# ### Exercise 2: parameters and multiply-adds
#
# A `Conv2d` with $C_{in}$ input channels, $C_{out}$ filters of size $k \times k$ has
# $C_{out}(C_{in} k^2 + 1)$ parameters (weights and one bias per filter). Each output value is
# one dot product of length $C_{in} k^2$, so the layer performs
# $C_{out} H_{out} W_{out} \cdot C_{in} k^2$ multiply-adds (MACs; we do not count the bias).
# Return both as a tuple.

# %%
def conv_cost(in_channels: int, out_channels: int, kernel_size: int, out_height: int,
              out_width: int) -> tuple[int, int]:
    """(parameters including biases, multiply-adds without biases) of a Conv2d layer."""
    # TODO: weights per filter = in_channels * kernel_size ** 2
    ### BEGIN SOLUTION
    per_filter = in_channels * kernel_size ** 2
    return out_channels * (per_filter + 1), out_channels * out_height * out_width * per_filter
    ### END SOLUTION


# %%
conv_cost = checks.check_conv_cost(conv_cost)
params, macs = conv_cost(3, 64, 11, 56, 56)
print(f"AlexNet conv1: {params:,} parameters, {macs / 1e6:.1f} M multiply-adds")

# %% [markdown]
# ## 2. AlexNet: where the parameters are, and where the compute is
#
# AlexNet [Krizhevsky et al., 2012] won the 2012 ImageNet challenge by a wide margin and
# started the deep-learning era of computer vision: five convolutional layers, three
# fully-connected ones, ReLU activations, dropout, and a 1000-way softmax, trained on two GTX 580
# GPUs with 3 GB each. Rather than copying its layer table from a slide, we compute it from the
# model: `course_utils.complexity.layer_table` runs one image through the network with a hook on
# every layer and records the output shape, the memory of that output (float32, one image), the
# layer's own parameters and its multiply-adds, using the formulas of exercise 2.
#
# We use torchvision's AlexNet, the single-GPU variant of Krizhevsky's later "one weird trick"
# paper (2014): 64, 192, 384, 256 and 256 filters, where the 2012 network had 96, 256, 384, 384
# and 256, split over two GPUs. First with a 227x227 input, as in the layer table of Johnson's
# lectures [Johnson, 2019]:

# %%
alexnet = torchvision.models.alexnet()  # the architecture only: no weights are downloaded
rows = layer_table(alexnet, (1, 3, 227, 227))
print(format_table(rows))

# %% [markdown]
# The first convolution produces 64x56x56 values (784 KB) from only 23 k parameters and costs
# 73 M multiply-adds; the first fully-connected layer, fc6 (`classifier.1`), holds 37.7 M
# parameters (37,749 k weights plus 4 k biases) but costs only 38 M multiply-adds. Lecture
# tables usually leave the biases out; torch counts them, hence small differences.
#
# Note conv1's 56x56: torchvision pads conv1 by 2 pixels, so 227 gives 56 (exercise 1); the
# 2012 conv1 had no padding, and (227 - 11) / 4 + 1 = 55. torchvision feeds its AlexNet
# 224x224 images, which give 55x55; after the last pool the features are 6x6 at both sizes, as
# fc6 expects (the adaptive pooling layer `avgpool` only matters for other input sizes). The
# totals at 224x224 are the familiar ones:

# %%
params_224 = count_parameters(alexnet)
macs_224 = total_macs(alexnet, (1, 3, 224, 224))
macs_224_bias = total_macs(alexnet, (1, 3, 224, 224), include_bias=True)
print(f"parameters: {params_224:,}")
print(f"multiply-adds: {macs_224 / 1e6:.2f} M, or {macs_224_bias / 1e6:.2f} M counting the "
      f"bias additions as torchinfo does")

# %%
weighted_rows = [row for row in layer_table(alexnet, (1, 3, 224, 224)) if row.params]
labels = [f"{row.name}\n({row.kind})" for row in weighted_rows]
param_share = np.array([row.params for row in weighted_rows]) / params_224
mac_share = np.array([row.macs for row in weighted_rows]) / macs_224
fig, ax = plt.subplots(figsize=(10, 3.8))
positions = np.arange(len(weighted_rows))
ax.bar(positions - 0.2, 100 * param_share, width=0.4, label="share of parameters")
ax.bar(positions + 0.2, 100 * mac_share, width=0.4, label="share of multiply-adds")
ax.set_xticks(positions, labels, fontsize=8)
ax.set(ylabel="% of the whole network", title="AlexNet (224x224): convolutions compute, "
       "fully-connected layers store")
ax.legend()
fig.tight_layout()
is_conv = np.array([row.kind == "Conv2d" for row in weighted_rows])
print(f"convolutions: {100 * param_share[is_conv].sum():.1f}% of the parameters, "
      f"{100 * mac_share[is_conv].sum():.1f}% of the multiply-adds")
print(f"fully-connected layers: {100 * param_share[~is_conv].sum():.1f}% of the parameters, "
      f"{100 * mac_share[~is_conv].sum():.1f}% of the multiply-adds")

# %% [markdown]
# This split is the key to the network's shape. The convolutions do almost all the arithmetic
# with few weights (weight sharing); the fully-connected layers hold nearly all the weights
# for less than a tenth of the arithmetic. In 2012, about 60 M parameters in float32 (240 MB),
# their gradients and the optimiser's momentum, plus the activations of a batch of 128 images,
# did not fit on one 3 GB GPU, so Krizhevsky et al. split most layers by channels across two
# GPUs, letting them communicate only at certain layers. Modern networks avoid the huge
# fully-connected layers altogether: global average pooling (section 4) replaces them.
#
# ## 3. VGG: deeper, with one simple rule
#
# VGG [Simonyan & Zisserman, 2015] asked how far depth alone can go, with a design simple
# enough to write on one line: **all convolutions are 3x3 with stride 1 and padding 1, all
# pooling is 2x2 max-pooling with stride 2, and after each pooling the number of channels
# doubles** (64, 128, 256, 512, then 512 again in the last stage). A 3x3 convolution with padding 1 keeps the size, so only the
# pools change it; halving the height and the width divides the number of positions by 4, and
# doubling the channels multiplies the cost per position by 4, so every stage costs about the
# same.
#
# Why only 3x3? Two stacked 3x3 layers see a 5x5 region of their input, three see 7x7. With $C$
# channels in and out, two 3x3 layers have $2 \cdot 9C^2 = 18C^2$ weights against $25C^2$ for one
# 5x5 layer, three 3x3 layers $27C^2$ against $49C^2$ for a 7x7; and each extra layer adds a
# non-linearity, so the stack can compute more complex functions of the same region.

# %%
channels = 256
for stacked, single in ((2, 5), (3, 7)):
    small = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                            for _ in range(stacked)])
    large = nn.Conv2d(channels, channels, single, padding=single // 2, bias=False)
    print(f"{stacked} x 3x3: {count_parameters(small):,} weights | one {single}x{single}: "
          f"{count_parameters(large):,} weights ({count_parameters(small) / count_parameters(large):.0%})")

# %% [markdown]
# ### Exercise 3: receptive field
#
# The **receptive field** of an output pixel is the region of the input it depends on. Follow
# two numbers through the layers: the field $r$ (starts at 1 pixel) and the *jump* $j$, the
# distance in input pixels between two neighbouring outputs (starts at 1). A layer with kernel
# $k$ and stride $s$ widens the field by $(k - 1)\,j$, then multiplies the jump by $s$.

# %%
def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Receptive field of one output pixel after layers given as (kernel_size, stride) pairs."""
    # TODO: loop over the layers, updating the field and the jump.
    ### BEGIN SOLUTION
    field, jump = 1, 1
    for kernel_size, stride in layers:
        field += (kernel_size - 1) * jump
        jump *= stride
    return field
    ### END SOLUTION


# %%
receptive_field = checks.check_receptive_field(receptive_field)

# %% [markdown]
# Is the formula right? Autograd can tell us without any algebra: make the central output pixel
# of a stack of layers depend on the input, back-propagate, and count the input pixels that
# receive a non-zero gradient. Below, for VGG-16's thirteen convolutions and its pools:

# %%
vgg16_layers = []
for depth in (2, 2, 3, 3, 3):
    vgg16_layers += [(3, 1)] * depth + [(2, 2)]
fields = [receptive_field(vgg16_layers[:n]) for n in range(1, len(vgg16_layers) + 1)]


def measured_receptive_field(layers, size=256):
    """Width of the input region whose pixels change the central output pixel (all-ones weights)."""
    net = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, padding=k // 2 if s == 1 else 0,
                                    bias=False) for k, s in layers])
    for conv in net:
        nn.init.constant_(conv.weight, 1.0)
    image = torch.zeros(1, 1, size, size, requires_grad=True)
    out = net(image)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    columns = torch.nonzero(image.grad[0, 0].sum(dim=0))
    return int(columns.max() - columns.min() + 1)


measured = [measured_receptive_field(vgg16_layers[:n]) for n in range(1, len(vgg16_layers) + 1)]
print("formula :", fields)
print("autograd:", measured)
fig, ax = plt.subplots(figsize=(9, 3.6))
ax.plot(range(1, len(fields) + 1), fields, "o-", label="formula (exercise 3)")
ax.plot(range(1, len(measured) + 1), measured, "x", markersize=10, label="measured with autograd")
for n, (kernel, stride) in enumerate(vgg16_layers, start=1):
    if stride == 2:
        ax.axvline(n, color="gray", ls=":", lw=0.8)
ax.set(xlabel="layers of VGG-16 (dotted lines: 2x2 pools)", ylabel="receptive field (pixels)",
       title="Receptive field of VGG-16: +2 per 3x3 layer, and each pool doubles the step")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The last convolution's field (196 pixels) and the last pool's (212) cover nearly the whole
# 224x224 image: in principle the final features can use global context. In practice the
# *effective* receptive field is much smaller: the central pixels of the region dominate the
# gradient, the border ones barely count [Luo et al., 2016].
#
# ## 4. ResNet: the degradation problem and the residual fix
#
# If depth helps, why stop at 19 layers? He et al. [2016] observed that beyond some depth,
# *plain* networks get worse, and not because of overfitting: a deeper network had a higher
# error **on its training data** than a shallower one. That is strange, since the deeper network
# could copy the shallow one and set its extra layers to the identity; the optimiser simply does
# not find such solutions. Their fix: make the identity the default. A **residual block**
# computes $\mathbf{y} = \mathrm{ReLU}(F(\mathbf{x}) + \mathbf{x})$, so its layers only learn the
# *residue* $F$, the change to the input, and doing nothing means $F = 0$.
#
# Let's see it happen. Three networks on the 8x8 digits (small enough to train in seconds), all
# with 3x3 convolutions, batch normalisation and the same width: a shallow plain network, a deep
# plain network, and the deep network with a shortcut around every pair of layers (identical
# layers and parameters; only the shortcuts differ).

# %%
digits = load_dataset("digits", seed=cfg.seed)
digit_loaders = digits.loaders(64, seed=cfg.seed)


def train_on_digits(model):
    """Train with the same recipe for every network; returns the history and the seconds taken."""
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=DEGRADATION_EPOCHS)
    history = fit(model, digit_loaders["train"], epochs=DEGRADATION_EPOCHS, progress=False,
                  optimizer=optimizer, scheduler=scheduler)
    return history, time.perf_counter() - start


networks, depths = {}, {}
for name, depth, residual in (("plain, shallow", SHALLOW_DEPTH, False),
                              ("plain, deep", DEEP_DEPTH, False),
                              ("residual, deep", DEEP_DEPTH, True)):
    depths[name] = depth
    torch.manual_seed(cfg.seed)
    model = cnn.PlainNet(num_classes=10, in_channels=1, width=DEGRADATION_WIDTH, depth=depth,
                         residual=residual)
    history, seconds = train_on_digits(model)
    networks[name] = (model, history)
    print(f"{name:15s} {depth:2d} layers, {count_parameters(model):7,} parameters: final train "
          f"loss {history['train_loss'][-1]:.3f}, train accuracy "
          f"{history['train_accuracy'][-1]:.3f} ({seconds:.1f} s)")

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
for name, (_, history) in networks.items():
    ax.plot(range(1, DEGRADATION_EPOCHS + 1), history["train_loss"], "o-",
            label=f"{name} ({depths[name]} layers)")
ax.set(xlabel="epoch", ylabel="training loss (log scale)", yscale="log",
       title="Deeper plain networks train worse; shortcuts fix it")
ax.legend()
fig.tight_layout()

# %% [markdown]
# One caveat: in the quick profile the networks train for only a few epochs, so the plain deep
# network may partly be *slower* rather than stuck; He et al.'s claim is about the training
# error after convergence, which the full profile (five times more epochs) gets closer to.
#
# Why? It is not overfitting (this is the *training* loss) and, with batch norm in every
# layer, not vanishing gradients either: He et al. checked that the gradients keep healthy
# norms. Look at the gradients at initialisation: we feed one batch through each deep network
# and measure, for every convolution, the norm of the gradient of the loss with respect to its
# weights, from the first layer (next to the input) to the last. In the plain network the
# gradient is multiplied by every layer's Jacobian on its way back, and its scale drifts by
# orders of magnitude across the depth (with batch norm it tends to *grow* towards the input,
# as later analyses showed [Yang et al., 2019]), so no single learning rate suits all layers,
# and the gradients of nearby inputs become increasingly unrelated ("shattered" [Balduzzi et
# al., 2017]). The shortcuts give the gradient a direct path: the Jacobian of
# $F(\mathbf{x}) + \mathbf{x}$ contains the identity, and the scale stays even across the
# depth. (Strictly, the ReLU after the addition sits on that path too; the "pre-activation"
# ResNet moves it inside $F$ so that the shortcut is a pure identity [He et al., 2016b].)

# %%
def gradient_norms(model, images, labels):
    """Norm of d loss / d weight for every convolution, input side first."""
    model.train()
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    return [module.weight.grad.norm().item() for module in model.modules()
            if isinstance(module, nn.Conv2d)]


images, labels = next(iter(digit_loaders["train"]))
fig, ax = plt.subplots(figsize=(8, 3.6))
for name in ("plain, deep", "residual, deep"):
    torch.manual_seed(cfg.seed)
    fresh = cnn.PlainNet(num_classes=10, in_channels=1, width=DEGRADATION_WIDTH, depth=DEEP_DEPTH,
                         residual=name.startswith("residual"))
    norms = gradient_norms(fresh, images, labels)
    ax.plot(range(1, len(norms) + 1), norms, "o-", markersize=3, label=f"{name} (at initialisation)")
    print(f"{name:15s}: gradient norm of the first conv {norms[0]:.2e}, of the last "
          f"{norms[-1]:.2e}; largest / smallest over all layers: {max(norms) / min(norms):.0f}")
ax.set(xlabel="convolution (1 = next to the input)", ylabel="gradient norm", yscale="log",
       title="Gradient norms per layer, before training")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ResNet itself is otherwise VGG-like: 3x3 convolutions (after a 7x7 stride-2 stem), channels
# doubled when the resolution halves. The differences: after the stem's single max-pool,
# downsampling is done by stride-2 convolutions; batch normalisation follows every
# convolution; and at the end comes **global average pooling**, the mean of each feature map,
# feeding a single linear layer. That last choice removes AlexNet's and VGG's giant
# fully-connected layers and makes the network accept any image size. How giant? Built on
# PyTorch's "meta" device (shapes only, no memory, no download):

# %%
with torch.device("meta"):
    vgg16 = torchvision.models.vgg16()
fc6 = vgg16.classifier[0]
print(f"VGG-16: {count_parameters(vgg16):,} parameters, of which fc6 "
      f"({fc6.in_features:,} -> {fc6.out_features:,}) holds {count_parameters(fc6):,} "
      f"({count_parameters(fc6) / count_parameters(vgg16):.0%})")

# %% [markdown]
# Two block designs exist. The **basic block** (ResNet-18/34) has two 3x3 convolutions. The
# **bottleneck block** (ResNet-50 and deeper) uses a 1x1 convolution to reduce the channels by
# 4, a 3x3 on the reduced channels, and a 1x1 to expand again. (In both, a block that changes
# the size or the number of channels gets a 1x1 convolution with its stride on the shortcut, a
# *projection*.) He et al. compare a basic block on 64 channels with a bottleneck on 256
# channels (64 inside): about the same cost, but the bottleneck carries four times wider
# features between blocks, and stacking it makes ResNet-50 deeper than ResNet-34 for a similar
# budget. A basic block at the full 256 channels would cost far more:

# %%
for name, block, channels in (("basic block, 64 channels", cnn.BasicBlock(64, 64), 64),
                              ("bottleneck 256 -> 64 -> 256", cnn.Bottleneck(256, 64), 256),
                              ("basic block, 256 channels", cnn.BasicBlock(256, 256), 256)):
    print(f"{name:28s}: {count_parameters(block):9,} parameters, "
          f"{total_macs(block, (1, channels, 14, 14)) / 1e6:6.1f} M MACs at 14x14")

# %% [markdown]
# ### Exercise 4: a residual block
#
# Write the basic block for the case where input and output have the same shape. Use exactly
# these names, so the check can load its weights into your module: `conv1`, `bn1`, `conv2`,
# `bn2` (3x3 convolutions with padding 1 and `bias=False`, since batch norm adds its own shift).
# Forward: `conv1 -> bn1 -> ReLU -> conv2 -> bn2`, **add the input**, then ReLU.

# %%
class ResidualBlock(nn.Module):
    """Basic residual block with an identity shortcut: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        # TODO: conv1, bn1, conv2, bn2
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: the residual computation
        ### BEGIN SOLUTION
        residue = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(residue + x)
        ### END SOLUTION


# %%
ResidualBlock = checks.check_residual_block(ResidualBlock)

# %% [markdown]
# ## 5. Normalisation layers
#
# Deep networks train faster and more reliably when the activations inside them keep a
# controlled scale. Normalisation layers enforce it: subtract a mean, divide by a standard
# deviation, then let the network rescale with two learned vectors $\gamma$ and $\beta$:
#
# $$y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \, \gamma + \beta .$$
#
# The layers differ only in **which values share one mean and variance** [Wu & He, 2018]. For a
# batch of shape (N, C, H, W):
#
# | layer | statistics over | used in |
# |---|---|---|
# | batch norm [Ioffe & Szegedy, 2015] | N, H, W (per channel) | ResNet, most CNNs |
# | layer norm [Ba et al., 2016] | C, H, W (per sample) | Transformers, ConvNeXt (over C only) |
# | instance norm [Ulyanov et al., 2016] | H, W (per sample and channel) | style transfer |
# | group norm [Wu & He, 2018] | H, W and a group of channels (per sample) | detection, small batches |
#
# Why normalisation helps is still debated; one account is that it makes the loss landscape
# smoother, so larger steps are safe [Santurkar et al., 2018].

# %%
fig = plot_normalization_axes()

# %% [markdown]
# ### Exercise 5: normalisation by hand
#
# Write `normalize(x, dims)`: subtract the mean over the axes `dims` and divide by the square
# root of the variance over the same axes plus `eps`. Use the *biased* variance (divide by the
# count, `unbiased=False`), as the layers do. Then, exercise 6, build group norm from it.

# %%
def normalize(x: torch.Tensor, dims: tuple[int, ...], eps: float = 1e-5) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) with statistics over `dims` (no learned scale or shift)."""
    # TODO: mean and variance with keepdim=True so they broadcast.
    ### BEGIN SOLUTION
    centred = x - x.mean(dim=dims, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(dim=dims, keepdim=True) + eps)
    ### END SOLUTION


# %%
normalize = checks.check_normalize(normalize)

# %% [markdown]
# ### Exercise 6: group norm
#
# Group norm splits the $C$ channels into $G$ groups and normalises each group of each sample.
# Reshape (N, C, H, W) to (N, G, C/G, H, W), normalise over the last three axes, and reshape
# back. With $G = 1$ it is layer norm; with $G = C$ it is instance norm.

# %%
def group_norm(x: torch.Tensor, num_groups: int, eps: float = 1e-5) -> torch.Tensor:
    """Group normalisation of (N, C, H, W), without the learned scale and shift."""
    # TODO: reshape, normalize(..., dims=(2, 3, 4)), reshape back.
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    groups = x.reshape(n, num_groups, c // num_groups, h, w)
    return normalize(groups, dims=(2, 3, 4), eps=eps).reshape(n, c, h, w)
    ### END SOLUTION


# %%
group_norm = checks.check_group_norm(group_norm)

# %% [markdown]
# Now the claim of the table, checked against PyTorch's layers (freshly created, so
# $\gamma = 1$ and $\beta = 0$):

# %%
x = torch.randn(8, 6, 5, 5) * 4 + 3
torch_layers = {"batch norm": (nn.BatchNorm2d(6), (0, 2, 3)),
                "layer norm": (nn.LayerNorm([6, 5, 5]), (1, 2, 3)),
                "instance norm": (nn.InstanceNorm2d(6), (2, 3))}
for name, (layer, dims) in torch_layers.items():
    difference = (layer(x) - normalize(x, dims)).abs().max().item()
    print(f"{name:14s} = normalize over dims {dims}: largest difference {difference:.1e}")
difference = (nn.GroupNorm(3, 6)(x) - group_norm(x, 3)).abs().max().item()
print(f"{'group norm':14s} = our group_norm with 3 groups: largest difference {difference:.1e}")

# %% [markdown]
# Batch norm has a catch: its statistics depend on the **other images in the batch**. That is
# fine during training, but a prediction for one image must not depend on what else happens to
# be in the batch, and a batch of one has no variance over N when H = W = 1. So batch norm
# keeps *running averages* of the means and variances seen in training (PyTorch's default
# momentum: each batch moves them 10% of the way) and uses those in `eval()` mode. Forgetting
# `model.eval()` before evaluating is a classic bug. Below, the same image goes through a
# batch-norm layer in two different batches, one of ordinary images and one of brighter ones:

# %%
torch.manual_seed(cfg.seed)
batch_norm = nn.BatchNorm2d(3)
for step in range(200):  # training batches: mean about 5, standard deviation about 2
    batch_norm(torch.randn(16, 3, 4, 4) * 2 + 5)
print("running mean:", batch_norm.running_mean.numpy().round(2),
      "| running variance:", batch_norm.running_var.numpy().round(2))
image = torch.randn(1, 3, 4, 4) * 2 + 5
ordinary_batch = torch.cat([image, torch.randn(15, 3, 4, 4) * 2 + 5])
bright_batch = torch.cat([image, torch.randn(15, 3, 4, 4) * 2 + 9])
for mode in ("eval", "train"):  # eval first: train mode would update the running statistics
    getattr(batch_norm, mode)()
    with torch.no_grad():
        in_ordinary, in_bright = batch_norm(ordinary_batch)[0], batch_norm(bright_batch)[0]
    print(f"{mode:5s} mode: the image's output mean {in_ordinary.mean():+.2f} in the ordinary "
          f"batch, {in_bright.mean():+.2f} in the bright batch (largest difference "
          f"{(in_ordinary - in_bright).abs().max():.2f})")

# %% [markdown]
# ## 6. Squeeze-and-excitation and the ConvNeXt block
#
# ### Squeeze-and-excitation
#
# A convolution mixes channels with fixed weights, the same for every image. Hu et al. [2018]
# added a cheap way to re-weight channels **depending on the image**: *squeeze* each channel of
# the feature map $U$ to one number by global average pooling, *excite* with two small
# fully-connected layers ($C \to C/r \to C$, ReLU then sigmoid) to get one gate in (0, 1) per
# channel, and *scale* every channel of $U$ by its gate. The gates let the network stress the
# channels that matter for this image and damp the others.
#
# ### Exercise 7: a squeeze-and-excitation block
#
# Name the layers `fc1` ($C \to C/r$, i.e. `channels // reduction`) and `fc2` ($C/r \to C$),
# both `nn.Linear` with biases. (The paper uses $r = 16$; the default of 4 below suits the small
# networks of this course.)

# %%
class SqueezeExcite(nn.Module):
    """(N, C, H, W) -> (N, C, H, W), each channel scaled by a learned, input-dependent gate."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        # TODO: fc1 and fc2
        ### BEGIN SOLUTION
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: squeeze (mean over H and W), excite (fc1, ReLU, fc2, sigmoid), scale
        ### BEGIN SOLUTION
        descriptor = x.mean(dim=(2, 3))                                        # (N, C)
        gates = torch.sigmoid(self.fc2(torch.relu(self.fc1(descriptor))))      # (N, C)
        return x * gates.view(x.shape[0], x.shape[1], 1, 1)
        ### END SOLUTION


# %%
SqueezeExcite = checks.check_squeeze_excite(SqueezeExcite)
block_params = count_parameters(cnn.BasicBlock(256, 256))
se_params = count_parameters(SqueezeExcite(256, reduction=16))
print(f"an SE block (r=16) on a 256-channel basic block adds {se_params:,} parameters "
      f"to its {block_params:,} ({se_params / block_params:.1%}), and almost no compute")

# %% [markdown]
# ### The ConvNeXt block
#
# From 2020-21, Vision Transformers (lesson 05), pretrained on very large datasets, were
# overtaking CNNs. Liu et al. [2022] asked which
# of the Transformer's design choices a CNN could borrow, and modernised a ResNet step by step.
# The resulting **ConvNeXt block**:
#
# 1. a **depthwise** 7x7 convolution (one filter per channel, `groups=C`): large spatial context,
#    little compute, no mixing of channels;
# 2. **LayerNorm** over the channels instead of batch norm;
# 3. an **inverted bottleneck**: 1x1 expand to $4C$, GELU, 1x1 back to $C$, like a
#    Transformer's feed-forward layer (lesson 04), mixing channels at each position;
# 4. **layer scale**: a learned per-channel factor, initialised tiny ($10^{-6}$), so every block
#    starts close to the identity, plus the residual shortcut.
#
# A dense 3x3 convolution mixes space and channels at once. The ConvNeXt block *separates*
# the two: the depthwise convolution mixes only space, the 1x1 layers (written as `Linear`
# layers on each position) mix only channels. Compared with a ResNet basic block at the same
# width, it spends almost all its parameters on channel mixing:

# %%
dim = 96
for name, block in (("ResNet basic block", cnn.BasicBlock(dim, dim)),
                    ("ConvNeXt block", cnn.ConvNeXtBlock(dim))):
    parameters = {kind: sum(p.numel() for module in block.modules() if isinstance(module, kind)
                            for p in module.parameters(recurse=False))
                  for kind in (nn.Conv2d, nn.Linear)}
    macs = total_macs(block, (1, dim, 56, 56))
    print(f"{name:18s}: {count_parameters(block):7,} parameters ({parameters[nn.Conv2d]:,} in "
          f"k x k convolutions, {parameters[nn.Linear]:,} in 1x1 / Linear layers), "
          f"{macs / 1e6:.0f} M MACs at 56x56")

# %% [markdown]
# ## 7. Pre-processing
#
# Networks are trained on batches, so every image must have the same size, and optimisation
# converges faster when the inputs are centred and scaled. The standard pipeline:
#
# 1. **resize** the shorter side (keeping the aspect ratio), then **centre-crop** to the
#    network's input size (224x224 for most ImageNet models);
# 2. **scale** the pixel values from $\{0, \dots, 255\}$ to $[0, 1]$;
# 3. **normalise** each colour channel with the mean and standard deviation of the training
#    set (for ImageNet: means 0.485, 0.456, 0.406 and standard deviations 0.229, 0.224, 0.225).
#
# A pretrained model must get exactly the pre-processing it was trained with. torchvision ships
# it with the weights' description, available offline (nothing is downloaded until the weights
# themselves are requested):

# %%
weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V2
preprocess = weights.transforms()
print(preprocess)
photo = load_photo("astronaut")
photo_tensor = torch.from_numpy(photo).permute(2, 0, 1)  # (H, W, C) uint8 -> (C, H, W)
resized = TF.resize(photo_tensor, preprocess.resize_size, interpolation=preprocess.interpolation,
                    antialias=True)
cropped = TF.center_crop(resized, preprocess.crop_size)
scaled = cropped.float() / 255
normalised = preprocess(photo_tensor)
print(f"input {tuple(photo_tensor.shape)} uint8 -> resized {tuple(resized.shape)} -> cropped "
      f"{tuple(cropped.shape)} -> normalised {tuple(normalised.shape)} float32")
print("this photo's channel means after normalisation:", normalised.mean(dim=(1, 2)).numpy().round(2),
      "(only over the whole training set are they 0)")
print("pipeline by hand equals weights.transforms():",
      torch.allclose((scaled - torch.tensor(preprocess.mean)[:, None, None])
                     / torch.tensor(preprocess.std)[:, None, None], normalised, atol=1e-5))

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
steps = [(photo_tensor, f"original {photo.shape[1]}x{photo.shape[0]}"),
         (resized, f"resized: short side {preprocess.resize_size[0]}"),
         (cropped, f"centre crop {preprocess.crop_size[0]}x{preprocess.crop_size[0]}")]
for ax, (image, title) in zip(axes, steps):
    ax.imshow(image.permute(1, 2, 0))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
for channel, color in enumerate(("red", "green", "blue")):
    axes[3].hist(scaled[channel].flatten(), bins=60, histtype="step", color=color, ls=":")
    axes[3].hist(normalised[channel].flatten(), bins=60, histtype="step", color=color)
axes[3].set(title="pixel values: scaled (dotted),\nnormalised (solid)", xlabel="value")
axes[3].title.set_fontsize(10)
fig.suptitle("The ImageNet pre-processing of ResNet-50's weights, step by step")
fig.tight_layout()

# %% [markdown]
# ## 8. Choosing an architecture
#
# "Don't be a hero" (A. Karpathy's advice in Stanford's CS231n course): for a new problem, start from an architecture that has
# been tuned by others, usually with pretrained weights (lesson 06), rather than designing your
# own. Which one depends on your constraints: accuracy, compute per image (latency, energy) and
# size (memory, download). torchvision's weights carry their ImageNet accuracy, parameter count
# and compute in their metadata, so the whole model zoo can be compared offline:

# %%
zoo = []
for name in torchvision.models.list_models(module=torchvision.models):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    zoo.append((name, meta["num_params"] / 1e6, meta["_ops"], meta["_metrics"]["ImageNet-1K"]["acc@1"]))
def family_of(name):
    family = name.split("_")[0].rstrip("0123456789")
    return "resnet" if family == "wide" else family  # wide_resnet50_2 is a wider ResNet


families = sorted({family_of(name) for name, *_ in zoo})
fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.2), sharey=True)
for index, family in enumerate(families):
    members = [row for row in zoo if family_of(row[0]) == family]
    _, params, gflops, accuracy = zip(*members)
    style = {"color": plt.cm.tab20(index % 20), "marker": "os^D"[index % 4], "s": 28}
    left.scatter(params, accuracy, label=family, **style)
    right.scatter(gflops, accuracy, **style)
for name, params, gflops, accuracy in zoo:
    if name in ("alexnet", "vgg16", "resnet50", "convnext_tiny", "efficientnet_b0",
                "mobilenet_v3_small", "vit_b_16", "regnet_y_16gf"):
        left.annotate(name, (params, accuracy), fontsize=8)
        right.annotate(name, (gflops, accuracy), fontsize=8)
left.set(xscale="log", xlabel="parameters (millions)", ylabel="ImageNet top-1 accuracy (%)",
         title="accuracy vs. size")
right.set(xscale="log", xlabel="GMACs per image (torchvision's 'GFLOPS'), at each model's resolution",
          title="accuracy vs. compute")
left.legend(fontsize=7, ncol=2, loc="lower right")
fig.suptitle(f"{len(zoo)} torchvision models, default weights (metadata only, no download)")
fig.tight_layout()
by_name = {name: (params, gflops, accuracy) for name, params, gflops, accuracy in zoo}
most_accurate = sorted(by_name, key=lambda name: -by_name[name][2])[:4]
for name in ("alexnet", "vgg16", "resnet50", "efficientnet_b0", "convnext_tiny", "vit_b_16",
             *most_accurate):
    params, gflops, accuracy = by_name[name]
    default = torchvision.models.get_model_weights(name).DEFAULT
    resolution = default.transforms().crop_size[0]
    print(f"{name:18s} {accuracy:5.1f}% top-1 | {params:6.1f} M parameters | {gflops:7.2f} GMACs "
          f"at {resolution}x{resolution} | weights {default.name}")

# %% [markdown]
# Reading the plot: VGG-16 is both huge and slow for its accuracy; ResNet-50 is the classic
# reliable default; EfficientNet and MobileNet reach good accuracy with few parameters and
# little compute (good for phones); ConvNeXt is among the best models trained on ImageNet
# alone. The last rows printed above are the most accurate of all, and their fine print
# matters: the top two have "SWAG" weights, pretrained on billions of Instagram images before
# ImageNet, and all of them are evaluated on larger images than 224x224 (the biggest ViT at
# 518x518, hence its compute far to the right). A ViT-B/16 trained on ImageNet alone sits near
# ResNet-50, a first hint of lesson 05's "Transformers need more data". Mind the fine print: these numbers come from different
# training recipes (epochs, augmentation, resolution), which can matter as much as the
# architecture (lesson 07 comes back to this).
# torchvision's "GFLOPS" are in fact multiply-adds: AlexNet's 0.71 is the 714 M we computed.
#
# ## 9. Side by side on the glyphs
#
# Finally, the three families trained the same way on the course's synthetic glyphs: 26
# letters in many fonts, colours and angles on photographic backgrounds. The networks come from
# `course_utils.cnn`, which holds the blocks of this lesson (the same code as the references of
# your exercises). All of them end in global average pooling, so they accept any image size.
# Scaled down for small images, each departs from its famous ancestor:
#
# * VGG-style: two 3x3 convolutions per stage, three stages (16, 32, 64 channels), with batch
#   norm and global average pooling, which the 2014 VGG did not have;
# * ResNet-style: a 3x3 stem and one basic block per stage, without the 7x7 stem and max-pool
#   that would shrink small images too early; optionally with squeeze-and-excitation;
# * ConvNeXt-style: the 2x2 patchify stem, one block per stage, 3x3 depthwise kernels (a 7x7
#   kernel on 8x8 feature maps would see everything at once), layer scale starting at 0.1
#   (with only three blocks, starting at $10^{-6}$ just delays learning), and twice the
#   channels, because its stem halves the resolution at once: this keeps its compute close to
#   the others'.
#
# To fit the quick profile into a CPU minute we average-pool the 32x32 glyphs to 16x16 (the
# letters stay readable, and every convolution gets four times cheaper); the full profile keeps
# 32x32 and trains on ten times more glyphs for longer. The inputs are normalised per channel
# with the training set's own mean and standard deviation, exactly as in section 7.

# %%
glyphs = load_dataset("glyphs", num_images=NUM_GLYPHS, seed=cfg.seed)
print(glyphs.summary())
splits = {name: getattr(glyphs, name).tensors() for name in ("train", "val", "test")}
if GLYPH_SIZE != 32:
    splits = {name: (F.avg_pool2d(images, 32 // GLYPH_SIZE), labels)
              for name, (images, labels) in splits.items()}
channel_mean = splits["train"][0].mean(dim=(0, 2, 3), keepdim=True)
channel_std = splits["train"][0].std(dim=(0, 2, 3), keepdim=True)
print("training-set channel means", channel_mean.flatten().numpy().round(3),
      "and standard deviations", channel_std.flatten().numpy().round(3))
fig = show_images(splits["train"][0][:16], splits["train"][1][:16], glyphs.class_names,
                  ncols=16, scale=1.0,
                  title=f"Glyphs at {GLYPH_SIZE}x{GLYPH_SIZE}: synthetic letters on photographs")

# %%
def glyph_loader(split, shuffle):
    images, labels = splits[split]
    dataset = torch.utils.data.TensorDataset((images - channel_mean) / channel_std, labels)
    generator = torch.Generator().manual_seed(cfg.seed)
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=shuffle,
                                       generator=generator)


train_loader = glyph_loader("train", shuffle=True)
val_loader, test_loader = glyph_loader("val", shuffle=False), glyph_loader("test", shuffle=False)
candidates = {
    "VGG-style": lambda: cnn.VGGNet(num_classes=26, widths=(16, 32, 64)),
    "ResNet-style": lambda: cnn.ResNet(num_classes=26, widths=(16, 32, 64), depths=(1, 1, 1)),
    "ResNet + SE": lambda: cnn.ResNet(num_classes=26, widths=(16, 32, 64), depths=(1, 1, 1),
                                      squeeze_excite=True),
    "ConvNeXt-style": lambda: cnn.ConvNeXt(num_classes=26, widths=(32, 64, 128), depths=(1, 1, 1),
                                           kernel_size=3, layer_scale_init=0.1),
}
results, histories = {}, {}
for name, build in candidates.items():
    torch.manual_seed(cfg.seed)
    model = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.05)
    start = time.perf_counter()
    histories[name] = fit(model, train_loader, val_loader, epochs=COMPARE_EPOCHS,
                          optimizer=optimizer, progress=False)
    seconds = time.perf_counter() - start
    test = evaluate(model, test_loader)
    macs = total_macs(model, (1, 3, GLYPH_SIZE, GLYPH_SIZE))
    results[name] = (count_parameters(model), macs, seconds,
                     histories[name]["val_accuracy"][-1], test["accuracy"])

print(f"{'model':16s}{'parameters':>12s}{'MMACs':>8s}{'train s':>9s}{'val acc':>9s}{'test acc':>10s}")
for name, (params, macs, seconds, val_accuracy, test_accuracy) in results.items():
    print(f"{name:16s}{params:12,d}{macs / 1e6:8.2f}{seconds:9.1f}{val_accuracy:9.3f}{test_accuracy:10.3f}")
print(f"({cfg.profile} profile: {len(splits['train'][1])} training glyphs at {GLYPH_SIZE}x{GLYPH_SIZE}, "
      f"{COMPARE_EPOCHS} epochs, batch {BATCH_SIZE}, AdamW lr {LEARNING_RATE}, one seed)")

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
for name, history in histories.items():
    ax.plot(range(1, COMPARE_EPOCHS + 1), history["val_accuracy"], "o-", label=name)
ax.axhline(1 / 26, color="grey", ls=":", label="chance (1/26)")
ax.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
       xticks=range(1, COMPARE_EPOCHS + 1), title="Glyphs: validation accuracy per epoch")
ax.legend()
fig.tight_layout()

# %% [markdown]
# How to read this table honestly: each network got one recipe (optimiser, learning rate,
# epochs) that was not tuned for it, a few thousand small images, a few epochs and one seed.
# Differences of a few points are within what another seed would change. In the quick profile
# the comparison says more about *how fast each design learns from little data* than about what
# it can reach; the full profile is the fairer race.
#
# What this run shows, and what it does not:
#
# * The VGG-style stack learns fastest in this run. Six convolutions are too shallow for
#   degradation to matter, so the residual connections have nothing to fix here; their
#   advantage appears with depth (section 4). *Why* the ResNet-style network learns more slowly
#   than VGG at this size is not settled by one run: the stems, the number of full-resolution
#   layers and the untuned learning rate all differ.
# * The ConvNeXt-style network, with layer norm and layer scale and no batch norm, starts
#   slowest and is still climbing when training stops. Its patchify stem throws away half the
#   resolution of tiny 16x16 letters in its first layer, a likely part of the reason. ConvNeXt
#   was designed for ImageNet, 300 epochs and heavy augmentation; a few minutes of CPU are not
#   where its design pays off.
# * Squeeze-and-excitation adds a few percent of parameters and almost no multiply-adds;
#   whether it helps is not decided by one short run with one seed.
# * Parameters and compute do not rank the networks the same way: compare the parameter and
#   MMACs columns. Time depends on more than multiply-adds: the SE gates and the depthwise
#   convolutions do little arithmetic per byte moved, so they cost more time than their MACs
#   suggest. (On a shared 2-core CPU the times also vary from run to run; read only their order
#   of magnitude.)
#
# **Try it** (optional, not checked): train the networks on glyphs that are *not* normalised
# (replace `(images - channel_mean) / channel_std` by `images` in `glyph_loader`) and compare.
# The batch-norm networks remove the inputs' offset in their first layer by themselves; the
# ConvNeXt-style network has no batch norm, and its features start out as mostly a fixed
# pattern that does not depend on the letter. Watch how that changes its first epochs: this is
# section 7's advice, seen from the other side.
#
# ## Summary
#
# * A convolution's cost follows from four numbers: output size
#   $\lfloor (n + 2p - k)/s \rfloor + 1$, parameters $C_{out}(C_{in}k^2 + 1)$, multiply-adds
#   $C_{out} H_{out} W_{out} C_{in} k^2$, memory of its output. In AlexNet the convolutions do
#   the computing and the fully-connected layers hold the parameters.
# * VGG: only 3x3 convolutions and 2x2 pools, channels doubled at each pool. Stacked 3x3 layers
#   reach large receptive fields with fewer parameters and more non-linearity.
# * Deep plain networks train *worse*, even on their training data (degradation). Residual
#   blocks, $\mathrm{ReLU}(F(x) + x)$, make the identity easy and keep gradients flowing.
# * Batch, layer, instance and group norm are one formula over different axes. Batch norm uses
#   running statistics in `eval()` mode.
# * Squeeze-and-excitation re-weights channels per image at almost no cost; ConvNeXt modernises
#   the ResNet block with depthwise 7x7 convolutions, LayerNorm, an inverted bottleneck and
#   layer scale.
# * Pre-process exactly as the pretrained weights expect. Choose an off-the-shelf architecture
#   by accuracy, compute and size; don't be a hero.
#
# ## References
#
# * A. Krizhevsky, I. Sutskever, G. Hinton, "ImageNet Classification with Deep Convolutional
#   Neural Networks", NeurIPS 2012.
# * K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
#   Recognition", ICLR 2015.
# * A. Krizhevsky, "One weird trick for parallelizing convolutional neural networks", arXiv
#   1404.5997, 2014 (the single-GPU AlexNet variant that torchvision implements).
# * K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016;
#   and "Identity Mappings in Deep Residual Networks", ECCV 2016 (2016b).
# * W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the Effective Receptive Field in Deep
#   Convolutional Neural Networks", NeurIPS 2016.
# * S. Ioffe, C. Szegedy, "Batch Normalization", ICML 2015; J. L. Ba, J. R. Kiros, G. Hinton,
#   "Layer Normalization", 2016; D. Ulyanov, A. Vedaldi, V. Lempitsky, "Instance Normalization",
#   2016; Y. Wu, K. He, "Group Normalization", ECCV 2018.
# * D. Balduzzi et al., "The Shattered Gradients Problem", ICML 2017; G. Yang et al., "A Mean
#   Field Theory of Batch Normalization", ICLR 2019.
# * S. Santurkar, D. Tsipras, A. Ilyas, A. Madry, "How Does Batch Normalization Help
#   Optimization?", NeurIPS 2018.
# * J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018.
# * Z. Liu, H. Mao, C.-Y. Wu, C. Feichtenhofer, T. Darrell, S. Xie, "A ConvNet for the 2020s",
#   CVPR 2022.
# * J. Johnson, *EECS 498-007 Deep Learning for Computer Vision*, University of Michigan, 2019
#   (lectures on CNN architectures).
