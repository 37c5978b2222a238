"""bfloat16 on the CPU: feature detection and its fallbacks, the bfloat16 SoVITS decoder's audio against the
float32 decoder's (within the bound docs/models.md states), and the engine's ``cpu_bf16`` option."""

from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from GPT_SoVITS.infer import TTS, Reference, SynthesisOptions
from GPT_SoVITS.infer.components import load_model_pair
from GPT_SoVITS.infer.flags import add_device_flags
from GPT_SoVITS.models import cpu_features
from GPT_SoVITS.models.cpu_features import fast_bf16_features, has_fast_bf16, use_cpu_bf16
from GPT_SoVITS.models.sovits import BF16_WINDOW_FRAMES, SoVITSConfig, SynthesizerTrn
from tests.compat import recipe_weights, reference
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights
from tests.unit.test_sovits_model import SPEC_BINS, TINY, make_model

#: The stated bound (docs/models.md): bfloat16-decoder audio minus float32 audio, relative to the float32 peak.
MAX_REL = 0.04
RMS_REL = 0.01


def _relative_difference(audio: torch.Tensor, reference_audio: torch.Tensor) -> tuple[float, float]:
    diff = (audio.double() - reference_audio.double()).abs()
    peak = float(reference_audio.abs().max())
    return float(diff.max()) / peak, float(diff.pow(2).mean().sqrt()) / peak


# ------------------------------------------------------------------------------------------------- detection


def test_features_come_from_the_capability_dict() -> None:
    assert fast_bf16_features({"amx_bf16": True, "avx512_bf16": False, "avx2": True}) == ("amx_bf16",)
    assert fast_bf16_features({"amx_bf16": True, "avx512_bf16": True}) == ("amx_bf16", "avx512_bf16")
    assert not has_fast_bf16({"avx512_f": True, "avx2": True})  # AVX-512 without its BF16 extension
    assert not has_fast_bf16({})


def test_detection_falls_back_to_the_older_probes_then_to_no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch._C._cpu, "_get_cpu_capability", raising=False)  # a torch without the dict
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert fast_bf16_features() == ("avx512_bf16",)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert fast_bf16_features() == ()  # nothing to ask: no fast bf16, and no error
    assert use_cpu_bf16("auto") is False


def test_a_failing_probe_counts_as_no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict:
        raise RuntimeError("cpuinfo failed")

    monkeypatch.setattr(cpu_features, "_capability_from_torch", broken)
    assert not has_fast_bf16()
    assert use_cpu_bf16("auto") is False
    assert use_cpu_bf16("on") is True  # asked for explicitly: honoured even without native support


def test_this_torch_answers_the_question() -> None:
    """On the real torch the probe runs and agrees with torch's own per-feature helpers where they exist."""
    features = fast_bf16_features()
    if hasattr(torch.cpu, "_is_avx512_bf16_supported"):
        assert ("avx512_bf16" in features) == bool(torch.cpu._is_avx512_bf16_supported())


def test_option_resolution() -> None:
    fast, slow = {"amx_bf16": True}, {"avx2": True}
    assert use_cpu_bf16("auto", "cpu", fast) and not use_cpu_bf16("auto", "cpu", slow)
    # AVX-512-BF16 without AMX: native bfloat16, but unmeasured, so auto stays float32 ("on" still works)
    assert not use_cpu_bf16("auto", "cpu", {"avx512_bf16": True}) and use_cpu_bf16("on", "cpu", {"avx512_bf16": True})
    assert use_cpu_bf16("on", "cpu", slow) and not use_cpu_bf16("off", "cpu", fast)
    assert not use_cpu_bf16("on", "cuda", fast) and not use_cpu_bf16("auto", "cuda:1", fast)  # GPUs: --half
    with pytest.raises(ValueError, match="cpu_bf16"):
        use_cpu_bf16("yes")


# ------------------------------------------------------------------------------------------- the decoder


def _decode_inputs(seed: int, tokens: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, TINY.codebook_size, (1, 1, tokens), generator=g),
            torch.randint(0, TINY.n_symbols, (1, 12), generator=g), torch.rand(1, SPEC_BINS, 30, generator=g))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bf16_decoder_audio_stays_within_the_bound_of_float32(seed: int) -> None:
    fp32 = make_model(seed, with_posterior=False).prepare_for_inference()
    bf16 = copy.deepcopy(fp32).use_bf16_decoder()
    assert bf16.bf16_decoder and not fp32.bf16_decoder
    assert bf16.dec.resblocks[0].convs1[0].weight.dtype == torch.bfloat16
    assert bf16.dec.conv_post.weight.dtype == torch.float32  # the output convolution stays float32
    assert bf16.flow.flows[0].enc.in_layers[0].weight.dtype == torch.float32  # so do the flow and encoders
    codes, text, refer = _decode_inputs(seed)
    expected = fp32.decode(codes, text, refer, noise_scale=0.0)
    audio = bf16.decode(codes, text, refer, noise_scale=0.0)
    assert audio.dtype == torch.float32 and audio.shape == expected.shape
    max_rel, rms_rel = _relative_difference(audio, expected)
    assert 0 < max_rel <= MAX_REL and rms_rel <= RMS_REL  # > 0: bfloat16 really ran
    # deterministic: the same input gives the same bfloat16 audio again
    assert torch.equal(bf16.decode(codes, text, refer, noise_scale=0.0), audio)


def test_bf16_decoder_halves_its_weight_memory_and_applies_once() -> None:
    model = make_model(0, with_posterior=False).prepare_for_inference()

    def decoder_bytes() -> int:
        tensors = [*model.dec.parameters(), *model.dec.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    before = decoder_bytes()
    model.use_bf16_decoder()
    after = decoder_bytes()
    post = model.dec.conv_post.weight.numel() * 4
    assert after - post == pytest.approx((before - post) / 2)
    kernel = model.dec.resblocks[0].convs1[0].folded_weight_2d  # the cached kernel follows, still channels-last
    assert kernel.dtype == torch.bfloat16 and kernel.is_contiguous(memory_format=torch.channels_last)
    model.use_bf16_decoder()  # a second call changes nothing
    assert decoder_bytes() == after


def test_unprepared_model_is_prepared_first() -> None:
    model = make_model(0, with_posterior=False).eval()
    codes, text, refer = _decode_inputs(3, tokens=10)
    expected = model.decode(codes, text, refer, noise_scale=0.0)
    model.use_bf16_decoder()
    assert model.dec.fast_cpu_inference and "weight_g" not in dict(model.dec.ups[0].named_parameters())
    max_rel, rms_rel = _relative_difference(model.decode(codes, text, refer, noise_scale=0.0), expected)
    assert max_rel <= MAX_REL and rms_rel <= RMS_REL


@pytest.mark.slow
def test_full_size_bf16_decoder_stays_within_the_bound_of_the_kit_reference() -> None:
    """Upstream's float32 output for the kit's v2 decode case against our bfloat16 decoder (full-size weights)."""
    ref = reference("ref_sovits_v2")
    spec = torch.from_numpy(reference("ref_spectrogram")["spec"])
    codes, text = torch.from_numpy(ref["decode_codes"]), torch.from_numpy(ref["decode_phone_ids"])
    model = SynthesizerTrn.from_state_dict(SoVITSConfig(), recipe_weights("sovits_v2_train"), False)
    model.use_bf16_decoder()
    audio = model.decode(codes, text, [spec], noise_scale=0.0)
    max_rel, rms_rel = _relative_difference(audio, torch.from_numpy(ref["decode_out"]))
    assert max_rel <= MAX_REL and rms_rel <= RMS_REL


# ------------------------------------------------------------------------------------- decoding in windows


def _prepared_decoder(resblock: str = "1", seed: int = 0):
    torch.manual_seed(seed)
    model = SynthesizerTrn(dataclasses.replace(TINY, resblock=resblock), with_posterior=False)
    return model.prepare_for_inference().dec


def _decoder_input(frames: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, TINY.inter_channels, frames, generator=g),
            torch.randn(batch, TINY.gin_channels, 1, generator=g))


def test_context_covers_the_measured_receptive_field() -> None:
    """Changing one input frame changes output samples no further away than context_frames() frames."""
    for resblock in ("1", "2"):
        dec = _prepared_decoder(resblock)
        z, g = _decoder_input(80)
        with torch.no_grad():
            base = dec(z, g)[0, 0]
            z[:, :, 40] += 1.0
            changed = ((dec(z, g)[0, 0] - base).abs() > 1e-7).nonzero().flatten()
        reach = max(40 * dec.hop - int(changed.min()), int(changed.max()) - (41 * dec.hop - 1))
        assert 0 < reach <= dec.context_frames() * dec.hop


@pytest.mark.parametrize("resblock", ["1", "2"])
@pytest.mark.parametrize("frames", [3, 8, 9, 16, 37])
def test_windowed_decoding_equals_one_pass_up_to_rounding(resblock: str, frames: int) -> None:
    """Shorter than a window, whole windows, one frame over, several windows: the audio, both ends included,
    is the single pass's; a batch's items are decoded with their own style vectors."""
    dec = _prepared_decoder(resblock)
    z, g = _decoder_input(frames, batch=2)
    with torch.no_grad():
        expected = dec(z, g)
        dec.window = ((8, 3), dec.context_frames())
        audio = dec(z, g)
    assert audio.shape == expected.shape == (2, 1, frames * dec.hop)
    assert float((audio - expected).abs().max()) < 1e-5


def test_windows_too_narrow_for_the_receptive_field_change_the_audio() -> None:
    """The equality above depends on the context: one frame of it is not enough (so the check can fail)."""
    dec = _prepared_decoder()
    z, g = _decoder_input(37)
    with torch.no_grad():
        expected = dec(z, g)
        dec.window = ((8,), 1)
        assert float((dec(z, g) - expected).abs().max()) > 1e-4  # 10x the equality tolerance above


def test_windows_have_a_few_fixed_shapes_whatever_the_length() -> None:
    """What makes oneDNN build its bfloat16 primitives once: the decoder's layers see one shape per window size."""
    model = make_model(0, with_posterior=False).use_bf16_decoder(windows=(8, 3))
    dec = model.dec
    shapes: set[tuple[int, ...]] = set()
    hook = dec.conv_pre.register_forward_hook(lambda _m, args, _out: shapes.add(tuple(args[0].shape)))
    try:
        with torch.no_grad():
            for frames in (2, 5, 8, 21, 40, 41):
                dec(*_decoder_input(frames, batch=2))
    finally:
        hook.remove()
    context = dec.context_frames()
    assert shapes == {(1, TINY.inter_channels, 8 + 2 * context), (1, TINY.inter_channels, 3 + 2 * context)}


def test_window_plan_covers_the_input_at_the_least_work() -> None:
    dec = make_model(0, with_posterior=False).dec
    context = dec.context_frames()
    sizes = (128, 32)

    def work(plan: list[int]) -> int:
        return sum(size + 2 * context for size in plan)

    assert dec.window_plan(256, sizes, context) == [128, 128]  # whole large windows: nothing else
    assert dec.window_plan(20, sizes, context) == [32]  # a short streamed chunk: one small window
    assert dec.window_plan(150, sizes, context) == [128, 32]
    for frames in range(1, 400, 7):
        plan = dec.window_plan(frames, sizes, context)
        assert frames <= sum(plan) < frames + 128
        assert work(plan) <= work([128] * -(-frames // 128))  # never more than large windows alone


def test_window_choice_of_the_bf16_decoder() -> None:
    model = make_model(0, with_posterior=False)
    assert model.use_bf16_decoder().dec.window == (BF16_WINDOW_FRAMES, model.dec.context_frames())
    assert model.use_bf16_decoder(windows=[4, 16]).dec.window == ((16, 4), model.dec.context_frames())
    assert model.use_bf16_decoder(windows=None).dec.window is None
    for bad in ((), (8, 0)):
        with pytest.raises(ValueError, match="windows"):
            model.use_bf16_decoder(windows=bad)


def test_warm_up_decodes_one_window_of_each_size() -> None:
    model = make_model(0, with_posterior=False)
    calls: list[tuple[int, ...]] = []
    hook = model.dec.conv_pre.register_forward_hook(lambda _m, args, _out: calls.append(tuple(args[0].shape)))
    try:
        model.use_bf16_decoder(windows=(8, 3), warm_up=True)
    finally:
        hook.remove()
    context = model.dec.context_frames()
    assert sorted(c[-1] for c in calls) == [3 + 2 * context, 8 + 2 * context]


# ---------------------------------------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bf16")
    gpt, sovits = save_tiny_weights(root, seed=0, name="a")
    _, sovits_b = save_tiny_weights(root, seed=1, name="b")
    return {"gpt": gpt, "sovits": sovits, "sovits_b": sovits_b, "ref": reference_wav(root / "ref.wav")}


def _engine(files: dict[str, Path], cpu_bf16: str) -> TTS:
    return TTS(load_model_pair(files["gpt"], files["sovits"]), ToySSL(), CharFeaturizer(), max_new_tokens=20,
               cpu_bf16=cpu_bf16)


def test_engine_option_switches_the_decoder_and_keeps_audio_within_the_bound(files) -> None:
    off, on = _engine(files, "off"), _engine(files, "on")
    assert not off.bf16_decoder and not off.models.sovits.bf16_decoder
    assert on.bf16_decoder and on.models.sovits.bf16_decoder
    ref = Reference(files["ref"], "这是参考文本。", "all_zh")
    opts = SynthesisOptions(seed=5, text_split="cut0", pause=0.0)
    expected = off.synthesize_detailed("今天天气很好。", "zh", ref, opts)
    result = on.synthesize_detailed("今天天气很好。", "zh", ref, opts)
    # the GPT stays float32, so the same seed gives the same tokens; only the decoder's rounding differs
    assert result.semantic == expected.semantic
    assert result.audio.dtype == np.float32 and result.audio.shape == expected.audio.shape
    max_rel, rms_rel = _relative_difference(torch.from_numpy(result.audio), torch.from_numpy(expected.audio))
    assert 0 < max_rel <= MAX_REL and rms_rel <= RMS_REL
    np.testing.assert_array_equal(on.synthesize("今天天气很好。", "zh", ref, opts)[1], result.audio)


def test_engine_applies_the_choice_to_a_switched_sovits(files) -> None:
    on = _engine(files, "on")
    on.set_sovits(files["sovits_b"])
    assert on.models.sovits.bf16_decoder
    off = _engine(files, "off")
    off.set_sovits(files["sovits_b"])
    assert not off.models.sovits.bf16_decoder


def test_engine_auto_follows_the_cpu(files, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_features, "_capability_from_torch", lambda: {"amx_bf16": True})
    assert _engine(files, "auto").models.sovits.bf16_decoder
    monkeypatch.setattr(cpu_features, "_capability_from_torch", lambda: {"avx2": True})
    monkeypatch.setattr(cpu_features, "_flags_from_torch", lambda: {})
    assert not _engine(files, "auto").models.sovits.bf16_decoder


def test_cpu_bf16_flag() -> None:
    parser = argparse.ArgumentParser()
    add_device_flags(parser)
    assert parser.parse_args([]).cpu_bf16 == "auto"  # the engine default (CPU_BF16), see docs/models.md
    assert parser.parse_args(["--cpu-bf16", "auto"]).cpu_bf16 == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["--cpu-bf16", "maybe"])
