"""How close int8 GPT decoding stays to float32: teacher-forced next-token distributions, and decode speed.

On the kit's random recipe weights the next-token margins are narrow, so "same tokens as float32" says little
(sampled sequences part ways within a few steps). Instead the float32 greedy sequence is fed through every
mode (``Text2SemanticDecoder.forced_decode_logits``) and each step's distribution is compared with float32's:
KL(fp32 ‖ mode), top-1 agreement and top-5 overlap. Real kernels (``enable_quantised_decoding``): the
``--int8`` mode (weight-only int8, per-row scales, bfloat16 activations), the earlier fbgemm dynamic mode (int8
weights per row *and* activations quantised per tensor to 7 bits) and torch's int4 kernel (per-group scales and
offsets); two float32 simulations of weight-only int8 (per-row and per-group-of-64 scales) show what the
rounding of the weights alone costs. Then greedy decode speed per mode, modes interleaved in each round.

Full-size v2 model, compat-kit recipe weights, 40 phones + 75-token prompt, EOS masked::

    .venv/bin/python -m benchmarks.bench_int8_fidelity --tokens 250 --threads 2

Measured 2026-12-03 (Xeon with AVX-512 BF16 and AMX, 1 thread, load average 5–7 from other jobs, 5 interleaved
rounds): top-1 agreement / logit error / decode speed vs float32 — int8 dynamic (``--int8``) 0.948 / 0.026 /
1.51×; int8 weight-only 0.976 / 0.016 / 1.27×; int4 groups of 32 0.820 / 0.146 / 1.91×. Table and decisions:
docs/models.md, "int8 decoding".
"""

from __future__ import annotations

import argparse
import copy
import statistics

import psutil
import torch

from benchmarks.bench_t2s import build_model, inputs
from benchmarks.common import add_threads_flag, set_threads, wall_times
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.t2s import Text2SemanticDecoder


def fake_quantised(weight: torch.Tensor, group: int | None) -> torch.Tensor:
    """``weight`` rounded to symmetric int8 with one scale per row (``group`` None) or per ``group`` inputs."""
    rows, cols = weight.shape
    w = weight.reshape(rows, cols // group, group) if group else weight.reshape(rows, 1, cols)
    scale = (w.abs().amax(dim=-1, keepdim=True) / 127.0).clamp_min(1e-12)
    return ((w / scale).round().clamp(-127, 127) * scale).reshape(rows, cols)


def weight_only_copy(model: Text2SemanticDecoder, group: int | None) -> Text2SemanticDecoder:
    """A float32 copy whose decode-layer weights (the four projections per layer) carry int8 rounding."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for ly in out.h.layers:
            for w in (ly.self_attn.in_proj_weight, ly.self_attn.out_proj.weight, ly.linear1.weight,
                      ly.linear2.weight):
                w.copy_(fake_quantised(w, group))
    return out


def compare(reference: torch.Tensor, logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per step: KL(ref ‖ mode) in nats, top-1 agreement, top-5 set overlap (fraction), and the logit error
    relative to the spread of the reference logits (RMS of the mean-free difference / std of the reference):
    independent of how peaked the weights make the distributions, unlike KL."""
    logp, logq = torch.log_softmax(reference, -1), torch.log_softmax(logits, -1)
    diff = (logits - reference) - (logits - reference).mean(-1, keepdim=True)
    rel = diff.pow(2).mean(-1).sqrt() / reference.std(-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    top1 = (reference.argmax(-1) == logits.argmax(-1)).float()
    a, b = reference.topk(5, -1).indices, logits.topk(5, -1).indices
    overlap = (a.unsqueeze(-1) == b.unsqueeze(-2)).any(-1).float().mean(-1)
    return {"kl": kl, "top1": top1, "top5": overlap, "rel": rel}


MODES = {  # row name: (enable_quantised_decoding kind, int4 group)
    "int8 dynamic (fbgemm, --int8)": ("int8-dynamic", 32),
    "int8 weight-only (torch kernel)": ("int8-weight", 32),
    "int4 weight-only, group 32": ("int4-weight", 32),
    "int4 weight-only, group 128": ("int4-weight", 128),
}


def decode_rates(model: Text2SemanticDecoder, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                 tokens: int, rounds: int) -> dict[str, float]:
    """Greedy decode tokens/s per mode (float32 and :data:`MODES`), modes interleaved in each round, medians.

    The prefill (a 1-token run, timed in the same round) is subtracted.
    """
    one = SamplingOptions(top_k=1, max_new_tokens=1, min_new_tokens=1)
    full = SamplingOptions(top_k=1, max_new_tokens=tokens, min_new_tokens=tokens)
    kinds = {"float32": (None, 32), **MODES}
    rates: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(rounds):
        for name, (kind, group) in kinds.items():
            model.enable_quantised_decoding(kind, group)
            prefill = min(wall_times(lambda: model.generate([phones], [bert], [prompt], one), 2))
            total = wall_times(lambda: model.generate([phones], [bert], [prompt], full), 1)[0]
            rates[name].append((tokens - 1) / max(total - prefill, 1e-9))
    model.enable_quantised_decoding(None)
    return {name: statistics.median(r) for name, r in rates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_threads_flag(parser, 2)
    parser.add_argument("--tokens", type=int, default=250, help="length of the float32 greedy sequence")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (modes interleaved; medians)")
    parser.add_argument("--every", type=int, default=25, help="print the per-step table every N steps (1 = all)")
    parser.add_argument("--no-speed", action="store_true", help="skip the tokens/s measurement")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    model = build_model()
    phones, bert, prompt = inputs(40, 75)
    print(f"load average before: {psutil.getloadavg()[0]:.2f}; torch {torch.__version__}; threads {args.threads}")
    opts = SamplingOptions(top_k=1, max_new_tokens=args.tokens, min_new_tokens=args.tokens)
    sequence = model.generate([phones], [bert], [prompt], opts).tokens[0]
    reference = model.forced_decode_logits(phones, bert, prompt, sequence)
    probs = reference.softmax(-1)
    entropy = -(probs * probs.clamp_min(1e-30).log()).sum(-1)
    print(f"float32 reference: {sequence.numel()} steps; mean entropy {entropy.mean():.2f} nats "
          f"(uniform over 1025: {torch.log(torch.tensor(1025.0)):.2f}); mean top-1 probability "
          f"{probs.amax(-1).mean():.3f}; mean top-1/top-2 logit margin "
          f"{(reference.topk(2, -1).values.diff(dim=-1).abs()).mean():.3f}")
    modes: dict[str, torch.Tensor] = {}
    for name, (kind, group) in MODES.items():
        model.enable_quantised_decoding(kind, group)
        modes[name] = model.forced_decode_logits(phones, bert, prompt, sequence)
    model.enable_quantised_decoding(None)
    for name, group in (("weight-only int8, per-row (simulated)", None),
                        ("weight-only int8, group 64 (simulated)", 64)):
        modes[name] = weight_only_copy(model, group).forced_decode_logits(phones, bert, prompt, sequence)
    stats = {name: compare(reference, logits) for name, logits in modes.items()}
    print(f"\n{'mode':<40} {'mean KL':>9} {'median KL':>9} {'max KL':>9} {'top-1 agree':>11} {'top-5 overlap':>13} "
          f"{'rel. logit err':>14}")
    for name, st in stats.items():
        print(f"{name:<40} {st['kl'].mean():>9.2e} {st['kl'].median():>9.2e} {st['kl'].max():>9.2e} "
              f"{st['top1'].mean():>11.3f} {st['top5'].mean():>13.3f} {st['rel'].mean():>14.4f}")
    print(f"\nper step (every {args.every}): KL nats / top-1 agrees / top-5 overlap")
    names = list(stats)
    print(f"{'step':>5} " + " ".join(f"{n[:26]:>28}" for n in names))
    for step in range(0, sequence.numel(), args.every):
        cells = [f"{stats[n]['kl'][step]:.1e} / {int(stats[n]['top1'][step])} / {stats[n]['top5'][step]:.1f}"
                 for n in names]
        print(f"{step:>5} " + " ".join(f"{c:>28}" for c in cells))
    if args.no_speed:
        return 0
    rates = decode_rates(model, phones, bert, prompt, args.tokens, args.repeats)
    print(f"\ndecode tokens/s ({args.tokens} tokens, greedy, modes interleaved, median of {args.repeats} rounds):")
    for name, rate in rates.items():
        print(f"  {name:<40} {rate:>7.1f}  ({rate / rates['float32']:.2f}× float32)")
    print(f"load average after: {psutil.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
