"""``python -m tools.asr -i <clips folder> -o <output folder>``: transcribe every clip into a ``.list`` file.

Upstream's flag spellings (``--input_folder``, ``--model_size`` ...) are accepted too.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from GPT_SoVITS.logs import progress_logger, setup_logging
from tools._cli import finish_batch
from tools.asr import BACKENDS, DEFAULT_OUTPUT_DIR, ASRError, clips_in, load_backend, transcribe_folder

log = logging.getLogger("tools.asr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.asr", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-i", "--input-folder", "--input_folder", dest="input_folder", type=Path, required=True,
                        help="folder of audio clips (e.g. the slicer's output)")
    parser.add_argument("-o", "--output-folder", "--output_folder", dest="output_folder", type=Path,
                        default=DEFAULT_OUTPUT_DIR, help="where <input folder name>.list is written")
    parser.add_argument("--backend", choices=list(BACKENDS), default="faster-whisper",
                        help="ASR engine: funasr = Damo ASR (zh: Paraformer + VAD + punctuation; yue: UniASR), "
                             "sensevoice = SenseVoice-Small (auto, zh, en, ja, ko, yue), faster-whisper")
    parser.add_argument("-s", "--model-size", "--model_size", dest="model_size", default=None,
                        help="model size (faster-whisper: medium, medium.en, large-v2, large-v3, large-v3-turbo); "
                             "None means the backend's largest")
    parser.add_argument("-l", "--language", default=None,
                        help="language spoken in the clips, or auto; None means the backend's first language")
    parser.add_argument("-p", "--precision", default=None, choices=("float32", "float16", "int8"),
                        help="compute precision; None means float16 on a GPU, int8 on CPU (faster-whisper)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... or auto")
    parser.add_argument("--model-path", type=Path, default=None,
                        help="folder holding the model folders under upstream's names (default tools/asr/models), "
                             "or one model's folder")
    parser.add_argument("-b", "--batch-size", type=int, default=None,
                        help="clips per model call for backends that batch (FunASR: 8); None means the default")
    parser.add_argument("--no-download", action="store_true",
                        help="never download a model, even when the machine is online (FunASR never downloads)")
    parser.add_argument("--log-file", type=Path, default=None, help="also write the log to this file")
    return parser


def pick_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is usable, else ``cpu`` (asks CTranslate2 first: it loads in milliseconds)."""
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except ImportError:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    info = BACKENDS[args.backend]
    language = args.language or info.default_language
    try:
        if args.batch_size is not None and args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1 (got {args.batch_size}).")
        clips_in(args.input_folder)  # a wrong folder fails before a model takes seconds to load
        backend = load_backend(args.backend, args.model_size, args.precision, pick_device(args.device),
                               args.model_path, allow_download=not args.no_download, language=language,
                               batch_size=args.batch_size)
        report = transcribe_folder(args.input_folder, args.output_folder, backend, language,
                                   progress=progress_logger("transcribing"))
    except (ASRError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    return finish_batch(log, report.failed, "%d clip(s) failed and are not in the .list:", report.summary(),
                        report.written != 0,
                        "No clip could be transcribed; see the reasons above. No .list file was written.")


if __name__ == "__main__":
    raise SystemExit(main())
