"""The silence slicer: cut points on synthesised audio with known silences, constraints, unreadable input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SR, silence, tone_burst, write_audio
from tools.slice_audio import LoudnessMix, main, slice_audio, slice_file
from tools.slicer import Slicer, SlicerParams, frame_rms


def reference_rms(samples, frame_length, hop_length):
    """Straightforward framing (as librosa does with center=True, zero padding)."""
    pad = frame_length // 2
    padded = np.pad(samples.astype(np.float64), (pad, pad))
    n = 1 + (len(padded) - frame_length) // hop_length
    return np.array([np.sqrt(np.mean(padded[i * hop_length: i * hop_length + frame_length] ** 2)) for i in range(n)])


def reference_tags(slicer: Slicer, samples):
    """A frame-by-frame state machine written from the upstream description (spec §2.1), for equivalence."""
    rms = reference_rms(samples, slicer.win, slicer.hop)
    tags, silence_start, clip_start = [], None, 0
    keep = slicer.max_sil_kept
    for i, value in enumerate(rms):
        if value < slicer.threshold:
            if silence_start is None:
                silence_start = i
            continue
        if silence_start is None:
            continue
        leading = silence_start == 0 and i > keep
        middle = i - silence_start >= slicer.min_interval and i - clip_start >= slicer.min_length
        if not leading and not middle:
            silence_start = None
            continue
        if i - silence_start <= keep:
            pos = rms[silence_start: i + 1].argmin() + silence_start
            tags.append((0, pos) if silence_start == 0 else (pos, pos))
            clip_start = pos
        elif i - silence_start <= keep * 2:
            pos = rms[i - keep: silence_start + keep + 1].argmin() + i - keep
            pos_l = rms[silence_start: silence_start + keep + 1].argmin() + silence_start
            pos_r = rms[i - keep: i + 1].argmin() + i - keep
            if silence_start == 0:
                tags.append((0, pos_r))
                clip_start = pos_r
            else:
                tags.append((min(pos_l, pos), max(pos_r, pos)))
                clip_start = max(pos_r, pos)
        else:
            pos_l = rms[silence_start: silence_start + keep + 1].argmin() + silence_start
            pos_r = rms[i - keep: i + 1].argmin() + i - keep
            tags.append((0, pos_r) if silence_start == 0 else (pos_l, pos_r))
            clip_start = pos_r
        silence_start = None
    total = len(rms)
    if silence_start is not None and total - silence_start >= slicer.min_interval:
        end = min(total, silence_start + keep)
        pos = rms[silence_start: end + 1].argmin() + silence_start
        tags.append((pos, total + 1))
    return [(int(a), int(b)) for a, b in tags], total


def speech_like(pattern, seed=0):
    """Concatenate ("tone"|"sil", seconds) pieces; returns the signal."""
    pieces = []
    for i, (kind, secs) in enumerate(pattern):
        pieces.append(tone_burst(secs, seed=seed + i, freq=150 + 40 * i) if kind == "tone"
                      else silence(secs, level=1e-4, seed=seed + i))
    return np.concatenate(pieces)


def test_vectorised_rms_matches_framewise_rms(rng):
    x = rng.standard_normal(12345).astype(np.float32)
    # energies are summed from float32 squares: agreement to float32 precision
    np.testing.assert_allclose(frame_rms(x, 1280, 320), reference_rms(x, 1280, 320), rtol=1e-6)
    np.testing.assert_allclose(frame_rms(x, 700, 320), reference_rms(x, 700, 320), rtol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_cut_points_equal_the_framewise_algorithm(seed):
    rng = np.random.default_rng(seed)
    pattern = []
    for _ in range(8):
        pattern.append(("tone", float(rng.uniform(0.3, 6.0))))
        pattern.append(("sil", float(rng.uniform(0.05, 2.5))))
    if seed % 2:
        pattern.insert(0, ("sil", float(rng.uniform(0.1, 2.0))))
    audio = speech_like(pattern, seed)
    slicer = Slicer(SR, SlicerParams())
    assert slicer.silence_tags(audio) == reference_tags(slicer, audio)


def test_known_silences_give_expected_chunks():
    # 5 s tone | 1 s silence | 5 s tone | 0.1 s silence (too short) | 5 s tone | 2 s silence | 4.5 s tone
    audio = speech_like([("tone", 5), ("sil", 1), ("tone", 5), ("sil", 0.1), ("tone", 5), ("sil", 2),
                         ("tone", 4.5)])
    chunks = Slicer(SR, SlicerParams()).slice(audio)
    assert len(chunks) == 3
    starts = [s / SR for s, _ in chunks]
    ends = [e / SR for _, e in chunks]
    # first cut inside the 1 s silence (5..6 s), the 0.1 s gap is not cut, the 2 s silence is cut
    assert starts[0] == 0.0 and 5.0 <= ends[0] <= 6.0
    assert 5.0 <= starts[1] <= 6.0 and 16.1 <= ends[1] <= 16.7
    assert 17.4 <= starts[2] <= 18.1 and ends[2] == pytest.approx(len(audio) / SR, abs=0.02)
    # at most max_sil_kept (0.5 s) of silence is kept on each side of the long silence
    assert starts[2] - ends[1] >= 2.0 - 2 * 0.5 - 0.02


def test_leading_and_trailing_silence_are_trimmed():
    audio = speech_like([("sil", 2.0), ("tone", 5.0), ("sil", 2.0)])
    (start, end), = Slicer(SR, SlicerParams()).slice(audio)
    assert 1.4 <= start / SR <= 2.0  # at most max_sil_kept (0.5 s) of the leading silence kept
    assert 7.0 <= end / SR <= 7.6


def test_clip_shorter_than_min_length_is_returned_whole():
    audio = speech_like([("tone", 1.0), ("sil", 0.5), ("tone", 1.0)])
    assert Slicer(SR, SlicerParams()).slice(audio) == [(0, len(audio))]


@pytest.mark.parametrize("params", [
    SlicerParams(min_length=200, min_interval=300),
    SlicerParams(min_interval=5, hop_size=10),
    SlicerParams(max_sil_kept=5, hop_size=10),
])
def test_parameter_constraints_raise(params):
    with pytest.raises(ValueError, match="must satisfy"):
        Slicer(SR, params)


def test_loudness_mix_matches_upstream_formula():
    chunk = np.array([0.1, -0.4, 0.2], dtype=np.float32)
    mixed = LoudnessMix(max_peak=0.9, alpha=0.25).apply(chunk)
    np.testing.assert_allclose(mixed, chunk * 0.75 + chunk / 0.4 * 0.9 * 0.25, rtol=1e-6)
    clipped = LoudnessMix().apply(np.array([2.0, -1.0], dtype=np.float32))
    assert np.abs(clipped).max() <= 1.0


def test_slice_file_names_and_format(tmp_path):
    audio = speech_like([("tone", 5), ("sil", 1), ("tone", 5)])
    src = write_audio(tmp_path / "in" / "take 1.flac", np.stack([audio, audio * 0.5], axis=1))
    out = slice_file(src, tmp_path / "out")
    assert len(out) == 2
    for path in out:
        name, start, end = path.stem.rsplit("_", 2)
        assert name == "take 1.flac" and len(start) == 10 and len(end) == 10 and int(end) > int(start)
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (32000, 1, "PCM_16")
        assert sf.read(str(path))[0].shape[0] == int(end) - int(start)


def test_other_sample_rates_are_resampled_to_32k(tmp_path):
    audio = speech_like([("tone", 5), ("sil", 1), ("tone", 5)])
    import soxr
    src = write_audio(tmp_path / "a.wav", soxr.resample(audio, SR, 44100), 44100)
    out = slice_file(src, tmp_path / "out")
    total = sum(sf.info(str(p)).frames for p in out)
    assert len(out) == 2 and 9.5 * SR < total < 11.1 * SR


def test_folder_with_unreadable_file_is_reported_and_the_rest_sliced(tmp_path):
    src = tmp_path / "in"
    write_audio(src / "a.wav", speech_like([("tone", 5), ("sil", 1), ("tone", 5)]))
    write_audio(src / "b.ogg", speech_like([("tone", 4.5)]), format="OGG", subtype="VORBIS")
    (src / "broken.wav").write_bytes(b"RIFF not really audio")
    report = slice_audio(src, tmp_path / "out", processes=2)
    assert report.files_done == 2 and len(report.chunks) == 3
    assert [p.name for p, _ in report.skipped] == ["broken.wav"]
    assert "broken.wav" in report.skipped[0][1]


def test_cli_reports_and_exit_codes(tmp_path, caplog):
    src = write_audio(tmp_path / "a.wav", speech_like([("tone", 5), ("sil", 1), ("tone", 5)]))
    assert main([str(src), str(tmp_path / "out"), "--processes", "1"]) == 0
    assert len(list((tmp_path / "out").glob("*.wav"))) == 2
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert main([str(src), str(tmp_path / "out"), "--min-length", "100"]) == 2
    (tmp_path / "bad.wav").write_bytes(b"nope")
    assert main([str(tmp_path / "bad.wav"), str(tmp_path / "out2")]) == 1


def _quiet_tail_stereo() -> np.ndarray:
    """Stereo speech with a quiet passage whose level lies between the mean and the ffmpeg downmix at −40 dB.

    Both channels carry the same quiet noise at RMS 0.009: its mean downmix (0.009) is below 10^(−40/20) = 0.01,
    its ffmpeg downmix ((L+R)·√½ ≈ 0.0127) above it, so the silence before the second tone starts 1.5 s later.
    """
    rng = np.random.default_rng(7)
    quiet = (0.009 * rng.standard_normal(int(1.5 * SR))).astype(np.float32)
    left = np.concatenate([tone_burst(5), quiet, silence(0.8), tone_burst(5, seed=3)])
    right = np.concatenate([tone_burst(5, freq=330.0, seed=5), quiet, silence(0.8), tone_burst(5, freq=330.0)])
    return np.stack([left, right], axis=1)


def test_stereo_is_downmixed_as_ffmpeg_does_so_cut_points_match_upstream(tmp_path):
    stereo = _quiet_tail_stereo()
    src = write_audio(tmp_path / "take.wav", stereo, subtype="FLOAT")  # 32 kHz float: no resampling, no rounding
    params = SlicerParams(threshold=-40)
    # Reference from the documented rule: ffmpeg -ac 1 writes (L + R)·√½ for stereo float output.
    ffmpeg_mono = (stereo[:, 0].astype(np.float64) + stereo[:, 1]) * 2**-0.5
    expected = Slicer(SR, params).slice(ffmpeg_mono.astype(np.float32))
    mean_cuts = Slicer(SR, params).slice(stereo.mean(axis=1))
    assert len(expected) == len(mean_cuts) == 2 and expected != mean_cuts  # the rule matters for this file
    out = slice_file(src, tmp_path / "out", params)
    got = [tuple(int(v) for v in p.stem.rsplit("_", 2)[1:]) for p in out]
    assert got == expected
    # The chunk audio is the ffmpeg downmix (then the loudness mix), not the channel mean.
    first = sf.read(str(out[0]), dtype="float32")[0]
    start, end = expected[0]
    np.testing.assert_allclose(first, LoudnessMix().apply(ffmpeg_mono[start:end].astype(np.float32)), atol=2e-4)


def test_output_path_that_is_a_file_is_refused_before_any_work(tmp_path, caplog):
    src = write_audio(tmp_path / "a.wav", speech_like([("tone", 5), ("sil", 1), ("tone", 5)]))
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    with caplog.at_level("ERROR"):
        assert main([str(src), str(taken), "--processes", "1"]) == 2
        assert main([str(src), str(taken / "sub"), "--processes", "1"]) == 2
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert f"output folder {taken} is an existing file" in messages[0]
    assert f"{taken} is a file, not a folder" in messages[1]
    assert taken.read_text() == "not a folder"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_that_is_not_writable_is_refused(tmp_path):
    src = write_audio(tmp_path / "a.wav", speech_like([("tone", 5)]))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="locked is not writable"):
            slice_audio(src, locked)
    finally:
        locked.chmod(0o755)
