"""v2Pro end to end by command line on the tiny pretrained set: 1A (with the SV step) → SoVITS and GPT fine-tuning
→ synthesis with the release files, each through its own ``python -m`` entry point's ``main``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from GPT_SoVITS.checkpoints import read_weights
from GPT_SoVITS.infer.__main__ import main as infer_main
from GPT_SoVITS.prepare.cli import main as prepare_main
from GPT_SoVITS.train import gpt, sovits
from tests.conftest import tone_burst, write_audio
from tests.infer_helpers import reference_wav

pytestmark = pytest.mark.slow


def _dataset(root: Path) -> Path:
    clips = root / "clips"
    lines = []
    for i, text in enumerate(["今天天气很好。", "我们去公园吧。", "你好，世界。"]):
        write_audio(clips / f"c{i}.wav", tone_burst(1.6, freq=170 + 25 * i, seed=i))
        lines.append(f"{clips / f'c{i}.wav'}|voice|ZH|{text}\n")
    listing = root / "voice.list"
    listing.write_text("".join(lines), encoding="utf-8")
    return listing


def _run_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_v2pro_from_formatting_to_synthesis(tmp_path, tiny_pretrained):
    exp = tmp_path / "logs" / "voice"
    listing = _dataset(tmp_path)
    assert prepare_main(["--exp-dir", str(exp), "--list", str(listing), "--version", "v2Pro",
                         "--pretrained-dir", str(tiny_pretrained.root)]) == 0
    assert len(list((exp / "7-sv_cn").glob("*.pt"))) == 3

    runtime = {"device": "cpu", "num_workers": 0, "log_every_n_steps": 1}
    sovits_cfg = _run_config(exp / "sovits.yaml", {
        "exp_dir": str(exp), "version": "v2Pro", "pretrained_g": str(tiny_pretrained.sovits_g("v2Pro")),
        "pretrained_d": str(tiny_pretrained.sovits_d("v2Pro")), "weights_dir": str(tmp_path / "SoVITS_weights_v2Pro"),
        "train": {"epochs": 1, "batch_size": 4}, "data": {"min_items": 8}, "runtime": runtime})
    assert sovits.main(["--config", str(sovits_cfg)]) == 0
    gpt_cfg = _run_config(exp / "gpt.yaml", {
        "exp_dir": str(exp), "version": "v2Pro", "pretrained": str(tiny_pretrained.gpt("v2Pro")),
        "weights_dir": str(tmp_path / "GPT_weights_v2Pro"), "train": {"epochs": 1, "batch_size": 4},
        "data": {"min_items": 8}, "runtime": runtime})
    assert gpt.main(["--config", str(gpt_cfg)]) == 0

    release = next((tmp_path / "SoVITS_weights_v2Pro").glob("voice_e1_s*.pth"))
    assert release.read_bytes()[:2] == b"05" and read_weights(release).version == "v2Pro"
    gpt_release = tmp_path / "GPT_weights_v2Pro" / "voice-e1.ckpt"
    out = tmp_path / "out.wav"
    assert infer_main(["--gpt", str(gpt_release), "--sovits", str(release), "--pretrained-dir",
                       str(tiny_pretrained.root), "--ref", str(reference_wav(tmp_path / "ref.wav")), "--ref-text",
                       "这是参考音频的文本。", "--ref-lang", "zh", "--text", "今天天气很好。", "--text-lang", "zh",
                       "--seed", "1", "--max-tokens", "20", "--out", str(out)]) == 0
    audio, rate = sf.read(out)
    assert rate == 32000 and np.isfinite(audio).all() and len(audio) >= 1280
