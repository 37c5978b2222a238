"""Cantonese front end: the Mandarin normaliser's number/symbol verbalisation, ToJyutping readings, ``Y`` phones.

Each Jyutping syllable becomes two phones: ``Y`` + initial (no tone) and ``Y`` + final + tone (1–6); a punctuation
mark is one phone, unprefixed. Syllables without a consonant initial are split after their leading vowel group
(``aa3`` -> ``Yaa Ya3``, ``m4`` -> ``Ym Ym4``, ``ng5`` -> ``Yng Yg5``) exactly as upstream's table expects.
``word2ph`` has one entry per character of the normalised text (2 per syllable, 1 per mark), although BERT features
for Cantonese are zeros, as upstream.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from types import ModuleType

from GPT_SoVITS.text.symbols import PUNCTUATION

log = logging.getLogger(__name__)

# Longest match first where one initial is a prefix of another (aa before a, gw before g, ng before n).
_INITIALS = ("aa", "ai", "ak", "au", "a", "p", "b", "e", "t", "d", "kw", "k", "gw", "g", "f", "h", "l", "m", "ng",
             "n", "s", "w", "c", "z", "j", "oi", "ok", "on", "ou", "o", "uk")  # fmt: skip
_PUNCT_CLASS = re.escape("".join(PUNCTUATION))
_PUNCT_RUN = re.compile(r"([" + _PUNCT_CLASS + r"])([" + _PUNCT_CLASS + r"])+")
_SYLLABLE = re.compile(r"^([a-z]+)([1-6])$")


@lru_cache(maxsize=1)
def _jyutping() -> ModuleType:
    try:
        import ToJyutping
    except ImportError as e:
        from GPT_SoVITS.text.cleaner import LanguageUnavailableError

        raise LanguageUnavailableError("Cantonese needs the package ToJyutping: pip install ToJyutping") from e
    return ToJyutping


def normalize(text: str) -> str:
    """Verbalise numbers and symbols (Mandarin normaliser), map punctuation, keep only CJK and ``!?…,.-``."""
    from GPT_SoVITS.text.zh import map_marks  # the Mandarin punctuation map, without Mandarin's respellings
    from GPT_SoVITS.text.zh_normalization import normalize_sentences

    return _PUNCT_RUN.sub(r"\1", "".join(map_marks(sentence) for sentence in normalize_sentences(text)))


def syllable_phones(syllable: str) -> tuple[str, str]:
    """``hoeng1`` -> (``Yh``, ``Yoeng1``); zero-initial syllables split after their vowel group."""
    m = _SYLLABLE.match(syllable)
    if m is None:
        raise ValueError(f"Not a Jyutping syllable with a tone 1-6: {syllable!r}")
    body, tone = m.groups()
    for initial in _INITIALS:
        if body.startswith(initial):
            final = body[len(initial) :] or initial[-1]
            return f"Y{initial}", f"Y{final}{tone}"
    raise ValueError(f"Jyutping syllable {syllable!r} starts with no known initial")


def g2p(norm_text: str) -> tuple[list[str], list[int]]:
    """Phones and per-character phone counts for normalised Cantonese text."""
    phones: list[str] = []
    word2ph: list[int] = []
    for char, reading in _jyutping().get_jyutping_list(norm_text):
        if char in PUNCTUATION:
            phones.append(char)
            word2ph.append(1)
            continue
        syllables = reading.split() if reading else []
        if not syllables:
            log.warning("No Cantonese reading for %r; it is read as UNK", char)
            phones.append("UNK")
            word2ph.append(1)
            continue
        for syllable in syllables:
            phones.extend(syllable_phones(syllable))
        word2ph.append(2 * len(syllables))
    return phones, word2ph
