"""Helpers for browser tests of the launcher: a person's input (typing with delays, pasting through the
clipboard), waiting for conditions (never fixed sleeps), a busy machine (a CPU hog), an English-sentence scan."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import CHROMIUM, CHROMIUM_ARGS, free_port, serve

TYPE_DELAY_MS = 60  # a person typing at a normal pace
WAIT_MS = 60_000


@contextlib.contextmanager
def cpu_hog(count: int = 1) -> Iterator[None]:
    """Busy-loop processes beside the test: the users' machines are busy too, and races show up."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def browser_context() -> Iterator[object]:
    """A Playwright browser context in Debian's headless Chromium with clipboard access (for Ctrl+V)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (bash install.sh --dev installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright missing: bash install.sh --dev")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
            context.set_default_timeout(WAIT_MS)
            yield context
        finally:
            browser.close()


@contextlib.contextmanager
def launcher(tmp_path: Path, language: str = "en_US", **settings: object) -> Iterator[str]:
    """``python webui.py`` with every folder inside ``tmp_path`` (plus ``settings``); yields its URL."""
    config = tmp_path / "webui.yaml"
    values = {"exp_root": tmp_path / "logs", "output_root": tmp_path / "output", "weights_root": tmp_path,
              "pretrained_dir": tmp_path / "pretrained_models", **settings}
    lines = [f"{key}: {value}" for key, value in values.items() if key != "ports"]
    if "ports" in settings:
        lines.append("ports:\n" + "".join(f"  {k}: {v}\n" for k, v in settings["ports"].items()))
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serve(["webui.py", "--port", str(port), "--lang", language, "--config", str(config)], url, timeout=180):
        yield url


def field(name: str, view: int = 0) -> str:
    """The CSS selector of a workflow field's text box (``ctx.bind`` gives each view the id wf-<name>-<n>)."""
    return f"#wf-{name}-{view} textarea"


def type_into(page, selector: str, text: str, delay: int = TYPE_DELAY_MS) -> None:
    """Click into a text box, select what is there and type ``text`` key by key, as a person does."""
    page.locator(selector).click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text, delay=delay)


def paste_into(page, selector: str, text: str) -> None:
    """Put ``text`` on the clipboard and paste it over the box's content with Ctrl+V."""
    page.evaluate("(t) => navigator.clipboard.writeText(t)", text)
    page.locator(selector).click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+V")


def value_of(page, selector: str) -> str:
    return page.locator(selector).input_value()


def wait_for_value(page, selector: str, value: str, timeout: int = WAIT_MS) -> None:
    page.wait_for_function("([s, v]) => document.querySelector(s)?.value === v", arg=[selector, value],
                           timeout=timeout)


def wait_for_text(page, selector: str, text: str, timeout: int = WAIT_MS) -> None:
    """Wait until the element's visible text contains ``text``; a timeout says what the element showed instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                               arg=[selector, text], timeout=timeout)
    except PlaywrightTimeoutError:
        shown = page.evaluate("(s) => document.querySelector(s)?.innerText ?? '(no such element)'", selector)
        raise AssertionError(f"{selector} never showed {text!r} in {timeout / 1000:.0f} s; "
                             f"it shows: {shown!r}") from None


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def open_accordion(page, title: str, inside: str) -> None:
    """Make the accordion ``title`` show its content (``inside``: a selector within it); a click toggles it."""
    if not page.locator(inside).is_visible():
        page.locator("button.label-wrap", has_text=title).first.click()
    page.locator(inside).wait_for(state="visible")


#: Three or more English words in a row (technical names such as chinese-hubert-base or s2G2333k.pth do not count).
ENGLISH_SENTENCE = re.compile(r"(?<![\w./-])[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}(?![\w./-])")


def english_sentences(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted({m.group(0) for m in ENGLISH_SENTENCE.finditer(text)} - set(allowed))


def page_text_everywhere(page) -> str:
    """The visible text of the page with every tab and accordion shown once (Gradio's footer left out)."""
    texts = []

    def collect() -> None:
        texts.append(page.evaluate("""() => {
            const main = document.querySelector('.gradio-container') || document.body;
            const footer = main.querySelector('footer');
            return footer ? main.innerText.replace(footer.innerText, '') : main.innerText;
        }"""))

    for _ in range(2):  # two passes: every accordion is seen open and closed, tabs in both states
        for tab in page.locator("button[role=tab]").all():
            if tab.is_visible():
                tab.click()
                collect()
        for toggle in page.locator("button.label-wrap").all():
            if toggle.is_visible():
                toggle.click()
        collect()
    return "\n".join(texts)
