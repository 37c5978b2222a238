"""What a synthesis request is made of: the reference voice and the generation options (frozen dataclasses).

Every front-end (CLI, inference WebUI, HTTP API) builds these two objects and hands them to
:class:`GPT_SoVITS.infer.tts.TTS`; validation lives here, once, and raises :class:`InvalidOptionError` with a
message that names the field, the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

#: Reference audio must last between these many seconds (upstream checks 48 000–160 000 samples at 16 kHz).
REFERENCE_MIN_SECONDS = 3.0
REFERENCE_MAX_SECONDS = 10.0

#: Language codes of the UI/API (spec §4.8). ``all_*``: the whole text in one language; ``zh``/``ja``/``ko``/
#: ``yue``: that language mixed with English; ``auto``: detected per segment; ``auto_yue``: as auto, Chinese read
#: as Cantonese.
LANGUAGES_V2 = ("all_zh", "en", "all_ja", "all_yue", "all_ko", "zh", "ja", "yue", "ko", "auto", "auto_yue")
LANGUAGES_V1 = ("auto", "en", "zh", "ja", "all_zh", "all_ja")

#: Sentence-split strategies (ids kept from upstream; implemented in ``GPT_SoVITS.text.split``).
TEXT_SPLIT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")


class InvalidOptionError(ValueError):
    """A synthesis option or reference field is out of range; the message says which and what is allowed."""


def supported_languages(version: str) -> tuple[str, ...]:
    """Language codes accepted for a model version (v1 has no Korean or Cantonese)."""
    from GPT_SoVITS.text.symbols import symbol_version

    return LANGUAGES_V1 if symbol_version(version) == "v1" else LANGUAGES_V2


def check_language(code: str, version: str, field: str = "language") -> str:
    """Normalise a language code (case-insensitive) and check it is supported by ``version``."""
    norm = str(code).strip().lower()
    allowed = supported_languages(version)
    if norm not in allowed:
        raise InvalidOptionError(f"{field}: {code!r} is not supported by {version} models; use one of "
                                 f"{', '.join(allowed)}")
    return norm


@dataclass(frozen=True)
class Reference:
    """The voice to clone.

    ``text`` empty means the no-reference-text mode: the GPT continues from the reference's semantic tokens
    without its transcript (works best with a fine-tuned GPT). ``extra_audios`` are averaged with the main
    reference for the timbre (style vector) only.
    """

    audio: Path  # 3–10 s of clean speech
    text: str = ""  # transcript of ``audio``; empty → no-reference-text mode
    lang: str = "all_zh"  # language code of ``text``
    extra_audios: tuple[Path, ...] = ()  # optional extra references, timbre averaged

    def __post_init__(self) -> None:
        object.__setattr__(self, "audio", Path(self.audio))
        object.__setattr__(self, "extra_audios", tuple(Path(p) for p in self.extra_audios))

    @property
    def text_free(self) -> bool:
        """True in the no-reference-text mode."""
        return not self.text.strip()


@dataclass(frozen=True)
class SynthesisOptions:
    """How to generate. Defaults follow upstream's inference UI (spec §8.1/§8.2)."""

    top_k: int = 15  # sample among the k most likely tokens
    top_p: float = 1.0  # nucleus filter (1.0 = off)
    temperature: float = 1.0  # logits divided by max(temperature, 1e-5); too low loops in ref-free mode
    repetition_penalty: float = 1.35  # applied to every token already generated or in the prompt
    seed: int | None = None  # None: a fresh random seed per request (the used seed is reported)
    speed: float = 1.0  # > 1 speaks faster; changes the SoVITS frame count, not the GPT
    pause: float = 0.3  # seconds of silence after every sentence (upstream fragment_interval)
    text_split: str = "cut1"  # cut0…cut5, see GPT_SoVITS.text.split
    batch_size: int = 1  # sentences generated at once by the GPT (one KV-cache batch)
    split_bucket: bool = True  # with batch_size > 1: batch sentences of similar length (output order is kept)
    batch_threshold: float = 0.75  # split_bucket: a batch's mean phone count / its longest must stay above this
    noise_scale: float = 0.5  # SoVITS prior sampling noise (upstream fixes 0.5); v4 has none
    sample_steps: int | None = None  # v4 only: Euler steps of the flow-matching decoder (None: 8, the WebUI's)
    check_tokens: bool = False  # regenerate sentences whose token count is implausible for their phones
    max_retries: int = 2  # regenerations per flagged sentence (each with the next seed)
    min_phone_rate: float = 3.0  # phones/s below this = runaway output (too many tokens)
    max_phone_rate: float = 25.0  # phones/s above this = swallowed words (too few tokens)

    def __post_init__(self) -> None:
        _check_range("top_k", self.top_k, 1, 1024, integer=True)
        _check_range("top_p", self.top_p, 0.0, 1.0, low_open=True)
        _check_range("temperature", self.temperature, 0.0, 10.0)
        _check_range("repetition_penalty", self.repetition_penalty, 0.0, 10.0, low_open=True)
        _check_range("speed", self.speed, 0.25, 4.0)
        _check_range("pause", self.pause, 0.0, 10.0)
        _check_range("batch_size", self.batch_size, 1, 200, integer=True)
        _check_range("batch_threshold", self.batch_threshold, 0.0, 1.0)
        _check_range("noise_scale", self.noise_scale, 0.0, 2.0)
        if self.sample_steps is not None:
            _check_range("sample_steps", self.sample_steps, 1, 128, integer=True)
        _check_range("max_retries", self.max_retries, 0, 20, integer=True)
        _check_range("min_phone_rate", self.min_phone_rate, 0.0, 1000.0, low_open=True)
        _check_range("max_phone_rate", self.max_phone_rate, 0.0, 1000.0, low_open=True)
        if self.min_phone_rate >= self.max_phone_rate:
            raise InvalidOptionError(f"min_phone_rate ({self.min_phone_rate}) must be below max_phone_rate "
                                     f"({self.max_phone_rate})")
        if self.seed is not None:
            _check_range("seed", self.seed, 0, 2**63 - 1, integer=True)
        if self.text_split not in TEXT_SPLIT_METHODS:
            raise InvalidOptionError(f"text_split: {self.text_split!r} is not a split method; use one of "
                                     f"{', '.join(TEXT_SPLIT_METHODS)}")

    def replace(self, **changes: object) -> SynthesisOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_range(name: str, value: object, low: float, high: float, *, integer: bool = False,
                 low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOptionError(f"{name}: expected a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise InvalidOptionError(f"{name}: expected a whole number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high or value != value:  # value != value catches NaN
        low_text = f"> {low}" if low_open else f">= {low}"
        raise InvalidOptionError(f"{name}: {value!r} is out of range; it must be {low_text} and <= {high}")
