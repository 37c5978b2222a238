"""Building blocks of the SoVITS generator: WaveNet stack, HiFi-GAN residual blocks, coupling flows and the
reference (style) encoder. Tensors are channels-first [B, C, T]; ``*_mask`` tensors are [B, 1, T] floats.

Attribute names that are state-dict keys (``in_layers``, ``res_skip_layers``, ``cond_layer``, ``convs1``,
``spectral``, ``slf_attn``, ``w_qs``…) keep upstream spelling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from GPT_SoVITS.models.commons import (
    LRELU_SLOPE,
    Conv1d,
    WNConv1d,
    conv_add,
    conv_leaky_relu,
    fused_add_tanh_sigmoid_multiply,
    get_padding,
)


class WN(nn.Module):
    """Non-causal WaveNet: dilated gated convolutions with residual and skip paths, optional global condition."""

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, p_dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            self.cond_layer = WNConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(WNConv1d(hidden_channels, 2 * hidden_channels, kernel_size,
                                           dilation=dilation, padding=padding))
            # the last layer only feeds the skip path
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WNConv1d(hidden_channels, out, 1))

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        hidden = self.hidden_channels
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if g is not None else None
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            x_in = in_layer(x)
            g_l = cond[:, 2 * hidden * i: 2 * hidden * (i + 1)] if cond is not None else torch.zeros_like(x_in)
            acts = self.drop(fused_add_tanh_sigmoid_multiply(x_in, g_l, hidden))
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :hidden]) * x_mask
                output = output + res_skip[:, hidden:]
            else:
                output = output + res_skip
        return output * x_mask


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` zeroed in place where ``mask`` is 0 (leaky ReLU keeps zeros, so masking after it is the same)."""
    return x if mask is None else x.mul_(mask)


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1: three (dilated conv, conv) pairs."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d), init_std=0.01)
            for d in dilation)
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size), init_std=0.01)
            for _ in dilation)

    def forward(self, x: Tensor) -> Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            xt = conv1(F.leaky_relu(x, LRELU_SLOPE))
            xt = conv2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x

    def receptive_radius(self) -> int:
        """Samples on each side of an output sample that its input can reach."""
        return sum(c.dilation[0] * (c.kernel_size[0] - 1) // 2 for c in [*self.convs1, *self.convs2])

    def forward_inference(self, x: Tensor, activated: Tensor, fused: bool, mask: Tensor | None = None) -> Tensor:
        """Same result as ``forward(x)`` without autograd: ``activated`` = leaky_relu(x) is shared by the
        blocks of one stage, and with ``fused`` the conv→activation and conv→residual steps are single
        oneDNN calls. ``mask`` (0/1 over time, broadcast) zeroes every convolution's output where it is 0."""
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            act = activated if i == 0 else F.leaky_relu(x, LRELU_SLOPE)
            if fused:
                hidden = _masked(conv_leaky_relu(conv1, act, LRELU_SLOPE), mask)
                x = _masked(conv_add(conv2, hidden, x), mask)
            else:
                hidden = _masked(F.leaky_relu_(conv1(act), LRELU_SLOPE), mask)
                x = _masked(conv2(hidden).add_(x), mask)
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN residual block type 2: one dilated conv per dilation."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d), init_std=0.01)
            for d in dilation)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x

    def receptive_radius(self) -> int:
        """See :meth:`ResBlock1.receptive_radius`."""
        return sum(c.dilation[0] * (c.kernel_size[0] - 1) // 2 for c in self.convs)

    def forward_inference(self, x: Tensor, activated: Tensor, fused: bool, mask: Tensor | None = None) -> Tensor:
        """See :meth:`ResBlock1.forward_inference`."""
        for i, conv in enumerate(self.convs):
            act = activated if i == 0 else F.leaky_relu(x, LRELU_SLOPE)
            x = _masked(conv_add(conv, act, x) if fused else conv(act).add_(x), mask)
        return x


class ResidualCouplingLayer(nn.Module):
    """Affine coupling: the second half of the channels is shifted (and scaled unless mean-only) by the first."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 p_dropout: float = 0.0, gin_channels: int = 0, mean_only: bool = False) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling layers need an even channel count, got {channels}")
        self.half_channels = channels // 2
        self.mean_only = mean_only
        self.pre = Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels, p_dropout)
        self.post = Conv1d(hidden_channels, self.half_channels * (1 if mean_only else 2), 1)
        nn.init.zeros_(self.post.weight)  # starts as the identity map
        nn.init.zeros_(self.post.bias)

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None, reverse: bool = False) -> Tensor:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        stats = self.post(h) * x_mask
        if self.mean_only:
            m, logs = stats, None
        else:
            m, logs = torch.split(stats, [self.half_channels] * 2, 1)
        if not reverse:
            x1 = m + x1 * torch.exp(logs) * x_mask if logs is not None else m + x1 * x_mask
        else:
            x1 = (x1 - m) * torch.exp(-logs) * x_mask if logs is not None else (x1 - m) * x_mask
        return torch.cat([x0, x1], 1)


class Flip(nn.Module):
    """Reverse the channel order (parameter-free; sits between coupling layers)."""

    def forward(self, x: Tensor, x_mask: Tensor | None = None, g: Tensor | None = None,
                reverse: bool = False) -> Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """``n_flows`` mean-only coupling layers, each followed by a flip (keys ``flows.{0,2,4,6}``)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 n_flows: int = 4, gin_channels: int = 0) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                                                    gin_channels=gin_channels, mean_only=True))
            self.flows.append(Flip())

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None, reverse: bool = False) -> Tensor:
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x


# ------------------------------------------------------------------------------------- reference style encoder


class LinearNorm(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


class Mish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.tanh(F.softplus(x))


class ConvNorm(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Conv1dGLU(nn.Module):
    """Residual gated conv: x + a·sigmoid(b), with [a; b] = conv(x)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv1 = ConvNorm(in_channels, 2 * out_channels, kernel_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        a, b = torch.split(self.conv1(x), self.out_channels, dim=1)
        return x + self.dropout(a * torch.sigmoid(b))


class StyleAttention(nn.Module):
    """Self-attention of the style encoder, [B, T, C] in and out, residual added.

    Scores are divided by sqrt(d_model), not sqrt(d_head): that is what upstream's StyleSpeech-derived code
    does, and the pretrained weights depend on it.
    """

    def __init__(self, n_head: int, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_head = d_model // n_head
        self.temperature = d_model**0.5
        self.w_qs = nn.Linear(d_model, n_head * self.d_head)
        self.w_ks = nn.Linear(d_model, n_head * self.d_head)
        self.w_vs = nn.Linear(d_model, n_head * self.d_head)
        self.fc = nn.Linear(n_head * self.d_head, d_model)
        self.attn_dropout = nn.Dropout(dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_padding: Tensor | None = None) -> Tensor:
        """``key_padding`` [B, T]: True at padded frames (never attended to)."""
        batch, length, _ = x.shape

        def heads(t: Tensor) -> Tensor:  # [B, T, H·d] → [B, H, T, d]
            return t.view(batch, length, self.n_head, self.d_head).transpose(1, 2)

        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / self.temperature
        if key_padding is not None:
            scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
        weights = self.attn_dropout(torch.softmax(scores, dim=-1))
        out = torch.matmul(weights, v).transpose(1, 2).reshape(batch, length, -1)
        return self.dropout(self.fc(out)) + x


class MelStyleEncoder(nn.Module):
    """Reference encoder: spectral MLP, two gated convs, self-attention, masked time average → [B, out, 1]."""

    def __init__(self, in_channels: int, hidden_channels: int = 128, out_channels: int = 256,
                 kernel_size: int = 5, n_heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.spectral = nn.Sequential(
            LinearNorm(in_channels, hidden_channels), Mish(), nn.Dropout(dropout),
            LinearNorm(hidden_channels, hidden_channels), Mish(), nn.Dropout(dropout),
        )
        self.temporal = nn.Sequential(
            Conv1dGLU(hidden_channels, hidden_channels, kernel_size, dropout),
            Conv1dGLU(hidden_channels, hidden_channels, kernel_size, dropout),
        )
        self.slf_attn = StyleAttention(n_heads, hidden_channels, dropout)
        self.fc = LinearNorm(hidden_channels, out_channels)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` [B, bins, T] spectrogram, ``mask`` [B, 1, T] (1 = valid) → style vector [B, out, 1]."""
        padding = (mask.int() == 0).squeeze(1) if mask is not None else None  # [B, T], True = padded
        x = self.spectral(x.transpose(1, 2))
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        if padding is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, padding))
        if padding is None:
            return x.mean(dim=1).unsqueeze(-1)
        lengths = (~padding).sum(dim=1)[:, None, None]
        x = x.masked_fill(padding.unsqueeze(-1), 0)
        # divide before summing, in float32, as upstream does (the order matters for bit-level parity)
        return (x.float() / lengths).sum(dim=1).to(x.dtype).unsqueeze(-1)
