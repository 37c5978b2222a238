"""Linear and mel spectrograms exactly as upstream computes them for SoVITS (32 kHz, n_fft 2048, hop 640),
plus the 100-band log-mel front ends of the v3/v4 CFM models (see :class:`MelFrontEnd`).

* linear: reflect-pad by (n_fft - hop) / 2 on both sides, STFT without centring (periodic Hann window,
  onesided, unnormalised), magnitude ``sqrt(re² + im² + 1e-8)`` → [B, n_fft/2 + 1, frames].
* mel: ``log(clamp(mel_basis @ linear, min=1e-5))`` with a Slaney-style filterbank (librosa's default),
  computed here without librosa.

Frames = (samples + 2·pad - n_fft) // hop + 1, i.e. one frame per ``hop`` samples (samples // hop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

N_FFT = 2048
HOP_LENGTH = 640
WIN_LENGTH = 2048
SAMPLING_RATE = 32000
N_MELS = 128
MAGNITUDE_EPS = 1e-8  # added under the square root (keeps the gradient finite at zero)
LOG_FLOOR = 1e-5

# Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(freqs: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa ``htk=False``)."""
    freqs = np.asarray(freqs, dtype=np.float64)
    mels = freqs / _F_SP
    log_region = freqs >= _MIN_LOG_HZ
    mels[log_region] = _MIN_LOG_MEL + np.log(freqs[log_region] / _MIN_LOG_HZ) / _LOG_STEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    freqs = mels * _F_SP
    log_region = mels >= _MIN_LOG_MEL
    freqs[log_region] = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mels[log_region] - _MIN_LOG_MEL))
    return freqs


def mel_filterbank(sampling_rate: int = SAMPLING_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular Slaney-normalised mel filters [n_mels, n_fft/2 + 1], float32.

    Same values as ``librosa.filters.mel`` with its defaults: triangles on the Slaney mel scale, each scaled
    by 2 / (bandwidth in Hz) so filters have equal area. Like librosa, each triangle is stored in float32
    before the normalisation is applied, so the result matches it to the last bit.
    """
    if fmax is None:
        fmax = sampling_rate / 2
    fft_freqs = np.linspace(0, sampling_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array([fmin]))[0], hz_to_mel(np.array([fmax]))[0], n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2: n_mels + 2] - edges[:n_mels]))[:, None]
    return weights


# The cached constants are created outside inference mode: a tensor made under torch.inference_mode() (say, by
# the inference engine) cannot be used later in a computation autograd records (training in the same process).
@lru_cache(maxsize=8)
def _hann_window(win_length: int, dtype: torch.dtype, device: str) -> Tensor:
    with torch.inference_mode(False):
        return torch.hann_window(win_length, dtype=dtype, device=device)


@lru_cache(maxsize=8)
def _mel_basis(sampling_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, dtype: torch.dtype,
               device: str) -> Tensor:
    basis = mel_filterbank(sampling_rate, n_fft, n_mels, fmin, fmax)
    with torch.inference_mode(False):
        return torch.from_numpy(basis).to(dtype=dtype, device=device)


def spectrogram(wave: Tensor, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                win_length: int = WIN_LENGTH) -> Tensor:
    """Linear magnitude spectrogram: ``wave`` [B, samples] (or [samples]) → [B, n_fft/2 + 1, frames]."""
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    pad = (n_fft - hop_length) // 2
    if wave.shape[-1] <= pad:
        raise ValueError(f"audio too short for a spectrogram: {wave.shape[-1]} samples, need more than {pad} "
                         f"(reflect padding of {pad} samples on each side)")
    padded = torch.nn.functional.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = _hann_window(win_length, wave.dtype, str(wave.device))
    stft = torch.stft(padded, n_fft, hop_length=hop_length, win_length=win_length, window=window, center=False,
                      normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(stft.real.pow(2) + stft.imag.pow(2) + MAGNITUDE_EPS)


def linear_to_mel(spec: Tensor, sampling_rate: int = SAMPLING_RATE, n_mels: int = N_MELS, fmin: float = 0.0,
                  fmax: float | None = None) -> Tensor:
    """Log mel spectrogram [B, n_mels, frames] from a linear one [B, n_fft/2 + 1, frames]."""
    n_fft = (spec.shape[-2] - 1) * 2
    basis = _mel_basis(sampling_rate, n_fft, n_mels, float(fmin), fmax, spec.dtype, str(spec.device))
    return torch.log(torch.clamp(torch.matmul(basis, spec), min=LOG_FLOOR))


def mel_spectrogram(wave: Tensor, n_fft: int = N_FFT, n_mels: int = N_MELS, sampling_rate: int = SAMPLING_RATE,
                    hop_length: int = HOP_LENGTH, win_length: int = WIN_LENGTH, fmin: float = 0.0,
                    fmax: float | None = None) -> Tensor:
    """Log mel spectrogram of a waveform: [B, samples] → [B, n_mels, frames]."""
    return linear_to_mel(spectrogram(wave, n_fft, hop_length, win_length), sampling_rate, n_mels, fmin, fmax)


def normalize_reference_peak(audio: np.ndarray | Tensor) -> Tensor:
    """Upstream's reference clean-up of 32 kHz mono audio [samples]: a peak above 1 is divided down by
    ``min(2, peak)`` (so a clip with peak 3 ends at 1.5). Returns float32."""
    wave = torch.as_tensor(np.asarray(audio, dtype=np.float32)) if not isinstance(audio, Tensor) else audio.float()
    if wave.dim() != 1:
        raise ValueError(f"reference audio must be mono [samples], got shape {tuple(wave.shape)}")
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    return wave / min(2.0, peak) if peak > 1 else wave


def reference_spectrogram(audio: np.ndarray | Tensor, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                          win_length: int = WIN_LENGTH) -> Tensor:
    """SoVITS reference input from 32 kHz mono audio [samples] → [1, n_fft/2 + 1, frames] (float32), after
    :func:`normalize_reference_peak` as upstream."""
    return spectrogram(normalize_reference_peak(audio).unsqueeze(0), n_fft, hop_length, win_length)


# ------------------------------------------------------------------------------------ v3/v4 CFM mel front ends


@dataclass(frozen=True)
class MelFrontEnd:
    """A log-mel front end of the CFM models: reflect padding of (n_fft - hop) / 2, periodic Hann window,
    magnitude with +1e-8 under the root, Slaney filterbank, natural log clamped at 1e-5. No peak
    normalisation of the input (unlike :func:`reference_spectrogram`)."""

    sampling_rate: int  # of the input wave
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int = 100
    fmin: float = 0.0
    fmax: float | None = None  # None: sampling_rate / 2

    @property
    def frame_rate(self) -> float:
        """Mel frames per second (v4: 100, v3: 93.75)."""
        return self.sampling_rate / self.hop_length

    def __call__(self, wave: Tensor | np.ndarray) -> Tensor:
        """Log-mel of a mono wave at :attr:`sampling_rate`: [samples] or [B, samples] → [B, n_mels, frames],
        frames = 1 + (samples + 2·pad - n_fft) // hop."""
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32)) if not isinstance(wave, Tensor) else wave
        return mel_spectrogram(wave, self.n_fft, self.n_mels, self.sampling_rate, self.hop_length,
                               self.win_length, self.fmin, self.fmax)


#: v4: 32 kHz, n_fft = window 1280, hop 320 → 100 frames/s, bands up to 16 kHz.
MEL_V4 = MelFrontEnd(sampling_rate=32000, n_fft=1280, hop_length=320, win_length=1280)
#: v3: 24 kHz, n_fft = window 1024, hop 256 → 93.75 frames/s, bands up to 12 kHz.
MEL_V3 = MelFrontEnd(sampling_rate=24000, n_fft=1024, hop_length=256, win_length=1024)
#: The log-mel range the CFM's normalisation maps to [-1, 1] (upstream's spec_min / spec_max).
CFM_MEL_MIN = -12.0
CFM_MEL_MAX = 2.0


def mel_v4(wave32k: Tensor | np.ndarray) -> Tensor:
    """v4 reference log-mel: 32 kHz wave [samples] or [B, samples] → [B, 100, frames] (100 frames/s)."""
    return MEL_V4(wave32k)


def mel_v3(wave24k: Tensor | np.ndarray) -> Tensor:
    """v3 reference log-mel: 24 kHz wave [samples] or [B, samples] → [B, 100, frames] (93.75 frames/s)."""
    return MEL_V3(wave24k)


def norm_mel_v4(mel: Tensor) -> Tensor:
    """Log-mel → the CFM's normalised space: (mel + 12) / 14 · 2 - 1, no clipping (v3 uses the same)."""
    return (mel - CFM_MEL_MIN) / (CFM_MEL_MAX - CFM_MEL_MIN) * 2 - 1


def denorm_mel_v4(x: Tensor) -> Tensor:
    """Inverse of :func:`norm_mel_v4` (CFM output → the log-mel the vocoder reads)."""
    return (x + 1) / 2 * (CFM_MEL_MAX - CFM_MEL_MIN) + CFM_MEL_MIN


norm_mel_v3 = norm_mel_v4
denorm_mel_v3 = denorm_mel_v4
