"""The launcher: argument handling, the Gradio app builds, and `python webui.py` serves HTTP 200."""

from __future__ import annotations

import time
import urllib.request

import gradio as gr
import numpy as np
import pytest

from app.context import AppContext
from app.jobs import SliceJob
from app.main import build_app, build_parser
from app.polls import WATCH_SECONDS, polled_tab, tab_tick
from app.processes import JobSpec, JobState
from app.widgets import JobPanel, PanelSession
from GPT_SoVITS import oscompat
from GPT_SoVITS.config import WebUISettings
from tests.conftest import silence, tone_burst, write_audio
from tests.servers import free_port, serve
from tests.ui import undocumented_controls


def test_arguments_and_upstream_bare_locale():
    args = build_parser().parse_args([])
    assert (args.port, args.host, args.lang, args.share) == (None, None, None, False)
    assert build_parser().parse_args(["zh_CN"]).locale == "zh_CN"
    assert build_parser().parse_args(["--port", "9000", "--host", "0.0.0.0", "--lang", "en_US"]).port == 9000
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--lang", "xx"])


@pytest.mark.parametrize("language", ["zh_CN", "en_US"])
def test_app_builds_with_every_workflow_view(tmp_path, language):
    ctx = AppContext.create(WebUISettings(), language, root=tmp_path)
    demo = build_app(ctx)
    assert undocumented_controls(demo) == []
    assert {"slicer_input", "slicer_output", "exp_name", "list_path", "audio_dir"} <= set(ctx.components)


def test_a_finished_job_offers_its_outputs_to_the_page_that_started_it(tmp_path):
    """A finished slicer's output folder reaches the workflow memory (what a page opened later shows) and the
    finished signal of the session that started it (which pre-fills that page's fields); a session that was open
    but idle is not told (two tabs do not overwrite each other's fields)."""
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    src = write_audio(tmp_path / "raw" / "a.wav", np.concatenate([tone_burst(5), silence(1), tone_burst(5)]))
    out = tmp_path / "output" / "slicer_opt"

    def make_spec():
        return SliceJob(src, out, processes=1).spec(flows={"asr_input": str(out), "audio_dir": str(out)})

    with gr.Blocks():
        panel = JobPanel(ctx, "slicer", make_spec, [], "Start", flow_fields=("asr_input", "audio_dir"))
    other = panel.refresh(PanelSession(), 0)[panel.session]  # another tab, open before the start
    started = panel._start_handler(make_spec, [])(PanelSession(), 0)
    mine = started[panel.session]
    assert mine.watched == ctx.processes.status("slicer").run_id and not started[panel.finished]
    status = ctx.processes.wait("slicer", timeout=120)
    assert status.state is JobState.FINISHED, ctx.processes.tail("slicer")
    assert len(list(out.glob("*.wav"))) == 2
    assert ctx.workflow.get("asr_input") == str(out) == ctx.workflow.get("audio_dir")
    finished = panel.refresh(mine, 0)[panel.finished]
    assert finished == status.run_id and panel.flows_of(finished) == {"asr_input": str(out), "audio_dir": str(out)}
    assert panel.refresh(other, 0)[panel.finished] == 0


def test_a_refusal_stays_in_the_panel_status_until_the_next_press(tmp_path):
    ctx = AppContext.create(WebUISettings(), "zh_CN", root=tmp_path)

    def make_spec():
        return SliceJob(tmp_path / "missing", tmp_path / "out").spec()

    with gr.Blocks():
        panel = JobPanel(ctx, "slicer", make_spec, [], "Start")
    refused = panel._start_handler(make_spec, [])(PanelSession(), 0)
    assert refused[panel.status].startswith("⚠️ 找不到输入：") and "空闲" in refused[panel.status]
    session = refused[panel.session]
    for _ in range(3):  # the status poll keeps it: it sends nothing, the page shows what it showed
        assert panel.refresh(session, 0) == {}
    assert "⚠️" not in panel._stop(session, 0)[panel.status]


@pytest.mark.skipif(oscompat.STOP_BY_FILE, reason="stops through a signal (Windows jobs stop through a file)")
def test_stop_says_saving_until_the_job_has_saved_then_stopped(tmp_path):
    """The first Stop press shows "Stopping · saving…" for as long as the job takes to save; the tick after it
    exited shows "Stopped". (The browser walks cannot wait for that text: a tiny trainer saves too fast.)"""
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    go = tmp_path / "saved"

    def make_spec():
        return JobSpec("tests.fake_trainer", (str(go),))

    with gr.Blocks():
        panel = JobPanel(ctx, "train_sovits", make_spec, [], "Start")
    session = panel._start_handler(make_spec, [])(PanelSession(), 0)[panel.session]
    deadline = time.monotonic() + 60
    while "training" not in ctx.processes.tail("train_sovits"):
        assert time.monotonic() < deadline, ctx.processes.tail("train_sovits")
        time.sleep(0.05)
    stopping = panel._stop(session, 0)
    assert stopping[panel.status].startswith("**Stopping**") and "saving…" in stopping[panel.status]
    session = stopping.get(panel.session, session)
    time.sleep(1.0)  # the job is still saving: a poll shows the same
    assert "saving…" in panel.refresh(session, 0).get(panel.status, stopping[panel.status])
    go.touch()
    assert ctx.processes.wait("train_sovits", timeout=60).state is JobState.STOPPED
    assert panel.refresh(session, 0)[panel.status].startswith("**Stopped**")


def test_a_poll_sends_only_a_changed_view(tmp_path):
    """An idle page's status poll sends nothing (re-rendering unchanged components kept the browser busy); a job
    that starts, or a page that opens, gets the whole view."""
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    src = write_audio(tmp_path / "raw" / "a.wav", np.concatenate([tone_burst(5), silence(1), tone_burst(5)]))

    def make_spec():
        return SliceJob(src, tmp_path / "out", processes=1).spec()

    with gr.Blocks():
        panel = JobPanel(ctx, "slicer", make_spec, [], "Start")
    first = panel.refresh(PanelSession(), 0)  # a page that opens
    assert "Idle" in first[panel.status] and panel.log in first
    session = first[panel.session]
    assert panel.refresh(session, 0) == {}
    panel._start_handler(make_spec, [])(PanelSession(), 0)  # another tab starts the job
    assert ctx.processes.wait("slicer", timeout=120).state is JobState.FINISHED
    changed = panel.refresh(session, 0)
    assert "Finished" in changed[panel.status]
    assert panel.refresh(changed[panel.session], 0) == {}


def test_each_tab_polls_with_one_timer_that_starts_switched_off(tmp_path):
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    demo = build_app(ctx)
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]
    tab_timers = [timer for timer, _ in ctx.tab_timers]
    assert len(tab_timers) == 4 and set(map(id, tab_timers)) <= set(map(id, timers))  # tab 0, 1A, 1B, 1C
    assert not any(timer.active for timer in tab_timers)  # an idle page sends no status requests
    watch = [timer for timer in timers if all(timer is not t for t in tab_timers)]
    assert len(watch) == 1 and watch[0].active and watch[0].value == WATCH_SECONDS
    assert ctx.polls == [] and len(ctx.panels) >= 8  # every panel's poll went to one of them
    jobs = {name for _, names in ctx.tab_timers for name in names}
    assert {"slicer", "asr", "prepare", "train_gpt", "train_sovits", "inference_webui"} <= jobs


def _slicer_tab(ctx, make_spec):
    """A polled tab holding one slicer panel: (its timer, the panel)."""
    with gr.Blocks(), polled_tab(ctx) as timer:
        panel = JobPanel(ctx, "slicer", make_spec, [], "Start")
    assert ctx.tab_timers == [(timer, ("slicer",))] and panel.timer is timer
    return timer, panel


def test_a_tab_timer_runs_while_its_job_runs_and_switches_itself_off(tmp_path):
    """A Start press switches the tab's timer on; ticks show the run; the tick that finds it ended shows the end
    and switches the timer off; with nothing running a tick switches it off at once and sends nothing else."""
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    src = write_audio(tmp_path / "raw" / "a.wav", np.concatenate([tone_burst(5), silence(1), tone_burst(5)]))

    def make_spec():
        return SliceJob(src, tmp_path / "out", processes=1).spec()

    timer, panel = _slicer_tab(ctx, make_spec)
    tick = tab_tick(ctx, timer, ctx_polls(panel), ("slicer",))
    first = tick(PanelSession(), 0)  # a page whose timer was woken with nothing running: the view, then off
    assert "Idle" in first[panel.status] and first[timer].active is False
    assert set(tick(first[panel.session], 0)) == {timer}  # nothing changed: only the switch-off
    refused = panel._start_handler(lambda: (_ for _ in ()).throw(ValueError("bad")), [])(PanelSession(), 0)
    assert timer not in refused  # nothing started: the timer stays off
    started = panel._start_handler(make_spec, [])(PanelSession(), 0)
    assert started[timer].active is True
    session, shown = started[panel.session], started[panel.status]
    while ctx.processes.status("slicer").running:
        update = tick(session, 0)
        if ctx.processes.status("slicer").running:
            assert timer not in update  # still running: the timer stays on
        session, shown = update.get(panel.session, session), update.get(panel.status, shown)
        time.sleep(0.05)
    last = tick(session, 0)
    assert "Finished" in last.get(panel.status, shown)  # the page shows the end ...
    assert last[timer].active is False  # ... and its timer is off


def ctx_polls(panel):
    return [(panel.refresh, panel.poll_inputs, panel.outputs)]


def test_the_watch_wakes_only_the_tabs_whose_jobs_changed_and_new_runs_are_not_adopted(tmp_path):
    """A page open while another tab starts a job: the watch sends nothing while nothing changes, then switches
    on the timer of the job's tab only; this page's panel shows the run but does not adopt it (its finish does
    not pre-fill this page's fields)."""
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    demo = build_app(ctx)
    deps = {dep.fn.__name__: dep for dep in demo.fns.values() if getattr(dep.fn, "__name__", "") in
            ("on_open", "check")}
    on_open, check = deps["on_open"].fn, deps["check"].fn
    opened = on_open()
    seen = next(v for k, v in opened.items() if isinstance(v, dict))
    assert not any(isinstance(v, gr.Timer) for v in opened.values())  # nothing to show: no timer woken
    assert opened[ctx.page_opened] == 0
    assert check(seen) == {} and check(None) == {}
    slicer = next(p for p in ctx.panels if p.name == "slicer")
    src = write_audio(tmp_path / "raw" / "a.wav", np.concatenate([tone_burst(5), silence(1), tone_burst(5)]))
    ctx.processes.start("slicer", SliceJob(src, tmp_path / "out", processes=1).spec())  # from another tab
    woken = check(seen)
    dataset_timer = next(timer for timer, jobs in ctx.tab_timers if "slicer" in jobs)
    assert [k for k, v in woken.items() if isinstance(v, gr.Timer)] == [dataset_timer]
    assert woken[dataset_timer].active is True
    first = slicer.refresh(PanelSession(), 0, opened[ctx.page_opened])
    assert first[slicer.session].watched == 0  # started after this page opened: not this page's run
    status = ctx.processes.wait("slicer", timeout=120)
    assert status.state is JobState.FINISHED
    assert slicer.refresh(first[slicer.session], 0, 0)[slicer.finished] == 0
    # a page opened now shows the finished run: its tab's timer is switched on at once
    reopened = on_open()
    assert reopened[dataset_timer].active is True and reopened[ctx.page_opened] == status.run_id
    # a page that opened while the run was going adopts it
    assert slicer.refresh(PanelSession(), 0, status.run_id)[slicer.session].ticked


@pytest.mark.slow
def test_webui_serves_http_200():
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["webui.py", "--port", str(port), "zh_CN"], url), urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert "GPT-SoVITS" in response.read().decode("utf-8", "replace")
