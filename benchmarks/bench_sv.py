"""Speaker-verification embedding speed on CPU (run by hand: python -m benchmarks.bench_sv).

Full-size ERes2NetV2 with the v2pro kit's SV recipe weights, float32, 2 threads by default. Embeds 3 s and
10 s of 32 kHz voice-like audio (resample + fbank + network) with:

* ``upstream-equivalent``: the network as loaded strictly, BatchNorm layers kept, default (NCHW) layout,
  i.e. the computation upstream's ``forward3`` performs;
* ``prepared``: after ``prepare_for_inference()`` (BatchNorm folded into the convolutions, channels-last),
  what :func:`GPT_SoVITS.features.sv.load_sv` returns.

Runs are interleaved so background load hits both alike; the table gives the best and median wall time, the
best process CPU time, the speed-up, and the largest embedding difference between the two (values reach ~70).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.dev.weight_recipe import load_schema, make_sv_state_dict
from GPT_SoVITS.features.sv import speaker_embedding
from GPT_SoVITS.models.eres2net import ERes2NetV2

SCHEMA = Path(__file__).resolve().parents[1] / "tests" / "data" / "compat" / "v2pro" / "schema_sv_eres2netv2.json"


def synth_voice(seconds: float, sr: int = 32000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (voice + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[3.0, 10.0], help="audio lengths to embed")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant and length (after a warm-up)")
    add_threads_flag(parser, 2)
    args = parser.parse_args(argv)

    set_threads(args.threads)
    weights = make_sv_state_dict(load_schema(SCHEMA))
    variants = {"upstream-equivalent": ERes2NetV2.from_state_dict(weights),
                "prepared": ERes2NetV2.from_state_dict(weights).prepare_for_inference()}
    del weights
    base = "upstream-equivalent"
    load_before = psutil.getloadavg()[0]
    rows = []
    for seconds in args.seconds:
        wave = torch.from_numpy(synth_voice(seconds)).unsqueeze(0)
        outputs = {name: speaker_embedding(model, wave) for name, model in variants.items()}  # warm-up
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, model in variants.items():
                w0, c0 = time.perf_counter(), time.process_time()
                speaker_embedding(model, wave)
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)
        diff = (outputs["prepared"] - outputs[base]).abs().max().item()
        for name in variants:
            rows.append((seconds, name, min(wall[name]), statistics.median(wall[name]), min(cpu[name]),
                         min(wall[base]) / min(wall[name]), diff if name != base else 0.0))
    load_after = psutil.getloadavg()[0]

    print(f"SV embedding (ERes2NetV2, 20480-dim), {args.threads} threads, torch {torch.__version__}, "
          f"{args.runs} runs after a warm-up")
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")
    print(f"{'audio s':>8}  {'variant':<21}{'best wall s':>12}{'median wall s':>15}{'best cpu s':>12}"
          f"{'speed-up':>10}{'max |diff|':>12}")
    for seconds, name, best, median, best_cpu, speedup, diff in rows:
        print(f"{seconds:>8.1f}  {name:<21}{best:>12.3f}{median:>15.3f}{best_cpu:>12.3f}{speedup:>10.2f}"
              f"{diff:>12.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
