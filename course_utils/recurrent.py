"""The recurrent translator of lesson 03's opening experiment: a GRU encoder-decoder
[Sutskever et al., 2014; Cho et al., 2014] whose decoder sees either one fixed context (the
encoder's last state) or a context recomputed at every output step by attention [Bahdanau et
al., 2015], in the dot-product form of Luong et al. [2015] with the 1/sqrt(d) scaling.

Lesson 03 runs it before it teaches the pieces (masks, scaling, cross-attention); its last
section reads :meth:`RecurrentTranslator.context` again with everything explained. Lesson 04
explains teacher forcing and greedy decoding, which the helpers below use.

Token ids follow :class:`course_utils.numberwords.CharVocabulary`: padding 0, begin 1, end 2.
Sources are padded at the end; targets start with ``<bos>`` and end with ``<eos>``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import tensor_batches
from course_utils.numberwords import CharVocabulary
from course_utils.training import fit


class RecurrentTranslator(nn.Module):
    """GRU encoder and decoder; with ``use_attention`` the context is recomputed at every step.

    Both versions have the same encoder, decoder and output layer, which reads the decoder state
    next to the context (N, L_y, 2 * hidden_size): only where the context comes from differs.
    """

    def __init__(self, *, source_vocab_size: int, target_vocab_size: int, hidden_size: int,
                 use_attention: bool, embedding_dim: int = 32):
        super().__init__()
        self.use_attention = use_attention
        self.source_embedding = nn.Embedding(source_vocab_size, embedding_dim)
        self.target_embedding = nn.Embedding(target_vocab_size, embedding_dim)
        self.encoder = nn.GRU(embedding_dim, hidden_size, batch_first=True)
        self.decoder = nn.GRU(embedding_dim, hidden_size, batch_first=True)
        self.output = nn.Linear(2 * hidden_size, target_vocab_size)

    def encode(self, source: torch.Tensor):
        """Encoder states (N, L_x, hidden) of source ids (N, L_x), and the state after each
        source's last character (1, N, hidden): the padding after it must not leak in."""
        encoder_states, _ = self.encoder(self.source_embedding(source))
        last = (source != CharVocabulary.PAD).sum(dim=1) - 1                  # (N,)
        rows = torch.arange(len(source), device=source.device)
        return encoder_states, encoder_states[rows, last][None]

    def context(self, decoder_states, encoder_states, final_state, source):
        """Contexts z_t (N, L_y, hidden) for the decoder states (N, L_y, hidden), and the
        attention weights (N, L_y, L_x) over the source positions (None for a fixed context).

        With attention, each decoder state is a query and the encoder states are the keys and
        the values; padded source positions are masked out."""
        if not self.use_attention:
            return final_state[-1][:, None, :].expand_as(decoder_states), None
        hidden_size = encoder_states.shape[-1]
        scores = decoder_states @ encoder_states.transpose(1, 2) / math.sqrt(hidden_size)
        not_padding = (source != CharVocabulary.PAD)[:, None, :]              # (N, 1, L_x)
        weights = scores.masked_fill(~not_padding, float("-inf")).softmax(dim=-1)
        return weights @ encoder_states, weights

    def forward(self, source: torch.Tensor, target_in: torch.Tensor):
        """Logits (N, L_y, target vocabulary) for every next character of ``target_in``
        (N, L_y), the true previous characters (teacher forcing), and the attention weights."""
        encoder_states, final_state = self.encode(source)
        decoder_states, _ = self.decoder(self.target_embedding(target_in), final_state)
        context, weights = self.context(decoder_states, encoder_states, final_state, source)
        return self.output(torch.cat([decoder_states, context], dim=-1)), weights

    @torch.no_grad()
    def translate(self, source: torch.Tensor, max_length: int = 100):
        """Greedy decoding of source ids (N, L_x): feed back the likeliest character until every
        row has written ``<eos>``. Returns the tokens (N, T) and the weights (N, T, L_x), or None."""
        encoder_states, final_state = self.encode(source)
        state = final_state
        token = torch.full((len(source), 1), CharVocabulary.BOS, device=source.device)
        finished = torch.zeros(len(source), dtype=torch.bool, device=source.device)
        tokens, weights = [], []
        for _ in range(max_length):
            decoder_state, state = self.decoder(self.target_embedding(token), state)
            context, step_weights = self.context(decoder_state, encoder_states, final_state, source)
            token = self.output(torch.cat([decoder_state, context], dim=-1)).argmax(dim=-1)
            tokens.append(token)
            weights.append(step_weights)
            finished |= token[:, 0] == CharVocabulary.EOS
            if finished.all():
                break
        attention = torch.cat(weights, dim=1) if self.use_attention else None
        return torch.cat(tokens, dim=1), attention


def translation_step(model: RecurrentTranslator, batch) -> torch.Tensor:
    """The loss of a batch ``(source, target)`` with teacher forcing: the model reads the target
    without its last token and predicts it without its first; padded positions do not count."""
    source, target = batch
    logits, _ = model(source, target[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), target[:, 1:].flatten(), ignore_index=CharVocabulary.PAD)


def train_translator(model: RecurrentTranslator, source: torch.Tensor, target: torch.Tensor, *,
                     epochs: int, batch_size: int, learning_rate: float, seed: int) -> torch.Tensor:
    """Train on source ids (N, L_x) and target ids (N, L_y), both on the model's device, with
    :func:`translation_step` in the course's loop (:func:`course_utils.training.fit`): Adam, a
    one-cycle learning-rate schedule stepped every batch, gradient clipping at norm 1, float32.
    Returns the loss of every step (on the CPU).

    Batches are gathered from the device tensors in one indexing step each, in an order drawn
    from ``seed``, so that the data never goes back to the host."""
    loader = tensor_batches(source, target, batch_size=batch_size, shuffle=True, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate,
                                                   total_steps=epochs * len(loader))
    history = fit(model, loader, epochs=epochs, optimizer=optimizer, step=translation_step,
                  scheduler=schedule, scheduler_interval="step", clip_grad_norm=1.0, amp=False,
                  progress=False)
    model.eval()
    return torch.tensor(history["step_loss"])


def exact_matches(model: RecurrentTranslator, source: torch.Tensor, target: torch.Tensor, *,
                  batch_size: int = 2048) -> torch.Tensor:
    """(N,) booleans on the CPU: did greedy decoding write the whole target (ids after
    ``<bos>``, up to and including ``<eos>``) exactly? Decodes ``batch_size`` rows at a time."""
    matches = []
    for start in range(0, len(source), batch_size):
        expected = target[start:start + batch_size, 1:]
        tokens, _ = model.translate(source[start:start + batch_size], max_length=expected.shape[1])
        written = torch.full_like(expected, CharVocabulary.PAD)
        written[:, :tokens.shape[1]] = tokens
        # The target is padding after its <eos>: blank whatever the model wrote after its own.
        ends = (written == CharVocabulary.EOS).long()
        written[ends.cumsum(dim=1) - ends > 0] = CharVocabulary.PAD
        matches.append((written == expected).all(dim=1).cpu())
    return torch.cat(matches)
