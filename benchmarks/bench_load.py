"""GPT decode under background load: quiet vs. one core kept busy by another process, per thread setting.

Users run browsers and other programs beside the studio; on a 2-core machine one busy core is enough to make
2-thread PyTorch wait at every parallel region for a thread the OS has descheduled. This benchmark measures the
full-size v2 GPT (compat-kit recipe weights, float32, 40 phones + 75-token prompt, 250 tokens with EOS masked,
greedy) in each *candidate* setting, quiet and with a spinning pure-Python process, rounds interleaved
(quiet/loaded alternately, every candidate once per round) so slow drifts of a shared machine hit all alike::

    .venv/bin/python -m benchmarks.bench_load --rounds 5

Each candidate runs in its own worker process (thread settings such as interop threads and OpenMP's wait
policy can only be chosen before the first parallel region). The table prints medians and the loaded/quiet
ratio; compare ratios, not absolute seconds, on a machine other programs share.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import psutil


@dataclass(frozen=True)
class Candidate:
    """One way of running the decode: torch thread counts, the engine's decode-thread option, OpenMP env."""

    name: str
    threads: int = 2  # torch.set_num_threads for the whole process (prefill, and decode unless decode_threads)
    interop: int = 0  # torch.set_num_interop_threads (0 = torch's default)
    decode_threads: int | None = None  # Text2SemanticDecoder.decode_threads (the library's policy option)
    env: dict[str, str] = field(default_factory=dict)  # set before the worker starts (OpenMP reads it once)


CANDIDATES = (
    Candidate("threads=2 (torch default here)"),
    Candidate("threads=1", threads=1),
    Candidate("threads=2, interop=1", interop=1),
    Candidate("threads=2, OMP_WAIT_POLICY=PASSIVE", env={"OMP_WAIT_POLICY": "PASSIVE"}),
    Candidate("threads=2, decode_threads=1", decode_threads=1),
    # what the inference WebUI started by the launcher runs with
    Candidate("threads=2, decode_threads=1, PASSIVE", decode_threads=1, env={"OMP_WAIT_POLICY": "PASSIVE"}),
)


def _worker(conn: Connection, candidate: Candidate, tokens: int) -> None:
    """Load the model once, then time one generation per request on ``conn`` (sends seconds back)."""
    import torch

    from benchmarks.bench_t2s import build_model, inputs
    from GPT_SoVITS.models.sampling import SamplingOptions

    if candidate.interop:
        torch.set_num_interop_threads(candidate.interop)
    torch.set_num_threads(candidate.threads)
    model = build_model()
    model.decode_threads = candidate.decode_threads
    phones, bert, prompt = inputs(40, 75)
    opts = SamplingOptions(top_k=1, max_new_tokens=tokens, min_new_tokens=tokens)
    model.generate([phones], [bert], [prompt], SamplingOptions(top_k=1, max_new_tokens=8, min_new_tokens=8))
    conn.send("ready")
    while _next_request(conn) == "run":
        start = time.perf_counter()
        result = model.generate([phones], [bert], [prompt], opts)
        conn.send((time.perf_counter() - start, result.tokens[0].tolist()))


def _next_request(conn: Connection) -> str:
    try:
        return conn.recv()
    except EOFError:  # the benchmark is gone
        return "stop"


def _spin(parent: int) -> None:
    """A pure-Python busy loop: keeps one core fully used until terminated (or the benchmark is gone)."""
    n = 0
    while True:
        n += 1
        if n % 1_000_000 == 0 and os.getppid() != parent:
            return


@contextmanager
def busy_core() -> Iterator[None]:
    """One separate process spinning for the duration of the block."""
    proc = mp.get_context("spawn").Process(target=_spin, args=(os.getpid(),), daemon=True)
    proc.start()
    time.sleep(0.3)  # let it reach the loop and be scheduled
    try:
        yield
    finally:
        proc.terminate()
        proc.join()


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def start_worker(candidate: Candidate, tokens: int) -> tuple[mp.Process, Connection]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    with _env(candidate.env):
        proc = ctx.Process(target=_worker, args=(child, candidate, tokens), daemon=True)
        proc.start()
    if parent.recv() != "ready":
        raise RuntimeError(f"worker for {candidate.name} did not start")
    return proc, parent


def timed(conn: Connection) -> tuple[float, list[int]]:
    conn.send("run")
    return conn.recv()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are reported)")
    parser.add_argument("--tokens", type=int, default=250, help="tokens to generate (EOS masked)")
    parser.add_argument("--only", default="", help="comma-separated candidate numbers (1-based) to run; all if empty")
    args = parser.parse_args(argv)
    chosen = [c for i, c in enumerate(CANDIDATES, 1)
              if not args.only or str(i) in args.only.split(",")]
    print(f"load average before: {psutil.getloadavg()[0]:.2f}; {os.cpu_count()} logical CPUs; "
          f"{args.tokens} tokens, {args.rounds} rounds")
    workers = [start_worker(c, args.tokens) for c in chosen]
    quiet: list[list[float]] = [[] for _ in chosen]
    loaded: list[list[float]] = [[] for _ in chosen]
    reference: list[int] | None = None
    same = [True] * len(chosen)
    try:
        for r in range(args.rounds):
            for i, (_, conn) in enumerate(workers):
                order = ("quiet", "loaded") if (r + i) % 2 == 0 else ("loaded", "quiet")
                for kind in order:
                    if kind == "loaded":
                        with busy_core():
                            seconds, tokens = timed(conn)
                        loaded[i].append(seconds)
                    else:
                        seconds, tokens = timed(conn)
                        quiet[i].append(seconds)
                    print(f"  {chosen[i].name}: {kind} {seconds:.2f} s", flush=True)
                    reference = tokens if reference is None else reference
                    same[i] = same[i] and tokens == reference
            print(f"round {r + 1}/{args.rounds} done (load average {psutil.getloadavg()[0]:.2f})", flush=True)
    finally:
        for proc, conn in workers:
            conn.send("stop")
            proc.join(timeout=10)
    print(f"{'candidate':<38} {'quiet s':>8} {'loaded s':>9} {'loaded/quiet':>12} {'quiet/base':>10} "
          f"{'loaded/base':>11} {'tokens = #1':>11}")
    base_q, base_l = statistics.median(quiet[0]), statistics.median(loaded[0])
    for i, c in enumerate(chosen):
        q, ld = statistics.median(quiet[i]), statistics.median(loaded[i])
        print(f"{c.name:<38} {q:>8.2f} {ld:>9.2f} {ld / q:>12.2f} {q / base_q:>10.2f} {ld / base_l:>11.2f} "
              f"{'yes' if same[i] else 'NO':>11}")
    print("medians over rounds; 'base' is the first candidate run; 'tokens = #1': greedy tokens identical to the "
          "first candidate's in every run")
    print(f"load average after: {psutil.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
