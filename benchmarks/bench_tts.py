"""End-to-end synthesis speed: real-time factor and time to first audio (run by hand:
``python -m benchmarks.bench_tts [--device cpu] [--max-tokens 150]``).

The GPT and SoVITS are full size (upstream's v2 architectures) with the compatibility kit's deterministic
weights (``tests/compat.py`` recipe weights ``t2s_v2`` and ``sovits_v2_train``). BERT and HuBERT are the tiny
random models of ``GPT_SoVITS.dev.make_tiny_pretrained`` (2-layer BERT, 1-layer HuBERT), so the text and
reference front-ends are cheaper than with the real 330 M / 95 M parameter models; the reference is prepared once
and cached, so HuBERT does not enter the per-request numbers at all. With random weights the GPT rarely emits
EOS, so each sentence is capped at ``--max-tokens`` (25 tokens = 1 s of audio): the numbers are per second of
produced audio, which is what the cap fixes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import add_threads_flag, set_threads
from GPT_SoVITS.checkpoints import gpt_state_dict_from_upstream
from GPT_SoVITS.dev.make_tiny_pretrained import write_bert, write_hubert
from GPT_SoVITS.features.bert import BertFeaturizer
from GPT_SoVITS.features.hubert import HubertFeaturizer
from GPT_SoVITS.infer import TTS, Reference, SynthesisOptions
from GPT_SoVITS.infer.components import FrontendFeaturizer, ModelPair
from GPT_SoVITS.infer.tts import CPU_BF16
from GPT_SoVITS.models.cpu_features import CPU_BF16_MODES
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from tests.compat import recipe_weights
from tests.conftest import silence, tone_burst, write_audio

TEXT = "今天天气很好，我们一起去公园散步吧。公园里有很多人在跑步，也有人在放风筝。晚上我们回家吃饭。"


def full_size_pair(device: str, half: bool) -> ModelPair:
    dtype = torch.float16 if half else torch.float32
    t2s = Text2SemanticDecoder(T2SConfig())
    t2s.load_state_dict(gpt_state_dict_from_upstream(recipe_weights("t2s_v2")), strict=True)
    sovits = SynthesizerTrn(SoVITSConfig(), with_posterior=True)
    sovits.load_state_dict(recipe_weights("sovits_v2_train"), strict=True)
    sovits.drop_posterior()
    sovits = sovits.to(device=device, dtype=dtype).prepare_for_inference()
    return ModelPair(t2s.to(device=device, dtype=dtype).eval(), sovits)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def first_chunk_seconds(tts: TTS, ref: Reference, opts: SynthesisOptions, chunk_tokens: int) -> float:
    start = time.perf_counter()
    stream = tts.stream(TEXT, "zh", ref, opts, chunk_tokens)
    next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--half", action="store_true", help="float16 models (GPU only)")
    parser.add_argument("--max-tokens", type=int, default=150, help="token cap per sentence (25 per second)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (median reported)")
    add_threads_flag(parser, 0)
    parser.add_argument("--int8", action="store_true", help="GPT decoding with int8 weights (CPU)")
    parser.add_argument("--cpu-bf16", choices=CPU_BF16_MODES, default=CPU_BF16, help="the engine's cpu_bf16 option")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bert = BertFeaturizer(write_bert(root / "bert"), device=args.device)
        ssl = HubertFeaturizer.from_pretrained(write_hubert(root / "hubert"), args.device)
        ref_path = write_audio(root / "ref.wav", np.concatenate([tone_burst(2.0), silence(0.3), tone_burst(2.0)]))
        t_load, pair = timed(full_size_pair, args.device, args.half)
        t_engine, tts = timed(TTS, pair, ssl, FrontendFeaturizer(bert), device=args.device, half=args.half,
                              max_new_tokens=args.max_tokens, int8=args.int8, cpu_bf16=args.cpu_bf16)
        ref = Reference(ref_path, "这是一段用来测试的参考音频。", "all_zh")
        opts = SynthesisOptions(seed=1, text_split="cut5", pause=0.3)
        t_ref, _ = timed(tts.references.get, ref, tts.models)
        tts.synthesize("预热一下。", "zh", ref, opts)  # warm-up (allocator, text front-end caches)
        rows = []
        for batch in (1, 4):
            times, audio_seconds, tokens = [], 0.0, 0
            for _ in range(args.repeats):
                elapsed, result = timed(tts.synthesize_detailed, TEXT, "zh", ref, opts.replace(batch_size=batch))
                times.append(elapsed)
                audio_seconds = len(result.audio) / result.sample_rate
                tokens = sum(s.n_tokens for s in result.sentences)
            t = statistics.median(times)
            rows.append((f"synthesize, batch {batch}", t, audio_seconds, t / audio_seconds, tokens / t))
        first_sentence = statistics.median(first_chunk_seconds(tts, ref, opts, 0) for _ in range(args.repeats))
        first_chunk = statistics.median(first_chunk_seconds(tts, ref, opts, 16) for _ in range(args.repeats))
    mode = (" fp16" if args.half else "") + (" int8 GPT" if args.int8 else "")
    mode += " bf16 SoVITS decoder" if tts.bf16_decoder else ""
    print(f"device {args.device}{mode}, torch threads {torch.get_num_threads()}, "
          f"token cap {args.max_tokens}/sentence; model build+load {t_load:.1f} s, engine setup {t_engine:.1f} s, "
          f"reference prep {t_ref:.2f} s")
    print(f"{'run':<22}{'wall s':>9}{'audio s':>9}{'RTF':>8}{'tok/s':>9}")
    for name, t, audio_s, rtf, tps in rows:
        print(f"{name:<22}{t:>9.2f}{audio_s:>9.2f}{rtf:>8.3f}{tps:>9.1f}")
    print(f"{'time to first audio':<22}{'':>9}")
    print(f"  sentence streaming   {first_sentence:>7.2f} s")
    print(f"  16-token streaming   {first_chunk:>7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
