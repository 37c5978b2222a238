"""Korean (g2pk2 -> jamo) and Cantonese (ToJyutping -> Y phones) front ends."""

from __future__ import annotations

import sys

import pytest

from GPT_SoVITS.text import LanguageUnavailableError, clean_text, cleaned_text_to_sequence, ko, yue
from GPT_SoVITS.text.symbols import SYMBOLS_V2


# ---------------------------------------------------------------------------------------------- Korean
def test_korean_pronunciation_rules_applied() -> None:
    # 같이 is pronounced 가치 (palatalisation), 갑시다 is 갑씨다 (tensification)
    phones = clean_text("같이 갑시다", "ko").phones
    assert "".join(phones) == "ㄱㅏㅊㅣ空ㄱㅏㅂㅆㅣㄷㅏ."


def test_korean_splits_compound_vowels_and_reads_numbers() -> None:
    phones = clean_text("사과 3개 주세요!", "ko").phones
    assert "".join(phones) == "ㅅㅏㄱㅗㅏ空ㅅㅔㄱㅐ空ㅈㅜㅅㅔㅇㅣㅗ!"  # 과 -> ㄱㅗㅏ, 3개 -> 세개, 요 -> ㅇㅣㅗ


def test_korean_output_is_all_in_table_and_latin_is_read() -> None:
    phones = clean_text("오늘 game을 했다 ABC", "ko").phones
    assert "停" not in phones and "UNK" not in phones
    assert all(p in SYMBOLS_V2 for p in phones)
    assert "".join(phones).endswith("ㅇㅔㅇㅣㅂㅣㅅㅣ.")  # A B C by letter names, final "." after a jamo
    assert len(cleaned_text_to_sequence(phones, "v2")) == len(phones)


def test_korean_unknown_character_becomes_stop_symbol() -> None:
    phones, _ = ko.g2p("안녕 ★")
    assert phones[-1] == "停"


def test_korean_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ko._g2pk.cache_clear()
    ko.pronounce.cache_clear()
    monkeypatch.setitem(sys.modules, "mecab", None)
    try:
        with pytest.raises(LanguageUnavailableError, match="python-mecab-ko"):
            ko.g2p("안녕하세요")
    finally:
        ko._g2pk.cache_clear()


# ------------------------------------------------------------------------------------------- Cantonese
@pytest.mark.parametrize(
    ("syllable", "phones"),
    [
        ("hoeng1", ("Yh", "Yoeng1")),
        ("ngo5", ("Yng", "Yo5")),
        ("aa3", ("Yaa", "Ya3")),
        ("m4", ("Ym", "Ym4")),
        ("ng5", ("Yng", "Yg5")),
        ("gwong2", ("Ygw", "Yong2")),
        ("jyut6", ("Yj", "Yyut6")),
        ("oi3", ("Yoi", "Yi3")),
        ("uk1", ("Yuk", "Yk1")),
        ("on1", ("Yon", "Yn1")),
    ],
)
def test_jyutping_syllable_split(syllable: str, phones: tuple[str, str]) -> None:
    assert yue.syllable_phones(syllable) == phones
    assert all(p in SYMBOLS_V2 for p in phones)


def test_cantonese_sentence() -> None:
    phones, word2ph, norm = clean_text("你好，我係香港人。", "yue")
    assert norm == "你好,我系香港人."
    assert phones == [
        "Yn",
        "Yei5",
        "Yh",
        "You2",
        ",",
        "Yng",
        "Yo5",
        "Yh",
        "Yai6",
        "Yh",
        "Yoeng1",
        "Yg",
        "Yong2",
        "Yj",
        "Yan4",
        ".",
    ]
    assert word2ph == [2, 2, 1, 2, 2, 2, 2, 2, 1]


def test_cantonese_numbers_and_everything_in_table() -> None:
    phones, word2ph, norm = clean_text("五個蘋果3個橙，唔該晒！", "yue")
    assert "三" in norm and "3" not in norm
    assert "UNK" not in phones
    assert len(word2ph) == len(norm) and sum(word2ph) == len(phones)


def test_cantonese_rejects_bad_syllable() -> None:
    with pytest.raises(ValueError, match="tone"):
        yue.syllable_phones("hoeng")


def test_cantonese_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    yue._jyutping.cache_clear()
    monkeypatch.setitem(sys.modules, "ToJyutping", None)
    try:
        with pytest.raises(LanguageUnavailableError, match="ToJyutping"):
            yue.g2p("你好")
    finally:
        yue._jyutping.cache_clear()
