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
# # Lesson 03 · Attention and positional encoding
#
# Convolutions look at a small neighbourhood and need many layers to connect distant pixels.
# *Attention* lets every element of a sequence look at every other one in a single step, with
# weights that depend on the content. It was invented for machine translation, became the
# heart of the Transformer (lesson 04), and then of the Vision Transformer (lesson 05). This
# lesson builds it from scratch.
#
# **You will learn**
#
# 1. why an encoder-decoder that squeezes its input into one fixed vector struggles, and how a
#    context recomputed at every output step fixes it (a small translation experiment);
# 2. attention as a soft search with queries, keys and values, and why it is soft;
# 3. scaled dot-product attention, and why the scores are divided by $\sqrt{d}$;
# 4. self-attention and multi-head attention, checked against PyTorch's own layer;
# 5. why self-attention ignores order, and how sinusoidal positional encoding restores it;
# 6. character embeddings;
# 7. what attention costs compared with fully-connected layers, as the sequence grows;
# 8. cross-attention, where one sequence queries another.
#
# Each exercise is followed by a check cell. It says whether your code is not written yet (the
# rest of the notebook then uses a reference version), wrong (on which case, and why), or right.
#
# Notation: a subscript on a vector is its position in a sequence ($\mathbf{x}_t$ is the vector
# at position $t$; on the matrices of section 4 it numbers the heads). A superscript $(i)$
# would be the $i$-th example of a data set, as in lesson 01, and $c$ stays a class.

# %%
import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils import setup
from course_utils.attention import MultiHeadAttention, causal_mask
from course_utils.cache import train_once
from course_utils.exercises import lesson03 as checks
from course_utils.numberwords import english, french, split_numbers, vocabularies
from course_utils.recurrent import RecurrentTranslator, exact_matches, train_translator
from course_utils.results import record
from course_utils.widgets import attention_query_figure, attention_query_widget, word_attention

cfg = setup(seed=0)

# %%
# The translation experiment of section 1 (French number words -> English).
MAX_NUMBER = cfg.pick(quick=9_999, full=999_999)
TRAINING_NUMBERS = cfg.pick(quick=None, full=None, capped=2_000)  # None: the whole training split
TEST_NUMBERS = cfg.pick(quick=None, full=None, capped=1_000)      # None: every held-out number
EPOCHS = cfg.pick(quick=3, full=3, capped=1)
HIDDEN_SIZE = cfg.pick(quick=64, full=256)
BATCH_SIZE = cfg.pick(quick=64, full=256)
LEARNING_RATE = 1e-2

# %% [markdown]
# ## 1. The bottleneck of a fixed context
#
# Our task: translate French number words into English ones, character by character. The
# grammar of each language generates the pairs (`course_utils.numberwords`), and a set of
# numbers is held out: the test asks for numbers the model has never seen.

# %%
splits = split_numbers(MAX_NUMBER, seed=cfg.seed)
subsets = np.random.default_rng(cfg.seed)
train_numbers = subsets.permutation(splits["train"])[:TRAINING_NUMBERS]
test_numbers = np.sort(subsets.permutation(splits["test"])[:TEST_NUMBERS])
french_vocab, english_vocab = vocabularies(MAX_NUMBER)
for number in (7, 71, 80, 97, 1_999, int(test_numbers[-1])):
    print(f"{number:>7,}  {french(number)}\n{'->':>9s} {english(number)}")
print(f"numbers 1..{MAX_NUMBER:,}: {len(train_numbers):,} for training, {len(test_numbers):,} held "
      f"out for the test;\n{len(french_vocab)} French and {len(english_vocab)} English tokens "
      f"(characters plus padding, begin and end)")


def encode_numbers(numbers):
    """Source ids (N, L_x) and target ids (N, L_y) on the lesson's device; targets start with
    <bos> and end with <eos>, and short rows are padded at the end."""
    source = french_vocab.encode_batch([french(int(n)) for n in numbers])
    target = english_vocab.encode_batch([english(int(n)) for n in numbers], bos=True, eos=True)
    return source.to(cfg.device), target.to(cfg.device)


train_source, train_target = encode_numbers(train_numbers)
test_source, test_target = encode_numbers(test_numbers)
print(f"training tensors: sources {tuple(train_source.shape)}, targets {tuple(train_target.shape)};\n"
      f"the longest French source has {train_source.shape[1]} characters")

# %% [markdown]
# The classic neural translator [Sutskever et al., 2014; Cho et al., 2014] is an
# **encoder-decoder** of recurrent networks. The encoder reads the source characters
# $x_1, \dots, x_{L_x}$ one by one and updates a hidden state $\mathbf{e}_s$ after each
# position $s$; the decoder then writes the translation one character at a time, starting from
# the encoder's *last* state. Everything the decoder knows about the source must pass through
# that one vector, the **context** $\mathbf{z} = \mathbf{e}_{L_x}$, however long the source.
#
# Attention [Bahdanau et al., 2015] removes this bottleneck: at every output step $t$, the
# decoder computes a fresh context as a weighted average of *all* encoder states,
#
# $$\mathbf{z}_t = \sum_{s=1}^{L_x} \alpha_{t,s} \, \mathbf{e}_s , \qquad \sum_{s} \alpha_{t,s} = 1 ,$$
#
# where the weights $\alpha_{t,s}$ say how much source position $s$ matters for the character
# written at step $t$. Sections 2-3 explain how such weights are computed; for now, the
# experiment. Two translators with identical recurrent encoders and decoders
# (`course_utils.recurrent`) differ only in the context their output layer sees: one fixed
# vector, or one recomputed at every step. Same data, same number of training steps, same seed:
# which one translates held-out numbers better, and on which sources?

# %%
def train_on_numbers(model):
    start = time.perf_counter()
    losses = train_translator(model, train_source, train_target, epochs=EPOCHS,
                              batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, seed=cfg.seed)
    numbers_per_second = EPOCHS * len(train_source) / (time.perf_counter() - start)
    return {"step_loss": losses.tolist(), "samples_per_second": numbers_per_second}


translators, losses, correct = {}, {}, {}
for name, use_attention in (("fixed context", False), ("attention", True)):
    # Trained once, then loaded from data/checkpoints/ on the next run (lesson 02 explains).
    translators[name], trained = train_once(
        "numbers-gru-" + ("attention" if use_attention else "fixed"),
        recipe={"max_number": MAX_NUMBER, "training_numbers": len(train_source),
                "hidden_size": HIDDEN_SIZE, "epochs": EPOCHS, "batch_size": BATCH_SIZE,
                "learning_rate": LEARNING_RATE},
        build=lambda: RecurrentTranslator(
            source_vocab_size=len(french_vocab), target_vocab_size=len(english_vocab),
            hidden_size=HIDDEN_SIZE, use_attention=use_attention),
        train=train_on_numbers)
    losses[name] = np.array(trained["step_loss"])
    correct[name] = exact_matches(translators[name], test_source, test_target).numpy()
    record("03", f"{name}: held-out numbers translated exactly", correct[name].mean())
    print(f"{name:14s}: final training loss {losses[name][-20:].mean():.3f}, held-out numbers "
          f"translated exactly {correct[name].mean():.1%} (training took {trained['seconds']:.0f} s, "
          f"{trained['samples_per_second']:,.0f} numbers/s)")
print(f"({len(losses[name]):,} training steps in {EPOCHS} epoch(s), one seed; the fixed context is "
      f"one vector of {HIDDEN_SIZE} numbers)")

# %%
window = max(1, min(20, len(losses["attention"]) // 5))  # steps per moving average
smooth = {name: np.convolve(losses[name], np.ones(window) / window, mode="valid") for name in losses}
source_lengths = np.array([len(french(int(n))) for n in test_numbers])
edges = np.unique(np.quantile(source_lengths, [0, 0.25, 0.5, 0.75, 1.0]).astype(int))
edges[-1] += 1  # bins are [low, high): the longest source goes in the last one
bins = [(low, high) for low, high in zip(edges[:-1], edges[1:])
        if ((source_lengths >= low) & (source_lengths < high)).any()]
shares = {name: [correct[name][(source_lengths >= low) & (source_lengths < high)].mean()
                 for low, high in bins] for name in correct}

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
for offset, name in ((-0.2, "fixed context"), (0.2, "attention")):
    left.plot(smooth[name], label=name)
    right.bar(np.arange(len(bins)) + offset, shares[name], width=0.4, label=name)
left.set(xlabel="training step", ylabel="cross-entropy", yscale="log",
         title=f"Training loss (mean of {window} steps)")
right.set_xticks(range(len(bins)), [f"{low}-{high - 1}" for low, high in bins])
right.set(xlabel="French source length (characters)", ylabel="exact translations",
          ylim=(0, 1), title="Held-out numbers, by source length")
left.legend()
right.legend()
fig.tight_layout()

lower = (smooth["attention"] < smooth["fixed context"]).mean()
print(f"the training loss (moving average) is lower with attention on {lower:.0%} of the steps")
print(f"{'French source length':>21s} {'numbers':>8s} {'fixed context':>14s} {'attention':>10s}")
for (low, high), fixed_share, attention_share in zip(bins, shares["fixed context"], shares["attention"]):
    count = ((source_lengths >= low) & (source_lengths < high)).sum()
    print(f"{f'{low}-{high - 1}':>21s} {count:8,d} {fixed_share:14.1%} {attention_share:10.1%}")
drops = {name: shares[name][0] - shares[name][-1] for name in shares}
if drops["fixed context"] > drops["attention"]:
    print(f"from the shortest to the longest sources, the fixed context loses more "
          f"({drops['fixed context']:.1%} against {drops['attention']:.1%})")
elif drops["fixed context"] < drops["attention"]:
    print(f"from the shortest to the longest sources, attention loses more "
          f"({drops['attention']:.1%} against {drops['fixed context']:.1%})")
else:
    print("from the shortest to the longest sources, both lose the same share")

# %% [markdown]
# The printed lines answer the question for this run. What to expect in general, and why: the
# fixed context has to fit every word of the source into one vector (its size is printed
# above) before the first English character is written, and keep it there until the last one;
# the longer the source, the more it has to hold. The attention decoder can instead look back,
# at every step, at the encoder state of whatever part of the source it is translating now.
# How large the difference turns out depends on the budget: with more training both improve,
# and these numbers come from one seed. The full profile draws its numbers from 1 to 999,999,
# whose French spellings are longer (the longest source is printed above), and uses a larger
# network. Section 8 shows *where* the attention version looks.
#
# ## 2. Query, key, value: a soft search
#
# Attention is a search. A **query** describes what we are looking for; every item in the
# collection has a **key**, which is compared with the query, and a **value**, which is what
# we get back. Picture a library catalogue: you type a request, each book is found through
# its catalogue entry, but what you carry home is the book itself, not its entry. Attention
# differs from the catalogue in one way: it does not hand over the single best book but a blend
# of all of them, each mixed in according to how well its entry matched the request.
#
# A made-up library, with keys and queries described by three features (how much a text is
# about cats, cooking and history) and values of four numbers standing for each book's content:

# %%
titles = ["A history of Rome", "Cooking with cats", "The cat's whiskers", "French cooking"]
keys = torch.tensor([[0.0, 0.0, 1.0],    # cats, cooking, history
                     [1.0, 1.0, 0.0],
                     [1.0, 0.0, 0.0],
                     [0.0, 1.0, 0.2]], device=cfg.device)
values = torch.randn(4, 4, generator=torch.Generator().manual_seed(cfg.seed)).to(cfg.device)
query = torch.tensor([2.0, 0.5, 0.0], device=cfg.device, requires_grad=True)  # "mostly cats, a bit of cooking"

scores = keys @ query
soft_weights = torch.softmax(scores, dim=0)
soft_answer = soft_weights @ values
for title, score, weight in zip(titles, scores.tolist(), soft_weights.tolist()):
    print(f"{title:20s} score {score:4.1f}  weight {weight:.3f}")

def hard_attention(query):
    """The value of the single best match."""
    return values[(keys @ query).argmax()]


soft_answer.sum().backward()
print("gradient of the soft answer with respect to the query:", query.grad.cpu().numpy().round(3))
with torch.no_grad():
    nudged = query + torch.tensor([0.0, 0.1, 0.0], device=cfg.device)  # a bit more about cooking
    soft_change = (torch.softmax(keys @ nudged, dim=0) @ values - soft_answer).abs().max()
    hard_change = (hard_attention(nudged) - hard_attention(query)).abs().max()
print(f"nudging the query changes the soft answer by {soft_change:.4f}, the hard answer by "
      f"{hard_change:.4f}")

# %% [markdown]
# **Hard attention** (take the best match) returns one book, but the choice `argmax` has no
# useful gradient: a tiny change of the query changes nothing, until the answer jumps to
# another book. **Soft attention** returns a blend in which every weight changes smoothly with
# the query, so the gradient tells the query (and, in a network, the layers that produced
# it) how to become a better question. That is why attention in neural networks is soft.
#
# ### Exercise 1: masked softmax
#
# Often some keys must be hidden from some queries: padding at the end of a short sequence,
# or (lesson 04) the future in a sequence being generated. A boolean **mask** says where
# attention is allowed (True) and the softmax must give exactly 0 elsewhere. Set the masked
# scores to $-\infty$ before the softmax: $e^{-\infty} = 0$.

# %%
def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis; where ``mask`` is False (broadcast to ``scores``) the result is 0."""
    # TODO: if there is a mask, fill the masked scores with float("-inf"); then softmax.
    ### BEGIN SOLUTION
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)
    ### END SOLUTION


# %%
masked_softmax = checks.check_masked_softmax(masked_softmax)
print(masked_softmax(torch.zeros(4, 4, device=cfg.device), causal_mask(4, device=cfg.device)))

# %% [markdown]
# ## 3. Scaled dot-product attention
#
# With many queries at once, stacked as the rows of $\mathbf{Q}$ ($L_q \times d$), keys
# $\mathbf{K}$ ($L_k \times d$) and values $\mathbf{V}$ ($L_k \times d_v$), the whole search is
# two matrix products around a softmax [Vaswani et al., 2017]:
#
# $$\mathrm{Attention}(\mathbf{Q}, \mathbf{K}, \mathbf{V}) =
#   \mathrm{softmax}\!\left(\frac{\mathbf{Q}\mathbf{K}^\top}{\sqrt{d}}\right)\mathbf{V} .$$
#
# The softmax runs along each row: every query gets its own weights over the keys.
#
# ### Exercise 2: scaled dot-product attention
#
# Return both the output ($L_q \times d_v$) and the weights ($L_q \times L_k$). Make it work
# with any leading batch axes: transpose only the last two axes of the keys.

# %%
def scaled_dot_product_attention(query, key, value, mask=None):
    """(output, weights): softmax(Q K^T / sqrt(d)) V, with masked_softmax for the weights."""
    # TODO: scores, weights, output.
    ### BEGIN SOLUTION
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    weights = masked_softmax(scores, mask)
    return weights @ value, weights
    ### END SOLUTION


# %%
scaled_dot_product_attention = checks.check_scaled_dot_product_attention(scaled_dot_product_attention)

# %% [markdown]
# **Why divide by $\sqrt{d}$?** If the components of a query and a key are independent with
# mean 0 and variance 1, their dot product is a sum of $d$ such products, so its variance is
# $d$: the scores spread out as $\sqrt{d}$. Feed scores that far apart into a softmax and it
# saturates: nearly all the weight goes to the largest score, the attention turns hard, and
# the gradient vanishes. Dividing by $\sqrt{d}$ brings the spread back to 1 whatever the size.
# One query against 10,000 random keys:

# %%
generator = torch.Generator().manual_seed(cfg.seed)
dims = [2, 8, 32, 128, 512, 2048]
rows = []
for d in dims:
    query_vector = torch.randn(d, generator=generator, dtype=torch.float64).to(cfg.device)
    key_matrix = torch.randn(10_000, d, generator=generator, dtype=torch.float64).to(cfg.device)
    raw_scores = key_matrix @ query_vector
    for scaled in (False, True):
        weights = torch.softmax(raw_scores / math.sqrt(d) if scaled else raw_scores, dim=0)
        effective_keys = 1 / (weights ** 2).sum().item()     # 10,000 if uniform, 1 if one key
        largest_slope = (weights * (1 - weights)).max().item()  # largest entry of the Jacobian
        rows.append((d, scaled, raw_scores.std().item() / (math.sqrt(d) if scaled else 1),
                     weights.max().item(), effective_keys, largest_slope))
print(f"{'d':>5s} {'scaled':>7s} {'score std':>10s} {'largest weight':>15s} {'keys sharing':>13s} "
      f"{'largest Jacobian entry':>23s}")
for d, scaled, spread, largest, effective_keys, largest_slope in rows:
    print(f"{d:5d} {str(scaled):>7s} {spread:10.2f} {largest:15.4f} {effective_keys:13,.1f} "
          f"{largest_slope:23.1e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for scaled, style in ((False, "o-"), (True, "s--")):
    label = "scores / sqrt(d)" if scaled else "raw scores q . k"
    chosen = [row for row in rows if row[1] == scaled]
    axes[0].plot(dims, [row[2] for row in chosen], style, label=label)
    axes[1].plot(dims, [row[4] for row in chosen], style)
    axes[2].plot(dims, [row[5] for row in chosen], style)
axes[0].set(ylabel="standard deviation", title="Spread of the scores")
axes[1].set(ylabel="keys sharing the weight", title="1 / sum(p^2)")
axes[2].set(ylabel="largest Jacobian entry", title="Gradient through softmax")
for ax in axes:
    ax.set(xscale="log", yscale="log", xlabel="dimension d")
fig.legend(loc="lower center", ncols=2, bbox_to_anchor=(0.5, 0))
fig.tight_layout(rect=(0, 0.1, 1, 1))

# %% [markdown]
# Without scaling, the scores' spread grows as $\sqrt{d}$, and the number of keys that share
# the weight, $1/\sum_i p_i^2$ (10,000 for uniform weights, 1 when one key has everything),
# falls to one: the attention has turned hard. What that does to learning follows from the
# softmax's Jacobian, $\partial p_i / \partial s_j = p_i(\delta_{ij} - p_j)$, which carries
# the gradient from the weights back to the scores (and on to the queries and keys). Its
# largest entry is $\max_i p_i(1 - p_i)$, and when one weight is 1 and all others 0, *every*
# entry is 0: no gradient flows, and the queries and keys stop learning. Without scaling the
# entries first grow (a handful of keys share the weight) and then collapse by orders of
# magnitude as $d$ grows; with scaling, nothing depends on $d$. (With random keys the scaled
# weights are spread over thousands of keys, hence small entries; a trained model learns
# scores that concentrate where it matters, starting from the same regime at any size.)
#
# The widget shows the effect in two dimensions: turning the query changes *which* keys win;
# making it longer (like a larger $d$ without scaling) makes the winner take all. First two
# static views, a short query and a long one in the same direction:

# %%
widget_keys = [[1.0, 0.2], [0.6, 0.9], [-0.8, 0.7], [-0.5, -1.0], [0.9, -0.6]]
key_names = ["k1", "k2", "k3", "k4", "k5"]
for length in (1.0, 20.0):
    fig = attention_query_figure(widget_keys, key_names, angle_degrees=10, length=length)

# %%
attention_query_widget(widget_keys, key_names)

# %% [markdown]
# ## 4. Self-attention and multi-head attention
#
# **Self-attention** points the search inward: a sequence searches itself. Every position
# $t$ of a sequence $\mathbf{X}$ ($L \times d$, row $\mathbf{x}_t$ for position $t$) plays
# all three roles, through three learned matrices: it asks ($\mathbf{q}_t = \mathbf{x}_t
# \mathbf{W}^Q$), it can be found ($\mathbf{k}_t = \mathbf{x}_t\mathbf{W}^K$), and it hands
# over its content when found ($\mathbf{v}_t = \mathbf{x}_t\mathbf{W}^V$). Stacked, these are
# $\mathbf{Q} = \mathbf{X}\mathbf{W}^Q$, $\mathbf{K} = \mathbf{X}\mathbf{W}^K$ and
# $\mathbf{V} = \mathbf{X}\mathbf{W}^V$, and the attention of section 3 mixes them. A
# recurrent network walks along the sequence one position after another; here two matrix
# products give every position its new vector in one go, and the result has one row per
# position, like $\mathbf{X}$. Below, random embeddings of the characters of a French number
# go through an untrained layer, so the pattern means nothing yet (lesson 04 shows the
# self-attention maps of a trained encoder):

# %%
torch.manual_seed(cfg.seed)
word = french(97)
embedding = nn.Embedding(len(french_vocab), 16).to(cfg.device)
x = embedding(torch.tensor(french_vocab.encode(word), device=cfg.device))  # (L, 16)
w_query, w_key, w_value = (torch.randn(16, 16, device=cfg.device) / 4 for _ in range(3))
with torch.no_grad():
    outputs, weights = scaled_dot_product_attention(x @ w_query, x @ w_key, x @ w_value)
    one_at_a_time = torch.stack([scaled_dot_product_attention((x @ w_query)[i:i + 1], x @ w_key,
                                                              x @ w_value)[0][0]
                                 for i in range(len(word))])
print(f"input {tuple(x.shape)} -> output {tuple(outputs.shape)}; all positions at once equal one "
      f"query at a time: {torch.allclose(outputs, one_at_a_time, atol=1e-6)}")
fig, ax = plt.subplots(figsize=(6.5, 5.5))
image = ax.imshow(weights.cpu(), cmap="viridis")
ax.set_xticks(range(len(word)), list(word))
ax.set_yticks(range(len(word)), list(word))
ax.set(xlabel="key (attended character)", ylabel="query (attending character)",
       title=f"Self-attention weights of an untrained layer on '{word}'")
fig.colorbar(image, ax=ax, label="weight (each row sums to 1)")
fig.tight_layout()

# %% [markdown]
# One attention pattern per layer is limiting: a character may need to look at its neighbour
# for spelling and at the start of the word for the number's order of magnitude.
# **Multi-head attention** runs $h$ attentions in parallel, each on its own projections of size
# $d/h$, concatenates their outputs and mixes them with a last projection $\mathbf{W}^O$:
#
# $$\mathbf{O}_j = \mathrm{softmax}\!\left(\frac{\mathbf{Q}_j\mathbf{K}_j^\top}{\sqrt{d/h}}\right)\mathbf{V}_j,
#   \qquad \mathbf{Y} = [\mathbf{O}_1, \dots, \mathbf{O}_h]\,\mathbf{W}^O .$$
#
# In practice one $d \times d$ projection computes all heads' queries at once, and a reshape
# splits its output into heads. The arithmetic is the same as for one head of size $d$; only
# the $h$ attention maps (instead of one) take more memory.
#
# ### Exercise 3: multi-head self-attention
#
# `MultiHeadSelfAttention(dim, num_heads)` works on vectors of size `dim` ($d$ above) split
# into `num_heads` ($h$) heads of `dim // num_heads` features each. Use the names `q_proj`,
# `k_proj`, `v_proj`, `out_proj` (four `nn.Linear(dim, dim)` with biases), so that the check
# can load its weights into your module. In `forward`, for x of shape (N, L, dim): project;
# split each projection into heads, (N, L, dim) -> (N, L, h, dim/h) -> (N, h, L, dim/h); attend
# with your `scaled_dot_product_attention`; put the heads back side by side,
# (N, h, L, dim/h) -> (N, L, dim); apply `out_proj`.

# %%
class MultiHeadSelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        # TODO: q_proj, k_proj, v_proj, out_proj
        ### BEGIN SOLUTION
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: project, split heads, attend, merge heads, project.
        ### BEGIN SOLUTION
        batch, length, dim = x.shape

        def split(projected):
            return projected.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

        heads, _ = scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)),
                                                split(self.v_proj(x)))
        return self.out_proj(heads.transpose(1, 2).reshape(batch, length, dim))
        ### END SOLUTION


# %%
MultiHeadSelfAttention = checks.check_multi_head_self_attention(MultiHeadSelfAttention)

# %% [markdown]
# The course's `MultiHeadAttention` (in `course_utils.attention`, used by the next lessons)
# is this code with masks and separate query/key/value inputs. Loaded with the weights of
# PyTorch's `nn.MultiheadAttention`, it must give the same outputs and the same attention
# weights; and its *fused* path, which calls `F.scaled_dot_product_attention`, must agree with
# the formula computed step by step:

# %%
torch.manual_seed(cfg.seed)
reference = nn.MultiheadAttention(64, 4, batch_first=True).to(cfg.device)
ours = MultiHeadAttention(64, 4).to(cfg.device).load_from_torch(reference)
fused = MultiHeadAttention(64, 4, fused=True).to(cfg.device).load_from_torch(reference)
sequence = torch.randn(8, 50, 64, device=cfg.device)
future_hidden = causal_mask(50, device=cfg.device)
with torch.no_grad():
    expected, expected_weights = reference(sequence, sequence, sequence, attn_mask=~future_hidden,
                                           average_attn_weights=False)
    manual_output, manual_weights = ours(sequence, sequence, sequence, future_hidden, need_weights=True)
    fused_output = fused(sequence, sequence, sequence, future_hidden)
print(f"ours vs nn.MultiheadAttention: outputs differ by at most {(manual_output - expected).abs().max():.1e}, "
      f"weights by {(manual_weights - expected_weights).abs().max():.1e}")
print(f"fused vs step by step: {(fused_output - manual_output).abs().max():.1e}")
print("(nn.MultiheadAttention's boolean masks mean the opposite of ours: True = hidden)")

# %%
def milliseconds(function, repeats=7):
    """The fastest of several runs: the least disturbed by whatever else the computer does."""
    def timed():
        start = time.perf_counter()
        function()
        if cfg.device.type == "cuda":
            torch.cuda.synchronize()  # a GPU runs asynchronously: wait until it has finished
        return time.perf_counter() - start

    timed()  # warm up
    return 1000 * min(timed() for _ in range(repeats))


speedups = []
print(f"{'length':>7s} {'step by step':>13s} {'fused':>9s} {'speed-up':>9s}")
for length in (64, 256, 1024):
    q = k = v = torch.randn(4, 4, length, 32, device=cfg.device)
    with torch.no_grad():
        manual_ms = milliseconds(lambda: scaled_dot_product_attention(q, k, v))
        fused_ms = milliseconds(lambda: F.scaled_dot_product_attention(q, k, v))
    speedups.append(manual_ms / fused_ms)
    print(f"{length:7d} {manual_ms:10.2f} ms {fused_ms:6.2f} ms {speedups[-1]:8.1f}x")
faster = "faster at every length" if min(speedups) > 1 else "not faster at every length"
trend = "grows" if speedups[-1] > speedups[0] else "does not grow"
print(f"on this {cfg.device.type.upper()}, the fused kernel is {faster},\nand its speed-up {trend} "
      f"from the shortest to the longest sequence")

# %% [markdown]
# The fused kernel computes the same numbers without storing the $L \times L$ weights in
# memory all at once (it works block by block [Dao et al., 2022]). How much time it saves
# depends on the machine; the last line above says what it did here (on a shared CPU the
# times vary from run to run). On GPUs such fused kernels are what makes long sequences
# affordable. It cannot return the weights, so we use the step-by-step path whenever we want to
# look at them.
#
# ## 5. Order: permutation equivariance and positional encoding
#
# Self-attention has no idea where each element sits. You may have noticed it in section 4's
# map: the three "t" of "quatre-vingt-dix-sept" have identical rows, because identical inputs
# ask identical questions wherever they are. Shuffle the input sequence and the outputs are
# shuffled the same way, otherwise unchanged: each output depends on its own query and on the
# *set* of keys and values. In double precision, so that rounding errors do not blur the
# comparison:

# %%
torch.manual_seed(cfg.seed)
layer = MultiHeadAttention(16, 2).double().to(cfg.device)
sequence = torch.randn(1, 10, 16, dtype=torch.float64, device=cfg.device)
shuffle = torch.randperm(10, device=cfg.device)
shuffled = sequence[:, shuffle]
with torch.no_grad():
    shuffled_then_attended = layer(shuffled, shuffled, shuffled)
    attended_then_shuffled = layer(sequence, sequence, sequence)[:, shuffle]
print(f"permutation {shuffle.tolist()}: the outputs differ by at most "
      f"{(shuffled_then_attended - attended_then_shuffled).abs().max():.1e}")

# %% [markdown]
# For "quatre-vingt-dix-sept" that is fatal: the same letters in another order mean something
# else, or nothing. The Transformer therefore *adds* a **positional encoding** to each input
# vector, a vector that depends only on the position $p$. Vaswani et al. used sines and
# cosines of geometrically spaced frequencies:
#
# $$\mathrm{PE}(p, 2k) = \sin(\omega_k\, p), \qquad \mathrm{PE}(p, 2k+1) = \cos(\omega_k\, p),
#   \qquad \omega_k = \frac{1}{10000^{2k/d}}, \quad k = 0, \dots, d/2 - 1 .$$
#
# ### Exercise 4: sinusoidal positional encoding
#
# Return the $L \times d$ table ($d$ even) as float32.

# %%
def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """(length, dim): sin(p w_k) in column 2k, cos(p w_k) in column 2k + 1."""
    # TODO: positions as a column (length, 1), frequencies as a row (dim / 2,), fill the table.
    ### BEGIN SOLUTION
    positions = torch.arange(length, dtype=torch.float64)[:, None]
    frequencies = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies)
    return table.float()
    ### END SOLUTION


# %%
sinusoidal_encoding = checks.check_sinusoidal_encoding(sinusoidal_encoding)
positions = sinusoidal_encoding(10, 16).double().to(cfg.device)  # row p is added to position p
shuffled_with_positions = shuffled + positions
in_order_with_positions = sequence + positions
with torch.no_grad():
    shuffled_then_attended = layer(shuffled_with_positions, shuffled_with_positions,
                                   shuffled_with_positions)
    attended_then_shuffled = layer(in_order_with_positions, in_order_with_positions,
                                   in_order_with_positions)[:, shuffle]
change = (shuffled_then_attended - attended_then_shuffled).abs().max()
print(f"with positional encoding added, the same permutation changes the outputs by up to "
      f"{change:.2f},\nfor outputs of typical size {attended_then_shuffled.abs().mean():.2f}")

# %%
table = sinusoidal_encoding(100, 64)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
image = left.imshow(table.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
left.set(xlabel="position p", ylabel="dimension (2k: sin, 2k+1: cos)",
         title="Sinusoidal encoding, d = 64")
fig.colorbar(image, ax=left)
offsets = np.arange(0, 50)
for start, style, width in ((0, "-", 4), (20, "--", 2.5), (50, ":", 1.5)):
    products = [(table[start] @ table[start + k]).item() for k in offsets]
    right.plot(offsets, products, ls=style, lw=width, label=f"from position {start}")
right.set(xlabel="offset k", ylabel="PE(p) . PE(p + k)",
          title="Same curve from every start p")
right.legend()
fig.tight_layout()

# %% [markdown]
# The left panel reads like a binary counter made smooth: the first dimensions oscillate
# quickly with the position, the last ones very slowly. Its properties, checked by code:

# %%
long_table = sinusoidal_encoding(10_000, 64).to(cfg.device)
distances = torch.cdist(long_table[:1000], long_table[:1000])
distances.fill_diagonal_(float("inf"))
print(f"unique: the closest two of the first 1,000 positions are {distances.min():.3f} apart")
print(f"bounded: every value lies in [{long_table.min():.3f}, {long_table.max():.3f}]")
print("no parameters: the table is a fixed function; any length: 10,000 positions computed")
offset = 7
frequencies = 10000.0 ** (-torch.arange(0, 64, 2, dtype=torch.float64, device=cfg.device) / 64)
rotation = torch.zeros(64, 64, dtype=torch.float64, device=cfg.device)
for k, angle in enumerate(offset * frequencies):
    rotation[2 * k:2 * k + 2, 2 * k:2 * k + 2] = torch.stack([torch.stack([angle.cos(), -angle.sin()]),
                                                              torch.stack([angle.sin(), angle.cos()])])
predicted = long_table[:-offset].double() @ rotation
print(f"offset property: PE(p + {offset}) = PE(p) @ M for one fixed matrix M (a rotation in each "
      f"sine/cosine pair),\nfor all p: largest error {(predicted - long_table[offset:]).abs().max():.1e}")

# %% [markdown]
# The offset property is the reason for the design: moving $k$ positions is the same linear
# map everywhere, so a layer can learn "look two characters back" once, for every position.
# What the encoding does not supply is any knowledge of which offsets matter: that "quatre"
# followed by "vingt" means 80, not 4 + 20, is for the layers above to discover in training;
# the encoding only makes such a rule expressible. (Many later models learn their position
# vectors instead, as the Vision Transformer does in lesson 05.)
#
# ## 6. Character embeddings
#
# Attention works on vectors, so every character needs one. Take an alphabet of 26 letters
# and vectors of $d$ numbers. **Before you run the next cell, decide:** how would you give each
# letter its vector when $d \geq 26$? And when $d < 26$? What does your choice say about how
# similar two letters are? Then run the cell, which compares three possible codes.

# %%
alphabet = "abcdefghijklmnopqrstuvwxyz"
letter_ids = torch.arange(26, device=cfg.device)
one_hot_codes = F.one_hot(letter_ids, num_classes=26).float()                        # (26, 26)
bits = torch.arange(4, -1, -1, device=cfg.device)
binary_codes = ((letter_ids[:, None] >> bits) & 1).float()                           # (26, 5)
print(f"{'code':>10s} {'d':>3s} {'distinct':>9s} {'distances between two letters':>30s}")
for name, codes in (("one-hot", one_hot_codes), ("binary", binary_codes)):
    distances = torch.pdist(codes)                         # all 325 pairs of different letters
    distinct = len(torch.unique(codes, dim=0)) == 26
    print(f"{name:>10s} {codes.shape[1]:3d} {str(distinct):>9s} "
          f"{f'{distances.min():.3f} to {distances.max():.3f}':>30s}")
print(f"binary: 'a'-'b' {(binary_codes[0] - binary_codes[1]).norm():.3f}, "
      f"'a'-'h' {(binary_codes[0] - binary_codes[7]).norm():.3f}")

letters = torch.tensor([alphabet.index(c) for c in "attention"], device=cfg.device)
embedding = nn.Embedding(26, 8).to(cfg.device)
print(f"learned embedding: table {tuple(embedding.weight.shape)}, {embedding.weight.numel()} "
      f"parameters; lookup = one-hot @ table: "
      f"{torch.allclose(embedding(letters), one_hot_codes[letters] @ embedding.weight)}")

# %% [markdown]
# What the numbers say:
#
# * **one-hot**, possible when $d \geq 26$: letter $i$ gets a 1 in position $i$ and zeros
#   elsewhere (padded with zeros up to $d$). No parameters, and every pair of letters sits at
#   the same distance, $\sqrt{2}$: the code tells the letters apart but says nothing about
#   which ones resemble each other;
# * a **binary code**: 26 letters need only $\lceil \log_2 26 \rceil = 5$ bits, so $d = 5$
#   already tells them apart. But the distances it creates are accidents of the numbering: "a"
#   (00000) and "b" (00001) come out closer than "a" and "h" (00111);
# * a **learned embedding** for any $d$, in particular $d < 26$: `nn.Embedding(26, d)`, a table
#   of $26d$ trainable numbers, one row per letter, which training is free to arrange so that
#   letters that behave alike end up close. The lookup is a matrix product with the one-hot
#   code, just cheaper.
#
# ## 7. What attention costs
#
# Compare two ways to transform a sequence $\mathbf{X}$ of $L$ tokens of size $d$ (biases
# ignored):
#
# * two fully-connected layers applied to every token, $\mathbf{Y} = (\mathbf{X}\mathbf{W}^1)\mathbf{W}^2$,
#   with $n$ neurons then $d$;
# * a simplified self-attention without softmax,
#   $\mathbf{Y} = (\mathbf{X}\mathbf{W}^Q)(\mathbf{X}\mathbf{W}^K)^\top(\mathbf{X}\mathbf{W}^V)\mathbf{W}^O$,
#   all four matrices $d \times d$, computed from left to right.
#
# ### Exercise 5: the cost of attention
#
# For each of the two, count the parameters and the floating-point operations (FLOPs), and
# give the shape of the output $\mathbf{Y}$ as a tuple (rows, columns). Multiplying an
# $a \times b$ matrix by a $b \times c$ one takes $abc$ multiply-adds, i.e. $2abc$ FLOPs.

# %%
def layer_costs(length: int, dim: int, hidden: int) -> dict:
    """Costs for X of shape (L, d): integers "fc_params", "fc_flops", "attention_params",
    "attention_flops", and tuples "fc_output_shape", "attention_output_shape"."""
    # TODO: six answers in L = length, d = dim, n = hidden.
    ### BEGIN SOLUTION
    fc_flops = 2 * length * dim * hidden + 2 * length * hidden * dim
    attention_flops = 4 * 2 * length * dim * dim + 2 * 2 * length * length * dim
    return {"fc_params": 2 * dim * hidden, "fc_flops": fc_flops, "fc_output_shape": (length, dim),
            "attention_params": 4 * dim * dim, "attention_flops": attention_flops,
            "attention_output_shape": (length, dim)}
    ### END SOLUTION


# %%
layer_costs = checks.check_layer_costs(layer_costs)


def readable_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"


DIM, HIDDEN = 1024, 2048
print(f"{'L':>10s} {'FC params':>11s} {'FC GFLOPs':>11s} {'attn params':>12s} {'attn GFLOPs':>12s} "
      f"{'L x L weights':>14s}")
for length in (50, 784, 1_048_576):
    costs = layer_costs(length, DIM, HIDDEN)
    print(f"{length:10,d} {costs['fc_params']:11,d} {costs['fc_flops'] / 1e9:11,.1f} "
          f"{costs['attention_params']:12,d} {costs['attention_flops'] / 1e9:12,.1f} "
          f"{readable_bytes(4 * length ** 2):>14s}")  # float32 weights
for length in (50, 784, 1_048_576):
    costs = layer_costs(length, DIM, HIDDEN)
    print(f"L = {length:,}: output shapes {costs['fc_output_shape']} (fully-connected) and "
          f"{costs['attention_output_shape']} (attention)")

# %% [markdown]
# The formulas: both outputs are $L \times d$;
#
# * fully-connected: $2dn$ parameters and $2Ldn + 2Lnd = 4Ldn$ FLOPs;
# * attention: $4d^2$ parameters and $4 \cdot 2Ld^2$ FLOPs for the four projections plus
#   $2 \cdot 2L^2d$ for the two $L \times L$ products, $8Ld^2 + 4L^2d$ in all.
#
# Fifty tokens are a sentence; 784 is a 28x28 image with one token per pixel; 1,048,576 a
# 1024x1024 image. Both layers have the same parameters here ($n = 2d$), and the same output
# shape. But the attention matrix alone, in float32, needs terabytes at the last length (last
# column), and its FLOPs grow with $L^2$. The formulas can be checked against PyTorch's FLOP
# counter: on real tensors where they fit in memory, and on PyTorch's "meta" device (shapes
# only, nothing stored) for the longest sequence:

# %%
for length in (50, 784):
    x = torch.randn(length, DIM, device=cfg.device)
    w1, w2 = torch.randn(DIM, HIDDEN, device=cfg.device), torch.randn(HIDDEN, DIM, device=cfg.device)
    wq, wk, wv, wo = (torch.randn(DIM, DIM, device=cfg.device) for _ in range(4))
    with FlopCounterMode(display=False) as fc_counter:
        (x @ w1) @ w2
    with FlopCounterMode(display=False) as attention_counter:
        (((x @ wq) @ (x @ wk).T) @ (x @ wv)) @ wo
    costs = layer_costs(length, DIM, HIDDEN)
    print(f"L = {length}: counted {fc_counter.get_total_flops():,} and "
          f"{attention_counter.get_total_flops():,} FLOPs; formulas "
          f"{costs['fc_flops']:,} and {costs['attention_flops']:,}")
with torch.device("meta"):
    x = torch.empty(1_048_576, DIM)
    wq, wk, wv, wo = (torch.empty(DIM, DIM) for _ in range(4))
    with FlopCounterMode(display=False) as attention_counter:
        (((x @ wq) @ (x @ wk).T) @ (x @ wv)) @ wo
print(f"L = 1,048,576 (meta tensors): counted {attention_counter.get_total_flops():,} attention "
      f"FLOPs;\nformula {layer_costs(1_048_576, DIM, HIDDEN)['attention_flops']:,}")

# %%
lengths = np.unique(np.logspace(1, 6.1, 200).astype(int))
attention_total = [layer_costs(int(L), DIM, HIDDEN)["attention_flops"] for L in lengths]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
for hidden, style in ((HIDDEN, "-"), (4 * DIM, "--")):
    fc = [layer_costs(int(L), DIM, hidden)["fc_flops"] for L in lengths]
    left.plot(lengths, fc, style, label=f"two fully-connected layers, n = {hidden // DIM}d")
    right.plot(lengths, np.divide(attention_total, fc), style, label=f"n = {hidden // DIM}d")
    crossover = hidden - 2 * DIM
    if crossover > 0:
        right.axvline(crossover, color="grey", ls=":", lw=1)
        right.annotate(f"L = n - 2d = {crossover:,}:\nattention starts\nto cost more",
                       (crossover, 1), xytext=(12, 2.5), fontsize=10,
                       arrowprops={"arrowstyle": "->"})
left.plot(lengths, attention_total, label="self-attention, total")
left.plot(lengths, [4 * L ** 2 * DIM for L in lengths], ":", label="its L x L products alone")
left.set(xscale="log", yscale="log", xlabel="sequence length L", ylabel="FLOPs",
         title=f"Cost of one layer, d = {DIM}")
right.axhline(1, color="black", lw=0.8)
right.set(xscale="log", yscale="log", xlabel="sequence length L",
          ylabel="attention / fully-connected FLOPs", title="Where attention overtakes")
left.legend(fontsize=10)
right.legend(loc="upper left")
fig.tight_layout()
for hidden in (HIDDEN, 4 * DIM):
    ratios = [layer_costs(L, DIM, hidden)["attention_flops"] / layer_costs(L, DIM, hidden)["fc_flops"]
              for L in (784, 1_048_576)]
    print(f"n = {hidden // DIM}d: attention costs {ratios[0]:.2f} times the fully-connected FLOPs at "
          f"L = 784, {ratios[1]:,.0f} times at L = 1,048,576")

# %% [markdown]
# Attention costs more than the fully-connected layers once $8Ld^2 + 4L^2d > 4Ldn$, i.e. for
# $L > n - 2d$. With the exercise's $n = 2d$ that is every length, and it is already dearer at
# $L = 784$ (the ratios are printed above). With the Transformer's usual feed-forward width
# $n = 4d$, the crossover is at $L = 2d$, 2,048 tokens here. Beyond a few thousand tokens the
# $L^2$ term dominates everything, and at a million tokens attention costs hundreds of times
# more. This is why a Vision Transformer cannot treat every pixel as a token and cuts the image
# into patches instead (lesson 05). (Without the softmax,
# multiplying in another order, $\mathbf{Q}(\mathbf{K}^\top\mathbf{V})$, would avoid the
# $L \times L$ matrix altogether; the softmax forbids that reordering, which is what "linear
# attention" methods work around [Katharopoulos et al., 2020].)
#
# ## 8. Cross-attention
#
# In self-attention, one sequence provides the queries, the keys and the values. In
# **cross-attention** (or mutual attention) the queries come from one sequence, the *target*,
# and the keys and values from another, the *source*: a question asked of a document, a
# caption looking at an image, or, in section 1, the English being written looking at the
# French. There are as many outputs as queries (the target's length), and the attention map is
# target length x source length. The shapes, with the course's layer and random sequences:

# %%
cross_attention = MultiHeadAttention(16, 2).to(cfg.device)
target_sequence = torch.randn(1, 12, 16, device=cfg.device)
source_sequence = torch.randn(1, 30, 16, device=cfg.device)
with torch.no_grad():
    output, weights = cross_attention(target_sequence, source_sequence, source_sequence,
                                      need_weights=True)
print(f"queries from the target {tuple(target_sequence.shape)}, keys and values from the source "
      f"{tuple(source_sequence.shape)}\n-> output {tuple(output.shape)}, weights "
      f"{tuple(weights.shape)} = (batch, heads, target length, source length)")

# %% [markdown]
# The translator of section 1 can now be read in full. Its attention step is cross-attention
# with one head and no projections: each decoder state is a query, the encoder states are both
# the keys and the values, the scores are scaled by $1/\sqrt{d}$, and a mask hides the padding
# after short sources:

# %%
print(inspect.getsource(RecurrentTranslator.context))

# %% [markdown]
# Where does the trained translator look? For two held-out numbers, each English word of its
# output (averaged over the word's characters) and the attention it gives each French word
# (summed over the word's characters, with the hyphen or space after it):

# %%
translated = test_numbers[correct["attention"]] if correct["attention"].any() else test_numbers
examples = []
for construction in ("soixante-dix", "quatre-vingt"):
    candidates = [int(n) for n in translated if construction in french(int(n)) and n not in examples]
    examples.append(max(candidates or [int(n) for n in translated], key=lambda n: len(french(n))))

maps = {}
for number in examples:
    source, _ = encode_numbers([number])
    tokens, weights = translators["attention"].translate(source)
    # An untrained model may babble on: keep at most as many characters as the right answer has.
    output = english_vocab.decode(tokens[0])[:len(english(number))]
    if output:  # or write nothing at all
        maps[number] = (output, word_attention(weights[0, :len(output)].cpu(), french(number), output))
    correction = "" if output == english(number) else f"\n   expected {english(number)!r}"
    print(f"{number:,}: {french(number)}\n   -> {output!r}{correction}")

fig, axes = plt.subplots(max(1, len(maps)), 1, figsize=(9, 3.6 * max(1, len(maps))), squeeze=False)
for ax, (number, (output, by_words)) in zip(axes[:, 0], maps.items()):
    french_words, english_words = french(number).replace("-", " ").split(), output.replace("-", " ").split()
    ax.imshow(by_words, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    for (row, column), weight in np.ndenumerate(by_words):
        if weight >= 0.1:
            ax.text(column, row, f"{weight:.1f}", ha="center", va="center", fontsize=10,
                    color="white" if weight > 0.5 else "black")
    ax.set_xticks(range(len(french_words)), french_words)
    ax.set_yticks(range(len(english_words)), english_words)
    ax.set(xlabel="French source (keys and values)", ylabel="English output (queries)",
           title=f"{number:,}: weight of each French word")
fig.tight_layout()

# %% [markdown]
# Each row is one English word being written, and its dark cells are the French words it
# reads. (The encoder reads from left to right, so its state at a character summarises the
# source *up to* that character: weight on a French word stands for the text up to its end.)
# Does an English word read the French word with the same value, "four" reading "quatre",
# "hundred" reading "cent"? The next cell counts it, for every English word that has a
# one-word French counterpart:

# %%
counterparts = {english(n): {french(n)} for n in [*range(1, 17), 20, 30, 40, 50, 60]}
counterparts.update(hundred={"cent", "cents"}, thousand={"mille"})
matched = counted = 0
print(f"{'number':>8s} {'English word':>13s} {'reads most':>11s} {'weight':>7s} {'counterpart':>12s}")
for number, (output, by_words) in maps.items():
    french_words, english_words = french(number).replace("-", " ").split(), output.replace("-", " ").split()
    for english_word, row in zip(english_words, by_words):
        most_read = french_words[row.argmax()]
        counterpart = counterparts.get(english_word)
        if counterpart is not None:
            counted += 1
            matched += most_read in counterpart
        verdict = "-" if counterpart is None else ("yes" if most_read in counterpart else "no")
        print(f"{number:8,d} {english_word:>13s} {most_read:>11s} {row.max():7.2f} {verdict:>12s}")
print(f"{matched} of the {counted} English words with a one-word French counterpart read that word "
      f"most")

# %% [markdown]
# Nobody told the model which words correspond: whatever alignment the table shows came from
# the translation loss alone, and so did its exceptions. Words without a one-word counterpart
# ("seventy" for "soixante-dix", "ninety" for "quatre-vingt-dix") have to read two French words
# or more. And a row averages over the word's characters: once the first letters of "seven"
# are written, English spelling alone dictates the rest, wherever the attention goes. These
# maps come from one small model, trained once: the details change from run to run, and with
# the profile's budget.
#
# ## Summary
#
# * A single fixed context vector is a bottleneck; attention recomputes the context at every
#   output step as a weighted average of all encoder states, with weights summing to 1.
# * Attention is a soft, differentiable search: queries are compared with keys, and the
#   values are averaged with the softmax of the scores. Masks hide keys by setting their
#   scores to $-\infty$.
# * Dot products of $d$-dimensional vectors spread as $\sqrt{d}$; dividing by $\sqrt{d}$ keeps
#   the softmax from saturating and the gradients alive.
# * In self-attention a sequence searches itself: each position is projected into a query, a
#   key and a value, and two matrix products update every position at once. Multi-head
#   attention splits the features into several smaller searches and mixes their results.
# * Self-attention is permutation-equivariant; positional encodings inject order. Sinusoidal
#   ones are unique, bounded, parameter-free, work for any length, and turn offsets into
#   fixed linear maps.
# * Attention's cost grows with $L^2$ in compute and memory: it costs more than a two-layer
#   fully-connected block of width $n$ once $L > n - 2d$ (2,048 tokens for $d = 1024$ and the
#   usual $n = 4d$), which is why images are cut into patches.
# * Cross-attention takes queries from the target and keys and values from the source; its
#   map is target length x source length.
#
# ## References
#
# * I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to Sequence Learning with Neural Networks",
#   NeurIPS 2014; K. Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
#   Statistical Machine Translation", EMNLP 2014.
# * D. Bahdanau, K. Cho, Y. Bengio, "Neural Machine Translation by Jointly Learning to Align and
#   Translate", ICLR 2015.
# * M.-T. Luong, H. Pham, C. D. Manning, "Effective Approaches to Attention-based Neural Machine
#   Translation", EMNLP 2015.
# * A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
# * T. Dao, D. Y. Fu, S. Ermon, A. Rudra, C. Ré, "FlashAttention: Fast and Memory-Efficient
#   Exact Attention with IO-Awareness", NeurIPS 2022.
# * A. Katharopoulos, A. Vyas, N. Pappas, F. Fleuret, "Transformers are RNNs: Fast
#   Autoregressive Transformers with Linear Attention", ICML 2020.
