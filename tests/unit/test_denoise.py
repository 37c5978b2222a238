from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import silence, tone_burst, write_audio
from tools import denoise

SR = 44100
NOISE = 0.02


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture
def noisy_folder(tmp_path):
    """Tone, silence, tone (1 s each) plus white noise of a known level; one mono wav and one stereo flac."""
    rng = np.random.default_rng(7)
    clean = np.concatenate([tone_burst(1.0, SR), silence(1.0, SR), tone_burst(1.0, SR, freq=330)])
    folder = tmp_path / "in"
    write_audio(folder / "a.wav", clean + NOISE * rng.standard_normal(clean.size).astype(np.float32), SR,
                subtype="PCM_16")
    stereo = np.stack([clean, 0.5 * clean], axis=1) + NOISE * rng.standard_normal((clean.size, 2))
    write_audio(folder / "b.flac", stereo.astype(np.float32), SR)
    return folder


def test_keeps_rate_channels_length_and_lowers_the_noise_floor(noisy_folder, tmp_path):
    out = tmp_path / "out"
    rc = denoise.main(["-i", str(noisy_folder), "-o", str(out)])
    assert rc == 0
    for name in ("a.wav", "b.flac"):
        before, after = sf.info(str(noisy_folder / name)), sf.info(str(out / name))
        assert (after.samplerate, after.channels, after.frames, after.format) == \
               (before.samplerate, before.channels, before.frames, before.format)
    noisy, _ = sf.read(noisy_folder / "a.wav", dtype="float32")
    cleaned, _ = sf.read(out / "a.wav", dtype="float32")
    gap = slice(int(1.2 * SR), int(1.8 * SR))  # inside the silent second
    tone = slice(int(0.2 * SR), int(0.8 * SR))
    assert _rms(noisy[gap]) == pytest.approx(NOISE, rel=0.1)
    assert _rms(cleaned[gap]) < _rms(noisy[gap]) / 4  # noise floor at least 12 dB lower
    assert 0.8 < _rms(cleaned[tone]) / _rms(noisy[tone]) <= 1.05  # speech-like part kept


def test_broken_file_is_reported_and_the_rest_go_on(noisy_folder, tmp_path, capfd):
    (noisy_folder / "c.wav").write_bytes(b"RIFF broken")
    out = tmp_path / "out"
    report = denoise.denoise_folder(noisy_folder, out, denoise.spectral_gate())
    assert [p.name for p in report.written] == ["a.wav", "b.flac"]
    assert report.failed[0][0].name == "c.wav" and "cannot decode" in report.failed[0][1]


def test_clear_errors_for_bad_requests(noisy_folder, tmp_path, capfd):
    assert denoise.main(["-i", str(noisy_folder), "-o", str(noisy_folder)]) == 2
    assert "must differ" in capfd.readouterr().err
    assert denoise.main(["-i", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    with pytest.raises(denoise.DenoiserUnavailableError, match="FRCRN model not found"):
        denoise.make_denoiser("frcrn", model_dir=tmp_path / "no-model")
    with pytest.raises(ValueError, match="prop_decrease"):
        denoise.spectral_gate(denoise.SpectralGateOptions(prop_decrease=1.5))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.wav").write_bytes(b"junk")
    assert denoise.main(["-i", str(empty), "-o", str(tmp_path / "o2")]) == 1


def test_denoise_job_argv_round_trip(noisy_folder, tmp_path):
    from app.jobs import DenoiseJob

    job = DenoiseJob(noisy_folder, tmp_path / "out", "spectral", 0.7, stationary=False)
    args = denoise.build_parser().parse_args(job.spec().argv)
    assert (args.input_folder, args.output_folder, args.method, args.prop_decrease, args.stationary) == \
           (job.input_dir, job.output_dir, job.method, job.prop_decrease, job.stationary)
    with pytest.raises(ValueError, match="must differ"):
        DenoiseJob(noisy_folder, noisy_folder).spec()
