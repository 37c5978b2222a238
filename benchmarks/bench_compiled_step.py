"""Issue #16 feasibility: a ``torch.compile``-d GPT decode step over a static KV cache against the eager ``_step``.

The static step keeps one key and one value tensor per layer ``[B, H, capacity, Dh]`` (zero-filled, capacity
fixed for the whole generation), writes the new slot with ``index_copy_`` at a slot index held in a tensor, and
attends over the whole capacity with a boolean mask of filled slots, so the shapes never change and inductor
compiles once (``fullgraph=True``, ``dynamic=False``). The output layer is part of the compiled graph. Greedy
tokens (argmax, no sampling) on the benchmark model of ``bench_t2s`` (full-size v2, recipe weights, float32)::

    .venv/bin/python -m benchmarks.bench_compiled_step --threads 2 --rounds 3

Prints the compile time (first calls; run twice to see inductor's on-disk cache warm), the first step where the
greedy tokens differ and the largest logit difference before it, then eager vs compiled tokens/s in interleaved
rounds (totals and the median single step, which shrugs off bursts of load on a shared machine).

Measured 2026-12-03 on the issue #16 CPU (Xeon, AVX-512/AMX, 2 cores, shared), 250 steps: compile 50–53 s
cold, 8 s with the cache warm (the cache is per thread count: 31 s at 1 thread after a 2-thread run; 72 s with
``--freezing``); greedy tokens identical for all 250 steps, logits within 1.2e-6 of eager (2.2e-6 with freezing).
Eager/compiled ratio of the median step at 2 threads: 1.00 (load 0.7–1.8: 29.8 vs 29.7 tok/s), 1.08 and 0.96
(load 2–3.8); freezing 1.00; at 1 thread 1.00 (18.0 vs 18.0 tok/s, load 1.1). Not worth it: inductor keeps the 96
weight products as the same extern ``addmm`` calls and the attention as the same SDPA kernel, so only LayerNorm
and residual fusion remain, and attending over the full capacity gives part of that back. A first version that
kept the cache as one ``[L, 2, B, H, C, Dh]`` tensor was 3.5× slower: ``index_copy_`` into a view of a graph
input is functionalised into a copy of the whole layer cache per step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import psutil
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.bench_t2s import build_model, inputs
from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.models.t2s import Text2SemanticDecoder, _projections

Run = tuple[float, list[torch.Tensor], list[float]]  # total seconds, logits per step, seconds per step


class StaticStep(nn.Module):
    """One decode step over a static cache; returns the hidden state ``[B, D]`` and the logits ``[B, V]``."""

    def __init__(self, model: Text2SemanticDecoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slot: torch.Tensor, caches: list[torch.Tensor],
                valid: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens``/``positions`` [B], ``slot`` [1] int64, ``caches`` 2L tensors [B, H, C, Dh], ``valid`` [B, C]."""
        m = self.model
        heads = m.cfg.head
        x = m.ar_audio_embedding.word_embeddings.weight[tokens] + table[positions]
        b, d = x.shape
        mask = valid[:, None, None, :]
        for i, ly in enumerate(m.h.layers):
            (wq, bq), (wo, bo), (w1, b1), (w2, b2) = _projections(ly)
            qkv = torch.addmm(bq, x, wq.t()).view(b, 3, heads, -1)
            keys, values = caches[2 * i], caches[2 * i + 1]
            keys.index_copy_(2, slot, qkv[:, 1].unsqueeze(2))
            values.index_copy_(2, slot, qkv[:, 2].unsqueeze(2))
            attn = F.scaled_dot_product_attention(qkv[:, 0].unsqueeze(2), keys, values, attn_mask=mask)
            x = F.layer_norm(torch.addmm(bo, attn.view(b, d), wo.t()) + x, (d,), ly.norm1.weight, ly.norm1.bias)
            ff = torch.addmm(b2, torch.addmm(b1, x, w1.t()).relu(), w2.t())
            x = F.layer_norm(ff + x, (d,), ly.norm2.weight, ly.norm2.bias)
        return x, m.ar_predict_layer(x)


def eager_run(model: Text2SemanticDecoder, args: tuple[torch.Tensor, ...], n: int) -> Run:
    state = model._prefill(*([t] for t in args))
    weights, table = model._layer_weights(), model._position_table(state, n)
    logits, tokens = model.ar_predict_layer(state.hidden), torch.tensor([5])
    outs, steps, start = [], [], time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        outs.append(logits)
        logits = model.ar_predict_layer(model._step(tokens, state, weights, table))
        tokens = logits.argmax(-1)
        steps.append(time.perf_counter() - t)
    return time.perf_counter() - start, outs, steps


def static_run(model: Text2SemanticDecoder, step: Callable[..., tuple[torch.Tensor, torch.Tensor]],
               args: tuple[torch.Tensor, ...], n: int) -> Run:
    state = model._prefill(*([t] for t in args))
    s, capacity = state.length, state.length + n + 1
    caches = []
    for layer in range(model.cfg.n_layer):
        for kv in range(2):
            cache = state.cache.data.new_zeros(*state.cache.data.shape[2:4], capacity, state.cache.data.shape[5])
            cache[:, :, :s] = state.cache.data[layer, kv, :, :, :s]
            caches.append(cache)
    valid = torch.zeros(1, capacity, dtype=torch.bool)
    valid[:, :s] = state.cache.valid[:, :s]
    table, positions, slot = model._position_table(state, n), state.positions.clone(), torch.tensor([s])
    logits, tokens = model.ar_predict_layer(state.hidden), torch.tensor([5])
    outs, steps, start = [], [], time.perf_counter()
    for j in range(n):
        t = time.perf_counter()
        outs.append(logits)
        valid[:, s + j] = True
        slot.fill_(s + j)
        _, logits = step(tokens, positions, slot, caches, valid, table)
        positions += 1
        tokens = logits.argmax(-1)
        steps.append(time.perf_counter() - t)
    return time.perf_counter() - start, outs, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_threads_flag(parser, 2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved eager/compiled rounds")
    parser.add_argument("--steps", type=int, default=250, help="decode steps per round")
    parser.add_argument("--freezing", action="store_true", help="inductor's freezing (constant weights)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.freezing:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    model = build_model()
    data = inputs(40, 75)
    print(f"load average before: {psutil.getloadavg()[0]:.2f}; torch {torch.__version__}; threads {args.threads}")
    with torch.no_grad():
        compiled = torch.compile(StaticStep(model).eval(), fullgraph=True, dynamic=False)
        start = time.perf_counter()
        static_run(model, compiled, data, 3)
        print(f"compile (first 3 steps): {time.perf_counter() - start:.1f} s")
        _, ref, _ = eager_run(model, data, args.steps)
        _, got, _ = static_run(model, compiled, data, args.steps)
        first = next((i for i, (a, b) in enumerate(zip(ref, got, strict=True))
                      if int(a.argmax()) != int(b.argmax())), args.steps)
        diff = max(float((a - b).abs().max()) for a, b in zip(ref[:first + 1], got[:first + 1], strict=False))
        print(f"greedy tokens equal for {first}/{args.steps} steps; max |logit difference| before that {diff:.2e}")
        totals, medians = {"eager": [], "compiled": []}, {"eager": [], "compiled": []}
        for r in range(args.rounds):
            for name, run in (("eager", lambda: eager_run(model, data, args.steps)),
                              ("compiled", lambda: static_run(model, compiled, data, args.steps))):
                total, _, steps = run()
                totals[name].append(total)
                medians[name].append(statistics.median(steps))
            print(f"round {r}: " + ", ".join(f"{k} {args.steps / v[-1]:.1f} tok/s" for k, v in totals.items())
                  + f"; load {psutil.getloadavg()[0]:.2f}")
    e_tot, c_tot = statistics.median(totals["eager"]), statistics.median(totals["compiled"])
    e_step, c_step = statistics.median(medians["eager"]), statistics.median(medians["compiled"])
    print(f"{'':<22} {'eager':>8} {'compiled':>9} {'ratio':>6}")
    print(f"{'tok/s (median total)':<22} {args.steps / e_tot:>8.1f} {args.steps / c_tot:>9.1f} {e_tot / c_tot:>6.2f}")
    print(f"{'median step ms':<22} {1e3 * e_step:>8.2f} {1e3 * c_step:>9.2f} {e_step / c_step:>6.2f}")
    print(f"load average after: {psutil.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
