"""SoVITS GAN losses (VITS / HiFi-GAN): least-squares adversarial, feature matching and the KL term."""

from __future__ import annotations

import torch
from torch import Tensor


def discriminator_loss(real_scores: list[Tensor], fake_scores: list[Tensor]) -> Tensor:
    """LSGAN: ``Σ_d mean((1 - D(real))²) + mean(D(fake)²)``."""
    total = real_scores[0].new_zeros(())
    for real, fake in zip(real_scores, fake_scores, strict=True):
        total = total + torch.mean((1 - real.float()) ** 2) + torch.mean(fake.float() ** 2)
    return total


def generator_adversarial_loss(fake_scores: list[Tensor]) -> Tensor:
    """LSGAN for the generator: ``Σ_d mean((1 - D(fake))²)``."""
    total = fake_scores[0].new_zeros(())
    for fake in fake_scores:
        total = total + torch.mean((1 - fake.float()) ** 2)
    return total


def feature_matching_loss(real_fmaps: list[list[Tensor]], fake_fmaps: list[list[Tensor]]) -> Tensor:
    """``2 · Σ mean|D_l(real) - D_l(fake)|`` over every layer of every discriminator (real side detached)."""
    total = fake_fmaps[0][0].new_zeros((), dtype=torch.float32)
    for real_layers, fake_layers in zip(real_fmaps, fake_fmaps, strict=True):
        for real, fake in zip(real_layers, fake_layers, strict=True):
            total = total + torch.mean(torch.abs(real.float().detach() - fake.float()))
    return total * 2


def kl_loss(z_p: Tensor, logs_q: Tensor, m_p: Tensor, logs_p: Tensor, mask: Tensor) -> Tensor:
    """KL between the flowed posterior sample and the prior, per masked element (VITS ``kl_loss``).

    Shapes: all ``[B, C, T]``, ``mask`` ``[B, 1, T]``.
    """
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)
