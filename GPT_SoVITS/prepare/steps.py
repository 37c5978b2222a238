"""The formatting steps as item processors: each turns one :class:`Item` into files and a journal record.

A processor is built inside the worker process that uses it (models load there, once), from a
:class:`ModelPaths`; its ``key(item)`` says which inputs an item's result depends on, so that a re-run can
reuse results whose inputs did not change and redo the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from GPT_SoVITS.audio import AudioReadError, load_audio, write_wav
from GPT_SoVITS.fileio import atomic_path
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.prepare.common import Item, all_journal_records, audio_fingerprint, digest, file_fingerprint
from GPT_SoVITS.text.language_fit import check_phones, check_script

log = logging.getLogger(__name__)

MAX_PEAK = 2.2  # upstream filters out louder clips (broken or clipped audio)


class ItemFailed(Exception):
    """An item cannot be processed; the message is the reason shown in the report."""


@dataclass(frozen=True)
class ModelPaths:
    """The pretrained models the steps use (only the ones a step needs must exist)."""

    bert: Path | None = None  # chinese-roberta-wwm-ext-large style folder (text step)
    hubert: Path | None = None  # chinese-hubert-base style folder (hubert step)
    sovits_g: Path | None = None  # pretrained SoVITS generator (semantic step)
    sv: Path | None = None  # speaker-verification model (sv step of the Pro versions)
    version: str = "v2"  # model version: symbol table of the phones, which steps exist

    def require(self, role: str) -> Path:
        path = getattr(self, role)
        what = {"bert": "the chinese-roberta-wwm-ext-large BERT folder",
                "hubert": "the chinese-hubert-base HuBERT folder",
                "sovits_g": "the pretrained SoVITS generator (s2G*.pth)",
                "sv": "the speaker-verification model (sv/pretrained_eres2netv2w24s4ep4.ckpt)"}[role]
        if path is None:
            raise FileNotFoundError(f"No path given for {what}.")
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} not found at {path}; see pretrained_models/README.md for the layout.")
        return Path(path)


class Processor(Protocol):
    step: str

    def key(self, item: Item) -> str: ...

    def outputs_exist(self, item: Item) -> bool: ...

    def process(self, item: Item) -> dict[str, Any]: ...


def _save_tensor(tensor: torch.Tensor, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        torch.save(tensor, tmp)


class TextProcessor:
    """1Aa: phones, word2ph and normalised text; BERT features (1024, n_phones) for Chinese items."""

    step = "text"

    def __init__(self, exp: ExperimentPaths, models: ModelPaths, device: str = "cpu"):
        self.exp, self.version, self.device = exp, models.version, device
        self._bert_path = models.bert
        self._bert_fp = file_fingerprint(models.bert) if models.bert and Path(models.bert).exists() else None
        self._bert = None

    def key(self, item: Item) -> str:
        return digest("text", item.name, item.lang, item.text, self.version,
                      self._bert_fp if item.lang == "zh" else None)

    def outputs_exist(self, item: Item) -> bool:
        return item.lang != "zh" or (self.exp.bert_dir / f"{item.name}.pt").exists()

    def _featurizer(self):
        if self._bert is None:
            from GPT_SoVITS.features.bert import BertFeaturizer

            path = ModelPaths(bert=self._bert_path).require("bert")
            self._bert = BertFeaturizer(path, device=self.device)  # loads on first use in this worker
        return self._bert

    def process(self, item: Item) -> dict[str, Any]:
        from GPT_SoVITS.text import clean_text

        text = item.text.replace("%", "-").replace("￥", ",")  # as upstream's 1Aa
        fit = check_script(text, item.lang)  # a wrong language column would silently ruin the item
        if fit.problem:
            raise ItemFailed(f"wrong language: {fit.problem}")
        try:
            phones, word2ph, norm_text = clean_text(text, item.lang, self.version)
        except ValueError as exc:  # unsupported language, missing language package
            raise ItemFailed(f"language not supported: {exc}") from None
        if not phones:
            raise ItemFailed("empty text: no phones after cleaning")
        dropped = check_phones(text, phones)
        if dropped:
            raise ItemFailed(f"wrong language: {dropped}")
        if item.lang == "zh":
            try:
                features = self._featurizer().phone_level(norm_text, word2ph)
            except ValueError as exc:  # BertAlignmentError: a tokeniser that does not give one token per char
                raise ItemFailed(f"BERT alignment: {exc}") from None
            if features.shape[-1] != len(phones):
                raise ItemFailed(f"BERT alignment: {features.shape[-1]} feature frames for {len(phones)} phones")
            _save_tensor(features.float().cpu(), self.exp.bert_dir / f"{item.name}.pt")
        return {"phones": list(phones), "word2ph": list(word2ph) if word2ph is not None else None,
                "norm_text": norm_text}


class HubertProcessor:
    """1Ab: 32 kHz int16 audio (``5-wav32k/<name>``) and HuBERT features (1, 768, T50) (``4-cnhubert``)."""

    step = "hubert"

    def __init__(self, exp: ExperimentPaths, models: ModelPaths, device: str = "cpu", half: bool = False):
        self.exp, self.device, self.half = exp, device, half
        self._path = models.require("hubert")
        self._fp = file_fingerprint(self._path)

    def key(self, item: Item) -> str:
        try:
            audio_fp = audio_fingerprint(item.audio)
        except FileNotFoundError:
            audio_fp = None
        return digest("hubert", item.name, str(item.audio), audio_fp, self._fp)

    def outputs_exist(self, item: Item) -> bool:
        return (self.exp.hubert_dir / f"{item.name}.pt").exists() and (self.exp.wav32k_dir / item.name).exists()

    def _features(self, audio16k: np.ndarray, half: bool) -> torch.Tensor:
        from GPT_SoVITS.features.hubert import HubertFeaturizer

        dtype = torch.float16 if half else torch.float32
        return HubertFeaturizer.from_pretrained(self._path, self.device, dtype)(audio16k)

    def process(self, item: Item) -> dict[str, Any]:
        try:
            audio, _ = load_audio(item.audio, sr=32000, downmix_rule="ffmpeg")  # upstream decodes 1A with ffmpeg
        except AudioReadError as exc:
            raise ItemFailed(f"unreadable audio: {exc}") from None
        peak = float(np.abs(audio).max())
        if peak > MAX_PEAK:
            raise ItemFailed(f"too loud: peak {peak:.2f} > {MAX_PEAK} (clipped or broken audio)")
        if peak == 0.0:
            raise ItemFailed("silent audio: every sample is zero")
        from GPT_SoVITS.features.hubert import WAV_SCALE, loudness_mix, training_ssl_input

        wav32k = loudness_mix(audio, WAV_SCALE)
        hubert_in = training_ssl_input(audio)
        try:
            features = self._features(hubert_in, self.half)
        except ValueError as exc:  # e.g. too short for HuBERT's convolutions
            raise ItemFailed(f"unreadable audio: {exc}") from None
        if torch.isnan(features).any() and self.half:
            log.warning("%s: NaN HuBERT features in float16, retrying in float32", item.name)
            features = self._features(hubert_in, False)
        if torch.isnan(features).any():
            raise ItemFailed("HuBERT produced NaN features")
        _save_tensor(features.float().cpu(), self.exp.hubert_dir / f"{item.name}.pt")
        write_wav(self.exp.wav32k_dir / item.name, np.clip(wav32k, -32768, 32767).astype(np.int16), 32000)
        return {"frames": int(features.shape[-1]), "seconds": round(len(audio) / 32000, 3)}


class SemanticProcessor:
    """1Ac: semantic tokens (25 Hz) from the HuBERT features with the pretrained SoVITS quantizer."""

    step = "semantic"

    def __init__(self, exp: ExperimentPaths, models: ModelPaths, device: str = "cpu"):
        self.exp, self.device = exp, device
        self._path = models.require("sovits_g")
        self._fp = file_fingerprint(self._path)
        self._hubert_keys = {name: rec.get("key") for name, rec in all_journal_records(exp, "hubert").items()}
        self._model = None

    def key(self, item: Item) -> str:
        return digest("semantic", item.name, self._hubert_keys.get(item.name), self._fp)

    def outputs_exist(self, item: Item) -> bool:
        return True  # the tokens live in the journal record itself

    def _quantizer(self):
        if self._model is None:
            from GPT_SoVITS.models import load_sovits

            self._model, _ = load_sovits(self._path, device=self.device)
        return self._model

    def process(self, item: Item) -> dict[str, Any]:
        path = self.exp.hubert_dir / f"{item.name}.pt"
        if not path.exists():
            raise ItemFailed("no HuBERT features: the hubert step (1Ab) did not produce this item")
        ssl = torch.load(path, map_location=self.device, weights_only=True).float()
        with torch.inference_mode():
            codes = self._quantizer().extract_latent(ssl)  # (n_q=1, B=1, T25)
        return {"codes": codes[0, 0].tolist()}


class SVProcessor:
    """1Ab, Pro versions: the speaker-verification embedding [1, D] of each ``5-wav32k`` clip (``7-sv_cn``).

    As upstream's ``2-get-sv.py``: the int16 file / 32768, resampled 2:1, Kaldi fbank, ERes2NetV2 (spec §13.3),
    one clip at a time (padding would change the embedding); float16 files when running in half precision.
    """

    step = "sv"

    def __init__(self, exp: ExperimentPaths, models: ModelPaths, device: str = "cpu", half: bool = False):
        self.exp, self.device, self.half = exp, device, half and device != "cpu"
        self._path = models.require("sv")
        self._fp = file_fingerprint(self._path)
        self._hubert_keys = {name: rec.get("key") for name, rec in all_journal_records(exp, "hubert").items()}
        self._model = None

    def key(self, item: Item) -> str:
        return digest("sv", item.name, self._hubert_keys.get(item.name), self._fp, self.half)

    def outputs_exist(self, item: Item) -> bool:
        return (self.exp.sv_dir / f"{item.name}.pt").exists()

    def _sv(self):
        if self._model is None:
            from GPT_SoVITS.features.sv import load_sv

            self._model = load_sv(self._path, self.device, torch.float16 if self.half else torch.float32)
        return self._model

    def process(self, item: Item) -> dict[str, Any]:
        from GPT_SoVITS.features.sv import embed_wave

        path = self.exp.wav32k_dir / item.name
        if not path.exists():
            raise ItemFailed("no 32 kHz audio: the hubert step (1Ab) did not produce this item")
        try:
            audio, sr = load_audio(path)
        except AudioReadError as exc:
            raise ItemFailed(f"unreadable audio: {exc}") from None
        if sr != 32000:
            raise ItemFailed(f"5-wav32k audio is {sr} Hz, expected 32000: run the hubert step (1Ab) again")
        with torch.inference_mode():
            embedding = embed_wave(self._sv(), audio)
        if not torch.isfinite(embedding).all():
            raise ItemFailed("the speaker-verification model produced non-finite values")
        _save_tensor(embedding.cpu(), self.exp.sv_dir / f"{item.name}.pt")
        return {"dim": int(embedding.shape[-1])}


def build_processor(step: str, exp: ExperimentPaths, models: ModelPaths, device: str = "cpu",
                    half: bool = False) -> Processor:
    if step == "text":
        return TextProcessor(exp, models, device)
    if step == "hubert":
        return HubertProcessor(exp, models, device, half)
    if step == "sv":
        return SVProcessor(exp, models, device, half)
    if step == "semantic":
        return SemanticProcessor(exp, models, device)
    raise ValueError(f"unknown step {step!r}")
