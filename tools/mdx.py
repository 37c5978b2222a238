"""Built-in MDX-Net backend: UVR's MDX-Net ``.onnx`` vocal / instrumental models run with onnxruntime.

An MDX-Net model maps a spectrogram to a spectrogram: its input is ``[batch, 4, dim_f, dim_t]`` float32, the
real and imaginary parts of the left and right channels' STFT (hop 1024, Hann window, the model's ``n_fft``),
cut to the lowest ``dim_f`` frequency bins. Its output, the same shape, is the spectrogram of one stem (the
model's *primary* stem: vocals for a vocal model, the accompaniment for an instrumental one). The other stem is
the mix minus the primary stem.

The ONNX file fixes ``dim_f`` and ``dim_t`` (read from its input shape), but not ``n_fft``, the output gain
correction (``compensate``) or which stem it predicts: those come from :data:`KNOWN_MODELS` by file name, from
defaults for unknown names, or from the caller (``--mdx-n-fft``, ``--mdx-compensate``, ``--mdx-primary-stem``).

Audio is processed at 44.1 kHz stereo (mono is duplicated, other rates are resampled with soxr) in chunks of
``(dim_t - 1) * hop`` samples, the length whose centred STFT has exactly ``dim_t`` frames. The first and last
``n_fft // 2`` samples of each chunk depend on the STFT's padding, so they are dropped; the kept parts of
neighbouring chunks overlap and are cross-faded with weights that are normalised by their sum.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from GPT_SoVITS.audio import load_audio
from GPT_SoVITS.fileio import atomic_path

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100  # every UVR MDX-Net model was trained on 44.1 kHz stereo
HOP = 1024
DEFAULT_DIM_T = 256  # for a model whose time axis is not fixed in the ONNX file (UVR's dim_t setting 8 = 2**8)
OVERLAP = 0.25  # share of a chunk's kept part that the next chunk also covers (cross-faded)
LOW_BINS_ZEROED = 3  # UVR clears the lowest bins (DC to ~20 Hz) of the model input; kept for identical output
#: The other stem's name for each primary stem the models predict.
STEM_PAIRS = {"Vocals": "Instrumental", "Instrumental": "Vocals", "Reverb": "No Reverb", "No Reverb": "Reverb"}
#: Default n_fft for a model not in KNOWN_MODELS, by its dim_f.
DEFAULT_N_FFT = {2048: 6144, 2560: 5120, 3072: 7680}
DEFAULT_COMPENSATE = 1.035  # the value most UVR MDX-Net models use


class MdxModelError(ValueError):
    """The ONNX file is not a usable MDX-Net model, or its parameters do not fit it. The message says why."""


@dataclass(frozen=True)
class MdxParams:
    n_fft: int  # STFT size the model was trained with; n_fft // 2 + 1 must be >= the model's dim_f
    compensate: float  # gain applied to the model's output (UVR's per-model "compensate")
    primary_stem: str  # the stem the network outputs: a key of STEM_PAIRS
    denoise: bool = False  # run the model on x and -x and keep the part that flips sign (cancels model noise)

    @property
    def other_stem(self) -> str:
        return STEM_PAIRS[self.primary_stem]

    def validate(self, dim_f: int | None = None) -> None:
        if self.n_fft <= 0 or self.n_fft % 2:
            raise MdxModelError(f"n_fft must be a positive even number (got {self.n_fft}).")
        if dim_f is not None and self.n_fft // 2 + 1 < dim_f:
            raise MdxModelError(f"n_fft {self.n_fft} gives {self.n_fft // 2 + 1} frequency bins, fewer than the "
                                f"model's dim_f {dim_f}; use --mdx-n-fft {2 * dim_f} or larger.")
        if not 0 < self.compensate < 10:
            raise MdxModelError(f"compensate must be a gain between 0 and 10 (got {self.compensate}).")
        if self.primary_stem not in STEM_PAIRS:
            raise MdxModelError(f"primary stem {self.primary_stem!r} is not one of {', '.join(STEM_PAIRS)}.")


#: Well-known UVR MDX-Net models (UVR's published per-model settings). Add a model by its file name here.
KNOWN_MODELS: dict[str, MdxParams] = {
    "UVR-MDX-NET-Voc_FT.onnx": MdxParams(7680, 1.021, "Vocals"),
    "Kim_Vocal_2.onnx": MdxParams(7680, 1.009, "Vocals"),
    "UVR-MDX-NET-Inst_HQ_3.onnx": MdxParams(6144, 1.022, "Instrumental"),
    "UVR-MDX-NET-Inst_HQ_4.onnx": MdxParams(5120, 1.019, "Instrumental"),
    "UVR-MDX-NET-Inst_HQ_5.onnx": MdxParams(5120, 1.010, "Instrumental"),
    "UVR-MDX-NET-Inst_Main.onnx": MdxParams(5120, 1.025, "Instrumental"),
    "UVR_MDXNET_KARA_2.onnx": MdxParams(5120, 1.035, "Instrumental"),
    "Reverb_HQ_By_FoxJoy.onnx": MdxParams(6144, 1.035, "Reverb"),
    # upstream's de-reverb model: a folder holding vocals.onnx, whose output is the dry voice
    "onnx_dereverb_By_FoxJoy": MdxParams(6144, 1.0, "No Reverb", denoise=True),
}


def model_params(name: str, dim_f: int, n_fft: int | None = None, compensate: float | None = None,
                 primary_stem: str | None = None) -> MdxParams:
    """Parameters for the model file ``name`` with frequency size ``dim_f``: table entry or defaults, then overrides.

    A name not in :data:`KNOWN_MODELS` gets ``n_fft`` from :data:`DEFAULT_N_FFT` (else ``2 * dim_f``), compensate
    :data:`DEFAULT_COMPENSATE`, and "Instrumental" as primary stem if the name says inst/karaoke, else "Vocals".
    """
    known = KNOWN_MODELS.get(name)
    if known is None:
        lower = name.lower()
        guess = "Instrumental" if ("inst" in lower or "kara" in lower) else "Vocals"
        known = MdxParams(DEFAULT_N_FFT.get(dim_f, 2 * dim_f), DEFAULT_COMPENSATE, guess)
    params = MdxParams(n_fft if n_fft is not None else known.n_fft,
                       compensate if compensate is not None else known.compensate,
                       primary_stem if primary_stem is not None else known.primary_stem, known.denoise)
    if name not in KNOWN_MODELS:
        log.info("%s is not in the MDX-Net model table (tools/mdx.py): running it with n_fft %d, compensate %.3f, "
                 "primary stem %s; if the result sounds wrong, set --mdx-n-fft / --mdx-compensate / "
                 "--mdx-primary-stem from the model's published settings", name, params.n_fft, params.compensate,
                 params.primary_stem)
    params.validate(dim_f)
    return params


def onnx_file(path: Path) -> Path:
    """The ONNX file of a model: ``path`` itself, or for a model folder its ``vocals.onnx`` / single ``.onnx``."""
    path = Path(path)
    if not path.is_dir():
        return path
    candidates = sorted(path.glob("*.onnx"))
    preferred = path / "vocals.onnx"
    if preferred.is_file():
        return preferred
    if len(candidates) == 1:
        return candidates[0]
    raise MdxModelError(f"Model folder {path} should hold vocals.onnx (found: "
                        f"{', '.join(p.name for p in candidates) or 'no .onnx file'}).")


def _read_input_shape(session) -> tuple[int, int]:
    """``(dim_f, dim_t)`` from the session's single input; :class:`MdxModelError` if it is not MDX-shaped."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise MdxModelError(f"the model has {len(inputs)} inputs; an MDX-Net model has one spectrogram input")
    shape = list(inputs[0].shape)
    dims_ok = len(shape) == 4 and shape[1] == 4 and isinstance(shape[2], int) and shape[2] > 0
    if not dims_ok or (isinstance(shape[3], int) and shape[3] < 2):
        raise MdxModelError(f"its input {inputs[0].name!r} has shape {shape}, but an MDX-Net model takes "
                            "[batch, 4, dim_f, dim_t] (real/imag of both stereo channels' spectrogram)")
    if isinstance(shape[0], int) and shape[0] != 1:
        raise MdxModelError(f"its input has a fixed batch size {shape[0]}; only batch 1 or a free batch is supported")
    out_shape = list(outputs[0].shape or [])  # empty when the file does not declare it
    fixed_differs = bool(out_shape) and (len(out_shape) != 4 or any(
        isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(shape, out_shape, strict=True)))
    if fixed_differs:
        raise MdxModelError(f"its output has shape {out_shape} for input shape {shape}; an MDX-Net model returns "
                            "a spectrogram of its input's shape")
    dim_t = shape[3] if isinstance(shape[3], int) else DEFAULT_DIM_T
    return shape[2], dim_t


class MdxSeparator:
    """One loaded MDX-Net model. :meth:`separate_array` works on arrays, :meth:`separate` on files."""

    def __init__(self, model_path: Path, n_fft: int | None = None, compensate: float | None = None,
                 primary_stem: str | None = None, providers: list[str] | None = None):
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        self.model_path = Path(model_path)
        path = onnx_file(self.model_path)
        try:
            self.session = ort.InferenceSession(str(path), providers=providers or _default_providers(ort))
        except (ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.NoSuchFile,
                ort_errors.InvalidArgument, ort_errors.RuntimeException) as exc:
            raise MdxModelError(f"{path} cannot be loaded as an ONNX model ({type(exc).__name__}: {exc}); "
                                "re-download the file.") from None
        try:
            self.dim_f, self.dim_t = _read_input_shape(self.session)
        except MdxModelError as exc:
            raise MdxModelError(f"{path.name} is not an MDX-Net model: {exc}. The built-in backend runs UVR's "
                                "MDX-Net .onnx models (e.g. UVR-MDX-NET-Voc_FT.onnx, Kim_Vocal_2.onnx); other "
                                "architectures need the audio-separator package.") from None
        self.input_name = self.session.get_inputs()[0].name
        # a few community exports are half precision; the model's input type decides what it is fed
        self.input_dtype = np.float16 if self.session.get_inputs()[0].type == "tensor(float16)" else np.float32
        self.params = model_params(self.model_path.name, self.dim_f, n_fft, compensate, primary_stem)
        self.chunk = (self.dim_t - 1) * HOP  # samples whose centred STFT has exactly dim_t frames
        self.trim = self.params.n_fft // 2  # samples at each chunk edge that depend on the STFT's padding
        if self.chunk <= 2 * self.trim + 2 * HOP:
            raise MdxModelError(f"dim_t {self.dim_t} is too short for n_fft {self.params.n_fft}: a chunk of "
                                f"{self.chunk} samples leaves nothing after dropping {self.trim} at each edge")
        import torch  # imported here so that listing models (the launcher) does not load torch

        self.window = torch.hann_window(self.params.n_fft)
        log.info("MDX-Net model %s: dim_f %d, dim_t %d, n_fft %d, compensate %.3f, primary stem %s", path.name,
                 self.dim_f, self.dim_t, self.params.n_fft, self.params.compensate, self.params.primary_stem)

    # --- spectrogram <-> model tensor ---------------------------------------------------------------------------
    def _to_model(self, chunk: np.ndarray) -> np.ndarray:
        """[2, chunk] audio → [1, 4, dim_f, dim_t] (left re, left im, right re, right im)."""
        import torch

        spec = torch.stft(torch.from_numpy(chunk), self.params.n_fft, HOP, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)[:, :self.dim_f]  # [2, dim_f, dim_t]
        x = torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(1, 4, self.dim_f, self.dim_t)
        x[:, :, :LOW_BINS_ZEROED] = 0
        return x.numpy()

    def _from_model(self, x: np.ndarray) -> np.ndarray:
        """[1, 4, dim_f, dim_t] → [2, chunk] audio, the bins above dim_f set to zero."""
        import torch

        n_bins = self.params.n_fft // 2 + 1
        pairs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(2, 2, self.dim_f, self.dim_t)
        spec = torch.zeros(2, n_bins, self.dim_t, dtype=torch.complex64)
        spec[:, :self.dim_f] = torch.complex(pairs[:, 0], pairs[:, 1])
        return torch.istft(spec, self.params.n_fft, HOP, window=self.window, center=True, length=self.chunk).numpy()

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        x = self._to_model(chunk).astype(self.input_dtype, copy=False)
        out = self.session.run(None, {self.input_name: x})[0].astype(np.float32)
        if out.shape != x.shape:
            raise MdxModelError(f"{self.model_path.name} returned shape {list(out.shape)} for input "
                                f"{list(x.shape)}; an MDX-Net model returns a spectrogram of its input's shape")
        if self.params.denoise:  # the model's own noise does not flip sign with the input; the signal does
            out = (out - self.session.run(None, {self.input_name: -x})[0].astype(np.float32)) * 0.5
        return self._from_model(out)

    # --- chunking -------------------------------------------------------------------------------------------
    def _layout(self, n: int) -> tuple[int, int, np.ndarray]:
        """``(step, chunks, weight)``: chunk starts are ``k * step`` in the signal padded by ``trim`` on the left.

        ``weight`` [chunk] is 0 on the trimmed edges and ramps up and down over the overlap; ramps are never 0
        inside the kept part, so normalising by the summed weights reconstructs every sample.
        """
        kept = self.chunk - 2 * self.trim
        fade = max(HOP, int(kept * OVERLAP))
        step = kept - fade
        chunks = 1 if n <= kept else 1 + math.ceil((n - kept) / step)
        ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade) ** 2
        weight = np.zeros(self.chunk, dtype=np.float32)
        weight[self.trim:self.chunk - self.trim] = 1.0
        weight[self.trim:self.trim + fade] = ramp
        weight[self.chunk - self.trim - fade:self.chunk - self.trim] = ramp[::-1]
        return step, chunks, weight

    def primary(self, mix: np.ndarray) -> np.ndarray:
        """The model's primary stem of ``mix``.

        Parameters
        ----------
        mix : np.ndarray, shape = (2, n), float32 at 44.1 kHz

        Returns
        -------
        np.ndarray, shape = (2, n): the stem, times the model's ``compensate``
        """
        n = mix.shape[1]
        step, chunks, weight = self._layout(n)
        padded = np.zeros((2, (chunks - 1) * step + self.chunk), dtype=np.float32)
        padded[:, self.trim:self.trim + n] = mix
        out = np.zeros_like(padded)
        total = np.zeros(padded.shape[1], dtype=np.float32)
        for k in range(chunks):
            start = k * step
            out[:, start:start + self.chunk] += self._run(padded[:, start:start + self.chunk]) * weight
            total[start:start + self.chunk] += weight
            log.debug("chunk %d/%d", k + 1, chunks)
        stem = out[:, self.trim:self.trim + n] / total[self.trim:self.trim + n]
        return (stem * self.params.compensate).astype(np.float32)

    def separate_array(self, mix: np.ndarray) -> dict[str, np.ndarray]:
        """``{primary stem: [2, n], other stem: mix - primary}`` for a [2, n] 44.1 kHz mix."""
        if mix.ndim != 2 or mix.shape[0] != 2:
            raise ValueError(f"expected a stereo mix of shape (2, n), got {mix.shape}")
        mix = np.ascontiguousarray(mix, dtype=np.float32)
        primary = self.primary(mix)
        return {self.params.primary_stem: primary, self.params.other_stem: mix - primary}

    def separate(self, path: Path, out_dir: Path, output_format: str = "flac") -> dict[str, Path]:
        """Separate the audio file ``path``; writes ``<name>_(<stem>)_<model>.<fmt>`` at 44.1 kHz stereo.

        Returns ``{"(<stem>)": path}`` for both stems, the labels the vocal separation tool sorts by.
        """
        mix = read_stereo(Path(path))
        stems = self.separate_array(mix)
        written: dict[str, Path] = {}
        for stem, audio in stems.items():
            label = f"({stem})"
            target = Path(out_dir) / f"{Path(path).stem}_{label}_{self.model_path.stem}.{output_format}"
            with atomic_path(target) as tmp:
                sf.write(str(tmp), audio.T, SAMPLE_RATE, format=output_format.upper())
            written[label] = target
        return written


def read_stereo(path: Path) -> np.ndarray:
    """Decode ``path`` to float32 ``[2, n]`` at 44.1 kHz: mono is duplicated, other rates are resampled."""
    audio, _sr = load_audio(path, sr=SAMPLE_RATE, mono=False)  # [n, channels]
    channels = audio.shape[1]
    if channels == 1:
        audio = np.repeat(audio, 2, axis=1)
    elif channels != 2:
        raise ValueError(f"{path} has {channels} channels; MDX-Net models take mono or stereo audio "
                         "(downmix it to stereo first).")
    return np.ascontiguousarray(audio.T)


def _default_providers(ort) -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
