"""The ``.list`` label file: ``wav_path|speaker|LANG|text`` per line, UTF-8.

This module owns the format. Batch ASR writes it, the label fixer edits it, and dataset formatting (1A) reads
it. Reading never drops a line silently: every bad line is reported with its line number and reason (wrong
field count, unknown language code, missing audio file, duplicate audio basename). The basename of the audio
path is the identity of an item in every later step, so two lines with the same basename are an error.
Writing is atomic (temp file + ``os.replace``), so a crash never leaves a half-written label file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from GPT_SoVITS.fileio import atomic_write_text

log = logging.getLogger(__name__)

LIST_SUFFIX = ".list"
FIELD_SEPARATOR = "|"

#: Accepted language codes (compared case-insensitively) → canonical code, as upstream's training accepts them.
LANGUAGE_ALIASES = {"zh": "zh", "ja": "ja", "jp": "ja", "en": "en", "ko": "ko", "yue": "yue"}

# Problem kinds; an entry with any of these is left out of :meth:`LabelFile.valid_entries`.
FIELD_COUNT = "field_count"
UNKNOWN_LANGUAGE = "unknown_language"
MISSING_AUDIO = "missing_audio"
DUPLICATE_BASENAME = "duplicate_basename"
EMPTY_TEXT = "empty_text"


#: Why a label file as a whole cannot be used, by kind (English; UIs translate the same templates by kind).
LABEL_FILE_MESSAGES = {
    "none_given": "No label file given: enter the path of a .list file.",
    "not_found": "Label file not found: {path}",
    "is_folder": "{path} is a folder; give the .list file inside it.",
    "unreadable": "Cannot read label file {path}: {reason}",
    "not_utf8": "{path} is not UTF-8 text (byte {byte}); re-save it as UTF-8.",
    "no_list_in_folder": "{path} is a folder with no .list file in it; give the path of a .list file (batch ASR "
                         "writes one into its output folder, named after the folder of clips).",
    "several_lists": "{path} is a folder with {n} .list files ({names}); give one of them.",
}


class LabelFileError(ValueError):
    """The label file as a whole cannot be used (not found, a folder, not UTF-8 ...); the message says why.

    ``kind`` (a key of :data:`LABEL_FILE_MESSAGES`) and ``params`` let a UI show the message in its language.
    """

    def __init__(self, kind: str, **params: object):
        self.kind, self.params = kind, params
        super().__init__(LABEL_FILE_MESSAGES[kind].format(**params))


def normalize_language(code: str) -> str:
    """``JP``/``ja``/``JA`` → ``ja`` and so on; raises ``ValueError`` for a code upstream does not accept."""
    canonical = LANGUAGE_ALIASES.get(code.strip().lower())
    if canonical is None:
        accepted = ", ".join(sorted({*LANGUAGE_ALIASES, *(c.upper() for c in LANGUAGE_ALIASES)}))
        raise ValueError(f"unknown language code {code!r} (accepted: {accepted})")
    return canonical


def clean_path(text: str) -> str:
    """Tidy a pasted path the way upstream does: strip spaces, quotes, newlines, U+202A and trailing slashes."""
    cleaned = text.strip().strip("\u202a").strip().strip('"').strip("'").strip()
    while len(cleaned) > 1 and cleaned[-1] in "/\\":
        cleaned = cleaned[:-1]
    return cleaned


def basename(wav_path: str) -> str:
    """The item key: the file name of a path written with either separator (Windows lists on Linux too)."""
    return wav_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def resolve_audio_path(wav_path: str, audio_dir: Path | str | None = None) -> Path:
    """Upstream's rule: with an audio folder, the clip is ``<audio_dir>/<basename of wav_path>``; else the path."""
    if audio_dir is not None and str(audio_dir).strip():
        return Path(audio_dir) / basename(wav_path)
    return Path(wav_path)


@dataclass(frozen=True)
class LabelEntry:
    """One line of a ``.list`` file. ``language`` keeps the code as written (e.g. ``JP``); see :attr:`lang`."""

    wav_path: str
    speaker: str
    language: str
    text: str

    @property
    def lang(self) -> str:
        """The canonical language code (``zh``, ``ja``, ``en``, ``ko``, ``yue``); raises ``ValueError``."""
        return normalize_language(self.language)

    @property
    def name(self) -> str:
        """The item key used by later steps: the basename of the audio path."""
        return basename(self.wav_path)

    def to_line(self) -> str:
        fields = (self.wav_path, self.speaker, self.language, self.text)
        return FIELD_SEPARATOR.join(f.replace("\n", " ").replace("\r", " ") for f in fields).strip()

    def with_text(self, text: str) -> LabelEntry:
        return replace(self, text=text)


@dataclass(frozen=True)
class LabelProblem:
    """Why one line is not usable: ``line_no`` is 1-based, ``kind`` one of the module's problem constants."""

    line_no: int
    kind: str
    reason: str
    line: str = ""

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


@dataclass
class LabelFile:
    """The readable entries of a ``.list`` file plus every problem found, in file order.

    ``entries`` holds every line that splits into four fields (with its line number in ``line_numbers``),
    even when a later check failed, so an editor can still show and fix it; ``valid_entries()`` is what a
    training step may use.
    """

    path: Path | None
    entries: list[LabelEntry] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    problems: list[LabelProblem] = field(default_factory=list)

    def valid_entries(self) -> list[LabelEntry]:
        bad = {p.line_no for p in self.problems}
        return [e for e, n in zip(self.entries, self.line_numbers, strict=True) if n not in bad]

    def unreadable_lines(self) -> list[LabelProblem]:
        """Lines that could not even be split into four fields (they are not in ``entries``)."""
        return [p for p in self.problems if p.kind == FIELD_COUNT]

    def report(self, limit: int = 20) -> str:
        """A human-readable problem summary, at most ``limit`` lines of detail."""
        if not self.problems:
            return f"{len(self.entries)} line(s), no problems"
        lines = [f"{len(self.problems)} problem(s) in {self.path or 'label file'}:"]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


def parse_line(line: str) -> LabelEntry:
    """Split one line into an entry; raises ``ValueError`` if it does not have exactly four fields."""
    fields = line.strip("\r\n").split(FIELD_SEPARATOR)
    if len(fields) != 4:
        raise ValueError(f"expected 4 fields wav_path|speaker|language|text separated by '|', found {len(fields)}")
    wav_path, speaker, language, text = fields
    return LabelEntry(clean_path(wav_path), speaker.strip(), language.strip(), text.strip())


def parse_text(text: str, path: Path | None = None, audio_dir: Path | str | None = None,
               check_audio: bool = True) -> LabelFile:
    """Parse ``.list`` content; see :func:`read_list`."""
    result = LabelFile(path)
    first_seen: dict[str, int] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = parse_line(raw)
        except ValueError as exc:
            result.problems.append(LabelProblem(line_no, FIELD_COUNT, str(exc), raw))
            continue
        result.entries.append(entry)
        result.line_numbers.append(line_no)
        result.problems.extend(_check_entry(entry, line_no, raw, first_seen, audio_dir, check_audio))
    return result


def _check_entry(entry: LabelEntry, line_no: int, raw: str, first_seen: dict[str, int],
                 audio_dir: Path | str | None, check_audio: bool) -> list[LabelProblem]:
    problems = []
    try:
        entry.lang  # noqa: B018 - validates the code
    except ValueError as exc:
        problems.append(LabelProblem(line_no, UNKNOWN_LANGUAGE, str(exc), raw))
    if not entry.text:
        problems.append(LabelProblem(line_no, EMPTY_TEXT, "the text is empty", raw))
    key = entry.name
    if key in first_seen:
        problems.append(LabelProblem(
            line_no, DUPLICATE_BASENAME,
            f"duplicate audio file name {key!r} (first on line {first_seen[key]}); file names identify items, "
            "so rename one of the files", raw))
    else:
        first_seen[key] = line_no
    if check_audio:
        audio = resolve_audio_path(entry.wav_path, audio_dir)
        if not audio.is_file():
            problems.append(LabelProblem(line_no, MISSING_AUDIO, f"audio file not found: {audio}", raw))
    return problems


def read_list(path: Path | str, audio_dir: Path | str | None = None, check_audio: bool = True) -> LabelFile:
    """Read and validate a ``.list`` file.

    Parameters
    ----------
    path: the label file.
    audio_dir: upstream's optional audio folder; when given, each clip is ``<audio_dir>/<basename>``.
    check_audio: also report lines whose audio file does not exist.

    Raises :class:`LabelFileError` when the file itself cannot be read; bad lines are reported in
    ``LabelFile.problems`` instead.
    """
    path = Path(path)
    if path.is_dir():
        raise LabelFileError("is_folder", path=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabelFileError("not_found", path=path) from None
    except OSError as exc:
        raise LabelFileError("unreadable", path=path, reason=exc.strerror or exc) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelFileError("not_utf8", path=path, byte=exc.start) from None
    return parse_text(text, path, audio_dir, check_audio)


def format_list(entries: Iterable[LabelEntry]) -> str:
    """The file content for ``entries``: one line each, newline-terminated."""
    return "".join(entry.to_line() + "\n" for entry in entries)


def write_list(path: Path | str, entries: Iterable[LabelEntry]) -> Path:
    """Write ``entries`` to ``path`` atomically (UTF-8); returns the path."""
    path = Path(path)
    entries = list(entries)
    for entry in entries:
        if any(FIELD_SEPARATOR in f for f in (entry.wav_path, entry.speaker, entry.language)):
            raise ValueError(f"'|' is not allowed in the path, speaker or language of {entry.wav_path!r}")
        if FIELD_SEPARATOR in entry.text:
            raise ValueError(f"'|' is not allowed in the text of {entry.name!r}: it separates the fields")
    atomic_write_text(path, format_list(entries))
    log.debug("wrote %d line(s) to %s", len(entries), path)
    return path


def find_list_file(path: Path | str) -> Path:
    """Accept a ``.list`` file, or a folder holding exactly one ``.list`` file (the usual mistake upstream).

    Raises :class:`LabelFileError` with a message saying what was expected.
    """
    path = Path(clean_path(str(path)))
    if not str(path).strip() or str(path) == ".":
        raise LabelFileError("none_given")
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == LIST_SUFFIX)
        if len(found) == 1:
            log.info("%s is a folder; using the label file inside it: %s", path, found[0].name)
            return found[0]
        if not found:
            raise LabelFileError("no_list_in_folder", path=path)
        raise LabelFileError("several_lists", path=path, n=len(found), names=", ".join(p.name for p in found))
    raise LabelFileError("not_found", path=path)
