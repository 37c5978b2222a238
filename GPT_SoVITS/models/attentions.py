"""VITS-style transformer pieces, channels-first ([B, C, T]): relative-position attention, conv FFN, encoder.

Parameter names (``attn_layers``, ``conv_q``, ``emb_rel_k``, ``norm_layers_1``, ``gamma``…) are state-dict
keys of upstream checkpoints and keep upstream spelling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from GPT_SoVITS.models.commons import Conv1d

MASKED_SCORE = -1e4  # what upstream writes into masked attention scores (not -inf: keeps fp16 finite)


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of a [B, C, T] tensor (eps 1e-5)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


def _relative_to_absolute(x: Tensor) -> Tensor:
    """[B, H, L, 2L-1] scores indexed by relative offset (j - i + L - 1) → [B, H, L, L] indexed by key j."""
    batch, heads, length, _ = x.shape
    x = x.contiguous()
    s_b, s_h, _, _ = x.stride()
    # element (i, j) sits at i·(2L-1) + (L-1) - i + j = (L-1) + i·(2L-2) + j in each [L, 2L-1] matrix
    return x.as_strided((batch, heads, length, length), (s_b, s_h, 2 * length - 2, 1),
                        x.storage_offset() + length - 1)


def _absolute_to_relative(x: Tensor) -> Tensor:
    """[B, H, L, L] weights indexed by key j → [B, H, L, 2L-1] indexed by relative offset (zero outside)."""
    batch, heads, length, _ = x.shape
    # row i of the padded matrix holds x[i] at columns [L-1, 2L-1); entry (i, r) is then padded[i, i + r]
    padded = F.pad(x, (length - 1, length - 1)).contiguous()  # [B, H, L, 3L-2]
    s_b, s_h, _, _ = padded.stride()
    return padded.as_strided((batch, heads, length, 2 * length - 1), (s_b, s_h, 3 * length - 1, 1),
                             padded.storage_offset())


class MultiHeadAttention(nn.Module):
    """Multi-head attention with 1x1 conv projections and optional windowed relative positions (VITS).

    ``forward(x, c, attn_mask)``: queries from ``x`` [B, C, Tq], keys/values from ``c`` [B, C, Tk];
    ``attn_mask`` [B, 1, Tq, Tk] (0 = masked). Relative positions need Tq == Tk.
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0,
                 window_size: int | None = None) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = Conv1d(channels, channels, 1)
        self.conv_k = Conv1d(channels, channels, 1)
        self.conv_v = Conv1d(channels, channels, 1)
        self.conv_o = Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window_size is not None:
            std = self.k_channels**-0.5
            # one table shared by all heads (upstream's heads_share=True)
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: Tensor, c: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        return self.conv_o(self._attention(q, k, v, attn_mask))

    def _relative_table(self, table: Tensor, length: int) -> Tensor:
        """Embeddings for offsets -(L-1)…(L-1): the learned window, zero beyond it. → [1, 2L-1, d]"""
        window = self.window_size
        assert window is not None
        pad = max(length - (window + 1), 0)
        start = max((window + 1) - length, 0)
        if pad:
            table = F.pad(table, (0, 0, pad, pad))
        return table[:, start:start + 2 * length - 1]

    def _attention(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> Tensor:
        batch, channels, t_key = key.shape
        t_query = query.shape[2]
        heads, d = self.n_heads, self.k_channels
        query = query.view(batch, heads, d, t_query).transpose(2, 3)  # [B, H, Tq, d]
        key = key.view(batch, heads, d, t_key).transpose(2, 3)
        value = value.view(batch, heads, d, t_key).transpose(2, 3)
        query = query / math.sqrt(d)
        scores = torch.matmul(query, key.transpose(-2, -1))
        if self.window_size is not None:
            if t_query != t_key:
                raise ValueError("relative-position attention needs queries and keys of the same length")
            rel_keys = self._relative_table(self.emb_rel_k, t_key)  # [1, 2L-1, d]
            rel_logits = torch.matmul(query, rel_keys.unsqueeze(0).transpose(-2, -1))  # [B, H, L, 2L-1]
            scores = scores + _relative_to_absolute(rel_logits)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, MASKED_SCORE)
        weights = self.drop(F.softmax(scores, dim=-1))
        output = torch.matmul(weights, value)
        if self.window_size is not None:
            rel_values = self._relative_table(self.emb_rel_v, t_key)
            output = output + torch.matmul(_absolute_to_relative(weights), rel_values.unsqueeze(0))
        return output.transpose(2, 3).contiguous().view(batch, channels, t_query)


class FFN(nn.Module):
    """Two 'same'-padded convolutions with ReLU, masked before each conv."""

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int,
                 p_dropout: float = 0.0) -> None:
        super().__init__()
        self.conv_1 = Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        x = self.conv_1(F.pad(x * x_mask, self.pad))
        x = self.drop(torch.relu(x))
        x = self.conv_2(F.pad(x * x_mask, self.pad))
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer encoder with relative positions (window 4), [B, C, T] in and out."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int = 1, p_dropout: float = 0.0, window_size: int = 4) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout,
                                                       window_size=window_size))
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout))
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm_1, ffn, norm_2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                             self.norm_layers_2, strict=True):
            x = norm_1(x + self.drop(attn(x, x, attn_mask)))
            x = norm_2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask
