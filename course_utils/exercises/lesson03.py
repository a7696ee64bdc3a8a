"""Lesson 03 exercises: masked softmax, scaled dot-product attention, multi-head self-attention,
sinusoidal positional encoding, and the cost of attention versus fully-connected layers.

The references are the package's own code (course_utils.attention), which later lessons import.
A wrong answer is diagnosed by the exercise's slips, each the reference with one common
mistake (see course_utils.checks.Slip), run on the failing case: when a slip's output matches
the learner's, that slip is named.
"""

import math
from functools import partial

import torch

from course_utils import attention
from course_utils.checks import Case, Slip, check_function, check_module, compare, diagnose_slips

# ---- reference solutions ---------------------------------------------------------------------


masked_softmax = attention.masked_softmax


def scaled_dot_product_attention(query, key, value, mask=None):
    """(output, weights) of softmax(Q K^T / sqrt(d)) V, with an optional boolean mask."""
    return attention.scaled_dot_product_attention(query, key, value, mask)


class MultiHeadSelfAttention(attention.MultiHeadAttention):
    """Self-attention: queries, keys and values all come from x (N, L, dim)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__(dim, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x, x, x)


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """(length, dim): sin(p w_k) in even columns, cos(p w_k) in odd ones, w_k = 10000^(-2k/dim)."""
    return attention.sinusoidal_encoding(length, dim)


def layer_costs(length: int, dim: int, hidden: int) -> dict:
    """Parameters, FLOPs (biases ignored, 2 FLOPs per multiply-add) and output shape for a
    sequence X (L, d) of:

    * two fully-connected layers applied to every token, Y = (X W1) W2, W1: d x n, W2: n x d;
    * the simplified self-attention Y = (X Wq)(X Wk)^T (X Wv) Wo, all four d x d, computed left
      to right.
    """
    fc_flops = 2 * length * dim * hidden + 2 * length * hidden * dim
    projections = 4 * (2 * length * dim * dim)        # X Wq, X Wk, X Wv and the final . Wo
    mixing = 2 * length * length * dim * 2             # Q K^T (L x L), then (Q K^T) V
    return {"fc_params": 2 * dim * hidden, "fc_flops": fc_flops, "fc_output_shape": (length, dim),
            "attention_params": 4 * dim * dim, "attention_flops": projections + mixing,
            "attention_output_shape": (length, dim)}


# ---- exercise 1: masked softmax --------------------------------------------------------------

def _scores(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def check_masked_softmax(student):
    causal = attention.causal_mask(4)
    padding = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    cases = [Case("no mask", (_scores((2, 5), 0), None),
                  hint="with mask=None nothing is hidden: a plain softmax over the last axis."),
             Case("causal mask 4x4", (_scores((4, 4), 1), causal),
                  hint="row i may use columns 0..i only; the other columns must get exactly 0."),
             Case("padding mask, broadcast over 3 queries", (_scores((2, 3, 5), 2), padding[:, None, :]),
                  hint="a (2, 1, 5) mask for (2, 3, 5) scores: it broadcasts over the 3 queries."),
             Case("large scores", (_scores((2, 6), 3) * 500, None),
                  hint="scores of several hundreds: the softmax must not overflow.")]
    return check_function(student, masked_softmax, cases, exercise="Exercise 1 (masked softmax)",
                          slips=MASKED_SOFTMAX_SLIPS)


def _masked_softmax_variant(scores, mask, *, fill=float("-inf"), hide="where False",
                            softmax=partial(torch.softmax, dim=-1)):
    """The masked softmax with one thing changed (the defaults give the reference)."""
    if mask is not None and hide != "nothing":
        scores = scores.masked_fill(~mask if hide == "where False" else mask, fill)
    return softmax(scores)


def _softmax_by_hand(scores):
    exps = scores.exp()
    return exps / exps.sum(dim=-1, keepdim=True)


MASKED_SOFTMAX_SLIPS = [
    Slip("mask not applied",
         "masked positions still get weight: the mask was not applied. Fill the scores where the "
         "mask is False with float('-inf'), then take the softmax.",
         partial(_masked_softmax_variant, hide="nothing")),
    Slip("filled with 0",
         "masked positions still get weight. Filling their scores with 0 does not hide them "
         "(e^0 = 1); fill them with float('-inf') before the softmax.",
         partial(_masked_softmax_variant, fill=0.0)),
    Slip("polarity inverted",
         "the mask's polarity is inverted: True means 'may attend', so fill the scores where the "
         "mask is False (scores.masked_fill(~mask, ...)), not where it is True.",
         partial(_masked_softmax_variant, hide="where True")),
    Slip("exp by hand",
         "e^x overflows for large scores (inf / inf gives NaN): use torch.softmax, which subtracts "
         "each row's maximum before the exponential.",
         partial(_masked_softmax_variant, softmax=_softmax_by_hand)),
] + [Slip(f"softmax over axis {axis}",
          f"the softmax runs over axis {axis}; it must run over the last axis (dim=-1), so that "
          f"each query's weights over the keys sum to 1.",
          partial(_masked_softmax_variant, softmax=partial(torch.softmax, dim=axis)))
     for axis in (0, 1)]


# ---- exercise 2: scaled dot-product attention ------------------------------------------------

def check_scaled_dot_product_attention(student):
    generator = torch.Generator().manual_seed(4)

    def qkv(batch, length_q, length_k, d, d_v):
        return (torch.randn(*batch, length_q, d, generator=generator),
                torch.randn(*batch, length_k, d, generator=generator),
                torch.randn(*batch, length_k, d_v, generator=generator))

    cases = [Case("one query, 6 keys", qkv((), 1, 6, 8, 8),
                  hint="queries (1, 8), keys (6, 8), values (6, 8): weights (1, 6), output (1, 8)."),
             Case("a batch, 4 queries, 7 keys", qkv((3,), 4, 7, 16, 16),
                  hint="a batch axis in front: key.T would reverse all three axes; transpose only "
                       "the last two, key.transpose(-2, -1)."),
             Case("values of another size than keys", qkv((2,), 5, 5, 4, 6),
                  hint="d = 4 for queries and keys, 6 for the values: the output is (2, 5, 6)."),
             Case("with heads and a causal mask", (*qkv((2, 2), 5, 5, 8, 8), attention.causal_mask(5)),
                  hint="two leading axes (batch, heads) and a 5x5 causal mask to pass on to "
                       "masked_softmax.")]
    return check_function(student, scaled_dot_product_attention, cases,
                          exercise="Exercise 2 (scaled dot-product attention)",
                          output_names=("output", "weights"), slips=ATTENTION_SLIPS,
                          diagnose=_diagnose_attention)


def _weights_variant(query, key, value, mask=None, *, scale=lambda q, k, v: math.sqrt(q.shape[-1]),
                     dim=-1, mask_as="given"):
    """The attention weights with one thing changed (the defaults give the reference's)."""
    scores = query @ key.transpose(-2, -1) / scale(query, key, value)
    mask = {"given": mask, "ignored": None, "inverted": None if mask is None else ~mask}[mask_as]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim)


_WHAT_D_IS = "d is the size of each query and key, query.shape[-1]."

ATTENTION_SLIPS = [  # part 0: the output, part 1: the weights
    Slip("results swapped", "the two results are swapped: return output, weights (in that order).",
         lambda *inputs: scaled_dot_product_attention(*inputs)[::-1]),
    Slip("keys mixed", "the output mixes the keys; it must mix the values: weights @ value.",
         lambda query, key, value, mask=None: (
             scaled_dot_product_attention(query, key, value, mask)[1] @ key), part=0),
    Slip("no scaling", "you did not divide the scores by sqrt(d).",
         partial(_weights_variant, scale=lambda q, k, v: 1.0), part=1),
    Slip("divided by d", "you divided the scores by d; divide by sqrt(d).",
         partial(_weights_variant, scale=lambda q, k, v: q.shape[-1]), part=1),
    Slip("sqrt of the number of keys",
         "you divided by the square root of the number of keys; " + _WHAT_D_IS,
         partial(_weights_variant, scale=lambda q, k, v: math.sqrt(k.shape[-2])), part=1),
    Slip("sqrt of the values' size",
         "you divided by the square root of the values' size; " + _WHAT_D_IS,
         partial(_weights_variant, scale=lambda q, k, v: math.sqrt(v.shape[-1])), part=1),
    Slip("softmax over the queries",
         "the softmax runs over the queries (dim=-2); it must run over the keys (dim=-1), so that "
         "each query's weights sum to 1.", partial(_weights_variant, dim=-2), part=1),
    Slip("mask not used", "the mask was not used: pass it to masked_softmax(scores, mask).",
         partial(_weights_variant, mask_as="ignored"), part=1),
    Slip("mask inverted",
         "the mask is inverted: True means 'may attend'; pass it to masked_softmax as it is.",
         partial(_weights_variant, mask_as="inverted"), part=1),
]


def _diagnose_attention(case, expected, got):
    if isinstance(got, torch.Tensor):
        return "return both the output and the weights: return output, weights."
    return None


# ---- exercise 3: multi-head self-attention ---------------------------------------------------

def check_multi_head_self_attention(student_cls):
    generator = torch.Generator().manual_seed(5)
    cases = [Case("8 features, 2 heads", ({"dim": 8, "num_heads": 2},
                                          torch.randn(3, 5, 8, generator=generator)),
                  hint="x (3, 5, 8): 2 heads of 4 features each; the output is (3, 5, 8)."),
             Case("one head", ({"dim": 6, "num_heads": 1},
                               torch.randn(2, 4, 6, generator=generator)),
                  hint="with one head, this is plain self-attention with projections."),
             Case("a batch of one, 4 heads", ({"dim": 16, "num_heads": 4},
                                              torch.randn(1, 7, 16, generator=generator)),
                  hint="x (1, 7, 16): 4 heads of 4 features each.")]
    return check_module(student_cls, MultiHeadSelfAttention, cases,
                        exercise="Exercise 3 (multi-head self-attention)",
                        diagnose=_diagnose_multi_head, slips=MULTI_HEAD_SLIPS)


def _multi_head_variant(module, x, *, scale="head_dim", split="transpose", merge="transpose",
                        softmax_dim=-1, projections="qkv", out_proj=True, heads=None):
    """The reference forward pass with one thing changed (the defaults give the reference)."""
    batch, length, dim = x.shape
    heads = heads or module.num_heads
    head_dim = dim // heads
    layers = {"q": module.q_proj, "k": module.k_proj, "v": module.v_proj}
    q, k, v = (layers[name](x) for name in projections)

    def split_heads(t):                                   # (N, L, d) -> (N, heads, L, d / heads)
        if split == "transpose":
            return t.view(batch, length, heads, head_dim).transpose(1, 2)
        if split == "no transpose":                       # the same numbers read in another order
            return t.reshape(batch, heads, length, head_dim)
        return t.view(batch, length, head_dim, heads).permute(0, 3, 1, 2)  # "head_dim first"

    q, k, v = split_heads(q), split_heads(k), split_heads(v)
    scores = q @ k.transpose(-2, -1) / {"head_dim": math.sqrt(head_dim), "dim": math.sqrt(dim),
                                        "none": 1.0}[scale]
    mixed = torch.softmax(scores, dim=softmax_dim) @ v    # (N, heads, L, d / heads)
    if merge == "transpose":
        mixed = mixed.transpose(1, 2)
    mixed = mixed.reshape(batch, length, dim)
    return module.out_proj(mixed) if out_proj else mixed


MULTI_HEAD_SLIPS = [
    Slip("no scaling", "the scores are not scaled: divide them by sqrt(head_dim), the size of one "
         "head.", partial(_multi_head_variant, scale="none")),
    Slip("scaled by sqrt(d)",
         "you divided the scores by sqrt(d) of the whole layer; each head works in head_dim = "
         "d / num_heads dimensions, so divide by sqrt(head_dim).",
         partial(_multi_head_variant, scale="dim")),
    Slip("split without a transpose",
         "the heads are split without a transpose: view (N, L, d) as (N, L, heads, head_dim), "
         "then transpose(1, 2) to (N, heads, L, head_dim). Reshaping straight to (N, heads, L, "
         "head_dim) mixes positions and features.",
         partial(_multi_head_variant, split="no transpose", merge="no transpose")),
    Slip("merged without a transpose",
         "the heads are merged without a transpose: bring (N, heads, L, head_dim) back to "
         "(N, L, heads, head_dim) with transpose(1, 2) before reshaping to (N, L, d).",
         partial(_multi_head_variant, merge="no transpose")),
    Slip("split as (head_dim, heads)",
         "the features are split as (head_dim, heads): each head takes a contiguous block of "
         "head_dim features, view(N, L, heads, head_dim).",
         partial(_multi_head_variant, split="head_dim first")),
    Slip("softmax over the queries",
         "the softmax runs over the queries (dim=-2); it must run over the keys (dim=-1).",
         partial(_multi_head_variant, softmax_dim=-2)),
    Slip("no out_proj",
         "out_proj is never applied: after merging the heads, return self.out_proj(merged).",
         partial(_multi_head_variant, out_proj=False)),
    Slip("no heads",
         "the features are not split into heads: this is one attention over all d features. "
         "Split them into num_heads heads of d / num_heads.", partial(_multi_head_variant, heads=1)),
    Slip("keys from q_proj", "the keys come from q_proj: use k_proj for the keys.",
         partial(_multi_head_variant, projections="qqv")),
    Slip("values from k_proj", "the values come from k_proj: use v_proj for the values.",
         partial(_multi_head_variant, projections="qkk")),
    Slip("values from q_proj", "the values come from q_proj: use v_proj for the values.",
         partial(_multi_head_variant, projections="qkq")),
]


def _diagnose_multi_head(case, expected, got):
    if isinstance(got, (tuple, list)):
        return "forward must return the output tensor only, not a tuple (drop the weights)."
    return None


# ---- exercise 4: sinusoidal positional encoding ----------------------------------------------

def check_sinusoidal_encoding(student):
    cases = [Case("4 positions, 6 dimensions", (4, 6), hint="a (4, 6) table, 3 frequencies."),
             Case("50 positions, 16 dimensions", (50, 16), hint="a (50, 16) table, 8 frequencies."),
             Case("one position", (1, 8), hint="position 0 is sin(0) = 0, cos(0) = 1, alternating."),
             Case("2 dimensions", (10, 2), hint="with dim = 2 there is one frequency, w_0 = 1.")]
    return check_function(student, sinusoidal_encoding, cases, atol=1e-5,
                          exercise="Exercise 4 (sinusoidal positional encoding)",
                          diagnose=_diagnose_encoding, slips=ENCODING_SLIPS)


def _encoding_variant(length, dim, *, exponent="2k/d", first_position=0, layout="interleaved",
                      cosine_frequency="same"):
    """The reference table with one thing changed (the defaults give the reference), float32."""
    positions = torch.arange(first_position, first_position + length, dtype=torch.float64)[:, None]
    k = torch.arange(dim // 2, dtype=torch.float64)
    powers = {"2k/d": -2 * k / dim, "k/d": -k / dim, "+2k/d": 2 * k / dim}[exponent]
    sine = torch.sin(positions * 10000.0 ** powers)
    cosine_powers = powers if cosine_frequency == "same" else -(2 * k + 1) / dim
    cosine = torch.cos(positions * 10000.0 ** cosine_powers)
    table = torch.empty(length, dim, dtype=torch.float64)
    if layout == "interleaved":
        table[:, 0::2], table[:, 1::2] = sine, cosine
    elif layout == "swapped":
        table[:, 0::2], table[:, 1::2] = cosine, sine
    else:                                                  # "halves": [sines | cosines]
        table = torch.cat([sine, cosine], dim=1)
    return table.float()


ENCODING_SLIPS = [
    Slip("sine and cosine swapped",
         "sine and cosine are swapped: sine goes in the even columns 2k, cosine in 2k + 1.",
         partial(_encoding_variant, layout="swapped")),
    Slip("halves",
         "the sines fill the first half of the columns and the cosines the second; they "
         "alternate: sine in column 2k, cosine in column 2k + 1 (table[:, 0::2] and "
         "table[:, 1::2]).", partial(_encoding_variant, layout="halves")),
    Slip("exponent k / dim",
         "the exponent is 2k / dim with k = 0 .. dim/2 - 1 (use torch.arange(0, dim, 2) / dim), "
         "not k / dim.", partial(_encoding_variant, exponent="k/d")),
    Slip("exponent's sign",
         "the exponent's sign is wrong: w_k = 1 / 10000^(2k/dim) = 10000 ** (-2k / dim), so the "
         "frequencies fall from 1 to nearly 0.", partial(_encoding_variant, exponent="+2k/d")),
    Slip("positions from 1",
         "the positions start at 1; they are 0 .. length - 1 (torch.arange(length)).",
         partial(_encoding_variant, first_position=1)),
    Slip("cosine frequency",
         "columns 2k and 2k + 1 share one frequency w_k; your cosine column uses a frequency of "
         "its own.", partial(_encoding_variant, cosine_frequency="own")),
]


def _diagnose_encoding(case, expected, got):
    if isinstance(got, torch.Tensor) and got.dtype != expected.dtype and got.shape == expected.shape:
        if torch.allclose(got.double(), expected.double(), atol=1e-5):
            return "the values are right; return them as float32 (table.float())."
    return None


# ---- exercise 5: the cost of attention -------------------------------------------------------

def check_layer_costs(student):
    cases = [Case("L=50, d=1024, n=2048", (50, 1024, 2048)),
             Case("L=784", (784, 1024, 2048)),
             Case("L=1,048,576", (1_048_576, 1024, 2048)),
             Case("small: L=3, d=2, n=5", (3, 2, 5),
                  hint="n is the first layer's width: it appears in the fully-connected answers "
                       "only.")]
    return check_function(student, layer_costs, cases, exercise="Exercise 5 (the cost of attention)",
                          diagnose=_diagnose_costs)


_BIASES = "biases are ignored in this exercise: count the weights only."
_ONE_ROW_PER_TOKEN = "one row per token: Y is (L, d)."

COST_SLIPS = [  # each explains one answer, ``part``; the formulas take (L, d, n)
    Slip("one FC layer", "you counted one layer: W1 (d x n) and W2 (n x d) both count.",
         lambda L, d, n: d * n, part="fc_params"),
    Slip("FC biases", _BIASES, lambda L, d, n: 2 * d * n + n + d, part="fc_params"),
    Slip("FC FLOPs halved",
         "half the expected value: either you counted multiply-adds (one multiply-add is 2 "
         "FLOPs), or one layer only ((X W1) and then (. W2) cost 2 L d n FLOPs each).",
         lambda L, d, n: 2 * L * d * n, part="fc_flops"),
    Slip("FC output (L, n)", "the second layer has d neurons: Y is L x d, like X.",
         lambda L, d, n: (L, n), part="fc_output_shape"),
    Slip("FC output transposed", _ONE_ROW_PER_TOKEN, lambda L, d, n: (d, L), part="fc_output_shape"),
    Slip("no W^O", "W^O is a fourth d x d matrix: 4 d^2 weights.", lambda L, d, n: 3 * d * d,
         part="attention_params"),
    Slip("attention biases", _BIASES, lambda L, d, n: 4 * d * d + 4 * d, part="attention_params"),
    Slip("multiply-adds",
         "you counted multiply-adds; one multiply-add is 2 floating-point operations.",
         lambda L, d, n: (8 * L * d * d + 4 * L * L * d) // 2, part="attention_flops"),
    Slip("no L x L products",
         "the two L x L products are missing: Q K^T and its product with V cost 2 L^2 d FLOPs "
         "each.", lambda L, d, n: 8 * L * d * d, part="attention_flops"),
    Slip("no product with W^O",
         "the product with W^O is missing: four projections of 2 L d^2 FLOPs each.",
         lambda L, d, n: 6 * L * d * d + 4 * L * L * d, part="attention_flops"),
    Slip("one L x L product",
         "there are two L x L products, Q K^T and (Q K^T) V, 2 L^2 d FLOPs each.",
         lambda L, d, n: 8 * L * d * d + 2 * L * L * d, part="attention_flops"),
    Slip("right to left",
         "you computed Q (K^T V), which never forms the L x L matrix; the exercise multiplies "
         "from left to right, (Q K^T) V.", lambda L, d, n: 12 * L * d * d, part="attention_flops"),
    Slip("attention output (L, L)",
         "Q K^T is L x L, but it is multiplied by V and W^O afterwards: Y is L x d.",
         lambda L, d, n: (L, L), part="attention_output_shape"),
    Slip("attention output transposed", _ONE_ROW_PER_TOKEN, lambda L, d, n: (d, L),
         part="attention_output_shape"),
]


_COST_REMINDERS = {
    "fc_params": "count the entries of W1 (d x n) and W2 (n x d).",
    "fc_flops": "an (L x a) @ (a x b) product costs 2 L a b FLOPs; there are two of them.",
    "fc_output_shape": "give (rows, columns) of Y = (X W1) W2 as a tuple.",
    "attention_params": "count the entries of W^Q, W^K, W^V and W^O, each d x d.",
    "attention_flops": "an (L x a) @ (a x b) product costs 2 L a b FLOPs: four projections "
                       "(X W^Q, X W^K, X W^V, . W^O) and two products with an L x L matrix.",
    "attention_output_shape": "give (rows, columns) of Y as a tuple.",
}


def _diagnose_costs(case, expected, got):
    """Name the slip behind the first wrong answer (in the order compare() reports them)."""
    if not isinstance(got, dict):
        return None
    for key, right in expected.items():
        answer = got.get(key)
        if compare(right, answer) is None:
            continue
        numbers = tuple(answer) if isinstance(answer, (tuple, list)) else (answer,)
        if any(isinstance(number, float) for number in numbers) and numbers == (
                right if isinstance(right, tuple) else (right,)):
            return (f"{key} has the right value but as a float; return integers (use // instead "
                    f"of /, or int()).")
        slips = [slip for slip in COST_SLIPS if slip.part == key]
        return diagnose_slips(slips, case, expected, got) or _COST_REMINDERS[key]
    return None
