"""Speaker-verification embedding (v2Pro/v2ProPlus): front end and ERes2NetV2 against the v2pro compat kit.

The kit's ``ref_sv.npz`` was computed by upstream (torchaudio resampler + its Kaldi fbank + ERes2NetV2
``forward3``) with the SV recipe weights (kit §3). Fast tests cover the front end, the layout, the recipe and
file handling on tiny networks; the full-size network runs only in the ``slow`` tests.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from GPT_SoVITS.checkpoints import CheckpointError
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_SV, write_sv
from GPT_SoVITS.dev.weight_recipe import compare_fingerprints, make_state_dict, make_sv_state_dict, recipe_tensor
from GPT_SoVITS.features.sv import (
    MIN_SAMPLES_32K,
    SV_PRETRAINED_NAME,
    embed_wave,
    fbank,
    kaldi_mel_banks,
    load_sv,
    resample_32k_to_16k,
    resample_kernel,
    speaker_embedding,
)
from GPT_SoVITS.models.eres2net import ERes2NetV2, ERes2NetV2Config
from tests.compat import COMPAT_DIR, json_file, reference, schema

KIT = COMPAT_DIR / "v2pro"
SV_SCHEMA = "v2pro/sv_eres2netv2"
EMB_ATOL = 2e-3  # kit §6: values up to 70; thread count alone moves them by 2.4e-4 (6e-4 padded)
FBANK_ATOL = 1e-3
WAVE_ATOL = 1e-6


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return reference("v2pro/ref_sv")


@pytest.fixture(scope="module")
def sv_weights() -> dict[str, torch.Tensor]:
    """The kit's SV weights (recipe + BatchNorm supplement), made once per module (~4 s)."""
    return make_sv_state_dict(schema(SV_SCHEMA))


def wave32k(ref: dict[str, np.ndarray], name: str) -> torch.Tensor:
    """The kit's int16 test wave as upstream reads it: int16 / 32768, shape [1, N]."""
    return torch.from_numpy(ref[f"wav32k_{name}_int16"].astype(np.float32) / 32768.0)


def meta_state_dict(entries: list) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape, *_ in entries}


# ------------------------------------------------------------------------------------------- the kit copy
def test_v2pro_kit_copy_is_intact() -> None:
    lines = (KIT / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 17
    for line in lines:
        digest, name = line.split()
        assert hashlib.sha256((KIT / name.lstrip("*")).read_bytes()).hexdigest() == digest, name


# ------------------------------------------------------------------------------------------- resampling
def test_resample_kernel_is_torchaudios_bit_for_bit(ref) -> None:
    kernel = resample_kernel()
    assert kernel.dtype == np.float32 and kernel.shape == (28,)
    assert np.array_equal(kernel, ref["torchaudio_resample_kernel_32k_to_16k"])


@pytest.mark.parametrize("name", ["A", "B"])
def test_16k_wave_matches_torchaudio(ref, name) -> None:
    expected = ref[f"wav16k_torchaudio_{name}"]
    out = resample_32k_to_16k(wave32k(ref, name))
    assert out.shape == expected.shape  # ceil(N/2): B has an odd length (108801 → 54401)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=WAVE_ATOL)


def test_resampler_is_the_fir_at_stride_two_with_zeros_outside() -> None:
    """An impulse at 32 kHz sample p comes out as the taps k[p − 2j + 13] (nothing wraps or leaks)."""
    kernel = resample_kernel()
    for length, position in ((41, 0), (41, 20), (41, 40), (40, 7)):
        impulse = torch.zeros(1, length)
        impulse[0, position] = 1.0
        out = resample_32k_to_16k(impulse)[0].numpy()
        assert out.shape == ((length + 1) // 2,)
        expected = [kernel[position - 2 * j + 13] if 0 <= position - 2 * j + 13 < 28 else 0.0
                    for j in range(out.shape[0])]
        np.testing.assert_array_equal(out, np.asarray(expected, dtype=np.float32))


def test_resampler_rows_are_independent(ref) -> None:
    a, b = wave32k(ref, "A")[:, :5001], wave32k(ref, "B")[:, :5001]
    batch = resample_32k_to_16k(torch.cat((a, b)))
    torch.testing.assert_close(batch[1:], resample_32k_to_16k(b), rtol=0, atol=1e-7)


# ------------------------------------------------------------------------------------------------- fbank
@pytest.mark.parametrize("name", ["A", "B", "C"])
def test_fbank_matches_upstream(ref, name) -> None:
    expected = ref[f"fbank_{name}"]
    feats = fbank(resample_32k_to_16k(wave32k(ref, name)))
    assert feats.shape == expected.shape  # 298, 338, 158 frames: 1 + (N16 − 400) // 160
    np.testing.assert_allclose(feats.numpy(), expected, rtol=0, atol=FBANK_ATOL)


def test_fbank_frame_count_and_short_input() -> None:
    for samples, frames in ((400, 1), (559, 1), (560, 2), (16000, 98)):
        assert fbank(0.1 * torch.ones(samples).sin()).shape == (1, frames, 80)
    with pytest.raises(ValueError, match="too short"):
        fbank(torch.zeros(399))


def test_fbank_of_silence_is_the_log_floor() -> None:
    assert torch.equal(fbank(torch.zeros(1, 800)), torch.full((1, 3, 80), float(np.log(np.float32(1.1920929e-7)))))


def test_mel_banks_are_kaldi_triangles() -> None:
    banks = kaldi_mel_banks().double()
    assert banks.shape == (80, 257) and banks.dtype == torch.float64
    assert torch.all(banks[:, -1] == 0) and torch.all(banks >= 0) and float(banks.max()) <= 1.0
    peaks = banks.argmax(dim=1)
    assert torch.all(peaks[1:] >= peaks[:-1])  # centres rise with the band index
    freqs = torch.arange(256) * 31.25
    assert float(banks[:, :-1][:, freqs < 20].sum()) == 0.0  # nothing below low_freq
    # the first band's left edge is 20 Hz and the last band's right edge 8000 Hz: bins 1 and 255 are inside
    assert banks[0, 1] > 0 and banks[-1, 255] > 0


# ------------------------------------------------------------------------------------------ recipe and layout
def test_sv_recipe_matches_the_kit_fingerprints(sv_weights) -> None:
    fingerprints = json_file("v2pro/weights_fingerprints_v2pro.json")
    assert len(sv_weights) == 1001
    assert compare_fingerprints(sv_weights, fingerprints["sv_eres2netv2"]) == []
    assert all(sv_weights[key].dtype == torch.long for key in sv_weights if key.endswith("num_batches_tracked"))
    # the bare recipe: the supplement's 314 BatchNorm tensors recomputed without it, the rest unchanged
    raw, replaced = {}, 0
    for key, shape, _dtype, _kind, module_class in schema(SV_SCHEMA)["entries"]:
        raw[key] = sv_weights[key]
        if module_class.endswith("BatchNorm2d") and key.endswith((".weight", ".running_var")):
            raw[key], replaced = recipe_tensor(key, shape, module_class).half().float(), replaced + 1
    assert replaced == 314
    assert compare_fingerprints(raw, fingerprints["sv_eres2netv2_raw_recipe"]) == []


def test_bare_recipe_of_a_small_schema_is_make_state_dict() -> None:
    entries = [entry for entry in schema(SV_SCHEMA)["entries"] if entry[0].startswith(("conv1.", "bn1."))]
    small = {"entries": entries, "int64_buffers": [["bn1.num_batches_tracked", [], "int64", "buffer", "BN"]]}
    raw, sv = make_state_dict(small), make_sv_state_dict(small)
    assert torch.equal(sv["conv1.weight"], raw["conv1.weight"]) and torch.equal(sv["bn1.bias"], raw["bn1.bias"])
    assert not torch.equal(sv["bn1.weight"], raw["bn1.weight"]) and float(sv["bn1.running_var"].min()) > 0.9
    assert sv["bn1.num_batches_tracked"].item() == 0


def test_state_dict_layout_matches_schema() -> None:
    with torch.device("meta"):
        model = ERes2NetV2()
    state = model.state_dict()
    sv_schema = schema(SV_SCHEMA)
    floats = [(k, tuple(v.shape)) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    assert floats == [(k, tuple(shape)) for k, shape, *_ in sv_schema["entries"]]
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert counters == [entry[0] for entry in sv_schema["int64_buffers"]]
    assert sum(p.numel() for p in model.parameters()) == sv_schema["num_parameters"]
    assert model.embedding_dim == 20480


def test_config_is_inferred_from_the_schema_shapes() -> None:
    cfg = ERes2NetV2Config.from_state_dict(meta_state_dict(schema(SV_SCHEMA)["entries"]))
    assert cfg == ERes2NetV2Config()
    assert (cfg.embedding_dim, cfg.block_width(0), cfg.block_width(3)) == (20480, 24, 192)


@pytest.mark.parametrize("cfg", [TINY_SV, ERes2NetV2Config(m_channels=16, base_width=26, scale=3, expansion=2,
                                                           num_blocks=(1, 2, 1, 1), feat_dim=40)])
def test_config_inference_round_trips(cfg) -> None:
    with torch.device("meta"):
        model = ERes2NetV2(cfg)
    assert ERes2NetV2Config.from_state_dict(model.state_dict()) == cfg


# ------------------------------------------------------------------------------------ tiny networks, files
@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    return write_sv(tmp_path_factory.mktemp("sv") / SV_PRETRAINED_NAME, seed=3)


@pytest.fixture(scope="module")
def tiny(tiny_file) -> ERes2NetV2:
    return load_sv(tiny_file)


def test_tiny_round_trip_infers_the_config(tiny, tiny_file, ref) -> None:
    assert tiny.config == TINY_SV and not tiny.training and tiny.prepared
    emb = embed_wave(tiny, ref["wav32k_A_int16"][0])
    assert emb.shape == (1, TINY_SV.embedding_dim) == (1, 1280) and emb.dtype == torch.float32
    assert torch.isfinite(emb).all() and float(emb.std()) > 0
    # the prepared (BatchNorm-folded, channels-last) network computes what the plain one does
    plain = ERes2NetV2.from_state_dict(torch.load(tiny_file, weights_only=True))
    assert not plain.prepared and not plain.training
    with torch.no_grad():
        feats = fbank(resample_32k_to_16k(wave32k(ref, "A")))
        torch.testing.assert_close(tiny(feats), plain(feats), rtol=1e-4, atol=1e-4)


def test_embed_wave_accepts_int16_floats_and_tensors(tiny, ref) -> None:
    pcm = ref["wav32k_C_int16"][0]
    from_pcm = embed_wave(tiny, pcm)
    assert torch.equal(from_pcm, embed_wave(tiny, pcm.astype(np.float32) / 32768.0))
    assert torch.equal(from_pcm, embed_wave(tiny, wave32k(ref, "C")[0]))
    assert torch.equal(from_pcm, embed_wave(tiny, torch.from_numpy(pcm)))
    assert torch.equal(from_pcm, speaker_embedding(tiny, wave32k(ref, "C")))


def test_batch_rows_are_embedded_as_given(tiny, ref) -> None:
    a, b = wave32k(ref, "A"), wave32k(ref, "B")[:, : 96000]
    batch = speaker_embedding(tiny, torch.cat((a, b)))
    assert batch.shape == (2, 1280)
    torch.testing.assert_close(batch[1:], speaker_embedding(tiny, b), rtol=1e-5, atol=1e-5)
    # zero padding is not neutral: it joins the time average
    c = wave32k(ref, "C")
    padded = speaker_embedding(tiny, torch.cat((a, F.pad(c, (0, a.shape[1] - c.shape[1])))))[1]
    alone = speaker_embedding(tiny, c)[0]
    assert float((padded - alone).norm() / alone.norm()) > 0.01


def test_embedding_input_errors(tiny) -> None:
    with pytest.raises(ValueError, match="mono"):
        embed_wave(tiny, np.zeros((2, 32000), dtype=np.float32))
    with pytest.raises(ValueError, match="too short"):
        embed_wave(tiny, np.zeros(MIN_SAMPLES_32K - 1, dtype=np.float32))
    assert embed_wave(tiny, np.zeros(MIN_SAMPLES_32K, dtype=np.float32)).shape == (1, 1280)


def test_load_without_batch_counters_and_in_legacy_format(tiny_file, tiny, tmp_path, ref) -> None:
    state = torch.load(tiny_file, weights_only=True)
    expected = embed_wave(tiny, ref["wav32k_C_int16"][0])
    bare = tmp_path / "bare.ckpt"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, bare)
    legacy = tmp_path / "legacy.ckpt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    half = tmp_path / "half.ckpt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, half)
    for path in (bare, legacy):
        assert torch.equal(embed_wave(load_sv(path), ref["wav32k_C_int16"][0]), expected)
    from_half = embed_wave(load_sv(half), ref["wav32k_C_int16"][0])
    assert from_half.dtype == torch.float32
    torch.testing.assert_close(from_half, expected, rtol=2e-2, atol=2e-2)


def test_from_state_dict_is_strict(tiny_file) -> None:
    state = torch.load(tiny_file, weights_only=True)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        ERes2NetV2.from_state_dict({**state, "pool.weight": torch.zeros(1)})
    del state["seg_1.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        ERes2NetV2.from_state_dict(state)


def test_cpu_half_request_runs_in_float32(tiny_file) -> None:
    model = load_sv(tiny_file, dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float32


# ------------------------------------------------------------------------------------------ wrong files
def test_missing_file_says_what_it_is_and_where_to_get_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="speaker-verification model") as info:
        load_sv(tmp_path / SV_PRETRAINED_NAME)
    assert "huggingface.co/lj1995/GPT-SoVITS" in str(info.value)


def test_corrupt_files_are_refused_clearly(tiny_file, tmp_path) -> None:
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_file.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_sv(truncated)
    text = tmp_path / "notes.ckpt"
    text.write_text("not a model")
    with pytest.raises(CheckpointError, match="not a PyTorch model file"):
        load_sv(text)


def test_other_model_files_are_refused_clearly(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not the speaker-verification model.*GPT or SoVITS"):
        load_sv(COMPAT_DIR / "example_sovits_tiny.pth")
    tensor = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="not the speaker-verification model"):
        load_sv(tensor)


def test_wrong_shapes_are_refused_clearly(tiny_file, tmp_path) -> None:
    state = torch.load(tiny_file, weights_only=True)
    state["layer2.0.conv3.weight"] = state["layer2.0.conv3.weight"][:, :-1]
    broken = tmp_path / "broken.ckpt"
    torch.save(state, broken)
    with pytest.raises(CheckpointError, match="do not form an ERes2NetV2.*layer2.0.conv3.weight"):
        load_sv(broken)
    del state["fuse34.local_att.0.weight"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    broken.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="not the speaker-verification model"):
        load_sv(broken)


# ---------------------------------------------------------------------------------- full size (slow)
@pytest.fixture(scope="module")
def exact(sv_weights) -> ERes2NetV2:
    """Upstream's computation op for op (BatchNorm not folded, default layout)."""
    return ERes2NetV2.from_state_dict(sv_weights)


@pytest.fixture(scope="module")
def loaded(sv_weights, tmp_path_factory) -> ERes2NetV2:
    """What users get: the recipe as an official-format file (no counters) through :func:`load_sv`."""
    path = tmp_path_factory.mktemp("sv_full") / SV_PRETRAINED_NAME
    path.parent.mkdir(parents=True)
    torch.save({k: v for k, v in sv_weights.items() if not k.endswith("num_batches_tracked")}, path)
    model = load_sv(path)
    path.unlink()
    return model


@pytest.mark.slow
def test_full_size_loads_strictly_with_counters(sv_weights, exact) -> None:
    assert exact.config == ERes2NetV2Config()
    state = exact.state_dict()
    assert set(state) == set(sv_weights) and len(state) == 1001
    assert all(torch.equal(state[k], v) for k, v in sv_weights.items())


@pytest.mark.slow
def test_embedding_from_the_kit_fbank_matches(exact, ref) -> None:
    """The network alone on upstream's own fbank (C; A is checked in the padded batch below)."""
    with torch.no_grad():
        emb = exact(torch.from_numpy(ref["fbank_C"]))
    np.testing.assert_allclose(emb.numpy(), ref["emb_torchaudio_C"], rtol=0, atol=EMB_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["A", "B", "C"])
def test_embedding_from_the_wave_matches_upstream(loaded, ref, name) -> None:
    """The whole path users run: load_sv's prepared network on the kit's 32 kHz waves."""
    emb = speaker_embedding(loaded, wave32k(ref, name))
    assert emb.shape == (1, 20480) and emb.dtype == torch.float32
    np.testing.assert_allclose(emb.numpy(), ref[f"emb_torchaudio_{name}"], rtol=0, atol=EMB_ATOL)


@pytest.mark.slow
def test_padded_batch_behaves_as_upstream(exact, ref) -> None:
    """Kit §4: C's 16 kHz wave zero-padded to A's length and embedded in one batch with A."""
    a16, c16 = resample_32k_to_16k(wave32k(ref, "A")), resample_32k_to_16k(wave32k(ref, "C"))
    batch = torch.cat((a16, F.pad(c16, (0, a16.shape[1] - c16.shape[1]))))
    with torch.no_grad():
        emb = exact(fbank(batch))
    np.testing.assert_allclose(emb[1:].numpy(), ref["emb_padded_C"], rtol=0, atol=EMB_ATOL)
    np.testing.assert_allclose(emb[:1].numpy(), ref["emb_torchaudio_A"], rtol=0, atol=EMB_ATOL)
    alone = ref["emb_torchaudio_C"]
    assert np.linalg.norm(emb[1].numpy() - alone) / np.linalg.norm(alone) > 0.3  # the kit measured 42 %
