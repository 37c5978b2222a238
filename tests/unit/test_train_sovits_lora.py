"""SoVITS v4 LoRA fine-tuning on a tiny formatted experiment with a tiny v4 base (``make_tiny_pretrained.write_v4``).

One uninterrupted run (rank 16, one clip repeated 3×, batch 1, 2 epochs = 6 steps) is shared by the module; the
dataset tests at the top are fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from GPT_SoVITS.checkpoints import CheckpointError, latest_train_state, load_train_state, read_weights, safe_load
from GPT_SoVITS.config import ConfigError, load_config, to_dict
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_SOVITS_V4, write_v4
from GPT_SoVITS.features.spectrogram import MEL_V3, MEL_V4, norm_mel_v4
from GPT_SoVITS.models.lora import lora_release_keys, merge_lora_release
from GPT_SoVITS.models.sovits_v4 import SynthesizerTrnV3
from GPT_SoVITS.train import sovits_lora
from GPT_SoVITS.train.config import SoVITSLoRARunConfig
from GPT_SoVITS.train.data import CFMDataset, DatasetError, collate_cfm
from GPT_SoVITS.train.loop import RELEASE_KEY, AlreadyDoneError, PretrainedWeightsError, StopRequest
from tests.unit.test_train_data import make_experiment, tiny_sovits_files

RANK = 16
GAMMA = 0.999875
LR = 3e-3  # 30× upstream's, so that six steps clearly lower the loss


def base_path(root: Path) -> Path:
    return root / "pre" / "gsv-v4-pretrained" / "s2Gv4.pth"


def make_cfg(root: Path, **over) -> SoVITSLoRARunConfig:
    exp = root / "exp"
    if not exp.exists():
        make_experiment(exp, n_items=1, seconds=(1.2, 1.2))
    if not base_path(root).exists():
        write_v4(root / "pre")
    base = {"exp_dir": str(exp), "pretrained_g": str(base_path(root)), "weights_dir": str(root / "weights"),
            "train": {"epochs": 2, "batch_size": 1, "lora_rank": RANK, "learning_rate": LR},
            "data": {"min_items": 3}, "runtime": {"num_workers": 0, "log_every_n_steps": 1},
            "save": {"every_n_epochs": 1}}
    for key, value in over.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return load_config(SoVITSLoRARunConfig, base)


def new_trainer(cfg: SoVITSLoRARunConfig, stop: StopRequest | None = None) -> sovits_lora.SoVITSLoRATrainer:
    return sovits_lora.SoVITSLoRATrainer(cfg, sovits_lora.DistInfo(), torch.device("cpu"), stop or StopRequest())


def plain_base(root: Path) -> SynthesizerTrnV3:
    loaded = read_weights(base_path(root), expect="sovits")
    return SynthesizerTrnV3.from_upstream(loaded.config, loaded.state_dict).eval()


# ------------------------------------------------------------------------------------------------- dataset
def test_cfm_dataset_gives_the_normalised_v4_mel_of_the_whole_clip(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", n_items=2, seconds=(1.0, 1.5), extra={"short.wav": 0.3})
    ds = CFMDataset(exp, MEL_V4, min_items=1)
    assert ds.report.found == 3 and ds.report.kept == 2
    ssl, spec, mel, phones = ds[0]
    wave, sr = sf.read(str(exp.wav32k_dir / ds.items[0].name), dtype="float32")
    assert sr == 32000 and spec.shape == (1025, len(wave) // 640) and ssl.shape == (768, spec.shape[-1])
    torch.testing.assert_close(mel, norm_mel_v4(MEL_V4(torch.from_numpy(wave)))[0])
    assert mel.shape == (100, len(wave) // 320)  # 100 frames/s: twice the spectrogram's rate
    assert phones.dtype == torch.long and phones.numel() > 0
    items = [ds[0], ds[1]]
    batch = collate_cfm(items)
    order = sorted(range(2), key=lambda i: items[i][1].shape[-1], reverse=True)  # longest first
    assert batch.spec_lengths.tolist() == [items[i][1].shape[-1] for i in order]
    assert batch.mel_lengths.tolist() == [items[i][2].shape[-1] for i in order]
    assert batch.spec.shape[-1] % 2 == 0 and batch.mel.shape[-1] % 2 == 0
    shorter = int(batch.mel_lengths[1])
    torch.testing.assert_close(batch.mel[1, :, :shorter], items[order[1]][2])
    assert float(batch.mel[1, :, shorter:].abs().sum()) == 0.0  # padding is zeros


def test_cfm_dataset_leaves_out_and_counts_broken_hubert_files(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", n_items=3)
    (exp.hubert_dir / "clip1.wav.pt").write_bytes(b"PK\x03\x04 truncated")
    ds = CFMDataset(exp, MEL_V4, min_items=6)
    assert ds.report.kept == 2 and ds.report.repeats == 3 and len(ds) == 6
    assert "unreadable HuBERT" in ds.report.summary()
    assert {item.name for item in ds.items} == {"clip0.wav", "clip2.wav"}


def test_cfm_dataset_refuses_a_mel_of_another_rate(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", n_items=1)
    with pytest.raises(DatasetError, match="24000 Hz.*resampling"):
        CFMDataset(exp, MEL_V3, min_items=1)


def test_run_config_rank_version_and_folders(tmp_path: Path) -> None:
    cfg = load_config(SoVITSLoRARunConfig, {"exp_dir": str(tmp_path / "voice"), "train": {"lora_rank": 64}})
    assert cfg.state_dir == tmp_path / "voice" / "logs_s2_v4_lora_64"
    assert cfg.release_name(2, 10) == "voice_e2_s10_l64.pth" and cfg.release_glob == "voice_e*_s*_l64.pth"
    assert load_config(SoVITSLoRARunConfig, to_dict(cfg)) == cfg
    assert SoVITSLoRARunConfig().train.lora_rank == 32
    for bad in (8, 100, "32", True):
        with pytest.raises(ConfigError, match="lora_rank must be one of 16, 32, 64, 128"):
            load_config(SoVITSLoRARunConfig, {"train": {"lora_rank": bad}})
    with pytest.raises(ConfigError, match="v2 is not fine-tuned with LoRA"):
        load_config(SoVITSLoRARunConfig, {"version": "v2"})
    with pytest.raises(ConfigError, match="v3 is not supported yet"):
        load_config(SoVITSLoRARunConfig, {"version": "v3"})
    upstream = cfg.upstream_config(TINY_SOVITS_V4)
    assert upstream["model"]["version"] == "v4" and upstream["train"]["lora_rank"] == "64"
    assert upstream["save_weight_dir"] == "SoVITS_weights_v4"
    json.dumps(upstream)  # plain data only


# --------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lora_full")
    trainer = new_trainer(make_cfg(root))
    return root, trainer, trainer.fit()


def _fixed_draw_loss(model: SynthesizerTrnV3, batch, seeds=range(4)) -> float:
    """The training loss with frozen random draws (t, noise, prompt length, shortcut), dropout off."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for seed in seeds:
            torch.manual_seed(seed)
            total += float(model(batch.ssl, batch.spec, batch.spec_lengths, batch.mel, batch.mel_lengths,
                                 batch.phones, batch.phone_lengths))
    return total / len(seeds)


@pytest.mark.slow
def test_losses_finite_and_falling(full_run) -> None:
    root, trainer, result = full_run
    assert len(result.losses) == 6 and all(np.isfinite(result.losses))
    batch = next(iter(trainer.loader(1, 0)))
    before = _fixed_draw_loss(plain_base(root), batch)
    after = _fixed_draw_loss(trainer.raw_model, batch)
    assert after < 0.97 * before, (before, after)  # deterministic draws: a real drop, not noise


@pytest.mark.slow
def test_release_file_is_upstreams_lora_release(full_run) -> None:
    root, trainer, result = full_run
    assert [p.name for p in result.release_files] == [f"exp_e1_s3_l{RANK}.pth", f"exp_e2_s6_l{RANK}.pth"]
    release = result.release_files[-1]
    assert release.read_bytes()[:2] == b"04"
    obj, tag = safe_load(release)
    assert tag == b"04" and obj["lora_rank"] == RANK and type(obj["lora_rank"]) is int
    assert list(obj["weight"]) == lora_release_keys(trainer.raw_model)
    assert all(v.dtype == torch.float16 for v in obj["weight"].values() if v.is_floating_point())
    assert not any(".base_layer." in k or k.startswith(("enc_p.", "ssl_proj.")) for k in obj["weight"])
    assert obj["info"] == "2epoch_6iteration"
    assert obj["config"]["model"]["version"] == "v4" and obj["config"]["train"]["lora_rank"] == str(RANK)
    loaded = read_weights(release, expect="sovits")
    assert loaded.version == "v4"


@pytest.mark.slow
def test_release_merged_into_a_fresh_base_reproduces_the_trained_model(full_run) -> None:
    root, trainer, result = full_run
    trained = trainer.raw_model.eval()
    obj, _ = safe_load(result.release_files[-1])
    merged = merge_lora_release(plain_base(root), obj["weight"])
    untouched = plain_base(root)
    g = torch.Generator().manual_seed(3)
    codes, phones = torch.randint(0, 1024, (1, 1, 20), generator=g), torch.randint(1, 300, (1, 12), generator=g)
    refer = torch.rand(1, 1025, 50, generator=g)
    prompt, noise = torch.randn(1, 100, 30, generator=g), torch.randn(1, 100, 80, generator=g)

    def outputs(model: SynthesizerTrnV3) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            fea, _ = model.decode_encp(codes, phones, refer)
            mu = fea[:, :, :80].transpose(1, 2)
            return fea, model.cfm.inference(mu, torch.tensor([80]), prompt, 4, noise=noise)

    want_fea, want_mel = outputs(trained)
    got_fea, got_mel = outputs(merged)
    torch.testing.assert_close(got_fea, want_fea, atol=2e-3, rtol=0)  # the release holds fp16 copies
    torch.testing.assert_close(got_mel, want_mel, atol=2e-3, rtol=0)
    base_fea, base_mel = outputs(untouched)  # the comparison can fail: training moved the outputs
    assert (base_fea - want_fea).abs().max() > 2e-2 and (base_mel - want_mel).abs().max() > 2e-2


@pytest.mark.slow
def test_state_holds_only_trained_tensors_and_upstreams_lr_schedule(full_run) -> None:
    root, trainer, _ = full_run
    folder = root / "exp" / f"logs_s2_v4_lora_{RANK}"
    assert [p.name for p in folder.glob("*.pt")] == ["sovits_lora_00000006.pt"]  # latest only
    state = load_train_state(folder / "sovits_lora_00000006.pt")
    assert list(state.model) == lora_release_keys(trainer.raw_model)
    assert all(v.dtype == torch.float32 for v in state.model.values() if v.is_floating_point())
    assert state.config["lora_rank"] == RANK and state.extra["base_fingerprint"] == trainer.base_fingerprint
    assert state.scheduler["last_epoch"] == 2
    # upstream's extra scheduler step before training: epoch e trains at LR·γ^e
    assert state.optimizer["param_groups"][0]["lr"] == pytest.approx(LR * GAMMA**3)
    frozen = {n for n, p in trainer.raw_model.named_parameters() if not p.requires_grad}
    assert frozen and not frozen & set(state.model)
    assert not any(k.startswith(("cfm.base_model.model.estimator.transformer_blocks.0.attn.to_q.base_layer",
                                 "enc_p.")) for k in state.model)


@pytest.mark.slow
def test_stopped_run_resumes_exactly_then_says_already_done(full_run, tmp_path: Path) -> None:
    _, full_trainer, full = full_run
    first = sovits_lora.train(make_cfg(tmp_path, runtime={"max_steps": 4}, save={"every_n_epochs": 2}))
    assert first.stopped and first.position.step == 4 and first.release_files == []
    state = load_train_state(latest_train_state(tmp_path / "exp" / f"logs_s2_v4_lora_{RANK}", "sovits_lora"))
    assert (state.step, state.epoch, state.extra["batches_done"]) == (4, 1, 1)
    rest_trainer = new_trainer(make_cfg(tmp_path, save={"every_n_epochs": 2}))
    rest = rest_trainer.fit()
    assert rest.position.step == 6 and rest.losses == pytest.approx(full.losses[4:], rel=1e-5, abs=1e-7)
    want = full_trainer.raw_model.state_dict()
    for key, value in sovits_lora.trained_state(rest_trainer.raw_model).items():
        torch.testing.assert_close(value, want[key], msg=key)
    with pytest.raises(AlreadyDoneError, match="2 of 2 epoch.*already trained"):
        sovits_lora.train(make_cfg(tmp_path))


@pytest.mark.slow
def test_stop_file_stops_after_one_step_with_a_saved_state(tmp_path: Path) -> None:
    stop_file = tmp_path / "stop"
    stop_file.write_text("", encoding="utf-8")
    result = new_trainer(make_cfg(tmp_path), StopRequest(stop_file)).fit()
    assert result.stopped and result.position.step == 1
    assert load_train_state(result.state_files[-1]).extra["batches_done"] == 1


@pytest.mark.slow
def test_a_release_a_kill_prevented_is_written_from_the_state(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, train={"epochs": 1})
    (release,) = sovits_lora.train(cfg).release_files
    state = load_train_state(latest_train_state(cfg.state_dir, "sovits_lora"))
    assert state.extra[RELEASE_KEY] == release.name
    written, _ = safe_load(release)
    release.unlink()  # what a kill right after the state save leaves
    with pytest.raises(AlreadyDoneError, match="1 of 1 epoch"):
        sovits_lora.train(cfg)
    again, tag = safe_load(release)
    assert tag == b"04" and {k: again[k] for k in ("config", "info", "lora_rank")} == {
        k: written[k] for k in ("config", "info", "lora_rank")}
    assert list(again["weight"]) == list(written["weight"])
    for key, value in written["weight"].items():
        assert torch.equal(again["weight"][key], value), key


@pytest.mark.slow
def test_resume_refuses_a_changed_base(tmp_path: Path) -> None:
    sovits_lora.train(make_cfg(tmp_path, runtime={"max_steps": 1}))
    write_v4(tmp_path / "pre", seed=1)  # another base at the same path
    with pytest.raises(CheckpointError, match="trained on another base model"):
        sovits_lora.train(make_cfg(tmp_path))


@pytest.mark.slow
def test_continue_from_a_release_of_the_same_rank(full_run, tmp_path: Path) -> None:
    _, _, full = full_run
    trainer = new_trainer(make_cfg(tmp_path, init_weights=str(full.release_files[-1])))
    obj, _ = safe_load(full.release_files[-1])
    own = trainer.raw_model.state_dict()
    for key, value in obj["weight"].items():
        torch.testing.assert_close(own[key], value.float(), msg=key)
    assert trainer.pos.step == 0
    with pytest.raises(CheckpointError, match="rank-16 LoRA file cannot continue a rank-32 run"):
        new_trainer(make_cfg(tmp_path / "other", init_weights=str(full.release_files[-1]), train={"lora_rank": 32}))


def test_missing_base_is_refused_with_its_name(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, pretrained_g=str(tmp_path / "gsv-v4-pretrained" / "s2Gv4.pth"))
    with pytest.raises(PretrainedWeightsError, match="refused to start.*v4 pretrained SoVITS.*s2Gv4.pth.*from_scratch"):
        sovits_lora.train(cfg)
    cfg_path = tmp_path / "run.yaml"
    from GPT_SoVITS.config import save_config

    save_config(cfg, cfg_path)
    assert sovits_lora.main(["--config", str(cfg_path), "--log-file", str(tmp_path / "run.log")]) == 1
    assert "s2Gv4.pth" in (tmp_path / "run.log").read_text(encoding="utf-8")


def test_base_of_another_version_is_refused(tmp_path: Path) -> None:
    g_path, _ = tiny_sovits_files(tmp_path / "v2pre")
    with pytest.raises(PretrainedWeightsError, match="is a v2 model but this run trains v4"):
        sovits_lora.train(make_cfg(tmp_path, pretrained_g=str(g_path)))


@pytest.mark.slow
def test_a_lora_release_is_not_a_base(full_run, tmp_path: Path) -> None:
    _, _, full = full_run
    with pytest.raises(PretrainedWeightsError, match="is a LoRA release.*not the base model.*init_weights"):
        sovits_lora.train(make_cfg(tmp_path, pretrained_g=str(full.release_files[-1])))


@pytest.mark.slow
def test_bf16_autocast_on_cpu(tmp_path: Path) -> None:
    result = sovits_lora.train(make_cfg(tmp_path, runtime={"precision": "bf16", "max_steps": 1}))
    assert result.position.step == 1 and np.isfinite(result.losses[0])


@pytest.mark.slow
def test_gradient_checkpointing_and_accumulation_train(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, train={"epochs": 1, "grad_ckpt": True, "grad_accum": 2}, save={"release_weights": False})
    result = sovits_lora.train(cfg)
    assert result.position.step == 2 and all(np.isfinite(result.losses))  # 3 batches: steps after 2 and 3
