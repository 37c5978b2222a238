"""HuBERT featurizer with a tiny random HubertModel saved in the real transformers folder format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from GPT_SoVITS.features.hubert import (
    SSL_SCALE,
    HubertFeaturizer,
    load_hubert,
    loudness_mix,
    training_ssl_input,
)

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, conv_dim=(8,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> tuple[Path, HubertModel]:
    folder = tmp_path_factory.mktemp("tiny-hubert")
    torch.manual_seed(0)
    model = HubertModel(HubertConfig(**TINY)).eval()
    model.save_pretrained(folder)
    return folder, model


def _expected_frames(samples: int) -> int:
    config = HubertConfig(**TINY)
    length = samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        length = (length - kernel) // stride + 1
    return length


def test_features_shape_and_values_come_from_the_saved_weights(saved_model):
    folder, original = saved_model
    featurizer = HubertFeaturizer.from_pretrained(folder)
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    features = featurizer(wave)
    assert featurizer.hidden_size == 32
    assert features.shape == (1, 32, _expected_frames(16000)) == (1, 32, 49)  # 50 Hz
    with torch.no_grad():
        direct = original(torch.from_numpy(wave).unsqueeze(0)).last_hidden_state.transpose(1, 2)
    torch.testing.assert_close(features, direct)
    # raw samples are fed (no normalisation): scaling the input changes the features
    assert not torch.allclose(featurizer(wave * 30), features, atol=1e-3)


def test_model_load_is_cached_per_path_device_dtype(saved_model):
    folder, _ = saved_model
    first = HubertFeaturizer.from_pretrained(folder)
    second = HubertFeaturizer.from_pretrained(str(folder))
    assert first.model is second.model
    half = HubertFeaturizer.from_pretrained(folder, dtype=torch.bfloat16)
    assert half.model is not first.model and half.dtype == torch.bfloat16
    assert half(np.zeros(8000, dtype=np.float32)).dtype == torch.bfloat16
    load_hubert.cache_clear()


def test_missing_folder_names_the_expected_path(tmp_path):
    missing = tmp_path / "pretrained_models" / "chinese-hubert-base"
    with pytest.raises(FileNotFoundError, match="chinese-hubert-base") as err:
        HubertFeaturizer.from_pretrained(missing)
    assert str(missing) in str(err.value)
    missing.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="config.json"):
        HubertFeaturizer.from_pretrained(missing)


def test_rejects_bad_waveforms(saved_model):
    featurizer = HubertFeaturizer.from_pretrained(saved_model[0])
    with pytest.raises(ValueError, match="mono"):
        featurizer(np.zeros((2, 16000), dtype=np.float32))
    with pytest.raises(ValueError, match="too short"):
        featurizer(np.zeros(100, dtype=np.float32))


def test_loudness_mix_follows_upstream_formula():
    audio = np.array([0.0, 0.5, -0.25, 0.1], dtype=np.float32)  # peak 0.5
    mixed = loudness_mix(audio, SSL_SCALE)
    # the peak sample: 0.95·0.5·scale (normalised half) + 0.5·scale·0.5 (original-level half)
    assert mixed[1] == pytest.approx(SSL_SCALE * (0.95 * 0.5 + 0.5 * 0.5), rel=1e-6)
    assert mixed[2] == pytest.approx(-mixed[1] / 2, rel=1e-6)  # the mix is linear in the samples
    assert not loudness_mix(np.zeros(10, dtype=np.float32), SSL_SCALE).any()


def test_training_input_is_mixed_and_halved_in_rate():
    t = np.arange(32000) / 32000
    audio = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    ssl_input = training_ssl_input(audio)
    assert ssl_input.shape == (16000,) and ssl_input.dtype == np.float32
    assert np.abs(ssl_input).max() == pytest.approx(SSL_SCALE * (0.95 * 0.5 + 0.5 * 0.3), rel=2e-3)
