"""The job runner: long jobs run as child processes ``[python, -m, module, *argv]`` with a log file each.

State lives here, in the server process, so jobs survive a browser reload. One running instance per job
name; stopping kills the whole process tree; a job counts as finished only if it exits 0 *and* the outputs
it promised exist. ``CUDA_VISIBLE_DEVICES`` is the only setting passed through the environment (in the
child's own environment only); everything else travels as command-line arguments.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from GPT_SoVITS.logs import Progress, parse_progress
from GPT_SoVITS.paths import REPO_ROOT

log = logging.getLogger(__name__)

#: Returns ``None`` when the promised outputs exist, else a message saying what is missing.
OutputCheck = Callable[[], "str | None"]


class JobState(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


class JobBusyError(RuntimeError):
    """A job with this name is already running."""


@dataclass(frozen=True)
class JobSpec:
    """What to run: ``python -m module *argv``, where to log, and how to tell it produced its outputs."""

    module: str
    argv: tuple[str, ...] = ()
    log_file: Path | None = None
    check_outputs: OutputCheck | None = None
    gpu: str | None = None  # becomes CUDA_VISIBLE_DEVICES in the child's environment only
    on_finished: Callable[[], None] | None = None  # called once, in the runner, after a successful finish

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.argv]


@dataclass(frozen=True)
class JobStatus:
    """A snapshot for the UI."""

    name: str
    state: JobState
    returncode: int | None = None
    elapsed: float = 0.0
    progress: Progress | None = None
    message: str = ""
    log_file: Path | None = None

    @property
    def running(self) -> bool:
        return self.state is JobState.RUNNING


@dataclass
class _Job:
    name: str
    spec: JobSpec
    popen: subprocess.Popen
    log_file: Path
    started: float
    ended: float | None = None
    state: JobState = JobState.RUNNING
    message: str = ""
    stop_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)


def read_tail(path: Path | None, max_lines: int = 30, max_bytes: int = 64 * 1024) -> str:
    """The last ``max_lines`` lines of a text file (reads at most ``max_bytes`` from its end)."""
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # first line may be cut in the middle
    return "\n".join(lines[-max_lines:])


def kill_tree(pid: int, timeout: float = 5.0) -> None:
    """Terminate a process and all its descendants; kill whatever survives ``timeout`` seconds."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = [*parent.children(recursive=True), parent]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout)


class ProcessManager:
    """Starts, watches, stops and reports on named child-process jobs."""

    def __init__(self, log_dir: Path, cwd: Path = REPO_ROOT):
        self.log_dir = Path(log_dir)
        self.cwd = cwd
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    def start(self, name: str, spec: JobSpec) -> JobStatus:
        """Start job ``name``; raises :class:`JobBusyError` if it is already running."""
        with self._lock:
            current = self._jobs.get(name)
            if current is not None and current.state is JobState.RUNNING:
                raise JobBusyError(f"{name} is already running; stop it first.")
            log_file = spec.log_file or self.log_dir / f"{name}.log"
            log_file.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
            if spec.gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = spec.gpu
            with open(log_file, "ab") as log_fh:
                log_fh.write(f"$ {' '.join(spec.command())}\n".encode())
                log_fh.flush()
                popen = subprocess.Popen(spec.command(), cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
            job = _Job(name, spec, popen, log_file, started=time.monotonic())
            self._jobs[name] = job
        log.info("started %s (pid %d): %s", name, popen.pid, " ".join(spec.command()))
        threading.Thread(target=self._watch, args=(job,), name=f"watch-{name}", daemon=True).start()
        return self.status(name)

    def _watch(self, job: _Job) -> None:
        rc = job.popen.wait()
        state, message = JobState.FINISHED, ""
        if job.stop_requested:
            state, message = JobState.STOPPED, "stopped by the user"
        elif rc != 0:
            state, message = JobState.FAILED, f"exited with code {rc}"
        elif job.spec.check_outputs is not None:
            missing = job.spec.check_outputs()
            if missing:
                state, message = JobState.FAILED, f"exited 0 but its outputs are missing: {missing}"
        if state is JobState.FINISHED and job.spec.on_finished is not None:
            try:
                job.spec.on_finished()
            except Exception:  # a UI hook must never break the runner
                log.exception("on_finished hook of %s failed", job.name)
        with self._lock:
            job.ended = time.monotonic()
            job.state, job.message = state, message
        job.done.set()
        log.info("%s %s (rc=%s) %s", job.name, state.value, rc, message)

    def status(self, name: str) -> JobStatus:
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                return JobStatus(name, JobState.IDLE)
            end = job.ended if job.ended is not None else time.monotonic()
            snapshot = (job.state, job.popen.returncode if job.ended is not None else None,
                        end - job.started, job.message, job.log_file)
        state, rc, elapsed, message, log_file = snapshot
        return JobStatus(name, state, rc, elapsed, self._progress(log_file), message, log_file)

    @staticmethod
    def _progress(log_file: Path) -> Progress | None:
        for line in reversed(read_tail(log_file, max_lines=200).splitlines()):
            found = parse_progress(line)
            if found is not None:
                return found
        return None

    def tail(self, name: str, n: int = 30) -> str:
        with self._lock:
            job = self._jobs.get(name)
        return read_tail(job.log_file, n) if job else ""

    def wait(self, name: str, timeout: float | None = None) -> JobStatus:
        with self._lock:
            job = self._jobs.get(name)
        if job is not None:
            job.done.wait(timeout)
        return self.status(name)

    def stop(self, name: str) -> bool:
        """Stop job ``name`` and its whole process tree; returns False if it was not running."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.state is not JobState.RUNNING:
                return False
            job.stop_requested = True
        kill_tree(job.popen.pid)
        job.done.wait(10)
        return True

    def running(self) -> list[str]:
        with self._lock:
            return [name for name, job in self._jobs.items() if job.state is JobState.RUNNING]

    def stop_all(self) -> None:
        for name in self.running():
            self.stop(name)


def expect_files(*paths: Path) -> OutputCheck:
    """An output check: every path must exist (a folder must not be empty)."""

    def check() -> str | None:
        missing = [str(p) for p in paths if not p.exists() or (p.is_dir() and not any(p.iterdir()))]
        return ", ".join(missing) or None

    return check


def expect_glob(folder: Path, pattern: str) -> OutputCheck:
    """An output check: ``folder`` must contain at least one file matching ``pattern``."""

    def check() -> str | None:
        return None if folder.is_dir() and any(folder.glob(pattern)) else f"no {pattern} in {folder}"

    return check


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"

