"""The pieces the engine is built from, behind small interfaces so tests can build them tiny.

* :class:`ModelPair`: the loaded GPT and SoVITS models (one immutable snapshot; switching makes a new one).
* :class:`TextFeaturizer`: text + language code → phone ids, phone-level BERT features, normalised text.
* the SSL featurizer: 16 kHz waveform → HuBERT features ``[1, 768, T50]`` (any callable).
* the speaker encoder (v2Pro/v2ProPlus): 32 kHz waveform → speaker-verification embedding ``[1, D]`` (any
  callable), and the mel vocoder (v4): normalised-free log-mel ``[1, 100, T]`` → audio ``[1, 1, 480·T]``; each held
  by a :class:`LazySlot` that loads it the first time a model needs one.

:func:`load_model_pair`, :func:`default_text_featurizer`, :func:`load_speaker_encoder` and :func:`load_vocoder_model`
build the real ones from files.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np
import torch

from GPT_SoVITS.paths import PretrainedPaths
from GPT_SoVITS.versions import VersionSpec, version_spec

log = logging.getLogger(__name__)
T = TypeVar("T")

#: 16 kHz waveform (float32, [-1, 1]) → HuBERT features [1, hidden, T50] on the model's device.
SSLFeaturizer = Callable[[np.ndarray], torch.Tensor]
#: 32 kHz waveform (float32, [-1, 1]) → speaker-verification embedding [1, D] on the model's device.
SpeakerEncoder = Callable[[np.ndarray], torch.Tensor]

_generation = itertools.count(1)


class ModelMismatchError(ValueError):
    """The GPT and SoVITS files cannot work together (e.g. a v2 SoVITS with a v1 GPT phone table)."""


@dataclass(frozen=True)
class TextFeatures:
    """One piece of text as the GPT reads it."""

    phones: list[int]  # phone ids in the model version's symbol table
    bert: torch.Tensor  # [bert_dim, len(phones)] phone-level features (zeros for non-Chinese segments)
    norm_text: str


class TextFeaturizer(Protocol):
    def __call__(self, text: str, lang: str, version: str) -> TextFeatures: ...


@dataclass(frozen=True)
class ModelPair:
    """A GPT (text→semantic) and a SoVITS (semantic→audio) model that are used together."""

    t2s: torch.nn.Module  # Text2SemanticDecoder
    sovits: torch.nn.Module  # SynthesizerTrn (inference layout)
    gpt_path: Path | None = None
    sovits_path: Path | None = None
    generation: int = field(default_factory=lambda: next(_generation))  # identifies this pair in caches

    @property
    def version(self) -> str:
        """Model version of the SoVITS side (v1, v2, v2Pro…): decides the phone table, languages and pipeline."""
        return str(self.sovits.cfg.version)

    @property
    def spec(self) -> VersionSpec:
        return version_spec(self.version)

    @property
    def needs_speaker_encoder(self) -> bool:
        """Whether references need a speaker-verification embedding (v2Pro/v2ProPlus)."""
        return self.spec.uses_sv_embedding

    @property
    def needs_vocoder(self) -> bool:
        """Whether the SoVITS makes a mel that a separate vocoder turns into audio (v4)."""
        return bool(self.spec.pretrained_vocoder)

    @property
    def sample_rate(self) -> int:
        """Of the audio this pair makes (32 kHz; v4 48 kHz)."""
        return self.spec.sample_rate

    @property
    def device(self) -> torch.device:
        return next(self.t2s.parameters()).device

    def check(self) -> None:
        """Raise :class:`ModelMismatchError` if the GPT cannot read this SoVITS version's phone ids."""
        from GPT_SoVITS.text.symbols import symbols

        needed = len(symbols(self.version))
        have = int(self.t2s.cfg.phoneme_vocab_size)
        if have < needed:
            raise ModelMismatchError(
                f"The GPT model {self.gpt_path or ''} reads {have} phone ids but the {self.version} SoVITS model "
                f"{self.sovits_path or ''} uses {needed}; pick a GPT file of the same version (a v1 GPT has 512, "
                "v2 has 732).")

    def with_gpt(self, t2s: torch.nn.Module, path: Path | None) -> ModelPair:
        return ModelPair(t2s, self.sovits, path, self.sovits_path)

    def with_sovits(self, sovits: torch.nn.Module, path: Path | None) -> ModelPair:
        return ModelPair(self.t2s, sovits, self.gpt_path, path)


def load_gpt(path: Path, device: str, dtype: torch.dtype) -> torch.nn.Module:
    from GPT_SoVITS.models import load_t2s

    model, _ = load_t2s(Path(path), device=device, dtype=dtype)
    return model


def load_sovits_model(path: Path, device: str, dtype: torch.dtype,
                      pretrained: PretrainedPaths | None = None) -> torch.nn.Module:
    """Any version's SoVITS model (a v4 LoRA release is merged into ``pretrained``'s base model)."""
    from GPT_SoVITS.models import load_sovits

    model, _ = load_sovits(Path(path), device=device, dtype=dtype, for_inference=True, pretrained=pretrained)
    return model


def load_model_pair(gpt: Path, sovits: Path, device: str = "cpu", half: bool = False,
                    pretrained: PretrainedPaths | None = None) -> ModelPair:
    """Load both weight files (any container the checkpoint readers accept) and check they fit together."""
    dtype = torch.float16 if half else torch.float32
    pair = ModelPair(load_gpt(gpt, device, dtype), load_sovits_model(sovits, device, dtype, pretrained), Path(gpt),
                     Path(sovits))
    pair.check()
    log.info("models ready: GPT %s, SoVITS %s (%s, %s, %s)", gpt, sovits, pair.version, device, dtype)
    return pair


class LazySlot(Generic[T]):
    """A model an engine needs only for some versions: given, or loaded (once, thread-safe) when first needed.

    An engine serving v2 models never loads the speaker-verification model or the v4 vocoder; switching to a
    model that needs one loads it then (a missing file is reported at the switch, and the current models stay).
    """

    def __init__(self, value: T | None = None, loader: Callable[[], T] | None = None, what: str = "model") -> None:
        self._value = value
        self._loader = loader
        self._what = what
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                if self._loader is None:
                    raise ModelMismatchError(f"This SoVITS model needs the {self._what}, and this engine was built "
                                             "without one.")
                self._value = self._loader()
            return self._value


def load_speaker_encoder(path: Path, device: str = "cpu", half: bool = False) -> SpeakerEncoder:
    """The ERes2NetV2 speaker-verification model as a :data:`SpeakerEncoder` (spec §13.3)."""
    from functools import partial

    from GPT_SoVITS.checkpoints import require_file

    require_file(Path(path))  # the missing-file message names the model and where it goes
    from GPT_SoVITS.features.sv import embed_wave, load_sv

    model = load_sv(Path(path), device, torch.float16 if half else torch.float32)
    log.info("speaker-verification model ready: %s", path)
    return partial(embed_wave, model)


def load_vocoder_model(path: Path, device: str = "cpu", half: bool = False) -> torch.nn.Module:
    """The v4 48 kHz vocoder (``gsv-v4-pretrained/vocoder.pth``), in eval mode."""
    from GPT_SoVITS.models.vocoder import load_vocoder

    vocoder = load_vocoder(Path(path), device, torch.float16 if half else torch.float32)
    log.info("vocoder ready: %s", path)
    return vocoder


def load_ssl_featurizer(pretrained: PretrainedPaths, device: str = "cpu", half: bool = False) -> SSLFeaturizer:
    from GPT_SoVITS.features.hubert import HubertFeaturizer

    return HubertFeaturizer.from_pretrained(pretrained.hubert, device, torch.float16 if half else torch.float32)


class FrontendFeaturizer:
    """:class:`TextFeaturizer` over the project's text front-end: one BERT model, one front-end per version."""

    def __init__(self, bert: object | None) -> None:
        self.bert = bert
        self._frontends: dict[str, object] = {}

    def __call__(self, text: str, lang: str, version: str) -> TextFeatures:
        from GPT_SoVITS.text.frontend import TextFrontend

        frontend = self._frontends.get(version)
        if frontend is None:
            frontend = self._frontends[version] = TextFrontend(self.bert, version)
        result = frontend(text, lang)
        return TextFeatures(list(result.phone_ids), result.bert, result.norm_text)


def default_text_featurizer(pretrained: PretrainedPaths, device: str = "cpu", half: bool = False
                            ) -> TextFeaturizer:
    """The project's text front-end (language segmentation, g2p, BERT from ``pretrained.bert``)."""
    from GPT_SoVITS.features.bert import BertFeaturizer

    return FrontendFeaturizer(BertFeaturizer(pretrained.bert, device=device, half=half))
