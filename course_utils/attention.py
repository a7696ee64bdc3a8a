"""Attention and positional encoding, as taught in lesson 03 (and used by lessons 04-07).

Conventions, the same everywhere in the course:

* tensors are batch first: queries (N, ..., L_q, d), keys and values (N, ..., L_k, d);
* a mask is boolean and says where attention is **allowed** (True = this query may look at
  this key), the convention of :func:`torch.nn.functional.scaled_dot_product_attention`.
  Beware: ``nn.MultiheadAttention`` uses the opposite convention for its boolean masks.
  Masks broadcast against the scores (N, heads, L_q, L_k), e.g. (L_q, L_k) or (N, 1, 1, L_k).

Every attention function has two paths behind one flag: ``fused=False`` computes the
softmax(QK^T / sqrt(d)) V formula step by step (and can return the attention weights);
``fused=True`` calls PyTorch's fused kernel, which is faster and never stores the weights.
"""

import math

import torch
from torch import nn


def causal_mask(length: int, device=None) -> torch.Tensor:
    """(length, length) boolean mask, True on and below the diagonal: position i sees 0..i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(N, 1, 1, L) boolean mask from (N, L) token ids: True where the key is not padding."""
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (N, L), got {tuple(tokens.shape)}")
    return (tokens != pad_id)[:, None, None, :]


def _check_mask(mask: torch.Tensor, scores_shape) -> torch.Tensor:
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    try:
        broadcast = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != torch.Size(scores_shape):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the "
                         f"attention scores of shape {tuple(scores_shape)}")
    # Rows of the broadcast mask are copies of the mask's own rows: checking these is enough.
    if not mask.any(dim=-1).all():
        raise ValueError("the mask hides every key from some query: its softmax would be 0/0. "
                         "Every query needs at least one key it may attend to.")
    return mask


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis; where ``mask`` (broadcast to ``scores``) is False, exactly 0."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 mask: torch.Tensor | None = None, *, fused: bool = False):
    """softmax(Q K^T / sqrt(d) + mask) V. Returns ``(output, weights)``.

    ``weights`` has shape (..., L_q, L_k) and each row sums to 1; it is None on the fused
    path, which never materialises it. ``output`` has the shape of ``query`` with the last
    dimension of ``value``.
    """
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"queries and keys must have the same size d, got {query.shape[-1]} "
                         f"and {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"there must be one value per key, got {key.shape[-2]} keys and "
                         f"{value.shape[-2]} values")
    scores_shape = (*torch.broadcast_shapes(query.shape[:-2], key.shape[:-2]),
                    query.shape[-2], key.shape[-2])
    if mask is not None:
        mask = _check_mask(mask, scores_shape)
    if fused:
        output = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        return output, None
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (..., L_q, L_k)
    weights = masked_softmax(scores, mask)
    return weights @ value, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention [Vaswani et al., 2017], batch first.

    Queries, keys and values (N, L, dim) are projected by three linear layers, split into
    ``num_heads`` heads of size ``head_dim = dim // num_heads``, attended per head,
    concatenated and projected by a fourth linear layer. Self-attention: ``mha(x, x, x)``;
    cross-attention: ``mha(target, source, source)``. After ``forward(..., need_weights=True)`` on the manual path, the weights
    (N, heads, L_q, L_k) are returned and also kept in ``self.last_weights`` for plotting.

    With ``causal=True`` query i only sees keys 0..i (a decoder's self-attention): the causal
    mask is a buffer, moved with the module by ``.to(device)``, and grown when a longer
    sequence arrives; it is combined with any ``mask`` passed to ``forward``.
    """

    def __init__(self, dim: int, num_heads: int, *, bias: bool = True, fused: bool = False,
                 causal: bool = False, max_length: int = 128):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = dim // num_heads
        self.fused = fused
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(dim, dim, bias=bias)
        self.v_proj = nn.Linear(dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self.last_weights = None
        self.causal = causal
        self.register_buffer("causal_mask", causal_mask(max_length) if causal else None,
                             persistent=False)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape                       # (N, L, dim) -> (N, heads, L, head_dim)
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None, *, need_weights: bool = False):
        """Returns the output (N, L_q, dim), or ``(output, weights)`` if ``need_weights``."""
        if query.ndim != 3 or query.shape[-1] != self.dim:
            raise ValueError(f"expected (N, L, {self.dim}) inputs, got {tuple(query.shape)}")
        if self.causal:
            length_q, length_k = query.shape[1], key.shape[1]
            if max(length_q, length_k) > self.causal_mask.shape[0]:
                self.causal_mask = causal_mask(max(length_q, length_k), device=query.device)
            future_hidden = self.causal_mask[:length_q, :length_k]
            mask = future_hidden if mask is None else mask & future_hidden
        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        fused = self.fused and not need_weights
        heads, weights = scaled_dot_product_attention(q, k, v, mask, fused=fused)
        batch, _, length, _ = heads.shape
        output = self.out_proj(heads.transpose(1, 2).reshape(batch, length, self.dim))
        self.last_weights = None if weights is None else weights.detach()
        return (output, weights) if need_weights else output

    @torch.no_grad()
    def load_from_torch(self, torch_mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of an ``nn.MultiheadAttention`` (same size, bias, no kdim/vdim)."""
        if torch_mha.embed_dim != self.dim or torch_mha.num_heads != self.num_heads:
            raise ValueError(f"sizes must match: nn.MultiheadAttention has embed_dim "
                             f"{torch_mha.embed_dim} and {torch_mha.num_heads} heads, this layer "
                             f"dim {self.dim} and {self.num_heads} heads")
        if torch_mha.in_proj_weight is None:
            raise ValueError("only nn.MultiheadAttention with equal query/key/value sizes is supported")
        for index, layer in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            rows = slice(index * self.dim, (index + 1) * self.dim)
            layer.weight.copy_(torch_mha.in_proj_weight[rows])
            if layer.bias is not None:
                layer.bias.copy_(torch_mha.in_proj_bias[rows])
        self.out_proj.weight.copy_(torch_mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(torch_mha.out_proj.bias)
        return self


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """(length, dim) table: PE[p, 2k] = sin(p w_k), PE[p, 2k+1] = cos(p w_k), w_k = 10000^(-2k/dim)."""
    if dim % 2 != 0 or dim <= 0:
        raise ValueError(f"dim must be a positive even number (sine/cosine pairs), got {dim}")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    positions = torch.arange(length, dtype=torch.float64)[:, None]         # (L, 1)
    frequencies = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    angles = positions * frequencies                                       # (L, dim/2)
    table = torch.empty(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to (N, L, d) inputs. No parameters: the table is a buffer,
    recomputed (and kept) when a longer sequence arrives, so any length works."""

    def __init__(self, dim: int, max_length: int = 256):
        super().__init__()
        self.register_buffer("table", sinusoidal_encoding(max_length, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, dim = x.shape[-2], x.shape[-1]
        if dim != self.table.shape[1]:
            raise ValueError(f"expected inputs with {self.table.shape[1]} features, got {dim}")
        if length > self.table.shape[0]:
            self.table = sinusoidal_encoding(length, dim).to(self.table.device)
        return x + self.table[:length].to(x.dtype)
