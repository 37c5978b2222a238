"""Text front-end: normalise text per language and turn it into phone ids (plus per-character alignment).

Typical use::

    from GPT_SoVITS.text import clean_text, cleaned_text_to_sequence
    phones, word2ph, norm_text = clean_text("今天天气很好。", "zh", version="v2")
    ids = cleaned_text_to_sequence(phones, "v2")
"""

from __future__ import annotations

from GPT_SoVITS.text.cleaner import (
    CleanedText,
    LanguageUnavailableError,
    clean_text,
    cleaned_text_to_sequence,
    supported_languages,
)
from GPT_SoVITS.text.symbols import SYMBOLS_V1, SYMBOLS_V2, UNK, symbols

__all__ = [
    "SYMBOLS_V1",
    "SYMBOLS_V2",
    "UNK",
    "CleanedText",
    "LanguageUnavailableError",
    "clean_text",
    "cleaned_text_to_sequence",
    "supported_languages",
    "symbols",
]
