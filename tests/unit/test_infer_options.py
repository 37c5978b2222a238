"""Synthesis options and reference validation, and the token-count plausibility rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from GPT_SoVITS.infer import InvalidOptionError, Reference, SynthesisOptions, supported_languages, token_count_problem
from GPT_SoVITS.infer.options import check_language
from GPT_SoVITS.infer.reference import prompt_text_for


def test_defaults_follow_upstream_ui() -> None:
    opts = SynthesisOptions()
    assert (opts.top_k, opts.top_p, opts.temperature, opts.repetition_penalty) == (15, 1.0, 1.0, 1.35)
    assert (opts.speed, opts.pause, opts.text_split, opts.batch_size, opts.seed) == (1.0, 0.3, "cut1", 1, None)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("top_k", 0, "top_k"), ("top_k", 1.5, "whole number"), ("top_p", 0.0, "top_p"), ("top_p", 1.2, "top_p"),
    ("temperature", -0.1, "temperature"), ("repetition_penalty", 0, "repetition_penalty"),
    ("speed", 0.1, "speed"), ("speed", 5, "speed"), ("pause", -1, "pause"), ("batch_size", 0, "batch_size"),
    ("seed", -5, "seed"), ("text_split", "cut9", "cut0"), ("top_k", "15", "expected a number"),
    ("top_k", True, "expected a number"), ("temperature", float("nan"), "temperature"),
    ("max_retries", -1, "max_retries"),
])
def test_out_of_range_options_name_the_field_and_the_range(field: str, value: object, match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        SynthesisOptions(**{field: value})


def test_phone_rate_bounds_must_be_ordered() -> None:
    with pytest.raises(InvalidOptionError, match="min_phone_rate"):
        SynthesisOptions(min_phone_rate=30.0, max_phone_rate=20.0)


def test_replace_validates_again() -> None:
    assert SynthesisOptions().replace(top_k=5).top_k == 5
    with pytest.raises(InvalidOptionError):
        SynthesisOptions().replace(top_k=-1)


def test_languages_per_version() -> None:
    assert "ko" in supported_languages("v2") and "ko" not in supported_languages("v1")
    assert check_language(" ZH ", "v2") == "zh"
    with pytest.raises(InvalidOptionError, match="v1 models; use one of auto, en"):
        check_language("yue", "v1")


def test_reference_text_free_mode_and_paths() -> None:
    ref = Reference("a.wav", "  ", "zh", ["b.wav"])
    assert ref.text_free and ref.audio == Path("a.wav") and ref.extra_audios == (Path("b.wav"),)
    assert not Reference("a.wav", "你好").text_free


def test_prompt_text_gets_one_line_and_a_final_mark() -> None:
    assert prompt_text_for("你好\n世界", "zh") == "你好 世界。"
    assert prompt_text_for("hello there", "en") == "hello there."
    assert prompt_text_for("你好！", "zh") == "你好！"


def test_token_count_rule() -> None:
    opts = SynthesisOptions()
    assert token_count_problem(20, 50, True, opts) is None  # 10 phones/s
    assert "too short" in token_count_problem(40, 20, True, opts)  # 50 phones/s: swallowed words
    assert "too long" in token_count_problem(5, 100, True, opts)  # 1.25 phones/s: repeated words
    assert "runaway" in token_count_problem(20, 50, False, opts)  # no EOS
    assert token_count_problem(40, 20, True, opts.replace(max_phone_rate=60.0)) is None
