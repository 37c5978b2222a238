"""Job specs: the argv the launcher builds parses back, with the tool's own parser, to the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.jobs import SliceJob
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
    with pytest.raises(FileNotFoundError, match="Input not found"):
        SliceJob(tmp_path / "missing", tmp_path / "out").spec()
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match="min_length"):
        SliceJob(tmp_path / "in", tmp_path / "out", SlicerParams(min_length=10)).spec()
    spec = SliceJob(tmp_path / "in", tmp_path / "out").spec()
    assert spec.module == "tools.slice_audio" and spec.check_outputs() is not None  # no wav yet → missing
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.wav").write_bytes(b"")
    assert spec.check_outputs() is None
    assert Path(spec.argv[0]) == tmp_path / "in"
