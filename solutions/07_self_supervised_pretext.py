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
# # Lesson 07 · Self-supervised learning, part 1: pretext tasks and masked auto-encoders
#
# Lesson 06 ended with a network that had learned letters from someone else's labels, and with
# a pool of images nobody had labelled. Labels are the expensive part of a dataset: a photo
# costs nothing, knowing what is in it costs a person's time, and for medical images an
# expert's. Self-supervised learning asks whether the images *alone* can teach a network good
# features, so that a few labels are enough afterwards.
#
# The trick is to invent a task whose answers come for free from the images themselves. Two
# families of such tasks exist:
#
# * **generative, or pretext, tasks** (this part): hide or scramble part of the image and ask
#   the network to undo it. Put the shuffled tiles of a jigsaw puzzle back in order;
#   reconstruct the image from a compressed code (an auto-encoder); paint in the patches that
#   were removed (a masked auto-encoder).
# * **joint-embedding methods** (part 2): show the network two deformed views of one image and
#   ask it to give them the same representation, either by contrast with other images (SimCLR)
#   or by matching a teacher network (DINO).
#
# Nobody cares about solving jigsaw puzzles. The hope is that a network that can solve them
# must have learned what letters, strokes and corners look like, and that those features serve
# the task we do care about. Whether they do is measured, not assumed: every method of the
# lesson is judged the same way, at the end of each section.
#
# **You will learn**
#
# 1. the protocol: pretrain without labels, then judge frozen features with a k-NN vote and a
#    linear probe, against random and supervised features;
# 2. jigsaw puzzles as a classification of permutations, and why the set of permutations
#    matters;
# 3. auto-encoders: reconstruction through a bottleneck;
# 4. masked auto-encoders with the lesson 05 Vision Transformer: random masking, an encoder
#    that sees only the visible patches, a light decoder, a loss on the removed patches, and
#    what the masking ratio does;
# 5. what a variational auto-encoder adds (the KL term, sampling), and why masking a ConvNet
#    needs sparse convolutions (ConvNeXt V2).
#
# Exercises are checked as before: NOT DONE (the reference is used), WRONG (what failed, with a
# hint), PASSED.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from course_utils import pretext, self_supervised, setup, ssl_protocol
from course_utils.config import seeded
from course_utils.data import labels_per_class
from course_utils.exercises import lesson07 as checks
from course_utils.few_labels import Method, accuracy, train_network
from course_utils.plotting import plot_step_losses
from course_utils.pretrained import get_recipe
from course_utils.results import record
from course_utils.vit import patchify
from course_utils.widgets import masking_figure, masking_widget

cfg = setup(seed=0)

# %%
# Sizes of the live runs. Pretraining itself was recorded ahead of time (it takes minutes per
# method on a CPU); what runs here are the evaluations, the figures, and two small trainings:
# the VAE of section 5 and the supervised networks of section 6. `capped` only applies to the
# capped test run of the full profile (COURSE_CAPPED=1).
VAE_STEPS = cfg.pick(quick=800, full=3_000, capped=5)
# The full profile pretrains every network live instead of loading it, for LIVE_FACTOR times the
# recorded steps (meant for a GPU); the capped run takes that path for a few steps.
LIVE_PRETRAINING = cfg.pick(quick=False, full=True, capped=True)
LIVE_FACTOR = cfg.pick(quick=1, full=3, capped=0.004)
SOURCE = "pretrained live" if LIVE_PRETRAINING else "recorded"
SCRATCH_STEPS = cfg.pick(quick=200, full=200, capped=5)
BUDGETS = ssl_protocol.BUDGETS  # labelled images per class for the frozen-feature classifiers
SHOWN = 4                        # glyphs in each figure

# %% [markdown]
# ## 1. The protocol: pretrain without labels, judge with few
#
# Every method pretrains on the same **unlabelled set**: 10,400 glyphs of the 26 letters at
# 16 x 16, the images of lesson 06 (a letter in a random font, rotated and scaled, on a random
# photo background). We generate them, so their labels exist, but only one network reads them:
# the *supervised* baseline, trained on the same images with their labels. It is what the
# self-supervised methods try to approach without labels.
#
# Each pretrained network is then **frozen**, and its features are judged on an **evaluation
# set** of other glyphs (another seed), with a labelled training part of 10 or 100 glyphs per
# letter and a test part of 50 per letter. Two classifiers are fitted on the features, as in
# the DINO paper (the k-NN vote, after Wu et al., 2018) and the SimCLR paper (the linear probe):
#
# * **k-NN**: each test glyph takes the 20 training glyphs whose features are most similar
#   (cosine similarity) and lets them vote, the closest weighing the most. Nothing is trained,
#   so it scores the geometry of the features themselves: are glyphs of one letter close?
# * **linear probe**: a linear layer trained on the frozen features (lesson 06). It can pick
#   out a useful direction that k-NN's distances drown in others.
#
# Two floors tell what "better" means. The **pixels** themselves, as 768 numbers, need no network
# at all; a network with **random weights** scores whatever its architecture gives for free.
# A pretrained network that does not beat both has learned nothing useful for letters.

# %%
unlabelled = ssl_protocol.unlabelled_glyphs()
evaluation = ssl_protocol.evaluation_glyphs(unlabelled["mean"], unlabelled["std"])
letters = evaluation["class_names"]
train_images, train_labels = evaluation["train"]
test_images, test_labels = evaluation["test"]
print(f"unlabelled set: {len(unlabelled['images']):,} glyphs {tuple(unlabelled['images'].shape[1:])}; "
      f"evaluation: {len(train_labels):,} labelled training glyphs ({len(train_labels) // 26} per "
      f"letter), {len(test_labels):,} test glyphs; chance is 1/26 = {1 / 26:.1%}")

with seeded(0):  # each network seeded on its own, as in part 2
    random_cnn = ssl_protocol.build_cnn().to(cfg.device)
with seeded(0):
    random_vit = ssl_protocol.build_vit().to(cfg.device)
scores = {"pixels": ssl_protocol.evaluate_frozen(ssl_protocol.Pixels(), evaluation),
          "random CNN": ssl_protocol.evaluate_frozen(random_cnn, evaluation),
          "random ViT": ssl_protocol.evaluate_frozen(random_vit, evaluation)}
print(f"the CNN has {sum(p.numel() for p in random_cnn.parameters()):,} parameters, the ViT "
      f"{sum(p.numel() for p in random_vit.parameters()):,}")


def recorded(name):
    """A recorded pretraining's network (frozen) and results; pretrained live in the full profile."""
    return ssl_protocol.pretrained_network(name, live=LIVE_PRETRAINING, factor=LIVE_FACTOR)


supervised_cnn, supervised_cnn_results = recorded("ssl-supervised-cnn")
supervised_vit, supervised_vit_results = recorded("ssl-supervised-vit")
scores["supervised CNN"] = ssl_protocol.evaluate_frozen(supervised_cnn, evaluation)
scores["supervised ViT"] = ssl_protocol.evaluate_frozen(supervised_vit, evaluation)


def score_table(names):
    """The frozen-feature scores of ``names`` as a table, k-NN and linear at each budget."""
    header = "".join(f"{f'{kind} {k}/letter':>18}" for kind in ("k-NN", "linear") for k in BUDGETS)
    print(f"{'features':22}{header}")
    for name in names:
        cells = "".join(f"{scores[name][kind][k]:>18.1%}" for kind in ("knn", "linear")
                        for k in BUDGETS)
        print(f"{name:22}{cells}")


score_table(scores)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for ax, (name, results) in zip(axes, [("CNN", supervised_cnn_results),
                                      ("ViT", supervised_vit_results)]):
    curve = results["knn_curve"]
    ax.plot([point["step"] for point in curve], [point["knn"] for point in curve], "o-")
    ax.axhline(scores[f"random {name}"]["knn"][BUDGETS[-1]], color="grey", ls="--",
               label="random weights")
    ax.set(xlabel="training step", ylabel=f"20-NN accuracy ({BUDGETS[-1]}/letter)", ylim=(0, 1),
           title=f"The supervised {name}'s features ({SOURCE})")
    ax.legend(fontsize=10)
fig.tight_layout()
plt.show()
record("07", "supervised CNN, k-NN accuracy, 100 labels per letter",
       scores["supervised CNN"]["knn"][BUDGETS[-1]])

# %% [markdown]
# Compare the rows with chance (3.8%). On these glyphs the background photo fills most of the
# pixels, so near neighbours in pixel space often share a background rather than a letter, and
# a random network's pooled features describe mostly the background too. The supervised rows
# are the ceiling of their architecture that this lesson's methods are measured against; the curves (k-NN accuracy of the
# features during training, recorded every tenth of the run) show how fast labels teach.
#
# ## 2. Jigsaw puzzles
#
# Noroozi & Favaro (2016) cut an image into a 3 x 3 grid of tiles, shuffle them, and ask a
# network which shuffle was applied. The answer is free: we did the shuffling. To solve the
# puzzle the network must know what the pieces show: that this tile holds the top of an A and
# that one its foot.
#
# Three details make the task teach something:
#
# * **A classification, not a regression.** There are 9! = 362,880 orders of 9 tiles. The
#   network is given a fixed set of P of them (here 64), numbered, and it outputs P scores: the
#   puzzle is a P-way classification with the cross-entropy loss of lesson 01.
# * **No shortcuts.** If the tiles touch, a network can match the edges (a stroke leaving one
#   tile enters the next) without recognising anything. So each tile is a random crop inside
#   its cell, leaving a gap of a few pixels, and each tile is standardised on its own, so that
#   its brightness does not tell where it came from.
# * **Each tile alone.** One CNN (our lesson 06 ResNet) computes the features of each tile
#   separately (the paper's *context-free network*); only a small network on top sees the nine
#   feature vectors together. So the CNN's features must describe a tile, which is what we
#   transfer: after pretraining, the same CNN computes the features of whole glyphs.
#
# Here the glyphs are rendered at 27 x 27, cut into 3 x 3 cells of 9 x 9 pixels, and each tile
# is a random 7 x 7 crop of its cell.
#
# ### Exercise 1: shuffle the tiles
#
# Write `shuffle_tiles(tiles, permutation)`: given the tiles of N puzzles, shape
# $(N, T, C, h, w)$ (T tiles in row order), return the puzzles where position $i$ holds tile
# `permutation[i]`, in every puzzle. `permutation` is a list or a 1-D tensor of the T tile
# numbers. Leave the input unchanged; return one tensor of the same shape.

# %%
def shuffle_tiles(tiles: torch.Tensor, permutation) -> torch.Tensor:
    """Position i of every puzzle gets tile permutation[i]: (N, T, C, h, w) -> same shape."""
    # TODO: index the tile axis (axis 1) with the permutation.
    ### BEGIN SOLUTION
    return tiles[:, torch.as_tensor(permutation)]
    ### END SOLUTION
    raise NotImplementedError("Exercise 1: shuffle_tiles")


shuffle_tiles = checks.check_shuffle_tiles(shuffle_tiles)

# %%
puzzle_images = pretext.jigsaw_images(2, seed=ssl_protocol.EVAL_SEED)[:SHOWN]
cells = self_supervised.cut_tiles(puzzle_images, 3)
tiles = pretext.jitter_tiles(cells, pretext.JIGSAW_TILE, torch.Generator().manual_seed(0))
permutation = self_supervised.jigsaw_permutations(64, seed=0)[5]
shuffled = shuffle_tiles(tiles, permutation.tolist())


def tile_grid(puzzle, gap=1):
    """Nine tiles (9, C, h, w) drawn as a 3 x 3 grid with white gaps, as an (H, W, C) array."""
    padded = F.pad(puzzle, (gap, gap, gap, gap), value=1.0)
    return self_supervised.join_tiles(padded[None])[0].permute(1, 2, 0).numpy()


fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
for ax, picture, title in zip(axes, [puzzle_images[0].permute(1, 2, 0).numpy(), tile_grid(tiles[0]),
                                     tile_grid(shuffled[0])],
                              ["the glyph (27 x 27)", "nine 7 x 7 tiles, one per cell",
                               f"shuffled: permutation {' '.join(map(str, permutation))}"]):
    ax.imshow(picture, interpolation="nearest")
    ax.set_title(title, fontsize=11)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Which permutations?
#
# With 64 permutations drawn at random, some pairs differ in only two or three places: telling
# them apart hangs on two tiles, and the rest of the image does not matter. Noroozi & Favaro
# chose the set greedily instead: each new permutation is the one with the largest average
# **Hamming distance** (the number of positions where two permutations differ) to those already
# chosen. The course's `jigsaw_permutations` uses a close variant: the largest distance to the
# *closest* one already chosen, which guarantees that no two are near. The paper found that the
# farther apart the permutations, the better the features
# transferred, and that too few permutations made the task too easy to teach much. Let us
# measure what the greedy choice buys over a random draw, and over a deliberately bad set where
# each permutation only swaps two tiles:

# %%
def hamming_summary(permutations):
    distances = (permutations[:, None] != permutations[None]).sum(axis=2)
    off_diagonal = distances[~np.eye(len(permutations), dtype=bool)]
    return off_diagonal.min(), off_diagonal.mean()


greedy = self_supervised.jigsaw_permutations(64, seed=0)
rng = np.random.default_rng(0)
random_set = np.array([rng.permutation(9) for _ in range(64)])
swaps = []
for i in range(9):
    for j in range(i + 1, 9):
        swap = np.arange(9)
        swap[[i, j]] = swap[[j, i]]
        swaps.append(swap)
swap_set = np.array(swaps)  # all 36 swaps of two tiles
for name, permutations in [("greedy, farthest first", greedy), ("random", random_set),
                           ("two tiles swapped", swap_set)]:
    smallest, average = hamming_summary(permutations)
    print(f"{name:24} {len(permutations):3d} permutations: smallest distance {smallest}, "
          f"average {average:.2f} of 9")

# %% [markdown]
# The recorded jigsaw network was trained on the greedy set of 64, 128 puzzles a step. Its
# curves below are recorded every tenth of the run: the share of held-out puzzles it solves,
# and how good its CNN's features are for letters (20-NN accuracy at 100 labels per letter).
# Then it solves a few puzzles of new glyphs, live.

# %%
jigsaw_model, jigsaw_results = recorded("ssl-jigsaw")
jigsaw_permutations = torch.tensor(jigsaw_results["permutations"])
curve = jigsaw_results["knn_curve"]
steps_recorded = [point["step"] for point in curve]

fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
losses = np.array(jigsaw_results["step_loss"])
plot_step_losses(axes[0], losses, window=20)
axes[0].axhline(np.log(len(jigsaw_permutations)), color="grey", ls="--",
                label=f"chance: log {len(jigsaw_permutations)}")
axes[0].set(xlabel="step", ylabel="cross-entropy", title=f"Jigsaw training ({SOURCE})")
axes[0].legend(fontsize=10)
axes[1].plot(steps_recorded, [point["puzzles_solved"] for point in curve], "o-",
             label="held-out puzzles solved")
axes[1].plot(steps_recorded, [point["knn"] for point in curve], "s-",
             label=f"letters: 20-NN ({BUDGETS[-1]}/letter)")
axes[1].set(xlabel="step", ylabel="accuracy", ylim=(0, 1), title="What it learned")
axes[1].legend(fontsize=10)
fig.tight_layout()
plt.show()

new_puzzles = pretext.jigsaw_images(10, seed=ssl_protocol.EVAL_SEED + 1).to(cfg.device)
solved_new = pretext.jigsaw_accuracy(jigsaw_model, new_puzzles, jigsaw_permutations, seed=1)
print(f"live: {solved_new:.1%} of {len(new_puzzles)} new puzzles solved (chance "
      f"{1 / len(jigsaw_permutations):.1%})")
scores["jigsaw (CNN)"] = ssl_protocol.evaluate_frozen(jigsaw_model, evaluation)
score_table(["pixels", "random CNN", "jigsaw (CNN)", "supervised CNN"])
record("07", "jigsaw puzzles solved, live", solved_new)

# %% [markdown]
# Read the two curves together. The puzzle gets solved more and more often; whether the letters
# gain as much is what the right-hand curve and the table say, and it is the question
# self-supervised learning lives on: a pretext task is only as good as the features it forces.
# Here a tile of 7 x 7 pixels holds a piece of stroke and a piece of background, and the
# network can place many tiles by where the background photo's content continues, a cue that
# says nothing about letters. Noroozi & Favaro fought such shortcuts with gaps, jitter,
# per-tile normalisation and colour tricks; each closes one, and a network finds the next.
#
# ## 3. Auto-encoders: reconstruction through a bottleneck
#
# An **auto-encoder** is two networks: an *encoder* maps the image to a short code, a *decoder*
# maps the code back to an image, and both are trained to make the output equal to the input
# (the mean squared error over the pixels). The answer is again free: it is the input. What
# makes it a task is the **bottleneck**: our encoder is the lesson 06 ResNet, whose pooled
# features are 80 numbers for a 16 x 16 x 3 = 768-number image, so it cannot copy; it must
# keep what matters most for redrawing the picture. The decoder reverses the encoder's
# downsampling with *transposed convolutions* (each input pixel paints a 4 x 4 patch of the
# output, at stride 2).
#
# What matters most for redrawing a glyph, pixel by pixel? Mostly the background photo: it
# covers most of the image. Let us look at what the recorded auto-encoder kept.

# %%
autoencoder, autoencoder_results = recorded("ssl-autoencoder")
mean, std = unlabelled["mean"], unlabelled["std"]
shown_images = test_images[:SHOWN * 2]
with torch.no_grad():
    reconstructions = autoencoder(shown_images)


def to_pixels(images):
    """Normalised images (N, 3, H, W) back to [0, 1], (N, H, W, 3) for imshow."""
    return (images.cpu() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()


fig, axes = plt.subplots(2, len(shown_images), figsize=(10, 2.9))
for column, (original, rebuilt) in enumerate(zip(to_pixels(shown_images), to_pixels(reconstructions))):
    axes[0, column].imshow(original, interpolation="nearest")
    axes[1, column].imshow(rebuilt, interpolation="nearest")
    axes[0, column].set_title(letters[test_labels[column]], fontsize=11)
    for ax in axes[:, column]:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_ylabel("original", fontsize=11)
axes[1, 0].set_ylabel("rebuilt", fontsize=11)
fig.suptitle("The auto-encoder's reconstructions from 80 numbers (test glyphs)", fontsize=12)
fig.tight_layout()
plt.show()

with torch.no_grad():
    error = F.mse_loss(autoencoder(test_images), test_images).item()
print(f"reconstruction error on the test glyphs: {error:.3f} (predicting the mean colour, 0, "
      f"for every pixel scores {test_images.square().mean().item():.3f})")
scores["auto-encoder (CNN)"] = ssl_protocol.evaluate_frozen(autoencoder, evaluation)
score_table(["pixels", "random CNN", "auto-encoder (CNN)", "jigsaw (CNN)", "supervised CNN"])

# %% [markdown]
# The mean squared error rewards the large smooth regions of the picture: a blurry background
# of the right colours is a good reconstruction by this measure, even if the letter is a smudge.
# A pixel loss weighs every pixel alike, and the letter is a few of them. That is the classic
# weakness of auto-encoders as feature learners: the code learns what is *large*, not what is
# *meaningful*.
#
# ## 4. Masked auto-encoders
#
# He et al. (2022) changed one thing: instead of squeezing the whole image through a
# bottleneck, **remove most of it and ask for the rest**. The image is cut into patches (lesson
# 05's Vision Transformer tokens), a random 75% of them are removed, and the network must
# predict the pixels of the removed ones from the few that remain. With three patches out of
# four gone, neighbouring pixels cannot simply be copied: the network has to know what a letter
# looks like to fill in its missing strokes.
#
# The design, as in the paper:
#
# * the **encoder** is a ViT that only processes the *visible* patches (here 16 of 64): no mask
#   tokens, so it costs at most a quarter of a full pass (its attention far less), which is what
#   makes MAE cheap at scale;
# * a **light decoder** (here two layers of width 32, against the encoder's four of width 64)
#   gets the encoded visible patches back in their places, a shared learned **mask token** in
#   every removed place, position embeddings on all, and predicts each patch's pixels;
# * the **loss** is the mean squared error on the *removed* patches only: the visible ones were
#   given, there is nothing to learn from repeating them;
# * after pretraining the decoder is thrown away; the encoder, given every patch, computes the
#   features.
#
# ### Exercise 2: random masking
#
# Write `random_masking(tokens, mask_ratio, *, generator)` for tokens $(N, L, D)$. Keep
# `keep = int(L * (1 - mask_ratio))` tokens of each sequence, chosen at random, as MAE does:
#
# 1. draw `noise = torch.rand(N, L, generator=generator)` first (one number per token), and
#    move it to the tokens' device;
# 2. `shuffle = noise.argsort(dim=1)`: the lowest noise first; the first `keep` positions of
#    each row are kept;
# 3. `restore = shuffle.argsort(dim=1)`, the inverse permutation, which puts a shuffled
#    sequence back in order;
# 4. `visible` $(N, keep, D)$: the kept tokens, in the shuffled order (`torch.gather` along
#    dimension 1);
# 5. `mask` $(N, L)$: a **float** tensor, **1 where a token was removed**, 0 where it is
#    visible, in the tokens' **original order** (build it in the shuffled order, keep zeros
#    then ones, and gather it with `restore`).
#
# Return `(visible, mask, restore)`.

# %%
def random_masking(tokens: torch.Tensor, mask_ratio: float, *, generator=None):
    """MAE's masking: (visible (N, keep, D), mask (N, L) 1 = removed, restore (N, L))."""
    # TODO: noise, shuffle, restore, the kept tokens, and the mask in the original order.
    ### BEGIN SOLUTION
    n, length, dim = tokens.shape
    keep = int(length * (1 - mask_ratio))
    noise = torch.rand(n, length, generator=generator).to(tokens.device)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    visible = torch.gather(tokens, 1, shuffle[:, :keep, None].expand(n, keep, dim))
    mask = torch.ones(n, length, device=tokens.device)
    mask[:, :keep] = 0
    return visible, torch.gather(mask, 1, restore), restore
    ### END SOLUTION
    raise NotImplementedError("Exercise 2: random_masking")


random_masking = checks.check_random_masking(random_masking)

# %% [markdown]
# ### Exercise 3: the loss on the removed patches
#
# Write `masked_mse(prediction, target, mask)`: `prediction` and `target` are patches
# $(N, L, D)$ (each patch's $D = 2 \cdot 2 \cdot 3 = 12$ pixel values), `mask` is your mask
# $(N, L)$, 1 on the removed patches. Compute each patch's mean squared error over its D values,
# then average it over the removed patches of the whole batch: multiply by the mask, sum, and
# divide by the number of removed patches. Return a scalar tensor.

# %%
def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over the removed patches (mask 1) of each patch's mean squared error."""
    # TODO: per-patch mean squared error, weighted by the mask, divided by mask.sum().
    ### BEGIN SOLUTION
    per_patch = (prediction - target).square().mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()
    ### END SOLUTION
    raise NotImplementedError("Exercise 3: masked_mse")


masked_mse = checks.check_masked_mse(masked_mse)

# %% [markdown]
# The package's `MaskedAutoEncoder` is built from the same pieces (`pretext.py`, about 60
# lines). Let us check that your two functions give its loss on a batch, with the same masks:

# %%
mae, mae_results = recorded("ssl-mae")
with torch.no_grad():
    encoded_tokens = mae.encoder.patch_embedding(test_images[:64]) + mae.encoder.position_embedding[:, 1:]
    visible, mask, restore = random_masking(encoded_tokens, 0.75, generator=torch.Generator().manual_seed(0))
    prediction, package_mask = mae(test_images[:64], 0.75, torch.Generator().manual_seed(0))
    mine = masked_mse(prediction, patchify(test_images[:64], 2), mask).item()
    package = mae.loss(test_images[:64], 0.75, torch.Generator().manual_seed(0)).item()
print(f"{visible.shape[1]} visible tokens of {encoded_tokens.shape[1]} per glyph; the same masks: "
      f"{torch.equal(mask, package_mask)}; loss with your functions {mine:.4f}, the package's "
      f"{package:.4f}")

# %% [markdown]
# Now the figure of the paper, with our glyphs: the masked input, what the decoder painted in
# the removed patches (the visible ones pasted back, as He et al. show it), and the original.

# %%
fig = masking_figure(mae, test_images[:SHOWN], 0.75, mean=mean, std=std,
                     titles=[letters[label] for label in test_labels[:SHOWN]])
plt.show()

# %% [markdown]
# The reconstructions are blurry: where several answers are possible (which way does the
# stroke go under that grey patch?), the mean squared error is lowest for their average, a
# blur. That is expected and harmless, since we want the encoder, not the pictures. Try other
# ratios, and other draws of the removed patches, with the widget:

# %%
masking_widget(mae, test_images[:3], mean=mean, std=std,
               titles=[letters[label] for label in test_labels[:3]])

# %% [markdown]
# ### What the masking ratio does
#
# A low ratio makes the task easy: each removed patch has visible neighbours to interpolate
# from, and interpolation needs no knowledge of letters. A ratio near 1 leaves too little to go
# on. He et al. found 75% best on ImageNet, far more than the 15% of masked words in BERT: an
# image is redundant, a sentence is not. The recorded recipe `ssl-mae-ratios` pretrained MAE
# at four ratios, with fewer steps each (printed below). Below: the error on removed test patches at
# its own ratio, and the 20-NN accuracy of its features.

# %%
_, ratio_results = recorded("ssl-mae-ratios")
ratio_runs = ratio_results["runs"]
ratios = [run["mask_ratio"] for run in ratio_runs]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
axes[0].plot(ratios, [run["held_out_loss"] for run in ratio_runs], "o-")
axes[0].set(xlabel="mask ratio (trained and tested)", ylabel="error on removed patches",
            title="The task gets harder...")
for k, marker in zip(BUDGETS, "os"):
    axes[1].plot(ratios, [run["scores"]["knn"][str(k)] for run in ratio_runs], marker + "-",
                 label=f"20-NN, {k}/letter")
    axes[1].plot(ratios, [run["scores"]["linear"][str(k)] for run in ratio_runs], marker + "--",
                 label=f"linear, {k}/letter")
axes[1].axhline(1 / 26, color="grey", lw=1, label="chance")
top = max(run["scores"][kind][str(k)] for run in ratio_runs for kind in ("knn", "linear") for k in BUDGETS)
axes[1].set(xlabel="mask ratio", ylabel="test accuracy", ylim=(0, max(0.25, 1.15 * top)),
            title="...and the features?")
handles, labels = axes[1].get_legend_handles_labels()
fig.legend(handles, labels, fontsize=10, ncol=5, loc="lower center")
fig.tight_layout(rect=(0, 0.1, 1, 1))
plt.show()
best = max(ratio_runs, key=lambda run: run["scores"]["knn"][str(BUDGETS[-1])])
print(f"recorded ({get_recipe('ssl-mae-ratios').settings['steps']} steps each): best 20-NN "
      f"at ratio {best['mask_ratio']}; " + ", ".join(
          f"{run['mask_ratio']}: {run['scores']['knn'][str(BUDGETS[-1])]:.1%}" for run in ratio_runs))
print(f"every ratio's frozen features within 2 points of chance (20-NN, {BUDGETS[-1]}/letter): "
      f"{all(abs(run['scores']['knn'][str(BUDGETS[-1])] - 1 / 26) < 0.02 for run in ratio_runs)}")
scores["MAE (ViT)"] = ssl_protocol.evaluate_frozen(mae, evaluation)
scores["MAE, mean of patches"] = ssl_protocol.evaluate_frozen(
    ssl_protocol.MeanOfPatches(mae.encoder), evaluation)
score_table(["pixels", "random ViT", "MAE (ViT)", "MAE, mean of patches", "supervised ViT"])
record("07", "MAE k-NN accuracy, 100 labels per letter", scores["MAE (ViT)"]["knn"][BUDGETS[-1]])

# %% [markdown]
# The left panel is the textbook half of the story: the more is removed, the harder the task.
# The right panel is where this scale shows. If the verdict above is True, no ratio gave
# frozen k-NN features more than 2 points from chance, and the ratio's effect on features
# cannot be read off such noise: a few passes over 10,400 glyphs taught the encoder to fill in
# patches, not features that separate letters. He et al. pretrain for 800 to 1,600 passes over
# ImageNet. One more suspect is our readout: the class token, which MAE's loss only reaches
# through the decoder's attention. The row "MAE, mean of patches" of the table above reads the
# patch tokens instead, averaged: compare it with the class token's row.
#
# Frozen features are not how He et al. judge MAE anyway. They report that its features are weaker
# under a linear probe than contrastive ones, and strong after **fine-tuning**, when the whole encoder adapts to the labelled
# task; the notes' table below is of fine-tuned accuracies. So the recipe also fine-tuned the
# MAE encoder end to end with a new head (lesson 06's trainer, a few hundred steps) at each budget, and a
# randomly initialised ViT the same way:

# %%
fine_tuned = mae_results["fine_tuned"]
for k in BUDGETS:
    gain = fine_tuned["MAE"][str(k)] - fine_tuned["random"][str(k)]
    print(f"{k:3d} labels per letter, ViT fine-tuned end to end: from MAE "
          f"{fine_tuned['MAE'][str(k)]:.1%}, from random weights {fine_tuned['random'][str(k)]:.1%} "
          f"({100 * gain:+.1f} points; recorded)")

# %% [markdown]
# ## 5. The rest of the generative family
#
# ### Variational auto-encoders: a code you can sample
#
# An auto-encoder's codes land wherever training put them: pick a random point in code space
# and the decoder has never seen anything like it. A **variational auto-encoder** (Kingma &
# Welling, 2014) makes the code space usable for *generating* images. Its encoder outputs, for
# each image, a Gaussian distribution over codes (a mean and a log-variance per dimension); the
# decoder reconstructs from a code *sampled* from it; and the loss adds to the reconstruction
# error a term that pulls every image's distribution towards the standard normal N(0, 1): the
# **KL divergence**. Codes drawn from N(0, 1) then decode into images like the training ones.
#
# ### Exercise 4: the KL term
#
# For a code with means $\mu_j$ and log-variances $\ell_j = \log \sigma_j^2$, the divergence from
# N(0, 1) has a closed form, summed over the code's dimensions $j$:
#
# $$\mathrm{KL} = \tfrac{1}{2} \sum_j \left(\mu_j^2 + e^{\ell_j} - 1 - \ell_j\right).$$
#
# Write `gaussian_kl(mean, log_variance)` for tensors $(N, J)$: the sum over $j$, averaged over
# the batch of N codes.

# %%
def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, 1)), summed over the code, mean over the batch."""
    # TODO: the closed form, .sum(dim=1), then .mean().
    ### BEGIN SOLUTION
    return 0.5 * (mean.square() + log_variance.exp() - 1 - log_variance).sum(dim=1).mean()
    ### END SOLUTION
    raise NotImplementedError("Exercise 4: gaussian_kl")


gaussian_kl = checks.check_gaussian_kl(gaussian_kl)

# %% [markdown]
# Let us train, live, a small VAE (a two-layer MLP to an 8-dimensional code and back) and its
# plain twin (the same network, no sampling, no KL term) on the unlabelled glyphs, then decode
# codes drawn from N(0, 1) with each. The package's `SmallVAE.loss` uses the reference
# `gaussian_kl`; yours is compared with it on the trained VAE's codes.

# %%
pixels = unlabelled["images"].flatten(1)


def train_small(variational):
    with seeded(0):
        model = pretext.SmallVAE(pixels.shape[1], code=8, variational=variational).to(cfg.device)
        history = ssl_protocol.pretrain(
            model, lambda indices: model.loss(pixels[indices.to(cfg.device)]), len(pixels),
            steps=VAE_STEPS, batch_size=256, lr=2e-3, weight_decay=0.0)
    return model.eval(), history


vae, vae_history = train_small(True)
plain, plain_history = train_small(False)
with torch.no_grad():
    _, codes_mean, codes_log_variance = vae(test_images.flatten(1))
    _, plain_codes, _ = plain(test_images.flatten(1))
    print(f"trained {VAE_STEPS} steps each in {vae_history['seconds'] + plain_history['seconds']:.1f} s "
          f"({vae_history['items_per_second']:,.0f} images/s); "
          f"KL of the test codes: your function {gaussian_kl(codes_mean, codes_log_variance).item():.2f}, "
          f"the reference {pretext.gaussian_kl(codes_mean, codes_log_variance).item():.2f}")
    means_part = 0.5 * codes_mean.square().sum(dim=1).mean().item()
    spreads_part = 0.5 * (codes_log_variance.exp() - 1 - codes_log_variance).sum(dim=1).mean().item()
    print(f"  of which the means' part (1/2 mean^2, summed) {means_part:.2f} and the spreads' part "
          f"(1/2 (variance - 1 - log variance), summed) {spreads_part:.2f}")
    print(f"VAE: mean standard deviation of each image's code distribution "
          f"{(0.5 * codes_log_variance).exp().mean().item():.2f} (a code is sampled around its mean)")
    for name, codes in (("VAE (its means)", codes_mean), ("plain auto-encoder", plain_codes)):
        print(f"{name:19} codes of the test glyphs, per dimension: means "
              f"{codes.mean(dim=0).min().item():+.2f} to {codes.mean(dim=0).max().item():+.2f}, "
              f"standard deviations {codes.std(dim=0).min().item():.2f} to "
              f"{codes.std(dim=0).max().item():.2f} (N(0, 1): mean 0, deviation 1)")
    with seeded(1):
        random_codes = torch.randn(8, 8, device=cfg.device)
    samples = {"VAE": vae.decoder(random_codes), "plain auto-encoder": plain.decoder(random_codes)}

fig, axes = plt.subplots(2, 8, figsize=(10, 3.0))
for row, (name, decoded) in enumerate(samples.items()):
    for column, picture in enumerate(to_pixels(decoded.reshape(-1, 3, 16, 16))):
        axes[row, column].imshow(picture, interpolation="nearest")
        axes[row, column].set_xticks([])
        axes[row, column].set_yticks([])
    axes[row, 0].set_ylabel(name.replace(" auto", "\nauto"), fontsize=11)
fig.suptitle("The same 8 codes drawn from N(0, 1), decoded by each", fontsize=12)
fig.tight_layout()
plt.show()

# %% [markdown]
# How to read the KL: it would be 0 if every image's code distribution were N(0, 1) itself.
# Its two printed parts say where it comes from: the means' part (how far each image's code
# sits from 0) and the spreads' part (how much narrower than 1 each image's spread is). A narrow
# spread is what the reconstruction wants (a precise code) and what the KL term taxes; the VAE
# is that compromise. Over all test glyphs, a VAE's codes vary by the spread of their means
# plus each image's own spread around its mean (per dimension, the variance of the means plus
# the mean of the variances), and that total is what the KL term pulls towards N(0, 1)'s. It asks, for every image,
# for a code distribution close to N(0, 1), so the codes as a whole cannot drift far from it:
# random draws land where the decoder was trained and decode into blurry images in the training
# colours. The
# plain auto-encoder's loss asks nothing about where its codes lie; whatever spread they have
# came out of training, and nothing guarantees that N(0, 1) draws land among them. Here, at 8
# dimensions and this short training, the two rows may look alike; the difference is in what
# the loss promises, not in one draw. A VAE is a *generative model*; for features it brings
# little over an auto-encoder, and its samples are blurry for the same reason as the
# reconstructions above. That is why this lesson judges auto-encoders by their encoders, and
# why the lineage that won for features was masking.
#
# ### Masking a ConvNet: ConvNeXt V2
#
# MAE needs a Transformer, it seems: a ViT can simply leave the removed patches out of its
# sequence. A ConvNet slides its kernels over a full grid, so removed patches must be filled
# with something (zeros), and then every convolution *spreads* visible pixels into them. Let us
# measure how fast, with the 75% masks of our MAE on a 16 x 16 grid: after each 3 x 3
# convolution, what share of the removed pixels already sees a visible one?

# %%
with torch.no_grad():
    _, masks, _ = random_masking(torch.zeros(256, 64, 1), 0.75, generator=torch.Generator().manual_seed(0))
    removed = F.interpolate(masks.reshape(256, 1, 8, 8), scale_factor=2)   # pixels (256, 1, 16, 16)
    reached = 1 - removed                                                   # visible pixels
    for layer in range(1, 5):
        reached = (F.conv2d(reached, torch.ones(1, 1, 3, 3), padding=1) > 0).float()
        share = (reached * removed).sum() / removed.sum()
        print(f"after {layer} convolution{'s' if layer > 1 else ''} of 3 x 3: {share:.0%} of the "
              f"removed pixels mix in visible ones")

# %% [markdown]
# After a few layers the mask is gone: the network works on a filled-in image, the task gets
# easier the deeper it goes, and the pretrained network has learned on inputs full of holes,
# unlike the whole images it sees afterwards. ConvNeXt V2 (Woo et al., 2023) avoids both by
# treating the visible pixels as a *sparse* set: **sparse convolutions** compute outputs only
# at visible positions and read only visible inputs, so the removed patches stay empty through
# the whole encoder, exactly as a ViT leaves them out. (Its block also adds a *global response
# normalisation* layer, which the authors found kept many channels from dying or repeating one
# another during masked pretraining, a different "collapse" from part 2's.) With this, a fully
# convolutional masked auto-encoder pretrains ConvNeXt V2; its largest model (Huge, 659 M
# parameters) reaches 88.9% top-1 on ImageNet, after an extra fine-tuning on ImageNet-22K and
# at a higher resolution, as the paper reports.
#
# For the Transformers, the notes quote the MAE paper's ImageNet top-1 accuracies after
# fine-tuning, against supervised training from scratch and DINO's self-distillation (part 2 of
# this lesson): masked pretraining pays more the larger the model, where supervised training
# alone saturates.

# %%
MAE_TABLE = {  # He et al. (2022), top-1 (%) on ImageNet-1K after fine-tuning, as in the notes
    "Supervised": {"ViT-B": 82.3, "ViT-L": 82.6, "ViT-H": 83.1, "ViT-H (448)": None},
    "DINO": {"ViT-B": 82.8, "ViT-L": None, "ViT-H": None, "ViT-H (448)": None},
    "MAE": {"ViT-B": 83.6, "ViT-L": 85.9, "ViT-H": 86.9, "ViT-H (448)": 87.8},
}
columns = list(MAE_TABLE["MAE"])
print(f"{'pretraining':12}" + "".join(f"{column:>13}" for column in columns))
for approach, row in MAE_TABLE.items():
    print(f"{approach:12}" + "".join(f"{'-' if row[c] is None else row[c]:>13}" for c in columns))
gains = {column: MAE_TABLE["MAE"][column] - MAE_TABLE["Supervised"][column]
         for column in ("ViT-B", "ViT-L", "ViT-H")}
print("MAE minus supervised: " + ", ".join(f"{column} {gain:+.1f}" for column, gain in gains.items()))

# %% [markdown]
# ## 6. Where the pretext tasks stand
#
# The protocol's table so far: every network frozen, the same evaluation glyphs, the same two
# label budgets. One more row answers the practical question "should I have pretrained at
# all?": the CNN trained from scratch, end to end, on the labelled glyphs only (lesson 06's
# *from scratch*, 200 steps), which is not a frozen-feature score but what the same labels buy
# without any pretraining.

# %%
for k in BUDGETS:
    chosen = labels_per_class(train_labels.cpu(), k, seed=0).to(cfg.device)
    with seeded(0):
        scratch = ssl_protocol.build_cnn().to(cfg.device)
        train_network(scratch, train_images[chosen], train_labels[chosen], Method(),
                      steps=SCRATCH_STEPS)
    scores.setdefault("CNN from scratch, labels only", {"knn": {}, "linear": {}})
    scores["CNN from scratch, labels only"]["linear"][k] = accuracy(scratch, test_images, test_labels)
    scores["CNN from scratch, labels only"]["knn"][k] = float("nan")
order = ["pixels", "random CNN", "random ViT", "auto-encoder (CNN)", "jigsaw (CNN)", "MAE (ViT)",
         "supervised CNN", "supervised ViT"]
score_table(order)
row = scores["CNN from scratch, labels only"]["linear"]
print(f"{'CNN from scratch':22}{'':36}" + "".join(f"{row[k]:>18.1%}" for k in BUDGETS)
      + "   (trained end to end, no pretraining)")

fig, ax = plt.subplots(figsize=(10, 4.2))
width = 0.2
for index, (kind, k) in enumerate([(kind, k) for kind in ("knn", "linear") for k in BUDGETS]):
    values = [scores[name][kind][k] for name in order]
    ax.bar(np.arange(len(order)) + (index - 1.5) * width, values, width,
           label=f"{'k-NN' if kind == 'knn' else 'linear'}, {k}/letter")
for k, style in zip(BUDGETS, (":", "--")):
    ax.axhline(row[k], color="black", ls=style, lw=1, label=f"from scratch, {k}/letter")
ax.axhline(1 / 26, color="grey", lw=1, label="chance")
ax.set_xticks(np.arange(len(order)), [name.replace(" ", "\n", 1) for name in order], fontsize=10)
ax.set(ylabel="test accuracy", ylim=(0, 1), title="Frozen features on the evaluation glyphs")
ax.legend(fontsize=10, ncol=3, loc="upper left")
fig.tight_layout()
plt.show()

best_pretext = max(["auto-encoder (CNN)", "jigsaw (CNN)", "MAE (ViT)"],
                   key=lambda name: scores[name]["linear"][BUDGETS[-1]])
ceiling = max(scores["supervised CNN"]["linear"][BUDGETS[-1]],
              scores["supervised ViT"]["linear"][BUDGETS[-1]])
print(f"best pretext features (linear, {BUDGETS[-1]}/letter): {best_pretext}, "
      f"{scores[best_pretext]['linear'][BUDGETS[-1]]:.1%}; the supervised ceiling {ceiling:.1%}; "
      f"from scratch on the labels {row[BUDGETS[-1]]:.1%}")
for k in BUDGETS:
    beats = [name for name in ("auto-encoder (CNN)", "jigsaw (CNN)", "MAE (ViT)")
             if scores[name]["linear"][k] > row[k]]
    print(f"{k} labels per letter: pretext features that beat training from scratch (linear): "
          f"{', '.join(beats) if beats else 'none'}")
record("07", "best pretext linear probe, 100 labels per letter",
       scores[best_pretext]["linear"][BUDGETS[-1]])

# %% [markdown]
# Read the table with the protocol in mind. Every score is a *frozen* network: nothing of the
# pretext network was adapted to letters, only a vote or a linear layer on top. The supervised
# rows had every label of the 10,400 pretraining glyphs, so they are a ceiling for their
# architecture, not a rival.
# The printed lines say which pretext features beat training on the labels alone at each
# budget; where none does, that is the honest result at this scale: a few minutes of CPU
# pretraining on 10,400 tiny glyphs is a long way from the weeks of GPU time and the millions
# of images behind the notes' tables.
#
# Part 2 tries the other family, joint embeddings: SimCLR and DINO, which compare two views of
# one image instead of reconstructing pixels, adds them to this table, and closes the course's
# second half with a decision guide.
#
# ## Summary
#
# * Self-supervised learning invents tasks whose answers come from the data itself; the
#   features it learns are judged afterwards, frozen, by a k-NN vote and a linear probe, against
#   random and supervised features on the same data.
# * Jigsaw puzzles are a classification of permutations; Noroozi & Favaro found that the
#   permutation set and the gaps between tiles decide whether the network learns the image or
#   a shortcut.
# * Auto-encoders reconstruct through a bottleneck; a pixel loss rewards what is large, not
#   what is meaningful.
# * A masked auto-encoder removes most patches (75%), encodes only the visible ones, decodes
#   with a light decoder and scores the removed ones only; the ratio sets how hard the task is.
# * A VAE adds the KL term and sampling, which makes it a generator; a ConvNet needs sparse
#   convolutions to be masked the way a ViT is (ConvNeXt V2).
#
# ## References
#
# * M. Noroozi, P. Favaro. Unsupervised Learning of Visual Representations by Solving Jigsaw
#   Puzzles. ECCV 2016.
# * K. He, X. Chen, S. Xie, Y. Li, P. Dollár, R. Girshick. Masked Autoencoders Are Scalable
#   Vision Learners. CVPR 2022.
# * D. P. Kingma, M. Welling. Auto-Encoding Variational Bayes. ICLR 2014.
# * S. Woo, S. Debnath, R. Hu, X. Chen, Z. Liu, I. S. Kweon, S. Xie. ConvNeXt V2: Co-designing
#   and Scaling ConvNets with Masked Autoencoders. CVPR 2023.
# * G. E. Hinton, R. R. Salakhutdinov. Reducing the Dimensionality of Data with Neural Networks.
#   Science, 2006.
# * J. Devlin, M.-W. Chang, K. Lee, K. Toutanova. BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding. NAACL 2019.
