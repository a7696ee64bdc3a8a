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
# # Lesson 06 · Few labels, part 2: transfer, fine-tuning and pseudo-labels
#
# Part 1 made more labelled examples out of the few we had, by deforming them or by rendering
# new ones. This part borrows from elsewhere. Someone else may have labelled a *different*
# dataset by the million: a network trained on it has learned edges, strokes, textures and
# parts, and most of that is useful for our task too. And our own task comes with many images
# nobody has labelled: a network can label them itself, carefully.
#
# The protocol is part 1's: the same three target tasks (letters N to Z, real digits, faces),
# the same fixed test sets, budgets of 1 to 100 labels per class, the same small ResNet
# trained for the same number of steps. Every number is a test accuracy on those sets.
#
# **You will learn**
#
# 1. pre-training on a source task, and how to look at what its features know;
# 2. adapting a pretrained network: a new head, a frozen backbone or not, and why the learning
#    rate must be low;
# 3. linear probe vs fine-tuning the top vs fine-tuning everything vs training from scratch,
#    across label budgets, on close and far targets: the notes' advice, measured;
# 4. pseudo-labelling: a model labels the unlabelled pool, and how its mistakes feed back;
# 5. every method of the lesson on one plot.
#
# Exercises are checked as before: NOT DONE (the reference is used), WRONG (what failed, with a
# hint), PASSED.

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from course_utils import few_labels, finetune, setup
from course_utils.cache import throughput
from course_utils.data import DatasetNotAvailableError
from course_utils.config import seeded
from course_utils.exercises import lesson06 as checks
from course_utils.pretrained import get_recipe, load_pretrained
from course_utils.results import record

cfg = setup(seed=0)

# %%
# Sizes of the live runs. The quick profile trains each method at two label budgets (LIVE_K)
# and shows the recorded grid for the others; the full one trains three budgets live. `capped`
# only applies to the capped test run of the full profile (COURSE_CAPPED=1).
GRID = get_recipe("few-labels").settings  # the recorded grid's settings
PSEUDO = GRID["pseudo_labels"]            # where and how the grid pseudo-labels
STEPS = cfg.pick(quick=GRID["steps"], full=GRID["steps"], capped=10)
LIVE_K = cfg.pick(quick=[1, 5], full=[1, 5, 20], capped=[1])
DEMO_K = cfg.pick(quick=5, full=5, capped=1)  # the budget of sections 3 and 5's close looks
# Where the recorded grid had the high learning rate ahead: the low one trained 3x longer.
LONGER_CASES = cfg.pick(quick=[("digits", 5)], full=[("digits", 5), ("letters", 100)],
                        capped=[("digits", 1)])
TARGETS = ("letters", "digits", "faces")
TRANSFER = ["linear probe", "fine-tune top", "fine-tune all, low lr", "fine-tune all, high lr"]
# True: section 7 also runs the protocol on CIFAR-10 with torchvision's ImageNet weights (a
# 170 MB and a 45 MB download, once). The full profile runs it whenever both are already on
# disk (`python -m course_utils.data download cifar10 imagenet-resnet18`).
CIFAR10 = False

# %% [markdown]
# ## 1. Pre-training: a network that knows letters
#
# The *source* task is the glyphs of the letters A to M: 10,400 images, labels for free since
# we generate them. The lesson's ResNet was trained on them ahead of time (it takes minutes on
# a CPU, so it is recorded: `python3 course.py pretrain resnet-glyphs-a-m` repeats it). The
# letters N to Z were kept out: they are the *close* target, same kind of images, classes the
# network has never seen.

# %%
source_model, source_results, source_provenance = load_pretrained("resnet-glyphs-a-m")
source_settings = get_recipe("resnet-glyphs-a-m").settings
print(f"source network: {sum(p.numel() for p in source_model.parameters()):,} parameters, "
      f"{source_settings['steps']:,} steps of {source_settings['batch_size']} glyphs of "
      f"{source_settings['letters']}; test accuracy {source_results['test_accuracy']['glyphs']:.1%} "
      f"(recorded {source_provenance['written'][:10]}, {source_provenance['wall_seconds']:.0f} s "
      f"on {source_provenance['machine']['cpu_threads']} CPU threads)")
targets = {name: few_labels.target_data(name) for name in TARGETS}

losses = np.array(source_results["step_loss"])
smooth = np.convolve(losses, np.ones(50) / 50, mode="valid")
fig, axes = plt.subplots(2, 1, figsize=(10, 5.4), gridspec_kw={"height_ratios": [2.2, 1]})
axes[0].plot(losses, color="lightgrey", label="every step")
axes[0].plot(np.arange(len(smooth)) + 25, smooth, color="C0", label="mean of 50")
axes[0].set(yscale="log", xlabel="step", ylabel="training loss",
            title="Recorded pre-training on A-M")
axes[0].legend(fontsize=10)
axes[1].axis("off")
strip = []
for name in TARGETS:
    raw, labels = targets[name]["raw"]["pool"], targets[name]["pool"][1].cpu()
    for label in range(min(4, len(targets[name]["class_names"]))):
        images = raw[labels == label]
        # the first of each class; for faces the most contrasted (many non-faces are flat)
        image = images[images.std(dim=(1, 2, 3)).argmax()] if name == "faces" else images[0]
        strip.append(1 - image if name == "digits" else image)  # digits: dark ink on white
axes[1].imshow(torch.cat([nn.functional.pad(image, (1, 1, 1, 1), value=1) for image in strip],
                         dim=2).permute(1, 2, 0).numpy())
axes[1].set_title("The targets (16 x 16): letters N-Q, digits 0-3, a non-face and a face",
                  fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# What has the network learned that could serve the targets? Everything but its last layer
# computes *features*: for the course ResNet, the 80 channels of the last block averaged over
# the image (global average pooling). The head is one linear layer from those 80 numbers to the
# 13 letters. If the features are good for a new task, a new linear layer on top of them is
# enough: that is the **linear probe**.
#
# ### Exercise 1: the features before the head
#
# Write `extract_features(model, images)`: the course ResNet's pooled features,
# `model.stages(model.stem(images)).mean(dim=(2, 3))`, shape $(N, 80)$. Two details decide
# whether they are right. Call `model.eval()` first: in training mode BatchNorm normalises with
# the batch's own statistics and *updates* its running averages, so merely looking would
# change the network. And compute inside `torch.no_grad()`: we want numbers, not a graph for
# backpropagation. The model stays in eval mode afterwards; training code calls
# `model.train()` again before it trains (the course's `fit` does it at every epoch).

# %%
def extract_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The course ResNet's globally average-pooled features (N, C), in eval mode, no grad."""
    # TODO: eval mode; without gradient, stem, stages, mean over height and width.
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        return model.stages(model.stem(images)).mean(dim=(2, 3))
    ### END SOLUTION


# %%
extract_features = checks.check_extract_features(extract_features)

# %% [markdown]
# A first, training-free test of the features: give each class the mean feature vector of its
# $k = 5$ labelled images (its *centroid*), and classify every test image by its nearest
# centroid. We compare the pretrained network's features with those of the same network at
# its random initialisation, and with the raw pixels.

# %%
def nearest_centroid_accuracy(train_features, train_labels, test_features, test_labels):
    centroids = torch.stack([train_features[train_labels == label].mean(dim=0)
                             for label in range(int(train_labels.max()) + 1)])
    predictions = torch.cdist(test_features, centroids).argmin(dim=1)
    return (predictions == test_labels).float().mean().item()


with seeded(0):
    random_model = few_labels.build_resnet(13).to(cfg.device)
centroid = {}
for name, data in targets.items():
    chosen = few_labels.labelled_subset(data, 5, repeat=0)
    train_images, train_labels = data["pool"][0][chosen], data["pool"][1][chosen]
    test_images, test_labels = data["test"]
    kinds = {"pixels": lambda x: x.flatten(1),
             "random network": lambda x: extract_features(random_model, x),
             "pretrained on A-M": lambda x: extract_features(source_model, x)}
    centroid[name] = {kind: nearest_centroid_accuracy(f(train_images), train_labels,
                                                      f(test_images), test_labels)
                      for kind, f in kinds.items()}
    better = centroid[name]["pretrained on A-M"] > max(centroid[name]["pixels"],
                                                       centroid[name]["random network"])
    print(f"{name:>7}, 5 labels per class, nearest centroid on: "
          + ", ".join(f"{kind} {accuracy:.1%}" for kind, accuracy in centroid[name].items())
          + f" (chance {1 / len(data['class_names']):.0%}); pretrained features best: "
          + ("yes" if better else "no"))
record("06", "nearest centroid on pretrained features, letters, k=5",
       centroid["letters"]["pretrained on A-M"])

# %% [markdown]
# Where the pretrained features beat the pixels and the random network, the source task taught
# something the target can use without any training. Read the verdicts target by target: they
# need not agree. Features that separate glyphs on cluttered photo backgrounds are made for
# such images; the real digits are clean, centred, grey strokes on white, where the pixels
# themselves are already a good description, and a face is not made of strokes at all. How
# close a target is to the source decides how much its features are worth, and section 4
# measures it with training. A picture of the letters' case:
# the features of the letters N to Z, projected on their two main directions (PCA), from the
# random and from the pretrained network. The letters were never shown to either.

# %%
letters = targets["letters"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (title, model) in zip(axes, (("random network", random_model),
                                     ("pretrained on A-M", source_model))):
    features = extract_features(model, letters["test"][0]).cpu()
    centred = features - features.mean(dim=0)
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ directions[:2].T
    labels = letters["test"][1].cpu()
    for label, letter in enumerate(letters["class_names"]):
        points = projected[labels == label]
        ax.scatter(points[:, 0], points[:, 1], s=10, color=plt.cm.tab20(label), alpha=0.7)
        centre = points.mean(dim=0)
        ax.text(centre[0], centre[1], letter, fontsize=12, fontweight="bold", ha="center",
                va="center", color="black")
    ax.set(title=f"features of the test letters N-Z: {title}", xlabel="PCA direction 1",
           ylabel="PCA direction 2", xticks=[], yticks=[])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Adapting a pretrained network
#
# **Why the head is replaced.** The source network's head maps 80 features to 13 scores, one
# per letter A to M. The target has other classes (N to Z, or 10 digits, or face / non-face):
# the old head's outputs mean nothing for them, and their number may differ. So the head is
# thrown away and a new, randomly initialised linear layer with one output per target class
# takes its place. What is kept is the *backbone*, everything below the head.
#
# Then there is a choice of how much of the backbone to train:
#
# * **linear probe**: freeze the whole backbone, train only the new head. Few parameters,
#   hardly any risk of overfitting, but the features must already suit the task.
# * **fine-tune the top**: also train the last block, the most task-specific layers.
# * **fine-tune all**: train everything, starting from the pretrained weights.
#
# ### Exercise 2: freeze the backbone, replace the head
#
# Write `prepare_linear_probe(model, num_classes)`: replace `model.head` by
# `nn.Linear(model.head.in_features, num_classes)` on the old head's device (`.to(...)` its
# weight's device: the rest of the model may be on a GPU), set `requires_grad = False` on every
# parameter except the new head's, and return the model (changed in place). The backbone's
# weights must not change.

# %%
def prepare_linear_probe(model: nn.Module, num_classes: int) -> nn.Module:
    """A new head of num_classes outputs; every other parameter frozen. Returns model."""
    # TODO: a new nn.Linear head; requires_grad False everywhere but in the head.
    ### BEGIN SOLUTION
    device = model.head.weight.device
    model.head = nn.Linear(model.head.in_features, num_classes).to(device)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith("head.")
    return model
    ### END SOLUTION


# %%
prepare_linear_probe = checks.check_freeze_and_replace_head(prepare_linear_probe)

# %% [markdown]
# How many numbers each choice lets the optimiser change, for the 13 target letters
# (`few_labels.prepare` does the freezing with the package's `finetune.freeze`):

# %%
probe = prepare_linear_probe(copy.deepcopy(source_model), 13)
print(f"linear probe (yours): {finetune.count_trainable(probe):,} trainable parameters: "
      f"{', '.join(finetune.trainable_parameters(probe))}")
for name in ("fine-tune top", "fine-tune all, low lr"):
    model = few_labels.source_network("glyphs", 13)
    few_labels.prepare(model, few_labels.METHODS[name])
    print(f"{name}: {finetune.count_trainable(model):,} of "
          f"{sum(p.numel() for p in model.parameters()):,} parameters trainable")

# %% [markdown]
# **Why the learning rate is usually kept low.** At the start of fine-tuning the new head is random, so
# the gradients it sends down into the backbone point in directions that have little to do
# with the new task. A learning rate suited to training from scratch lets these first steps move
# the pretrained weights far from where pre-training put them, and what they knew is partly
# lost before the head has learned anything (Kumar et al. [2022] show the distortion this
# causes, and that training the head first avoids it). A low learning rate for the backbone
# keeps it near the pretrained solution; the new head, which starts from nothing, can learn
# faster. Optimisers take such *parameter groups*, each with its own learning rate.
#
# ### Exercise 3: two learning rates
#
# Write `fine_tuning_optimizer(model, *, backbone_lr, head_lr)`: a `torch.optim.AdamW` with two
# parameter groups, `{"params": [...], "lr": backbone_lr}` for the trainable parameters of
# everything but `model.head`, and `{"params": [...], "lr": head_lr}` for the head's. Leave out
# frozen parameters (`requires_grad` False) and keep AdamW's default weight decay.

# %%
def fine_tuning_optimizer(model: nn.Module, *, backbone_lr: float,
                          head_lr: float) -> torch.optim.Optimizer:
    """AdamW: the backbone's trainable parameters at backbone_lr, the head's at head_lr."""
    # TODO: split the trainable parameters by name (head or not); one group each.
    ### BEGIN SOLUTION
    backbone, head = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (head if name.startswith("head.") else backbone).append(parameter)
    return torch.optim.AdamW([{"params": backbone, "lr": backbone_lr},
                              {"params": head, "lr": head_lr}])
    ### END SOLUTION


# %%
fine_tuning_optimizer = checks.check_fine_tuning_optimizer(fine_tuning_optimizer)

# %% [markdown]
# ## 3. Four ways to adapt, and training from scratch, live
#
# The lesson's methods, with their learning rates (`few_labels.METHODS`). "Low lr" builds the
# optimiser you just wrote, with the backbone ten times slower than the head (`few_labels`
# uses the package's `finetune.parameter_groups`, which makes the same two groups):

# %%
for name in ["from scratch"] + TRANSFER:
    method = few_labels.METHODS[name]
    print(f"{name:<24} start from {'glyphs A-M' if method.init == 'glyphs' else 'random':<10} "
          f"train {method.train:<4} lr {method.lr:g}"
          + (f", head lr {method.head_lr:g}" if method.head_lr else ""))

# %% [markdown]
# Each method trains for the same number of steps on the same labelled images. Here they are at
# this run's budget on all three targets (the full profile trains more budgets live).

# %%
live, live_models = [], {}
for k in LIVE_K:
    for target, data in targets.items():
        for name in ["from scratch"] + TRANSFER:
            model, run = few_labels.run_method(name, data, k, steps=STEPS)
            live.append({"target": target, **run})
            live_models[target, name, k] = model
        scores = ", ".join(f"{run['method']} {run['test_accuracy']:.1%}" for run in live[-5:])
        print(f"{target:>7}, k={k}: {scores}"
              + (" [loaded: trained by an earlier run]" if all(r["cached"] for r in live[-5:])
                 else ""))
images_per_second = np.mean([throughput(run) for run in live])
print(f"{len(live)} runs of {STEPS} steps each, trained at {images_per_second:,.0f} images/s on "
      f"average on {cfg.device}")
record("06", "linear probe, letters, demo budget (live)",
       next(r["test_accuracy"] for r in live if r["target"] == "letters"
            and r["method"] == "linear probe" and r["k"] == DEMO_K))
record("06", "from scratch, letters, demo budget (live)",
       next(r["test_accuracy"] for r in live if r["target"] == "letters"
            and r["method"] == "from scratch" and r["k"] == DEMO_K))

# %% [markdown]
# How far did fine-tuning move the pretrained weights? For the two "fine-tune all" runs, the
# change of the backbone's weights relative to their size, $\lVert w - w_0 \rVert /
# \lVert w_0 \rVert$, layer by layer from the input to the last block:

# %%
start = dict(few_labels.source_network("glyphs", 13).named_parameters())
fig, ax = plt.subplots(figsize=(9, 3.6))
for name, colour in (("fine-tune all, low lr", "C2"), ("fine-tune all, high lr", "C3")):
    model = live_models["letters", name, DEMO_K]
    names, changes = [], []
    for parameter_name, parameter in model.named_parameters():
        if parameter.ndim == 4:  # the convolutions' kernels
            before = start[parameter_name].detach().to(parameter.device)
            changes.append(((parameter.detach() - before).norm() / before.norm()).item())
            names.append(parameter_name.replace(".weight", "").replace("stages.", "block "))
    ax.plot(changes, "o-", color=colour, label=name)
    print(f"{name}: median relative change {np.median(changes):.1%}")
ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=10)
ax.set(ylabel="relative change", title=f"Letters, k={DEMO_K}: how far each convolution moved")
ax.legend(fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Across label budgets: the recorded grid
#
# One draw at one budget says little. The recorded grid (`python3 course.py pretrain
# few-labels`, run ahead of time with the same code) trains every method at every budget on
# every target, several times with different labelled draws and initialisations (the printed
# settings say how many).

# %%
_, grid_results, grid_provenance = load_pretrained("few-labels")
grid_runs = grid_results["runs"]
print(f"recorded: {len(grid_runs)} trainings in {grid_provenance['wall_seconds'] / 60:.0f} min on "
      f"{grid_provenance['machine']['cpu_threads']} CPU threads ({grid_provenance['written'][:10]}); "
      f"{GRID['repeats']} repeats of {GRID['steps']} steps each")


def summary(target, method, runs=grid_runs):
    """Budget -> (mean, min, max) test accuracy over the recorded repeats of one method."""
    chosen = [run for run in runs if run["target"] == target and run["method"] == method
              and run.get("series") != "pseudo-labels (threshold sweep)"]
    return {k: [f([run["test_accuracy"] for run in chosen if run["k"] == k])
                for f in (np.mean, np.min, np.max)]
            for k in sorted({run["k"] for run in chosen})}


def plot_methods(ax, target, methods, live_runs=()):
    for method in methods:
        colour = METHOD_COLOURS[method]
        table = summary(target, method)
        budgets = list(table)
        means, lows, highs = (np.array([table[k][i] for k in budgets]) for i in range(3))
        ax.plot(budgets, means, "o-", color=colour, label=method)
        ax.fill_between(budgets, lows, highs, color=colour, alpha=0.12)
        mine = [run for run in live_runs if run["method"] == method and run["target"] == target]
        ax.plot([run["k"] for run in mine], [run["test_accuracy"] for run in mine], "x",
                color=colour, markersize=10, markeredgewidth=2)
    ax.set(xscale="log", xlabel="labelled images per class", ylim=(0, 1.02))
    ax.set_xticks(few_labels.BUDGETS[target], [str(k) for k in few_labels.BUDGETS[target]])
    ax.grid(alpha=0.3)


ALL_METHODS = ["from scratch", "from scratch + augmentation",
               "from scratch + augmentation + half turns", "font digits, fine-tuned"] + TRANSFER
ALL_METHODS += ["pseudo-labels (round 1)", "pseudo-labels (round 2)"]
METHOD_COLOURS = dict(zip(ALL_METHODS, plt.cm.tab10.colors))
shown = ["from scratch"] + TRANSFER
fig, axes = plt.subplots(1, 3, figsize=(10, 3.9), sharey=True)
for ax, target in zip(axes, TARGETS):
    plot_methods(ax, target, shown, live)
    ax.set_title(target, fontsize=11)
axes[0].set_ylabel("test accuracy")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=10)
fig.suptitle(f"Transfer from glyphs A-M (line: mean of {GRID['repeats']}, band: min-max; "
             f"x: this run, live)", fontsize=12)
fig.tight_layout(rect=(0, 0.13, 1, 1))
plt.show()
for target in TARGETS:
    print(f"{target}:")
    for method in shown:
        print(f"   {method:<24}" + "  ".join(f"k={k}: {mean:6.1%}"
                                            for k, (mean, _, _) in summary(target, method).items()))
    probe_wins = [k for k, (mean, _, _) in summary(target, "linear probe").items()
                  if mean > summary(target, "from scratch")[k][0]]
    print(f"   the linear probe beats training from scratch at k = "
          f"{', '.join(map(str, probe_wins)) or 'no budget'}")

# %% [markdown]
# The low rate keeps the network close to what pre-training made of it, as section 3's weights
# plot showed. But close is only good if the source's solution is also good for the target, and
# in the grid's few steps the high rate was ahead in several places (the tables above). Is the
# low rate wrong there, or only slow? Train it again with three times the steps where the
# recorded grid had the high rate ahead (LONGER_CASES in the settings cell: one case in the
# quick profile, two in the full one), and compare with both recorded means:

# %%
for target, k in LONGER_CASES:
    _, run = few_labels.run_method("fine-tune all, low lr", targets[target], k, steps=3 * STEPS)
    recorded = {name: summary(target, name)[k][0]
                for name in ("fine-tune all, low lr", "fine-tune all, high lr")}
    verdict = ("closes the gap" if run["test_accuracy"] >= recorded["fine-tune all, high lr"]
               else "does not close the gap")
    print(f"{target}, k={k}: low lr with {3 * STEPS} steps {run['test_accuracy']:.1%} (live); "
          f"recorded with {GRID['steps']} steps: low lr {recorded['fine-tune all, low lr']:.1%}, "
          f"high lr {recorded['fine-tune all, high lr']:.1%}: three times the steps {verdict}")

# %% [markdown]
# Where more steps close the gap, the low rate was only slow: the classic advice assumes a long
# fine-tuning, and the grid's are short. Where they do not, the target wants features further
# from the source's than a small rate can reach in that time. Either way, the learning rate of
# fine-tuning is a setting to measure on the validation set, not a rule.

# %% [markdown]
# The notes arrange the advice for transfer in a 2 x 2 picture: is the target semantically
# *close* to the source or *far*, and is there *little* or *much* target data? Here it is
# filled in with the recorded means, with three distances instead of two: the best method in
# each cell and its margin over training from scratch, with "few" the budget of 5 labels per
# class and "much" the largest one.

# %%
cells = {}
for target in ("letters", "digits", "faces"):
    for amount, k in (("few", 5), ("much", few_labels.BUDGETS[target][-1])):
        means = {method: summary(target, method)[k][0] for method in shown}
        best = max(means, key=means.get)
        cells[target, amount] = (best, means[best], means[best] - means["from scratch"], k)
for target, distance in (("letters", "close (letters N-Z)"), ("digits", "farther (digits)"),
                         ("faces", "far (faces)")):
    for amount in ("few", "much"):
        best, mean, gain, k = cells[target, amount]
        print(f"{distance:>20}, {amount:>4} labels (k={k:>3}): best {best:<24} {mean:6.1%}, "
              f"{gain:+6.1%} over from scratch")
record("06", "best transfer gain over scratch, letters, k=5", cells["letters", "few"][2])

# %% [markdown]
# Compare with the notes' advice. **Semantically close**: keep the pretrained layers; with few
# labels train little on top, and only the new head has to differ when the classes do. **With
# enough target data**: fine-tune the transferred layers too (all of them, or the top ones), at
# a low learning rate. To this the course adds what Yosinski et al. [2014] measured: the top
# layers are the most specific to the source task, so for a *far* target they transfer worst,
# and with enough data, fine-tuning everything or training from scratch can win. The printed
# table is this run's evidence for each cell; where it disagrees with the advice, the grid above
# shows by how much and how reliable the difference is (the bands are the spread of the draws).
#
# One more comparison is worth reading in the printed tables: how well does training from
# scratch already do on the faces (face or not) with few labels? The less room it leaves, the
# less transfer can add.
#
# ## 5. Pseudo-labels: using the unlabelled pool
#
# The pool holds far more images than the $k$ labelled ones. Pseudo-labelling (self-training
# [Lee, 2013]) puts them to work: train a model on the labelled images, let it predict the
# unlabelled ones, keep the predictions it is *confident* about as if they were labels, and
# train again on labels + pseudo-labels. Repeat if it helps.
#
# The danger is in "as if they were labels": a confident mistake becomes a training label, the
# next model learns it, and grows more confident in it. This **confirmation bias** [Arazo et
# al., 2020] is why only confident predictions are kept, and why the threshold matters.
#
# ### Exercise 4: select the confident predictions
#
# Write `select_pseudo_labels(probabilities, threshold)`: for softmax outputs $(N, C)$, return
# `(indices, labels)`: the row numbers whose largest probability is at least `threshold`
# (`>=`), sorted, and the predicted class of each of those rows, both int64. When no row
# qualifies, return two empty int64 tensors of shape `(0,)`.

# %%
def select_pseudo_labels(probabilities: torch.Tensor,
                         threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, labels) of the rows whose largest probability is >= threshold."""
    # TODO: largest probability and its class per row; keep rows at or above the threshold.
    ### BEGIN SOLUTION
    confidence, predicted = probabilities.max(dim=1)
    indices = (confidence >= threshold).nonzero().flatten()
    return indices, predicted[indices]
    ### END SOLUTION


# %%
select_pseudo_labels = checks.check_select_pseudo_labels(select_pseudo_labels)

# %% [markdown]
# The grid pseudo-labels the letters, with "fine-tune top" as the teacher. Here is the live
# teacher of section 3 at the demo budget (DEMO_K labels per class): how many of the unlabelled letters it
# would keep at each threshold, and how many of those are right (which we can score because
# the pool's true labels are known to us, never to the method). With few labels the teacher
# may keep nothing at a high threshold; the curve then stops.

# %%
teacher = live_models[PSEUDO["target"], PSEUDO["teacher"], DEMO_K]
data = targets[PSEUDO["target"]]
chosen = few_labels.labelled_subset(data, DEMO_K, repeat=0)
unlabelled = torch.ones(len(data["pool"][1]), dtype=torch.bool, device=chosen.device)
unlabelled[chosen] = False
pool_images, pool_labels = data["pool"][0][unlabelled], data["pool"][1][unlabelled]
probabilities = few_labels.predict_probabilities(teacher, pool_images)
thresholds = np.linspace(0, 0.99, 34)
kept, right = [], []
for threshold in thresholds:
    indices, labels = select_pseudo_labels(probabilities, float(threshold))
    kept.append(len(indices) / len(pool_labels))
    right.append((labels == pool_labels[indices]).float().mean().item() if len(indices) else np.nan)
fig, ax = plt.subplots(figsize=(8, 3.8))
ax.plot(thresholds, kept, label="share of the pool kept")
ax.plot(thresholds, right, label="share of kept pseudo-labels that are right")
ax.axvline(PSEUDO["threshold"], color="grey", ls="--", label=f"grid's threshold {PSEUDO['threshold']}")
ax.set(xlabel="confidence threshold", ylim=(0, 1.02),
       title=f"Teacher '{PSEUDO['teacher']}', {PSEUDO['target']}, k={DEMO_K}: "
             f"{len(pool_labels):,} unlabelled images")
ax.legend(fontsize=10)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
at = int(np.argmin(np.abs(thresholds - PSEUDO["threshold"])))
print(f"at threshold {thresholds[at]:.2f}: {kept[at]:.0%} of the pool kept, {right[at]:.1%} of "
      f"them right; at 0: every image kept, {right[0]:.1%} right (the teacher's accuracy on the pool)")

# %% [markdown]
# A higher threshold keeps fewer pseudo-labels; whether they are also more often right, and by
# how much, the second curve says. Now one round, live: a new student of the same method trained on the $k$
# labels plus the pseudo-labels above the grid's threshold.

# %%
rounds = few_labels.pseudo_label_rounds(data, DEMO_K, threshold=PSEUDO["threshold"], rounds=1,
                                        steps=STEPS, teacher=PSEUDO["teacher"])
for result in rounds:
    extra = (f"{result['kept']:,} pseudo-labels, {result['pseudo_label_accuracy']:.1%} right"
             if result["round"] else "labels only")
    print(f"round {result['round']} ({extra}): test accuracy {result['test_accuracy']:.1%}")
record("06", "pseudo-labels round 1, letters, demo budget (live)", rounds[1]["test_accuracy"])

# %% [markdown]
# Which confident pseudo-labels are wrong? These are the wrongly labelled images kept at the
# threshold, with the teacher's label and the truth: each is now a training example that
# teaches the student the teacher's mistake.

# %%
indices, labels = select_pseudo_labels(probabilities, PSEUDO["threshold"])
wrong = indices[labels != pool_labels[indices]][:8]
if len(wrong):
    fig, axes = plt.subplots(1, len(wrong), figsize=(1.25 * len(wrong), 1.9), squeeze=False)
    raw_pool = data["raw"]["pool"][unlabelled.cpu()]
    names = data["class_names"]
    for ax, index in zip(axes[0], wrong.tolist()):
        ax.imshow(raw_pool[index].permute(1, 2, 0).numpy())
        ax.set_title(f"said {names[probabilities[index].argmax()]}\nis {names[pool_labels[index]]}",
                     fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    plt.show()
print(f"{(labels != pool_labels[indices]).sum().item()} of {len(indices)} kept pseudo-labels "
      f"are wrong")

# %% [markdown]
# The recorded grid ran rounds at a threshold fixed in advance (0.9 is a common first choice,
# and it is the one of the live round above) for every budget, and one round at several
# thresholds for one budget, for each draw (the titles give the numbers). The sweep is how the
# threshold should be chosen: by the validation set, without touching the test set. The
# threshold with the best mean validation accuracy is marked; where it is lower than the fixed
# one, more pseudo-labels with more mistakes in them did better than fewer, surer ones.

# %%
pseudo_runs = [run for run in grid_runs if run.get("series") == "pseudo-labels (threshold sweep)"]
sweep = sorted({run["threshold"] for run in pseudo_runs})
teacher_mean = summary(PSEUDO["target"], PSEUDO["teacher"])[PSEUDO["sweep_k"]][0]
validation = {threshold: np.mean([run["val_accuracy"] for run in pseudo_runs
                                  if run["threshold"] == threshold]) for threshold in sweep}
chosen_threshold = max(validation, key=validation.get)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for number, threshold in enumerate(sweep):
    runs = [run for run in pseudo_runs if run["threshold"] == threshold]
    accuracy = np.mean([run["test_accuracy"] for run in runs])
    if threshold == chosen_threshold:
        axes[0].plot(threshold, accuracy, "o", color="C1", markersize=14, fillstyle="none",
                     label="best on validation")
    axes[0].plot(threshold, accuracy, "o", color="C0")
    axes[0].annotate(f"{np.mean([run['kept'] for run in runs]):.0f} kept,\n"
                     f"{np.mean([run['pseudo_label_accuracy'] for run in runs]):.0%} right",
                     (threshold, accuracy), textcoords="offset points",
                     xytext=(0, 8) if number % 2 == 0 else (0, -32), ha="center", fontsize=10)
    print(f"threshold {threshold}: validation {validation[threshold]:.1%}, test {accuracy:.1%} "
          f"(teacher {teacher_mean:.1%})")
axes[0].axhline(teacher_mean, color="grey", ls="--", label="teacher (labels only)")
axes[0].set(xlabel="confidence threshold", ylabel="test accuracy after one round",
            title=f"{PSEUDO['target']}, k={PSEUDO['sweep_k']}: mean of {GRID['repeats']}")
axes[0].legend(fontsize=10, loc="lower left")
axes[0].margins(y=0.45)
axes[0].set_xlim(-0.12, 1.1)
plot_methods(axes[1], PSEUDO["target"],
             [PSEUDO["teacher"], "pseudo-labels (round 1)", "pseudo-labels (round 2)"])
axes[1].set_title(f"{PSEUDO['target']}: {PSEUDO['rounds']} rounds at threshold "
                  f"{PSEUDO['threshold']}", fontsize=11)
axes[1].legend(fontsize=10, loc="lower right")
fig.tight_layout()
plt.show()
print(f"threshold chosen on validation: {chosen_threshold}")
for name in ("pseudo-labels (round 1)", "pseudo-labels (round 2)"):
    print(f"{name} vs the teacher: " + ", ".join(
        f"k={k}: {mean - summary(PSEUDO['target'], PSEUDO['teacher'])[k][0]:+.1%}"
        for k, (mean, _, _) in summary(PSEUDO["target"], name).items()))

# %% [markdown]
# Pseudo-labelling helps when the teacher is right more often than the student would be
# without the extra images, and when the kept labels are mostly right; the printed gains show
# at which budgets that held here. At the largest budget the pool left unlabelled is small, so
# there is little to add. A second round can amplify both the gains and the teacher's mistakes.
# Modern semi-supervised methods (FixMatch [Sohn et al., 2020]) keep the idea but compute the
# pseudo-label on a weakly augmented view and train on a strongly augmented one, combining
# part 1's augmentation with this section.
#
# ## 6. Every method on one plot
#
# The lesson's answer to "what to do with few labels", for our three targets:

# %%
per_target = {"letters": ["from scratch", "from scratch + augmentation", "linear probe",
                          "fine-tune top", "fine-tune all, low lr", "pseudo-labels (round 1)"],
              "digits": ["from scratch", "from scratch + augmentation", "font digits, fine-tuned",
                         "linear probe", "fine-tune top", "fine-tune all, low lr"],
              "faces": ["from scratch", "from scratch + augmentation", "linear probe",
                        "fine-tune top", "fine-tune all, low lr"]}
fig, axes = plt.subplots(1, 3, figsize=(10, 4.4), sharey=True)
handles = {}
for ax, (target, methods) in zip(axes, per_target.items()):
    plot_methods(ax, target, methods)
    ax.set_title(target, fontsize=11)
    for handle, label in zip(*ax.get_legend_handles_labels()):
        handles.setdefault(label, handle)
axes[0].set_ylabel("test accuracy")
fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=10)
fig.suptitle(f"Test accuracy against labels per class: every method, recorded means of "
             f"{GRID['repeats']}", fontsize=12)
fig.tight_layout(rect=(0, 0.16, 1, 1))
plt.show()
for target, methods in per_target.items():
    best = {k: max(methods, key=lambda m: summary(target, m)[k][0]) for k in few_labels.BUDGETS[target]}
    print(f"{target}: best method per budget: "
          + "; ".join(f"k={k}: {name} ({summary(target, name)[k][0]:.1%})" for k, name in best.items()))

# %% [markdown]
# ## 7. The full profile: CIFAR-10 with ImageNet weights
#
# The same protocol scales to real photos with a real pretrained network: CIFAR-10's ten
# classes as the target, torchvision's ResNet-18 pretrained on ImageNet (1.28 million labelled
# photos) as the source; Kornblith et al. [2019] measured that the better a network does on
# ImageNet, the better its features transfer to such tasks. Both are downloaded on request
# (`CIFAR10 = True` in the settings cell); the full profile (on a GPU) runs this section
# whenever they are already on disk. Otherwise this cell says why it skipped, and the offline
# protocol above stands.

# %%
if not (CIFAR10 or cfg.profile == "full"):
    print("CIFAR-10 transfer skipped: set CIFAR10 = True in the settings cell to run it (it "
          "downloads CIFAR-10 and ImageNet weights once).")
else:
    try:  # downloaded the first time with CIFAR10 = True; the full profile uses what is on disk
        cifar = few_labels.load_cifar10(download=CIFAR10)
        imagenet_state = few_labels.imagenet_resnet18_state(download=CIFAR10)
        budgets = cfg.pick(quick=[5], full=[1, 5, 20, 100], capped=[1])
        steps = cfg.pick(quick=STEPS, full=500, capped=STEPS)
        for result in few_labels.imagenet_transfer(cifar, imagenet_state, budgets, steps=steps):
            print(f"CIFAR-10, k={result['k']:>3}, {result['method']:<22} test accuracy "
                  f"{result['test_accuracy']:.1%} (the first 2,000 test images)")
    except DatasetNotAvailableError as error:
        print(f"CIFAR-10 transfer skipped, the offline protocol above stands: {error}")

# %% [markdown]
# ## Summary
#
# * A network trained on a source task carries features that a close target can use almost as
#   they are: on the letters N to Z, compare the linear probe with training from scratch in
#   section 4. On farther targets the same features are worth less, and fine-tuning matters.
# * The notes' close / far x few / much picture, filled in above with three distances, is the
#   map for choosing among them.
# * Adapting means a new head (the classes differ), then a choice of how much to train; the
#   backbone's learning rate is usually kept low so that the first steps of a random head do
#   not erase what it knows; here, with short training, a higher rate or more steps often did
#   better (section 3 measured which).
# * Pseudo-labels turn unlabelled images into training data; confident mistakes come with
#   them, and the threshold trades quantity for quality.
# * Lesson 07 goes one step further: learning features from unlabelled images alone
#   (self-supervision), then probing them with exactly this lesson's linear probe.
#
# ## References
#
# * J. Yosinski, J. Clune, Y. Bengio, H. Lipson. How transferable are features in deep neural
#   networks? NeurIPS 2014.
# * S. Kornblith, J. Shlens, Q. V. Le. Do Better ImageNet Models Transfer Better? CVPR 2019.
# * E. Arazo, D. Ortego, P. Albert, N. E. O'Connor, K. McGuinness. Pseudo-Labeling and
#   Confirmation Bias in Deep Semi-Supervised Learning. IJCNN 2020.
# * D.-H. Lee. Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep
#   Neural Networks. ICML Workshop on Challenges in Representation Learning, 2013.
# * K. Sohn et al. FixMatch: Simplifying Semi-Supervised Learning with Consistency and
#   Confidence. NeurIPS 2020.
# * A. Kumar, A. Raghunathan, R. Jones, T. Ma, P. Liang. Fine-Tuning can Distort Pretrained
#   Features and Underperform Out-of-Distribution. ICLR 2022.
