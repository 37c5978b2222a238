"""The launcher: argument handling, the Gradio app builds, and `python webui.py` serves HTTP 200."""

from __future__ import annotations

import urllib.request

import gradio as gr
import numpy as np
import pytest

from app.context import AppContext
from app.jobs import SliceJob
from app.main import build_app, build_parser
from app.processes import JobState
from app.widgets import JobPanel, PanelSession
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


def test_each_tab_polls_with_one_timer(tmp_path):
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    demo = build_app(ctx)
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]
    assert len(timers) == 4  # tab 0, 1A, 1B, 1C: a timer ticks once its tab has been shown
    assert ctx.polls == [] and len(ctx.panels) >= 8  # every panel's poll went to one of them


@pytest.mark.slow
def test_webui_serves_http_200():
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["webui.py", "--port", str(port), "zh_CN"], url), urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert "GPT-SoVITS" in response.read().decode("utf-8", "replace")
