"""Japanese front end: Open JTalk (``pyopenjtalk-plus``, dictionary inside the wheel) with prosody marks.

Per run of Japanese characters the full-context labels are turned into phones plus the espnet-style prosody marks
``[`` (pitch rises), ``]`` (pitch falls), ``#`` (accent-phrase boundary; not in the symbol table, so the cleaner
turns it into ``UNK`` exactly as upstream does) and ``_`` (pause). Unvoiced vowels are lower-cased. Everything
between Japanese runs (punctuation, symbols) is kept as its own token, mapped to ASCII punctuation; spaces are
dropped. No word2ph: Japanese segments get zero BERT features.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from types import ModuleType

log = logging.getLogger(__name__)

# Characters Open JTalk reads: ASCII letters and digits, 々, kana, CJK ideographs, full-width digits and letters,
# half-width katakana. Anything else separates runs and is kept as a mark.
_JAPANESE_CHARS = r"A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
_RUN = re.compile(f"[{_JAPANESE_CHARS}]+")
_MARKS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",", "...": "…"}
_SYMBOL_WORDS = (("％", "パーセント"),)
_REPEATED_PUNCTUATION = re.compile(r"([!?…,.\-])[!?…,.\-]+")

_PHONE = re.compile(r"-(.*?)\+")
_A1 = re.compile(r"/A:([0-9\-]+)\+")
_A2 = re.compile(r"\+(\d+)\+")
_A3 = re.compile(r"\+(\d+)/")
_F1 = re.compile(r"/F:(\d+)_")
_E3 = re.compile(r"!(\d+)_")
_MISSING = -50  # value of an "xx" (undefined) label field


@lru_cache(maxsize=1)
def _openjtalk() -> ModuleType:
    try:
        import pyopenjtalk
    except ImportError as e:
        from GPT_SoVITS.text.cleaner import LanguageUnavailableError

        raise LanguageUnavailableError(
            "Japanese needs the package pyopenjtalk-plus (its wheel ships the Open JTalk dictionary): "
            "pip install pyopenjtalk-plus"
        ) from e
    return pyopenjtalk


def normalize(text: str) -> str:
    """Japanese text is read as written; only runs of repeated ASCII punctuation collapse to the first mark."""
    return _REPEATED_PUNCTUATION.sub(r"\1", text)


def _field(pattern: re.Pattern[str], label: str) -> int:
    m = pattern.search(label)
    return int(m.group(1)) if m else _MISSING


def labels_to_prosody_phones(labels: list[str], drop_unvoiced_vowels: bool = True) -> list[str]:
    """Phones with prosody marks from Open JTalk full-context labels (``^``/``$``/``?`` mark the ends)."""
    phones: list[str] = []
    last = len(labels) - 1
    for n, label in enumerate(labels):
        phone = _PHONE.search(label).group(1)
        if drop_unvoiced_vowels and phone in ("A", "E", "I", "O", "U"):
            phone = phone.lower()
        if phone == "sil":
            if n == 0:
                phones.append("^")
            elif n == last:
                question = _field(_E3, label)
                phones.append("?" if question == 1 else "$")
            continue
        if phone == "pau":
            phones.append("_")
            continue
        phones.append(phone)
        a1, a2, a3, f1 = _field(_A1, label), _field(_A2, label), _field(_A3, label), _field(_F1, label)
        a2_next = _field(_A2, labels[n + 1]) if n < last else _MISSING
        if a3 == 1 and a2_next == 1 and phone in "aeiouAEIOUNcl":
            phones.append("#")  # accent phrase ends here
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            phones.append("]")  # accent nucleus: pitch falls after this mora
        elif a2 == 1 and a2_next == 2:
            phones.append("[")  # pitch rises after the first mora
    return phones


@lru_cache(maxsize=4096)
def _run_phones(run: str) -> tuple[str, ...]:
    jtalk = _openjtalk()
    labels = jtalk.make_label(jtalk.run_frontend(run, use_vanilla=True))
    return tuple(labels_to_prosody_phones(labels)[1:-1])  # drop the start/end markers


def g2p(norm_text: str) -> tuple[list[str], None]:
    """Phones with prosody marks for Japanese text (word2ph is None for Japanese)."""
    text = norm_text
    for symbol, words in _SYMBOL_WORDS:
        text = text.replace(symbol, words)
    phones: list[str] = []
    pos = 0
    for m in _RUN.finditer(text):
        phones.extend(_marks(text[pos : m.start()]))
        phones.extend(_run_phones(m.group(0)))
        pos = m.end()
    phones.extend(_marks(text[pos:]))
    return phones, None


def _marks(between: str) -> list[str]:
    return [_MARKS.get(c, c) for c in between if not c.isspace()]
