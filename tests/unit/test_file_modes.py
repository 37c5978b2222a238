"""Files written atomically get the mode a plain ``open()`` would give them (0666 minus the umask), not the
0600 of ``tempfile.mkstemp``: label files, their backups, 1A outputs, training states and release files."""

from __future__ import annotations

import os
import stat

import pytest

from GPT_SoVITS import fileio, labels
from GPT_SoVITS.labels import LabelEntry


@pytest.fixture
def umask():
    """Set a umask for one test (the cached value is refreshed before and after)."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)
        fileio.current_umask.cache_clear()

    yield set_mask
    os.umask(previous)
    fileio.current_umask.cache_clear()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert fileio.current_umask() == mask
    fileio.atomic_write_text(tmp_path / "a.txt", "x")
    with fileio.atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"y")
    plain = tmp_path / "plain.txt"
    plain.write_text("z")
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.bin") == mode(plain) == 0o666 & ~mask


def test_label_file_and_its_backup_are_readable_by_the_group(tmp_path, umask):
    from tools.label_fixer import LabelSession

    umask(0o022)
    list_path = labels.write_list(tmp_path / "v.list", [LabelEntry(str(tmp_path / "a.wav"), "s", "EN", "hello")])
    assert mode(list_path) == 0o644
    session = LabelSession(list_path)
    session.set_texts([0], ["hello there"])
    session.save()
    assert mode(list_path) == 0o644
    assert mode(session.backup) == 0o644
