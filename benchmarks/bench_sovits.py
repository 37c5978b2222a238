"""SoVITS decode speed on CPU (run by hand: python -m benchmarks.bench_sovits).

Full-size v2 model with the compat kit's recipe weights, float32, 2 threads by default. Decodes 250 semantic
tokens (10 s of 32 kHz audio) with ~60 phones and a 5-second reference, and compares:

* ``upstream-equivalent``: the model as loaded (weight norm recomputed every call, 1-D convolutions,
  separate activation/residual ops) with 1x1 convolutions forced back onto the library conv kernel, i.e.
  the computation upstream's ``SynthesizerTrn.decode`` performs;
* ``prepared``: after ``prepare_for_inference()`` (weight norm folded, channels-last decoder layout, fused
  oneDNN conv+pointwise ops), with 1x1 convolutions as matrix products (the default everywhere).

Runs are interleaved so background load hits both alike; the table gives the best and median wall time and
the best process CPU time (less sensitive to other processes on a shared machine), the median of the
per-run speed-up ratios, and the largest output difference between the two.
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
from GPT_SoVITS.dev.weight_recipe import load_schema, make_state_dict
from GPT_SoVITS.features.spectrogram import reference_spectrogram
from GPT_SoVITS.models.commons import onednn_fusion_available
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn

SCHEMA = Path(__file__).resolve().parents[1] / "tests" / "data" / "compat" / "schema_sovits_v2_train.json"


def build(weights: dict[str, torch.Tensor]) -> SynthesizerTrn:
    with torch.device("meta"):
        model = SynthesizerTrn(SoVITSConfig(), with_posterior=False)
    model.load_state_dict({k: v.clone() for k, v in weights.items()}, strict=True, assign=True)
    return model.eval()


def synth_reference(seconds: float, sr: int = 32000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (voice + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tokens", type=int, default=250, help="semantic tokens to decode (25 per second)")
    parser.add_argument("--phones", type=int, default=60, help="phone ids in the target text")
    parser.add_argument("--ref-seconds", type=float, default=5.0, help="reference audio length")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant (after one warm-up)")
    add_threads_flag(parser, 2)
    args = parser.parse_args(argv)

    set_threads(args.threads)
    weights = {k: v for k, v in make_state_dict(load_schema(SCHEMA)).items() if not k.startswith("enc_q.")}
    baseline = build(weights)
    for layer in baseline.modules():
        if getattr(layer, "pointwise_as_matmul", False):
            layer.pointwise_as_matmul = False
    variants = {"upstream-equivalent": baseline, "prepared": build(weights).prepare_for_inference()}
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 1024, (1, 1, args.tokens), generator=generator)
    text = torch.randint(0, 732, (1, args.phones), generator=generator)
    refer = reference_spectrogram(synth_reference(args.ref_seconds))

    outputs: dict[str, torch.Tensor] = {}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for name, model in variants.items():
        outputs[name] = model.decode(codes, text, [refer], noise_scale=0.0)  # warm-up
    load_before = psutil.getloadavg()[0]
    for _ in range(args.runs):
        for name, model in variants.items():
            w0, c0 = time.perf_counter(), time.process_time()
            model.decode(codes, text, [refer], noise_scale=0.0)
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    load_after = psutil.getloadavg()[0]

    audio_s = outputs["prepared"].shape[-1] / 32000
    base = "upstream-equivalent"
    print(f"SoVITS v2 decode, {args.tokens} tokens ({audio_s:.1f} s audio), {args.phones} phones, "
          f"{args.ref_seconds:g} s reference, {args.threads} threads, torch {torch.__version__}, "
          f"oneDNN fusion {'on' if onednn_fusion_available() else 'off'}")
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")
    print(f"{'variant':<22}{'best wall s':>12}{'median wall s':>15}{'best cpu s':>12}{'speed-up (best wall)':>22}")
    for name in variants:
        speedup = min(wall[base]) / min(wall[name])
        print(f"{name:<22}{min(wall[name]):>12.3f}{statistics.median(wall[name]):>15.3f}{min(cpu[name]):>12.3f}"
              f"{speedup:>22.2f}")
    paired_wall = statistics.median(b / p for b, p in zip(wall[base], wall["prepared"], strict=True))
    paired_cpu = statistics.median(b / p for b, p in zip(cpu[base], cpu["prepared"], strict=True))
    print(f"median of per-run ratios (adjacent runs share the background load): wall {paired_wall:.2f}x, "
          f"cpu {paired_cpu:.2f}x")
    diff = (outputs["prepared"] - outputs[base]).abs().max().item()
    print(f"max |prepared - upstream-equivalent| = {diff:.2e} (output peak {outputs[base].abs().max().item():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
