"""Lesson 04 exercises: the causal mask, a decoder layer's forward pass, shifting targets for
teacher forcing, and the greedy decoding loop.

The references are the package's own code (course_utils.attention and .transformer), which the
lesson's translator uses.
"""

import torch
from torch import nn

from course_utils import attention, transformer
from course_utils.checks import Case, check_function, check_module

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


# ---- checks ----------------------------------------------------------------------------------

def check_causal_mask(student):
    hint = ("torch.tril(torch.ones(length, length, dtype=torch.bool)): row i is the query at "
            "position i, True where it may attend, i.e. in columns 0..i.")
    cases = [Case("length 4", (4,), hint=hint), Case("length 1", (1,), hint=hint),
             Case("length 7", (7,), hint=hint)]
    return check_function(student, causal_mask, cases, exercise="Exercise 1 (causal mask)",
                          diagnose=_diagnose_causal_mask)


def _diagnose_causal_mask(case, expected, got):
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    if got.dtype != torch.bool:
        return "return booleans (dtype=torch.bool): True = may attend, False = hidden."
    if torch.equal(got, ~expected):
        return "the mask is inverted: True must mean 'may attend', so the past and the diagonal are True."
    if torch.equal(got, expected.T):
        return ("this is the transpose: rows are the queries (the positions being computed), "
                "columns the keys, so row i is True in columns 0..i (lower triangle).")
    if torch.equal(got, expected & ~torch.eye(len(expected), dtype=torch.bool)):
        return ("the diagonal is missing: a position may attend to itself (torch.tril with the "
                "default diagonal=0). Without it the first position sees nothing at all.")
    return None


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
    hint = ("three sub-layers, each as y = norm(y + sublayer(y)): causal self-attention "
            "(queries, keys and values from y, with causal_mask(L_y)), cross-attention (queries "
            "from y, keys and values from memory, with memory_mask), then the feed-forward.")
    cases = [Case("2 targets of 5, sources of 7, no padding", (init, _decoder_inputs(0, 2, 5, 7, 16, False)),
                  hint=hint),
             Case("3 targets of 6, padded sources of 8", (init, _decoder_inputs(1, 3, 6, 8, 16, True)),
                  hint=hint),
             Case("batch of one, target of length 1", (init, _decoder_inputs(2, 1, 1, 4, 16, True)),
                  hint=hint)]
    return check_module(student_cls, DecoderLayer, cases, exercise="Exercise 2 (decoder layer)",
                        diagnose=_diagnose_decoder_layer, prepare=_randomise_norms)


class _Slips(DecoderLayer):
    """The reference layer run with one common mistake, to name the learner's."""

    def __init__(self, slip, **init):
        super().__init__(**init)
        self.slip = slip

    def forward(self, y, memory, memory_mask=None):
        slip = self.slip
        mask = None if slip == "no causal mask" else causal_mask(y.shape[1])
        cross_mask = None if slip == "no memory mask" else memory_mask
        keys = y if slip == "cross-attends to itself" else memory
        if slip == "pre-norm":
            y = y + self.self_attention(self.norm1(y), self.norm1(y), self.norm1(y), mask)
            y = y + self.cross_attention(self.norm2(y), memory, memory, cross_mask)
            return y + self.feed_forward(self.norm3(y))
        if slip == "one norm for all":
            y = self.norm1(y + self.self_attention(y, y, y, mask))
            y = self.norm1(y + self.cross_attention(y, memory, memory, cross_mask))
            return self.norm1(y + self.feed_forward(y))
        if slip == "no residual":
            y = self.norm1(self.self_attention(y, y, y, mask))
            y = self.norm2(self.cross_attention(y, memory, memory, cross_mask))
            return self.norm3(self.feed_forward(y))
        y = self.norm1(y + self.self_attention(y, y, y, mask))
        y = self.norm2(y + self.cross_attention(y, keys, keys, cross_mask))
        return self.norm3(y + self.feed_forward(y))


_DECODER_SLIPS = {
    "no causal mask": "without the causal mask every position sees the targets after it "
                      "(the answer, in training): pass causal_mask(L_y) to the self-attention.",
    "no memory mask": "the cross-attention must hide the padded source positions: pass "
                      "memory_mask to it.",
    "cross-attends to itself": "in the cross-attention the keys and values come from memory "
                               "(the encoder's output); only the queries come from y.",
    "pre-norm": "you normalised before each sub-layer (pre-norm); this exercise asks for the "
                "paper's post-norm: y = norm(y + sublayer(y)).",
    "one norm for all": "each sub-layer has its own layer norm, with its own weights: norm1 "
                        "after the self-attention, norm2 after the cross-attention, norm3 after "
                        "the feed-forward.",
    "no residual": "each sub-layer's output is added to its input before the norm: "
                   "norm(y + sublayer(y)), not norm(sublayer(y)).",
}


def _diagnose_decoder_layer(case, expected, got):
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    init, inputs = case.args
    with torch.random.fork_rng():  # as in check_module: the notebook's random numbers stay put
        torch.manual_seed(0)
        reference = DecoderLayer(**init)
        _randomise_norms(reference)
        state = reference.state_dict()
        variants = {slip: _Slips(slip, **init) for slip in _DECODER_SLIPS}
    for slip, advice in _DECODER_SLIPS.items():
        variant = variants[slip]
        variant.load_state_dict(state)
        with torch.no_grad():
            if torch.allclose(variant(*inputs), got, atol=1e-5):
                return advice
    return None


def check_shift_right(student):
    hint = ("torch.cat([a column filled with bos_id, labels[:, :-1]], dim=1): the decoder reads "
            "<bos> to predict the first label, the first label to predict the second, and so on.")
    padded = torch.tensor([[5, 6, 7, 2, 0, 0], [8, 9, 10, 11, 12, 2], [4, 2, 0, 0, 0, 0]])
    cases = [Case("padded batch of 3, bos_id 1", (padded, 1), hint=hint),
             Case("one row, bos_id 3", (torch.tensor([[7, 8, 2]]), 3), hint=hint),
             Case("labels of length 1", (torch.tensor([[2], [2]]), 1), hint=hint)]
    return check_function(student, shift_right, cases, exercise="Exercise 3 (shift right)",
                          diagnose=_diagnose_shift_right)


def _diagnose_shift_right(case, expected, got):
    labels, bos_id = case.args
    if not isinstance(got, torch.Tensor):
        return None
    if got.shape[1] == labels.shape[1] + 1:
        return ("the inputs must have the labels' length, one input per label: drop the last "
                "label column (labels[:, :-1]) after putting <bos> in front.")
    if got.shape != expected.shape:
        return None
    if torch.equal(got[:, 1:], labels[:, :-1]) and not (got[:, 0] == bos_id).all():
        return f"the first column must be bos_id ({bos_id}) in every row."
    if labels.shape[1] > 1 and torch.equal(got[:, :-1], labels[:, 1:]):
        return ("that shifts left (the future); shift right: input t is label t - 1, with <bos> "
                "at t = 0.")
    if torch.equal(got, labels):
        return ("these are the labels themselves: the decoder would be shown the character it "
                "must predict.")
    return None


class _ScriptedModel:
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


class _IgnoresSourceMask:
    """A model whose decoder is never given the source mask: a learner's slip, reproduced."""

    def __init__(self, model):
        self.model, self.pad_id = model, model.pad_id

    def encode(self, source):
        return self.model.encode(source)

    def decode(self, tokens, memory, source_mask):
        return self.model.decode(tokens, memory, None)


def _real_model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformer.Seq2SeqTransformer(source_vocab_size=12, target_vocab_size=12, dim=16,
                                               num_heads=2, hidden=32, num_encoder_layers=1,
                                               num_decoder_layers=1)
    return model.eval()


def check_greedy_decode(student):
    hint = ("start from a (N, 1) column of bos_id; repeat: logits = model.decode(tokens, memory, "
            "source_mask), take the argmax of the last position, write pad_id where a row has "
            "already finished, append it, mark rows that produced eos_id; stop when all rows have "
            "finished or after max_length tokens; return the tokens without the <bos> column.")
    scripted = _ScriptedModel()
    rows_end_apart = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12], [4, 0, 0, 0, 0]])
    cases = [Case("scripted model, rows ending at different steps",
                  (scripted, rows_end_apart), {"bos_id": 1, "eos_id": 2, "max_length": 10}, hint=hint),
             Case("scripted model, max_length reached first",
                  (scripted, rows_end_apart), {"bos_id": 1, "eos_id": 2, "max_length": 3}, hint=hint),
             Case("untrained translator, batch of one",
                  (_real_model(), torch.tensor([[4, 5, 6, 7]])),
                  {"bos_id": 1, "eos_id": 2, "max_length": 6}, hint=hint),
             Case("untrained translator, padded sources of different lengths",
                  (_real_model(), torch.tensor([[4, 5, 6, 7, 8, 9], [10, 0, 0, 0, 0, 0],
                                                [5, 5, 11, 0, 0, 0]])),
                  {"bos_id": 1, "eos_id": 2, "max_length": 8},
                  hint="pass the source_mask returned by model.encode to every model.decode call: "
                       "it hides the padding from the cross-attention. " + hint)]
    return check_function(student, greedy_decode, cases, exercise="Exercise 4 (greedy decoding)",
                          diagnose=_diagnose_greedy_decode)


def _diagnose_greedy_decode(case, expected, got):
    bos_id, eos_id = case.kwargs["bos_id"], case.kwargs["eos_id"]
    if not isinstance(got, torch.Tensor) or got.ndim != 2 or got.shape[0] != expected.shape[0]:
        return None
    model, source = case.args
    pad_id, length = model.pad_id, expected.shape[1]
    if got.shape[1] == length + 1 and (got[:, 0] == bos_id).all():
        return "return the generated tokens without the leading <bos> column (tokens[:, 1:])."
    before_end = expected != pad_id
    if got.shape[1] > length and torch.equal(got[:, :length][before_end], expected[before_end]):
        return ("the loop ran on after every row had produced eos_id: stop as soon as all rows "
                "have finished (e.g. finished.all()), and write pad_id in the rows that finished "
                "earlier.")
    if got.shape[1] < length and torch.equal(got, expected[:, :got.shape[1]]):
        return ("the loop stopped while some rows were unfinished: stop only when *every* row "
                "has produced eos_id (all, not any), or after max_length tokens.")
    same_shape = got.shape == expected.shape
    if isinstance(model, transformer.Seq2SeqTransformer) and same_shape:
        unmasked = greedy_decode(_IgnoresSourceMask(model), source, **case.kwargs)
        if not torch.equal(unmasked, expected) and torch.equal(unmasked, got):
            return ("pass the source_mask returned by model.encode to every model.decode call: "
                    "without it the cross-attention reads the padding of the shorter sources.")
    if same_shape and ((expected == eos_id) & (got == pad_id)).any():
        return ("keep the eos_id itself and pad only the steps after it: mask the new tokens with "
                "the rows that had finished *before* this step, then update the finished rows.")
    if (same_shape and ((expected == pad_id) & (got != pad_id)).any()
            and torch.equal(got[before_end], expected[before_end])):
        return ("after a row has produced eos_id, write pad_id in it (masked_fill with the "
                "rows already finished), whatever the model predicts there.")
    if got.shape[1] > 0 and torch.equal(got[:, 0], expected[:, 0]):
        return ("the first token is right but later ones differ: feed back the whole sequence so "
                "far (with <bos> first) and take the prediction at the *last* position, "
                "logits[:, -1].")
    return None
