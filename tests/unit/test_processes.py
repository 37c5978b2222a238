"""The job runner on real child processes: start, status, progress, tail, busy, stop (whole tree), outputs."""

from __future__ import annotations

import sys
import time

import psutil
import pytest

from app.processes import JobBusyError, JobSpec, JobState, ProcessManager, expect_files, read_tail

# The runner always runs `python -m <module>`: the tests write a small tool module into a temp package that the
# child finds through its working directory.
TOOL = """
import sys, time, pathlib, subprocess
from GPT_SoVITS.logs import format_progress
mode = sys.argv[1]
if mode == "progress":
    for i in range(1, 4):
        print(format_progress(i, 3, "working"), flush=True)
    print("all done", flush=True)
elif mode == "write":
    pathlib.Path(sys.argv[2]).write_text("ok")
elif mode == "fail":
    print("something broke", flush=True)
    raise SystemExit(3)
elif mode == "tree":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(f"child {child.pid}", flush=True)
    time.sleep(60)
elif mode == "deaf-tree":  # its child ignores the graceful signal and would outlive the job
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('deaf', flush=True); "
            "time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code])
    print(f"child {child.pid}", flush=True)
    time.sleep(60)
elif mode == "sleep":
    time.sleep(60)
elif mode == "graceful":  # a trainer-like job: stops when its stop file appears, and notes any SIGTERM
    import signal
    stop = pathlib.Path(sys.argv[sys.argv.index("--stop-file") + 1])
    signal.signal(signal.SIGTERM, lambda *_: print("got SIGTERM", flush=True))
    print("ready", flush=True)
    while not stop.exists():
        time.sleep(0.05)
    print("saved and stopping", flush=True)
elif mode == "stubborn":  # takes a stop file and never looks at it
    print("ready", flush=True)
    time.sleep(60)
elif mode == "saver":  # like a trainer: SIGTERM asks it to finish its (slow) batch and save, then it exits 0
    import signal
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("started", flush=True)
    while not stop:
        time.sleep(0.05)
    print("stopping after the current batch and saving", flush=True)
    pathlib.Path(sys.argv[2]).with_suffix(".wait").touch()
    while not pathlib.Path(sys.argv[2]).with_suffix(".go").exists():  # the test decides when the save ends
        time.sleep(0.05)
    pathlib.Path(sys.argv[2]).write_text("saved")
    print("saved", flush=True)
"""


def _write_tool(tmp_path):
    pkg = tmp_path / "fake_tools"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tool.py").write_text(TOOL)


@pytest.fixture
def manager(tmp_path):
    _write_tool(tmp_path)
    # cwd = tmp_path makes `fake_tools` importable; the repository must stay importable too
    manager = ProcessManager(tmp_path / "logs", cwd=tmp_path)
    yield manager
    manager.stop_all()


@pytest.fixture
def file_manager(tmp_path):
    """Stops jobs the Windows way: through their stop file, then the tree after a short grace period."""
    _write_tool(tmp_path)
    manager = ProcessManager(tmp_path / "logs", cwd=tmp_path, stop_by_file=True)
    yield manager
    manager.stop_all()


def _wait_for_text(manager, name, text, timeout=30):
    deadline = time.monotonic() + timeout
    while text not in manager.tail(name):
        assert time.monotonic() < deadline, f"{text!r} not in the log of {name}: {manager.tail(name)}"
        time.sleep(0.05)


def spec(*argv, **kwargs):
    return JobSpec("fake_tools.tool", tuple(argv), **kwargs)


@pytest.fixture(autouse=True)
def repo_on_pythonpath(monkeypatch):
    from GPT_SoVITS.paths import REPO_ROOT
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))


def test_progress_and_tail_of_a_finished_job(manager):
    assert manager.status("t").state is JobState.IDLE
    manager.start("t", spec("progress"))
    status = manager.wait("t", timeout=30)
    assert status.state is JobState.FINISHED and status.returncode == 0
    assert status.progress is not None and (status.progress.done, status.progress.total) == (3, 3)
    assert status.progress.label == "working"
    assert manager.tail("t").splitlines()[-1] == "all done"
    assert sys.executable in read_tail(status.log_file)  # the command line heads the log


def test_failed_job_reports_exit_code(manager):
    manager.start("t", spec("fail"))
    status = manager.wait("t", timeout=30)
    assert status.state is JobState.FAILED and status.returncode == 3
    assert "something broke" in manager.tail("t")


def test_exit_zero_without_promised_outputs_is_failed(manager, tmp_path):
    promised = tmp_path / "out.txt"
    manager.start("t", spec("progress", check_outputs=expect_files(promised)))
    status = manager.wait("t", timeout=30)
    assert status.state is JobState.FAILED and status.returncode == 0
    assert str(promised) in status.message


def test_outputs_present_and_hook_called(manager, tmp_path):
    promised = tmp_path / "out.txt"
    calls = []
    manager.start("t", spec("write", str(promised), check_outputs=expect_files(promised),
                            on_finished=lambda: calls.append(1)))
    assert manager.wait("t", timeout=30).state is JobState.FINISHED
    assert calls == [1]


def test_second_start_is_busy_and_stop_kills_the_tree(manager):
    manager.start("t", spec("tree"))
    with pytest.raises(JobBusyError):
        manager.start("t", spec("tree"))
    child_pid = _child_pid(manager, "t")
    status = manager.status("t")
    assert status.running and status.elapsed > 0
    assert manager.stop("t")
    assert manager.wait("t", timeout=30).state is JobState.STOPPED
    assert _ended(child_pid)  # STOPPED is reported only once the whole tree has ended
    assert not manager.stop("t")  # nothing left to stop
    manager.start("t", spec("progress"))  # the name is free again
    assert manager.wait("t", timeout=30).state is JobState.FINISHED


def _child_pid(manager, name):
    _wait_for_text(manager, name, "child ")
    return int(manager.tail(name).split("child ")[1].split()[0])


def _ended(pid):
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_stopped_means_the_whole_tree_has_ended_even_a_child_that_ignores_the_signal(tmp_path):
    _write_tool(tmp_path)
    manager = ProcessManager(tmp_path / "logs", cwd=tmp_path, stop_by_file=False, leftover_grace=1.0)
    try:
        manager.start("t", spec("deaf-tree"))
        child_pid = _child_pid(manager, "t")
        _wait_for_text(manager, "t", "deaf")  # its SIGTERM handler is in place
        assert manager.stop("t")
        assert manager.wait("t", timeout=30).state is JobState.STOPPED
        assert _ended(child_pid)  # killed after the grace, before the job was reported stopped
    finally:
        manager.stop_all()


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_first_stop_waits_for_the_save_however_long_it_takes(manager, tmp_path):
    """Stop never kills a job that is saving: the state stays STOPPING until it exits by itself."""
    saved = tmp_path / "state.txt"
    manager.start("t", spec("saver", str(saved)))
    _wait_until(lambda: "started" in manager.tail("t"))
    assert manager.stop("t")
    assert manager.status("t").state is JobState.STOPPING and manager.status("t").running
    _wait_until(lambda: saved.with_suffix(".wait").exists())
    # the save goes on for longer than any kill timeout the runner used to have
    time.sleep(6)
    assert manager.status("t").state is JobState.STOPPING
    with pytest.raises(JobBusyError):
        manager.start("t", spec("progress"))
    saved.with_suffix(".go").touch()
    status = manager.wait("t", timeout=30)
    assert status.state is JobState.STOPPED and status.returncode == 0
    assert saved.read_text() == "saved"
    assert manager.tail("t").splitlines()[-1] == "saved"


def test_second_stop_kills_the_tree(manager, tmp_path):
    saved = tmp_path / "state.txt"
    manager.start("t", spec("saver", str(saved)))
    _wait_until(lambda: "started" in manager.tail("t"))
    manager.stop("t")
    _wait_until(lambda: saved.with_suffix(".wait").exists())
    assert manager.stop("t")
    status = manager.wait("t", timeout=30)
    assert status.state is JobState.STOPPED and status.returncode == -9
    assert not saved.exists()


def test_a_run_sees_only_its_own_log_lines_and_progress(manager):
    manager.start("t", spec("progress"))
    first = manager.wait("t", timeout=30)
    manager.start("t", spec("fail"))
    second = manager.wait("t", timeout=30)
    assert second.run_id > first.run_id and second.log_file == first.log_file
    assert second.log_offset > first.log_offset
    assert second.progress is None  # the first run's progress lines are not this run's
    assert "all done" not in manager.tail("t") and "something broke" in manager.tail("t")
    assert "all done" in first.log_file.read_text()  # the log file keeps both runs


def test_gpu_choice_goes_only_to_the_child_environment(manager, tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    out = tmp_path / "env.txt"
    (tmp_path / "fake_tools" / "envdump.py").write_text(
        "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('CUDA_VISIBLE_DEVICES', '-'))")
    manager.start("e", JobSpec("fake_tools.envdump", (str(out),), gpu="1"))
    assert manager.wait("e", timeout=30).state is JobState.FINISHED
    assert out.read_text() == "1"
    import os
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


@pytest.mark.parametrize("users_value", [None, "ACTIVE"])
def test_children_get_openmp_passive_waiting_unless_the_user_chose(manager, tmp_path, monkeypatch, users_value):
    if users_value is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", users_value)
    out = tmp_path / "env.txt"
    (tmp_path / "fake_tools" / "envdump.py").write_text(
        "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('OMP_WAIT_POLICY', '-'))")
    manager.start("e", JobSpec("fake_tools.envdump", (str(out),)))
    assert manager.wait("e", timeout=30).state is JobState.FINISHED
    assert out.read_text() == (users_value or "PASSIVE")


def test_stop_all_stops_running_jobs(manager):
    manager.start("a", spec("sleep"))
    manager.start("b", spec("sleep"))
    assert sorted(manager.running()) == ["a", "b"]
    manager.stop_all()
    assert manager.running() == []
    assert manager.status("a").state is manager.status("b").state is JobState.STOPPED


def test_stop_file_lets_the_job_finish_by_itself(file_manager, tmp_path):
    stale = tmp_path / "logs" / "t.stop"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.touch()  # left over from an earlier run: must not stop the new one
    file_manager.start("t", spec("graceful", stop_flag="--stop-file"))
    assert not stale.exists()
    _wait_for_text(file_manager, "t", "ready")
    assert file_manager.stop("t")
    status = file_manager.wait("t", timeout=30)
    assert status.state is JobState.STOPPED and status.returncode == 0
    log_text = read_tail(status.log_file)
    assert "saved and stopping" in log_text and "got SIGTERM" not in log_text  # the file stopped it, no signal
    assert f"--stop-file {stale}" in log_text.splitlines()[0]
    assert not stale.exists()  # cleaned up after the run


def test_a_job_that_ignores_its_stop_file_is_ended_by_a_second_stop(file_manager):
    file_manager.start("t", spec("stubborn", stop_flag="--stop-file"))
    _wait_for_text(file_manager, "t", "ready")
    assert file_manager.stop("t")
    assert file_manager.status("t").state is JobState.STOPPING
    assert file_manager.stop("t")
    assert file_manager.wait("t", timeout=30).state is JobState.STOPPED


def test_signal_platforms_pass_no_stop_file(manager):
    """POSIX default: the stop button's SIGTERM is the request; the command line stays as the job defines it."""
    if manager.stop_by_file:
        pytest.skip("this platform stops jobs through stop files")
    manager.start("t", spec("progress", stop_flag="--stop-file"))
    status = manager.wait("t", timeout=30)
    assert status.state is JobState.FINISHED and "--stop-file" not in read_tail(status.log_file)


def test_jobs_die_with_the_process_that_started_them(tmp_path):
    """Closing the launcher stops its jobs: the manager's exit hook kills every running job tree."""
    import os
    import subprocess

    from GPT_SoVITS.paths import REPO_ROOT

    pkg = tmp_path / "fake_tools"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tool.py").write_text(TOOL)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from app.processes import JobSpec, ProcessManager\n"
        f"manager = ProcessManager(Path({str(tmp_path / 'logs')!r}), cwd=Path({str(tmp_path)!r}))\n"
        "status = manager.start('t', JobSpec('fake_tools.tool', ('tree',)))\n"
        "time.sleep(2)\n"
        "print(manager._jobs['t'].popen.pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    job_pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while psutil.pid_exists(job_pid) and psutil.Process(job_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the job outlived the process that started it"
        time.sleep(0.1)
