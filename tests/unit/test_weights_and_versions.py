"""The launcher's model choices: the default version (and why), the 1C lists of every version's folders with
labels a person can tell apart, and the newest fine-tuned pair of the experiment as the default."""

from __future__ import annotations

import os
from pathlib import Path

from app.context import AppContext, default_version
from app.tabs.inference import model_lists
from app.tabs.tts import version_note
from app.weights import choices, list_weights, newest_pair
from GPT_SoVITS.config import WebUISettings
from GPT_SoVITS.paths import PretrainedPaths
from GPT_SoVITS.versions import DEFAULT_VERSION, VERSIONS, trainable_versions


def _touch(path: Path, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _install(pretrained: PretrainedPaths, version: str) -> None:
    for path in pretrained.required(version, training=True):
        _touch(path / "config.json" if path.suffix == "" else path)


def test_default_version_is_upstreams_when_its_files_are_present(tmp_path):
    pretrained = PretrainedPaths(tmp_path)
    assert default_version(pretrained).version == DEFAULT_VERSION  # nothing present: the default, with a reason
    assert default_version(pretrained).complete == ()
    _install(pretrained, "v2")
    choice = default_version(pretrained)
    assert (choice.version, choice.complete) == ("v2", ("v2",))
    assert pretrained.sovits_g(DEFAULT_VERSION) in choice.missing_default
    _install(pretrained, "v2ProPlus")
    assert default_version(pretrained).version == "v2ProPlus"  # the newest version whose files are present
    _install(pretrained, DEFAULT_VERSION)
    assert default_version(pretrained).version == DEFAULT_VERSION
    assert set(trainable_versions()) >= {"v1", "v2", "v2Pro", "v2ProPlus"}


def test_the_page_says_why_a_version_is_preselected(tmp_path):
    pretrained = PretrainedPaths(tmp_path / "pretrained_models")
    _install(pretrained, "v2")
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    assert ctx.workflow.get("version") == "v2"
    note = version_note(ctx.i18n, ctx)
    assert "v2 is preselected" in note and "newest version" in note
    assert f"{DEFAULT_VERSION} (upstream's default) lacks" in note and "s2Gv2Pro.pth" in note
    zh = AppContext.create(WebUISettings(), "zh_CN", root=tmp_path)
    assert "已预选版本 v2" in version_note(zh.i18n, zh)


def test_lists_hold_every_versions_folder_with_readable_labels(tmp_path):
    pretrained = PretrainedPaths(tmp_path / "pretrained")
    _touch(pretrained.gpt("v2"))
    _touch(pretrained.sovits_g("v2"))
    for version, name in (("v2", "voice_e8_s120.pth"), ("v2Pro", "voice_e4_s60.pth"), ("v1", "old_e2_s10.pth"),
                          ("v4", "voice_e2_s30_l32.pth")):
        _touch(VERSIONS[version].weights_dirs(tmp_path)[1] / name)
    _touch(VERSIONS["v2"].weights_dirs(tmp_path)[0] / "voice-e15.ckpt")
    gpts, sovits = list_weights(tmp_path, pretrained)
    labels = [label for label, _ in choices(sovits, "pretrained")]
    assert labels == ["voice · e4 · s60 · v2Pro", "voice · e2 · s30 · LoRA 32 · v4", "voice · e8 · s120 · v2",
                      "old · e2 · s10 · v1", "pretrained · v2 · s2G2333k.pth"]
    base = pretrained.gpt("v2").name
    assert [label for label, _ in choices(gpts)] == ["voice · e15 · v2", f"pretrained · v2 · {base}"]


def test_default_pair_is_the_newest_fine_tuned_pair_of_the_experiment(tmp_path):
    pretrained = PretrainedPaths(tmp_path / "pretrained")
    _touch(pretrained.gpt("v2"))
    _touch(pretrained.sovits_g("v2"))
    gpt_dir, sovits_dir = VERSIONS["v2"].weights_dirs(tmp_path)
    _touch(gpt_dir / "voice-e5.ckpt", 1000)
    _touch(gpt_dir / "voice-e10.ckpt", 2000)
    _touch(gpt_dir / "other-e50.ckpt", 3000)
    _touch(sovits_dir / "voice_e4_s40.pth", 1000)
    _touch(sovits_dir / "voice_e8_s80.pth", 2000)
    gpts, sovits = list_weights(tmp_path, pretrained)
    assert newest_pair(gpts, sovits, "voice", "v2") == (str(gpt_dir / "voice-e10.ckpt"),
                                                         str(sovits_dir / "voice_e8_s80.pth"))
    # an experiment without fine-tuned files: the version's pretrained base pair, never half and half
    assert newest_pair(gpts, sovits, "new", "v2") == (str(pretrained.gpt("v2")), str(pretrained.sovits_g("v2")))


def test_1c_lists_refresh_from_disk_and_keep_a_choice_only_when_it_exists(tmp_path):
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    gpt_dir, sovits_dir = VERSIONS["v2"].weights_dirs(tmp_path)
    gpt, sovits = model_lists(ctx, "voice", "v2")
    assert gpt["choices"] == [] and gpt["value"] is None
    _touch(gpt_dir / "voice-e3.ckpt")
    _touch(sovits_dir / "voice_e3_s9.pth")
    gpt, sovits = model_lists(ctx, "voice", "v2", "/gone.ckpt", None)
    assert gpt["value"] == str(gpt_dir / "voice-e3.ckpt") and sovits["value"] == str(sovits_dir / "voice_e3_s9.pth")
    assert ("voice · e3 · s9 · v2", str(sovits_dir / "voice_e3_s9.pth")) in sovits["choices"]
