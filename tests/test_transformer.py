import math

import pytest
import torch
from torch import nn

from course_utils.attention import causal_mask
from course_utils.transformer import DecoderLayer, EncoderLayer, FeedForward, Seq2SeqTransformer


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


@pytest.mark.parametrize("activation, torch_activation", [(nn.ReLU, "relu"), (nn.GELU, "gelu")])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first, activation, torch_activation):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True,
                                        norm_first=norm_first, activation=torch_activation).eval()
    ours = EncoderLayer(16, 4, 32, norm_first=norm_first, activation=activation).eval()
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


def test_feed_forward_uses_the_injected_activation():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    relu, gelu = FeedForward(8, 24), FeedForward(8, 24, activation=nn.GELU)
    gelu.load_state_dict(relu.state_dict())
    first, second = relu[0], relu[3]
    with torch.no_grad():
        assert torch.allclose(relu(x), second(torch.relu(first(x))), atol=1e-6)
        assert torch.allclose(gelu(x), second(nn.functional.gelu(first(x))), atol=1e-6)
        assert not torch.allclose(gelu(x), relu(x), atol=1e-3)
    with pytest.raises(TypeError, match="module class"):
        FeedForward(8, 24, activation=nn.GELU())


def test_mlp_ratio_sets_the_hidden_width():
    assert EncoderLayer(16, 4).feed_forward[0].out_features == 64  # 4 dim by default
    assert EncoderLayer(16, 4, mlp_ratio=2.5).feed_forward[0].out_features == 40
    assert DecoderLayer(16, 4, mlp_ratio=0.5).feed_forward[3].in_features == 8
    assert EncoderLayer(16, 4, 24).feed_forward[0].out_features == 24
    default = Seq2SeqTransformer(source_vocab_size=5, target_vocab_size=5)  # dim 64
    assert {layer.feed_forward[0].out_features for layer in [*default.encoder, *default.decoder]} == {256}
    model = Seq2SeqTransformer(source_vocab_size=5, target_vocab_size=5, dim=16, num_heads=2,
                               mlp_ratio=3.0, activation=nn.GELU)
    for layer in [*model.encoder, *model.decoder]:
        assert layer.feed_forward[0].out_features == 48
        assert isinstance(layer.feed_forward[1], nn.GELU)


@pytest.mark.parametrize("layer_cls", [EncoderLayer, DecoderLayer])
def test_hidden_and_mlp_ratio_together_are_refused(layer_cls):
    with pytest.raises(ValueError, match="not both"):
        layer_cls(16, 4, 32, mlp_ratio=2.0)
    with pytest.raises(ValueError, match="at least one hidden unit"):
        layer_cls(16, 4, mlp_ratio=0.01)
    with pytest.raises(ValueError, match="not both"):
        Seq2SeqTransformer(source_vocab_size=5, target_vocab_size=5, hidden=32, mlp_ratio=2.0)


@pytest.mark.parametrize("layer_cls", [EncoderLayer, DecoderLayer])
def test_hidden_given_or_as_a_ratio_builds_the_same_layer(layer_cls):
    """A positional ``hidden`` (the lesson 04 calls) and the equivalent ``mlp_ratio`` draw the
    same weights in the same order, under the parameter names of saved checkpoints."""
    torch.manual_seed(0)
    given = layer_cls(16, 4, 32).eval()
    torch.manual_seed(0)
    ratio = layer_cls(16, 4, mlp_ratio=2.0).eval()
    state = given.state_dict()
    assert list(state) == list(ratio.state_dict())
    assert {"feed_forward.0.weight", "feed_forward.3.weight", "norm2.bias"} <= set(state)
    assert all(torch.equal(value, ratio.state_dict()[name]) for name, value in state.items())
    x = torch.randn(2, 5, 16)
    inputs = (x,) if layer_cls is EncoderLayer else (x, torch.randn(2, 3, 16))
    with torch.no_grad():
        assert torch.equal(given(*inputs), ratio(*inputs))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_returns_its_attention_weights(norm_first):
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 32, norm_first=norm_first, fused=True).eval()
    x = torch.randn(3, 6, 16)
    keep = torch.ones(3, 6, dtype=torch.bool)
    keep[2, 4:] = False
    mask = keep[:, None, None, :]
    with torch.no_grad():
        output, weights = layer(x, mask, need_weights=True)
        assert torch.allclose(output, layer(x, mask), atol=1e-5)  # fused path without weights
        attended = layer.norm1(x) if norm_first else x
        _, expected = layer.self_attention(attended, attended, attended, mask, need_weights=True)
    assert weights.shape == (3, 4, 6, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 6), atol=1e-6)
    assert (weights[2, :, :, 4:] == 0).all()
    assert torch.allclose(weights, expected)


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
    torch.manual_seed(0)
    model = Seq2SeqTransformer(source_vocab_size=30, target_vocab_size=30, dim=32)
    tokens = torch.arange(30)[None]
    embedded = model.source_embedding(tokens) * 32 ** 0.5  # what _embed adds the positions to
    positions = model.positions.table[:30]
    ratio = embedded.norm(dim=-1).mean() / positions.norm(dim=-1).mean()
    # Tokens of length about sqrt(dim), positions sqrt(dim / 2): a ratio near sqrt(2). PyTorch's
    # default embedding init would give sqrt(2 dim) = 8.
    assert 1.2 < ratio < 1.7


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
