"""Text splitting: upstream's cut0…cut5 semantics, merge/filter rules and the hard length cap."""

from __future__ import annotations

import re

import pytest

from GPT_SoVITS.text.split import (
    STRATEGIES,
    cap_length,
    chinese_full_stops,
    english_full_stops,
    every_fifty_chars,
    every_four_sentences,
    every_punctuation,
    merge_short_pieces,
    split_sentences,
    split_text,
)

ZH = "今天天气很好。我们去公园吧！你觉得怎么样？好啊，走吧。明天也去。后天呢？"


def test_strategy_ids_are_upstreams() -> None:
    assert list(STRATEGIES) == ["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"]


def test_split_sentences_keeps_marks_and_adds_final_stop() -> None:
    assert split_sentences("你好，世界") == ["你好，", "世界。"]
    assert split_sentences("等等……好——的") == ["等等。", "好，", "的。"]


def test_every_four_sentences_groups() -> None:
    assert every_four_sentences(ZH) == [ZH]  # 7 sentences: the trailing 3 join the first 4
    eight = ZH + "好。"
    assert every_four_sentences(eight) == [
        "今天天气很好。我们去公园吧！你觉得怎么样？好啊，",
        "走吧。明天也去。后天呢？好。",
    ]
    assert every_four_sentences("一。二。三。") == ["一。二。三。"]
    eleven = "".join(f"句{i}。" for i in range(11))
    assert [g.count("。") for g in every_four_sentences(eleven)] == [4, 7]


def test_every_fifty_chars() -> None:
    sentence = "这是一个相当长的句子，用来测试按字数切分。"  # 21 chars
    text = sentence * 6
    groups = every_fifty_chars(text)
    assert "".join(groups) == text
    assert all(len(g) > 50 for g in groups)
    assert every_fifty_chars("短句") == ["短句"]


def test_full_stop_strategies() -> None:
    assert chinese_full_stops("一句。二句。") == ["一句", "二句"]
    assert english_full_stops("Pi is 3.14 here. Yes.") == ["Pi is 3.14 here", " Yes"]


def test_every_punctuation_keeps_decimals() -> None:
    assert every_punctuation("It is 3.5 m, ok? Yes!") == ["It is 3.5 m,", " ok?", " Yes!"]
    assert every_punctuation("你好，世界。") == ["你好，", "世界。"]


def test_merge_short_pieces() -> None:
    assert merge_short_pieces(["a", "bc", "defgh", "ij"]) == ["abcdefghij"]
    assert merge_short_pieces(["hello", "hi"]) == ["hellohi"]
    assert merge_short_pieces(["hi"]) == ["hi"]


@pytest.mark.parametrize("method", list(STRATEGIES))
def test_no_empty_or_punctuation_only_pieces(method: str) -> None:
    text = "……。\n\n今天天气很好。！！？我们去公园吧，好不好。\n。。。\nOK. Fine! 3.14 is pi.   ——"
    pieces = split_text(text, method, "zh")
    assert pieces
    for piece in pieces:
        assert re.search(r"\w", piece), piece
        assert piece[-1] in "，。？！,.?!~:：—…"


def test_split_text_newlines_split_for_cut0() -> None:
    assert split_text("第一行文本\n第二行文本", "cut0") == ["第一行文本。", "第二行文本。"]


def test_split_text_english_final_stop_and_short_first_clause() -> None:
    assert split_text("Hello there my friend", "cut0", "en") == ["Hello there my friend."]
    assert split_text("Hi, how are you doing today", "cut0", "en")[0].startswith(".Hi")


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="cut0"):
        split_text("text", "cut9")


def test_empty_text() -> None:
    assert split_text("\n \n", "cut1") == []


def test_hard_cap_splits_huge_paragraph() -> None:
    paragraph = "这是一个没有句号的很长的段落，" * 400  # 6000 chars, only commas
    pieces = split_text(paragraph, "cut0", max_chars=510)
    assert len(pieces) > 10
    assert all(len(p) <= 511 for p in pieces)
    assert "".join(p.rstrip("。") for p in pieces).replace("。", "") == paragraph.rstrip("。")


def test_hard_cap_without_any_mark() -> None:
    blob = "字" * 1200
    assert [len(p) for p in cap_length(blob, 500)] == [500, 500, 200]
    words = "word " * 300
    parts = cap_length(words, 100)
    assert all(len(p) <= 100 for p in parts) and "".join(parts) == words
