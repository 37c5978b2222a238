"""Run configs: upstream defaults, YAML round trip, launcher YAMLs, and the configs written into release files."""

from __future__ import annotations

from pathlib import Path

import pytest

from GPT_SoVITS.config import ConfigError, load_config, save_config
from GPT_SoVITS.models.sovits import SoVITSConfig
from GPT_SoVITS.models.t2s import T2SConfig
from GPT_SoVITS.paths import REPO_ROOT
from GPT_SoVITS.train.config import GPTRunConfig, RuntimeConfig, SaveConfig, SoVITSRunConfig, validate_common
from tests.unit.test_train_data import TINY_SOVITS


def test_defaults_are_upstreams() -> None:
    s, g = SoVITSRunConfig(), GPTRunConfig()
    assert (s.train.learning_rate, s.train.betas, s.train.eps, s.train.lr_decay) == (1e-4, (0.8, 0.99), 1e-9, 0.999875)
    assert (s.train.c_mel, s.train.c_kl, s.train.text_low_lr_rate, s.train.batch_size) == (45.0, 1.0, 0.4, 32)
    assert (g.train.batch_size, g.train.epochs, g.optimizer.constant_lr, g.train.grad_accum) == (8, 20, 0.002, 4)
    assert g.optimizer.betas == (0.9, 0.95) and g.data.max_sec == 54


@pytest.mark.parametrize(("cls", "name"), [(SoVITSRunConfig, "sovits_v2.yaml"), (GPTRunConfig, "gpt_v2.yaml")])
def test_launcher_yaml_only_overrides_and_round_trips(cls, name, tmp_path: Path) -> None:
    cfg = load_config(cls, REPO_ROOT / "configs" / name, {"exp_dir": str(tmp_path / "exp"), "train": {"seed": 7}})
    assert cfg.train.epochs in (8, 15) and cfg.train.seed == 7
    save_config(cfg, tmp_path / "run.yaml")
    assert load_config(cls, tmp_path / "run.yaml") == cfg
    with pytest.raises(ConfigError, match="epochz"):
        load_config(cls, {"train": {"epochz": 3}})


def test_validation_messages() -> None:
    with pytest.raises(ConfigError, match="precision"):
        validate_common(SaveConfig(), RuntimeConfig(precision="half"), 1, 1, 1)
    with pytest.raises(ConfigError, match="batch_size"):
        validate_common(SaveConfig(), RuntimeConfig(), 1, 0, 1)


def test_sovits_release_config_reads_back_and_suits_upstreams_constructor() -> None:
    config = SoVITSRunConfig(name="voice").upstream_config(TINY_SOVITS)
    assert SoVITSConfig.from_upstream(config) == TINY_SOVITS
    # upstream: SynthesizerTrn(spec_channels, segment_size, ..., n_speakers=data.n_speakers, **model)
    assert "segment_size" not in config["model"] and config["data"]["n_speakers"] == 300
    assert config["train"]["segment_size"] // config["data"]["hop_length"] == TINY_SOVITS.segment_frames
    assert config["name"] == "voice" and config["model"]["version"] == "v2"


def test_gpt_release_config_reads_back() -> None:
    model = T2SConfig(n_layer=3, head=4, hidden_dim=64, embedding_dim=64, linear_units=128)
    config = GPTRunConfig(name="voice").upstream_config(model)
    assert T2SConfig.from_upstream(config) == model
    assert set(config) >= {"train", "optimizer", "data", "model", "inference"}
    assert config["data"]["max_sec"] == 54 and config["model"]["EOS"] == 1024
