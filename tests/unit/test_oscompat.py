"""The platform seam: POSIX-only calls live in GPT_SoVITS/oscompat.py only, files are opened as UTF-8, and the
helpers behave on this platform. Tests marked ``windows_only`` run in the Windows workflow
(.github/workflows/windows-package.yml), never on Linux."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import i18n
from GPT_SoVITS import oscompat
from GPT_SoVITS.paths import REPO_ROOT, ExperimentPaths
from GPT_SoVITS.train.loop import StopRequest

#: The code that Windows users run: the library, the apps, the tools, the benchmarks, the packaging script.
CODE_ROOTS = ("GPT_SoVITS", "app", "tools", "benchmarks", "packaging", "webui.py")
PLATFORM_MODULE = REPO_ROOT / "GPT_SoVITS" / "oscompat.py"

POSIX_ONLY_ATTRIBUTES = {
    "os": {"killpg", "getpgid", "setpgid", "getpgrp", "setpgrp", "setsid", "getsid", "fork", "forkpty",
           "register_at_fork", "wait3", "wait4", "WNOHANG", "kill", "getuid", "geteuid", "getgid", "setuid",
           "chown", "lchown", "fchown", "mkfifo", "mknod", "getloadavg", "sched_getaffinity", "sched_setaffinity",
           "nice", "sync", "uname", "openpty", "ttyname", "posix_spawn", "posix_spawnp", "statvfs", "sysconf",
           "pipe2", "O_NONBLOCK"},  # os.kill is TerminateProcess on Windows: no handler ever runs
    "signal": {"SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGALRM", "SIGPIPE", "SIGCONT",
               "SIGSTOP", "SIGTSTP", "alarm", "setitimer", "getitimer", "pause", "pthread_sigmask", "pthread_kill",
               "sigwait", "sigwaitinfo", "sigtimedwait", "siginterrupt", "sigpending", "SIG_BLOCK", "SIG_UNBLOCK",
               "SIG_SETMASK"},
}
POSIX_ONLY_MODULES = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "posix", "crypt", "syslog"}
POSIX_ONLY_POPEN_ARGS = {"start_new_session", "preexec_fn", "process_group", "pass_fds", "user", "group",
                         "extra_groups", "umask"}
POPEN_LIKE = {"Popen", "run", "call", "check_call", "check_output"}
FORK_METHODS = {"fork", "forkserver"}


def _python_files(roots: tuple[str, ...] = CODE_ROOTS) -> list[Path]:
    files: list[Path] = []
    for name in roots:
        path = REPO_ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return files


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def posix_only_calls(source: str, filename: str = "<code>") -> list[str]:
    """``line: what`` for every POSIX-only function, constant, module, Popen option or fork start method."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in POSIX_ONLY_ATTRIBUTES.get(node.value.id, ()):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in POSIX_ONLY_ATTRIBUTES:
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name in POSIX_ONLY_ATTRIBUTES[node.module]]
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: import {m}" for m in modules if m.split(".")[0] in POSIX_ONLY_MODULES]
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in POPEN_LIKE:
                found += [f"{node.lineno}: {name}({kw.arg}=...)" for kw in node.keywords
                          if kw.arg in POSIX_ONLY_POPEN_ARGS]
            if name in ("get_context", "set_start_method") and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in FORK_METHODS:
                found.append(f"{node.lineno}: {name}({node.args[0].value!r})")
    return found


def test_the_scanner_finds_posix_only_calls() -> None:
    code = ("import os, signal, fcntl, subprocess, multiprocessing as mp\nfrom signal import pthread_sigmask\n"
            "os.killpg(os.getpgid(1), signal.SIGKILL)\nsubprocess.Popen(['x'], start_new_session=True)\n"
            "mp.get_context('fork')\nsignal.signal(signal.SIGTERM, None)\nos.replace('a', 'b')\n")
    found = posix_only_calls(code)
    for what in ("os.killpg", "os.getpgid", "signal.SIGKILL", "import fcntl", "import pthread_sigmask",
                 "Popen(start_new_session=...)", "get_context('fork')"):
        assert any(what in line for line in found), (what, found)
    assert not any("SIGTERM" in line or "replace" in line for line in found)  # these exist on Windows


def test_posix_only_calls_live_in_the_platform_module_only() -> None:
    offenders = []
    for path in _python_files():
        if path == PLATFORM_MODULE:
            continue
        offenders += [f"{path.relative_to(REPO_ROOT)}:{hit}"
                      for hit in posix_only_calls(path.read_text(encoding="utf-8"), str(path))]
    assert not offenders, ("POSIX-only calls outside GPT_SoVITS/oscompat.py (Windows runs this code; put the "
                           "platform difference there):\n" + "\n".join(offenders))
    assert posix_only_calls(PLATFORM_MODULE.read_text(encoding="utf-8"))  # the scan does look at real code


def text_opens_without_encoding(source: str) -> list[str]:
    """``line: call`` for text-mode ``open``/``Path.open``/``read_text``/``write_text`` without an encoding."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name, keywords = _call_name(node), {kw.arg for kw in node.keywords}
        if "encoding" in keywords:
            continue
        if name == "read_text" and not node.args or name == "write_text" and len(node.args) < 2:
            found.append(f"{node.lineno}: {name}()")
        elif name == "open" and not (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                                     and node.func.value.id in ("av", "os", "zipfile", "tarfile", "sf", "Image")):
            mode_index = 1 if isinstance(node.func, ast.Name) else 0
            mode = next((kw.value for kw in node.keywords if kw.arg == "mode"),
                        node.args[mode_index] if len(node.args) > mode_index else None)
            binary = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" in mode.value
            if not binary:
                found.append(f"{node.lineno}: {ast.unparse(node.func)}()")
        elif name in POPEN_LIKE and keywords & {"text", "universal_newlines"}:
            found.append(f"{node.lineno}: {name}(text=True) without encoding")
    return found


def test_text_files_are_opened_as_utf8() -> None:
    """Without ``encoding=`` Python uses the Windows code page (cp936, cp1252 ...): labels and logs would break."""
    assert text_opens_without_encoding("open(p)\nopen(p, 'rb')\np.read_text()\np.write_text(s, encoding='utf-8')\n"
                                       "subprocess.run(c, text=True)\n") == \
        ["1: open()", "3: read_text()", "5: run(text=True) without encoding"]
    offenders = []
    for path in _python_files():
        offenders += [f"{path.relative_to(REPO_ROOT)}:{hit}"
                      for hit in text_opens_without_encoding(path.read_text(encoding="utf-8"))]
    assert not offenders, "text files opened without encoding='utf-8':\n" + "\n".join(offenders)


def test_windows_language_ids_map_to_our_locales(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [oscompat.windows_language_name(i) for i in (0x0804, 0x0404, 0x0C04, 0x0409, 0x0809)] == \
        ["zh_CN", "zh_TW", "zh_HK", "en_US", "en_GB"]
    assert oscompat.windows_language_name(0xFFFF) is None
    for langid, language in ((0x0804, "zh_CN"), (0x0404, "zh_CN"), (0x0409, "en_US"), (0x0411, "en_US")):
        monkeypatch.setattr(oscompat, "user_language", lambda i=langid: oscompat.windows_language_name(i))
        assert i18n.system_language() == language
    # what Python's locale.getlocale() says on Windows matches nothing: the reason for the Windows branch
    monkeypatch.setattr(oscompat, "user_language", lambda: "Chinese (Simplified)_China")
    assert i18n.system_language() == "en_US"


@pytest.mark.skipif(oscompat.IS_WINDOWS, reason="POSIX behaviour")
def test_posix_children_get_a_session_of_their_own() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], **oscompat.new_process_group())
    tree = oscompat.process_tree(child.pid)
    try:
        assert os.getsid(child.pid) == child.pid != os.getsid(0)
    finally:
        oscompat.terminate_processes(tree)
    assert tree[-1].returncode == -signal.SIGTERM  # terminate is SIGTERM on POSIX: a trainer can save on it


def test_terminate_tree_ends_grandchildren(tmp_path: Path) -> None:
    code = ("import subprocess, sys, time\n"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(c.pid, flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, **oscompat.new_process_group())
    grandchild = int(parent.stdout.readline())
    oscompat.terminate_tree(parent.pid)
    parent.wait(10)
    parent.stdout.close()
    deadline = time.monotonic() + 10
    import psutil

    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the grandchild survived"
        time.sleep(0.1)


def test_replace_file_replaces(tmp_path: Path) -> None:
    src, dst = tmp_path / "new.txt", tmp_path / "目标 file.txt"
    src.write_text("new", encoding="utf-8")
    dst.write_text("old", encoding="utf-8")
    oscompat.replace_file(src, dst)
    assert dst.read_text(encoding="utf-8") == "new" and not src.exists()


def test_stop_request_through_a_file(tmp_path: Path) -> None:
    stop_file = tmp_path / "job.stop"
    stop = StopRequest(stop_file)
    assert not stop.requested
    stop_file.touch()
    assert stop.requested
    stop_file.unlink()
    assert stop.requested  # a request stays made
    assert not StopRequest().requested


@pytest.mark.parametrize("name", ["a:b", "what?", "con", "NUL.txt", "com1", "voice.", "a|b", "tab\there"])
def test_experiment_names_windows_cannot_hold_are_refused_everywhere(name: str) -> None:
    with pytest.raises(ValueError, match="Windows cannot make such a folder"):
        ExperimentPaths.for_experiment(Path("logs"), name)


def test_ordinary_experiment_names_pass() -> None:
    for name in ("voice", "我的声音 v2", "console", "nul-voice", "a.b"):
        assert ExperimentPaths.for_experiment(Path("logs"), name).name == name


windows_only = pytest.mark.skipif(not oscompat.IS_WINDOWS, reason="Windows behaviour (runs in the Windows workflow)")


@windows_only
def test_windows_children_get_a_process_group_and_a_language() -> None:
    assert oscompat.new_process_group() == {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    assert oscompat.STOP_BY_FILE and signal.SIGBREAK in oscompat.STOP_SIGNALS
    assert oscompat.user_language() is not None


@windows_only
def test_windows_rename_over_a_file_held_open_for_a_moment(tmp_path: Path) -> None:
    src, dst = tmp_path / "new.txt", tmp_path / "dst.txt"
    src.write_text("new", encoding="utf-8")
    dst.write_text("old", encoding="utf-8")
    holder = open(dst, "rb")  # noqa: SIM115 - held open on purpose, closed by the timer
    threading.Timer(0.3, holder.close).start()
    oscompat.replace_file(src, dst)
    assert dst.read_text(encoding="utf-8") == "new"
