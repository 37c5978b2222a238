"""The 0c batch ASR panel in headless Chromium with tiny FunASR models: a missing model is named in the panel
before any job starts; the language choices follow the chosen model; with the model folder set, Damo ASR
(Paraformer + VAD + punctuation) writes a punctuated .list. SenseVoice runs in tests/unit/test_asr_funasr.py:
one job here already costs the seconds funasr takes to import."""

from __future__ import annotations

import pytest

from GPT_SoVITS import labels
from tests import funasr_models
from tests.conftest import espeak, tone_burst, write_audio
from tests.servers import chromium_page, free_port, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def choose(page, elem_id: str, option: str) -> None:
    """Pick ``option`` in a Gradio dropdown."""
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id} [role=option]", has_text=option).first.click()


def test_asr_panel_transcribes_with_funasr_models(tmp_path):
    pytest.importorskip("funasr")
    models = funasr_models.build_all(tmp_path / "asr_models")
    clips = tmp_path / "voice"
    for name, text in {"a.wav": "你好", "b.wav": "再见"}.items():
        if espeak(text, clips / name, voice="cmn") is None:
            write_audio(clips / name, tone_burst(1.5, 16000), 16000)
    out_dir = tmp_path / "asr_opt"
    config = tmp_path / "webui.yaml"
    config.write_text(f"exp_root: {tmp_path / 'logs'}\noutput_root: {tmp_path / 'output'}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["webui.py", "--port", str(port), "--lang", "en_US", "--config", str(config)], url), \
            chromium_page() as page:
        page.goto(url)
        page.get_by_text("0c - Batch ASR").click()
        # the workflow fields get their values when the page has loaded: type only after that
        page.wait_for_function("document.querySelector('#wf-asr_input-0 textarea')?.value !== ''", timeout=30_000)
        page.locator("#wf-asr_input-0 textarea").fill(str(clips))
        page.locator("#wf-asr_output-0 textarea").fill(str(out_dir))
        assert page.locator("#asr-backend input").input_value() == "Damo ASR (Chinese classic)"
        model_dir = page.locator("#asr-model-dir textarea")
        model_dir.fill(str(tmp_path / "no_models"))
        start = page.get_by_role("button", name="Start ASR")
        start.click()  # the Damo ASR models are not there: the panel says which folders to create
        missing = tmp_path / "no_models" / funasr_models.PARAFORMER_DIR
        page.get_by_text(f"ASR model missing: create the folder {missing}").first.wait_for(timeout=30_000)
        assert not out_dir.exists()

        model_dir.fill(str(models))
        choose(page, "asr-backend", "SenseVoice (fast, 5 languages)")  # its languages replace Damo ASR's
        page.wait_for_function("document.querySelector('#asr-language input')?.value === 'auto'", timeout=30_000)
        page.locator("#asr-language input").click()
        options = [o.get_attribute("aria-label") for o in page.locator("#asr-language [role=option]").all()]
        assert options == ["auto", "zh", "en", "ja", "ko", "yue"]
        page.keyboard.press("Escape")
        choose(page, "asr-backend", "Damo ASR (Chinese classic)")
        page.wait_for_function("document.querySelector('#asr-language input')?.value === 'zh'", timeout=30_000)
        start.click()
        page.get_by_text("Finished").first.wait_for(timeout=240_000)
        entries = labels.read_list(out_dir / "voice.list").entries
        assert [(e.speaker, e.language) for e in entries] == [("voice", "ZH"), ("voice", "ZH")]
        assert all(e.text.startswith("好") and e.text.endswith("。") for e in entries)  # punctuated by CT-Punc
