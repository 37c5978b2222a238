"""Training survives a kill between its state save and its release write, and clears a killed save's leftovers.

The real-signal test blocks the trainer subprocess inside the release write (a ``torch.save`` wrapper in the
test's own launch script: the temp file is written, the rename has not happened) and kills it with SIGKILL there,
which is the moment the issue describes; the next start must remove the temp file and write the release.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from GPT_SoVITS.checkpoints import latest_train_state, load_train_state, read_weights
from GPT_SoVITS.config import save_config
from GPT_SoVITS.fileio import is_leftover_temp
from GPT_SoVITS.paths import REPO_ROOT
from GPT_SoVITS.train import gpt, sovits
from GPT_SoVITS.train.loop import RELEASE_KEY, AlreadyDoneError
from tests.unit import test_train_gpt, test_train_sovits

pytestmark = pytest.mark.slow


def _same_weights(release: Path, state_path: Path, drop: str = "") -> None:
    loaded = read_weights(release)
    state = load_train_state(state_path)
    keys = [k for k in state.model if not (drop and k.startswith(drop))]
    assert sorted(loaded.state_dict) == sorted(keys)
    for key in keys:
        torch.testing.assert_close(loaded.state_dict[key].float(), state.model[key].half().float())


def test_gpt_release_missing_after_the_last_epoch_is_written_then_already_done(tmp_path: Path) -> None:
    cfg = test_train_gpt.make_cfg(tmp_path, train={"epochs": 2})
    first = gpt.train(cfg)
    assert [p.name for p in first.release_files] == ["exp-e1.ckpt", "exp-e2.ckpt"]
    state_path = latest_train_state(cfg.state_dir, "t2s")
    assert load_train_state(state_path).extra[RELEASE_KEY] == "exp-e2.ckpt"
    first.release_files[-1].unlink()  # what a kill right after the state save leaves
    with pytest.raises(AlreadyDoneError, match="2 of 2 epoch"):
        gpt.train(cfg)
    _same_weights(first.release_files[-1], state_path)


def test_gpt_earlier_epochs_release_is_not_skipped_on_resume(tmp_path: Path) -> None:
    cfg = test_train_gpt.make_cfg(tmp_path, train={"epochs": 1})
    first = gpt.train(cfg)
    first.release_files[0].unlink()
    more = gpt.train(test_train_gpt.make_cfg(tmp_path, train={"epochs": 2}))
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["exp-e1.ckpt", "exp-e2.ckpt"]
    assert [p.name for p in more.release_files] == ["exp-e2.ckpt"]


def test_gpt_state_without_a_release_promises_none(tmp_path: Path) -> None:
    cfg = test_train_gpt.make_cfg(tmp_path, train={"epochs": 1}, save={"release_weights": False})
    gpt.train(cfg)
    assert load_train_state(latest_train_state(cfg.state_dir, "t2s")).extra[RELEASE_KEY] is None
    with pytest.raises(AlreadyDoneError):
        gpt.train(cfg)
    assert not (tmp_path / "weights").exists()


def test_sovits_release_missing_is_written_from_the_generator_state(tmp_path: Path) -> None:
    cfg = test_train_sovits.make_cfg(tmp_path, train={"epochs": 1})
    first = sovits.train(cfg)
    (release,) = first.release_files
    release.unlink()
    with pytest.raises(AlreadyDoneError, match="1 of 1 epoch"):
        sovits.train(cfg)
    _same_weights(release, latest_train_state(cfg.state_dir, "sovits_G"), drop="enc_q.")


_BLOCK_IN_RELEASE_WRITE = """
import sys, time
from pathlib import Path
import torch
real_save = torch.save

def save(obj, f, *args, **kwargs):
    real_save(obj, f, *args, **kwargs)
    if str(f).endswith(".tmp.ckpt"):  # the release file's temp: written, not yet renamed
        Path(sys.argv[1]).write_text(str(f))
        time.sleep(600)  # the test kills the process here

torch.save = save
from GPT_SoVITS.train.gpt import main
raise SystemExit(main(sys.argv[2:]))
"""


def test_sigkill_between_state_and_release_then_the_next_start_recovers(tmp_path: Path) -> None:
    cfg = test_train_gpt.make_cfg(tmp_path, train={"epochs": 1})
    config = tmp_path / "gpt_train.yaml"
    save_config(cfg, config)
    marker = tmp_path / "in_release_write"
    log_file = tmp_path / "train.log"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_BLOCK_IN_RELEASE_WRITE), str(marker),
                             "--config", str(config), "--log-file", str(log_file)], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 300  # a guard only: the tiny run takes seconds
        while not marker.exists():
            assert proc.poll() is None, log_file.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "the trainer never reached its release write"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    release = tmp_path / "weights" / "exp-e1.ckpt"
    leftover = Path(marker.read_text())
    assert not release.exists() and leftover.exists() and is_leftover_temp(leftover)
    state_path = latest_train_state(cfg.state_dir, "t2s")
    assert load_train_state(state_path).epoch == 1  # the state save had completed

    done = subprocess.run([sys.executable, "-m", "GPT_SoVITS.train.gpt", "--config", str(config), "--log-file",
                           str(log_file)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    log_text = log_file.read_text(encoding="utf-8")
    assert f"removed {leftover}" in log_text
    assert "exp-e1.ckpt is missing" in log_text and "already trained" in log_text
    assert not any(is_leftover_temp(p) for folder in (cfg.state_dir, release.parent) for p in folder.iterdir())
    _same_weights(release, state_path)
