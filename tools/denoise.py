"""Denoise a folder of clips (tab 0bb): ``python -m tools.denoise -i <clips> -o <output folder>``.

The default method is spectral gating (the ``noisereduce`` package): it needs no model weights, keeps the input
sample rate, channel count and length, and keeps each file's name (clip names identify items in the ``.list``
file, so a denoised folder can replace the original one as the audio folder of step 1A).

``--method frcrn`` runs upstream's FRCRN model (``speech_frcrn_ans_cirm_16k``) through ModelScope when the
user has installed ``modelscope`` and has the model in ``tools/denoise-model/speech_frcrn_ans_cirm_16k``.
FRCRN works at 16 kHz; its output is resampled back to the input rate (upstream silently wrote 16 kHz).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from GPT_SoVITS.audio import AudioReadError, list_audio_files, load_audio, resample, write_wav
from GPT_SoVITS.fileio import atomic_path, ensure_output_dir
from GPT_SoVITS.logs import ProgressCallback, progress_logger, setup_logging
from GPT_SoVITS.paths import REPO_ROOT
from tools._cli import finish_batch, record_failure

log = logging.getLogger(__name__)

FRCRN_MODEL = "speech_frcrn_ans_cirm_16k"
FRCRN_DIR = REPO_ROOT / "tools" / "denoise-model" / FRCRN_MODEL
METHODS = ("spectral", "frcrn")

#: ``denoise(audio [T, C] float32, sample_rate) -> audio [T, C]``
Denoiser = Callable[[np.ndarray, int], np.ndarray]


class DenoiserUnavailableError(RuntimeError):
    """The chosen method cannot run here; the message says what to install or where to put the model."""


@dataclass(frozen=True)
class SpectralGateOptions:
    """Spectral gating settings (noisereduce)."""

    stationary: bool = True  # one noise profile per file, from its quietest frames: right for hiss and hum
    prop_decrease: float = 0.9  # how much of the estimated noise to remove (1.0 = all; lower sounds more natural)
    n_std_thresh: float = 1.5  # gate threshold in standard deviations above the noise mean

    def validate(self) -> None:
        if not 0.0 <= self.prop_decrease <= 1.0:
            raise ValueError(f"prop_decrease must be between 0 and 1 (got {self.prop_decrease}).")
        if self.n_std_thresh <= 0:
            raise ValueError(f"n_std_thresh must be positive (got {self.n_std_thresh}).")


def noise_sample(signal: np.ndarray, sr: int, frame_s: float = 0.05, quantile: float = 0.15,
                 min_seconds: float = 0.25) -> np.ndarray | None:
    """The quietest ``quantile`` of 50 ms frames, joined: a noise profile for stationary gating.

    Profiling the whole clip (noisereduce's default) counts steady voiced sounds as noise and gates them away;
    the pauses of a sliced clip are a better sample of the noise. ``None`` when too little audio is quiet.
    """
    hop = max(1, int(frame_s * sr))
    n = len(signal) // hop
    if n < 4:
        return None
    frames = signal[: n * hop].reshape(n, hop)
    energy = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    quiet = frames[energy <= np.quantile(energy, quantile)]
    if quiet.size < min_seconds * sr:
        return None
    return quiet.reshape(-1).astype(np.float32)


def spectral_gate(options: SpectralGateOptions = SpectralGateOptions()) -> Denoiser:
    """A denoiser that gates each channel with noisereduce's spectral gating."""
    options.validate()
    import noisereduce

    def one_channel(signal: np.ndarray, sr: int) -> np.ndarray:
        profile = noise_sample(signal, sr) if options.stationary else None
        return noisereduce.reduce_noise(y=signal, sr=sr, y_noise=profile, stationary=options.stationary,
                                        prop_decrease=options.prop_decrease,
                                        n_std_thresh_stationary=options.n_std_thresh)

    def run(audio: np.ndarray, sr: int) -> np.ndarray:
        channels = [one_channel(np.ascontiguousarray(audio[:, c]), sr) for c in range(audio.shape[1])]
        return np.stack(channels, axis=1).astype(np.float32)

    return run


def frcrn(model_dir: Path = FRCRN_DIR) -> Denoiser:
    """Upstream's FRCRN through ModelScope (optional: ``pip install modelscope`` and a local model folder)."""
    if not Path(model_dir).is_dir():
        raise DenoiserUnavailableError(
            f"FRCRN model not found in {model_dir}. Download damo/{FRCRN_MODEL} from https://www.modelscope.cn "
            "into that folder, or use the default spectral method, which needs no model.")
    try:
        from modelscope.pipelines import pipeline
        from modelscope.utils.constant import Tasks
    except ImportError as exc:
        raise DenoiserUnavailableError(f"FRCRN needs the modelscope package (pip install modelscope): {exc}. "
                                       "The default spectral method needs nothing extra.") from None
    ans = pipeline(Tasks.acoustic_noise_suppression, model=str(model_dir))

    def run(audio: np.ndarray, sr: int) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in.wav"
            write_wav(src, resample(np.ascontiguousarray(audio.mean(axis=1)), sr, 16000), 16000)
            pcm = np.frombuffer(ans(str(src))["output_pcm"], dtype=np.int16).astype(np.float32) / 32768.0
        out = resample(pcm, 16000, sr)[: len(audio)]
        out = np.pad(out, (0, len(audio) - len(out)))
        return np.repeat(out[:, None], audio.shape[1], axis=1)

    return run


def make_denoiser(method: str, options: SpectralGateOptions = SpectralGateOptions(),
                  model_dir: Path | None = None) -> Denoiser:
    if method == "spectral":
        return spectral_gate(options)
    if method == "frcrn":
        return frcrn(model_dir or FRCRN_DIR)
    raise ValueError(f"Unknown denoise method {method!r}; choose one of {', '.join(METHODS)}.")


def _write_like(path: Path, audio: np.ndarray, sr: int, like: Path) -> None:
    """Write in the input's container and subtype when soundfile can, else as 16-bit WAV."""
    if path.suffix.lower() == ".wav":
        write_wav(path, audio, sr)
        return
    info = sf.info(str(like))
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sr, format=info.format, subtype=info.subtype)


@dataclass
class DenoiseReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.written)} file(s) denoised"
        return text + (f"; {len(self.failed)} file(s) failed" if self.failed else "")


def denoise_file(src: Path, dst: Path, denoiser: Denoiser) -> None:
    """Denoise one file into ``dst`` (same sample rate, channels and length)."""
    audio, sr = load_audio(src, mono=False)
    cleaned = denoiser(audio, sr)
    _write_like(dst, cleaned[: len(audio)], sr, src)


def denoise_folder(input_dir: Path, output_dir: Path, denoiser: Denoiser,
                   progress: ProgressCallback | None = None) -> DenoiseReport:
    """Denoise every audio file of ``input_dir`` into ``output_dir`` under the same name."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"Input folder not found: {input_dir} (give the folder of clips to denoise).")
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError("The output folder must differ from the input folder (the originals are kept).")
    files = list_audio_files(input_dir)
    if not files:
        raise FileNotFoundError(f"No audio files in {input_dir}.")
    ensure_output_dir(output_dir)
    report = DenoiseReport()
    for done, src in enumerate(files, start=1):
        dst = output_dir / src.name
        try:
            denoise_file(src, dst, denoiser)
        except (AudioReadError, OSError, ValueError, RuntimeError) as exc:
            record_failure(log, report.failed, src, exc)
        else:
            report.written.append(dst)
        if progress:
            progress(done, len(files))
    return report


def build_parser() -> argparse.ArgumentParser:
    defaults = SpectralGateOptions()
    parser = argparse.ArgumentParser(prog="python -m tools.denoise", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-i", "--input-folder", "--input_folder", dest="input_folder", type=Path, required=True,
                        help="folder of clips to denoise")
    parser.add_argument("-o", "--output-folder", "--output_folder", dest="output_folder", type=Path,
                        default=Path("output") / "denoise_opt", help="where the denoised clips are written")
    parser.add_argument("--method", choices=METHODS, default="spectral",
                        help="spectral: built-in spectral gating (no model); frcrn: upstream's model via ModelScope")
    parser.add_argument("--prop-decrease", type=float, default=defaults.prop_decrease,
                        help="spectral: share of the estimated noise removed (0-1)")
    parser.add_argument("--n-std-thresh", type=float, default=defaults.n_std_thresh,
                        help="spectral: gate threshold in standard deviations of the noise")
    parser.add_argument("--stationary", action=argparse.BooleanOptionalAction, default=defaults.stationary,
                        help="spectral: one noise profile per file (--no-stationary adapts over time)")
    parser.add_argument("--model-dir", type=Path, default=None, help=f"frcrn: model folder (default {FRCRN_DIR})")
    parser.add_argument("-p", "--precision", choices=("float16", "float32"), default="float32",
                        help="accepted for upstream compatibility; not used")
    parser.add_argument("--log-file", type=Path, default=None, help="also write the log to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    options = SpectralGateOptions(args.stationary, args.prop_decrease, args.n_std_thresh)
    try:
        denoiser = make_denoiser(args.method, options, args.model_dir)
        report = denoise_folder(args.input_folder, args.output_folder, denoiser, progress_logger("denoising"))
    except (DenoiserUnavailableError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    return finish_batch(log, report.failed, "%d file(s) failed:", f"{report.summary()} -> {args.output_folder}",
                        bool(report.written), "No file could be denoised; see the reasons above.")


if __name__ == "__main__":
    raise SystemExit(main())
