"""The kit's English, Japanese and mixed cases through the whole front end (segmentation + cleaners)."""

from __future__ import annotations

import pytest

from GPT_SoVITS.text import clean_text
from GPT_SoVITS.text.frontend import MIN_PHONES, TextFrontend
from tests.compat import json_file
from tests.unit.test_text_en import DEVIATIONS

CASES = {c["id"]: c for c in json_file("text_frontend_cases.json")["cases"]}


@pytest.fixture(scope="module")
def frontend() -> TextFrontend:
    return TextFrontend(None, "v2")


@pytest.mark.parametrize(
    ("mixed", "segments"),
    [("mix_iphone", ["seg_iphone_en", "seg_iphone_zh"])],
)
def test_mixed_sentence_equals_kit_segments(frontend: TextFrontend, mixed: str, segments: list[str]) -> None:
    result = frontend(CASES[mixed]["text"], "zh")
    assert [s.text for s in result.segments] == [CASES[s]["text"] for s in segments]
    assert result.phone_ids == [i for s in segments for i in CASES[s]["phone_ids_v2"]]
    assert result.norm_text == "".join(CASES[s]["norm_text"] for s in segments)


@pytest.mark.parametrize(("mixed", "english"), [("mix_chatgpt_percent", "seg_chatgpt_en"), ("mix_ai", "seg_ai_en")])
@pytest.mark.parametrize("code", ["zh", "auto"])
def test_english_inside_chinese_reads_as_kit_segment(frontend: TextFrontend, mixed: str, english: str, code: str):
    result = frontend(CASES[mixed]["text"], code)
    texts = [s.text for s in result.segments]
    k = texts.index(CASES[english]["text"])
    assert result.segments[k].language == "en"
    assert all(s.language == "zh" for s in result.segments if not s.text.isascii())
    start = sum(len(clean_text(s.text, s.language).phones) for s in result.segments[:k])
    n_en = len(CASES[english]["phones"])
    assert result.phones[start : start + n_en] == CASES[english]["phones"]


@pytest.mark.parametrize(
    "case",
    [c for c in CASES.values() if c["group"] == "english" and c["id"] not in DEVIATIONS],
    ids=lambda c: c["id"],
)
@pytest.mark.parametrize("code", ["en", "auto", "zh"])
def test_english_cases_through_every_code(frontend: TextFrontend, case: dict, code: str) -> None:
    result = frontend(case["text"], code)
    if len(case["phones"]) < MIN_PHONES:
        assert result.phones == clean_text("." + case["text"], "en").phones  # the short-input retry
    else:
        assert result.phone_ids == case["phone_ids_v2"]
        assert result.norm_text == case["norm_text"]


@pytest.mark.parametrize("case", [c for c in CASES.values() if c["language"] == "ja"], ids=lambda c: c["id"])
@pytest.mark.parametrize("code", ["all_ja", "ja", "auto"])
def test_japanese_cases_are_one_japanese_segment(frontend: TextFrontend, case: dict, code: str) -> None:
    result = frontend(case["text"], code)
    assert [s.language for s in result.segments] == ["ja"]
    assert result.phones == clean_text(case["text"], "ja").phones
    assert result.bert.shape == (1024, len(result.phone_ids))


def test_short_input_retried_with_leading_stop(frontend: TextFrontend) -> None:
    result = frontend("好。", "all_zh")
    assert result.phones[0] == "." and result.norm_text.startswith(".")


def test_v1_rejects_v2_only_codes_and_languages() -> None:
    v1 = TextFrontend(None, "v1")
    with pytest.raises(ValueError, match="all_zh"):
        v1("你好", "all_yue")
    with pytest.raises(ValueError, match="ko"):
        v1("안녕하세요 여러분", "auto")
    assert max(v1("今天天气很好。", "all_zh").phone_ids) < 322


def test_empty_text_is_rejected(frontend: TextFrontend) -> None:
    with pytest.raises(ValueError, match="empty"):
        frontend("  \n", "auto")
