"""What the batch tools share: recording a failed file, and the command-line tail (what failed, a ``done:``
summary, the exit code)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from GPT_SoVITS.audio import AudioReadError


def record_failure(log: logging.Logger, failed: list[tuple[Path, str]], path: Path, exc: Exception) -> None:
    """Add ``(path, reason)`` to ``failed`` and log it; an :class:`AudioReadError` names the file itself, other
    errors get the path and their type."""
    reason = str(exc) if isinstance(exc, AudioReadError) else f"{path}: {type(exc).__name__}: {exc}"
    failed.append((path, reason))
    log.warning("FAILED %s", reason)


def finish_batch(log: logging.Logger, failed: Sequence[tuple[Path, str]], failed_header: str, summary: str,
                 produced: bool, nothing_produced: str = "") -> int:
    """Log each failed item's reason under ``failed_header`` (``%d``: their count), then ``done: <summary>``.

    Returns 0 when the run ``produced`` something, else 1 (logging ``nothing_produced`` as an error, if given).
    """
    if failed:
        log.warning(failed_header, len(failed))
        for _path, reason in failed:
            log.warning("  %s", reason)
    log.info("done: %s", summary)
    if produced:
        return 0
    if nothing_produced:
        log.error("%s", nothing_produced)
    return 1
