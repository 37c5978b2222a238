"""Token streaming: how much decoded context each chunk needs, in seam quality and in time.

Full-size v2 GPT + SoVITS with the compat kit's recipe weights, tiny BERT/HuBERT, one sentence generated to the
token cap, noise off. For each context length the sentence is streamed in chunks and compared with the same
tokens decoded as one sentence (relative RMS distance; 0 = identical). Run by hand on a quiet machine::

    .venv/bin/python -m benchmarks.bench_stream_context --threads 2

Measured here (2026-11-22, 2 threads, 100 tokens, 16-token chunks): distance 0.47 / 0.39 / 0.37 / 0.34 / 0.31
and 2.9 / 2.9 / 3.3 / 4.1 / 6.4 s for 0 / 4 / 12 / 25 / 50 tokens of context.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_tts import full_size_pair
from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.dev.make_tiny_pretrained import write_bert, write_hubert
from GPT_SoVITS.features.bert import BertFeaturizer
from GPT_SoVITS.features.hubert import HubertFeaturizer
from GPT_SoVITS.infer import TTS, Reference, SynthesisOptions
from GPT_SoVITS.infer.components import FrontendFeaturizer
from tests.conftest import silence, tone_burst, write_audio

TEXT = "今天天气很好，我们一起去公园散步吧。"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100, help="tokens in the sentence (the GPT runs to this cap)")
    parser.add_argument("--chunk", type=int, default=16, help="tokens per streamed chunk")
    parser.add_argument("--contexts", type=int, nargs="+", default=[0, 4, 12, 25, 50], help="context lengths to try")
    add_threads_flag(parser, 0)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bert = BertFeaturizer(write_bert(root / "bert"), device="cpu")
        ssl = HubertFeaturizer.from_pretrained(write_hubert(root / "hubert"), "cpu")
        ref_path = write_audio(root / "ref.wav", np.concatenate([tone_burst(2.0), silence(0.3), tone_burst(2.0)]))
        tts = TTS(full_size_pair("cpu", False), ssl, FrontendFeaturizer(bert), max_new_tokens=args.tokens)
        ref = Reference(ref_path, "这是一段用来测试的参考音频。", "all_zh")
        opts = SynthesisOptions(seed=5, noise_scale=0.0, pause=0.0)
        whole = tts.synthesize_detailed(TEXT, "zh", ref, opts).audio
        rows = []
        for context in args.contexts:
            start = time.perf_counter()
            streamed = np.concatenate(list(tts.stream(TEXT, "zh", ref, opts, args.chunk, context)))
            seconds = time.perf_counter() - start
            n = min(len(streamed), len(whole))
            distance = float(np.sqrt(np.mean((streamed[:n] - whole[:n]) ** 2) / np.mean(whole[:n] ** 2)))
            rows.append((context, distance, seconds))
    print(f"torch threads {torch.get_num_threads()}, {len(whole) // 1280} tokens, {args.chunk}-token chunks")
    print(f"{'context':>8}{'distance':>10}{'seconds':>9}")
    for context, distance, seconds in rows:
        print(f"{context:>8}{distance:>10.3f}{seconds:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
