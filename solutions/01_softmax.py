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
# # Lesson 01 · Softmax, likelihood and cross-entropy
#
# Every image classifier in this course, from a single linear layer to a Vision Transformer,
# ends the same way: the network produces one number per class, a **softmax** turns those
# numbers into probabilities, and training minimises the **cross-entropy** between those
# probabilities and the true labels. This lesson takes that ending apart, so that the rest of
# the course can focus on what comes before it.
#
# **You will learn**
#
# 1. what a parametric classifier is, and the three kinds of classification problems;
# 2. how softmax turns scores (*logits*) into a probability distribution, and how to compute it
#    without overflow;
# 3. why we maximise the *likelihood* of the data, why we take its logarithm in practice, and
#    why the negative log-likelihood is the same thing as the cross-entropy;
# 4. what a *temperature* does to a softmax;
# 5. how to train a softmax classifier on real handwritten digits with a loop you write yourself,
#    and check it against PyTorch's `nn.CrossEntropyLoss`.
#
# **How the exercises work.** Each exercise is a function with a `TODO`. The cell after it
# checks your function on several inputs, including awkward ones (huge logits, a batch of one).
# ⌛ means not done yet: the notebook carries on with a reference version, so you can run
# everything top to bottom first and come back. ❌ tells you which input failed and how.
# ✅ means your function is used from then on.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import setup
from course_utils.data import load_dataset
from course_utils.exercises import lesson01 as checks
from course_utils.plotting import (plot_confusion_matrix, plot_history, plot_probabilities,
                                   show_images)
from course_utils.training import evaluate, fit
from course_utils.widgets import temperature_widget

cfg = setup(seed=0)

# %% [markdown]
# The line above says which **profile** is running. `quick` (the default without a GPU) keeps
# every lesson to a minute or two on a laptop; `full` (the default with a GPU) trains longer.
# Set the environment variable `COURSE_PROFILE=full` before starting Jupyter to change it.
# All numbers printed below come from the profile that ran.

# %%
EPOCHS = cfg.pick(quick=25, full=100)
BATCH_SIZE = 64
LEARNING_RATE = 0.5

# %% [markdown]
# ## 1. Classification as a parametric model
#
# An image classifier is a function $f$ with parameters $\theta$ that maps an image
# $\mathbf{x}^{(i)}$ to one score per class:
#
# $$\mathbf{z}^{(i)} = f(\theta, \mathbf{x}^{(i)}) \in \mathbb{R}^K .$$
#
# *Parametric* means that everything the model learned from the training data is stored in
# $\theta$: once trained, we can throw the training set away. The scores $\mathbf{z}$ are
# called **logits**. They can be any real numbers; we still have to say how they become a
# prediction and how we measure whether that prediction is good (the *loss*).
#
# Three kinds of problems recur:
#
# | problem | what a label is | example |
# |---|---|---|
# | **binary** | one of 2 classes | face or not a face |
# | **multi-class** | exactly one of $K$ classes | which digit, 0-9 |
# | **multi-label** | any subset of $K$ classes | which animals appear in a camera-trap photo |
#
# Our running example is multi-class: scikit-learn's 1,797 real handwritten digits. They were
# scanned as 32x32 black-and-white bitmaps and reduced to 8x8 images whose pixels count the ink
# in each 4x4 block (0 to 16). The data ships with the library: nothing has to be downloaded.

# %%
digits = load_dataset("digits", seed=cfg.seed)
print(digits.summary())
images, labels = digits.train.tensors()
fig = show_images(images[:24], labels[:24], digits.class_names, ncols=12,
                  title="Training digits (8x8 pixels) with their labels")

# %% [markdown]
# The simplest parametric classifier is **linear**: flatten the 64 pixels into a vector
# $\mathbf{x} \in \mathbb{R}^{64}$ and compute $\mathbf{z} = W\mathbf{x} + \mathbf{b}$ with
# $W \in \mathbb{R}^{10 \times 64}$ and $\mathbf{b} \in \mathbb{R}^{10}$: one row of weights
# (a *template*) per class, $10 \cdot 64 + 10 = 650$ parameters. Untrained, its logits are
# arbitrary numbers, positive and negative, that do not sum to anything in particular:

# %%
class SoftmaxClassifier(nn.Module):
    """A linear classifier: flattened pixels (N, 64) -> logits (N, num_classes)."""

    def __init__(self, num_pixels: int = 64, num_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(num_pixels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(start_dim=1))  # (N, 1, 8, 8) -> (N, 64) -> (N, K)


model = SoftmaxClassifier()
print(f"parameters: {sum(p.numel() for p in model.parameters())}")
with torch.no_grad():
    example_logits = model(images[:3])
print("logits of three images (one row per image, one column per class):")
print(example_logits.numpy().round(2))

# %% [markdown]
# ## 2. From logits to probabilities: softmax
#
# We want to read the output as a **categorical distribution** over the classes,
# $P(Y = k \mid X = \mathbf{x})$: $K$ numbers, each in $[0, 1]$, summing to 1. The softmax
# function does this (we write it $\sigma$; beware that many texts use $\sigma$ for the
# sigmoid of section 7):
#
# $$\sigma(\mathbf{z})_k = \frac{e^{z_k}}{\sum_{j=1}^{K} e^{z_j}} .$$
#
# The exponential makes every entry positive, the division makes them sum to 1, and because
# $e^z$ is increasing the largest logit still gets the largest probability. Softmax is a *soft*
# version of arg-max: it picks the winner but says by how much.
#
# One property matters for the code: adding the same constant $c$ to every logit changes
# nothing, because $e^{z_k + c} = e^{c} e^{z_k}$ and the factor $e^{c}$ cancels between the
# numerator and the denominator. So we may subtract the largest logit before exponentiating.
# That is not cosmetic: in float32, $e^{89}$ is already infinite, and a network that is very sure
# of itself easily produces logits in the hundreds.

# %%
big_logits = torch.tensor([1000.0, 1001.0, 1002.0])
naive = big_logits.exp() / big_logits.exp().sum()
print("exp(logits):               ", big_logits.exp())
print("naive softmax:             ", naive)
shifted = big_logits - big_logits.max()
print("logits minus their maximum:", shifted)
print("softmax of shifted logits: ", shifted.exp() / shifted.exp().sum())

# %% [markdown]
# ### Exercise 1: softmax
#
# Write `softmax(logits)` for a tensor of shape `(..., K)`: a single vector of $K$ logits or a
# batch of shape `(N, K)`. Normalise over the **last** axis, and make it stable by subtracting
# each row's maximum. Use only tensor operations (`max`, `exp`, `sum`), not `torch.softmax`.

# %%
def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Probabilities of the same shape as `logits`, each row summing to 1."""
    # TODO: subtract each row's maximum, exponentiate, divide by the row sums.
    # logits.max(dim=-1, keepdim=True) returns (values, indices): use its .values.
    ### BEGIN SOLUTION
    stable = logits - logits.max(dim=-1, keepdim=True).values
    exponentials = stable.exp()
    return exponentials / exponentials.sum(dim=-1, keepdim=True)
    ### END SOLUTION


# %%
softmax = checks.check_softmax(softmax)

# %% [markdown]
# Here is what softmax does to a vector of logits. The order is kept, the gaps are
# exaggerated (the exponential turns a difference of 1 into a factor of $e \approx 2.7$), and
# adding 100 to every logit changes nothing:

# %%
logits = torch.tensor([2.0, 1.0, 0.1, -1.0, 3.0])
class_names = ["cat", "dog", "fox", "owl", "bee"]
probabilities = softmax(logits)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
plot_probabilities(logits, class_names, ax=left, ylim=None, color="tab:gray", ylabel="logit",
                   title="logits z (any real numbers)")
plot_probabilities(probabilities, class_names, ax=right, color="tab:orange",
                   title=f"softmax(z): sums to {probabilities.sum():.3f}")
fig.tight_layout()
print("softmax(z + 100) equals softmax(z):",
      torch.allclose(softmax(logits + 100), probabilities))

# %% [markdown]
# ## 3. How good is a prediction? The likelihood
#
# To train $\theta$ we need a single number that says how well the model's probabilities fit the
# labels. The **likelihood** of a data point is the probability the model gives to what was
# actually observed. Write the true class of point $i$ as $c^{(i)}$ and its label as a one-hot
# vector $\mathbf{y}^{(i)}$ (a 1 at position $c^{(i)}$, 0 elsewhere). Then the likelihood is
#
# $$\prod_{j=1}^{K} P(Y=j \mid X=\mathbf{x}^{(i)})^{y^{(i)}_j} = P(Y = c^{(i)} \mid X = \mathbf{x}^{(i)}),$$
#
# the probability of the true class: every other factor has exponent 0 and equals 1. If the
# data points are independent, the likelihood of the whole data set is the product over points,
# and **maximum likelihood** picks the $\theta$ that makes this product as large as possible.
#
# A small binary example makes it concrete. Five points have labels $y = [0, 1, 0, 1, 1]$ and the
# model predicts one number per point, $\hat{y} = P(Y=1 \mid \mathbf{x})$. Each point's
# likelihood is $\hat{y}$ when $y = 1$ and $1 - \hat{y}$ when $y = 0$:

# %%
def point_likelihoods(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Probability each binary prediction gives to the observed label."""
    return np.where(y_true == 1, y_pred, 1 - y_pred)


y_true = np.array([0, 1, 0, 1, 1])
for y_pred in (np.array([0.1, 0.8, 0.2, 0.7, 0.9]), np.array([0.1, 0.9, 0.2, 0.7, 0.9])):
    each = point_likelihoods(y_true, y_pred)
    print(f"predictions {y_pred} -> per point {each} -> total likelihood {each.prod():.6f}")

repeats = 10
each = point_likelihoods(np.tile(y_true, repeats), np.tile([0.1, 0.8, 0.2, 0.7, 0.9], repeats))
print(f"the same 5 points repeated {repeats} times ({len(each)} points): "
      f"total likelihood {each.prod():.6f} (= {each.prod():.3g})")

# %% [markdown]
# Raising the second prediction from 0.8 to 0.9 raises the total likelihood, as it should. But
# look at the third line: the model is exactly as good as before, yet the likelihood fell to
# almost zero just because there is more data. Every extra point multiplies in a factor below 1.
# With real data sets (60,000 images for MNIST, 1.28 million for ImageNet) the true product is
# far smaller than the smallest positive number a computer can store: the computation
# **underflows**. It then returns 0, or, as in the figure below, gets stuck at the smallest
# number the format can hold (about $1.4 \times 10^{-45}$ in float32): every further factor
# here is above 0.5, so the product rounds back up to that number instead of down to 0. Either
# way it no longer says anything about the model.
#
# The cure is the logarithm. It turns the product into a sum,
# $\log \prod_i p_i = \sum_i \log p_i$, which grows linearly with the data and never
# underflows. And because $\log$ is increasing, the $\theta$ that maximises the log-likelihood
# also maximises the likelihood. Watch both as the data set grows, multiplying the
# probabilities one point at a time in float32 and in float64:

# %%
point = point_likelihoods(y_true, np.array([0.1, 0.8, 0.2, 0.7, 0.9]))
stream = np.tile(point, 1000)  # the 5 points repeated: a data set of up to 5,000 points
num_points = np.arange(1, len(stream) + 1)
log10_likelihood = np.cumsum(np.log(stream)) / np.log(10)  # exact, via a sum of logs
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(num_points, log10_likelihood, "k-", lw=4, alpha=0.3, label="sum of log-probabilities / ln 10")
for dtype, style in ((np.float32, "--"), (np.float64, "-")):
    product = np.cumprod(stream.astype(dtype), dtype=dtype)  # multiply one point at a time
    with np.errstate(divide="ignore"):  # log10(0) = -inf is allowed here
        log10_product = np.log10(product.astype(np.float64))
    ax.plot(num_points, log10_product, style, label=f"product in {np.dtype(dtype).name}")
    broken = np.abs(log10_product - log10_likelihood) > 0.01  # more than 2% off
    first = num_points[np.argmax(broken)]
    ax.axvline(first, color="gray", ls=":")
    ax.annotate(f" {np.dtype(dtype).name}\n gives up", (first, -400), fontsize=9)
    print(f"{np.dtype(dtype).name}: the product is wrong from {first} points on; at 5,000 points "
          f"it returns {product[-1]:.3g} instead of 10^{log10_likelihood[-1]:.0f}")
ax.set(xlabel="number of data points", ylabel="log10(likelihood)",
       title="Products of probabilities underflow; sums of log-probabilities do not")
ax.legend(loc="upper right")
print(f"The log-likelihood of 5,000 points is simply {log10_likelihood[-1] * np.log(10):.1f}.")

# %% [markdown]
# ## 4. Negative log-likelihood is cross-entropy
#
# Optimisers *minimise*, so we flip the sign and average over the $N$ data points. That gives
# the **negative log-likelihood** (NLL) loss:
#
# $$L(\theta) = -\frac{1}{N} \sum_{i=1}^{N} \sum_{j=1}^{K} y^{(i)}_j \log \hat{y}^{(i)}_j
#             = -\frac{1}{N} \sum_{i=1}^{N} \log \hat{y}^{(i)}_{c^{(i)}} ,$$
#
# where $\hat{\mathbf{y}}^{(i)} = \sigma(\mathbf{z}^{(i)})$ is the vector of predicted
# probabilities and $\hat{y}^{(i)}_j$ its entry for class $j$. (Averaging instead of
# summing keeps the loss on the same scale whatever the batch size; it does not move the
# minimum.)
#
# The same formula comes out of information theory. The **cross-entropy** between a true
# distribution $p$ and an approximation $q$,
#
# $$H(p, q) = -\sum_x p(x) \log q(x),$$
#
# is the average number of nats (bits, with $\log_2$) needed to encode events drawn from $p$
# with a code built for $q$ [Shannon, 1948; Cover & Thomas, 2006]. It is smallest, equal to the
# entropy $H(p) = -\sum_x p(x) \log p(x)$, when $q = p$; the excess is the Kullback-Leibler
# divergence $D_{KL}(p \,\|\, q) = H(p, q) - H(p)$ [Kullback & Leibler, 1951]. With $p$ the
# one-hot label and $q$ the model's softmax, $H(p, q)$ is exactly the NLL term of one data
# point, and since a one-hot $p$ has $H(p) = 0$ it also equals the KL divergence. So
# *maximising the likelihood*, *minimising the NLL* and *minimising the cross-entropy* are one
# and the same training objective.
#
# ### Exercise 2: negative log-likelihood
#
# Write `nll_loss(log_probs, targets)`: `log_probs` has shape `(N, K)` and holds
# $\log \hat{y}$, `targets` holds $N$ class indices. Return the mean of
# $-\log \hat{y}_{\text{true class}}$ as a 0-dimensional tensor. No loops: index all rows at once.

# %%
def nll_loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-probability of the target classes."""
    # TODO: select log_probs[i, targets[i]] for every row i, then return minus their mean.
    ### BEGIN SOLUTION
    rows = torch.arange(len(targets))
    return -log_probs[rows, targets].mean()
    ### END SOLUTION


# %%
nll_loss = checks.check_nll_loss(nll_loss)

# %% [markdown]
# Now the claim, checked with numbers: three images of three classes, their one-hot labels, and
# the model's predicted distributions. The cross-entropy written with the full sum over classes,
# our NLL and PyTorch's `F.nll_loss` agree.

# %%
predicted = torch.tensor([[0.70, 0.20, 0.10],
                          [0.10, 0.60, 0.30],
                          [0.25, 0.25, 0.50]])
targets = torch.tensor([0, 1, 2])
one_hot = F.one_hot(targets, num_classes=3).float()
cross_entropy_by_definition = -(one_hot * predicted.log()).sum(dim=1).mean()
print(f"cross-entropy  -mean(sum_j y_j log q_j) = {cross_entropy_by_definition:.6f}")
print(f"our nll_loss(log q, targets)            = {nll_loss(predicted.log(), targets):.6f}")
print(f"PyTorch F.nll_loss(log q, targets)      = {F.nll_loss(predicted.log(), targets):.6f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
plot_probabilities(one_hot[0], ["A", "B", "C"], ax=axes[0], color="tab:green",
                   title="true distribution p (one-hot)")
plot_probabilities(predicted[0], ["A", "B", "C"], ax=axes[1], color="tab:orange",
                   title=f"prediction q: H(p, q) = {-np.log(0.70):.3f} nats")
fig.tight_layout()

# %% [markdown]
# The loss of one point is $-\log q_{\text{true}}$: 0 for a certain and correct prediction,
# $\log K$ for a uniform guess, and unbounded for a confident mistake. The curve below is
# worth remembering; it explains why cross-entropy punishes overconfidence so hard.

# %%
q = np.linspace(0.001, 1, 500)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(q, -np.log(q))
ax.axvline(0.1, color="gray", ls=":")
ax.annotate("uniform guess over 10 classes:\nloss ln 10 = 2.30", (0.1, -np.log(0.1)),
            (0.3, 4), arrowprops={"arrowstyle": "->"})
ax.set(xlabel="probability given to the true class", ylabel="loss  -log q",
       title="Cross-entropy of one data point", ylim=(0, 7))
fig.tight_layout()

# %% [markdown]
# ## 5. Log-softmax and the log-sum-exp trick
#
# For the loss we need $\log \sigma(\mathbf{z})$, not $\sigma(\mathbf{z})$. Taking the log of a
# softmax is wasteful and fragile. Wasteful, because it exponentiates every logit only to take
# the logarithm again; fragile, because when one logit is far below the largest, its probability
# underflows to 0 and its log becomes $-\infty$. Working in log space avoids both:
#
# $$\log \sigma(\mathbf{z})_k = z_k - \log \sum_j e^{z_j}
#   = z_k - \Big(m + \log \sum_j e^{z_j - m}\Big), \qquad m = \max_j z_j .$$
#
# The bracket is the **log-sum-exp** of the logits, computed stably: after subtracting $m$ the
# largest exponent is $e^0 = 1$, so the sum lies between 1 and $K$ and its log is harmless.

# %%
far_apart = torch.tensor([0.0, -200.0, -400.0])
print("log(naive softmax):       ", torch.log(far_apart.exp() / far_apart.exp().sum()))
print("log(sum(exp(z))) at 1000s:", big_logits.exp().sum().log())
m = big_logits.max()
print("stable log-sum-exp:       ", m + (big_logits - m).exp().sum().log(),
      "| torch.logsumexp:", torch.logsumexp(big_logits, dim=0))

# %% [markdown]
# ### Exercise 3: log-softmax
#
# Write `log_softmax(logits)` over the last axis with the log-sum-exp trick. Do not call
# `torch.log_softmax` or `torch.logsumexp` (and do not take the log of your softmax: the check
# includes logits 200 apart).

# %%
def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log(softmax(logits)) over the last axis, stable for large and very negative logits."""
    # TODO: m = row maximum (keepdim=True); log-sum-exp = m + log(sum(exp(logits - m))).
    ### BEGIN SOLUTION
    row_max = logits.max(dim=-1, keepdim=True).values
    log_normaliser = row_max + (logits - row_max).exp().sum(dim=-1, keepdim=True).log()
    return logits - log_normaliser
    ### END SOLUTION


# %%
log_softmax = checks.check_log_softmax(log_softmax)

# %% [markdown]
# ### Exercise 4: cross-entropy from logits
#
# Put the pieces together: `cross_entropy(logits, targets)` takes raw logits of shape `(N, K)`
# and class indices, and returns the mean cross-entropy. This is what `F.cross_entropy` and
# `nn.CrossEntropyLoss` compute, and why a PyTorch classifier ends with a plain linear layer and
# **no softmax**: the loss applies its own log-softmax, stably. (Adding a softmax in the model
# *and* using `nn.CrossEntropyLoss` is a classic bug: the model then trains on squashed
# probabilities as if they were logits.)

# %%
def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy between one-hot `targets` and softmax(`logits`)."""
    # TODO: one line, using your log_softmax and nll_loss.
    ### BEGIN SOLUTION
    return nll_loss(log_softmax(logits), targets)
    ### END SOLUTION


# %%
cross_entropy = checks.check_cross_entropy(cross_entropy)
print(f"our cross_entropy on the batch above: {cross_entropy(predicted.log(), targets):.6f}"
      f" | F.cross_entropy: {F.cross_entropy(predicted.log(), targets):.6f}")

# %% [markdown]
# (Passing `predicted.log()` as logits works because softmax of log-probabilities gives the
# probabilities back: $\sigma(\log \mathbf{p})_k = p_k / \sum_j p_j = p_k$ when the $p_j$ sum to 1.)
#
# ## 6. Temperature
#
# Dividing the logits by a **temperature** $T > 0$ before the softmax,
# $\sigma(\mathbf{z} / T)$, changes how peaked the distribution is without changing the order of
# the classes. As $T \to 0$ it approaches a one-hot arg-max; as $T \to \infty$ it approaches
# the uniform distribution; $T = 1$ is the plain softmax. Temperature reappears throughout the
# course: knowledge distillation softens a teacher's predictions with $T > 1$
# [Hinton et al., 2015], SimCLR's contrastive loss uses a temperature $\tau$ (lesson 07), and
# DINO sharpens its teacher with a low temperature, together with centering, to avoid collapse
# (lesson 07).

# %%
fig, axes = plt.subplots(1, 4, figsize=(14, 3), sharey=True)
for ax, temperature in zip(axes, (0.25, 1.0, 4.0, 20.0)):
    plot_probabilities(softmax(logits / temperature), class_names, ax=ax, color="tab:orange",
                       title=f"T = {temperature}")
fig.suptitle("softmax(z / T) for the same logits z = [2, 1, 0.1, -1, 3]")
fig.tight_layout()

# %% [markdown]
# Move the slider to see the whole range. The title reports the **entropy** of the
# distribution: 0 for a one-hot vector, $\ln 5 \approx 1.61$ nats for five equal probabilities.

# %%
temperature_widget(logits.numpy(), class_names)

# %% [markdown]
# ## 7. Binary, multi-class and multi-label
#
# **Binary** problems need only one logit $z$: the **sigmoid** $s(z) = 1 / (1 + e^{-z})$ gives
# $P(Y = 1)$ and $1 - s(z)$ gives $P(Y = 0)$. It is not a different idea: the sigmoid is a
# softmax over two logits, one of them fixed at 0, since
# $e^{z} / (e^{0} + e^{z}) = 1 / (1 + e^{-z})$. The matching loss is the binary cross-entropy,
# $-[y \log s(z) + (1 - y) \log(1 - s(z))]$.
#
# **Multi-label** problems (a photo may contain a dog *and* a cat) use one independent sigmoid
# per class: each class becomes its own yes/no question, and the probabilities no longer sum
# to 1. The loss is the binary cross-entropy summed or averaged over classes.

# %%
z = torch.tensor([-2.0, 0.0, 1.5])
print("sigmoid(z)               :", torch.sigmoid(z))
print("softmax over [0, z], [1] :", softmax(torch.stack([torch.zeros(3), z], dim=1))[:, 1])
y = torch.tensor([0.0, 1.0, 1.0])
bce = F.binary_cross_entropy_with_logits(z, y)
two_class = cross_entropy(torch.stack([torch.zeros(3), z], dim=1), y.long())
print(f"binary cross-entropy {bce:.6f} = two-class cross-entropy {two_class:.6f}")

multi_logits = torch.tensor([2.5, 1.8, -1.0, -3.0])
animals = ["dog", "cat", "fox", "owl"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
plot_probabilities(softmax(multi_logits), animals, ax=axes[0], color="tab:orange",
                   title=f"multi-class: softmax (sum {softmax(multi_logits).sum():.2f})")
plot_probabilities(torch.sigmoid(multi_logits), animals, ax=axes[1], color="tab:purple",
                   title=f"multi-label: sigmoids (sum {torch.sigmoid(multi_logits).sum():.2f})")
fig.suptitle("The same four logits read as one choice, or as four yes/no questions")
fig.tight_layout()

# %% [markdown]
# | problem | model output | turned into probabilities by | loss in PyTorch |
# |---|---|---|---|
# | binary | 1 logit | sigmoid | `nn.BCEWithLogitsLoss` |
# | multi-class | $K$ logits | softmax (over classes) | `nn.CrossEntropyLoss` |
# | multi-label | $K$ logits | $K$ independent sigmoids | `nn.BCEWithLogitsLoss` |
#
# All three losses take **logits**, for the stability reasons of section 5.
#
# ## 8. A softmax classifier for handwritten digits
#
# Time to train. The model is the linear classifier of section 1; the loss is your
# `cross_entropy` from exercise 4 (or the reference version, if the check said so); the
# optimiser is plain stochastic gradient descent. Before training, a sanity
# check every practitioner runs: an untrained network gives roughly uniform probabilities, so
# its loss should be close to $\ln K = \ln 10 \approx 2.30$.

# %%
loaders = digits.loaders(BATCH_SIZE, seed=cfg.seed)
torch.manual_seed(cfg.seed)
model = SoftmaxClassifier()
initial_state = {name: value.clone() for name, value in model.state_dict().items()}
val_images, val_labels = digits.val.tensors()
with torch.no_grad():
    print(f"untrained loss on val: {cross_entropy(model(val_images), val_labels):.3f} "
          f"(ln 10 = {np.log(10):.3f})")

# %% [markdown]
# ### Exercise 5: the gradient of the cross-entropy
#
# Gradient descent needs $\partial L / \partial \mathbf{z}$. For softmax followed by
# cross-entropy it is remarkably simple. For one data point with true class $c$,
# $L = -\log \sigma(\mathbf{z})_c = -z_c + \log \sum_j e^{z_j}$. The first term contributes
# $-1$ to $\partial L / \partial z_c$ and nothing elsewhere, which is $-y_k$; the second gives
# $\partial / \partial z_k \log \sum_j e^{z_j} = e^{z_k} / \sum_j e^{z_j} = \sigma(\mathbf{z})_k$.
# Together:
#
# $$\frac{\partial L}{\partial z_k} = \sigma(\mathbf{z})_k - y_k :$$
#
# the predicted probabilities minus the one-hot label. The true class is pushed up by
# $1 - \sigma_c$, every other class is pushed down by its probability, and a confident, correct
# prediction receives almost no gradient. Write `cross_entropy_grad(logits, targets)` returning
# this gradient for the **mean** loss over a batch of $N$ (mind the $1/N$). Autograd will check
# you below.

# %%
def cross_entropy_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d(mean cross-entropy)/d(logits), shape (N, K)."""
    # TODO: (softmax(logits) - one_hot(targets)) / N
    ### BEGIN SOLUTION
    labels_one_hot = F.one_hot(targets, num_classes=logits.shape[-1]).to(logits.dtype)
    return (softmax(logits) - labels_one_hot) / len(targets)
    ### END SOLUTION


# %%
cross_entropy_grad = checks.check_cross_entropy_grad(cross_entropy_grad)
batch_logits = model(val_images[:8])
autograd_grad, = torch.autograd.grad(cross_entropy(batch_logits, val_labels[:8]), batch_logits)
by_formula = cross_entropy_grad(batch_logits.detach(), val_labels[:8])
print(f"largest difference from autograd: {(autograd_grad - by_formula).abs().max():.2e}")

# %% [markdown]
# ### The training loop
#
# Each epoch goes through the training set in shuffled mini-batches. For each batch:
# reset the gradients, compute the logits, the loss, the gradients (`backward`), and take a
# step. Evaluation runs under `torch.no_grad()` (no gradients are needed, which saves memory and
# time) and in `eval()` mode. Accuracy and loss are weighted by the number of samples in each
# batch, so the smaller last batch counts for what it is.

# %%
def evaluate_split(model, loader, loss_fn):
    """Mean loss and accuracy over a loader, weighted by samples."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            logits = model(inputs)
            total_loss += loss_fn(logits, targets).item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return total_loss / count, correct / count


def train(model, loss_fn, epochs, seed):
    """Plain SGD on the digits; returns the history of train/val loss and accuracy."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loaders = digits.loaders(BATCH_SIZE, seed=seed)  # same seed -> same order of batches
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        model.train()
        total_loss, correct, count = 0.0, 0, 0
        for inputs, targets in loaders["train"]:
            optimizer.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            count += len(targets)
        val_loss, val_accuracy = evaluate_split(model, loaders["val"], loss_fn)
        history["train_loss"].append(total_loss / count)
        history["train_accuracy"].append(correct / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
    return history


history = train(model, cross_entropy, EPOCHS, seed=cfg.seed)
print(f"after {EPOCHS} epochs: train accuracy {history['train_accuracy'][-1]:.3f}, "
      f"val accuracy {history['val_accuracy'][-1]:.3f}")
fig = plot_history(history, title="Softmax classifier on 8x8 digits, trained with our cross_entropy")

# %% [markdown]
# In the first epoch the training loss is *above* the validation loss. That is not a bug: the
# training loss is averaged over the epoch while the model is still improving, whereas the
# validation loss is measured once, at the end of the epoch, on the improved model.

# %% [markdown]
# Does our loss really behave like PyTorch's? Train a twin: same initial weights, same order of
# batches, but `nn.CrossEntropyLoss`. If the two losses agree in value *and* in gradient, the two
# runs must stay together step after step.

# %%
twin = SoftmaxClassifier()
twin.load_state_dict(initial_state)
twin_history = train(twin, nn.CrossEntropyLoss(), EPOCHS, seed=cfg.seed)
loss_gap = max(abs(a - b) for a, b in zip(history["train_loss"], twin_history["train_loss"]))
weight_gap = (model.linear.weight - twin.linear.weight).abs().max().item()
print(f"largest gap between the two loss curves: {loss_gap:.2e}")
print(f"largest gap between the trained weights: {weight_gap:.2e}")

# %% [markdown]
# The gaps are at the level of float32 rounding. Now the number that matters: accuracy on the
# **test** split, which played no part in training or in any choice we made.

# %%
test_loss, test_accuracy = evaluate_split(model, loaders["test"], cross_entropy)
print(f"test loss {test_loss:.3f} | test accuracy {test_accuracy:.3f} "
      f"on {len(digits.test)} digits never seen in training")
test_images, test_labels = digits.test.tensors()
with torch.no_grad():
    test_predictions = model(test_images).argmax(dim=1)
fig = plot_confusion_matrix(test_labels, test_predictions, digits.class_names,
                            title=f"Test confusion matrix (accuracy {test_accuracy:.1%})")

# %% [markdown]
# Which digits does it confuse? Below are test images it got wrong, titled
# "true / predicted". Many are genuinely ambiguous at 8x8 pixels.

# %%
wrong = torch.nonzero(test_predictions != test_labels).flatten()[:12]
if len(wrong):
    fig = show_images(test_images[wrong], test_labels[wrong], digits.class_names,
                      predictions=test_predictions[wrong], ncols=12,
                      title="Misclassified test digits (true / predicted)")
print(f"{len(torch.nonzero(test_predictions != test_labels))} of {len(test_labels)} "
      f"test digits are misclassified")

# %% [markdown]
# ### What did the linear classifier learn?
#
# Each logit is a dot product between the image and one row of $W$, so each row is a
# **template**: positive weights (red) where ink is evidence *for* that digit, negative weights
# (blue) where ink is evidence *against* it. Some templates resemble their digit (the ring of the
# 0, the bar at the bottom of the 2); others mostly mark the pixels that separate a digit from
# its look-alikes. A linear model has exactly one template per class; it cannot
# represent "a 7 with or without a crossbar" as two ways of being a 7. That limit is what
# hidden layers and, from lesson 02 on, convolutions remove.

# %%
templates = model.linear.weight.detach().reshape(10, 8, 8)
limit = templates.abs().max()
fig, axes = plt.subplots(1, 10, figsize=(14, 1.9))
for digit, ax in enumerate(axes):
    ax.imshow(templates[digit], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"class {digit}")
    ax.axis("off")
fig.suptitle("Rows of the trained weight matrix W, shown as 8x8 images (red +, blue -)")
fig.tight_layout()

# %% [markdown]
# ### The same loop, packaged
#
# From the next lesson on we use `course_utils.training.fit`. It is this loop with a progress
# bar, mixed precision on GPUs and a few safety checks; nothing hidden. Given the same initial
# weights and the same batches, it reproduces the run above:

# %%
packaged = SoftmaxClassifier()
packaged.load_state_dict(initial_state)
packaged_loaders = digits.loaders(BATCH_SIZE, seed=cfg.seed)
packaged_history = fit(packaged, packaged_loaders["train"], packaged_loaders["val"],
                       epochs=EPOCHS, optimizer=torch.optim.SGD(packaged.parameters(), lr=LEARNING_RATE),
                       loss_fn=F.cross_entropy, progress=False)
packaged_test = evaluate(packaged, packaged_loaders["test"])
print(f"fit(): val accuracy {packaged_history['val_accuracy'][-1]:.3f} "
      f"(our loop: {history['val_accuracy'][-1]:.3f}), test accuracy "
      f"{packaged_test['accuracy']:.3f} (our loop: {test_accuracy:.3f})")

# %% [markdown]
# ## Summary
#
# * A classifier outputs one **logit** per class; **softmax** turns logits into a probability
#   distribution. It is invariant to adding a constant, which is what makes it computable:
#   subtract the maximum first.
# * Training maximises the **likelihood** of the labels. Products of probabilities underflow
#   (in our example after about 500 points in float32 and 3,700 in float64), so we minimise
#   the **negative log-likelihood**, a sum.
# * The NLL of one-hot labels **is** the **cross-entropy** between labels and predictions. Its
#   gradient with respect to the logits is simply *probabilities minus labels*.
# * Compute losses from logits with **log-softmax / log-sum-exp**, never as `log(softmax(z))`;
#   PyTorch's losses take logits for this reason.
# * **Temperature** $T$ makes a softmax sharper ($T < 1$) or softer ($T > 1$).
# * Binary: one sigmoid. Multi-class: one softmax. Multi-label: one sigmoid per class.
#
# A linear softmax classifier already reads most 8x8 digits correctly. It will not read the
# course's 32x32 colour glyphs, letters in many fonts on photographic backgrounds: for those we
# need convolutional networks, the subject of lesson 02.
#
# ## References
#
# * C. E. Shannon, "A Mathematical Theory of Communication", *Bell System Technical Journal*, 1948.
# * S. Kullback, R. A. Leibler, "On Information and Sufficiency", *Annals of Mathematical
#   Statistics*, 1951.
# * T. M. Cover, J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley, 2006, chapter 2.
# * I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, MIT Press, 2016: sections 3.13
#   (information theory), 5.5 (maximum likelihood) and 6.2.2 (output units).
# * G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", 2015.
# * J. S. Bridle, "Probabilistic Interpretation of Feedforward Classification Network Outputs,
#   with Relationships to Statistical Pattern Recognition", 1990 (the name *softmax*).
