"""GPT trainer on a tiny formatted experiment and a tiny pretrained GPT file (CPU, seconds)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

from GPT_SoVITS.checkpoints import latest_train_state, load_train_state
from GPT_SoVITS.config import load_config, save_config
from GPT_SoVITS.models import load_t2s
from GPT_SoVITS.models.t2s import T2SConfig
from GPT_SoVITS.train import gpt
from GPT_SoVITS.train.config import GPTOptimizerConfig, GPTRunConfig
from GPT_SoVITS.train.loop import AlreadyDoneError, PretrainedWeightsError, parse_train_line
from tests.unit.test_train_data import make_experiment, tiny_gpt_file


def make_cfg(root: Path, n_items: int = 4, **over) -> GPTRunConfig:
    exp = root / "exp"
    if not exp.exists():
        make_experiment(exp, n_items=n_items)
    pre = root / "pre.ckpt"
    if not pre.exists():
        tiny_gpt_file(pre)
    base = {"exp_dir": str(exp), "pretrained": str(pre), "weights_dir": str(root / "weights"),
            "train": {"epochs": 2, "batch_size": 2, "grad_accum": 1}, "data": {"min_items": 1},
            "optimizer": {"constant_lr": 0.01},
            "runtime": {"num_workers": 0, "log_every_n_steps": 1}, "save": {"every_n_epochs": 1}}
    for key, value in over.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return load_config(GPTRunConfig, base)


def test_lr_schedule_constant_and_warmup_cosine() -> None:
    assert gpt.lr_at(0, GPTOptimizerConfig()) == gpt.lr_at(10**6, GPTOptimizerConfig()) == 0.002
    opt = GPTOptimizerConfig(schedule="warmup_cosine")
    assert gpt.lr_at(0, opt) == pytest.approx(opt.lr_init)
    assert gpt.lr_at(opt.warmup_steps, opt) == pytest.approx(opt.lr)
    assert gpt.lr_at(opt.warmup_steps + opt.decay_steps // 2, opt) == pytest.approx((opt.lr + opt.lr_end) / 2)
    assert gpt.lr_at(opt.warmup_steps + opt.decay_steps + 1, opt) == pytest.approx(opt.lr_end)


def test_overfits_one_item_and_release_loads_strictly(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, n_items=1, train={"epochs": 12}, data={"min_items": 2},
                   save={"every_n_epochs": 5})
    result = gpt.train(cfg)
    assert len(result.losses) == 24 and all(torch.isfinite(torch.tensor(result.losses)))
    assert sum(result.losses[-4:]) < 0.9 * sum(result.losses[:4])
    # saved at epochs 5, 10 and (always) the last one; upstream would skip epoch 12
    names = sorted(p.name for p in (tmp_path / "weights").iterdir())
    assert names == ["exp-e10.ckpt", "exp-e12.ckpt", "exp-e5.ckpt"]
    model, model_cfg = load_t2s(tmp_path / "weights" / "exp-e12.ckpt")
    state = load_train_state(latest_train_state(cfg.state_dir, "t2s"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state.model[key].half().float())
    assert model_cfg.n_layer == 2
    assert len(list(cfg.state_dir.glob("t2s_*.pt"))) == 1  # latest_only rotation


def test_refuses_missing_pretrained_unless_from_scratch(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, pretrained=str(tmp_path / "nope" / "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"))
    with pytest.raises(PretrainedWeightsError, match="refused to start.*pretrained GPT"):
        gpt.train(cfg)
    assert not cfg.state_dir.exists()
    scratch = make_cfg(tmp_path, pretrained=cfg.pretrained, runtime={"from_scratch": True, "max_steps": 1},
                       model={"embedding_dim": 16, "hidden_dim": 16, "head": 2, "linear_units": 32, "n_layer": 1})
    result = gpt.train(scratch)
    assert result.position.step == 1 and result.stopped


def test_wrong_kind_of_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a model")
    with pytest.raises(PretrainedWeightsError, match="broken.ckpt"):
        gpt.train(make_cfg(tmp_path, pretrained=str(bad)))


def test_stopped_run_resumes_exactly_like_an_uninterrupted_one(tmp_path: Path) -> None:
    full = gpt.train(make_cfg(tmp_path / "a", train={"epochs": 2}))
    assert full.position.step == 8  # 4 items, batch capped at a quarter of them (upstream) → 4 steps per epoch
    b = tmp_path / "b"
    stopped = gpt.train(make_cfg(b, train={"epochs": 2}, runtime={"max_steps": 6}))
    assert stopped.stopped and stopped.position.step == 6
    state = load_train_state(latest_train_state(b / "exp" / "logs_s1_v2", "t2s"))
    assert (state.step, state.epoch, state.extra["batches_done"]) == (6, 1, 2)
    resumed = gpt.train(make_cfg(b, train={"epochs": 2}))
    assert resumed.position.step == 8 and not resumed.stopped
    assert resumed.losses == pytest.approx(full.losses[6:], rel=1e-5)
    final_a = load_train_state(latest_train_state(tmp_path / "a" / "exp" / "logs_s1_v2", "t2s"))
    final_b = load_train_state(latest_train_state(b / "exp" / "logs_s1_v2", "t2s"))
    for key, value in final_a.model.items():
        torch.testing.assert_close(final_b.model[key], value)


def test_resume_restores_optimizer_then_more_epochs_continue(tmp_path: Path) -> None:
    first = gpt.train(make_cfg(tmp_path, train={"epochs": 1}))
    saved = load_train_state(latest_train_state(tmp_path / "exp" / "logs_s1_v2", "t2s"))
    trainer = gpt.GPTTrainer(make_cfg(tmp_path, train={"epochs": 2}), gpt.DistInfo(), torch.device("cpu"),
                             gpt.StopRequest())
    restored = trainer.optimizer.state_dict()
    assert trainer.pos.step == first.position.step == saved.step
    for idx, st in saved.optimizer["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(restored["state"][idx][name], value)
    more = trainer.fit()
    assert more.position.step == 2 * first.position.step and more.position.epochs_done == 2


def test_a_state_past_the_last_epoch_asked_for_is_already_done(tmp_path: Path) -> None:
    # a 2-epoch run stopped one batch into epoch 2 (the stop landed just after epoch 1 ended), restarted for 1 epoch
    stopped = gpt.train(make_cfg(tmp_path, train={"epochs": 2}, runtime={"max_steps": 5}))
    assert stopped.stopped and (stopped.position.epochs_done, stopped.position.batches_done) == (1, 1)
    with pytest.raises(AlreadyDoneError, match="1 of 1 epoch.*already trained.*Raise the number of epochs"):
        gpt.train(make_cfg(tmp_path, train={"epochs": 1}))


def test_already_done_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_cfg(tmp_path, train={"epochs": 1})
    gpt.train(cfg)
    with pytest.raises(AlreadyDoneError, match="1 of 1 epoch.*already trained.*Raise the number of epochs"):
        gpt.train(cfg)
    path = tmp_path / "gpt_train.yaml"
    save_config(cfg, path)
    with caplog.at_level(logging.INFO):
        assert gpt.main(["--config", str(path), "--log-file", str(tmp_path / "log.txt")]) == 0
    assert "already trained" in (tmp_path / "log.txt").read_text(encoding="utf-8")


def test_cli_writes_progress_and_loss_lines(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, train={"epochs": 1, "dpo": True})
    path = tmp_path / "gpt_train.yaml"
    save_config(cfg, path)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["train"]["dpo"] is True
    log_file = tmp_path / "train.log"
    assert gpt.main(["--config", str(path), "--log-file", str(log_file)]) == 0
    text = log_file.read_text(encoding="utf-8")
    parsed = [p for p in map(parse_train_line, text.splitlines()) if p]
    assert parsed and all(p[2]["loss"] > 0 for p in parsed)
    assert "PROGRESS 4/4 epoch 1/1" in text  # batch 2, halved by DPO → 4 batches
    assert "precision: fp32 (mixed precision off: running on CPU)" in text
    assert (tmp_path / "exp" / "tb" / "gpt").is_dir()


def test_config_error_exits_nonzero(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochz: 3\n", encoding="utf-8")
    assert gpt.main(["--config", str(path)]) == 2


def test_bf16_autocast_on_cpu(tmp_path: Path) -> None:
    result = gpt.train(make_cfg(tmp_path, train={"epochs": 1}, runtime={"precision": "bf16", "max_steps": 2}))
    assert result.position.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))


@pytest.mark.parametrize("name", ["example_gpt_tiny.ckpt", "example_s1_lightning_tiny.ckpt"])
def test_continues_from_upstream_written_files(name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Incremental training from files upstream itself wrote (compat kit): release weights and a Lightning state."""
    source = Path(__file__).resolve().parents[1] / "data" / "compat" / name
    make_cfg(tmp_path)  # builds the experiment
    (tmp_path / "exp" / "logs_s1_v2" / "ckpt").mkdir(parents=True)
    (tmp_path / "exp" / "logs_s1_v2" / "ckpt" / "epoch=3-step=9.ckpt").write_bytes(b"")
    with caplog.at_level(logging.INFO), pytest.raises(PretrainedWeightsError):
        gpt.train(make_cfg(tmp_path, pretrained=None))
    assert "epoch=3-step=9.ckpt" in caplog.text and "init_weights" in caplog.text  # upstream state: a hint
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = gpt.train(make_cfg(tmp_path, pretrained=None, init_weights=str(source), train={"epochs": 1}))
    assert f"loaded GPT weights {source}" in caplog.text and "keys matched" in caplog.text
    assert result.position.epochs_done == 1
    model, cfg = load_t2s(result.release_files[-1])
    assert (cfg.hidden_dim, cfg.n_layer) == (16, 2)


@pytest.mark.parametrize(("accum", "steps"), [(4, 1), (3, 2), (1, 4)])
def test_gradient_accumulation_steps_per_epoch(accum: int, steps: int, tmp_path: Path) -> None:
    """4 batches per epoch: a step after every ``accum`` batches and after the epoch's last batch."""
    result = gpt.train(make_cfg(tmp_path, train={"epochs": 1, "grad_accum": accum}))
    assert result.position.step == steps and len(result.losses) == steps


def test_v1_gpt_reads_v1_phone_ids(tmp_path: Path) -> None:
    tiny_gpt_file(tmp_path / "v1.ckpt", T2SConfig(phoneme_vocab_size=512, embedding_dim=16, hidden_dim=16, head=2,
                                                  linear_units=32, n_layer=1))
    make_cfg(tmp_path)  # builds the experiment; then give every item a v2-only phone (id > 511)
    from GPT_SoVITS.text.symbols import symbols

    path = tmp_path / "exp" / "2-name2text.txt"
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(f"{n}\t{p} {symbols('v2')[700]}\t{w}\t{t}\n" for n, p, w, t in lines), encoding="utf-8")
    for bert in (tmp_path / "exp" / "3-bert").glob("*.pt"):
        bert.unlink()
    # read with the v1 table (the model's), the phone becomes UNK inside the 512-row embedding
    result = gpt.train(make_cfg(tmp_path, pretrained=str(tmp_path / "v1.ckpt"), runtime={"max_steps": 1}))
    assert result.position.step == 1 and all(torch.isfinite(torch.tensor(result.losses)))
