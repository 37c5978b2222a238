"""Mandarin front-end: normalisation, segmentation, pinyin with tone sandhi and erhua, opencpop phones.

``normalize(text)`` → a string of CJK characters and the punctuation ``! ? … , . -`` (numbers spelled out, other
marks mapped or dropped, runs of punctuation collapsed). ``g2p(norm_text)`` → two phones per character (initial,
final+tone) and one per punctuation mark, with ``word2ph`` giving the count per character.

Readings: jieba (with part-of-speech tags) segments each sentence; pypinyin gives each word's dictionary reading;
if the user has upstream's G2PW model folder, its predictions replace pypinyin's for polyphonic characters. The
tone sandhi rules (:mod:`.tone_sandhi`) then adjust tones. Dictionaries load once, on first use.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

from GPT_SoVITS.text.symbols import PUNCTUATION
from GPT_SoVITS.text.tone_sandhi import ToneSandhi
from GPT_SoVITS.text.zh_normalization import normalize_sentences

log = logging.getLogger(__name__)

__all__ = [
    "G2PW_DIR", "MandarinG2P", "default_g2p", "default_g2p_v1", "g2p", "g2p_v1", "map_marks", "normalize",
    "normalize_mixed",
    "split_pinyin", "syllable_to_phones",
]  # fmt: skip

G2PW_DIR = Path(__file__).resolve().parent / "G2PWModel"

# ------------------------------------------------------------------------------------------- punctuation
_PUNCTUATION_MAP = {
    "：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",", "...": "…",
    "$": ".", "/": ",", "—": "-", "~": "…", "～": "…",
}  # fmt: skip
_PUNCTUATION_RE = re.compile("|".join(re.escape(mark) for mark in _PUNCTUATION_MAP))
_PUNCT_CLASS = re.escape("".join(PUNCTUATION))
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5" + _PUNCT_CLASS + r"]+")
# A run of punctuation (or whitespace followed by punctuation) keeps only its first mark, so that "？！" or "……"
# does not leak an unusual pause pattern into the prompt.
_PUNCT_RUN = re.compile(r"([" + _PUNCT_CLASS + r"\s])([" + _PUNCT_CLASS + r"])+")
_SENTENCE_BREAK = re.compile(r"(?<=[" + _PUNCT_CLASS + r"])\s*")
_LATIN = re.compile(r"[a-zA-Z]+")


_NOT_KEPT_MIXED = re.compile(r"[^\u4e00-\u9fa5A-Za-z" + _PUNCT_CLASS + r"]+")


def map_marks(text: str, keep_latin: bool = False) -> str:
    """Map Chinese punctuation to the phone set's marks and delete everything but CJK and those marks (and Latin
    letters when ``keep_latin``). Cantonese (``yue``) uses it too."""
    text = _PUNCTUATION_RE.sub(lambda match: _PUNCTUATION_MAP[match.group(0)], text)
    return (_NOT_KEPT_MIXED if keep_latin else _NOT_KEPT).sub("", text)


def map_punctuation(text: str, keep_latin: bool = False) -> str:
    """:func:`map_marks` after Mandarin's respellings (嗯 → 恩, 呣 → 母)."""
    return map_marks(text.replace("嗯", "恩").replace("呣", "母"), keep_latin)


def collapse_punctuation(text: str) -> str:
    return _PUNCT_RUN.sub(r"\1", text)


def normalize(text: str) -> str:
    """Normalise Mandarin text: verbalise numbers and symbols, map punctuation, keep only CJK and ``!?…,.-``."""
    return collapse_punctuation("".join(map_punctuation(sentence) for sentence in normalize_sentences(text)))


def normalize_mixed(text: str) -> str:
    """:func:`normalize` that keeps Latin letters (upstream ``mix_text_normalize``): used on Chinese text with
    English words before language segmentation. Spaces are dropped, as in :func:`normalize`; upstream upper-cases
    the letters before calling it."""
    sentences = normalize_sentences(text)
    return collapse_punctuation("".join(map_punctuation(sentence, keep_latin=True) for sentence in sentences))


# ---------------------------------------------------------------------------------- pinyin → opencpop phones
_ZERO_INITIAL_FIX = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}
_ZERO_INITIAL_FIRST = {"v": "yu", "i": "y", "u": "w"}
_COMPACT_FINALS = {"uei": "ui", "iou": "iu", "uen": "un"}
_RETROFLEX = ("zh", "ch", "sh")
_CONSONANTS = "bpmfdtnlgkhjqxrzcsyw"
_Y_FINALS = {"u": "v", "ue": "ve", "uan": "van", "un": "vn", "e": "E", "an": "En"}
_PSEUDO_INITIALS = {"a": "AA", "e": "EE", "o": "OO"}
# Interjection syllables outside the opencpop table, read as the closest table syllable.
_SYLLABLE_ALIASES = {"m": "mu", "n": "en", "ng": "en", "hm": "hen", "hng": "heng", "ê": "ei"}


@lru_cache(maxsize=1024)
def split_pinyin(pinyin: str) -> tuple[str, str]:
    """Split a toneless pinyin syllable (``y``/``w`` spelling, ``v`` for ü) into opencpop-strict initial and final:
    ``zhi`` → (zh, ir), ``zi`` → (z, i0), ``yan`` → (y, En), ``ju`` → (j, v), ``e`` → (EE, e)."""
    pinyin = _SYLLABLE_ALIASES.get(pinyin, pinyin)
    if pinyin[:2] in _RETROFLEX:
        initial, rest = pinyin[:2], pinyin[2:]
    elif pinyin[0] in _CONSONANTS and len(pinyin) > 1:
        initial, rest = pinyin[0], pinyin[1:]
    else:
        initial, rest = _PSEUDO_INITIALS.get(pinyin[0], "EE"), pinyin
    if rest == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "ir"
    elif rest == "i" and initial in ("z", "c", "s"):
        final = "i0"
    elif initial in ("j", "q", "x") and rest.startswith("u"):
        final = "v" + rest[1:]
    elif initial == "y":
        final = _Y_FINALS.get(rest, rest)
    elif initial in ("l", "n") and rest in ("ue", "u:e"):
        final = "ve"
    else:
        final = rest
    return initial, final


@lru_cache(maxsize=4096)
def syllable_to_phones(initial: str, final: str) -> tuple[str, ...]:
    """Phones for one character from pypinyin's strict initial and tone3 final (neutral tone = 5).

    Punctuation comes through with initial == final and stays one phone. Upstream's spelling fixes apply first:
    uei/iou/uen → ui/iu/un after an initial; zero-initial syllables get their y/w spelling (i → yi, u → wu…).
    """
    if initial == final:
        return (initial,)
    base, tone = (final[:-1], final[-1]) if final[-1:].isdigit() else (final, "5")
    if initial:
        pinyin = initial + _COMPACT_FINALS.get(base, base)
    elif base in _ZERO_INITIAL_FIX:
        pinyin = _ZERO_INITIAL_FIX[base]
    elif base and base[0] in _ZERO_INITIAL_FIRST:
        pinyin = _ZERO_INITIAL_FIRST[base[0]] + base[1:]
    else:
        pinyin = base
    new_initial, new_final = split_pinyin(pinyin)
    return new_initial, new_final + tone


# ------------------------------------------------------------------------------------------------ readings
# pypinyin is the hot spot of the front-end and words repeat, so dictionary readings are memoised per word.
@lru_cache(maxsize=65536)
def _cached_finals(word: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    return tuple(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3))


@lru_cache(maxsize=65536)
def _cached_initials(word: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    return tuple(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS))


def _finals_tone3(word: str) -> list[str]:
    """pypinyin's finals of a word (strict, tone3, neutral tone 5); a fresh list the caller may modify."""
    return list(_cached_finals(word))


def _initials(word: str) -> list[str]:
    return list(_cached_initials(word))


def _syllabic_nasal(char: str) -> tuple[str, str]:
    from pypinyin import Style, lazy_pinyin

    reading = lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)[0]
    base, tone = (reading[:-1], reading[-1]) if reading[-1:].isdigit() else (reading, "5")
    return _SYLLABLE_ALIASES.get(base, base), tone


class MandarinG2P:
    """Segmentation + readings + sandhi. ``g2pw`` is an optional polyphone model (:class:`.g2pw.G2PW`) whose
    readings replace pypinyin's for the characters it predicts. ``erhua=False`` skips the erhua tone rule (the v1
    front-end has none). Building one loads jieba's dictionary."""

    def __init__(self, g2pw: object | None = None, erhua: bool = True) -> None:
        try:
            import jieba
            import jieba.posseg
            import pypinyin  # noqa: F401  (imported where used; checked here so a missing one fails early)
        except ImportError as error:
            from GPT_SoVITS.text.cleaner import LanguageUnavailableError

            raise LanguageUnavailableError(
                f"Mandarin needs the packages jieba and pypinyin ({error.name} is missing): "
                "pip install jieba==0.42.1 pypinyin==0.55.0"
            ) from error
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        self._posseg = jieba.posseg
        self.sandhi = ToneSandhi(_finals_tone3)
        self.g2pw = g2pw
        self.erhua = erhua

    def _word_readings(self, word: str, predicted: list[str | None] | None) -> tuple[list[str], list[str]]:
        initials, finals = _initials(word), _finals_tone3(word)
        if len(initials) != len(word):
            return initials, finals
        from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

        for i, final in enumerate(finals):
            if not final:  # syllabic nasals (嗯 n2, 呣 m2, 噷 hm5) have no strict final: read an alias syllable
                base, tone = _syllabic_nasal(word[i])
                initials[i] = to_initials(base, strict=True)
                finals[i] = to_finals_tone3(base, strict=True) + tone
        if not predicted:
            return initials, finals

        for i, reading in enumerate(predicted):
            if reading:
                initials[i] = to_initials(reading, strict=True)
                finals[i] = to_finals_tone3(reading, strict=True, neutral_tone_with_five=True)
        return initials, finals

    def _sentence(self, sentence: str) -> tuple[list[str], list[int]]:
        sentence = _LATIN.sub("", sentence)
        words = self.sandhi.pre_merge([(pair.word, pair.flag) for pair in self._posseg.lcut(sentence)])
        predicted = self.g2pw.predict(sentence) if self.g2pw is not None else None
        phones: list[str] = []
        word2ph: list[int] = []
        offset = 0
        for word, pos in words:
            start, offset = offset, offset + len(word)
            if pos == "eng":
                continue
            initials, finals = self._word_readings(word, predicted[start:offset] if predicted else None)
            finals = self.sandhi.modify(word, pos, finals)
            if self.erhua:
                initials, finals = self.sandhi.erhua(word, pos, initials, finals)
            for initial, final in zip(initials, finals, strict=True):
                if initial == final and initial not in PUNCTUATION:
                    # A character pypinyin cannot read: keep the alignment; the cleaner turns it into UNK.
                    log.warning("No Mandarin reading for %r; it becomes UNK.", initial)
                    phones.extend(initial)
                    word2ph.extend([1] * len(initial))
                    continue
                syllable = syllable_to_phones(initial, final)
                phones.extend(syllable)
                word2ph.append(len(syllable))
        return phones, word2ph

    def __call__(self, norm_text: str) -> tuple[list[str], list[int]]:
        phones: list[str] = []
        word2ph: list[int] = []
        for sentence in _SENTENCE_BREAK.split(norm_text):
            if sentence.strip():
                sentence_phones, sentence_word2ph = self._sentence(sentence)
                phones += sentence_phones
                word2ph += sentence_word2ph
        return phones, word2ph


@lru_cache(maxsize=1)
def default_g2p() -> MandarinG2P:
    """The process-wide Mandarin G2P, built on first use. It uses G2PW when upstream's model folder is at
    ``GPT_SoVITS/text/G2PWModel`` (tokenizer from ``pretrained_models/chinese-roberta-wwm-ext-large``)."""
    from GPT_SoVITS.text.g2pw import load_default_g2pw

    return MandarinG2P(g2pw=load_default_g2pw(G2PW_DIR))


@lru_cache(maxsize=1)
def default_g2p_v1() -> MandarinG2P:
    """The v1 front-end (upstream ``chinese.py``): pypinyin readings and tone sandhi, no G2PW, no erhua rule."""
    return MandarinG2P(g2pw=None, erhua=False)


def g2p(norm_text: str) -> tuple[list[str], list[int]]:
    """Phones and per-character phone counts for normalised Mandarin text (output of :func:`normalize`)."""
    return default_g2p()(norm_text)


def g2p_v1(norm_text: str) -> tuple[list[str], list[int]]:
    """:func:`g2p` as the v1 models were trained: without G2PW and without the erhua tone rule."""
    return default_g2p_v1()(norm_text)
