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
# Exercises are checked as in lesson 01: each check cell says PASSED, NOT DONE (the rest of the
# notebook then uses the reference) or WRONG (which case failed, and a hint).

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
import torchvision.transforms.functional as TF

from course_utils import cnn, setup
from course_utils.cache import throughput, train_once
from course_utils.complexity import count_parameters, format_table, layer_table, total_macs
from course_utils.data import load_dataset, tensor_batches
from course_utils.exercises import lesson02 as checks
from course_utils.photos import load_photo, load_photos
from course_utils.results import record
from course_utils.plotting import plot_normalization_axes, show_images
from course_utils.training import evaluate, fit
from course_utils.widgets import convolution_figure, convolution_widget

cfg = setup(seed=0)

# %%
# Degradation experiment (section 4): plain vs residual networks on the 8x8 digits.
DEGRADATION_EPOCHS = cfg.pick(quick=6, full=30, capped=6)
SHALLOW_DEPTH, DEEP_DEPTH, DEGRADATION_WIDTH = 5, 31, 16
# Their loss landscapes: a grid of LANDSCAPE_STEPS x LANDSCAPE_STEPS points, each evaluated on
# the same LANDSCAPE_IMAGES training digits.
LANDSCAPE_STEPS = cfg.pick(quick=7, full=25, capped=7)
LANDSCAPE_IMAGES = cfg.pick(quick=64, full=1024, capped=64)
# Side-by-side comparison (section 9) on the synthetic glyphs.
NUM_GLYPHS = cfg.pick(quick=5_000, full=60_000, capped=2_000)
GLYPH_SIZE = cfg.pick(quick=16, full=32)
COMPARE_EPOCHS = cfg.pick(quick=5, full=30, capped=3)
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
# A *dilated* kernel (dilation $d$) leaves $d - 1$ pixels between its taps, so it covers
# $d(k - 1) + 1$ pixels: use that span in place of $k$. With $d = 1$ nothing changes.

# %%
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output height (or width) of a convolution or pooling layer."""
    # TODO: the formula above, with the dilated span in place of kernel_size; // rounds down.
    ### BEGIN SOLUTION
    span = dilation * (kernel_size - 1) + 1
    return (size + 2 * padding - span) // stride + 1
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
# ImageNet [Deng et al., 2009] gathered millions of photographs sorted into the categories of
# the WordNet hierarchy. From 2010 to 2017 a yearly challenge, ILSVRC, asked for the best
# classifier of a 1000-class subset with about 1.2 million training images [Russakovsky et al.,
# 2015]. Its main score is the *top-5 error*: the share of test images whose true class is not
# among the model's five most probable classes. The winners' published scores, year by year:

# %%
# Top-5 test error (%) of each year's winning entry, as published (the sources are in the
# list of references). 2016's winner published no paper and is left out.
ilsvrc_winners = [(2010, "NEC-UIUC", 28.2, "Russakovsky et al. 2015"),
                  (2011, "XRCE", 25.8, "Russakovsky et al. 2015"),
                  (2012, "AlexNet", 16.4, "Krizhevsky et al. 2012 (5 CNNs, no extra data)"),
                  (2013, "Clarifai", 11.7, "Russakovsky et al. 2015"),
                  (2014, "GoogLeNet", 6.7, "Szegedy et al. 2015"),
                  (2015, "ResNet", 3.57, "He et al. 2016"),
                  (2017, "SENet", 2.25, "Hu et al. 2018")]
VGG_2014_ERROR = 7.3  # second place in 2014 [Simonyan & Zisserman, 2015]
HUMAN_TOP5_ERROR = 5.1  # one trained annotator on 1,500 test images [Russakovsky et al., 2015]

years, entries, errors, _ = zip(*ilsvrc_winners)
fig, ax = plt.subplots(figsize=(9, 4))
bars = ax.bar(years, errors, color=["tab:gray"] * 2 + ["tab:blue"] * 5)
ax.bar_label(bars, [f"{entry}\n{error:g}%" for entry, error in zip(entries, errors)], fontsize=10,
             padding=3, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
ax.plot(2014.45, VGG_2014_ERROR, "<", color="tab:orange", markersize=9)
ax.annotate(f"VGG, 2nd in 2014: {VGG_2014_ERROR}%", (2014.5, VGG_2014_ERROR), xytext=(2015.3, 14),
            fontsize=10, arrowprops={"arrowstyle": "->", "color": "tab:orange"})
ax.axhline(HUMAN_TOP5_ERROR, color="tab:red", ls="--", zorder=0,
           label=f"human estimate ({HUMAN_TOP5_ERROR}%)")
ax.set(xlabel="year", ylabel="top-5 error (%)", ylim=(0, 34), xticks=range(2010, 2018),
       title="ILSVRC winners: grey without a CNN, blue with one")
ax.legend(loc="upper right")
fig.tight_layout()
for year, entry, error, source in ilsvrc_winners:
    print(f"{year} {entry:10s} {error:5.2f}%   source: {source}")

# %% [markdown]
# The human estimate is one trained person's error (an author of Russakovsky et al. who labelled
# test images himself): a rough reference point, not a limit. AlexNet [Krizhevsky et al.,
# 2012], the first CNN to win, cut the error by a large margin and started the deep-learning
# era of computer vision: five convolutional layers, three fully-connected ones, ReLU
# activations, dropout, and a 1000-way softmax, trained on two GTX 580 GPUs with 3 GB each.
# Rather than copying its layer table from a slide, we compute it from the model:
# `course_utils.complexity.layer_table` runs one image through the network with a hook on every
# layer and records the output shape, the memory of that output (float32, one image), the
# layer's own parameters and its multiply-adds, using the formulas of exercise 2.
#
# We use torchvision's AlexNet, the single-GPU variant of Krizhevsky's later "one weird trick"
# paper (2014): 64, 192, 384, 256 and 256 filters, where the 2012 network had 96, 256, 384, 384
# and 256, split over two GPUs. First with a 227x227 input, as in the layer table of Johnson's
# lectures [Johnson, 2019]:

# %%
alexnet = torchvision.models.alexnet().to(cfg.device)  # the architecture only: no download
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
fig, ax = plt.subplots(figsize=(10, 4.2))
positions = np.arange(len(weighted_rows))
ax.bar(positions - 0.2, 100 * param_share, width=0.4, label="share of parameters")
ax.bar(positions + 0.2, 100 * mac_share, width=0.4, label="share of multiply-adds")
ax.set_xticks(positions, labels, fontsize=10)
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
# for less than a tenth of the arithmetic.
#
# Krizhevsky et al. write that one GTX 580 with 3 GB limited the size of the networks they
# could train, and that their network was too big for one GPU, so they split most layers by
# channels across two GPUs, which exchange data only at certain layers. The paper gives no
# memory breakdown. We can count the obvious part for torchvision's variant: in float32, the
# weights, their gradients, SGD's momentum (one value per weight), and, for a batch of 128,
# what the forward pass keeps for the backward pass: the input images and the output of every
# layer in the table (the ReLUs are in place: they overwrite the output of the layer before
# them, so they add nothing).

# %%
BYTES_PER_FLOAT, TRAIN_BATCH, GB = 4, 128, 2**30
weight_bytes = params_224 * BYTES_PER_FLOAT
rows_224 = layer_table(alexnet, (1, 3, 224, 224))
kept_per_image = 3 * 224 * 224 * BYTES_PER_FLOAT + sum(
    row.activation_bytes for row in rows_224 if row.kind != "ReLU")
activation_bytes = TRAIN_BATCH * kept_per_image
total_bytes = 3 * weight_bytes + activation_bytes
print(f"weights {weight_bytes / GB:.2f} GB + gradients {weight_bytes / GB:.2f} GB + momentum "
      f"{weight_bytes / GB:.2f} GB = {3 * weight_bytes / GB:.2f} GB")
print(f"input and layer outputs kept for the backward pass: {kept_per_image / 2**20:.2f} MB per "
      f"image, {activation_bytes / GB:.2f} GB for a batch of {TRAIN_BATCH}")
print(f"total {total_bytes / GB:.2f} GB (1 GB = 2^30 bytes): "
      f"{'less' if total_bytes < 3 * GB else 'more'} than the 3 GB of one GTX 580")

# %% [markdown]
# So the part that is easy to count fits in 3 GB; it is not the whole story, and the paper
# does not tell the rest. Left out above: the 2012 network was wider than torchvision's (96,
# 256, 384, 384 and 256 filters against 64, 192, 384, 256 and 256), so its layer outputs were
# larger; the backward pass needs room for the gradients of those outputs; convolution code
# of the time copied image patches into large temporary matrices; and the framework and the
# driver take their own share. What the paper does say is that two GPUs let it train a larger
# network than one would have. Modern networks avoid the huge fully-connected layers
# altogether: global average pooling (section 4) replaces them.
#
# ## 3. VGG: deeper, with one simple rule
#
# VGG [Simonyan & Zisserman, 2015] set out to measure what depth alone buys, and so kept every
# other choice uniform. Each convolution has a 3x3 kernel and one pixel of padding, which
# leaves the height and width unchanged; the only layers that shrink the maps are 2x2
# max-pools with stride 2. Each time a pool halves the resolution, the stage after it gets
# twice as many filters, from 64 up to a ceiling of 512 that the last two stages share.
#
# Why double the filters? A 3x3 convolution costs $9\,C_{in} C_{out} H W$ multiply-adds. A pool
# divides $H W$ by 4; doubling both $C_{in}$ and $C_{out}$ multiplies the cost by 4. So a layer
# in the middle of one stage costs exactly as much as a layer in the middle of the stage before:
# the rule equalises the cost **per layer**, not per stage. The first layer of a stage still
# reads the previous stage's channels, so it costs half as much; the last stage stops doubling
# at 512, so its layers cost a quarter; and the stages hold two or three layers. Per-stage
# costs of VGG-16 at 224x224, from its layer table (built on PyTorch's "meta" device: shapes
# only, no memory, no download):

# %%
with torch.device("meta"):
    vgg16 = torchvision.models.vgg16()
stage_macs, stage = [[]], 0
for row in layer_table(vgg16, (1, 3, 224, 224)):
    if row.name.startswith("features") and row.kind == "Conv2d":
        stage_macs[stage].append((row.macs, row.output_shape))
    elif row.kind == "MaxPool2d":
        stage, stage_macs = stage + 1, stage_macs + [[]]
for number, layers in enumerate(stage_macs[:5], start=1):
    _, channels, height, width = layers[0][1]
    per_layer = " + ".join(f"{macs / 1e9:.2f}" for macs, _ in layers)
    total = sum(macs for macs, _ in layers)
    print(f"stage {number} ({channels:3d} channels at {height:3d}x{width:<3d}): {per_layer} "
          f"= {total / 1e9:.2f} GMACs")
conv_macs = sum(macs for layers in stage_macs for macs, _ in layers)
print(f"all 13 convolutions: {conv_macs / 1e9:.2f} GMACs")

# %% [markdown]
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
                                    bias=False) for k, s in layers]).to(cfg.device)
    for conv in net:
        nn.init.constant_(conv.weight, 1.0)
    image = torch.zeros(1, 1, size, size, device=cfg.device, requires_grad=True)
    out = net(image)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    columns = torch.nonzero(image.grad[0, 0].sum(dim=0)).cpu()
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
#
# Each network trains once: `train_once` saves it under `data/checkpoints/` with its history,
# named by a hash of its recipe (sizes, epochs, profile, seed and the code that builds and
# trains it), and the next run of the lesson loads it instead of training again. Any change
# to the recipe trains it afresh; `COURSE_RETRAIN=1` forces it.

# %%
def device_loader(images, labels, *, shuffle):
    """Batches of BATCH_SIZE from the tensors, moved to cfg.device once.

    course_utils.data.tensor_batches gathers each batch from the device tensors in one indexing
    step (no per-image collation), so on a GPU the data never goes back to the host.
    """
    return tensor_batches(images.to(cfg.device), labels.to(cfg.device), batch_size=BATCH_SIZE,
                          shuffle=shuffle, seed=cfg.seed)


digits = load_dataset("digits", seed=cfg.seed)
digit_images, digit_labels = digits.train.tensors()  # the training split only


def train_on_digits(model):
    """Train with the same recipe for every network (and the same order of batches)."""
    loader = device_loader(digit_images, digit_labels, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=DEGRADATION_EPOCHS)
    return fit(model, loader, epochs=DEGRADATION_EPOCHS, progress=False, optimizer=optimizer,
               scheduler=scheduler)


networks, depths = {}, {}
for name, depth, residual in (("plain, shallow", SHALLOW_DEPTH, False),
                              ("plain, deep", DEEP_DEPTH, False),
                              ("residual, deep", DEEP_DEPTH, True)):
    depths[name] = depth
    model, history = train_once(
        f"digits-{'residual' if residual else 'plain'}-{depth}",
        recipe={"depth": depth, "residual": residual, "width": DEGRADATION_WIDTH,
                "epochs": DEGRADATION_EPOCHS, "batch_size": BATCH_SIZE},
        build=lambda: cnn.PlainNet(num_classes=10, in_channels=1, width=DEGRADATION_WIDTH,
                                   depth=depth, residual=residual),
        train=train_on_digits)
    networks[name] = (model, history)
    record("02", f"{name} train accuracy (digits)", history["train_accuracy"][-1])
    print(f"{name:15s} {depth:2d} layers, {count_parameters(model):7,} parameters: train "
          f"loss {history['train_loss'][-1]:.3f}, train accuracy "
          f"{history['train_accuracy'][-1]:.3f}")

# %%
final_loss = {name: history["train_loss"][-1] for name, (_, history) in networks.items()}
depth_verdict = ("the deep plain network ends with a higher training loss than the shallow one"
                 if final_loss["plain, deep"] > final_loss["plain, shallow"] else
                 "the deep plain network does not end worse than the shallow one")
shortcut_verdict = ("the shortcuts bring it lower" if final_loss["residual, deep"] < final_loss["plain, deep"]
                    else "the shortcuts do not bring it lower")
print(f"In this run, {depth_verdict} ({final_loss['plain, deep']:.3f} vs "
      f"{final_loss['plain, shallow']:.3f}),\nand {shortcut_verdict} "
      f"({final_loss['residual, deep']:.3f}).")
fig, ax = plt.subplots(figsize=(8, 4))
for name, (_, history) in networks.items():
    ax.plot(range(1, DEGRADATION_EPOCHS + 1), history["train_loss"], "o-",
            label=f"{name} ({depths[name]} layers)")
ax.set(xlabel="epoch", ylabel="training loss (log scale)", yscale="log",
       title=f"Final training loss: deep plain {final_loss['plain, deep']:.2f}, shallow plain "
             f"{final_loss['plain, shallow']:.2f}, deep residual {final_loss['residual, deep']:.2f}")
ax.title.set_fontsize(11)
ax.legend()
fig.tight_layout()

# %% [markdown]
# One caveat: with only a few epochs, a deep plain network that ends higher may be *slower*
# rather than stuck. He et al.'s claim is about the training error after long training; the
# more epochs `DEGRADATION_EPOCHS` allows (the full profile gives five times more than the
# quick one), the closer this experiment comes to theirs.
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


images, labels = next(iter(device_loader(digit_images, digit_labels, shuffle=True)))  # on cfg.device
fig, ax = plt.subplots(figsize=(8, 4))
for name in ("plain, deep", "residual, deep"):
    torch.manual_seed(cfg.seed)
    fresh = cnn.PlainNet(num_classes=10, in_channels=1, width=DEGRADATION_WIDTH, depth=DEEP_DEPTH,
                         residual=name.startswith("residual")).to(cfg.device)
    norms = gradient_norms(fresh, images, labels)
    ax.plot(range(1, len(norms) + 1), norms, "o-", markersize=3, label=f"{name} (at initialisation)")
    print(f"{name:15s}: gradient norm {norms[0]:.2e} at the first conv, {norms[-1]:.2e} at the "
          f"last; largest / smallest: {max(norms) / min(norms):.0f}")
ax.set(xlabel="convolution (1 = next to the input)", ylabel="gradient norm", yscale="log",
       title="Gradient norms per layer, before training")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ### The loss landscape, seen through two random directions
#
# Li et al. [2018] found a way to look at a loss surface of millions of dimensions: pick two
# random directions $\delta$ and $\eta$ in weight space and plot the loss at
# $\theta + a\,\delta + b\,\eta$ around the trained weights $\theta$. A raw random direction
# would mislead, because a convolution followed by batch norm gives the same output when its
# filter is scaled, so a step of fixed length means a lot for a filter of small norm and little
# for a large one. They therefore rescale the direction *filter by filter* to the norm of the
# corresponding trained filter, and leave the biases and the batch-norm parameters alone. In
# their figures, a 56-layer plain network has a chaotic surface and its residual twin a smooth,
# bowl-like one. Here are the two deep networks trained above, with batch statistics as in
# training, on the same subset of training digits at every grid point:

# %%
def filter_normalised_direction(model, generator):
    """One random direction per parameter, rescaled so each filter's part has that filter's norm.

    Weights with one value per channel (biases, batch-norm scales and shifts) get zeros.
    """
    direction = []
    for weight in model.parameters():
        if weight.dim() <= 1:
            direction.append(torch.zeros_like(weight))
            continue
        random = torch.randn(weight.shape, generator=generator).to(weight.device)
        shape = (-1,) + (1,) * (weight.dim() - 1)  # one norm per filter (output channel)
        filter_norms = weight.detach().flatten(1).norm(dim=1).view(shape)
        direction.append(random / random.flatten(1).norm(dim=1).view(shape) * filter_norms)
    return direction


@torch.no_grad()
def loss_surface(model, images, labels, coordinates, seed=0):
    """Loss at theta + a * delta + b * eta on a grid (rows: b, columns: a), on a copy of the model."""
    generator = torch.Generator().manual_seed(seed)
    probe = copy.deepcopy(model).train()  # batch statistics, as in training; the copy absorbs
    origin = [weight.clone() for weight in probe.parameters()]  # the running-statistics updates
    delta = filter_normalised_direction(probe, generator)
    eta = filter_normalised_direction(probe, generator)
    losses = torch.zeros(len(coordinates), len(coordinates))
    for row, b in enumerate(coordinates):
        for column, a in enumerate(coordinates):
            for weight, start, d, e in zip(probe.parameters(), origin, delta, eta):
                weight.copy_(start + a * d + b * e)
            losses[row, column] = F.cross_entropy(probe(images), labels).item()
    return losses


landscape_images, landscape_labels = (tensor[:LANDSCAPE_IMAGES].to(cfg.device)
                                      for tensor in digits.train.tensors())
coordinates = torch.linspace(-1, 1, LANDSCAPE_STEPS)
surfaces = {name: loss_surface(networks[name][0], landscape_images, landscape_labels, coordinates)
            for name in ("plain, deep", "residual, deep")}
levels = np.linspace(np.log10(min(s.min().item() for s in surfaces.values())),
                     np.log10(max(s.max().item() for s in surfaces.values())), 16)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
for ax, (name, losses) in zip(axes, surfaces.items()):
    filled = ax.contourf(coordinates, coordinates, losses.log10(), levels=levels, cmap="viridis")
    ax.contour(coordinates, coordinates, losses.log10(), levels=levels, colors="white",
               linewidths=0.5)
    ax.plot(0, 0, "r+", markersize=12)
    ax.set(title=f"{name} ({DEEP_DEPTH} layers)", xlabel="a (direction delta)")
axes[0].set_ylabel("b (direction eta)")
fig.colorbar(filled, ax=axes, label="log10 training loss")
centre = LANDSCAPE_STEPS // 2
for name, losses in surfaces.items():
    print(f"{name:15s}: loss {losses[centre, centre]:.3f} at the trained weights (+), from "
          f"{losses.min():.3f} to {losses.max():.3f} over the grid")
print(f"({LANDSCAPE_STEPS}x{LANDSCAPE_STEPS} points, each on the same {LANDSCAPE_IMAGES} "
      f"training digits)")

# %% [markdown]
# Read the two maps with the printed numbers. Where training succeeded, the trained weights
# sit at the bottom of a basin and the loss climbs in every direction. Where it did not, the
# marker sits high, and the surface around it says why steps of gradient descent made little
# progress: flat, or broken into many small pits. These are two directions in a space with one
# dimension per weight (70 thousand here), so a picture like this illustrates; it does not prove. Li et al. also find the surfaces of
# shallow networks smooth with or without shortcuts: the chaos they show grows with depth.
#
# ### The rest of the ResNet design
#
# Apart from the shortcuts, ResNet borrows VGG's habits: small 3x3 kernels everywhere except a
# 7x7, stride-2 first layer, and twice the channels each time the maps shrink. It departs from
# VGG in three ways. Only one max-pool remains, right after that first layer; later stages
# shrink the maps with stride-2 convolutions. Every convolution is followed by batch
# normalisation. And the head is **global average pooling**, which reduces each feature map
# to its mean, followed by one linear layer. That head removes AlexNet's and VGG's giant
# fully-connected layers and makes the network accept any image size. How giant were they?

# %%
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
    block = block.to(cfg.device)
    print(f"{name:28s}: {count_parameters(block):9,} parameters, "
          f"{total_macs(block, (1, channels, 14, 14)) / 1e6:6.1f} M MACs at 14x14")

# %% [markdown]
# ### Exercise 4: a residual block
#
# Write the basic block of ResNet-18/34, `ResidualBlock(in_channels, channels, stride=1)`. Use
# exactly these names, so that the check can load its weights into your module:
#
# * `conv1`: 3x3, `in_channels` to `channels`, with the block's `stride`; `bn1` after it;
# * `conv2`: 3x3, `channels` to `channels`, stride 1; `bn2` after it;
# * `shortcut`: `nn.Identity()` when `stride == 1` and `in_channels == channels`; otherwise the
#   projection `nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride,
#   bias=False), nn.BatchNorm2d(channels))`, so that the input gets the output's shape.
#
# All convolutions have `bias=False` (batch norm adds its own shift) and the 3x3 ones padding 1.
# Forward: `conv1 -> bn1 -> ReLU -> conv2 -> bn2`, **add `shortcut(x)`**, then ReLU.

# %%
class ResidualBlock(nn.Module):
    """Basic residual block: (N, in_channels, H, W) -> (N, channels, H / stride, W / stride)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        # TODO: conv1, bn1, conv2, bn2 and shortcut
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        if stride == 1 and in_channels == channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(channels))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: the residual computation
        ### BEGIN SOLUTION
        residue = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(residue + self.shortcut(x))
        ### END SOLUTION


# %%
ResidualBlock = checks.check_residual_block(ResidualBlock)
block = ResidualBlock(64, 128, stride=2).to(cfg.device)
features = torch.randn(2, 64, 56, 56, device=cfg.device)
print(f"{ResidualBlock.__name__}(64, 128, stride=2): {tuple(features.shape)} -> "
      f"{tuple(block(features).shape)},\n{count_parameters(block):,} parameters, "
      f"{count_parameters(block.shortcut):,} of them in the projection shortcut")

# %% [markdown]
# ## 5. Normalisation layers
#
# Ioffe & Szegedy [2015] motivated batch norm like this. As the weights change during
# training, the values flowing into each layer drift in offset and spread, and every later
# layer must keep adapting to that drift. A normalisation layer takes this off their hands: it
# measures a mean and a variance over a group of values, centres and rescales those values with
# them, and then applies a learned scale $\gamma$ and shift $\beta$, so that the network can
# still pick whatever offset and spread suit it:
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
# In practice these layers let networks train with larger learning rates and depend less on the
# initialisation. *Why* is less settled than the recipe: Santurkar et al. [2018] argue that batch
# norm helps less by stabilising the layers' inputs than by making the loss change more
# gradually, so that bigger steps stay safe. Which normaliser to use is, in practice, one more
# design choice to try.

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
x = torch.randn(8, 6, 5, 5, device=cfg.device) * 4 + 3
torch_layers = {"batch norm": (nn.BatchNorm2d(6), (0, 2, 3)),
                "layer norm": (nn.LayerNorm([6, 5, 5]), (1, 2, 3)),
                "instance norm": (nn.InstanceNorm2d(6), (2, 3))}
for name, (layer, dims) in torch_layers.items():
    difference = (layer.to(cfg.device)(x) - normalize(x, dims)).abs().max().item()
    print(f"{name:14s} = normalize over dims {dims}: largest difference {difference:.1e}")
difference = (nn.GroupNorm(3, 6).to(cfg.device)(x) - group_norm(x, 3)).abs().max().item()
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
batch_norm = nn.BatchNorm2d(3).to(cfg.device)
for step in range(200):  # training batches: mean about 5, standard deviation about 2
    batch_norm(torch.randn(16, 3, 4, 4, device=cfg.device) * 2 + 5)
print("running mean:", batch_norm.running_mean.cpu().numpy().round(2),
      "| running variance:", batch_norm.running_var.cpu().numpy().round(2))
image = torch.randn(1, 3, 4, 4, device=cfg.device) * 2 + 5
ordinary_batch = torch.cat([image, torch.randn(15, 3, 4, 4, device=cfg.device) * 2 + 5])
bright_batch = torch.cat([image, torch.randn(15, 3, 4, 4, device=cfg.device) * 2 + 9])
for mode in ("eval", "train"):  # eval first: train mode would update the running statistics
    getattr(batch_norm, mode)()
    with torch.no_grad():
        in_ordinary, in_bright = batch_norm(ordinary_batch)[0], batch_norm(bright_batch)[0]
    print(f"{mode:5s} mode: the image's output mean is {in_ordinary.mean():+.2f} in the ordinary "
          f"batch, {in_bright.mean():+.2f} in the bright one\n"
          f"{'':12s}(largest difference {(in_ordinary - in_bright).abs().max():.2f})")

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
print(f"an SE block (r=16) on a 256-channel basic block adds {se_params:,} parameters to its "
      f"{block_params:,} ({se_params / block_params:.1%}),\nand almost no compute")

# %% [markdown]
# ### The ConvNeXt block
#
# From 2020-21, Vision Transformers (lesson 05), pretrained on very large datasets, were
# overtaking CNNs. Liu et al. [2022] asked which of the Transformer's design choices a CNN could
# borrow, and modernised a ResNet-50 one change at a time, training each version on ImageNet
# with the same recipe. Their published accuracy after each change:

# %%
# ImageNet-1K top-1 accuracy (%) after each cumulative change, as published by Liu et al. [2022]
# (their Figure 2 and Section 2; 76.1 is the original ResNet-50 training they start from).
modernisation_steps = [("ResNet-50, original 90-epoch training", 76.1, "training"),
                       ("modern training recipe (300 epochs, AdamW, ...)", 78.8, "training"),
                       ("blocks per stage 3:3:9:3", 79.4, "macro design"),
                       ("patchify stem (4x4, stride 4)", 79.5, "macro design"),
                       ("depthwise 3x3 conv, width 64 -> 96", 80.5, "ResNeXt-ify"),
                       ("inverted bottleneck", 80.6, "inverted bottleneck"),
                       ("depthwise conv moved up", 79.9, "large kernel"),
                       ("depthwise kernel 3x3 -> 7x7", 80.6, "large kernel"),
                       ("ReLU -> GELU", 80.6, "micro design"),
                       ("fewer activations", 81.3, "micro design"),
                       ("fewer normalisation layers", 81.4, "micro design"),
                       ("batch norm -> layer norm", 81.5, "micro design"),
                       ("separate downsampling layers = ConvNeXt-T", 82.0, "micro design")]
SWIN_T_ACCURACY = 81.3  # the Transformer they compare with, same regime [Liu et al., 2022]

step_names, step_accuracies, step_groups = zip(*modernisation_steps)
group_colours = dict(zip(dict.fromkeys(step_groups), plt.cm.tab10.colors))
fig, ax = plt.subplots(figsize=(10, 5.6))
positions = np.arange(len(step_names))[::-1]
ax.barh(positions, np.array(step_accuracies) - 75, left=75,
        color=[group_colours[group] for group in step_groups])
for position, accuracy in zip(positions, step_accuracies):
    ax.text(accuracy + 0.05, position, f"{accuracy:.1f}", va="center", fontsize=10)
ax.axvline(SWIN_T_ACCURACY, color="black", ls="--", lw=1)
ax.text(SWIN_T_ACCURACY + 0.05, positions[0] + 0.2, f"Swin-T {SWIN_T_ACCURACY}", fontsize=10)
ax.set_yticks(positions, step_names, fontsize=10)
ax.set(xlim=(75, 83), xlabel="ImageNet-1K top-1 accuracy (%), published by Liu et al. [2022]",
       title="From ResNet-50 to ConvNeXt-T, one change at a time")
fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colour) for colour in group_colours.values()],
           labels=list(group_colours), loc="lower center", ncol=6, fontsize=10)
fig.tight_layout(rect=(0, 0.06, 1, 1))

# %% [markdown]
# The largest single gain is not architectural: the training recipe alone is worth 2.7 points,
# a warning for every comparison of architectures trained differently (section 8). The
# resulting **ConvNeXt block**:
#
# 1. a **depthwise** 7x7 convolution (one filter per channel, `groups=C`): large spatial context,
#    little compute, no mixing of channels;
# 2. **LayerNorm** over the channels instead of batch norm;
# 3. an **inverted bottleneck**: 1x1 expand to $4C$, GELU, 1x1 back to $C$, like a
#    Transformer's feed-forward layer (lesson 04), mixing channels at each position;
# 4. **layer scale** [Touvron et al., 2021], first used to train deep vision Transformers
#    (CaiT): a learned per-channel factor on the block's output, initialised tiny ($10^{-6}$), so
#    that every block starts close to the identity; plus the residual shortcut.
#
# A later version, ConvNeXt V2 [Woo et al., 2023], adds a "global response normalisation" layer
# to the block and pretrains the network by masked autoencoding (lesson 07's topic).
#
# A dense 3x3 convolution mixes space and channels at once. The ConvNeXt block *separates*
# the two: the depthwise convolution mixes only space, the 1x1 layers (written as `Linear`
# layers on each position) mix only channels. Compared with a ResNet basic block at the same
# width, it spends almost all its parameters on channel mixing:

# %%
dim = 96
for name, block in (("ResNet basic block", cnn.BasicBlock(dim, dim).to(cfg.device)),
                    ("ConvNeXt block", cnn.ConvNeXtBlock(dim).to(cfg.device))):
    parameters = {kind: sum(p.numel() for module in block.modules() if isinstance(module, kind)
                            for p in module.parameters(recurse=False))
                  for kind in (nn.Conv2d, nn.Linear)}
    macs = total_macs(block, (1, dim, 56, 56))
    print(f"{name:18s}: {count_parameters(block):7,} parameters, {macs / 1e6:.0f} M MACs at 56x56"
          f"\n{'':20s}{parameters[nn.Conv2d]:7,} in k x k convolutions, "
          f"{parameters[nn.Linear]:,} in 1x1 (Linear) layers")

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
photo_tensor = torch.from_numpy(photo).permute(2, 0, 1).to(cfg.device)  # (H, W, C) -> (C, H, W)
resized = TF.resize(photo_tensor, preprocess.resize_size, interpolation=preprocess.interpolation,
                    antialias=True)
cropped = TF.center_crop(resized, preprocess.crop_size)
scaled = cropped.float() / 255
normalised = preprocess(photo_tensor)
print(f"input {tuple(photo_tensor.shape)} uint8 -> resized {tuple(resized.shape)} -> cropped "
      f"{tuple(cropped.shape)} -> normalised {tuple(normalised.shape)} float32")
print("this photo's channel means after normalisation:",
      normalised.mean(dim=(1, 2)).cpu().numpy().round(2), "(only over the whole training set are they 0)")
imagenet_mean = torch.tensor(preprocess.mean, device=cfg.device)[:, None, None]
imagenet_std = torch.tensor(preprocess.std, device=cfg.device)[:, None, None]
print("pipeline by hand equals weights.transforms():",
      torch.allclose((scaled - imagenet_mean) / imagenet_std, normalised, atol=1e-5))

# %%
fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
axes = axes.flatten()
steps = [(photo_tensor, f"original {photo.shape[1]}x{photo.shape[0]}"),
         (resized, f"resized: short side {preprocess.resize_size[0]}"),
         (cropped, f"centre crop {preprocess.crop_size[0]}x{preprocess.crop_size[0]}")]
for ax, (image, title) in zip(axes, steps):
    ax.imshow(image.permute(1, 2, 0).cpu())
    ax.set_title(title)
    ax.axis("off")
for channel, color in enumerate(("red", "green", "blue")):
    axes[3].hist(scaled[channel].flatten().cpu(), bins=60, histtype="step", color=color, ls=":")
    axes[3].hist(normalised[channel].flatten().cpu(), bins=60, histtype="step", color=color)
axes[3].set(title="pixel values: scaled (dotted),\nnormalised (solid)", xlabel="value",
            ylabel="pixels")
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
fig, (left, right) = plt.subplots(2, 1, figsize=(10, 10), sharey=True)
for index, family in enumerate(families):
    members = [row for row in zoo if family_of(row[0]) == family]
    _, params, gflops, accuracy = zip(*members)
    style = {"color": plt.cm.tab20(index % 20), "marker": "os^D"[index % 4], "s": 28}
    left.scatter(params, accuracy, label=family, **style)
    right.scatter(gflops, accuracy, **style)
for name, params, gflops, accuracy in zoo:
    if name in ("alexnet", "vgg16", "resnet50", "convnext_tiny", "efficientnet_b0",
                "mobilenet_v3_small", "vit_b_16", "regnet_y_16gf"):
        left.annotate(name, (params, accuracy), fontsize=10)
        right.annotate(name, (gflops, accuracy), fontsize=10)
left.set(xscale="log", xlabel="parameters (millions)", ylabel="ImageNet top-1 accuracy (%)",
         title="accuracy vs. size")
right.set(xscale="log", xlabel="GMACs per image (torchvision's 'GFLOPS'), at each model's resolution",
          title="accuracy vs. compute")
fig.suptitle(f"{len(zoo)} torchvision models, default weights (metadata only, no download)")
fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=6, fontsize=10)
fig.tight_layout(rect=(0, 0.1, 1, 1))
by_name = {name: (params, gflops, accuracy) for name, params, gflops, accuracy in zoo}
most_accurate = sorted(by_name, key=lambda name: -by_name[name][2])[:4]
for name in ("alexnet", "vgg16", "resnet50", "efficientnet_b0", "convnext_tiny", "vit_b_16",
             *most_accurate):
    params, gflops, accuracy = by_name[name]
    default = torchvision.models.get_model_weights(name).DEFAULT
    resolution = default.transforms().crop_size[0]
    print(f"{name:18s} {accuracy:5.1f}% top-1 | {params:6.1f} M params | {gflops:7.2f} GMACs "
          f"at {resolution:3d} px | {default.name}")

# %% [markdown]
# Reading the plot: VGG-16 is both huge and slow for its accuracy; ResNet-50 is the classic
# reliable default; EfficientNet and MobileNet reach good accuracy with few parameters and
# little compute (good for phones); ConvNeXt is among the best models trained on ImageNet
# alone. The last rows printed above are the most accurate of all, and their fine print
# matters: the top two have "SWAG" weights [Singh et al., 2022], pretrained on billions of
# Instagram images (labelled only by their hashtags) before ImageNet, and all of them are
# evaluated on larger images than 224x224 (the biggest ViT at 518x518, hence its compute far to
# the right). A ViT-B/16 trained on ImageNet alone sits near ResNet-50, a first hint of lesson
# 05's "Transformers need more data". Mind the fine print: these numbers come from different
# training recipes (epochs, augmentation, resolution), which can matter as much as the
# architecture, as the ConvNeXt steps of section 6 showed (lesson 07 comes back to this).
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
# 32x32 and, on a GPU, trains on twelve times more glyphs for six times more epochs (the table
# below prints what this run used). The inputs are normalised per channel with the training
# set's own mean and standard deviation, exactly as in section 7.

# %%
glyphs = load_dataset("glyphs", num_images=NUM_GLYPHS, seed=cfg.seed)
print(glyphs.summary())
splits = {}
for name in ("train", "val", "test"):
    images, labels = getattr(glyphs, name).tensors()
    splits[name] = (images.to(cfg.device), labels.to(cfg.device))
if GLYPH_SIZE != 32:
    splits = {name: (F.avg_pool2d(images, 32 // GLYPH_SIZE), labels)
              for name, (images, labels) in splits.items()}
channel_mean = splits["train"][0].mean(dim=(0, 2, 3), keepdim=True)
channel_std = splits["train"][0].std(dim=(0, 2, 3), keepdim=True)
print("training-set channel means", channel_mean.flatten().cpu().numpy().round(3),
      "and standard deviations", channel_std.flatten().cpu().numpy().round(3))
fig = show_images(splits["train"][0][:16].cpu(), splits["train"][1][:16].cpu(), glyphs.class_names,
                  ncols=16, scale=1.0,
                  title=f"Glyphs at {GLYPH_SIZE}x{GLYPH_SIZE}: synthetic letters on photographs")

# %%
def glyph_loader(split, shuffle):
    images, labels = splits[split]
    return device_loader((images - channel_mean) / channel_std, labels, shuffle=shuffle)


val_loader, test_loader = glyph_loader("val", shuffle=False), glyph_loader("test", shuffle=False)


def train_on_glyphs(model):
    """The one recipe every candidate gets: AdamW, COMPARE_EPOCHS epochs, the same batches."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.05)
    return fit(model, glyph_loader("train", shuffle=True), val_loader, epochs=COMPARE_EPOCHS,
               optimizer=optimizer, progress=False)


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
    model, histories[name] = train_once(
        "glyphs-" + name.lower().replace(" + ", "-").replace(" ", "-"), build=build,
        recipe={"num_glyphs": NUM_GLYPHS, "size": GLYPH_SIZE, "epochs": COMPARE_EPOCHS,
                "batch_size": BATCH_SIZE, "lr": LEARNING_RATE},
        train=train_on_glyphs)
    test = evaluate(model, test_loader)
    macs = total_macs(model, (1, 3, GLYPH_SIZE, GLYPH_SIZE))
    results[name] = (count_parameters(model), macs, histories[name]["seconds"],
                     throughput(histories[name]), histories[name]["val_accuracy"][-1],
                     record("02", f"{name} test accuracy", test["accuracy"]))

print(f"{'model':16s}{'parameters':>12s}{'MMACs':>8s}{'train s':>9s}{'images/s':>10s}"
      f"{'val acc':>9s}{'test acc':>10s}")
for name, (params, macs, seconds, rate, val_accuracy, test_accuracy) in results.items():
    print(f"{name:16s}{params:12,d}{macs / 1e6:8.2f}{seconds:9.1f}{rate:10,.0f}{val_accuracy:9.3f}"
          f"{test_accuracy:10.3f}")
print(f"({cfg.profile} profile: {len(splits['train'][1])} training glyphs at {GLYPH_SIZE}x{GLYPH_SIZE}, "
      f"{COMPARE_EPOCHS} epochs, batch {BATCH_SIZE}, AdamW lr {LEARNING_RATE}, one seed)")
first_epoch = {name: history["val_accuracy"][0] for name, history in histories.items()}
by_test = sorted(results, key=lambda name: -results[name][5])
print(f"after one epoch, {max(first_epoch, key=first_epoch.get)} leads on validation "
      f"({max(first_epoch.values()):.3f}); after {COMPARE_EPOCHS}, the test ranking is")
print("   " + " > ".join(f"{name} ({results[name][5]:.3f})" for name in by_test))
convnext_curve = histories["ConvNeXt-style"]["val_accuracy"]
if COMPARE_EPOCHS > 1:
    gain = convnext_curve[-1] - convnext_curve[-2]
    print(f"ConvNeXt-style: validation accuracy {'still rising' if gain > 0 else 'not rising'} in "
          f"the last epoch ({gain:+.3f})")
se_effect = results["ResNet + SE"][5] - results["ResNet-style"][5]
print(f"squeeze-and-excitation: {se_effect:+.3f} test accuracy for "
      f"{results['ResNet + SE'][0] - results['ResNet-style'][0]:,} more parameters")
print("fewest parameters first:", ", ".join(sorted(results, key=lambda name: results[name][0])))
print("fewest multiply-adds first:", ", ".join(sorted(results, key=lambda name: results[name][1])))

# %%
fig, ax = plt.subplots(figsize=(8, 4.2))
for name, history in histories.items():
    ax.plot(range(1, COMPARE_EPOCHS + 1), history["val_accuracy"], "o-", label=name)
ax.axhline(1 / 26, color="grey", ls=":", label="chance (1/26)")
ax.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
       xticks=range(1, COMPARE_EPOCHS + 1), title="Glyphs: validation accuracy per epoch")
ax.legend()
fig.tight_layout()

# %% [markdown]
# How to read this table honestly: each network got one recipe (optimiser, learning rate,
# epochs) that was not tuned for it, and one seed. Differences of a point or two could change
# with another seed. With few images and epochs, the comparison says more about *how fast each
# design learns from little data* than about what it can reach; the longer the training, the
# fairer the race.
#
# What the printed lines can and cannot tell:
#
# * Six convolutions are too shallow for degradation to matter, so the shortcuts of the
#   ResNet-style network have little to fix here; their advantage appears with depth (section
#   4). Whichever of VGG and ResNet comes first, one run does not say why: their stems, their
#   number of full-resolution layers and how well the shared learning rate suits each differ.
# * The ConvNeXt-style network has layer norm and layer scale instead of batch norm, and its
#   patchify stem halves the resolution in its very first layer, a heavy loss on small letters.
#   ConvNeXt was designed for ImageNet, 300 epochs and heavy augmentation; whatever its rank
#   here, a short run on small images is not where its design pays off.
# * Squeeze-and-excitation adds a few percent of parameters and almost no multiply-adds;
#   whether it helps is not decided by one short run with one seed, whatever the sign above.
# * The two orderings printed last show whether parameters and compute rank the networks
#   alike. Time is not proportional to multiply-adds either: layers that do little arithmetic
#   per value they read (SE gates, depthwise convolutions, normalisations) are limited by
#   memory traffic, so compare the MMACs and time columns. (On a shared CPU the times also vary
#   from run to run; read only their order of magnitude.)
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
#   $\lfloor (n + 2p - d(k-1) - 1)/s \rfloor + 1$ (with $d = 1$:
#   $\lfloor (n + 2p - k)/s \rfloor + 1$), parameters $C_{out}(C_{in}k^2 + 1)$, multiply-adds
#   $C_{out} H_{out} W_{out} C_{in} k^2$, memory of its output. In AlexNet the convolutions do
#   the computing and the fully-connected layers hold the parameters.
# * VGG: only 3x3 convolutions and 2x2 pools, channels doubled at each pool (up to 512), which
#   keeps the cost of a layer constant from stage to stage (not the cost of a stage). Stacked
#   3x3 layers reach large receptive fields with fewer parameters and more non-linearity.
# * Deep plain networks can train *worse*, even on their training data (degradation). Residual
#   blocks, $\mathrm{ReLU}(F(x) + \mathrm{shortcut}(x))$, make the identity easy and keep
#   gradients flowing; seen through two random directions, their loss surface is the easier one
#   to descend [Li et al., 2018].
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
# * J. Deng, W. Dong, R. Socher, L.-J. Li, K. Li, L. Fei-Fei, "ImageNet: A Large-Scale
#   Hierarchical Image Database", CVPR 2009.
# * O. Russakovsky, J. Deng, H. Su, J. Krause, S. Satheesh, S. Ma, Z. Huang, A. Karpathy,
#   A. Khosla, M. Bernstein, A. C. Berg, L. Fei-Fei, "ImageNet Large Scale Visual Recognition
#   Challenge", IJCV 2015 (the 2010, 2011 and 2013 winners' errors; the human estimate).
# * A. Krizhevsky, I. Sutskever, G. Hinton, "ImageNet Classification with Deep Convolutional
#   Neural Networks", NeurIPS 2012.
# * C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (GoogLeNet).
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
# * H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein, "Visualizing the Loss Landscape of Neural
#   Nets", NeurIPS 2018.
# * J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (winner of ILSVRC 2017).
# * Z. Liu, H. Mao, C.-Y. Wu, C. Feichtenhofer, T. Darrell, S. Xie, "A ConvNet for the 2020s",
#   CVPR 2022.
# * H. Touvron, M. Cord, A. Sablayrolles, G. Synnaeve, H. Jégou, "Going Deeper with Image
#   Transformers", ICCV 2021 (CaiT; layer scale).
# * S. Woo, S. Debnath, R. Hu, X. Chen, Z. Liu, I. S. Kweon, S. Xie, "ConvNeXt V2: Co-designing
#   and Scaling ConvNets with Masked Autoencoders", CVPR 2023.
# * M. Singh, L. Gustafson, A. Adcock, V. de Freitas Reis, B. Gedik, R. P. Kosaraju, D. Mahajan,
#   R. Girshick, P. Dollár, L. van der Maaten, "Revisiting Weakly Supervised Pre-Training of
#   Visual Perception Models", CVPR 2022 (SWAG).
# * J. Johnson, *EECS 498-007 Deep Learning for Computer Vision*, University of Michigan, 2019
#   (lectures on CNN architectures).
