"""Vocal separation around the model: model lookup and messages, naming, formats, per-file errors.

The UVR models themselves cannot run here (no weights offline, and audio-separator is not installable next to
our torch), so a stand-in separator that splits stereo channels plays the model's part. It writes its stems
the way audio-separator names them, so the real result handling is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.jobs import VocalSeparationJob
from tests.conftest import tone_burst, write_audio
from tools import vocal_separation as vs

SR = 44100


class ChannelSplitter:
    """Left channel → "(Vocals)", right channel → "(Instrumental)"; fails on files named *broken*."""

    def __init__(self, fmt: str):
        self.fmt = fmt

    def separate(self, path: Path, out_dir: Path) -> dict[str, Path]:
        data, sr = sf.read(str(path), always_2d=True)
        stems = {}
        for label, channel in (("(Vocals)", 0), ("(Instrumental)", 1)):
            out = out_dir / f"{path.stem}_{label}_FakeModel.{self.fmt}"
            sf.write(str(out), data[:, channel], sr)
            stems[label] = out
        return stems


@pytest.fixture
def models(tmp_path) -> Path:
    folder = tmp_path / "uvr5_weights"
    folder.mkdir()
    (folder / "HP5_only_main_vocal.pth").write_bytes(b"weights")
    (folder / "model_bs_roformer.ckpt").write_bytes(b"weights")
    (folder / "onnx_dereverb_By_FoxJoy").mkdir()
    (folder / "notes.txt").write_text("not a model", encoding="utf-8")
    return folder


def test_model_listing_and_messages(models, tmp_path):
    assert vs.list_models(models) == ["HP5_only_main_vocal.pth", "model_bs_roformer.ckpt", "onnx_dereverb_By_FoxJoy"]
    empty = tmp_path / "empty"
    with pytest.raises(vs.SeparationUnavailableError, match="No vocal separation model in .*empty") as err:
        vs.check_model(empty, "HP5_only_main_vocal.pth")
    assert "HP5_only_main_vocal.pth" in str(err.value)  # says which file to put there
    with pytest.raises(vs.SeparationUnavailableError, match="needs its config model_bs_roformer.yaml"):
        vs.check_model(models, "model_bs_roformer.ckpt")
    with pytest.raises(vs.SeparationUnavailableError, match="available: HP5"):
        vs.check_model(models, "HP3.pth")
    assert vs.check_model(models, "HP5_only_main_vocal.pth") == models / "HP5_only_main_vocal.pth"


@pytest.mark.parametrize("fmt", vs.FORMATS)
def test_separates_each_file_with_upstream_names(models, tmp_path, fmt):
    songs = tmp_path / "songs"
    stereo = np.stack([tone_burst(0.5, SR), tone_burst(0.5, SR, freq=440)], axis=1)
    for name in ("b.wav", "a.flac"):
        write_audio(songs / name, stereo, SR)
    (songs / "broken.wav").write_bytes(b"RIFF nope")
    opts = vs.SeparationOptions("HP5_only_main_vocal.pth", models, tmp_path / "vocals", tmp_path / "others", fmt, 10)
    report = vs.separate(songs, opts, separator=_FailingOnBroken(fmt))
    assert [p.name for p in report.vocals] == [f"vocal_a.flac_10.{fmt}", f"vocal_b.wav_10.{fmt}"]
    assert [p.name for p in report.others] == [f"instrument_a.flac_10.{fmt}", f"instrument_b.wav_10.{fmt}"]
    assert report.failed[0][0].name == "broken.wav"
    vocal = sf.read(str(report.vocals[0]))[0]
    assert sf.info(str(report.vocals[0])).samplerate == SR and vocal.ndim == 1 and len(vocal) > 0
    assert sorted(p.name for p in (tmp_path / "vocals").iterdir()) == sorted(p.name for p in report.vocals)


class _FailingOnBroken(ChannelSplitter):
    def separate(self, path: Path, out_dir: Path) -> dict[str, Path]:
        if "broken" in path.name:
            raise RuntimeError("the model could not read this file")
        return super().separate(path, out_dir)


def test_cli_explains_missing_package_or_model(models, tmp_path, capfd):
    song = write_audio(tmp_path / "song.wav", tone_burst(0.2, SR), SR)
    rc = vs.main(["-i", str(song), "--model", "HP5_only_main_vocal.pth", "--model-dir", str(tmp_path / "none")])
    assert rc == 2 and "No vocal separation model" in capfd.readouterr().err
    try:
        import audio_separator  # noqa: F401
    except ImportError:
        rc = vs.main(["-i", str(song), "--model", "HP5_only_main_vocal.pth", "--model-dir", str(models),
                      "--vocals-dir", str(tmp_path / "v")])
        assert rc == 2 and "audio-separator" in capfd.readouterr().err
    assert vs.main(["--list-models", "--model-dir", str(models)]) == 0
    assert vs.main(["--list-models", "--model-dir", str(tmp_path / "none")]) == 1


def test_job_argv_round_trip(models, tmp_path):
    job = VocalSeparationJob(tmp_path, "HP5_only_main_vocal.pth", models, tmp_path / "v", tmp_path / "o", "mp3", 7)
    args = vs.build_parser().parse_args(job.to_argv())
    assert vs.SeparationOptions(args.model, args.model_dir, args.vocals_dir, args.others_dir, args.output_format,
                                args.aggressiveness) == job.options()
    assert args.input == tmp_path
