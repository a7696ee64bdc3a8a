import pytest
import torch
from torch import nn

from course_utils.attention import causal_mask
from course_utils.transformer import DecoderLayer, EncoderLayer, Seq2SeqTransformer


@torch.no_grad()
def load_torch_layer(ours, theirs):
    """Copy an nn.TransformerEncoderLayer or nn.TransformerDecoderLayer into our layer."""
    ours.self_attention.load_from_torch(theirs.self_attn)
    if hasattr(theirs, "multihead_attn"):
        ours.cross_attention.load_from_torch(theirs.multihead_attn)
    ours.feed_forward[0].load_state_dict(theirs.linear1.state_dict())
    ours.feed_forward[3].load_state_dict(theirs.linear2.state_dict())
    for index in (1, 2, 3):
        if hasattr(theirs, f"norm{index}"):
            getattr(ours, f"norm{index}").load_state_dict(getattr(theirs, f"norm{index}").state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True,
                                        norm_first=norm_first).eval()
    ours = EncoderLayer(16, 4, 32, norm_first=norm_first).eval()
    load_torch_layer(ours, theirs)
    x = torch.randn(3, 7, 16)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[1, 5:] = False  # padding in the second sequence
    expected = theirs(x, src_key_padding_mask=~keep)
    got = ours(x, keep[:, None, None, :])
    assert torch.allclose(got[keep], expected[keep], atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(0)
    theirs = nn.TransformerDecoderLayer(16, 2, dim_feedforward=24, dropout=0.0, batch_first=True,
                                        norm_first=norm_first).eval()
    ours = DecoderLayer(16, 2, 24, norm_first=norm_first).eval()
    load_torch_layer(ours, theirs)
    y, memory = torch.randn(2, 5, 16), torch.randn(2, 9, 16)
    expected = theirs(y, memory, tgt_mask=~causal_mask(5))
    assert torch.allclose(ours(y, memory), expected, atol=1e-5)


def small_model(**kwargs):
    torch.manual_seed(0)
    return Seq2SeqTransformer(source_vocab_size=11, target_vocab_size=9, dim=16, num_heads=2,
                              hidden=32, num_encoder_layers=2, num_decoder_layers=2, **kwargs).eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_never_sees_the_future(norm_first):
    model = small_model(norm_first=norm_first)
    source = torch.randint(1, 11, (2, 6))
    target = torch.randint(3, 9, (2, 7))
    changed = target.clone()
    changed[:, 4:] = torch.randint(3, 9, (2, 3))
    with torch.no_grad():
        before, after = model(source, target), model(source, changed)
    assert torch.allclose(before[:, :4], after[:, :4], atol=1e-6)
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_padding_changes_nothing_and_batch_of_one_works():
    model = small_model()
    source = torch.tensor([[4, 5, 6, 7]])
    target = torch.tensor([[1, 3, 4]])
    padded_source = torch.tensor([[4, 5, 6, 7, 0, 0, 0]])
    padded_target = torch.tensor([[1, 3, 4, 0, 0]])
    with torch.no_grad():
        plain = model(source, target)
        padded = model(padded_source, padded_target)
    assert plain.shape == (1, 3, 9)
    assert torch.allclose(plain, padded[:, :3], atol=1e-5)


def test_greedy_decoding_stops_and_pads():
    model = small_model()
    source = torch.tensor([[4, 5, 6, 0], [7, 8, 9, 10]])
    tokens = model.greedy_decode(source, bos_id=1, eos_id=2, max_length=12)
    assert tokens.shape[0] == 2 and tokens.shape[1] <= 12
    for row in tokens:
        ends = (row == 2).nonzero()
        if len(ends):
            assert (row[ends[0, 0] + 1:] == 0).all()  # padding after the end token
    # teacher-forced logits on the decoded prefix agree with the greedy choices
    with torch.no_grad():
        logits = model(source, torch.cat([torch.ones(2, 1, dtype=torch.long), tokens[:, :-1]], 1))
    first = logits[:, 0].argmax(-1)
    assert torch.equal(first, tokens[:, 0])


def test_fused_and_manual_models_agree():
    manual = small_model()
    fused = small_model(fused=True)
    fused.load_state_dict(manual.state_dict())
    source = torch.tensor([[4, 5, 6, 0], [7, 8, 9, 10]])
    target = torch.tensor([[1, 3, 4, 0], [1, 5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(manual(source, target), fused(source, target), atol=1e-5)


def test_token_and_position_signals_start_equally_large():
    model = Seq2SeqTransformer(source_vocab_size=30, target_vocab_size=30, dim=32)
    tokens = torch.arange(30)[None]
    embedded = model.source_embedding(tokens) * 32 ** 0.5  # what _embed adds the positions to
    positions = model.positions.table[:30]
    ratio = embedded.norm(dim=-1).mean() / positions.norm(dim=-1).mean()
    assert 0.7 < ratio < 1.4
