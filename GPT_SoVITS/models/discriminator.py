"""Multi-period discriminator for SoVITS GAN training (HiFi-GAN's MPD plus one scale discriminator, as VITS).

Keys: ``discriminators.0`` is the scale discriminator (grouped Conv1d), ``discriminators.1…`` are the period
discriminators (Conv2d over the waveform folded by the period). Every conv is weight-normed with the legacy
``weight_g``/``weight_v`` keys (or spectrally normed when ``use_spectral_norm``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from GPT_SoVITS.models.commons import LRELU_SLOPE, WNConv1d, WNConv2d, get_padding

#: Periods of the period discriminators. v2Pro/v2ProPlus add 17 and 23.
PERIODS = (2, 3, 5, 7, 11)
PRO_PERIODS = (2, 3, 5, 7, 11, 17, 23)


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

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, use_spectral_norm: bool = False) -> None:
        super().__init__()
        self.period = period
        pad = (get_padding(kernel_size), 0)
        widths = (1, 32, 128, 512, 1024, 1024)
        self.convs = nn.ModuleList(
            _conv2d(use_spectral_norm, c_in, c_out, (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad)
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)))
        self.conv_post = _conv2d(use_spectral_norm, 1024, 1, (3, 1), 1, padding=(1, 0))

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

    def __init__(self, use_spectral_norm: bool = False) -> None:
        super().__init__()
        layers = (  # (in, out, kernel, stride, groups, padding)
            (1, 16, 15, 1, 1, 7),
            (16, 64, 41, 4, 4, 20),
            (64, 256, 41, 4, 16, 20),
            (256, 1024, 41, 4, 64, 20),
            (1024, 1024, 41, 4, 256, 20),
            (1024, 1024, 5, 1, 1, 2),
        )
        self.convs = nn.ModuleList(
            _conv1d(use_spectral_norm, c_in, c_out, k, s, groups=g, padding=p) for c_in, c_out, k, s, g, p in layers)
        self.conv_post = _conv1d(use_spectral_norm, 1024, 1, 3, 1, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _scores_and_features(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """One scale discriminator followed by one period discriminator per entry of ``periods``."""

    def __init__(self, use_spectral_norm: bool = False, periods: tuple[int, ...] = PERIODS) -> None:
        super().__init__()
        discriminators: list[nn.Module] = [DiscriminatorS(use_spectral_norm)]
        discriminators += [DiscriminatorP(p, use_spectral_norm=use_spectral_norm) for p in periods]
        self.discriminators = nn.ModuleList(discriminators)

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
