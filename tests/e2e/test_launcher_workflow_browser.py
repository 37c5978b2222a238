"""The whole workflow in headless Chromium, as a new user walks it, on synthesised audio and the tiny pretrained
set, with a CPU hog beside it: slice → label file → label fixer → 1A → 1B (stop, restart) → 1C; and the zh_CN
pages without English sentences.

The .list is written by the test where batch ASR would write it: the ASR panel has no model-folder field yet to
point it at a tiny Whisper (that field is another change); everything after it goes through the pages. The CPU hog
runs while the pages are filled in (up to 1A); the training runs without it, because tiny-model training steps on
two shared cores with a busy-looping neighbour take a minute each (torch's worker threads wait on each other).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from GPT_SoVITS import labels
from GPT_SoVITS.checkpoints import load_train_state
from GPT_SoVITS.labels import LabelEntry
from tests.browser import (
    browser_context,
    cpu_hog,
    english_sentences,
    field,
    launcher,
    open_accordion,
    open_tab,
    page_text_everywhere,
    paste_into,
    text_of,
    type_into,
    value_of,
    wait_for_text,
    wait_for_value,
)
from tests.conftest import silence, tone_burst, write_audio
from tests.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAINING_WAIT_MS = 900_000


def _recording(path, n: int = 5):
    """``n`` 1.5-second voice-like bursts at different pitches, 0.8 s of silence between them (→ n clips when
    the slicer's min_length is 1000 ms)."""
    parts = [np.concatenate([tone_burst(1.5, freq=160 + 30 * i, seed=i), silence(0.8)]) for i in range(n)]
    return write_audio(path, np.concatenate(parts))


def _write_list(list_path, clips) -> None:
    """What batch ASR would write, with two Chinese texts wrongly marked EN (the label fixer fixes the first)."""
    texts = [("EN", "今天天气很好，我们去公园吧。"), ("EN", "我们明天再来这里看看吧。"),
             ("EN", "The quick brown fox jumps over the lazy dog."), ("ZH", "你好，我们去银行取钱。"),
             ("EN", "She sells sea shells by the sea shore.")]
    entries = [LabelEntry(str(clip), "voice", *texts[i % len(texts)]) for i, clip in enumerate(clips)]
    labels.write_list(list_path, entries)


def _set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_function("([s, v]) => document.querySelector(s).value === v",
                           arg=[f"#{elem_id} input[type=number]", str(value)])


def _log_at_end(page, elem_id: str) -> bool:
    return page.evaluate("(s) => { const t = document.querySelector(s); "
                         "return t.scrollTop + t.clientHeight >= t.scrollHeight - 2; }", f"#{elem_id} textarea")


def test_whole_workflow_as_a_new_user(tmp_path, tiny_pretrained):
    source = _recording(tmp_path / "raw" / "voice.wav")
    sliced = tmp_path / "output" / "slicer_opt"
    list_path = tmp_path / "output" / "asr_opt" / "slicer_opt.list"
    exp = tmp_path / "logs" / "voice"
    fixer_port = free_port()
    with contextlib.ExitStack() as busy, launcher(tmp_path, pretrained_dir=tiny_pretrained.root,
                  ports={"label_fixer": fixer_port, "inference": free_port()}) as url, \
            browser_context() as context:
        busy.enter_context(cpu_hog())  # a busy machine while the pages are filled in (see the docstring)
        page = context.new_page()
        page.goto(url)
        # 0b: slice, typing the input and pasting the output folder
        type_into(page, field("slicer_input"), str(source))
        paste_into(page, field("slicer_output"), str(sliced))
        type_into(page, "#slicer-min-length input", "1000")
        page.locator("#slicer-start").click()
        wait_for_text(page, "#slicer-status", "Finished")
        clips = sorted(sliced.glob("*.wav"))
        assert len(clips) == 5
        open_accordion(page, "0c - Batch ASR", field("asr_input"))
        wait_for_value(page, field("asr_input"), str(sliced))  # the finished slicer filled in the next step
        _write_list(list_path, clips)

        # 0d: open the label fixer on the .list, set the first line's language, edit a text, save
        open_accordion(page, "0d - Label fixer", field("list_path", 0))
        type_into(page, field("list_path", 0), str(list_path))
        page.locator("#label_fixer-open").click()
        wait_for_text(page, "#label_fixer-status", "Open in your browser", TRAINING_WAIT_MS)
        fixer = context.new_page()
        fixer.goto(f"http://127.0.0.1:{fixer_port}/")
        wait_for_value(fixer, "#text-0 textarea", "今天天气很好，我们去公园吧。")
        fixer.locator("#lang-0 input").click()
        fixer.get_by_role("option", name="ZH", exact=True).click()
        type_into(fixer, "#text-2 textarea", "The quick brown fox jumped.")
        fixer.click("#save")
        wait_for_text(fixer, "#status", "2 line(s) edited since it was opened")
        saved = labels.read_list(list_path).entries
        assert (saved[0].language, saved[1].language, saved[2].text) == ("ZH", "EN", "The quick brown fox jumped.")
        page.locator("#label_fixer-close").click()
        wait_for_text(page, "#label_fixer-status", "Closed")

        # tab 1: the experiment name, the version the page chose and why (v2Pro: upstream's default, files present)
        open_tab(page, "1 - GPT-SoVITS TTS")
        type_into(page, field("exp_name"), "voice")
        assert value_of(page, "#wf-version-0 input") == "v2Pro"
        assert "v2Pro is preselected: upstream's default" in text_of(page, "#version-note")
        # 1A: the .list typed in 0d is here too, the audio folder came from the slicer; one click
        assert value_of(page, field("list_path", 1)) == str(list_path)
        assert value_of(page, field("audio_dir")) == str(sliced)
        page.locator("#prepare-start").click()
        wait_for_text(page, "#prepare-status", "Finished", TRAINING_WAIT_MS)
        status = text_of(page, "#prepare-status")
        assert "1 item(s) were left out" in status and "wrong language" in status and clips[1].name in status
        assert page.locator("#prepare-progress .job-progress").count() == 0  # no "1Ac running" after "Finished"
        assert "running" not in text_of(page, "#prepare-progress")
        page.wait_for_function("document.querySelector('#prepare-log textarea').value.includes('formatting finished')")
        assert _log_at_end(page, "prepare-log")
        assert "1Ab-SV" in (tmp_path / "logs" / "_jobs" / "prepare.log").read_text(encoding="utf-8")
        assert len(list((exp / "7-sv_cn").glob("*.wav.pt"))) == len(clips)  # the Pro step ran: one per clip
        busy.close()  # the hog ends here

        # 1B: SoVITS training, Stop (it saves), start again (it resumes), then GPT training
        open_tab(page, "1B - Fine-tuning")
        # batches of 4: an epoch of the tiny set (4 clips, repeated to 100 items) is 25 steps, and the first progress
        # line (step 10) comes early in it, so the Stop lands inside epoch 1 and the resumed run finishes that epoch
        _set_slider(page, "sovits-batch", 4)
        _set_slider(page, "sovits-epochs", 25)
        page.locator("#train_sovits-start").click()
        wait_for_text(page, "#train_sovits-progress", "epoch 1/", TRAINING_WAIT_MS)  # a step is done
        page.locator("#train_sovits-stop").click()
        # "Stopping · saving…" may be gone before the page shows it: the tiny trainer saves in a blink (the text
        # is checked in tests/e2e/test_launcher.py); the log below says the stop was the graceful one
        wait_for_text(page, "#train_sovits-status", "Stopped", TRAINING_WAIT_MS)
        states = sorted((exp / "logs_s2_v2Pro").glob("sovits_G_*.pt"))
        assert states, "Stop lost the training state"
        assert page.locator("#train_sovits-progress .job-progress").count() == 0  # no stale bar when stopped
        # one epoch more than the state finished (1 when the Stop landed inside epoch 1, as it should here)
        target = load_train_state(states[-1]).epoch + 1
        _set_slider(page, "sovits-epochs", target)
        page.locator("#train_sovits-start").click()
        wait_for_text(page, "#train_sovits-status", "Finished", TRAINING_WAIT_MS)
        job_log = (tmp_path / "logs" / "_jobs" / "train_sovits.log").read_text(encoding="utf-8")
        second_run = job_log.rsplit("$ ", 1)[1]
        assert f"resuming from {states[-1]}" in second_run
        assert "received signal" in job_log.rsplit("$ ", 1)[0]  # the first run was stopped by the signal
        _set_slider(page, "gpt-epochs", 2)
        page.locator("#train_gpt-start").click()
        wait_for_text(page, "#train_gpt-status", "Finished", TRAINING_WAIT_MS)
        sovits_files = sorted((tmp_path / "SoVITS_weights_v2Pro").glob(f"voice_e{target}_s*.pth"))
        assert sovits_files and (tmp_path / "GPT_weights_v2Pro" / "voice-e2.ckpt").exists()
        assert sovits_files[-1].read_bytes()[:2] == b"05"  # upstream's v2Pro tag

        # 1C: without pressing Refresh, the lists hold the new files and the newest pair of the experiment is chosen
        open_tab(page, "1C - Inference")
        step = sovits_files[-1].stem.rsplit("_s", 1)[1]
        wait_for_value(page, "#gpt-model input", "voice · e2 · v2Pro")
        wait_for_value(page, "#sovits-model input", f"voice · e{target} · s{step} · v2Pro")


def test_zh_cn_pages_show_no_english_sentences(tmp_path, tiny_pretrained):
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    fixer_port = free_port()
    list_path = tmp_path / "voice.list"
    clip = write_audio(tmp_path / "clips" / "a.wav", tone_burst(1.0))
    labels.write_list(list_path, [LabelEntry(str(clip), "s", "ZH", "你好。")])
    with launcher(tmp_path, "zh_CN", pretrained_dir=tiny_pretrained.root, ports={"label_fixer": fixer_port}) as url, \
            browser_context() as context:
        page = context.new_page()
        page.goto(url)
        open_accordion(page, "0d-语音文本校对标注工具", field("list_path", 0))
        # the label fixer's "no .list in the folder" refusal, in Chinese, with the folder in it
        type_into(page, field("list_path", 0), str(empty))
        page.locator("#label_fixer-open").click()
        wait_for_text(page, "#label_fixer-status", f"{empty} 是一个文件夹，里面没有 .list 文件")
        # a 1B refusal, in one language
        open_tab(page, "1-GPT-SoVITS-TTS")
        open_tab(page, "1B-微调训练")
        page.locator("#train_sovits-start").click()
        wait_for_text(page, "#train_sovits-status", "尚未格式化")
        assert english_sentences(page_text_everywhere(page)) == []
        # the label fixer page
        open_tab(page, "0-前置数据集获取工具")
        open_accordion(page, "0d-语音文本校对标注工具", field("list_path", 0))
        type_into(page, field("list_path", 0), str(list_path))
        page.locator("#label_fixer-open").click()
        wait_for_text(page, "#label_fixer-status", "http://127.0.0.1", 180_000)
        fixer = context.new_page()
        fixer.goto(f"http://127.0.0.1:{fixer_port}/")
        wait_for_value(fixer, "#text-0 textarea", "你好。")
        assert english_sentences(page_text_everywhere(fixer)) == []
