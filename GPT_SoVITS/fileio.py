"""Atomic writes: a temp file in the destination folder, then ``os.replace``.

A reader (or a crash, or a stop button) never sees a half-written file, and earlier results stay intact
until the new one is complete. The temp file is in the same folder, so the rename never crosses a file
system and works with non-ASCII paths. On Windows the rename is retried for a moment while another process
(a virus scanner, a reader) holds the destination open (:func:`GPT_SoVITS.oscompat.replace_file`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from GPT_SoVITS.oscompat import replace_file


@functools.cache
def current_umask() -> int:
    """The process umask, read without changing it (Linux: /proc); elsewhere set-and-restore once, at first use.

    ``tempfile.mkstemp`` creates files with mode 0600 whatever the umask; atomic writes give the final file the
    mode a plain ``open()`` would have given it (0666 minus the umask), so a shared group can read the results.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; on success it replaces ``dest``, on error it is removed.

    The temp name keeps ``dest``'s suffix so format-sniffing writers (soundfile, torch) behave the same.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        replace_file(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(dest: Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(dest, text.encode(encoding))
