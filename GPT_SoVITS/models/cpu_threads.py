"""Temporarily fewer CPU intra-op threads for small, latency-bound work (the GPT's one-token decode steps).

Why: a decode step is ~150 small matrix-vector products, each a parallel region whose threads meet at a
barrier. When other programs keep the cores busy, the OS deschedules one of torch's threads and every barrier
waits a time slice for it (while the other thread spins): on a shared 2-core machine 2-thread decoding was
~3× slower than 1-thread decoding, quiet or with one more busy core (``benchmarks/bench_load.py``; numbers
in docs/models.md).

``torch.set_num_threads`` is process-wide, so overlapping users (threads of one server) are counted: the first
to enter saves the current count and the last to leave restores it. While any user holds the limit, the
process runs with the smallest count requested.

The GPT applies the limit to its layer steps only: their products (all with a bias) gave bit-identical results
at 1 and 2 threads, while the bias-free output layer's product did not (differences ~1e-7), so the output
layer keeps the process's threads and decoding stays bit-for-bit the same (tests check equality). Work that
other threads run *while* a limit is held also gets the lowered count, and its results can differ in the last
bits; so only callers that run one synthesis at a time set a limit by default (see ``GPT_SoVITS.infer.tts``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class _ThreadLimit:
    """Counted holders of a lowered ``torch.get_num_threads()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders: list[int] = []  # requested counts of the current holders
        self._saved = 0  # the count before the first holder entered

    def enter(self, threads: int) -> None:
        with self._lock:
            if not self._holders:
                self._saved = torch.get_num_threads()
            self._holders.append(threads)
            wanted = min(min(self._holders), self._saved)
            if torch.get_num_threads() != wanted:
                torch.set_num_threads(wanted)

    def leave(self, threads: int) -> None:
        with self._lock:
            self._holders.remove(threads)
            wanted = min(self._holders, default=self._saved)
            wanted = min(wanted, self._saved)
            if torch.get_num_threads() != wanted:
                torch.set_num_threads(wanted)


_LIMIT = _ThreadLimit()


@contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` intra-op threads (``None``: leave torch's setting alone).

    Never raises the count above what the process had; restores it when the last overlapping user leaves.
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"intra-op threads must be at least 1 (or None to keep torch's setting), got {threads}")
    _LIMIT.enter(threads)
    try:
        yield
    finally:
        _LIMIT.leave(threads)
