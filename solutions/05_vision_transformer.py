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
# # Lesson 05 · The Vision Transformer
#
# Lesson 04's Transformer reads a sequence of tokens. An image is not a sequence, but it can be
# made into one: cut it into square patches, flatten each patch and map it linearly to a
# vector, and the patches become "words". The Vision Transformer (ViT) [Dosovitskiy et al.,
# 2021] does exactly this and then uses lesson 04's encoder layers, in their pre-norm form with
# a GELU. Its title, "An Image is
# Worth 16x16 Words", is the recipe: a 224 x 224 photo cut into 16 x 16 patches is a sentence
# of 196 words.
#
# The paper's headline is also a warning: trained on ImageNet alone (1.3 million images), the
# ViT does *worse* than a ResNet of similar cost; pre-trained on 300 million images it does
# better. Attention-based models need more data, because they must learn from examples what a
# convolution knows by construction. This lesson builds the ViT, then tests that claim on the
# course's own data.
#
# **You will learn**
#
# 1. how an image becomes a sequence of patches, and how many tokens that makes;
# 2. why the patch embedding is a convolution with kernel = stride = patch size;
# 3. the class token, learned position embeddings and the encoder: the whole ViT in a page;
# 4. what the paper's model sizes cost, and why the ranking of ViT and ResNet flips with data;
# 5. the data-hunger claim tested: a ViT and a ResNet as the training set grows;
# 6. the inductive biases a CNN gets for free, made visible (positions, shuffled patches);
# 7. what the class token attends to, layer by layer and through all layers (rollout);
# 8. the patch size as a knob between cost and accuracy.
#
# Exercises are checked as before: NOT DONE (the reference is used), WRONG (what failed, with a
# hint), PASSED.

# %%
import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils import data_hunger, setup
from course_utils.complexity import count_parameters
from course_utils.data import DatasetNotAvailableError, load_dataset, tensor_batches
from course_utils.exercises import lesson05 as checks
from course_utils.photos import load_photo
from course_utils.pretrained import get_recipe, load_pretrained
from course_utils.results import record
from course_utils.training import evaluate
from course_utils.transformer import EncoderLayer
from course_utils.vit import VisionTransformer, attention_rollout, vit_config
from course_utils.widgets import class_token_attention_widget

cfg = setup(seed=0)

# %%
# Sizes of the live experiments. The quick profile fits a 2-core laptop; the full one reruns
# the recorded grid of section 5, all but its patch-size runs at the smaller size (meant for
# a GPU). `capped` values only apply to the
# capped test run of the full profile (COURSE_CAPPED=1), which runs its code paths on a CPU.
GRID = get_recipe("data-hunger").settings  # the recorded grid's settings (section 5)
LIVE_PER_CLASS = cfg.pick(quick=[20, 320], full=GRID["per_class"], capped=[4, 8])
LIVE_REPEATS = cfg.pick(quick=1, full=GRID["repeats"], capped=1)
LIVE_STEPS = cfg.pick(quick=300, full=GRID["steps"], capped=20)
LIVE_TEST_PER_CLASS = cfg.pick(quick=40, full=GRID["test_per_class"], capped=4)
LIVE_PATCH_SIZES = cfg.pick(quick=[8], full=GRID["patch_sizes"], capped=[8])
# True: section 5 also runs its comparison on CIFAR-10's photos (a 170 MB download, once).
CIFAR10 = False
CIFAR10_PER_CLASS = cfg.pick(quick=[50, 800], full=[50, 100, 200, 400, 800, 1_600, 3_200],
                             capped=[4, 8])
EVAL_SAMPLE = cfg.pick(quick=None, full=None, capped=64)  # None: the whole glyph test split
SHOWN = 6  # test images whose attention is drawn

# %% [markdown]
# ## 1. From an image to a sequence of patches
#
# A patch of $p \times p$ pixels with $C$ colour channels, flattened, is a vector of $C p^2$
# numbers. An image of $H \times W$ pixels gives $(H/p)(W/p)$ patches, which we number row by
# row, left to right, like words on a page. The whole batch goes from shape
# $(N, C, H, W)$ to $(N, P, C p^2)$ with $P = HW/p^2$.
#
# ### Exercise 1: patchify
#
# Write `patchify(images, patch_size)`. Each patch must be flattened channel first, then row,
# then column: that is the layout of a convolution kernel $(C, p, p)$, and section 2 relies on
# it. Hint: one `reshape` splits the height into (rows of patches, rows inside a patch) and the
# width likewise; a `permute` then brings the two patch-grid axes to the front; a last
# `reshape` flattens. A single `reshape` of the whole image is not enough: the pixels of one
# patch are not next to each other in memory.

# %%
def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Images (N, C, H, W) -> patches (N, P, C * patch_size**2), patches row by row."""
    n, c, h, w = images.shape
    # TODO: reshape to (N, C, H/p, p, W/p, p), permute, reshape to (N, P, C * p * p).
    ### BEGIN SOLUTION
    rows, columns = h // patch_size, w // patch_size
    patches = images.reshape(n, c, rows, patch_size, columns, patch_size)
    patches = patches.permute(0, 2, 4, 1, 3, 5)  # (N, rows, columns, C, p, p)
    return patches.reshape(n, rows * columns, c * patch_size * patch_size)
    ### END SOLUTION


# %%
patchify = checks.check_patchify(patchify)

# %% [markdown]
# ### Exercise 2: and back
#
# The inverse, `unpatchify(patches, patch_size)`, puts the patches of square images back in
# place. Lesson 07's masked auto-encoder needs it to turn predicted patches into an image, and
# here it proves that `patchify` loses nothing.

# %%
def unpatchify(patches: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patches (N, P, C * p**2) of square images -> images (N, C, H, W)."""
    n, count, size = patches.shape
    side = math.isqrt(count)              # patches per row (and per column)
    channels = size // (patch_size * patch_size)
    # TODO: undo patchify's last reshape, its permute, then its first reshape.
    ### BEGIN SOLUTION
    grid = patches.reshape(n, side, side, channels, patch_size, patch_size)
    grid = grid.permute(0, 3, 1, 4, 2, 5)  # (N, C, rows, p, columns, p)
    return grid.reshape(n, channels, side * patch_size, side * patch_size)
    ### END SOLUTION


# %%
unpatchify = checks.check_unpatchify(unpatchify)

# %% [markdown]
# Here is a real photo (the astronaut from scikit-image), resized to the paper's 224 x 224 and
# cut into 16 x 16 patches, and one of the course's 32 x 32 glyphs cut into 4 x 4 patches.
# The strips under each image are the first patches of the sequence, in order.

# %%
def as_batch(image: np.ndarray, size: int) -> torch.Tensor:
    """An (H, W, 3) uint8 photo -> a (1, 3, size, size) float batch in [0, 1]."""
    tensor = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    return nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True)


vit_recipe = get_recipe("vit-glyphs")  # the data of the models loaded in sections 6-7
glyph_splits = load_dataset("glyphs", num_images=vit_recipe.settings["num_images"],
                            seed=vit_recipe.settings["seed"])
photo = as_batch(load_photo("astronaut"), 224)
glyph = glyph_splits.test.images[:1].float() / 255
examples = [("photo", photo, 16), ("glyph", glyph, 4)]

for name, image, patch_size in examples:
    patches = patchify(image, patch_size)
    print(f"{name}: image {tuple(image.shape)} -> patches {tuple(patches.shape)} "
          f"({image.shape[-1] // patch_size} x {image.shape[-1] // patch_size} patches of "
          f"{image.shape[1]} x {patch_size} x {patch_size} = {patches.shape[-1]} numbers); "
          f"unpatchify gives the image back: {torch.equal(unpatchify(patches, patch_size), image)}")

fig = plt.figure(figsize=(10, 6.6))
grid = fig.add_gridspec(2, 2, height_ratios=[4, 1.3])
for column, (name, image, patch_size) in enumerate(examples):
    ax = fig.add_subplot(grid[0, column])
    side = image.shape[-1]
    ax.imshow(image[0].permute(1, 2, 0).numpy())
    for line in range(0, side + 1, patch_size):
        ax.axhline(line - 0.5, color="white", lw=0.8)
        ax.axvline(line - 0.5, color="white", lw=0.8)
    per_row = side // patch_size
    for index in list(range(8)) + [per_row]:  # the first eight patches, and the first of row 2
        row, place = divmod(index, per_row)
        ax.text((place + 0.5) * patch_size - 0.5, (row + 0.5) * patch_size - 0.5, str(index + 1),
                color="yellow", fontsize=10, ha="center", va="center", fontweight="bold")
    ax.set(title=f"{name}: {side} x {side}, patches of {patch_size} x {patch_size}\n"
                 f"= {(side // patch_size) ** 2} tokens", xticks=[], yticks=[])
    strip = fig.add_subplot(grid[1, column])
    first = patchify(image, patch_size)[0, :8].reshape(8, 3, patch_size, patch_size)
    strip.imshow(torch.cat([torch.nn.functional.pad(p, (0, 1, 0, 1), value=1.0) for p in first],
                           dim=2).permute(1, 2, 0).numpy())
    strip.set(title="patches 1-8 of the sequence", xticks=[], yticks=[])
fig.tight_layout()
plt.show()

# %% [markdown]
# How many tokens does an image make, and what does it do to attention's cost? Lesson 03's
# formulas give it. One encoder layer of width $d$ over $L$ tokens multiplies and adds about
# $4Ld^2$ times in the query, key, value and output projections, $2L^2d$ times in the
# attention itself (the scores $QK^\top$ and the weighted sum of values), and $8Ld^2$ in an MLP
# of width $4d$: so the quadratic term's share is $2L^2d / (12Ld^2 + 2L^2d) = L/(6d + L)$.
# With ViT-B's $d = 768$, $L$ counts the class token too:

# %%
def layer_macs(length: int, dim: int) -> tuple[int, int]:
    """Multiply-adds of one encoder layer (MLP width 4 dim): (linear parts, attention matmuls)."""
    return 12 * length * dim * dim, 2 * length * length * dim


print(f"{'image / patch':>32s} {'tokens L':>9s} {'linear GMACs':>13s} {'attention GMACs':>16s} "
      f"{'attention share':>16s}")
for image_size, patch_size in [(224, 32), (224, 16), (224, 8), (224, 1), (32, 4), (16, 4)]:
    length = 1 + (image_size // patch_size) ** 2
    linear, quadratic = layer_macs(length, 768)
    label = f"{image_size} / {patch_size}" + (" (pixels)" if patch_size == 1 else "")
    label += " (at ViT-B width)" if image_size < 224 else ""
    print(f"{label:>32s} {length:9,d} {linear / 1e9:13.3f} {quadratic / 1e9:16.3f} "
          f"{quadratic / (linear + quadratic):16.1%}")

# %% [markdown]
# At 224/16 the attention matrices are a small part of the work; the projections and the MLP
# dominate, and the cost grows about linearly with the number of patches. Treating every pixel
# as a token (224/1, 50,177 tokens) would make attention almost all of the cost, and each layer
# would hold a $50{,}177 \times 50{,}177$ attention matrix per head and per image (its size in
# memory is printed below): that is why the ViT uses patches. Halving
# the patch size quadruples the tokens, so the linear part grows 4x and the quadratic part 16x.
# The formula can be checked against PyTorch's FLOP counter on the package's ViT-B/16, built on
# the "meta" device (shapes only, no memory, no download):

# %%
def count_macs(model: nn.Module, input_shape: tuple) -> int:
    """Multiply-adds of one forward pass, counted by PyTorch (FLOPs / 2), on the meta device."""
    with torch.device("meta"):
        x = torch.empty(input_shape)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


print(f"one attention matrix over 50,177 pixel tokens, float32: {50_177 ** 2 * 4 / 1e9:.1f} GB")
with torch.device("meta"):
    vit_b16 = VisionTransformer(**vit_config("ViT-B/16"))
linear, quadratic = layer_macs(197, 768)
formula = 12 * (linear + quadratic) + 196 * 768 * (3 * 16 * 16) + 768 * 1000  # + patches, head
print(f"ViT-B/16 at 224 x 224: counted {count_macs(vit_b16, (1, 3, 224, 224)) / 1e9:.3f} G "
      f"multiply-adds; formula (12 layers + patch embedding + head) {formula / 1e9:.3f} G")

# %% [markdown]
# ## 2. The patch embedding is a convolution
#
# Each flattened patch goes through the same linear map to a vector of size $d$, the token's
# embedding: $\mathbf{z}_i = \mathbf{W}\mathbf{x}_i + \mathbf{b}$ with $\mathbf{W}$ of shape
# $d \times Cp^2$. A convolution with $d$ output channels, a $p \times p$ kernel and a stride of
# $p$ computes exactly this: each output position sees one patch, the patches do not overlap,
# and the kernel's weights are shared across positions, as the linear map's are. Row $k$ of
# $\mathbf{W}$, read as a $(C, p, p)$ block, *is* kernel $k$; so the convolution's weight is
# $\mathbf{W}$ reshaped, which is why `patchify` flattens channel first.
#
# ### Exercise 3: the linear map as a convolution
#
# Write `conv_from_linear(linear, patch_size, in_channels)`: return an `nn.Conv2d` that
# computes what `linear` computes on `patchify`'s patches, with its weights and bias copied from
# `linear` (inside `torch.no_grad()`, e.g. `conv.weight.copy_(...)`).

# %%
def conv_from_linear(linear: nn.Linear, patch_size: int, in_channels: int) -> nn.Conv2d:
    """A convolution (kernel = stride = patch_size) equal to ``linear`` applied to each patch."""
    # TODO: build the Conv2d, then copy linear's weight (reshaped) and bias into it.
    ### BEGIN SOLUTION
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size=patch_size, stride=patch_size)
    with torch.no_grad():  # a copy into parameters, not a step to differentiate
        conv.weight.copy_(linear.weight.reshape(linear.out_features, in_channels, patch_size,
                                                patch_size))
        conv.bias.copy_(linear.bias)
    return conv
    ### END SOLUTION


# %%
conv_from_linear = checks.check_conv_from_linear(conv_from_linear)

# %% [markdown]
# On the astronaut, with a random linear map to $d = 768$:

# %%
torch.manual_seed(0)
linear = nn.Linear(3 * 16 * 16, 768)
conv = conv_from_linear(linear, 16, 3)
with torch.no_grad():
    by_linear = linear(patchify(photo, 16))                    # (1, 196, 768)
    by_conv = conv(photo).flatten(2).transpose(1, 2)           # (1, 768, 14, 14) -> (1, 196, 768)
print(f"linear on patches {tuple(by_linear.shape)}, convolution {tuple(by_conv.shape)}; largest "
      f"difference {(by_linear - by_conv).abs().max().item():.1e} (float rounding: the sums run "
      f"in another order)")

# %% [markdown]
# The package's `PatchEmbedding` uses the convolution: it is one fused kernel call instead of a
# reshape, a permute (which copies the image) and a matrix product.
#
# ## 3. Class token, positions, encoder, head
#
# Three pieces turn the patch embeddings into a classifier.
#
# * **The class token.** A learned vector $\mathbf{z}_{\text{cls}}$ is put in front of the
#   patch tokens, as BERT does [Devlin et al., 2019]. It belongs to no patch; through
#   self-attention it gathers information from all of them, and after the last layer its
#   vector alone goes to the classification head. (Averaging all the patch tokens instead
#   works as well, given the right learning rate, the paper reports; the class token keeps the
#   Transformer unchanged.)
# * **Position embeddings.** Self-attention ignores order (lesson 03 showed it exactly), so
#   without positions the ViT would see a *bag* of patches. A learned vector per position,
#   $\mathbf{E}_{\text{pos}}$ of shape $(1 + P) \times d$, is added to the tokens. Why learned,
#   and not lesson 03's sinusoids? The sinusoids encode a 1-D order; an image is 2-D, and
#   patch 15 sits *under* patch 1 in a 14 x 14 grid, far from it in a 1-D order. Learned
#   embeddings can discover the 2-D layout from data (section 6 looks at whether ours did). The
#   paper compares variants: learned 1-D embeddings (one vector per patch number, as here) do
#   as well as 2-D-aware ones (separate learned row and column embeddings) or relative ones,
#   and clearly better than none.
# * **Encoder and head.** Lesson 04's encoder layers, in the pre-norm form (layer norm before
#   each sub-layer) with a GELU in the MLP, then a final layer norm and one linear layer on the
#   class token's vector.
#
# $$\mathbf{z}^{(0)} = [\mathbf{z}_{\text{cls}};\ \mathbf{W}\mathbf{x}_1 + \mathbf{b};\ \dots;\
# \mathbf{W}\mathbf{x}_P + \mathbf{b}] + \mathbf{E}_{\text{pos}}, \qquad
# \mathbf{z}^{(\ell)} = \mathrm{EncoderLayer}_\ell(\mathbf{z}^{(\ell - 1)}), \qquad
# \hat{\mathbf{y}} = \mathrm{Linear}(\mathrm{LayerNorm}(\mathbf{z}^{(D)}_0)).$$
#
# ### Exercise 4: the class token and the positions
#
# Write `add_class_token_and_positions(patch_tokens, class_token, position_embedding)`: put
# the class token (shape $(1, 1, d)$, one for the whole batch) in front of every sequence of
# patch tokens $(N, P, d)$, then add the position embeddings $(1, 1 + P, d)$ to every token.

# %%
def add_class_token_and_positions(patch_tokens: torch.Tensor, class_token: torch.Tensor,
                                  position_embedding: torch.Tensor) -> torch.Tensor:
    """(N, P, d) patch tokens -> (N, 1 + P, d): class token first, then positions added."""
    # TODO: expand the class token over the batch, concatenate, add the positions.
    ### BEGIN SOLUTION
    class_tokens = class_token.expand(patch_tokens.shape[0], -1, -1)   # (N, 1, d)
    tokens = torch.cat([class_tokens, patch_tokens], dim=1)             # (N, 1 + P, d)
    return tokens + position_embedding
    ### END SOLUTION


# %%
add_class_token_and_positions = checks.check_class_token_and_positions(
    add_class_token_and_positions)

# %% [markdown]
# That is every piece. Here is the whole Vision Transformer, using your function; the encoder
# layers are lesson 04's, imported from the package.

# %%
class ViT(nn.Module):
    """Images (N, C, S, S) -> logits (N, num_classes), as in [Dosovitskiy et al., 2021]."""

    def __init__(self, *, image_size, patch_size, in_channels, num_classes, dim, depth,
                 num_heads, mlp_ratio=4.0):
        super().__init__()
        num_patches = (image_size // patch_size) ** 2
        self.patch_embedding = nn.Module()  # a container, so that the weights' names match
        self.patch_embedding.projection = nn.Conv2d(in_channels, dim, kernel_size=patch_size,
                                                    stride=patch_size)
        self.class_token = nn.Parameter(0.02 * torch.randn(1, 1, dim))
        self.position_embedding = nn.Parameter(0.02 * torch.randn(1, 1 + num_patches, dim))
        self.layers = nn.ModuleList([
            EncoderLayer(dim, num_heads, mlp_ratio=mlp_ratio, activation=nn.GELU, norm_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images):
        patches = self.patch_embedding.projection(images)        # (N, d, S/p, S/p)
        patches = patches.flatten(2).transpose(1, 2)             # (N, P, d)
        x = add_class_token_and_positions(patches, self.class_token, self.position_embedding)
        for layer in self.layers:
            x = layer(x)                                         # (N, 1 + P, d)
        return self.head(self.norm(x[:, 0]))                     # the class token only


# %% [markdown]
# The package's `VisionTransformer` is the same model (plus dropout, off by default, and a
# method that returns the attention maps); for speed it computes attention with PyTorch's fused
# kernel. Given the same weights, both compute the same logits, up to float rounding:

# %%
sizes = dict(image_size=32, patch_size=4, in_channels=3, num_classes=26, dim=64, depth=4,
             num_heads=4, mlp_ratio=2.0)
ours, package_vit = ViT(**sizes).to(cfg.device), VisionTransformer(**sizes).to(cfg.device)
ours.load_state_dict(package_vit.state_dict())  # every weight has the same name and shape
x = torch.randn(8, 3, 32, 32, device=cfg.device)
with torch.no_grad():
    gap = (ours.eval()(x) - package_vit.eval()(x)).abs().max().item()
print(f"{count_parameters(ours):,} parameters; largest difference between the logits: {gap:.1e}")
for name, parameter in list(ours.named_parameters())[:4]:
    print(f"  {name:35s} {tuple(parameter.shape)}")

# %% [markdown]
# Compared with lesson 04's translator, the ViT keeps the encoder and drops everything else:
# no decoder, no causal mask, no padding masks (every image has the same number of patches),
# no token vocabulary (the "embedding" is a linear map of pixels, not a lookup table). What it
# adds is small: the patching, the class token and learned positions.
#
# ## 4. The paper's models, their cost, and the notes' table
#
# The paper names its models by size and patch: ViT-B/16 is the Base size (width 768, 12
# layers, 12 heads) with 16 x 16 patches; L (Large) is width 1024, 24 layers, 16 heads. We
# build the four of the notes' table, and torchvision's ResNet-50/101/152, on the meta device
# and count their parameters and multiply-adds at 224 x 224. The accuracies are the notes'
# (ImageNet top-1, trained on ImageNet alone, and pre-trained on JFT-300M then fine-tuned), and
# torchvision's own ImageNet-only weights, from their metadata (no download).

# %%
NOTES_IMAGENET = {"ResNet-50": 79.26, "ResNet-101": 80.13, "ResNet-152": 80.62, "ViT-B/16": 77.91,
                  "ViT-B/32": 73.38, "ViT-L/16": 76.53, "ViT-L/32": 71.16}
NOTES_JFT = {"ViT-B/16": 84.15, "ViT-B/32": 80.73, "ViT-L/16": 87.12, "ViT-L/32": 84.37}
TORCHVISION_NAMES = {"ResNet-50": "resnet50", "ResNet-101": "resnet101", "ResNet-152": "resnet152",
                     "ViT-B/16": "vit_b_16", "ViT-B/32": "vit_b_32", "ViT-L/16": "vit_l_16",
                     "ViT-L/32": "vit_l_32"}


def build_on_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        if name.startswith("ViT"):
            return VisionTransformer(**vit_config(name))
        return getattr(torchvision.models, TORCHVISION_NAMES[name])()


def imagenet_weights(name: str):
    """torchvision's ImageNet-1K weights (IMAGENET1K_V1, the first released) and their metadata."""
    return torchvision.models.get_model_weights(TORCHVISION_NAMES[name]).IMAGENET1K_V1


table = {}
print(f"{'model':11s} {'tokens':>7s} {'params (M)':>11s} {'GMACs':>7s} {'notes: ImageNet':>16s} "
      f"{'notes: JFT-300M':>16s} {'torchvision V1':>15s}")
for name in NOTES_IMAGENET:
    model = build_on_meta(name)
    tokens = 1 + (224 // model.patch_embedding.patch_size) ** 2 if name.startswith("ViT") else None
    table[name] = {"params": count_parameters(model), "macs": count_macs(model, (1, 3, 224, 224)),
                   "torchvision": imagenet_weights(name).meta["_metrics"]["ImageNet-1K"]["acc@1"]}
    jft = f"{NOTES_JFT[name]:.2f}" if name in NOTES_JFT else "-"
    print(f"{name:11s} {tokens or '-':>7} {table[name]['params'] / 1e6:11.1f} "
          f"{table[name]['macs'] / 1e9:7.2f} {NOTES_IMAGENET[name]:16.2f} {jft:>16s} "
          f"{table[name]['torchvision']:15.2f}")
    assert table[name]["params"] == imagenet_weights(name).meta["num_params"]  # torchvision's count

# %% [markdown]
# Our ViTs have exactly torchvision's parameter counts (the `assert` checks it). Three things
# to read in this table:
#
# **B/32 has more parameters than B/16 but costs a quarter.** The patch size changes two
# things, computed here:

# %%
for name in ("ViT-B/16", "ViT-B/32"):
    model = build_on_meta(name)
    embedding = count_parameters(model.patch_embedding)
    print(f"{name}: patch embedding {embedding:,} parameters (3 x {model.patch_embedding.patch_size}"
          f"^2 x 768 + 768), position embeddings {model.position_embedding.numel():,} "
          f"({model.position_embedding.shape[1]} tokens x 768), "
          f"{table[name]['macs'] / 1e9:.2f} G multiply-adds")
extra = table["ViT-B/32"]["params"] - table["ViT-B/16"]["params"]
print(f"B/32 - B/16: {extra:+,} parameters, x{table['ViT-B/32']['macs'] / table['ViT-B/16']['macs']:.2f} "
      f"the multiply-adds")

# %% [markdown]
# (The notes, like the paper, give 86 M and 307 M per model size; the exact counts above differ
# between patch sizes.) A 32 x 32 patch has four times as many numbers as a 16 x 16 one, so the
# patch embedding's
# matrix is four times larger; that outweighs the smaller table of position embeddings (50
# positions instead of 197). The twelve encoder layers have the same weights in both. But the
# cost is paid per token, and B/32 has 4x fewer tokens: about 4x fewer multiply-adds. Parameters
# measure memory; multiply-adds measure compute; they need not move together.
#
# **Trained on ImageNet alone, ViT loses.** In the notes' ImageNet column every ViT is below
# every ResNet, and the larger ViT-L is *worse* than ViT-B: with 1.3 M images it overfits.
#
# **Pre-trained on JFT-300M, it wins.** With 300 million images (then fine-tuned on ImageNet)
# ViT-L/16 reaches 87.12%, above every ResNet of the first column, and the larger model is
# now the better one. (A fair comparison pre-trains the ResNet on JFT-300M too: the paper does,
# with BiT's large ResNet [Kolesnikov et al., 2020], at 87.54%; its ViT-L/16 and ViT-H/14
# match and pass that, 87.76% and 88.55% in the paper's main comparison (its table 2, from
# other training runs than the notes' table), for less pre-training compute.) The
# ViT is not a better architecture at any scale; it is one whose missing assumptions (section
# 6) are paid for by data, and once enough data is there, the freedom from those assumptions
# helps.
#
# **torchvision's ImageNet-only weights** of the same ViT-B/16 reach the accuracy printed in
# the last column, above the paper's 77.91% for the same architecture on the same data. The
# difference is the training recipe: torchvision trained for the same 300 epochs with a similar
# optimiser, but added strong augmentation (RandAugment, mixup, cutmix), label smoothing,
# repeated-augmentation sampling and an average of the weights over training, in the spirit of
# DeiT [Touvron et al., 2021], which showed that a ViT can be trained well on ImageNet alone.
# (The gap is larger than it looks: the paper's accuracies are after fine-tuning at a higher
# resolution, 384 x 384, and torchvision's are at 224 x 224.) Regularisation and augmentation are
# another way to supply what the architecture does
# not assume: more (synthetic) data. Comparing architectures across papers means comparing
# recipes too (lesson 07 returns to this).

# %%
recipe = imagenet_weights("ViT-B/16").meta["recipe"]
print(f"ViT-B/16, torchvision IMAGENET1K_V1: {table['ViT-B/16']['torchvision']:.2f}% "
      f"(recipe: {recipe}); the paper, ImageNet only: {NOTES_IMAGENET['ViT-B/16']:.2f}%")
resnet_v2 = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta
swag = torchvision.models.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1.meta
print(f"ResNet-50 with torchvision's newer recipe (IMAGENET1K_V2): "
      f"{resnet_v2['_metrics']['ImageNet-1K']['acc@1']:.2f}%, against "
      f"{table['ResNet-50']['torchvision']:.2f}% for its first weights: the recipe again")
print(f"ViT-B/16 pre-trained on 3.6 billion Instagram images, then fine-tuned on ImageNet at "
      f"{swag['min_size'][0]} x {swag['min_size'][1]} (SWAG): "
      f"{swag['_metrics']['ImageNet-1K']['acc@1']:.2f}%: "
      f"more data again")

# %% [markdown]
# ## 5. The data-hunger claim, tested
#
# The notes warn that a ViT needs more examples than a CNN before it pays off. We can test
# that with the glyph generator, which makes as many labelled images as we ask for. The
# experiment (in `course_utils/data_hunger.py`):
#
# * two models of comparable size: a ViT (4 layers, width 64, patches of 4 x 4) and a small
#   ResNet (lesson 02's, one basic block per stage), with parameters and multiply-adds printed
#   at the end of this section (the ResNet does more arithmetic per image);
# * glyphs at 16 x 16 pixels (16 patches), a fixed test set, and training sets from 20 to
#   640 images per letter (520 to 16,640 images: 32x);
# * the same optimisation budget for every run: the same number of steps of batch 64, AdamW,
#   a one-cycle schedule. Only the amount of data changes along a curve; a small set is seen
#   many times over, a large one a few times;
# * three repeats, each with another draw of the training set and another initialisation.
#
# The whole grid takes many minutes on a laptop CPU, so it was run ahead of time by
# `python3 course.py pretrain data-hunger` and its results committed with their provenance.
# Below, the recorded grid is drawn as lines with the spread over the repeats; this run's own
# reduced version is trained live and drawn as markers.

# %%
grid_recipe = get_recipe("data-hunger")
_, recorded, provenance = load_pretrained("data-hunger")
machine = provenance["machine"]
print(f"recorded: `{provenance['command']}` on {machine['device']} ({machine['processor']}, "
      f"{machine['cpu_threads']} threads), {provenance['written']}, {provenance['wall_seconds']:.0f} s, "
      f"code {provenance['code_version']['git_commit'][:12]}")
recorded_runs = recorded["runs"]
print(f"{len(recorded_runs)} trainings; settings: {grid_recipe.settings}")

# %%
live_data = data_hunger.glyph_data(max(LIVE_PER_CLASS), LIVE_TEST_PER_CLASS, seed=GRID["seed"])
live_runs = []
for repeat in range(LIVE_REPEATS):
    for per_class in LIVE_PER_CLASS:
        for kind in data_hunger.MODELS:
            _, run = data_hunger.train_and_test(kind, live_data, per_class, steps=LIVE_STEPS,
                                                repeat=repeat, batch_size=GRID["batch_size"],
                                                lr=GRID["lr"], weight_decay=GRID["weight_decay"],
                                                cache=True)
            live_runs.append(run)
            print(f"{kind:6s} {run['train_size']:6,d} training images, {run['steps']} steps: "
                  f"test accuracy {run['test_accuracy']:.1%}, train accuracy "
                  f"{run['train_accuracy']:.1%}, {run['samples_per_second']:,.0f} images/s "
                  f"({'loaded: trained by an earlier run' if run['cached'] else 'trained now'})")


# %%
def runs_of(runs, kind, patch_size=4, metric="test_accuracy"):
    """{training-set size: [the metric over the repeats]} for one model."""
    by_size = {}
    for run in runs:
        if run["model"] == kind and (kind != "ViT" or run["patch_size"] == patch_size):
            by_size.setdefault(run["train_size"], []).append(run[metric])
    return dict(sorted(by_size.items()))


colours, markers = {"ViT": "tab:orange", "ResNet": "tab:blue"}, {"ViT": "s", "ResNet": "o"}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True)
for ax, metric in zip(axes, ("test_accuracy", "train_accuracy")):
    for kind in data_hunger.MODELS:
        by_size = runs_of(recorded_runs, kind, metric=metric)
        sizes_seen = np.array(list(by_size))
        values = [np.array(v) for v in by_size.values()]
        ax.plot(sizes_seen, [v.mean() for v in values], "-", color=colours[kind], lw=2,
                label=f"{kind}, recorded ({GRID['steps']} steps)")
        ax.fill_between(sizes_seen, [v.min() for v in values], [v.max() for v in values],
                        color=colours[kind], alpha=0.2)
        live = runs_of(live_runs, kind, metric=metric)
        ax.plot(list(live), [np.mean(v) for v in live.values()], markers[kind],
                color=colours[kind], ms=9, markeredgecolor="black",
                label=f"{kind}, this run ({LIVE_STEPS} steps)")
    ax.set(xscale="log", xlabel="training images (log scale)", ylim=(0, 1.02),
           title=metric.replace("_", " ").replace("accuracy", "accuracy (band: min-max)"))
    ax.set_xticks(sorted({run["train_size"] for run in recorded_runs}))
    ax.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value / 1000:g}k"))
    ax.minorticks_off()
    ax.grid(alpha=0.3)
axes[0].set_ylabel("accuracy")
axes[1].legend(loc="lower left", fontsize=10)  # the corner both curves leave empty
fig.suptitle(f"Same number of steps, growing training set ({GRID['repeats']} repeats recorded)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The numbers behind the recorded curves, and what they say:

# %%
vit_curve, resnet_curve = runs_of(recorded_runs, "ViT"), runs_of(recorded_runs, "ResNet")
fitted = {kind: runs_of(recorded_runs, kind, metric="train_accuracy") for kind in data_hunger.MODELS}
print(f"{'training images':>16s} {'epochs':>7s} {'ViT test':>15s} {'ResNet test':>15s} "
      f"{'gap':>7s} {'ViT train':>10s} {'ResNet train':>13s}")
for size in vit_curve:
    v, r = np.array(vit_curve[size]), np.array(resnet_curve[size])
    epochs = GRID["steps"] * GRID["batch_size"] / size  # the same steps: fewer passes over more data
    print(f"{size:16,d} {epochs:7.1f} {v.mean():7.1%} ± {v.std():4.1%} {r.mean():7.1%} ± "
          f"{r.std():4.1%} {r.mean() - v.mean():+7.1%} "
          f"{np.mean(fitted['ViT'][size]):10.1%} {np.mean(fitted['ResNet'][size]):13.1%}")
smallest, largest = min(vit_curve), max(vit_curve)
gain = {kind: np.mean(curve[largest]) - np.mean(curve[smallest])
        for kind, curve in (("ViT", vit_curve), ("ResNet", resnet_curve))}
gaps = [np.mean(resnet_curve[s]) - np.mean(vit_curve[s]) for s in vit_curve]
print(f"\nfrom {smallest:,} to {largest:,} images ({largest // smallest}x): the ViT gains "
      f"{gain['ViT']:+.1%}, the ResNet {gain['ResNet']:+.1%}")
overtaken = [size for size, g in zip(vit_curve, gaps) if g < 0]
print(f"the ResNet is ahead at {sum(g > 0 for g in gaps)} of {len(gaps)} sizes; the gap is "
      f"{gaps[0]:+.1%} at the smallest size and {gaps[-1]:+.1%} at the largest")
print(f"sizes at which the ViT is ahead on average: {', '.join(f'{s:,}' for s in overtaken) or 'none'}")
print(f"the gap {'grows' if gaps[-1] > gaps[0] else 'shrinks'} from the smallest to the largest "
      f"size; it is largest ({max(gaps):+.1%}) at {list(vit_curve)[int(np.argmax(gaps))]:,} images")
best_size = max(vit_curve, key=lambda size: np.mean(vit_curve[size]))
best_vit = np.mean(vit_curve[best_size])
matched = [s for s in resnet_curve if np.mean(resnet_curve[s]) >= best_vit]
if matched:
    print(f"the ViT's best mean ({best_vit:.1%}, with {best_size:,} images) is reached by the "
          f"ResNet with {min(matched):,} images")

# %% [markdown]
# How to read it. With few images, compare each model's train and test accuracy in the
# table: a model near 100% on its training set and far below on the test set has memorised.
# A CNN can be expected to generalise from few images better than a ViT, because
# its convolutions assume that nearby pixels belong together and that a stroke means the same
# thing anywhere in the image, and those assumptions are true of letters. The ViT must learn
# from the examples which patches neighbour which, and that a pattern in one patch is the same
# as in another, and a few hundred images say little about that. The table prints how much each
# model gains as the training set grows and how the gap changes. A gap that grows with data
# does not contradict the notes: at these sizes both models are far from what they could
# reach, and the ResNet climbs faster from the start. The notes' claim is about the other end,
# where a CNN's curve flattens and a ViT's keeps climbing, given enough data *and* compute.
#
# Look also at the other end of the table. With the same number of steps, a larger training
# set is seen fewer times (the epochs column). A train accuracy well below 100% at the largest
# sizes means the model has stopped memorising and is *underfitting*: the step budget ran out
# before it could fit its training set. A model that learns slowly from each example, as a
# model without built-in assumptions does, hits that limit first; then more data alone cannot
# help, and only more steps (more compute) can. Data hunger and compute hunger go together.
#
# The notes' crossover, where the ViT overtakes, would show in the line "sizes at which the ViT
# is ahead" above. Expect none at this scale: our largest training set is 16,640 images of
# 16 x 16 pixels, trained for a fixed number of steps; the paper's ViTs needed ImageNet-21k (14
# million images) to draw level with ResNets and JFT-300M (300 million) to pull ahead, with
# models 600 to 4,500 times larger than ours (ViT-B to ViT-H) trained for days on TPUs.
# Reaching it here would need orders of magnitude more images *and* steps (a fixed step budget
# also caps what a large training set can give), which the generator could supply but a
# laptop cannot train.
# Two cheaper levers are known to narrow the gap: augmentation and regularisation (DeiT), and
# inductive biases put back into the ViT (small convolutions in the stem, local attention).
# Lesson 06 measures augmentation.
#
# The live run above is a reduced version of the same experiment in the quick profile (two
# sizes, one repeat, fewer steps); in the full profile it reruns the grid. Its throughput
# shows the other side of the trade: per image, which model trains faster here?

# %%
for kind in data_hunger.MODELS:
    speeds = [run["samples_per_second"] for run in live_runs if run["model"] == kind]
    parameters = next(run["parameters"] for run in live_runs if run["model"] == kind)
    model = data_hunger.build_model(kind)
    print(f"{kind:6s} {parameters:7,d} parameters, "
          f"{count_macs(model.to('meta'), (1, 3, 16, 16)) / 1e6:5.2f} M multiply-adds per "
          f"image, trained at {np.mean(speeds):6,.0f} images/s on {cfg.device.type}")
if any(run["cached"] for run in live_runs):
    print("(runs loaded from the cache report the speed of the run that trained them)")
for kind in data_hunger.MODELS:
    largest_live = [run for run in live_runs if run["model"] == kind
                    and run["per_class"] == max(LIVE_PER_CLASS)]
    record("05", f"{kind} test accuracy, largest live training set",
           np.mean([run["test_accuracy"] for run in largest_live]))

# %% [markdown]
# ### The same test on photos (CIFAR-10, on request)
#
# Glyphs are synthetic, and letters on backgrounds may favour convolutions more than photos
# do. With a network, set `CIFAR10 = True` in the settings cell at the top and run this cell:
# it downloads CIFAR-10 (60,000 photos of 10 classes, 32 x 32) once and runs the same grid
# on it, with the ViT's patches of 4 x 4 giving 64 tokens. A GPU makes it quick.

# %%
if not CIFAR10:
    print("Skipped: set CIFAR10 = True in the settings cell (it downloads CIFAR-10 once).")
else:
    try:
        cifar = data_hunger.cifar10_data(max(CIFAR10_PER_CLASS), LIVE_TEST_PER_CLASS,
                                         seed=GRID["seed"], download=True)
    except DatasetNotAvailableError as error:
        print(f"CIFAR-10 is not available, so this part is skipped.\n{error}")
    else:
        cifar_settings = {**GRID, "per_class": CIFAR10_PER_CLASS, "repeats": LIVE_REPEATS,
                          "steps": LIVE_STEPS, "patch_sizes": []}
        cifar_runs = data_hunger.run_grid(cifar_settings, data=cifar)
        vit_cifar, resnet_cifar = runs_of(cifar_runs, "ViT"), runs_of(cifar_runs, "ResNet")
        for size in vit_cifar:
            print(f"CIFAR-10, {size:6,d} training photos: ViT {np.mean(vit_cifar[size]):.1%}, "
                  f"ResNet {np.mean(resnet_cifar[size]):.1%}")

# %% [markdown]
# ## 6. Inductive bias, made visible
#
# A convolution has two assumptions built in: **locality** (each output looks at a small
# neighbourhood) and **translation equivariance** (the same kernel everywhere, so a shifted
# input gives a shifted output). A ViT has neither beyond the patch: attention connects every
# patch to every other one from the first layer, with weights that must be learned, and the
# only thing that tells patches apart by place is the learned position embeddings.
#
# For this section and the next we load two models trained ahead of time on the 32 x 32
# glyphs (`python3 course.py pretrain vit-glyphs resnet-glyphs`): a ViT with 4 x 4 patches (64
# patches, 4 layers) and the ResNet of section 5, with the same data, epochs and optimiser.
# Their test accuracies are measured now, on the glyphs' test split.

# %%
def normalised_test_set(results):
    """The glyph test split normalised as the recipe's training set was, on cfg.device."""
    images, labels = glyph_splits.test.tensors()  # floats in [0, 1]
    if EVAL_SAMPLE is not None:
        images, labels = images[:EVAL_SAMPLE], labels[:EVAL_SAMPLE]
    mean = torch.tensor(results["normalisation"]["mean"]).reshape(1, 3, 1, 1)
    std = torch.tensor(results["normalisation"]["std"]).reshape(1, 3, 1, 1)
    return ((images - mean) / std).to(cfg.device), labels.to(cfg.device)


def accuracy(model, images, labels):
    return evaluate(model, tensor_batches(images, labels, batch_size=256, shuffle=False))["accuracy"]


pretrained, histories, test_sets, baseline = {}, {}, {}, {}
for kind, name in (("ViT", "vit-glyphs"), ("ResNet", "resnet-glyphs")):
    model, results, provenance = load_pretrained(name)
    test_images, test_labels = normalised_test_set(results)
    pretrained[kind], histories[kind] = model, results["history"]
    test_sets[kind] = (test_images, test_labels)
    baseline[kind] = record("05", f"{kind} test accuracy, {name}",
                            accuracy(model, test_images, test_labels))
    print(f"{name:14s} {count_parameters(model):7,d} parameters, "
          f"{len(results['history']['train_loss'])} epochs in {provenance['wall_seconds']:.0f} s "
          f"on {provenance['machine']['device']} (recorded); test accuracy now "
          f"{baseline[kind]:.1%} on {len(test_labels):,} images")

fig, ax = plt.subplots(figsize=(10, 3.6))
for kind, history in histories.items():
    epochs = np.arange(1, len(history["val_accuracy"]) + 1)
    ax.plot(epochs, history["val_accuracy"], color=colours[kind], label=f"{kind}: validation")
    ax.plot(epochs, history["train_accuracy"], "--", color=colours[kind], label=f"{kind}: train")
ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1),
       title=f"Recorded training curves ({len(glyph_splits.train):,} training glyphs, 32 x 32)")
ax.legend(ncol=2, loc="lower right")
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Did the position embeddings learn the 2-D layout?
#
# Nothing told the ViT that its 64 patches form an 8 x 8 grid: its position embeddings started
# as random vectors. For each patch, the map below shows the cosine similarity of its position
# embedding with those of all 64 patches, drawn in the grid's layout (as in the paper's
# figure 7).

# %%
def position_similarity(model) -> torch.Tensor:
    """(P, P) cosine similarities between the patches' position embeddings (no class token)."""
    positions = model.position_embedding[0, 1:].detach().float().cpu()
    positions = positions / positions.norm(dim=1, keepdim=True)
    return positions @ positions.T


def grid_distance(side: int) -> torch.Tensor:
    """(P, P) Euclidean distances between patch centres on a side x side grid."""
    rows, columns = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    centres = torch.stack([rows.flatten(), columns.flatten()], dim=1).float()
    return torch.cdist(centres, centres)


vit = pretrained["ViT"]
side = math.isqrt(vit.num_patches)
similarity = position_similarity(vit)
fig, axes = plt.subplots(side, side, figsize=(7.5, 7), gridspec_kw={"wspace": 0.08, "hspace": 0.08})
for index, ax in enumerate(axes.flat):
    image = ax.imshow(similarity[index].reshape(side, side), cmap="viridis", vmin=-1, vmax=1)
    ax.set(xticks=[], yticks=[])
for column in range(side):
    axes[-1, column].set_xlabel(f"{column + 1}", fontsize=10)
    axes[column, 0].set_ylabel(f"{column + 1}", fontsize=10, rotation=0, labelpad=10)
fig.suptitle("Cosine similarity of each patch's position embedding with all others\n"
             "(panel = the patch at that row and column of the grid)", fontsize=12)
fig.supxlabel("column of the patch", fontsize=11, x=0.42, y=0.04)
fig.supylabel("row of the patch", fontsize=11, x=0.06)
fig.colorbar(image, ax=axes, shrink=0.6, label="cosine similarity")
plt.show()

# %% [markdown]
# Two kinds of structure can show in these panels. **Locality**: a bright blob around each
# panel's own patch means neighbours have similar embeddings. **Distance from the centre**: the
# glyphs are letters drawn near the middle of a photo background, so whether a patch usually
# shows stroke or background depends mostly on how far it is from the centre; embeddings that
# encode that make rings. Numbers make both precise, with an untrained ViT's random embeddings
# as the baseline (the similarity's correlation with how different two patches' distances from
# the centre are; and, among the patches near the centre, the mean similarity of neighbours
# and of patches three or more apart):

# %%
def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()


distance = grid_distance(side)
centre = (side - 1) / 2
rows, columns = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
from_centre = torch.hypot(rows.flatten() - centre, columns.flatten() - centre)
ring_difference = (from_centre[:, None] - from_centre[None, :]).abs()
pairs = ~torch.eye(len(distance), dtype=torch.bool)               # every pair of two patches
central = (from_centre[:, None] < side / 4) & (from_centre[None, :] < side / 4) & pairs
random_vit = vit_recipe.build(vit_recipe.settings)

print(f"{'':14s} {'corr. with ring difference':>27s} {'central neighbours':>19s} "
      f"{'central, 3+ apart':>18s}")
for name, model in (("trained ViT", vit), ("untrained ViT", random_vit)):
    similar = position_similarity(model)
    print(f"{name:14s} {correlation(similar[pairs], ring_difference[pairs]):27.2f} "
          f"{similar[central & (distance == 1)].mean():19.2f} "
          f"{similar[central & (distance >= 3)].mean():18.2f}")

# %% [markdown]
# A strongly negative correlation means patches at a similar distance from the centre got
# similar embeddings (rings); central neighbours clearly more similar than central patches
# three apart means locality. Compare each number with the untrained row: whatever structure
# the trained row shows was learned from the glyphs' training split by gradient descent alone,
# and it is the structure that matters for *these* images. The paper's ViT, trained on
# ImageNet photos, shows rows and columns instead (its figure 7): what the position embeddings
# learn depends on the data.
#
# ### Shuffled patches
#
# What does each model rely on? Cut every test image into tiles, shuffle the tiles with one
# fixed permutation, and classify. A letter cut into 16 tiles and shuffled is no longer a
# letter to us. Two things can be predicted before running it:
#
# * if the tiles are the ViT's own patches and the position embeddings are shuffled the same
#   way, the ViT's output does not change at all: it only sees (content, position) pairs, and
#   attention does not care about their order (lesson 03);
# * for everything else, both models should lose accuracy; how much tells how much each one
#   relies on the global arrangement.

# %%
def shuffle_tiles(images: torch.Tensor, tile: int, permutation: torch.Tensor) -> torch.Tensor:
    """Cut images into tile x tile tiles, reorder them by ``permutation``, reassemble."""
    return unpatchify(patchify(images, tile)[:, permutation], tile)


def moving_every_tile(count: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``count`` tiles that leaves none in its place."""
    while True:
        permutation = torch.randperm(count, generator=generator)
        if (permutation != torch.arange(count)).all():
            return permutation


(vit_images, vit_labels), (resnet_images, resnet_labels) = test_sets["ViT"], test_sets["ResNet"]
generator = torch.Generator().manual_seed(0)
tiles = [4, 8, 16]
shuffled_accuracy = {"ViT": [], "ResNet": []}
for tile in tiles:
    permutation = moving_every_tile((32 // tile) ** 2, generator).to(cfg.device)
    shuffled_accuracy["ViT"].append(accuracy(vit, shuffle_tiles(vit_images, tile, permutation),
                                             vit_labels))
    shuffled_accuracy["ResNet"].append(
        accuracy(pretrained["ResNet"], shuffle_tiles(resnet_images, tile, permutation),
                 resnet_labels))

# The ViT's own patches with the position embeddings permuted alike: the same logits.
permutation = moving_every_tile(vit.num_patches, generator).to(cfg.device)
moved = copy.deepcopy(vit)
with torch.no_grad():
    order = torch.cat([torch.zeros(1, dtype=torch.long, device=cfg.device), 1 + permutation])
    moved.position_embedding.copy_(vit.position_embedding[:, order])
    shuffled = shuffle_tiles(vit_images[:256], 4, permutation)
    logit_gap = (moved(shuffled) - vit(vit_images[:256])).abs().max().item()
print(f"ViT, patches and position embeddings shuffled together: largest change in the logits "
      f"{logit_gap:.1e}")

fig, ax = plt.subplots(figsize=(10, 4))
positions = np.arange(len(tiles) + 1)
for offset, kind in ((-0.2, "ViT"), (0.2, "ResNet")):
    values = [baseline[kind]] + shuffled_accuracy[kind]
    bars = ax.bar(positions + offset, values, width=0.38, color=colours[kind], label=kind)
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=10)
ax.axhline(1 / 26, color="grey", ls=":", label="chance (1/26)")
ax.set_xticks(positions, ["not shuffled"] + [f"{(32 // t) ** 2} tiles of {t} x {t}" for t in tiles])
ax.set(ylabel="test accuracy", ylim=(0, 1.05), title="Test images cut into tiles and shuffled")
ax.legend()
fig.tight_layout()
plt.show()
for kind in shuffled_accuracy:
    by_tile = zip(tiles, shuffled_accuracy[kind])
    print(f"{kind:6s} " + ", ".join(f"{t} x {t} tiles: {value:.1%}" for t, value in by_tile)
          + f" (not shuffled: {baseline[kind]:.1%})")

# %% [markdown]
# The first printed line is float rounding: with its positions moved along, the ViT is blind
# to where a patch is. Everything it knows about layout is in those 64 learned vectors (plus the
# layout inside
# each patch, which the linear embedding sees). Shuffling the image and not the embeddings
# changes both models' accuracy, by the amounts the bar chart prints for each tile size; neither
# model was
# trained to read scrambled letters, so neither is expected to. Larger tiles keep more of each
# stroke intact inside a tile, where a convolution's local filters can still find it; but they
# also move bigger pieces of the letter, so the printed numbers, not intuition, say which
# effect wins for each model.
#
# ## 7. What the class token looks at
#
# The class token's final vector is all the head sees, so its attention hints at where the
# model looked. In each layer, each head gives the class token a distribution over the
# 65 tokens (itself and the 64 patches); drawn over the 8 x 8 grid, it is a heat map on the
# image.
#
# One layer's map is only part of the story: a layer's input tokens are already mixtures of
# patches, made by the layers below. **Attention rollout** [Abnar & Zuidema, 2020] follows the
# mixing through all the layers. Average the heads of layer $\ell$ into $\mathbf{A}_\ell$.
# The residual connection adds each token's own vector to what attention brings in; rollout
# assumes the two branches weigh the same, so it uses
# $\hat{\mathbf{A}}_\ell = \tfrac12 \mathbf{A}_\ell + \tfrac12 \mathbf{I}$, whose rows
# still sum to 1 (the paper renormalises them; with these weights that changes nothing). Then
# multiply: $\tilde{\mathbf{A}} = \hat{\mathbf{A}}_D \cdots \hat{\mathbf{A}}_2
# \hat{\mathbf{A}}_1$. Row 0 of $\tilde{\mathbf{A}}$ says how much the class token's final
# vector draws on each input patch. It is a heuristic (it ignores the MLPs and the values'
# sizes), but a useful one.
#
# ### Exercise 5: attention rollout
#
# Write `attention_rollout(maps)`: `maps` is a list of the layers' attention weights, bottom
# layer first, each of shape (N, heads, T, T); return the (N, T, T) rollout. Make the identity
# on the maps' device (`torch.eye(T, device=...)`), so that your function also runs on a GPU.

# %%
def attention_rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout over all layers: list of (N, heads, T, T) -> (N, T, T)."""
    rollout = None
    for weights in maps:
        # TODO: average the heads, mix in the identity, renormalise the rows, multiply.
        ### BEGIN SOLUTION
        mixed = weights.mean(dim=1)
        mixed = 0.5 * mixed + 0.5 * torch.eye(mixed.shape[-1], device=mixed.device)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
        ### END SOLUTION
    return rollout


# %%
attention_rollout = checks.check_attention_rollout(attention_rollout)

# %% [markdown]
# The class token's attention on a few test images: the last layer's four heads, their mean,
# and the rollout through all four layers. (To display the images, the normalisation is undone.)

# %%
side = math.isqrt(vit.num_patches)  # patches per row of the grid
shown_images = vit_images[:SHOWN]
maps = vit.attention_maps(shown_images)                   # 4 layers x (N, heads, 65, 65)
rollout = attention_rollout(maps)                         # (N, 65, 65)
predictions = vit(shown_images).argmax(dim=1).cpu()
display_images = glyph_splits.test.images[:SHOWN].float() / 255
letters = glyph_splits.class_names

num_heads = maps[-1].shape[1]
columns = ["image"] + [f"last layer, head {h + 1}" for h in range(num_heads)] + ["rollout"]
fig, axes = plt.subplots(SHOWN, len(columns), figsize=(10, 1.75 * SHOWN))
for row in range(SHOWN):
    label, predicted = letters[vit_labels[row]], letters[predictions[row]]
    heat_maps = [maps[-1][row, h, 0, 1:] for h in range(num_heads)] + [rollout[row, 0, 1:]]
    axes[row, 0].imshow(display_images[row].permute(1, 2, 0).numpy())
    axes[row, 0].set_ylabel(f"{label} -> {predicted}", fontsize=11, rotation=0, labelpad=28)
    for column, heat in enumerate(heat_maps, start=1):
        axes[row, column].imshow(heat.reshape(side, side).cpu().numpy(), cmap="magma")
for column, title in enumerate(columns):
    axes[0, column].set_title(title.replace(", ", "\n"), fontsize=10)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
fig.suptitle("Where the class token looks (label -> prediction; each map on its own colour "
             "scale, brightest = most attended)", fontsize=11)
fig.tight_layout()
plt.show()
self_share = torch.stack([m[:, :, 0, 0].mean() for m in maps]).cpu()
print("the class token's attention to itself, averaged over heads and images, per layer: "
      + ", ".join(f"{s:.2f}" for s in self_share))

# %% [markdown]
# Compare the heads: does one spread over the letter, another pick a few patches, another look
# at the background? A head can also "park" its attention on the class token itself (the
# printed share is not drawn on the grid). The rollout combines all heads and layers into one
# map. Use the widget to browse: pick an image, a
# layer and a head (or the mean of the heads, or the rollout).

# %%
class_token_attention_widget(display_images, maps, class_names=letters,
                             labels=vit_labels[:SHOWN].cpu(), predictions=predictions)

# %% [markdown]
# ## 8. The patch size as a knob
#
# Smaller patches mean more tokens: finer detail per token, and a cost that grows with the
# square of the tokens in attention. On the 16 x 16 glyphs of section 5, with the same ViT
# otherwise:

# %%
print(f"{'patch':>6s} {'tokens':>7s} {'parameters':>11s} {'multiply-adds':>14s}")
for patch_size in (2, 4, 8):
    model = data_hunger.build_model("ViT", patch_size=patch_size)
    print(f"{patch_size:6d} {model.num_patches + 1:7d} {count_parameters(model):11,d} "
          f"{count_macs(model.to('meta'), (1, 3, 16, 16)):14,d}")

# %% [markdown]
# The recorded grid also trained the ViT with patches of 2 and of 8 at two training-set sizes
# (first repeat only), and this run trains the ViT with the other patch size(s) live at its
# largest size:

# %%
live_patch_runs = []
for patch_size in LIVE_PATCH_SIZES:
    _, run = data_hunger.train_and_test("ViT", live_data, max(LIVE_PER_CLASS), steps=LIVE_STEPS,
                                        repeat=0, batch_size=GRID["batch_size"], lr=GRID["lr"],
                                        weight_decay=GRID["weight_decay"], patch_size=patch_size,
                                        cache=True)
    live_patch_runs.append(run)

print(f"{'':24s} {'training images':>16s} {'test accuracy':>14s} {'images/s':>9s}")
live_vit = [run for run in live_runs if run["model"] == "ViT" and run["repeat"] == 0
            and run["per_class"] == max(LIVE_PER_CLASS)]
recorded_patches = [run for run in recorded_runs if run["model"] == "ViT" and run["repeat"] == 0
                    and run["per_class"] in GRID["patch_per_class"]]
for label, runs in (("recorded", recorded_patches), ("this run", live_patch_runs + live_vit)):
    for run in sorted(runs, key=lambda r: (r["train_size"], r["patch_size"])):
        # recorded throughputs were measured on another, possibly busy, machine: not shown
        speed = f"{run['samples_per_second']:9,.0f}" if label == "this run" else f"{'-':>9s}"
        print(f"{label:10s} patch {run['patch_size']:2d} x {run['patch_size']:<2d} "
              f"{run['train_size']:16,d} {run['test_accuracy']:14.1%} {speed}")

# %% [markdown]
# Read the table with the same number of steps in mind. Bigger patches make fewer tokens: each
# step is cheaper (the multiply-adds above; the live throughputs), and there are fewer
# relations between patches to learn, so the model fits faster within its budget; but each
# token must summarise more of the image through one linear map, and detail is lost inside it.
# Smaller patches keep the detail and cost more per step, and, with more tokens to relate,
# need more steps. Which wins depends on the image size, the data and the budget, and the table
# prints which won here. At ImageNet's scale the paper's B/16 beats its B/32 (77.91% against
# 73.38% in the notes' table, and 84.15% against 80.73% after JFT-300M) for four times the
# compute: with enough data and compute, detail wins.
#
# ## 9. Strengths and costs
#
# What the ViT keeps from the Transformer (lessons 03-04): global context in every layer, a
# design of identical layers that scales by a few numbers (width, depth, heads), and
# parallel training on hardware built for matrix products. What it drops: the decoder, masks
# and vocabularies. What it lacks compared with lesson 02's CNNs: locality and translation
# equivariance, which it must learn from data (section 6), hence its need for data (section 4,
# and section 5's measurements); and a resolution-independent design, since the position
# embeddings are tied to one
# grid of patches (a larger image needs them interpolated). Its cost grows with the square of
# the number of tokens, which the patch size keeps in check (section 8).
#
# Where this leads: lesson 06 asks what to do when labelled data is scarce (augmentation,
# synthetic data, transfer), and lesson 07 pre-trains a ViT without labels, with the masked
# auto-encoder (which needs `unpatchify`) and DINO, whose class-token attention maps are
# famously sharp.
#
# ## Summary
#
# * An image becomes a sequence by cutting it into $p \times p$ patches: $(H/p)(W/p)$ tokens,
#   196 for 224/16. The patch embedding is one linear map per patch, i.e. a convolution with
#   kernel = stride = $p$.
# * A learned class token is prepended, learned position embeddings are added, and lesson
#   04's pre-norm encoder does the rest; the head reads the class token.
# * Parameters and compute are different things: B/32 has more parameters than B/16 and a
#   quarter of its multiply-adds.
# * On ImageNet alone the paper's ViTs lose to ResNets; with 300 M images they win. Section 5
#   prints how a ViT and a ResNet compare on glyphs as the training set grows, and explains why
#   the crossover is out of a laptop's reach.
# * The ViT can learn the 2-D layout only through its position embeddings (section 6 prints how
#   much ours did); with those shuffled along with the patches, it ignores where patches are.
# * The class token's attention, per head and rolled out over the layers, hints at where the
#   model looked.
#
# ## References
#
# * A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
#   at Scale", ICLR 2021.
# * H. Touvron et al., "Training data-efficient image transformers & distillation through
#   attention" (DeiT), ICML 2021.
# * S. Abnar, W. Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
# * J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding", NAACL 2019.
# * K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
# * A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
# * C. Sun, A. Shrivastava, S. Singh, A. Gupta, "Revisiting Unreasonable Effectiveness of Data
#   in Deep Learning Era" (JFT-300M), ICCV 2017.
# * A. Kolesnikov et al., "Big Transfer (BiT): General Visual Representation Learning", ECCV 2020.
# * M. Singh et al., "Revisiting Weakly Supervised Pre-Training of Visual Perception Models"
#   (SWAG), CVPR 2022.
