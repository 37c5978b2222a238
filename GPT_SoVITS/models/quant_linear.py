"""Quantised weights for the GPT's one-token decode steps on the CPU (``Text2SemanticDecoder.enable_*_decoding``).

A decode step multiplies one activation row per sequence by every layer's weights, so its speed is bounded by
how many bytes of weights it reads: int8 weights read a quarter of float32's bytes, int4 an eighth. Three
formats, each a callable ``x [B, K] -> x W^T + b [B, N]`` in ``x``'s dtype:

* ``int8-dynamic`` (the ``--int8`` mode): fbgemm dynamic quantisation: int8 weights with one scale per row
  *and* the activation quantised per tensor to 7 bits on every product (fbgemm's integer kernels).
* ``int8-weight``: weight-only. int8 weights with one scale per output row (symmetric, the
  scale rounded to bfloat16 *before* rounding the weights, so the kernel's scale is the one used to quantise);
  the activation is rounded to bfloat16 and torch's ``_weight_int8pack_mm`` CPU kernel accumulates in float32;
  the bias is added in float32 (in the feed-forward block's hidden layer, whose ReLU output is the next
  product's bfloat16 input, in bfloat16). Activations are never quantised to integers.
* ``int4-weight``: weight-only, torch's ``_weight_int4pack_mm_for_cpu``: 4-bit weights with an asymmetric scale and
  offset per group of inputs, bfloat16 activations. Faster still, but ~10× the weight error of int8.

On this project's AMX/AVX-512-BF16 Xeon, weight-only int8 was the more faithful (about 40 % less logit error)
but up to 20 % slower than the dynamic mode (1.27× against 1.51× float32), whose integer kernel beats torch's;
so ``--int8`` stays dynamic. int4 is the fastest and ~10× less faithful.

Measured speed and fidelity of each: docs/models.md ("int8 decoding").
"""

from __future__ import annotations

import functools
import warnings

import torch

QUANT_KINDS = ("int8-dynamic", "int8-weight", "int4-weight")
INT8_KIND = "int8-dynamic"  # what --int8 (enable_int8_decoding) uses; why: docs/models.md, "int8 decoding"
INT4_GROUPS = (32, 64, 128, 256)  # group sizes torch's int4 CPU kernel accepts


@functools.cache
def quantised_kernel_problem(kind: str) -> str | None:
    """None when the CPU kernel behind ``kind`` exists and computes a known product here, else what is wrong.

    Probes once per process with a tiny product (a missing operator, or a build without the kernel, raises).
    """
    try:
        if kind == "int8-weight":
            x = torch.ones(1, 64, dtype=torch.bfloat16)
            out = torch.ops.aten._weight_int8pack_mm(x, torch.full((8, 64), 2, dtype=torch.int8),
                                                     torch.full((8,), 0.5, dtype=torch.bfloat16))
            expected = 64.0
        elif kind == "int4-weight":
            q = torch.full((32, 64), 10, dtype=torch.int32)  # (10 - 8) * scale 0.5 + offset 0 = 1 per weight
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
            scales_zeros = torch.zeros(2, 32, 2, dtype=torch.bfloat16)
            scales_zeros[..., 0] = 0.5
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(torch.ones(1, 64, dtype=torch.bfloat16), packed, 32,
                                                             scales_zeros)
            expected = 64.0
        elif kind == "int8-dynamic":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                packed = _prepack_dynamic(torch.ones(8, 64), torch.zeros(8))
                out = torch.ops.quantized.linear_dynamic(torch.ones(1, 64), packed, True)
            expected = 64.0
        else:
            return f"unknown kind {kind!r}"
    except (AttributeError, NotImplementedError, RuntimeError) as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'operator missing'}"
    if not torch.allclose(out.float(), torch.full_like(out.float(), expected), rtol=0.02):
        return f"the kernel's test product gave {out.float().flatten()[:4].tolist()}, expected {expected}"
    return None


class _WeightOnlyLinear:
    """``x W^T + b`` from a subclass's bfloat16 ``product``; the bias is added in its own dtype (the output's)."""

    __slots__ = ("bias", "bias_bf16")

    def __init__(self, bias: torch.Tensor) -> None:
        self.bias = bias.detach().cpu()  # the model's dtype: the output's
        self.bias_bf16 = self.bias.to(torch.bfloat16)

    def product(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _add_bias(self.bias, self.product(x))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(x W^T + b)`` in bfloat16: the next product's input without a conversion in between."""
        return self.product(x).add_(self.bias_bf16).relu_()


class Int8Linear(_WeightOnlyLinear):
    """``x W^T + b``: ``W`` int8 ``[N, K]`` with one bfloat16 scale per output row, activations in bfloat16."""

    __slots__ = ("scales", "weight")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__(bias)
        w = weight.detach().float().cpu()
        scales = _row_scales(w).to(torch.bfloat16)
        self.weight = (w / scales.float().unsqueeze(1)).round().clamp(-127, 127).to(torch.int8).contiguous()
        self.scales = scales

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """``x W^T`` in bfloat16 (float32 accumulation inside the kernel)."""
        return torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), self.weight, self.scales)

    def dequantised(self) -> torch.Tensor:
        """The float32 weight the kernel multiplies by (for tests and error estimates)."""
        return self.weight.float() * self.scales.float().unsqueeze(1)


class Int4Linear(_WeightOnlyLinear):
    """``x W^T + b``: 4-bit ``W`` with an asymmetric bfloat16 scale and offset per ``group`` inputs."""

    __slots__ = ("group", "packed", "scales_zeros")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, group: int = 32) -> None:
        n, k = weight.shape
        if group not in INT4_GROUPS or k % group:
            raise ValueError(f"int4 groups must be one of {INT4_GROUPS} and divide the input width {k}; got {group}")
        super().__init__(bias)
        w = weight.detach().float().cpu().reshape(n, k // group, group)
        low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
        scale = ((high - low) / 15.0).clamp_min(1e-12).to(torch.bfloat16).float()
        q = ((w - low) / scale).round().clamp(0, 15)
        # the kernel computes (q - 8) * scale + zero, so zero is the value of the middle code
        zero = (low + 8 * scale).to(torch.bfloat16)
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.reshape(n, k).to(torch.int32), 1)
        self.scales_zeros = torch.stack([scale.squeeze(-1).to(torch.bfloat16), zero.squeeze(-1)], -1).transpose(
            0, 1).contiguous()  # [K / group, N, 2]
        self.group = group

    def product(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.packed, self.group,
                                                          self.scales_zeros)


class DynamicInt8Linear:
    """fbgemm dynamic quantisation: int8 weights per row, the activation quantised per tensor on every call."""

    __slots__ = ("packed",)

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        with warnings.catch_warnings():  # quantized tensors are deprecated in torch, but fbgemm still runs them
            warnings.simplefilter("ignore")
            self.packed = _prepack_dynamic(weight, bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self.packed, True)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).relu_()


def _add_bias(bias: torch.Tensor, product: torch.Tensor) -> torch.Tensor:
    """``bias + product`` in the bias's dtype (float32 + bfloat16 gives float32 in one operation)."""
    out = torch.add(bias, product)
    return out if out.dtype == bias.dtype else out.to(bias.dtype)


def _row_scales(w: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 scales, one per output row of the float32 weight ``w`` [N, K]: the row's largest |w| / 127."""
    return (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)


def _prepack_dynamic(weight: torch.Tensor, bias: torch.Tensor) -> object:
    w = weight.detach().float().cpu()
    scales = _row_scales(w).double()
    q = torch.quantize_per_channel(w, scales, torch.zeros_like(scales, dtype=torch.long), 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(q, bias.detach().float().cpu())


def make_quantised(kind: str, weight: torch.Tensor, bias: torch.Tensor, group: int = 32
                   ) -> Int8Linear | Int4Linear | DynamicInt8Linear:
    """The callable for one projection in format ``kind`` (see :data:`QUANT_KINDS`)."""
    if kind == "int8-weight":
        return Int8Linear(weight, bias)
    if kind == "int4-weight":
        return Int4Linear(weight, bias, group)
    if kind == "int8-dynamic":
        return DynamicInt8Linear(weight, bias)
    raise ValueError(f"unknown quantised decoding {kind!r}; choose one of {', '.join(QUANT_KINDS)}")
