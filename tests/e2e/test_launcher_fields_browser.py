"""The launcher's fields in headless Chromium, filled as a person does (typing with delays, pasting with Ctrl+V,
two tabs, reloads), with a CPU hog beside it: what is on the screen when a button is pressed is what the job uses.

Issue 12, point 1 (typed and pasted values were lost, a 1 s poll overwrote the field being edited, tabs
overwrote each other) and point 6 (refusals only as toasts while the panel said "Idle").
"""

from __future__ import annotations

import numpy as np
import pytest

from GPT_SoVITS.versions import DEFAULT_VERSION
from tests.browser import (
    browser_context,
    cpu_hog,
    field,
    launcher,
    open_accordion,
    open_tab,
    paste_into,
    text_of,
    type_into,
    value_of,
    wait_for_text,
    wait_for_value,
)
from tests.conftest import silence, tone_burst, write_audio

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _recording(path, seconds: int):
    """A long recording: 2.5 s of voice-like sound, then 1 s of silence, repeated."""
    parts = [np.concatenate([tone_burst(2.5, seed=i), silence(1.0)]) for i in range(seconds // 4)]
    return write_audio(path, np.concatenate(parts))


def test_typed_and_pasted_values_reach_the_jobs_and_tabs_stay_apart(tmp_path):
    state_dir = tmp_path / "logs" / "alpha" / f"logs_s1_{DEFAULT_VERSION}"  # no pretrained files: the default
    state_dir.mkdir(parents=True)
    (state_dir / "t2s_00000120.pt").write_bytes(b"")  # "Show training state" tells alpha from beta
    typed_list = str(tmp_path / "output" / "asr_opt" / "slicer_opt.list")
    pasted_list = str(tmp_path / "pasted" / "voice.list")
    with cpu_hog(), launcher(tmp_path) as url, browser_context() as context:
        a, b = context.new_page(), context.new_page()
        for page in (a, b):
            page.goto(url)
            open_tab(page, "1 - GPT-SoVITS TTS")
        type_into(a, field("exp_name"), "alpha")
        type_into(b, field("exp_name"), "beta")
        # typed at a normal pace and pressed at once: the whole path arrives (it used to lose its last characters)
        type_into(a, field("list_path", 1), typed_list)
        a.locator("#prepare-start").click()
        wait_for_text(a, "#prepare-status", f"Label file not found: {typed_list}")
        # pasted with Ctrl+V (it used to never reach the server)
        paste_into(b, field("list_path", 1), pasted_list)
        b.locator("#prepare-start").click()
        wait_for_text(b, "#prepare-status", f"Label file not found: {pasted_list}")
        # the refusal stays in the panel's status (not only a toast) while the status poll runs on
        a.wait_for_function("document.querySelector('#prepare-status').innerText.includes('Idle')")
        for _ in range(3):
            a.wait_for_timeout(1100)  # a few ticks of the 1-second status poll
            assert f"Label file not found: {typed_list}" in text_of(a, "#prepare-status")
        # each tab acts on the experiment it shows
        for page, expected in ((a, "GPT: training state at step 120"), (b, "GPT: no training state yet")):
            open_tab(page, "1B - Fine-tuning")
            page.get_by_role("button", name="Show training state").click()
            page.get_by_text(expected).wait_for()
        assert value_of(a, field("exp_name")) == "alpha" and value_of(b, field("exp_name")) == "beta"
        assert value_of(a, field("list_path", 1)) == typed_list
        assert value_of(b, field("list_path", 1)) == pasted_list
        # a reload shows the values jobs used, not what was typed and never used
        b.reload()
        open_tab(b, "1 - GPT-SoVITS TTS")
        wait_for_value(b, field("exp_name"), "xxx")


def test_a_finished_step_prefills_the_next_fields_of_its_page_only_and_never_the_one_being_typed(tmp_path):
    with cpu_hog(), launcher(tmp_path) as url, browser_context() as context:
        a, b = context.new_page(), context.new_page()
        for page in (a, b):
            page.goto(url)
            open_accordion(page, "0c - Batch ASR", field("asr_input"))
            open_accordion(page, "0bb - Denoise", field("denoise_input"))
        type_into(b, field("asr_input"), "chosen in tab b")
        source = _recording(tmp_path / "raw" / "take.wav", 40)
        out_dir = str(tmp_path / "sliced")
        type_into(a, field("slicer_input"), str(source))
        paste_into(a, field("slicer_output"), out_dir)
        # the user is typing in the ASR input when the slicer finishes: the typing starts before the job does
        # (the start button is pressed from script, which leaves the focus in the text box)
        typed = "my own folder "
        a.locator(field("asr_input")).click()
        a.keyboard.press("Control+A")
        a.keyboard.type("my", delay=80)
        a.evaluate("document.querySelector('#slicer-start').click()")
        index = 2
        a.wait_for_function("document.querySelector('#slicer-status').innerText.includes('Running') || "
                            "document.querySelector('#slicer-status').innerText.includes('Finished')")
        while "Finished" not in text_of(a, "#slicer-status"):  # type until the job finishes ...
            assert "Failed" not in text_of(a, "#slicer-status")
            a.keyboard.type(typed[index % len(typed)], delay=80)
            index += 1
        for _ in range(25):  # ... and on, while the finished job's values arrive
            a.keyboard.type(typed[index % len(typed)], delay=80)
            index += 1
        expected = "".join(typed[i % len(typed)] for i in range(index))
        wait_for_value(a, field("denoise_input"), out_dir)  # the other next-step fields are filled in
        assert value_of(a, field("asr_input")) == expected  # the field being typed in was left alone
        assert value_of(a, field("slicer_output")) == out_dir
        open_tab(a, "1 - GPT-SoVITS TTS")
        wait_for_value(a, field("audio_dir"), out_dir)
        # the other tab keeps its own values: nothing was pushed into it
        assert value_of(b, field("asr_input")) == "chosen in tab b"
        assert value_of(b, field("denoise_input")) != out_dir
        open_tab(b, "1 - GPT-SoVITS TTS")
        assert value_of(b, field("audio_dir")) != out_dir
        # a page opened now starts from what the jobs used and produced
        c = context.new_page()
        c.goto(url)
        open_accordion(c, "0c - Batch ASR", field("asr_input"))
        wait_for_value(c, field("slicer_input"), str(source))
        wait_for_value(c, field("asr_input"), out_dir)
