"""SoVITS v3/v4 on tiny configs (shapes, sampler, training step, LoRA, files) and the full-size key layouts
(built on the meta device, so no weights are allocated)."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from GPT_SoVITS.checkpoints import CheckpointError, safe_load
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_SOVITS_V4, TINY_VOCODER_V4, write_v4
from GPT_SoVITS.dev.weight_recipe import compare_fingerprints, make_state_dict
from GPT_SoVITS.features.spectrogram import MEL_V3, MEL_V4
from GPT_SoVITS.models import load_vocoder
from GPT_SoVITS.models.cfm import DiTConfig
from GPT_SoVITS.models.commons import fold_weight_norm
from GPT_SoVITS.models.lora import (
    LoraCFM,
    LoraLinear,
    add_lora,
    lora_release_checkpoint,
    lora_release_keys,
    lora_release_weights,
    merge_lora_release,
    prepare_lora_training,
    save_lora_release,
)
from GPT_SoVITS.models.sovits import UnsupportedVersionError
from GPT_SoVITS.models.sovits_v4 import (
    CFM_VARIANTS,
    INV_FREQ_KEY,
    SoVITSV3Config,
    SynthesizerTrnV3,
    chunk_bounds,
    prepare_reference,
    sample_mel_chunked,
    synthesize,
)
from GPT_SoVITS.models.vocoder import VocoderConfig, build_vocoder, vocoder_from_state_dict
from tests.compat import COMPAT_DIR, json_file, schema

KIT = COMPAT_DIR / "v4"
TINY = TINY_SOVITS_V4
N_MELS = 100


def tiny_model(seed: int = 0, cfg: SoVITSV3Config = TINY) -> SynthesizerTrnV3:
    torch.manual_seed(seed)
    return SynthesizerTrnV3(cfg).eval()


def inputs(n_codes: int = 20, n_phones: int = 9, spec_frames: int = 40, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 1024, (1, 1, n_codes), generator=g)
    phones = torch.randint(0, 732, (1, n_phones), generator=g)
    spec = torch.rand(1, 1025, spec_frames, generator=g)
    return codes, phones, spec


def _layout(state: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


def _schema_layout(name: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(e[0], tuple(e[1])) for e in schema(name)["entries"]]


def test_kit_copy_is_intact():
    import hashlib

    for line in (KIT / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((KIT / name.lstrip("*")).read_bytes()).hexdigest() == digest, name


# ---------------------------------------------------------------------------------------- full-size layouts


def test_full_size_layout_and_counts_match_schemas():
    with torch.device("meta"):
        model = SynthesizerTrnV3(SoVITSV3Config())
    assert _layout(model.state_dict()) == _schema_layout("v4/sovits_v4_infer")
    assert sum(p.numel() for p in model.parameters()) == schema("v4/sovits_v4_infer")["num_parameters"]
    assert sum(b.numel() for b in model.buffers()) == schema("v4/sovits_v4_infer")["num_buffer_elements_in_state_dict"]
    with torch.device("meta"):
        v3 = SynthesizerTrnV3(SoVITSV3Config(version="v3"))
    assert _layout(v3.state_dict()) == _layout(model.state_dict())  # kit §1.2: v3 is the same layout

    trainable = prepare_lora_training(model, 32)
    assert _layout(model.state_dict()) == _schema_layout("v4/sovits_v4_train")
    assert sum(p.numel() for p in model.parameters()) == schema("v4/sovits_v4_train")["num_parameters"]
    # kit §6.1: 253 trainable tensors (176 LoRA, 55 wns1, 18 ref_enc, 2 bridge, 2 linear_mel), 36,155,748 values
    assert len(trainable) == 253 and sum(p.numel() for p in trainable) == 36_155_748
    assert len(model.cfm.lora_layers()) == 88
    state = model.state_dict()
    release = {key: tuple(state[key].shape) for key in lora_release_keys(model)}
    expected = json_file("v4/example_sovits_v4_lora_tiny.config.json")["full_release_keys"]
    assert list(release.items()) == [(key, tuple(shape)) for key, shape in expected]


def test_full_size_vocoder_layout_matches_schema():
    with torch.device("meta"):
        vocoder = build_vocoder()
    assert fold_weight_norm(vocoder) == 95  # kit §1.1: 95 weight-normed modules before folding
    assert _layout(vocoder.state_dict()) == _schema_layout("v4/vocoder_v4")
    assert sum(p.numel() for p in vocoder.parameters()) == schema("v4/vocoder_v4")["num_parameters"]
    assert VocoderConfig.from_state_dict(vocoder.state_dict()) == VocoderConfig()
    assert VocoderConfig().hop_length * MEL_V4.frame_rate == VocoderConfig().sampling_rate


def test_variants_are_consistent():
    for variant in CFM_VARIANTS.values():
        # 50 Hz encoder frames × the upsampling factor give the mel frame rate of the variant's front end
        assert 50 * variant.upsample_factor == variant.frame_rate
        assert variant.chunk_frames - variant.max_prompt_frames >= variant.max_prompt_frames - 2  # 500 / 466 new
        assert variant.mask_factor >= 2 * variant.upsample_factor  # at speed 1 the wns1 mask covers every frame
    assert CFM_VARIANTS["v4"].mel is MEL_V4 and CFM_VARIANTS["v3"].mel is MEL_V3
    assert CFM_VARIANTS["v4"].output_sampling_rate == 480 * MEL_V4.frame_rate


def test_config_validation():
    with pytest.raises(UnsupportedVersionError):
        SoVITSV3Config(version="v5")
    with pytest.raises(ValueError, match="cond_dim"):
        dataclasses.replace(TINY, fea_channels=48)
    with pytest.raises(ValueError, match="conv_pos_groups"):
        DiTConfig(dim=40)
    upstream = TINY.to_upstream()
    assert upstream["model"]["version"] == "v4" and "dit" in upstream["model"]
    assert SoVITSV3Config.from_upstream(upstream) == TINY
    full = SoVITSV3Config(version="v3").to_upstream()
    assert "dit" not in full["model"] and SoVITSV3Config.from_upstream(full) == SoVITSV3Config(version="v3")


# ---------------------------------------------------------------------------------------------- tiny model


def test_decode_encp_shapes_and_masks():
    model = tiny_model()
    codes, phones, spec = inputs()
    fea, ge = model.decode_encp(codes, phones, spec)
    assert ge.shape == (1, 32, 1) and fea.shape == (1, 32, 80)  # 2·20 frames × 2
    again, _ = model.decode_encp(codes, phones, None, ge=ge)
    assert torch.equal(fea, again)
    slow, _ = model.decode_encp(codes, phones, None, ge=ge, speed=0.8)
    assert slow.shape[-1] == 2 * (int(40 / 0.8) + 1)  # 102 frames, the wns1 mask covers int(80 / 0.8) + 1 = 101
    assert slow[0, :, 101:].abs().max() == 0 and slow[0, :, 100].abs().max() > 0
    v3 = SynthesizerTrnV3(dataclasses.replace(TINY, version="v3"))
    v3.load_state_dict(model.state_dict())
    fea3, _ = v3.eval().decode_encp(codes, phones, spec)
    assert fea3.shape[-1] == math.floor(40 * 1.875)  # 75; the mask (int(3.875·20) = 77) covers all of it
    with pytest.raises(ValueError, match="reference spectrogram or a style vector"):
        model.decode_encp(codes, phones, None)


def test_cfm_sampler_holds_the_prompt_and_is_reproducible():
    model = tiny_model()
    mu = torch.randn(1, 50, 32)
    prompt = torch.randn(1, N_MELS, 20)
    noise = torch.randn(1, N_MELS, 50)
    out = model.cfm.inference(mu, torch.tensor([50]), prompt, 4, noise=noise)
    assert out.shape == (1, N_MELS, 50) and out[:, :, :20].abs().max() == 0 and torch.isfinite(out).all()
    assert torch.equal(out, model.cfm.inference(mu, torch.tensor([50]), prompt, 4, noise=noise))
    seeded = [model.cfm.inference(mu, torch.tensor([50]), prompt, 2, generator=torch.Generator().manual_seed(5))
              for _ in range(2)]
    assert torch.equal(*seeded)
    assert not torch.equal(out, model.cfm.inference(mu, torch.tensor([50]), prompt, 4, noise=noise + 0.1))
    guided = model.cfm.inference(mu, torch.tensor([50]), prompt, 4, inference_cfg_rate=0.7, noise=noise)
    assert not torch.equal(out, guided) and torch.isfinite(guided).all()
    with pytest.raises(ValueError, match="noise must be shaped"):
        model.cfm.inference(mu, torch.tensor([50]), prompt, 4, noise=noise[:, :, :40])


def test_sampler_schedule_matches_upstream():
    """Times 0, 1/8, … (accumulated as in upstream), the step size embedded once, text branch once."""
    model = tiny_model()
    times, steps, text_calls = [], [], []
    net = model.cfm.estimator
    net.time_embed.register_forward_pre_hook(lambda m, a: times.append(a[0].item()))
    net.d_embed.register_forward_pre_hook(lambda m, a: steps.append(a[0].item()))
    net.text_embed.register_forward_hook(lambda m, a, o: text_calls.append(o))
    model.cfm.inference(torch.randn(1, 30, 32), torch.tensor([30]), torch.randn(1, N_MELS, 10), 8)
    ref = np.load(KIT / "ref_cfm_v4.npz")
    np.testing.assert_array_equal(np.array(times, dtype=np.float32), ref["cfm_n8_t_values"])
    assert steps == [float(ref["cfm_n8_d_value"][0])] and len(text_calls) == 1


def test_attention_masks_padded_frames():
    """x_lens masks the keys and zeroes the rows of padded frames, so the valid frames attend as if unpadded."""
    model = tiny_model()
    attn = model.cfm.estimator.transformer_blocks[0].attn
    rotation = model.cfm.estimator.rotary_embed.rotation
    h = torch.randn(1, 24, 32, generator=torch.Generator().manual_seed(3))
    padded = torch.cat([h, torch.randn(1, 6, 32)], 1)
    with torch.no_grad():
        alone = attn(h, rotation(24))
        masked = attn(padded, rotation(30), torch.arange(30)[None] < 24)
    torch.testing.assert_close(masked[:, :24], alone, atol=1e-6, rtol=1e-5)
    assert masked[:, 24:].abs().max() == 0


def test_chunked_decode_and_synthesis_shapes():
    model = tiny_model()
    codes, phones, spec = inputs(n_codes=160)  # 640 frames of condition: longer than the 500-frame prompt limit
    ref_mel = torch.randn(1, N_MELS, 700) * 0.3
    prepared = prepare_reference(model, codes, phones, spec, ref_mel)
    assert prepared.frames == 500 and prepared.fea.shape == (1, 32, 500)
    full, _ = model.decode_encp(codes, phones, spec)
    assert torch.equal(prepared.fea, full[:, :, 140:640]) and torch.equal(prepared.mel, ref_mel[:, :, 140:640])

    target, target_phones, _ = inputs(n_codes=150, seed=2)  # 600 frames → chunks of 500 and 100
    fea, _ = model.decode_encp(target, target_phones, None, ge=prepared.ge)
    assert chunk_bounds(600, 500, 1000) == [(0, 500), (500, 600)]
    noise = [torch.randn(1, N_MELS, 1000), torch.randn(1, N_MELS, 600)]
    mel = sample_mel_chunked(model, prepared, fea, 2, noise=noise)
    assert mel.shape == (1, N_MELS, 600) and torch.isfinite(mel).all()
    with pytest.raises(ValueError, match="2 chunks need 2 noise tensors"):
        sample_mel_chunked(model, prepared, fea, 2, noise=noise[:1])
    vocoder = vocoder_from_state_dict(_folded_tiny_vocoder().state_dict())
    wave = synthesize(model, vocoder, prepared, target, target_phones, sample_steps=2, noise=noise)
    assert wave.shape == (600 * 480,) and wave.abs().max() <= 1
    again = synthesize(model, vocoder, prepared, target, target_phones, sample_steps=2,
                       generator=torch.Generator().manual_seed(0))
    assert again.shape == wave.shape and not torch.equal(again, wave)


def _folded_tiny_vocoder(seed: int = 0):
    torch.manual_seed(seed)
    vocoder = build_vocoder(TINY_VOCODER_V4)
    fold_weight_norm(vocoder)
    return vocoder.eval()


# ------------------------------------------------------------------------------------------------ training


def _training_batch(seed: int = 4):
    g = torch.Generator().manual_seed(seed)
    ssl = torch.randn(2, 768, 40, generator=g)
    spec = torch.rand(2, 1025, 40, generator=g)
    mel = torch.randn(2, N_MELS, 80, generator=g) * 0.3
    text = torch.randint(0, 732, (2, 7), generator=g)
    return ssl, spec, torch.tensor([40, 32]), mel, torch.tensor([80, 64]), text, torch.tensor([7, 5])


@pytest.mark.parametrize("use_grad_ckpt", [False, True])
def test_lora_training_step_is_finite_and_trains_only_the_right_tensors(use_grad_ckpt):
    model = tiny_model()
    trainable = prepare_lora_training(model, rank=4)
    model.train()
    frozen_before = model.cfm.estimator.transformer_blocks[0].ff.ff[2].weight.detach().clone()
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    torch.manual_seed(0)
    for _ in range(2):  # the second step also moves lora_A (B is zero at the start)
        optimizer.zero_grad()
        loss = model(*_training_batch(), use_grad_ckpt=use_grad_ckpt)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
        assert all(g is not None and torch.isfinite(g).all() for name, g in grads.items()
                   if not name.startswith("linear_mel."))  # linear_mel is in no forward pass (kit §6.1)
        optimizer.step()
    lora = model.cfm.lora_layers()["estimator.transformer_blocks.0.attn.to_q"]
    assert lora.lora_B["default"].weight.abs().sum() > 0
    assert model.ref_enc.fc.fc.weight.grad.abs().sum() > 0 and model.wns1.pre.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.enc_p.parameters())
    assert torch.equal(model.cfm.estimator.transformer_blocks[0].ff.ff[2].weight, frozen_before)
    assert model.cfm.estimator.transformer_blocks[0].ff.ff[2].weight.grad is None


def test_flow_matching_loss_targets():
    """Plain target x1 − x0 (a zero network scores E|x1 − x0|²); shortcut target = the detached network's mean
    velocity over two steps of size d (zero for a zero network), predicted at step size 2d."""
    model = tiny_model()
    model.train()
    cfm = model.cfm
    with torch.no_grad():
        for p in cfm.estimator.proj_out.parameters():
            p.zero_()
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(2, N_MELS, 60, generator=g) * 0.3
    mu = torch.randn(2, 32, 60, generator=g)
    lengths, prompts = torch.tensor([60, 50]), torch.tensor([20, 0])
    plain = cfm(x1, lengths, prompts, mu, shortcut_probability=0.0).item()
    assert 0.9 < plain < 1.3  # unit noise + mel std 0.3 → about 1.09
    steps = []
    handle = cfm.estimator.d_embed.register_forward_pre_hook(lambda m, a: steps.append(a[0].clone()))
    assert cfm(x1, lengths, prompts, mu, shortcut_probability=1.0).item() == 0.0
    handle.remove()
    first, second, trained = steps
    assert torch.equal(first, second) and torch.equal(trained, torch.where(first == 0, 2.0 ** -7, first) * 2)
    assert set((trained / 2).log2().round().tolist()) <= {-2.0, -3.0, -4.0, -5.0, -6.0, -7.0}


# -------------------------------------------------------------------------------------------------- LoRA


def _with_random_lora(model: SynthesizerTrnV3, rank: int = 4) -> LoraCFM:
    wrapped = add_lora(model, rank)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for layer in wrapped.lora_layers().values():
            layer.lora_B["default"].weight.normal_(0, 0.2, generator=g)
    return wrapped


def test_lora_forward_merge_and_release_agree():
    base_state = tiny_model().state_dict()
    model = tiny_model()
    model.bridge[0].bias.data += 0.5  # a fully trained module: must travel in the release file
    wrapped = _with_random_lora(model)
    mu, prompt, noise = torch.randn(1, 40, 32), torch.randn(1, N_MELS, 10), torch.randn(1, N_MELS, 40)
    lora_out = model.cfm.inference(mu, torch.tensor([40]), prompt, 3, noise=noise)
    assert isinstance(model.cfm.estimator.transformer_blocks[0].attn.to_q, LoraLinear)  # attribute passthrough
    assert all(k.startswith(("cfm.base_model.model.", "enc_p", "ref_enc", "ssl_proj", "quantizer", "bridge", "wns1",
                             "linear_mel")) for k in model.state_dict())

    release = lora_release_weights(model)
    assert all(v.dtype == torch.float16 for k, v in release.items() if "_codebook" not in k)
    assert not any(k.startswith(("enc_p.", "ssl_proj.")) or ".base_layer." in k for k in release)

    rebuilt = SynthesizerTrnV3.from_state_dict(TINY, base_state).eval()
    merge_lora_release(rebuilt, release, rank=4)
    assert _layout(rebuilt.state_dict()) == _layout(base_state)
    merged_out = rebuilt.cfm.inference(mu, torch.tensor([40]), prompt, 3, noise=noise)
    torch.testing.assert_close(merged_out, lora_out, atol=2e-3, rtol=0)  # fp16 release tensors
    assert torch.equal(rebuilt.bridge[0].bias, model.bridge[0].bias.half().float())

    plain_cfm = wrapped.merge_and_unload()
    assert not any(isinstance(m, LoraLinear) for m in plain_cfm.modules())
    exact = plain_cfm.inference(mu, torch.tensor([40]), prompt, 3, noise=noise)
    torch.testing.assert_close(exact, lora_out, atol=1e-5, rtol=1e-5)


def test_lora_release_file_round_trip(tmp_path):
    model = tiny_model()
    _with_random_lora(model, rank=4)
    checkpoint = lora_release_checkpoint(model, TINY.to_upstream(), epoch=2, step=10)
    path = save_lora_release(tmp_path / "tiny_e2_s10_l4.pth", checkpoint, model.variant.release_tag)
    assert path.read_bytes()[:2] == b"04"
    obj, tag = safe_load(path)
    assert tag == b"04" and obj["lora_rank"] == 4 and obj["info"] == "2epoch_10iteration"
    assert list(obj["weight"]) == lora_release_keys(model)
    assert SoVITSV3Config.from_upstream(obj["config"]) == TINY


def test_merge_rejects_bad_files():
    model = tiny_model()
    with pytest.raises(CheckpointError, match="none of the file's tensors"):
        merge_lora_release(model, {"dec.conv_pre.weight": torch.zeros(1)})
    key = "cfm.base_model.model.estimator.transformer_blocks.0.attn.to_q.lora_A.default.weight"
    with pytest.raises(CheckpointError, match="not its partner"):
        merge_lora_release(model, {key: torch.zeros(4, 32)})
    with pytest.raises(CheckpointError, match="bridge.0.bias"):
        merge_lora_release(model, {"bridge.0.bias": torch.zeros(3)})


def test_kit_lora_example_merges_like_upstream():
    """The kit's upstream-written release file: header, contents and the documented merge check (§6.3). The base
    model is the v4 recipe, materialised only for the tensors the file touches."""
    config = json_file("v4/example_sovits_v4_lora_tiny.config.json")
    obj, tag = safe_load(KIT / "example_sovits_v4_lora_tiny.pth")
    assert tag == b"04" and obj["lora_rank"] == 32 and obj["info"] == "1epoch_5iteration"
    assert obj["config"]["model"]["version"] == "v4" and obj["config"]["train"]["lora_rank"] == "32"
    removed = set(config["removed_keys_to_keep_file_small"])
    kept = [(k, tuple(s)) for k, s in config["full_release_keys"] if k not in removed]
    assert [(k, tuple(v.shape)) for k, v in obj["weight"].items()] == kept
    assert all(v.dtype == torch.float16 for v in obj["weight"].values())

    touched = ("bridge.", "linear_mel.", "cfm.estimator.rotary_embed.", "cfm.estimator.transformer_blocks.0.attn.",
               "cfm.estimator.transformer_blocks.1.attn.to_q.")
    base = make_state_dict(schema("v4/sovits_v4_infer"), prefixes=touched)
    with torch.device("meta"):
        model = SynthesizerTrnV3(SoVITSV3Config.from_upstream(obj["config"]))
    model.load_state_dict({k: v.clone() for k, v in base.items()}, strict=False, assign=True)
    merge_lora_release(model, obj["weight"], rank=obj["lora_rank"])

    to_q = model.cfm.estimator.transformer_blocks[0].attn.to_q.weight
    expected = config["merged_block0_to_q_weight_fingerprint"]
    assert compare_fingerprints({"to_q": to_q}, {"to_q": expected}) == []
    prefix = "cfm.base_model.model.estimator.transformer_blocks.0.attn.to_q."
    lora_a, lora_b = (obj["weight"][prefix + f"lora_{x}.default.weight"].float() for x in "AB")
    delta = lora_b @ lora_a
    assert torch.equal(to_q, base["cfm.estimator.transformer_blocks.0.attn.to_q.weight"] + delta)
    assert torch.equal(model.bridge[0].weight, obj["weight"]["bridge.0.weight"].float())
    assert torch.equal(model.cfm.estimator.transformer_blocks[1].attn.to_q.weight,
                       base["cfm.estimator.transformer_blocks.1.attn.to_q.weight"])  # no LoRA for it in the file


# ------------------------------------------------------------------------------------------------- files


def test_write_v4_round_trip(tmp_path):
    g_path, vocoder_path = write_v4(tmp_path, seed=3)
    assert g_path == tmp_path / "gsv-v4-pretrained" / "s2Gv4.pth" and vocoder_path.name == "vocoder.pth"
    obj, tag = safe_load(g_path)
    assert tag is None and set(obj) >= {"weight", "config"}
    cfg = SoVITSV3Config.from_upstream(obj["config"])
    assert cfg == TINY and all(v.dtype == torch.float16 for v in obj["weight"].values() if v.is_floating_point())
    loaded = SynthesizerTrnV3.from_upstream(obj["config"], obj["weight"]).eval()
    assert loaded.cfg == TINY
    assert SynthesizerTrnV3.from_upstream(obj["config"], obj["weight"], version="v3").variant.version == "v3"

    torch.manual_seed(3)
    original = SynthesizerTrnV3(TINY).eval()
    original.load_state_dict({k: v.half().float() for k, v in original.state_dict().items()})
    codes, phones, spec = inputs()
    noise = torch.randn(1, N_MELS, 80)

    def run(model: SynthesizerTrnV3) -> torch.Tensor:
        fea, _ = model.decode_encp(codes, phones, spec)
        return model.cfm.inference(fea.transpose(1, 2), torch.tensor([80]), torch.zeros(1, N_MELS, 10), 2, noise=noise)

    results = [run(original), run(loaded), run(loaded.prepare_for_inference())]
    torch.testing.assert_close(results[1], results[0], atol=0, rtol=0)
    torch.testing.assert_close(results[2], results[0], atol=1e-5, rtol=1e-5)  # folded weight norm

    plain = torch.load(vocoder_path, weights_only=True)
    assert not any(k.endswith(("weight_g", "weight_v")) for k in plain)
    vocoder = load_vocoder(vocoder_path)
    assert VocoderConfig.from_state_dict(plain) == TINY_VOCODER_V4
    mel = torch.randn(1, N_MELS, 12) - 5
    slow = vocoder_from_state_dict(plain)
    slow.fast_cpu_inference = False
    with torch.no_grad():
        fast_out, slow_out = vocoder(mel), slow(mel)
    assert fast_out.shape == (1, 1, 12 * 480)
    torch.testing.assert_close(fast_out, slow_out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs(dtype):
    model = SynthesizerTrnV3.from_state_dict(TINY, tiny_model().state_dict(), dtype=dtype).prepare_for_inference()
    codes, phones, spec = inputs()
    fea, ge = model.decode_encp(codes, phones, spec.to(dtype))
    out = model.cfm.inference(fea.transpose(1, 2), torch.tensor([80]), torch.randn(1, N_MELS, 10, dtype=dtype), 2)
    assert fea.dtype == ge.dtype == out.dtype == dtype and torch.isfinite(out).all()


def test_missing_rotary_table_is_computed():
    state = {k: v for k, v in tiny_model().state_dict().items() if k != INV_FREQ_KEY}
    model = SynthesizerTrnV3.from_state_dict(TINY, state)
    assert torch.equal(model.cfm.estimator.rotary_embed.inv_freq, 1.0 / 10000 ** (torch.arange(0, 16, 2) / 16))
    with pytest.raises(RuntimeError, match="Missing key"):
        SynthesizerTrnV3.from_state_dict(TINY, {k: v for k, v in state.items() if not k.startswith("bridge.")})


def test_unfolded_vocoder_state_dict_loads_too():
    torch.manual_seed(0)
    unfolded = build_vocoder(TINY_VOCODER_V4).eval()
    mel = torch.randn(1, N_MELS, 6) - 5
    with torch.no_grad():
        expected = unfolded(mel)
        got = vocoder_from_state_dict(unfolded.state_dict())(mel)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_load_vocoder_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocoder.pth"):
        load_vocoder(tmp_path / "gsv-v4-pretrained" / "vocoder.pth")
    g_path, _ = write_v4(tmp_path)
    with pytest.raises(CheckpointError, match="not the v4 vocoder"):
        load_vocoder(g_path)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is no zip file")
    with pytest.raises(CheckpointError):
        load_vocoder(junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv_pre.weight": torch.zeros(8, 100, 7)}, wrong)
    with pytest.raises(CheckpointError, match="residual blocks"):
        load_vocoder(wrong)
    truncated = tmp_path / "truncated.pth"
    buffer = io.BytesIO()
    torch.save(_folded_tiny_vocoder().state_dict(), buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    state.pop("conv_post.bias")
    torch.save(state, truncated)
    with pytest.raises(CheckpointError, match="conv_post.bias"):
        load_vocoder(truncated)
    evil = tmp_path / "evil.pth"

    class Evil:
        def __reduce__(self):
            return (print, ("unsafe",))

    torch.save({"conv_pre.weight": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_vocoder(evil)
