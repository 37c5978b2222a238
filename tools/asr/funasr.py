"""FunASR backends: classic Chinese (Paraformer-large + FSMN-VAD + CT-Punc), Cantonese (UniASR), SenseVoice.

The ``funasr`` package is imported lazily, only when one of these backends is chosen. It is *not* in our
requirements: its feature extractor imports ``torchaudio``, which has no build for the torch version we pin.
A user who has a working FunASR installation (with a matching torchaudio) can use these backends as they are.

Models are ModelScope repositories; a local copy is looked up in ``tools/asr/models/<repository name>``
(upstream's layout), else FunASR downloads it from ModelScope when the machine is online.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.asr import (
    MODELS_DIR,
    SAMPLE_RATE,
    BackendUnavailableError,
    ModelNotFoundError,
    Transcript,
    is_online,
    model_missing_message,
)

log = logging.getLogger(__name__)

MODEL_REVISION = "v2.0.4"
PARAFORMER_ZH = "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
VAD_ZH = "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
PUNC_ZH = "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch"
UNIASR_YUE = "iic/speech_UniASR_asr_2pass-cantonese-CHS-16k-common-vocab1468-tensorflow1-online"
SENSEVOICE = "iic/SenseVoiceSmall"

INSTALL_HINT = ("FunASR is not installed. It needs `pip install funasr` plus a torchaudio build matching your "
                "torch (its feature extractor imports torchaudio, which is why it is not in requirements.txt). "
                "Use the faster-whisper backend instead, or install both by hand.")


@dataclass(frozen=True)
class ModelSet:
    """The ModelScope repositories one FunASR pipeline needs (VAD and punctuation are optional)."""

    asr: str
    vad: str | None = None
    punc: str | None = None

    def repositories(self) -> list[str]:
        return [r for r in (self.asr, self.vad, self.punc) if r]


def model_set(name: str, language: str) -> ModelSet:
    """Which models backend ``name`` uses for ``language`` (upstream's routing)."""
    if name == "sensevoice":
        return ModelSet(SENSEVOICE, VAD_ZH)
    if language == "yue":
        return ModelSet(UNIASR_YUE)  # upstream runs the Cantonese model without VAD and punctuation
    return ModelSet(PARAFORMER_ZH, VAD_ZH, PUNC_ZH)


def local_folder(repository: str, models_dir: Path = MODELS_DIR) -> Path:
    return models_dir / repository.split("/")[-1]


def resolve_models(models: ModelSet, models_dir: Path = MODELS_DIR, allow_download: bool = True,
                   online: bool | None = None) -> dict[str, str]:
    """Repository → local folder if present, else the repository id (FunASR downloads it from ModelScope).

    Raises :class:`ModelNotFoundError` naming the first missing model when downloading is not possible.
    """
    resolved: dict[str, str] = {}
    for repo in models.repositories():
        folder = local_folder(repo, models_dir)
        if folder.is_dir() and any(folder.iterdir()):
            resolved[repo] = str(folder)
            continue
        if online is None:
            online = allow_download and is_online("www.modelscope.cn")
        if not (allow_download and online):
            raise ModelNotFoundError(model_missing_message(repo, folder, f"https://www.modelscope.cn/models/{repo}"))
        resolved[repo] = repo
    return resolved


def _import_funasr():
    try:
        import funasr
    except ImportError as exc:
        raise BackendUnavailableError(f"{INSTALL_HINT} ({exc})") from None
    return funasr


class FunASRBackend:
    """A FunASR ``AutoModel`` pipeline per language, built on first use."""

    def __init__(self, name: str, device: str = "cpu", models_dir: Path = MODELS_DIR, allow_download: bool = True):
        self.funasr = _import_funasr()
        self.name, self.device, self.models_dir, self.allow_download = name, device, models_dir, allow_download
        self._pipelines: dict[str, object] = {}

    def _pipeline(self, language: str):
        models = model_set(self.name, language)
        if models.asr not in self._pipelines:
            where = resolve_models(models, self.models_dir, self.allow_download)
            kwargs = {"model": where[models.asr], "device": self.device, "disable_update": True}
            if models.vad:
                kwargs["vad_model"] = where[models.vad]
            if models.punc:
                kwargs["punc_model"] = where[models.punc]
            if models.asr != SENSEVOICE:
                kwargs["model_revision"] = MODEL_REVISION
            self._pipelines[models.asr] = self.funasr.AutoModel(**kwargs)
        return self._pipelines[models.asr]

    def transcribe(self, audio: np.ndarray, language: str) -> Transcript:
        pipeline = self._pipeline(language)
        if self.name == "sensevoice":
            result = pipeline.generate(input=audio, fs=SAMPLE_RATE, language=language, use_itn=True)
            from funasr.utils.postprocess_utils import rich_transcription_postprocess

            text = rich_transcription_postprocess(result[0]["text"])
        else:
            result = pipeline.generate(input=audio, fs=SAMPLE_RATE)
            text = result[0]["text"]
        return Transcript(text, "zh" if language == "auto" else language)


def load(name: str, size: str, precision: str, device: str, model_path: Path | None,
         allow_download: bool, language: str | None = None) -> FunASRBackend:
    """Entry point used by :func:`tools.asr.load_backend` (``model_path`` replaces ``tools/asr/models``)."""
    backend = FunASRBackend(name, device, Path(model_path) if model_path else MODELS_DIR, allow_download)
    # Fail at once, not on the first clip, when the models are missing.
    resolve_models(model_set(name, language or "zh"), backend.models_dir, allow_download)
    return backend
