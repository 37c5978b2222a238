"""The inference WebUI: builds in both languages, serves, synthesizes and switches models through Gradio's API;
the launcher's 1C job spec round-trips through the WebUI's own argument parser."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import soundfile as sf

from app.i18n import I18n
from app.inference_webui import build_inference_ui, build_parser, weight_choices
from app.tabs.inference import InferenceWebUIJob
from GPT_SoVITS.infer import TTS
from GPT_SoVITS.infer.components import load_model_pair
from GPT_SoVITS.paths import PretrainedPaths
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights
from tests.ui import undocumented_controls
from tools.webui_launch import launch

gradio_client = pytest.importorskip("gradio_client")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("webui")
    src_gpt, src_sovits = save_tiny_weights(root / "src", name="a")
    _, src_sovits_b = save_tiny_weights(root / "src", seed=1, name="b")
    (root / "GPT_weights_v2").mkdir()
    (root / "SoVITS_weights_v2").mkdir()
    for epoch in (1, 2, 10):
        (root / "GPT_weights_v2" / f"voice-e{epoch}.ckpt").write_bytes(src_gpt.read_bytes())
    gpt = root / "GPT_weights_v2" / "voice-e10.ckpt"
    sovits = root / "SoVITS_weights_v2" / "voice_e2_s20.pth"
    sovits.write_bytes(src_sovits.read_bytes())
    sovits_b = root / "SoVITS_weights_v2" / "voice_e10_s100.pth"
    sovits_b.write_bytes(src_sovits_b.read_bytes())
    tts = TTS(load_model_pair(gpt, sovits), ToySSL(), CharFeaturizer(), max_new_tokens=20)
    return {"root": root, "tts": tts, "gpt": gpt, "sovits": sovits, "sovits_b": sovits_b,
            "ref": reference_wav(root / "ref.wav"), "pretrained": PretrainedPaths(root / "pretrained")}


def test_weight_lists_are_naturally_sorted_with_the_pretrained_models_last(setup, tmp_path: Path) -> None:
    pretrained = PretrainedPaths(tmp_path / "pretrained")
    base = pretrained.gpt("v2")
    base.parent.mkdir(parents=True)
    base.write_bytes(b"x")
    gpts, sovits = weight_choices(setup["root"], pretrained)
    assert [Path(g).name for g in gpts] == ["voice-e1.ckpt", "voice-e2.ckpt", "voice-e10.ckpt", base.name]
    assert [Path(s).name for s in sovits] == ["voice_e2_s20.pth", "voice_e10_s100.pth"]


@pytest.mark.parametrize("language", ["en_US", "zh_CN"])
def test_ui_builds(setup, language: str) -> None:
    demo = build_inference_ui(setup["tts"], I18n(language), setup["root"], setup["pretrained"])
    assert undocumented_controls(demo) == []


def test_launcher_job_argv_parses_back() -> None:
    job = InferenceWebUIJob(Path("/m/g.ckpt"), Path("/m/s.pth"), Path("/p"), 9999, "127.0.0.1", "cuda:1", True,
                            "zh_CN")
    args = build_parser().parse_args(job.to_argv())
    assert (args.gpt, args.sovits, args.pretrained_dir, args.port, args.host, args.device, args.half, args.lang) == (
        job.gpt, job.sovits, job.pretrained_dir, job.port, job.host, job.device, job.half, job.lang)
    with pytest.raises(ValueError, match="GPT model not found"):
        job.spec()


def test_launcher_tab_says_where_models_go_when_there_are_none(setup, tmp_path: Path) -> None:
    from app.context import AppContext
    from app.tabs.inference import inference_job_spec
    from app.widgets import UserInputError
    from GPT_SoVITS.config import WebUISettings

    empty = AppContext.create(WebUISettings(), "en_US", root=tmp_path)
    with pytest.raises(UserInputError, match="No model files were found.*pretrained_models"):
        inference_job_spec(empty, None, None)
    ctx = AppContext.create(WebUISettings(), "en_US", root=setup["root"])
    with pytest.raises(UserInputError, match="Choose a GPT model and a SoVITS model first"):
        inference_job_spec(ctx, None, None)
    spec = inference_job_spec(ctx, str(setup["gpt"]), str(setup["sovits"]), "cpu", False)
    assert spec.module == "app.inference_webui" and str(setup["gpt"]) in spec.argv


def test_served_page_synthesizes_and_switches_models(setup, monkeypatch) -> None:
    tts = setup["tts"]
    demo = build_inference_ui(tts, I18n("en_US"), setup["root"], setup["pretrained"])
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, inbrowser=False)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}", verbose=False)
        ref = gradio_client.handle_file(str(setup["ref"]))
        args = [ref, False, "这是参考文本。", "all_zh", None, "今天天气很好。我们去公园吧！", "zh", "cut5", 1, True,
                1.0, 0.3, 7, 15, 1.0, 1.0, 1.35, True, 2]
        audio_path, report = client.predict(*args, api_name="/synthesize")
        audio, sr = sf.read(audio_path)
        assert sr == 32000 and len(audio) > 2 * 11 * 1280
        assert "2 sentence(s)" in report and "seed 7" in report
        faster = [*args[:10], 1.5, 0.0, -1, *args[13:]]  # speed 1.5, no pause, random seed: only decoding changes
        again_path, again_report = client.predict(*faster, True, api_name="/synthesize")  # keep the last words
        assert "decoded again" in again_report and "seed 7" in again_report
        pause = int(0.3 * 32000)
        assert len(sf.read(again_path)[0]) < 0.8 * (len(audio) - 2 * pause)
        _, new_report = client.predict(*[*args[:5], "完全不同的一句话。", *args[6:]], True, api_name="/synthesize")
        assert "decoded again" not in new_report  # another text: nothing to reuse, generated anew
        # streaming works after install.sh (which installs the ffmpeg program Gradio encodes the stream with)
        playlist = Path(client.predict(*args, api_name="/synthesize_stream")).read_text()
        seconds = sum(float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines()
                      if line.startswith("#EXTINF:"))
        assert seconds > 1.0 and "#EXT-X-ENDLIST" in playlist, playlist  # AAC segments of the whole text
        with monkeypatch.context() as patch:  # without ffmpeg: a message saying what to install, not "Error"
            patch.setattr("app.inference_webui.shutil.which", lambda _name: None)
            with pytest.raises(gradio_client.exceptions.AppError, match="ffmpeg.*install.sh"):
                client.predict(*args, api_name="/synthesize_stream")
        pieces = client.predict("这是第一句话。这是第二句话！", "zh", "cut5", api_name="/split_text")
        assert pieces.splitlines() == ["这是第一句话。", "这是第二句话！"]
        with pytest.raises(gradio_client.exceptions.AppError, match="between 3 and 10 s"):
            short = setup["root"] / "short.wav"
            sf.write(short, audio[:32000], 32000)
            client.predict(gradio_client.handle_file(str(short)), *args[1:], api_name="/synthesize")
        client.predict(str(setup["gpt"]), str(setup["sovits_b"]), api_name="/switch_models")
        deadline = time.time() + 30
        while tts.models.sovits_path != setup["sovits_b"] and time.time() < deadline:
            time.sleep(0.1)
        assert tts.models.sovits_path == setup["sovits_b"]
    finally:
        demo.close()


def test_launcher_job_serves_the_page(tmp_path: Path) -> None:
    """The 1C job as the launcher runs it: ``python -m app.inference_webui`` in a child process, page on its port."""
    import urllib.request

    from app.processes import ProcessManager
    from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained

    pretrained = make_tiny_pretrained(tmp_path / "pretrained")
    port = free_port()
    job = InferenceWebUIJob(pretrained.gpt("v2"), pretrained.sovits_g("v2"), pretrained.root, port, lang="zh_CN")
    manager = ProcessManager(tmp_path / "jobs")
    manager.start("inference_webui", job.spec())
    try:
        deadline, status = time.time() + 180, None
        while time.time() < deadline and manager.status("inference_webui").running:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    status = response.status
                break
            except OSError:
                time.sleep(1)
        assert status == 200, manager.tail("inference_webui")
    finally:
        manager.stop("inference_webui")


@pytest.mark.browser
@pytest.mark.slow
def test_synthesize_in_chromium(setup) -> None:
    """Headless Chromium: upload a reference, type the texts, press Synthesize, get audio and the report."""
    import io
    import urllib.request

    from tests.servers import chromium_page

    demo = build_inference_ui(setup["tts"], I18n("zh_CN"), setup["root"], setup["pretrained"])
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, inbrowser=False)
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#text textarea").wait_for(timeout=30_000)
            page.locator("#ref-audio input[type=file]").set_input_files(str(setup["ref"]))
            page.locator("#prompt-text textarea").fill("这是参考文本。")
            page.locator("#text textarea").fill("今天天气很好。")
            page.wait_for_timeout(1000)  # let the upload finish
            page.click("#synthesize")
            page.locator("#report").get_by_text("共 1 句").wait_for(timeout=60_000)
            href = page.locator("#output-audio a[download]").first.get_attribute("href", timeout=30_000)
            with urllib.request.urlopen(href, timeout=30) as response:
                audio, sr = sf.read(io.BytesIO(response.read()))
            assert sr == 32000 and len(audio) >= 11 * 1280
    finally:
        demo.close()


def test_v4_in_chromium_says_its_rate_offers_sample_steps_and_speaks_at_48k(tmp_path) -> None:
    """A v4 model on the page: the model line says 48000 Hz, the sampling-steps choice is shown (default 8), a
    typed text is synthesized at 48 kHz with the chosen steps."""
    import io
    import urllib.request

    from GPT_SoVITS.dev.make_tiny_pretrained import write_v4
    from GPT_SoVITS.infer.components import LazySlot, load_vocoder_model
    from tests.servers import chromium_page

    s2g, vocoder = write_v4(tmp_path / "pretrained", seed=1)
    gpt, _ = save_tiny_weights(tmp_path / "w", name="g")
    pretrained = PretrainedPaths(tmp_path / "pretrained")
    tts = TTS(load_model_pair(gpt, s2g, pretrained=pretrained), ToySSL(dim=768), CharFeaturizer(), max_new_tokens=8,
              vocoder=LazySlot(loader=lambda: load_vocoder_model(vocoder), what="vocoder"), pretrained=pretrained)
    demo = build_inference_ui(tts, I18n("en_US"), tmp_path, pretrained)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, inbrowser=False)
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Model version: v4, audio at 48000 Hz").wait_for(timeout=30_000)
            assert page.locator("#sample-steps input[value='8']").is_checked()
            page.locator("#sample-steps").get_by_text("4", exact=True).click()
            assert page.locator("#sample-steps input[value='4']").is_checked()
            page.locator("#ref-audio input[type=file]").set_input_files(str(reference_wav(tmp_path / "ref.wav")))
            page.locator("#prompt-text textarea").fill("这是参考文本。")
            page.locator("#text textarea").type("今天天气很好。", delay=30)
            page.wait_for_timeout(1000)  # let the upload finish
            page.click("#synthesize")
            page.locator("#report").get_by_text("1 sentence(s)").wait_for(timeout=120_000)
            href = page.locator("#output-audio a[download]").first.get_attribute("href", timeout=30_000)
            with urllib.request.urlopen(href, timeout=30) as response:
                audio, sr = sf.read(io.BytesIO(response.read()))
            assert sr == 48000 and len(audio) >= 1920
    finally:
        demo.close()
