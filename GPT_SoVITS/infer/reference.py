"""Reference preparation: prompt tokens, style vector and prompt phones/BERT, cached per reference.

Everything here depends only on the reference (its files, transcript and language) and on the loaded
models, so it is computed once and reused until one of them changes. For v2Pro/v2ProPlus the style vector also
takes each reference's speaker-verification embedding, computed here from the same peak-normalised 32 kHz audio
as the spectrogram (upstream recomputes it on every synthesis call).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from GPT_SoVITS.audio import AudioReadError, load_audio
from GPT_SoVITS.features.spectrogram import norm_mel_v4, normalize_reference_peak, spectrogram
from GPT_SoVITS.infer.components import (
    LazySlot,
    ModelMismatchError,
    ModelPair,
    SpeakerEncoder,
    SSLFeaturizer,
    TextFeatures,
    TextFeaturizer,
)
from GPT_SoVITS.infer.options import REFERENCE_MAX_SECONDS, REFERENCE_MIN_SECONDS, Reference, check_language
from GPT_SoVITS.models.sovits_v4 import CFMReference, prepare_reference
from GPT_SoVITS.text.split import SENTENCE_ENDS

log = logging.getLogger(__name__)

SSL_RATE = 16000
SAMPLE_RATE = 32000
#: Upstream appends this many zeros (0.3 · 32000, at 16 kHz: 0.6 s) to the reference before HuBERT, so the
#: prompt tokens end in silence and the continuation starts cleanly.
PROMPT_PADDING = 9600


class ReferenceAudioError(ValueError):
    """The reference audio cannot be used (unreadable, too short or too long); the message says why."""


@dataclass(frozen=True)
class PreparedReference:
    """What the engine needs from a reference, on the models' device."""

    codes: torch.Tensor | None  # [T25] prompt semantic tokens; None in the no-reference-text mode
    ge: torch.Tensor  # [1, gin, 1] style vector (averaged over the main and extra references, after the PReLU)
    text: TextFeatures | None  # prompt phones/BERT; None in the no-reference-text mode
    seconds: float  # length of the main reference audio
    cfm: CFMReference | None = None  # v4: the prompt's condition and mel (see sovits_v4.prepare_reference)


def _file_identity(path: Path) -> tuple[str, int, int]:
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        raise ReferenceAudioError(f"Reference audio not found: {path}") from None
    return str(resolved), stat.st_mtime_ns, stat.st_size


def prompt_text_for(text: str, lang: str) -> str:
    """Upstream's prompt-text clean-up: one line, ending with a sentence mark (``.`` for English)."""
    text = text.strip("\n").replace("\n", " ").strip()
    if text and text[-1] not in SENTENCE_ENDS:
        text += "." if lang == "en" else "。"
    return text


def load_reference_16k(path: Path) -> np.ndarray:
    """Load the main reference at 16 kHz and enforce the 3–10 s rule, with an explanation."""
    try:
        audio, _ = load_audio(path, sr=SSL_RATE)
    except AudioReadError as exc:
        raise ReferenceAudioError(f"Reference audio cannot be read: {exc}") from None
    seconds = len(audio) / SSL_RATE
    if not REFERENCE_MIN_SECONDS * SSL_RATE <= len(audio) <= REFERENCE_MAX_SECONDS * SSL_RATE:
        raise ReferenceAudioError(
            f"Reference audio {Path(path).name} is {seconds:.2f} s long; it must be between "
            f"{REFERENCE_MIN_SECONDS:g} and {REFERENCE_MAX_SECONDS:g} s. The models were trained on clips of that "
            "length: a shorter reference carries too little voice, a longer one gives silence or garbled speech. "
            "Cut a 3-10 s clip of clean speech (and use its exact transcript as the reference text).")
    return audio


class ReferenceCache:
    """Prepares references and keeps the last few (LRU), keyed by files, transcript and model pair."""

    def __init__(self, ssl: SSLFeaturizer, text: TextFeaturizer, text_lock: threading.Lock, size: int = 8,
                 speaker: LazySlot[SpeakerEncoder] | None = None) -> None:
        self.ssl = ssl
        self.text = text
        self.speaker = speaker or LazySlot(what="speaker-verification model")
        self.text_lock = text_lock
        self.size = size
        self._items: OrderedDict[tuple, PreparedReference] = OrderedDict()
        self._lock = threading.Lock()  # one preparation at a time: HuBERT is the slow part and shared
        self.computed = 0  # number of preparations done (tests and logs use it to see cache hits)

    def key(self, ref: Reference, models: ModelPair) -> tuple:
        extras = tuple(_file_identity(p) for p in ref.extra_audios)
        text = "" if ref.text_free else ref.text.strip()
        return (models.generation, _file_identity(ref.audio), extras, text, ref.lang if text else "")

    def get(self, ref: Reference, models: ModelPair) -> PreparedReference:
        key = self.key(ref, models)
        with self._lock:
            cached = self._items.get(key)
            if cached is not None:
                self._items.move_to_end(key)
                return cached
            prepared = self._prepare(ref, models)
            self.computed += 1
            self._items[key] = prepared
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return prepared

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    @torch.inference_mode()
    def _prepare(self, ref: Reference, models: ModelPair) -> PreparedReference:
        audio16 = load_reference_16k(ref.audio)
        sovits = models.sovits
        dtype = next(sovits.parameters()).dtype
        device = models.device
        codes = text = None
        if ref.text_free and models.spec.sovits_family == "cfm":
            raise ReferenceAudioError(f"{models.version} models need the reference audio's transcript (they have no "
                                      "no-reference-text mode, as upstream): enter the reference text and its "
                                      "language.")
        if not ref.text_free:
            lang = check_language(ref.lang, models.version, "reference language")
            padded = np.concatenate([audio16, np.zeros(PROMPT_PADDING, dtype=np.float32)])
            ssl = self.ssl(padded).to(device=device, dtype=dtype)
            if ssl.shape[1] != sovits.cfg.ssl_dim:
                raise ModelMismatchError(
                    f"The HuBERT model gives {ssl.shape[1]}-dim features but the SoVITS model expects "
                    f"{sovits.cfg.ssl_dim}; use the chinese-hubert-base folder that belongs to these models.")
            codes = sovits.extract_latent(ssl)[0, 0].to(torch.long)
            with self.text_lock:
                text = self.text(prompt_text_for(ref.text, lang), lang, models.version)
            if not text.phones:
                raise ReferenceAudioError(f"The reference text {ref.text!r} gives no phones in language {lang!r}; "
                                          "check the text and its language, or leave it empty for the "
                                          "no-reference-text mode.")
        cfg = sovits.cfg
        if models.spec.sovits_family == "cfm":
            assert codes is not None and text is not None
            cfm = self._prepare_cfm(ref, sovits, codes, text, device, dtype)
            log.info("reference prepared: %s (%.2f s, %d phones, %d prompt mel frames)", Path(ref.audio).name,
                     len(audio16) / SSL_RATE, len(text.phones), cfm.frames)
            return PreparedReference(codes=codes, ge=cfm.ge, text=text, seconds=len(audio16) / SSL_RATE, cfm=cfm)
        speaker = self.speaker.get() if models.needs_speaker_encoder else None
        specs, embeddings = [], []
        for path in (ref.audio, *ref.extra_audios):
            wave = self._reference_audio(path, cfg.filter_length)
            specs.append(spectrogram(wave.unsqueeze(0), cfg.filter_length, cfg.hop_length, cfg.filter_length)
                         .to(device=device, dtype=dtype))
            if speaker is not None:  # each reference alone: padding into a batch would change its embedding
                embeddings.append(speaker(wave.numpy()).to(device=device, dtype=dtype))
        ge = sovits.average_reference_embedding(specs, embeddings or None)
        log.info("reference prepared: %s (%.2f s, %d extra, %s)", Path(ref.audio).name, len(audio16) / SSL_RATE,
                 len(ref.extra_audios), "no text" if text is None else f"{len(text.phones)} phones")
        return PreparedReference(codes=codes, ge=ge, text=text, seconds=len(audio16) / SSL_RATE)

    def _prepare_cfm(self, ref: Reference, sovits: torch.nn.Module, codes: torch.Tensor, text: TextFeatures,
                     device: torch.device, dtype: torch.dtype) -> CFMReference:
        """v4: style vector from the spectrogram, then the prompt's condition and its normalised mel (spec §14.5).

        Extra references are not used (upstream hides and ignores them for v3/v4).
        """
        if ref.extra_audios:
            log.warning("%s models use only the main reference; %d extra reference(s) ignored, as upstream",
                        sovits.cfg.version, len(ref.extra_audios))
        raw = self._reference_audio(ref.audio, sovits.cfg.filter_length, normalize=False)
        cfg = sovits.cfg
        spec = spectrogram(normalize_reference_peak(raw).unsqueeze(0), cfg.filter_length, cfg.hop_length,
                           cfg.filter_length).to(device=device, dtype=dtype)
        front = sovits.variant.mel  # the mel front end reads the raw audio (no peak normalisation, as upstream)
        audio = raw.numpy() if front.sampling_rate == SAMPLE_RATE else self._reference_audio(
            ref.audio, cfg.filter_length, front.sampling_rate, normalize=False).numpy()
        mel = norm_mel_v4(front(audio)).to(device=device, dtype=dtype)
        phones = torch.tensor([text.phones], dtype=torch.long, device=device)
        return prepare_reference(sovits, codes.view(1, 1, -1), phones, spec, mel)

    @staticmethod
    def _reference_audio(path: Path, n_fft: int, rate: int = SAMPLE_RATE, normalize: bool = True) -> torch.Tensor:
        """The reference at ``rate``, peak-normalised as upstream unless ``normalize`` is False (float32)."""
        try:
            audio, _ = load_audio(path, sr=rate)
        except AudioReadError as exc:
            raise ReferenceAudioError(f"Reference audio cannot be read: {exc}") from None
        if len(audio) < n_fft:
            raise ReferenceAudioError(f"Reference audio {Path(path).name} is too short for a spectrogram "
                                      f"({len(audio)} samples at {rate} Hz); use at least a few seconds of speech.")
        return normalize_reference_peak(audio) if normalize else torch.from_numpy(audio)
