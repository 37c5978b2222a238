"""SoVITS v4 synthesis cost on CPU (run by hand: python -m benchmarks.bench_v4).

Full-size v4 model and vocoder with the compat kit's recipe weights, float32, 2 threads by default. One
reference (``--ref-seconds``, which sets the CFM prompt length T = 100 frames per second, at most 500) and one
target sentence (``--seconds`` of audio) go through upstream's sequential chunked decode
(:func:`GPT_SoVITS.models.sovits_v4.synthesize` without the vocoder) for each ``--steps`` value; the vocoder
runs separately on the generated mel. The table gives process CPU seconds (all threads) and wall seconds per
second of generated audio, and the CPU milliseconds per frame and Euler step (each chunk samples its T prompt
frames too, so a step costs T + chunk frames).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import psutil
import torch

from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.dev.weight_recipe import load_schema, make_state_dict
from GPT_SoVITS.features.spectrogram import denorm_mel_v4
from GPT_SoVITS.models.sovits_v4 import (
    SoVITSV3Config,
    SynthesizerTrnV3,
    chunk_bounds,
    prepare_reference,
    sample_mel_chunked,
)
from GPT_SoVITS.models.vocoder import vocoder_from_state_dict

KIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "compat" / "v4"


def timed(fn):
    """(result, cpu seconds, wall seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="target audio length (25 codes per second)")
    parser.add_argument("--ref-seconds", type=float, default=3.0, help="reference length (prompt frames = 100/s)")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 32], help="sample_steps values to time")
    parser.add_argument("--phones", type=int, default=40, help="phone ids in the target text")
    add_threads_flag(parser, 2)
    args = parser.parse_args(argv)
    set_threads(args.threads)

    model = SynthesizerTrnV3.from_state_dict(SoVITSV3Config(), make_state_dict(
        load_schema(KIT / "schema_sovits_v4_infer.json"))).prepare_for_inference()
    vocoder = vocoder_from_state_dict(make_state_dict(load_schema(KIT / "schema_vocoder_v4.json")))
    generator = torch.Generator().manual_seed(0)
    ref_codes = torch.randint(0, 1024, (1, 1, int(args.ref_seconds * 25) + 8), generator=generator)  # + 0.3 s
    codes = torch.randint(0, 1024, (1, 1, int(args.seconds * 25)), generator=generator)
    phones = torch.randint(0, 732, (1, args.phones), generator=generator)
    spec = torch.rand(1, 1025, int(args.ref_seconds * 50), generator=generator)
    ref_mel = torch.rand(1, 100, int(args.ref_seconds * 100), generator=generator) - 0.5
    reference = prepare_reference(model, ref_codes, phones[:, :20], spec, ref_mel)
    fea, _ = model.decode_encp(codes, phones, None, ge=reference.ge)
    frames = fea.shape[-1]
    audio_s = frames / 100
    sampled = sum(reference.frames + end - start
                  for start, end in chunk_bounds(frames, reference.frames, model.variant.chunk_frames))

    print(f"SoVITS v4 on CPU: {audio_s:.2f} s of audio ({frames} frames), prompt T = {reference.frames} frames, "
          f"{sampled} frames sampled per step, {args.threads} threads, torch {torch.__version__}")
    print(f"1-min load average at start: {psutil.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"{'stage':<22}{'cpu s':>9}{'wall s':>9}{'cpu s / audio s':>17}{'wall s / audio s':>18}"
          f"{'cpu ms / frame·step':>21}")
    mel = None
    for steps in args.steps:
        def run(steps=steps):
            encp, _ = model.decode_encp(codes, phones, None, ge=reference.ge)
            return sample_mel_chunked(model, reference, encp, steps, generator=torch.Generator().manual_seed(1))

        mel, cpu, wall = timed(run)
        print(f"{f'CFM, {steps} steps':<22}{cpu:>9.2f}{wall:>9.2f}{cpu / audio_s:>17.2f}{wall / audio_s:>18.2f}"
              f"{1000 * cpu / (steps * sampled):>21.2f}")
    with torch.no_grad():
        _, cpu, wall = timed(lambda: vocoder(denorm_mel_v4(mel)))
    print(f"{'vocoder':<22}{cpu:>9.2f}{wall:>9.2f}{cpu / audio_s:>17.2f}{wall / audio_s:>18.2f}{'':>21}")
    print(f"1-min load average at end: {psutil.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
