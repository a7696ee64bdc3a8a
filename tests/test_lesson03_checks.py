import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.exercises import lesson03

from exercise_attempts import assert_undone_wrong_and_right  # tests/exercise_attempts.py


class NotDone(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        raise NotImplementedError


def softmax_ignoring_mask(scores, mask):
    return torch.softmax(scores, dim=-1)


def attention_without_scaling(query, key, value, mask=None):
    weights = lesson03.masked_softmax(query @ key.transpose(-2, -1), mask)
    return weights @ value, weights


class HeadsSplitOverPositions(lesson03.MultiHeadSelfAttention):
    def forward(self, x):
        n, length, d = x.shape
        heads = self.num_heads

        def split(t):  # wrong: views (N, L, d) as (N, heads, L, d / heads) without transposing
            return t.reshape(n, heads, length, d // heads)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        out, _ = lesson03.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.reshape(n, length, d))


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
     HeadsSplitOverPositions, "transpose to (N, heads, L"),
    (lesson03.check_sinusoidal_encoding, lesson03.sinusoidal_encoding, encoding_sin_cos_swapped,
     "swapped"),
    (lesson03.check_layer_costs, lesson03.layer_costs, costs_counting_macs, "counted multiply-adds"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys, not_done_class=NotDone)


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
        (x @ w1) @ w2
    assert counter.get_total_flops() == costs["fc_flops"]
    with FlopCounterMode(display=False) as counter:
        (((x @ wq) @ (x @ wk).T) @ (x @ wv)) @ wo
    assert counter.get_total_flops() == costs["attention_flops"]
    assert costs["fc_params"] == w1.numel() + w2.numel()
    assert costs["attention_params"] == 4 * wq.numel()


def test_layer_costs_at_the_lecture_sizes():
    costs = lesson03.layer_costs(1_048_576, 1024, 2048)
    assert costs["fc_params"] == costs["attention_params"] == 4_194_304  # n = 2d: equal sizes
    assert costs["attention_flops"] - costs["fc_flops"] == 4 * 1_048_576 ** 2 * 1024
    assert math.isclose(costs["attention_flops"] / costs["fc_flops"], 1 + 1_048_576 / 2048)


def test_common_slips_are_named(capsys):
    def zero_filled(scores, mask):
        return torch.softmax(scores if mask is None else scores.masked_fill(~mask, 0.0), dim=-1)

    def inverted(scores, mask):
        return torch.softmax(scores if mask is None else scores.masked_fill(mask, float("-inf")), dim=-1)

    def divided_by_d(query, key, value, mask=None):
        weights = lesson03.masked_softmax(query @ key.transpose(-2, -1) / query.shape[-1], mask)
        return weights @ value, weights

    def k_over_d(length, dim):
        positions = torch.arange(length, dtype=torch.float64)[:, None]
        frequencies = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float64) / dim)
        table = torch.empty(length, dim, dtype=torch.float64)
        table[:, 0::2], table[:, 1::2] = torch.sin(positions * frequencies), torch.cos(positions * frequencies)
        return table.float()

    lesson03.check_masked_softmax(zero_filled)
    assert "e^0 = 1" in capsys.readouterr().out
    lesson03.check_masked_softmax(inverted)
    assert "polarity" in capsys.readouterr().out
    lesson03.check_scaled_dot_product_attention(divided_by_d)
    assert "you divided the scores by d" in capsys.readouterr().out
    lesson03.check_scaled_dot_product_attention(attention_without_scaling)
    assert "did not divide the scores by sqrt(d)" in capsys.readouterr().out
    lesson03.check_sinusoidal_encoding(encoding_sin_cos_swapped)
    assert "swapped" in capsys.readouterr().out
    lesson03.check_sinusoidal_encoding(k_over_d)
    assert "2k / dim" in capsys.readouterr().out
