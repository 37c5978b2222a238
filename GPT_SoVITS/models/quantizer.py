"""Residual vector quantizer with EMA codebooks (EnCodec-style), as used by SoVITS with one 1024×768 codebook.

State-dict keys: ``vq.layers.<i>._codebook.{inited, cluster_size, embed, embed_avg}`` (all buffers).

Differences from upstream, on purpose:
* ``inited`` starts at 1 with a random codebook. Upstream starts at 0 and runs k-means through
  ``torch.distributed`` on the first training batch; every real run starts from pretrained weights, whose
  ``inited`` is already 1, so that path never matters in practice.
* No cross-process buffer broadcast after dead-code replacement (single-process training keeps one copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _laplace_smoothing(counts: Tensor, n_categories: int, epsilon: float) -> Tensor:
    return (counts + epsilon) / (counts.sum() + n_categories * epsilon)


def _sample_vectors(samples: Tensor, num: int) -> Tensor:
    count = samples.shape[0]
    if count >= num:
        indices = torch.randperm(count, device=samples.device)[:num]
    else:
        indices = torch.randint(0, count, (num,), device=samples.device)
    return samples[indices]


class EuclideanCodebook(nn.Module):
    """Nearest-neighbour codebook (Euclidean) with EMA updates and dead-code replacement in training mode."""

    def __init__(self, dim: int, codebook_size: int, decay: float = 0.99, epsilon: float = 1e-5,
                 threshold_ema_dead_code: float = 2.0) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.decay = decay
        self.epsilon = epsilon
        self.threshold_ema_dead_code = threshold_ema_dead_code
        embed = nn.init.kaiming_uniform_(torch.empty(codebook_size, dim))
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def encode(self, x: Tensor) -> Tensor:
        """``x`` [..., D] → code indices [...]."""
        flat = x.reshape(-1, x.shape[-1])
        embed_t = self.embed.t()
        # negated squared distance; argmax picks the nearest row (same expression and tie-breaking as upstream)
        dist = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed_t + embed_t.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices.view(*x.shape[:-1])

    def decode(self, indices: Tensor) -> Tensor:
        return F.embedding(indices, self.embed)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        indices = self.encode(x)
        quantized = self.decode(indices)
        if self.training:
            self._ema_update(x.reshape(-1, x.shape[-1]), indices.reshape(-1))
        return quantized, indices

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, indices: Tensor) -> None:
        self._expire_codes(flat)
        onehot = F.one_hot(indices, self.codebook_size).type(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_((flat.t() @ onehot).t(), alpha=1 - self.decay)
        smoothed = _laplace_smoothing(self.cluster_size, self.codebook_size, self.epsilon) * self.cluster_size.sum()
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))

    def _expire_codes(self, flat: Tensor) -> None:
        if not self.threshold_ema_dead_code:
            return
        expired = self.cluster_size < self.threshold_ema_dead_code
        if torch.any(expired):
            replacement = _sample_vectors(flat, self.codebook_size)
            self.embed.copy_(torch.where(expired[:, None], replacement, self.embed))


class VectorQuantization(nn.Module):
    """One codebook over channels-first input [B, D, T] with a straight-through estimator and commit loss."""

    def __init__(self, dim: int, codebook_size: int, decay: float = 0.99, epsilon: float = 1e-5,
                 threshold_ema_dead_code: float = 2.0, commitment_weight: float = 1.0) -> None:
        super().__init__()
        self.commitment_weight = commitment_weight
        self._codebook = EuclideanCodebook(dim, codebook_size, decay, epsilon, threshold_ema_dead_code)

    def encode(self, x: Tensor) -> Tensor:
        return self._codebook.encode(x.transpose(1, 2))

    def decode(self, indices: Tensor) -> Tensor:
        return self._codebook.decode(indices).transpose(1, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = x.transpose(1, 2)  # [B, T, D]
        quantized, indices = self._codebook(x)
        loss = torch.zeros(1, device=x.device)
        if self.training:
            quantized = x + (quantized - x).detach()  # straight-through: gradients bypass the lookup
            if self.commitment_weight > 0:
                loss = loss + F.mse_loss(quantized.detach(), x) * self.commitment_weight
        return quantized.transpose(1, 2), indices, loss


class ResidualVectorQuantization(nn.Module):
    def __init__(self, num_quantizers: int, **kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantization(**kwargs) for _ in range(num_quantizers))


class ResidualVectorQuantizer(nn.Module):
    """``n_q`` codebooks applied to successive residuals. Codes are laid out [n_q, B, T]."""

    def __init__(self, dimension: int = 768, n_q: int = 1, bins: int = 1024, decay: float = 0.99,
                 threshold_ema_dead_code: float = 2.0) -> None:
        super().__init__()
        self.n_q = n_q
        self.vq = ResidualVectorQuantization(num_quantizers=n_q, dim=dimension, codebook_size=bins, decay=decay,
                                             threshold_ema_dead_code=threshold_ema_dead_code)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x`` [B, D, T] → (quantized [B, D, T], codes [n_q, B, T], mean commit loss)."""
        residual = x
        quantized_sum: Tensor | float = 0.0
        codes, losses = [], []
        for layer in self.vq.layers:
            quantized, indices, loss = layer(residual)
            residual = residual - quantized
            quantized_sum = quantized_sum + quantized
            codes.append(indices)
            losses.append(loss)
        assert isinstance(quantized_sum, Tensor)
        return quantized_sum, torch.stack(codes), torch.stack(losses).mean()

    def encode(self, x: Tensor) -> Tensor:
        """``x`` [B, D, T] → codes [n_q, B, T] (no EMA update)."""
        residual = x
        codes = []
        for layer in self.vq.layers:
            indices = layer.encode(residual)
            residual = residual - layer.decode(indices)
            codes.append(indices)
        return torch.stack(codes)

    def decode(self, codes: Tensor) -> Tensor:
        """codes [n_q', B, T] (n_q' ≤ n_q) → summed code vectors [B, D, T]."""
        out: Tensor | None = None
        for layer, indices in zip(self.vq.layers, codes, strict=False):
            vectors = layer.decode(indices)
            out = vectors if out is None else out + vectors
        if out is None:
            raise ValueError("decode() needs at least one codebook layer of codes")
        return out
