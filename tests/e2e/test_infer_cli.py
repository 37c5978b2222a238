"""``python -m GPT_SoVITS.infer`` end to end with the tiny pretrained set (real BERT/HuBERT/GPT/SoVITS files)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained
from GPT_SoVITS.infer.__main__ import main
from tests.conftest import tone_burst, write_audio
from tests.infer_helpers import reference_wav


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    pretrained = make_tiny_pretrained(root / "pretrained")
    return {"pretrained": pretrained.root, "gpt": pretrained.gpt("v2"), "sovits": pretrained.sovits_g("v2"),
            "ref": reference_wav(root / "ref.wav"), "root": root}


def base_args(kit: dict[str, Path]) -> list[str]:
    return ["--gpt", str(kit["gpt"]), "--sovits", str(kit["sovits"]), "--pretrained-dir", str(kit["pretrained"]),
            "--ref", str(kit["ref"]), "--ref-text", "这是参考音频的文本。", "--ref-lang", "zh", "--seed", "3",
            "--max-tokens", "20"]


def test_text_to_wav(kit, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    assert main([*base_args(kit), "--text", "今天天气很好。Hello there!", "--text-lang", "auto", "--split", "cut5",
                 "--out", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 32000 and np.isfinite(audio).all()
    # two or three pieces of 11-20 tokens (1280 samples each) plus 0.3 s pauses
    assert 2 * (11 * 1280 + 9600) <= len(audio) <= 3 * (20 * 1280 + 9600)


def test_text_file_and_other_format(kit, tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("我们去公园散步吧。", encoding="utf-8")
    out = tmp_path / "out.flac"
    assert main([*base_args(kit), "--text-file", str(text), "--text-lang", "all_zh", "--out", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 32000 and len(audio) > 0


def test_srt_gives_one_file_per_cue(kit, tmp_path: Path) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:03,000\n今天天气很好。\n\n"
                   "2\n00:00:04,000 --> 00:00:06,500\n<i>我们去公园</i>\n散步吧。\n", encoding="utf-8")
    out = tmp_path / "cues"
    assert main([*base_args(kit), "--text-file", str(srt), "--text-lang", "zh", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0001.wav", "0002.wav"]
    for path in out.iterdir():
        audio, sr = sf.read(path)
        assert sr == 32000 and 11 * 1280 <= len(audio) <= 20 * 1280  # no trailing pause for cues


def test_bad_inputs_exit_2_with_a_message(kit, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    short = write_audio(tmp_path / "short.wav", tone_burst(1.0))
    args = [a if a != str(kit["ref"]) else str(short) for a in base_args(kit)]
    with caplog.at_level(logging.ERROR):
        assert main([*args, "--text", "你好。", "--out", str(tmp_path / "a.wav")]) == 2
    assert "between 3 and 10 s" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main([*base_args(kit), "--text", "你好。", "--out", str(tmp_path / "a.xyz")]) == 2
    assert "unknown audio suffix" in caplog.text
    with caplog.at_level(logging.ERROR):
        assert main([*base_args(kit), "--text", "你好。", "--text-lang", "klingon", "--out",
                     str(tmp_path / "b.wav")]) == 2
    assert "klingon" in caplog.text
    assert not (tmp_path / "b.wav").exists()


@pytest.mark.pretrained
@pytest.mark.slow
def test_real_pretrained_models_speak_a_plausible_sentence(tmp_path: Path) -> None:
    """With upstream's real v2 pretrained folder in pretrained_models/: one sentence of plausible length and level."""
    from GPT_SoVITS.paths import DEFAULT_PRETRAINED_DIR, PretrainedPaths

    pretrained = PretrainedPaths(DEFAULT_PRETRAINED_DIR)
    needed = [pretrained.gpt("v2"), pretrained.sovits_g("v2"), pretrained.bert / "config.json",
              pretrained.hubert / "config.json"]
    if not all(p.exists() for p in needed):
        pytest.skip(f"real pretrained models not found in {pretrained.root}")
    ref = reference_wav(tmp_path / "ref.wav")
    out = tmp_path / "out.wav"
    assert main(["--gpt", str(needed[0]), "--sovits", str(needed[1]), "--ref", str(ref), "--ref-text", "",
                 "--text", "今天天气很好，我们一起去公园散步吧。", "--text-lang", "all_zh", "--seed", "1",
                 "--check-tokens", "--out", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 32000 and 1.0 < len(audio) / sr < 10.0
    assert 0.005 < float(np.sqrt(np.mean(audio**2))) < 0.5


def test_v4_speaks_at_48k_with_its_sample_steps(kit, tmp_path: Path) -> None:
    pretrained = kit["pretrained"]
    args = ["--gpt", str(pretrained / "s1v3.ckpt"), "--sovits", str(pretrained / "gsv-v4-pretrained" / "s2Gv4.pth"),
            "--pretrained-dir", str(pretrained), "--ref", str(kit["ref"]), "--ref-text", "这是参考音频的文本。",
            "--ref-lang", "zh", "--seed", "3", "--max-tokens", "12", "--text", "今天天气很好。", "--text-lang", "zh"]
    out = tmp_path / "v4.wav"
    assert main([*args, "--sample-steps", "2", "--out", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 48000 and np.isfinite(audio).all() and len(audio) >= 1920


def test_sample_steps_on_a_v2_model_is_refused_on_stderr(kit, tmp_path: Path, caplog) -> None:
    assert main([*base_args(kit), "--text", "你好。", "--sample-steps", "4", "--out", str(tmp_path / "x.wav")]) == 2
    assert "sample_steps: v2 models have no sampling steps" in caplog.text
    assert not (tmp_path / "x.wav").exists()
