"""Mandarin tone sandhi and erhua on segmented words (the rules of PaddleSpeech's ``ToneSandhi``, used upstream).

Finals are written in pypinyin's ``FINALS_TONE3`` style with the neutral tone as 5 (``"ao3"``, ``"e5"``); every
rule rewrites the tone digit at the end of a final. Two steps:

1. :meth:`ToneSandhi.pre_merge` joins jieba words so that the rules see whole units: 不 + next word, X一X, 一 + next
   word, reduplications, short runs of third tones, and 儿 onto the previous word.
2. :meth:`ToneSandhi.modify` applies, per word: 不 sandhi, 一 sandhi, neutral tones (particles, suffixes,
   reduplication, a word list), then third-tone sandhi. :meth:`ToneSandhi.erhua` then fixes the tone of a final 儿.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_DATA = Path(__file__).resolve().parent / "data" / "zh"

_PUNCTUATION = "：，；。？！“”‘’':,;.?!"
_PARTICLES = "吧呢啊呐噻嘛吖嗨哦哒额滴哩哟喽啰耶喔诶"
_STRUCTURAL = "的地得"
_ASPECT = "了着过"
_ASPECT_POS = {"ul", "uz", "ug"}
_PLURAL_SUFFIX = "们子"
_LOCATIVES = "上下里"
_LOCATIVE_POS = {"s", "l", "f"}
_DIRECTIONALS = "来去"
_DIRECTION_PREFIXES = "上下进出回过起开"
_CLASSIFIER_PREFIXES = "几有两半多各整每做是"
_ERHUA_EXCLUDED_POS = {"a", "j", "nr"}

Segment = list[list[str]]  # [[word, pos], ...]


def _read_words(name: str) -> frozenset[str]:
    lines = (_DATA / name).read_text(encoding="utf-8").splitlines()
    return frozenset(word for line in lines if not line.startswith("#") for word in line.split())


def _with_tone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third(finals: Sequence[str]) -> bool:
    return all(final[-1:] == "3" for final in finals)


def _is_reduplication(word: str) -> bool:
    return len(word) == 2 and word[0] == word[1]


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


@lru_cache(maxsize=65536)
def _split_in_two(word: str) -> tuple[str, str]:
    pieces = sorted(_jieba().cut_for_search(word), key=len)
    first = pieces[0]
    if word.find(first) == 0:
        return first, word[len(first) :]
    return word[: -len(first)], first


class ToneSandhi:
    """Tone sandhi rules. ``finals_of(word)`` returns the dictionary finals of a word (tone3 style, neutral as 5);
    it is used to find runs of third tones before the per-word readings are known."""

    def __init__(self, finals_of: Callable[[str], list[str]]) -> None:
        self._finals_of = finals_of
        self.must_neutral = _read_words("must_neutral_words.txt")
        self.must_not_neutral = _read_words("must_not_neutral_words.txt")
        self.not_erhua = _read_words("not_erhua_words.txt")
        self.must_erhua = _read_words("must_erhua_words.txt")

    # ------------------------------------------------------------------------------------------- word splitting
    def _split_word(self, word: str) -> list[str]:
        """Split a word in two around its shortest search-mode sub-word (e.g. 纸老虎 → 纸 / 老虎)."""
        return list(_split_in_two(word))

    # --------------------------------------------------------------------------------------------- the rules
    def _bu(self, word: str, finals: list[str]) -> list[str]:
        if len(word) == 3 and word[1] == "不":  # 看不懂
            finals[1] = _with_tone(finals[1], "5")
            return finals
        for i, char in enumerate(word[:-1]):
            if char == "不" and finals[i + 1][-1:] == "4":  # 不怕 → bu2
                finals[i] = _with_tone(finals[i], "2")
        return finals

    def _yi(self, word: str, finals: list[str]) -> list[str]:
        if "一" in word and all(char.isnumeric() for char in word if char != "一"):
            return finals  # a digit string such as 一零一: 一 keeps yi1
        if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:  # 看一看
            finals[1] = _with_tone(finals[1], "5")
        elif word.startswith("第一"):  # ordinal
            finals[1] = _with_tone(finals[1], "1")
        else:
            for i, char in enumerate(word[:-1]):
                if char != "一":
                    continue
                if finals[i + 1][-1:] == "4":  # 一段 → yi2
                    finals[i] = _with_tone(finals[i], "2")
                elif word[i + 1] not in _PUNCTUATION:  # 一天 → yi4
                    finals[i] = _with_tone(finals[i], "4")
        return finals

    def _is_must_neutral(self, word: str) -> bool:
        return word in self.must_neutral or word[-2:] in self.must_neutral

    def _suffix_is_neutral(self, word: str, pos: str) -> bool:
        """Whether the last syllable is neutral because of what the word ends with."""
        last = word[-1:]
        if not last:
            return False
        return (
            last in _PARTICLES  # 吧 呢 啊
            or last in _STRUCTURAL  # 的 地 得
            or (len(word) == 1 and word in _ASPECT and pos in _ASPECT_POS)  # 了 着 过 as aspect markers
            or (len(word) > 1 and last in _PLURAL_SUFFIX and pos in {"r", "n"} and word not in self.must_not_neutral)
            or (len(word) > 1 and last in _LOCATIVES and pos in _LOCATIVE_POS)  # 桌上, 家里
            or (len(word) > 1 and last in _DIRECTIONALS and word[-2] in _DIRECTION_PREFIXES)  # 上来, 回去
        )

    def _neutral(self, word: str, pos: str, finals: list[str]) -> list[str]:
        for j in range(1, len(word)):  # reduplicated nouns, verbs, adjectives: 奶奶, 试试
            if word[j] == word[j - 1] and pos[:1] in {"n", "v", "a"} and word not in self.must_not_neutral:
                finals[j] = _with_tone(finals[j], "5")
        ge = word.find("个")
        if self._suffix_is_neutral(word, pos):
            finals[-1] = _with_tone(finals[-1], "5")
        elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in _CLASSIFIER_PREFIXES)) or word == "个":
            finals[ge] = _with_tone(finals[ge], "5")
        elif self._is_must_neutral(word):
            finals[-1] = _with_tone(finals[-1], "5")

        parts = self._split_word(word)
        head, tail = finals[: len(parts[0])], finals[len(parts[0]) :]
        for part, part_finals in zip(parts, (head, tail), strict=True):
            if part_finals and self._is_must_neutral(part):
                part_finals[-1] = _with_tone(part_finals[-1], "5")
        return head + tail

    def _third(self, word: str, finals: list[str]) -> list[str]:
        if len(word) == 2 and _all_third(finals):
            finals[0] = _with_tone(finals[0], "2")
        elif len(word) == 3:
            parts = self._split_word(word)
            if _all_third(finals):
                if len(parts[0]) == 2:  # 蒙古/包
                    finals[0] = _with_tone(finals[0], "2")
                    finals[1] = _with_tone(finals[1], "2")
                elif len(parts[0]) == 1:  # 纸/老虎
                    finals[1] = _with_tone(finals[1], "2")
            else:
                halves = [finals[: len(parts[0])], finals[len(parts[0]) :]]
                for i, half in enumerate(halves):
                    if _all_third(half) and len(half) == 2:  # 所有/人
                        half[0] = _with_tone(half[0], "2")
                    elif i == 1 and not _all_third(half) and half and half[0][-1:] == "3" and halves[0] and \
                            halves[0][-1][-1:] == "3":  # 好/喜欢  # fmt: skip
                        halves[0][-1] = _with_tone(halves[0][-1], "2")
                finals = halves[0] + halves[1]
        elif len(word) == 4:  # idioms: two halves of two
            halves = [finals[:2], finals[2:]]
            for half in halves:
                if _all_third(half):
                    half[0] = _with_tone(half[0], "2")
            finals = halves[0] + halves[1]
        return finals

    def modify(self, word: str, pos: str, finals: list[str]) -> list[str]:
        """Apply 不, 一, neutral-tone and third-tone sandhi to the finals of one (pre-merged) word."""
        finals = list(finals)
        finals = self._bu(word, finals)
        finals = self._yi(word, finals)
        finals = self._neutral(word, pos, finals)
        return self._third(word, finals)

    def erhua(self, word: str, pos: str, initials: list[str], finals: list[str]) -> tuple[list[str], list[str]]:
        """A word-final 儿 is read er2 (not er1) and, in erhua words, takes the tone of the syllable before it."""
        finals = list(finals)
        last = len(finals) - 1
        if 0 <= last < len(word) and word[last] == "儿" and finals[last] == "er1":
            finals[last] = "er2"
        if word not in self.must_erhua and (word in self.not_erhua or pos in _ERHUA_EXCLUDED_POS):
            return initials, finals
        if len(finals) != len(word) or len(word) < 2:
            return initials, finals
        if word[-1] == "儿" and finals[-1] in {"er2", "er5"} and word[-2:] not in self.not_erhua:
            finals[-1] = "er" + finals[-2][-1:]
        return initials, finals

    # ------------------------------------------------------------------------------------------ pre-merging
    def _merge_bu(self, seg: Segment) -> Segment:
        merged: Segment = []
        pending = ""
        for word, pos in seg:
            if pending:
                word, pending = pending + word, ""
            if word == "不":
                pending = word
            else:
                merged.append([word, pos])
        if pending:
            merged.append([pending, "d"])
        return merged

    def _merge_yi(self, seg: Segment) -> Segment:
        # X 一 X with X a verb: 看 一 看 → 看一看
        merged: Segment = []
        i = 0
        while i < len(seg):
            word, pos = seg[i]
            if (
                merged and word == "一" and i + 1 < len(seg) and merged[-1][0] == seg[i + 1][0]
                and merged[-1][1] == "v" and seg[i + 1][1] == "v"
            ):  # fmt: skip
                merged[-1][0] = merged[-1][0] + "一" + seg[i + 1][0]
                i += 2
                continue
            merged.append([word, pos])
            i += 1
        # a lone 一 joins the next word: 一 天 → 一天
        out: Segment = []
        for word, pos in merged:
            if out and out[-1][0] == "一":
                out[-1][0] += word
            else:
                out.append([word, pos])
        return out

    def _merge_reduplication(self, seg: Segment) -> Segment:
        out: Segment = []
        for word, pos in seg:
            if out and word == out[-1][0]:
                out[-1][0] += word
            else:
                out.append([word, pos])
        return out

    def _merge_third_tones(self, seg: Segment, whole_words: bool) -> Segment:
        """Join neighbours (total length ≤ 3) whose boundary is two third tones: when ``whole_words``, both words
        must be all third tone; otherwise only the last syllable of one and the first of the next."""
        finals = [self._finals_of(word) for word, _ in seg]
        out: Segment = []
        merged_last = False
        for i, (word, pos) in enumerate(seg):
            if i > 0 and not merged_last and finals[i - 1] and finals[i]:
                if whole_words:
                    joinable = _all_third(finals[i - 1]) and _all_third(finals[i])
                else:
                    joinable = finals[i - 1][-1][-1:] == "3" and finals[i][0][-1:] == "3"
                previous = seg[i - 1][0]
                if joinable and not _is_reduplication(previous) and len(previous) + len(word) <= 3:
                    out[-1][0] += word
                    merged_last = True
                    continue
            out.append([word, pos])
            merged_last = False
        return out

    def _merge_er(self, seg: Segment) -> Segment:
        out: Segment = []
        for word, pos in seg:
            if out and word == "儿" and out[-1][0] != "#":
                out[-1][0] += word
            else:
                out.append([word, pos])
        return out

    def pre_merge(self, seg: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Join jieba ``(word, pos)`` pairs into the units the sandhi rules work on."""
        merged: Segment = [[word, pos] for word, pos in seg]
        merged = self._merge_bu(merged)
        merged = self._merge_yi(merged)
        merged = self._merge_reduplication(merged)
        merged = self._merge_third_tones(merged, whole_words=True)
        merged = self._merge_third_tones(merged, whole_words=False)
        merged = self._merge_er(merged)
        return [(word, pos) for word, pos in merged]
