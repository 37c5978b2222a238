"""Which files a network client may make the server read.

Upstream's API opens whatever path a request names (``ref_audio_path``, ``weights_path``), so anyone who can
reach the port can probe or read files on the host. Here every client-supplied path is resolved (symlinks and
``..`` included) and must lie inside one of the configured folders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from GPT_SoVITS.paths import REPO_ROOT


class ForbiddenPathError(ValueError):
    """A requested path lies outside the folders the server was allowed to read."""


@dataclass(frozen=True)
class PathPolicy:
    """Allowed folders for one kind of file; relative request paths are taken relative to ``base``."""

    roots: tuple[Path, ...]
    base: Path = REPO_ROOT
    suffixes: tuple[str, ...] = ()  # allowed file suffixes (lower case); empty = any
    what: str = "file"  # used in messages, e.g. "reference audio"
    flag: str = "--ref-dir"  # the command-line option that adds a folder

    @classmethod
    def of(cls, roots: Iterable[Path | str], **kwargs: object) -> PathPolicy:
        return cls(tuple(Path(r).expanduser().resolve() for r in roots), **kwargs)

    def resolve(self, value: str | Path) -> Path:
        """The real path of ``value`` if it is allowed; otherwise :class:`ForbiddenPathError`."""
        text = str(value).strip()
        if not text or "\x00" in text:
            raise ForbiddenPathError(f"{self.what}: empty or invalid path")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base / path
        real = path.resolve()
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            raise ForbiddenPathError(
                f"{self.what} {text!r} is outside the folders this server may read; put the file under one of "
                f"{', '.join(str(r) for r in self.roots)} or start the server with {self.flag} <folder>")
        if self.suffixes and real.suffix.lower() not in self.suffixes:
            raise ForbiddenPathError(f"{self.what} {text!r} must be a {' or '.join(self.suffixes)} file")
        return real


def weight_roots(base: Path = REPO_ROOT, pretrained: Path | None = None,
                 extra: Iterable[Path] = ()) -> list[Path]:
    """The release-weight folders (``GPT_weights*``/``SoVITS_weights*`` under ``base``), the pretrained folder
    and any extra folders."""
    roots = [p for p in sorted(Path(base).glob("GPT_weights*")) + sorted(Path(base).glob("SoVITS_weights*"))]
    # folders created later (after the first training) are allowed too
    roots += [Path(base) / name for name in ("GPT_weights", "SoVITS_weights", "GPT_weights_v2", "SoVITS_weights_v2")]
    if pretrained is not None:
        roots.append(Path(pretrained))
    roots.extend(Path(p) for p in extra)
    return roots
