"""Korean front end: g2pk2 pronunciation rules (MeCab via python-mecab-ko) -> jamo symbols.

Pipeline: g2pk2 applies the standard pronunciation rules (English words it finds in CMUdict are transcribed to Hangul,
numbers are read), Latin letters that remain are read by their Korean letter names, syllables are decomposed into
compatibility jamo, compound vowels and double finals are split into the 27 jamo of the symbol table, a space becomes
``空`` and anything else outside the table becomes ``停``. A text that ends on a jamo gets a final ``.``.

Offline note: ``g2pk2.G2p()`` loads NLTK's cmudict corpus (a download) in its constructor and tries to download it
when the module is imported. We never call that constructor: the object is assembled from its parts, with our own
offline CMUdict, and the import-time download attempt is suppressed.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPACE = "空"
UNKNOWN = "停"
_TABLE = set("ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ")
_PUNCTUATION = set("!?…,.-")

# Jamo outside the table, written with table jamo (y-/w-diphthongs as glide + vowel, double finals as two).
_SPLIT_JAMO = {
    "ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
    "ㅑ": "ㅣㅏ", "ㅒ": "ㅣㅐ", "ㅕ": "ㅣㅓ", "ㅖ": "ㅣㅔ", "ㅛ": "ㅣㅗ", "ㅠ": "ㅣㅜ",
    "ㄳ": "ㄱㅅ", "ㄵ": "ㄴㅈ", "ㄶ": "ㄴㅎ", "ㄺ": "ㄹㄱ", "ㄻ": "ㄹㅁ", "ㄼ": "ㄹㅂ", "ㄽ": "ㄹㅅ",
    "ㄾ": "ㄹㅌ", "ㄿ": "ㄹㅍ", "ㅀ": "ㄹㅎ", "ㅄ": "ㅂㅅ",
}  # fmt: skip
_LETTER_NAMES = {
    "a": "에이", "b": "비", "c": "시", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치", "i": "아이",
    "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피", "q": "큐", "r": "아르",
    "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트",
}  # fmt: skip
_PUNCTUATION_MAP = str.maketrans({"。": ".", "，": ",", "、": ",", "！": "!", "？": "?", "：": ",", "；": ",",
                                  ":": ",", ";": ",", "·": ",", "~": "-", "～": "-", "—": "-"})  # fmt: skip
_REPEATED_PUNCTUATION = re.compile(r"([!?…,.\-])[!?…,.\-]+")
_LATIN = re.compile(r"[A-Za-z]")
_ENDS_ON_JAMO = re.compile(r"([\u3131-\u3163])$")


def _unavailable(package: str) -> Exception:
    from GPT_SoVITS.text.cleaner import LanguageUnavailableError

    return LanguageUnavailableError(f"Korean needs the package {package}: pip install {package}")


class _CmuForG2pk:
    """CMUdict in the shape g2pk2 expects from NLTK (word -> list of pronunciations)."""

    def __init__(self, entries: dict[str, list[str]]) -> None:
        self._entries = entries

    def __contains__(self, word: object) -> bool:
        return word in self._entries

    def __getitem__(self, word: str) -> list[list[str]]:
        return [self._entries[word]]


@lru_cache(maxsize=1)
def _g2pk() -> Any:
    """A g2pk2 converter built without its constructor (which needs NLTK data)."""
    try:
        import nltk
    except ImportError as e:
        raise _unavailable("g2pk2") from e
    download = nltk.download
    nltk.download = lambda *args, **kwargs: False  # g2pk2 tries a network download at import
    try:
        import g2pk2
        from g2pk2.g2pk2 import G2p
        from g2pk2.utils import get_rule_id2text, parse_table
    except ImportError as e:
        raise _unavailable("g2pk2") from e
    finally:
        nltk.download = download
    try:
        import mecab
    except ImportError as e:
        raise _unavailable("python-mecab-ko") from e
    from GPT_SoVITS.text.en import cmudict

    converter = G2p.__new__(G2p)
    converter.use_konlpy = False
    converter.mecab_path = None
    converter.mecab = mecab.MeCab()
    # g2pk2 runs ~hundreds of table rules through re.sub with pattern strings, more than the re module caches,
    # so every call recompiled them all; compiled patterns work the same in re.sub and make it ~10x faster.
    converter.table = [(re.compile(pattern), replacement, rule_ids) for pattern, replacement, rule_ids in parse_table()]
    converter.cmu = _CmuForG2pk(cmudict())
    converter.rule2text = get_rule_id2text()
    converter.idioms_path = str(Path(g2pk2.__file__).parent / "idioms.txt")
    return converter


def normalize(text: str) -> str:
    """Map full-width punctuation to ASCII and collapse repeated marks; the Hangul itself is left as written."""
    text = text.translate(_PUNCTUATION_MAP)
    return _REPEATED_PUNCTUATION.sub(r"\1", text).strip()


def _latin_to_hangul(text: str) -> str:
    return _LATIN.sub(lambda m: _LETTER_NAMES[m.group(0).lower()], text)


def _to_jamo(text: str) -> str:
    from jamo import h2j, j2hcj

    jamo = j2hcj(h2j(text))
    return "".join(_SPLIT_JAMO.get(c, c) for c in jamo)


@lru_cache(maxsize=4096)
def pronounce(norm_text: str) -> str:
    """Pronounced form as a string of table jamo, spaces and punctuation."""
    spoken = _g2pk()(norm_text)
    spoken = _latin_to_hangul(spoken)
    jamo = _to_jamo(spoken)
    return _ENDS_ON_JAMO.sub(r"\1.", jamo)


def g2p(norm_text: str) -> tuple[list[str], None]:
    """Korean jamo symbols (word2ph is None for Korean)."""
    phones = []
    for char in pronounce(norm_text):
        if char == " ":
            phones.append(SPACE)
        elif char in _TABLE or char in _PUNCTUATION:
            phones.append(char)
        else:
            phones.append(UNKNOWN)
    return phones, None
