"""Seconds per training step of the trainers at full size (run by hand: python -m benchmarks.bench_train).

Builds a small synthetic formatted experiment (5 s clips), full-size models with random weights
(``runtime.from_scratch``; the speed does not depend on the values), and times the trainers' own step code:
``SoVITSTrainer.train_batch`` (discriminator + generator update), ``SoVITSLoRATrainer.train_batch`` (v4 LoRA,
rank 32, on the 383 M-parameter CFM model) and the GPT forward/backward/optimizer step. The first steps are
warm-up and not counted. The LoRA step draws upstream's shortcut target (two extra forward passes) in 30 % of
the steps, so its times spread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.config import load_config
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.text.symbols import symbols
from GPT_SoVITS.train import gpt, sovits, sovits_lora
from GPT_SoVITS.train.config import GPTRunConfig, SoVITSLoRARunConfig, SoVITSRunConfig
from GPT_SoVITS.train.distributed import DistInfo
from GPT_SoVITS.train.loop import StopRequest

SR = 32000


def synth_experiment(root: Path, n_items: int, seconds: float, seed: int = 0) -> ExperimentPaths:
    """Formatted-experiment files (the 1A contract) for ``n_items`` clips of ``seconds`` each."""
    rng = np.random.default_rng(seed)
    exp = ExperimentPaths(root)
    for d in (exp.bert_dir, exp.hubert_dir, exp.wav32k_dir):
        d.mkdir(parents=True, exist_ok=True)
    table = [s for s in symbols("v2") if s.isalpha()][:60]
    texts, sems = [], ["item_name\tsemantic_audio"]
    samples = int(seconds * SR)
    for i in range(n_items):
        name = f"clip{i}.wav"
        t = np.arange(samples) / SR
        wav = 0.3 * np.sin(2 * np.pi * (120 + 10 * i) * t) + 0.02 * rng.standard_normal(samples)
        sf.write(str(exp.wav32k_dir / name), (wav * 32767).astype(np.int16), SR, subtype="PCM_16")
        torch.save(torch.randn(1, 768, samples // 320), exp.hubert_dir / f"{name}.pt")
        n_phones = int(seconds * 12)
        texts.append(f"{name}\t{' '.join(table[j] for j in rng.integers(0, len(table), n_phones))}\t[]\tx")
        torch.save(torch.randn(1024, n_phones), exp.bert_dir / f"{name}.pt")
        sems.append(f"{name}\t{' '.join(map(str, rng.integers(0, 1024, int(seconds * 25))))}")
    exp.name2text.write_text("\n".join(texts) + "\n", encoding="utf-8")
    exp.name2semantic.write_text("\n".join(sems) + "\n", encoding="utf-8")
    return exp


def _runtime() -> dict:
    return {"device": "cpu", "num_workers": 0, "from_scratch": True}


def time_sovits(exp: ExperimentPaths, batch: int, steps: int, warmup: int) -> tuple[list[float], int]:
    cfg = load_config(SoVITSRunConfig, {"exp_dir": str(exp.root), "train": {"batch_size": batch},
                                        "data": {"min_items": 1}, "runtime": _runtime()})
    trainer = sovits.SoVITSTrainer(cfg, DistInfo(), torch.device("cpu"), StopRequest())
    times = []
    batches = iter(trainer.loader(1, 0))
    for i in range(warmup + steps):
        b = next(batches)
        start = time.perf_counter()
        trainer.train_batch(b, step_now=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    n_params = sum(p.numel() for p in trainer.raw_g.parameters()) + sum(p.numel() for p in trainer.raw_d.parameters())
    return times, n_params


def time_sovits_lora(exp: ExperimentPaths, batch: int, steps: int, warmup: int) -> tuple[list[float], int]:
    cfg = load_config(SoVITSLoRARunConfig, {"exp_dir": str(exp.root), "train": {"batch_size": batch},
                                            "data": {"min_items": 1}, "runtime": _runtime()})
    trainer = sovits_lora.SoVITSLoRATrainer(cfg, DistInfo(), torch.device("cpu"), StopRequest())
    trainer.model.train()
    times = []
    batches = iter(trainer.loader(1, 0))
    for i in range(warmup + steps):
        b = next(batches)
        start = time.perf_counter()
        trainer.train_batch(b, step_now=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times, sum(p.numel() for p in trainer.raw_model.parameters() if p.requires_grad)


def time_gpt(exp: ExperimentPaths, batch: int, steps: int, warmup: int) -> tuple[list[float], int]:
    cfg = load_config(GPTRunConfig, {"exp_dir": str(exp.root), "train": {"batch_size": batch, "grad_accum": 1},
                                     "data": {"min_items": 1}, "runtime": _runtime()})
    trainer = gpt.GPTTrainer(cfg, DistInfo(), torch.device("cpu"), StopRequest())
    trainer.model.train()
    times = []
    batches = iter(trainer.loader(1, 0))
    for i in range(warmup + steps):
        b = next(batches)
        start = time.perf_counter()
        loss, _ = trainer.loss(b)
        trainer.scaler.scale(loss).backward()
        trainer.optimizer_step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times, sum(p.numel() for p in trainer.raw_model.parameters())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length")
    parser.add_argument("--sovits-batch", type=int, default=2, help="SoVITS batch size")
    parser.add_argument("--lora-batch", type=int, default=1, help="SoVITS v4 LoRA batch size")
    parser.add_argument("--gpt-batch", type=int, default=4, help="GPT batch size")
    parser.add_argument("--only", choices=("sovits", "lora", "gpt"), default=None, help="time one trainer only")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    add_threads_flag(parser, 0)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    n_items = 4 * max(args.sovits_batch, args.lora_batch, args.gpt_batch) * (args.steps + args.warmup)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exp = synth_experiment(Path(tmp) / "exp", n_items, args.seconds)
        runs = (("sovits", "SoVITS (G+D)", time_sovits, args.sovits_batch),
                ("lora", "v4 LoRA r32 *", time_sovits_lora, args.lora_batch), ("gpt", "GPT", time_gpt, args.gpt_batch))
        for key, name, fn, batch in runs:
            if args.only not in (None, key):
                continue
            times, n_params = fn(exp, batch, args.steps, args.warmup)
            rows.append((name, n_params / 1e6, batch, statistics.median(times), min(times)))
    print(f"CPU, {torch.get_num_threads()} threads, {args.seconds:g} s clips")
    print(f"{'model':<14} {'params (M)':>10} {'batch':>6} {'s/step (median)':>16} {'s/step (min)':>13}")
    for name, params, batch, median, best in rows:
        print(f"{name:<14} {params:>10.1f} {batch:>6} {median:>16.2f} {best:>13.2f}")
    if any(name.endswith("*") for name, *_ in rows):
        print("* trainable parameters only (the frozen 383 M-parameter base is not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
