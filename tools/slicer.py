"""RMS silence slicer (upstream ``slicer2`` semantics), with the frame analysis vectorised.

Upstream walks every RMS frame in a Python loop. Here the framewise RMS comes from one cumulative sum and the
decision logic runs once per *silent run* instead of once per frame, which gives the same cut points at a
fraction of the cost. One deliberate deviation: upstream compares the input's *sample* count with
``min_length`` in *frames* (so its "input shorter than min_length is returned whole" rule never fires); we
compare frames with frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlicerParams:
    """Slicer settings in upstream's units (dB and milliseconds)."""

    threshold: float = -34.0  # dB; frames whose RMS is below this are silence candidates
    min_length: int = 4000  # ms; a chunk is at least this long (shorter pieces merge into the next)
    min_interval: int = 300  # ms; a silence must last this long to be cut
    hop_size: int = 10  # ms; RMS hop (precision of the cut points)
    max_sil_kept: int = 500  # ms; at most this much silence is kept around a cut

    def validate(self) -> None:
        if not self.min_length >= self.min_interval >= self.hop_size:
            raise ValueError(
                f"Slicer parameters must satisfy min_length >= min_interval >= hop_size "
                f"(got {self.min_length} >= {self.min_interval} >= {self.hop_size} ms).")
        if not self.max_sil_kept >= self.hop_size:
            raise ValueError(
                f"Slicer parameters must satisfy max_sil_kept >= hop_size "
                f"(got {self.max_sil_kept} >= {self.hop_size} ms).")
        if self.hop_size <= 0:
            raise ValueError(f"hop_size must be positive (got {self.hop_size} ms).")


def frame_rms(samples: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Centred (zero-padded) framewise RMS, as librosa/upstream compute it, without framing the signal.

    The padded signal's energy is summed once per block of ``gcd(frame, hop)`` samples; every frame's energy
    is then a difference of the (float64) cumulative block energies. Each sample is touched once, instead
    of ``frame / hop`` times.
    """
    pad = frame_length // 2
    block = math.gcd(frame_length, hop_length)
    n_frames = 1 + (samples.shape[0] + 2 * pad - frame_length) // hop_length
    n_blocks = ((n_frames - 1) * hop_length + frame_length) // block
    padded = np.zeros(n_blocks * block, dtype=np.float32)
    body = samples[: max(0, padded.shape[0] - pad)]
    padded[pad: pad + body.shape[0]] = body
    energy = np.square(padded).reshape(n_blocks, block).sum(axis=1, dtype=np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(energy)))
    starts = np.arange(n_frames) * (hop_length // block)
    power = (cumulative[starts + frame_length // block] - cumulative[starts]) / frame_length
    return np.sqrt(np.maximum(power, 0.0))


def _silent_runs(silent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) frame indices of every run of True values."""
    padded = np.concatenate(([False], silent, [False])).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


class Slicer:
    """Cut a waveform at silences. ``slice`` returns ``(start, end)`` sample ranges of the kept chunks."""

    def __init__(self, sr: int, params: SlicerParams = SlicerParams()):
        params.validate()
        self.sr = sr
        self.threshold = 10 ** (params.threshold / 20.0)
        self.hop = round(sr * params.hop_size / 1000)
        min_interval_samples = sr * params.min_interval / 1000
        self.win = min(round(min_interval_samples), 4 * self.hop)
        self.min_length = round(sr * params.min_length / 1000 / self.hop)
        self.min_interval = round(min_interval_samples / self.hop)
        self.max_sil_kept = round(sr * params.max_sil_kept / 1000 / self.hop)

    def _cut_for_silence(self, rms: np.ndarray, start: int, end: int) -> tuple[int, int]:
        """The frame range to remove for the silence [start, end) that ends at loud frame ``end``."""
        keep = self.max_sil_kept
        if end - start <= keep:
            pos = int(rms[start: end + 1].argmin()) + start
            return (0, pos) if start == 0 else (pos, pos)
        pos_l = int(rms[start: start + keep + 1].argmin()) + start
        pos_r = int(rms[end - keep: end + 1].argmin()) + end - keep
        if end - start <= keep * 2:
            pos = int(rms[end - keep: start + keep + 1].argmin()) + end - keep
            if start == 0:
                return 0, pos_r
            return min(pos_l, pos), max(pos_r, pos)
        return (0, pos_r) if start == 0 else (pos_l, pos_r)

    def silence_tags(self, samples: np.ndarray) -> tuple[list[tuple[int, int]], int]:
        """Frame ranges to remove, and the total frame count."""
        rms = frame_rms(samples, self.win, self.hop)
        total = rms.shape[0]
        tags: list[tuple[int, int]] = []
        clip_start = 0
        starts, ends = _silent_runs(rms < self.threshold)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if end == total:  # trailing silence: no loud frame closes it
                if total - start >= self.min_interval:
                    silence_end = min(total, start + self.max_sil_kept)
                    pos = int(rms[start: silence_end + 1].argmin()) + start
                    tags.append((pos, total + 1))
                break
            is_leading = start == 0 and end > self.max_sil_kept
            cut_middle = end - start >= self.min_interval and end - clip_start >= self.min_length
            if not is_leading and not cut_middle:
                continue
            tag = self._cut_for_silence(rms, start, end)
            tags.append(tag)
            clip_start = tag[1]
        return tags, total

    def slice(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Sample ranges ``[(start, end), ...]`` of the chunks of the mono signal ``samples``."""
        n = samples.shape[0]
        if n == 0:
            return []
        tags, total = self.silence_tags(samples)
        if total <= self.min_length or not tags:
            return [(0, n)]
        frame_ranges: list[tuple[int, int]] = []
        if tags[0][0] > 0:
            frame_ranges.append((0, tags[0][0]))
        frame_ranges.extend((tags[i][1], tags[i + 1][0]) for i in range(len(tags) - 1))
        if tags[-1][1] < total:
            frame_ranges.append((tags[-1][1], total))
        ranges = [(b * self.hop, min(n, e * self.hop)) for b, e in frame_ranges]
        return [(b, e) for b, e in ranges if e > b]
