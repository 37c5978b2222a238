"""Resident memory of the HTTP API over rounds of requests, with and without giving freed memory back
(run by hand: ``python -m benchmarks.bench_api_memory [--models full] [--rounds 3]``).

The API runs in this process (uvicorn in a thread, the real ``create_app``) and is driven over HTTP with httpx:
per round one long request (``--long-sentences`` sentences), ``--sequential`` short requests one after another,
then 8 and 32 short requests at once (``--max-concurrency`` synthesise together, the rest wait). The resident
set size (RSS) is printed after each phase, and the wall time of all requests. Each configuration runs in a
fresh subprocess (``GPT_SoVITS.infer.memory``):

* ``before``: glibc's defaults, nothing trimmed (what the API did before);
* ``trim``: ``malloc_trim(0)`` after every request;
* ``mmap``: the mmap threshold fixed (``--mmap-threshold``, default the API's);
* ``shipped``: the fixed threshold and ``malloc_trim(0)`` whenever the last running request ends, as
  ``python -m app.api`` runs.

``--models tiny`` uses the tiny random pretrained set (seconds; shows the allocator effect only);
``--models full`` the full-size v2 GPT/SoVITS with the compatibility kit's weights and tiny BERT/HuBERT, as
``bench_tts`` (sentences capped at ``--max-tokens``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.infer.memory import MMAP_THRESHOLD

MODES = ("before", "trim", "mmap", "shipped")
SENTENCE = "今天天气很好，我们一起去公园散步吧。"
SHORT_TEXT = "今天天气很好，我们一起去公园散步吧。公园里有很多人在跑步，也有人在放风筝。"


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _engine(kind: str, root: Path, max_tokens: int):
    from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained
    from GPT_SoVITS.infer import TTS
    from GPT_SoVITS.infer.components import default_text_featurizer, load_model_pair, load_ssl_featurizer

    pretrained = make_tiny_pretrained(root / "pretrained")
    if kind == "full":
        from benchmarks.bench_tts import full_size_pair

        pair = full_size_pair("cpu", False)
    else:
        pair = load_model_pair(pretrained.gpt("v2"), pretrained.sovits_g("v2"))
    return TTS(pair, load_ssl_featurizer(pretrained), default_text_featurizer(pretrained), max_new_tokens=max_tokens)


def run_rounds(args: argparse.Namespace) -> list[tuple[str, float]]:
    """One configuration, in this process: ``[(phase, RSS MB), ...]``."""
    import httpx
    import uvicorn

    import app.api as api
    from GPT_SoVITS.infer.memory import TrimWhenIdle, configure_allocator, release_free_memory
    from GPT_SoVITS.infer.safety import PathPolicy
    from tests.conftest import silence, tone_burst, write_audio

    class TrimEach(TrimWhenIdle):
        @contextlib.contextmanager
        def running(self) -> Iterator[None]:
            try:
                yield
            finally:
                release_free_memory()

    memory = {"before": TrimWhenIdle(enabled=False), "trim": TrimEach(), "mmap": TrimWhenIdle(enabled=False),
              "shipped": TrimWhenIdle()}[args.mode]
    if args.mode in ("mmap", "shipped"):
        configure_allocator(args.mmap_threshold)
    set_threads(args.threads)
    started = time.perf_counter()
    rows = [("start", rss_mb())]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tts = _engine(args.models, root, args.max_tokens)
        ref = write_audio(root / "ref.wav", np.concatenate([tone_burst(2.0), silence(0.3), tone_burst(2.0)]))
        state = api.ApiState(tts, PathPolicy.of([root]), PathPolicy.of([root], suffixes=(".ckpt", ".pth")),
                             slots=api.ApiState.make_slots(args.max_concurrency), memory=memory)
        server = uvicorn.Server(uvicorn.Config(api.create_app(state), host="127.0.0.1", port=args.port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = {"text_lang": "zh", "ref_audio_path": str(ref), "prompt_text": "这是一段用来测试的参考音频。",
                "prompt_lang": "zh", "seed": 1, "media_type": "wav", "batch_size": 4}
        url = f"http://127.0.0.1:{args.port}/tts"
        with httpx.Client(timeout=3600) as client:
            def request(text: str) -> None:
                response = client.post(url, json={**base, "text": text})
                response.raise_for_status()

            request(SHORT_TEXT)  # warm-up
            rows.append(("models loaded, 1 request", rss_mb()))
            for r in range(1, args.rounds + 1):
                request(SENTENCE * args.long_sentences)
                rows.append((f"round {r}: 1 long request ({args.long_sentences} sentences)", rss_mb()))
                for _ in range(args.sequential):
                    request(SHORT_TEXT)
                rows.append((f"round {r}: +{args.sequential} sequential", rss_mb()))
                for n in (8, 32):
                    with ThreadPoolExecutor(n) as pool:
                        list(pool.map(request, [SHORT_TEXT] * n))
                    rows.append((f"round {r}: +{n} concurrent", rss_mb()))
        rows.append(("seconds for all requests (wall)", time.perf_counter() - started))
        usage = psutil.Process().cpu_times()
        rows.append(("CPU seconds of the process (user + sys)", usage.user + usage.system))
        rows.append(("  of which sys (page faults, mmap)", usage.system))
        server.should_exit = True
        thread.join(timeout=10)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", choices=("tiny", "full"), default="tiny", help="model size (see above)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of requests")
    parser.add_argument("--long-sentences", type=int, default=60, help="sentences of the long request per round")
    parser.add_argument("--sequential", type=int, default=10, help="short requests one after another per round")
    parser.add_argument("--max-concurrency", type=int, default=4, help="the API's synthesis slots")
    parser.add_argument("--max-tokens", type=int, default=100, help="token cap per sentence (25 per second)")
    parser.add_argument("--port", type=int, default=19881, help="local port for the in-process API")
    parser.add_argument("--mmap-threshold", type=int, default=MMAP_THRESHOLD,
                        help="bytes; the mmap threshold of the mmap and shipped configurations")
    parser.add_argument("--modes", default=",".join(MODES), help="configurations to compare (comma-separated)")
    parser.add_argument("--mode", choices=MODES, default=None, help="run one configuration in this process")
    add_threads_flag(parser, 0)
    args = parser.parse_args(argv)
    if args.mode is not None:
        print(json.dumps(run_rounds(args)))
        return 0
    modes = [m for m in args.modes.split(",") if m in MODES]
    results = {}
    for mode in modes:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_api_memory", *(argv or sys.argv[1:]),
                              "--mode", mode], check=True, capture_output=True, text=True,
                              encoding="utf-8")
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"models {args.models}, {args.max_concurrency} synthesis slots, token cap {args.max_tokens}/sentence; "
          "resident memory (RSS) in MiB after each phase")
    print(f"{'phase':<44}" + "".join(f"{mode:>10}" for mode in modes) + f"{modes[-1] + '/' + modes[0]:>16}")
    for i, (phase, first) in enumerate(results[modes[0]]):
        values = [results[mode][i][1] for mode in modes]
        print(f"{phase:<44}" + "".join(f"{v:>10.0f}" for v in values) + f"{values[-1] / first:>16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
