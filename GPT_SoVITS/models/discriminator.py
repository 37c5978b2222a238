"""Multi-period discriminator for SoVITS GAN training (HiFi-GAN's MPD plus one scale discriminator, as VITS).

Keys: ``discriminators.0`` is the scale discriminator (grouped Conv1d), ``discriminators.1…`` are the period
discriminators (Conv2d over the waveform folded by the period). Every conv is weight-normed with the legacy
``weight_g``/``weight_v`` keys (or spectrally normed when ``use_spectral_norm``).

Widths are upstream's fixed ones (``base_channels`` 32: a period discriminator's first conv has 32 channels, the
scale discriminator's 16). A narrower discriminator (``base_channels`` 16, 8, 4…: every width and group count
scaled by ``base_channels / 32``) has the same keys; a trainer builds the width its pretrained file has
(:meth:`MultiPeriodDiscriminator.base_channels_of`). The tiny test sets use one: the full-width discriminator
costs far more than a tiny generator's whole training step on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from GPT_SoVITS.models.commons import LRELU_SLOPE, WNConv1d, WNConv2d, get_padding

#: Periods of the period discriminators. v2Pro/v2ProPlus add 17 and 23.
PERIODS = (2, 3, 5, 7, 11)
PRO_PERIODS = (2, 3, 5, 7, 11, 17, 23)
#: Upstream's width: the channels of a period discriminator's first conv; every other width scales with it.
BASE_CHANNELS = 32


def _scaled(channels: int, base_channels: int) -> int:
    if base_channels < 2 or BASE_CHANNELS % base_channels:
        raise ValueError(f"base_channels must be 2, 4, 8, 16 or 32, got {base_channels}")
    return max(1, channels * base_channels // BASE_CHANNELS)  # one input channel (the waveform) stays one


def _conv1d(use_spectral_norm: bool, *args, **kwargs) -> nn.Module:
    if use_spectral_norm:
        return nn.utils.spectral_norm(nn.Conv1d(*args, **kwargs))
    return WNConv1d(*args, **kwargs)


def _conv2d(use_spectral_norm: bool, *args, **kwargs) -> nn.Module:
    if use_spectral_norm:
        return nn.utils.spectral_norm(nn.Conv2d(*args, **kwargs))
    return WNConv2d(*args, **kwargs)


def _scores_and_features(convs: nn.ModuleList, conv_post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Both discriminators' stack: leaky-ReLU convs then ``conv_post``; (flattened scores, every layer's output)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap


class DiscriminatorP(nn.Module):
    """Period discriminator: the waveform folded into [B, 1, T/period, period], then (k×1) convs."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, use_spectral_norm: bool = False,
                 base_channels: int = BASE_CHANNELS) -> None:
        super().__init__()
        self.period = period
        pad = (get_padding(kernel_size), 0)
        widths = tuple(_scaled(c, base_channels) for c in (1, 32, 128, 512, 1024, 1024))
        self.convs = nn.ModuleList(
            _conv2d(use_spectral_norm, c_in, c_out, (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad)
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)))
        self.conv_post = _conv2d(use_spectral_norm, widths[-1], 1, (3, 1), 1, padding=(1, 0))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x [B, 1, T] → (scores [B, N], feature maps of every layer)."""
        batch, channels, length = x.shape
        if length % self.period:
            n_pad = self.period - length % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            length += n_pad
        x = x.view(batch, channels, length // self.period, self.period)
        return _scores_and_features(self.convs, self.conv_post, x)


class DiscriminatorS(nn.Module):
    """Scale discriminator on the raw waveform: strided grouped Conv1d stack."""

    def __init__(self, use_spectral_norm: bool = False, base_channels: int = BASE_CHANNELS) -> None:
        super().__init__()
        layers = (  # (in, out, kernel, stride, groups, padding) at upstream's width
            (1, 16, 15, 1, 1, 7),
            (16, 64, 41, 4, 4, 20),
            (64, 256, 41, 4, 16, 20),
            (256, 1024, 41, 4, 64, 20),
            (1024, 1024, 41, 4, 256, 20),
            (1024, 1024, 5, 1, 1, 2),
        )
        self.convs = nn.ModuleList(
            _conv1d(use_spectral_norm, _scaled(c_in, base_channels), _scaled(c_out, base_channels), k, s,
                    groups=_scaled(g, base_channels), padding=p)
            for c_in, c_out, k, s, g, p in layers)
        self.conv_post = _conv1d(use_spectral_norm, self.convs[-1].out_channels, 1, 3, 1, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _scores_and_features(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """One scale discriminator followed by one period discriminator per entry of ``periods``."""

    def __init__(self, use_spectral_norm: bool = False, periods: tuple[int, ...] = PERIODS,
                 base_channels: int = BASE_CHANNELS) -> None:
        super().__init__()
        discriminators: list[nn.Module] = [DiscriminatorS(use_spectral_norm, base_channels)]
        discriminators += [DiscriminatorP(p, use_spectral_norm=use_spectral_norm, base_channels=base_channels)
                           for p in periods]
        self.discriminators = nn.ModuleList(discriminators)

    @staticmethod
    def base_channels_of(state_dict: Mapping[str, Tensor]) -> int:
        """The ``base_channels`` of a discriminator's weights: twice the scale discriminator's first conv width
        (upstream's: 16 → 32); upstream's width when the weights have no such conv."""
        for key, value in state_dict.items():
            if key.startswith("discriminators.0.convs.0.") and value.ndim == 3:  # weight_v, weight or weight_orig
                return 2 * value.shape[0]
        return BASE_CHANNELS

    def forward(self, y: Tensor, y_hat: Tensor
                ) -> tuple[list[Tensor], list[Tensor], list[list[Tensor]], list[list[Tensor]]]:
        """Real y and generated y_hat [B, 1, T] → (real scores, fake scores, real fmaps, fake fmaps)."""
        real_scores, fake_scores, real_fmaps, fake_fmaps = [], [], [], []
        for disc in self.discriminators:
            score, fmap = disc(y)
            real_scores.append(score)
            real_fmaps.append(fmap)
            score, fmap = disc(y_hat)
            fake_scores.append(score)
            fake_fmaps.append(fmap)
        return real_scores, fake_scores, real_fmaps, fake_fmaps
