"""glibc keeps freed memory unless told otherwise; the allocator settings the API uses give it back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from GPT_SoVITS.infer.memory import TrimWhenIdle, _glibc
from GPT_SoVITS.paths import REPO_ROOT

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc only")

# In a fresh process: free a large mmapped block (glibc then raises its mmap threshold to that size), allocate
# 200 MiB in blocks of the API's threshold and free all but the last one; report the resident growth before and
# after malloc_trim.
_SCRIPT = """
import json, sys
import psutil
from GPT_SoVITS.infer.memory import MMAP_THRESHOLD, configure_allocator, release_free_memory

if sys.argv[1] == "fixed":
    assert configure_allocator()
elif sys.argv[1] == "cli":  # the synthesis CLI sets the allocator up before it loads anything
    from GPT_SoVITS.infer.__main__ import main
    assert main(["--gpt", "missing.ckpt", "--sovits", "missing.pth", "--ref", "missing.wav", "--text", "x",
                 "--out", "out.wav"]) == 2  # missing files: a user error, after the set-up
rss = lambda: psutil.Process().memory_info().rss / 2**20
big = bytearray(16 << 20)
del big
base = rss()
blocks = [bytearray(MMAP_THRESHOLD) for _ in range((200 << 20) // MMAP_THRESHOLD)]
last = blocks[-1]
del blocks
kept = rss() - base
released = release_free_memory()
print(json.dumps({"kept": kept, "after_trim": rss() - base, "released": released}))
"""


def _run(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_default_glibc_keeps_freed_tensors_and_trim_gives_them_back() -> None:
    result = _run("default")
    assert result["kept"] > 150  # MiB: freed, but still resident
    assert result["released"] and result["after_trim"] < 50


def test_a_fixed_mmap_threshold_gives_large_blocks_back_when_freed() -> None:
    assert _run("fixed")["kept"] < 50


def test_the_synthesis_cli_fixes_the_threshold_too() -> None:
    # without it a one-run synthesis peaked ~850 MiB higher (SoVITS decode; benchmarks/bench_memory.py)
    assert _run("cli")["kept"] < 50


def test_trim_when_idle_counts_running_requests(monkeypatch) -> None:
    import GPT_SoVITS.infer.memory as memory

    calls: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(1) or True)
    idle = TrimWhenIdle()
    with idle.running():
        with idle.running():
            pass
        assert calls == []  # another request still runs
    assert calls == [1]
    with TrimWhenIdle(enabled=False).running():
        pass
    assert calls == [1]
