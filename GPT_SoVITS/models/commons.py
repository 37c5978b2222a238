"""Small helpers shared by the SoVITS modules: masks, segment slicing, gated activations and weight norm.

Weight norm is implemented here rather than with ``torch.nn.utils.weight_norm`` (deprecated, warns) or
``torch.nn.utils.parametrizations.weight_norm`` (different state-dict keys). The layers below store the
legacy pair ``<name>.weight_g`` / ``<name>.weight_v`` exactly as upstream checkpoints do, and can be folded
into a plain ``weight`` for inference with :func:`fold_weight_norm`.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with the given dilation."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """Boolean mask [B, T]: True where the position is inside the sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def fused_add_tanh_sigmoid_multiply(a: Tensor, b: Tensor, n_channels: int) -> Tensor:
    """WaveNet gate: tanh(first half of a+b) * sigmoid(second half)."""
    summed = a + b
    return torch.tanh(summed[:, :n_channels]) * torch.sigmoid(summed[:, n_channels:])


def slice_segments(x: Tensor, starts: Tensor, segment_size: int) -> Tensor:
    """Cut ``x[b, :, starts[b]:starts[b]+segment_size]`` for every item; zero-filled past the end."""
    out = x.new_zeros(x.shape[0], x.shape[1], segment_size)
    for i, start in enumerate(starts.tolist()):
        piece = x[i, :, start:start + segment_size]
        out[i, :, : piece.shape[-1]] = piece
    return out


def rand_slice_segments(x: Tensor, lengths: Tensor | None, segment_size: int) -> tuple[Tensor, Tensor]:
    """Random training window per item (VITS). Items shorter than the window start at 0 and are zero-padded."""
    batch, _, total = x.shape
    if lengths is None:
        lengths = torch.full((batch,), total, device=x.device)
    max_start = (lengths - segment_size + 1).clamp(min=1)
    starts = (torch.rand(batch, device=x.device) * max_start).long()
    return slice_segments(x, starts, segment_size), starts


# ------------------------------------------------------------------------------------- channels-last layout
# On CPU, oneDNN runs 1-D convolutions 1.3-4x faster when they are expressed as 2-D convolutions over
# [B, C, 1, T] tensors in channels-last memory order (physically [B, T, C]); the weight-normed conv layers
# below accept that layout directly, so a whole decoder stack can run in it between two conversions.


def to_channels_last_2d(x: Tensor) -> Tensor:
    """[B, C, T] → [B, C, 1, T] stored channels-last."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_channels_last_2d(x: Tensor) -> Tensor:
    """[B, C, 1, T] → contiguous [B, C, T]."""
    return x.squeeze(2).contiguous()


def _as_2d_weight(weight: Tensor) -> Tensor:
    return weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------------- 1x1 convolutions
# A kernel-1 Conv1d is a matrix product over channels. On CPU, torch runs it through oneDNN with layout
# reorders that make it 10-40x slower than the plain product at SoVITS sizes ([1, 192, 500]); the layers
# below use the product instead (same math, float rounding aside), on every device.


def _is_pointwise(conv: nn.Conv1d) -> bool:
    return (conv.kernel_size == (1,) and conv.stride == (1,) and conv.padding in ((0,), "valid")
            and conv.dilation == (1,) and conv.groups == 1 and not isinstance(conv, nn.ConvTranspose1d))


def pointwise_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``conv1d(x, weight, bias)`` for a [out, in, 1] kernel, as a batched matrix product. x [B, in, T]."""
    out = torch.matmul(weight.squeeze(-1), x)
    # bias in the product's dtype, as conv1d would give under autocast
    return out + bias.unsqueeze(-1).to(out.dtype) if bias is not None else out


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters and state-dict keys) whose kernel-1 case runs as a matrix product."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pointwise_as_matmul = _is_pointwise(self)  # set False to force the library convolution

    def forward(self, x: Tensor) -> Tensor:
        if self.pointwise_as_matmul and x.dim() == 3:
            return pointwise_conv(x, self.weight, self.bias)
        return super().forward(x)


# ------------------------------------------------------------------------------------------------ weight norm


class _WeightNorm:
    """Mixin for conv layers: weight = g · v / ‖v‖ with the norm over every axis but 0 (torch's legacy dim=0).

    For a transposed convolution axis 0 is the *input* channel, so ``weight_g`` is [in, 1, 1], as in upstream
    files. After :meth:`fold` the layer holds a plain ``weight`` and runs as the parent class does.
    """

    weight_g: nn.Parameter
    weight_v: nn.Parameter
    _parameters: dict

    def _split_weight(self) -> None:
        weight = self.weight.detach()  # type: ignore[has-type]
        del self.weight  # type: ignore[has-type]
        self.weight_g = nn.Parameter(torch.norm_except_dim(weight, 2, 0))
        self.weight_v = nn.Parameter(weight.clone())

    def effective_weight(self) -> Tensor:
        if "weight" in self._parameters:  # folded
            return self._parameters["weight"]
        # the same fused op that torch's weight_norm hook calls, so results match upstream bit for bit
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def weight_2d(self) -> Tensor:
        """The weight as a channels-last [out, in, 1, k] kernel for the 2-D layout (cached once folded)."""
        cached = self._buffers.get("folded_weight_2d")
        return cached if cached is not None else _as_2d_weight(self.effective_weight())

    def fold(self) -> None:
        """Replace weight_g/weight_v by the fixed weight they define (inference: saves the per-call norm).

        Also caches the kernel for the channels-last layout (a non-persistent buffer): change the weights of
        a folded layer only through a new model.
        """
        if "weight" in self._parameters:
            return
        weight = self.effective_weight().detach().clone()
        del self.weight_g
        del self.weight_v
        self.weight = nn.Parameter(weight, requires_grad=False)
        if weight.dim() == 3:
            self.register_buffer("folded_weight_2d", _as_2d_weight(weight), persistent=False)


    def refresh_folded_cache(self) -> None:
        """Rebuild the channels-last kernel cache of a folded layer from its current ``weight`` (needed after
        weights were loaded into an already folded layer, e.g. a model built folded on the meta device)."""
        if "weight" in self._parameters and self._parameters["weight"].dim() == 3:
            self.register_buffer("folded_weight_2d", _as_2d_weight(self._parameters["weight"].detach()),
                                 persistent=False)


class WNConv1d(_WeightNorm, nn.Conv1d):
    def __init__(self, *args, init_std: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if init_std is not None:
            nn.init.normal_(self.weight, 0.0, init_std)
        self._split_weight()
        self.pointwise_as_matmul = _is_pointwise(self)  # see Conv1d

    def conv_args(self, x: Tensor) -> tuple[list[int], list[int], list[int]]:
        """(padding, stride, dilation) for ``x``'s layout: 1-D [B, C, T] or channels-last 2-D [B, C, 1, T]."""
        if x.dim() == 4:
            return [0, self.padding[0]], [1, self.stride[0]], [1, self.dilation[0]]
        return [self.padding[0]], [self.stride[0]], [self.dilation[0]]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:  # [B, C, 1, T] channels-last layout, see to_channels_last_2d
            padding, stride, dilation = self.conv_args(x)
            return F.conv2d(x, self.weight_2d(), self.bias, stride, padding, dilation, self.groups)
        if self.pointwise_as_matmul:
            return pointwise_conv(x, self.effective_weight(), self.bias)
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WNConv2d(_WeightNorm, nn.Conv2d):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WNConvTranspose1d(_WeightNorm, nn.ConvTranspose1d):
    def __init__(self, *args, init_std: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if init_std is not None:
            nn.init.normal_(self.weight, 0.0, init_std)
        self._split_weight()

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if x.dim() == 4:  # [B, C, 1, T] channels-last layout, see to_channels_last_2d
            return F.conv_transpose2d(x, self.weight_2d(), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                                      (0, self.output_padding[0]), self.groups, (1, self.dilation[0]))
        return F.conv_transpose1d(x, self.effective_weight(), self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


# ---------------------------------------------------------------------------- fused conv + pointwise (CPU)
# torch ships oneDNN convolutions with fused post-ops (what torch.compile's CPU backend emits). Using them
# for conv→leaky_relu and conv→residual-add saves a full pass over large activations each. They are
# private ops, so they are probed once and the plain ops are used when they are missing or misbehave.


def _fused_weight(layer: WNConv1d, x: Tensor) -> Tensor:
    return layer.weight_2d() if x.dim() == 4 else layer.effective_weight()


def conv_leaky_relu(layer: WNConv1d, x: Tensor, slope: float) -> Tensor:
    """``leaky_relu(layer(x), slope)`` in one oneDNN call (inference only, no autograd)."""
    padding, stride, dilation = layer.conv_args(x)
    return torch.ops.mkldnn._convolution_pointwise(x, _fused_weight(layer, x), layer.bias, padding, stride,
                                                   dilation, layer.groups, "leaky_relu", [slope], "")


def conv_add(layer: WNConv1d, x: Tensor, residual: Tensor) -> Tensor:
    """``layer(x) + residual`` in one oneDNN call (inference only, no autograd)."""
    padding, stride, dilation = layer.conv_args(x)
    return torch.ops.mkldnn._convolution_pointwise(x, residual, _fused_weight(layer, x), layer.bias, padding,
                                                   stride, dilation, layer.groups, "add", 1.0, None, [], None)


@lru_cache(maxsize=1)
def onednn_fusion_available() -> bool:
    """Whether the fused oneDNN conv ops exist here and agree with the unfused ops on a small probe."""
    if not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):  # the probe must not move the caller's global RNG
        layer = WNConv1d(8, 8, 3, padding=2, dilation=2)
    layer.fold()
    x = to_channels_last_2d(torch.randn(1, 8, 32, generator=generator))
    residual = to_channels_last_2d(torch.randn(1, 8, 32, generator=generator))
    try:
        with torch.no_grad():
            fused = conv_add(layer, conv_leaky_relu(layer, x, LRELU_SLOPE), residual)
            plain = layer(F.leaky_relu(layer(x), LRELU_SLOPE)) + residual
    except (RuntimeError, AttributeError, TypeError) as exc:
        log.info("oneDNN fused convolutions unavailable (%s); using plain ops", exc)
        return False
    return bool(torch.allclose(fused, plain, atol=1e-5, rtol=1e-5))


def fold_weight_norm(module: nn.Module) -> int:
    """Fold every weight-normed layer under ``module`` into a plain weight; returns how many were folded.

    Outputs are unchanged (the folded weight is exactly what each forward computed); the state dict then has
    ``weight`` instead of ``weight_g``/``weight_v``, so fold only models used for inference.
    """
    count = 0
    for layer in module.modules():
        if isinstance(layer, _WeightNorm) and "weight" not in layer._parameters:
            layer.fold()
            count += 1
    return count


def refresh_folded_caches(module: nn.Module) -> int:
    """:meth:`_WeightNorm.refresh_folded_cache` on every folded layer under ``module``; returns how many."""
    count = 0
    for layer in module.modules():
        if isinstance(layer, _WeightNorm) and "weight" in layer._parameters:
            layer.refresh_folded_cache()
            count += 1
    return count
