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
# 4. how to train a small encoder-decoder on number words, and what pre-norm changes in its
#    gradients at initialisation;
# 5. greedy decoding at test time, and why it behaves differently from training;
# 6. what the trained translator gets wrong;
# 7. where it looks: the decoder's cross-attention into the source and the encoder's
#    self-attention, per layer and head;
# 8. the architecture's strengths and costs, including sources longer than any trained on.
#
# Exercises are checked as before: NOT DONE (the reference is used), WRONG (what failed, with
# a hint), PASSED.

# %%
import inspect
import math
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils import setup
from course_utils.attention import MultiHeadAttention
from course_utils.cache import train_once
from course_utils.data import tensor_batches
from course_utils.exercises import lesson04 as checks
from course_utils.numberwords import CharVocabulary, english, french, split_numbers, vocabularies
from course_utils.results import record
from course_utils.training import fit
from course_utils.transformer import EncoderLayer, FeedForward, Seq2SeqTransformer, beam_search
from course_utils.widgets import cross_attention_figure, translation_widget, word_attention

cfg = setup(seed=0)

# %%
# The translator of sections 4-8. The quick profile fits a 2-core laptop (section 4 prints
# the training time); the full one is meant for a GPU. `capped` values only apply to the capped test
# run of the full profile (COURSE_CAPPED=1), which runs the full code paths on a CPU.
MAX_NUMBER = cfg.pick(quick=9_999, full=999_999)
DIM = cfg.pick(quick=32, full=128)
NUM_HEADS = cfg.pick(quick=4, full=8)
HIDDEN = 4 * DIM  # the feed-forward width, four times the model width as in the paper
NUM_LAYERS = cfg.pick(quick=2, full=3)  # encoder layers, and as many decoder layers
BATCH_SIZE = cfg.pick(quick=64, full=256)
EPOCHS = cfg.pick(quick=3, full=3, capped=1)
LEARNING_RATE = cfg.pick(quick=1e-2, full=2e-3)
TRAIN_SAMPLE = cfg.pick(quick=None, full=None, capped=1_024)  # None: every training number
TEST_SAMPLE = cfg.pick(quick=None, full=5_000, capped=12)  # None: every held-out number
LONGER_SAMPLE = cfg.pick(quick=100, full=1_000, capped=6)  # sources longer than any trained on
BEAM_SAMPLE = cfg.pick(quick=30, full=40, capped=1)  # wrong, and as many right, translations
ATTENTION_SAMPLE = cfg.pick(quick=200, full=1_000, capped=20)  # numbers for the head statistics
TIMING_BATCH = cfg.pick(quick=256, full=256, capped=4)
TIMING_REPEATS = cfg.pick(quick=3, full=3, capped=1)

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
layer = EncoderLayer(DIM, NUM_HEADS, HIDDEN).to(cfg.device).eval()
convolution = nn.Conv1d(DIM, DIM, kernel_size=3, padding=1).to(cfg.device)
x = torch.randn(1, 12, DIM, device=cfg.device)
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
# with one last layer norm at the top of the stack. Xiong et al. [2020] analysed both at
# initialisation. In post-norm, the parameters near the output receive large gradients, however
# deep the stack; in pre-norm these gradients get smaller as the stack gets deeper (as
# $1/\sqrt{\text{depth}}$). Large gradients at the top, met by a large learning rate from the
# first step, make post-norm training unstable: it needs a learning-rate warm-up (Vaswani et
# al. used 4,000 steps). Pre-norm is much less sensitive (Xiong et al. train it without any
# warm-up; a short one is still common, as in our schedule below) and is the default of GPT-2
# and of the Vision Transformer. Its price: the residual stream is a growing sum, so each new
# layer changes it relatively less. Section 4 measures the gradients of both forms on our
# translator at initialisation, once its data are loaded.
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
self_attention = MultiHeadAttention(DIM, 1).to(cfg.device)
inputs = torch.randn(1, len(shown), DIM, device=cfg.device)
mask = causal_mask(len(shown), device=cfg.device)
_, weights = self_attention(inputs, inputs, inputs, mask, need_weights=True)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
left.imshow(mask.cpu(), cmap="Greys", vmin=0, vmax=1.4)
right.imshow(weights[0, 0].detach().cpu(), cmap="viridis", vmin=0, vmax=1)
for ax, title in ((left, "causal mask (dark = may attend)"),
                  (right, "attention weights with the mask (untrained)")):
    ax.set_xticks(range(len(shown)), shown, rotation=90)
    ax.set_yticks(range(len(shown)), shown)
    ax.set(xlabel="key: position read", ylabel="query: position computing", title=title)
fig.tight_layout()
row_sums = weights.sum(-1)
print(f"weight given to future positions: {weights[0, 0].triu(diagonal=1).sum().item():.1f}; "
      f"each row sums to 1: {torch.allclose(row_sums, torch.ones_like(row_sums))}")

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
decoder_layer = DecoderLayer(DIM, NUM_HEADS, HIDDEN).to(cfg.device).eval()
y, memory = torch.randn(1, 6, DIM, device=cfg.device), torch.randn(1, 9, DIM, device=cfg.device)
later_changed = y.clone()
later_changed[0, -1] += 1.0
with torch.no_grad():
    moved = (decoder_layer(later_changed, memory) - decoder_layer(y, memory)).abs().amax(-1)[0]
    attend_all = MultiHeadAttention(DIM, NUM_HEADS).to(cfg.device)
    attend_all.load_state_dict(decoder_layer.self_attention.state_dict())
    leak = (attend_all(later_changed, later_changed, later_changed) -
            attend_all(y, y, y)).abs().amax(-1)[0]
print("change at each output position when the last target vector changes:")
print("  with the causal mask   :", np.round(moved.cpu().numpy(), 3))
print("  self-attention, no mask:", np.round(leak.cpu().numpy(), 3))

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
    print(f"{number:>7,}  {french(number)}\n{'->':>9} {english(number)}")
print(f"numbers 1..{MAX_NUMBER:,}: {len(splits['train']):,} for training, {len(splits['test']):,} "
      f"held out for the test;\n{len(french_vocab)} French and {len(english_vocab)} English tokens")

# %% [markdown]
# One more thing is held out: the longest sources. Every number whose French spelling is
# longer than that of 97% of the numbers stays out of training, whichever split it fell in;
# section 8 uses them to ask whether the model can read sources longer than any it was
# trained on. The test of sections 5-7 keeps to the held-out numbers of the trained lengths.

# %%
every_number = np.arange(1, MAX_NUMBER + 1)
every_length = np.array([len(french(int(n))) for n in every_number])


def french_lengths(numbers):
    return every_length[np.asarray(numbers) - 1]


LONGEST_TRAINED = int(np.quantile(every_length, 0.97))  # characters
train_numbers = splits["train"][french_lengths(splits["train"]) <= LONGEST_TRAINED]
held_out = splits["test"][french_lengths(splits["test"]) <= LONGEST_TRAINED]
longer_numbers = every_number[every_length > LONGEST_TRAINED]
rng = np.random.default_rng(cfg.seed)
if TRAIN_SAMPLE is not None:  # the capped test run trains on a few numbers only
    train_numbers = np.sort(rng.choice(train_numbers, TRAIN_SAMPLE, replace=False))
print(f"training on {len(train_numbers):,} numbers whose French has at most {LONGEST_TRAINED} "
      f"characters;\n{len(held_out):,} held-out numbers of those lengths for the test;\n"
      f"{len(longer_numbers):,} numbers with longer French (up to {every_length.max()} characters) "
      f"for section 8")


MAX_OUTPUT = max(len(english(int(n))) for n in every_number) + 1  # the longest English, <eos>


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
      f"of a scaled token embedding: {mean_length(scaled_tokens):.2f}\n(with PyTorch's default "
      f"initialisation of the embedding it would be {mean_length(default_tokens):.1f})")


# %% [markdown]
# The embeddings are multiplied by $\sqrt{d}$ before the positions are added, as
# in the paper, and start with a standard deviation of $1/\sqrt{d}$: a token vector then has
# length about $\sqrt{d}$, a positional encoding $\sqrt{d/2}$ (each sine-cosine pair
# contributes 1), and neither drowns the other (printed above). With PyTorch's default
# initialisation, standard deviation 1, the tokens would start with length about $d$,
# $\sqrt{2d}$ times the positions' (printed too): the positions would be a small ripple on top
# of them, and the model would first have to learn to shrink the embeddings before it could
# tell positions apart, spending part of a small training budget on it. (Try it:
# re-initialise `source_embedding` and `target_embedding` with `nn.init.normal_(..., std=1.0)`
# inside `make_translator()`, run section 4 again and compare the accuracy of section 5; the
# changed code is a new recipe, so it trains instead of loading the cached translator.)
#
# ### Post-norm or pre-norm, measured
#
# Section 1 quoted Xiong et al.'s analysis: at initialisation, post-norm's gradients are large
# near the output, pre-norm's are not. They checked it by measuring, at initialisation, the
# gradient of each layer's second feed-forward matrix $\mathbf{W}_2$ in a translation
# Transformer; post-norm's grew from the bottom layer to the top one, pre-norm's stayed about
# level. We repeat the measurement on our task: an untrained translator of 6 + 6 layers
# ($d = 64$), the cross-entropy of one teacher-forced batch of 16 training numbers, and the
# norm of the gradient of every layer's $\mathbf{W}_2$, in both forms. Once with PyTorch's
# default initialisation of linear layers (the one this course uses), once with Xavier's
# [Glorot and Bengio, 2010], which common translation code (e.g. fairseq) uses for its
# Transformers.

# %%
def initial_gradients(norm_first: bool, xavier: bool, depth: int = 6, dim: int = 64):
    """An untrained depth + depth translator, one teacher-forced batch: the gradient norm of each
    layer's W_2 (encoder, decoder), and the size of each decoder sub-layer's output relative to
    its input (self-attention, cross-attention, feed-forward; averaged over the layers)."""
    torch.manual_seed(cfg.seed)
    translator = Seq2SeqTransformer(source_vocab_size=len(french_vocab), dim=dim, num_heads=4,
                                    target_vocab_size=len(english_vocab), hidden=4 * dim,
                                    num_encoder_layers=depth, num_decoder_layers=depth,
                                    norm_first=norm_first, pad_id=CharVocabulary.PAD).to(cfg.device)
    if xavier:
        for name, parameter in translator.named_parameters():
            if parameter.ndim == 2 and "embedding" not in name:
                nn.init.xavier_uniform_(parameter)
            elif name.endswith("bias") and "norm" not in name:
                nn.init.zeros_(parameter)
    relative_sizes = []

    def record(module, inputs, output):  # a forward hook: runs after the module's forward
        relative_sizes.append((output.std() / inputs[0].std()).item())

    for layer in translator.decoder:
        for sub_layer in (layer.self_attention, layer.cross_attention, layer.feed_forward):
            sub_layer.register_forward_hook(record)
    logits = translator(gradient_source, shift_right(gradient_labels, CharVocabulary.BOS))
    F.cross_entropy(logits.flatten(0, 1), gradient_labels.flatten(),
                    ignore_index=CharVocabulary.PAD).backward()
    gradients = {part: np.array([layer.feed_forward[3].weight.grad.norm().item() for layer in layers])
                 for part, layers in (("encoder", translator.encoder), ("decoder", translator.decoder))}
    return gradients, np.array(relative_sizes).reshape(depth, 3).mean(axis=0)


gradient_source, gradient_labels = encode_numbers(rng.choice(train_numbers, 16, replace=False))
gradient_source, gradient_labels = gradient_source.to(cfg.device), gradient_labels.to(cfg.device)
initialisations = {"PyTorch's default": False, "Xavier": True}
post_norm_growth = {}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (init_name, xavier) in zip(axes, initialisations.items()):
    print(f"{init_name} initialisation:")
    top_layer = {}
    for norm_first, form in ((False, "post-norm"), (True, "pre-norm")):
        gradients, relative_sizes = initial_gradients(norm_first, xavier)
        for part, style in (("decoder", "-"), ("encoder", "--")):
            ax.plot(range(1, 7), gradients[part], style, marker="o", label=f"{form}, {part}")
        growth = {part: values[-1] / values[0] for part, values in gradients.items()}
        top_layer[form] = gradients["decoder"][-1]
        if form == "post-norm":
            post_norm_growth[init_name] = growth["decoder"]
        print(f"  {form:9s}: W_2 gradient of the top layer / of the bottom one: decoder "
              f"{growth['decoder']:.1f}, encoder {growth['encoder']:.1f}")
    print("  decoder, std of a sub-layer's output / of its input: self-attention {:.2f}, "
          "cross {:.2f}, FFN {:.2f}".format(*relative_sizes))
    print(f"  top decoder layer's W_2 gradient, post-norm / pre-norm: "
          f"{top_layer['post-norm'] / top_layer['pre-norm']:.1f}")
    ax.set(xlabel="layer (1 = bottom, 6 = next to the output)", yscale="log",
           title=f"{init_name} initialisation")
axes[0].set_ylabel("gradient norm of $W_2$")
axes[1].legend(fontsize=10)
fig.suptitle("Gradients at initialisation, untrained 6 + 6-layer translators")
fig.tight_layout()
reproduced = post_norm_growth["Xavier"] > max(1.5, post_norm_growth["PyTorch's default"])
print(f"with Xavier's initialisation this run {'shows' if reproduced else 'does not show'} "
      f"Xiong et al.'s pattern:\npost-norm's gradients growing toward the output")

# %% [markdown]
# Read the printed ratios: above 1, a layer's gradient is larger the closer it sits to the
# output. Which pattern appears depends on the initialisation, and the printed sub-layer sizes
# say why. A post-norm layer norm divides what goes through it, forwards and backwards, by the
# standard deviation of the sum it normalises, $\mathbf{y} + \mathrm{sublayer}(\mathbf{y})$.
# When the sub-layers start small next to their input, as with PyTorch's default, that
# standard deviation is close to 1 and gradients pass the norms almost unchanged. When they
# start about as large as their input, as with Xavier's initialisation, each norm shrinks the
# gradient on its way down, and a layer far from the output receives the product of many such
# factors. Only part of it is won back through the sub-layer: nothing at all, for $\mathbf{y}$,
# through the cross-attention's values, which are computed from the encoder's output (compare
# the decoder's ratio with the encoder's, which has no cross-attention). Pre-norm never
# divides the residual stream itself, so nothing of the kind accumulates along the stack.
# Xiong et al.'s other claim, a larger gradient at post-norm's top layer than at pre-norm's,
# is the last ratio printed for each initialisation (above 1: post-norm's is the larger).
# The initialisation decides how large each sub-layer starts, and with it the pattern: the
# last line says whether Xavier's brings back the one Xiong et al. report.
#
# What matters in training is the size of the first updates: a warm-up keeps post-norm's small
# while Adam's statistics settle. Our translator uses pre-norm, as lesson 05's ViT will. (Try
# it: build `make_translator()` with `norm_first=False` and compare.)
#
# Training runs lesson 01's loop, `course_utils.training.fit`; only the step differs for a
# translator. A classifier's step was "logits of the images, cross-entropy with the labels";
# this one is the teacher forcing of section 3, a cross-entropy over every position that
# ignores padded labels, and `fit` takes it as its `step=` argument. Around it: AdamW, a
# one-cycle schedule (a short warm-up, then a decay) stepped after every batch, and gradient
# clipping. The numbers are encoded once and kept on `cfg.device`, where each batch is
# gathered in one indexing step, as in lesson 02 (`course_utils.data.tensor_batches`).

# %%
def translation_step(model, batch):
    """Teacher forcing: the mean cross-entropy per character of a batch (source, labels)."""
    source, labels = batch
    logits = model(source, shift_right(labels, CharVocabulary.BOS))
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=CharVocabulary.PAD)


def train(model):
    """Train on the training numbers; returns fit's history (step_loss: every step's loss)."""
    source, labels = (tensor.to(cfg.device) for tensor in encode_numbers(train_numbers))
    loader = tensor_batches(source, labels, batch_size=BATCH_SIZE, shuffle=True, seed=cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE,
                                                   total_steps=EPOCHS * len(loader), pct_start=0.15)
    history = fit(model, loader, epochs=EPOCHS, optimizer=optimizer, step=translation_step,
                  scheduler=schedule, scheduler_interval="step", clip_grad_norm=1.0,
                  progress=False)
    model.eval()
    return history


# Trained once, then loaded from data/checkpoints/ on the next run (see lesson 02).
model, history = train_once(
    "numbers-transformer", build=make_translator, train=train,
    recipe={"max_number": MAX_NUMBER, "training_numbers": len(train_numbers), "dim": DIM,
            "heads": NUM_HEADS, "hidden": HIDDEN, "layers": NUM_LAYERS, "epochs": EPOCHS,
            "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE})
losses = np.array(history["step_loss"])
print(f"{EPOCHS} epoch{'s' if EPOCHS > 1 else ''}, {len(losses):,} steps of {BATCH_SIZE}: "
      f"{history['seconds']:.0f} s, {np.mean(history['samples_per_second']):,.0f} numbers per "
      f"second; final training loss {np.mean(losses[-20:]):.4f} per character")

fig, ax = plt.subplots(figsize=(7, 3.4))
window = min(10, len(losses))
ax.plot(np.convolve(losses, np.ones(window) / window, mode="valid"))
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
# $$\hat{y}_t = \arg\max_c \; p\big(c \mid \hat{y}_0, \dots, \hat{y}_{t-1}, \mathbf{x}\big),$$
#
# where $c$ runs over the characters of the vocabulary (the classes of this classifier).
#
# The encoder runs once; the decoder runs once per output character. Taking the single most
# likely character at every step is *greedy* decoding: simple and fast, though not guaranteed
# to find the most likely sequence overall (beam search, below, keeps several candidates).
#
# ### Exercise 4: the greedy decoding loop
#
# Use `memory, source_mask = model.encode(source)` once, then repeat
# `logits = model.decode(tokens, memory, source_mask)` (logits for every position of `tokens`,
# shape (N, T, vocabulary)). Start with a (N, 1) column of `bos_id` (created on
# `source.device`, so that the loop also runs on a GPU), append the most likely
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
    test_numbers = held_out
else:
    test_numbers = np.sort(rng.choice(held_out, TEST_SAMPLE, replace=False))


def translate(numbers, batch_size=500):
    """Greedy translations (strings) of the given numbers."""
    texts = []
    for start in range(0, len(numbers), batch_size):
        source, _ = encode_numbers(numbers[start:start + batch_size])
        tokens = greedy_decode(model, source.to(cfg.device), bos_id=CharVocabulary.BOS,
                               eos_id=CharVocabulary.EOS, max_length=MAX_OUTPUT)
        texts += [english_vocab.decode(row) for row in tokens.cpu()]
    return texts


start = time.perf_counter()
translations = translate(test_numbers)
decoding_seconds = time.perf_counter() - start
expected = [english(int(n)) for n in test_numbers]
correct = np.array([got == want for got, want in zip(translations, expected)])
record("04", "held-out numbers translated exactly (greedy)", correct.mean())
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
all_forced_right = forced_mistakes == 0
print(f"numbers with every character right under teacher forcing: {all_forced_right.mean():.1%}\n"
      f"numbers translated exactly by greedy decoding: {correct.mean():.1%}")
print(f"numbers where the two disagree: {int((all_forced_right != correct).sum())}")
if len(wrong):
    free_edits = [edit_distance(translations[i], expected[i]) for i in wrong]
    print(f"the {len(wrong):,} wrong translations: {forced_mistakes[wrong].mean():.1f} wrong characters "
          f"on average with teacher forcing,\n{np.mean(free_edits):.1f} edits from the right answer "
          f"on average when decoded freely")

# %% [markdown]
# The first two shares should agree, as argued above; they can differ only where two
# characters are nearly tied and the tiny numerical differences between one long pass and
# many short ones pick different winners (the count of disagreements is printed). On the wrong
# numbers, compare the two averages. When free decoding ends further from the right answer
# than the count of teacher-forced mistakes, the errors have piled up: after one wrong choice
# (say "four" where "forty" was due) the decoder writes a fluent continuation of its *own*
# prefix ("four hundred ..."; section 6 lists the real cases), and one wrong character becomes
# a wrong word or more. Character-level accuracy under teacher forcing, the number watched
# during training, then understates the errors of free decoding: evaluate the model the way
# it will be used.
#
# **Beam search** (optional) keeps the $k$ most likely partial translations at every step
# instead of one, and returns the most likely complete one (`beam_search` in
# `course_utils.transformer`; Vaswani et al. used $k = 4$, with a length penalty, as longer
# sequences multiply more probabilities). Greedy decoding can commit to a first character
# that looked best and leads nowhere; a beam keeps the runner-up alive. Does it rescue our
# wrong translations, and does it spoil right ones?

# %%
beam_wrong = wrong[:BEAM_SAMPLE]
right_sample = rng.choice(np.flatnonzero(correct), size=min(BEAM_SAMPLE, int(correct.sum())),
                          replace=False)
start = time.perf_counter()
beam_right = {}
for index in np.concatenate([beam_wrong, right_sample]):
    source, _ = encode_numbers(test_numbers[index:index + 1])
    tokens, _ = beam_search(model, source.to(cfg.device), bos_id=CharVocabulary.BOS,
                            eos_id=CharVocabulary.EOS, beam_size=4, max_length=MAX_OUTPUT)
    beam_right[index] = english_vocab.decode(tokens) == expected[index]
print(f"beam of 4 ({time.perf_counter() - start:.1f} s): {sum(beam_right[i] for i in beam_wrong)} of "
      f"{len(beam_wrong)} wrong greedy translations become right;\n"
      f"{sum(beam_right[i] for i in right_sample)} of {len(right_sample)} right ones stay right")

# %% [markdown]
# A beam can only help when the right translation is the more likely one overall but did not
# look best at some step. When the model is simply wrong, and confident, about a word, a wider
# search finds the same wrong answer. The counts above say which case dominates here; weigh
# them against the time, a beam of 4 costs several greedy decodings.
#
# ## 6. What the translator gets wrong
#
# Every wrong translation is informative. Here are some, with the first wrong word of the
# expected translation in brackets:

# %%
def mark_first_wrong_word(got: str, want: str) -> str:
    """``want`` with its first word that ``got`` does not match in [brackets]."""
    got_words, want_words = got.split(" "), want.split(" ")
    for position, want_word in enumerate(want_words):
        if position >= len(got_words) or got_words[position] != want_word:
            return " ".join(want_words[:position] + [f"[{want_word}]"] + want_words[position + 1:])
    return want + " [nothing more]"


print(f"{len(wrong)} wrong of {len(test_numbers):,}:")
for index in wrong[:10]:
    number = int(test_numbers[index])
    print(f"{number:>9,}  {french(number)}\n{'got':>9}  {translations[index]}\n"
          f"{'expected':>9}  {mark_first_wrong_word(translations[index], expected[index])}")

# %%
english_words = {word for n in range(1, 1000) for word in english(n).split(" ")} | {"thousand"}


def one_word_wrong(got: str, want: str) -> bool:
    got_words, want_words = got.split(" "), want.split(" ")
    return len(got_words) == len(want_words) and sum(g != w for g, w in zip(got_words, want_words)) == 1


if len(wrong):
    single = np.mean([one_word_wrong(translations[i], expected[i]) for i in wrong])
    real_words = np.mean([set(translations[i].split(" ")) <= english_words for i in wrong])
    print(f"of the {len(wrong)} wrong translations: {single:.0%} differ from the right one in exactly "
          f"one word;\n{real_words:.0%} are made only of words that exist in English number names")
edges = [1] + [10 ** power for power in range(2, len(str(MAX_NUMBER)) + 1)]
for low, high in zip(edges[:-1], edges[1:]):
    chosen = (test_numbers >= low) & (test_numbers < high)
    in_training = ((train_numbers >= low) & (train_numbers < high)).sum()
    wrong_share = f"{1 - correct[chosen].mean():6.1%} of these wrong" if chosen.any() else "none to test"
    print(f"numbers {low:>7,} to {high - 1:>7,}: {in_training:>7,} in training, {chosen.sum():>6,} "
          f"held out, {wrong_share}")
first_words = [french(int(n)).replace("-", " ").split(" ") for n in train_numbers]
after_quatre = Counter(words[1] for words in first_words if words[0] == "quatre" and len(words) > 1)
print(f"training sources whose first word is 'quarante': "
      f"{sum(words[0] == 'quarante' for words in first_words):,}, 'quatre': "
      f"{sum(words[0] == 'quatre' for words in first_words):,};\nafter a first 'quatre' come "
      + ", ".join(f"'{word}' {count:,}" for word, count in after_quatre.most_common(3)))

# %% [markdown]
# Read the list and the table before going on. The two shares printed first say how the
# mistakes look: when most wrong translations differ in one word and use only real English
# number words, the model has learned to spell English words well (each is seen thousands of
# times) and goes wrong in the choice of a word, which depends on the alignment with the
# French. The table says where they fall: compare the error rate of each range with the number
# of training examples in it. Numbers below 100 are few (99 exist in all), and their first
# words are rare as first words: "quarante" begins a training source only in the forties (and,
# in the full profile, the forty thousands), while "quatre" begins many more, mostly followed
# by a word that makes a larger number (counts printed above). A model that has seen few
# examples of a pattern falls back on a common one: if the list holds small numbers
# translated as if they were hundreds or thousands, this is why. A model learns the
# distribution it is given, not the grammar behind it: more examples of the rare cases (or
# weighting them up) is the usual cure. (One seed, one small model: the exact list changes from
# run to run.)
#
# ## 7. Where the model looks: attention maps
#
# Each decoder layer's cross-attention has one map per head: rows are the English characters
# being written, columns the French characters, and each row sums to 1. We collect them by
# running the decoder once more on its own output (teacher forcing with the greedy result),
# which reproduces the decoding exactly. The same pass leaves the maps of the encoder's
# self-attention, French against French, which the second part of this section reads.

# %%
@torch.no_grad()
def attention_maps(number: int):
    """(French, English written, expected English, cross-attention weights (layers, heads, L_y,
    L_x), encoder self-attention weights (layers, heads, L_x, L_x)) of one translation."""
    source, _ = encode_numbers([number])
    source = source.to(cfg.device)
    tokens = greedy_decode(model, source, bos_id=CharVocabulary.BOS, eos_id=CharVocabulary.EOS,
                           max_length=MAX_OUTPUT)
    written = english_vocab.decode(tokens[0].cpu())
    decoder_input = torch.cat([torch.full_like(tokens[:, :1], CharVocabulary.BOS), tokens], dim=1)
    memory, memory_mask = model.encode(source)
    model.decode(decoder_input[:, :len(written) + 1], memory, memory_mask)
    cross = torch.stack([layer.cross_attention.last_weights[0] for layer in model.decoder])
    encoder_self = torch.stack([layer.self_attention.last_weights[0] for layer in model.encoder])
    return (french(number), written, english(number), cross[:, :, :len(written)].cpu().numpy(),
            encoder_self.cpu().numpy())


def french_words(number: int) -> list[str]:
    return french(int(number)).replace("-", " ").split()


# The longest correct translation of at most 8 French words (more would crowd the labels).
test_lengths = french_lengths(test_numbers)
few_words = np.array([len(french_words(n)) <= 8 for n in test_numbers])
candidates = np.flatnonzero(correct & few_words)
if len(candidates) == 0:  # a model that translates nothing right (e.g. barely trained)
    candidates = np.flatnonzero(few_words)
example = int(test_numbers[candidates[np.argmax(test_lengths[candidates])]])
source_text, written, wanted, maps, encoder_maps = attention_maps(example)
verdict = "correct" if written == wanted else f"wrong, expected '{wanted}'"
print(f"{example:,}: {source_text}\n-> {written} ({verdict})")
heads_rows = NUM_LAYERS * math.ceil(NUM_HEADS / 4)  # the figures put at most 4 heads in a row
shown_layers = list(range(NUM_LAYERS)) if heads_rows <= 4 else [0, NUM_LAYERS - 1]
print(f"layers drawn: {', '.join(str(layer + 1) for layer in shown_layers)} of {NUM_LAYERS} "
      f"(the widget below draws any layer)")
if written:
    fig = cross_attention_figure(source_text, written, maps, layers=shown_layers,
                                 title=f"Cross-attention for {example:,} (held out)")
else:
    print("the model wrote nothing (<eos> first): there is no map to draw")

# %% [markdown]
# One row per English character, one column per French character, thin lines between words.
# Summing each map into words makes them easier to read: for each English word (the average
# of its characters' rows), the share of attention each French word receives (the sum of its
# characters' columns; separators count with the word before them). Shares of 0.1 and more
# are printed.

# %%
if written:
    fig = cross_attention_figure(source_text, written, maps, by_words=True, layers=shown_layers,
                                 title="The same maps summed into words")


def alignment_order(word_maps) -> np.ndarray:
    """Per (layer, head): the correlation between an English word's position and the mean
    position of the French words it reads (1: reading the French strictly in order)."""
    words_out, words_in = word_maps.shape[-2:]
    mean_position = word_maps @ np.arange(words_in)  # (layers, heads, words_out)
    order = np.arange(words_out) - (words_out - 1) / 2
    centred = mean_position - mean_position.mean(axis=-1, keepdims=True)
    spread = np.sqrt((centred ** 2).sum(-1) * (order ** 2).sum()) + 1e-12
    return (centred * order).sum(-1) / spread


if written and len(written.split(" ")) > 2:
    order = alignment_order(word_attention(maps, source_text, written))
    layer, head = np.unravel_index(np.argmax(order), order.shape)
    print(f"the head that reads the French most in order: decoder layer {layer + 1}, head {head + 1} "
          f"(correlation {order[layer, head]:.2f});\nthe least: {order.min():.2f}")

# %% [markdown]
# Read each panel row by row: while an English word is being written, where does the weight
# go? A head whose large shares run down a diagonal reads the French in order, an English word
# taking its weight from the French word with the same meaning ("trois" for "three", "mille"
# for "thousand"); the printed correlation finds the head closest to that (1 would be strict
# order). Nobody told the model which words correspond: whatever alignment a head shows came
# from the translation loss alone. Where English needs several French words at once
# ("ninety-eight" from "quatre-vingt-dix-huit", four words for two), look how the weight
# spreads over them. Heads that look at the same place throughout, or spread their weight
# everywhere, are common too: a head need not be interpretable to be useful, as the next layer
# can combine them. Unlike lesson 03's recurrent encoder, whose state summarised the source
# *up to* a character, this encoder's self-attention looks in both directions: a French word
# receiving weight is a position whose vector may carry information from the whole sentence.
# (Maps of one small model, trained once: which head does what changes from run to run.)
#
# ### The encoder's self-attention
#
# Lesson 03 drew the self-attention of an untrained layer; here are the trained encoder's maps
# for the same number, summed into words: rows are the French words being re-computed (the
# queries), columns the words they read (the keys).

# %%
fig = cross_attention_figure(source_text, source_text, encoder_maps, by_words=True,
                             layers=shown_layers, kind="encoder",
                             title=f"Encoder self-attention for {example:,}, summed into words")

# %% [markdown]
# One number shows little. Averaged over many held-out numbers, the share of each head's
# weight that a word gives to itself, to the word before it and to the word after it (as a
# baseline, spreading the weight evenly would give each of them the share printed first):

# %%
@torch.no_grad()
def neighbour_shares(numbers, batch_size=250):
    """Per (layer, head), averaged over the words of the numbers (of 2 words or more): the share
    of a word's self-attention on itself, on the word before it, on the word after it."""
    totals, counts = np.zeros((NUM_LAYERS, NUM_HEADS, 3)), np.zeros(3)
    for start in range(0, len(numbers), batch_size):
        chunk = numbers[start:start + batch_size]
        source, _ = encode_numbers(chunk)
        model.encode(source.to(cfg.device))
        weights = torch.stack([layer.self_attention.last_weights for layer in model.encoder], dim=1)
        for row, number in enumerate(chunk):
            text = french(int(number))
            words = word_attention(weights[row, :, :, :len(text), :len(text)].cpu().numpy(), text, text)
            for column, offset in enumerate((0, -1, 1)):
                shares = np.diagonal(words, offset=offset, axis1=-2, axis2=-1)
                totals[..., column] += shares.sum(-1)
                counts[column] += shares.shape[-1]
    return totals / counts


several_words = test_numbers[[len(french_words(n)) > 1 for n in test_numbers]]
sample = rng.choice(several_words, min(ATTENTION_SAMPLE, len(several_words)), replace=False)
shares = neighbour_shares(sample)
even_share = np.mean([1 / len(french_words(n)) for n in sample])
print(f"{len(sample)} held-out numbers; an even spread gives each word {even_share:.2f}")
print("layer  head   itself   word before   word after")
for layer in range(NUM_LAYERS):
    for head in range(NUM_HEADS):
        itself, before, after = shares[layer, head]
        print(f"{layer + 1:>5} {head + 1:>5} {itself:>8.2f} {before:>13.2f} {after:>12.2f}")
for column, name in enumerate(("itself", "the word before", "the word after")):
    layer, head = np.unravel_index(np.argmax(shares[..., column]), shares.shape[:2])
    print(f"most weight on {name}: layer {layer + 1}, head {head + 1} "
          f"({shares[layer, head, column]:.2f})")
specialised = shares.max() > 2 * even_share
print(f"{'some heads concentrate' if specialised else 'no head concentrates'} on one of these "
      f"words (more than twice the even share)")

# %% [markdown]
# A share well above the even one means a head has specialised; the last line says whether
# any has. A head that reads the word before gives each word its left context, which French
# number words need: "vingt" means 20 alone, 80 after "quatre"; "dix" is 10, or part of 70 or
# 90 after "soixante" or "quatre-vingt"; "cent" and "mille" multiply what comes before them.
# A head that reads the word after does the same from the right ("quatre" followed by "vingt"
# or "mille" is not a 4). Where no head concentrates on neighbours, the encoder spreads its
# attention over larger parts of the number; look in the maps for blocks, e.g. the words
# before "mille" reading one word and the words after it another: a head that groups the
# words of one part of the number. Either way, by the last encoder layer a word's vector can
# carry the value the word has *in this number*, which is what the cross-attention above
# reads. Check in the widget whether a head keeps its habit on other numbers.
#
# Try other numbers: type one in the box (any number from 1 to the profile's maximum, held
# out or not), choose a layer and which attention to draw.

# %%
translation_widget(attention_maps, MAX_NUMBER, NUM_LAYERS, value=int(test_numbers[len(test_numbers) // 2]))

# %% [markdown]
# ## 8. Strengths and costs
#
# **Parallel training.** Teacher forcing computes every position's loss in one pass; greedy
# decoding needs one decoder pass per character. Timed on a batch of held-out numbers:

# %%
source, labels = encode_numbers(rng.choice(test_numbers, min(TIMING_BATCH, len(test_numbers)),
                                           replace=False))
source, labels = source.to(cfg.device), labels.to(cfg.device)


def best_of(function, repeats=TIMING_REPEATS):
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
print(f"{len(labels)} targets of up to {labels.shape[1]} tokens: one teacher-forced pass "
      f"{one_pass * 1e3:.0f} ms, greedy decoding {step_by_step * 1e3:.0f} ms "
      f"({step_by_step / one_pass:.0f}x longer)")

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
longest_source = int(french_lengths(train_numbers).max())
mixing_longest, total_longest = encoder_layer_flops(longest_source)
print(f"attention mixing: {flops[0, 0] / flops[0, 1]:.0%} of the counted FLOPs at L = {lengths[0]}, "
      f"{flops[-1, 0] / flops[-1, 1]:.0%} at L = {lengths[-1]};\nlarger than the rest from "
      f"L = {crossing} on this grid")
print(f"at L = n + 2d = {HIDDEN + 2 * DIM}: mixing {mixing_at:,} FLOPs, the rest {total_at - mixing_at:,}")
print(f"the longest French source in training: {longest_source} characters; there the attention "
      f"mixing is\n{mixing_longest / total_longest:.0%} of the counted FLOPs")

# %% [markdown]
# The counted FLOPs agree with the formula: at $L = n + 2d$ the two parts are equal. Our
# sources are short next to $n + 2d$ (the longest and its share are printed above); with
# $n = 4d$ the quadratic part dominates once $L > 6d$, so the wider the model, the later. (Lesson 03 compared a different pair, the attention layer alone against a two-layer
# network, and found $L > n - 2d$.) Long inputs are where attention gets expensive: images
# are cut into patches (lesson 05) to keep $L$ small.
#
# **A position for any length, but used only as trained.** The sinusoidal encoding has no
# parameters and a vector for every position, however far. Vaswani et al. preferred it to
# learned position embeddings (which performed nearly the same) because it might let the model
# extrapolate to sequences longer than those met in training. Whether a trained model does is
# an experimental question: the table gives position 50 a vector, but what the attention layers
# make of such vectors was learned only at the positions that occurred in training. Section 4
# kept every number whose French is longer than the printed limit out of training. These are
# numbers of the same kinds as the trained ones, with the same words in the same kinds of
# combinations; only the lengths are new, of the source and mostly of the English too:

# %%
longer_sample = np.sort(rng.choice(longer_numbers, min(LONGER_SAMPLE, len(longer_numbers)),
                                   replace=False))
longer_translations = translate(longer_sample)
longer_expected = [english(int(n)) for n in longer_sample]
longer_correct = np.array([got == want for got, want in zip(longer_translations, longer_expected)])
longest_english = max(len(english(int(n))) for n in train_numbers)
english_longer = np.array([len(want) > longest_english for want in longer_expected])
print(f"held-out numbers of the trained lengths: {correct.mean():.1%} exact")
print(f"{len(longer_sample):,} numbers whose French is longer than {LONGEST_TRAINED} characters: "
      f"{longer_correct.mean():.1%} exact")
for name, chosen in (("longer", english_longer), ("no longer", ~english_longer)):
    if chosen.any():
        print(f"  {chosen.sum():,} of them with English {name} than any trained "
              f"({longest_english} characters): {longer_correct[chosen].mean():.1%} exact")
gap = correct.mean() - longer_correct.mean()
verdict = "far less well than" if gap > 0.2 else "less well than" if gap > 0.05 else "about as well as"
print(f"verdict: the model translates sources longer than any it was trained on {verdict}\n"
      f"those of the trained lengths")
for index in np.flatnonzero(~longer_correct)[:3]:
    number = int(longer_sample[index])
    print(f"{number:>9,}  {french(number)}\n{'got':>9}  {longer_translations[index]}\n"
          f"{'expected':>9}  {mark_first_wrong_word(longer_translations[index], longer_expected[index])}")

# %% [markdown]
# Compare the two shares; the printed verdict says how they differ. A drop means the model did
# not learn "the next position" as a rule it could apply one step further; it learned what to
# do at the positions it met, and a source longer than those (and, where it happens, an
# English translation longer than any it has written) takes it outside what it knows, even
# though each word is familiar. This is the usual finding: Press et al. [2022] showed that language models with
# sinusoidal positions degrade quickly beyond their training length, and proposed ALiBi, a
# penalty on attention scores that grows with the distance between query and key, which
# extrapolates much better. Held-out numbers *of the trained lengths* are what a fair test
# measures; longer ones need training data of those lengths, or position information built to
# extrapolate.
#
# **Bigger by changing arguments, paid for in data and compute.** Every layer of a stack has
# the same shape, so a larger Transformer is the same code called with more layers, a larger
# $d$, more heads or a wider feed-forward network. What grows with them is the amount of data
# and computation needed to train it. Counting
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
      f"{base_parameters / 1e6:.1f} M\n({embedding_parameters / 1e6:.1f} M of them in the two "
      f"embeddings and the output layer)")
print(f"sharing those three matrices, as the paper does: "
      f"{(base_parameters - 2 * 37_000 * 512) / 1e6:.1f} M")

# %% [markdown]
# With the three embedding matrices shared, as in the paper, our code comes close to the 65 M
# parameters the paper reports (the exact count depends on the vocabulary). That model was
# trained on 4.5 million sentence pairs for 12 hours on eight GPUs, with dropout and label
# smoothing (0.1 each) against overfitting; ours learns a much smaller language, with neither,
# in the training time printed in section 4. Big Transformers need big
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
#   printed in section 5). Its mistakes show what it learned from thin data (section 6); its
#   attention maps (section 7) show where each head reads, learned from the translation loss
#   alone.
# * Pre- or post-norm changes how gradients are spread over the layers at initialisation, and
#   how much depends on the initialisation (section 4).
# * Strengths: parallel training, global context in one layer, size set by a few arguments.
#   Costs: attention is quadratic in length, sources longer than the trained ones are not
#   handled for free (section 8), and large models need large data and compute.
#
# ## References
#
# * A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
# * J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
# * R. Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020.
# * X. Glorot, Y. Bengio, "Understanding the Difficulty of Training Deep Feedforward Neural
#   Networks", AISTATS 2010.
# * O. Press, N. A. Smith, M. Lewis, "Train Short, Test Long: Attention with Linear Biases
#   Enables Input Length Extrapolation", ICLR 2022.
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
