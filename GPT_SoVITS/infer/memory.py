"""Giving memory back to the operating system in a long-running server (glibc's allocator keeps it otherwise).

A request allocates and frees many large tensors (BERT features, KV caches, decoder activations) from several
worker threads. By default glibc serves blocks of 128 KiB and more with ``mmap`` (returned to the OS on free)
but raises that threshold, up to 32 MiB, each time such a block is freed; from then on tensors come from the
per-thread heaps ("arenas"), whose free memory is kept, and the resident size stays near its peak after every
large or concurrent request. Measured on the API (``benchmarks/bench_api_memory.py``, docs/inference.md):

* :func:`configure_allocator` fixes the threshold (4 MiB), so large tensors are mapped and unmapped as they
  come and go;
* :func:`release_free_memory` (``malloc_trim(0)``) returns what the heaps still hold free; the API calls it
  when its last running request ends (:class:`TrimWhenIdle`), not after every request: the pages it gives back
  are faulted in again by the next request, which costs time under load.

Other C libraries (macOS, Windows, musl) manage memory differently and are left alone (both return False).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Blocks of at least this size are mmapped (and unmapped when freed). 4 MiB keeps the large tensors (KV caches,
#: decoder activations, long feature sequences) out of the heaps while the many small ones still reuse heap
#: memory: 256 KiB or 1 MiB cost 5-10 times the system time in page faults for little less memory.
MMAP_THRESHOLD = 4 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number

_libc: ctypes.CDLL | None = None
_loaded = False
_lock = threading.Lock()


def _glibc() -> ctypes.CDLL | None:
    global _libc, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            if sys.platform.startswith("linux"):
                try:
                    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                    if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt"):  # glibc (musl has neither)
                        libc.malloc_trim.argtypes = [ctypes.c_size_t]
                        libc.malloc_trim.restype = ctypes.c_int
                        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                        libc.mallopt.restype = ctypes.c_int
                        _libc = libc
                except OSError:
                    log.debug("libc not loadable; the allocator is left as it is")
        return _libc


def configure_allocator(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process (call once at server start); True if it was set."""
    libc = _glibc()
    if libc is None:
        return False
    done = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)))
    if done:
        log.debug("glibc mmap threshold fixed at %d bytes", mmap_threshold)
    return done


def release_free_memory() -> bool:
    """Return the allocator's free memory to the OS (glibc ``malloc_trim(0)``); True if anything was released."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class TrimWhenIdle:
    """Counts the requests running; when the last one ends, :func:`release_free_memory` (thread-safe)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._running = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                idle = self._running == 0
            if idle and self.enabled:
                release_free_memory()
