"""The batch tools' shared command-line tail: report what failed, log a ``done:`` summary, pick the exit code."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path


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
