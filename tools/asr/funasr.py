"""FunASR backends: Damo ASR (Paraformer-large + FSMN-VAD + CT-Punc for Chinese, UniASR for Cantonese) and
SenseVoice-Small (zh, en, ja, ko, yue).

Models load from local folders only, named as upstream names them under ``tools/asr/models/`` (or under the
folder the user gives): nothing is downloaded at run time. A missing or incomplete folder is reported before
``funasr`` is even imported (it takes seconds to import), with the folder to create and where its files come
from. ``funasr`` runs without torchaudio: features come from kaldi-native-fbank, audio is decoded by us.

Batching: clips up to :data:`LONG_CLIP_SECONDS` are recognised ``batch_size`` at a time (sorted by length, so
little padding), without the VAD; longer recordings go through the VAD, which cuts them into segments first.
Chinese text then gets CT-Punc punctuation. SenseVoice's tags (``<|zh|><|NEUTRAL|><|Speech|><|woitn|>``) are
removed from the text; its language tag becomes the clip's language.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.asr import BACKENDS, MODELS_DIR, SAMPLE_RATE, BackendUnavailableError, ModelNotFoundError, Transcript

log = logging.getLogger(__name__)

#: Longer clips are cut by the VAD before recognition; shorter ones are recognised whole, in batches.
LONG_CLIP_SECONDS = 30.0
#: Shorter clips hold too few feature frames for the models (FunASR fails on them with a cryptic error).
MIN_CLIP_SECONDS = 0.1
DEFAULT_BATCH_SIZE = 8
MODELSCOPE = "https://www.modelscope.cn/models"
#: What every FunASR PyTorch model folder holds (configuration.json, tokens and am.mvn vary by model).
REQUIRED_FILES = ("config.yaml", "model.pt")
INSTALL_HINT = ("FunASR is not installed in this environment: run `bash install.sh` again (it installs the "
                "funasr version pinned in requirements.txt).")


@dataclass(frozen=True)
class ModelFolder:
    """One FunASR model: its folder name (upstream's, under tools/asr/models/) and where its files come from."""

    name: str
    repository: str  # ModelScope model id
    role: str

    @property
    def source(self) -> str:
        return f"{MODELSCOPE}/{self.repository}/files"


PARAFORMER_ZH = ModelFolder("speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
                            "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
                            "Chinese speech recognition (Paraformer-large)")
VAD_ZH = ModelFolder("speech_fsmn_vad_zh-cn-16k-common-pytorch", "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
                     "voice activity detection (FSMN-VAD)")
PUNC_ZH = ModelFolder("punc_ct-transformer_zh-cn-common-vocab272727-pytorch",
                      "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch", "punctuation (CT-Transformer)")
UNIASR_YUE = ModelFolder("speech_UniASR_asr_2pass-cantonese-CHS-16k-common-vocab1468-tensorflow1-online",
                         "iic/speech_UniASR_asr_2pass-cantonese-CHS-16k-common-vocab1468-tensorflow1-online",
                         "Cantonese speech recognition (UniASR)")
SENSEVOICE = ModelFolder("SenseVoiceSmall", "iic/SenseVoiceSmall", "SenseVoice-Small speech recognition")


@dataclass(frozen=True)
class Pipeline:
    """The models one backend and language run: recognition, plus optional VAD and punctuation."""

    asr: ModelFolder
    vad: ModelFolder | None = None
    punc: ModelFolder | None = None
    tagged: bool = False  # the text carries SenseVoice's <|...|> tags
    batched: bool = True  # FunASR's UniASR decodes one clip per call (its beam search takes the first only)

    def models(self) -> list[ModelFolder]:
        return [m for m in (self.asr, self.vad, self.punc) if m is not None]


def pipeline_for(name: str, language: str) -> Pipeline:
    """Upstream's routing: Damo ASR runs Paraformer + VAD + punctuation for zh and UniASR alone for yue."""
    if name == "sensevoice":
        return Pipeline(SENSEVOICE, VAD_ZH, tagged=True)
    if language == "yue":
        return Pipeline(UNIASR_YUE, batched=False)
    return Pipeline(PARAFORMER_ZH, VAD_ZH, PUNC_ZH)


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a usable FunASR model folder, or ``None`` when it is."""
    if not folder.is_dir():
        return "the folder does not exist"
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    return f"it lacks {', '.join(missing)}" if missing else None


def models_root(model_path: Path | None, pipeline: Pipeline) -> tuple[Path, Path | None]:
    """``(folder holding the model folders, folder of the ASR model if the user pointed at it directly)``.

    ``model_path`` is normally the folder that holds upstream's model folders (tools/asr/models); a user who
    points at the ASR model folder itself gets it used, with VAD and punctuation looked up beside it.
    """
    if model_path is None:
        return MODELS_DIR, None
    model_path = Path(model_path)
    if (model_path / "config.yaml").is_file() and not (model_path / pipeline.asr.name).is_dir():
        return model_path.parent, model_path
    return model_path, None


def missing_models(name: str, language: str, model_path: Path | None = None) -> list[tuple[ModelFolder, Path, str]]:
    """``(model, folder, problem)`` for every model of the pipeline that is not usable on disk."""
    pipeline = pipeline_for(name, language)
    root, asr_folder = models_root(model_path, pipeline)
    problems = []
    for model in pipeline.models():
        folder = asr_folder if (model is pipeline.asr and asr_folder is not None) else root / model.name
        problem = folder_problem(folder)
        if problem:
            problems.append((model, folder, problem))
    return problems


def missing_message(problems: Sequence[tuple[ModelFolder, Path, str]]) -> str:
    lines = [f"The {model.role} model is missing: {folder} ({problem}). Create that folder and put the files "
             f"of {model.repository} in it (from {model.source}; config.yaml, model.pt and the rest)."
             for model, folder, problem in problems]
    return " ".join(lines) + " The ASR model folder (--model-path) is the folder that holds these model folders."


def resolve_models(name: str, language: str, model_path: Path | None = None) -> dict[str, Path]:
    """Role (``asr``/``vad``/``punc``) → model folder; raises :class:`ModelNotFoundError` naming what is missing."""
    problems = missing_models(name, language, model_path)
    if problems:
        raise ModelNotFoundError(missing_message(problems))
    pipeline = pipeline_for(name, language)
    root, asr_folder = models_root(model_path, pipeline)
    folders = {"asr": asr_folder or root / pipeline.asr.name}
    for role, model in (("vad", pipeline.vad), ("punc", pipeline.punc)):
        if model is not None:
            folders[role] = root / model.name
    return folders


class _RootInfoFilter(logging.Filter):
    """FunASR logs through the root logger ("download models from model hub", "Loading pretrained params", a
    warning per model that it trusts no remote code): keep its warnings and errors only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and not record.getMessage().startswith("trust_remote_code")


def _hide_broken_torchaudio() -> None:
    """FunASR catches only ImportError around ``import torchaudio``; a torchaudio built for another torch fails
    with OSError instead. Marking it absent makes FunASR use its kaldi-native-fbank and soundfile paths."""
    if "torchaudio" in sys.modules:
        return
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        pass
    except Exception as exc:  # any failure to load a compiled extension
        log.info("ignoring torchaudio, which does not load here (%s: %s)", type(exc).__name__, exc)
        sys.modules["torchaudio"] = None  # type: ignore[assignment]


@contextlib.contextmanager
def _funasr_output() -> Iterator[None]:
    """FunASR prints notices on stdout (e.g. about ffmpeg, which we do not use): send them to the debug log."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        text = captured.getvalue().strip()
        if text:
            log.debug("funasr: %s", text)


def import_funasr():
    """Import ``funasr`` (seconds: it pulls in transformers and scikit-learn); only an ASR job calls this."""
    _hide_broken_torchaudio()
    # pydub (imported by funasr) warns that ffmpeg is missing; we decode audio ourselves and never need it.
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
    try:
        with _funasr_output():
            import funasr
    except ImportError as exc:
        raise BackendUnavailableError(f"{INSTALL_HINT} ({exc})") from None
    root = logging.getLogger()
    if not any(isinstance(f, _RootInfoFilter) for f in root.filters):
        root.addFilter(_RootInfoFilter())
    return funasr


_TAG = re.compile(r"<\|([^|<>]*)\|>")
SENSEVOICE_LANGUAGES = ("zh", "en", "yue", "ja", "ko")
_CJK = r"[\u2e80-\u9fff\u3000-\u303f\uac00-\ud7af\uff00-\uffef]"


def split_tags(text: str) -> tuple[str, list[str]]:
    """``"<|zh|><|NEUTRAL|><|Speech|><|woitn|>你好"`` → ``("你好", ["zh", "NEUTRAL", "Speech", "woitn"])``."""
    return _TAG.sub(" ", text), _TAG.findall(text)


def tidy_text(text: str) -> str:
    """Collapse whitespace, and drop the spaces FunASR puts between VAD segments of Chinese/Japanese text."""
    text = " ".join(text.split())
    return re.sub(rf"(?<={_CJK}) (?={_CJK})", "", text)


def spoken_language(tags: Sequence[str], requested: str) -> str:
    """The first language tag the model emitted; else the language asked for (``auto`` → ``zh``)."""
    for tag in tags:
        if tag.lower() in SENSEVOICE_LANGUAGES:
            return tag.lower()
    return "zh" if requested == "auto" else requested


class FunASRBackend:
    """One loaded FunASR pipeline (recognition + VAD + punctuation as the backend and language need)."""

    def __init__(self, name: str, language: str, folders: dict[str, Path], device: str = "cpu",
                 batch_size: int = DEFAULT_BATCH_SIZE):
        import torch

        self.name, self.language = name, language
        self.pipeline = pipeline_for(name, language)
        self.batch_size = max(1, batch_size) if self.pipeline.batched else 1
        funasr = import_funasr()
        kwargs: dict = {"model": str(folders["asr"]), "device": device, "disable_update": True,
                        "disable_pbar": True, "ncpu": torch.get_num_threads()}
        if "vad" in folders:
            kwargs["vad_model"] = str(folders["vad"])
            if self.pipeline.tagged:  # SenseVoice is trained on segments of up to 30 s
                kwargs["vad_kwargs"] = {"max_single_segment_time": 30000}
        if "punc" in folders:
            kwargs["punc_model"] = str(folders["punc"])
        log.info("loading FunASR %s", ", ".join(f"{role}: {folder}" for role, folder in folders.items()))
        with _funasr_output():
            self.model = funasr.AutoModel(**kwargs)

    # -- the ASRBackend interface -------------------------------------------------------------------------------
    def transcribe(self, audio: np.ndarray, language: str) -> Transcript:
        return self.transcribe_batch([audio], language)[0]

    def transcribe_batch(self, audios: Sequence[np.ndarray], language: str) -> list[Transcript]:
        """Recognise ``audios`` (float32 ``[T]`` at 16 kHz each); one :class:`Transcript` per clip, in order.

        Raises whatever the model raises; the batch loop then retries the clips one by one.
        """
        too_short = [len(a) / SAMPLE_RATE for a in audios if len(a) < MIN_CLIP_SECONDS * SAMPLE_RATE]
        if too_short:
            raise ValueError(f"clip too short to recognise ({too_short[0]:.3f} s; at least {MIN_CLIP_SECONDS} s)")
        texts: list[str] = [""] * len(audios)
        short = [i for i, a in enumerate(audios) if len(a) <= LONG_CLIP_SECONDS * SAMPLE_RATE]
        if short:
            for i, text in zip(short, self._recognise_short([audios[i] for i in short], language), strict=True):
                texts[i] = text
        for i in (i for i in range(len(audios)) if i not in short):
            texts[i] = self._recognise_long(audios[i], language)
        return [self._transcript(text, language) for text in texts]

    # -- internals ---------------------------------------------------------------------------------------------
    def _options(self, language: str) -> dict:
        if self.pipeline.tagged:  # SenseVoice: the language to expect ("auto" detects it), with ITN
            return {"language": language, "use_itn": True}
        return {}

    def _recognise_short(self, audios: list[np.ndarray], language: str) -> list[str]:
        """Whole clips, longest first in one padded batch (``AutoModel.inference`` runs no VAD)."""
        with _funasr_output():
            order = sorted(range(len(audios)), key=lambda i: -len(audios[i]))
            results = self.model.inference([audios[i] for i in order], batch_size=len(audios),
                                           **self._options(language))
            if len(results) != len(audios):  # FunASR answers one empty result for a batch with no tokens at all
                if len(audios) > 1:
                    return [self._recognise_short([a], language)[0] for a in audios]
                results = [{"text": ""}] * len(audios)
            texts = [""] * len(audios)
            for rank, result in zip(order, results, strict=True):
                texts[rank] = self._punctuate(str(result.get("text", "")))
        return texts

    def _punctuate(self, text: str) -> str:
        if self.model.punc_model is None or not text.strip():
            return text
        result = self.model.inference(text, model=self.model.punc_model, kwargs=self.model.punc_kwargs)
        return str(result[0].get("text", text)) if result else text

    def _recognise_long(self, audio: np.ndarray, language: str) -> str:
        """VAD segments → recognition → (punctuation): FunASR's own long-audio pipeline."""
        with _funasr_output():
            if self.model.vad_model is None:  # UniASR Cantonese runs without a VAD, as upstream does
                results = self.model.inference([audio], **self._options(language))
                return self._punctuate(str(results[0].get("text", ""))) if results else ""
            results = self.model.generate(input=audio, fs=SAMPLE_RATE, **self._options(language))
        return str(results[0].get("text", "")) if results else ""

    def _transcript(self, text: str, language: str) -> Transcript:
        if self.pipeline.tagged:
            text, tags = split_tags(text)
            return Transcript(tidy_text(text), spoken_language(tags, language))
        return Transcript(tidy_text(text), self.language)


def load(name: str, size: str, precision: str, device: str, model_path: Path | None,
         allow_download: bool, language: str | None = None, batch_size: int | None = None) -> FunASRBackend:
    """Entry point used by :func:`tools.asr.load_backend`. ``allow_download`` is ignored: FunASR models are
    never downloaded at run time. The model folders are checked before funasr is imported."""
    language = language or BACKENDS[name].default_language
    if language not in BACKENDS[name].languages:  # the .list language column must be a real language
        raise ValueError(f"{name} has no language {language!r}; choose one of {', '.join(BACKENDS[name].languages)}.")
    folders = resolve_models(name, language, model_path)
    return FunASRBackend(name, language, folders, device, batch_size or DEFAULT_BATCH_SIZE)
