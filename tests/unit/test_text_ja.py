"""Japanese front end: compat-kit cases, prosody marks, punctuation tokens, missing-package error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from GPT_SoVITS.text import LanguageUnavailableError, clean_text, cleaned_text_to_sequence, ja
from tests.compat import json_file

# The kit's Japanese cases come from pyopenjtalk 0.4.1 with Debian's naist-jdic 1.11; so does our front end, and
# every case must match exactly (phones, accent marks and ids). The new cases (times, keigo, dates, counters) are
# goldens from the same engine and dictionary (see the file's "about").
PROSODY_MARKS = {"[", "]", "UNK"}  # "#" (accent-phrase boundary) becomes UNK


def _japanese_cases() -> list[dict]:
    return [c for c in json_file("text_frontend_cases.json")["cases"] if c["language"] == "ja"]


def _new_cases() -> list[dict]:
    path = Path(__file__).resolve().parents[1] / "data" / "frontend" / "ja_upstream_cases.json"
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", _japanese_cases(), ids=lambda c: c["id"])
def test_compat_case_exact(case: dict) -> None:
    phones, word2ph, norm_text = clean_text(case["text"], "ja", version="v2")
    assert word2ph is None
    assert norm_text == case["norm_text"]
    assert phones == case["phones"]
    assert cleaned_text_to_sequence(phones, "v2") == case["phone_ids_v2"]


@pytest.mark.parametrize("case", _new_cases(), ids=lambda c: c["id"])
def test_new_cases_match_upstream_engine(case: dict) -> None:
    phones, _, norm_text = clean_text(case["text"], "ja", version="v2")
    assert norm_text == case["norm_text"]
    assert phones == case["phones"]
    assert cleaned_text_to_sequence(phones, "v2") == case["phone_ids_v2"]


def test_prosody_marks_present() -> None:
    phones, _ = ja.g2p("東京駅まで電車で行きます")
    assert "[" in phones and "]" in phones and "#" in phones
    assert phones[0] == "t" and phones[-1] == "u"  # start/end markers ^ and $ are dropped


def test_punctuation_between_runs_is_mapped_and_spaces_dropped() -> None:
    phones, _ = ja.g2p("はい、 そうです！ 本当？")
    assert phones.count(",") == 1 and phones[-1] == "?" and "!" in phones
    assert " " not in phones and "" not in phones


def test_full_width_percent_is_read() -> None:
    with_sign, _ = ja.g2p("５０％")
    assert "UNK" not in clean_text("５０％", "ja").phones
    assert with_sign[-5:] == ["s", "e", "]", "N", "t", "o"][-5:]  # ...セント: "percent" is read, not dropped


def test_normalize_collapses_repeated_ascii_punctuation() -> None:
    assert ja.normalize("えっ!!??") == "えっ!"


def _fresh_engine():
    ja._openjtalk.cache_clear()
    ja._run_phones.cache_clear()


def test_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh_engine()
    monkeypatch.setitem(sys.modules, "pyopenjtalk", None)
    monkeypatch.setitem(sys.modules, "pyopenjtalk.openjtalk", None)
    try:
        with pytest.raises(LanguageUnavailableError, match="pip install pyopenjtalk==0.4.1"):
            ja.g2p("こんにちは")
    finally:
        _fresh_engine()


def test_pyopenjtalk_plus_is_used_with_a_warning_naming_the_fix(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """The Windows package has pyopenjtalk-plus (pyopenjtalk has no Windows wheel): it reads, and says what differs."""
    def no_distribution(name: str) -> str:
        raise ja.importlib.metadata.PackageNotFoundError(name)

    _fresh_engine()
    monkeypatch.setattr(ja.importlib.metadata, "version", no_distribution)  # what an install of -plus looks like
    try:
        assert ja.g2p("こんにちは")
        assert "accent marks can differ" in caplog.text and "pip uninstall -y pyopenjtalk-plus" in caplog.text
    finally:
        _fresh_engine()


def test_missing_dictionary_says_which_package_installs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fresh_engine()
    monkeypatch.setattr(ja, "dictionary_candidates", lambda: [tmp_path / "nowhere"])
    try:
        with pytest.raises(LanguageUnavailableError, match="open-jtalk-mecab-naist-jdic"):
            ja.g2p("こんにちは")
    finally:
        _fresh_engine()


def test_dictionary_is_debians_naist_jdic() -> None:
    assert ja.find_dictionary() == ja.DEBIAN_DICTIONARY
    assert (ja.DEBIAN_DICTIONARY / "sys.dic").is_file()
