"""Logging set-up for entry points, and the progress-line convention shared by jobs and the launcher.

Library code only does ``log = logging.getLogger(__name__)``; entry points call :func:`setup_logging`.
Long jobs report progress through a callback; their CLI passes :func:`progress_logger`, which writes lines
such as ``PROGRESS 37/120 slicing`` that the launcher's job runner parses to draw a progress bar.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: ``progress(done, total)``: called by long-running library loops.
ProgressCallback = Callable[[int, int], None]

_PROGRESS_RE = re.compile(r"PROGRESS (\d+)/(\d+)(?: (.*))?$")


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    label: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


def format_progress(done: int, total: int, label: str = "") -> str:
    return f"PROGRESS {done}/{total}" + (f" {label}" if label else "")


def parse_progress(line: str) -> Progress | None:
    match = _PROGRESS_RE.search(line.rstrip())
    if not match:
        return None
    return Progress(int(match.group(1)), int(match.group(2)), match.group(3) or "")


def progress_logger(label: str, logger: logging.Logger | None = None, every: int = 1) -> ProgressCallback:
    """A progress callback that logs machine-readable progress lines (at most one per ``every`` items)."""
    target = logger or logging.getLogger("progress")

    def report(done: int, total: int) -> None:
        if done == total or done % max(1, every) == 0:
            target.info(format_progress(done, total, label))

    return report


def setup_logging(log_file: Path | None = None, level: int = logging.INFO) -> None:
    """Log to stderr (and to ``log_file`` if given). Call from an entry point's ``main``.

    Calling it again replaces the handlers it installed before and leaves other handlers alone (a test
    runner's capture handler, for instance).
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_gpt_sovits", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    formatter = logging.Formatter(LOG_FORMAT)
    for handler in handlers:
        handler._gpt_sovits = True  # type: ignore[attr-defined]
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
