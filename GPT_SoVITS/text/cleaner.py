"""Text cleaner: normalise a text in one language and turn it into phones (upstream ``text/cleaner.py``).

Each language lives in its own module ``GPT_SoVITS.text.<code>`` exposing::

    normalize(text: str) -> str
    g2p(norm_text: str) -> tuple[list[str], list[int] | None]     # phones, word2ph (None: no per-char alignment)

and, where the v1 models were trained with a different front-end, ``g2p_v1`` with the same signature.

Language modules are imported lazily on first use, so a missing optional package only matters for the language
that needs it; such a module raises :class:`LanguageUnavailableError` naming the package to install.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from GPT_SoVITS.text.symbols import UNK, symbol_to_id, symbol_version

log = logging.getLogger(__name__)

LANGUAGES_V1 = ("zh", "ja", "en")
LANGUAGES_V2 = ("zh", "ja", "en", "ko", "yue")

# Pause specials (Chinese only): the marker is read as a comma, then every "," phone becomes the special.
SPECIAL_PAUSES: tuple[tuple[str, str, str], ...] = (("￥", "zh", "SP2"), ("^", "zh", "SP3"))

# English output shorter than this gets a leading "," (upstream pads very short inputs).
ENGLISH_MIN_PHONES = 4


class LanguageUnavailableError(ValueError):
    """A language's optional package is missing. The message names the pip package to install."""


@dataclass(frozen=True)
class CleanedText:
    """Phones of a cleaned text, the number of phones per character of ``norm_text`` (None for languages without a
    per-character alignment: en, ja, ko) and the normalised text. Unpacks as ``phones, word2ph, norm_text``."""

    phones: list[str]
    word2ph: list[int] | None
    norm_text: str

    def __iter__(self) -> Iterator:
        return iter((self.phones, self.word2ph, self.norm_text))


def supported_languages(version: str = "v2") -> tuple[str, ...]:
    """Language codes the cleaner accepts for a model version (v1: zh, ja, en; later versions add ko, yue)."""
    return LANGUAGES_V1 if symbol_version(version) == "v1" else LANGUAGES_V2


@cache
def _language_module(language: str) -> ModuleType:
    return importlib.import_module(f"GPT_SoVITS.text.{language}")


def _g2p_function(module: ModuleType, version: str):
    if symbol_version(version) == "v1" and hasattr(module, "g2p_v1"):
        return module.g2p_v1
    return module.g2p


def _check_language(language: str, version: str) -> None:
    allowed = supported_languages(version)
    if language not in allowed:
        raise ValueError(
            f"Unsupported language {language!r} for model version {version!r}; "
            f"use one of: {', '.join(allowed)}."
        )


def clean_text(text: str, language: str, version: str = "v2") -> CleanedText:
    """Normalise ``text`` and convert it to phones of the ``version`` symbol table.

    Phones that are not in the table become ``UNK``. For zh and yue, ``word2ph`` has one entry per character of
    ``norm_text`` and sums to the number of phones.
    """
    _check_language(language, version)
    module = _language_module(language)
    for marker, marker_language, pause in SPECIAL_PAUSES:
        if language == marker_language and marker in text:
            return _clean_with_pause(text.replace(marker, ","), module, pause, version)

    norm_text = module.normalize(text)
    phones, word2ph = _g2p_function(module, version)(norm_text)
    phones = list(phones)
    if language in ("zh", "yue"):
        _check_alignment(phones, word2ph, norm_text, language)
    elif language == "en":
        if len(phones) < ENGLISH_MIN_PHONES:
            phones = [","] + phones
        word2ph = None
    table = symbol_to_id(version)
    phones = [phone if phone in table else UNK for phone in phones]
    return CleanedText(phones, None if word2ph is None else list(word2ph), norm_text)


def _clean_with_pause(text: str, module: ModuleType, pause: str, version: str) -> CleanedText:
    norm_text = module.normalize(text)
    phones, word2ph = _g2p_function(module, version)(norm_text)
    table = symbol_to_id(version)
    out = []
    for phone in phones:
        if phone == ",":
            out.append(pause)
        else:
            out.append(phone if phone in table else UNK)
    return CleanedText(out, None if word2ph is None else list(word2ph), norm_text)


def _check_alignment(phones: Sequence[str], word2ph: Sequence[int] | None, norm_text: str, language: str) -> None:
    if word2ph is None:
        raise RuntimeError(f"The {language} front-end returned no word2ph for {norm_text!r}; this is a bug.")
    if len(phones) != sum(word2ph) or len(norm_text) != len(word2ph):
        raise RuntimeError(
            f"The {language} front-end produced misaligned output for {norm_text!r}: {len(phones)} phones, "
            f"word2ph sums to {sum(word2ph)} over {len(word2ph)} entries for {len(norm_text)} characters. "
            "This is a bug; please report the input text."
        )


def cleaned_text_to_sequence(phones: Sequence[str], version: str = "v2") -> list[int]:
    """Phone ids in the ``version`` symbol table; unknown phones map to the ``UNK`` id."""
    table = symbol_to_id(version)
    unk = table[UNK]
    return [table.get(phone, unk) for phone in phones]
