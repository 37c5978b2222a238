"""faster-whisper backend (CTranslate2 Whisper): multilingual, sizes medium … large-v3-turbo.

Model folders are CTranslate2 conversions (``model.bin``, ``config.json``, ``tokenizer.json``,
``vocabulary.*``), looked up in ``tools/asr/models/faster-whisper-<size>`` as upstream does; the user may give
another folder holding ``faster-whisper-<size>``, or the model folder itself. Decoding follows upstream: beam 5,
VAD filter with 700 ms minimum silence, language ``None`` for auto-detection; clips detected as Chinese or
Cantonese are re-transcribed with FunASR's Damo ASR when its models are in the same models folder (Whisper is
weak there), else Whisper's text is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tools.asr import (
    MODELS_DIR,
    BackendUnavailableError,
    ModelNotFoundError,
    Transcript,
    is_online,
    model_missing_message,
)

log = logging.getLogger(__name__)

#: HF repositories of the CTranslate2 conversions upstream downloads.
REPOSITORIES = {
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}
REQUIRED_FILES = ("model.bin", "config.json")
BEAM_SIZE = 5
VAD_MIN_SILENCE_MS = 700


def canonical_size(size: str) -> str:
    return "large-v3" if size == "large" else size


def default_model_folder(size: str, models_dir: Path | None = None) -> Path:
    return Path(models_dir or MODELS_DIR) / f"faster-whisper-{canonical_size(size)}"


def is_model_folder(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def resolve_model(size: str, model_path: Path | None = None, allow_download: bool = True) -> Path:
    """The folder holding the model for ``size``: the user's model folder, ``faster-whisper-<size>`` in the user's
    models folder (default tools/asr/models), or a fresh download into it."""
    size = canonical_size(size)
    models_dir = None
    if model_path is not None:
        if is_model_folder(Path(model_path)):
            return Path(model_path)
        models_dir = Path(model_path)  # the folder that holds (or will hold) faster-whisper-<size>
    folder = default_model_folder(size, models_dir)
    if is_model_folder(folder):
        return folder
    repo = REPOSITORIES[size]
    if not allow_download or not is_online():
        raise ModelNotFoundError(model_missing_message(f"faster-whisper {size}", folder,
                                                       f"https://huggingface.co/{repo}"))
    return _download(repo, folder)


def _download(repo: str, folder: Path) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    log.info("downloading %s into %s (first use)", repo, folder)
    try:
        snapshot_download(repo, local_dir=folder,
                          allow_patterns=["*.json", "*.bin", "*.txt", "vocabulary.*", "tokenizer*"])
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise ModelNotFoundError(f"Downloading {repo} into {folder} failed ({exc}). "
                                 f"Download it by hand from https://huggingface.co/{repo}.") from None
    if not is_model_folder(folder):
        raise ModelNotFoundError(f"Download of {repo} into {folder} is incomplete; delete the folder and retry.")
    return folder


def compute_type_for(precision: str, device: str) -> str:
    """CTranslate2 has no fast float16 on CPU: fall back to float32 there (int8 stays int8)."""
    if precision == "float16" and not device.startswith("cuda"):
        log.info("float16 is not supported on CPU; using float32")
        return "float32"
    return precision


class FasterWhisperBackend:
    """One loaded CTranslate2 Whisper model."""

    def __init__(self, model_dir: Path, device: str = "cpu", precision: str = "int8",
                 chinese_fallback: bool = True, models_dir: Path | None = None):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise BackendUnavailableError("faster-whisper is not installed; run "
                                          "`pip install faster-whisper` (see requirements.txt).") from None
        dev, _, index = device.partition(":")
        self.model = WhisperModel(str(model_dir), device=dev, device_index=int(index or 0),
                                  compute_type=compute_type_for(precision, device), local_files_only=True)
        self.device = device
        self.chinese_fallback = chinese_fallback
        self.models_dir = models_dir  # where the FunASR model folders of the Chinese fallback are looked up
        self._chinese: dict[str, object] = {}  # language → FunASR backend, or the error that made it unusable

    def transcribe(self, audio: np.ndarray, language: str) -> Transcript:
        lang = None if language == "auto" else language
        segments, info = self.model.transcribe(audio, language=lang, beam_size=BEAM_SIZE, vad_filter=True,
                                               vad_parameters={"min_silence_duration_ms": VAD_MIN_SILENCE_MS})
        text = "".join(segment.text for segment in segments).strip()
        detected = (info.language or language).lower()
        if detected in ("zh", "yue") and self.chinese_fallback:
            better = self._funasr_text(audio, detected)
            if better:
                text = better
        return Transcript(text, detected)

    def _funasr_text(self, audio: np.ndarray, language: str) -> str | None:
        backend = self._chinese.get(language)
        if backend is None:
            from tools.asr import load_backend

            try:
                backend = load_backend("funasr", device=self.device, model_path=self.models_dir, language=language)
            except (BackendUnavailableError, ModelNotFoundError) as exc:
                log.warning("clip is %s; keeping Whisper's text because FunASR is unavailable: %s", language, exc)
                backend = exc
            self._chinese[language] = backend
        if isinstance(backend, Exception):
            return None
        return backend.transcribe(audio, language).text  # type: ignore[attr-defined]


def load(name: str, size: str, precision: str, device: str, model_path: Path | None,
         allow_download: bool, language: str | None = None, batch_size: int | None = None) -> FasterWhisperBackend:
    """Entry point used by :func:`tools.asr.load_backend` (``batch_size`` is ignored: clips go one at a time)."""
    folder = resolve_model(size, model_path, allow_download)
    log.info("faster-whisper model %s on %s (%s)", folder, device, precision)
    return FasterWhisperBackend(folder, device, precision, models_dir=folder.parent)
