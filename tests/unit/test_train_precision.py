"""Mixed-precision choice per (device, compute capability, request)."""

from __future__ import annotations

import pytest
import torch

from GPT_SoVITS.train.precision import PrecisionError, choose_precision, precision_for_device


@pytest.mark.parametrize(("device", "capability", "requested", "bf16", "expected"), [
    ("cpu", None, "auto", False, "fp32"),
    ("mps", None, "auto", False, "fp32"),
    ("cuda", (5, 2), "auto", False, "fp32"),  # GTX 9xx (Maxwell 2): cuFFT has no half kernels
    ("cuda", (3, 7), "auto", False, "fp32"),  # Kepler
    ("cuda", (5, 3), "auto", False, "fp16"),  # Jetson TX1: the first with half kernels
    ("cuda", (6, 1), "auto", False, "fp16"),  # GTX 10xx
    ("cuda", (8, 6), "auto", True, "fp16"),  # RTX 30xx: auto stays with upstream's fp16 mixed precision
    ("cuda", (9, 0), "fp32", True, "fp32"),  # manual override
    ("cuda", (8, 0), "bf16", True, "bf16"),
    ("cuda", (7, 5), "fp16", False, "fp16"),
    ("cpu", None, "fp32", False, "fp32"),
    ("cpu", None, "bf16", False, "bf16"),
])
def test_choice_table(device, capability, requested, bf16, expected) -> None:
    choice = choose_precision(device, capability, requested, bf16)
    assert choice.name == expected
    assert choice.reason
    assert choice.uses_scaler == (expected == "fp16")


@pytest.mark.parametrize(("device", "capability", "requested", "bf16", "message"), [
    ("cpu", None, "fp16", False, "Half"),
    ("mps", None, "bf16", False, "MPS"),
    ("cuda", (5, 2), "fp16", False, "5.3"),
    ("cuda", (7, 5), "bf16", False, "bfloat16"),
    ("cuda", (8, 0), "half", True, "unknown precision"),
])
def test_impossible_requests_raise(device, capability, requested, bf16, message) -> None:
    with pytest.raises(PrecisionError, match=message):
        choose_precision(device, capability, requested, bf16)


def test_reasons_say_why() -> None:
    assert "below 5.3" in choose_precision("cuda", (5, 2)).reason
    assert "CPU" in choose_precision("cpu").reason


def test_cpu_device_and_autocast_context() -> None:
    choice = precision_for_device(torch.device("cpu"), "bf16")
    with choice.autocast("cpu"):
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    with precision_for_device(torch.device("cpu")).autocast("cpu"):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32
