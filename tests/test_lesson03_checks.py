import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.exercises import lesson03

from exercise_attempts import assert_undone_wrong_and_right  # tests/exercise_attempts.py


class NotDone(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        raise NotImplementedError


def softmax_ignoring_mask(scores, mask):
    return torch.softmax(scores, dim=-1)


def attention_without_scaling(query, key, value, mask=None):
    weights = lesson03.masked_softmax(query @ key.transpose(-2, -1), mask)
    return weights @ value, weights


class LearnerAttention(lesson03.MultiHeadSelfAttention):
    """Multi-head self-attention as a learner writes it; the class attributes switch in slips."""
    scale_by = "head_dim"           # "head_dim", "dim" or "nothing"
    transpose_on_split = True
    transpose_on_merge = True
    softmax_dim = -1
    apply_out_proj = True
    split_heads = True
    key_layer, value_layer = "k_proj", "v_proj"

    def forward(self, x):
        n, length, d = x.shape
        heads = self.num_heads if self.split_heads else 1
        head_dim = d // heads

        def split(t):
            if self.transpose_on_split:
                return t.view(n, length, heads, head_dim).transpose(1, 2)
            return t.reshape(n, heads, length, head_dim)   # wrong: no transpose

        q = split(self.q_proj(x))
        k = split(getattr(self, self.key_layer)(x))
        v = split(getattr(self, self.value_layer)(x))
        scores = torch.einsum("nhqe,nhke->nhqk", q, k)
        scores = scores / {"head_dim": math.sqrt(head_dim), "dim": math.sqrt(d), "nothing": 1}[self.scale_by]
        out = nn.functional.softmax(scores, dim=self.softmax_dim) @ v
        if self.transpose_on_merge:
            out = out.transpose(1, 2)
        out = out.reshape(n, length, d)
        return self.out_proj(out) if self.apply_out_proj else out


def learner_attention(**slip):
    return type("LearnerSlip", (LearnerAttention,), slip)


def encoding_sin_cos_swapped(length, dim):
    table = lesson03.sinusoidal_encoding(length, dim)
    return torch.stack([table[:, 1::2], table[:, 0::2]], dim=-1).reshape(length, dim)


def costs_counting_macs(length, dim, hidden):
    return {key: value // 2 if key.endswith("flops") else value
            for key, value in lesson03.layer_costs(length, dim, hidden).items()}


CASES = [
    (lesson03.check_masked_softmax, lesson03.masked_softmax, softmax_ignoring_mask, "-inf"),
    (lesson03.check_scaled_dot_product_attention, lesson03.scaled_dot_product_attention,
     attention_without_scaling, "sqrt(d)"),
    (lesson03.check_multi_head_self_attention, lesson03.MultiHeadSelfAttention,
     learner_attention(transpose_on_split=False, transpose_on_merge=False), "split without a transpose"),
    (lesson03.check_sinusoidal_encoding, lesson03.sinusoidal_encoding, encoding_sin_cos_swapped,
     "swapped"),
    (lesson03.check_layer_costs, lesson03.layer_costs, costs_counting_macs, "multiply-adds"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys, not_done_class=NotDone)


def test_the_learner_style_module_without_slips_passes(capsys):
    assert lesson03.check_multi_head_self_attention(LearnerAttention) is LearnerAttention
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


# ---- one regression test per diagnosed slip ---------------------------------------------------

def _fill(scores, mask, value):
    return scores if mask is None else scores.masked_fill(~mask, value)


MASKED_SOFTMAX_ATTEMPTS = {
    "mask ignored": (softmax_ignoring_mask, "the mask was not applied"),
    "filled with 0": (lambda s, m: torch.softmax(_fill(s, m, 0.0), dim=-1), "e^0 = 1"),
    "polarity": (lambda s, m: torch.softmax(s if m is None else s.masked_fill(m, float("-inf")), dim=-1),
                 "polarity is inverted"),
    "exp by hand": (lambda s, m: _fill(s, m, float("-inf")).exp()
                    / _fill(s, m, float("-inf")).exp().sum(-1, keepdim=True), "overflows"),
    "axis 0": (lambda s, m: torch.softmax(_fill(s, m, float("-inf")), dim=0), "runs over axis 0"),
}


@pytest.mark.parametrize("slip", MASKED_SOFTMAX_ATTEMPTS)
def test_masked_softmax_slips_are_named(slip, capsys):
    attempt, message = MASKED_SOFTMAX_ATTEMPTS[slip]
    assert lesson03.check_masked_softmax(attempt) is lesson03.masked_softmax
    assert message in capsys.readouterr().out


def _attention(scale=lambda q, k, v: math.sqrt(q.shape[-1]), dim=-1, use_mask=True, invert=False,
               mix=lambda w, k, v: w @ v, order="output first", both=True):
    def attempt(query, key, value, mask=None):
        scores = query @ key.transpose(-2, -1) / scale(query, key, value)
        if mask is not None and use_mask:
            scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
        weights = torch.softmax(scores, dim=dim)
        output = mix(weights, key, value)
        if not both:
            return output
        return (output, weights) if order == "output first" else (weights, output)
    return attempt


ATTENTION_ATTEMPTS = {
    "no scale": (_attention(scale=lambda q, k, v: 1), "did not divide the scores by sqrt(d)"),
    "divided by d": (_attention(scale=lambda q, k, v: q.shape[-1]), "you divided the scores by d"),
    "sqrt of the number of keys": (_attention(scale=lambda q, k, v: math.sqrt(k.shape[-2])),
                                   "number of keys"),
    "sqrt of the values' size": (_attention(scale=lambda q, k, v: math.sqrt(v.shape[-1])),
                                 "values' size"),
    "softmax over queries": (_attention(dim=-2), "over the queries (dim=-2)"),
    "mask forgotten": (_attention(use_mask=False), "the mask was not used"),
    "mask inverted": (_attention(invert=True), "the mask is inverted"),
    "keys mixed": (_attention(mix=lambda w, k, v: w @ k), "mixes the keys"),
    "results swapped": (_attention(order="weights first"), "swapped"),
    "output only": (_attention(both=False), "return both"),
}


@pytest.mark.parametrize("slip", ATTENTION_ATTEMPTS)
def test_attention_slips_are_named(slip, capsys):
    attempt, message = ATTENTION_ATTEMPTS[slip]
    assert lesson03.check_scaled_dot_product_attention(attempt) is lesson03.scaled_dot_product_attention
    out = capsys.readouterr().out
    assert message in out
    if slip == "mask forgotten":  # it used to be blamed on the transpose
        assert "transpose" not in out


MULTI_HEAD_ATTEMPTS = {
    "no scale": ({"scale_by": "nothing"}, "not scaled"),
    "scaled by sqrt(d)": ({"scale_by": "dim"}, "sqrt(d) of the whole layer"),
    "merged without transpose": ({"transpose_on_merge": False}, "merged without a transpose"),
    "softmax over queries": ({"softmax_dim": -2}, "over the queries (dim=-2)"),
    "no output projection": ({"apply_out_proj": False}, "out_proj is never applied"),
    "no heads": ({"split_heads": False}, "not split into heads"),
    "keys from q_proj": ({"key_layer": "q_proj"}, "the keys come from q_proj"),
    "values from k_proj": ({"value_layer": "k_proj"}, "the values come from k_proj"),
}


@pytest.mark.parametrize("slip", MULTI_HEAD_ATTEMPTS)
def test_multi_head_slips_are_named(slip, capsys):
    changes, message = MULTI_HEAD_ATTEMPTS[slip]
    assert lesson03.check_multi_head_self_attention(learner_attention(**changes)) is lesson03.MultiHeadSelfAttention
    assert message in capsys.readouterr().out


def test_multi_head_features_split_in_the_wrong_order_are_named(capsys):
    class HeadDimFirst(LearnerAttention):
        def forward(self, x):
            n, length, d = x.shape
            h = self.num_heads

            def split(t):  # wrong: the head index taken as the fastest-varying feature
                return t.view(n, length, d // h, h).permute(0, 3, 1, 2)

            q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
            out, _ = lesson03.scaled_dot_product_attention(q, k, v)
            return self.out_proj(out.transpose(1, 2).reshape(n, length, d))

    lesson03.check_multi_head_self_attention(HeadDimFirst)
    assert "split as (head_dim, heads)" in capsys.readouterr().out


def test_multi_head_returning_a_tuple_is_named(capsys):
    class ReturnsWeights(LearnerAttention):
        def forward(self, x):
            return super().forward(x), None

    lesson03.check_multi_head_self_attention(ReturnsWeights)
    assert "not a tuple" in capsys.readouterr().out


def test_multi_head_slips_are_told_apart_on_the_first_case():
    torch.manual_seed(0)
    module, x = lesson03.MultiHeadSelfAttention(8, 2), torch.randn(3, 5, 8)
    with torch.no_grad():
        outputs = [module(x)] + [slip.fn(module, x) for slip in lesson03.MULTI_HEAD_SLIPS]
    for i in range(len(outputs)):
        for j in range(i):
            assert not torch.allclose(outputs[i], outputs[j], atol=1e-5), (i, j)


@pytest.mark.parametrize("slips, check, reference", [
    (lesson03.MULTI_HEAD_SLIPS, lesson03.check_multi_head_self_attention, lesson03.MultiHeadSelfAttention),
    (lesson03.MASKED_SOFTMAX_SLIPS, lesson03.check_masked_softmax, lesson03.masked_softmax),
    (lesson03.ENCODING_SLIPS, lesson03.check_sinusoidal_encoding, lesson03.sinusoidal_encoding),
], ids=["multi-head", "masked softmax", "encoding"])
def test_each_listed_slip_is_named_alone(slips, check, reference, capsys):
    for slip in slips:
        if isinstance(reference, type):
            attempt = type("Mine", (reference,), {"forward": lambda self, x, fn=slip.fn: fn(self, x)})
        else:
            attempt = slip.fn
        assert check(attempt) is reference
        out = capsys.readouterr().out
        assert slip.hint in out, slip.name
        assert not any(other.hint in out for other in slips if other is not slip), slip.name


def _encoding(**changes):
    def attempt(length, dim):
        positions = torch.arange(length, dtype=torch.float64)[:, None] + changes.get("start", 0)
        k = torch.arange(dim // 2, dtype=torch.float64)
        exponent = changes.get("exponent", lambda k, d: -2 * k / d)(k, dim)
        sines = torch.sin(positions * 10000.0 ** exponent)
        cosine_exponent = changes.get("cosine_exponent", lambda k, d: exponent)(k, dim)
        cosines = torch.cos(positions * 10000.0 ** cosine_exponent)
        if changes.get("halves"):
            return torch.cat([sines, cosines], dim=1).float()
        table = torch.zeros(length, dim, dtype=torch.float64)
        table[:, 0::2], table[:, 1::2] = sines, cosines
        return table if changes.get("float64") else table.float()
    return attempt


ENCODING_ATTEMPTS = {
    "swapped": (encoding_sin_cos_swapped, "swapped"),
    "halves": (_encoding(halves=True), "first half of the columns"),
    "k over d": (_encoding(exponent=lambda k, d: -k / d), "2k / dim"),
    "positive exponent": (_encoding(exponent=lambda k, d: 2 * k / d), "sign is wrong"),
    "positions from 1": (_encoding(start=1), "start at 1"),
    "cosine frequency": (_encoding(cosine_exponent=lambda k, d: -(2 * k + 1) / d), "share one frequency"),
    "float64": (_encoding(float64=True), "as float32"),
}


@pytest.mark.parametrize("slip", ENCODING_ATTEMPTS)
def test_encoding_slips_are_named(slip, capsys):
    attempt, message = ENCODING_ATTEMPTS[slip]
    assert lesson03.check_sinusoidal_encoding(attempt) is lesson03.sinusoidal_encoding
    assert message in capsys.readouterr().out


def _costs(**replaced):
    def attempt(length, dim, hidden):
        L, d, n = length, dim, hidden
        costs = lesson03.layer_costs(L, d, n)
        costs.update({key: formula(L, d, n) for key, formula in replaced.items()})
        return costs
    return attempt


COST_ATTEMPTS = {
    "one FC layer's weights": (_costs(fc_params=lambda L, d, n: d * n), "you counted one layer"),
    "FC biases": (_costs(fc_params=lambda L, d, n: 2 * d * n + n + d), "biases are ignored"),
    "FC flops halved": (_costs(fc_flops=lambda L, d, n: 2 * L * d * n), "half the expected value"),
    "FC output (L, n)": (_costs(fc_output_shape=lambda L, d, n: (L, n)), "the second layer has d neurons"),
    "no W^O weights": (_costs(attention_params=lambda L, d, n: 3 * d * d), "W^O is a fourth"),
    "attention as MACs": (_costs(attention_flops=lambda L, d, n: 4 * L * d * d + 2 * L * L * d),
                          "multiply-adds"),
    "no L x L products": (_costs(attention_flops=lambda L, d, n: 8 * L * d * d), "L x L products are missing"),
    "no product with W^O": (_costs(attention_flops=lambda L, d, n: 6 * L * d * d + 4 * L * L * d),
                            "product with W^O is missing"),
    "one L x L product": (_costs(attention_flops=lambda L, d, n: 8 * L * d * d + 2 * L * L * d),
                          "there are two L x L products"),
    "right to left": (_costs(attention_flops=lambda L, d, n: 12 * L * d * d), "Q (K^T V)"),
    "attention output (L, L)": (_costs(attention_output_shape=lambda L, d, n: (L, L)), "Q K^T is L x L"),
    "transposed output": (_costs(attention_output_shape=lambda L, d, n: (d, L)), "one row per token"),
    "float": (_costs(fc_flops=lambda L, d, n: 4 * L * d * n / 1), "as a float"),
    "unknown flops": (_costs(fc_flops=lambda L, d, n: 3 * L * d * n), "there are two of them"),
}


@pytest.mark.parametrize("slip", COST_ATTEMPTS)
def test_cost_slips_are_named(slip, capsys):
    attempt, message = COST_ATTEMPTS[slip]
    assert lesson03.check_layer_costs(attempt) is lesson03.layer_costs
    assert message in capsys.readouterr().out


def test_cost_shapes_as_lists_are_accepted(capsys):
    def as_lists(length, dim, hidden):
        costs = lesson03.layer_costs(length, dim, hidden)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in costs.items()}

    assert lesson03.check_layer_costs(as_lists) is as_lists


# ---- the references ---------------------------------------------------------------------------

def test_references_agree_with_torch():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=generator) for _ in range(3))
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    output, weights = lesson03.scaled_dot_product_attention(q, k, v, mask)
    expected = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(output, expected, atol=1e-5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5))


@pytest.mark.parametrize("length, dim, hidden", [(50, 64, 128), (7, 16, 40)])
def test_layer_costs_match_torch_flop_counter(length, dim, hidden):
    x = torch.randn(length, dim)
    w1, w2 = torch.randn(dim, hidden), torch.randn(hidden, dim)
    wq, wk, wv, wo = (torch.randn(dim, dim) for _ in range(4))
    costs = lesson03.layer_costs(length, dim, hidden)
    with FlopCounterMode(display=False) as counter:
        fc_output = (x @ w1) @ w2
    assert counter.get_total_flops() == costs["fc_flops"]
    with FlopCounterMode(display=False) as counter:
        attention_output = (((x @ wq) @ (x @ wk).T) @ (x @ wv)) @ wo
    assert counter.get_total_flops() == costs["attention_flops"]
    assert costs["fc_params"] == w1.numel() + w2.numel()
    assert costs["attention_params"] == 4 * wq.numel()
    assert costs["fc_output_shape"] == tuple(fc_output.shape)
    assert costs["attention_output_shape"] == tuple(attention_output.shape)


def test_layer_costs_at_the_lecture_sizes():
    costs = lesson03.layer_costs(1_048_576, 1024, 2048)
    assert costs["fc_params"] == costs["attention_params"] == 4_194_304  # n = 2d: equal sizes
    assert costs["attention_flops"] - costs["fc_flops"] == 4 * 1_048_576 ** 2 * 1024
    assert math.isclose(costs["attention_flops"] / costs["fc_flops"], 1 + 1_048_576 / 2048)
