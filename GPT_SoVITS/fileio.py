"""Atomic writes: a temp file in the destination folder, then ``os.replace``.

A reader (or a crash, or a stop button) never sees a half-written file, and earlier results stay intact
until the new one is complete. The temp file is in the same folder, so the rename never crosses a file
system and works with non-ASCII paths. On Windows the rename is retried for a moment while another process
(a virus scanner, a reader) holds the destination open (:func:`GPT_SoVITS.oscompat.replace_file`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from GPT_SoVITS.oscompat import replace_file


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
