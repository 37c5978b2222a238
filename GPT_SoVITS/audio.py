"""Audio I/O shared by the tools and the library: decode with soundfile, resample with soxr, write atomically.

No ffmpeg and no torchaudio: soundfile (libsndfile) reads wav, flac, ogg/vorbis/opus and mp3.

Two downmix rules exist because upstream uses two decoders and their mono signals differ in level:

* ``"mean"``: the channel average, as torchaudio/librosa loads do (inference references, the label fixer);
* ``"ffmpeg"``: what ``ffmpeg -ac 1`` writes as float, i.e. swresample's default matrix without normalisation
  (stereo → ``(L + R)·√½``). Upstream decodes with ffmpeg in the slicer and in 1A; the slicer's threshold is an
  absolute level, so the same dB value only cuts in the same places with the same downmix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from GPT_SoVITS.fileio import atomic_path

#: File extensions soundfile can decode, used when scanning folders for audio.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64"})


class AudioReadError(RuntimeError):
    """An audio file could not be decoded; the message names the file and the reason."""


def is_audio_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS


def list_audio_files(folder: Path) -> list[Path]:
    """Audio files directly inside ``folder``, sorted by name (upstream order)."""
    return sorted((p for p in Path(folder).iterdir() if is_audio_file(p)), key=lambda p: p.name)


Downmix = Literal["mean", "ffmpeg"]

_C = 2**-0.5  # swresample's default centre and surround mix levels (-3 dB)
# Per channel count: the weights of swresample's default downmix to mono for ffmpeg's default layout of that count
# (the layout an input without a channel mask gets). Fronts L/R √½ each; centre √½·√2 = 1; LFE 0 (lfe_mix_level);
# back/side channels surround_mix_level·√½ = ½. No normalisation: ffmpeg only normalises for integer output.
_FFMPEG_MONO_WEIGHTS: dict[int, tuple[float, ...]] = {
    2: (_C, _C),  # stereo
    3: (_C, _C, 0.0),  # 2.1: FL FR LFE
    4: (_C, _C, 1.0, 0.5),  # 4.0: FL FR FC BC
    5: (_C, _C, 1.0, 0.5, 0.5),  # 5.0: FL FR FC BL BR
    6: (_C, _C, 1.0, 0.0, 0.5, 0.5),  # 5.1: FL FR FC LFE BL BR
    7: (_C, _C, 1.0, 0.0, 0.5, 0.5, 0.5),  # 6.1: FL FR FC LFE BC SL SR
    8: (_C, _C, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5),  # 7.1: FL FR FC LFE BL BR SL SR
}


def downmix(data: np.ndarray, rule: Downmix = "mean") -> np.ndarray:
    """Mix ``[T, C]`` audio to mono ``[T]`` by ``rule`` (see the module docstring).

    ``"ffmpeg"`` with more than 8 channels falls back to the mean (ffmpeg has no default layout for them either).
    """
    if data.ndim == 1:
        return data
    channels = data.shape[1]
    if channels == 1:
        return data[:, 0]
    if rule == "ffmpeg" and channels in _FFMPEG_MONO_WEIGHTS:
        weights = np.asarray(_FFMPEG_MONO_WEIGHTS[channels], dtype=np.float64)
        return (data.astype(np.float64) @ weights).astype(data.dtype)
    if rule not in ("mean", "ffmpeg"):
        raise ValueError(f"unknown downmix rule {rule!r} (use 'mean' or 'ffmpeg')")
    return data.mean(axis=1)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float signal with soxr (high quality)."""
    if orig_sr == target_sr:
        return audio
    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(audio.dtype, copy=False)


def load_audio(path: Path | str, sr: int | None = None, mono: bool = True,
               downmix_rule: Downmix = "mean") -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 in [-1, 1]; downmix to mono (by ``downmix_rule``) and resample to ``sr`` if given.

    Returns ``(audio, sample_rate)``; ``audio`` is ``[T]`` when mono, else ``[T, C]``. The downmix happens before
    resampling, as in ffmpeg.
    """
    path = Path(path)
    if not path.exists():
        raise AudioReadError(f"{path}: file not found")
    if path.is_dir():
        raise AudioReadError(f"{path}: is a folder, expected an audio file")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioReadError(f"{path}: cannot decode audio ({exc})") from None
    if data.shape[0] == 0:
        raise AudioReadError(f"{path}: contains no samples")
    audio: np.ndarray = downmix(data, downmix_rule) if mono else data
    if sr is not None and sr != file_sr:
        audio = resample(audio, file_sr, sr) if mono else np.stack(
            [resample(np.ascontiguousarray(audio[:, c]), file_sr, sr) for c in range(audio.shape[1])], axis=1)
        file_sr = sr
    return np.ascontiguousarray(audio, dtype=np.float32), int(file_sr)


def float_to_int16(audio: np.ndarray) -> np.ndarray:
    """Float [-1, 1] → int16, clipping out-of-range samples instead of wrapping around."""
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM WAV atomically; float input is scaled from [-1, 1]."""
    pcm = audio if audio.dtype == np.int16 else float_to_int16(np.asarray(audio, dtype=np.float32))
    with atomic_path(Path(path)) as tmp:
        sf.write(str(tmp), pcm, sr, subtype="PCM_16", format="WAV")
