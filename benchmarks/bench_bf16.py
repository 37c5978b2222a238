"""bfloat16 on the CPU: SoVITS decode and GPT prefill speed, and how far the results move (run by hand:
``python -m benchmarks.bench_bf16 [--versions v2,v2ProPlus] [--runs 5]``).

Full-size models with the compat kits' recipe weights, 2 threads by default, the inputs of
``benchmarks.bench_sovits`` (250 tokens = 10 s of audio, 60 phones, 5 s reference) and ``benchmarks.bench_t2s``
(40 phones, 75-token prompt). SoVITS runs twice: every round decoding the same length, and every round a new
length (what a TTS request's sentences do; oneDNN builds primitives per new input shape, docs/models.md). Runs are
interleaved so background load hits every variant alike; ratios are the median of per-round ratios.

SoVITS, per version: ``upstream-equivalent`` (see bench_sovits), ``fp32`` (prepared, the float32 engine path),
``bf16`` (prepared + ``use_bf16_decoder()``, what ``cpu_bf16`` turns on: fixed-size windows) and ``bf16 one pass``
(``use_bf16_decoder(windows=None)``). Audio difference of bf16 against fp32: max and RMS of the sample difference,
relative to the fp32 peak.

GPT prefill (the batched pass over phones + prompt): the layer stack in float32, under
``torch.autocast(bfloat16)`` and with bfloat16 copies of its weights, and the effect of a bfloat16 pass on the
predicted next tokens: the teacher-forced logits of the first ``--forced`` audio positions after the prompt,
float32 against bfloat16 (KL divergence of the softmax, top-1 agreement, largest logit difference).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import psutil
import torch
import torch.nn.functional as F
from torch.func import functional_call

from benchmarks.bench_sovits import synth_reference, variants_of
from benchmarks.bench_t2s import build_model, inputs
from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.features.spectrogram import reference_spectrogram
from GPT_SoVITS.models.cpu_features import fast_bf16_features
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.t2s import attention_allowed


def interleaved(variants: dict[str, Callable[[], object]], runs: int, before_round: Callable[[int], None] | None = None
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU seconds of ``runs`` rounds, each calling every variant once (after a warm-up round).
    ``before_round(i)`` runs before round ``i`` (0 = the warm-up)."""
    if before_round is not None:
        before_round(0)
    for fn in variants.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(runs):
        if before_round is not None:
            before_round(i + 1)
        for name, fn in variants.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def ratio(base: list[float], other: list[float]) -> float:
    return statistics.median(b / o for b, o in zip(base, other, strict=True))


def print_rows(wall: dict[str, list[float]], cpu: dict[str, list[float]], base: str) -> None:
    print(f"{'variant':<30}{'median wall s':>14}{'best wall s':>12}{'best cpu s':>12}{'wall ratio':>12}"
          f"{'cpu ratio':>11}")
    for name in wall:
        print(f"{name:<30}{statistics.median(wall[name]):>14.3f}{min(wall[name]):>12.3f}{min(cpu[name]):>12.3f}"
              f"{ratio(wall[base], wall[name]):>11.2f}x{ratio(cpu[base], cpu[name]):>10.2f}x")


def bench_sovits(versions: list[str], runs: int) -> None:
    generator = torch.Generator().manual_seed(0)
    all_codes = torch.randint(0, 1024, (1, 1, 250 + 4 * (runs + 1)), generator=generator)
    text = torch.randint(0, 732, (1, 60), generator=generator)
    refer = reference_spectrogram(synth_reference(5.0))
    sv_emb = 0.005 * 13 * torch.randn(1, 20480, generator=generator)
    for version in versions:
        models = variants_of(version)
        upstream, fp32 = models[f"{version} upstream-equivalent"], models[f"{version} prepared"]
        bf16 = copy.deepcopy(fp32).use_bf16_decoder()
        variants = {f"{version} upstream-equivalent": upstream, f"{version} fp32": fp32, f"{version} bf16": bf16,
                    f"{version} bf16 one pass": copy.deepcopy(fp32).use_bf16_decoder(windows=None)}
        embedding = [sv_emb] if fp32.cfg.uses_sv_embedding else None
        tokens = [250]
        calls = {name: (lambda m=model, e=embedding, n=tokens: m.decode(all_codes[..., :n[0]], text, [refer],
                                                                       noise_scale=0.0, sv_emb=e))
                 for name, model in variants.items()}

        def new_length(i: int, n: list[int] = tokens) -> None:
            n[0] = 251 + 4 * i  # a length no earlier round decoded (4 tokens = 8 decoder frames apart)

        for title, before_round in (("250 tokens (10 s audio) every round", None),
                                    ("a new length every round (251, 255, …), as sentences come", new_length)):
            wall, cpu = interleaved(calls, runs, before_round)
            tokens[0] = 250
            print(f"\nSoVITS decode {version}, {title}; ratios against upstream-equivalent")
            print_rows(wall, cpu, f"{version} upstream-equivalent")
            for name in (f"{version} bf16", f"{version} bf16 one pass"):
                print(f"{name} vs fp32: median wall ratio {ratio(wall[f'{version} fp32'], wall[name]):.2f}x, "
                      f"cpu {ratio(cpu[f'{version} fp32'], cpu[name]):.2f}x")
        ref, out = calls[f"{version} fp32"](), calls[f"{version} bf16"]()
        diff = (out - ref).abs()
        peak = float(ref.abs().max())
        print(f"audio bf16 - fp32: max {float(diff.max()):.4f} ({float(diff.max()) / peak:.1%} of peak {peak:.3f}), "
              f"RMS {float(diff.pow(2).mean().sqrt()):.5f} ({float(diff.pow(2).mean().sqrt()) / peak:.2%} of peak), "
              f"signal RMS {float(ref.pow(2).mean().sqrt()):.4f}; output dtype {out.dtype}")
        fp32_mib = sum(p.numel() * p.element_size() for p in fp32.dec.parameters()) / 2**20
        fp32_mib += sum(b.numel() * b.element_size() for b in fp32.dec.buffers()) / 2**20
        bf16_mib = sum(p.numel() * p.element_size() for p in bf16.dec.parameters()) / 2**20
        bf16_mib += sum(b.numel() * b.element_size() for b in bf16.dec.buffers()) / 2**20
        print(f"decoder weights + cached kernels: fp32 {fp32_mib:.0f} MiB, bf16 {bf16_mib:.0f} MiB")


def bench_prefill(runs: int, forced: int) -> None:
    model = build_model()
    phones, bert, prompt = inputs(40, 75)
    with torch.no_grad():
        xy, valid = model.embed(phones[None], torch.ones(1, 40, dtype=torch.bool), bert[None], prompt[None],
                                torch.ones(1, 75, dtype=torch.bool))
    allowed = attention_allowed(valid, 40)
    bf16_params = {name: p.bfloat16() for name, p in model.h.layers.named_parameters()}

    @torch.no_grad()
    def stack(autocast: bool = False, weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        x = xy if weights is None else xy.bfloat16()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if weights is None:
                for layer in model.h.layers:
                    x = layer(x, allowed)[0]
            else:
                x = _run_layers(model, weights, x, allowed)
        return x.float()

    calls = {"prefill stack fp32": stack, "prefill stack autocast bf16": lambda: stack(autocast=True),
             "prefill stack bf16 weights": lambda: stack(weights=bf16_params)}
    wall, cpu = interleaved(calls, runs)
    print(f"\nGPT prefill layer stack (24 layers, {xy.shape[1]} positions); ratios against fp32")
    print_rows(wall, cpu, "prefill stack fp32")

    # the next-token distributions after the prompt, teacher-forced with greedy fp32 tokens
    tokens = model.generate([phones], [bert], [prompt], _greedy(forced)).tokens[0]
    audio = torch.cat([prompt, tokens[:-1]])[None]
    with torch.no_grad():
        ref = model.teacher_forced_logits(phones[None], bert[None], audio)[0, -forced:].float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.teacher_forced_logits(phones[None], bert[None], audio)[0, -forced:].float()
    kl = F.kl_div(low.log_softmax(-1), ref.log_softmax(-1), log_target=True, reduction="none").sum(-1)
    agree = (low.argmax(-1) == ref.argmax(-1)).float().mean()
    print(f"teacher-forced logits of the {forced} positions after the prompt, autocast bf16 vs fp32: "
          f"KL median {float(kl.median()):.2e} max {float(kl.max()):.2e}, top-1 agreement {float(agree):.0%}, "
          f"max |logit diff| {float((low - ref).abs().max()):.3f} (logit range {float(ref.std()):.2f} std)")


def _run_layers(model: torch.nn.Module, weights: dict[str, torch.Tensor], x: torch.Tensor,
                allowed: torch.Tensor) -> torch.Tensor:
    for i, layer in enumerate(model.h.layers):
        own = {name.split(".", 1)[1]: t for name, t in weights.items() if name.split(".", 1)[0] == str(i)}
        x = functional_call(layer, own, (x, allowed))[0]
    return x


def _greedy(n: int) -> SamplingOptions:
    return SamplingOptions(top_k=1, max_new_tokens=n, min_new_tokens=n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--versions", default="v2", help="SoVITS versions (v2, v2Pro, v2ProPlus), comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="interleaved timed rounds (after one warm-up)")
    parser.add_argument("--forced", type=int, default=20, help="audio positions compared after the prompt")
    parser.add_argument("--skip-gpt", action="store_true", help="only the SoVITS decode")
    add_threads_flag(parser, 2)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    load_before = psutil.getloadavg()[0]
    features = fast_bf16_features()
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs; native bfloat16: "
          f"{', '.join(features) or 'none (bf16 is emulated here and slower than fp32)'}; "
          f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    bench_sovits([v.strip() for v in args.versions.split(",") if v.strip()], args.runs)
    if not args.skip_gpt:
        bench_prefill(args.runs, args.forced)
    print(f"\n1-min load average: {load_before:.2f} before, {psutil.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
