import math

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


class _Trap:
    """Step 0: token 3 (p 0.6) or token 4 (p 0.4). After 3, eleven tokens share the rest evenly
    and none ends the sequence soon; after 4, <eos> (2) is certain. Greedy takes 3; the most
    likely sequence is [4, <eos>]."""

    pad_id = 0

    def encode(self, source):
        return torch.zeros(len(source), 1, 1), torch.ones(len(source), 1, 1, 1, dtype=torch.bool)

    def decode(self, tokens, memory, source_mask):
        batch, length = tokens.shape
        probabilities = torch.full((batch, length, 16), 1e-9)
        for row in range(batch):
            for position in range(length):
                history = tokens[row, 1:position + 1].tolist()
                if not history:
                    probabilities[row, position, 3], probabilities[row, position, 4] = 0.6, 0.4
                elif history[0] == 4:
                    probabilities[row, position, 2] = 1.0
                else:
                    probabilities[row, position, 5:16] = 1 / 11
        return probabilities.log()


def test_beam_search_finds_what_greedy_misses():
    from course_utils.transformer import beam_search, greedy_decode
    source = torch.tensor([[5]])
    greedy = greedy_decode(_Trap(), source, bos_id=1, eos_id=2, max_length=4)
    assert greedy[0, 0].item() == 3
    tokens, score = beam_search(_Trap(), source, bos_id=1, eos_id=2, beam_size=2, max_length=4)
    assert tokens == [4, 2]
    assert score == pytest.approx(math.log(0.4), abs=1e-6)


def test_beam_of_one_is_greedy_and_bad_input_is_refused():
    from course_utils.transformer import beam_search
    model = small_model().eval()
    source = torch.tensor([[4, 5, 6, 7]])
    greedy = model.greedy_decode(source, bos_id=1, eos_id=2, max_length=10)[0].tolist()
    tokens, _ = beam_search(model, source, bos_id=1, eos_id=2, beam_size=1, max_length=10)
    assert tokens == greedy[:len(tokens)] and all(t == 0 for t in greedy[len(tokens):])
    wide, wide_score = beam_search(model, source, bos_id=1, eos_id=2, beam_size=4, max_length=10)
    with torch.no_grad():  # the returned score is the sequence's log-probability
        inputs = torch.tensor([[1] + wide[:-1]])
        log_probabilities = model(source, inputs).log_softmax(-1)[0]
    assert wide_score == pytest.approx(log_probabilities[range(len(wide)), wide].sum().item(), abs=1e-4)
    with pytest.raises(ValueError, match="one source"):
        beam_search(model, torch.tensor([[4, 5], [6, 7]]), bos_id=1, eos_id=2)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, source, bos_id=1, eos_id=2, beam_size=0)
