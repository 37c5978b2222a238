"""The launcher: argument handling, the Gradio app builds, and `python webui.py` serves HTTP 200."""

from __future__ import annotations

import urllib.request

import pytest

from app.context import AppContext
from app.main import build_app, build_parser
from app.processes import JobState
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


def test_slicer_job_from_the_launcher_pushes_its_output_downstream(tmp_path):
    ctx = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    src = write_audio(tmp_path / "raw" / "a.wav", __import__("numpy").concatenate(
        [tone_burst(5), silence(1), tone_burst(5)]))
    from app.jobs import SliceJob
    out = tmp_path / "output" / "slicer_opt"
    version = ctx.workflow.version
    spec = SliceJob(src, out, processes=1).spec(
        on_finished=lambda: ctx.workflow.push(asr_input=str(out), audio_dir=str(out)))
    ctx.processes.start("slicer", spec)
    status = ctx.processes.wait("slicer", timeout=120)
    assert status.state is JobState.FINISHED, ctx.processes.tail("slicer")
    assert ctx.workflow.version == version + 1
    assert ctx.workflow.get("asr_input") == str(out) == ctx.workflow.get("audio_dir")
    assert len(list(out.glob("*.wav"))) == 2


@pytest.mark.slow
def test_webui_serves_http_200():
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["webui.py", "--port", str(port), "zh_CN"], url), urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert "GPT-SoVITS" in response.read().decode("utf-8", "replace")
