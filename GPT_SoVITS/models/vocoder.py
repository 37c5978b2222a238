"""The SoVITS v4 vocoder: a HiFi-GAN generator turning a 100-band log-mel (100 frames/s) into 48 kHz audio.

Upstream builds its HiFi-GAN ``Generator`` (100 → 512 channels, upsampling 10·6·2·2·2 = 480 with kernels
20/12/4/4/4, residual blocks 3/7/11 with dilations 1/3/5, output convolution with a bias, no speaker input),
folds weight norm, then loads ``gsv-v4-pretrained/vocoder.pth`` strictly: a *plain* state dict in which each
folded layer lists ``bias`` before ``weight``. This module builds the same network from :class:`Generator`
(so it also gets that class's fast CPU inference path) and loads such files safely.

The vocoder reads the *denormalised* log-mel (natural log, about −12…2): see
:func:`GPT_SoVITS.features.spectrogram.denorm_mel_v4`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from GPT_SoVITS.checkpoints import PRETRAINED_SOURCE, CheckpointError, safe_load
from GPT_SoVITS.models.commons import fold_weight_norm, refresh_folded_caches
from GPT_SoVITS.models.sovits import Generator

log = logging.getLogger(__name__)

DEFAULT_DILATIONS = (1, 3, 5)


@dataclass(frozen=True)
class VocoderConfig:
    """Architecture of the v4 vocoder (defaults: upstream's). Field names follow :class:`Generator`'s needs."""

    n_mels: int = 100  # input bands
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 6, 2, 2, 2)  # product = output samples per mel frame
    upsample_kernel_sizes: tuple[int, ...] = (20, 12, 4, 4, 4)
    sampling_rate: int = 48000  # of the output
    gin_channels: int = 0  # no speaker conditioning

    def __post_init__(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            raise ValueError(f"upsample_initial_channel ({self.upsample_initial_channel}) must be divisible by "
                             f"2^{len(self.upsample_rates)} (channels halve at every stage)")

    @property
    def inter_channels(self) -> int:
        """Input channels, under the name :class:`Generator` reads."""
        return self.n_mels

    @property
    def hop_length(self) -> int:
        """Output samples per input frame (480 for v4)."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor]) -> VocoderConfig:
        """The widths a vocoder state dict implies (input bands, first width, residual kernels and how many
        dilations); the upsampling stages stay upstream's. Raises :class:`CheckpointError` if it is no vocoder."""
        pre = state_dict.get("conv_pre.weight")
        if pre is None or pre.dim() != 3:
            raise CheckpointError("not a v4 vocoder state dict: it has no 'conv_pre.weight' convolution kernel")
        default = cls()
        blocks = sum(1 for key in state_dict if key.startswith("resblocks.") and key.endswith(".convs1.0.bias"))
        per_stage = blocks // len(default.upsample_rates)
        if per_stage < 1:
            raise CheckpointError("not a v4 vocoder state dict: it has no residual blocks ('resblocks.*')")
        kernels, dilations = [], []
        for i in range(per_stage):
            first = state_dict.get(f"resblocks.{i}.convs1.0.weight", state_dict.get(f"resblocks.{i}.convs1.0.weight_v"))
            if first is None:
                raise CheckpointError(f"not a v4 vocoder state dict: 'resblocks.{i}.convs1.0.weight' is missing")
            kernels.append(int(first.shape[-1]))
            count = sum(1 for key in state_dict if key.startswith(f"resblocks.{i}.convs1.") and key.endswith(".bias"))
            dilations.append(DEFAULT_DILATIONS[:count])
        return cls(n_mels=int(pre.shape[1]), upsample_initial_channel=int(pre.shape[0]),
                   resblock_kernel_sizes=tuple(kernels), resblock_dilation_sizes=tuple(dilations))


def build_vocoder(cfg: VocoderConfig = VocoderConfig()) -> Generator:
    """A randomly initialised vocoder in the *unfolded* (trainable, weight-normed) layout."""
    return Generator(cfg, post_bias=True)


def vocoder_from_state_dict(state_dict: Mapping[str, Tensor], cfg: VocoderConfig | None = None,
                            device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Generator:
    """Build the vocoder for inference from a state dict: folded (upstream's ``vocoder.pth`` layout) or with
    ``weight_g``/``weight_v`` pairs (folded after loading). Eval mode, no gradients, fast CPU path on.

    Raises :class:`CheckpointError` when the tensors do not fit the architecture.
    """
    cfg = cfg or VocoderConfig.from_state_dict(state_dict)
    weights = {key: value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype, copy=True)
               for key, value in state_dict.items()}
    folded_file = not any(key.endswith(".weight_g") for key in weights)
    with torch.device("meta"):
        vocoder = build_vocoder(cfg)
    if folded_file:
        fold_weight_norm(vocoder)
    try:
        vocoder.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"the tensors do not fit the v4 vocoder ({' '.join(str(exc).split())[:300]})") from None
    if folded_file:
        refresh_folded_caches(vocoder)
    else:
        fold_weight_norm(vocoder)
    vocoder.eval().requires_grad_(False)
    vocoder.fast_cpu_inference = True
    return vocoder


def load_vocoder(path: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Generator:
    """Load the 48 kHz v4 vocoder (``gsv-v4-pretrained/vocoder.pth``, a plain state dict) for inference.

    The returned module maps a denormalised log-mel [B, 100, T] to audio [B, 1, 480·T] in (−1, 1). The file
    is read with ``torch.load(weights_only=True)``. Raises :class:`FileNotFoundError` (with where the file
    belongs) or :class:`CheckpointError` (corrupt, unsafe, or not a vocoder).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Missing the v4 vocoder: expected at {path} (upstream's "
                                f"pretrained_models/gsv-v4-pretrained/vocoder.pth). Download it from "
                                f"{PRETRAINED_SOURCE} and put it at that path.")
    obj, _tag = safe_load(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("weight"), Mapping):
        raise CheckpointError(f"{path}: this is a model weight file (it has a 'weight' entry), not the v4 vocoder. "
                              f"Pick gsv-v4-pretrained/vocoder.pth.")
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a vocoder state dict (expected a mapping of tensor names to tensors)")
    try:
        vocoder = vocoder_from_state_dict(obj, device=device, dtype=dtype)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    log.info("loaded the v4 vocoder from %s", path)
    return vocoder
