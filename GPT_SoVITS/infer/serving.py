"""Serving many requests on one engine: a request's cancel hook and the concurrency slots it waits for.

Used by the HTTP API (``app/api.py``); nothing here knows about HTTP. A request's :class:`RequestCancel` is set by
whoever learns that its result is no longer wanted (the client disconnected, the server is stopping) and polled
by the engine between sentences (``TTS.synthesize_detailed(…, cancel=…)``) and by :func:`synthesis_slot` while
the request waits for a slot.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from GPT_SoVITS.infer.tts import Cancelled


class RequestCancel:
    """The engine's cancel hook for one request: true once its client has gone or the server is stopping.

    Thread-safe: it is set where the news arrives (the API's event loop) and polled in the synthesising thread.
    ``stopping`` is the server's one event for all requests.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self._gone = threading.Event()
        self._stopping = stopping

    def client_gone(self) -> None:
        self._gone.set()

    @property
    def reason(self) -> str:
        return "the server is stopping" if self._stopping.is_set() else "the client disconnected"

    def __call__(self) -> bool:
        return self._gone.is_set() or self._stopping.is_set()


@contextlib.contextmanager
def synthesis_slot(slots: threading.BoundedSemaphore | None, cancel: RequestCancel) -> Iterator[None]:
    """Hold one concurrency slot; a request that is cancelled while it waits for one gives up."""
    if slots is None:
        yield
        return
    while not slots.acquire(timeout=0.1):
        if cancel():
            raise Cancelled(0, 0)
    try:
        yield
    finally:
        slots.release()
