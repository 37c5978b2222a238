"""Mixed-precision choice: only where the device supports it, with a reason that is logged.

Upstream turned fp16 on for every GPU and crashed on old cards (``cuFFT doesn't support signals of half type``
below compute capability 5.3) and on CPU (``"slow_conv2d_cpu" not implemented for 'Half'``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

#: cuFFT (used by the spectrogram inside the SoVITS loss) has half-precision kernels from sm_53 on.
MIN_FP16_CAPABILITY = (5, 3)


class PrecisionError(ValueError):
    """The requested precision cannot run on this device."""


@dataclass(frozen=True)
class PrecisionChoice:
    """What autocast runs in; ``dtype`` is None for plain fp32."""

    name: str  # "fp32", "fp16" or "bf16"
    reason: str

    @property
    def dtype(self) -> torch.dtype | None:
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.name)

    @property
    def uses_scaler(self) -> bool:
        """fp16 needs loss scaling against gradient underflow; bf16 has fp32's exponent range."""
        return self.name == "fp16"

    def autocast(self, device_type: str) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, dtype=self.dtype)


def choose_precision(device_type: str, capability: tuple[int, int] | None = None, requested: str = "auto",
                     bf16_supported: bool = False) -> PrecisionChoice:
    """Pick the training precision.

    Parameters
    ----------
    device_type: "cpu", "cuda" or "mps".
    capability: CUDA compute capability ``(major, minor)`` (ignored elsewhere).
    requested: "auto", "fp32", "fp16" or "bf16" (the manual override).
    bf16_supported: whether the CUDA device has bfloat16 kernels.
    """
    if requested == "fp32":
        return PrecisionChoice("fp32", "fp32 requested")
    if device_type == "cuda":
        cap = capability or (0, 0)
        cap_text = f"compute capability {cap[0]}.{cap[1]}"
        old = cap < MIN_FP16_CAPABILITY
        if requested == "auto":
            if old:
                return PrecisionChoice("fp32", f"mixed precision off: GPU {cap_text} is below 5.3 (cuFFT has no "
                                               "half-precision kernels there)")
            return PrecisionChoice("fp16", f"fp16 mixed precision: GPU {cap_text} supports it")
        if requested == "fp16":
            if old:
                raise PrecisionError(f"fp16 was requested but the GPU has {cap_text}; half precision needs 5.3 or "
                                     "newer (cuFFT). Use precision: fp32 (or auto).")
            return PrecisionChoice("fp16", "fp16 requested")
        if requested == "bf16":
            if not bf16_supported:
                raise PrecisionError(f"bf16 was requested but this GPU ({cap_text}) has no bfloat16 support; "
                                     "use precision: fp16, fp32 or auto.")
            return PrecisionChoice("bf16", "bf16 requested")
    elif requested == "auto":
        return PrecisionChoice("fp32", f"mixed precision off: running on {device_type.upper()}")
    elif requested == "bf16" and device_type == "cpu":
        return PrecisionChoice("bf16", "bf16 requested (CPU autocast)")
    elif requested in ("fp16", "bf16"):
        raise PrecisionError(f"{requested} was requested but training runs on {device_type.upper()}, where it is "
                             "not supported (upstream fails with 'slow_conv2d_cpu not implemented for Half'). "
                             "Use precision: fp32 or auto.")
    raise PrecisionError(f"unknown precision {requested!r}: use auto, fp32, fp16 or bf16")


def precision_for_device(device: torch.device, requested: str = "auto") -> PrecisionChoice:
    """:func:`choose_precision` for an actual device (probes CUDA only when the device is CUDA)."""
    if device.type == "cuda":
        cap = torch.cuda.get_device_capability(device)
        return choose_precision("cuda", cap, requested, torch.cuda.is_bf16_supported())
    return choose_precision(device.type, None, requested)


def allow_tf32(device: torch.device) -> None:
    """On CUDA, let fp32 matmuls/convolutions use TF32 (Ampere and newer), as upstream's trainers do."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
