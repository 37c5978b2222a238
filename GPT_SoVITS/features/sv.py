"""Speaker-verification (SV) embedding of v2Pro/v2ProPlus: 32 kHz wave → 16 kHz → Kaldi fbank → ERes2NetV2.

Every step reproduces upstream (torchaudio's resampler and Kaldi-compatible fbank) without torchaudio:

1. **Resample 32 → 16 kHz** with torchaudio's default windowed-sinc filter (Hann window, 6 zero crossings,
   roll-off 0.99). For 2:1 it is one 28-tap FIR applied at stride 2 with zeros outside the signal; the output
   has ceil(N/2) samples. Other resamplers (soxr, scipy) move the embedding by 2–3.5 %, so this one is used.
2. **Fbank**: 25 ms frames every 10 ms with snip edges (T = 1 + (N − 400) // 160), per-frame mean removal,
   pre-emphasis 0.97, Povey window, |FFT|² over 512 points, 80 triangles on the Kaldi mel scale
   (20–8000 Hz), natural log floored at float32 eps. No dither, no energy, no mean normalisation, and the wave
   stays in ±1 (not int16 range).
3. **ERes2NetV2** (:mod:`GPT_SoVITS.models.eres2net`): the time-mean of its fused feature map, [B, 20480].

The embedding is a plain mean over all frames, so zero padding changes it (42 % relative L2 in the kit's
example): embed each reference on its own (:func:`embed_wave`), never padded into a batch.

Half precision follows upstream: with a float16 model on CUDA the 16 kHz wave is cast to float16 before the
fbank, and the embedding comes out in float16. On CPU the network always runs in float32.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from GPT_SoVITS.checkpoints import CheckpointError, safe_load
from GPT_SoVITS.models.eres2net import ERes2NetV2, ERes2NetV2Config
from GPT_SoVITS.versions import SV_MODEL_FILE

log = logging.getLogger(__name__)

#: Where upstream keeps the pretrained SV network, relative to ``pretrained_models/``.
SV_PRETRAINED_NAME = SV_MODEL_FILE  # inside upstream's pretrained_models folder
INPUT_SAMPLING_RATE = 32000
SV_SAMPLING_RATE = 16000

# torchaudio's default sinc resampler, reduced to the 2:1 case
LOWPASS_FILTER_WIDTH = 6  # zero crossings on each side
ROLLOFF = 0.99

# Kaldi fbank options (upstream passes num_mel_bins=80, sample_frequency=16000, dither=0; the rest are defaults)
FRAME_LENGTH = 400  # 25 ms at 16 kHz
FRAME_SHIFT = 160  # 10 ms
FFT_SIZE = 512  # the frame length rounded up to a power of two
PREEMPHASIS = 0.97
POVEY_EXPONENT = 0.85
LOW_FREQ = 20.0
HIGH_FREQ = 8000.0  # Kaldi's default high_freq 0 means the Nyquist frequency
LOG_FLOOR = float(torch.finfo(torch.float32).eps)  # 1.1920929e-07, the floor in every dtype
NUM_MEL_BINS = 80
MIN_SAMPLES_32K = 2 * FRAME_LENGTH - 1  # shortest 32 kHz input giving one 16 kHz frame


# ------------------------------------------------------------------------------------------- resampling
def resample_kernel() -> np.ndarray:
    """The 28 taps of torchaudio's 32 → 16 kHz sinc filter, computed in float64, returned as float32.

    Tap i (i = −13 … 14) sits at t = clamp(0.99·i/2, ±6); its value is sinc(t)·cos²(πt/12)·0.495.
    """
    orig, new = 2, 1  # 32000:16000 after dividing by the gcd
    cutoff = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / cutoff)  # 13 input samples on the left
    t = np.clip(np.arange(-width, width + orig, dtype=np.float64) / orig * cutoff,
                -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = np.cos(t * np.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    return (np.sinc(t) * (window * (cutoff / orig))).astype(np.float32)


# Cached constants are made outside inference mode so that autograd-recorded code can reuse them too.
@lru_cache(maxsize=8)
def _kernel_tensor(device: str) -> Tensor:
    with torch.inference_mode(False):
        return torch.from_numpy(resample_kernel()).to(device).view(1, 1, -1)


def resample_32k_to_16k(wave: Tensor) -> Tensor:
    """[B, N] (or [N]) float32 at 32 kHz → [B, ceil(N/2)] at 16 kHz, as ``torchaudio`` Resample(32000, 16000)."""
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    kernel = _kernel_tensor(str(wave.device)).to(wave.dtype)
    left = (kernel.shape[-1] - 2) // 2  # 13 taps before the centre sample, 14 after it
    padded = F.pad(wave.unsqueeze(1), (left, kernel.shape[-1] - left))
    out = F.conv1d(padded, kernel, stride=2).squeeze(1)
    return out[:, : (wave.shape[-1] + 1) // 2]


# ------------------------------------------------------------------------------------------------- fbank
def _kaldi_mel(freq: float) -> float:
    return 1127.0 * math.log(1.0 + freq / 700.0)


def kaldi_mel_banks(num_bins: int = NUM_MEL_BINS, fft_size: int = FFT_SIZE,
                    sampling_rate: int = SV_SAMPLING_RATE, low_freq: float = LOW_FREQ,
                    high_freq: float = HIGH_FREQ) -> Tensor:
    """Kaldi's triangular mel filters [num_bins, fft_size/2 + 1], float32 (the Nyquist column is 0).

    The triangles are equally spaced on the mel scale 1127·ln(1 + f/700) between ``low_freq`` and
    ``high_freq`` and evaluated, unnormalised, at the bin frequencies k·sampling_rate/fft_size for
    k < fft_size/2. Computed in float32 in the same order as torchaudio, which makes the fbank bit-identical
    to upstream's (a float64 matrix moves low-energy log values by up to 3e-4).
    """
    low, high = _kaldi_mel(low_freq), _kaldi_mel(high_freq)
    delta = (high - low) / (num_bins + 1)
    index = torch.arange(num_bins, dtype=torch.float32).unsqueeze(1)
    left, center, right = low + index * delta, low + (index + 1.0) * delta, low + (index + 2.0) * delta
    freqs = (sampling_rate / fft_size) * torch.arange(fft_size // 2, dtype=torch.float32)
    mel = (1127.0 * torch.log(1.0 + freqs / 700.0)).unsqueeze(0)
    rising, falling = (mel - left) / (center - left), (right - mel) / (right - center)
    return F.pad(torch.minimum(rising, falling).clamp_min(0.0), (0, 1))


@lru_cache(maxsize=8)
def _fbank_constants(num_bins: int, dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor]:
    """(Povey window [400], transposed mel matrix [257, num_bins]), made in float32, cast to ``dtype``."""
    with torch.inference_mode(False):
        window = torch.hann_window(FRAME_LENGTH, periodic=False, dtype=torch.float32).pow(POVEY_EXPONENT)
        banks_t = kaldi_mel_banks(num_bins).t().contiguous()
        return window.to(device=device, dtype=dtype), banks_t.to(device=device, dtype=dtype)


def fbank(wave_16k: Tensor, num_mel_bins: int = NUM_MEL_BINS) -> Tensor:
    """Kaldi-compatible log-mel fbank of ±1 waves: [B, N] (or [N]) at 16 kHz → [B, T, num_mel_bins].

    T = 1 + (N − 400) // 160; computed in the wave's dtype (float16 only makes sense on CUDA).
    """
    if wave_16k.dim() == 1:
        wave_16k = wave_16k.unsqueeze(0)
    if wave_16k.shape[-1] < FRAME_LENGTH:
        raise ValueError(f"audio too short for a speaker embedding: {wave_16k.shape[-1]} samples at 16 kHz, "
                         f"need at least {FRAME_LENGTH} (25 ms)")
    window, banks_t = _fbank_constants(num_mel_bins, wave_16k.dtype, str(wave_16k.device))
    frames = wave_16k.unfold(-1, FRAME_LENGTH, FRAME_SHIFT)  # [B, T, 400], snip edges
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat((frames[..., :1], frames[..., :-1]), dim=-1)  # the first sample is its own predecessor
    frames = (frames - PREEMPHASIS * previous) * window
    spectrum = torch.fft.rfft(F.pad(frames, (0, FFT_SIZE - FRAME_LENGTH)), dim=-1).abs().pow(2)  # [B, T, 257]
    return torch.matmul(spectrum, banks_t).clamp_min(LOG_FLOOR).log()


# ------------------------------------------------------------------------------------------------ embedding
def _model_device_dtype(model: ERes2NetV2) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


@torch.no_grad()
def speaker_embedding(model: ERes2NetV2, wav32k: Tensor) -> Tensor:
    """SV embeddings of 32 kHz ±1 waves: [B, T] (or [T]) → [B, model.embedding_dim] in the model's dtype.

    Each row is embedded exactly as given: padding a shorter clip with zeros changes its embedding, because
    the network averages over every frame. Embed clips of different lengths one at a time.
    """
    device, dtype = _model_device_dtype(model)
    wave = wav32k.to(device=device, dtype=torch.float32)
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    if wave.dim() != 2:
        raise ValueError(f"expected waves [batch, samples], got shape {tuple(wav32k.shape)}")
    if wave.shape[-1] < MIN_SAMPLES_32K:
        raise ValueError(f"audio too short for a speaker embedding: {wave.shape[-1]} samples at 32 kHz, need at "
                         f"least {MIN_SAMPLES_32K} (25 ms)")
    wave_16k = resample_32k_to_16k(wave)
    if dtype == torch.float16 and device.type == "cuda":
        wave_16k = wave_16k.half()  # upstream's half-precision path: the fbank runs in float16 too
    feats = fbank(wave_16k, model.config.feat_dim)
    return model(feats.to(dtype))


def embed_wave(model: ERes2NetV2, wave_32k: np.ndarray | Tensor) -> Tensor:
    """One mono 32 kHz clip [samples] → [1, embedding_dim]. Floats are ±1; int16 PCM is scaled by 1/32768.

    What inference (per reference) and dataset formatting (``7-sv_cn``) call.
    """
    wave = torch.as_tensor(wave_32k)
    if not wave.is_floating_point():
        wave = wave.float() / 32768.0  # int16 PCM, as a 5-wav32k file holds it
    if wave.dim() != 1:
        raise ValueError(f"expected a mono waveform [samples], got shape {tuple(wave.shape)}")
    return speaker_embedding(model, wave.unsqueeze(0))


# -------------------------------------------------------------------------------------------------- loading
def _sv_state_dict(path: Path, obj: object) -> Mapping[str, Tensor]:
    expected = ("conv1.weight", "layer1.0.conv1.weight", "layer4.0.conv3.weight", "fuse34.local_att.0.weight")
    if not isinstance(obj, Mapping) or not all(key in obj for key in expected):
        found = ", ".join(map(repr, list(obj)[:6])) if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        hint = " It looks like a GPT or SoVITS weight file." if isinstance(obj, Mapping) and "weight" in obj else ""
        raise CheckpointError(f"{path}: not the speaker-verification model (ERes2NetV2): expected a plain state "
                              f"dict with keys such as 'conv1.weight' and 'layer4.0.conv3.weight', found {found}."
                              f"{hint} Use pretrained_models/{SV_PRETRAINED_NAME}.")
    bad = [key for key, value in obj.items() if not isinstance(value, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entry {bad[0]!r} of the speaker-verification model is not a tensor")
    return obj


def load_sv(path: Path | str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
            ) -> ERes2NetV2:
    """Build the SV network from upstream's file (a plain ERes2NetV2 state dict), ready for inference.

    The architecture is inferred from the tensor shapes (the file stores no config), so smaller networks in
    the same format load too. The model is in eval mode with BatchNorm folded
    (:meth:`ERes2NetV2.prepare_for_inference`). On CPU it is always float32 (upstream never runs it in half
    precision there). Raises :class:`FileNotFoundError` (missing, with where to get it) or
    :class:`CheckpointError` (corrupt, unsafe, or not an SV network).
    """
    path = Path(path)
    obj, _tag = safe_load(path)
    state_dict = _sv_state_dict(path, obj)
    if torch.device(device).type == "cpu" and dtype != torch.float32:
        log.info("the speaker-verification network runs in float32 on CPU (%s requested)", dtype)
        dtype = torch.float32
    try:
        cfg = ERes2NetV2Config.from_state_dict(state_dict)
        model = ERes2NetV2.from_state_dict(state_dict, cfg, device=device, dtype=dtype)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the tensors do not form an ERes2NetV2 speaker-verification network "
                              f"({' '.join(str(exc).split())[:300]})") from None
    log.info("loaded the SV network from %s (embedding width %d, %s, %s)", path, model.embedding_dim, device, dtype)
    return model.prepare_for_inference()
