"""Slice long recordings into short clips at silences (tab 0b).

Library: :func:`slice_audio`. CLI::

    python -m tools.slice_audio INPUT OUTPUT_DIR [--threshold -34] [--min-length 4000] [--min-interval 300]
        [--hop-size 10] [--max-sil-kept 500] [--max 0.9] [--alpha 0.25] [--processes N]

Output files keep upstream's naming, ``<input file name>_<start>_<end>.wav`` with 10-digit sample offsets at
32 kHz, 16-bit mono. A file that cannot be read is skipped and reported; the others are still sliced.
"""

from __future__ import annotations

import argparse
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from GPT_SoVITS.audio import AudioReadError, load_audio, write_wav
from GPT_SoVITS.fileio import ensure_output_dir
from GPT_SoVITS.logs import ProgressCallback, progress_logger, setup_logging
from tools._cli import finish_batch
from tools.slicer import Slicer, SlicerParams

log = logging.getLogger(__name__)

OUTPUT_SR = 32000


@dataclass(frozen=True)
class LoudnessMix:
    """Upstream's loudness mix: ``chunk·(1−alpha) + normalised_chunk·max·alpha``."""

    max_peak: float = 0.9  # peak of the normalised component, 0..1
    alpha: float = 0.25  # share of the normalised component, 0..1

    def validate(self) -> None:
        if not 0.0 <= self.max_peak <= 1.0:
            raise ValueError(f"max must be between 0 and 1 (got {self.max_peak}).")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1 (got {self.alpha}).")

    def apply(self, chunk: np.ndarray) -> np.ndarray:
        peak = float(np.abs(chunk).max()) if chunk.size else 0.0
        if peak == 0.0:
            return chunk
        if peak > 1.0:  # clipped input: bring it into range first
            chunk = chunk / peak
            peak = 1.0
        return chunk * (1.0 - self.alpha) + (chunk / peak) * (self.max_peak * self.alpha)


@dataclass
class SliceReport:
    """What a slicing run produced: files done, chunk paths written, files skipped with their reasons."""

    files_done: int = 0
    chunks: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.files_done} file(s) sliced into {len(self.chunks)} chunk(s)"
        if self.skipped:
            text += f"; {len(self.skipped)} file(s) skipped"
        return text


def collect_inputs(source: Path) -> list[Path]:
    """The input file itself, or the regular (non-hidden) files of a folder in sorted order."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted((p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")),
                      key=lambda p: p.name)
    raise FileNotFoundError(f"Input not found: {source} (give an audio file or a folder of audio files).")


def slice_file(path: Path, output_dir: Path, params: SlicerParams = SlicerParams(),
               mix: LoudnessMix = LoudnessMix()) -> list[Path]:
    """Slice one file into ``output_dir``; returns the written chunk paths. Raises ``AudioReadError``."""
    # ffmpeg's downmix, as upstream decodes: the threshold is absolute, so a mean downmix (3 dB quieter on
    # correlated stereo) would move the cut points.
    audio, _ = load_audio(path, sr=OUTPUT_SR, downmix_rule="ffmpeg")
    written = []
    for start, end in Slicer(OUTPUT_SR, params).slice(audio):
        out = Path(output_dir) / f"{path.name}_{start:010d}_{end:010d}.wav"
        write_wav(out, mix.apply(audio[start:end]), OUTPUT_SR)
        written.append(out)
    return written


def _slice_one(args: tuple[Path, Path, SlicerParams, LoudnessMix]) -> tuple[Path, list[Path] | None, str]:
    path, output_dir, params, mix = args
    try:
        return path, slice_file(path, output_dir, params, mix), ""
    except AudioReadError as exc:
        return path, None, str(exc)
    except (OSError, ValueError, MemoryError) as exc:
        return path, None, f"{path}: {type(exc).__name__}: {exc}"


def slice_audio(source: Path, output_dir: Path, params: SlicerParams = SlicerParams(),
                mix: LoudnessMix = LoudnessMix(), processes: int = 1,
                progress: ProgressCallback | None = None) -> SliceReport:
    """Slice a file or every file of a folder into ``output_dir``, using up to ``processes`` worker processes."""
    params.validate()
    mix.validate()
    files = collect_inputs(source)
    ensure_output_dir(Path(output_dir))
    report = SliceReport()
    tasks = [(f, Path(output_dir), params, mix) for f in files]
    workers = max(1, min(processes, len(tasks)))
    if workers == 1:
        results = map(_slice_one, tasks)
        _collect(results, report, len(tasks), progress)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            _collect(pool.map(_slice_one, tasks), report, len(tasks), progress)
    return report


def _collect(results, report: SliceReport, total: int, progress: ProgressCallback | None) -> None:
    for done, (path, chunks, error) in enumerate(results, start=1):
        if chunks is None:
            report.skipped.append((path, error))
            log.warning("skipped %s", error)
        else:
            report.files_done += 1
            report.chunks.extend(chunks)
            log.info("%s -> %d chunk(s)", path.name, len(chunks))
        if progress:
            progress(done, total)


def build_parser() -> argparse.ArgumentParser:
    defaults, mix = SlicerParams(), LoudnessMix()
    parser = argparse.ArgumentParser(prog="python -m tools.slice_audio", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("input", type=Path, help="audio file or folder of audio files")
    parser.add_argument("output_dir", type=Path, help="folder for the sliced clips")
    parser.add_argument("--threshold", type=float, default=defaults.threshold,
                        help="dB; RMS below this counts as silence")
    parser.add_argument("--min-length", type=int, default=defaults.min_length, help="ms; minimum chunk length")
    parser.add_argument("--min-interval", type=int, default=defaults.min_interval,
                        help="ms; minimum silence length to cut at")
    parser.add_argument("--hop-size", type=int, default=defaults.hop_size, help="ms; RMS hop")
    parser.add_argument("--max-sil-kept", type=int, default=defaults.max_sil_kept,
                        help="ms; maximum silence kept around a cut")
    parser.add_argument("--max", type=float, default=mix.max_peak, dest="max_peak",
                        help="peak of the normalised component (0-1)")
    parser.add_argument("--alpha", type=float, default=mix.alpha, help="share of normalised audio mixed in (0-1)")
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1),
                        help="number of worker processes")
    parser.add_argument("--log-file", type=Path, default=None, help="also write the log to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    params = SlicerParams(args.threshold, args.min_length, args.min_interval, args.hop_size, args.max_sil_kept)
    mix = LoudnessMix(args.max_peak, args.alpha)
    try:
        report = slice_audio(args.input, args.output_dir, params, mix, args.processes,
                             progress=progress_logger("slicing"))
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    for path, reason in report.skipped:
        log.warning("SKIPPED %s: %s", path, reason)
    return finish_batch(log, (), "", f"{report.summary()} -> {args.output_dir}", report.files_done != 0,
                        "No file could be sliced; see the reasons above.")


if __name__ == "__main__":
    raise SystemExit(main())
