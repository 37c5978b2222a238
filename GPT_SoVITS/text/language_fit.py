"""Does a label's text fit the language it is marked with? (1A leaves out the items whose text does not.)

A text marked with the wrong language is silently ruined by the front-end: each language's cleaner keeps only its
own script, so Chinese text marked EN comes out as a few punctuation phones, and English text marked ZH as nothing.
Two checks catch this, both cheap and independent of the cleaner's details:

1. **Script share** (before cleaning). The text is cut into *units*: each Han, kana or Hangul character is one
   unit (one syllable), each run of Latin letters one unit (one word); digits, punctuation and spaces are not
   counted (every language reads digits). At least :data:`MIN_SCRIPT_SHARE` of the units must be in the scripts
   the language is written in (zh/yue: Han; ja: Han or kana; ko: Hangul; en: Latin). A Chinese line with an
   English brand name (``我用iPhone拍照``: 5 Han units, 1 Latin unit) passes; a Chinese line marked EN has a
   share near 0. A Japanese-marked text of at least :data:`KANA_FREE_HAN` Han characters and not one kana reads
   like Chinese and is left out too (Japanese speech transcripts practically always contain kana).
2. **Phones per unit** (after cleaning). The speech phones (punctuation, pauses and markers not counted) must be
   at least :data:`MIN_PHONES_PER_UNIT` per unit: every language gives at least about one phone per syllable and
   several per English word, so fewer means the cleaner dropped most of the text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from GPT_SoVITS.text.symbols import JA_PITCH_MARKS, PAD, PUNCTUATION, SPECIALS

MIN_SCRIPT_SHARE = 0.5
MIN_PHONES_PER_UNIT = 0.5
KANA_FREE_HAN = 8

#: The scripts each language of the .list is written in.
LANGUAGE_SCRIPTS = {"zh": {"han"}, "yue": {"han"}, "ja": {"han", "kana"}, "ko": {"hangul"}, "en": {"latin"}}
_NON_SPEECH = {*PUNCTUATION, *SPECIALS, PAD, *JA_PITCH_MARKS, "空", "停"}
_SCRIPT_PREFIXES = (("CJK ", "han"), ("HIRAGANA", "kana"), ("KATAKANA", "kana"), ("HALFWIDTH KATAKANA", "kana"),
                    ("HANGUL", "hangul"), ("LATIN", "latin"), ("FULLWIDTH LATIN", "latin"))
_SCRIPT_NAMES = {"han": "Chinese characters", "kana": "kana", "hangul": "Hangul", "latin": "Latin letters",
                 "other": "other letters"}


def script_of(char: str) -> str | None:
    """``han``, ``kana``, ``hangul``, ``latin`` or ``other`` for a letter; ``None`` for digits, punctuation, space."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return next((script for prefix, script in _SCRIPT_PREFIXES if name.startswith(prefix)), "other")


def script_units(text: str) -> dict[str, int]:
    """How many units of each script the text has (a Latin word is one unit, a CJK/Hangul character one)."""
    counts: dict[str, int] = {}
    previous = None
    for char in text:
        script = script_of(char)
        if script is not None and not (script == "latin" and previous == "latin"):
            counts[script] = counts.get(script, 0) + 1
        previous = script
    return counts


@dataclass(frozen=True)
class LanguageFit:
    """The verdict on one text: ``problem`` is empty when the text fits its language."""

    units: dict[str, int]
    share: float  # of the units in the language's scripts (1.0 for a text without letters)
    problem: str = ""


def check_script(text: str, language: str) -> LanguageFit:
    """Check 1 (before cleaning); ``language`` is a canonical .list code (zh, ja, en, ko, yue)."""
    units = script_units(text)
    total = sum(units.values())
    expected = LANGUAGE_SCRIPTS.get(language)
    if expected is None or total == 0:
        return LanguageFit(units, 1.0)
    share = sum(n for script, n in units.items() if script in expected) / total
    if share < MIN_SCRIPT_SHARE:
        main = max(units, key=units.get)
        return LanguageFit(units, share, f"{total - round(share * total)} of {total} words or characters are not "
                                         f"written in {language.upper()}'s script (mostly {_SCRIPT_NAMES[main]}), "
                                         f"but the line is marked {language.upper()}: correct its language")
    if language == "ja" and units.get("han", 0) >= KANA_FREE_HAN and not units.get("kana"):
        return LanguageFit(units, share, f"{units['han']} Chinese characters and no kana: this reads like Chinese, "
                                         f"but the line is marked JA: correct its language")
    return LanguageFit(units, share)


def speech_phones(phones: Sequence[str]) -> int:
    """Phones that are sounds (punctuation, pauses and pitch or spacing markers are not)."""
    return sum(1 for phone in phones if phone not in _NON_SPEECH)


def check_phones(text: str, phones: Sequence[str]) -> str:
    """Check 2 (after cleaning): a reason when the cleaner kept too few phones for the text, else ``""``."""
    total = sum(script_units(text).values())
    n = speech_phones(phones)
    if total and n < MIN_PHONES_PER_UNIT * total:
        return (f"only {n} speech phone(s) for {total} words or characters: most of the text was dropped; check "
                f"the language of this line")
    return ""
