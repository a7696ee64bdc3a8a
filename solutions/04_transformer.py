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
# # Lesson 04 · The Transformer
#
# Lesson 03 built attention and used it inside a recurrent translator. The Transformer
# [Vaswani et al., 2017] drops the recurrence altogether: an **encoder** of stacked
# self-attention layers reads the whole source at once, and a **decoder** of stacked layers
# writes the translation, looking at what it has written so far (masked self-attention) and at
# the source (cross-attention). The same blocks, unchanged, are the backbone of the Vision
# Transformer of lesson 05. In this lesson you assemble a Transformer from these blocks and
# train it to translate French number words into English, on numbers it has never seen.
#
# **You will learn**
#
# 1. what each part of an encoder layer does (self-attention, residual connections, layer
#    norm, feed-forward), and the difference between post-norm and pre-norm;
# 2. the decoder layer: the causal mask and cross-attention;
# 3. teacher forcing: training on a whole target sequence in one pass;
# 4. how to train a small encoder-decoder on number words;
# 5. greedy decoding at test time, and why it behaves differently from training;
# 6. what the trained translator gets wrong;
# 7. where its decoder looks in the source (cross-attention maps, per layer and head);
# 8. the architecture's strengths and costs.
#
# Exercises are checked as before: ⌛ not done (the reference is used), ❌ what failed, ✅ done.

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
from course_utils.attention import MultiHeadAttention
from course_utils.exercises import lesson04 as checks
from course_utils.numberwords import CharVocabulary, english, french, split_numbers, vocabularies
from course_utils.transformer import EncoderLayer, FeedForward, Seq2SeqTransformer, beam_search
from course_utils.widgets import cross_attention_figure, translation_widget

cfg = setup(seed=0)

# %%
# The translator of sections 4-7. The quick profile fits a 2-core laptop (about 30 s of
# training); the full one is meant for a GPU.
MAX_NUMBER = cfg.pick(quick=9_999, full=999_999)
DIM = cfg.pick(quick=32, full=128)
NUM_HEADS = cfg.pick(quick=4, full=8)
HIDDEN = 4 * DIM  # the feed-forward width, four times the model width as in the paper
NUM_LAYERS = cfg.pick(quick=2, full=3)  # encoder layers, and as many decoder layers
BATCH_SIZE = cfg.pick(quick=64, full=256)
EPOCHS = 3
LEARNING_RATE = cfg.pick(quick=1e-2, full=2e-3)
TEST_SAMPLE = cfg.pick(quick=None, full=5_000)  # None: every held-out number

# %% [markdown]
# ## 1. The encoder layer
#
# An encoder layer turns a sequence of $L$ vectors of size $d$ into another sequence of the
# same shape, in two steps, each wrapped in a residual connection and a layer norm. In the
# paper's order ("post-norm"):
#
# $$\mathbf{Z} = \mathrm{LayerNorm}\big(\mathbf{X} + \mathrm{MultiHeadSelfAttention}(\mathbf{X})\big),
# \qquad
# \mathbf{Y} = \mathrm{LayerNorm}\big(\mathbf{Z} + \mathrm{FFN}(\mathbf{Z})\big),$$
#
# where $\mathrm{FFN}(\mathbf{z}) = \max(0, \mathbf{z}\mathbf{W}_1 + \mathbf{b}_1)\mathbf{W}_2 +
# \mathbf{b}_2$ is a two-layer network applied to every position separately, with a hidden
# width $n$ (usually $4d$). The encoder is a stack of such layers (six in the paper). Here is
# the package's layer, the one the translator uses; the tests check that it computes exactly
# what PyTorch's `nn.TransformerEncoderLayer` computes with the same weights.

# %%
print(inspect.getsource(EncoderLayer.forward))

# %% [markdown]
# Each part has its own job:
#
# * **self-attention** mixes information *across positions*: every output depends on every
#   input, in one layer (global context);
# * the **feed-forward network** works *within* each position: it transforms each token's
#   vector on its own, with the same weights everywhere;
# * the **residual connection** ($\mathbf{X} + \dots$) keeps an identity path: a layer only
#   has to learn a correction to its input, the input's information survives, and gradients
#   reach the lower layers directly (lesson 02's ResNets); the output mixes what the layer
#   computed with the representations of all the layers below;
# * **layer norm** [Ba et al., 2016] normalises each token's vector over its $d$ features,
#   keeping the values in a stable range however deep the stack. (It normalises each token on
#   its own: unlike batch norm, it does not depend on the other sequences in the batch, or on
#   the padding.)
#
# The first two claims can be measured on an untrained layer. Change the first token of a
# sequence of 12 and see which outputs move: for self-attention, and, for comparison, for a
# convolution with a kernel of 3 (lesson 02).

# %%
torch.manual_seed(0)
layer = EncoderLayer(DIM, NUM_HEADS, HIDDEN).eval()
convolution = nn.Conv1d(DIM, DIM, kernel_size=3, padding=1)
x = torch.randn(1, 12, DIM)
changed = x.clone()
changed[0, 0] += 1.0
with torch.no_grad():
    moved_attention = (layer(changed) - layer(x)).abs().amax(dim=-1)[0] > 1e-6
    moved_convolution = (convolution(changed.transpose(1, 2)) -
                         convolution(x.transpose(1, 2))).abs().amax(dim=1)[0] > 1e-6
    feed_forward = layer.feed_forward
    one_at_a_time = torch.cat([feed_forward(x[:, i:i + 1]) for i in range(12)], dim=1)
    per_token_gap = (feed_forward(x) - one_at_a_time).abs().max().item()
print(f"outputs that moved when token 1 changed: encoder layer {int(moved_attention.sum())} of 12, "
      f"convolution (kernel 3) {int(moved_convolution.sum())} of 12")
print(f"feed-forward on the whole sequence vs one token at a time: largest difference {per_token_gap:.1e}")

# %% [markdown]
# One layer of self-attention connects every position with every other; the convolution
# reaches only the neighbours, and would need many layers to connect distant tokens. The
# feed-forward network gives the same result on one token alone as in the sequence (up to
# rounding): it never mixes positions. Attention gathers, the feed-forward network transforms.
#
# ### Post-norm or pre-norm?
#
# Where to put the layer norm turned out to matter. The original *post-norm* layer normalises
# after each addition, so the residual path itself passes through a layer norm in every layer.
# *Pre-norm* normalises only the input of each sub-layer and leaves the residual path alone:
#
# $$\mathbf{Z} = \mathbf{X} + \mathrm{MultiHeadSelfAttention}(\mathrm{LayerNorm}(\mathbf{X})),
# \qquad \mathbf{Y} = \mathbf{Z} + \mathrm{FFN}(\mathrm{LayerNorm}(\mathbf{Z})),$$
#
# with one last layer norm at the top of the stack. Xiong et al. [2020] showed that at
# initialisation the gradients of post-norm's top layers are large whatever the depth, while
# pre-norm's shrink as the stack gets deeper (as $1/\sqrt{\text{depth}}$). Large gradients at
# the top, with a large learning rate from the first step, make post-norm training unstable: it
# needs a learning-rate warm-up (Vaswani et al. used 4,000 steps). Pre-norm is much less
# sensitive (Xiong et al. train it without any warm-up; a short one is still common, as in our
# schedule below) and is the default of GPT-2 and the Vision Transformer. Its price: the
# residual stream is a growing sum, so each new layer changes it relatively less. Both effects,
# measured on untrained stacks of 24 layers (plus a stack with no norm at all):

# %%
def stack_statistics(norm_first: bool | None, depth: int = 24, dim: int = 64):
    """Size of the residual stream after each layer, and the gradient reaching each layer's
    feed-forward weights, for an untrained stack (None: no layer norm at all)."""
    torch.manual_seed(0)
    layers = nn.ModuleList([EncoderLayer(dim, 4, 4 * dim, norm_first=bool(norm_first))
                            for _ in range(depth)])
    if norm_first is None:
        for block in layers:
            block.norm1, block.norm2 = nn.Identity(), nn.Identity()
    x = torch.randn(16, 20, dim)
    sizes = []
    for block in layers:
        x = block(x)
        sizes.append(x.std().item())
    if norm_first:
        x = F.layer_norm(x, (dim,))  # the final norm of a pre-norm stack
    head = nn.Linear(dim, 10)
    labels = torch.randint(0, 10, (16, 20))
    F.cross_entropy(head(x).flatten(0, 1), labels.flatten()).backward()
    gradients = [block.feed_forward[3].weight.grad.norm().item() for block in layers]
    return np.array(sizes), np.array(gradients)


stacks = {"post-norm": stack_statistics(False), "pre-norm": stack_statistics(True),
          "no norm": stack_statistics(None)}
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
for name, (sizes, gradients) in stacks.items():
    left.plot(range(1, 25), sizes, marker=".", label=name)
    if name != "no norm":
        right.plot(range(1, 25), gradients, marker=".", label=name)
left.set(xlabel="layer", ylabel="standard deviation of the layer's output", yscale="log",
         title="Residual stream, untrained 24-layer stacks")
right.set(xlabel="layer", ylabel="gradient norm of the FFN's output weights",
          title="Gradients at initialisation (random labels)")
left.legend()
right.legend()
fig.tight_layout()
for name, (sizes, gradients) in stacks.items():
    print(f"{name:9s}: output size after layer 1 {sizes[0]:.2f}, after layer 24 {sizes[-1]:.2f}"
          + (f"; gradient at layer 24 / at layer 1 = {gradients[-1] / gradients[0]:.2f}"
             if name != "no norm" else ""))
top_ratio = stacks["post-norm"][1][-1] / stacks["pre-norm"][1][-1]
print(f"gradient at the top layer, post-norm / pre-norm: {top_ratio:.1f}")

# %% [markdown]
# Without any norm the residual sum grows with every layer (left, log scale):
# this is the range the layer norm keeps in check. Post-norm resets the scale to 1 after every
# layer; pre-norm lets the stream grow more slowly. On the right, pre-norm's gradients are
# largest at the bottom of the stack and fall towards the top: a low layer's output travels up
# the residual stream into every later sub-layer, so gradients reach it along many paths, while
# a top layer adds a small part to a large sum (Shleifer et al. [2021] report the same pattern
# in trained pre-norm models). Post-norm's stay at about the same level throughout, so at the
# top layer post-norm's gradient is the larger one (the ratio is printed above), as Xiong et
# al.'s analysis predicts. (Their $1/\sqrt{\text{depth}}$ compares the top layers of stacks of
# different depths; the curves here compare the layers of one stack.) These are untrained
# stacks with a random loss; what matters in training is the size of the first updates, and a
# warm-up keeps post-norm's small. Our translator uses pre-norm, as lesson 05's ViT will. (Try
# it: set `norm_first=False` in section 4 and compare.)
#
# ## 2. The decoder layer
#
# The decoder writes the translation one character at a time. Its layers have three parts:
#
# 1. **masked self-attention** over the characters written so far: each position may look at
#    itself and the positions before it, never after (the future is not known at test time);
# 2. **cross-attention** into the encoder's output (called the *memory*): queries come from
#    the target side, keys and values from the source;
# 3. the **feed-forward** network; each part again with a residual connection and a norm.
#
# The mask is a boolean matrix: row $i$ is the query at position $i$, column $j$ the key at
# position $j$, and True means "may attend". It is lower-triangular, hence the name *causal*.
#
# ### Exercise 1: the causal mask
#
# Return the $L \times L$ boolean mask, True on and below the diagonal.

# %%
def causal_mask(length: int, device=None) -> torch.Tensor:
    """(length, length) booleans: True where query i may attend to key j, i.e. j <= i.
    ``device``: where to create it (the inputs' device, e.g. a GPU)."""
    # TODO: a lower-triangular matrix of True (hint: torch.tril).
    ### BEGIN SOLUTION
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()
    ### END SOLUTION


# %%
causal_mask = checks.check_causal_mask(causal_mask)

# %% [markdown]
# Applied to the first characters of "seventy-one" as the decoder reads them (starting with
# the begin token), with an untrained attention layer, the mask gives the weights on the
# right: each row is a softmax over the columns the mask allows, and the future gets exactly 0.

# %%
french_vocab, english_vocab = vocabularies(MAX_NUMBER)
shown = ["<bos>"] + list("seventy")
torch.manual_seed(1)
self_attention = MultiHeadAttention(DIM, 1)
inputs = torch.randn(1, len(shown), DIM)
_, weights = self_attention(inputs, inputs, inputs, causal_mask(len(shown)), need_weights=True)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
left.imshow(causal_mask(len(shown)), cmap="Greys", vmin=0, vmax=1.4)
right.imshow(weights[0, 0].detach(), cmap="viridis", vmin=0, vmax=1)
for ax, title in ((left, "causal mask (dark = may attend)"),
                  (right, "attention weights with the mask (untrained)")):
    ax.set_xticks(range(len(shown)), shown, rotation=90)
    ax.set_yticks(range(len(shown)), shown)
    ax.set(xlabel="key: position read", ylabel="query: position computing", title=title)
fig.tight_layout()
print(f"weight given to future positions: {weights[0, 0].triu(diagonal=1).sum().item():.1f}; "
      f"each row sums to 1: {torch.allclose(weights.sum(-1), torch.ones(1, 1, len(shown)))}")

# %% [markdown]
# ### Exercise 2: the decoder layer's forward pass
#
# Complete `forward`: the three sub-layers of the decoder layer in the paper's post-norm form
# (the package's translator, in section 4, uses the pre-norm form of the same layer), each as
# $\mathbf{y} \leftarrow \mathrm{norm}(\mathbf{y} + \mathrm{sublayer}(\mathbf{y}))$:
#
# 1. self-attention with queries, keys and values all from `y`, and your `causal_mask` of the
#    target length (on `y`'s device);
# 2. cross-attention with queries from `y`, keys and values from `memory`, and `memory_mask`
#    (which hides the source's padding; `None` means nothing is hidden);
# 3. the feed-forward network.
#
# `MultiHeadAttention(query, key, value, mask)` is lesson 03's layer. The cross-attention's
# output has one vector per *target* position, whatever the source length: the output length
# is the query length.

# %%
class DecoderLayer(nn.Module):
    """Post-norm Transformer decoder layer: y (N, L_y, d), memory (N, L_x, d) -> (N, L_y, d)."""

    def __init__(self, dim: int, num_heads: int, hidden: int):
        super().__init__()
        self.self_attention = MultiHeadAttention(dim, num_heads)
        self.cross_attention = MultiHeadAttention(dim, num_heads)
        self.feed_forward = FeedForward(dim, hidden)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, y: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        # TODO: masked self-attention, cross-attention, feed-forward; each with add & norm.
        ### BEGIN SOLUTION
        mask = causal_mask(y.shape[1], device=y.device)
        y = self.norm1(y + self.self_attention(y, y, y, mask))
        y = self.norm2(y + self.cross_attention(y, memory, memory, memory_mask))
        return self.norm3(y + self.feed_forward(y))
        ### END SOLUTION


# %%
DecoderLayer = checks.check_decoder_layer(DecoderLayer)

# %% [markdown]
# The mask's promise can be tested: change the *last* target vector and see which outputs
# move. With the mask only the last one does, so what the decoder computes at position $t$
# depends on positions $0..t$ alone; without it (the same layer with every position visible)
# the change leaks backwards.

# %%
torch.manual_seed(0)
decoder_layer = DecoderLayer(DIM, NUM_HEADS, HIDDEN).eval()
y, memory = torch.randn(1, 6, DIM), torch.randn(1, 9, DIM)
later_changed = y.clone()
later_changed[0, -1] += 1.0
with torch.no_grad():
    moved = (decoder_layer(later_changed, memory) - decoder_layer(y, memory)).abs().amax(-1)[0]
    attend_all = MultiHeadAttention(DIM, NUM_HEADS)
    attend_all.load_state_dict(decoder_layer.self_attention.state_dict())
    leak = (attend_all(later_changed, later_changed, later_changed) -
            attend_all(y, y, y)).abs().amax(-1)[0]
print("change at each output position when the last target vector changes:")
print("  with the causal mask   :", np.round(moved.numpy(), 3))
print("  self-attention, no mask:", np.round(leak.numpy(), 3))

# %% [markdown]
# ## 3. Teacher forcing: the whole target in one pass
#
# At test time the decoder must produce its own previous characters, one step after another.
# At training time we know them: the decoder can be *given* the true translation so far and
# asked for the next character at every position at once. The decoder's input is the target
# shifted one step to the right, behind a begin token; the labels are the target followed by
# an end token:
#
# | position | 0 | 1 | 2 | 3 |
# |---|---|---|---|---|
# | decoder input | `<bos>` | t | w | o |
# | label to predict | t | w | o | `<eos>` |
#
# The last label, `<eos>`, is predicted but never fed in: nothing comes after it.
#
# The causal mask makes this legal: position 2 predicts "o" having seen only `<bos>`, "t",
# "w". One forward pass gives the loss of every position of every sequence of the batch;
# a recurrent network would need one step per character. This is *teacher forcing*
# [Williams and Zipser, 1989]: the decoder is always shown the right history.
#
# ### Exercise 3: shift right
#
# Given labels (N, L) (characters, `<eos>`, then padding), return the decoder inputs (N, L):
# `bos_id` in the first column, then the labels without their last column. Do not change
# `labels` itself.

# %%
def shift_right(labels: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: (N, L) -> (N, L), <bos> then labels[:, :-1]."""
    # TODO: a column of bos_id, then the labels without their last column.
    ### BEGIN SOLUTION
    start = torch.full_like(labels[:, :1], bos_id)
    return torch.cat([start, labels[:, :-1]], dim=1)
    ### END SOLUTION


# %%
shift_right = checks.check_shift_right(shift_right)
example_labels = english_vocab.encode_batch(["two", "twenty"], eos=True)
example_inputs = shift_right(example_labels, CharVocabulary.BOS)
names = {CharVocabulary.PAD: "·", CharVocabulary.BOS: "<bos>", CharVocabulary.EOS: "<eos>"}


def spell(ids):
    """Every token, specials included, as a string."""
    return " ".join(names.get(int(i), english_vocab.decode([int(i)])) for i in ids)


for inputs_row, labels_row in zip(example_inputs, example_labels):
    print(f"input : {spell(inputs_row)}\nlabels: {spell(labels_row)}\n")

# %% [markdown]
# (The "·" is padding. In the shorter row, the decoder reads `<eos>` at the position whose
# label is padding; the loss ignores padded labels, so what it predicts there does not count.)
#
# ## 4. The number-words translator
#
# The data are those of lesson 03: every number's French and English spelling, produced by the
# grammar in `course_utils.numberwords` (unit-tested on a table of known numbers), with a set
# of numbers held out for the test. Translating them is not letter by letter: French counts
# in twenties from 60 up ("quatre-vingt-dix-sept" is 4 x 20 + 10 + 7), word orders and lengths
# differ, and "et" appears in some numbers only.

# %%
splits = split_numbers(MAX_NUMBER, seed=cfg.seed)
for number in (7, 71, 80, 97, 1_999, int(splits["test"][-1])):
    print(f"{number:>7,}  {french(number):45s} -> {english(number)}")
print(f"numbers 1..{MAX_NUMBER:,}: {len(splits['train']):,} for training, {len(splits['test']):,} "
      f"held out for the test; {len(french_vocab)} French and {len(english_vocab)} English tokens")


def encode_numbers(numbers):
    """Source ids (N, L_x) and labels (N, L_y): the English characters, then <eos>."""
    source = french_vocab.encode_batch([french(int(n)) for n in numbers])
    labels = english_vocab.encode_batch([english(int(n)) for n in numbers], eos=True)
    return source, labels


# %% [markdown]
# The model is `Seq2SeqTransformer` from `course_utils.transformer`: character embeddings
# plus the sinusoidal positions of lesson 03, a stack of pre-norm encoder layers, a stack of
# decoder layers (the package's version of Exercise 2, in pre-norm form), and a linear layer
# to the English characters. Its size:

# %%
def make_translator():
    torch.manual_seed(cfg.seed)
    return Seq2SeqTransformer(source_vocab_size=len(french_vocab), target_vocab_size=len(english_vocab),
                              dim=DIM, num_heads=NUM_HEADS, hidden=HIDDEN, num_encoder_layers=NUM_LAYERS,
                              num_decoder_layers=NUM_LAYERS, norm_first=True,
                              pad_id=CharVocabulary.PAD).to(cfg.device)


model = make_translator()
parameters = sum(p.numel() for p in model.parameters())
print(f"d = {DIM}, {NUM_HEADS} heads, feed-forward width {HIDDEN}, {NUM_LAYERS} + {NUM_LAYERS} "
      f"layers: {parameters:,} parameters")


def mean_length(vectors):
    return vectors.norm(dim=-1).mean().item()


with torch.no_grad():
    token_ids = torch.arange(len(french_vocab), device=cfg.device)
    scaled_tokens = model.source_embedding(token_ids) * math.sqrt(DIM)
    default_tokens = nn.Embedding(len(french_vocab), DIM).to(cfg.device)(token_ids) * math.sqrt(DIM)
print(f"average length of a positional encoding: {mean_length(model.positions.table[:40]):.2f}; "
      f"of a scaled token embedding: {mean_length(scaled_tokens):.2f} (with PyTorch's default "
      f"initialisation it would be {mean_length(default_tokens):.1f})")


# %% [markdown]
# The embeddings are multiplied by $\sqrt{d}$ before the positions are added, as
# in the paper, and start with a standard deviation of $1/\sqrt{d}$: a token vector then has
# length about $\sqrt{d}$, a positional encoding $\sqrt{d/2}$ (each sine-cosine pair
# contributes 1), and neither drowns the other (printed above). With PyTorch's default
# initialisation, standard deviation 1, the tokens would start with length about $d$,
# $\sqrt{2d}$ times the positions' (printed too): the positions would be a small ripple on top
# of them, and the model would first have to learn to shrink the embeddings before it could
# tell positions apart: with this lesson's budget it then learns far less. (Try it:
# re-initialise `model.source_embedding` and `model.target_embedding` with
# `nn.init.normal_(..., std=1.0)` after `make_translator()` and train again.)
#
# Training is the teacher-forced loop of section 3: AdamW with a one-cycle schedule (a short
# warm-up, then a decay), gradient clipping, and a cross-entropy that ignores padded labels.

# %%
def train(model, numbers):
    order = np.random.default_rng(cfg.seed)
    steps = EPOCHS * math.ceil(len(numbers) / BATCH_SIZE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE,
                                                   total_steps=steps, pct_start=0.15)
    losses = []
    model.train()
    for epoch in range(EPOCHS):
        shuffled = order.permutation(numbers)
        for start in range(0, len(shuffled), BATCH_SIZE):
            source, labels = encode_numbers(shuffled[start:start + BATCH_SIZE])
            source, labels = source.to(cfg.device), labels.to(cfg.device)
            logits = model(source, shift_right(labels, CharVocabulary.BOS))
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=CharVocabulary.PAD)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
    model.eval()
    return losses


start = time.perf_counter()
losses = train(model, splits["train"])
training_seconds = time.perf_counter() - start
print(f"{EPOCHS} epochs, {len(losses):,} steps of {BATCH_SIZE}: {training_seconds:.0f} s; "
      f"final training loss {np.mean(losses[-20:]):.4f} per character")

fig, ax = plt.subplots(figsize=(7, 3.4))
ax.plot(np.convolve(losses, np.ones(10) / 10, mode="valid"))
ax.set(xlabel="training step", ylabel="cross-entropy per character (moving average)", yscale="log",
       title="Training the translator with teacher forcing")
fig.tight_layout()

# %% [markdown]
# ## 5. Greedy decoding
#
# At test time there is no true translation to shift. The decoder starts from `<bos>` alone,
# predicts the next character, appends its own prediction, and runs again, until it writes
# `<eos>`:
#
# $$\hat{y}^t = \arg\max_c \; p\big(c \mid \hat{y}^0, \dots, \hat{y}^{t-1}, \mathbf{x}\big).$$
#
# The encoder runs once; the decoder runs once per output character. Taking the single most
# likely character at every step is *greedy* decoding: simple and fast, though not guaranteed
# to find the most likely sequence overall (beam search, below, keeps several candidates).
#
# ### Exercise 4: the greedy decoding loop
#
# Use `memory, source_mask = model.encode(source)` once, then repeat
# `logits = model.decode(tokens, memory, source_mask)` (logits for every position of `tokens`,
# shape (N, T, vocabulary)). Start with a (N, 1) column of `bos_id`, append the most likely
# token of the *last* position, and keep going until every row has produced `eos_id` or
# `max_length` tokens were generated. Rows finish at different times: once a row has produced
# `eos_id`, append `model.pad_id` to it. Return the generated tokens without the `<bos>`
# column.

# %%
@torch.no_grad()
def greedy_decode(model, source, *, bos_id: int, eos_id: int, max_length: int = 100):
    """(N, generated) token ids, <eos> then padding at the end of each row, no <bos>."""
    # TODO: encode once; loop: decode, argmax of the last position, pad finished rows, append.
    ### BEGIN SOLUTION
    memory, source_mask = model.encode(source)
    tokens = torch.full((len(source), 1), bos_id, dtype=torch.long, device=source.device)
    finished = torch.zeros(len(source), dtype=torch.bool, device=source.device)
    for _ in range(max_length):
        next_token = model.decode(tokens, memory, source_mask)[:, -1].argmax(dim=-1)
        next_token = next_token.masked_fill(finished, model.pad_id)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == eos_id
        if finished.all():
            break
    return tokens[:, 1:]
    ### END SOLUTION


# %%
greedy_decode = checks.check_greedy_decode(greedy_decode)

# %% [markdown]
# Now the real test: translate every held-out number (never seen in training) and count the
# translations that are right to the last character.

# %%
if TEST_SAMPLE is None:
    test_numbers = splits["test"]
else:
    test_numbers = np.sort(np.random.default_rng(cfg.seed).choice(splits["test"], TEST_SAMPLE, replace=False))


def translate(numbers, batch_size=500):
    """Greedy translations (strings) of the given numbers."""
    texts = []
    for start in range(0, len(numbers), batch_size):
        source, _ = encode_numbers(numbers[start:start + batch_size])
        tokens = greedy_decode(model, source.to(cfg.device), bos_id=CharVocabulary.BOS,
                               eos_id=CharVocabulary.EOS, max_length=80)
        texts += [english_vocab.decode(row) for row in tokens.cpu()]
    return texts


start = time.perf_counter()
translations = translate(test_numbers)
decoding_seconds = time.perf_counter() - start
expected = [english(int(n)) for n in test_numbers]
correct = np.array([got == want for got, want in zip(translations, expected)])
print(f"exact translations of {len(test_numbers):,} held-out numbers: {correct.mean():.1%} "
      f"({correct.sum():,} right; decoding took {decoding_seconds:.1f} s)")

# %% [markdown]
# ### Why training and test behave differently
#
# With teacher forcing, every prediction is made from the *true* history. In greedy decoding
# the history is the model's own. As long as the model makes no mistake, the two histories
# are the same, so a number is translated exactly by greedy decoding precisely when teacher
# forcing finds every character right. The difference starts *after* the first mistake:
# teacher forcing puts the decoder back on track at the next character, while greedy
# decoding continues from its own error, often in a situation it never met in training, and
# errors can pile up. This mismatch is called *exposure bias* [Ranzato et al., 2016; Bengio et al.,
# 2015 propose scheduled sampling against it]. We measure it on the wrong translations: how
# many characters are wrong with teacher forcing, and how far (in edits) the freely decoded
# translation is from the right one.

# %%
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from a to b."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


@torch.no_grad()
def teacher_forced_mistakes(numbers, batch_size=500):
    """Per number: how many characters (incl. <eos>) are wrong when the decoder reads the true history."""
    mistakes = []
    for start in range(0, len(numbers), batch_size):
        source, labels = encode_numbers(numbers[start:start + batch_size])
        source, labels = source.to(cfg.device), labels.to(cfg.device)
        predicted = model(source, shift_right(labels, CharVocabulary.BOS)).argmax(dim=-1)
        wrong = (predicted != labels) & (labels != CharVocabulary.PAD)
        mistakes.append(wrong.sum(dim=1).cpu().numpy())
    return np.concatenate(mistakes)


forced_mistakes = teacher_forced_mistakes(test_numbers)
wrong = np.flatnonzero(~correct)
print(f"numbers with every character right under teacher forcing: {(forced_mistakes == 0).mean():.1%}; "
      f"translated exactly by greedy decoding: {correct.mean():.1%}")
if len(wrong):
    free_edits = [edit_distance(translations[i], expected[i]) for i in wrong]
    print(f"the {len(wrong)} wrong translations: {forced_mistakes[wrong].mean():.1f} wrong characters "
          f"on average with teacher forcing, {np.mean(free_edits):.1f} edits from the right answer "
          f"when decoded freely")

# %% [markdown]
# The first two shares agree, as argued above (up to rare near-ties). On the wrong numbers,
# teacher forcing finds only a character or two wrong, but the free translations are several
# edits away from the right ones: after one wrong choice (say "four" where "forty" was due)
# the decoder writes a fluent continuation of its *own* prefix (here, something like "four
# hundred ..."; section 6 lists real cases), and one wrong character becomes a wrong word or
# more. Character-level accuracy under teacher forcing, the number watched during training,
# understates the errors of free decoding: evaluate the model the way it will be used.
#
# **Beam search** (optional) keeps the $k$ most likely partial translations at every step
# instead of one, and returns the most likely complete one (`beam_search` in
# `course_utils.transformer`; Vaswani et al. used $k = 4$, with a length penalty, as longer
# sequences multiply more probabilities). Greedy decoding can commit to a first character
# that looked best and leads nowhere; a beam keeps the runner-up alive. Does it rescue our
# wrong translations, and does it spoil right ones?

# %%
rng = np.random.default_rng(cfg.seed)
right_sample = rng.choice(np.flatnonzero(correct), size=min(60, int(correct.sum())), replace=False)
start = time.perf_counter()
beam_right = {}
for index in np.concatenate([wrong[:40], right_sample]):
    source, _ = encode_numbers(test_numbers[index:index + 1])
    tokens, _ = beam_search(model, source.to(cfg.device), bos_id=CharVocabulary.BOS,
                            eos_id=CharVocabulary.EOS, beam_size=4, max_length=80)
    beam_right[index] = english_vocab.decode(tokens) == expected[index]
print(f"beam of 4 ({time.perf_counter() - start:.1f} s): {sum(beam_right[i] for i in wrong[:40])} of "
      f"{len(wrong[:40])} wrong greedy translations become right; {sum(beam_right[i] for i in right_sample)} "
      f"of {len(right_sample)} right ones stay right")

# %% [markdown]
# A beam can only help when the right translation is the more likely one overall but did not
# look best at some step. When the model is simply wrong, confidently, about a word (as for
# the rare small numbers of section 6), a wider search finds the same wrong answer. For
# machine translation beams usually help a little; for a task like ours, with one right
# answer and a confident model, greedy decoding is nearly as good, and much cheaper.
#
# ## 6. What the translator gets wrong
#
# Every wrong translation is informative. Here are some, with the first wrong word marked:

# %%
def first_wrong_word(got: str, want: str) -> str:
    """The first word where two translations differ (in the expected one), or '(ending)'."""
    for got_word, want_word in zip(got.split(" "), want.split(" ")):
        if got_word != want_word:
            return want_word
    return "(ending)"


print(f"{len(wrong)} wrong of {len(test_numbers):,}:")
for index in wrong[:12]:
    number = int(test_numbers[index])
    print(f"{number:>7,}  {french(number):42s} -> {translations[index]:40s} "
          f"(expected '{expected[index]}', first wrong word: {first_wrong_word(translations[index], expected[index])})")

# %%
train_numbers = splits["train"]
edges = [1] + [10 ** power for power in range(2, len(str(MAX_NUMBER)) + 1)]
for low, high in zip(edges[:-1], edges[1:]):
    chosen = (test_numbers >= low) & (test_numbers < high)
    in_training = ((train_numbers >= low) & (train_numbers < high)).sum()
    wrong_share = f"{1 - correct[chosen].mean():6.1%} of these wrong" if chosen.any() else "none to test"
    print(f"numbers {low:>7,} to {high - 1:>7,}: {in_training:>7,} in training, {chosen.sum():>6,} "
          f"held out, {wrong_share}")
first_words = [french(int(n)).replace("-", " ").split(" ")[0] for n in train_numbers]
print(f"training sources whose first word is 'quarante': {first_words.count('quarante')}, "
      f"'quatre': {first_words.count('quatre')}")

# %% [markdown]
# Read the list and the table before going on. Most mistakes are whole words, not
# random letters: typically one *word* is wrong and the rest is well-formed English, because
# the spelling of each English word is learned from thousands of examples, while the choice of
# the word depends on the alignment with the French. And they are not spread evenly: compare
# the error rates of the ranges in the table with the number of training examples in each.
# Small numbers are few (fewer than 100 of them exist), and their first words are rare as first
# words: "quarante" begins a source only for 40-49 below 10,000, while "quatre", which begins
# hundreds of training sources, is usually followed by "mille" or "cent" (counts printed
# above). A model that has seen few examples of a pattern falls back on a common one: look in
# the list for small numbers translated as if they were hundreds or thousands. A model learns
# the distribution it is given, not the grammar behind it: more examples of the rare cases (or
# weighting them up) is the usual cure. (One seed, one small model: the exact list changes from
# run to run.)
#
# ## 7. Where the decoder looks: cross-attention maps
#
# Each decoder layer's cross-attention has one map per head: rows are the English characters
# being written, columns the French characters, and each row sums to 1. We collect them by
# running the decoder once more on its own output (teacher forcing with the greedy result),
# which reproduces the decoding exactly.

# %%
@torch.no_grad()
def attention_maps(number: int):
    """(French, English written, expected English, weights (layers, heads, L_y, L_x))."""
    source, _ = encode_numbers([number])
    source = source.to(cfg.device)
    tokens = greedy_decode(model, source, bos_id=CharVocabulary.BOS, eos_id=CharVocabulary.EOS,
                           max_length=80)
    written = english_vocab.decode(tokens[0].cpu())
    decoder_input = torch.cat([torch.full_like(tokens[:, :1], CharVocabulary.BOS), tokens], dim=1)
    memory, memory_mask = model.encode(source)
    model.decode(decoder_input[:, :len(written) + 1], memory, memory_mask)
    weights = torch.stack([layer.cross_attention.last_weights[0] for layer in model.decoder])
    return french(number), written, english(number), weights[:, :, :len(written)].cpu().numpy()


example = int(test_numbers[np.argmax([len(french(int(n))) if ok else 0
                                      for n, ok in zip(test_numbers, correct)])])
source_text, written, wanted, maps = attention_maps(example)
print(f"{example:,}: {source_text} -> {written}")
fig = cross_attention_figure(source_text, written, maps,
                             title=f"Cross-attention for {example:,} (held out), character by character")

# %% [markdown]
# The maps above belong to the longest held-out number the model translates correctly: one
# row per English character, one column per French character, thin lines between words.
# Summing each map into words makes them easier to read: for each English word (the average
# of its characters' rows), the share of attention each French word receives (the sum of its
# characters' columns; separators count with the word before them). Shares of 0.1 and more
# are printed.

# %%
fig = cross_attention_figure(source_text, written, maps, by_words=True,
                             title=f"The same maps summed into words: {source_text} -> {written}")

# %% [markdown]
# Read each panel row by row: while an English word is being written, where does
# the weight go? Look for the heads whose large shares run down a diagonal, an English word
# reading the French word with the same meaning ("three" reading "trois", "thousand" reading
# "mille"), in the order of the French words. Nobody told the model which words correspond:
# this alignment came from the translation loss alone. It is sharpest where one English word
# translates one French word; where English needs several French words at once ("ninety-eight"
# from "quatre-vingt-dix-huit", four words for two), the weight spreads over them. Other heads
# look at the same place throughout, or spread their weight everywhere; a head need not be
# interpretable to be useful, as the next layer can combine them. And unlike lesson 03's
# recurrent encoder, whose state summarised the source
# *up to* a character, this encoder's self-attention looks in both directions: a French
# "word" receiving weight is a position whose vector may carry information from the whole
# sentence. (Maps of one small model, trained once: which head does what changes from run to
# run.)
#
# Try other numbers: type one in the box (any number up to the maximum, held out or not) and
# choose a layer.

# %%
translation_widget(attention_maps, MAX_NUMBER, NUM_LAYERS, value=int(test_numbers[len(test_numbers) // 2]))

# %% [markdown]
# ## 8. Strengths and costs
#
# **Parallel training.** Teacher forcing computes every position's loss in one pass; greedy
# decoding needs one decoder pass per character. Timed on a batch of 256 held-out numbers:

# %%
source, labels = encode_numbers(test_numbers[:256])
source, labels = source.to(cfg.device), labels.to(cfg.device)


def best_of(function, repeats=3):
    """The shortest of a few runs, in seconds (a GPU is waited for: its work is asynchronous)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            function()
        if cfg.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


one_pass = best_of(lambda: model(source, shift_right(labels, CharVocabulary.BOS)))
step_by_step = best_of(lambda: greedy_decode(model, source, bos_id=CharVocabulary.BOS,
                                             eos_id=CharVocabulary.EOS, max_length=labels.shape[1]))
print(f"targets of up to {labels.shape[1]} tokens: one teacher-forced pass {one_pass * 1e3:.0f} ms, "
      f"greedy decoding {step_by_step * 1e3:.0f} ms ({step_by_step / one_pass:.0f}x longer)")

# %% [markdown]
# (Our greedy loop recomputes the decoder over the whole prefix at every step; real
# implementations cache the keys and values of earlier positions, which saves work but still
# needs one step per token.)
#
# **Quadratic cost in length.** Self-attention compares every position with every other: its
# score matrix has $L^2$ entries per head. PyTorch's `FlopCounterMode` counts the
# floating-point operations of the matrix multiplications (the bulk of the work; softmax, norms
# and additions are left out). For one of our encoder layers as the sequence grows, split
# into the attention scores and weighted sum ($4L^2d$, growing as $L^2$) and the rest: the four
# projections ($8Ld^2$) and the feed-forward network ($4Ldn$), growing as $L$. The quadratic
# part overtakes the rest when $4L^2d > 8Ld^2 + 4Ldn$, that is when $L > n + 2d$.

# %%
def encoder_layer_flops(length: int) -> tuple[int, int]:
    """(FLOPs of Q K^T and weights @ V, all matrix-multiply FLOPs) of one encoder layer."""
    layer = model.encoder[0]
    x = torch.randn(1, length, DIM, device=cfg.device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(x)
    heads = layer.self_attention.num_heads
    head_dim = DIM // heads
    mixing = 2 * (2 * heads * length * length * head_dim)  # scores (L x L) and weights @ V
    return mixing, counter.get_total_flops()


lengths = [16, 32, 64, 128, 256, 512, 1024, 2048]
flops = np.array([encoder_layer_flops(length) for length in lengths])
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.loglog(lengths, flops[:, 1], marker="o", label="all matrix multiplications")
ax.loglog(lengths, flops[:, 0], marker="o", label="attention scores and weighted sum")
ax.loglog(lengths, flops[:, 1] - flops[:, 0], marker="o", label="projections and feed-forward")
ax.axvline(HIDDEN + 2 * DIM, color="grey", linestyle=":", label="L = n + 2d")
ax.set(xlabel="sequence length L", ylabel="FLOPs (counted)",
       title=f"One encoder layer, d = {DIM}, n = {HIDDEN}")
ax.legend()
fig.tight_layout()
crossing = lengths[int(np.argmax(flops[:, 0] > flops[:, 1] - flops[:, 0]))]
mixing_at, total_at = encoder_layer_flops(HIDDEN + 2 * DIM)
longest_source = max(len(french(int(n))) for n in splits["train"])
print(f"at L = {lengths[0]}: attention mixing {flops[0, 0] / flops[0, 1]:.0%} of the counted FLOPs; "
      f"at L = {lengths[-1]}: {flops[-1, 0] / flops[-1, 1]:.0%}; larger than the rest from L = {crossing} "
      f"on this grid")
print(f"at L = n + 2d = {HIDDEN + 2 * DIM}: mixing {mixing_at:,} FLOPs, the rest {total_at - mixing_at:,}")
print(f"the longest French source in training: {longest_source} characters")

# %% [markdown]
# The counted FLOPs agree with the formula: at $L = n + 2d$ the two parts are equal. Our
# sources are short (the longest is printed above), so the quadratic part is still a small
# share of the work; with $n = 4d$ it dominates once $L > 6d$, so the wider the model, the
# later. (Lesson 03 compared a different pair, the attention layer alone against a two-layer
# network, and found $L > n - 2d$.) Long inputs are where attention gets expensive: images
# are cut into patches (lesson 05) to keep $L$ small.
#
# **Positions without parameters, but relations to learn.** The sinusoidal encoding costs no
# parameters and is defined for any length, but nothing in it says which positions belong
# together: the alignment of section 7 was learned from the data, for the kinds of sentences
# in the data. Numbers above the training range use the same characters and French words, but
# in combinations the model never saw (in training, "mille" always follows a single digit
# word or begins the number):

# %%
if MAX_NUMBER < 99_999:
    beyond = np.random.default_rng(cfg.seed).integers(MAX_NUMBER + 1, 10 * MAX_NUMBER, 200)
    beyond_translations = translate(beyond)
    beyond_correct = np.mean([got == english(int(n)) for got, n in zip(beyond_translations, beyond)])
    no_longer = np.mean([len(french(int(n))) <= longest_source for n in beyond])
    print(f"200 numbers between {MAX_NUMBER + 1:,} and {10 * MAX_NUMBER:,}: {beyond_correct:.1%} exact "
          f"({no_longer:.0%} of their sources are no longer than the longest training source)")
    for number, got in list(zip(beyond, beyond_translations))[:4]:
        print(f"  {int(number):>7,}  {french(int(number)):50s} -> {got}")
else:
    print(f"This profile trains on numbers up to {MAX_NUMBER:,}, the grammar's limit: nothing "
          f"lies beyond it to test.")

# %% [markdown]
# Most of these sources are no longer than sentences the model has read, and every word in
# them is familiar; still, the model translates very few of them, if any (the share is
# printed above). Look at the examples: in its data, "thousand" always came after a single
# digit word, and that is the pattern it tends to write. It learned the patterns of the
# numbers it saw, not the grammar that generates them. Held-out numbers *inside* the range
# are what a fair test measures; this is out-of-distribution generalisation, and only data
# that contain such combinations (or a model with the right structure built in) would fix it.
#
# **Modular depth, against data and time.** Expressivity grows by stacking more layers or
# widening them, with no change to the code. The price is data and compute. Counting
# parameters on PyTorch's `meta` device (no memory used), our translator against the paper's
# base configuration ($d = 512$, 8 heads, $n = 2048$, 6 + 6 layers, a shared vocabulary of
# about 37,000 sub-words):

# %%
with torch.device("meta"):
    base = Seq2SeqTransformer(source_vocab_size=37_000, target_vocab_size=37_000, dim=512,
                              num_heads=8, hidden=2048, num_encoder_layers=6, num_decoder_layers=6)
base_parameters = sum(p.numel() for p in base.parameters())
embedding_parameters = sum(p.numel() for p in (base.source_embedding.weight, base.target_embedding.weight,
                                              base.output.weight))
print(f"our translator: {parameters:,} parameters; base Transformer built with the same code: "
      f"{base_parameters / 1e6:.1f} M ({embedding_parameters / 1e6:.1f} M of them in the two "
      f"embeddings and the output layer)")
print(f"sharing those three matrices, as the paper does: "
      f"{(base_parameters - 2 * 37_000 * 512) / 1e6:.1f} M")

# %% [markdown]
# With the three embedding matrices shared, as in the paper, our code comes close to the 65 M
# parameters the paper reports (the exact count depends on the vocabulary). That model was
# trained on 4.5 million sentence pairs for 12 hours on eight GPUs, with dropout and label
# smoothing (0.1 each) against overfitting; ours learns a much smaller language, with neither,
# in well under a minute of a laptop's time in the quick profile. Big Transformers need big
# data: lesson 05 tests that claim for images.
#
# The two halves are also used on their own: encoder-only models such as BERT [Devlin et al.,
# 2019] read a whole text (or, in lesson 05, an image) to classify it, and decoder-only models
# such as GPT-2 drop the cross-attention and generate text from a prompt with the causal mask
# and the decoding loop of this lesson.
#
# ## Summary
#
# * An encoder layer = multi-head self-attention (mixes positions) + a feed-forward network
#   (transforms each position), each with a residual connection and a layer norm. Post-norm
#   (the paper) normalises the residual path and needs a warm-up; pre-norm normalises each
#   sub-layer's input and is the usual choice today.
# * A decoder layer adds a causal mask to its self-attention (position $t$ sees $0..t$) and a
#   cross-attention into the encoder's output: queries from the target, keys and values from
#   the source, a map of target length x source length.
# * Teacher forcing trains on the shifted true target in one parallel pass; at test time the
#   decoder generates one token at a time from its own outputs (greedy or beam search). The
#   gap between the two is exposure bias.
# * A small Transformer learns to translate number words it has never seen (the accuracy is
#   printed in section 5); its errors are mostly whole words, concentrated where the training
#   data are thin, and its cross-attention learned an alignment between French and English
#   words without being told.
# * Strengths: parallel training, global context in one layer, depth and width as knobs.
#   Costs: attention is quadratic in length, positions relate only as the data teach, and
#   large models need large data and compute.
#
# ## References
#
# * A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
# * J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
# * R. Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020.
# * S. Shleifer, J. Weston, M. Ott, "NormFormer: Improved Transformer Pretraining with Extra
#   Normalization", arXiv:2110.09456, 2021.
# * K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
# * R. J. Williams, D. Zipser, "A Learning Algorithm for Continually Running Fully Recurrent
#   Neural Networks", Neural Computation, 1989.
# * S. Bengio, O. Vinyals, N. Jaitly, N. Shazeer, "Scheduled Sampling for Sequence Prediction
#   with Recurrent Neural Networks", NeurIPS 2015.
# * M. Ranzato, S. Chopra, M. Auli, W. Zaremba, "Sequence Level Training with Recurrent Neural
#   Networks", ICLR 2016.
# * A. Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), 2019.
# * J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding", NAACL 2019.
# * A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
#   at Scale", ICLR 2021.
