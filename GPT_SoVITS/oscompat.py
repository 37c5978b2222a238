"""Where POSIX and Windows differ: process groups, stopping process trees, stop signals, renames, the UI language.

This is the one module that may call POSIX-only functions (``os.killpg``, ``signal.pthread_sigmask``,
``signal.SIGKILL`` ...); ``tests/unit/test_oscompat.py`` fails when one appears anywhere else in the code that
Windows runs. It is not called ``platform.py`` because a script run from inside ``GPT_SoVITS/`` would then shadow
the standard library's ``platform`` module.

Stopping a job gracefully
-------------------------
POSIX: the launcher sends SIGTERM to the job's process tree. A trainer's handler notes the request, the loop saves
the training state after the current optimizer step and exits; its DataLoader workers ignore the signal (they are
born with it blocked, :func:`signals_blocked`, and ignore it from their ``worker_init_fn`` on).

Windows has no signal a process can catch from outside except the console events: ``TerminateProcess`` (what
``os.kill`` and psutil's ``terminate()`` do there) ends a process on the spot, and CTRL_BREAK_EVENT reaches only
processes attached to the sender's console, and all of them in the group: the trainer's DataLoader workers too.
Those are spawned, not forked, so nothing can be blocked for them, and one still importing torch when the event
arrives dies and takes the trainer down before it saves. So on Windows (:data:`STOP_BY_FILE`) a job that supports
it gets a *stop file* on its command line: the launcher creates the file, the trainer sees it at its next
optimizer step (where it also checks for a signal), saves and exits; the launcher waits a grace period, then ends
whatever is left of the tree. Workers are never signalled, and the protocol needs no console.
"""

from __future__ import annotations

import contextlib
import locale
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # psutil is imported where it is used: importing the package stays cheap
    import psutil

IS_WINDOWS: bool = sys.platform == "win32"

#: The launcher stops jobs through a stop file (see the module docstring) instead of a catchable signal.
STOP_BY_FILE: bool = IS_WINDOWS

#: Signals that ask a trainer to save and stop: the stop button's SIGTERM and Ctrl+C on POSIX; Ctrl+C and
#: Ctrl+Break typed in the trainer's console on Windows (SIGTERM cannot be sent to a Windows process).
STOP_SIGNALS: tuple[signal.Signals, ...] = (
    (signal.SIGINT, signal.SIGBREAK) if IS_WINDOWS else (signal.SIGTERM, signal.SIGINT))

#: Signals on which the launcher stops its jobs and exits (Ctrl+C is Python's KeyboardInterrupt everywhere).
SHUTDOWN_SIGNALS: tuple[signal.Signals, ...] = (
    (signal.SIGTERM, signal.SIGBREAK) if IS_WINDOWS else (signal.SIGTERM,))


# --------------------------------------------------------------------------------------------- processes
def new_process_group() -> dict[str, Any]:
    """``subprocess.Popen`` keyword arguments that start the child in a process group of its own.

    POSIX: a new session, so a Ctrl+C or a terminal hang-up meant for the launcher does not hit its jobs.
    Windows: ``CREATE_NEW_PROCESS_GROUP``, which also turns Ctrl+C off in the child and its descendants (the
    launcher decides how its jobs stop); the child still shares the launcher's console, so it opens no window.
    """
    if IS_WINDOWS:
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants (descendants first); empty if it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return []


def terminate_processes(procs: Sequence[psutil.Process], timeout: float = 5.0, reap: bool = True) -> None:
    """Ask each process to end, then kill whatever is still alive after ``timeout`` seconds.

    POSIX: SIGTERM (a trainer saves its state on it), then SIGKILL. Windows: both are ``TerminateProcess``.
    psutil refuses to signal a process whose PID was reused meanwhile, so a stale list is safe to pass.
    ``reap=False`` leaves exited children of this process as zombies for their owner to collect: a
    ``subprocess.Popen`` whose child psutil reaped reads an exit status of 0, so a killed job would look finished.
    """
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    alive = wait_ended(procs, timeout, reap)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    wait_ended(alive, timeout, reap)


def wait_ended(procs: Sequence[psutil.Process], timeout: float, reap: bool) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to end; returns those still alive (zombies count as ended)."""
    import psutil

    if reap:
        return psutil.wait_procs(procs, timeout=timeout)[1]

    def ended(proc: psutil.Process) -> bool:
        try:
            return proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + timeout
    alive = [proc for proc in procs if not ended(proc)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [proc for proc in alive if not ended(proc)]
    return alive


def terminate_tree(pid: int, timeout: float = 5.0, reap: bool = True) -> None:
    """Terminate a process and all its descendants (:func:`terminate_processes` on :func:`process_tree`)."""
    terminate_processes(process_tree(pid), timeout, reap)


def interrupt_self() -> None:
    """Ask this process to shut down the way Ctrl+C or a stop does, so a server runs its clean-up.

    POSIX: SIGTERM to itself. Windows: ``os.kill`` on itself would be ``TerminateProcess`` (no clean-up at all),
    so SIGINT is raised instead; uvicorn shuts down on it like on SIGTERM.
    """
    if IS_WINDOWS:
        signal.raise_signal(signal.SIGINT)
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def replace_process(argv: Sequence[str]) -> NoReturn:
    """Restart as ``argv`` (``argv[0]`` is the program).

    POSIX: ``execv`` (same PID, same terminal). Windows' ``execv`` is a spawn that does not quote its arguments,
    so a path with spaces falls apart; there the new process is started with ``subprocess`` (which quotes) and
    this one exits at once, freeing its port before the new one gets far enough to bind it.
    """
    if IS_WINDOWS:
        subprocess.Popen(list(argv))
        os._exit(0)
    os.execv(argv[0], list(argv))


# --------------------------------------------------------------------------------------------- signals
@contextlib.contextmanager
def signals_blocked(signals: Iterable[signal.Signals]) -> Iterator[None]:
    """Hold ``signals`` back in this thread for the duration; they are handled when the block ends.

    POSIX: child processes forked meanwhile are born with the signals blocked (how DataLoader workers survive a
    stop that lands while they start). Windows has no signal masks and spawns its children; nothing to do.
    """
    if IS_WINDOWS:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, list(signals))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_signals(signals: Iterable[signal.Signals]) -> None:
    """Ignore ``signals`` from now on; on POSIX also unblock them, which discards one that is pending."""
    signals = list(signals)
    for sig in signals:
        signal.signal(sig, signal.SIG_IGN)
    if not IS_WINDOWS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


# --------------------------------------------------------------------------------------------- files
def replace_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], attempts: int = 10,
                 delay: float = 0.05) -> None:
    """``os.replace(src, dst)``; on Windows retried for a moment while ``dst`` is held open.

    A rename over a file fails on Windows with PermissionError while any process has that file open without
    delete sharing: a virus scanner or the search indexer looking at the file just written, the UI reading it.
    Those holds last milliseconds; the rename is retried with a growing pause (about 2.75 s in all by default)
    before the error is raised. POSIX renames over open files; no retry there.
    """
    if not IS_WINDOWS:
        os.replace(src, dst)
        return
    for attempt in range(1, attempts + 1):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if attempt == attempts:
                raise
            time.sleep(delay * attempt)


# --------------------------------------------------------------------------------------------- language
def user_language() -> str | None:
    """The user's language as ``ll_CC`` (``zh_CN``, ``en_US``), or None when unknown.

    POSIX: the locale (``LC_ALL``/``LC_CTYPE``/``LANG``). Windows: the display language of the user's Windows;
    ``locale.getlocale()`` gives names like ``Chinese (Simplified)_China`` there, which match no language code.
    """
    if IS_WINDOWS:
        import ctypes

        return windows_language_name(ctypes.windll.kernel32.GetUserDefaultUILanguage())
    return locale.getlocale()[0]


def windows_language_name(langid: int) -> str | None:
    """A Windows language id (``0x0804``) as ``ll_CC`` (``zh_CN``); None for an unknown id."""
    return locale.windows_locale.get(langid)

