"""Command-line flags the inference front-ends share (``python -m GPT_SoVITS.infer``, ``app.api``,
``app.inference_webui``); their values go to :meth:`GPT_SoVITS.infer.tts.TTS.from_paths`."""

from __future__ import annotations

import argparse
from pathlib import Path

from GPT_SoVITS.infer.tts import CPU_BF16, DECODE_THREADS
from GPT_SoVITS.models.cpu_features import CPU_BF16_MODES
from GPT_SoVITS.paths import DEFAULT_PRETRAINED_DIR


def add_weight_flags(parser: argparse.ArgumentParser) -> None:
    """``--gpt`` and ``--sovits`` (required) and ``--pretrained-dir``."""
    parser.add_argument("--gpt", type=Path, required=True, help="GPT weights (.ckpt)")
    parser.add_argument("--sovits", type=Path, required=True,
                        help="SoVITS weights (.pth); its version picks the pipeline")
    add_pretrained_dir_flag(parser)


def add_pretrained_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pretrained-dir", type=Path, default=DEFAULT_PRETRAINED_DIR,
                        help="folder in upstream's pretrained_models layout (BERT and HuBERT are read from it)")


def add_device_flags(parser: argparse.ArgumentParser, decode_threads: int | None = DECODE_THREADS) -> None:
    """``--device``, ``--half``, ``--int8``, ``--cpu-bf16`` and ``--decode-threads`` (default ``decode_threads``:
    front-ends that run one synthesis at a time pass ``SINGLE_REQUEST_DECODE_THREADS``, see
    :mod:`GPT_SoVITS.infer.tts`)."""
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda or cuda:1")
    parser.add_argument("--half", action=argparse.BooleanOptionalAction, default=False,
                        help="float16 weights (GPU only)")
    parser.add_argument("--int8", action="store_true",
                        help="CPU only: GPT decoding with int8 weights (faster; tokens can differ from float)")
    parser.add_argument("--cpu-bf16", choices=CPU_BF16_MODES, default=CPU_BF16,
                        help="CPU only: SoVITS decoder in bfloat16 (~2x faster on CPUs with AMX; audio within "
                             "4%% of the float32 peak); auto = on CPUs with AMX, on = also elsewhere (slower without "
                             "native bfloat16), off = float32 (upstream's numbers)")
    parser.add_argument("--decode-threads", type=_decode_threads, default=decode_threads,
                        help="CPU only: threads for the GPT's token-by-token decoding (1 keeps it steady when other "
                             "programs use the cores; 0 = all of torch's threads, fastest on an idle machine; "
                             f"default {decode_threads or 0})")


def _decode_threads(text: str) -> int | None:
    """``--decode-threads`` value: a positive count, or 0 for no limit (None)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or a positive thread count, got {value}")
    return value or None
