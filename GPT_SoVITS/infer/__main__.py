"""Command-line synthesis: ``python -m GPT_SoVITS.infer --gpt G.ckpt --sovits S.pth --ref ref.wav ...``.

Text comes from ``--text`` or ``--text-file`` (a plain text file, or an ``.srt`` subtitle file: one audio file per
cue, named ``<cue number>.wav`` in the ``--out`` folder). The output format follows ``--out``'s suffix
(wav, flac, ogg, mp3). Exit codes: 0 done, 2 bad input (message on stderr), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from GPT_SoVITS.fileio import atomic_write_bytes
from GPT_SoVITS.infer.components import ModelMismatchError
from GPT_SoVITS.infer.flags import add_device_flags, add_weight_flags
from GPT_SoVITS.infer.media import encode_audio
from GPT_SoVITS.infer.memory import configure_allocator
from GPT_SoVITS.infer.options import (
    LANGUAGES_V2,
    TEXT_SPLIT_METHODS,
    InvalidOptionError,
    Reference,
    SynthesisOptions,
)
from GPT_SoVITS.infer.reference import ReferenceAudioError
from GPT_SoVITS.infer.tts import SINGLE_REQUEST_DECODE_THREADS, TTS, EmptyTextError, SynthesisResult
from GPT_SoVITS.logs import progress_logger, setup_logging
from GPT_SoVITS.paths import PretrainedPaths

log = logging.getLogger("GPT_SoVITS.infer")

OUTPUT_FORMATS = {".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".mp3": "mp3"}
_SRT_TIME = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*-->\s*(\d+):(\d\d):(\d\d)[,.](\d{1,3})")


class InputError(ValueError):
    """Bad command-line input (missing file, unreadable subtitle...)."""


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: its number, start/end in seconds and its text (lines joined by a space)."""

    number: int
    start: float
    end: float
    text: str


def parse_srt(content: str) -> list[Cue]:
    """Cues of an SRT file in file order; blocks without a time line are skipped with a warning."""
    cues = []
    for block in re.split(r"\n\s*\n", content.replace("\r\n", "\n").replace("\ufeff", "").strip()):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        time_index = next((i for i, line in enumerate(lines) if _SRT_TIME.search(line)), None)
        if time_index is None:
            if lines:
                log.warning("subtitle block without a time line skipped: %r", lines[0][:40])
            continue
        g = [int(x) for x in _SRT_TIME.search(lines[time_index]).groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        number = int(lines[0]) if time_index == 1 and lines[0].isdigit() else len(cues) + 1
        text = " ".join(re.sub(r"<[^>]+>", "", line) for line in lines[time_index + 1:]).strip()
        if text:
            cues.append(Cue(number, start, end, text))
    return cues


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m GPT_SoVITS.infer", description="GPT-SoVITS text-to-speech",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_weight_flags(p)
    p.add_argument("--ref", type=Path, required=True, help="reference audio, 3-10 s of the voice to clone")
    p.add_argument("--ref-text", default="", help="transcript of --ref; empty = no-reference-text mode")
    p.add_argument("--ref-text-file", type=Path, default=None, help="read the transcript of --ref from this file")
    p.add_argument("--ref-lang", default="all_zh", help=f"language code of the transcript ({', '.join(LANGUAGES_V2)})")
    p.add_argument("--extra-ref", type=Path, action="append", default=[],
                   help="extra reference audio whose timbre is averaged in (repeatable)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="text to speak")
    text.add_argument("--text-file", type=Path, help="text file to speak, or an .srt file (one output per cue)")
    p.add_argument("--text-lang", default="all_zh", help="language code of the text")
    p.add_argument("--out", type=Path, required=True,
                   help="output audio file (.wav/.flac/.ogg/.mp3); for .srt input, an output folder")
    d = SynthesisOptions()
    p.add_argument("--split", default="cut1", choices=TEXT_SPLIT_METHODS, help="how to split the text into pieces")
    p.add_argument("--top-k", type=int, default=d.top_k, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=d.top_p, help="nucleus sampling threshold (1 = off)")
    p.add_argument("--temperature", type=float, default=d.temperature, help="sampling temperature")
    p.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty, help="penalty on repeated tokens")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, reported in the log)")
    p.add_argument("--speed", type=float, default=d.speed, help="speaking speed (> 1 is faster)")
    p.add_argument("--pause", type=float, default=d.pause, help="seconds of silence between sentences")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="sentences generated at once")
    p.add_argument("--no-split-bucket", dest="split_bucket", action="store_false",
                   help="with --batch-size > 1, batch consecutive sentences instead of sentences of similar length")
    p.add_argument("--check-tokens", action="store_true",
                   help="regenerate sentences whose length is implausible for their text (swallowed/repeated words)")
    p.add_argument("--max-retries", type=int, default=d.max_retries, help="regenerations per flagged sentence")
    p.add_argument("--sample-steps", type=int, default=None,
                   help="v4 only: flow-matching steps (default 8; more is slower, 4 is faster)")
    p.add_argument("--max-tokens", type=int, default=1500,
                   help="cap on semantic tokens per sentence (25 per second of speech)")
    add_device_flags(p, decode_threads=SINGLE_REQUEST_DECODE_THREADS)  # one synthesis at a time
    p.add_argument("--log-file", type=Path, default=None, help="also write the log to this file")
    return p


def _output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"--out {path}: unknown audio suffix; use one of {', '.join(OUTPUT_FORMATS)}")
    return fmt


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; save it as UTF-8") from None


def _save(result: SynthesisResult, path: Path, fmt: str) -> None:
    atomic_write_bytes(path, encode_audio(result.audio, result.sample_rate, fmt))
    flagged = [s for s in result.sentences if s.problem]
    log.info("wrote %s (%.2f s, %d sentence(s), seed %d%s)", path, len(result.audio) / result.sample_rate,
             len(result.sentences), result.seed,
             f", regenerated: {', '.join(str(s.index) for s in result.regenerated)}" if result.regenerated else "")
    for s in flagged:
        log.warning("sentence %d %r still looks wrong after %d attempts: %s", s.index, s.text, s.attempts, s.problem)


def run(tts: TTS, args: argparse.Namespace) -> int:
    """Synthesize what the arguments ask for with an already loaded engine."""
    ref_text = _read_text(args.ref_text_file).strip() if args.ref_text_file else args.ref_text
    ref = Reference(args.ref, ref_text, args.ref_lang, tuple(args.extra_ref))
    opts = SynthesisOptions(top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
                            repetition_penalty=args.repetition_penalty, seed=args.seed, speed=args.speed,
                            pause=args.pause, text_split=args.split, batch_size=args.batch_size,
                            split_bucket=args.split_bucket, check_tokens=args.check_tokens,
                            max_retries=args.max_retries, sample_steps=args.sample_steps)
    if args.text_file is not None and args.text_file.suffix.lower() == ".srt":
        cues = parse_srt(_read_text(args.text_file))
        if not cues:
            raise InputError(f"{args.text_file}: no subtitle cues found")
        args.out.mkdir(parents=True, exist_ok=True)
        report = progress_logger("cues", log)
        for i, cue in enumerate(cues, 1):
            result = tts.synthesize_detailed(cue.text, args.text_lang, ref, opts.replace(pause=0.0))
            _save(result, args.out / f"{cue.number:04d}.wav", "wav")
            seconds = len(result.audio) / result.sample_rate
            if seconds > cue.end - cue.start:
                log.warning("cue %d: %.2f s of speech for a %.2f s slot", cue.number, seconds, cue.end - cue.start)
            report(i, len(cues))
        return 0
    fmt = _output_format(args.out)
    text = args.text if args.text is not None else _read_text(args.text_file)
    result = tts.synthesize_detailed(text, args.text_lang, ref, opts, progress=progress_logger("sentences", log))
    _save(result, args.out, fmt)
    return 0


USER_ERRORS = (InputError, InvalidOptionError, ReferenceAudioError, EmptyTextError, ModelMismatchError,
               FileNotFoundError, ValueError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    configure_allocator()  # as the API: large tensors go back to the OS (SoVITS decode peak, docs/models.md)
    try:
        if args.text_file is None or args.text_file.suffix.lower() != ".srt":
            _output_format(args.out)  # fail before loading models
        if args.max_tokens < 1:
            raise InputError(f"--max-tokens must be at least 1, got {args.max_tokens}")
        tts = TTS.from_paths(args.gpt, args.sovits, PretrainedPaths(args.pretrained_dir), args.device, args.half,
                             args.int8, args.decode_threads, args.cpu_bf16)
        tts.max_new_tokens = args.max_tokens
        return run(tts, args)
    except USER_ERRORS as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
