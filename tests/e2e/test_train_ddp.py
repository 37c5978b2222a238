"""DDP path: the trainers under torchrun with two CPU processes (gloo), through their real CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from GPT_SoVITS.checkpoints import latest_train_state, load_train_state
from GPT_SoVITS.config import save_config
from GPT_SoVITS.models import load_t2s
from GPT_SoVITS.paths import REPO_ROOT
from tests.unit.test_train_gpt import make_cfg as gpt_cfg
from tests.unit.test_train_sovits import make_cfg as sovits_cfg
from tests.unit.test_train_sovits_lora import make_cfg as lora_cfg

pytestmark = pytest.mark.slow


def torchrun(module: str, config: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", module,
           "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_gpt_two_processes(tmp_path: Path) -> None:
    cfg = gpt_cfg(tmp_path, train={"epochs": 2, "batch_size": 1}, runtime={"device": "cpu"})
    save_config(cfg, tmp_path / "gpt_train.yaml")
    proc = torchrun("GPT_SoVITS.train.gpt", tmp_path / "gpt_train.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "exp" / "logs" / "train_gpt.log").read_text(encoding="utf-8")
    assert "joined process group: rank 0 of 2 (gloo)" in log
    assert "× 2 process(es)" in log
    state = load_train_state(latest_train_state(cfg.state_dir, "t2s"))
    assert (state.step, state.epoch) == (4, 2)  # 4 items, 1 per process per step → 2 steps per epoch
    load_t2s(tmp_path / "weights" / "exp-e2.ckpt")


def test_sovits_two_processes(tmp_path: Path) -> None:
    cfg = sovits_cfg(tmp_path, train={"epochs": 1}, runtime={"device": "cpu"})
    save_config(cfg, tmp_path / "sovits_train.yaml")
    proc = torchrun("GPT_SoVITS.train.sovits", tmp_path / "sovits_train.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "exp" / "logs" / "train_sovits.log").read_text(encoding="utf-8")
    assert "joined process group: rank 0 of 2 (gloo)" in log
    state = load_train_state(latest_train_state(cfg.state_dir, "sovits_G"))
    assert (state.step, state.epoch) == (1, 1)  # 2 items (1 clip repeated), 1 per process → 1 step
    assert (tmp_path / "weights" / "exp_e1_s1.pth").exists()


def test_sovits_lora_two_processes(tmp_path: Path) -> None:
    """The frozen base and the unused linear_mel need DDP's unused-parameter search; both ranks must agree."""
    cfg = lora_cfg(tmp_path, train={"epochs": 1, "grad_accum": 2}, data={"min_items": 4}, runtime={"device": "cpu"})
    save_config(cfg, tmp_path / "sovits_lora.yaml")
    proc = torchrun("GPT_SoVITS.train.sovits_lora", tmp_path / "sovits_lora.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "exp" / "logs" / "train_sovits_lora.log").read_text(encoding="utf-8")
    assert "joined process group: rank 0 of 2 (gloo)" in log and "× 2 process(es)" in log
    state = load_train_state(latest_train_state(cfg.state_dir, "sovits_lora"))
    assert (state.step, state.epoch) == (1, 1)  # 4 items, 1 per process per batch, 2 batches per step
    assert (tmp_path / "weights" / "exp_e1_s1_l16.pth").read_bytes()[:2] == b"04"
