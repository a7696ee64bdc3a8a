import pytest
import torch
from torch import nn

from course_utils import transformer
from course_utils.exercises import lesson04

from exercise_attempts import assert_undone_wrong_and_right  # tests/exercise_attempts.py


class NotDone(nn.Module):
    def __init__(self, dim, num_heads, hidden):
        super().__init__()
        raise NotImplementedError


def mask_without_diagonal(length):
    return torch.ones(length, length, dtype=torch.bool).tril(diagonal=-1)


class DecoderWithoutCausalMask(lesson04.DecoderLayer):
    def forward(self, y, memory, memory_mask=None):
        y = self.norm1(y + self.self_attention(y, y, y))
        y = self.norm2(y + self.cross_attention(y, memory, memory, memory_mask))
        return self.norm3(y + self.feed_forward(y))


def shift_left(labels, bos_id):
    return torch.cat([labels[:, 1:], torch.zeros_like(labels[:, :1])], dim=1)


def decode_keeping_bos(model, source, *, bos_id, eos_id, max_length=100):
    tokens = lesson04.greedy_decode(model, source, bos_id=bos_id, eos_id=eos_id, max_length=max_length)
    return torch.cat([torch.full_like(tokens[:, :1], bos_id), tokens], dim=1)


CASES = [
    (lesson04.check_causal_mask, lesson04.causal_mask, mask_without_diagonal, "diagonal is missing"),
    (lesson04.check_decoder_layer, lesson04.DecoderLayer, DecoderWithoutCausalMask,
     "pass causal_mask(L_y)"),
    (lesson04.check_shift_right, lesson04.shift_right, shift_left, "shifts left"),
    (lesson04.check_greedy_decode, lesson04.greedy_decode, decode_keeping_bos, "without the leading <bos>"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys, not_done_class=NotDone)


def test_reference_decoder_layer_is_the_packages_post_norm_layer():
    torch.manual_seed(0)
    ours = lesson04.DecoderLayer(16, 4, 32)
    package = transformer.DecoderLayer(16, 4, 32, norm_first=False)
    package.load_state_dict(ours.state_dict())
    y, memory = torch.randn(3, 6, 16), torch.randn(3, 8, 16)
    memory_mask = (torch.arange(8) < torch.tensor([[8], [6], [4]]))[:, None, None, :]
    with torch.no_grad():
        assert torch.allclose(ours(y, memory, memory_mask), package(y, memory, None, memory_mask), atol=1e-6)


@pytest.mark.parametrize("slip", lesson04.DECODER_SLIPS, ids=lambda slip: slip.name)
def test_each_decoder_slip_is_named(slip, capsys):
    class Slipped(lesson04.DecoderLayer):
        def forward(self, y, memory, memory_mask=None):
            return slip.fn(self, y, memory, memory_mask)

    assert lesson04.check_decoder_layer(Slipped) is lesson04.DecoderLayer
    out = capsys.readouterr().out
    assert slip.hint in out
    assert not any(other.hint in out for other in lesson04.DECODER_SLIPS if other is not slip)


@pytest.mark.parametrize("check, slips", [(lesson04.check_causal_mask, lesson04.CAUSAL_MASK_SLIPS),
                                          (lesson04.check_shift_right, lesson04.SHIFT_SLIPS)],
                         ids=["causal mask", "shift right"])
def test_each_listed_slip_is_named_alone(check, slips, capsys):
    for slip in slips:
        check(slip.fn)
        out = capsys.readouterr().out
        assert slip.hint in out, slip.name
        assert not any(other.hint in out for other in slips if other is not slip), slip.name


def test_decoder_check_rejects_a_layer_that_reuses_one_norm(capsys):
    class OneNorm(lesson04.DecoderLayer):
        def forward(self, y, memory, memory_mask=None):
            mask = lesson04.causal_mask(y.shape[1])
            y = self.norm1(y + self.self_attention(y, y, y, mask))
            y = self.norm1(y + self.cross_attention(y, memory, memory, memory_mask))
            return self.norm1(y + self.feed_forward(y))

    assert lesson04.check_decoder_layer(OneNorm) is lesson04.DecoderLayer
    assert "its own layer norm" in capsys.readouterr().out


def test_other_slips_are_named(capsys):
    lesson04.check_causal_mask(lambda length: ~lesson04.causal_mask(length))
    assert "inverted" in capsys.readouterr().out
    lesson04.check_causal_mask(lambda length: lesson04.causal_mask(length).T)
    assert "transpose" in capsys.readouterr().out
    lesson04.check_causal_mask(lambda length: lesson04.causal_mask(length).float())
    assert "torch.bool" in capsys.readouterr().out

    lesson04.check_shift_right(lambda labels, bos_id: torch.cat(
        [torch.full_like(labels[:, :1], bos_id), labels], dim=1))
    assert "drop the last" in capsys.readouterr().out
    lesson04.check_shift_right(lambda labels, bos_id: labels.clone())
    assert "the character it must predict" in capsys.readouterr().out

    def shift_in_place(labels, bos_id):
        labels[:, 1:] = labels[:, :-1].clone()
        labels[:, 0] = bos_id
        return labels

    lesson04.check_shift_right(shift_in_place)
    assert "in place" in capsys.readouterr().out


def test_greedy_decoding_slips_are_named(capsys):
    def no_padding_after_end(model, source, *, bos_id, eos_id, max_length=100):
        return _decode_with(model, source, bos_id=bos_id, eos_id=eos_id, max_length=max_length,
                            stop=lambda finished: finished.all(), pad=False)

    def feeds_only_the_last_token(model, source, *, bos_id, eos_id, max_length=100):
        memory, source_mask = model.encode(source)
        token = torch.full((len(source), 1), bos_id)
        out, finished = [], torch.zeros(len(source), dtype=torch.bool)
        for _ in range(max_length):
            token = model.decode(token, memory, source_mask)[:, -1:].argmax(dim=-1)
            token = token.masked_fill(finished[:, None], model.pad_id)
            out.append(token)
            finished |= token[:, 0] == eos_id
            if finished.all():
                break
        return torch.cat(out, dim=1)

    lesson04.check_greedy_decode(no_padding_after_end)
    assert "write pad_id" in capsys.readouterr().out
    lesson04.check_greedy_decode(feeds_only_the_last_token)
    assert "feed back the whole sequence" in capsys.readouterr().out


def test_scripted_model_reference_output():
    tokens = lesson04.greedy_decode(lesson04.ScriptedModel(),
                                    torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12], [4, 0, 0, 0, 0]]),
                                    bos_id=1, eos_id=2, max_length=10)
    assert tokens.tolist() == [[5, 6, 7, 2, 0, 0], [8, 9, 10, 11, 12, 2], [4, 2, 0, 0, 0, 0]]


class IgnoresSourceMask:
    """A model whose decoder is never given the source mask: a learner's slip, reproduced."""

    def __init__(self, model):
        self.model, self.pad_id = model, model.pad_id

    def encode(self, source):
        return self.model.encode(source)

    def decode(self, tokens, memory, source_mask):
        return self.model.decode(tokens, memory, None)


def test_greedy_decoding_must_pass_the_source_mask(capsys):
    def without_mask(model, source, *, bos_id, eos_id, max_length=100):
        return lesson04.greedy_decode(IgnoresSourceMask(model), source, bos_id=bos_id,
                                      eos_id=eos_id, max_length=max_length)

    assert lesson04.check_greedy_decode(without_mask) is lesson04.greedy_decode
    out = capsys.readouterr().out
    assert "cross-attention reads the padding" in out
    assert "a Seq2SeqTransformer model" in out and "Linear(" not in out


def test_norm_free_decoder_layer_is_rejected(capsys):
    class NoNormWeights(lesson04.DecoderLayer):
        def forward(self, y, memory, memory_mask=None):
            norm = nn.functional.layer_norm
            mask = lesson04.causal_mask(y.shape[1])
            y = norm(y + self.self_attention(y, y, y, mask), y.shape[-1:])
            y = norm(y + self.cross_attention(y, memory, memory, memory_mask), y.shape[-1:])
            return norm(y + self.feed_forward(y), y.shape[-1:])

    assert lesson04.check_decoder_layer(NoNormWeights) is lesson04.DecoderLayer
    assert "\N{CROSS MARK}" in capsys.readouterr().out


def _decode_with(model, source, *, bos_id, eos_id, max_length, stop, pad_eos=False, pad=True):
    """A greedy loop with a configurable slip: stop rule, padding of the <eos> itself, no padding."""
    memory, source_mask = model.encode(source)
    tokens = torch.full((len(source), 1), bos_id)
    finished = torch.zeros(len(source), dtype=torch.bool)
    for _ in range(max_length):
        next_token = model.decode(tokens, memory, source_mask)[:, -1].argmax(dim=-1)
        if pad_eos:
            finished |= next_token == eos_id
        if pad:
            next_token = next_token.masked_fill(finished, model.pad_id)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == eos_id
        if stop(finished):
            break
    return tokens[:, 1:]


@pytest.mark.parametrize("slip, advice", [
    ({"stop": lambda finished: False}, "the loop ran on"),
    ({"stop": lambda finished: False, "pad": False}, "never looks at eos_id"),
    ({"stop": lambda finished: finished.any()}, "all, not any"),
    ({"stop": lambda finished: finished.all(), "pad_eos": True}, "keep the eos_id itself"),
])
def test_greedy_decoding_loop_slips_get_their_own_advice(slip, advice, capsys):
    def attempt(model, source, *, bos_id, eos_id, max_length=100):
        return _decode_with(model, source, bos_id=bos_id, eos_id=eos_id, max_length=max_length, **slip)

    assert lesson04.check_greedy_decode(attempt) is lesson04.greedy_decode
    out = capsys.readouterr().out
    assert advice in out
    assert "keepdim" not in out  # the general shape advice is left out when a diagnosis explains it


def test_diagnosing_a_wrong_decoder_layer_leaves_the_random_numbers_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    lesson04.check_decoder_layer(DecoderWithoutCausalMask)
    assert torch.equal(torch.rand(3), expected_next)


@pytest.mark.parametrize("slip", lesson04.GREEDY_SLIPS, ids=lambda slip: slip.name)
def test_each_greedy_decoding_slip_is_named(slip, capsys):
    def attempt(model, source, *, bos_id, eos_id, max_length=100):
        return slip.fn(model, source, bos_id=bos_id, eos_id=eos_id, max_length=max_length)

    assert lesson04.check_greedy_decode(attempt) is lesson04.greedy_decode
    assert slip.hint in capsys.readouterr().out


def test_a_loop_that_ignores_max_length_is_not_told_to_stop_on_finished(capsys):
    def while_unfinished(model, source, *, bos_id, eos_id, max_length=100):
        memory, source_mask = model.encode(source)
        tokens = torch.full((len(source), 1), bos_id)
        finished = torch.zeros(len(source), dtype=torch.bool)
        while not finished.all():
            next_token = model.decode(tokens, memory, source_mask)[:, -1].argmax(dim=-1)
            next_token = next_token.masked_fill(finished, model.pad_id)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            finished |= next_token == eos_id
        return tokens[:, 1:]

    assert lesson04.check_greedy_decode(while_unfinished) is lesson04.greedy_decode
    out = capsys.readouterr().out
    assert "went past max_length" in out
    assert "finished.all()" not in out and "one of these" not in out


def test_one_short_loop_is_not_blamed_on_stopping_at_any(capsys):
    def one_short(model, source, *, bos_id, eos_id, max_length=100):
        return lesson04.greedy_decode(model, source, bos_id=bos_id, eos_id=eos_id,
                                      max_length=max_length - 1)

    lesson04.check_greedy_decode(one_short)
    out = capsys.readouterr().out
    assert "one token short" in out and "all, not any" not in out


def test_more_causal_mask_and_shift_slips_are_named(capsys):
    lesson04.check_causal_mask(lambda length: torch.ones(length, length, dtype=torch.bool).tril(1))
    assert "diagonal=1" in capsys.readouterr().out
    lesson04.check_causal_mask(lambda length: torch.ones(length, length, dtype=torch.bool))
    assert "nothing is hidden" in capsys.readouterr().out

    lesson04.check_shift_right(lambda labels, bos_id: torch.cat(
        [torch.full((len(labels), 1), float(bos_id)), labels[:, :-1]], dim=1))
    assert "token ids are integers" in capsys.readouterr().out
    lesson04.check_shift_right(lambda labels, bos_id: torch.cat(
        [torch.full_like(labels[:, :1], bos_id), labels[:, 1:]], dim=1))
    assert "dropped the first label" in capsys.readouterr().out


def test_decoder_hints_fit_the_failing_case(capsys):
    class QueriesFromMemory(lesson04.DecoderLayer):
        def forward(self, y, memory, memory_mask=None):
            y = self.norm1(y + self.self_attention(y, y, y, lesson04.causal_mask(y.shape[1])))
            y = self.norm2(y + self.cross_attention(memory, y, y))
            return self.norm3(y + self.feed_forward(y))

    lesson04.check_decoder_layer(QueriesFromMemory)
    out = capsys.readouterr().out
    assert "raised" in out and "queries from y" in out and "memory_mask" not in out
