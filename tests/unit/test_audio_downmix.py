"""Downmix rules of load_audio: the channel mean (torchaudio/librosa) and ffmpeg's default matrix (slicer, 1A)."""

from __future__ import annotations

import numpy as np
import pytest

from GPT_SoVITS.audio import downmix, load_audio
from tests.conftest import write_audio


def test_stereo_rules():
    data = np.array([[0.2, 0.4], [-0.5, 0.1]], dtype=np.float32)
    np.testing.assert_allclose(downmix(data, "mean"), [0.3, -0.2], rtol=1e-6)
    np.testing.assert_allclose(downmix(data, "ffmpeg"), [0.6 / np.sqrt(2), -0.4 / np.sqrt(2)], rtol=1e-6)


def test_mono_is_unchanged_by_either_rule():
    data = np.array([[0.25], [-0.75]], dtype=np.float32)
    for rule in ("mean", "ffmpeg"):
        np.testing.assert_array_equal(downmix(data, rule), [0.25, -0.75])


def test_ffmpeg_five_point_one_weights():
    # FL FR FC LFE BL BR: fronts √½, centre 1, LFE dropped, surrounds ½ (no normalisation for float output).
    eye = np.eye(6, dtype=np.float32)
    np.testing.assert_allclose(downmix(eye, "ffmpeg"), [2**-0.5, 2**-0.5, 1.0, 0.0, 0.5, 0.5], rtol=1e-6)


def test_many_channels_fall_back_to_the_mean_and_unknown_rule_raises():
    data = np.ones((4, 10), dtype=np.float32) * np.arange(10, dtype=np.float32)
    np.testing.assert_allclose(downmix(data, "ffmpeg"), np.full(4, 4.5))
    with pytest.raises(ValueError, match="downmix"):
        downmix(data[:, :2], "median")  # type: ignore[arg-type]


def test_load_audio_applies_the_rule_before_resampling(tmp_path):
    t = np.arange(16000) / 16000
    left = 0.3 * np.sin(2 * np.pi * 200 * t)
    path = write_audio(tmp_path / "s.wav", np.stack([left, left], axis=1).astype(np.float32), sr=16000, subtype="FLOAT")
    mean, _ = load_audio(path)
    ff, sr = load_audio(path, sr=32000, downmix_rule="ffmpeg")
    assert sr == 32000 and len(ff) == 32000
    np.testing.assert_allclose(np.abs(ff).max(), np.sqrt(2) * np.abs(mean).max(), rtol=1e-2)
