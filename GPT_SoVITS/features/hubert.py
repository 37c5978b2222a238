"""HuBERT SSL features (upstream "cnhubert"): 16 kHz samples → ``last_hidden_state`` as [1, hidden, T50].

The model folder is a transformers ``HubertModel`` checkpoint such as ``pretrained_models/chinese-hubert-base``
(``config.json`` + weights), loaded with ``local_files_only`` (never downloaded).

**Input scaling is the caller's job**, and upstream uses two different scalings:

* inference (reference audio → prompt codes): the 16 kHz waveform as loaded, in [-1, 1], with 0.3 s of
  zeros appended; no feature-extractor normalisation.
* dataset preparation (step 1B, ``4-cnhubert``): the 32 kHz clip is loudness-mixed to a peak of about
  1145.14·(0.95·0.5 + 0.5·peak) (see :func:`training_ssl_input`) and then resampled to 16 kHz.

The first conv layer of HuBERT-base is group-normalised, so the scale matters less than it seems, but the
numbers only match upstream when the same input is used.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from GPT_SoVITS.audio import resample

log = logging.getLogger(__name__)

SSL_SAMPLING_RATE = 16000
#: Loudness mix of upstream's step 1B: peak target ``maxx`` and blend ``alpha`` with the original level.
MIX_PEAK = 0.95
MIX_ALPHA = 0.5
#: Full-scale values of the two mixes: int16 wav files use 32768, the HuBERT input uses 1145.14.
WAV_SCALE = 32768.0
SSL_SCALE = 1145.14


def loudness_mix(audio: np.ndarray, scale: float, peak_target: float = MIX_PEAK, alpha: float = MIX_ALPHA
                 ) -> np.ndarray:
    """Upstream's step-1B mix: ``audio/peak · (peak_target·alpha·scale) + (1 - alpha)·scale·audio``."""
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak == 0.0:
        return np.zeros_like(audio)
    mixed = audio / peak * (peak_target * alpha * scale) + ((1 - alpha) * scale) * audio
    return mixed.astype(np.float32)


def training_ssl_input(audio_32k: np.ndarray, sampling_rate: int = 32000) -> np.ndarray:
    """The HuBERT input of upstream's dataset preparation: mixed at scale 1145.14, then resampled to 16 kHz."""
    return resample(loudness_mix(audio_32k, SSL_SCALE), sampling_rate, SSL_SAMPLING_RATE)


def _check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise FileNotFoundError(
            f"HuBERT model folder not found: {path}. Put a transformers HubertModel checkpoint there "
            "(upstream uses chinese-hubert-base in pretrained_models/chinese-hubert-base: config.json plus "
            "pytorch_model.bin or model.safetensors).")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"HuBERT model folder {path} has no config.json; it must be a transformers "
                                "HubertModel checkpoint (e.g. chinese-hubert-base).")


@lru_cache(maxsize=2)
def load_hubert(path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """Load (once per path/device/dtype) a local HubertModel in eval mode."""
    from transformers import HubertModel  # heavy import, only when a model is actually needed

    path = Path(path)
    _check_model_dir(path)
    log.info("loading HuBERT from %s (%s, %s)", path, device, dtype)
    model = HubertModel.from_pretrained(str(path), local_files_only=True)
    return model.to(device=device, dtype=dtype).eval()


class HubertFeaturizer:
    """Callable SSL featurizer: 16 kHz waveform → [1, hidden, T50] (T50 ≈ samples / 320)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        parameter = next(model.parameters())
        self.device = parameter.device
        self.dtype = parameter.dtype

    @classmethod
    def from_pretrained(cls, path: Path | str, device: str = "cpu",
                        dtype: torch.dtype = torch.float32) -> HubertFeaturizer:
        return cls(load_hubert(Path(path).resolve(), str(device), dtype))

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, wav_16k: np.ndarray | Tensor) -> Tensor:
        """``wav_16k`` [samples] (already scaled as the caller needs) → features [1, hidden, frames],
        in the model's dtype on the model's device."""
        wave = torch.as_tensor(np.asarray(wav_16k, dtype=np.float32)) if not isinstance(wav_16k, Tensor) else wav_16k
        if wave.dim() != 1:
            raise ValueError(f"expected a mono waveform [samples], got shape {tuple(wave.shape)}")
        if wave.numel() < 400:
            raise ValueError(f"waveform too short for HuBERT: {wave.numel()} samples at 16 kHz (need ≥ 400)")
        wave = wave.to(device=self.device, dtype=self.dtype).unsqueeze(0)
        hidden = self.model(wave).last_hidden_state  # [1, frames, hidden]
        return hidden.transpose(1, 2)
