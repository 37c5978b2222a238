"""SoVITS decode speed on CPU (run by hand: python -m benchmarks.bench_sovits [--versions v2,v2Pro,v2ProPlus]).

Full-size models (v2, and v2Pro/v2ProPlus with a speaker embedding) with the compat kits' recipe weights, float32,
2 threads by default. Decodes 250 semantic tokens (10 s of 32 kHz audio) with ~60 phones and a 5-second reference,
and compares, per version:

* ``upstream-equivalent``: the model as loaded (weight norm recomputed every call, 1-D convolutions,
  separate activation/residual ops) with 1x1 convolutions forced back onto the library conv kernel, i.e.
  the computation upstream's ``SynthesizerTrn.decode`` performs;
* ``prepared``: after ``prepare_for_inference()`` (weight norm folded, channels-last decoder layout, fused
  oneDNN conv+pointwise ops), with 1x1 convolutions as matrix products (the default everywhere).

Runs are interleaved so background load hits all alike; the table gives the best and median wall time and
the best process CPU time (less sensitive to other processes on a shared machine), the speed-up over the
upstream-equivalent computation, the cost relative to v2's prepared decode, and the largest output difference
between the two variants. The Pro versions' extra per-reference cost (the speaker-verification network) is
measured by ``benchmarks.bench_sv``.
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

KIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "compat"
SCHEMAS = {"v2": KIT / "schema_sovits_v2_train.json", "v2Pro": KIT / "v2pro" / "schema_sovits_v2pro_train.json",
           "v2ProPlus": KIT / "v2pro" / "schema_sovits_v2proplus_train.json"}


def build(version: str, weights: dict[str, torch.Tensor]) -> SynthesizerTrn:
    with torch.device("meta"):
        model = SynthesizerTrn(SoVITSConfig.for_version(version), with_posterior=False)
    model.load_state_dict({k: v.clone() for k, v in weights.items()}, strict=True, assign=True)
    return model.eval()


def variants_of(version: str) -> dict[str, SynthesizerTrn]:
    """The upstream-equivalent and the prepared model of one version, from the kit's recipe weights."""
    weights = {k: v for k, v in make_state_dict(load_schema(SCHEMAS[version])).items() if not k.startswith("enc_q.")}
    baseline = build(version, weights)
    for layer in baseline.modules():
        if getattr(layer, "pointwise_as_matmul", False):
            layer.pointwise_as_matmul = False
    return {f"{version} upstream-equivalent": baseline, f"{version} prepared": build(version, weights)
            .prepare_for_inference()}


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
    parser.add_argument("--versions", default="v2,v2Pro,v2ProPlus", help=f"comma-separated, from {', '.join(SCHEMAS)}")
    add_threads_flag(parser, 2)
    args = parser.parse_args(argv)

    set_threads(args.threads)
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    variants = {name: model for version in versions for name, model in variants_of(version).items()}
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 1024, (1, 1, args.tokens), generator=generator)
    text = torch.randint(0, 732, (1, args.phones), generator=generator)
    refer = reference_spectrogram(synth_reference(args.ref_seconds))
    sv_emb = 0.005 * 13 * torch.randn(1, 20480, generator=generator)  # the scale the kit feeds (kit §3)

    def decode(model: SynthesizerTrn) -> torch.Tensor:
        embedding = [sv_emb] if model.cfg.uses_sv_embedding else None
        return model.decode(codes, text, [refer], noise_scale=0.0, sv_emb=embedding)

    outputs = {name: decode(model) for name, model in variants.items()}  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    load_before = psutil.getloadavg()[0]
    for _ in range(args.runs):
        for name, model in variants.items():
            w0, c0 = time.perf_counter(), time.process_time()
            decode(model)
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    load_after = psutil.getloadavg()[0]

    audio_s = next(iter(outputs.values())).shape[-1] / 32000
    print(f"SoVITS decode, {args.tokens} tokens ({audio_s:.1f} s audio), {args.phones} phones, "
          f"{args.ref_seconds:g} s reference, {args.threads} threads, torch {torch.__version__}, "
          f"oneDNN fusion {'on' if onednn_fusion_available() else 'off'}")
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")
    print(f"{'variant':<32}{'best wall s':>12}{'median wall s':>15}{'best cpu s':>12}{'vs upstream-eq.':>17}"
          f"{'vs v2 prepared':>16}")
    v2_prepared = min(cpu["v2 prepared"]) if "v2 prepared" in cpu else None
    for name in variants:
        version = name.split()[0]
        speedup = min(cpu[f"{version} upstream-equivalent"]) / min(cpu[name])
        relative = f"{min(cpu[name]) / v2_prepared:.2f}x" if v2_prepared and name.endswith("prepared") else "-"
        print(f"{name:<32}{min(wall[name]):>12.3f}{statistics.median(wall[name]):>15.3f}{min(cpu[name]):>12.3f}"
              f"{speedup:>16.2f}x{relative:>16}")
    for version in versions:
        base, prepared = f"{version} upstream-equivalent", f"{version} prepared"
        paired = statistics.median(b / p for b, p in zip(cpu[base], cpu[prepared], strict=True))
        diff = (outputs[prepared] - outputs[base]).abs().max().item()
        print(f"{version}: median per-run cpu ratio {paired:.2f}x; max |prepared - upstream-equivalent| = "
              f"{diff:.2e} (peak {outputs[base].abs().max().item():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
