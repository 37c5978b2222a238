"""Slicer speed: seconds of compute per hour of audio (run by hand: python -m benchmarks.bench_slicer).

Compares our vectorised slicer with a frame-by-frame Python loop over strided RMS frames (the way upstream's
slicer2 works), on the same synthetic speech-like signal, and times the whole file path (decode, resample,
slice, loudness mix, write).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import best_of
from tools.slice_audio import slice_file
from tools.slicer import Slicer, SlicerParams

SR = 32000


def synth(minutes: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pieces, total = [], 0
    while total < minutes * 60 * SR:
        n = int(rng.uniform(0.5, 8.0) * SR)
        t = np.arange(n) / SR
        pieces.append((0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t)).astype(np.float32))
        gap = int(rng.uniform(0.05, 1.5) * SR)
        pieces.append((1e-4 * rng.standard_normal(gap)).astype(np.float32))
        total += n + gap
    return np.concatenate(pieces)


def framewise_rms(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    y = np.pad(y, (frame // 2, frame // 2))
    n = 1 + (len(y) - frame) // hop
    frames = np.lib.stride_tricks.as_strided(y, shape=(n, frame), strides=(y.strides[0] * hop, y.strides[0]))
    return np.sqrt(np.mean(np.abs(frames) ** 2, axis=1))


def framewise_loop(slicer: Slicer, samples: np.ndarray) -> int:
    """Upstream-style: one Python iteration per RMS frame (decision logic trimmed to the hot path)."""
    rms = framewise_rms(samples, slicer.win, slicer.hop)
    silence_start, clip_start, cuts = None, 0, 0
    for i, value in enumerate(rms):
        if value < slicer.threshold:
            if silence_start is None:
                silence_start = i
            continue
        if silence_start is None:
            continue
        if i - silence_start >= slicer.min_interval and i - clip_start >= slicer.min_length:
            pos = int(rms[silence_start: i + 1].argmin()) + silence_start
            clip_start, cuts = pos, cuts + 1
        silence_start = None
    return cuts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic recording")
    parser.add_argument("--repeats", type=int, default=3, help="take the best of this many runs")
    args = parser.parse_args(argv)
    audio = synth(args.minutes)
    hours = len(audio) / SR / 3600
    slicer = Slicer(SR, SlicerParams())
    ours = best_of(lambda: slicer.slice(audio), args.repeats)
    loop = best_of(lambda: framewise_loop(slicer, audio), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "long.flac"
        sf.write(str(src), audio, SR)
        whole = best_of(lambda: slice_file(src, Path(tmp) / "out"), 1)
    print(f"{'what':<44} {'s per hour of audio':>20}")
    print(f"{'slicer analysis, vectorised (ours)':<44} {ours / hours:>20.3f}")
    print(f"{'slicer analysis, per-frame loop (upstream)':<44} {loop / hours:>20.3f}")
    print(f"{'whole file: decode+slice+mix+write (ours)':<44} {whole / hours:>20.3f}")
    print(f"speed-up of the analysis: {loop / ours:.1f}x ({len(audio) / SR / 60:.1f} min of audio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
