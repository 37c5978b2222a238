"""The synthesis engine with tiny random models: audio shape and length, caching, switching, streaming, checks."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from GPT_SoVITS.infer import (
    TTS,
    Cancelled,
    EmptyTextError,
    InvalidOptionError,
    ModelMismatchError,
    Reference,
    ReferenceAudioError,
    SynthesisOptions,
    SynthesisResult,
)
from GPT_SoVITS.infer.__main__ import build_parser
from GPT_SoVITS.infer.components import load_model_pair
from GPT_SoVITS.infer.flags import add_device_flags
from GPT_SoVITS.infer.streaming import ChunkStitcher
from GPT_SoVITS.infer.tts import DECODE_THREADS, SINGLE_REQUEST_DECODE_THREADS, bucket_batches
from GPT_SoVITS.models.sampling import SamplingOptions
from tests.conftest import tone_burst, write_audio
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights, tiny_pair

SAMPLES_PER_TOKEN = 1280  # 2 frames of 640 samples per 25 Hz token at speed 1
TEXT = "今天天气很好。我们去公园吧！"
MAX_TOKENS = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("infer")
    gpt, sovits = save_tiny_weights(root, seed=0, name="a")
    gpt_b, sovits_b = save_tiny_weights(root, seed=1, name="b")
    gpt_v1, sovits_v1 = save_tiny_weights(root, version="v1", seed=2, name="old")
    return {"gpt": gpt, "sovits": sovits, "gpt_b": gpt_b, "sovits_b": sovits_b, "gpt_v1": gpt_v1,
            "sovits_v1": sovits_v1, "ref": reference_wav(root / "ref.wav"),
            "ref2": reference_wav(root / "ref2.wav", seconds=5.0, freq=240.0)}


def make_tts(files: dict[str, Path] | None = None, **kwargs) -> TTS:
    pair = load_model_pair(files["gpt"], files["sovits"]) if files else tiny_pair()
    return TTS(pair, ToySSL(), CharFeaturizer(), max_new_tokens=kwargs.pop("max_new_tokens", MAX_TOKENS), **kwargs)


def ref_of(files: dict[str, Path], text: str = "这是参考文本。") -> Reference:
    return Reference(files["ref"], text, "all_zh")


def test_synthesize_gives_finite_32k_audio_whose_length_follows_the_tokens(files) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(seed=3, text_split="cut5", pause=0.25)
    result = tts.synthesize_detailed(TEXT, "zh", ref_of(files), opts)
    assert result.sample_rate == 32000
    assert result.audio.dtype == np.float32 and np.isfinite(result.audio).all()
    assert [s.text for s in result.sentences] == ["今天天气很好。", "我们去公园吧！"]
    for s in result.sentences:
        assert 11 <= s.n_tokens <= MAX_TOKENS  # EOS is blocked for 11 steps; the cap holds
        assert s.seconds == pytest.approx(s.n_tokens * SAMPLES_PER_TOKEN / 32000)
    pause = int(0.25 * 32000)
    assert len(result.audio) == sum(s.n_tokens * SAMPLES_PER_TOKEN + pause for s in result.sentences)
    assert float(np.abs(result.audio).max()) > 1e-4  # not silence
    assert float(np.abs(result.audio[-pause:]).max()) == 0.0  # trailing pause


def test_seed_makes_output_reproducible_and_unseeded_requests_report_their_seed(files) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(seed=11)
    _, a = tts.synthesize(TEXT, "zh", ref_of(files), opts)
    _, b = tts.synthesize(TEXT, "zh", ref_of(files), opts)
    np.testing.assert_array_equal(a, b)
    free = tts.synthesize_detailed(TEXT, "zh", ref_of(files), SynthesisOptions())
    again = tts.synthesize_detailed(TEXT, "zh", ref_of(files), SynthesisOptions(seed=free.seed))
    np.testing.assert_array_equal(again.audio, free.audio)


def test_speed_changes_length(files) -> None:
    tts = make_tts(files)
    slow = tts.synthesize_detailed("今天天气很好。", "zh", ref_of(files), SynthesisOptions(seed=5, pause=0))
    fast = tts.synthesize_detailed("今天天气很好。", "zh", ref_of(files), SynthesisOptions(seed=5, pause=0, speed=2.0))
    assert slow.sentences[0].n_tokens == fast.sentences[0].n_tokens
    assert len(fast.audio) < 0.6 * len(slow.audio)


def test_reference_features_are_cached_until_the_reference_changes(files, tmp_path: Path) -> None:
    tts = make_tts(files)
    ssl, text = tts.references.ssl, tts._text
    ref_path = reference_wav(tmp_path / "r.wav")
    ref = Reference(ref_path, "参考。", "all_zh")
    for _ in range(2):
        tts.synthesize("你好呀朋友。", "zh", ref, SynthesisOptions(seed=1))
    assert tts.references.computed == 1 and ssl.calls == 1
    tts.synthesize("你好呀朋友。", "zh", Reference(ref_path, "另一个参考。", "all_zh"), SynthesisOptions(seed=1))
    assert tts.references.computed == 2
    stat = ref_path.stat()
    os.utime(ref_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed on disk
    tts.synthesize("你好呀朋友。", "zh", ref, SynthesisOptions(seed=1))
    assert tts.references.computed == 3 and ssl.calls == 3
    calls_before = text.calls
    tts.synthesize("你好呀朋友。", "zh", Reference(ref_path, "", "all_zh", (files["ref2"],)), SynthesisOptions(seed=1))
    assert ssl.calls == 3  # no-reference-text mode needs no prompt tokens
    assert text.calls == calls_before + 1  # only the target text was featurized


def test_extra_references_change_the_timbre_only(files) -> None:
    tts = make_tts(files)
    plain = tts.references.get(ref_of(files), tts.models)
    mixed = tts.references.get(Reference(files["ref"], "这是参考文本。", "all_zh", (files["ref2"],)), tts.models)
    assert torch.equal(plain.codes, mixed.codes)
    assert plain.text.phones == mixed.text.phones
    assert not torch.allclose(plain.ge, mixed.ge)


def test_model_switching_reloads_and_v1_files_run_the_v1_pipeline(files) -> None:
    tts = make_tts(files)
    ref = ref_of(files)
    before = tts.synthesize_detailed(TEXT, "zh", ref, SynthesisOptions(seed=2))
    tts.set_gpt(files["gpt_b"])
    after_gpt = tts.synthesize_detailed(TEXT, "zh", ref, SynthesisOptions(seed=2))
    assert tts.models.gpt_path == files["gpt_b"]
    assert tts.references.computed == 2  # the cache is per model pair
    assert not np.array_equal(before.audio, after_gpt.audio)
    tts.set_sovits(files["sovits_v1"])
    assert tts.version == "v1"
    with pytest.raises(InvalidOptionError, match="not supported by v1"):
        tts.synthesize("안녕하세요.", "ko", ref)
    tts.set_gpt(files["gpt_v1"])
    _, audio = tts.synthesize(TEXT, "zh", ref, SynthesisOptions(seed=2))
    assert np.isfinite(audio).all() and audio.size > 0
    with pytest.raises(ModelMismatchError, match="same version"):
        tts.set_sovits(files["sovits"])  # v2 SoVITS with the v1 GPT (512 phone ids < 732)
    assert tts.version == "v1"
    tts.set_models(gpt=files["gpt"], sovits=files["sovits"])  # both at once
    assert tts.version == "v2" and tts.models.gpt_path == files["gpt"]


def test_failed_switch_keeps_the_old_models(files, tmp_path: Path) -> None:
    tts = make_tts(files)
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    pair = tts.models
    with pytest.raises((ValueError, FileNotFoundError)):
        tts.set_gpt(broken)
    with pytest.raises(ModelMismatchError):
        tts.set_gpt(files["gpt_v1"])  # a v1 GPT cannot read the v2 phone table
    assert tts.models is pair


def test_sentence_streaming_yields_the_same_audio_in_order(files) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(seed=4, text_split="cut5", pause=0.1)
    result = tts.synthesize_detailed(TEXT, "zh", ref_of(files), opts)
    chunks = list(tts.stream(TEXT, "zh", ref_of(files), opts))
    assert len(chunks) == 4  # sentence, pause, sentence, pause
    assert len(chunks[0]) == result.sentences[0].n_tokens * SAMPLES_PER_TOKEN
    np.testing.assert_array_equal(np.concatenate(chunks), result.audio)


def test_token_streaming_sends_small_chunks_first_and_keeps_the_length(files) -> None:
    tts = make_tts(files, max_new_tokens=40)
    opts = SynthesisOptions(seed=6, pause=0.0)
    chunks = list(tts.stream("今天天气很好。", "zh", ref_of(files), opts, chunk_tokens=8))
    assert len(chunks) >= 3
    assert len(chunks[0]) <= 8 * SAMPLES_PER_TOKEN
    total = sum(len(c) for c in chunks)
    assert total % SAMPLES_PER_TOKEN == 0 and 11 * SAMPLES_PER_TOKEN <= total <= 40 * SAMPLES_PER_TOKEN
    assert all(np.isfinite(c).all() for c in chunks)


def test_token_streaming_decodes_each_chunk_after_the_requested_context(files) -> None:
    tts = make_tts(files, max_new_tokens=40)
    windows: list[int] = []
    decode = tts.models.sovits.decode

    def recording_decode(codes, *args, **kwargs):
        windows.append(codes.shape[-1])
        return decode(codes, *args, **kwargs)

    tts.models.sovits.decode = recording_decode
    opts = SynthesisOptions(seed=6, pause=0.0)
    for context in (4, 25):
        windows.clear()
        total = sum(len(c) for c in tts.stream("今天天气很好。", "zh", ref_of(files), opts, 8, context))
        n_tokens = total // SAMPLES_PER_TOKEN
        expected, done = [], 0
        while done < n_tokens:
            new = min(8, n_tokens - done)
            expected.append(min(context, done) + new)
            done += new
        assert windows == expected


def test_token_streaming_with_a_seed_is_reproducible(files) -> None:
    tts = make_tts(files, max_new_tokens=40)
    text = "今天天气很好。我们去公园吧！"
    runs = [np.concatenate(list(tts.stream(text, "zh", ref_of(files), SynthesisOptions(seed=seed), chunk_tokens=8)))
            for seed in (6, 6, 7)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert len(runs[0]) != len(runs[2]) or not np.array_equal(runs[0], runs[2])


def test_token_chunks_equal_the_batch_generator() -> None:
    pair = tiny_pair(seed=3)
    phones = torch.arange(1, 9)
    bert = torch.randn(pair.t2s.cfg.bert_dim, 8, generator=torch.Generator().manual_seed(0))
    prompt = torch.randint(0, 1024, (12,), generator=torch.Generator().manual_seed(1))
    opts = SamplingOptions(top_k=5, max_new_tokens=25)
    whole = pair.t2s.generate([phones], [bert], [prompt], opts, torch.Generator().manual_seed(9)).tokens[0]
    pieces = list(pair.t2s.generate_chunks(phones, bert, prompt, opts, torch.Generator().manual_seed(9), chunk=7))
    assert [len(p) for p in pieces[:-1]] == [7] * (len(pieces) - 1)
    assert torch.equal(torch.cat(pieces), whole)


def test_chunk_stitcher_keeps_length_and_crossfades() -> None:
    stitcher = ChunkStitcher(fade=4)
    first = stitcher.push(np.ones(20, dtype=np.float32), 0, 2)  # 10 samples per token
    second = stitcher.push(np.full(30, 3.0, dtype=np.float32), 1, 2)
    out = np.concatenate([first, second, stitcher.flush()])
    assert len(out) == 40
    assert out[0] == 1.0 and out[-1] == 3.0
    seam = out[16:20]
    assert np.all(np.diff(seam) > 0) and 1.0 < seam[1] < 3.0


def eos_bias(t2s: torch.nn.Module, bias: float) -> None:
    """Give the tiny GPT's output layer a bias on the EOS column (+: stops as soon as allowed; -: never)."""
    old = t2s.ar_predict_layer
    layer = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        layer.weight.copy_(old.weight)
        layer.bias.zero_()
        layer.bias[t2s.cfg.eos] = bias
    t2s.ar_predict_layer = layer


def test_token_count_check_regenerates_swallowed_and_runaway_sentences(files) -> None:
    ref = ref_of(files)
    text = "今天天气很好我们一起去公园散步然后回家吃饭。"  # 21 phones with the char featurizer
    tts = make_tts(files)
    eos_bias(tts.models.t2s, 1e4)  # stops after the 11 blocked steps: 21 phones in 0.44 s = 48 phones/s
    opts = SynthesisOptions(seed=1, check_tokens=True, max_retries=2)
    report = tts.synthesize_detailed(text, "zh", ref, opts).sentences[0]
    assert report.n_tokens == 11 and report.attempts == 3 and "too short" in report.problem
    unchecked = tts.synthesize_detailed(text, "zh", ref, opts.replace(check_tokens=False)).sentences[0]
    assert unchecked.attempts == 1 and unchecked.problem is None
    loose = tts.synthesize_detailed(text, "zh", ref, opts.replace(max_phone_rate=100.0)).sentences[0]
    assert loose.attempts == 1 and loose.problem is None

    tts = make_tts(files, max_new_tokens=1500)
    eos_bias(tts.models.t2s, -1e4)  # never stops: runaway, cut at the check's own cap instead of 1500 tokens
    runaway = tts.synthesize_detailed("你好呀朋友们。", "zh", ref, opts.replace(max_retries=1)).sentences[0]
    assert runaway.attempts == 2 and "runaway" in runaway.problem
    assert runaway.n_tokens == int(np.ceil(6 * 25 / 3.0)) + 1


def test_concurrent_requests_do_not_disturb_each_other(files) -> None:
    tts = make_tts(files)
    ref = ref_of(files)
    seeds = [21, 22, 23]
    expected = {s: tts.synthesize("你好呀朋友。", "zh", ref, SynthesisOptions(seed=s))[1] for s in seeds}
    results: dict[int, np.ndarray] = {}

    def run(seed: int) -> None:
        results[seed] = tts.synthesize("你好呀朋友。", "zh", ref, SynthesisOptions(seed=seed))[1]

    threads = [threading.Thread(target=run, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seeds:
        np.testing.assert_array_equal(results[s], expected[s])


def test_switching_models_does_not_change_a_request_in_flight(files) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(seed=8, text_split="cut5", pause=0.0)
    expected = list(tts.stream(TEXT, "zh", ref_of(files), opts))
    stream = tts.stream(TEXT, "zh", ref_of(files), opts)
    first = next(stream)
    tts.set_gpt(files["gpt_b"])
    tts.set_sovits(files["sovits_b"])
    rest = list(stream)
    np.testing.assert_array_equal(np.concatenate([first, *rest]), np.concatenate(expected))


def test_hubert_of_the_wrong_width_is_a_clear_error(files) -> None:
    tts = TTS(load_model_pair(files["gpt"], files["sovits"]), ToySSL(dim=12), CharFeaturizer())
    with pytest.raises(ModelMismatchError, match="12-dim features but the SoVITS model expects 16"):
        tts.synthesize("你好呀朋友。", "zh", ref_of(files))


def test_int8_decoding_gives_audio_and_survives_a_gpt_switch(files) -> None:
    tts = make_tts(files, int8=True)
    result = tts.synthesize_detailed("你好呀朋友。", "zh", ref_of(files), SynthesisOptions(seed=1))
    assert np.isfinite(result.audio).all() and result.sentences[0].n_tokens >= 11
    chunks = list(tts.stream("你好呀朋友。", "zh", ref_of(files), SynthesisOptions(seed=1, pause=0), chunk_tokens=8))
    # the token stream makes the same tokens as the batch path, in int8 too
    assert sum(len(c) for c in chunks) == result.sentences[0].n_tokens * SAMPLES_PER_TOKEN
    tts.set_gpt(files["gpt_b"])
    assert tts.models.t2s.quantised_decoding is not None  # the new GPT decodes in int8 too


def test_decode_threads_reach_every_gpt_and_leave_the_audio_unchanged(files) -> None:
    assert make_tts(files).models.t2s.decode_threads is DECODE_THREADS is None  # safe beside concurrent requests
    tts = make_tts(files, decode_threads=1)  # as the CLI and the WebUI run it (one synthesis at a time)
    assert tts.models.t2s.decode_threads == 1
    opts = SynthesisOptions(seed=4, text_split="cut5", pause=0.1)
    _, limited = tts.synthesize(TEXT, "zh", ref_of(files), opts)
    tts.set_gpt(files["gpt_b"])
    assert tts.models.t2s.decode_threads == 1  # a switched-in GPT gets the setting too
    free = make_tts(files)
    _, audio = free.synthesize(TEXT, "zh", ref_of(files), opts)
    np.testing.assert_array_equal(audio, limited)


def test_decode_threads_flag_reads_counts_and_zero_as_no_limit() -> None:
    parser = argparse.ArgumentParser()
    add_device_flags(parser)
    assert parser.parse_args([]).decode_threads is DECODE_THREADS  # the API: concurrent requests
    parser = argparse.ArgumentParser()
    add_device_flags(parser, decode_threads=SINGLE_REQUEST_DECODE_THREADS)
    assert parser.parse_args([]).decode_threads == 1  # the CLI and the WebUI
    assert build_parser().parse_args(["--gpt", "g", "--sovits", "s", "--ref", "r", "--text", "t", "--out",
                                      "o.wav"]).decode_threads == 1
    assert parser.parse_args(["--decode-threads", "0"]).decode_threads is None
    assert parser.parse_args(["--decode-threads", "3"]).decode_threads == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--decode-threads", "-1"])


def test_progress_is_reported_per_sentence(files) -> None:
    tts = make_tts(files)
    seen: list[tuple[int, int]] = []
    tts.synthesize(TEXT, "zh", ref_of(files), SynthesisOptions(seed=1, text_split="cut5", batch_size=2),
                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]


def test_bucket_batches_group_similar_lengths_within_the_size_and_threshold() -> None:
    assert bucket_batches([5, 50, 6, 48, 7], 2, 0.75) == [[0, 2], [4], [3, 1]]
    assert bucket_batches([5, 50, 6, 48, 7], 3, 0.0) == [[0, 2, 4], [3, 1]]  # threshold 0: full batches
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = [int(x) for x in rng.integers(1, 120, size=int(rng.integers(1, 30)))]
        size, threshold = int(rng.integers(1, 6)), float(rng.uniform(0.0, 1.0))
        batches = bucket_batches(lengths, size, threshold)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(1 <= len(b) <= size for b in batches)
        for b in batches:
            members = [lengths[i] for i in b]
            assert len(b) == 1 or np.mean(members) >= threshold * max(members) - 1e-9
        assert [lengths[i] for b in batches for i in b] == sorted(lengths)


def test_split_bucket_batches_by_length_and_keeps_text_order(files) -> None:
    tts = make_tts(files)
    batch_lengths: list[list[int]] = []
    generate = tts.models.t2s.generate

    def recording_generate(phones, *args, **kwargs):
        batch_lengths.append(sorted(len(p) for p in phones))
        return generate(phones, *args, **kwargs)

    tts.models.t2s.generate = recording_generate
    pieces = ["我们走了吧。", "今天的天气真的是非常非常好。", "对的没有错。", "我们一起去那个很大的公园里散步吧！"]
    text = "".join(pieces)
    ref = ref_of(files, text="")  # no prompt phones: the GPT inputs are the sentences' own phones
    opts = SynthesisOptions(seed=2, text_split="cut5", batch_size=2)
    bucketed = tts.synthesize_detailed(text, "zh", ref, opts)
    assert [s.text for s in bucketed.sentences] == pieces
    assert [s.index for s in bucketed.sentences] == [0, 1, 2, 3]
    short, long = sorted(bucketed.sentences[i].n_phones for i in (0, 2)), sorted(
        bucketed.sentences[i].n_phones for i in (1, 3))
    assert batch_lengths == [short, long]  # the two short sentences together, then the two long ones
    pause = int(opts.pause * 32000)
    assert len(bucketed.audio) == sum(round(s.seconds * 32000) + pause for s in bucketed.sentences)
    batch_lengths.clear()
    tts.synthesize_detailed(text, "zh", ref, opts.replace(split_bucket=False))
    assert batch_lengths == [sorted(bucketed.sentences[i].n_phones for i in (0, 1)),
                             sorted(bucketed.sentences[i].n_phones for i in (2, 3))]  # consecutive pairs


def test_resynthesize_decodes_the_same_tokens_again_without_the_gpt(files) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(text_split="cut5", pause=0.2)
    first = tts.synthesize_detailed(TEXT, "zh", ref_of(files), opts)
    assert [len(s.tokens) for s in first.semantic] == [s.n_tokens for s in first.sentences]
    assert first.version == "v2"

    def no_gpt(*args, **kwargs):
        raise AssertionError("resynthesize must not run the GPT")

    tts.models.t2s.generate = no_gpt
    again = tts.resynthesize(first, ref_of(files), opts)
    np.testing.assert_array_equal(again.audio, first.audio)  # unseeded: each sentence reuses its seed
    faster = tts.resynthesize(first, ref_of(files), opts.replace(speed=1.5, pause=0.0))
    assert faster.semantic == first.semantic
    assert len(faster.audio) < 0.8 * sum(s.seconds for s in first.sentences) * 32000
    other_voice = tts.resynthesize(first, Reference(files["ref2"], "这是参考文本。", "all_zh"), opts)
    assert len(other_voice.audio) == len(first.audio) and not np.array_equal(other_voice.audio, first.audio)
    tts.set_models(gpt=files["gpt_v1"], sovits=files["sovits_v1"])
    with pytest.raises(ModelMismatchError, match="v2 models"):
        tts.resynthesize(first, ref_of(files), opts)
    with pytest.raises(EmptyTextError, match="synthesize the text first"):
        tts.resynthesize(SynthesisResult(32000, np.zeros(0, np.float32), (), 0), ref_of(files), opts)


@pytest.mark.parametrize("seconds", [2.0, 11.0])
def test_reference_outside_3_to_10_seconds_is_refused_with_the_reason(files, tmp_path: Path, seconds: float) -> None:
    tts = make_tts(files)
    path = write_audio(tmp_path / "ref.wav", tone_burst(seconds))
    with pytest.raises(ReferenceAudioError, match=r"between 3 and 10 s.*trained on clips"):
        tts.synthesize("你好。", "zh", Reference(path, "参考。", "all_zh"))


def test_unreadable_or_missing_reference_and_bad_inputs(files, tmp_path: Path) -> None:
    tts = make_tts(files)
    with pytest.raises(ReferenceAudioError, match="not found"):
        tts.synthesize("你好。", "zh", Reference(tmp_path / "missing.wav", "参考。", "all_zh"))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF nonsense")
    with pytest.raises(ReferenceAudioError, match="cannot be read"):
        tts.synthesize("你好。", "zh", Reference(junk, "参考。", "all_zh"))
    with pytest.raises(EmptyTextError):
        tts.synthesize(" 。！ ", "zh", ref_of(files))
    with pytest.raises(InvalidOptionError, match="text language"):
        tts.synthesize("你好。", "klingon", ref_of(files))
    with pytest.raises(InvalidOptionError, match="reference language"):
        tts.synthesize("你好。", "zh", Reference(files["ref"], "参考。", "xx"))


LONG_TEXT = "今天天气很好。我们去公园吧！明天见。再见了。"


@pytest.mark.parametrize("batch_size", [1, 4])
def test_cancel_stops_synthesis_between_sentences(files, batch_size: int) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(seed=2, text_split="cut5", batch_size=batch_size, split_bucket=False)
    made: list[int] = []
    with pytest.raises(Cancelled) as info:
        tts.synthesize(LONG_TEXT, "zh", ref_of(files), opts, progress=lambda done, total: made.append(done),
                       cancel=lambda: len(made) >= 1)
    total = len(tts.split(LONG_TEXT, "zh", "cut5"))
    assert total > 2 and (info.value.done, info.value.total) == (1, total) and made == [1]
    assert len(tts.synthesize(LONG_TEXT, "zh", ref_of(files), opts, cancel=lambda: False)[1]) > 0


def test_cancel_before_start_prepares_nothing(files) -> None:
    tts = make_tts(files)
    with pytest.raises(Cancelled, match="before it started"):
        tts.synthesize(LONG_TEXT, "zh", ref_of(files), SynthesisOptions(seed=1), cancel=lambda: True)
    assert tts.references.computed == 0  # not even the reference was prepared


@pytest.mark.parametrize("chunk_tokens", [0, 6])
def test_cancel_stops_a_stream_between_chunks(files, chunk_tokens: int) -> None:
    tts = make_tts(files)
    opts = SynthesisOptions(seed=3, text_split="cut5", pause=0.0)
    whole = list(tts.stream(LONG_TEXT, "zh", ref_of(files), opts, chunk_tokens=chunk_tokens))
    event = threading.Event()
    got = []
    with pytest.raises(Cancelled):
        for chunk in tts.stream(LONG_TEXT, "zh", ref_of(files), opts, chunk_tokens=chunk_tokens,
                                cancel=event.is_set):
            got.append(chunk)
            event.set()  # e.g. the client disconnected after the first chunk
    assert len(got) == 1 and len(whole) > 1
    np.testing.assert_array_equal(got[0], whole[0])
