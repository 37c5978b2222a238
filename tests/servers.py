"""Helpers for tests that start a server process (launcher, sub-WebUIs, API) and drive it, also in Chromium."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from GPT_SoVITS.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(argv: list[str], url: str, timeout: float = 120.0) -> Iterator[subprocess.Popen]:
    """Run ``python *argv`` from the repository root until ``url`` answers; stop it afterwards.

    Its output goes to a temporary file, not a pipe: a pipe nobody reads fills up (64 KiB) during a long test and
    then blocks the server the next time it logs.
    """
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as output:
        proc = subprocess.Popen([sys.executable, *argv], cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
                                text=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None:
                        output.seek(0)
                        pytest.fail(f"{' '.join(argv)} exited early:\n{output.read()}")
                    if time.monotonic() > deadline:
                        pytest.fail(f"{url} did not answer within {timeout:.0f} s")
                    time.sleep(0.5)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


@contextlib.contextmanager
def chromium_page() -> Iterator[object]:
    """A Playwright page in Debian's headless Chromium (skips when the browser or Playwright is missing)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (bash install.sh --dev installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright missing: bash install.sh --dev")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page()
        finally:
            browser.close()
