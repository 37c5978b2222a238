"""MRTE: cross-attention from SSL (semantic) frames to phone encodings, plus the global style vector."""

from __future__ import annotations

from torch import Tensor, nn

from GPT_SoVITS.models.attentions import MultiHeadAttention
from GPT_SoVITS.models.commons import Conv1d


class MRTE(nn.Module):
    """Fuse content frames with text: ``c_post(attn(c_pre(ssl), text_pre(text)) + c_pre(ssl) + ge)``.

    Upstream hard-wires 192 content channels and 512 hidden channels (``ge`` must have ``hidden_size`` channels);
    here they are arguments with those defaults.
    """

    def __init__(self, content_enc_channels: int = 192, hidden_size: int = 512, out_channels: int = 192,
                 n_heads: int = 4) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden_size, hidden_size, n_heads)
        self.c_pre = Conv1d(content_enc_channels, hidden_size, 1)
        self.text_pre = Conv1d(content_enc_channels, hidden_size, 1)
        self.c_post = Conv1d(hidden_size, out_channels, 1)

    def forward(self, ssl_enc: Tensor, ssl_mask: Tensor, text: Tensor, text_mask: Tensor,
                ge: Tensor | None) -> Tensor:
        """ssl_enc [B, C, Ts], text [B, C, Tt], masks [B, 1, T], ge [B, hidden, 1] → [B, out, Ts]."""
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)  # [B, 1, Ts, Tt]
        ssl_enc = self.c_pre(ssl_enc * ssl_mask)
        text_enc = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl_enc * ssl_mask, text_enc * text_mask, attn_mask) + ssl_enc
        if ge is not None:
            x = x + ge
        return self.c_post(x * ssl_mask)
