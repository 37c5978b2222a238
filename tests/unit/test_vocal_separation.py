"""Vocal separation: model lookup and messages, naming, formats, per-file errors, and the built-in MDX-Net backend.

The UVR weights are not available offline. The built-in MDX-Net backend is run for real on tiny ONNX models
built here with the ``onnx`` helper API (identity or a fixed per-bin mask, with the MDX input/output shape), so
its STFT, chunking, reconstruction and file handling are checked against known answers. The audio-separator
backend (VR / Roformer) cannot be installed next to our torch: a stand-in separator that splits stereo channels
plays its part, writing stems the way audio-separator names them, so the result handling is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.jobs import VocalSeparationJob
from tests.conftest import tone_burst, write_audio
from tools import mdx
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


# --- built-in MDX-Net backend -----------------------------------------------------------------------------------
# Small model shapes keep the tests fast: dim_f 1024 bins of an n_fft 4096 STFT (a cut at ~11 kHz), dim_t 32
# frames, so a chunk is 31 * 1024 samples and a 3 s song takes several overlapping chunks.
DIM_F, DIM_T, N_FFT = 1024, 32, 4096


def build_mdx_model(path: Path, shape: list | None = None, mask: np.ndarray | None = None,
                    out_shape: list | None = None, half: bool = False) -> Path:
    """An ONNX model with MDX-Net's interface: output = input (identity) or input * a per-bin ``mask``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shape = shape or ["batch", 4, DIM_F, DIM_T]
    dtype = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    inp = helper.make_tensor_value_info("input", dtype, shape)
    out = helper.make_tensor_value_info("output", dtype, out_shape or shape)
    if out_shape is not None:  # a model whose output is not shaped like its input
        target = numpy_helper.from_array(np.array(out_shape, dtype=np.int64), "target_shape")
        nodes, inits = [helper.make_node("Reshape", ["input", "target_shape"], ["output"])], [target]
    elif mask is None:
        nodes, inits = [helper.make_node("Identity", ["input"], ["output"])], []
    else:
        weights = numpy_helper.from_array(mask.astype(np.float32).reshape(1, 1, -1, 1), "mask")
        nodes, inits = [helper.make_node("Mul", ["input", "mask"], ["output"])], [weights]
    graph = helper.make_graph(nodes, "mdx_test", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def two_tones(seconds: float, sr: int, low_hz: float = 440.0, high_hz: float = 15000.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return 0.3 * np.sin(2 * np.pi * low_hz * t), 0.2 * np.sin(2 * np.pi * high_hz * t)


def test_mdx_identity_model_keeps_the_low_band_seamlessly(tmp_path):
    """Identity model: vocals = the band below the model's dim_f cut, instrumental = mix - vocals, no seams."""
    models = tmp_path / "weights"
    build_mdx_model(models / "Test_Voc.onnx")
    low, high = two_tones(3.0, SR)
    mix = np.stack([low + high, 0.5 * low - high], axis=1)
    song = write_audio(tmp_path / "song.wav", mix, SR, subtype="FLOAT")
    rc = vs.main(["-i", str(song), "--model", "Test_Voc.onnx", "--model-dir", str(models), "--vocals-dir",
                  str(tmp_path / "v"), "--others-dir", str(tmp_path / "o"), "--format", "wav",
                  "--mdx-n-fft", str(N_FFT), "--mdx-compensate", "1.0"])
    assert rc == 0
    vocal, vocal_sr = sf.read(str(tmp_path / "v" / "vocal_song.wav_10.wav"))
    other, other_sr = sf.read(str(tmp_path / "o" / "instrument_song.wav_10.wav"))
    assert vocal_sr == other_sr == SR and vocal.shape == other.shape == mix.shape  # length and channels kept

    low_band = np.stack([low, 0.5 * low], axis=1)
    inner = slice(N_FFT, -N_FFT)  # the tones start and stop abruptly: their edges are broadband
    assert np.abs(vocal - low_band)[inner].max() < 1e-3  # 16-bit output: quantisation ~3e-5
    assert np.abs(other - (mix - vocal)).max() < 1e-3
    assert np.abs(other - np.stack([high, -high], axis=1))[inner].max() < 1e-3

    # the song spans several chunks, and nothing happens where they meet: no step in the error anywhere
    sep = mdx.MdxSeparator(models / "Test_Voc.onnx", n_fft=N_FFT, compensate=1.0)
    assert len(mix) > 3 * (sep.chunk - 2 * sep.trim)
    assert np.abs(np.diff(vocal - low_band, axis=0))[inner].max() < 1e-3


def test_mdx_chunks_join_without_seams_for_a_model_with_time_context(tmp_path):
    """A model averaging 5 frames sees the chunk's padded edges; trimming + cross-fading must hide them.

    For a tone at a multiple of sr / hop every frame has the same phase, so the ideal output is the tone itself;
    what differs is only near chunk edges (measured: 2.5e-5 here, 8.5e-4 with a hard cut between chunks).
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, 4, DIM_F, DIM_T]
    kernel = numpy_helper.from_array(np.full((4, 1, 1, 5), 0.2, dtype=np.float32), "kernel")
    average = helper.make_node("Conv", ["input", "kernel"], ["output"], group=4, kernel_shape=[1, 5],
                               pads=[0, 2, 0, 2])
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)
    graph = helper.make_graph([average], "time_average", [inp], [out], initializer=[kernel])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "Avg_Voc.onnx"))
    sep = mdx.MdxSeparator(tmp_path / "Avg_Voc.onnx", n_fft=N_FFT, compensate=1.0)
    t = np.arange(4 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * (10 * SR / mdx.HOP) * t)
    vocals = sep.separate_array(np.stack([tone, tone]).astype(np.float32))["Vocals"]
    assert len(tone) > 5 * (sep.chunk - 2 * sep.trim)  # several seams
    assert np.abs(vocals - tone)[:, N_FFT:-N_FFT].max() < 1e-4


def test_mdx_mask_model_primary_stem_and_compensation(tmp_path):
    """A per-bin mask model that keeps bins below ~2.7 kHz, declared an instrumental model, with a gain."""
    mask = (np.arange(DIM_F) < 256).astype(np.float32)
    model = build_mdx_model(tmp_path / "My_Inst_model.onnx", mask=mask)
    sep = mdx.MdxSeparator(model, n_fft=N_FFT, compensate=1.02)
    assert (sep.dim_f, sep.dim_t, sep.params.primary_stem) == (DIM_F, DIM_T, "Instrumental")  # from the name
    low, high = two_tones(2.0, SR, high_hz=6000.0)
    mix = np.stack([low + high, low + high]).astype(np.float32)
    stems = sep.separate_array(mix)
    assert set(stems) == {"Instrumental", "Vocals"}
    inner = slice(N_FFT, -N_FFT)
    assert np.abs(stems["Instrumental"] - 1.02 * low)[:, inner].max() < 1e-3
    assert np.abs(stems["Vocals"] - (mix - stems["Instrumental"])).max() < 1e-6
    # overriding the primary stem swaps which file is the voice
    swapped = mdx.MdxSeparator(model, n_fft=N_FFT, compensate=1.0, primary_stem="Vocals").separate_array(mix)
    assert np.abs(swapped["Vocals"] - low)[:, inner].max() < 1e-3


def test_mdx_mono_and_other_sample_rates_become_44k_stereo(tmp_path):
    model = build_mdx_model(tmp_path / "weights" / "Test_Voc.onnx")
    low, _high = two_tones(1.5, 22050)
    song = write_audio(tmp_path / "mono.flac", low.astype(np.float32), 22050)
    opts = vs.SeparationOptions("Test_Voc.onnx", model.parent, tmp_path / "v", tmp_path / "o", "flac", 10,
                                mdx_n_fft=N_FFT, mdx_compensate=1.0)
    report = vs.separate(song, opts)
    assert not report.failed and [p.name for p in report.vocals] == ["vocal_mono.flac_10.flac"]
    vocal, sr = sf.read(str(report.vocals[0]))
    assert sr == SR and vocal.shape == (2 * len(low), 2)  # resampled to 44.1 kHz, length kept in time
    assert np.array_equal(vocal[:, 0], vocal[:, 1])  # mono duplicated to both channels
    t = np.arange(len(vocal)) / SR
    assert np.abs(vocal[N_FFT:-N_FFT, 0] - 0.3 * np.sin(2 * np.pi * 440 * t[N_FFT:-N_FFT])).max() < 2e-3


def test_mdx_half_precision_model(tmp_path):
    model = build_mdx_model(tmp_path / "Half_Voc.onnx", shape=[1, 4, DIM_F, DIM_T], half=True)
    sep = mdx.MdxSeparator(model, n_fft=N_FFT, compensate=1.0)
    low, high = two_tones(1.0, SR)
    stems = sep.separate_array(np.stack([low + high, low + high]).astype(np.float32))
    assert stems["Vocals"].dtype == np.float32
    assert np.abs(stems["Vocals"][:, N_FFT:-N_FFT] - low[N_FFT:-N_FFT]).max() < 5e-3  # float16 rounding


def test_mdx_model_folder_with_denoise(tmp_path):
    """Upstream's onnx_dereverb_By_FoxJoy folder: vocals.onnx inside, output = the dry voice (No Reverb)."""
    folder = tmp_path / "weights" / "onnx_dereverb_By_FoxJoy"
    build_mdx_model(folder / "vocals.onnx")
    assert vs.list_models(folder.parent) == ["onnx_dereverb_By_FoxJoy"] and vs.is_mdx_model(folder.name)
    sep = mdx.MdxSeparator(folder, n_fft=N_FFT)
    assert (sep.params.primary_stem, sep.params.denoise, sep.params.compensate) == ("No Reverb", True, 1.0)
    low, _high = two_tones(1.0, SR)
    stems = sep.separate_array(np.stack([low, low]).astype(np.float32))
    assert np.abs(stems["No Reverb"][:, N_FFT:-N_FFT] - low[N_FFT:-N_FFT]).max() < 1e-4  # (f(x) - f(-x)) / 2 = x
    assert set(stems) == {"No Reverb", "Reverb"}


def test_mdx_parameter_table_defaults_and_overrides():
    voc = mdx.model_params("UVR-MDX-NET-Voc_FT.onnx", 3072)
    assert (voc.n_fft, voc.compensate, voc.primary_stem) == (7680, 1.021, "Vocals")
    inst = mdx.model_params("UVR-MDX-NET-Inst_HQ_3.onnx", 3072)
    assert (inst.n_fft, inst.primary_stem, inst.other_stem) == (6144, "Instrumental", "Vocals")
    assert mdx.model_params("Kim_Vocal_2.onnx", 3072).n_fft == 7680
    # unknown names: n_fft from dim_f, primary stem from the name
    assert mdx.model_params("my_model.onnx", 2048) == mdx.MdxParams(6144, mdx.DEFAULT_COMPENSATE, "Vocals")
    assert mdx.model_params("my_model.onnx", 3072).n_fft == 7680
    assert mdx.model_params("Karaoke_x.onnx", 2048).primary_stem == "Instrumental"
    # overrides win over the table
    over = mdx.model_params("UVR-MDX-NET-Voc_FT.onnx", 3072, n_fft=6144, compensate=1.0, primary_stem="Instrumental")
    assert over == mdx.MdxParams(6144, 1.0, "Instrumental")
    with pytest.raises(mdx.MdxModelError, match="fewer than the model's dim_f 3072; use --mdx-n-fft 6144"):
        mdx.model_params("UVR-MDX-NET-Voc_FT.onnx", 3072, n_fft=4096)
    with pytest.raises(mdx.MdxModelError, match="primary stem 'Drums' is not one of"):
        mdx.model_params("x.onnx", 2048, primary_stem="Drums")
    with pytest.raises(ValueError, match="--mdx-n-fft must be a positive even number"):
        vs.SeparationOptions("x.onnx", mdx_n_fft=6143).validate()
    assert vs.build_parser().parse_args(["--mdx-primary-stem", "Instrumental"]).mdx_primary_stem == "Instrumental"


@pytest.mark.parametrize(("shape", "out_shape"), [
    ([1, 2, 1024], None), ([1, 2, DIM_F, DIM_T], None), ([1, 4, "freq", DIM_T], None),
    ([1, 4, DIM_F, DIM_T], [1, 2, 2 * DIM_F, DIM_T]),  # output not shaped like the input
])
def test_mdx_refuses_a_model_of_another_shape(tmp_path, shape, out_shape, capfd):
    models = tmp_path / "weights"
    build_mdx_model(models / "Odd.onnx", shape=shape, out_shape=out_shape)
    song = write_audio(tmp_path / "song.wav", tone_burst(0.2, SR), SR)
    rc = vs.main(["-i", str(song), "--model", "Odd.onnx", "--model-dir", str(models), "--vocals-dir",
                  str(tmp_path / "v")])
    err = capfd.readouterr().err
    assert rc == 2 and "Odd.onnx is not an MDX-Net model" in err
    assert ("[batch, 4, dim_f, dim_t]" if out_shape is None else "a spectrogram of its input's shape") in err
    assert not list((tmp_path / "v").glob("vocal_*"))


def test_mdx_refuses_a_broken_onnx_file(tmp_path):
    models = tmp_path / "weights"
    models.mkdir()
    (models / "Broken.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(vs.SeparationUnavailableError, match="Broken.onnx cannot be loaded as an ONNX model"):
        vs.make_separator(vs.SeparationOptions("Broken.onnx", models))


def test_vr_and_roformer_models_use_audio_separator(models):
    assert not vs.is_mdx_model("HP5_only_main_vocal.pth") and not vs.is_mdx_model("model_bs_roformer.ckpt")
    try:
        import audio_separator  # noqa: F401
    except ImportError:
        with pytest.raises(vs.SeparationUnavailableError, match=r"VR \(.pth\) and Roformer .* audio-separator"):
            vs.make_separator(vs.SeparationOptions("HP5_only_main_vocal.pth", models))


@pytest.mark.parametrize("fmt", vs.FORMATS)
def test_mdx_writes_each_format_for_a_short_song(tmp_path, fmt):
    model = build_mdx_model(tmp_path / "weights" / "UVR-MDX-NET-Voc_FT.onnx", shape=[1, 4, 3072, 16])
    song = write_audio(tmp_path / "short.wav", np.stack([tone_burst(0.3, SR)] * 2, axis=1), SR)
    opts = vs.SeparationOptions(model.name, model.parent, tmp_path / "v", tmp_path / "o", fmt, 10)
    report = vs.separate(song, opts)  # Voc_FT's table entry: n_fft 7680, compensate 1.021
    assert not report.failed
    assert [p.name for p in report.vocals + report.others] == [f"vocal_short.wav_10.{fmt}",
                                                               f"instrument_short.wav_10.{fmt}"]
    vocal, sr = sf.read(str(report.vocals[0]))
    assert sr == SR and vocal.ndim == 2 and vocal.shape[1] == 2
    if fmt != "mp3":  # mp3 frames pad the length
        assert len(vocal) == int(round(0.3 * SR))
        assert np.abs(vocal[4000:-4000] / 1.021 - sf.read(str(song))[0][4000:-4000]).max() < 0.02


@pytest.mark.slow
def test_mdx_job_runs_under_the_job_runner(tmp_path):
    """The launcher's 0a job with an MDX-Net model: a child process, table parameters, upstream's file names."""
    from app.processes import JobState, ProcessManager

    model = build_mdx_model(tmp_path / "weights" / "Kim_Vocal_2.onnx", shape=[1, 4, 3072, 16])
    songs = tmp_path / "songs"
    for name in ("a.wav", "b.flac"):
        write_audio(songs / name, np.stack([tone_burst(0.5, SR), tone_burst(0.5, SR, freq=330)], axis=1), SR)
    job = VocalSeparationJob(songs, model.name, model.parent, tmp_path / "v", tmp_path / "o", "wav", 10)
    processes = ProcessManager(tmp_path / "jobs")
    processes.start("vocal_separation", job.spec())
    status = processes.wait("vocal_separation", timeout=120)
    assert status.state is JobState.FINISHED, processes.tail("vocal_separation")
    assert (status.progress.done, status.progress.total) == (2, 2)
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["vocal_a.wav_10.wav", "vocal_b.flac_10.wav"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["instrument_a.wav_10.wav",
                                                                  "instrument_b.flac_10.wav"]
