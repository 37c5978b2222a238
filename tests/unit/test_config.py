"""The typed config loader: defaults, YAML overrides, nested dataclasses, unknown keys, round-trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from GPT_SoVITS.config import ConfigError, Ports, WebUISettings, load_config, save_config, to_dict
from GPT_SoVITS.fileio import atomic_path, atomic_write_text
from GPT_SoVITS.paths import REPO_ROOT, ExperimentPaths


def test_defaults_and_repo_config_agree():
    assert load_config(WebUISettings, REPO_ROOT / "configs" / "webui.yaml") == WebUISettings()


def test_overrides_and_types(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("ports: {main: 9000}\nexp_root: /data/exps\n")
    cfg = load_config(WebUISettings, path, {"host": "0.0.0.0", "ports": {"api": 1}})
    assert cfg.ports == Ports(main=9000, api=1) and cfg.host == "0.0.0.0"
    assert cfg.exp_root == Path("/data/exps") and isinstance(cfg.exp_root, Path)


@pytest.mark.parametrize("data", [{"prots": {}}, {"ports": {"mian": 1}}])
def test_unknown_keys_raise(data):
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(WebUISettings, data)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(WebUISettings, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("ports: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(WebUISettings, tmp_path / "bad.yaml")


def test_save_load_round_trip(tmp_path):
    cfg = dataclasses.replace(WebUISettings(), host="0.0.0.0", ports=Ports(main=1234))
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(WebUISettings, tmp_path / "c.yaml") == cfg
    assert to_dict(cfg)["exp_root"] == "logs"


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


@pytest.mark.parametrize("name", ["", " ", "a/b", "..", "x\\y"])
def test_bad_experiment_names(name):
    with pytest.raises(ValueError, match="experiment name"):
        ExperimentPaths.for_experiment(Path("logs"), name)


def test_experiment_layout_is_upstreams():
    exp = ExperimentPaths.for_experiment(Path("logs"), " voice ")
    assert exp.root == Path("logs/voice")
    assert [p.name for p in (exp.name2text, exp.bert_dir, exp.hubert_dir, exp.wav32k_dir, exp.name2semantic)] == [
        "2-name2text.txt", "3-bert", "4-cnhubert", "5-wav32k", "6-name2semantic.tsv"]
