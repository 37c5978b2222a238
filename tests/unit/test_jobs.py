"""Job specs: the argv the launcher builds parses back, with the tool's own parser, to the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.i18n import I18n, UserInputError
from app.jobs import PrepareJob, SliceJob
from GPT_SoVITS.prepare.cli import build_parser as prepare_parser
from tools.slice_audio import LoudnessMix, build_parser
from tools.slicer import SlicerParams


def test_slice_job_argv_round_trip(tmp_path):
    (tmp_path / "in").mkdir()
    job = SliceJob(tmp_path / "in", tmp_path / "out", SlicerParams(-40.0, 5000, 400, 20, 600),
                   LoudnessMix(0.8, 0.3), processes=3)
    args = build_parser().parse_args(job.to_argv())
    assert (args.input, args.output_dir) == (job.input, job.output_dir)
    assert SlicerParams(args.threshold, args.min_length, args.min_interval, args.hop_size,
                        args.max_sil_kept) == job.params
    assert LoudnessMix(args.max_peak, args.alpha) == job.mix
    assert args.processes == 3


def test_single_file_input_uses_one_process(tmp_path):
    src = tmp_path / "a.wav"
    src.write_bytes(b"")
    args = build_parser().parse_args(SliceJob(src, tmp_path / "out", processes=4).to_argv())
    assert args.processes == 1


def test_spec_validates_before_starting(tmp_path):
    with pytest.raises(UserInputError, match="Input not found") as refused:
        SliceJob(tmp_path / "missing", tmp_path / "out").spec()
    assert refused.value.text(I18n("zh_CN")).startswith("找不到输入：")  # shown in the UI language
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match="min_length"):
        SliceJob(tmp_path / "in", tmp_path / "out", SlicerParams(min_length=10)).spec()
    spec = SliceJob(tmp_path / "in", tmp_path / "out").spec()
    assert spec.module == "tools.slice_audio" and spec.check_outputs() is not None  # no wav yet → missing
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.wav").write_bytes(b"")
    assert spec.check_outputs() is None
    assert Path(spec.argv[0]) == tmp_path / "in"


def _prepare_job(tmp_path: Path, version: str, steps: tuple[str, ...], **kwargs) -> PrepareJob:
    listing = tmp_path / "x.list"
    listing.write_text("a.wav|s|EN|hi\n", encoding="utf-8")
    models = tmp_path / "models"
    for name in ("bert", "hubert", "sv.ckpt", "s2G.pth"):
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(b"")
    return PrepareJob(tmp_path / "exp", listing, None, steps, models, models / "bert", models / "hubert",
                      models / "s2G.pth", version=version, sv_model=models / "sv.ckpt", **kwargs)


def test_prepare_job_argv_round_trip(tmp_path):
    job = _prepare_job(tmp_path, "v2", ("text", "hubert", "semantic"), workers=2)
    args = prepare_parser().parse_args(job.to_argv())
    assert (args.exp_dir, args.list_path, args.steps, args.version, args.workers) == (
        job.exp_dir, job.list_path, "text,hubert,semantic", "v2", 2)
    assert (args.bert_dir, args.hubert_dir, args.sovits_g) == (job.bert_dir, job.hubert_dir, job.sovits_g)
    assert "--sv-model" not in job.to_argv()  # v2 has no speaker-verification step
    job.spec()  # all models present: accepted


def test_pro_prepare_job_passes_the_sv_model(tmp_path):
    job = _prepare_job(tmp_path, "v2Pro", ("text", "hubert", "sv", "semantic"))
    args = prepare_parser().parse_args(job.to_argv())
    assert (args.steps, args.version, args.sv_model) == ("text,hubert,sv,semantic", "v2Pro", job.sv_model)


def test_prepare_job_refuses_steps_the_version_lacks_and_missing_models(tmp_path):
    with pytest.raises(UserInputError, match="no formatting step sv"):
        _prepare_job(tmp_path, "v2", ("text", "sv")).spec()
    job = _prepare_job(tmp_path, "v2Pro", ("text", "hubert", "sv", "semantic"))
    job.spec()
    job.sv_model.unlink()
    with pytest.raises(UserInputError, match="step sv not found"):
        job.spec()
    assert job.check_outputs()() == ", ".join(str(job.exp_dir / n) for n in
                                             ("2-name2text.txt", "4-cnhubert", "7-sv_cn", "6-name2semantic.tsv"))
