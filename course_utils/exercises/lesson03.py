"""Lesson 03 exercises: masked softmax, scaled dot-product attention, multi-head self-attention,
sinusoidal positional encoding, and the cost of attention versus fully-connected layers.

The references are the package's own code (course_utils.attention), which later lessons import.
"""

import math

import torch

from course_utils import attention
from course_utils.checks import Case, check_function, check_module

# ---- reference solutions ---------------------------------------------------------------------


masked_softmax = attention.masked_softmax


def scaled_dot_product_attention(query, key, value, mask=None):
    """(output, weights) of softmax(Q K^T / sqrt(d)) V, with an optional boolean mask."""
    return attention.scaled_dot_product_attention(query, key, value, mask)


class MultiHeadSelfAttention(attention.MultiHeadAttention):
    """Self-attention: queries, keys and values all come from x (N, L, d)."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__(embed_dim, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x, x, x)


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """(length, dim): sin(p w_k) in even columns, cos(p w_k) in odd ones, w_k = 10000^(-2k/dim)."""
    return attention.sinusoidal_encoding(length, dim)


def layer_costs(length: int, dim: int, hidden: int) -> dict[str, int]:
    """Parameters and FLOPs (biases ignored, 2 FLOPs per multiply-add) for a sequence X (L, d) of:

    * two fully-connected layers applied to every token, Y = (X W1) W2, W1: d x n, W2: n x d;
    * the simplified self-attention Y = (X Wq)(X Wk)^T (X Wv) Wo, all four d x d, computed left
      to right.
    """
    fc_flops = 2 * length * dim * hidden + 2 * length * hidden * dim
    projections = 4 * (2 * length * dim * dim)        # X Wq, X Wk, X Wv and the final . Wo
    mixing = 2 * length * length * dim * 2             # Q K^T (L x L), then (Q K^T) V
    return {"fc_params": 2 * dim * hidden, "fc_flops": fc_flops,
            "attention_params": 4 * dim * dim, "attention_flops": projections + mixing}


# ---- checks ----------------------------------------------------------------------------------

def _scores(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def check_masked_softmax(student):
    causal = attention.causal_mask(4)
    padding = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    hint = ("Fill the scores where the mask is False with -inf (scores.masked_fill(~mask, "
            "float('-inf'))), then softmax over the last axis; with mask None, a plain softmax.")
    cases = [Case("no mask", (_scores((2, 5), 0), None), hint=hint),
             Case("causal mask 4x4", (_scores((4, 4), 1), causal),
                  hint="row i may only use columns 0..i: the masked columns must get exactly 0. "
                       + hint),
             Case("padding mask, broadcast over 3 queries", (_scores((2, 3, 5), 2), padding[:, None, :]),
                  hint="the mask broadcasts against the scores, like any tensor operation. " + hint),
             Case("large scores", (_scores((2, 6), 3) * 500, None),
                  hint="torch.softmax is stable for large scores; exp() by hand overflows.")]
    return check_function(student, masked_softmax, cases, exercise="Exercise 1 (masked softmax)",
                          diagnose=_diagnose_masked_softmax)


def _diagnose_masked_softmax(case, expected, got):
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    if torch.isnan(got).any():
        return ("NaN appears when a row has every key masked: check the polarity, True means "
                "'may attend', so fill the scores where ~mask is True.")
    leaked = (expected == 0) & (got.abs() > 1e-6)
    if leaked.any():
        return ("masked positions still get weight. Filling their scores with 0 does not hide "
                "them (e^0 = 1); fill them with float('-inf') before the softmax.")
    return None


def check_scaled_dot_product_attention(student):
    generator = torch.Generator().manual_seed(4)

    def qkv(batch, length_q, length_k, d, d_v):
        return (torch.randn(*batch, length_q, d, generator=generator),
                torch.randn(*batch, length_k, d, generator=generator),
                torch.randn(*batch, length_k, d_v, generator=generator))

    hint = ("scores = query @ key.transpose(-2, -1) / sqrt(d), with d = query.shape[-1]; weights "
            "= masked_softmax(scores, mask); output = weights @ value; return both.")
    cases = [Case("one query, 6 keys", qkv((), 1, 6, 8, 8), hint=hint),
             Case("a batch, 4 queries, 7 keys", qkv((3,), 4, 7, 16, 16), hint=hint),
             Case("values of another size than keys", qkv((2,), 5, 5, 4, 6),
                  hint="the output takes its last size from the values: " + hint),
             Case("with heads and a causal mask", (*qkv((2, 2), 5, 5, 8, 8), attention.causal_mask(5)),
                  hint="transpose only the last two axes of the keys, so batch and head axes "
                       "stay put. " + hint)]
    return check_function(student, scaled_dot_product_attention, cases,
                          exercise="Exercise 2 (scaled dot-product attention)",
                          output_names=("output", "weights"), diagnose=_diagnose_attention)


def _diagnose_attention(case, expected, got):
    query, key, value = case.args[:3]
    mask = case.args[3] if len(case.args) > 3 else None
    d = query.shape[-1]
    slips = {"you did not divide the scores by sqrt(d)": math.sqrt(d),
             "you divided the scores by d; divide by sqrt(d)": 1 / math.sqrt(d)}
    for message, extra_scale in slips.items():
        scores = query @ key.transpose(-2, -1) / math.sqrt(d) * extra_scale
        weights = masked_softmax(scores, mask)
        try:
            if torch.allclose(got[1], weights, atol=1e-5):
                return message + "."
        except (TypeError, IndexError, RuntimeError):
            return None
    return None


def check_multi_head_self_attention(student_cls):
    generator = torch.Generator().manual_seed(5)
    hint = ("project x with q_proj, k_proj and v_proj; reshape each (N, L, d) to (N, L, heads, "
            "d / heads) and transpose to (N, heads, L, d / heads); attend per head; transpose "
            "back, reshape to (N, L, d) and apply out_proj.")
    cases = [Case("8 features, 2 heads", ({"embed_dim": 8, "num_heads": 2},
                                          torch.randn(3, 5, 8, generator=generator)), hint=hint),
             Case("one head", ({"embed_dim": 6, "num_heads": 1},
                               torch.randn(2, 4, 6, generator=generator)), hint=hint),
             Case("a batch of one, 4 heads", ({"embed_dim": 16, "num_heads": 4},
                                              torch.randn(1, 7, 16, generator=generator)),
                  hint="split the features into heads, not the positions. " + hint)]
    return check_module(student_cls, MultiHeadSelfAttention, cases,
                        exercise="Exercise 3 (multi-head self-attention)")


def check_sinusoidal_encoding(student):
    hint = ("positions p = 0..length-1 as a column, w_k = 10000 ** (-2k / dim) for k = 0..dim/2-1; "
            "sin(p * w_k) goes to column 2k, cos(p * w_k) to column 2k + 1.")
    cases = [Case("4 positions, 6 dimensions", (4, 6), hint=hint),
             Case("50 positions, 16 dimensions", (50, 16), hint=hint),
             Case("one position", (1, 8), hint="position 0 is sin(0) = 0, cos(0) = 1, alternating."),
             Case("2 dimensions", (10, 2), hint="with dim = 2 there is one frequency, w_0 = 1.")]
    return check_function(student, sinusoidal_encoding, cases, atol=1e-5,
                          exercise="Exercise 4 (sinusoidal positional encoding)",
                          diagnose=_diagnose_encoding)


def _diagnose_encoding(case, expected, got):
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    swapped = torch.empty_like(expected)
    swapped[:, 0::2], swapped[:, 1::2] = expected[:, 1::2], expected[:, 0::2]
    if torch.allclose(got.float(), swapped, atol=1e-5):
        return "sine and cosine are swapped: sine goes in the even columns 2k, cosine in 2k + 1."
    length, dim = case.args
    positions = torch.arange(length, dtype=torch.float64)[:, None]
    slow = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float64) / dim)  # k / d, not 2k / d
    wrong = torch.empty(length, dim, dtype=torch.float64)
    wrong[:, 0::2], wrong[:, 1::2] = torch.sin(positions * slow), torch.cos(positions * slow)
    if torch.allclose(got.double(), wrong, atol=1e-5):
        return "the exponent is 2k / dim with k = 0 .. dim/2 - 1 (use torch.arange(0, dim, 2) / dim)."
    return None


def check_layer_costs(student):
    hint = ("fully-connected: d*n + n*d weights, and each (L x a) @ (a x b) product costs "
            "2*L*a*b FLOPs; attention: 4 d x d weights, four projections of 2*L*d*d FLOPs and "
            "two L x L products of 2*L*L*d FLOPs each.")
    cases = [Case("L=50, d=1024, n=2048", (50, 1024, 2048), hint=hint),
             Case("L=784", (784, 1024, 2048), hint=hint),
             Case("L=1,048,576", (1_048_576, 1024, 2048), hint=hint),
             Case("small: L=3, d=2, n=5", (3, 2, 5),
                  hint="n is the first layer's width: it appears in the FC terms only. " + hint)]
    return check_function(student, layer_costs, cases, exercise="Exercise 5 (the cost of attention)",
                          diagnose=_diagnose_costs)


def _diagnose_costs(case, expected, got):
    for key in ("fc_flops", "attention_flops"):
        if isinstance(got, dict) and got.get(key) == expected[key] // 2:
            return (f"your {key} is half the expected value: you counted multiply-adds. One "
                    f"multiply-add is 2 floating-point operations (a multiply and an add).")
    return None
