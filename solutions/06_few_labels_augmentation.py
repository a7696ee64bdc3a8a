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
# # Lesson 06 · Few labels, part 1: augmentation and synthetic data
#
# Lesson 05 ended on a warning: a network learns from examples what it is not told by its
# architecture, and a Vision Transformer needed several times more glyphs than a ResNet to
# reach the same accuracy. Images are cheap; *labels* are not. Someone has to look at every training
# image and say what it shows, and for medical scans or rare defects that someone is an expert
# whose hour is expensive. So the practical question is: **what can we do when only a handful of
# images are labelled?**
#
# There are three kinds of answers, and this lesson (in two notebooks) measures each of them:
#
# | idea | methods | where |
# |---|---|---|
# | make more labelled examples ourselves | data augmentation, synthetic data | this notebook |
# | borrow what a network learned from someone else's labels | transfer learning, fine-tuning | part 2 |
# | learn from the images nobody labelled | pseudo-labelling (part 2), self-supervision (lesson 07) | part 2, lesson 07 |
#
# **You will learn**
#
# 1. a fair protocol for comparing methods: label budgets of 1 to 100 per class, fixed test sets;
# 2. the deformations of the SimCLR paper, which ones torchvision has and how to write the others;
# 3. when an augmentation changes the label, measured on letters and digits, and the rule;
# 4. how much augmentation buys at each label budget;
# 5. synthetic data: rendering labelled digits from fonts, and how wide the gap to real
#    handwriting is;
#
# Exercises are checked as before: NOT DONE (the reference is used), WRONG (what failed, with a
# hint), PASSED.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as v2

from course_utils import augment, few_labels, glyphs, setup
from course_utils.config import seeded
from course_utils.exercises import lesson06 as checks
from course_utils.font_digits import generate_font_digits
from course_utils.photos import load_photo
from course_utils.pretrained import get_recipe, load_pretrained
from course_utils.results import record
from course_utils.widgets import augmentation_widget

cfg = setup(seed=0)

# %%
# Sizes of the live runs. Every run trains the lesson's ResNet for STEPS steps. The quick
# profile trains at three label budgets and loads the others from the recorded grid (section 4);
# the full one trains every budget live, as many times as the grid repeats them. `capped` only applies to the capped test
# run of the full profile (COURSE_CAPPED=1), which runs its code paths on a CPU.
GRID = get_recipe("few-labels").settings  # the recorded grid's settings
STEPS = cfg.pick(quick=GRID["steps"], full=GRID["steps"], capped=10)
LIVE_BUDGETS = cfg.pick(quick=[1, 5, 20], full=list(few_labels.BUDGETS["digits"]), capped=[1, 5])
LIVE_REPEATS = cfg.pick(quick=1, full=GRID["repeats"], capped=1)
HALF_TURN_BUDGET = 20  # labels per class of the half-turn experiment (section 3)
GLYPH_TEST_PER_CLASS = cfg.pick(quick=40, full=100, capped=4)

# %% [markdown]
# ## 1. The protocol: a few labels, a fixed test set, and a pool
#
# To compare methods honestly they must face the same task with the same labels and be scored
# on the same images. The lesson has three target tasks, from close to far from the glyphs of
# the earlier lessons:
#
# | target | images | classes | close to glyphs A-M? |
# |---|---|---|---|
# | **letters** | glyphs of the letters N to Z, 200 of each | 13 | same generator, new classes |
# | **digits** | scikit-learn's 1,797 real handwritten digits, 8 x 8 scans | 10 | characters, but grey, clean, handwritten |
# | **faces** | scikit-image's LFW subset: 100 faces, 100 other patches | 2 | photos, another task |
#
# The distance matters in part 2, which transfers a network trained on the letters A to M.
# This notebook works mostly on the digits: they are real data, and synthetic digits
# (section 5) can be compared with them. `few_labels.target_data` cuts each task once, with a
# fixed seed, into three parts:
#
# * a **test set** (50 images per class for letters and digits, 25 for faces): every accuracy
#   in the lesson is measured on it;
# * a **validation set** (20 per class, 10 for faces), for choices a method must make without
#   peeking at the test set (part 2 picks a pseudo-labelling threshold with it);
# * a **pool**: all the others. A method receives $k$ *labelled* images per class drawn from
#   the pool; the rest of the pool is there *without* labels, for methods that can use it.
#
# Every method trains the same network (lesson 02's ResNet, three stages of one block each,
# with 20, 40 and 80 channels, about 120 thousand parameters) for the same number of steps on 16 x 16 images. The
# budgets are 1, 5, 20 and 100 labels per class (50 for faces): from one example each to about
# all that the pool holds.

# %%
targets = {name: few_labels.target_data(name) for name in ("letters", "digits", "faces")}
digits = targets["digits"]
for name, data in targets.items():
    sizes = []
    for part in ("pool", "val", "test"):
        counts = torch.bincount(data[part][1].cpu())
        sizes.append(f"{part} {counts.sum().item():,} ({counts.min().item()}-{counts.max().item()} "
                     f"per class)")
    print(f"{name:>7}: {'; '.join(sizes)}; budgets {few_labels.BUDGETS[name]}")
print(f"network input: {tuple(digits['pool'][0].shape[1:])}")

# %% [markdown]
# ### Exercise 1: k labels per class
#
# Write `labels_per_class(labels, k, *, seed)`: the indices of `k` examples of every class,
# drawn at random but reproducibly. Draw one permutation of all the positions,
# `order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))`, and
# for every class keep the first `k` positions of `order` whose label is that class. Return the
# chosen indices sorted, as an int64 tensor.
#
# Why one permutation for all classes, rather than one per class? Because then the draws are
# *nested*: the 5 images per class chosen for $k = 5$ are among the 20 chosen for $k = 20$, so
# when two budgets are compared they differ only by the images added. And why a generator of
# its own? So that drawing a subset does not move the notebook's random numbers, and the same
# seed gives the same subset on any machine. (A class with fewer than `k` examples cannot
# give `k`: the package's version stops with an error that names the short classes.)

# %%
def labels_per_class(labels: torch.Tensor, k: int, *, seed: int) -> torch.Tensor:
    """Sorted int64 indices of k examples of every class 0..max(labels)."""
    # TODO: one seeded permutation; per class, its first k positions with that label.
    ### BEGIN SOLUTION
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = [order[labels[order] == label][:k] for label in range(int(labels.max()) + 1)]
    return torch.cat(chosen).sort().values
    ### END SOLUTION


# %%
labels_per_class = checks.check_labels_per_class(labels_per_class)

# %% [markdown]
# Here are the labelled sets of the first draw: the whole training set of the smallest budget
# is the top row. The budget of 5 adds four more images of each digit; the second row shows
# one of those four for each digit.

# %%
pool_labels = digits["pool"][1].cpu()
one, five = labels_per_class(pool_labels, 1, seed=0), labels_per_class(pool_labels, 5, seed=0)
print(f"k=1: {one.tolist()}\nthe k=1 images are among the k=5 ones: "
      f"{set(one.tolist()) <= set(five.tolist())}")
added = torch.tensor([index for index in five.tolist() if index not in set(one.tolist())])
added = added[pool_labels[added].argsort(stable=True)][::4]  # one added image per digit
fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
for row, indices in enumerate((one, added)):
    for ax, index in zip(axes[row], indices.tolist()):
        ax.imshow(digits["raw"]["pool"][index, 0], cmap="gray_r")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(str(pool_labels[index].item()), fontsize=11)
axes[0, 0].set_ylabel("k = 1", fontsize=11)
axes[1, 0].set_ylabel("added\nat k = 5", fontsize=11)
fig.suptitle("The labelled images of draw 0 (16 x 16, from the real 8 x 8 digits)", fontsize=12)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Data augmentation: new examples from old ones
#
# A photo of a cat, shifted by three pixels, slightly darker or flipped left to right, is still
# a photo of a cat. Data augmentation turns that knowledge into training data: at every step,
# each training image is deformed at random, so the network never sees exactly the same input
# twice and has to learn what does *not* change under the deformations. With ten labelled
# images the network can memorise them in a few steps; with a thousand deformed versions of
# them, memorising is much harder than learning the digit's shape.
#
# The SimCLR paper [Chen et al., 2020] studied nine such deformations, drawn on one photo in
# its Figure 4, and found that a random crop with resizing, colour distortion and blur together
# worked best for its purpose. torchvision's transforms v2 provide most of them; three we write
# ourselves. `augment.DEFORMATIONS` holds all nine with one *strength* knob each (0: no change,
# 1: as strong as in SimCLR). For flip, colour drop, rotation and Sobel the strength is the
# chance of applying it; the figure uses 1 for those, so each is visible, and 0.7 for the
# others. Here is each one on a real photo and on a glyph of the course's letter dataset.

# %%
def as_image(picture: np.ndarray, size: int) -> torch.Tensor:
    """An (H, W, 3) uint8 photo -> a float (3, size, size) image in [0, 1], centre-cropped."""
    image = torch.from_numpy(picture).permute(2, 0, 1)
    side = min(image.shape[1:])
    image = v2.functional.center_crop(image, [side, side])
    return v2.functional.resize(image, [size, size], antialias=True).float() / 255


photo = as_image(load_photo("chelsea"), 128)
glyph_picture = torch.from_numpy(glyphs.generate_glyphs(1, seed=5)[0][0]).permute(2, 0, 1) / 255
examples = {"photo (128 x 128)": photo, "glyph (32 x 32)": glyph_picture.float()}
ALWAYS_APPLIED = ("flip", "colour drop", "rotation", "Sobel filter")  # strength = probability

fig, axes = plt.subplots(2, 1 + len(augment.DEFORMATIONS), figsize=(10, 2.5))
for row, (name, image) in enumerate(examples.items()):
    axes[row, 0].imshow(image.permute(1, 2, 0).numpy())
    axes[row, 0].set_title("original" if row == 0 else "", fontsize=10)
    axes[row, 0].set_ylabel(name.split(" ")[0], fontsize=10)
    for column, deformation in enumerate(augment.DEFORMATIONS, start=1):
        strength = 1.0 if deformation in ALWAYS_APPLIED else 0.7
        transform = augment.compose([deformation], strength=strength, image_size=image.shape[-1])
        with seeded(3):
            changed = transform(image)
        axes[row, column].imshow(changed.permute(1, 2, 0).clamp(0, 1).numpy())
        axes[row, column].set_title(deformation.replace(" and ", " &\n").replace(" ", "\n", 1)
                                    if row == 0 else "", fontsize=10)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout(w_pad=0.2)
plt.show()

# %% [markdown]
# Which are torchvision's and which are ours? `compose` prints as its parts:

# %%
print(augment.compose(list(augment.DEFORMATIONS), strength=0.7, image_size=32))

# %% [markdown]
# Crop and resize, flip, colour jitter, colour drop, Gaussian noise and Gaussian blur are
# torchvision's v2 classes (`ColourDrop` is the course's name for `v2.RandomGrayscale`, applied
# with the given probability). Rotation by quarter turns (`RandomQuarterTurn`, exact with
# `torch.rot90`), cutout and the Sobel filter are the package's, and you write the last two.
#
# ### Exercise 2: the Sobel filter
#
# The Sobel filter [Sobel & Feldman, 1968] keeps only the edges of an image. It is a
# convolution, like lesson 02's, with two fixed 3 x 3 kernels: `augment.SOBEL_X` measures how
# fast the brightness changes from left to right (it responds to vertical edges), and its
# transpose `augment.SOBEL_Y` from top to bottom. The edge strength at a pixel is the length
# of the gradient vector, $\sqrt{g_x^2 + g_y^2}$.
#
# Write `sobel(images)` for a batch $(N, C, H, W)$ in $[0, 1]$:
#
# 1. turn it grey with the luminance $0.2989 R + 0.587 G + 0.114 B$
#    (`v2.functional.rgb_to_grayscale` does it; a grey image with $C = 1$ is already grey);
# 2. pad one pixel on every side by repeating the border, `F.pad(grey, (1, 1, 1, 1),
#    mode="replicate")`, so the output keeps the size and the image's frame is not an edge;
# 3. convolve with both kernels (`F.conv2d`, each reshaped to `(1, 1, 3, 3)`);
# 4. return $\sqrt{g_x^2 + g_y^2}$ divided by `augment.SOBEL_MAX_MAGNITUDE` (the bound
#    $4\sqrt{2}$: each response is at most 4 in size, so the result stays in $[0, 1]$), repeated
#    on the $C$ channels.

# %%
def sobel(images: torch.Tensor) -> torch.Tensor:
    """Edge magnitude of a batch (N, C, H, W) in [0, 1], same shape, in [0, 1]."""
    # TODO: grey, replicate-pad, convolve with SOBEL_X and SOBEL_Y, magnitude, scale, repeat.
    ### BEGIN SOLUTION
    channels = images.shape[1]
    grey = v2.functional.rgb_to_grayscale(images) if channels == 3 else images
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    kernels = torch.stack([augment.SOBEL_X, augment.SOBEL_Y])[:, None].to(images)  # (2, 1, 3, 3)
    gradients = F.conv2d(padded, kernels)                                            # (N, 2, H, W)
    magnitude = gradients.square().sum(dim=1, keepdim=True).sqrt()
    return (magnitude / augment.SOBEL_MAX_MAGNITUDE).repeat(1, channels, 1, 1)
    ### END SOLUTION


# %%
sobel = checks.check_sobel(sobel)

# %% [markdown]
# ### Exercise 3: cutout
#
# Cutout [DeVries & Taylor, 2017] paints a square of the image with zeros, so the network
# cannot rely on any one part of the object: it must also recognise a cat whose head is hidden.
# (The paper cuts after normalising, so there the square has the mean colour; here it is
# black.)
# Write `cutout(images, size, *, top, left)`: return a *copy* of the batch in which, for each
# image, the rows `top` to `top + size - 1` and the columns `left` to `left + size - 1` are zero
# in every channel. `top` and `left` are either one integer for the whole batch or a 1-D tensor
# with one value per image, and a square that hangs over the border is clipped to the image
# (it may even start at a negative position). The random part (where the square goes) is
# `augment.Cutout`'s job; your function only paints.

# %%
def cutout(images: torch.Tensor, size: int, *, top, left) -> torch.Tensor:
    """A copy of the batch (N, C, H, W) with a size x size square set to 0 in each image."""
    # TODO: copy; per image, clip the square to the image and set it to zero.
    ### BEGIN SOLUTION
    result = images.clone()
    height, width = images.shape[-2:]
    tops = torch.as_tensor(top).reshape(-1).expand(len(images)).tolist()
    lefts = torch.as_tensor(left).reshape(-1).expand(len(images)).tolist()
    for image, row, column in zip(result, tops, lefts):
        rows = slice(max(row, 0), max(min(row + size, height), 0))
        columns = slice(max(column, 0), max(min(column + size, width), 0))
        image[:, rows, columns] = 0
    return result
    ### END SOLUTION


# %%
cutout = checks.check_cutout(cutout)

# %% [markdown]
# The two functions on the photo and the glyph (yours where they passed, the references
# otherwise), next to the package's random cutout:

# %%
batch = torch.stack([v2.functional.resize(photo, [32, 32], antialias=True), glyph_picture.float()])
shown = {"original": batch, "sobel": sobel(batch),
         "cutout\n16 x 16 at (4, 10)": cutout(batch, 16, top=4, left=10),
         "augment.Cutout(12)\nat a random place": augment.Cutout(12)(batch)}
fig, axes = plt.subplots(2, len(shown), figsize=(9, 5))
for column, (title, images) in enumerate(shown.items()):
    for row in range(2):
        axes[row, column].imshow(images[row].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[row, column].set_xticks([]), axes[row, column].set_yticks([])
    axes[0, column].set_title(title, fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Compose and tune them yourself
#
# A training pipeline chains several deformations, and their strengths matter: a crop of 8% of
# the area can still show a cat (SimCLR crops that much), but it cuts most of a letter out of
# a 32 x 32 glyph. Tick deformations, move the strength and draw again. What is the strongest
# setting at which *you* still recognise the letter? That is roughly the useful limit for a
# network too: past it, the deformed image no longer shows its label.

# %%
augmentation_widget([photo, glyph_picture.float()])

# %% [markdown]
# ## 3. When an augmentation changes the label
#
# An augmentation is a promise: "the label of the deformed image is the label of the
# original". Some deformations break it. A 6 turned upside down is a 9. A mirrored "b" is a
# "d". Let us *measure* which, instead of guessing, with a network that never saw a mirrored or
# turned letter: lesson 05's ResNet, trained on upright 32 x 32 glyphs of all 26 letters
# (slightly rotated and sheared, never mirrored or turned; recorded ahead of time:
# `python3 course.py pretrain resnet-glyphs` repeats it). We show it
# new glyphs upright, mirrored, upside down (a half turn) and turned by a quarter, and count per
# letter how often it still says the right letter.
#
# ### Exercise 4: accuracy per class
#
# Write `per_class_accuracy(predictions, labels, num_classes)`: a float tensor of
# `num_classes` values, for each class $c$ the share of the examples *whose true label is $c$*
# that were predicted $c$ (the recall of class $c$); NaN for a class without examples.
# `torch.bincount(..., minlength=num_classes)` counts per class.

# %%
def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor,
                       num_classes: int) -> torch.Tensor:
    """Share of each class's examples predicted right, (num_classes,) float; NaN if absent."""
    # TODO: count the examples and the right ones per true class; divide.
    ### BEGIN SOLUTION
    right = labels[predictions == labels]
    totals = torch.bincount(labels, minlength=num_classes).float()
    hits = torch.bincount(right, minlength=num_classes).float()
    return torch.where(totals > 0, hits / totals.clamp(min=1), torch.nan)
    ### END SOLUTION


# %%
per_class_accuracy = checks.check_per_class_accuracy(per_class_accuracy)

# %%
glyph_model, glyph_results, _ = load_pretrained("resnet-glyphs")
pictures, glyph_labels = glyphs.generate_glyphs(26 * GLYPH_TEST_PER_CLASS, seed=99)  # unseen
mean, std = (torch.tensor(glyph_results["normalisation"][key])[None, :, None, None]
             for key in ("mean", "std"))  # as in its training
glyph_images = ((torch.from_numpy(pictures).permute(0, 3, 1, 2) / 255 - mean) / std).to(cfg.device)
glyph_labels = torch.from_numpy(glyph_labels).to(cfg.device)
TURNS = {"upright": lambda x: x, "mirrored": lambda x: x.flip(-1),
         "upside down\n(half turn)": lambda x: torch.rot90(x, 2, dims=(-2, -1)),
         "quarter turn\n(90° left)": lambda x: torch.rot90(x, 1, dims=(-2, -1))}
recall, predicted = {}, {}
with torch.no_grad():
    for name, turn in TURNS.items():
        predicted[name] = few_labels.predict_probabilities(glyph_model, turn(glyph_images)).argmax(1)
        recall[name] = per_class_accuracy(predicted[name], glyph_labels, 26).cpu()
        print(f"{name.splitlines()[0]:>12}: {(predicted[name] == glyph_labels).float().mean():.1%} "
              f"of {len(glyph_labels):,} test glyphs right")

# %%
table = torch.stack(list(recall.values())).numpy()
fig, ax = plt.subplots(figsize=(10, 3.2))
shown_image = ax.imshow(table, cmap="viridis", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(26), list(glyphs.LETTERS), fontsize=10)
ax.set_yticks(range(len(TURNS)), list(TURNS), fontsize=10)
ax.set_title("Share of each letter's test glyphs still recognised after the deformation",
             fontsize=11)
fig.colorbar(shown_image, ax=ax, fraction=0.03, pad=0.01)
fig.tight_layout()
plt.show()

# %% [markdown]
# Does the pattern follow the letters' symmetries? Some capitals look the same in a mirror
# (A, H, I, M, O, T, U, V, W, X, Y), some look the same upside down (H, I, N, O, S, X, Z);
# no capital looks the same after a quarter turn. Here are the mean recalls of the two groups:

# %%
SYMMETRIC = {"mirrored": "AHIMOTUVWXY", "upside down\n(half turn)": "HINOSXZ"}
for name, letters in SYMMETRIC.items():
    same = torch.tensor([letter in letters for letter in glyphs.LETTERS])
    failing = [letter for letter in letters if recall[name][glyphs.LETTERS.index(letter)] < 0.5]
    print(f"{name.splitlines()[0]:>12}: the {same.sum()} letters with that symmetry "
          f"{recall[name][same].mean():.0%} recognised, the other {(~same).sum()} "
          f"{recall[name][~same].mean():.0%}; symmetric letters below 50%: "
          f"{', '.join(failing) or 'none'}")
    print(f"{'':>12}  the symmetric letters are recognised more often: "
          f"{'yes' if recall[name][same].mean() > recall[name][~same].mean() else 'no'}")

# %% [markdown]
# Where the verdict is yes, the symmetry explains the pattern. The exceptions printed (if any)
# are letters that are symmetric only in their skeleton: about half of the course's fonts
# slant their letters (italics), and serif fonts draw some strokes thicker than others (in a
# serif "M" the left stem is thin), so a mirror turns those details around. The letters without the symmetry become shapes
# that are no letter, or another letter. What does the network say for them? The most
# frequent answer for each letter after a half turn:

# %%
turned = predicted["upside down\n(half turn)"]
became = []
for letter in range(26):
    answers = turned[glyph_labels == letter]
    most = torch.bincount(answers, minlength=26).argmax().item()
    share = (answers == most).float().mean().item()
    became.append(f"{glyphs.LETTERS[letter]}->{glyphs.LETTERS[most]} ({share:.0%})")
print("upside down, the most frequent answer:")
for row in range(0, 26, 9):
    print("   " + "   ".join(became[row:row + 9]))

# %% [markdown]
# Some letters become other real letters: a turned M is a W and a turned W an M (look up the
# network's answers for them above). An augmentation that turns an M upside down and keeps the
# label "M" would teach the network that a W is an M. **The rule: a deformation may be used for augmentation only
# if the task's label is invariant under it.** Flipping is fine for cats and cars, not for
# letters; a half turn is fine for satellite images or cells under a microscope, not for
# digits, where 6 and 9 are each other's half turn.
#
# That last claim can be measured too. We train the lesson's ResNet twice from scratch on
# 20 labelled digits per class with shifts, small rotations and zooms (section 4's
# augmentation), once without and once *with* random half turns, and look at the 6s and 9s of
# the test set.

# %%
for name in ("from scratch + augmentation", "from scratch + augmentation + half turns"):
    model, run = few_labels.run_method(name, digits, HALF_TURN_BUDGET, steps=STEPS)
    predictions = few_labels.predict_probabilities(model, digits["test"][0]).argmax(1)
    recall_digits = per_class_accuracy(predictions, digits["test"][1], 10).cpu()
    test_labels = digits["test"][1]
    six_as_nine = ((predictions == 9) & (test_labels == 6)).sum().item()
    nine_as_six = ((predictions == 6) & (test_labels == 9)).sum().item()
    print(f"{name}: test accuracy {run['test_accuracy']:.1%}; recall of 6: "
          f"{recall_digits[6]:.0%}, of 9: {recall_digits[9]:.0%}; "
          f"6 called 9: {six_as_nine}, 9 called 6: {nine_as_six} "
          f"(of {(test_labels == 6).sum().item()} each)"
          + (f" [loaded: trained in {run['seconds']:.1f} s by an earlier run]" if run["cached"]
             else ""))
    if name.endswith("half turns"):
        record("06", "test accuracy with half turns, 20 labels per digit", run["test_accuracy"])

# %% [markdown]
# Why would half turns hurt? An upright 6 and a turned 9 are nearly the same picture, and with
# half turns in training the network sees that picture under both labels. For such an image it
# can only guess between the two, and the counts above say how often it guessed wrong on the
# test set, with and without half turns. The other digits pay too: every training image spends
# half its steps upside down, a view the test set never asks about.

# %% [markdown]
# ## 4. How much does augmentation buy?
#
# The protocol's first two methods differ only in augmentation. Both train the ResNet from
# random weights for the same number of steps on the $k$ labelled digits; the second deforms
# every image at every step with a random rotation of up to 15°, a zoom of 0.9 to 1.1 and a
# shift of up to 10% of the side (`augment.random_affine`: one `affine_grid` call for the whole
# batch, a different draw per image, on the device). The deformations are small because a
# digit is small: a 16 x 16 digit shifted by a quarter of its width starts to leave the image.
#
# These runs are short enough to train live, at three budgets (all four in the full profile).

# %%
print(f"augmentation: {few_labels.AUGMENTATION}")
live = []
for repeat in range(LIVE_REPEATS):
    for k in LIVE_BUDGETS:
        for name in ("from scratch", "from scratch + augmentation"):
            _, run = few_labels.run_method(name, digits, k, repeat=repeat, steps=STEPS)
            live.append(run)
            print(f"k={k:>3}, {name:<28} test {run['test_accuracy']:6.1%}  (train "
                  f"{run['train_accuracy']:.0%}; trained in {run['seconds']:.1f} s"
                  + (" by an earlier run, loaded)" if run["cached"] else ")"))
gains = {k: np.mean([run["test_accuracy"] for run in live
                     if run["k"] == k and run["method"].endswith("augmentation")])
         - np.mean([run["test_accuracy"] for run in live
                    if run["k"] == k and run["method"] == "from scratch"]) for k in LIVE_BUDGETS}
for k, gain in gains.items():
    print(f"augmentation's gain at k={k}: {gain:+.1%} (live)")
record("06", "test accuracy from scratch + augmentation, largest live budget",
       np.mean([run["test_accuracy"] for run in live if run["k"] == LIVE_BUDGETS[-1]
                and run["method"] == "from scratch + augmentation"]))

# %% [markdown]
# One run per budget is one draw of the labelled images and one initialisation; with 10 or 50
# labelled images, another draw can move the accuracy by several points. The recorded grid
# (`python3 course.py pretrain few-labels`, run ahead of time) repeats every method at every
# budget with other draws, with the same code and settings as the live runs.

# %%
_, grid_results, few_labels_provenance = load_pretrained("few-labels")
grid_runs = grid_results["runs"]


def summary(runs, target, method):
    """Budget -> (mean, min, max) of the test accuracy over the repeats of one method."""
    chosen = [run for run in runs if run["target"] == target and run["method"] == method]
    budgets = sorted({run["k"] for run in chosen})
    return {k: [f([run["test_accuracy"] for run in chosen if run["k"] == k])
                for f in (np.mean, np.min, np.max)] for k in budgets}


def plot_methods(ax, runs, target, methods, live_runs=()):
    for method, colour in zip(methods, plt.cm.tab10.colors):
        table = summary(runs, target, method)
        budgets = list(table)
        means, lows, highs = (np.array([table[k][i] for k in budgets]) for i in range(3))
        ax.plot(budgets, means, "o-", color=colour, label=method)
        ax.fill_between(budgets, lows, highs, color=colour, alpha=0.15)
        mine = [run for run in live_runs if run["method"] == method]
        ax.plot([run["k"] for run in mine], [run["test_accuracy"] for run in mine], "x",
                color=colour, markersize=10, markeredgewidth=2)
    ax.set(xscale="log", xlabel="labelled images per class", ylabel="test accuracy", ylim=(0, 1))
    ax.set_xticks(few_labels.BUDGETS[target], [str(k) for k in few_labels.BUDGETS[target]])
    ax.grid(alpha=0.3)


print(f"recorded by `{few_labels_provenance['command']}` in "
      f"{few_labels_provenance['wall_seconds'] / 60:.0f} min on "
      f"{few_labels_provenance['machine']['cpu_threads']} CPU threads "
      f"({few_labels_provenance['written'][:10]})")
scratch_methods = ["from scratch", "from scratch + augmentation"]
augmentation_gain = {}
for target in ("letters", "digits"):
    tables = [summary(grid_runs, target, method) for method in scratch_methods]
    augmentation_gain[target] = {k: tables[1][k][0] - tables[0][k][0] for k in tables[0]}
    for method, table in zip(scratch_methods, tables):
        cells = ", ".join(f"k={k}: {mean:.1%} ({low:.1%}-{high:.1%})"
                          for k, (mean, low, high) in table.items())
        print(f"{target:>7}, {method:<28} {cells}")
    print(f"{target:>7}, gain of augmentation: "
          + ", ".join(f"k={k}: {gain:+.1%}" for k, gain in augmentation_gain[target].items()))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
for ax, target in zip(axes, ("letters", "digits")):
    plot_methods(ax, grid_runs, target, scratch_methods, live if target == "digits" else ())
    ax.set_title(f"{target}: {GRID['repeats']} recorded repeats"
                 + ("; x: live" if target == "digits" else ""), fontsize=11)
axes[1].legend(fontsize=10, loc="lower right")
fig.suptitle(f"From scratch, with and without augmentation (line: mean of {GRID['repeats']}, "
             f"band: min to max)", fontsize=12)
fig.tight_layout()
plt.show()
for target, gains in augmentation_gain.items():
    helped = [k for k, gain in gains.items() if gain > 0]
    best = max(gains, key=gains.get)
    fitted = {method: np.mean([run["train_accuracy"] for run in grid_runs if run["target"] == target
                               and run["method"] == method and run["k"] == max(gains)])
              for method in scratch_methods}
    print(f"{target:>7}: augmentation raised the recorded mean at k = "
          f"{', '.join(map(str, helped)) or 'no budget'}; its largest gain {gains[best]:+.1%} at "
          f"k={best}. Training accuracy at k={max(gains)}: "
          + ", ".join(f"{method} {value:.0%}" for method, value in fitted.items()))

# %% [markdown]
# Read the printed lines target by target, with chance in mind: 1/13 = 7.7% for the letters,
# 10% for the digits. On the letters, a network trained from scratch stays near chance until it
# has tens of labels per letter (the glyphs are hard: any font, angle, colour and background),
# and augmentation does not change that. On the real digits the labelled images show each
# digit at one position, slant and size, and augmentation supplies the others: that is where a
# few labels gain the most from it. The glyphs are another story: their generator already
# rotates, scales, shears and shifts every letter at random, so the deformations add little
# that the labelled images do not show, and they make each training image harder to fit in the
# same number of steps (compare the training accuracies printed for the largest budget). An
# augmentation pays when it supplies a variation the test set has and the labelled images lack.
# It cannot invent what they do not show at all (another handwriting style); it only removes
# what they show by accident (a position, a slant, a thickness).
#
# ## 5. Synthetic data: labels for free
#
# Augmentation deforms real examples. Synthetic data goes further and *renders* labelled
# examples from a model of how the data is made: video-game engines produce street scenes whose
# every pixel is labelled for segmentation [Richter et al., 2016], and text typeset in many
# fonts trains text recognisers before they ever see a scanned page.
#
# The course's glyphs are such a generator, and a small one to read (`course_utils/glyphs.py`).
# It works in three steps, each a random draw from a seeded generator:
#
# 1. **shape**: draw the letter from one of the fonts that ship with matplotlib, as a mask of
#    ink (top row below, the same G in eight fonts);
# 2. **geometry**: scale, rotate, shear and shift the mask;
# 3. **appearance**: pick a letter colour that contrasts with a background cropped from a real
#    photo or texture, paste, and blur a little.
#
# The label is known by construction: it is the letter drawn in step 1. Every choice the
# generator makes at random is a variation the classifier learns to ignore, and every choice it
# never makes (handwriting, a letter cut by the border) is one the classifier never learns.

# %%
fonts = glyphs.font_paths()
print(f"{len(fonts)} fonts: " + ", ".join(path.stem for path in fonts))
font_pictures, font_labels = glyphs.generate_glyphs(260, seed=11)
same_letter = font_pictures[font_labels == glyphs.LETTERS.index("G")][:8]
fig, axes = plt.subplots(2, 8, figsize=(10, 3.2))
for ax, index in zip(axes[0], np.linspace(0, len(fonts) - 1, 8).round().astype(int)):
    ax.imshow(glyphs.render_characters(fonts[index], 48, "G")[0], cmap="gray_r")
    ax.set_title(fonts[index].stem.replace("DejaVu", "").replace("General", "")[:11], fontsize=10)
for ax, picture in zip(axes[1], same_letter):
    ax.imshow(picture)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("1. shape", fontsize=11)
axes[1, 0].set_ylabel("2-3. glyphs", fontsize=11)
fig.suptitle("The letter G: drawn from fonts (top), then rendered as glyphs with a random "
             "geometry and appearance", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# Can we do the same for our target, the handwritten digits? `generate_font_digits` renders
# digits from the fonts in the *format* of scikit-learn's: a 32 x 32 bitmap, slightly distorted
# and thickened, reduced to 8 x 8 counts of ink from 0 to 16, like the original scans. It makes
# as many as we like, with perfect labels, in a second. Real ones first, then rendered ones:

# %%
real_images = digits["raw"]["test"][:, 0].cpu()
real_labels = digits["test"][1].cpu()
rendered, rendered_labels = generate_font_digits(2_000, seed=4)
rendered_input = few_labels.to_network_input(torch.from_numpy(rendered / 16).float()[:, None])
fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
for digit in range(10):
    axes[0, digit].imshow(real_images[real_labels == digit][0], cmap="gray_r")
    axes[1, digit].imshow(rendered_input[rendered_labels == digit][0, 0], cmap="gray_r")
    axes[0, digit].set_title(str(digit), fontsize=11)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("real", fontsize=11)
axes[1, 0].set_ylabel("fonts", fontsize=11)
fig.tight_layout()
plt.show()
blank_real = (real_images < 0.02).float().mean().item()
blank_fonts = (rendered_input[:, 0] < 0.02).float().mean().item()
print(f"mean ink: real {real_images.mean():.3f}, fonts {rendered_input[:, 0].mean():.3f}; "
      f"blank pixels: real {blank_real:.0%}, fonts {blank_fonts:.0%}")

# %% [markdown]
# Side by side they look similar, and the printed statistics are close. The real test is what
# a network trained on rendered digits *alone* does on real handwriting. The recorded network
# `resnet-font-digits` is the lesson's ResNet trained on rendered digits and nothing else; we
# score it on other rendered digits and on the protocol's real test set. The difference is the
# **domain gap**.

# %%
font_model, font_results, _ = load_pretrained("resnet-font-digits")
font_settings = get_recipe("resnet-font-digits").settings
font_test = few_labels.font_digit_data(font_settings["test_images"],
                                       seed=font_settings["seed"] + 2)["pool"]  # the recipe's
on_fonts = few_labels.accuracy(font_model, *font_test)
on_real = few_labels.accuracy(font_model, *digits["test"])
print(f"trained on {font_settings['num_images']:,} font digits only: {on_fonts:.1%} on other "
      f"font digits, {on_real:.1%} on the real handwritten test digits: a gap of "
      f"{on_fonts - on_real:.1%}")
record("06", "font digits only, real test accuracy", on_real)
font_mean, font_std = (torch.tensor(font_results["normalisation"][key])[None, :, None, None]
                       for key in ("mean", "std"))
as_fonts = ((digits["raw"]["test"] - font_mean) / font_std).to(cfg.device)
print(f"the same real digits normalised with the font digits' statistics instead of their own: "
      f"{few_labels.accuracy(font_model, as_fonts, digits['test'][1]):.1%}")
font_predictions = few_labels.predict_probabilities(font_model, digits["test"][0]).argmax(1)
font_recall = per_class_accuracy(font_predictions, digits["test"][1], 10).cpu()
print("recall per real digit: " + ", ".join(f"{d}: {r:.0%}" for d, r in enumerate(font_recall)))
print(f"lowest: {', '.join(str(d) for d in font_recall.argsort()[:3].tolist())}")

# %% [markdown]
# Every set is normalised with its own mean and standard deviation, which already adapts a
# little to the new domain (brightness and contrast); the second line shows what the font
# statistics alone would give. Each recall is one digit's share of real test images classified
# right by the font network. Find the lowest three in the figure of real digits above:
# handwriting adds and drops details that printed digits never have (a flag and a foot on a 1,
# a bar across a 7, a 9 whose loop sits on a straight stick, a 4 left open at the top).
# Synthetic data is only as good as its model of the real data, and the fonts do not write like
# the 13 people whose forms these digits come from.
#
# But it need not be used alone. Its best use with few labels is as a starting point: train on
# the rendered digits, then **fine-tune** on the $k$ real labels with a low learning rate, so
# the network adapts to handwriting without forgetting what the fonts taught. Part 2 explains
# fine-tuning in depth; here it is one more method of the protocol, live at the smallest of this
# run's budgets and recorded at all of them:

# %%
k = LIVE_BUDGETS[0]
_, synthetic_run = few_labels.run_method("font digits, fine-tuned", digits, k, steps=STEPS)
scratch_run = next(run for run in live if run["k"] == k and run["method"] == "from scratch")
print(f"k={k}: from scratch {scratch_run['test_accuracy']:.1%}, font digits then fine-tuned "
      f"{synthetic_run['test_accuracy']:.1%} (live)")
live.append(synthetic_run)
record("06", "font digits fine-tuned, smallest live budget", synthetic_run["test_accuracy"])

fig, ax = plt.subplots(figsize=(8, 4.2))
methods = ["from scratch", "from scratch + augmentation", "font digits, fine-tuned"]
plot_methods(ax, grid_runs, "digits", methods, live)
ax.axhline(on_real, color="grey", ls="--", label="font digits only (0 real labels)")
ax.set_title(f"Digits: recorded means and ranges of {GRID['repeats']} repeats; x: live",
             fontsize=11)
ax.legend(fontsize=10, loc="lower right")
fig.tight_layout()
plt.show()
for method in methods[1:]:
    cells = ", ".join(f"k={k}: {mean - summary(grid_runs, 'digits', 'from scratch')[k][0]:+.1%}"
                      for k, (mean, _, _) in summary(grid_runs, "digits", method).items())
    print(f"{method} vs from scratch (recorded means): {cells}")

# %% [markdown]
# The dashed line is the font network without a single real label. How far above the
# scratch network the fine-tuned one starts, and where the curves meet, is what synthetic data
# is worth here: the printed differences say it per budget. Where the difference shrinks as the
# budget grows, the real labels are taking over: synthetic data is worth the most where real
# labels are fewest, and the gap it leaves has to be closed by real data.
#
# ## Summary
#
# * A fair comparison of few-label methods needs one protocol: fixed test set, nested label
#   budgets, several draws. With 10 labelled images a single run is an anecdote.
# * Data augmentation turns what we know about the task's invariances into training examples.
#   torchvision's transforms v2 cover most of SimCLR's deformations; Sobel filtering and cutout
#   are a convolution and a slice.
# * A deformation is an augmentation only if the label is invariant under it: a half turn
#   makes an M a W and a 6 a 9, and section 3 measured what training with it costs.
# * Synthetic data renders labelled examples from a model of the data; the domain gap is the
#   price of the model's mistakes, and fine-tuning on a few real labels closes part of it.
#
# Part 2 uses the labels of another dataset (transfer learning and fine-tuning) and the
# unlabelled pool (pseudo-labels), and puts every method of the lesson on one plot.
#
# ## References
#
# * T. Chen, S. Kornblith, M. Norouzi, G. Hinton. A Simple Framework for Contrastive Learning of
#   Visual Representations (SimCLR). ICML 2020.
# * T. DeVries, G. W. Taylor. Improved Regularization of Convolutional Neural Networks with
#   Cutout. arXiv:1708.04552, 2017.
# * I. Sobel, G. Feldman. A 3x3 Isotropic Gradient Operator for Image Processing. 1968.
# * S. R. Richter, V. Vineet, S. Roth, V. Koltun. Playing for Data: Ground Truth from Computer
#   Games. ECCV 2016.
# * C. Shorten, T. M. Khoshgoftaar. A survey on Image Data Augmentation for Deep Learning.
#   Journal of Big Data, 2019.
