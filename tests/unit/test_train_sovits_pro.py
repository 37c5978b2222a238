"""SoVITS v2Pro fine-tuning on a tiny formatted experiment with speaker embeddings (7-sv_cn), on CPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from GPT_SoVITS.checkpoints import read_weights
from GPT_SoVITS.config import load_config
from GPT_SoVITS.models import load_sovits
from GPT_SoVITS.models.discriminator import BASE_CHANNELS, PRO_PERIODS, MultiPeriodDiscriminator
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.train import sovits
from GPT_SoVITS.train.config import SoVITSRunConfig
from GPT_SoVITS.train.data import DatasetError, SoVITSDataset
from GPT_SoVITS.train.loop import PretrainedWeightsError
from tests.unit.test_train_data import TINY_PERIODS, TINY_SOVITS, make_experiment, tiny_sovits_files

pytestmark = pytest.mark.slow

SV_DIM = 64
TINY_PRO = dataclasses.replace(TINY_SOVITS, version="v2Pro", p_dropout=0.0, gin_channels=24, mrte_hidden_channels=32,
                               sv_dim=SV_DIM)


def write_embeddings(exp: ExperimentPaths, skip: int = 0, dtype: torch.dtype = torch.float16) -> list[str]:
    """One [1, SV_DIM] embedding per 5-wav32k clip (float16, as 1A writes them in half precision)."""
    exp.sv_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in exp.wav32k_dir.iterdir())
    for i, name in enumerate(names[skip:]):
        torch.save(torch.randn(1, SV_DIM, generator=torch.Generator().manual_seed(i)).to(dtype),
                   exp.sv_dir / f"{name}.pt")
    return names


def make_cfg(root: Path, **over) -> SoVITSRunConfig:
    exp = root / "exp"
    if not exp.exists():
        write_embeddings(make_experiment(exp, n_items=1, seconds=(1.2, 1.2)))
    if not (root / "pre").exists():
        tiny_sovits_files(root / "pre", cfg=TINY_PRO)
    base = {"exp_dir": str(exp), "version": "v2Pro", "pretrained_g": str(root / "pre" / "s2G_tiny.pth"),
            "pretrained_d": str(root / "pre" / "s2D_tiny.pth"), "weights_dir": str(root / "weights"),
            "discriminator_periods": list(TINY_PERIODS), "train": {"epochs": 1, "batch_size": 1},
            "data": {"min_items": 2}, "runtime": {"num_workers": 0, "log_every_n_steps": 1}}
    base.update(over)
    return load_config(SoVITSRunConfig, base)


def test_pro_run_trains_with_embeddings_and_writes_a_tagged_release(tmp_path: Path) -> None:
    result = sovits.train(make_cfg(tmp_path))
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(v)).all() for v in result.losses[0].values())
    release = result.release_files[-1]
    assert release.read_bytes()[:2] == b"05"  # upstream recognises v2Pro files only by this tag
    loaded = read_weights(release, expect="sovits")
    assert loaded.version == "v2Pro" and loaded.config["model"]["version"] == "v2Pro"
    model, cfg = load_sovits(release)
    assert cfg == TINY_PRO and (tmp_path / "exp" / "logs_s2_v2Pro").is_dir()
    codes, text, spec = torch.randint(0, 1024, (1, 1, 10)), torch.tensor([[5, 6, 7]]), torch.rand(1, 1025, 40)
    with pytest.raises(ValueError, match="speaker-verification embedding"):
        model.decode(codes, text, [spec])
    audio = model.decode(codes, text, [spec], sv_emb=[torch.randn(1, SV_DIM)])
    assert audio.shape == (1, 1, 20 * 640) and torch.isfinite(audio).all()


def test_the_embedding_changes_the_training_forward(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    trainer = sovits.SoVITSTrainer(cfg, sovits.DistInfo(), torch.device("cpu"), sovits.StopRequest())
    batch = next(iter(trainer.loader(1, 0)))
    assert batch.sv_emb is not None and batch.sv_emb.shape == (1, SV_DIM) and batch.sv_emb.dtype == torch.float32
    trainer.raw_g.eval()
    with torch.no_grad():
        ge = trainer.raw_g(batch.ssl, batch.spec, batch.spec_lengths, batch.phones, batch.phone_lengths,
                           batch.sv_emb).ge
        other = trainer.raw_g(batch.ssl, batch.spec, batch.spec_lengths, batch.phones, batch.phone_lengths,
                              batch.sv_emb + 1).ge
    assert ge.shape == (1, 24, 1) and not torch.allclose(ge, other)


def test_items_without_embeddings_are_counted_and_a_missing_folder_is_explained(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", n_items=4)
    with pytest.raises(DatasetError, match="7-sv_cn not found.*speaker embeddings.*1A"):
        SoVITSDataset(exp, "v2Pro", with_sv=True)
    write_embeddings(exp, skip=1)
    dataset = SoVITSDataset(exp, "v2Pro", with_sv=True, min_items=1)
    assert dataset.report.removed == {"without a speaker embedding (1A SV step)": 1} and len(dataset) == 3
    assert dataset[0][4].shape == (SV_DIM,)
    assert SoVITSDataset(exp, "v2", min_items=1)[0][4] is None  # v2 reads no embeddings


def test_pretrained_files_of_another_version_are_refused(tmp_path: Path) -> None:
    tiny_sovits_files(tmp_path / "v2pre")  # a v2 generator
    cfg = make_cfg(tmp_path, pretrained_g=str(tmp_path / "v2pre" / "s2G_tiny.pth"))
    with pytest.raises(PretrainedWeightsError, match="is a v2 model but this run trains v2Pro"):
        sovits.train(cfg)


def test_pro_discriminator_periods_come_from_the_version(tmp_path: Path) -> None:
    cfg = dataclasses.replace(make_cfg(tmp_path), discriminator_periods=None)
    periods = [d.period for d in sovits._discriminator(cfg, TINY_PRO).discriminators[1:]]
    assert periods == [2, 3, 5, 7, 11, 17, 23]


@pytest.mark.parametrize("base", [2, 4, 16])
def test_the_discriminator_takes_the_width_of_the_weights_it_loads(tmp_path: Path, base: int) -> None:
    """Upstream's keys at any width; the trainer builds the width of the D file (upstream's without one)."""
    full = MultiPeriodDiscriminator(periods=PRO_PERIODS).state_dict()
    narrow = MultiPeriodDiscriminator(periods=PRO_PERIODS, base_channels=base).state_dict()
    assert list(narrow) == list(full)
    assert narrow["discriminators.1.convs.0.weight_v"].shape[0] == base  # upstream: 32
    assert MultiPeriodDiscriminator.base_channels_of(full) == BASE_CHANNELS == 32
    cfg = dataclasses.replace(make_cfg(tmp_path), discriminator_periods=None)
    built = sovits._discriminator(cfg, TINY_PRO, narrow)
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in narrow.items()}
    assert sovits._discriminator(cfg, TINY_PRO).state_dict()["discriminators.0.convs.0.weight_v"].shape[0] == 16


def test_a_discriminator_width_that_cannot_be_built_is_refused() -> None:
    with pytest.raises(ValueError, match="base_channels must be 2, 4, 8, 16 or 32, got 6"):
        MultiPeriodDiscriminator(base_channels=6)
