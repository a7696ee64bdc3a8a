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
# **NOT DONE** means the notebook carries on with a reference version, so you can run
# everything top to bottom first and come back. **WRONG** names the input that failed, what
# came back, and, when it recognises the slip, what you most likely wrote. **PASSED** means
# your own function is used from then on.

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
from course_utils.results import record
from course_utils.training import evaluate, fit
from course_utils.widgets import temperature_widget

cfg = setup(seed=0)

# %% [markdown]
# The line above says which **profile** is running and on which **device**. `quick` (the
# default without a GPU) keeps every lesson to a minute or two on a laptop; `full` (the default
# with a GPU) trains longer. Set the environment variable `COURSE_PROFILE=full` before starting
# Jupyter to change it. All numbers printed below come from the profile that ran.
#
# Every model and tensor of the lesson lives on `cfg.device` (a GPU when there is one); we bring
# values back to the CPU, with `.cpu()`, only to print or plot them.

# %%
EPOCHS = cfg.pick(quick=25, full=100, capped=25)
BATCH_SIZE = 64
LEARNING_RATE = 0.5

# %% [markdown]
# ## 1. Classification as a parametric model
#
# An image classifier is a function $f$ with parameters $\theta$ that maps the $i$-th image of
# a data set, $\mathbf{x}^{(i)}$, to one score per class:
#
# $$\mathbf{z}^{(i)} = f(\theta, \mathbf{x}^{(i)}) \in \mathbb{R}^K .$$
#
# (Throughout the course a superscript $(i)$ numbers the data points, $K$ is the number of
# classes, and a class is written $c$ or indexed by $j$ and $k$.) *Parametric* means that
# everything the model learned from the training data is stored in $\theta$: once trained, we
# can throw the training set away. The scores $\mathbf{z}$ are called **logits**. They can be
# any real numbers; we still have to say how they become a prediction and how we measure
# whether that prediction is good (the *loss*).
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
fig = show_images(images[:20], labels[:20], digits.class_names, ncols=10,
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


model = SoftmaxClassifier().to(cfg.device)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")
with torch.no_grad():
    example_logits = model(images[:3].to(cfg.device))
print("logits of three images (one row per image, one column per class):")
print(example_logits.cpu().numpy().round(2))

# %% [markdown]
# ## 2. From logits to probabilities: softmax
#
# We would like the $K$ outputs to be the model's belief about the class,
# $P(Y = k \mid X = \mathbf{x})$: numbers in $[0, 1]$ that add up to 1, a **categorical**
# distribution. The softmax function turns any vector of logits into one (we write it
# $\sigma$; beware that many texts use $\sigma$ for the sigmoid of section 7):
#
# $$\sigma(\mathbf{z})_k = \frac{e^{z_k}}{\sum_{j=1}^{K} e^{z_j}} .$$
#
# The exponential makes every entry positive, the division makes them sum to 1, and because
# $e^z$ is increasing the largest logit still gets the largest probability. Softmax is a *soft*
# version of arg-max: it picks the winner but says by how much.
#
# One property matters for the code: adding the same number $a$ to every logit changes
# nothing, because $e^{z_k + a} = e^{a} e^{z_k}$ and the factor $e^{a}$ cancels between the
# numerator and the denominator. So we may subtract the largest logit before exponentiating.
# That is not cosmetic: in float32, $e^{89}$ is already infinite, and a network that is very sure
# of itself easily produces logits in the hundreds.

# %%
big_logits = torch.tensor([1000.0, 1001.0, 1002.0], device=cfg.device)
edge = torch.tensor([88.0, 89.0], device=cfg.device)
print("exp(88), exp(89) in float32:", edge.exp().cpu().numpy())
naive = big_logits.exp() / big_logits.exp().sum()
print("exp(logits):               ", big_logits.exp().cpu().numpy())
print("naive softmax:             ", naive.cpu().numpy())
shifted = big_logits - big_logits.max()
print("logits minus their maximum:", shifted.cpu().numpy())
print("softmax of shifted logits: ", (shifted.exp() / shifted.exp().sum()).cpu().numpy().round(4))

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
logits = torch.tensor([2.0, 1.0, 0.1, -1.0, 3.0], device=cfg.device)
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
# To train $\theta$ we need one number that says how well the model's probabilities fit the
# labels we actually observed. The **likelihood** of a data point is the probability the model
# had given, before looking, to the label that turned up. Write the true class of point $i$ as
# $c^{(i)}$ and its label as a one-hot vector $\mathbf{y}^{(i)}$ (a 1 at position $c^{(i)}$,
# 0 elsewhere). The likelihood of point $i$ is then
#
# $$\prod_{j=1}^{K} P(Y=j \mid X=\mathbf{x}^{(i)})^{y^{(i)}_j} = P(Y = c^{(i)} \mid X = \mathbf{x}^{(i)}) :$$
#
# each factor other than the true class's is raised to the power 0 and equals 1. When the data
# points are drawn independently of each other, the likelihood of the whole data set is the
# product of the points' likelihoods, and **maximum likelihood** training looks for the
# $\theta$ that makes this product as large as it can be.
#
# ### The two-class case: one probability per point
#
# The examples below have only two classes, 0 and 1 (face or not a face, say). Then a single
# number per point is enough, $\hat{y}^{(i)} = P(Y = 1 \mid X = \mathbf{x}^{(i)})$, because the
# other class gets what is left, $P(Y = 0 \mid X = \mathbf{x}^{(i)}) = 1 - \hat{y}^{(i)}$: the label
# is modelled as a biased coin, a **Bernoulli** distribution. This is the formula above with
# $K = 2$: the one-hot label of point $i$ is $(1 - y^{(i)}, y^{(i)})$ for a label
# $y^{(i)} \in \{0, 1\}$, the predicted distribution is $(1 - \hat{y}^{(i)}, \hat{y}^{(i)})$,
# and the likelihood of the point is
#
# $$(1 - \hat{y}^{(i)})^{1 - y^{(i)}} \, \big(\hat{y}^{(i)}\big)^{y^{(i)}} ,$$
#
# that is $\hat{y}^{(i)}$ when $y^{(i)} = 1$ and $1 - \hat{y}^{(i)}$ when $y^{(i)} = 0$. (How a
# network produces $\hat{y}$ from a single logit, the sigmoid, is the subject of section 7.)
#
# **Predict first.** Five points have the labels $y^{(1)}, \dots, y^{(5)} = 0, 1, 0, 1, 1$ and
# the model predicts $\hat{y}^{(1)}, \dots, \hat{y}^{(5)} = 0.1, 0.8, 0.2, 0.7, 0.9$. Before
# you run the next cell, write down the likelihood of each point and of the whole set.

# %%
def point_likelihoods(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Probability each binary prediction gives to the observed label."""
    return np.where(y_true == 1, y_pred, 1 - y_pred)


y_true = np.array([0, 1, 0, 1, 1])
y_pred = np.array([0.1, 0.8, 0.2, 0.7, 0.9])
each = point_likelihoods(y_true, y_pred)
likelihood = each.prod()
print(f"predictions {y_pred}\nper point   {each}\ntotal likelihood {likelihood:.6f}")

# %% [markdown]
# **Predict first.** The model becomes surer about the second point, whose label is 1: its
# prediction rises from 0.8 to 0.9 and the other four stay as they were. Does the total
# likelihood go up or down, and by which factor?

# %%
better_pred = np.array([0.1, 0.9, 0.2, 0.7, 0.9])
better_likelihood = point_likelihoods(y_true, better_pred).prod()
print(f"predictions {better_pred}: total likelihood {better_likelihood:.6f}")
print(f"{better_likelihood / likelihood:.4f} times the first one (0.9 / 0.8 = {0.9 / 0.8:.4f})")

# %% [markdown]
# **Predict first.** Go back to the first predictions and copy the five points ten times over:
# 50 points, on each of which the model is exactly as good as before. Is the model better,
# worse, or the same? And its total likelihood?

# %%
repeats = 10
each_repeated = point_likelihoods(np.tile(y_true, repeats), np.tile(y_pred, repeats))
print(f"the same 5 points {repeats} times ({len(each_repeated)} points): total likelihood "
      f"{each_repeated.prod():.6f} (= {each_repeated.prod():.3g} = {likelihood:.6f}^{repeats})")
print(f"that is {likelihood / each_repeated.prod():,.0f} times smaller, for the same model")

# %% [markdown]
# The second answer is what we want from a score: a better prediction for one point raises it.
# The third is the catch. The model did not change, yet its likelihood collapsed, only because
# there is more data: each extra point multiplies in one more factor below 1. With real data
# sets (60,000 images for MNIST, 1.28 million for ImageNet) the true product is far below the
# smallest positive number a computer can store, so computing it **underflows**. The result
# is then 0, or, as in the figure below, it sticks at the tiniest number the format can hold
# (about $1.4 \times 10^{-45}$ in float32): every further factor here is at least 0.7, so the
# product rounds back up to that number instead of down to 0. Either way it has stopped saying
# anything about the model.
#
# The logarithm fixes this. It turns the product into a sum,
# $\log \prod_i p_i = \sum_i \log p_i$, which grows in proportion to the data and never
# underflows. And since a larger likelihood always has a larger logarithm, the $\theta$ that
# maximises one maximises the other. Watch both as the data set grows, multiplying the
# probabilities one point at a time in float32 and in float64:

# %%
stream = np.tile(each, 1000)  # the 5 points repeated: a data set of up to 5,000 points
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
    ax.annotate(f" {np.dtype(dtype).name}\n gives up", (first, -150 if first < 1000 else -400),
                fontsize=11)
    print(f"{np.dtype(dtype).name}: wrong from {first} points on; at 5,000 points the product "
          f"is {product[-1]:.3g} instead of 10^{log10_likelihood[-1]:.0f}")
ax.set(xlabel="number of data points", ylabel="log10(likelihood)",
       title="Products of probabilities underflow; sums of log-probabilities do not")
ax.legend(loc="lower left")
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
# Information theory arrives at the same formula from another direction. Take two
# distributions over the $K$ classes, $p$ (how the classes really occur) and $q$ (what we
# believe). Design the code that would be shortest on average if messages followed $q$, then
# use it for messages that really follow $p$: on average each message costs
#
# $$H(p, q) = -\sum_{k=1}^{K} p_k \log q_k$$
#
# nats (bits, with $\log_2$), the **cross-entropy** of $q$ relative to $p$ [Shannon, 1948;
# Cover & Thomas, 2006]. No code does better than the one built for $p$ itself, whose cost is the
# entropy $H(p) = -\sum_k p_k \log p_k$; what a wrong belief costs on top is the Kullback-Leibler
# divergence $D_{KL}(p \,\|\, q) = H(p, q) - H(p) \ge 0$ [Kullback & Leibler, 1951]. With $p$ the
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
    rows = torch.arange(len(targets), device=targets.device)
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
                          [0.25, 0.25, 0.50]], device=cfg.device)
targets = torch.tensor([0, 1, 2], device=cfg.device)
one_hot = F.one_hot(targets, num_classes=3).float()
cross_entropy_by_definition = -(one_hot * predicted.log()).sum(dim=1).mean()
print(f"cross-entropy  -mean(sum_j y_j log q_j) = {cross_entropy_by_definition:.6f}")
print(f"our nll_loss(log q, targets)            = {nll_loss(predicted.log(), targets):.6f}")
print(f"PyTorch F.nll_loss(log q, targets)      = {F.nll_loss(predicted.log(), targets):.6f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
plot_probabilities(one_hot[0], ["A", "B", "C"], ax=axes[0], color="tab:green",
                   title="true distribution p (one-hot)")
plot_probabilities(predicted[0], ["A", "B", "C"], ax=axes[1], color="tab:orange",
                   title=f"prediction q: H(p, q) = {-predicted[0, 0].log().item():.3f} nats")
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
far_apart = torch.tensor([0.0, -200.0, -400.0], device=cfg.device)
naive_log = torch.log(far_apart.exp() / far_apart.exp().sum())
print("log(naive softmax):       ", naive_log.cpu().numpy())
print("log(sum(exp(z))) at 1000s:", big_logits.exp().sum().log().item())
m = big_logits.max()
print(f"stable log-sum-exp:        {(m + (big_logits - m).exp().sum().log()).item():.4f} "
      f"| torch.logsumexp: {torch.logsumexp(big_logits, dim=0).item():.4f}")

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
fig, axes = plt.subplots(1, 4, figsize=(10, 3.4), sharey=True)
for ax, temperature in zip(axes, (0.25, 1.0, 4.0, 20.0)):
    plot_probabilities(softmax(logits / temperature), class_names, ax=ax, color="tab:orange",
                       title=f"T = {temperature}")
fig.suptitle("softmax(z / T) for the same logits z = [2, 1, 0.1, -1, 3]")
fig.tight_layout()

# %% [markdown]
# Move the slider to see the whole range. The title reports the **entropy** of the
# distribution: 0 for a one-hot vector, $\ln 5 \approx 1.61$ nats for five equal probabilities.

# %%
temperature_widget(logits.cpu().numpy(), class_names)

# %% [markdown]
# ## 7. Binary, multi-class and multi-label
#
# **Binary** problems: section 3 described a two-class label by one probability per point,
# $\hat{y} = P(Y = 1 \mid X = \mathbf{x})$ (a Bernoulli distribution). A network produces it from
# a single logit $z$ with the **sigmoid**, $\hat{y} = s(z) = 1 / (1 + e^{-z})$, and
# $1 - s(z)$ is $P(Y = 0)$. This is not a new idea: the sigmoid is a softmax over two logits,
# one of them fixed at 0, since $e^{z} / (e^{0} + e^{z}) = 1 / (1 + e^{-z})$. The matching loss,
# the **binary cross-entropy** $-[y \log \hat{y} + (1 - y) \log(1 - \hat{y})]$, is minus the log
# of section 3's Bernoulli likelihood of one point.
#
# **Multi-label** problems (a photo may contain a dog *and* a cat) use one independent sigmoid
# per class: each class becomes its own yes/no question, and the probabilities no longer sum
# to 1. The loss is the binary cross-entropy summed or averaged over classes.

# %%
z = torch.tensor([-2.0, 0.0, 1.5], device=cfg.device)
two_logits = torch.stack([torch.zeros_like(z), z], dim=1)  # (3, 2): logits 0 and z per point
print("sigmoid(z)                 :", torch.sigmoid(z).cpu().numpy().round(6))
print("softmax([0, z]), class 1   :", softmax(two_logits)[:, 1].cpu().numpy().round(6))
y = torch.tensor([0.0, 1.0, 1.0], device=cfg.device)
bce = F.binary_cross_entropy_with_logits(z, y)
two_class = cross_entropy(two_logits, y.long())
print(f"binary cross-entropy {bce:.6f} = two-class cross-entropy {two_class:.6f}")

multi_logits = torch.tensor([2.5, 1.8, -1.0, -3.0], device=cfg.device)
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
torch.manual_seed(cfg.seed)
model = SoftmaxClassifier().to(cfg.device)
initial_state = {name: value.clone() for name, value in model.state_dict().items()}
val_images, val_labels = (tensor.to(cfg.device) for tensor in digits.val.tensors())
with torch.no_grad():
    untrained_loss = cross_entropy(model(val_images), val_labels).item()
print(f"untrained loss on val: {untrained_loss:.3f} (ln 10 = {np.log(10):.3f}, "
      f"{abs(untrained_loss - np.log(10)) / np.log(10):.0%} apart)")

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
#
# The loaders hand out batches on the CPU; each batch is moved to `cfg.device`, where the model
# is. The running sums stay there too, as tensors: reading a number back with `.item()` makes
# the CPU wait for the GPU, so we do it once per epoch rather than once per batch.

# %%
def evaluate_split(model, loader, loss_fn):
    """Mean loss and accuracy over a loader, weighted by samples."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(cfg.device), targets.to(cfg.device)
            logits = model(inputs)
            total_loss += loss_fn(logits, targets) * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum()
            count += len(targets)
    return total_loss.item() / count, correct.item() / count


def train(model, loss_fn, epochs, seed):
    """Plain SGD on the digits; returns the history of train/val loss and accuracy."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loaders = digits.loaders(BATCH_SIZE, seed=seed)  # same seed -> same order of batches
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        model.train()
        total_loss, correct, count = 0.0, 0, 0
        for inputs, targets in loaders["train"]:
            inputs, targets = inputs.to(cfg.device), targets.to(cfg.device)
            optimizer.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum()
            count += len(targets)
        val_loss, val_accuracy = evaluate_split(model, loaders["val"], loss_fn)
        history["train_loss"].append(total_loss.item() / count)
        history["train_accuracy"].append(correct.item() / count)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
    return history


history = train(model, cross_entropy, EPOCHS, seed=cfg.seed)
print(f"after {EPOCHS} epochs: train accuracy {history['train_accuracy'][-1]:.3f}, "
      f"val accuracy {history['val_accuracy'][-1]:.3f}")
fig = plot_history(history, title="Softmax classifier on 8x8 digits, trained with our cross_entropy")
first_train, first_val = history["train_loss"][0], history["val_loss"][0]
print(f"epoch 1: train loss {first_train:.3f}, val loss {first_val:.3f}: the training loss is "
      f"{'above' if first_train > first_val else 'below'} the validation loss")

# %% [markdown]
# Where do the two curves of the first epoch sit (printed above)? The training loss of an
# epoch is the average over its batches, taken while the model was still learning, so its early
# batches count the model at its worst; the validation loss is measured once, at the end of the
# epoch, on the improved model. That is why, early in training, the training loss can lie above
# the validation loss, although the model has seen the training images and not the others.

# %% [markdown]
# Does our loss really behave like PyTorch's? Train a twin: same initial weights, same order of
# batches, but `nn.CrossEntropyLoss`. If the two losses agree in value *and* in gradient, the two
# runs must stay together step after step.

# %%
twin = SoftmaxClassifier().to(cfg.device)
twin.load_state_dict(initial_state)
twin_history = train(twin, nn.CrossEntropyLoss(), EPOCHS, seed=cfg.seed)
loss_gap = max(abs(a - b) for a, b in zip(history["train_loss"], twin_history["train_loss"]))
weight_gap = (model.linear.weight - twin.linear.weight).abs().max().item()
print(f"largest gap between the two loss curves: {loss_gap:.2e}")
print(f"largest gap between the trained weights: {weight_gap:.2e}")
ROUNDING = 1e-4  # float32 keeps about 7 digits; a real difference in the loss shows far above
agree = max(loss_gap, weight_gap) < ROUNDING
print("verdict: " + ("the two runs agree to float32 rounding" if agree
                     else "the two runs drifted apart: our loss is not the same as PyTorch's"))

# %% [markdown]
# Now the number that matters: accuracy on the **test** split, which played no part in
# training or in any choice we made.

# %%
test_loader = digits.loaders(BATCH_SIZE, seed=cfg.seed)["test"]
test_loss, test_accuracy = evaluate_split(model, test_loader, cross_entropy)
record("01", "test accuracy", test_accuracy)  # the lesson's headline number, guarded by the tests
print(f"test loss {test_loss:.3f} | test accuracy {test_accuracy:.3f} "
      f"on {len(digits.test)} digits never seen in training")
test_images, test_labels = (tensor.to(cfg.device) for tensor in digits.test.tensors())
with torch.no_grad():
    test_predictions = model(test_images).argmax(dim=1)
fig = plot_confusion_matrix(test_labels.cpu(), test_predictions.cpu(), digits.class_names,
                            title=f"Test confusion matrix (accuracy {test_accuracy:.1%})")

# %% [markdown]
# Which digits does it confuse? Below are (up to 16 of) the test images it got wrong, titled
# "true / predicted". How many of them would you have read correctly yourself, at 8x8 pixels?

# %%
wrong = torch.nonzero(test_predictions != test_labels).flatten()
print(f"{len(wrong)} of {len(test_labels)} test digits are misclassified")
if len(wrong):
    shown = wrong[:16].cpu()
    fig = show_images(test_images.cpu()[shown], test_labels.cpu()[shown], digits.class_names,
                      predictions=test_predictions.cpu()[shown], ncols=8,
                      title="Misclassified test digits (true / predicted)")

# %% [markdown]
# ### What did the linear classifier learn?
#
# Each logit is a dot product between the image and one row of $W$, so each row is a
# **template**: positive weights (red) where ink is evidence *for* that digit, negative weights
# (blue) where ink is evidence *against* it. Look for templates that resemble their digit (a
# ring for the 0?) and for others that mostly mark the few pixels telling a digit apart from
# its look-alikes. A linear model has exactly one template per class; it cannot represent
# "a 7 with or without a crossbar" as two ways of being a 7. That limit is what hidden layers
# and, from lesson 02 on, convolutions remove.

# %%
templates = model.linear.weight.detach().cpu().reshape(10, 8, 8)
limit = templates.abs().max()
fig, axes = plt.subplots(2, 5, figsize=(10, 4.8))
for digit, ax in enumerate(axes.flat):
    ax.imshow(templates[digit], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"class {digit}", fontsize=12)
    ax.axis("off")
fig.suptitle("Rows of the trained weight matrix W, shown as 8x8 images (red +, blue -)")
fig.tight_layout()

# %% [markdown]
# ### The same loop, packaged
#
# From the next lesson on we use `course_utils.training.fit`. It is this loop with a progress
# bar, mixed precision on GPUs and a few safety checks; nothing hidden. It runs on `cfg.device`
# and refuses a model left elsewhere. Given the same initial weights and the same batches, and
# with mixed precision switched off (`amp=False`) so that it computes in float32 like our loop,
# it should retrace the run above:

# %%
packaged = SoftmaxClassifier().to(cfg.device)
packaged.load_state_dict(initial_state)
packaged_loaders = digits.loaders(BATCH_SIZE, seed=cfg.seed)
packaged_history = fit(packaged, packaged_loaders["train"], packaged_loaders["val"],
                       epochs=EPOCHS, optimizer=torch.optim.SGD(packaged.parameters(), lr=LEARNING_RATE),
                       loss_fn=F.cross_entropy, amp=False, progress=False)
packaged_test = evaluate(packaged, packaged_loaders["test"], amp=False)
fit_gap = max(abs(a - b) for a, b in zip(history["val_loss"], packaged_history["val_loss"]))
print(f"fit(): val accuracy {packaged_history['val_accuracy'][-1]:.3f} "
      f"(our loop: {history['val_accuracy'][-1]:.3f}), test accuracy "
      f"{packaged_test['accuracy']:.3f} (our loop: {test_accuracy:.3f})")
print(f"largest gap between the two val-loss curves: {fit_gap:.2e} -> "
      + ("the same run, to float32 rounding" if fit_gap < ROUNDING else "the runs differ"))

# %% [markdown]
# ## Summary
#
# * A classifier outputs one **logit** per class; **softmax** turns logits into a probability
#   distribution. It is invariant to adding a constant, which is what makes it computable:
#   subtract the maximum first.
# * Training maximises the **likelihood** of the labels. Products of probabilities underflow
#   (section 3 printed after how many points, in float32 and in float64), so we minimise the
#   **negative log-likelihood**, a sum.
# * The NLL of one-hot labels **is** the **cross-entropy** between labels and predictions. Its
#   gradient with respect to the logits is simply *probabilities minus labels*.
# * Compute losses from logits with **log-softmax / log-sum-exp**, never as `log(softmax(z))`;
#   PyTorch's losses take logits for this reason.
# * **Temperature** $T$ makes a softmax sharper ($T < 1$) or softer ($T > 1$).
# * Binary: one sigmoid. Multi-class: one softmax. Multi-label: one sigmoid per class.
#
# How far one template per class gets on 8x8 digits, the test accuracy of section 8 says. The
# course's 32x32 colour glyphs, letters in many fonts on photographic backgrounds, ask for far
# more than one template per class: that is the job of the convolutional networks of lesson 02.
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
