"""Full-size SoVITS v2 and MPD against the compat kit: exact key layout, and upstream's numbers.

The generator is built straight from the kit's recipe weights (``SynthesizerTrn.from_state_dict``, no random
initialisation), once per module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from GPT_SoVITS.models.discriminator import MultiPeriodDiscriminator
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from tests.compat import recipe_weights, reference, schema

pytestmark = pytest.mark.slow  # full-size models (about 20 s on 2 cores)

ATOL = 1e-4  # kit §5: suggested tolerance for a float32 reimplementation


def _layout(name: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(shape)) for key, shape, *_ in schema(name)["entries"]]


def _build_with_recipe(with_posterior: bool) -> SynthesizerTrn:
    model = SynthesizerTrn.from_state_dict(SoVITSConfig(), recipe_weights("sovits_v2_train"), with_posterior)
    return model.eval()


@pytest.fixture(scope="module")
def sovits() -> SynthesizerTrn:
    return _build_with_recipe(with_posterior=False)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return reference("ref_sovits_v2")


@pytest.fixture(scope="module")
def decoded(sovits, ref):
    """Run upstream's decode steps one by one (noise_scale 0, one reference) and keep the intermediates."""
    spec = torch.from_numpy(reference("ref_spectrogram")["spec"])
    codes = torch.from_numpy(ref["decode_codes"])
    text = torch.from_numpy(ref["decode_phone_ids"])
    with torch.no_grad():
        ge = sovits.average_reference_embedding([spec])
        quantized = sovits.quantizer.decode(codes)
        _, m_p, logs_p, mask = sovits.enc_p(sovits.semantic_features(codes), torch.tensor([100]), text,
                                            torch.tensor([text.shape[1]]), ge)
        z = sovits.flow(m_p, mask, g=ge, reverse=True)
    out = sovits.decode(codes, text, [spec], noise_scale=0.0, speed=1.0)
    return {"ge": ge, "quantized": quantized, "m_p": m_p, "logs_p": logs_p, "z": z, "out": out}


def test_fresh_model_state_dict_matches_training_schema():
    model = SynthesizerTrn(SoVITSConfig(), with_posterior=True)
    layout = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert layout == _layout("sovits_v2_train")
    assert all(v.dtype == torch.float32 for v in model.state_dict().values())
    model.drop_posterior()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == _layout("sovits_v2_infer")


def test_training_layout_loads_recipe_strictly():
    model = _build_with_recipe(with_posterior=True)
    assert model.has_posterior
    assert sum(p.numel() for p in model.parameters()) == schema("sovits_v2_train")["num_parameters"]


def test_inference_layout_matches_schema(sovits):
    assert [(k, tuple(v.shape)) for k, v in sovits.state_dict().items()] == _layout("sovits_v2_infer")


@pytest.mark.parametrize("name", ["ge", "quantized", "m_p", "logs_p", "z", "out"])
def test_decode_intermediates_match_upstream(decoded, ref, name):
    expected = ref[f"decode_{name}"]
    actual = decoded[name].numpy()
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


def test_decode_output_is_not_degenerate(decoded, ref):
    # guards the comparison above: the reference waveform has real structure (kit §3: std 0.074)
    assert ref["decode_out"].std() > 0.05 and decoded["out"].shape[-1] == 2 * 50 * 640


def test_decode_at_speed_1_25_matches_upstream(sovits, ref):
    spec = torch.from_numpy(reference("ref_spectrogram")["spec"])
    codes = torch.from_numpy(ref["decode_codes"])
    text = torch.from_numpy(ref["decode_phone_ids"])
    out = sovits.decode(codes, text, [spec], noise_scale=0.0, speed=1.25)
    np.testing.assert_allclose(out.numpy(), ref["speed125_decode_out"], rtol=0, atol=ATOL)
    with torch.no_grad():
        ge = sovits.reference_embedding(spec)
        _, m_p, _, _ = sovits.enc_p(sovits.semantic_features(codes), torch.tensor([100]), text,
                                    torch.tensor([text.shape[1]]), ge, speed=1.25)
    np.testing.assert_allclose(m_p.numpy(), ref["speed125_decode_m_p"], rtol=0, atol=ATOL)


def test_extract_latent_matches_upstream(sovits, ref):
    ssl = torch.from_numpy(ref["ssl"])
    with torch.no_grad():
        np.testing.assert_allclose(sovits.ssl_proj(ssl).numpy(), ref["ssl_proj_out"], rtol=0, atol=ATOL)
    codes = sovits.extract_latent(ssl)
    assert codes.shape == ref["extract_latent_codes"].shape
    assert np.array_equal(codes.numpy(), ref["extract_latent_codes"])


def test_folded_weight_norm_still_matches_upstream(ref):
    model = _build_with_recipe(with_posterior=False).prepare_for_inference()
    spec = torch.from_numpy(reference("ref_spectrogram")["spec"])
    out = model.decode(torch.from_numpy(ref["decode_codes"]), torch.from_numpy(ref["decode_phone_ids"]), [spec],
                       noise_scale=0.0)
    np.testing.assert_allclose(out.numpy(), ref["decode_out"], rtol=0, atol=ATOL)


def test_mpd_loads_recipe_strictly_and_runs():
    with torch.device("meta"):
        disc = MultiPeriodDiscriminator()
    weights = recipe_weights("mpd_v2")
    assert [(k, tuple(v.shape)) for k, v in disc.state_dict().items()] == _layout("mpd_v2")
    disc.load_state_dict(weights, strict=True, assign=True)
    generator = torch.Generator().manual_seed(0)
    real = 0.1 * torch.randn(1, 1, 2560, generator=generator)
    fake = (0.1 * torch.randn(1, 1, 2560, generator=generator)).requires_grad_(True)
    real_scores, fake_scores, real_maps, fake_maps = disc(real, fake)
    assert len(real_scores) == len(fake_scores) == 6  # scale discriminator + periods 2, 3, 5, 7, 11
    assert [len(m) for m in real_maps] == [7, 6, 6, 6, 6, 6]
    assert real_scores[1].shape[0] == 1 and all(torch.isfinite(s).all() for s in fake_scores)
    loss = sum(((1 - s) ** 2).mean() for s in fake_scores)
    loss.backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_full_size_v1_layout_differs_from_v2_only_in_phones_and_reference_bins():
    with torch.device("meta"):
        v1 = SynthesizerTrn(SoVITSConfig(version="v1"), with_posterior=False)
    v1_layout = dict((k, tuple(v.shape)) for k, v in v1.state_dict().items())
    v2_layout = dict(_layout("sovits_v2_infer"))
    assert v1_layout.keys() == v2_layout.keys()
    differing = {k: (v1_layout[k], v2_layout[k]) for k in v1_layout if v1_layout[k] != v2_layout[k]}
    assert differing == {"enc_p.text_embedding.weight": ((322, 192), (732, 192)),
                         "ref_enc.spectral.0.fc.weight": ((128, 1025), (128, 704))}
