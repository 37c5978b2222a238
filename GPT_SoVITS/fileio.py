"""Atomic, durable writes: a temp file in the destination folder, fsync, ``os.replace``, fsync of the folder.

A reader (or a crash, or a stop button) never sees a half-written file, and earlier results stay intact
until the new one is complete. The temp file is in the same folder, so the rename never crosses a file
system and works with non-ASCII paths. On Windows the rename is retried for a moment while another process
(a virus scanner, a reader) holds the destination open (:func:`GPT_SoVITS.oscompat.replace_file`). The data is
flushed to the disk before the rename and the folder entry after it, so a file reported as saved survives a power
cut (without the fsyncs the rename can reach the disk before the data, leaving an empty or truncated file under
the final name). The final file gets the mode a plain ``open()`` would give it (0666 minus the umask).

A process killed mid-write leaves its temp file behind (``.<stem>.<random>.tmp<suffix>``);
:func:`remove_leftover_temps` clears them when a job starts again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from GPT_SoVITS.oscompat import IS_WINDOWS, replace_file


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


#: The temp-name marker :func:`atomic_path` puts before the destination's suffix
TEMP_MARKER = ".tmp"
_TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk (the writer has closed it)."""
    fd = os.open(path, os.O_RDWR if IS_WINDOWS else os.O_RDONLY)  # Windows' fsync needs write access
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to the disk.

    POSIX only: Windows cannot open a folder for fsync, and NTFS journals the rename itself.
    """
    if IS_WINDOWS:
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network mounts) refuse fsync on a folder; the data itself is synced
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; on success it is synced and replaces ``dest``, on error it is removed.

    The temp name keeps ``dest``'s suffix so format-sniffing writers (soundfile, torch) behave the same. The
    writer must have closed the file when the ``with`` block ends.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f"{TEMP_MARKER}{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        replace_file(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(dest.parent)


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_text(dest: Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(dest, text.encode(encoding))


def is_leftover_temp(path: Path) -> bool:
    """True for a temp file :func:`atomic_path` names (``.<stem>.<8 random chars>.tmp<suffix>``)."""
    return _TEMP_NAME.match(Path(path).name) is not None


def remove_leftover_temps(folders: Iterable[Path]) -> list[Path]:
    """Delete the temp files a killed writer left in ``folders`` (not recursive); returns what was removed.

    Call it when a job starts, before it writes: a temp file is only ever in use while its writer runs, and a
    job is the only writer of its folders.
    """
    removed = []
    for folder in dict.fromkeys(Path(f) for f in folders):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and is_leftover_temp(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


class OutputDirError(ValueError):
    """An output folder cannot be used (it is a file, or it cannot be created or written); the message says why."""


def ensure_output_dir(folder: Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that files can be written in it, before any work starts.

    Raises :class:`OutputDirError` naming the folder and the problem (a file in its place, a file where one of
    its parent folders should be, no permission, a read-only disk), instead of a traceback halfway through a job.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputDirError(f"The {what} {folder} is an existing file, not a folder; choose a folder (an existing "
                             "one or a new name).")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), folder)
        raise OutputDirError(f"The {what} {folder} cannot be created: {blocker} is a file, not a folder.") from None
    except OSError as exc:
        raise OutputDirError(f"The {what} {folder} cannot be created ({exc.strerror or exc}); choose a folder you "
                             "can write to.") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(f"The {what} {folder} is not writable ({exc.strerror or exc}); choose a folder you can "
                             "write to, or change its permissions.") from None
    return folder
