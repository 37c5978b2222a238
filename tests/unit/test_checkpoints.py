"""Model-file formats: upstream's containers (kit examples), safe loading, release and resume files."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from GPT_SoVITS.checkpoints import (
    CheckpointError,
    UnsupportedVersionError,
    describe_pretrained,
    latest_train_state,
    load_gpt_weights,
    load_sovits_weights,
    load_train_state,
    read_weights,
    rotate_train_states,
    save_gpt_weights,
    save_sovits_weights,
    save_train_state,
    train_state_path,
)
from GPT_SoVITS.models import load_t2s
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.paths import PretrainedPaths
from tests.compat import COMPAT_DIR, json_file

GPT_FILE = COMPAT_DIR / "example_gpt_tiny.ckpt"
LIGHTNING_FILE = COMPAT_DIR / "example_s1_lightning_tiny.ckpt"
SOVITS_FILE = COMPAT_DIR / "example_sovits_tiny.pth"
TINY = T2SConfig(embedding_dim=16, hidden_dim=16, head=2, linear_units=32, n_layer=2, bert_dim=8)


def with_header(src: Path, dest: Path, tag: bytes) -> Path:
    data = bytearray(src.read_bytes())
    data[:2] = tag
    dest.write_bytes(bytes(data))
    return dest


# ------------------------------------------------------------------------------------ upstream's files
def test_reads_upstream_gpt_release_file() -> None:
    w = load_gpt_weights(GPT_FILE)
    assert (w.kind, w.container, w.version, w.info) == ("gpt", "release", "v2", "GPT-e1")
    assert w.config["model"] == json_file("example_gpt_tiny.config.json")["model"]
    assert "ar_predict_layer.weight" in w.state_dict and not any(k.startswith("model.") for k in w.state_dict)
    assert {t.dtype for t in w.state_dict.values()} == {torch.float16}


def test_load_t2s_builds_a_working_model_from_a_gpt_file() -> None:
    model, cfg = load_t2s(GPT_FILE)
    assert (cfg.hidden_dim, cfg.n_layer, cfg.linear_units, cfg.max_sec) == (16, 2, 64, 54)
    assert not model.training and model.bert_proj.weight.dtype == torch.float32
    phones, bert = torch.tensor([5, 9, 100]), torch.zeros(1024, 3)
    out = model.generate([phones], [bert], [torch.tensor([1, 2, 3])], SamplingOptions(top_k=1, max_new_tokens=5))
    assert len(out.tokens[0]) == 5


def test_reads_lightning_resume_file_with_pickled_path() -> None:
    w = read_weights(LIGHTNING_FILE)
    assert (w.kind, w.container, w.version) == ("gpt", "lightning", "v2")
    assert w.config["output_dir"] == "logs/tiny/logs_s1_v2" and isinstance(w.config["output_dir"], str)
    assert (w.training["epoch"], w.training["global_step"]) == (0, 1)
    assert w.training["optimizer_states"]  # ScaledAdam state is passed through
    release = load_gpt_weights(GPT_FILE)  # the same tiny run, exported as fp16 after that step
    assert release.state_dict.keys() == w.state_dict.keys()
    assert all(torch.equal(w.state_dict[k].half(), release.state_dict[k]) for k in w.state_dict)


def test_reads_upstream_sovits_release_file_with_hparams_config() -> None:
    w = load_sovits_weights(SOVITS_FILE)
    assert (w.kind, w.container, w.version, w.info) == ("sovits", "release", "v2", "1epoch_5iteration")
    assert type(w.config) is dict and type(w.config["model"]) is dict and type(w.config["train"]) is dict
    expected = json_file("example_sovits_tiny.config.json")["model"]
    assert {k: w.config["model"][k] for k in expected} == expected
    assert not any("enc_q" in k for k in w.state_dict)


def test_loading_hparams_leaves_no_global_trace() -> None:
    load_sovits_weights(SOVITS_FILE)
    assert getattr(sys.modules.get("utils"), "HParams", None) is None  # nothing registered under upstream's name
    with pytest.raises(pickle.UnpicklingError):  # plain torch still refuses the file afterwards
        torch.load(SOVITS_FILE, weights_only=True)


def test_v3_tagged_files_are_detected_and_rejected(tmp_path: Path) -> None:
    path = with_header(SOVITS_FILE, tmp_path / "model.pth", b"03")
    with pytest.raises(UnsupportedVersionError, match=r"v3.*not supported yet"):
        load_sovits_weights(path)


@pytest.mark.parametrize(("tag", "name", "layer"), [(b"04", "v4", "cfm"), (b"05", "v2Pro", "sv_emb")])
def test_a_tag_the_weights_contradict_is_refused(tmp_path: Path, tag: bytes, name: str, layer: str) -> None:
    path = with_header(SOVITS_FILE, tmp_path / "model.pth", tag)  # a v2 body under another version's tag
    with pytest.raises(CheckpointError, match=rf"header says SoVITS {name}, but it has no {layer} weights"):
        load_sovits_weights(path)


@pytest.mark.parametrize(("file", "version"), [("example_sovits_v2pro_tiny", "v2Pro"),
                                               ("example_sovits_v2proplus_tiny", "v2ProPlus")])
def test_reads_upstream_pro_release_files(file: str, version: str) -> None:
    path = COMPAT_DIR / "v2pro" / f"{file}.pth"
    assert path.read_bytes()[:2] == {"v2Pro": b"05", "v2ProPlus": b"06"}[version]
    w = load_sovits_weights(path)
    assert (w.kind, w.container, w.version, w.info) == ("sovits", "release", version, "1epoch_5iteration")
    kit = json_file(f"v2pro/{file}.config.json")
    assert {k: w.config["model"][k] for k in kit["model"]} == kit["model"]
    assert len(w.state_dict) == 316 and not any("enc_q" in k for k in w.state_dict)
    assert not set(kit["dropped_keys_for_size"]) & set(w.state_dict)
    assert tuple(w.state_dict["sv_emb.weight"].shape) == (4, 20480)
    assert {t.dtype for t in w.state_dict.values()} == {torch.float16}


def test_v1_v2_tags_load_and_version_comes_from_the_embedding_rows(tmp_path: Path) -> None:
    assert load_sovits_weights(with_header(SOVITS_FILE, tmp_path / "a.pth", b"01")).version == "v2"
    w = load_sovits_weights(SOVITS_FILE)
    sd = dict(w.state_dict)
    sd["enc_p.text_embedding.weight"] = torch.zeros(322, 16)
    path = save_sovits_weights(tmp_path / "v1.pth", sd, w.config, epoch=1, step=2)
    assert load_sovits_weights(path).version == "v1"


def test_pro_release_files_carry_upstreams_tag_and_load_in_upstreams_way(tmp_path: Path) -> None:
    w = load_sovits_weights(COMPAT_DIR / "v2pro" / "example_sovits_v2proplus_tiny.pth")
    path = save_sovits_weights(tmp_path / "ours.pth", w.state_dict, w.config, epoch=3, step=7, version="v2ProPlus")
    data = bytearray(path.read_bytes())
    assert data[:2] == b"06"
    data[:2] = b"PK"  # what upstream's loader does before torch.load
    obj = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    assert obj["info"] == "3epoch_7iteration" and obj["config"]["model"]["version"] == "v2ProPlus"
    assert set(obj["weight"]) == set(w.state_dict)
    again = load_sovits_weights(path)
    assert again.version == "v2ProPlus" and again.info == "3epoch_7iteration"


def test_pro_files_without_a_tag_are_still_recognised_from_their_layers(tmp_path: Path) -> None:
    """Upstream misreads a Pro file whose header became PK again (spec §13.8); the content still says Pro."""
    w = load_sovits_weights(COMPAT_DIR / "v2pro" / "example_sovits_v2pro_tiny.pth")
    config = {**w.config, "model": {k: v for k, v in w.config["model"].items() if k != "version"}, "version": ""}
    path = save_sovits_weights(tmp_path / "plain.pth", w.state_dict, config, epoch=1, step=1)
    assert path.read_bytes()[:2] == b"PK"
    assert load_sovits_weights(path).version == "v2Pro"
    sd = dict(w.state_dict)
    sd["dec.conv_pre.weight"] = torch.zeros(768, 192, 7)  # the 1.5× wider v2ProPlus decoder
    assert load_sovits_weights(save_sovits_weights(tmp_path / "wide.pth", sd, config, 1, 1)).version == "v2ProPlus"


def test_wrong_kind_errors_name_the_file_and_both_kinds() -> None:
    with pytest.raises(CheckpointError, match=r"example_sovits_tiny\.pth.*SoVITS generator.*GPT .*expected"):
        load_gpt_weights(SOVITS_FILE)
    with pytest.raises(CheckpointError, match=r"example_gpt_tiny\.ckpt.*GPT.*SoVITS generator.*expected"):
        load_sovits_weights(GPT_FILE)


def test_truncated_and_foreign_files_are_reported(tmp_path: Path) -> None:
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(GPT_FILE.read_bytes()[:40000])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt.*truncated or corrupt"):
        load_gpt_weights(cut)
    text = tmp_path / "notes.pth"
    text.write_text("hello world")
    with pytest.raises(CheckpointError, match=r"notes\.pth.*not a PyTorch model file"):
        read_weights(text)


def test_missing_pretrained_file_says_what_it_is_and_where_to_get_it(tmp_path: Path) -> None:
    path = PretrainedPaths(tmp_path).gpt("v2")
    with pytest.raises(FileNotFoundError, match=r"v2 pretrained GPT.*s1bert25hz-5kh.*huggingface"):
        load_gpt_weights(path)
    assert "s2D2333k.pth" in describe_pretrained(PretrainedPaths(tmp_path).sovits_d("v2"))
    assert "not found" in describe_pretrained(tmp_path / "mine.pth")


def test_upstream_resume_files(tmp_path: Path) -> None:
    g = load_sovits_weights(SOVITS_FILE).state_dict
    g_path = tmp_path / "G_120.pth"
    torch.save({"model": g, "iteration": 3, "optimizer": {"state": {}, "param_groups": []},
                "learning_rate": 1e-4}, g_path)
    w = load_sovits_weights(g_path)
    assert (w.container, w.training["epoch"], w.training["learning_rate"]) == ("upstream_resume", 3, 1e-4)
    d_path = tmp_path / "D_120.pth"
    torch.save({"model": {"discriminators.0.convs.0.weight_v": torch.zeros(2, 1, 3)}, "iteration": 3}, d_path)
    assert read_weights(d_path).kind == "sovits_discriminator"
    with pytest.raises(CheckpointError, match="discriminator"):
        load_sovits_weights(d_path)


# ------------------------------------------------------------------------------------------- safety
class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (os.system, (f"touch {self.marker}",))


class _WritesFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.parametrize("payload", [_RunsCode, _WritesFile])
@pytest.mark.parametrize("tag", [b"PK", b"05"])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path, payload: type, tag: bytes) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"weight": {"enc_p.x": torch.zeros(1)}, "config": payload(marker), "info": ""}, path)
    with_header(path, path, tag)
    with pytest.raises(CheckpointError, match="refused"):
        read_weights(path)
    assert not marker.exists()


def test_allow_listed_names_cannot_be_abused(tmp_path: Path) -> None:
    # a hand-written pickle that *calls* the allow-listed utils.HParams with arguments
    evil = b"\x80\x02cutils\nHParams\nX\x06\x00\x00\x00rm -rf\x85R."
    path = tmp_path / "evil.pth"
    buf = io.BytesIO()
    torch.save({}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, evil if item.filename.endswith("data.pkl") else src.read(item.filename))
    with pytest.raises(CheckpointError, match="refused"):
        read_weights(path)


# ---------------------------------------------------------------------------------- our release files
def test_gpt_release_round_trip_in_upstream_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Text2SemanticDecoder(TINY).eval()
    upstream_cfg = {**TINY.to_upstream(), "train": {"epochs": 3}, "output_dir": tmp_path / "logs"}
    path = save_gpt_weights(tmp_path / "GPT_weights_v2" / "exp-e3.ckpt", model.state_dict(), upstream_cfg, epoch=3)
    raw = torch.load(path, weights_only=True)  # plain torch, no allow-list: upstream can read it
    assert raw["info"] == "GPT-e3" and raw["config"]["model"]["EOS"] == 1024
    assert raw["config"]["output_dir"] == str(tmp_path / "logs")
    assert all(k.startswith("model.") and v.dtype == torch.float16 for k, v in raw["weight"].items())
    assert [p.name for p in path.parent.iterdir()] == ["exp-e3.ckpt"]  # no temp file left behind
    loaded, cfg = load_t2s(path)
    assert cfg == TINY
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float())


def test_sovits_release_file_is_fp16_without_enc_q_and_plain(tmp_path: Path) -> None:
    sd = {"enc_p.text_embedding.weight": torch.randn(732, 4), "enc_q.pre.weight": torch.randn(2, 2, 1),
          "dec.conv_post.weight": torch.randn(1, 2, 3), "quantizer.vq.layers.0._codebook.inited": torch.ones(1)}
    config = {"model": {"version": "v2", "hidden_channels": 4}, "data": {"exp_dir": Path("logs/x")}}
    path = save_sovits_weights(tmp_path / "x_e2_s10.pth", sd, config, epoch=2, step=10)
    assert path.read_bytes()[:2] == b"PK"
    raw = torch.load(path, weights_only=True)
    assert raw["info"] == "2epoch_10iteration" and raw["config"]["data"]["exp_dir"] == "logs/x"
    assert set(raw["weight"]) == set(sd) - {"enc_q.pre.weight"}
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    assert load_sovits_weights(path).version == "v2"


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    path = save_sovits_weights(tmp_path / "a.pth", {"enc_p.w": torch.ones(1)}, {}, epoch=1, step=1)
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_sovits_weights(path, {"enc_p.w": torch.ones(1)}, {"bad": lambda: None}, epoch=2, step=2)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.pth"]


# ---------------------------------------------------------------------------------------- resume files
def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
           steps: int) -> None:
    g = torch.Generator().manual_seed(7)
    for _ in range(steps):
        phones, bert = torch.randint(0, 732, (2, 4), generator=g), torch.randn(2, 8, 4, generator=g)
        codes = torch.randint(0, 1024, (2, 6), generator=g)
        loss = model(phones, torch.tensor([4, 3]), bert, codes, torch.tensor([6, 5])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _setup() -> tuple[Text2SemanticDecoder, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(0)
    model = Text2SemanticDecoder(TINY).eval()  # eval: no dropout, so runs are deterministic
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)


def test_train_state_round_trip_continues_identically(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    _train(model, opt, sched, 2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    path = save_train_state(train_state_path(tmp_path, "t2s", 2), kind="t2s", model=model.state_dict(),
                            optimizer=opt.state_dict(), scheduler=sched.state_dict(), scaler=scaler.state_dict(),
                            step=2, epoch=1, config={"exp_dir": tmp_path, "lr": 1e-3})
    _train(model, opt, sched, 2)
    state = load_train_state(path)
    assert (state.kind, state.step, state.epoch, state.config["exp_dir"]) == ("t2s", 2, 1, str(tmp_path))
    assert state.scaler["scale"] == 1024.0
    resumed, opt2, sched2 = _setup()
    resumed.load_state_dict(state.model)
    opt2.load_state_dict(state.optimizer)
    sched2.load_state_dict(state.scheduler)
    _train(resumed, opt2, sched2, 2)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    loaded = read_weights(path)
    assert (loaded.kind, loaded.container, loaded.training["step"]) == ("gpt", "resume", 2)


def test_resume_file_lookup_and_rotation(tmp_path: Path) -> None:
    for step in (5, 100, 20):
        save_train_state(train_state_path(tmp_path, "t2s", step), kind="t2s", model={}, step=step, epoch=0, config={})
    save_train_state(train_state_path(tmp_path, "sovits_G", 500), kind="sovits_G", model={}, step=500, epoch=0,
                     config={})
    assert latest_train_state(tmp_path, "t2s") == tmp_path / "t2s_00000100.pt"
    assert latest_train_state(tmp_path / "none", "t2s") is None
    deleted = rotate_train_states(tmp_path, "t2s", keep_last_n=2)
    assert deleted == [tmp_path / "t2s_00000005.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sovits_G_00000500.pt", "t2s_00000020.pt",
                                                           "t2s_00000100.pt"]
    with pytest.raises(CheckpointError, match="not a training resume file"):
        load_train_state(shutil.copy(GPT_FILE, tmp_path / "x.ckpt"))


def test_gpt_release_file_keys_are_ordered_like_upstream(tmp_path: Path) -> None:
    path = save_gpt_weights(tmp_path / "a.ckpt", OrderedDict(b=torch.ones(1), a=torch.ones(1)), {}, epoch=1)
    assert list(torch.load(path, weights_only=True)["weight"]) == ["model.b", "model.a"]
