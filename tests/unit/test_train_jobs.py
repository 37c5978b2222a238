"""1B job specs and tab helpers: argv round trips (plain and torchrun), config file, outputs, defaults, loss plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest
from torch.distributed.run import get_args_parser

from app.context import AppContext
from app.devices import GpuInfo
from app.jobs import TrainJob
from app.tabs import train as train_tab
from app.widgets import UserInputError
from GPT_SoVITS.config import WebUISettings, load_config
from GPT_SoVITS.train import gpt, sovits, sovits_lora
from GPT_SoVITS.train.config import GPTRunConfig, SoVITSLoRARunConfig, SoVITSLoRATrainConfig, SoVITSRunConfig
from GPT_SoVITS.versions import version_spec
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


# ------------------------------------------------------------------------------------------- v4 (LoRA)
def test_lora_job_runs_the_versions_trainer(tmp_path: Path) -> None:
    cfg = SoVITSLoRARunConfig(exp_dir=tmp_path / "exp", weights_dir=tmp_path / "w",
                              train=SoVITSLoRATrainConfig(lora_rank=64))
    job = TrainJob("sovits", cfg, tmp_path / "sovits_lora.yaml")
    assert job.module == version_spec("v4").sovits_trainer == "GPT_SoVITS.train.sovits_lora"
    assert sovits_lora.build_parser().parse_args(job.to_argv()).config == tmp_path / "sovits_lora.yaml"
    torchrun = TrainJob("sovits", cfg, tmp_path / "sovits_lora.yaml", gpus="0-1")
    args = get_args_parser().parse_args(torchrun.to_argv())
    assert args.training_script == "GPT_SoVITS.train.sovits_lora" and args.nproc_per_node == "2"
    check = job.check_outputs()
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "exp_e2_s8_l32.pth").write_bytes(b"")  # another rank's release does not count
    assert check() is not None
    (tmp_path / "w" / "exp_e2_s8_l64.pth").write_bytes(b"")
    assert check() is None
    states = TrainJob("sovits", replace(cfg, save=replace(cfg.save, release_weights=False)), tmp_path / "s.yaml")
    assert "logs_s2_v4_lora_64" in states.check_outputs()()  # the missing training state it names
    make_experiment(tmp_path / "exp", n_items=1)
    with pytest.raises(ValueError, match="sovits_lora takes a SoVITSLoRARunConfig"):
        TrainJob("sovits", SoVITSRunConfig(exp_dir=tmp_path / "exp", version="v4"), tmp_path / "x.yaml").spec()


def test_sovits_panel_defaults_follow_upstream_per_version() -> None:
    gpus = [GpuInfo(0, "a", 24.0, (8, 6)), GpuInfo(1, "b", 17.0, (6, 1))]
    v4 = train_tab.sovits_panel_defaults("v4", gpus, 64)
    assert (v4.lora, v4.batch, v4.epochs, v4.max_epochs, v4.save_every, v4.max_save_every) == (True, 2, 2, 16, 1, 10)
    old_gpu = [GpuInfo(0, "k80", 40.0, (3, 7))]  # below 5.3: fp32, so upstream halves the batch
    assert train_tab.sovits_panel_defaults("v4", old_gpu, 64).batch == 2
    assert train_tab.sovits_panel_defaults("v4", [], 15.5).batch == 3  # CPU: a quarter of the RAM, as today
    v2 = train_tab.sovits_panel_defaults("v2Pro", gpus, 64)
    assert (v2.lora, v2.batch, v2.epochs, v2.max_epochs, v2.save_every, v2.max_save_every) == (False, 8, 8, 25, 4, 25)


def _v4_context(tmp_path: Path) -> AppContext:
    from GPT_SoVITS.dev.make_tiny_pretrained import write_v4

    write_v4(tmp_path / "pretrained_models")
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    make_experiment(tmp_path / "logs" / "voice", n_items=1)
    return ctx


def test_panel_values_become_the_lora_run_config(tmp_path: Path) -> None:
    ctx = _v4_context(tmp_path)
    job = train_tab.sovits_train_job(ctx, "voice", "v4", 3, 4, 0.4, 16, 2, "pretrained_models/gsv-v4-pretrained/"
                                     "s2Gv4.pth", "", False, True, "", "auto", 2, False, "")
    cfg = job.config
    assert isinstance(cfg, SoVITSLoRARunConfig) and job.module == "GPT_SoVITS.train.sovits_lora"
    assert (cfg.train.lora_rank, cfg.train.batch_size, cfg.train.epochs, cfg.train.grad_accum) == (16, 3, 4, 2)
    assert (cfg.save.every_n_epochs, cfg.save.latest_only, cfg.runtime.device) == (2, False, "cpu")
    assert cfg.pretrained_g == tmp_path / "pretrained_models" / "gsv-v4-pretrained" / "s2Gv4.pth"
    assert cfg.weights_dir == tmp_path / "SoVITS_weights_v4" and cfg.state_dir.name == "logs_s2_v4_lora_16"
    job.spec()
    assert load_config(SoVITSLoRARunConfig, tmp_path / "logs" / "voice" / "sovits_lora.yaml") == cfg
    with pytest.raises(UserInputError) as refused:
        train_tab.sovits_train_job(ctx, "voice", "v4", 1, 2, 0.4, 32, 1, "nowhere/s2Gv4.pth", "", True, True, "",
                                   "auto", 1, False, "")
    assert "nowhere/s2Gv4.pth" in refused.value.text(ctx.i18n)
    v2 = train_tab.sovits_train_job(ctx, "voice", "v2", 1, 2, 0.3, 32, 1, "g.pth", "", True, True, "", "auto", 1,
                                    True, "")
    assert isinstance(v2.config, SoVITSRunConfig) and v2.config.train.text_low_lr_rate == 0.3


def test_training_overview_lists_lora_states_of_every_rank(tmp_path: Path) -> None:
    i18n = AppContext.create(WebUISettings(), "en_US", root=tmp_path).i18n
    exp = tmp_path / "logs" / "voice"
    for rank, step in ((32, 12), (64, 4)):
        (exp / f"logs_s2_v4_lora_{rank}").mkdir(parents=True)
        (exp / f"logs_s2_v4_lora_{rank}" / f"sovits_lora_{step:08d}.pt").write_bytes(b"")
    (tmp_path / "SoVITS_weights_v4").mkdir()
    (tmp_path / "SoVITS_weights_v4" / "voice_e2_s12_l32.pth").write_bytes(b"")
    text = train_tab.training_overview(i18n, exp, tmp_path, "v4")
    assert "SoVITS (LoRA rank 32): training state at step 12" in text
    assert "SoVITS (LoRA rank 64): training state at step 4" in text and "voice_e2_s12_l32.pth" in text
    assert "SoVITS: no training state yet" in train_tab.training_overview(i18n, tmp_path / "logs" / "new", tmp_path,
                                                                           "v4")


def test_tab_builds_for_v4(tmp_path: Path) -> None:
    ctx = _v4_context(tmp_path)
    ctx.workflow.remember(version="v4")
    with gr.Blocks():
        train_tab.build_tab(ctx, gr.Textbox("voice"), gr.Dropdown(["v2", "v4"], value="v4"))
