"""Linear/mel spectrograms against the kit's upstream references, plus invariants of the STFT and mel scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from GPT_SoVITS.features.spectrogram import (
    hz_to_mel,
    mel_filterbank,
    mel_spectrogram,
    mel_to_hz,
    reference_spectrogram,
    spectrogram,
)
from tests.compat import reference


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return reference("ref_spectrogram")


def test_linear_spectrogram_matches_upstream(ref):
    spec = spectrogram(torch.from_numpy(ref["wave"]))
    assert spec.shape == ref["spec"].shape == (1, 1025, 150)
    # float32 FFTs differ by CPU kernel; ours and the reference are each ~2e-5 from a float64 STFT (peak 153)
    np.testing.assert_allclose(spec.numpy(), ref["spec"], rtol=1e-5, atol=1e-4)


def test_mel_spectrogram_matches_upstream(ref):
    mel = mel_spectrogram(torch.from_numpy(ref["wave"]))
    assert mel.shape == ref["mel"].shape == (1, 128, 150)
    np.testing.assert_allclose(mel.numpy(), ref["mel"], rtol=0, atol=1e-4)


def test_mel_filterbank_equals_librosa_slaney(ref):
    basis = mel_filterbank(32000, 2048, 128, 0.0, None)
    assert basis.dtype == np.float32
    np.testing.assert_allclose(basis, ref["mel_basis"], rtol=0, atol=1e-9)


def test_slaney_mel_scale_landmarks():
    # linear at 200/3 Hz per mel below 1 kHz, 27 mels per factor 6.4 above
    np.testing.assert_allclose(hz_to_mel(np.array([0.0, 200 / 3, 1000.0, 6400.0])), [0.0, 1.0, 15.0, 42.0])
    freqs = np.array([20.0, 440.0, 999.0, 1000.0, 5000.0, 16000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(freqs)), freqs, rtol=1e-12)


@pytest.mark.parametrize("samples", [705, 1280, 12345, 32000, 96000])
def test_one_frame_per_hop(samples):
    wave = torch.randn(2, samples) * 0.1
    assert spectrogram(wave).shape == (2, 1025, samples // 640)


def test_too_short_audio_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        spectrogram(torch.zeros(1, 704))


def test_sine_peaks_at_its_bin():
    sr, n_fft, k = 32000, 2048, 100
    t = np.arange(sr) / sr
    wave = torch.from_numpy(0.5 * np.sin(2 * np.pi * k * sr / n_fft * t)).float()
    spec = spectrogram(wave)
    inner = spec[0, :, 2:-2]  # the first and last frames see the reflected padding
    assert (inner.argmax(dim=0) == k).all()
    # magnitude of a Hann-windowed sine at its bin is amplitude · sum(window) / 2 = 0.5 · 1024 / 2
    np.testing.assert_allclose(inner[k].numpy(), 0.5 * n_fft / 2 / 2, rtol=1e-3)


def test_silence_floors():
    wave = torch.zeros(1, 6400)
    np.testing.assert_allclose(spectrogram(wave).numpy(), 1e-4, rtol=1e-6)  # sqrt(1e-8)
    np.testing.assert_allclose(mel_spectrogram(wave).numpy(), np.log(1e-5), rtol=1e-6)


def test_reference_spectrogram_tames_clipping_peaks():
    rng = np.random.default_rng(0)
    base = rng.uniform(-1, 1, 32000).astype(np.float32)
    base /= np.abs(base).max()
    # peak 3 is divided by 2 (not 3); peak 1.5 by 1.5; peak 0.8 is left alone
    for peak, divisor in ((3.0, 2.0), (1.5, 1.5), (0.8, 1.0)):
        expected = spectrogram(torch.from_numpy(base * peak / divisor).unsqueeze(0))
        torch.testing.assert_close(reference_spectrogram(base * peak), expected)
    with pytest.raises(ValueError, match="mono"):
        reference_spectrogram(np.zeros((2, 100), dtype=np.float32))


def test_cached_window_made_in_inference_mode_still_trains():
    """The engine computes spectrograms under inference_mode; a trainer in the same process must still work."""
    import torch

    from GPT_SoVITS.features import spectrogram as module
    from GPT_SoVITS.features.spectrogram import mel_spectrogram, spectrogram

    module._hann_window.cache_clear()
    module._mel_basis.cache_clear()
    wave = torch.randn(1, 8000)
    with torch.inference_mode():
        spectrogram(wave)
        mel_spectrogram(wave)
    trainable = wave.clone().requires_grad_(True)
    (spectrogram(trainable).sum() + mel_spectrogram(trainable).sum()).backward()
    assert trainable.grad is not None and torch.isfinite(trainable.grad).all()
