"""Vocal separation (tab 0a): split songs into vocals and accompaniment, or remove reverb/echo, with UVR models.

``python -m tools.vocal_separation -i <song or folder> --model UVR-MDX-NET-Voc_FT.onnx [--format flac]``

The models are upstream's UVR5 family (MDX-Net ``.onnx``, VR-arch ``.pth``, Roformer ``.ckpt`` + ``.yaml``),
read from ``tools/uvr5/uvr5_weights/`` or a folder the user gives. MDX-Net ``.onnx`` models run built in
(``tools/mdx.py``: onnxruntime + torch STFT). VR and Roformer models run through the ``audio-separator``
package, imported only when such a separation starts. It is not in our requirements: its dependency onnx2torch
pulls in torchvision, which requires a different torch build than the one we pin; see docs/dataset_tools.md.

Outputs keep upstream's names: ``vocal_<input name>_<aggressiveness>.<fmt>`` in the vocals folder and
``instrument_<input name>_<aggressiveness>.<fmt>`` in the accompaniment folder. A file that fails is reported
and the others go on.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from GPT_SoVITS.audio import AUDIO_EXTENSIONS
from GPT_SoVITS.fileio import ensure_output_dir
from GPT_SoVITS.logs import ProgressCallback, progress_logger, setup_logging
from GPT_SoVITS.paths import REPO_ROOT
from tools._cli import finish_batch
from tools.mdx import STEM_PAIRS

log = logging.getLogger(__name__)

MODELS_DIR = REPO_ROOT / "tools" / "uvr5" / "uvr5_weights"
DEFAULT_OUTPUT_DIR = Path("output") / "uvr5_opt"
FORMATS = ("wav", "flac", "mp3")
MODEL_SUFFIXES = (".pth", ".ckpt", ".onnx")
#: Stems that are the "kept" voice: vocals for a separation model, the dry signal for de-reverb / de-echo models.
PRIMARY_STEMS = ("(Vocals)", "(No Reverb)", "(No Echo)", "(Dry)", "(No Noise)")
#: audio-separator replaces its whole VR settings dict when one is given, so pass every key.
VR_DEFAULTS = {"batch_size": 1, "window_size": 512, "aggression": 10, "enable_tta": False,
               "enable_post_process": False, "post_process_threshold": 0.2, "high_end_process": False}
EXAMPLE_MODELS = ("UVR-MDX-NET-Voc_FT.onnx", "Kim_Vocal_2.onnx", "UVR-MDX-NET-Inst_HQ_3.onnx",
                  "HP5_only_main_vocal.pth", "VR-DeEchoAggressive.pth",
                  "model_bs_roformer_ep_317_sdr_12.9755.ckpt (+ its .yaml)")


class SeparationUnavailableError(RuntimeError):
    """Separation cannot start: no model, or the separation package is missing. The message says what to do."""


def list_models(folder: Path = MODELS_DIR) -> list[str]:
    """Model files in ``folder`` (upstream's rule: ``.pth``/``.ckpt``/``.onnx``, or a name containing onnx)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES) or (p.is_dir() and "onnx" in p.name))


def missing_model_message(folder: Path) -> str:
    return (f"No vocal separation model in {folder}. Put a UVR5 model file there, for example "
            f"{', '.join(EXAMPLE_MODELS)} (upstream's uvr5_weights download has them), or give its folder "
            "with --model-dir. MDX-Net .onnx models run built in; .pth and .ckpt models need the audio-separator "
            "package.")


def is_mdx_model(name: str) -> bool:
    """MDX-Net models run by the built-in backend: ``.onnx`` files and upstream's ``onnx_*`` model folders."""
    return name.lower().endswith(".onnx") or (not Path(name).suffix and "onnx" in name.lower())


def check_model(folder: Path, name: str) -> Path:
    """The model file ``name`` in ``folder``; raises :class:`SeparationUnavailableError` saying what is missing."""
    available = list_models(folder)
    if not available:
        raise SeparationUnavailableError(missing_model_message(Path(folder)))
    if name not in available:
        raise SeparationUnavailableError(f"Model {name!r} is not in {folder}; available: {', '.join(available)}.")
    path = Path(folder) / name
    if path.suffix.lower() == ".ckpt" and not path.with_suffix(".yaml").is_file():
        raise SeparationUnavailableError(f"Roformer model {name} needs its config {path.with_suffix('.yaml').name} "
                                         f"next to it in {folder}.")
    return path


@dataclass(frozen=True)
class SeparationOptions:
    model: str  # file name inside model_dir
    model_dir: Path = MODELS_DIR
    vocals_dir: Path = DEFAULT_OUTPUT_DIR
    others_dir: Path = DEFAULT_OUTPUT_DIR
    output_format: str = "flac"  # wav, flac or mp3
    aggressiveness: int = 10  # VR models: 0-20, how hard the vocals are pulled out
    mdx_n_fft: int | None = None  # MDX-Net: STFT size; None = from the model table (tools/mdx.py)
    mdx_compensate: float | None = None  # MDX-Net: output gain; None = from the model table
    mdx_primary_stem: str | None = None  # MDX-Net: stem the model outputs (Vocals, Instrumental, ...)

    def validate(self) -> None:
        if self.output_format not in FORMATS:
            raise ValueError(f"Output format {self.output_format!r} is not one of {', '.join(FORMATS)}.")
        if not 0 <= self.aggressiveness <= 20:
            raise ValueError(f"aggressiveness must be between 0 and 20 (got {self.aggressiveness}).")
        if self.mdx_n_fft is not None and (self.mdx_n_fft <= 0 or self.mdx_n_fft % 2):
            raise ValueError(f"--mdx-n-fft must be a positive even number (got {self.mdx_n_fft}).")
        if self.mdx_compensate is not None and not 0 < self.mdx_compensate < 10:
            raise ValueError(f"--mdx-compensate must be a gain between 0 and 10 (got {self.mdx_compensate}).")


class Separator(Protocol):
    """Separates one file into stem files inside ``out_dir``; returns ``{stem label: path}``."""

    def separate(self, path: Path, out_dir: Path) -> dict[str, Path]: ...


class MdxBackend:
    """MDX-Net ``.onnx`` models with the built-in backend (``tools/mdx.py``); the model is loaded once."""

    def __init__(self, options: SeparationOptions):
        from tools.mdx import MdxModelError, MdxSeparator

        self.options = options
        try:
            self.model = MdxSeparator(Path(options.model_dir) / options.model, options.mdx_n_fft,
                                      options.mdx_compensate, options.mdx_primary_stem)
        except MdxModelError as exc:
            raise SeparationUnavailableError(f"Model {options.model}: {exc}") from None

    def separate(self, path: Path, out_dir: Path) -> dict[str, Path]:
        return self.model.separate(path, out_dir, self.options.output_format)


class AudioSeparatorBackend:
    """VR ``.pth`` and Roformer ``.ckpt`` models through the ``audio-separator`` package (lazy import)."""

    def __init__(self, options: SeparationOptions):
        try:
            from audio_separator.separator import Separator as UVRSeparator
        except ImportError as exc:
            raise SeparationUnavailableError(
                f"VR (.pth) and Roformer (.ckpt) models need the audio-separator package ({exc}). It is not "
                "bundled because its dependency onnx2torch pulls in torchvision, which needs a torch build "
                "matching yours: install `audio-separator` together with the torchvision build for your torch "
                "(see docs/dataset_tools.md), or use an MDX-Net .onnx model such as UVR-MDX-NET-Voc_FT.onnx, "
                "which runs built in.") from None
        self.options = options
        self._separator_cls = UVRSeparator
        self._loaded: tuple[Path, object] | None = None

    def _separator(self, out_dir: Path):
        # Loading a model takes seconds: keep one loaded separator per output folder (one per run).
        if self._loaded is None or self._loaded[0] != out_dir:
            opts = self.options
            separator = self._separator_cls(model_file_dir=str(opts.model_dir), output_dir=str(out_dir),
                                            output_format=opts.output_format.upper(),
                                            vr_params={**VR_DEFAULTS, "aggression": opts.aggressiveness})
            separator.load_model(model_filename=opts.model)
            self._loaded = (out_dir, separator)
        return self._loaded[1]

    def separate(self, path: Path, out_dir: Path) -> dict[str, Path]:
        separator = self._separator(out_dir)
        stems: dict[str, Path] = {}
        for name in separator.separate(str(path)):
            produced = Path(name) if Path(name).is_absolute() else Path(out_dir) / name
            labels = re.findall(r"\([^()]+\)", produced.stem)  # "<input>_(Vocals)_<model>"
            stems[labels[-1] if labels else produced.stem] = produced
        return stems


@dataclass
class SeparationReport:
    vocals: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.vocals)} file(s) separated"
        return text + (f"; {len(self.failed)} file(s) failed" if self.failed else "")


def collect_inputs(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted((p for p in source.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                       and not p.name.startswith(".")), key=lambda p: p.name)
    raise FileNotFoundError(f"Input not found: {source} (give an audio file or a folder of songs).")


def output_names(source: Path, options: SeparationOptions) -> tuple[Path, Path]:
    """Upstream's names for the vocal and accompaniment files of ``source``."""
    suffix = f"{source.name}_{options.aggressiveness}.{options.output_format}"
    return options.vocals_dir / f"vocal_{suffix}", options.others_dir / f"instrument_{suffix}"


def _file_stems(stems: dict[str, Path]) -> tuple[Path, Path]:
    primary = [path for label, path in stems.items() if label in PRIMARY_STEMS]
    rest = [path for label, path in stems.items() if label not in PRIMARY_STEMS]
    if len(primary) != 1 or len(rest) != 1:
        raise RuntimeError(f"expected one voice stem and one other stem, got {sorted(stems)}")
    return primary[0], rest[0]


def separate_files(files: list[Path], options: SeparationOptions, separator: Separator,
                   progress: ProgressCallback | None = None) -> SeparationReport:
    """Separate each file; results are moved to upstream's names in the vocals and accompaniment folders."""
    options.validate()
    ensure_output_dir(options.vocals_dir, "vocals folder")
    ensure_output_dir(options.others_dir, "accompaniment folder")
    report = SeparationReport()
    with tempfile.TemporaryDirectory(dir=options.vocals_dir, prefix=".separating-") as tmp:
        for done, src in enumerate(files, start=1):
            vocal_out, other_out = output_names(src, options)
            try:
                voice, other = _file_stems(separator.separate(src, Path(tmp)))
                shutil.move(str(voice), vocal_out)
                shutil.move(str(other), other_out)
            except (OSError, RuntimeError, ValueError) as exc:
                report.failed.append((src, f"{src}: {type(exc).__name__}: {exc}"))
                log.warning("FAILED %s", report.failed[-1][1])
            else:
                report.vocals.append(vocal_out)
                report.others.append(other_out)
                log.info("%s -> %s, %s", src.name, vocal_out.name, other_out.name)
            if progress:
                progress(done, len(files))
    return report


def make_separator(options: SeparationOptions) -> Separator:
    """The backend for the model: built-in MDX-Net for ``.onnx``, audio-separator for VR / Roformer."""
    return MdxBackend(options) if is_mdx_model(options.model) else AudioSeparatorBackend(options)


def separate(source: Path, options: SeparationOptions, separator: Separator | None = None,
             progress: ProgressCallback | None = None) -> SeparationReport:
    """Separate a file or every audio file of a folder (the model is checked before anything starts)."""
    options.validate()
    check_model(options.model_dir, options.model)
    files = collect_inputs(source)
    if not files:
        raise FileNotFoundError(f"No audio files in {source}.")
    return separate_files(files, options, separator or make_separator(options), progress)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.vocal_separation", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-i", "--input", type=Path, help="a song or a folder of songs")
    parser.add_argument("--model", default=None, help="model file name inside --model-dir (see --list-models)")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR, help="folder holding the UVR5 models")
    parser.add_argument("--vocals-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where vocal files go")
    parser.add_argument("--others-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help="where accompaniment / reverb / echo files go")
    parser.add_argument("--format", dest="output_format", choices=FORMATS, default="flac", help="output format")
    parser.add_argument("--aggressiveness", type=int, default=10, help="VR models: vocal extraction strength 0-20")
    parser.add_argument("--mdx-n-fft", type=int, default=None,
                        help="MDX-Net models: STFT size; None = from the model table in tools/mdx.py")
    parser.add_argument("--mdx-compensate", type=float, default=None,
                        help="MDX-Net models: gain applied to the model output; None = from the model table")
    parser.add_argument("--mdx-primary-stem", choices=tuple(STEM_PAIRS), default=None,
                        help="MDX-Net models: the stem the model outputs; None = from the model table")
    parser.add_argument("--list-models", action="store_true", help="list the models found and exit")
    parser.add_argument("--log-file", type=Path, default=None, help="also write the log to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    if args.list_models:
        models = list_models(args.model_dir)
        log.info("models in %s: %s", args.model_dir, ", ".join(models) if models else "none")
        return 0 if models else 1
    if args.input is None or not args.model:
        parser.error("--input and --model are required (use --list-models to see the models)")
    options = SeparationOptions(args.model, args.model_dir, args.vocals_dir, args.others_dir, args.output_format,
                                args.aggressiveness, args.mdx_n_fft, args.mdx_compensate, args.mdx_primary_stem)
    try:
        report = separate(args.input, options, progress=progress_logger("separating"))
    except (SeparationUnavailableError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    return finish_batch(log, report.failed, "%d file(s) failed:", report.summary(), bool(report.vocals))


if __name__ == "__main__":
    raise SystemExit(main())
