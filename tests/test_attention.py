import math

import pytest
import torch
from torch import nn

from course_utils.attention import (MultiHeadAttention, SinusoidalPositionalEncoding,
                                    causal_mask, padding_mask, scaled_dot_product_attention,
                                    sinusoidal_encoding)


def random_qkv(batch=2, heads=3, length_q=5, length_k=7, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, length, dim, generator=generator)
            for length in (length_q, length_k, length_k)]


def test_attention_by_hand_on_a_tiny_example():
    query = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    values = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    output, weights = scaled_dot_product_attention(query, keys, values)
    first = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)
    assert torch.allclose(weights, torch.tensor([[first, 1 - first]]))
    assert torch.allclose(output, torch.tensor([[10 * first, 10 * (1 - first)]]))


@pytest.mark.parametrize("with_mask", [False, True])
def test_manual_and_fused_paths_agree_with_torch(with_mask):
    query, key, value = random_qkv()
    mask = None
    if with_mask:
        mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) > 0.4
        mask[..., 0] = True  # every query keeps at least one key
    manual, weights = scaled_dot_product_attention(query, key, value, mask)
    fused, no_weights = scaled_dot_product_attention(query, key, value, mask, fused=True)
    reference = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    assert no_weights is None
    assert torch.allclose(manual, reference, atol=1e-5)
    assert torch.allclose(fused, reference, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5))
    if with_mask:
        assert (weights[~mask.expand_as(weights)] == 0).all()


def test_causal_mask_blocks_the_future():
    mask = causal_mask(4)
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False],
                             [True, True, True, False], [True, True, True, True]]
    query, key, value = random_qkv(length_q=4, length_k=4)
    changed = value.clone()
    changed[:, :, 3] += 100.0  # only the last position changes
    before, _ = scaled_dot_product_attention(query, key, value, mask)
    after, _ = scaled_dot_product_attention(query, key, changed, mask)
    assert torch.equal(before[:, :, :3], after[:, :, :3])
    assert not torch.allclose(before[:, :, 3], after[:, :, 3])


def test_padding_mask_ignores_padded_keys():
    tokens = torch.tensor([[5, 6, 7, 0], [5, 0, 0, 0]])
    mask = padding_mask(tokens, pad_id=0)
    assert mask.shape == (2, 1, 1, 4)
    query, key, value = random_qkv(batch=2, heads=1, length_q=3, length_k=4)
    _, weights = scaled_dot_product_attention(query, key, value, mask)
    assert torch.all(weights[0, :, :, 3] == 0) and torch.all(weights[1, :, :, 1:] == 0)
    assert torch.allclose(weights[1, :, :, 0], torch.ones(1, 3))


def test_bad_masks_and_shapes_get_clear_errors():
    query, key, value = random_qkv()
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(query, key, value, torch.zeros(5, 7))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(query, key, value, torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="every key"):
        scaled_dot_product_attention(query, key, value, torch.zeros(5, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="same size d"):
        scaled_dot_product_attention(query, key[..., :4], value)
    with pytest.raises(ValueError, match="one value per key"):
        scaled_dot_product_attention(query, key, value[..., :6, :])


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("batch, length_q, length_k", [(3, 6, 6), (1, 4, 9)])
def test_multi_head_attention_matches_torch(fused, batch, length_q, length_k):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 4, batch_first=True)
    ours = MultiHeadAttention(16, 4, fused=fused).load_from_torch(reference)
    query, source = torch.randn(batch, length_q, 16), torch.randn(batch, length_k, 16)
    allowed = torch.rand(length_q, length_k) > 0.3
    allowed[:, 0] = True
    expected, expected_weights = reference(query, source, source, attn_mask=~allowed,
                                           average_attn_weights=False)
    assert torch.allclose(ours(query, source, source, allowed), expected, atol=1e-5)
    output, weights = ours(query, source, source, allowed, need_weights=True)
    assert torch.allclose(output, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)
    assert torch.equal(ours.last_weights, weights)


def test_multi_head_attention_gradients_match_torch():
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(8, 2, batch_first=True)
    ours = MultiHeadAttention(8, 2).load_from_torch(reference)
    x = torch.randn(2, 5, 8)
    reference(x, x, x)[0].square().sum().backward()
    ours(x, x, x).square().sum().backward()
    assert torch.allclose(ours.out_proj.weight.grad, reference.out_proj.weight.grad, atol=1e-5)
    in_grad = torch.cat([ours.q_proj.weight.grad, ours.k_proj.weight.grad, ours.v_proj.weight.grad])
    assert torch.allclose(in_grad, reference.in_proj_weight.grad, atol=1e-5)


def test_multi_head_attention_sizes_are_called_dim_and_head_dim():
    attention = MultiHeadAttention(dim=12, num_heads=3)
    assert (attention.dim, attention.num_heads, attention.head_dim) == (12, 3, 4)
    assert attention.q_proj.weight.shape == (12, 12)
    with pytest.raises(TypeError, match="embed_dim"):
        MultiHeadAttention(embed_dim=12, num_heads=3)


def test_multi_head_attention_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="expected"):
        MultiHeadAttention(8, 2)(torch.randn(2, 5, 6), torch.randn(2, 5, 6), torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="must match"):
        MultiHeadAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 4))


def test_self_attention_is_permutation_equivariant():
    torch.manual_seed(0)
    attention = MultiHeadAttention(8, 2)
    x = torch.randn(1, 6, 8)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    assert torch.allclose(attention(x, x, x)[:, order], attention(x[:, order], x[:, order], x[:, order]),
                          atol=1e-6)


def test_sinusoidal_encoding_values_and_properties():
    table = sinusoidal_encoding(50, 16)
    assert table.shape == (50, 16)
    assert torch.allclose(table[0, 0::2], torch.zeros(8)) and torch.allclose(table[0, 1::2], torch.ones(8))
    p, k = 7, 3
    assert math.isclose(table[p, 2 * k].item(), math.sin(p / 10000 ** (2 * k / 16)), abs_tol=1e-6)
    assert math.isclose(table[p, 2 * k + 1].item(), math.cos(p / 10000 ** (2 * k / 16)), abs_tol=1e-6)
    assert table.abs().max() <= 1
    assert len({tuple(row.tolist()) for row in table}) == 50  # unique per position
    # the encoding of p + offset is a fixed rotation of the encoding of p
    offset = 5
    frequencies = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    cos, sin = torch.cos(offset * frequencies), torch.sin(offset * frequencies)
    even, odd = table[:-offset, 0::2].double(), table[:-offset, 1::2].double()
    assert torch.allclose(even * cos + odd * sin, table[offset:, 0::2].double(), atol=1e-5)
    assert torch.allclose(odd * cos - even * sin, table[offset:, 1::2].double(), atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(10, 7)


def test_positional_encoding_module_has_no_parameters_and_any_length():
    encoding = SinusoidalPositionalEncoding(8, max_length=4)
    assert list(encoding.parameters()) == [] and "table" not in encoding.state_dict()
    x = torch.zeros(2, 10, 8)
    assert torch.allclose(encoding(x)[0], sinusoidal_encoding(10, 8))
    with pytest.raises(ValueError, match="features"):
        encoding(torch.zeros(1, 3, 6))


@pytest.mark.parametrize("fused", [False, True])
def test_causal_multi_head_attention_uses_its_buffer(fused):
    torch.manual_seed(0)
    plain = MultiHeadAttention(8, 2, fused=fused)
    causal = MultiHeadAttention(8, 2, fused=fused, causal=True, max_length=4)
    causal.load_state_dict(plain.state_dict())
    assert "causal_mask" not in causal.state_dict()  # a buffer, but not saved in checkpoints
    x = torch.randn(2, 6, 8)  # longer than max_length: the mask grows
    expected = plain(x, x, x, causal_mask(6))
    assert torch.allclose(causal(x, x, x), expected, atol=1e-6)
    keep = torch.tensor([True, True, True, True, False, True])[None, None, None, :]
    assert torch.allclose(causal(x, x, x, keep), plain(x, x, x, causal_mask(6) & keep), atol=1e-6)
    changed = x.clone()
    changed[:, 5] += 10  # the future never leaks into earlier positions
    assert torch.allclose(causal(changed, changed, changed)[:, :5], causal(x, x, x)[:, :5], atol=1e-6)
