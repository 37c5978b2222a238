"""The launcher in headless Chromium: slice from the 0b panel, the output folder flows into the ASR and 1A
fields, and the job's state survives a page reload (it lives in the server)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import silence, tone_burst, write_audio
from tests.servers import chromium_page, free_port, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_slicer_from_the_ui_flows_into_later_steps(tmp_path):
    source = write_audio(tmp_path / "raw" / "take.wav", np.concatenate([tone_burst(5), silence(1), tone_burst(5)]))
    out_dir = tmp_path / "sliced"
    config = tmp_path / "webui.yaml"
    config.write_text(f"exp_root: {tmp_path / 'logs'}\noutput_root: {tmp_path / 'output'}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["webui.py", "--port", str(port), "--lang", "en_US", "--config", str(config)], url), \
            chromium_page() as page:
        other = page.context.browser.new_page()  # an idle page open beside it: its status timers are off ...
        other.goto(url)
        other.locator("#slicer-status").wait_for()
        page.goto(url)
        page.locator("#wf-slicer_input-0 textarea").fill(str(source))
        page.locator("#wf-slicer_output-0 textarea").fill(str(out_dir))
        page.get_by_role("button", name="Start slicing").click()
        page.get_by_text("Finished").first.wait_for(timeout=60_000)
        # ... and the page-wide watch still shows it the job this page started
        other.wait_for_function("document.querySelector('#slicer-status').innerText.includes('Finished')",
                                timeout=30_000)
        other.close()
        assert len(list(out_dir.glob("take.wav_*.wav"))) == 2
        # the finished slicer pushed its output into the ASR input (0c) and the 1A audio folder
        page.get_by_text("0c - Batch ASR").click()
        wait_for_value(page, "#wf-asr_input-0 textarea", str(out_dir))
        page.get_by_role("tab", name="1 - GPT-SoVITS TTS").click()
        wait_for_value(page, "#wf-audio_dir-0 textarea", str(out_dir))
        page.reload()
        page.get_by_text("Finished").first.wait_for(timeout=30_000)  # state lives in the server
        page.get_by_text("0c - Batch ASR").click()
        wait_for_value(page, "#wf-asr_input-0 textarea", str(out_dir))


def wait_for_value(page, selector: str, value: str) -> None:
    page.wait_for_function(f"document.querySelector({selector!r})?.value === {value!r}", timeout=30_000)
