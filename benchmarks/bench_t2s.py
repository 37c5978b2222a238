"""GPT (text-to-semantic) speed on CPU: prefill latency and decode tokens/second.

Full-size v2 model with the compat kit's recipe weights, float32, a 40-phone text and a 75-token prompt,
generating exactly 250 tokens (EOS masked). Run by hand on a quiet machine::

    .venv/bin/python -m benchmarks.bench_t2s --threads 2 --repeats 3

The int8 rows decode with the ``--int8`` mode (``enable_int8_decoding``: fbgemm dynamic int8), the int8-weight
rows with weight-only int8 (torch's ``_weight_int8pack_mm``); the prefill stays float32. Modes run one after
the other, so on a busy machine compare them with ``benchmarks/bench_int8_fidelity.py`` (interleaved rounds).

Reference points on the 2-core dev machine: upstream ≈ 38 tokens/s with 0.15 s prefill; streaming 310 MB of
fp32 weights per token bounds decoding at ≈ 87 tokens/s.

Measured here (2026-11-22, load average 0.5–1.0, 2 threads): prefill 0.10 s; float32 57–61 tokens/s; int8
102–121 tokens/s. A loop doing only the 96 weight GEMVs of one token takes 12.3–13.2 ms (76–81 tokens/s,
23–25 GB/s), attention over the KV cache about 1.3 ms and everything else about 2 ms.

On the issue #16 CPU kind (Xeon with AVX-512 BF16 and AMX; 2026-12-03, 1 thread, shared and loaded) the int8
rows were 1.5× float32 and the int8-weight rows 1.3× (interleaved rounds in ``bench_int8_fidelity``).
"""

from __future__ import annotations

import argparse
import statistics

import psutil
import torch

from benchmarks.common import add_threads_flag, best_of, set_threads, wall_times
from GPT_SoVITS.checkpoints import gpt_state_dict_from_upstream
from GPT_SoVITS.dev.weight_recipe import load_schema, make_state_dict
from GPT_SoVITS.models.quant_linear import INT8_KIND
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.paths import REPO_ROOT

SCHEMA = REPO_ROOT / "tests" / "data" / "compat" / "schema_t2s_v2.json"


def build_model() -> Text2SemanticDecoder:
    model = Text2SemanticDecoder(T2SConfig())
    model.load_state_dict(gpt_state_dict_from_upstream(make_state_dict(load_schema(SCHEMA))), strict=True)
    return model.eval()


def inputs(n_phones: int, n_prompt: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 732, (n_phones,), generator=g), torch.randn(1024, n_phones, generator=g),
            torch.randint(0, 1024, (n_prompt,), generator=g))


def time_prefill(model: Text2SemanticDecoder, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                 repeats: int) -> float:
    opts = SamplingOptions(top_k=1, max_new_tokens=1, min_new_tokens=1)
    return best_of(lambda: model.generate([phones], [bert], [prompt], opts), repeats)  # prefill + first logits


def time_generation(model: Text2SemanticDecoder, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                    opts: SamplingOptions, repeats: int) -> tuple[float, list[int]]:
    results = []
    times = wall_times(lambda: results.append(
        model.generate([phones], [bert], [prompt], opts, generator=torch.Generator().manual_seed(1))), repeats)
    return statistics.median(times), results[-1].tokens[0].tolist() if results else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_threads_flag(parser, 2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median decode, best prefill)")
    parser.add_argument("--tokens", type=int, default=250, help="tokens to generate (EOS masked)")
    parser.add_argument("--phones", type=int, default=40, help="text length")
    parser.add_argument("--prompt", type=int, default=75, help="prompt length")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    model = build_model()
    phones, bert, prompt = inputs(args.phones, args.prompt)
    print(f"load average before: {psutil.getloadavg()[0]:.2f}; torch {torch.__version__}; threads {args.threads}")
    prefill = time_prefill(model, phones, bert, prompt, args.repeats)
    rows, reference_tokens = [], {}
    for weights, kind in (("float32", None), ("int8", INT8_KIND), ("int8-weight", "int8-weight")):
        model.enable_quantised_decoding(kind)
        for sampling, top_k in (("greedy", 1), ("top_k=15", 15)):
            opts = SamplingOptions(top_k=top_k, max_new_tokens=args.tokens, min_new_tokens=args.tokens)
            total, tokens = time_generation(model, phones, bert, prompt, opts, args.repeats)
            decode = max(total - prefill, 1e-9)
            ref = reference_tokens.setdefault(sampling, tokens)
            same_prefix = next((i for i, (a, b) in enumerate(zip(tokens, ref, strict=True)) if a != b), len(ref))
            rows.append((f"{weights} {sampling}", len(tokens), total, (len(tokens) - 1) / decode, same_prefix))
    model.enable_quantised_decoding(None)
    print(f"{'mode':<20} {'tokens':>6} {'prefill s':>9} {'total s':>8} {'decode tok/s':>12} {'same as fp32':>12}")
    for name, n, total, rate, same in rows:
        print(f"{name:<20} {n:>6} {prefill:>9.3f} {total:>8.2f} {rate:>12.1f} {same:>9}/{n}")
    print("'same as fp32': tokens identical to float32 decoding before the first difference (same seed).")
    print(f"load average after: {psutil.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
