"""1B job specs and tab helpers: argv round trips (plain and torchrun), config file, outputs, defaults, loss plot."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from torch.distributed.run import get_args_parser

from app.context import AppContext
from app.devices import GpuInfo
from app.jobs import TrainJob
from app.tabs import train as train_tab
from GPT_SoVITS.config import WebUISettings, load_config
from GPT_SoVITS.train import gpt, sovits
from GPT_SoVITS.train.config import GPTRunConfig, SoVITSRunConfig
from tests.unit.test_train_data import make_experiment


def test_single_process_argv_parses_with_the_trainer_parser(tmp_path: Path) -> None:
    job = TrainJob("gpt", GPTRunConfig(exp_dir=tmp_path), tmp_path / "gpt_train.yaml", gpus="0")
    assert job.module == "GPT_SoVITS.train.gpt"
    assert gpt.build_parser().parse_args(job.to_argv()).config == tmp_path / "gpt_train.yaml"
    job = TrainJob("sovits", SoVITSRunConfig(exp_dir=tmp_path), tmp_path / "s.yaml")
    assert sovits.build_parser().parse_args(job.to_argv()).config == tmp_path / "s.yaml"


def test_several_gpus_run_under_torchrun(tmp_path: Path) -> None:
    job = TrainJob("sovits", SoVITSRunConfig(exp_dir=tmp_path), tmp_path / "s.yaml", gpus="0-2-3")
    assert job.module == "torch.distributed.run"
    args = get_args_parser().parse_args(job.to_argv())
    assert (args.nproc_per_node, args.module, args.standalone) == ("3", True, True)
    assert args.training_script == "GPT_SoVITS.train.sovits"
    assert sovits.build_parser().parse_args(args.training_script_args).config == tmp_path / "s.yaml"


def test_spec_checks_formatting_and_writes_the_run_config(tmp_path: Path) -> None:
    cfg = load_config(GPTRunConfig, {"exp_dir": str(tmp_path / "exp"), "weights_dir": str(tmp_path / "w"),
                                     "train": {"epochs": 3}})
    job = TrainJob("gpt", cfg, tmp_path / "exp" / "gpt_train.yaml", gpus="1-0")
    with pytest.raises(ValueError, match="1A"):
        job.spec()
    make_experiment(tmp_path / "exp", n_items=1)
    spec = job.spec()
    assert spec.gpu == "1,0"
    assert load_config(GPTRunConfig, tmp_path / "exp" / "gpt_train.yaml") == cfg
    assert "exp-e*.ckpt" in spec.check_outputs()
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "exp-e3.ckpt").write_bytes(b"")
    assert spec.check_outputs() is None
    with pytest.raises(ValueError, match="GPU ids"):
        TrainJob("gpt", cfg, tmp_path / "x.yaml", gpus="a-b").spec()


def test_sovits_outputs_match_any_step(tmp_path: Path) -> None:
    cfg = SoVITSRunConfig(exp_dir=tmp_path / "exp", weights_dir=tmp_path / "w")
    check = TrainJob("sovits", cfg, tmp_path / "s.yaml").check_outputs()
    assert check() is not None
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "other_e100_s1234.pth").write_bytes(b"")
    assert check() is not None
    (tmp_path / "w" / "exp_e100_s1234.pth").write_bytes(b"")
    assert check() is None


def test_default_batch_sizes_follow_upstream() -> None:
    gpus = [GpuInfo(0, "a", 24.0, (8, 6)), GpuInfo(1, "b", 11.0, (6, 1))]
    assert train_tab.default_batch_sizes(gpus, 64) == (5, 5)  # half the smallest GPU's GB
    assert train_tab.default_batch_sizes([], 15.5) == (3, 3)  # a quarter of the RAM on CPU
    assert train_tab.default_batch_sizes([GpuInfo(0, "c", 1.5, (5, 2))], 8) == (1, 1)


def test_loss_frame_reads_train_lines(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("2026 INFO x: TRAIN epoch=1 step=1 loss=3.5 top3_acc=0.1 lr=0.002\n"
                   "2026 INFO x: PROGRESS 1/4 epoch 1/2\nnoise\n"
                   "2026 INFO x: TRAIN epoch=1 step=2 loss=2.25 lr=0.002\n", encoding="utf-8")
    frame = train_tab.loss_frame(log)
    assert frame["step"].tolist() == [1, 2] and frame["loss"].tolist() == [3.5, 2.25]
    assert train_tab.loss_frame(None).empty


def test_training_overview_lists_states_and_weights(tmp_path: Path) -> None:
    i18n = AppContext.create(WebUISettings(), "en_US", root=tmp_path).i18n
    exp = tmp_path / "logs" / "voice"
    (exp / "logs_s1_v2").mkdir(parents=True)
    (exp / "logs_s1_v2" / "t2s_00000120.pt").write_bytes(b"")
    (tmp_path / "GPT_weights_v2").mkdir()
    for name in ("voice-e5.ckpt", "voice-e10.ckpt", "other-e5.ckpt"):
        (tmp_path / "GPT_weights_v2" / name).write_bytes(b"")
    text = train_tab.training_overview(i18n, exp, tmp_path, "v2")
    assert "SoVITS: no training state yet" in text
    assert "GPT: training state at step 120" in text
    assert "voice-e10.ckpt" in text and "other" not in text


def test_tab_builds(tmp_path: Path) -> None:
    ctx = AppContext.create(WebUISettings(), "zh_CN", root=tmp_path)
    with gr.Blocks():
        train_tab.build_tab(ctx, gr.Textbox("voice"), gr.Dropdown(["v2", "v2Pro"], value="v2"))


def test_loss_plot_shows_only_the_current_run(tmp_path: Path) -> None:
    """The job log keeps earlier runs; the plot starts at the current run's first byte."""
    log = tmp_path / "job.log"
    log.write_text("x: TRAIN epoch=1 step=1 loss=9.0\nx: TRAIN epoch=1 step=2 loss=8.0\n", encoding="utf-8")
    offset = log.stat().st_size
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ python -m GPT_SoVITS.train.gpt\nx: TRAIN epoch=1 step=1 loss=4.0\n")
    assert train_tab.loss_frame(log, offset)["loss"].tolist() == [4.0]
    assert train_tab.loss_frame(log)["loss"].tolist() == [9.0, 8.0, 4.0]
