"""Splitting long input text into the pieces synthesised one at a time.

The user-facing ids ``cut0`` … ``cut5`` are upstream's and stay stable (UI, API, saved settings); each maps to a
descriptively named function in :data:`STRATEGIES`. :func:`split_text` is the whole pre-segmentation step
(upstream ``pre_seg_text``): apply a strategy, split on newlines, merge pieces shorter than 5 characters into their
neighbour, drop pieces that hold no word character, make sure every piece ends with a punctuation mark, and cut any
piece longer than ``max_chars`` at punctuation (then at spaces, then hard) so one huge paragraph cannot exhaust
memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Marks after which a sentence may end (upstream's ``splits``).
SENTENCE_ENDS = frozenset("，。？！,.?!~:：—…")
# Marks that ``cut5`` splits after.
CLAUSE_MARKS = frozenset(",.;?!、，。？！；：…")
MIN_PIECE_CHARS = 5
MAX_PIECE_CHARS = 510  # upstream's cap: the BERT model reads at most 512 tokens including [CLS]/[SEP]
SENTENCES_PER_GROUP = 4
CHARS_PER_GROUP = 50

_WORD = re.compile(r"\w")
_ENGLISH_FULL_STOP = re.compile(r"(?<!\d)\.(?!\d)")


def split_sentences(text: str) -> list[str]:
    """Split after every sentence-ending mark, keeping the mark (``……`` counts as ``。``, ``——`` as ``，``).

    A final ``。`` is added when the text does not end with a mark, as upstream does.
    """
    text = text.replace("……", "。").replace("——", "，")
    if text and text[-1] not in SENTENCE_ENDS:
        text += "。"
    return _split_after(text, SENTENCE_ENDS)


def no_split(text: str) -> list[str]:
    """``cut0``: keep the text whole (only the user's own line breaks separate pieces)."""
    return [text]


def every_four_sentences(text: str) -> list[str]:
    """``cut1``: groups of four sentences; a trailing group of fewer than four joins the group before it.

    (Upstream drops one boundary too many, so its last group can hold up to eight sentences.)
    """
    sentences = split_sentences(text)
    if len(sentences) <= SENTENCES_PER_GROUP:
        return [text]
    groups = [sentences[i : i + SENTENCES_PER_GROUP] for i in range(0, len(sentences), SENTENCES_PER_GROUP)]
    if len(groups) > 1 and len(groups[-1]) < SENTENCES_PER_GROUP:
        groups[-2].extend(groups.pop())
    return ["".join(g) for g in groups]


def every_fifty_chars(text: str) -> list[str]:
    """``cut2``: add sentences until the group is longer than 50 characters; a short last group joins the previous."""
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return [text]
    groups, current = [], ""
    for sentence in sentences:
        current += sentence
        if len(current) > CHARS_PER_GROUP:
            groups.append(current)
            current = ""
    if current:
        groups.append(current)
    if len(groups) > 1 and len(groups[-1]) < CHARS_PER_GROUP:
        last = groups.pop()
        groups[-1] += last
    return groups


def chinese_full_stops(text: str) -> list[str]:
    """``cut3``: split at every ``。`` (the mark is removed)."""
    return text.strip("。").split("。")


def english_full_stops(text: str) -> list[str]:
    """``cut4``: split at every ``.`` that is not a decimal point (the mark is removed)."""
    return _ENGLISH_FULL_STOP.split(text.strip("."))


def every_punctuation(text: str) -> list[str]:
    """``cut5``: split after every clause mark (kept), except a ``.`` between two digits."""
    pieces, current = [], []
    for i, char in enumerate(text):
        current.append(char)
        if char not in CLAUSE_MARKS:
            continue
        if char == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            continue
        pieces.append("".join(current))
        current = []
    if current:
        pieces.append("".join(current))
    return pieces


STRATEGIES: dict[str, Callable[[str], list[str]]] = {
    "cut0": no_split,
    "cut1": every_four_sentences,
    "cut2": every_fifty_chars,
    "cut3": chinese_full_stops,
    "cut4": english_full_stops,
    "cut5": every_punctuation,
}


def merge_short_pieces(pieces: list[str], min_chars: int = MIN_PIECE_CHARS) -> list[str]:
    """Join pieces until each holds at least ``min_chars`` characters; a short remainder joins the last piece."""
    if len(pieces) < 2:
        return list(pieces)
    merged, current = [], ""
    for piece in pieces:
        current += piece
        if len(current) >= min_chars:
            merged.append(current)
            current = ""
    if current:
        if merged:
            merged[-1] += current
        else:
            merged.append(current)
    return merged


def cap_length(piece: str, max_chars: int = MAX_PIECE_CHARS) -> list[str]:
    """Cut a piece longer than ``max_chars``: greedily at clause marks, else at spaces, else every ``max_chars``."""
    if len(piece) <= max_chars:
        return [piece]
    for boundary in (CLAUSE_MARKS | SENTENCE_ENDS, frozenset(" \t")):
        parts = _split_after(piece, boundary)
        if len(parts) > 1 and max(len(p) for p in parts) <= max_chars:
            return _pack(parts, max_chars)
        if len(parts) > 1:
            return [chunk for part in _pack(parts, max_chars) for chunk in cap_length(part, max_chars)]
    return [piece[i : i + max_chars] for i in range(0, len(piece), max_chars)]


def _split_after(text: str, marks: frozenset[str]) -> list[str]:
    """Cut after every character in ``marks`` (kept with the piece before it); the rest is the last piece."""
    parts, start = [], 0
    for i, char in enumerate(text):
        if char in marks:
            parts.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        parts.append(text[start:])
    return parts


def _pack(parts: list[str], max_chars: int) -> list[str]:
    packed, current = [], ""
    for part in parts:
        if current and len(current) + len(part) > max_chars:
            packed.append(current)
            current = ""
        current += part
    if current:
        packed.append(current)
    return packed


def _first_clause(text: str) -> str:
    for i, char in enumerate(text):
        if char in SENTENCE_ENDS:
            return text[:i].strip()
    return text.strip()


def split_text(text: str, method: str = "cut1", language: str = "zh", max_chars: int = MAX_PIECE_CHARS) -> list[str]:
    """Split ``text`` into synthesis pieces with the strategy ``method`` (a key of :data:`STRATEGIES`).

    Every piece contains at least one word character, ends with a punctuation mark (``.`` for English, ``。``
    otherwise) and is at most ``max_chars`` characters long (plus that final mark).
    """
    if method not in STRATEGIES:
        raise ValueError(f"Unknown text split method {method!r}; use one of: {', '.join(STRATEGIES)}.")
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}.")
    text = text.strip("\n")
    if not text.strip():
        return []
    full_stop = "." if language == "en" else "。"
    if text[0] not in SENTENCE_ENDS and len(_first_clause(text)) < 4:
        # Upstream starts a text whose first clause is very short with a full stop: the GPT copes better.
        text = full_stop + text
    pieces = [line for chunk in STRATEGIES[method](text) for line in chunk.split("\n")]
    pieces = merge_short_pieces([p for p in pieces if _WORD.search(p)])
    out = []
    for piece in pieces:
        if not _WORD.search(piece):
            continue
        for part in cap_length(piece, max_chars):
            if not _WORD.search(part):
                continue
            if part[-1] not in SENTENCE_ENDS:
                part += full_stop
            out.append(part)
    return out
