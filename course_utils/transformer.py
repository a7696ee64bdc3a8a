"""The Transformer encoder-decoder [Vaswani et al., 2017], built from course_utils.attention.

Written out in lesson 04; the Vision Transformer of lesson 05 (course_utils.vit) reuses
:class:`EncoderLayer`, pre-norm with a GELU feed-forward.
Tensors are batch first: (N, L, dim). Masks are boolean, True where attention is allowed.

* :class:`EncoderLayer`: self-attention, then a two-layer feed-forward network, each wrapped
  in a residual connection and a layer norm (after the addition, "post-norm", as in the
  original paper; or before the sub-layer, "pre-norm", with ``norm_first=True``);
* :class:`DecoderLayer`: causal self-attention, cross-attention into the encoder's output,
  feed-forward, each with residual and layer norm;
* :class:`Seq2SeqTransformer`: embeddings + sinusoidal positions, a stack of each, a linear
  layer to the target vocabulary;
* :func:`greedy_decode` and :func:`beam_search`: generating a translation token by token.
"""

import math
from collections.abc import Callable

import torch
from torch import nn

from course_utils.attention import MultiHeadAttention, SinusoidalPositionalEncoding

_MLP_RATIO = 4.0  # the paper's feed-forward width: hidden = 4 dim


def _feed_forward_width(dim: int, hidden: int | None = None, mlp_ratio: float = _MLP_RATIO) -> int:
    """The feed-forward's hidden width: ``hidden`` if given, else ``int(dim * mlp_ratio)``."""
    if hidden is None:
        hidden = int(dim * mlp_ratio)
    elif mlp_ratio != _MLP_RATIO:
        raise ValueError(f"give the feed-forward's width either as hidden ({hidden}) or as "
                         f"mlp_ratio ({mlp_ratio}), not both")
    if hidden < 1:
        raise ValueError(f"the feed-forward needs at least one hidden unit, got {hidden} "
                         f"(dim {dim}, mlp_ratio {mlp_ratio})")
    return hidden


class FeedForward(nn.Sequential):
    """The per-position two-layer network: (..., dim) -> (..., hidden) -> activation -> (..., dim).

    ``activation`` is a module class (or any factory called with no arguments): ``nn.ReLU`` as
    in the original Transformer, ``nn.GELU`` in BERT and the Vision Transformer.
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0,
                 activation: Callable[[], nn.Module] = nn.ReLU):
        if isinstance(activation, nn.Module):
            raise TypeError(f"activation must be a module class such as nn.GELU, called once per "
                            f"layer; got the module instance {activation}: drop the parentheses")
        super().__init__(nn.Linear(dim, hidden), activation(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim))


class EncoderLayer(nn.Module):
    """x -> x + SelfAttention(x) -> + FeedForward, with layer norms (post- or pre-norm).

    The feed-forward's width is ``hidden``, or ``int(dim * mlp_ratio)`` when ``hidden`` is not
    given; ``activation`` is passed to :class:`FeedForward`.
    """

    def __init__(self, dim: int, num_heads: int, hidden: int | None = None, *,
                 mlp_ratio: float = _MLP_RATIO, activation: Callable[[], nn.Module] = nn.ReLU,
                 dropout: float = 0.0, norm_first: bool = False, fused: bool = False):
        super().__init__()
        hidden = _feed_forward_width(dim, hidden, mlp_ratio)
        self.self_attention = MultiHeadAttention(dim, num_heads, fused=fused)
        self.feed_forward = FeedForward(dim, hidden, dropout, activation)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def _attend(self, x, mask, need_weights):
        if need_weights:  # the manual path, which keeps the weights
            attended, weights = self.self_attention(x, x, x, mask, need_weights=True)
        else:
            attended, weights = self.self_attention(x, x, x, mask), None
        return self.dropout(attended), weights

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *,
                need_weights: bool = False):
        """x (N, L, dim) -> (N, L, dim); with ``need_weights``, ``(output, weights)``, the
        self-attention weights (N, heads, L, L)."""
        if self.norm_first:
            attended, weights = self._attend(self.norm1(x), mask, need_weights)
            x = x + attended
            x = x + self.dropout(self.feed_forward(self.norm2(x)))
        else:
            attended, weights = self._attend(x, mask, need_weights)
            x = self.norm1(x + attended)
            x = self.norm2(x + self.dropout(self.feed_forward(x)))
        return (x, weights) if need_weights else x


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention into ``memory`` (the encoder output), feed-forward.

    ``hidden``, ``mlp_ratio`` and ``activation`` set the feed-forward as in :class:`EncoderLayer`.
    """

    def __init__(self, dim: int, num_heads: int, hidden: int | None = None, *,
                 mlp_ratio: float = _MLP_RATIO, activation: Callable[[], nn.Module] = nn.ReLU,
                 dropout: float = 0.0, norm_first: bool = False, fused: bool = False,
                 max_length: int = 128):
        super().__init__()
        hidden = _feed_forward_width(dim, hidden, mlp_ratio)
        self.self_attention = MultiHeadAttention(dim, num_heads, fused=fused, causal=True,
                                                 max_length=max_length)
        self.cross_attention = MultiHeadAttention(dim, num_heads, fused=fused)
        self.feed_forward = FeedForward(dim, hidden, dropout, activation)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, y: torch.Tensor, memory: torch.Tensor, target_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``target_mask`` hides target keys (e.g. padding); the causal mask is always applied.
        ``memory_mask`` hides source positions (padding) from the cross-attention."""
        def self_attend(z):
            return self.dropout(self.self_attention(z, z, z, target_mask))

        def cross_attend(z):
            return self.dropout(self.cross_attention(z, memory, memory, memory_mask))

        if self.norm_first:
            y = y + self_attend(self.norm1(y))
            y = y + cross_attend(self.norm2(y))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self_attend(y))
        y = self.norm2(y + cross_attend(y))
        return self.norm3(y + self.dropout(self.feed_forward(y)))


class Seq2SeqTransformer(nn.Module):
    """Token ids in, logits over the target vocabulary out; padding id ``pad_id`` is masked.

    Every layer's feed-forward has width ``hidden``, or ``int(dim * mlp_ratio)`` when
    ``hidden`` is not given, and the given ``activation``.
    """

    def __init__(self, *, source_vocab_size: int, target_vocab_size: int, dim: int = 64,
                 num_heads: int = 4, hidden: int | None = None, mlp_ratio: float = _MLP_RATIO,
                 activation: Callable[[], nn.Module] = nn.ReLU, num_encoder_layers: int = 2,
                 num_decoder_layers: int = 2, dropout: float = 0.0, norm_first: bool = False,
                 pad_id: int = 0, max_length: int = 128, fused: bool = False):
        super().__init__()
        self.dim, self.pad_id = dim, pad_id
        hidden = _feed_forward_width(dim, hidden, mlp_ratio)
        layer_options = dict(activation=activation, dropout=dropout, norm_first=norm_first,
                             fused=fused)
        self.source_embedding = nn.Embedding(source_vocab_size, dim)
        self.target_embedding = nn.Embedding(target_vocab_size, dim)
        self.positions = SinusoidalPositionalEncoding(dim, max_length)
        self.encoder = nn.ModuleList([EncoderLayer(dim, num_heads, hidden, **layer_options)
                                      for _ in range(num_encoder_layers)])
        self.decoder = nn.ModuleList([DecoderLayer(dim, num_heads, hidden, max_length=max_length,
                                                   **layer_options)
                                      for _ in range(num_decoder_layers)])
        # Pre-norm stacks end with one more layer norm, as their sub-layers' outputs are raw sums.
        self.encoder_norm = nn.LayerNorm(dim) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(dim) if norm_first else nn.Identity()
        self.output = nn.Linear(dim, target_vocab_size)
        # Embeddings are multiplied by sqrt(dim) below, as in the paper; starting them with
        # standard deviation 1/sqrt(dim) gives token vectors a length of about sqrt(dim), close
        # to the positional encodings' sqrt(dim / 2). (PyTorch's default, std 1, would make the
        # tokens about sqrt(2 dim) times longer than the positions and drown them: the
        # lesson 04 translator then learns far more slowly.)
        for embedding in (self.source_embedding, self.target_embedding):
            nn.init.normal_(embedding.weight, std=dim ** -0.5)

    def _embed(self, embedding, tokens):
        return self.positions(embedding(tokens) * math.sqrt(self.dim))

    def encode(self, source: torch.Tensor):
        """(memory (N, L_x, d), source mask (N, 1, 1, L_x))."""
        source_mask = (source != self.pad_id)[:, None, None, :]
        x = self._embed(self.source_embedding, source)
        for layer in self.encoder:
            x = layer(x, source_mask)
        return self.encoder_norm(x), source_mask

    def decode(self, target_in: torch.Tensor, memory: torch.Tensor, source_mask: torch.Tensor):
        """Logits (N, L_y, vocabulary) for every target position at once (teacher forcing)."""
        target_mask = (target_in != self.pad_id)[:, None, None, :]  # targets start with <bos>
        y = self._embed(self.target_embedding, target_in)
        for layer in self.decoder:
            y = layer(y, memory, target_mask, source_mask)
        return self.output(self.decoder_norm(y))

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        memory, source_mask = self.encode(source)
        return self.decode(target_in, memory, source_mask)

    def greedy_decode(self, source: torch.Tensor, *, bos_id: int, eos_id: int,
                      max_length: int = 100) -> torch.Tensor:
        """See :func:`greedy_decode`."""
        return greedy_decode(self, source, bos_id=bos_id, eos_id=eos_id, max_length=max_length)


@torch.no_grad()
def greedy_decode(model, source: torch.Tensor, *, bos_id: int, eos_id: int,
                  max_length: int = 100) -> torch.Tensor:
    """Generate one token at a time, feeding back the most likely one, until every row has
    produced ``eos_id`` (or ``max_length`` tokens); after its <eos> a row gets ``model.pad_id``.

    ``model`` needs ``encode(source) -> (memory, source_mask)``, ``decode(tokens, memory,
    source_mask) -> logits (N, T, vocabulary)`` and ``pad_id``. Returns (N, generated), without
    the leading <bos>.
    """
    memory, source_mask = model.encode(source)
    tokens = torch.full((len(source), 1), bos_id, dtype=torch.long, device=source.device)
    finished = torch.zeros(len(source), dtype=torch.bool, device=source.device)
    for _ in range(max_length):
        next_token = model.decode(tokens, memory, source_mask)[:, -1].argmax(dim=-1)
        next_token = next_token.masked_fill(finished, model.pad_id)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == eos_id
        if finished.all():
            break
    return tokens[:, 1:]


@torch.no_grad()
def beam_search(model, source: torch.Tensor, *, bos_id: int, eos_id: int, beam_size: int = 4,
                max_length: int = 100) -> tuple[list[int], float]:
    """The most likely translation of one source (1, L_x) that a beam of ``beam_size`` finds.

    At every step each of the (at most) ``beam_size`` unfinished hypotheses is extended by
    every token; the ``beam_size`` best extensions by total log-probability are kept, and
    those ending in ``eos_id`` are set aside as finished. The search stops when the best
    finished hypothesis beats every unfinished one (log-probabilities only decrease as a
    hypothesis grows, so none can overtake it) or after ``max_length`` tokens. Returns (tokens
    without <bos>, ending with <eos> unless cut by ``max_length``; their log-probability).
    With ``beam_size=1`` this is greedy decoding.
    """
    if source.ndim != 2 or len(source) != 1:
        raise ValueError(f"beam_search translates one source of shape (1, L), got {tuple(source.shape)}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    memory, source_mask = model.encode(source)
    alive = torch.full((1, 1), bos_id, dtype=torch.long, device=source.device)
    scores = torch.zeros(1, device=source.device)
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_length):
        count = len(alive)
        logits = model.decode(alive, memory.expand(count, -1, -1),
                              source_mask.expand(count, -1, -1, -1))[:, -1]
        candidates = (scores[:, None] + logits.log_softmax(dim=-1)).flatten()
        best, index = candidates.topk(min(beam_size, len(candidates)))
        vocabulary = logits.shape[-1]
        rows, tokens = index // vocabulary, index % vocabulary
        extended = torch.cat([alive[rows], tokens[:, None]], dim=1)
        ended = tokens == eos_id
        finished += [(row[1:].tolist(), score.item()) for row, score in zip(extended[ended], best[ended])]
        alive, scores = extended[~ended], best[~ended]
        best_finished = max((score for _, score in finished), default=-math.inf)
        if len(alive) == 0 or best_finished >= scores.max().item():
            break
    if not finished:  # cut by max_length: the best unfinished hypothesis
        return alive[0, 1:].tolist(), scores[0].item()
    return max(finished, key=lambda hypothesis: hypothesis[1])
