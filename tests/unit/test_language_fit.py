"""The 1A check that a label's text fits the language it is marked with (GPT_SoVITS/text/language_fit.py)."""

from __future__ import annotations

import pytest

from GPT_SoVITS.text import clean_text
from GPT_SoVITS.text.language_fit import check_phones, check_script, script_units, speech_phones


def test_units_count_words_for_latin_and_characters_for_cjk():
    assert script_units("我用iPhone 15拍照, OK?") == {"han": 4, "latin": 2}
    assert script_units("こんにちは、今日") == {"kana": 5, "han": 2}
    assert script_units("안녕 world") == {"hangul": 2, "latin": 1}
    assert script_units("123, 456!") == {}


@pytest.mark.parametrize(("text", "lang"), [
    ("你好，我们去银行取钱。", "zh"),
    ("我今天用iPhone拍了照片。", "zh"),  # an English brand name in Chinese speech is normal
    ("Hello world, this is a test.", "en"),
    ("こんにちは、今日はいい天気ですね。", "ja"),
    ("東京", "ja"),  # short all-kanji Japanese is fine
    ("안녕하세요 반갑습니다", "ko"),
    ("佢哋今日去咗邊度？", "yue"),
    ("2024, 2025!", "en"),  # no letters: nothing to judge
])
def test_texts_in_their_language_pass(text, lang):
    assert check_script(text, lang).problem == ""


@pytest.mark.parametrize(("text", "lang", "words"), [
    ("今天天气很好，我们去公园吧。", "en", "Chinese characters"),  # the case: Chinese text on EN lines
    ("Hello world, this is a test.", "zh", "Latin letters"),
    ("안녕하세요 반갑습니다", "ja", "Hangul"),
    ("こんにちは", "ko", "kana"),
])
def test_texts_in_another_script_are_refused_with_the_reason(text, lang, words):
    fit = check_script(text, lang)
    assert fit.share < 0.5
    assert words in fit.problem and f"marked {lang.upper()}" in fit.problem


def test_chinese_marked_japanese_without_any_kana_is_refused():
    assert "no kana" in check_script("今天天气很好我们去公园散步吧", "ja").problem
    assert check_script("今日は天気が良いので公園を散歩しましょう", "ja").problem == ""


def test_phone_check_counts_only_speech_phones():
    assert speech_phones([",", "SP", "a", "UNK", ".", "HH", "AH0"]) == 3
    # what the English cleaner makes of Chinese text: punctuation only
    phones = clean_text("今天天气很好，我们去公园吧。", "en", "v2").phones
    assert speech_phones(phones) == 0
    assert "only 0 speech phone(s) for 12" in check_phones("今天天气很好，我们去公园吧。", phones)
    good = clean_text("你好，我们去银行取钱。", "zh", "v2").phones
    assert check_phones("你好，我们去银行取钱。", good) == ""
