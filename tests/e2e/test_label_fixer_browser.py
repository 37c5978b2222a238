"""The label fixer in a real browser: headless Chromium edits, saves, pages and merges; the file on disk changes.

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python; ``bash install.sh --dev`` installs both.
"""

from __future__ import annotations

import pytest

from GPT_SoVITS import labels
from GPT_SoVITS.labels import LabelEntry
from tests.conftest import tone_burst, write_audio
from tests.servers import chromium_page, free_port, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def label_fixer_url(tmp_path):
    clips = tmp_path / "clips"
    entries = [LabelEntry(str(write_audio(clips / f"c{i}.wav", tone_burst(0.6, 16000, 180 + 40 * i), 16000)),
                          "spk", "EN", f"original text {i}") for i in range(4)]
    list_path = labels.write_list(tmp_path / "voice.list", entries)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["-m", "tools.label_fixer", "--list", str(tmp_path), "--port", str(port), "--batch-size", "3",
                "--lang", "en_US"], url, timeout=90):
        yield url, list_path


def test_edit_save_and_page_in_chromium(label_fixer_url):
    url, list_path = label_fixer_url
    with chromium_page() as page:
        page.goto(url)
        first = page.locator("#text-0 textarea")
        first.wait_for(timeout=30_000)
        page.wait_for_function("document.querySelector('#text-0 textarea').value === 'original text 0'",
                               timeout=30_000)
        first.fill("Proofread in the browser.")
        page.click("#save")
        page.locator("#status").get_by_text("Saved 4 line(s)").wait_for(timeout=30_000)
        saved = labels.read_list(list_path)
        assert saved.entries[0].text == "Proofread in the browser."
        assert [e.text for e in saved.entries[1:]] == [f"original text {i}" for i in (1, 2, 3)]
        assert list_path.with_name("voice.list.bak").read_text(encoding="utf-8").count("original text 0") == 1

        # An edit that was not submitted survives paging: Next saves it first.
        page.locator("#text-2 textarea").fill("Edited before paging.")
        page.click("#next")
        page.wait_for_function("document.querySelector('#text-0 textarea').value === 'original text 3'",
                               timeout=30_000)
        assert labels.read_list(list_path).entries[2].text == "Edited before paging."

        # Back to the first page, select the first two clips and merge them.
        page.click("#prev")
        page.wait_for_function("document.querySelector('#text-0 textarea').value === 'Proofread in the browser.'",
                               timeout=30_000)
        page.locator("#select-0 input").check()
        page.locator("#select-1 input").check()
        page.get_by_role("button", name="Merge selected").click()
        page.locator("#status").get_by_text("Merged c0.wav, c1.wav into c0_merged.wav").wait_for(timeout=30_000)
        merged = labels.read_list(list_path)
        assert [e.name for e in merged.entries] == ["c0_merged.wav", "c2.wav", "c3.wav"]
        assert merged.entries[0].text == "Proofread in the browser. original text 1"
        assert not merged.problems  # the merged audio file exists
