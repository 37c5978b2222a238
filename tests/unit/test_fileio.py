"""Atomic writes are durable (file and folder synced around the rename) and their leftovers can be cleared."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from GPT_SoVITS import fileio
from GPT_SoVITS.fileio import atomic_path, atomic_write_bytes, is_leftover_temp, remove_leftover_temps


def _spy_fsync(monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, object]]) -> None:
    """Record which inode every fsync flushes, and every rename, in order (the real calls still run)."""
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append(("fsync", (st.st_dev, st.st_ino)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.skipif(os.name == "nt", reason="folder fsync is POSIX only")
def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, object]] = []
    _spy_fsync(monkeypatch, events)
    target = tmp_path / "weights.pth"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"payload")  # a writer that does not sync by itself (torch.save, soundfile)
    file_id = (target.stat().st_dev, target.stat().st_ino)  # the inode is the temp file's, renamed
    folder_id = (tmp_path.stat().st_dev, tmp_path.stat().st_ino)
    assert events == [("fsync", file_id), ("replace", "weights.pth"), ("fsync", folder_id)]
    events.clear()
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]


def test_a_failed_write_syncs_and_renames_nothing(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, object]] = []
    _spy_fsync(monkeypatch, events)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.pt") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert events == [] and list(tmp_path.iterdir()) == []


def test_leftover_temps_of_a_killed_writer_are_recognised_and_removed(tmp_path: Path) -> None:
    """A writer killed with SIGKILL inside atomic_path leaves its temp file; the cleanup removes only those."""
    states, weights = tmp_path / "states", tmp_path / "weights"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from GPT_SoVITS.fileio import atomic_path
        with atomic_path(Path({str(states / "sovits_D_00000004.pt")!r})) as tmp:
            tmp.write_bytes(b"x" * 1000)
            with atomic_path(Path({str(weights / "exp_e2_s4.pth")!r})) as empty:
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    states.mkdir()
    weights.mkdir()
    keep = [states / "sovits_G_00000002.pt", states / ".hidden", weights / "exp.tmp.pth", weights / "notes.txt"]
    for path in keep:
        path.write_bytes(b"keep")
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(fileio.__file__).parents[1])
    assert proc.returncode == -9
    left = sorted(p for folder in (states, weights) for p in folder.iterdir() if p not in keep)
    assert [p.name.endswith((".tmp.pt", ".tmp.pth")) for p in left] == [True, True], left
    assert all(is_leftover_temp(p) for p in left)
    assert (weights / left[-1].name).stat().st_size == 0  # mkstemp's empty file
    removed = remove_leftover_temps([states, weights, weights, tmp_path / "missing"])
    assert sorted(removed) == left
    assert sorted(p for folder in (states, weights) for p in folder.iterdir()) == sorted(keep)
