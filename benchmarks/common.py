"""Timing and thread set-up the benchmarks share."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable


def wall_times(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds."""
    return min(wall_times(fn, repeats))


def add_threads_flag(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--threads", type=int, default=default, help="torch CPU threads (0 = torch's default)")


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)``; 0 keeps torch's default."""
    if threads:
        import torch

        torch.set_num_threads(threads)
