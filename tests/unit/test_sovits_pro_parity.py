"""Full-size SoVITS v2Pro / v2ProPlus and their discriminator against the v2Pro compat kit (upstream's numbers).

The kit feeds ``0.005 · emb_torchaudio_X`` as the speaker embedding (kit §3), stored as ``sv_emb_A/B``; the
models are built straight from the kit's recipe weights, once per module and version.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from GPT_SoVITS.dev.weight_recipe import compare_fingerprints
from GPT_SoVITS.models.discriminator import MultiPeriodDiscriminator
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.train.losses import kl_loss
from GPT_SoVITS.versions import version_spec
from tests.compat import json_file, recipe_weights, reference, schema

pytestmark = pytest.mark.slow  # full-size models

ATOL = 1e-4  # kit §6: as for v2, on ge, m_p, logs_p, z and the waveform
SCHEMAS = {"v2Pro": "v2pro/sovits_v2pro", "v2ProPlus": "v2pro/sovits_v2proplus"}
REFERENCES = {"v2Pro": "v2pro/ref_sovits_v2pro", "v2ProPlus": "v2pro/ref_sovits_v2proplus"}


def _layout(name: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(shape)) for key, shape, *_ in schema(name)["entries"]]


def _stats(wave: np.ndarray) -> np.ndarray:
    """The kit's waveform summary: number of samples, mean, std, max |x|, rms."""
    w = wave.astype(np.float64).ravel()
    return np.array([w.size, w.mean(), w.std(), np.abs(w).max(), np.sqrt((w**2).mean())])


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    ref = reference("v2pro/ref_sovits_v2pro")  # the v2ProPlus file repeats only codes and phones
    return {k: torch.from_numpy(ref[k]) for k in ("decode_codes", "decode_phone_ids", "refer_spec_A", "refer_spec_B",
                                                  "sv_emb_A", "sv_emb_B")}


@pytest.fixture(scope="module", params=["v2Pro", "v2ProPlus"])
def pro(request) -> tuple[str, SynthesizerTrn]:
    version = request.param
    model = SynthesizerTrn.from_state_dict(SoVITSConfig.for_version(version),
                                           recipe_weights(SCHEMAS[version] + "_train"), with_posterior=False)
    return version, model.eval()


@pytest.mark.parametrize("version", ["v2Pro", "v2ProPlus"])
def test_fresh_model_layouts_match_the_schemas(version):
    with torch.device("meta"):
        model = SynthesizerTrn(SoVITSConfig.for_version(version), with_posterior=True)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == _layout(SCHEMAS[version] + "_train")
    assert sum(p.numel() for p in model.parameters()) == schema(SCHEMAS[version] + "_train")["num_parameters"]
    model.drop_posterior()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == _layout(SCHEMAS[version] + "_infer")


@pytest.mark.parametrize(("name", "fingerprints"), [
    ("v2pro/sovits_v2pro_train", "weights_fingerprints_v2pro.json"),
    ("v2pro/mpd_v2pro", "weights_fingerprints_v2pro.json"),
    ("v2pro/sovits_v2proplus_train", "weights_fingerprints_v2proplus.json"),
])
def test_recipe_matches_the_kit_fingerprints(name, fingerprints):
    expected = json_file(f"v2pro/{fingerprints}")[name.split("/")[1]]
    assert compare_fingerprints(recipe_weights(name), expected) == []


def test_style_vector_steps_match_upstream(pro, inputs):
    version, model = pro
    ref = reference(REFERENCES[version])
    spec, emb = inputs["refer_spec_A"], inputs["sv_emb_A"]
    with torch.no_grad():
        mask = torch.ones(1, 1, spec.shape[2])
        refenc = model.ref_enc(spec[:, :704] * mask, mask)
        ge = model.reference_embedding(spec, emb)
        np.testing.assert_allclose(refenc.numpy(), ref["s1_ge_refenc"], rtol=0, atol=ATOL)
        np.testing.assert_allclose(model.sv_emb(emb).numpy(), ref["s1_sv_proj"], rtol=0, atol=ATOL)
        np.testing.assert_allclose(ge.numpy(), ref["s1_ge"], rtol=0, atol=ATOL)
        np.testing.assert_allclose(model.text_condition(ge).numpy(), ref["s1_ge512"], rtol=0, atol=ATOL)


def test_decode_with_one_reference_matches_upstream(pro, inputs):
    version, model = pro
    ref = reference(REFERENCES[version])
    codes, text = inputs["decode_codes"], inputs["decode_phone_ids"]
    spec, emb = inputs["refer_spec_A"], inputs["sv_emb_A"]
    with torch.no_grad():
        ge = model.average_reference_embedding([spec], [emb])
        _, m_p, logs_p, mask = model.enc_p(model.semantic_features(codes), torch.tensor([100]), text,
                                           torch.tensor([text.shape[1]]), model.text_condition(ge))
        z = model.flow(m_p, mask, g=ge, reverse=True)
    for name, value in (("m_p", m_p), ("logs_p", logs_p), ("z", z)):
        np.testing.assert_allclose(value.numpy(), ref[f"s1_{name}"], rtol=0, atol=ATOL, err_msg=name)
    out = model.decode(codes, text, [spec], noise_scale=0.0, speed=1, sv_emb=[emb])
    assert out.shape == ref["s1_out"].shape
    np.testing.assert_allclose(out.numpy(), ref["s1_out"], rtol=0, atol=ATOL)
    assert ref["s1_out"].std() > 0.05  # the comparison is not against a flat signal (kit §3: std 0.073 / 0.092)
    if version == "v2Pro":
        with torch.no_grad():
            quantized = model.quantizer.decode(codes)
        np.testing.assert_allclose(quantized.numpy(), ref["decode_quantized"], rtol=0, atol=ATOL)


def test_decode_at_speed_0_8_matches_upstream(pro, inputs):
    version, model = pro
    ref = reference(REFERENCES[version])
    codes, text = inputs["decode_codes"], inputs["decode_phone_ids"]
    out = model.decode(codes, text, [inputs["refer_spec_A"]], noise_scale=0.0, speed=0.8, sv_emb=[inputs["sv_emb_A"]])
    assert out.shape[-1] == 80640
    np.testing.assert_allclose(out[..., :16000].numpy(), ref["s08_out_head"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(_stats(out.numpy()), ref["s08_out_stats"], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        ge = model.reference_embedding(inputs["refer_spec_A"], inputs["sv_emb_A"])
        _, m_p, _, _ = model.enc_p(model.semantic_features(codes), torch.tensor([100]), text,
                                   torch.tensor([text.shape[1]]), model.text_condition(ge), speed=0.8)
    np.testing.assert_allclose(m_p.numpy(), ref["s08_m_p"], rtol=0, atol=ATOL)


def test_two_references_average_after_the_prelu(pro, inputs):
    version, model = pro
    ref = reference(REFERENCES[version])
    specs, embs = [inputs["refer_spec_A"], inputs["refer_spec_B"]], [inputs["sv_emb_A"], inputs["sv_emb_B"]]
    with torch.no_grad():
        for i in (0, 1):
            ge = model.reference_embedding(specs[i], embs[i])
            np.testing.assert_allclose(ge.numpy(), ref[f"two_ge_{i}"], rtol=0, atol=ATOL)
        mean = model.average_reference_embedding(specs, embs)
        np.testing.assert_allclose(model.text_condition(mean).numpy(), ref["two_ge512"], rtol=0, atol=ATOL)
    out = model.decode(inputs["decode_codes"], inputs["decode_phone_ids"], specs, noise_scale=0.0, sv_emb=embs)
    np.testing.assert_allclose(out[..., :16000].numpy(), ref["two_out_head"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(_stats(out.numpy()), ref["two_out_stats"], rtol=1e-5, atol=1e-5)


def test_extract_latent_codes_are_those_of_v2(pro):
    version, model = pro
    codes = model.extract_latent(torch.from_numpy(reference("ref_sovits_v2")["ssl"]))
    assert np.array_equal(codes.numpy(), reference("v2pro/ref_sovits_v2pro")["extract_latent_codes"])


def test_training_forward_matches_upstream():
    """One training-mode forward of v2Pro with the kit's two random draws (kit §5.3): same draws, same numbers."""
    ref = reference("v2pro/ref_sovits_v2pro")
    model = SynthesizerTrn.from_state_dict(SoVITSConfig.for_version("v2Pro"),
                                           recipe_weights("v2pro/sovits_v2pro_train"), with_posterior=True).train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    t = {k: torch.from_numpy(v) for k, v in ref.items() if k.startswith("train_")}
    sv = torch.cat([torch.from_numpy(ref["sv_emb_A"]), torch.from_numpy(ref["sv_emb_B"])])
    torch.manual_seed(1234)
    with torch.no_grad():
        out = model(t["train_ssl"], t["train_spec"], t["train_spec_lengths"], t["train_text"],
                    t["train_text_lengths"], sv)
    assert torch.equal(out.slice_starts, t["train_ids_slice"])
    # z = m_q + noise·exp(logs_q): the same noise as upstream's first draw
    noise = (out.z - out.m_q) / torch.exp(out.logs_q)
    valid = t["train_z_mask"].bool().expand_as(noise)
    np.testing.assert_allclose(noise[valid].numpy(), t["train_enc_q_noise"][valid].numpy(), rtol=1e-3, atol=1e-3)
    for name in ("m_q", "logs_q", "m_p", "logs_p", "ge"):
        np.testing.assert_allclose(getattr(out, name).numpy(), ref[f"train_{name}"], rtol=1e-4, atol=1e-4,
                                   err_msg=name)
    np.testing.assert_allclose(out.audio.numpy(), ref["train_y_hat"], rtol=0, atol=1e-4)
    for name in ("z", "z_p"):
        np.testing.assert_allclose(getattr(out, name).numpy(), ref[f"train_{name}"], rtol=1e-4, atol=1e-3,
                                   err_msg=name)
    np.testing.assert_allclose(out.y_mask.numpy(), ref["train_z_mask"], rtol=0, atol=0)
    assert float(out.commit_loss) == float(ref["train_kl_ssl"][0]) == 0.0
    loss = kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.y_mask)
    np.testing.assert_allclose(float(loss), float(ref["train_loss_kl"][0]), rtol=1e-4)


def test_pro_discriminator_has_eight_sub_discriminators_and_loads_the_recipe():
    periods = version_spec("v2Pro").discriminator_periods
    assert periods == version_spec("v2ProPlus").discriminator_periods == (2, 3, 5, 7, 11, 17, 23)
    with torch.device("meta"):
        disc = MultiPeriodDiscriminator(periods=periods)
    assert [(k, tuple(v.shape)) for k, v in disc.state_dict().items()] == _layout("v2pro/mpd_v2pro")
    disc.load_state_dict(recipe_weights("v2pro/mpd_v2pro"), strict=True, assign=True)
    real = 0.1 * torch.randn(1, 1, 4600, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        real_scores, fake_scores, _, _ = disc(real, real.flip(-1))
    assert len(real_scores) == len(fake_scores) == 8
    assert all(torch.isfinite(s).all() for s in real_scores + fake_scores)
