"""Shared machinery of the formatting steps: items, item keys, journals, shards, reports and the manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from GPT_SoVITS.fileio import atomic_write_text
from GPT_SoVITS.labels import LabelFileError, read_list, resolve_audio_path
from GPT_SoVITS.paths import ExperimentPaths

log = logging.getLogger(__name__)

STEPS = ("text", "hubert", "sv", "semantic")  # in order; which of them a version runs: VersionSpec.prepare_steps


class EmptyDatasetError(RuntimeError):
    """A step ended with no usable item; the message says what to fix."""


@dataclass(frozen=True)
class Item:
    """One clip of the dataset: ``name`` (the audio basename) is its identity in every step."""

    name: str
    audio: Path
    lang: str
    text: str


@dataclass(frozen=True)
class Issue:
    """An item left out of a step, and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass
class StepReport:
    """What one step did: items done now, reused from an earlier run, and left out with their reasons."""

    step: str
    done: int = 0
    reused: int = 0
    issues: list[Issue] = field(default_factory=list)

    def merge(self, other: StepReport) -> None:
        self.done += other.done
        self.reused += other.reused
        self.issues.extend(other.issues)

    @property
    def usable(self) -> int:
        return self.done + self.reused

    def summary(self) -> str:
        text = f"{self.step}: {self.usable} item(s) ready ({self.done} computed, {self.reused} reused)"
        if self.issues:
            reasons: dict[str, int] = {}
            for issue in self.issues:
                kind = issue.reason.split(":", 1)[0]
                reasons[kind] = reasons.get(kind, 0) + 1
            text += "; left out: " + ", ".join(f"{n} {kind}" for kind, n in sorted(reasons.items()))
        return text


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` of ``count`` takes items ``index::count`` (upstream's i_part/all_parts)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like 0/2 (index/count), got {text!r}") from None
        if not 0 <= index < count:
            raise ValueError(f"shard index must be in 0..{count - 1}, got {text!r}")
        return cls(index, count)

    def select(self, items: list[Item]) -> list[Item]:
        return items[self.index:: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def load_items(list_path: Path, audio_dir: Path | None = None) -> tuple[list[Item], list[Issue]]:
    """Items of a ``.list`` in file order, and an issue for every unusable line (bad language, no audio...)."""
    try:
        labels = read_list(Path(list_path), audio_dir=audio_dir)
    except LabelFileError as exc:
        raise EmptyDatasetError(str(exc)) from None
    issues = [Issue(f"line {p.line_no}", f"{p.kind}: {p.reason}") for p in labels.problems]
    items = []
    for entry in labels.valid_entries():
        text = entry.text.strip()
        if not text:
            issues.append(Issue(entry.name, "empty text: the label has no text"))
            continue
        items.append(Item(entry.name, resolve_audio_path(entry.wav_path, audio_dir), entry.lang, text))
    return items, issues


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (item keys, fingerprints)."""
    data = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:16]


def file_fingerprint(path: Path) -> str:
    """Identify a model file or folder cheaply: name, size, mtime and the first and last MiB of each file."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    hasher = hashlib.sha256()
    for file in files:
        stat = file.stat()
        hasher.update(f"{file.relative_to(path) if path.is_dir() else file.name}:{stat.st_size}:"
                      f"{stat.st_mtime_ns}".encode())
        with open(file, "rb") as fh:
            hasher.update(fh.read(1 << 20))
            if stat.st_size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                hasher.update(fh.read())
    return hasher.hexdigest()[:16]


def audio_fingerprint(path: Path) -> str:
    stat = Path(path).stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class Journal:
    """Per-item records of one step and shard, appended line by line (JSON), so a stopped run loses nothing.

    A record is ``{"name", "key", ...data}``; reading skips a torn last line. Records whose key differs from
    the current one are stale (their inputs changed) and are recomputed.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return records
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # torn write of a stopped run
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["name"]] = record
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()


def journal_path(exp: ExperimentPaths, step: str, shard: Shard) -> Path:
    return exp.root / ".prepare" / f"{step}-{shard.index}of{shard.count}.jsonl"


def all_journal_records(exp: ExperimentPaths, step: str) -> dict[str, dict[str, Any]]:
    """Records of every shard journal of a step (later files win on duplicates)."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted((exp.root / ".prepare").glob(f"{step}-*.jsonl")):
        records.update(Journal(path).read())
    return records


@dataclass(frozen=True)
class Manifest:
    """What produced the experiment folder: the list (path and content hash) and the pretrained models."""

    list_path: str
    list_sha256: str
    models: dict[str, str] = field(default_factory=dict)  # role → fingerprint
    version: str = "v2"

    @staticmethod
    def path(exp: ExperimentPaths) -> Path:
        return exp.root / ".prepare" / "manifest.json"

    @classmethod
    def read(cls, exp: ExperimentPaths) -> Manifest | None:
        try:
            return cls(**json.loads(cls.path(exp).read_text(encoding="utf-8")))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def write(self, exp: ExperimentPaths) -> None:
        atomic_write_text(self.path(exp), json.dumps(asdict(self), ensure_ascii=False, indent=1))

    def changes_since(self, old: Manifest | None) -> list[str]:
        """Human-readable differences from an earlier manifest (empty when nothing changed)."""
        if old is None:
            return []
        changes = []
        if old.list_sha256 != self.list_sha256 or old.list_path != self.list_path:
            changes.append(f"the label list changed ({old.list_path} → {self.list_path})")
        for role, fp in self.models.items():
            if role in old.models and old.models[role] != fp:
                changes.append(f"the {role} model changed")
        if old.version != self.version:
            changes.append(f"the version changed ({old.version} → {self.version})")
        return changes


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

