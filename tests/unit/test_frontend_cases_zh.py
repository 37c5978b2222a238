"""Every Mandarin case of the compat kit (cleaned as zh by upstream with g2pw off) must match exactly."""

from __future__ import annotations

import pytest

from GPT_SoVITS.text import clean_text, cleaned_text_to_sequence
from tests.compat import json_file

ZH_CASES = [case for case in json_file("text_frontend_cases.json")["cases"] if case["language"] == "zh"]


def test_kit_has_the_documented_zh_cases():
    groups = [case["group"] for case in ZH_CASES]
    assert groups.count("chinese") == 17 and groups.count("mixed_zh_en") == 3 and groups.count("mixed_segment") == 1


@pytest.mark.parametrize("case", ZH_CASES, ids=[case["id"] for case in ZH_CASES])
def test_kit_case(case):
    phones, word2ph, norm_text = clean_text(case["text"], "zh", version="v2")
    assert norm_text == case["norm_text"]
    assert phones == case["phones"]
    assert word2ph == case["word2ph"]
    assert cleaned_text_to_sequence(phones, "v2") == case["phone_ids_v2"]
