"""Small helpers shared by the SoVITS modules: masks, segment slicing, gated activations and weight norm.

Weight norm is implemented here rather than with ``torch.nn.utils.weight_norm`` (deprecated, warns) or
``torch.nn.utils.parametrizations.weight_norm`` (different state-dict keys). The layers below store the
legacy pair ``<name>.weight_g`` / ``<name>.weight_v`` exactly as upstream checkpoints do, and can be folded
into a plain ``weight`` for inference with :func:`fold_weight_norm`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

    def fold(self) -> None:
        """Replace weight_g/weight_v by the fixed weight they define (inference: saves the per-call norm)."""
        if "weight" in self._parameters:
            return
        weight = self.effective_weight().detach().clone()
        del self.weight_g
        del self.weight_v
        self.weight = nn.Parameter(weight, requires_grad=False)


class WNConv1d(_WeightNorm, nn.Conv1d):
    def __init__(self, *args, init_std: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if init_std is not None:
            nn.init.normal_(self.weight, 0.0, init_std)
        self._split_weight()

    def forward(self, x: Tensor) -> Tensor:
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
        return F.conv_transpose1d(x, self.effective_weight(), self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


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
