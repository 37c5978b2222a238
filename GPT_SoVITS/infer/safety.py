"""What a network client may make the server do: which files it may read, how large a request may be, which
web pages may change its state.

Upstream's API opens whatever path a request names (``ref_audio_path``, ``weights_path``), so anyone who can
reach the port can probe or read files on the host. Here every client-supplied path is resolved (symlinks and
``..`` included) and must lie inside one of the configured folders. Request sizes are bounded
(:class:`RequestLimits`) and state-changing requests from other web sites are refused (:class:`OriginPolicy`).
Plain logic: the HTTP glue is in ``app/api.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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


# ---------------------------------------------------------------------------------------------- request limits
class RequestLimitError(ValueError):
    """A request is larger than the server allows; the message names the limit and the option that changes it."""


@dataclass(frozen=True)
class RequestLimits:
    """How much one API request may ask for (each bound has a command-line option of the same name).

    Defaults suit a TTS server: 1 MiB is far above any real request body (10,000 characters of Chinese are
    30 kB of UTF-8); 10,000 characters are about 40 minutes of speech, and 500 sentences bound the work a
    request can hold a synthesis slot for; upstream averages the timbre of a handful of references at most.
    """

    max_body_bytes: int = 1 << 20  # request body (and query string) size
    max_text_chars: int = 10_000  # characters of text to speak
    max_sentences: int = 500  # pieces after the text split
    max_references: int = 10  # main reference + aux_ref_audio_paths

    def check_body(self, size: int, what: str = "request body") -> None:
        if size > self.max_body_bytes:
            raise RequestLimitError(f"the {what} is {size} bytes; the limit is {self.max_body_bytes} bytes (start "
                                    "the server with --max-body-bytes to change it)")

    def check_text(self, text: str, field: str = "text") -> None:
        if len(text) > self.max_text_chars:
            raise RequestLimitError(f"{field} is {len(text)} characters long; the limit is {self.max_text_chars} "
                                    "(split the text into several requests, or start the server with "
                                    "--max-text-chars to change it)")

    def check_sentences(self, count: int, method: str) -> None:
        if count > self.max_sentences:
            raise RequestLimitError(f"the text splits into {count} sentences with {method}; the limit is "
                                    f"{self.max_sentences} (split the text into several requests, or start the "
                                    "server with --max-sentences to change it)")

    def check_references(self, count: int) -> None:
        if count > self.max_references:
            raise RequestLimitError(f"the request names {count} reference audios (ref_audio_path + "
                                    f"aux_ref_audio_paths); the limit is {self.max_references} (start the server "
                                    "with --max-references to change it)")


# --------------------------------------------------------------------------------------------- cross-site requests
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an Origin/Referer value, or None if it is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def _origin_text(origin: tuple[str, str, int]) -> str:
    scheme, host, port = origin
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


@dataclass(frozen=True)
class OriginPolicy:
    """Which web pages may make the server change its state (switch models, set the reference, exit).

    A browser sends the page's address with every request (``Origin``, else ``Referer``), and modern browsers
    say whether a request crosses sites (``Sec-Fetch-Site``). Any page the user visits could otherwise switch the
    server's models with an ``<img src=http://127.0.0.1:9880/set_sovits_weights?…>``. Allowed: requests without
    these headers (scripts and api_v2 clients send none), pages served by this server itself (the address and
    port the client connected to; 127.0.0.1, localhost and ::1 count as one), and the ``allowed`` origins.
    Host names are compared with the connection's address, not the ``Host`` header, so DNS rebinding does not
    pass for same-origin.
    """

    allowed: tuple[str, ...] = ()  # "http://host:port" origins (the --allow-origin values)

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        normalized = []
        for value in origins:
            origin = _origin_of(value)
            if origin is None:
                raise ValueError(f"--allow-origin {value!r} is not an origin like http://192.168.1.5:8080")
            normalized.append(_origin_text(origin))
        return cls(tuple(dict.fromkeys(normalized)))

    def refusal(self, headers: Mapping[str, str], server: tuple[str, int] | None) -> str | None:
        """Why a state-changing request must be refused, or None if it may proceed.

        ``headers`` are the request's (lower-case names); ``server`` is the local address the client connected to.
        """
        claimed = headers.get("origin") or headers.get("referer")
        if not claimed:
            site = headers.get("sec-fetch-site", "")
            if site in ("cross-site", "same-site"):
                return ("cross-site request refused: a web page on another site asked this server to change its "
                        "state; use a script or the server's own pages")
            return None
        origin = _origin_of(claimed)
        if origin is not None:
            if self._same_origin(origin, server) or _origin_text(origin) in self.allowed:
                return None
            shown = _origin_text(origin)
        else:
            shown = claimed.strip()[:100]
        return (f"cross-site request refused: the page at {shown} may not change this server's state; start the "
                f"server with --allow-origin {shown} to allow it")

    @staticmethod
    def _same_origin(origin: tuple[str, str, int], server: tuple[str, int] | None) -> bool:
        if server is None:
            return False
        _, host, port = origin
        own_host, own_port = str(server[0]).lower(), int(server[1])
        if port != own_port:
            return False
        return host == own_host or (host in LOOPBACK_HOSTS and (own_host in LOOPBACK_HOSTS
                                                                or own_host.startswith("127.")))
