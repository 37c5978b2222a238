"""Peak resident memory of one synthesis with both models (run by hand: ``python -m benchmarks.bench_memory``).

Writes full-size v2 release files (GPT ``.ckpt`` and SoVITS ``.pth``, compat-kit recipe weights, fp16 in the
file as upstream stores them), then in a fresh subprocess per run: imports, loads both files with the engine's
loader (``load_model_pair``), generates 250 GPT tokens (40 phones + 75-token prompt) and decodes 250 tokens
(10 s of audio) with SoVITS from a 5 s reference. After each stage it records the current RSS and the stage's own
peak (``VmHWM``, reset between stages), so the table shows what loading and each decode add on top of what stays
resident (Linux only).
The issue's reference (#16): upstream 1645 MiB peak for the same run on another CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

KIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "compat"


def _mib_now() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _mib_peak() -> float:
    """This process's RSS high-water mark (``VmHWM``; ``ru_maxrss`` would carry the parent's over the exec)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    """Start a new high-water mark at the current RSS (Linux ``clear_refs`` 5), so each stage has its own peak."""
    Path("/proc/self/clear_refs").write_text("5", encoding="utf-8")


def write_files(folder: Path) -> tuple[Path, Path]:
    """Full-size v2 GPT and SoVITS release files from the kit's recipe weights."""
    from GPT_SoVITS.checkpoints import gpt_state_dict_from_upstream, save_gpt_weights, save_sovits_weights
    from GPT_SoVITS.dev.weight_recipe import load_schema, make_state_dict
    from GPT_SoVITS.models.sovits import SoVITSConfig
    from GPT_SoVITS.models.t2s import T2SConfig

    t2s = gpt_state_dict_from_upstream(make_state_dict(load_schema(KIT / "schema_t2s_v2.json")))
    gpt = save_gpt_weights(folder / "bench-e1.ckpt", t2s, T2SConfig().to_upstream(), epoch=1)
    cfg = SoVITSConfig()
    model_section = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()
                     if k not in ("filter_length", "hop_length", "segment_size")}
    model_section["resblock_dilation_sizes"] = [list(d) for d in cfg.resblock_dilation_sizes]
    config = {"model": model_section, "data": {"filter_length": cfg.filter_length, "hop_length": cfg.hop_length},
              "version": "v2"}
    weights = make_state_dict(load_schema(KIT / "schema_sovits_v2_train.json"))
    sovits = save_sovits_weights(folder / "bench_e1_s1.pth", weights, config, 1, 1, "v2")
    return gpt, sovits


def child(gpt: Path, sovits: Path, threads: int, tokens: int, allocator: str, cpu_bf16: str) -> None:
    """One run in this (fresh) process; prints the stage marks as JSON on the last line."""
    marks: list[tuple[str, float, float]] = []
    if allocator == "api":
        from GPT_SoVITS.infer.memory import configure_allocator

        configure_allocator()

    def mark(stage: str) -> None:
        marks.append((stage, _mib_now(), _mib_peak()))
        _reset_peak()

    import torch

    from benchmarks.bench_sovits import synth_reference
    from benchmarks.bench_t2s import inputs
    from GPT_SoVITS.features.spectrogram import reference_spectrogram
    from GPT_SoVITS.infer.components import load_model_pair
    from GPT_SoVITS.models.cpu_features import use_cpu_bf16
    from GPT_SoVITS.models.sampling import SamplingOptions

    torch.set_num_threads(threads)
    mark("imports (torch, library)")
    pair = load_model_pair(gpt, sovits)
    if use_cpu_bf16(cpu_bf16):  # as the engine does (TTS(cpu_bf16=...))
        from GPT_SoVITS.infer.memory import release_free_memory

        pair.sovits.use_bf16_decoder(warm_up=True)  # as the engine does
        release_free_memory()
    mark(f"both models loaded (bf16 decoder {'on' if pair.sovits.bf16_decoder else 'off'})")
    phones, bert, prompt = inputs(40, 75)
    opts = SamplingOptions(top_k=1, max_new_tokens=tokens, min_new_tokens=tokens)
    codes = pair.t2s.generate([phones], [bert], [prompt], opts).tokens[0]
    mark(f"GPT: {tokens} tokens generated")
    refer = reference_spectrogram(synth_reference(5.0))
    text = torch.randint(0, 732, (1, 60), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        audio = pair.sovits.decode(codes.view(1, 1, -1), text, [refer], noise_scale=0.0)
    mark(f"SoVITS: {audio.shape[-1] / 32000:.1f} s of audio decoded")
    print(json.dumps(marks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads in the measured process")
    parser.add_argument("--tokens", type=int, default=250, help="GPT tokens, then decoded by SoVITS")
    parser.add_argument("--allocators", default="default,api",
                        help="runs: 'default' = glibc's defaults; 'api' = the mmap threshold python -m app.api fixes")
    parser.add_argument("--cpu-bf16", default="auto", choices=("auto", "on", "off"),  # torch not imported here
                        help="the engine's cpu_bf16 option (its default: auto): the SoVITS decoder in bfloat16")
    parser.add_argument("--child", nargs=2, type=Path, metavar=("GPT", "SOVITS"), help=argparse.SUPPRESS)
    parser.add_argument("--allocator", default="default", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.threads, args.tokens, args.allocator, args.cpu_bf16)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        gpt, sovits = write_files(Path(tmp))
        print(f"files: GPT {gpt.stat().st_size / 2**20:.0f} MiB, SoVITS {sovits.stat().st_size / 2**20:.0f} MiB; "
              f"{args.threads} threads")
        for allocator in args.allocators.split(","):
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--threads", str(args.threads),
                                  "--tokens", str(args.tokens), "--child", str(gpt), str(sovits), "--allocator",
                                  allocator, "--cpu-bf16", args.cpu_bf16], capture_output=True, text=True,
                                 encoding="utf-8", check=True)
            print(f"\nallocator: {allocator}")
            print_marks(json.loads(out.stdout.strip().splitlines()[-1]))
    return 0


def print_marks(marks: list[list]) -> None:
    print(f"{'stage':<40} {'RSS after MiB':>13} {'stage peak MiB':>14} {'peak above RSS before':>21}")
    previous = 0.0
    for stage, now, peak in marks:
        print(f"{stage:<40} {now:>13.0f} {peak:>14.0f} {peak - previous:>21.0f}")
        previous = now
    print(f"peak RSS of the run: {max(m[2] for m in marks):.0f} MiB (issue #16 reference: upstream 1645, studio "
          f"then 2142, on another machine)")


if __name__ == "__main__":
    raise SystemExit(main())
