import math

import torch

from course_utils.numberwords import CharVocabulary, english, french, vocabularies
from course_utils.recurrent import RecurrentTranslator, exact_matches, train_translator

PAD, BOS, EOS = CharVocabulary.PAD, CharVocabulary.BOS, CharVocabulary.EOS


def _translator(use_attention=True, vocab=12):
    torch.manual_seed(0)
    return RecurrentTranslator(source_vocab_size=vocab, target_vocab_size=vocab, hidden_size=8,
                               use_attention=use_attention).eval()


def test_padding_changes_neither_the_final_state_nor_the_attention():
    model = _translator()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, PAD, PAD]])
    target_in = torch.tensor([[BOS, 4, 8]])
    with torch.no_grad():
        _, final_short = model.encode(short)
        _, final_padded = model.encode(padded)
        logits_short, weights_short = model(short, target_in)
        logits_padded, weights_padded = model(padded, target_in)
    assert torch.allclose(final_short, final_padded)
    assert torch.allclose(logits_short, logits_padded, atol=1e-6)
    assert (weights_padded[..., 3:] == 0).all()
    assert torch.allclose(weights_padded[..., :3], weights_short)


def test_the_fixed_context_is_the_last_state_at_every_step():
    model = _translator(use_attention=False)
    source = torch.tensor([[5, 6, 7, PAD]])
    with torch.no_grad():
        encoder_states, final_state = model.encode(source)
        context, weights = model.context(torch.zeros(1, 4, 8), encoder_states, final_state, source)
    assert weights is None
    assert torch.allclose(context, encoder_states[:, 2:3].expand(1, 4, 8))


class Scripted(RecurrentTranslator):
    """Writes prepared tokens instead of decoding: row i for a source that starts with i."""

    def __init__(self, rows):
        super().__init__(source_vocab_size=12, target_vocab_size=12, hidden_size=4, use_attention=False)
        self.rows = torch.tensor(rows)

    def translate(self, source, max_length=100):
        return self.rows[source[:, 0], :max_length], None


def test_exact_matches_needs_the_end_token_and_ignores_what_follows_it():
    target = torch.tensor([[BOS, 5, 6, EOS], [BOS, 5, 6, EOS], [BOS, 5, 6, EOS], [BOS, 5, EOS, PAD]])
    written = [[5, 6, EOS, 9],   # right, then garbage after <eos>
               [5, 6, 7, 9],     # right characters, but no <eos>
               [5, 7, EOS, PAD],  # a wrong character
               [5, EOS, 3, 3]]   # right and shorter than the batch
    source = torch.arange(4)[:, None]
    assert exact_matches(Scripted(written), source, target, batch_size=3).tolist() == [True, False, False, True]


def test_training_returns_one_loss_per_step_and_learns():
    french_vocab, english_vocab = vocabularies(99)
    numbers = list(range(1, 100))
    source = french_vocab.encode_batch([french(n) for n in numbers])
    target = english_vocab.encode_batch([english(n) for n in numbers], bos=True, eos=True)
    torch.manual_seed(0)
    model = RecurrentTranslator(source_vocab_size=len(french_vocab), target_vocab_size=len(english_vocab),
                                hidden_size=32, use_attention=True)
    losses = train_translator(model, source, target, epochs=3, batch_size=32, learning_rate=1e-2, seed=0)
    assert losses.shape == (3 * math.ceil(99 / 32),) and losses.device.type == "cpu"
    assert losses[-4:].mean() < losses[:4].mean()
    assert not model.training
    tokens, weights = model.translate(source[:5], max_length=7)
    assert tokens.shape[0] == 5 and tokens.shape[1] <= 7
    assert weights.shape == (5, tokens.shape[1], source.shape[1])
