"""What an open launcher page costs the machine (run by hand: python -m benchmarks.bench_page_cpu).

Starts ``python webui.py`` on a free port with every folder in a temporary work folder, opens it in Debian's
headless Chromium (Playwright), shows a tab and measures over ``--seconds``:

* ``renderer``: CPU time of Chromium's renderer processes (psutil, all threads), as % of one core;
* ``browser``: CPU time of every Chromium process (renderer, browser, GPU/compositor, network service);
* ``task``/``script``: the page's main-thread busy time from the DevTools protocol (``Performance.getMetrics``
  TaskDuration / ScriptDuration deltas; wall time of tasks, so it grows on a busy machine);
* ``server``: CPU time of the launcher process (its job's processes left out);
* ``req/s``: the page's requests to the server per second (Gradio's queue joins and data streams).

Rows: an idle page on tab 0, an idle page on 1B, 1B with a GPT training running (tiny random models from
``GPT_SoVITS.dev.make_tiny_pretrained``, its processes niced to 19 so they compete little with the browser).
``--base DIR`` measures another checkout too (e.g. ``git worktree add /tmp/base <commit>``), interleaved with
this one round by round, and prints this/base ratios. The machine's load average is printed with each row.
For scale: an empty ``gr.Blocks()`` page costs the renderer 6-7 % of a core in headless Chromium on the 2-core
development machine (Gradio's own animation-frame loop, see docs/decisions.md); results: docs/decisions.md.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ROWS = ("idle 0", "idle 1B", "1B training")


@dataclass(frozen=True)
class Sample:
    renderer: float  # % of one core
    browser: float
    task: float  # % of wall time the page's main thread was busy
    script: float
    server: float
    requests: float  # per second
    load: float  # 1-minute load average at the end


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def work_folder(root: Path, training: bool) -> Path:
    """The launcher's config inside ``root`` (tiny v2 pretrained files and a formatted experiment for training)."""
    values = {"exp_root": root / "logs", "output_root": root / "output", "weights_root": root,
              "pretrained_dir": root / "pretrained_models"}
    if training and not (root / "pretrained_models").exists():
        sys.path.insert(0, str(REPO))
        from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained
        from tests.unit.test_train_data import make_experiment

        make_tiny_pretrained(root / "pretrained_models", versions=("v2",))
        make_experiment(root / "logs" / "xxx", n_items=400)
    config = root / "webui.yaml"
    config.write_text("".join(f"{key}: {value}\n" for key, value in values.items()), encoding="utf-8")
    return config


@contextlib.contextmanager
def launcher(checkout: Path, config: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen([sys.executable, "webui.py", "--port", str(port), "--lang", "en_US", "--config",
                                 str(config)], cwd=checkout, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        output.seek(0)
                        raise RuntimeError(f"launcher of {checkout} did not start:\n{output.read().decode()}") from None
                    time.sleep(0.5)
            yield url, psutil.Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(20)


def chromium_processes() -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if "chrom" in p.name().lower()]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def is_renderer(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return "--type=renderer" in proc.cmdline()
    return False


def show(page, row: str) -> None:
    if row == "idle 0":
        return
    page.get_by_role("tab", name="1 - GPT-SoVITS TTS", exact=True).click()
    page.get_by_role("tab", name="1B - Fine-tuning", exact=True).click()
    page.locator("#train_gpt-start").wait_for(state="visible")


def start_training(page, server: psutil.Process) -> None:
    page.locator("#gpt-epochs input[type=number]").fill("50")
    page.locator("#gpt-epochs input[type=number]").press("Enter")
    page.locator("#train_gpt-start").click()
    page.wait_for_function("document.querySelector('#train_gpt-progress')?.innerText.includes('/')",
                           timeout=180_000)
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.nice(19)


def measure(context, url: str, server: psutil.Process, row: str, seconds: float, settle: float) -> Sample:
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(time.monotonic()))
    page.goto(url)
    page.locator("#slicer-start").wait_for(state="visible")
    show(page, row)
    if row == "1B training":
        start_training(page, server)
    page.wait_for_timeout(settle * 1000)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def metrics() -> dict[str, float]:
        return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

    chromium = chromium_processes()
    renderers = [p for p in chromium if is_renderer(p)]
    m0, r0, b0, s0, t0 = metrics(), cpu_seconds(renderers), cpu_seconds(chromium), cpu_seconds([server]), \
        time.monotonic()
    n0 = len(requests)
    page.wait_for_timeout(seconds * 1000)
    m1, r1, b1, s1, t1 = metrics(), cpu_seconds(renderers), cpu_seconds(chromium), cpu_seconds([server]), \
        time.monotonic()
    n1 = len(requests)
    if row == "1B training":
        page.locator("#train_gpt-stop").click()
        page.wait_for_function("!document.querySelector('#train_gpt-status').innerText.includes('Running') && "
                               "!document.querySelector('#train_gpt-status').innerText.includes('Stopping')",
                               timeout=120_000)
    page.close()
    wall = t1 - t0
    return Sample(100 * (r1 - r0) / wall, 100 * (b1 - b0) / wall,
                  100 * (m1["TaskDuration"] - m0["TaskDuration"]) / wall,
                  100 * (m1["ScriptDuration"] - m0["ScriptDuration"]) / wall,
                  100 * (s1 - s0) / wall, (n1 - n0) / wall, psutil.getloadavg()[0])


def run_checkout(checkout: Path, root: Path, rows: list[str], seconds: float, settle: float) -> dict[str, Sample]:
    from playwright.sync_api import sync_playwright

    config = work_folder(root, "1B training" in rows)
    results = {}
    with launcher(checkout, config) as (url, server), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            context.set_default_timeout(60_000)
            for row in rows:
                results[row] = measure(context, url, server, row, seconds, settle)
        finally:
            browser.close()
    return results


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per row")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds after the tab is shown before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (base and this checkout alternate)")
    parser.add_argument("--base", type=Path, default=None, help="another checkout to compare with")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows of: {', '.join(ROWS)}")
    args = parser.parse_args(argv)
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {sorted(unknown)}")
    checkouts = {"this": REPO} | ({"base": args.base.resolve()} if args.base else {})
    samples: dict[tuple[str, str], list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_page_cpu_") as tmp:
        for rnd in range(args.rounds):
            order = list(checkouts) if rnd % 2 else list(reversed(checkouts))
            for name in order:
                root = Path(tmp) / name
                root.mkdir(exist_ok=True)
                for row, sample in run_checkout(checkouts[name], root, rows, args.seconds, args.settle).items():
                    samples.setdefault((name, row), []).append(sample)
                    print(f"round {rnd + 1} {name:4} {row:12} {sample}", flush=True)
    cpu = psutil.cpu_count()
    print(f"\n{cpu} CPUs, {args.seconds:.0f} s per row, medians of {args.rounds} rounds (% of one core; task/script: "
          "% of wall time the page's main thread was busy)")
    print(f"{'checkout':8} {'row':12} {'renderer':>8} {'browser':>8} {'task':>6} {'script':>6} {'server':>6} "
          f"{'req/s':>6} {'load':>5}")
    for (name, row), got in samples.items():
        print(f"{name:8} {row:12} {fmt([s.renderer for s in got]):>8} {fmt([s.browser for s in got]):>8} "
              f"{fmt([s.task for s in got])} {fmt([s.script for s in got])} {fmt([s.server for s in got])} "
              f"{fmt([s.requests for s in got])} {statistics.median(s.load for s in got):5.2f}")
    if args.base:
        print("\nthis / base (renderer, browser, server)")
        for row in rows:
            this, base = samples[("this", row)], samples[("base", row)]
            ratios = [statistics.median(getattr(s, f) for s in this) / max(statistics.median(getattr(s, f)
                      for s in base), 1e-9) for f in ("renderer", "browser", "server")]
            print(f"{row:12} " + "  ".join(f"{r:6.2f}" for r in ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
