"""Trainers as the launcher runs them: subprocess jobs, stop button, restart = resume; the tiny pretrained set
of ``GPT_SoVITS.dev.make_tiny_pretrained`` as starting weights; release files load back for inference."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app.context import AppContext
from app.jobs import TrainJob
from app.processes import JobState, ProcessManager
from app.tabs import train as train_tab
from GPT_SoVITS.checkpoints import latest_train_state, load_train_state, read_weights
from GPT_SoVITS.config import WebUISettings, load_config
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_SOVITS_V4, make_tiny_pretrained
from GPT_SoVITS.infer.options import Reference, SynthesisOptions
from GPT_SoVITS.infer.tts import TTS
from GPT_SoVITS.models import load_sovits, load_t2s
from GPT_SoVITS.models.sovits_v4 import SynthesizerTrnV3
from GPT_SoVITS.paths import PretrainedPaths
from GPT_SoVITS.train.config import GPTRunConfig, SoVITSRunConfig
from tests.conftest import silence, tone_burst, write_audio
from tests.unit.test_train_data import make_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> PretrainedPaths:
    return make_tiny_pretrained(tmp_path_factory.mktemp("pretrained"))


def _wait_for(path: Path, text: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(encoding="utf-8", errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear in {path} within {timeout} s")


def test_gpt_job_stop_then_restart_resumes(tiny: PretrainedPaths, tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "logs" / "voice", n_items=8)
    cfg = load_config(GPTRunConfig, {"exp_dir": str(exp.root), "pretrained": str(tiny.gpt("v2")),
                                     "weights_dir": str(tmp_path / "GPT_weights_v2"),
                                     "train": {"epochs": 400, "batch_size": 2, "grad_accum": 1},
                                     "data": {"min_items": 1}, "save": {"every_n_epochs": 1000},
                                     "runtime": {"device": "cpu", "num_workers": 2, "log_every_n_steps": 1}})
    manager = ProcessManager(tmp_path / "jobs")
    job = TrainJob("gpt", cfg, exp.root / "gpt_train.yaml")
    manager.start("train_gpt", job.spec())
    log_file = manager.status("train_gpt").log_file
    _wait_for(log_file, "TRAIN epoch=1 step=3 ", 120)
    assert manager.status("train_gpt").progress is not None  # PROGRESS lines drive the launcher's bar
    manager.stop("train_gpt")
    assert manager.wait("train_gpt", 30).state is JobState.STOPPED
    saved = load_train_state(latest_train_state(cfg.state_dir, "t2s"))
    assert saved.step >= 3
    # restart with one epoch more than already done (4 steps per epoch): resumes from the saved step
    epochs = saved.epoch + 1
    short = load_config(GPTRunConfig, {**_plain(cfg), "train": {"epochs": epochs, "batch_size": 2, "grad_accum": 1}})
    manager.start("train_gpt", TrainJob("gpt", short, exp.root / "gpt_train.yaml").spec())
    status = manager.wait("train_gpt", 300)
    text = log_file.read_text(encoding="utf-8")
    assert status.state is JobState.FINISHED, manager.tail("train_gpt")
    assert f"resuming from {cfg.state_dir / f't2s_{saved.step:08d}.pt'}: step {saved.step}" in text
    assert load_train_state(latest_train_state(cfg.state_dir, "t2s")).step == 4 * epochs
    model, _ = load_t2s(tmp_path / "GPT_weights_v2" / f"voice-e{epochs}.ckpt")
    result = model.generate([torch.tensor([5, 6, 7])], [torch.zeros(1024, 3)])
    assert result.tokens[0].numel() > 0


def test_gpt_job_stops_through_its_stop_file_and_saves(tiny: PretrainedPaths, tmp_path: Path) -> None:
    """The Windows way (no signal a process can catch there): the launcher creates the job's stop file; the
    trainer and its DataLoader workers get no signal, it saves its state and exits 0."""
    exp = make_experiment(tmp_path / "logs" / "voice", n_items=8)
    cfg = load_config(GPTRunConfig, {"exp_dir": str(exp.root), "pretrained": str(tiny.gpt("v2")),
                                     "weights_dir": str(tmp_path / "GPT_weights_v2"),
                                     "train": {"epochs": 400, "batch_size": 2, "grad_accum": 1},
                                     "data": {"min_items": 1}, "save": {"every_n_epochs": 1000},
                                     "runtime": {"device": "cpu", "num_workers": 2, "log_every_n_steps": 1}})
    manager = ProcessManager(tmp_path / "jobs", stop_by_file=True)
    manager.start("train_gpt", TrainJob("gpt", cfg, exp.root / "gpt_train.yaml").spec())
    log_file = manager.status("train_gpt").log_file
    _wait_for(log_file, "TRAIN epoch=1 step=3 ", 120)
    manager.stop("train_gpt")
    status = manager.wait("train_gpt", 30)
    text = log_file.read_text(encoding="utf-8")
    assert status.state is JobState.STOPPED and status.returncode == 0, text[-3000:]
    assert "stop requested (" in text and "received signal" not in text
    assert "GPT training stopped at step" in text
    assert load_train_state(latest_train_state(cfg.state_dir, "t2s")).step >= 3


def test_sovits_from_tiny_pretrained_set(tiny: PretrainedPaths, tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "voice", n_items=1, seconds=(1.0, 1.0))
    cfg = load_config(SoVITSRunConfig, {"exp_dir": str(exp.root), "pretrained_g": str(tiny.sovits_g("v2")),
                                        "pretrained_d": str(tiny.sovits_d("v2")), "weights_dir": str(tmp_path / "w"),
                                        "train": {"epochs": 1, "batch_size": 1}, "data": {"min_items": 1},
                                        "runtime": {"device": "cpu", "num_workers": 0}})
    manager = ProcessManager(tmp_path / "jobs")
    manager.start("train_sovits", TrainJob("sovits", cfg, exp.root / "sovits_train.yaml").spec())
    status = manager.wait("train_sovits", 600)
    text = status.log_file.read_text(encoding="utf-8")
    assert status.state is JobState.FINISHED, text[-3000:]
    assert "keys matched" in text and "refused" not in text
    release = tmp_path / "w" / "voice_e1_s1.pth"
    model, model_cfg = load_sovits(release)
    codes = torch.randint(0, 1024, (1, 1, 10))
    audio = model.decode(codes, torch.tensor([[5, 6, 7]]), torch.rand(1, 1025, 40))
    assert audio.shape[-1] == 20 * model_cfg.hop_length and torch.isfinite(audio).all()
    # the inference engine takes the trained file as it is
    tts = TTS.from_paths(tiny.gpt("v2"), release, tiny)
    ref = write_audio(tmp_path / "ref.wav", np.concatenate([tone_burst(2.0), silence(0.5), tone_burst(2.0, freq=300)]))
    sr, wav = tts.synthesize("你好，世界。", "zh", Reference(ref, "参考文本。", "zh"),
                             SynthesisOptions(seed=1, top_k=5))
    assert sr == 32000 and wav.size > 0 and np.isfinite(wav).all()


def _plain(cfg) -> dict:
    from GPT_SoVITS.config import to_dict

    return to_dict(cfg)


def test_sovits_lora_v4_job_from_the_launcher(tiny: PretrainedPaths, tmp_path: Path) -> None:
    """1B with version v4: the panel's job (its defaults: LoRA rank 32, save every epoch) runs the LoRA trainer
    as a subprocess; inference loads the release it writes with the tiny base and speaks at 48 kHz."""
    ctx = AppContext.create(WebUISettings(pretrained_dir=tiny.root), "en_US", root=tmp_path)
    make_experiment(tmp_path / "logs" / "voice", n_items=1, seconds=(1.0, 1.0))
    page = train_tab.sovits_panel_defaults("v4", [], 8.0)
    job = train_tab.sovits_train_job(ctx, "voice", "v4", page.batch, 1, 0.4, train_tab.DEFAULT_LORA_RANK,
                                     page.save_every, str(ctx.pretrained.sovits_g("v4")), "", True, True, "", "auto",
                                     1, False, "")
    assert job.module == "GPT_SoVITS.train.sovits_lora" and job.config.train.lora_rank == 32
    # one clip: upstream's small-set rule repeats it 100×; twice keeps the test short
    fast = replace(job, config=replace(job.config, data=replace(job.config.data, min_items=2),
                                       train=replace(job.config.train, batch_size=1)))
    manager = ProcessManager(tmp_path / "jobs")
    manager.start("train_sovits", fast.spec())
    status = manager.wait("train_sovits", 600)
    text = status.log_file.read_text(encoding="utf-8")
    assert status.state is JobState.FINISHED, text[-3000:]
    assert "loaded the v4 base" in text and "LoRA rank 32:" in text and "TRAIN epoch=1 step=2 " in text
    release = tmp_path / "SoVITS_weights_v4" / "voice_e1_s2_l32.pth"
    assert release.read_bytes()[:2] == b"04" and read_weights(release).version == "v4"
    # inference takes the release with the base (merged as upstream does)
    model, model_cfg = load_sovits(release, pretrained=tiny)
    assert isinstance(model, SynthesizerTrnV3) and model_cfg == TINY_SOVITS_V4
    # 1C: the engine speaks with the new pair at 48 kHz
    tts = TTS.from_paths(tiny.gpt("v4"), release, tiny)
    ref = write_audio(tmp_path / "ref.wav", np.concatenate([tone_burst(2.0), silence(0.5), tone_burst(2.0, freq=300)]))
    sr, wav = tts.synthesize("你好，世界。", "zh", Reference(ref, "参考文本。", "zh"),
                             SynthesisOptions(seed=1, top_k=5))
    assert sr == 48000 and wav.size > 0 and np.isfinite(wav).all()
