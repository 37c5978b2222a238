"""The job runner: long jobs run as child processes ``[python, -m, module, *argv]`` with a log file each.

State lives here, in the server process, so jobs survive a browser reload. One running instance per job
name; a job counts as finished only if it exits 0 *and* the outputs it promised exist.

Stopping is two-step, because a trainer must be allowed to finish its batch and save (one batch can take half a
minute on a slow machine): the first :meth:`ProcessManager.stop` sends the graceful signal (SIGTERM) to the
job's processes and waits however long the job needs to exit (state ``STOPPING``); only a second ``stop`` kills
the process tree. Settings travel as command-line arguments; the child's own environment gets only what must be
there before its libraries load: ``CUDA_VISIBLE_DEVICES`` (the job's GPU) and ``OMP_WAIT_POLICY=PASSIVE``
(unless the user set another value). OpenMP reads its wait policy once, when torch loads it; with the default
policy idle worker threads spin at every parallel region's end, and on a machine whose cores are busy with other
programs a descheduled spinner holds every barrier up: 2-thread decoding measured 3–5× slower than with the
passive policy (docs/models.md, "Under load").

Children run in UTF-8 mode and unbuffered (``-X utf8 -u``, not only the environment variables: the embedded
Python of the Windows package ignores ``PYTHON*`` variables), so logs are UTF-8 whatever the Windows code page.
How a job is asked to stop gracefully differs by platform (a signal on POSIX, a stop file on Windows); see
:mod:`GPT_SoVITS.oscompat`.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from GPT_SoVITS import oscompat
from GPT_SoVITS.logs import Progress, parse_progress
from GPT_SoVITS.paths import REPO_ROOT

log = logging.getLogger(__name__)

#: Returns ``None`` when the promised outputs exist, else a message saying what is missing.
OutputCheck = Callable[[], "str | None"]


class JobState(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"  # asked to stop (graceful signal sent); still running, e.g. saving its state
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
    flows: Mapping[str, str] | None = None  # workflow field → value offered to later steps after a successful finish
    # the graceful stop signal goes to the job's child processes only, not to the job process itself: torchrun
    # forwards a stop to its workers but kills them 30 s later, which would cut short a slow save
    stop_children_only: bool = False
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
    missing: str = ""  # the promised outputs that were missing (FAILED after exit code 0)
    run_id: int = 0  # grows with every start of any job of this manager; 0 = never started
    log_offset: int = 0  # where this run's lines begin in ``log_file`` (the log keeps earlier runs)

    @property
    def running(self) -> bool:
        """The job's process is alive (also while it is stopping)."""
        return self.state in (JobState.RUNNING, JobState.STOPPING)


@dataclass
class _Job:
    name: str
    spec: JobSpec
    popen: subprocess.Popen
    log_file: Path
    started: float
    run_id: int = 0
    log_offset: int = 0
    ended: float | None = None
    state: JobState = JobState.RUNNING
    message: str = ""
    missing: str = ""
    stop_requested: bool = False
    stop_file: Path | None = None
    stop_tree: list[psutil.Process] = field(default_factory=list)  # the job's process tree when the stop came
    done: threading.Event = field(default_factory=threading.Event)


def read_tail(path: Path | None, max_lines: int = 30, max_bytes: int = 64 * 1024, start: int = 0) -> str:
    """The last ``max_lines`` lines of a text file after byte ``start`` (reads at most ``max_bytes``)."""
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        begin = max(start, size - max_bytes)
        fh.seek(begin)
        data = fh.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if begin > start and lines:
        lines = lines[1:]  # first line may be cut in the middle
    return "\n".join(lines[-max_lines:])


def signal_stop(procs: list[psutil.Process], children_only: bool = False) -> None:
    """Send the graceful stop request (POSIX: SIGTERM) to a process tree (:func:`GPT_SoVITS.oscompat.process_tree`,
    the job's own process last), without waiting or escalating."""
    for proc in procs[:-1] if children_only else procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()


class ProcessManager:
    """Starts, watches, stops and reports on named child-process jobs.

    ``stop_by_file``: ask jobs that take a stop file (:attr:`JobSpec.stop_flag`) to stop through it instead of a
    signal; the default is the platform's way (:data:`GPT_SoVITS.oscompat.STOP_BY_FILE`).

    A stopped job counts as ``STOPPED`` only once its whole process tree (as it was when the stop came) has ended:
    a descendant still alive ``leftover_grace`` seconds after the job's own process exited (a worker that ignores
    the signal, or one the job left behind) is killed, so nothing keeps holding memory, a GPU or a port.
    """

    def __init__(self, log_dir: Path, cwd: Path = REPO_ROOT, *, stop_by_file: bool = oscompat.STOP_BY_FILE,
                 leftover_grace: float = 5.0):
        self.log_dir = Path(log_dir)
        self.cwd = cwd
        self.stop_by_file = stop_by_file
        self.leftover_grace = leftover_grace
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._runs = 0
        atexit.register(self.stop_all)

    def start(self, name: str, spec: JobSpec) -> JobStatus:
        """Start job ``name``; raises :class:`JobBusyError` if it is already running."""
        with self._lock:
            current = self._jobs.get(name)
            if current is not None and current.state in (JobState.RUNNING, JobState.STOPPING):
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
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see the module docstring
            if spec.gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = spec.gpu
            with open(log_file, "ab") as log_fh:
                offset = log_fh.seek(0, os.SEEK_END)
                log_fh.write(f"$ {' '.join(command)}\n".encode())
                log_fh.flush()
                popen = subprocess.Popen(command, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log_fh, stderr=subprocess.STDOUT, **oscompat.new_process_group())
            self._runs += 1
            job = _Job(name, spec, popen, log_file, started=time.monotonic(), run_id=self._runs, log_offset=offset,
                       stop_file=stop_file)
            self._jobs[name] = job
        log.info("started %s (pid %d): %s", name, popen.pid, " ".join(command))
        threading.Thread(target=self._watch, args=(job,), name=f"watch-{name}", daemon=True).start()
        return self.status(name)

    def _watch(self, job: _Job) -> None:
        rc = job.popen.wait()
        if job.stop_file is not None:
            job.stop_file.unlink(missing_ok=True)
        if job.stop_requested:
            self._end_leftovers(job)
        state, message, missing = JobState.FINISHED, "", ""
        if job.stop_requested:
            state, message = JobState.STOPPED, "stopped by the user"
        elif rc != 0:
            state, message = JobState.FAILED, f"exited with code {rc}"
        elif job.spec.check_outputs is not None:
            missing = job.spec.check_outputs() or ""
            if missing:
                state, message = JobState.FAILED, f"exited 0 but its outputs are missing: {missing}"
        if state is JobState.FINISHED and job.spec.on_finished is not None:
            try:
                job.spec.on_finished()
            except Exception:  # a UI hook must never break the runner
                log.exception("on_finished hook of %s failed", job.name)
        with self._lock:
            job.ended = time.monotonic()
            job.state, job.message, job.missing = state, message, missing
        job.done.set()
        log.info("%s %s (rc=%s) %s", job.name, state.value, rc, message)

    def _end_leftovers(self, job: _Job) -> None:
        """The stopped job's own process has exited: wait for the rest of its tree, then kill what is left."""
        leftovers = [proc for proc in job.stop_tree if proc.pid != job.popen.pid]
        alive = oscompat.wait_ended(leftovers, self.leftover_grace, reap=False)
        if alive:
            log.warning("%s: %d process(es) of the stopped job still alive after %.0f s; killing them: %s", job.name,
                        len(alive), self.leftover_grace, ", ".join(str(proc.pid) for proc in alive))
            oscompat.terminate_processes(alive, timeout=1.0, reap=False)

    def status(self, name: str) -> JobStatus:
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                return JobStatus(name, JobState.IDLE)
            end = job.ended if job.ended is not None else time.monotonic()
            snapshot = (job.state, job.popen.returncode if job.ended is not None else None,
                        end - job.started, job.message, job.log_file, job.missing, job.run_id, job.log_offset)
        state, rc, elapsed, message, log_file, missing, run_id, offset = snapshot
        return JobStatus(name, state, rc, elapsed, self._progress(log_file, offset), message, log_file, missing,
                         run_id, offset)

    @staticmethod
    def _progress(log_file: Path, start: int = 0) -> Progress | None:
        for line in reversed(read_tail(log_file, max_lines=200, start=start).splitlines()):
            found = parse_progress(line)
            if found is not None:
                return found
        return None

    def tail(self, name: str, n: int = 30) -> str:
        """The last ``n`` lines of the current (or last) run's log."""
        with self._lock:
            job = self._jobs.get(name)
        return read_tail(job.log_file, n, start=job.log_offset) if job else ""

    def wait(self, name: str, timeout: float | None = None) -> JobStatus:
        with self._lock:
            job = self._jobs.get(name)
        if job is not None:
            job.done.wait(timeout)
        return self.status(name)

    def stop(self, name: str) -> bool:
        """Ask job ``name`` to stop; returns False if it was not running.

        The first call sends the graceful request (SIGTERM, or the job's stop file) and returns at once: the job
        finishes what it must (a trainer its batch and the save of its state) and exits; its state is
        ``STOPPING`` meanwhile. A second call while it is stopping kills the whole process tree.
        """
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.state not in (JobState.RUNNING, JobState.STOPPING):
                return False
            second = job.state is JobState.STOPPING
            job.stop_requested = True
            job.state = JobState.STOPPING
        if second:
            log.warning("%s: second stop, killing the process tree (pid %d)", name, job.popen.pid)
            oscompat.terminate_tree(job.popen.pid, timeout=0.5, reap=False)  # its waiter collects it
            return True
        # noted before the request goes out: the job's waiter reads it as soon as the job's own process exits
        job.stop_tree = oscompat.process_tree(job.popen.pid)
        if job.stop_file is not None:
            log.info("%s: stop requested through %s; waiting for it to exit", name, job.stop_file)
            job.stop_file.touch()
        else:
            log.info("%s: stop requested (pid %d); waiting for it to exit", name, job.popen.pid)
            signal_stop(job.stop_tree, job.spec.stop_children_only)
        return True

    @property
    def last_run_id(self) -> int:
        """The run id of the newest start of any job (0 before the first); later starts get larger ids."""
        with self._lock:
            return self._runs

    def runs(self) -> dict[str, tuple[int, str]]:
        """``name → (run id, state)`` of every job started so far, without reading logs: a cheap fingerprint of
        what the launcher's pages have to show (it changes when a job starts, stops or ends)."""
        with self._lock:
            return {name: (job.run_id, job.state.value) for name, job in self._jobs.items()}

    def running(self) -> list[str]:
        """Names of the jobs whose process is alive (running or stopping)."""
        with self._lock:
            return [name for name, job in self._jobs.items() if job.state in (JobState.RUNNING, JobState.STOPPING)]

    def stop_all(self, grace: float = 30.0) -> None:
        """Stop every job (the launcher is closing): graceful signal, up to ``grace`` seconds, then kill."""
        with self._lock:
            jobs = [job for job in self._jobs.values() if job.state in (JobState.RUNNING, JobState.STOPPING)]
        for job in jobs:
            if job.state is JobState.RUNNING:
                self.stop(job.name)
        deadline = time.monotonic() + grace
        for job in jobs:
            job.done.wait(max(0.0, deadline - time.monotonic()))
            if not job.done.is_set():
                oscompat.terminate_tree(job.popen.pid, timeout=1.0, reap=False)
                job.done.wait(5)


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

