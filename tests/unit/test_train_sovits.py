"""SoVITS GAN trainer on a tiny formatted experiment with tiny pretrained G/D files (CPU).

The generator is tiny; the discriminator has one period discriminator at an eighth of upstream's widths (the
trainer takes the width from the pretrained D file). One uninterrupted run is shared by the module.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from GPT_SoVITS.checkpoints import CheckpointError, latest_train_state, load_train_state, read_weights
from GPT_SoVITS.config import load_config
from GPT_SoVITS.models import load_sovits
from GPT_SoVITS.models.commons import slice_segments
from GPT_SoVITS.models.sovits import SynthesizerTrn
from GPT_SoVITS.train import sovits
from GPT_SoVITS.train.config import SoVITSRunConfig
from GPT_SoVITS.train.loop import AlreadyDoneError, PretrainedWeightsError
from GPT_SoVITS.train.losses import discriminator_loss
from tests.unit.test_train_data import TINY_PERIODS, TINY_SOVITS, make_experiment, tiny_sovits_files

pytestmark = pytest.mark.slow


def make_cfg(root: Path, **over) -> SoVITSRunConfig:
    exp = root / "exp"
    if not exp.exists():
        make_experiment(exp, n_items=1, seconds=(1.2, 1.2))
    if not (root / "pre").exists():
        tiny_sovits_files(root / "pre")
    base = {"exp_dir": str(exp), "pretrained_g": str(root / "pre" / "s2G_tiny.pth"),
            "pretrained_d": str(root / "pre" / "s2D_tiny.pth"), "weights_dir": str(root / "weights"),
            "discriminator_periods": list(TINY_PERIODS),
            "train": {"epochs": 2, "batch_size": 1}, "data": {"min_items": 2},
            "runtime": {"num_workers": 0, "log_every_n_steps": 1}, "save": {"every_n_epochs": 1}}
    for key, value in over.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return load_config(SoVITSRunConfig, base)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sovits.TrainResult]:
    root = tmp_path_factory.mktemp("sovits_full")
    return root, sovits.train(make_cfg(root))


def test_losses_finite_and_mel_loss_falls(full_run) -> None:
    _, result = full_run
    assert len(result.losses) == 4  # one clip repeated (upstream's small-set rule), batch 1, 2 epochs
    for losses in result.losses:
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    mel = [step["loss_mel"] for step in result.losses]
    assert sum(mel[2:]) < sum(mel[:2])


def test_release_file_loads_strictly_in_inference_layout(full_run) -> None:
    root, result = full_run
    assert [p.name for p in result.release_files] == ["exp_e1_s2.pth", "exp_e2_s4.pth"]
    loaded = read_weights(result.release_files[-1], expect="sovits")
    assert not any(k.startswith("enc_q.") for k in loaded.state_dict)
    assert all(v.dtype == torch.float16 for v in loaded.state_dict.values() if v.is_floating_point())
    assert loaded.info == "2epoch_4iteration" and loaded.version == "v2"
    model, cfg = load_sovits(result.release_files[-1], for_inference=False)
    assert cfg == TINY_SOVITS
    state = load_train_state(latest_train_state(root / "exp" / "logs_s2_v2", "sovits_G"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state.model[key].half().float())


def test_optimizer_groups_and_per_epoch_decay(full_run) -> None:
    root, _ = full_run
    cfg = make_cfg(root)
    g = SynthesizerTrn(TINY_SOVITS)
    opt_g, _ = sovits.build_optimizers(g, torch.nn.Linear(1, 1), cfg)
    base, text = opt_g.param_groups
    assert text["lr"] == pytest.approx(base["lr"] * 0.4)
    text_ids = {id(p) for p in text["params"]}
    expected = {id(p) for n, p in g.named_parameters() if n.split(".")[1] in ("text_embedding", "encoder_text", "mrte")
                and n.startswith("enc_p.")}
    assert text_ids == expected and len(base["params"]) + len(text["params"]) == len(list(g.parameters()))
    state = load_train_state(latest_train_state(root / "exp" / "logs_s2_v2", "sovits_G"))
    assert state.scheduler["last_epoch"] == 2
    assert state.optimizer["param_groups"][0]["lr"] == pytest.approx(1e-4 * 0.999875**2)
    assert len(list((root / "exp" / "logs_s2_v2").glob("sovits_*.pt"))) == 2  # latest G and D only


def test_stopped_run_resumes_exactly_then_says_already_done(full_run, tmp_path: Path) -> None:
    _, full = full_run
    first = sovits.train(make_cfg(tmp_path, runtime={"max_steps": 3}, save={"every_n_epochs": 2}))
    assert first.stopped and first.position.step == 3
    state = load_train_state(latest_train_state(tmp_path / "exp" / "logs_s2_v2", "sovits_G"))
    assert (state.epoch, state.extra["batches_done"]) == (1, 1)
    rest = sovits.train(make_cfg(tmp_path, save={"every_n_epochs": 2}))
    assert rest.position.step == 4 and len(rest.losses) == 1
    for key, want in full.losses[3].items():
        assert rest.losses[0][key] == pytest.approx(want, rel=1e-4, abs=1e-6), key
    with pytest.raises(AlreadyDoneError, match="2 of 2 epoch.*already trained.*Raise the number of epochs"):
        sovits.train(make_cfg(tmp_path))
    with pytest.raises(CheckpointError, match="sovits_D_00000004.pt: this training state does not fit"):
        sovits.train(make_cfg(tmp_path, train={"epochs": 3}, discriminator_periods=[2, 3]))


def test_missing_discriminator_is_refused(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, pretrained_d=str(tmp_path / "gsv-v2final-pretrained" / "s2D2333k.pth"))
    with pytest.raises(PretrainedWeightsError, match="refused to start.*s2D2333k.pth.*from_scratch"):
        sovits.train(cfg)


def test_discriminator_of_another_layout_is_refused(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, discriminator_periods=[2, 3])
    with pytest.raises(PretrainedWeightsError, match="does not fit.*missing"):
        sovits.train(cfg)


def test_incremental_training_starts_from_release_weights(full_run, tmp_path: Path) -> None:
    _, full = full_run
    cfg = make_cfg(tmp_path, init_weights=str(full.release_files[-1]))
    trainer = sovits.SoVITSTrainer(cfg, sovits.DistInfo(), torch.device("cpu"), sovits.StopRequest())
    release = read_weights(full.release_files[-1]).state_dict
    own = trainer.raw_g.state_dict()
    for key, value in release.items():
        torch.testing.assert_close(own[key], value.float())
    assert trainer.pos.step == 0


def test_gradient_accumulation_makes_one_step_of_two_batches(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, train={"epochs": 1, "grad_accum": 2}, save={"release_weights": False})
    trainer = sovits.SoVITSTrainer(cfg, sovits.DistInfo(), torch.device("cpu"), sovits.StopRequest())
    d_before = {k: v.clone() for k, v in trainer.raw_d.state_dict().items()}
    batches = list(trainer.loader(1, 0))
    assert len(batches) == 2
    torch.manual_seed(5)
    trainer.train_batch(batches[0], step_now=False)
    assert all(torch.equal(v, d_before[k]) for k, v in trainer.raw_d.state_dict().items())  # no step yet
    accumulated = [p.grad.clone() for p in trainer.raw_d.parameters()]
    # D must hold exactly its own loss's gradient: the generator pass's gradient on D is not accumulated
    twin = sovits.SoVITSTrainer(cfg, sovits.DistInfo(), torch.device("cpu"), sovits.StopRequest())
    torch.manual_seed(5)  # same random slice and noise: the generator forward is the first to draw
    m = twin.model_cfg
    out = twin.g(batches[0].ssl, batches[0].spec, batches[0].spec_lengths, batches[0].phones,
                 batches[0].phone_lengths)
    y = slice_segments(batches[0].wav, out.slice_starts * m.hop_length, m.segment_size)
    real, fake, _, _ = twin.d(y, out.audio.float().detach())
    (discriminator_loss(real, fake) / 2).backward()
    for got, want in zip(accumulated, (p.grad for p in twin.raw_d.parameters()), strict=True):
        torch.testing.assert_close(got, want)
    trainer.train_batch(batches[1], step_now=True)
    assert any(not torch.equal(v, d_before[k]) for k, v in trainer.raw_d.state_dict().items())
    assert all(p.grad is None for p in trainer.raw_d.parameters())  # zeroed after the step
