"""Batch speech recognition (tab 0c): transcribe a folder of clips into a ``.list`` label file.

Backends sit behind one small interface, :class:`ASRBackend` (``transcribe(audio_16k, language)``), and are
listed in :data:`BACKENDS` with the languages, sizes and precisions the launcher offers. A backend's model
comes from a local folder (``tools/asr/models/<name>`` or a path the user gives) or, when the machine is
online, is downloaded there on first use; offline with no model the job fails at once with
:class:`ModelNotFoundError`, whose message names the model and where to put it.

CLI: ``python -m tools.asr -i <clips> -o <output folder> [--backend faster-whisper] [-s large-v3] [-l auto]``.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from GPT_SoVITS.audio import AudioReadError, list_audio_files, load_audio
from GPT_SoVITS.labels import LabelEntry, write_list
from GPT_SoVITS.logs import ProgressCallback
from GPT_SoVITS.paths import REPO_ROOT
from tools._cli import record_failure

log = logging.getLogger(__name__)

#: Every backend receives 16 kHz mono float32 audio.
SAMPLE_RATE = 16000
MODELS_DIR = REPO_ROOT / "tools" / "asr" / "models"
DEFAULT_OUTPUT_DIR = Path("output") / "asr_opt"


class ASRError(RuntimeError):
    """Base class of the errors that stop a whole ASR job (as opposed to one clip failing)."""


class ModelNotFoundError(ASRError, FileNotFoundError):
    """The backend's model is not on disk and cannot be downloaded; the message says what to put where."""


class BackendUnavailableError(ASRError):
    """The backend's Python package is not installed or cannot run here; the message says what to do."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # code of the language spoken (as the backend reports it, lower case)


class ASRBackend(Protocol):
    """What the batch loop needs from a backend."""

    def transcribe(self, audio: np.ndarray, language: str) -> Transcript:
        """Transcribe one clip. ``audio``: float32 ``[T]`` at 16 kHz; ``language``: a code or ``"auto"``."""
        ...


@dataclass(frozen=True)
class BackendInfo:
    """What the launcher shows for a backend: choices and defaults (first language, last size)."""

    name: str
    module: str  # tools.asr.<module> defines load(name, size, precision, device, model_path, ...)
    languages: tuple[str, ...]
    sizes: tuple[str, ...]
    precisions: tuple[str, ...]
    description: str = ""

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def default_size(self) -> str:
        return self.sizes[-1]

    def default_precision(self, cuda: bool = False) -> str:
        """Upstream's choice: faster-whisper uses float16 on a GPU and int8 on CPU; others use float32."""
        if "int8" in self.precisions and not cuda:
            return "int8"
        return "float16" if cuda and "float16" in self.precisions else "float32"


BACKENDS: dict[str, BackendInfo] = {
    "faster-whisper": BackendInfo(
        "faster-whisper", "faster_whisper", ("auto", "en", "ja", "ko", "zh", "yue"),
        ("medium", "medium.en", "large-v2", "large-v3-turbo", "large-v3"), ("float32", "float16", "int8"),
        "Multilingual (CTranslate2 Whisper)."),
    "funasr": BackendInfo(
        "funasr", "funasr", ("zh", "yue"), ("large",), ("float32",),
        "Chinese: Paraformer-large + FSMN-VAD + CT-Punc; Cantonese: UniASR."),
    "sensevoice": BackendInfo(
        "sensevoice", "funasr", ("auto", "zh", "en", "ja", "ko", "yue"), ("small",), ("float32",),
        "SenseVoice-Small through FunASR (fast, 5 languages)."),
}


def load_backend(name: str, size: str | None = None, precision: str | None = None, device: str = "cpu",
                 model_path: Path | None = None, allow_download: bool = True,
                 language: str | None = None) -> ASRBackend:
    """Build backend ``name``; raises :class:`ModelNotFoundError` / :class:`BackendUnavailableError`.

    ``language`` lets a backend check up front the models that language needs (FunASR: zh vs yue).
    """
    info = BACKENDS.get(name)
    if info is None:
        raise ValueError(f"Unknown ASR backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    size = size or info.default_size
    if size not in info.sizes and not (name == "faster-whisper" and size == "large"):
        raise ValueError(f"{name} has no model size {size!r}; choose one of {', '.join(info.sizes)}.")
    precision = precision or info.default_precision(device.startswith("cuda"))
    if precision not in info.precisions:
        raise ValueError(f"{name} has no precision {precision!r}; choose one of {', '.join(info.precisions)}.")
    module = importlib.import_module(f"tools.asr.{info.module}")
    return module.load(name=name, size=size, precision=precision, device=device, model_path=model_path,
                       allow_download=allow_download, language=language)


def is_online(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """A quick reachability probe, so an offline machine fails at once instead of waiting on retries."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def model_missing_message(model: str, folder: Path, source: str) -> str:
    return (f"ASR model {model} not found in {folder} and the machine is offline (or downloads are off). "
            f"Download it from {source} and put its files in {folder}, or give its folder with --model-path.")


def list_path_for(input_dir: Path, output_dir: Path) -> Path:
    """Upstream's output name: ``<output_dir>/<input folder name>.list``."""
    return Path(output_dir) / f"{Path(input_dir).resolve().name}.list"


@dataclass
class ASRReport:
    list_path: Path
    written: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.written} clip(s) transcribed into {self.list_path}"
        return text + (f"; {len(self.failed)} clip(s) failed" if self.failed else "")


def _clean_text(text: str) -> str:
    # '|' separates the .list fields and a newline would split the line: neither may reach the file.
    return " ".join(text.replace("|", " ").split())


def transcribe_files(files: Sequence[Path], backend: ASRBackend, language: str, speaker: str,
                     list_path: Path, progress: ProgressCallback | None = None) -> ASRReport:
    """Transcribe ``files`` in the given order into ``list_path``; a failing clip is reported, not fatal."""
    report = ASRReport(Path(list_path))
    entries: list[LabelEntry] = []
    for done, path in enumerate(files, start=1):
        try:
            audio, _ = load_audio(path, sr=SAMPLE_RATE)
            result = backend.transcribe(audio, language)
            text = _clean_text(result.text)
            if not text:
                raise ValueError("no speech was recognised")
        except (AudioReadError, RuntimeError, ValueError, OSError) as exc:
            record_failure(log, report.failed, path, exc)
        else:
            lang = (result.language or language).upper()
            entries.append(LabelEntry(str(Path(path).resolve()), speaker, lang, text))
            log.info("%s [%s] %s", path.name, lang, text)
        if progress:
            progress(done, len(files))
    report.written = len(entries)
    if entries:
        write_list(report.list_path, entries)
    return report


def transcribe_folder(input_dir: Path, output_dir: Path, backend: ASRBackend, language: str = "auto",
                      progress: ProgressCallback | None = None) -> ASRReport:
    """Transcribe every audio file of ``input_dir`` (sorted by name) into ``<output_dir>/<input name>.list``.

    The speaker field is the input folder's name, as upstream writes it.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"Input folder not found: {input_dir} (give the folder of sliced clips).")
    files = list_audio_files(input_dir)
    if not files:
        raise FileNotFoundError(f"No audio files in {input_dir}.")
    list_path = list_path_for(input_dir, output_dir)
    return transcribe_files(files, backend, language, input_dir.resolve().name, list_path, progress)
