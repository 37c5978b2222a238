"""Phone symbol tables. A phone's id is its index in the table of the model version.

v1 (322 symbols) is the code-point-sorted union of: the pad ``_``, the Mandarin initials (with the pseudo-initials
``AA EE OO`` of zero-initial syllables), the Mandarin finals with tones 1-5 (opencpop style: ``i0`` after z/c/s,
``ir`` after zh/ch/sh/r, ``E``/``En`` for ye/yan), the Japanese phones, punctuation and pause specials, and ARPAbet.

v2 (732 symbols) is v1 in the same order, then the Japanese pitch marks ``[`` ``]``, the sorted Korean jamo
(plus ``空`` for a space and ``停`` for anything unknown), then the sorted Cantonese symbols (each prefixed ``Y``,
stored in ``data/yue_symbols.txt`` because the set has no regular structure).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from GPT_SoVITS.versions import version_spec

UNK = "UNK"
PAD = "_"

PUNCTUATION = ("!", "?", "…", ",", ".", "-")
SPECIALS = ("SP", "SP2", "SP3", UNK)

ZH_INITIALS = (
    "AA", "EE", "OO", "b", "c", "ch", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "q", "r", "s", "sh", "t",
    "w", "x", "y", "z", "zh",
)  # fmt: skip
ZH_FINALS = (
    "E", "En", "a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er", "i", "i0", "ia", "ian", "iang", "iao",
    "ie", "in", "ing", "iong", "ir", "iu", "o", "ong", "ou", "u", "ua", "uai", "uan", "uang", "ui", "un", "uo", "v",
    "van", "ve", "vn",
)  # fmt: skip
ZH_TONES = ("1", "2", "3", "4", "5")

JA_PHONES = (
    "I", "N", "U", "a", "b", "by", "ch", "cl", "d", "dy", "e", "f", "g", "gy", "h", "hy", "i", "j", "k", "ky", "m",
    "my", "n", "ny", "o", "p", "py", "r", "ry", "s", "sh", "t", "ts", "u", "v", "w", "y", "z",
)  # fmt: skip

# CMUdict vowels carry a stress digit 0-2; ER and IH also appear bare in upstream's set.
_ARPA_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_ARPA_CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH", "V", "W",
    "Y", "Z", "ZH",
)  # fmt: skip
ARPABET = tuple(sorted({v + s for v in _ARPA_VOWELS for s in "012"} | {"ER", "IH"} | set(_ARPA_CONSONANTS)))

JA_PITCH_MARKS = ("[", "]")
KO_SYMBOLS = "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停"

_YUE_FILE = Path(__file__).resolve().parent / "data" / "yue_symbols.txt"


def _build_v1() -> tuple[str, ...]:
    finals = [final + tone for tone in ZH_TONES for final in ZH_FINALS]
    core = {PAD, *ZH_INITIALS, *finals, *JA_PHONES, *PUNCTUATION, *SPECIALS, *ARPABET}
    return tuple(sorted(core))


def _load_yue() -> tuple[str, ...]:
    lines = _YUE_FILE.read_text(encoding="utf-8").split()
    return tuple(sorted(set(lines)))


SYMBOLS_V1: tuple[str, ...] = _build_v1()
SYMBOLS_V2: tuple[str, ...] = SYMBOLS_V1 + JA_PITCH_MARKS + tuple(sorted(KO_SYMBOLS)) + _load_yue()

_TABLES = {"v1": SYMBOLS_V1, "v2": SYMBOLS_V2}


def symbol_version(version: str) -> str:
    """Map a model version (v1, v2, v2Pro, v2ProPlus, v3, v4) to its symbol table name (v1 or v2)."""
    return version_spec(version).symbols


def symbols(version: str = "v2") -> tuple[str, ...]:
    """The symbol table of a model version; every version after v1 uses the v2 table."""
    return _TABLES[symbol_version(version)]


@cache
def symbol_to_id(version: str = "v2") -> dict[str, int]:
    """Phone → id for a model version (cached; do not mutate)."""
    return {symbol: index for index, symbol in enumerate(symbols(version))}
