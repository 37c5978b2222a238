"""Mandarin text normalisation: spell out numbers, dates, units… in Chinese characters, sentence by sentence.

Follows upstream GPT-SoVITS (itself derived from PaddleSpeech's ``zh_normalization``): the text is split into
sentences after ``：、，；。？！,;?!``; each sentence is converted to simplified characters, full-width letters and
digits become ASCII, the rules in :mod:`.rules` verbalise non-standard words, and leftover symbols are read or
dropped (``/`` → 每, ``+`` → 加, ``-`` → 减, Greek letters by name, circled numbers).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from GPT_SoVITS.text.zh_normalization.rules import RULES

log = logging.getLogger(__name__)

__all__ = ["normalize_sentence", "normalize_sentences", "split_sentences", "to_simplified", "to_traditional"]

# Removed before splitting (Chinese text has no meaningful spaces; brackets and quotes are not read). "=" is kept
# for the arithmetic rule (1+1=2 → 一加一等于二), as in upstream's current normaliser (older versions removed it).
_DROPPED_BEFORE_SPLIT = re.compile(r"[—《》【】<>{}()（）#&@“”^_|\\]")
_SENTENCE_END = re.compile(r"([：、，；。？！,;?!][”’]?)")
_DROPPED_AFTER = re.compile(r"[-—《》【】<=>{}()（）#&@“”^_|\\]")

# Full-width ASCII letters and digits (U+FF10–FF19, FF21–FF3A, FF41–FF5A) and the ideographic space → ASCII.
# Upstream converts only these; we also convert the full-width signs that numbers use (％ ． ＋ － ＝ ／), so that
# ５０％ reads 百分之五十 and １２．５ reads 十二点五.
_FULL_TO_HALF = str.maketrans(
    {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F) if chr(code - 0xFEE0).isalnum()}
    | {"\u3000": " ", "％": "%", "．": ".", "＋": "+", "－": "-", "＝": "=", "／": "/"}
)

_SYMBOL_WORDS = {
    "/": "每", "①": "一", "②": "二", "③": "三", "④": "四", "⑤": "五", "⑥": "六", "⑦": "七", "⑧": "八",
    "⑨": "九", "⑩": "十", "α": "阿尔法", "β": "贝塔", "γ": "伽玛", "Γ": "伽玛", "δ": "德尔塔", "Δ": "德尔塔",
    "ε": "艾普西龙", "ζ": "捷塔", "η": "依塔", "θ": "西塔", "Θ": "西塔", "ι": "艾欧塔", "κ": "喀帕", "λ": "拉姆达",
    "Λ": "拉姆达", "μ": "缪", "ν": "纽", "ξ": "克西", "Ξ": "克西", "ο": "欧米克伦", "π": "派", "Π": "派",
    "ρ": "肉", "ς": "西格玛", "σ": "西格玛", "Σ": "西格玛", "τ": "套", "υ": "宇普西龙", "φ": "服艾", "Φ": "服艾",
    "χ": "器", "ψ": "普赛", "Ψ": "普赛", "ω": "欧米伽", "Ω": "欧米伽",
    # Leftover operators (after the arithmetic rule) are still read, as upstream does.
    "+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等",
}  # fmt: skip
_SYMBOLS = re.compile("|".join(re.escape(symbol) for symbol in _SYMBOL_WORDS))


@lru_cache(maxsize=2)
def _opencc(config: str):
    try:
        import opencc
    except ImportError as error:
        from GPT_SoVITS.text.cleaner import LanguageUnavailableError

        raise LanguageUnavailableError(
            "Chinese text normalisation needs the package OpenCC: pip install OpenCC==1.4.2"
        ) from error
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC ``t2s``; loaded once on first use)."""
    if text.isascii():
        return text
    return _opencc("t2s").convert(text)


def to_traditional(text: str) -> str:
    """Simplified → traditional Chinese as used in Taiwan (OpenCC ``s2tw``), the script G2PW was trained on."""
    if text.isascii():
        return text
    return _opencc("s2tw").convert(text)


def split_sentences(text: str) -> list[str]:
    """Drop spaces, brackets and quotes, then split after every sentence or clause mark (kept at the end)."""
    text = _DROPPED_BEFORE_SPLIT.sub("", text.replace(" ", ""))
    text = _SENTENCE_END.sub(r"\1\n", text).strip()
    return [sentence.strip() for sentence in re.split(r"\n+", text)]


def normalize_sentence(sentence: str) -> str:
    """Verbalise one sentence (no splitting)."""
    sentence = to_simplified(sentence).translate(_FULL_TO_HALF)
    for rule in RULES:
        sentence = rule(sentence)
    sentence = _SYMBOLS.sub(lambda match: _SYMBOL_WORDS[match.group(0)], sentence)
    return _DROPPED_AFTER.sub("", sentence)


def normalize_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences and verbalise each (still with Latin letters and original punctuation)."""
    return [normalize_sentence(sentence) for sentence in split_sentences(text)]
