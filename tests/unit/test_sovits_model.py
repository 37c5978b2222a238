"""SoVITS generator on a tiny random config: shapes, masks, training step, save/load, weight-norm folding."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch

from GPT_SoVITS.config import load_config, to_dict
from GPT_SoVITS.models.attentions import MultiHeadAttention, _absolute_to_relative, _relative_to_absolute
from GPT_SoVITS.models.commons import (
    Conv1d,
    WNConv1d,
    WNConvTranspose1d,
    fold_weight_norm,
    from_channels_last_2d,
    onednn_fusion_available,
    to_channels_last_2d,
)
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn, UnsupportedVersionError

TINY = SoVITSConfig(
    inter_channels=16, hidden_channels=16, filter_channels=32, n_heads=2, n_layers=2, kernel_size=3,
    resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (1, 3)), upsample_rates=(8, 2),
    upsample_initial_channel=32, upsample_kernel_sizes=(16, 4), gin_channels=16, filter_length=64, hop_length=16,
    segment_size=16 * 8, ssl_dim=32, codebook_size=64, mrte_hidden_channels=16, mrte_heads=2,
    style_hidden_channels=16, posterior_layers=2, flow_layers=2, n_flows=2,
)
SPEC_BINS = TINY.spec_channels  # 33


def make_model(seed: int = 0, **kwargs) -> SynthesizerTrn:
    torch.manual_seed(seed)
    model = SynthesizerTrn(TINY, **kwargs)
    # coupling layers start as the identity (post = 0); give them weights so the flow is actually exercised
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".post." in name:
                param.normal_(0, 0.1)
    return model


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    frames, phones = 20, 7
    ssl = torch.randn(2, TINY.ssl_dim, frames, generator=g)
    spec = torch.rand(2, SPEC_BINS, frames, generator=g)
    text = torch.randint(0, TINY.n_symbols, (2, phones), generator=g)
    return ssl, spec, torch.tensor([frames, 16]), text, torch.tensor([phones, 5])


def test_training_forward_shapes():
    model = make_model()
    ssl, spec, spec_len, text, text_len = batch()
    out = model(ssl, spec, spec_len, text, text_len)
    assert out.audio.shape == (2, 1, TINY.segment_size)
    for t in (out.z, out.z_p, out.m_p, out.logs_p, out.m_q, out.logs_q):
        assert t.shape == (2, TINY.inter_channels, 20)
    assert out.quantized.shape == (2, TINY.ssl_dim, 20)
    assert out.y_mask[1, 0, 16:].abs().sum() == 0 and out.y_mask[1, 0, :16].min() == 1
    assert out.slice_starts.shape == (2,)
    assert out.audio.abs().max() <= 1.0


def test_one_backward_step_is_finite_and_updates_weights():
    model = make_model()
    model.train()
    ssl, spec, spec_len, text, text_len = batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = model.enc_p.proj.weight.detach().clone()
    out = model(ssl, spec, spec_len, text, text_len)
    kl = (out.logs_q - out.logs_p + 0.5 * (out.z_p - out.m_p) ** 2 * torch.exp(-2 * out.logs_p)).mean()
    loss = out.audio.abs().mean() + out.commit_loss + kl
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.dec.ups[0].weight_g.grad is not None and model.dec.ups[0].weight_g.grad.abs().sum() > 0
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(before, model.enc_p.proj.weight)


def test_frozen_quantizer_keeps_codebook_but_unfrozen_updates_it():
    ssl, spec, spec_len, text, text_len = batch()
    frozen = make_model()
    frozen.train()
    embed = frozen.quantizer.vq.layers[0]._codebook.embed.clone()
    out = frozen(ssl, spec, spec_len, text, text_len)
    assert torch.equal(embed, frozen.quantizer.vq.layers[0]._codebook.embed)
    (out.audio.abs().mean() + out.m_p.mean()).backward()
    assert frozen.ssl_proj.weight.grad is None  # a frozen codebook is a plain lookup: nothing flows back

    torch.manual_seed(0)
    free = SynthesizerTrn(dataclasses.replace(TINY, freeze_quantizer=False))
    free.train()
    embed = free.quantizer.vq.layers[0]._codebook.embed.clone()
    out = free(ssl, spec, spec_len, text, text_len)
    assert not torch.equal(embed, free.quantizer.vq.layers[0]._codebook.embed)
    assert out.commit_loss > 0
    (out.audio.abs().mean() + out.m_p.mean()).backward()
    assert free.ssl_proj.weight.grad.abs().sum() > 0  # straight-through estimator


def test_decode_shapes_and_speed():
    model = make_model().eval()
    codes = torch.randint(0, TINY.codebook_size, (1, 1, 10))
    text = torch.randint(0, TINY.n_symbols, (1, 6))
    refer = torch.rand(1, SPEC_BINS, 30)
    audio = model.decode(codes, text, refer, noise_scale=0.0)
    assert audio.shape == (1, 1, 20 * TINY.hop_length)
    faster = model.decode(codes, text, refer, noise_scale=0.0, speed=1.25)
    assert faster.shape == (1, 1, (int(20 / 1.25) + 1) * TINY.hop_length)
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1


def test_decode_reference_list_averages_style_vectors():
    model = make_model().eval()
    codes = torch.randint(0, TINY.codebook_size, (1, 1, 8))
    text = torch.randint(0, TINY.n_symbols, (1, 5))
    ref_a, ref_b = torch.rand(1, SPEC_BINS, 25), 3 * torch.rand(1, SPEC_BINS, 40)
    with torch.no_grad():
        ge_mean = (model.reference_embedding(ref_a) + model.reference_embedding(ref_b)) / 2
    fused = model.decode(codes, text, [ref_a, ref_b], noise_scale=0.0)
    torch.testing.assert_close(fused, model.decode(codes, text, None, noise_scale=0.0, ge=ge_mean))
    single = model.decode(codes, text, [ref_a], noise_scale=0.0)
    assert not torch.allclose(fused, single)
    torch.testing.assert_close(single, model.decode(codes, text, ref_a, noise_scale=0.0))


def test_noise_scale_zero_is_deterministic_and_nonzero_samples():
    model = make_model().eval()
    codes = torch.randint(0, TINY.codebook_size, (1, 1, 8))
    text = torch.randint(0, TINY.n_symbols, (1, 5))
    refer = torch.rand(1, SPEC_BINS, 25)
    a = model.decode(codes, text, refer, noise_scale=0.0)
    torch.testing.assert_close(a, model.decode(codes, text, refer, noise_scale=0.0), rtol=0, atol=0)
    assert not torch.allclose(a, model.decode(codes, text, refer, noise_scale=0.5))


def test_padding_does_not_change_the_valid_part():
    """A short item padded into a batch gives the same prior as when run alone (masks are applied)."""
    model = make_model().eval()
    ssl, _, _, text, _ = batch()
    ge = torch.randn(2, TINY.gin_channels, 1)
    with torch.no_grad():
        _, m_pad, logs_pad, _ = model.enc_p(ssl, torch.tensor([20, 16]), text, torch.tensor([7, 5]), ge)
        _, m_one, logs_one, _ = model.enc_p(ssl[1:, :, :16], torch.tensor([16]), text[1:, :5], torch.tensor([5]),
                                            ge[1:])
    torch.testing.assert_close(m_pad[1:, :, :16], m_one, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logs_pad[1:, :, :16], logs_one, atol=1e-5, rtol=1e-5)
    assert m_pad[1, :, 16:].abs().sum() == 0


def test_extract_latent_picks_nearest_codebook_rows():
    model = make_model().eval()
    ssl = torch.randn(2, TINY.ssl_dim, 12)
    codes = model.extract_latent(ssl)
    assert codes.shape == (2, 1, 6) and codes.dtype == torch.long
    with torch.no_grad():
        projected = model.ssl_proj(ssl).transpose(1, 2)  # [B, 6, D]
        embed = model.quantizer.vq.layers[0]._codebook.embed
        nearest = torch.cdist(projected, embed.unsqueeze(0).expand(2, -1, -1)).argmin(-1)
    assert torch.equal(codes[:, 0], nearest)
    # codes of a decoded sequence are the codes themselves
    assert torch.equal(model.quantizer.encode(model.quantizer.decode(codes.transpose(0, 1))), codes.transpose(0, 1))


def test_save_load_round_trip_and_inference_layout():
    model = make_model().eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    clone = SynthesizerTrn(TINY)
    clone.load_state_dict(state, strict=True)
    clone.eval()
    codes = torch.randint(0, TINY.codebook_size, (1, 1, 8))
    text = torch.randint(0, TINY.n_symbols, (1, 5))
    refer = torch.rand(1, SPEC_BINS, 25)
    torch.testing.assert_close(model.decode(codes, text, refer, noise_scale=0.0),
                               clone.decode(codes, text, refer, noise_scale=0.0), rtol=0, atol=1e-6)

    infer = SynthesizerTrn(TINY, with_posterior=False)
    infer_state = {k: v for k, v in state.items() if not k.startswith("enc_q.")}
    infer.load_state_dict(infer_state, strict=True)
    assert set(infer.state_dict()) == set(infer_state) and len(infer_state) < len(state)
    with pytest.raises(RuntimeError, match="enc_q"):
        infer(*batch())


def test_weight_norm_keys_and_folding_keep_outputs():
    model = make_model().eval()
    keys = model.state_dict().keys()
    n_weight_norm = sum(k.endswith(".weight_g") for k in keys)
    assert n_weight_norm > 0 and all(k[:-1] + "v" in keys for k in keys if k.endswith(".weight_g"))
    up = model.dec.ups[0]
    assert isinstance(up, WNConvTranspose1d)
    assert up.weight_g.shape == (up.in_channels, 1, 1)  # dim 0 of a transposed conv is the input channel

    codes = torch.randint(0, TINY.codebook_size, (1, 1, 8))
    text = torch.randint(0, TINY.n_symbols, (1, 5))
    refer = torch.rand(1, SPEC_BINS, 25)
    before = model.decode(codes, text, refer, noise_scale=0.0)
    model.prepare_for_inference()
    after = model.decode(codes, text, refer, noise_scale=0.0)
    torch.testing.assert_close(before, after, rtol=0, atol=1e-6)
    folded_keys = model.state_dict().keys()
    assert not any(k.endswith((".weight_g", ".weight_v")) for k in folded_keys)
    assert fold_weight_norm(model) == 0  # already folded


def test_config_from_upstream_s2_json_and_round_trip():
    s2 = {
        "train": {"segment_size": 20480, "c_mel": 45},
        "data": {"filter_length": 2048, "hop_length": 640, "sampling_rate": 32000, "n_mel_channels": 128},
        "model": {"inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2,
                  "n_layers": 6, "kernel_size": 3, "p_dropout": 0.1, "resblock": "1",
                  "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3,
                  "upsample_rates": [10, 8, 2, 2, 2], "upsample_initial_channel": 512,
                  "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3, "use_spectral_norm": False,
                  "gin_channels": 512, "semantic_frame_rate": "25hz", "freeze_quantizer": True, "version": "v2",
                  "lora_rank": 32},
    }
    cfg = SoVITSConfig.from_upstream(s2)
    assert cfg == SoVITSConfig()
    assert (cfg.n_symbols, cfg.spec_channels, cfg.reference_bins, cfg.segment_frames) == (732, 1025, 704, 32)
    v1 = SoVITSConfig.from_upstream({**s2, "model": {**s2["model"], "version": "v1"}})
    assert (v1.n_symbols, v1.reference_bins) == (322, 1025)
    assert load_config(SoVITSConfig, to_dict(TINY)) == TINY


def test_config_rejects_unsupported_values():
    with pytest.raises(UnsupportedVersionError, match="v3"):
        SoVITSConfig(version="v3")
    with pytest.raises(ValueError, match="hop_length"):
        SoVITSConfig(upsample_rates=(10, 8, 2, 2))


def test_v1_layout_uses_full_band_reference_and_322_symbols():
    model = SynthesizerTrn(dataclasses.replace(TINY, version="v1"), with_posterior=False)
    state = model.state_dict()
    assert state["enc_p.text_embedding.weight"].shape[0] == 322
    assert state["ref_enc.spectral.0.fc.weight"].shape[1] == SPEC_BINS



@pytest.mark.parametrize("block_type", ["1", "2"])
@pytest.mark.parametrize("fused", [False, True])
def test_fast_inference_path_matches_plain_decoder(block_type, fused):
    if fused and not onednn_fusion_available():
        pytest.skip("oneDNN fused convolutions are not available in this torch build")
    dilations = ((1, 3, 5), (1, 3, 5)) if block_type == "1" else ((1, 3), (1, 3))
    cfg = dataclasses.replace(TINY, resblock=block_type, resblock_dilation_sizes=dilations)
    torch.manual_seed(0)
    plain = SynthesizerTrn(cfg, with_posterior=False).eval()
    fast = SynthesizerTrn(cfg, with_posterior=False)
    fast.load_state_dict(plain.state_dict())
    fast.prepare_for_inference()
    assert fast.dec.fast_cpu_inference
    z = torch.randn(1, cfg.inter_channels, 12)
    g = torch.randn(1, cfg.gin_channels, 1)
    with torch.no_grad():
        expected = plain.dec(z, g)
        blocks = fast.dec.resblocks
        x = torch.randn(1, blocks[0].convs1[0].in_channels if block_type == "1" else blocks[0].convs[0].in_channels,
                        40)
        block_expected = plain.dec.resblocks[0](x)
        layout = to_channels_last_2d(x)
        block_actual = blocks[0].forward_inference(layout, torch.nn.functional.leaky_relu(layout, 0.1), fused)
    torch.testing.assert_close(fast.dec(z, g), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(from_channels_last_2d(block_actual), block_expected, atol=1e-5, rtol=1e-4)
    # with autograd on, the fast path is not taken and gradients still flow
    z.requires_grad_(True)
    fast.dec(z, g).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_from_state_dict_skips_init_and_converts_half_weights():
    model = make_model().eval()
    half_state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    rebuilt = SynthesizerTrn.from_state_dict(TINY, half_state).eval()
    assert rebuilt.has_posterior
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in rebuilt.state_dict().values())
    assert half_state["enc_p.proj.weight"].dtype == torch.float16  # caller's dict untouched
    expected = {k: v.float() for k, v in half_state.items()}
    assert all(torch.equal(rebuilt.state_dict()[k], expected[k]) for k in expected)
    inference = SynthesizerTrn.from_state_dict(TINY, half_state, with_posterior=False)
    assert not inference.has_posterior
    incomplete = {k: v for k, v in half_state.items() if not k.startswith("flow.flows.0.")}
    with pytest.raises(RuntimeError, match="flow.flows.0"):
        SynthesizerTrn.from_state_dict(TINY, incomplete)


def test_pointwise_convolutions_as_matmul_equal_library_conv():
    torch.manual_seed(0)
    x = torch.randn(3, 12, 17)
    plain, normed = Conv1d(12, 20, 1), WNConv1d(12, 20, 1)
    assert plain.pointwise_as_matmul and normed.pointwise_as_matmul
    assert not Conv1d(12, 20, 3).pointwise_as_matmul and not Conv1d(12, 20, 1, stride=2).pointwise_as_matmul
    expected = torch.nn.functional.conv1d(x, plain.weight, plain.bias)
    torch.testing.assert_close(plain(x), expected, atol=1e-5, rtol=1e-5)
    weight = normed.weight_g * normed.weight_v / normed.weight_v.norm(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(normed(x), torch.nn.functional.conv1d(x, weight, normed.bias), atol=1e-5, rtol=1e-5)
    plain(x).sum().backward()
    assert plain.weight.grad is not None and plain.bias.grad is not None


def test_relative_position_index_maps_against_loops():
    length = 5
    rel = torch.randn(2, 3, length, 2 * length - 1)
    absolute = _relative_to_absolute(rel)
    weights = torch.randn(2, 3, length, length)
    relative = _absolute_to_relative(weights)
    for i in range(length):
        for j in range(length):
            assert absolute[..., i, j].equal(rel[..., i, j - i + length - 1])
        for r in range(2 * length - 1):
            j = i + r - (length - 1)
            expected = weights[..., i, j] if 0 <= j < length else torch.zeros(2, 3)
            assert relative[..., i, r].equal(expected)



def test_fusion_probe_leaves_the_global_rng_alone():
    onednn_fusion_available.cache_clear()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    onednn_fusion_available()
    assert torch.equal(torch.rand(3), expected)


def test_decode_rejects_empty_inputs_clearly():
    model = make_model(with_posterior=False).eval()
    refer = torch.rand(1, SPEC_BINS, 25)
    with pytest.raises(ValueError, match="T25"):
        model.decode(torch.zeros(1, 1, 0, dtype=torch.long), torch.ones(1, 3, dtype=torch.long), refer)
    with pytest.raises(ValueError, match="phone ids"):
        model.decode(torch.zeros(1, 1, 4, dtype=torch.long), torch.ones(1, 0, dtype=torch.long), refer)


def test_relative_attention_gradients_are_correct():
    torch.manual_seed(0)
    attention = MultiHeadAttention(4, 4, 2, window_size=2).double()
    x = torch.randn(1, 4, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(1, 1, 5, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda inp: attention(inp, inp, mask), (x,))
    weights = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_absolute_to_relative, (weights,))
