"""Lesson 04 exercises: the causal mask, a decoder layer's forward pass, shifting targets for
teacher forcing, and the greedy decoding loop.

The references are the package's own code (course_utils.attention and .transformer), which the
lesson's translator uses. A wrong answer is diagnosed by the exercise's slips, each the reference
with one common mistake (see course_utils.checks.Slip): the decoder layer's and the decoding
loop's are the reference's code with one thing changed.
"""

from functools import partial

import torch
from torch import nn

from course_utils import attention, transformer
from course_utils.checks import Case, Slip, check_function, check_module

# ---- reference solutions ---------------------------------------------------------------------

causal_mask = attention.causal_mask
greedy_decode = transformer.greedy_decode


class DecoderLayer(nn.Module):
    """Post-norm decoder layer [Vaswani et al., 2017], the causal mask passed explicitly."""

    def __init__(self, dim: int, num_heads: int, hidden: int):
        super().__init__()
        self.self_attention = attention.MultiHeadAttention(dim, num_heads)
        self.cross_attention = attention.MultiHeadAttention(dim, num_heads)
        self.feed_forward = transformer.FeedForward(dim, hidden)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, y: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = causal_mask(y.shape[1], device=y.device)
        y = self.norm1(y + self.self_attention(y, y, y, mask))
        y = self.norm2(y + self.cross_attention(y, memory, memory, memory_mask))
        return self.norm3(y + self.feed_forward(y))


def shift_right(labels: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: <bos> first, then the labels without their last column."""
    start = torch.full_like(labels[:, :1], bos_id)
    return torch.cat([start, labels[:, :-1]], dim=1)


# ---- exercise 1: the causal mask -------------------------------------------------------------

def check_causal_mask(student):
    hint = ("row i is the query at position i: True in columns 0..i (where it may attend), False "
            "after them.")
    cases = [Case("length 4", (4,), hint=hint),
             Case("length 1", (1,), hint="a single position may attend to itself: [[True]]."),
             Case("length 7", (7,), hint=hint)]
    return check_function(student, causal_mask, cases, exercise="Exercise 1 (causal mask)",
                          diagnose=_diagnose_causal_mask, slips=CAUSAL_MASK_SLIPS)


def _ones(length):
    return torch.ones(length, length, dtype=torch.bool)


CAUSAL_MASK_SLIPS = [
    Slip("inverted",
         "the mask is inverted: True must mean 'may attend', so the past and the diagonal are True.",
         lambda length: ~causal_mask(length)),
    Slip("transposed",
         "this is the transpose: rows are the queries (the positions being computed), columns the "
         "keys, so row i is True in columns 0..i (lower triangle).", lambda length: causal_mask(length).T),
    Slip("no diagonal",
         "the diagonal is missing: a position may attend to itself (torch.tril with the default "
         "diagonal=0). Without it the first position sees nothing at all.",
         lambda length: _ones(length).tril(diagonal=-1)),
    Slip("diagonal=1",
         "each position also sees the next one (tril with diagonal=1): keep the default "
         "diagonal=0, so that row i is True in columns 0..i only.",
         lambda length: _ones(length).tril(diagonal=1)),
    Slip("all True",
         "every entry is True, so nothing is hidden: the future (above the diagonal) must be False.",
         _ones),
]


def _diagnose_causal_mask(case, expected, got):
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype != torch.bool:
        return "return booleans (dtype=torch.bool): True = may attend, False = hidden."
    return None


# ---- exercise 2: the decoder layer -----------------------------------------------------------

def _decoder_inputs(seed, batch, length_y, length_x, dim, padded):
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(batch, length_y, dim, generator=generator)
    memory = torch.randn(batch, length_x, dim, generator=generator)
    if not padded:
        return y, memory
    lengths = torch.arange(length_x, 0, -2)[:batch].clamp(min=1)
    memory_mask = (torch.arange(length_x)[None, :] < lengths[:, None])[:, None, None, :]
    return y, memory, memory_mask


def _randomise_norms(layer: nn.Module) -> None:
    """Give a decoder layer random layer-norm weights and biases, so that a layer that mixes up
    its norms (or uses a norm without weights) cannot pass by luck: fresh norms are all 1s and 0s."""
    with torch.no_grad():
        for norm in (layer.norm1, layer.norm2, layer.norm3):
            norm.weight.copy_(1 + 0.5 * torch.randn_like(norm.weight))
            norm.bias.copy_(0.5 * torch.randn_like(norm.bias))


def check_decoder_layer(student_cls):
    init = {"dim": 16, "num_heads": 4, "hidden": 32}
    cases = [Case("2 targets of 5, sources of 7, no padding", (init, _decoder_inputs(0, 2, 5, 7, 16, False)),
                  hint="three sub-layers, each y = norm(y + sublayer(y)): causal self-attention on y, "
                       "cross-attention (queries from y, so the output has y's length; keys and values "
                       "from memory), then the feed-forward."),
             Case("3 targets of 6, padded sources of 8", (init, _decoder_inputs(1, 3, 6, 8, 16, True)),
                  hint="these sources are padded: memory_mask (N, 1, 1, L_x) goes to the "
                       "cross-attention, the causal mask (L_y, L_y) to the self-attention."),
             Case("batch of one, target of length 1", (init, _decoder_inputs(2, 1, 1, 4, 16, True)),
                  hint="one target position: avoid squeeze() and anything else that assumes "
                       "more than one row or position.")]
    return check_module(student_cls, DecoderLayer, cases, exercise="Exercise 2 (decoder layer)",
                        slips=DECODER_SLIPS, prepare=_randomise_norms)


def _decoder_variant(layer, y, memory, memory_mask=None, *, causal="lower", use_memory_mask=True,
                     cross_keys="memory", cross_first=False, norm_at="sum", one_norm=False,
                     residual=True):
    """DecoderLayer's forward pass with one thing changed (the defaults give the reference)."""
    mask = {"lower": causal_mask(y.shape[1]), "upper": causal_mask(y.shape[1]).T, "none": None}[causal]

    def cross_attention(h):
        keys = memory if cross_keys == "memory" else h
        return layer.cross_attention(h, keys, keys, memory_mask if use_memory_mask else None)

    sublayers = [lambda h: layer.self_attention(h, h, h, mask), cross_attention, layer.feed_forward]
    if cross_first:
        sublayers[:2] = sublayers[1::-1]
    norms = [layer.norm1] * 3 if one_norm else [layer.norm1, layer.norm2, layer.norm3]
    for sublayer, norm in zip(sublayers, norms):
        if norm_at == "branch":
            y = y + norm(sublayer(y))
        elif norm_at == "input":  # pre-norm
            y = y + sublayer(norm(y))
        else:
            y = norm(y + sublayer(y) if residual else sublayer(y))
    return y


DECODER_SLIPS = [
    Slip("no causal mask",
         "without the causal mask every position sees the targets after it (the answer, in "
         "training): pass causal_mask(L_y) to the self-attention.",
         partial(_decoder_variant, causal="none")),
    Slip("no memory mask",
         "the cross-attention must hide the padded source positions: pass memory_mask to it.",
         partial(_decoder_variant, use_memory_mask=False)),
    Slip("mask shows the future",
         "the self-attention's mask is the wrong way round: row i (the query) may see columns "
         "0..i, the lower triangle; yours shows the upper one, the future.",
         partial(_decoder_variant, causal="upper")),
    Slip("cross-attends to itself",
         "in the cross-attention the keys and values come from memory (the encoder's output); "
         "only the queries come from y.", partial(_decoder_variant, cross_keys="y")),
    Slip("cross-attention first",
         "the sub-layers are in the wrong order: first the masked self-attention (norm1), then "
         "the cross-attention (norm2), then the feed-forward (norm3).",
         partial(_decoder_variant, cross_first=True)),
    Slip("norm on the branch",
         "normalise the sum, norm(y + sublayer(y)), not the sub-layer's output alone: "
         "y + norm(sublayer(y)) leaves the residual stream unnormalised.",
         partial(_decoder_variant, norm_at="branch")),
    Slip("pre-norm",
         "you normalised before each sub-layer (pre-norm); this exercise asks for the paper's "
         "post-norm: y = norm(y + sublayer(y)).", partial(_decoder_variant, norm_at="input")),
    Slip("one norm for all",
         "each sub-layer has its own layer norm, with its own weights: norm1 after the "
         "self-attention, norm2 after the cross-attention, norm3 after the feed-forward.",
         partial(_decoder_variant, one_norm=True)),
    Slip("no residual",
         "each sub-layer's output is added to its input before the norm: norm(y + sublayer(y)), "
         "not norm(sublayer(y)).", partial(_decoder_variant, residual=False)),
]


# ---- exercise 3: shifting the targets right --------------------------------------------------

def check_shift_right(student):
    hint = ("input t is label t - 1, with bos_id at t = 0: the decoder reads <bos> to predict "
            "the first label, the first label to predict the second, and so on.")
    padded = torch.tensor([[5, 6, 7, 2, 0, 0], [8, 9, 10, 11, 12, 2], [4, 2, 0, 0, 0, 0]])
    cases = [Case("padded batch of 3, bos_id 1", (padded, 1), hint=hint),
             Case("one row, bos_id 3", (torch.tensor([[7, 8, 2]]), 3), hint=hint),
             Case("labels of length 1", (torch.tensor([[2], [2]]), 1), hint=hint)]
    return check_function(student, shift_right, cases, exercise="Exercise 3 (shift right)",
                          diagnose=_diagnose_shift_right, slips=SHIFT_SLIPS)


def _bos_column(labels, bos_id):
    return torch.full_like(labels[:, :1], bos_id)


SHIFT_SLIPS = [
    Slip("last label kept",
         "the inputs must have the labels' length, one input per label: drop the last label "
         "column (labels[:, :-1]) after putting <bos> in front.",
         lambda labels, bos_id: torch.cat([_bos_column(labels, bos_id), labels], dim=1)),
    Slip("first label dropped",
         "you dropped the first label instead of the last: after <bos> come labels[:, :-1] "
         "(every label but the last).",
         lambda labels, bos_id: torch.cat([_bos_column(labels, bos_id), labels[:, 1:]], dim=1)),
    Slip("the labels themselves",
         "these are the labels themselves: the decoder would be shown the character it must "
         "predict.", lambda labels, bos_id: labels.clone()),
]


def _diagnose_shift_right(case, expected, got):
    """Slips recognised by a property of the answer, whatever its other values."""
    labels, bos_id = case.args
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    if got.is_floating_point() and torch.equal(got.long(), expected):
        return ("token ids are integers: build the <bos> column with the labels' dtype, e.g. "
                "torch.full_like(labels[:, :1], bos_id); a float column makes torch.cat return "
                "floats.")
    if torch.equal(got[:, 1:], labels[:, :-1]) and not (got[:, 0] == bos_id).all():
        return f"the first column must be bos_id ({bos_id}) in every row."
    if labels.shape[1] > 1 and torch.equal(got[:, :-1], labels[:, 1:]):
        return ("that shifts left (the future); shift right: input t is label t - 1, with <bos> "
                "at t = 0.")
    return None


# ---- exercise 4: greedy decoding -------------------------------------------------------------

class ScriptedModel:
    """Stands in for the translator: copies the first source tokens, then ends.

    Row r of the source holds its answer followed by padding (0). While what the decoder has
    read after <bos> is a correct prefix of the answer, every position predicts the answer's
    next token (then <eos> = 2); a wrong prefix predicts token 3 forever, so feeding back the
    wrong tokens shows.
    """

    pad_id = 0

    def __repr__(self):
        return "a scripted model"

    def encode(self, source):
        return source, None

    def decode(self, tokens, memory, source_mask):
        batch, length = tokens.shape
        logits = torch.zeros(batch, length, 16)
        for row in range(batch):
            answer = [int(t) for t in memory[row] if t != 0] + [2]
            for position in range(length):
                prefix = [int(t) for t in tokens[row, 1:position + 1]]
                good = prefix == answer[:position] and position < len(answer)
                logits[row, position, answer[position] if good else 3] = 5.0
        return logits


def _real_model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformer.Seq2SeqTransformer(source_vocab_size=12, target_vocab_size=12, dim=16,
                                               num_heads=2, hidden=32, num_encoder_layers=1,
                                               num_decoder_layers=1)
    return model.eval()


def check_greedy_decode(student):
    scripted = ScriptedModel()
    rows_end_apart = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12], [4, 0, 0, 0, 0]])
    cases = [Case("scripted model, rows ending at different steps",
                  (scripted, rows_end_apart), {"bos_id": 1, "eos_id": 2, "max_length": 10},
                  hint="the rows end at different steps: once a row has produced eos_id, append "
                       "pad_id to it; stop when every row has finished."),
             Case("scripted model, max_length reached first",
                  (scripted, rows_end_apart), {"bos_id": 1, "eos_id": 2, "max_length": 3},
                  hint="generate at most max_length tokens, even when some rows have not "
                       "finished."),
             Case("untrained translator, batch of one",
                  (_real_model(), torch.tensor([[4, 5, 6, 7]])),
                  {"bos_id": 1, "eos_id": 2, "max_length": 6},
                  hint="at every step decode the whole sequence so far (with <bos> first) and "
                       "append the argmax of the last position, logits[:, -1]."),
             Case("untrained translator, padded sources of different lengths",
                  (_real_model(), torch.tensor([[4, 5, 6, 7, 8, 9], [10, 0, 0, 0, 0, 0],
                                                [5, 5, 11, 0, 0, 0]])),
                  {"bos_id": 1, "eos_id": 2, "max_length": 8},
                  hint="pass the source_mask returned by model.encode to every model.decode call: "
                       "it hides the padding from the cross-attention.")]
    return check_function(student, greedy_decode, cases, exercise="Exercise 4 (greedy decoding)",
                          slips=GREEDY_SLIPS)


def _greedy_variant(model, source, *, bos_id, eos_id, max_length, keep_bos=False, extra_steps=0,
                    feed="all", read=-1, pad="after eos", stop="all finished", source_mask=True):
    """greedy_decode with one thing changed (the defaults give the reference). ``extra_steps``
    runs the loop longer (or shorter); the learner's loop may never end, this one does."""
    memory, mask = model.encode(source)
    mask = mask if source_mask else None
    tokens = torch.full((len(source), 1), bos_id, dtype=torch.long, device=source.device)
    finished = torch.zeros(len(source), dtype=torch.bool, device=source.device)
    for _ in range(max_length + extra_steps):
        logits = model.decode(tokens[:, -1:] if feed == "last" else tokens, memory, mask)
        next_token = logits[:, read].argmax(dim=-1)
        if pad == "eos itself":
            finished |= next_token == eos_id
        if pad != "none":
            next_token = next_token.masked_fill(finished, model.pad_id)
        if stop == "before appending" and (finished | (next_token == eos_id)).all():
            break
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == eos_id
        if finished.any() if stop == "any finished" else (stop != "never" and finished.all()):
            break
    return tokens if keep_bos else tokens[:, 1:]


GREEDY_SLIPS = [
    Slip("keeps <bos>",
         "return the generated tokens without the leading <bos> column (tokens[:, 1:]).",
         partial(_greedy_variant, keep_bos=True)),
    Slip("ignores max_length",
         "the loop went past max_length: generate at most max_length tokens (for _ in "
         "range(max_length)), even when some rows have not produced eos_id yet.",
         partial(_greedy_variant, extra_steps=100)),
    Slip("max_length counts <bos>",
         "one token short: max_length counts the generated tokens, not the <bos> column; run the "
         "loop max_length times.", partial(_greedy_variant, extra_steps=-1)),
    Slip("runs on after the end",
         "the loop ran on after every row had produced eos_id: stop as soon as all rows have "
         "finished (if finished.all(): break).", partial(_greedy_variant, stop="never")),
    Slip("ignores eos_id",
         "the loop never looks at eos_id: keep a boolean per row, set when the row produces "
         "eos_id; from then on append pad_id to it, and stop when every row has finished.",
         partial(_greedy_variant, pad="none", stop="never")),
    Slip("stops when any row ends",
         "the loop stopped while some rows were unfinished: stop only when *every* row has "
         "produced eos_id (all, not any).", partial(_greedy_variant, stop="any finished")),
    Slip("stops before appending",
         "the last token is missing: append the new token first, then check whether every row "
         "has finished.", partial(_greedy_variant, stop="before appending")),
    Slip("pads the <eos> itself",
         "keep the eos_id itself and pad only the steps after it: mask the new tokens with the "
         "rows that had finished *before* this step, then update the finished rows.",
         partial(_greedy_variant, pad="eos itself")),
    Slip("no padding after <eos>",
         "after a row has produced eos_id, write pad_id in it (masked_fill with the rows already "
         "finished), whatever the model predicts there.", partial(_greedy_variant, pad="none")),
    Slip("reads the first position",
         "take the prediction of the *last* position, logits[:, -1]: position 0 predicts the "
         "first token, again and again.", partial(_greedy_variant, read=0)),
    Slip("feeds only the last token",
         "feed back the whole sequence so far (with <bos> first): the decoder needs every token "
         "written, not only the last one.", partial(_greedy_variant, feed="last")),
    Slip("no source mask",
         "pass the source_mask returned by model.encode to every model.decode call: without it "
         "the cross-attention reads the padding of the shorter sources.",
         partial(_greedy_variant, source_mask=False)),
]
