"""Audio I/O shared by the tools and the library: decode with soundfile, resample with soxr, write atomically.

No ffmpeg and no torchaudio: soundfile (libsndfile) reads wav, flac, ogg/vorbis/opus and mp3.
"""

from __future__ import annotations

from pathlib import Path

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


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float signal with soxr (high quality)."""
    if orig_sr == target_sr:
        return audio
    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(audio.dtype, copy=False)


def load_audio(path: Path | str, sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 in [-1, 1]; downmix to mono (channel mean) and resample to ``sr`` if given.

    Returns ``(audio, sample_rate)``; ``audio`` is ``[T]`` when mono, else ``[T, C]``.
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
    audio: np.ndarray = data.mean(axis=1) if mono else data
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
