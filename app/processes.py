"""The job runner: long jobs run as child processes ``[python, -m, module, *argv]`` with a log file each.

State lives here, in the server process, so jobs survive a browser reload. One running instance per job
name; stopping ends the whole process tree; a job counts as finished only if it exits 0 *and* the outputs
it promised exist. ``CUDA_VISIBLE_DEVICES`` is the only setting passed through the environment (in the
child's own environment only); everything else travels as command-line arguments.

Children run in UTF-8 mode and unbuffered (``-X utf8 -u``, not only the environment variables: the embedded
Python of the Windows package ignores ``PYTHON*`` variables), so logs are UTF-8 whatever the Windows code page.
How a job is asked to stop gracefully differs by platform (a signal on POSIX, a stop file on Windows); see
:mod:`GPT_SoVITS.oscompat`.
"""

from __future__ import annotations

import atexit
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

from GPT_SoVITS import oscompat
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
    #: the job's option that takes a stop file (e.g. ``--stop-file``): creating the file asks it to finish
    #: gracefully; used where no catchable stop signal exists (Windows). None: the job is just ended.
    stop_flag: str | None = None

    def command(self, stop_file: Path | None = None) -> list[str]:
        stop = [self.stop_flag, str(stop_file)] if stop_file is not None and self.stop_flag else []
        return [sys.executable, "-X", "utf8", "-u", "-m", self.module, *self.argv, *stop]


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
    stop_file: Path | None = None
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


class ProcessManager:
    """Starts, watches, stops and reports on named child-process jobs.

    ``stop_by_file``: ask jobs that take a stop file (:attr:`JobSpec.stop_flag`) to stop through it, waiting up
    to ``stop_grace`` seconds before ending the tree; the default is the platform's way
    (:data:`GPT_SoVITS.oscompat.STOP_BY_FILE`).
    """

    def __init__(self, log_dir: Path, cwd: Path = REPO_ROOT, *, stop_by_file: bool = oscompat.STOP_BY_FILE,
                 stop_grace: float = 60.0):
        self.log_dir = Path(log_dir)
        self.cwd = cwd
        self.stop_by_file = stop_by_file
        self.stop_grace = stop_grace
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
            stop_file = None
            if self.stop_by_file and spec.stop_flag:
                stop_file = self.log_dir / f"{name}.stop"
                stop_file.parent.mkdir(parents=True, exist_ok=True)
                stop_file.unlink(missing_ok=True)  # a request left from an earlier run must not stop this one
            command = spec.command(stop_file)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"}
            if spec.gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = spec.gpu
            with open(log_file, "ab") as log_fh:
                log_fh.write(f"$ {' '.join(command)}\n".encode())
                log_fh.flush()
                popen = subprocess.Popen(command, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log_fh, stderr=subprocess.STDOUT, **oscompat.new_process_group())
            job = _Job(name, spec, popen, log_file, started=time.monotonic(), stop_file=stop_file)
            self._jobs[name] = job
        log.info("started %s (pid %d): %s", name, popen.pid, " ".join(command))
        threading.Thread(target=self._watch, args=(job,), name=f"watch-{name}", daemon=True).start()
        return self.status(name)

    def _watch(self, job: _Job) -> None:
        rc = job.popen.wait()
        if job.stop_file is not None:
            job.stop_file.unlink(missing_ok=True)
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
        """Stop job ``name`` and its whole process tree; returns False if it was not running.

        A job with a stop file is asked through it first and given ``stop_grace`` seconds to save and exit;
        then (or at once, for other jobs) every process left in its tree is terminated (POSIX: SIGTERM, which a
        trainer also takes as its request to save), and killed 5 s later.
        """
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.state is not JobState.RUNNING:
                return False
            job.stop_requested = True
        tree = oscompat.process_tree(job.popen.pid)  # taken now: descendants of an exited job cannot be found
        if job.stop_file is not None:
            job.stop_file.touch()
            if not job.done.wait(self.stop_grace):
                log.warning("%s did not stop within %.0f s of its stop request; ending it", name, self.stop_grace)
        oscompat.terminate_processes(tree)
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

