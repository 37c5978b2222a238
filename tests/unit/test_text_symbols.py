from __future__ import annotations

import pytest

from GPT_SoVITS.text import (
    SYMBOLS_V1,
    SYMBOLS_V2,
    UNK,
    CleanedText,
    clean_text,
    cleaned_text_to_sequence,
    supported_languages,
    symbols,
)
from tests.compat import json_file


def test_tables_equal_the_kit():
    kit = json_file("symbols.json")
    assert list(SYMBOLS_V1) == kit["v1"]["symbols"]
    assert list(SYMBOLS_V2) == kit["v2"]["symbols"]
    assert len(SYMBOLS_V1) == 322 and len(SYMBOLS_V2) == 732
    assert len(set(SYMBOLS_V2)) == len(SYMBOLS_V2)


def test_every_later_version_uses_the_v2_table():
    assert symbols("v1") is SYMBOLS_V1
    for version in ("v2", "v2Pro", "v2ProPlus", "v3", "v4"):
        assert symbols(version) is SYMBOLS_V2


def test_ids_documented_in_the_spec():
    ids = cleaned_text_to_sequence(["!", ",", ".", "SP", "UNK", "_", "…", "["], "v2")
    assert ids == [0, 1, 3, 77, 86, 95, 321, 322]


def test_unknown_phone_maps_to_unk_id():
    assert cleaned_text_to_sequence(["a1", "not-a-phone"], "v2") == [SYMBOLS_V2.index("a1"), SYMBOLS_V2.index(UNK)]
    # "[" exists only from v2 on.
    assert cleaned_text_to_sequence(["["], "v1") == [SYMBOLS_V1.index(UNK)]


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="zh, ja, en, ko, yue"):
        clean_text("hello", "fr")
    with pytest.raises(ValueError, match="v1"):
        clean_text("안녕", "ko", version="v1")
    assert supported_languages("v1") == ("zh", "ja", "en")
    assert supported_languages("v2Pro") == ("zh", "ja", "en", "ko", "yue")


def test_cleaned_text_unpacks_as_a_triple():
    cleaned = CleanedText(["n", "i3"], [2], "你")
    phones, word2ph, norm_text = cleaned
    assert (phones, word2ph, norm_text) == (["n", "i3"], [2], "你")
