"""Batch speech recognition (tab 0c): transcribe a folder of clips into a ``.list`` label file.

Backends sit behind one small interface, :class:`ASRBackend` (``transcribe(audio_16k, language)``; a backend
that recognises several clips at once also has ``transcribe_batch`` and ``batch_size``), and are listed in
:data:`BACKENDS` with the languages, sizes and precisions the launcher offers, in upstream's menu order. Models
come from local folders named as upstream names them under ``tools/asr/models/`` (or under the folder the user
gives). faster-whisper alone may download its model there on first use when the machine is online; FunASR
models are never downloaded at run time. A missing model stops the job at once with
:class:`ModelNotFoundError`, whose message names the folder to create and where its files come from.

CLI: ``python -m tools.asr -i <clips> -o <output folder> [--backend funasr|sensevoice|faster-whisper] [-l zh]``.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

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
#: The launcher's first choice, as upstream's: Damo ASR (most users transcribe Chinese).
DEFAULT_ASR_BACKEND = "funasr"


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


@runtime_checkable
class BatchASRBackend(ASRBackend, Protocol):
    """A backend that recognises up to ``batch_size`` clips in one model call."""

    batch_size: int

    def transcribe_batch(self, audios: Sequence[np.ndarray], language: str) -> list[Transcript]:
        """One transcript per clip, in order; raises if the model fails (the loop then retries clip by clip)."""
        ...


@dataclass(frozen=True)
class BackendInfo:
    """What the launcher shows for a backend: choices and defaults (first language, last size)."""

    name: str
    module: str  # tools.asr.<module> defines load(name, size, precision, device, model_path, ...)
    languages: tuple[str, ...]
    sizes: tuple[str, ...]
    precisions: tuple[str, ...]
    label: str = ""  # upstream's menu name (the launcher translates it)
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


#: Upstream's menu, minus Fun-ASR-Nano (see docs/dataset_tools.md): Damo ASR, SenseVoice, Faster Whisper.
BACKENDS: dict[str, BackendInfo] = {
    "funasr": BackendInfo(
        "funasr", "funasr", ("zh", "yue"), ("large",), ("float32",), "Damo ASR (Chinese classic)",
        "Chinese: Paraformer-large + FSMN-VAD + CT-Punc; Cantonese: UniASR."),
    "sensevoice": BackendInfo(
        "sensevoice", "funasr", ("auto", "zh", "en", "ja", "ko", "yue"), ("small",), ("float32",),
        "SenseVoice (fast, 5 languages)", "SenseVoice-Small through FunASR, with FSMN-VAD for long recordings."),
    "faster-whisper": BackendInfo(
        "faster-whisper", "faster_whisper", ("auto", "en", "ja", "ko", "zh", "yue"),
        ("medium", "medium.en", "large-v2", "large-v3-turbo", "large-v3"), ("float32", "float16", "int8"),
        "Faster Whisper (multilingual)", "Multilingual (CTranslate2 Whisper)."),
}


def load_backend(name: str, size: str | None = None, precision: str | None = None, device: str = "cpu",
                 model_path: Path | None = None, allow_download: bool = True,
                 language: str | None = None, batch_size: int | None = None) -> ASRBackend:
    """Build backend ``name``; raises :class:`ModelNotFoundError` / :class:`BackendUnavailableError`.

    ``model_path``: the folder holding the model folders (default tools/asr/models), or one model's folder.
    ``language`` picks the models (FunASR: zh vs yue); ``batch_size``: clips per model call where the backend
    batches (None: its default).
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
                       allow_download=allow_download, language=language, batch_size=batch_size)


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
    """Transcribe ``files`` into ``list_path``, lines in the order of ``files``; a failing clip is reported, not fatal.

    A batching backend gets up to ``batch_size`` decoded clips per call; when a batch fails, its clips are
    retried one by one so that only the clip at fault is lost. Progress counts every file, failed or not.
    """
    report = ASRReport(Path(list_path))
    entries: dict[int, LabelEntry] = {}
    batch_size = backend.batch_size if isinstance(backend, BatchASRBackend) else 1
    pending: list[tuple[int, Path, np.ndarray]] = []
    done = 0

    def settle(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, len(files))

    def flush() -> None:
        outcomes = _recognise(backend, [audio for _, _, audio in pending], language)
        for (index, path, _), outcome in zip(pending, outcomes, strict=True):
            _record(outcome, index, path, language, speaker, entries, report)
        settle(len(pending))
        pending.clear()

    for index, path in enumerate(files):
        try:
            audio, _ = load_audio(path, sr=SAMPLE_RATE)
        except (AudioReadError, OSError) as exc:
            record_failure(log, report.failed, path, exc)
            settle(1)
            continue
        pending.append((index, path, audio))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    report.written = len(entries)
    if entries:
        write_list(report.list_path, [entries[i] for i in sorted(entries)])
    return report


def _recognise(backend: ASRBackend, audios: list[np.ndarray], language: str) -> list[Transcript | Exception]:
    """Transcripts for ``audios``, or per clip the exception its recognition raised."""
    if len(audios) > 1 and isinstance(backend, BatchASRBackend):
        try:
            transcripts = list(backend.transcribe_batch(audios, language))
            if len(transcripts) != len(audios):
                raise RuntimeError(f"the backend returned {len(transcripts)} transcripts for {len(audios)} clips")
            return transcripts
        except Exception as exc:  # model code may raise anything; the clips are retried alone
            log.warning("a batch of %d clips failed (%s: %s); retrying them one by one",
                        len(audios), type(exc).__name__, exc)
    outcomes: list[Transcript | Exception] = []
    for audio in audios:
        try:
            outcomes.append(backend.transcribe(audio, language))
        except Exception as exc:  # reported for this clip, the job goes on
            outcomes.append(exc)
    return outcomes


def _record(outcome: Transcript | Exception, index: int, path: Path, language: str, speaker: str,
            entries: dict[int, LabelEntry], report: ASRReport) -> None:
    if isinstance(outcome, Exception):
        record_failure(log, report.failed, path, outcome)
        return
    text = _clean_text(outcome.text)
    if not text:
        record_failure(log, report.failed, path, ValueError("no speech was recognised"))
        return
    lang = (outcome.language or language).upper()
    entries[index] = LabelEntry(str(Path(path).resolve()), speaker, lang, text)
    log.info("%s [%s] %s", Path(path).name, lang, text)


def clips_in(input_dir: Path) -> list[Path]:
    """The audio files of ``input_dir``, sorted by name; raises ``FileNotFoundError`` when there are none."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"Input folder not found: {input_dir} (give the folder of sliced clips).")
    files = list_audio_files(input_dir)
    if not files:
        raise FileNotFoundError(f"No audio files in {input_dir}.")
    return files


def transcribe_folder(input_dir: Path, output_dir: Path, backend: ASRBackend, language: str = "auto",
                      progress: ProgressCallback | None = None) -> ASRReport:
    """Transcribe every audio file of ``input_dir`` (sorted by name) into ``<output_dir>/<input name>.list``.

    The speaker field is the input folder's name, as upstream writes it.
    """
    files = clips_in(input_dir)
    list_path = list_path_for(input_dir, output_dir)
    return transcribe_files(files, backend, language, Path(input_dir).resolve().name, list_path, progress)
