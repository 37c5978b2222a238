"""The compatibility kit's deterministic weight recipe, implemented from its description.

Every state-dict entry gets its own CPU generator seeded with ``crc32(key)`` and one ``randn(shape)`` draw,
shaped by the kind of tensor (see :func:`recipe_tensor`), then rounded through float16 so the weights
survive half-precision containers bit for bit. With these weights our models can be compared number for
number with the kit's reference outputs, which upstream computed from the same weights.

The v4 kit adds one supplement (:func:`apply_supplements`): a rotary ``inv_freq`` table gets its real
frequencies instead of noise.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any

import torch

LAYER_NORM_CLASSES = ("LayerNorm",)


def _noise(key: str, shape: list[int]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    return torch.randn(shape, generator=generator)


def _is_layer_norm_scale(key: str, module_class: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    is_layer_norm = module_class.rsplit(".", 1)[-1] in LAYER_NORM_CLASSES
    return leaf == "gamma" or (is_layer_norm and leaf == "weight")


def recipe_tensor(key: str, shape: list[int], module_class: str) -> torch.Tensor:
    """The recipe value of one entry *before* weight-norm gains are derived and before fp16 rounding."""
    leaf = key.rsplit(".", 1)[-1]
    cls_name = module_class.rsplit(".", 1)[-1]
    if cls_name == "EuclideanCodebook" and leaf in ("inited", "cluster_size"):
        return torch.ones(shape)
    noise = _noise(key, shape)
    if (cls_name == "EuclideanCodebook" and leaf in ("embed", "embed_avg")) or cls_name == "Embedding":
        return noise
    if _is_layer_norm_scale(key, module_class) or (leaf == "alpha" and key.endswith("_position.alpha")):
        return 1.0 + 0.02 * noise
    if len(shape) >= 3 and leaf in ("weight", "weight_v"):  # conv kernels (weight_v included): fan-in scaling
        return noise / math.sqrt(math.prod(shape[1:]))
    return 0.02 * noise


def rotary_inv_freq(size: int, base: float = 10000.0) -> torch.Tensor:
    """The rotary frequency table 1 / base^(2q / (2·size)), q = 0 … size-1, in float32 (x_transformers' layout)."""
    dim = 2 * size
    return 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))


def apply_supplements(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The v4 kit's supplement (its §4): every ``…rotary_embed.inv_freq`` buffer holds the real frequency table
    (float32, rounded through float16 like every recipe tensor) instead of noise. In place; returns ``state``."""
    for key, value in state.items():
        if key.endswith("rotary_embed.inv_freq"):
            state[key] = rotary_inv_freq(value.numel()).reshape(value.shape).half().float()
    return state


def make_state_dict(schema: dict[str, Any], gain_dtype: torch.dtype = torch.float64, supplements: bool = True,
                    prefixes: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a kit schema (``schema_*.json``), in state-dict order, as float32.

    ``supplements`` applies :func:`apply_supplements` (a no-op for schemas without rotary tables); False gives
    the plain recipe (the kit's ``*_raw_recipe`` fingerprints). ``prefixes`` limits the result to keys starting
    with one of them (each value is the same as in the full set: every key has its own generator).
    ``gain_dtype`` is the precision of the weight-norm gains' norm: the v2 kit computed it in float64, the later
    kits (v2Pro, v4) in float32, which rounds 1 of the 164 v2Pro gains to the neighbouring float16 value.
    """
    entries = schema["entries"]
    if prefixes is not None:
        entries = [entry for entry in entries if entry[0].startswith(prefixes)]
    values: dict[str, torch.Tensor] = {}
    for key, shape, _dtype, _kind, module_class in entries:
        if key.endswith(".weight_g"):
            continue  # derived from weight_v below
        values[key] = recipe_tensor(key, shape, module_class)
    state: dict[str, torch.Tensor] = {}
    for key, shape, _dtype, _kind, _module_class in entries:
        if key.endswith(".weight_g"):
            v = values[key[: -len("_g")] + "_v"].to(gain_dtype)
            # the gain is the norm of the unrounded v over every axis but 0, so that g·v/‖v‖ = v
            dims = [i for i, size in enumerate(shape) if size == 1]
            state[key] = v.pow(2).sum(dim=dims, keepdim=True).sqrt().reshape(shape).half().float()
        else:
            state[key] = values[key].half().float()
    return apply_supplements(state) if supplements else state


def load_schema(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def fingerprint(tensor: torch.Tensor) -> dict[str, Any]:
    """The kit's per-key checksum: sum, sum of absolute values and the first four values."""
    flat = tensor.detach().double().flatten()
    return {"sum": float(flat.sum()), "abs_sum": float(flat.abs().sum()), "first4": flat[:4].tolist()}


def compare_fingerprints(state: dict[str, torch.Tensor], expected: dict[str, dict[str, Any]],
                         rel: float = 1e-6) -> list[str]:
    """Keys whose fingerprint differs from ``expected`` (empty list: identical weights)."""
    bad = []
    for key, tensor in state.items():
        ref = expected.get(key)
        if ref is None:
            bad.append(f"{key}: not in the fingerprints")
            continue
        got = fingerprint(tensor)
        scale = max(1.0, abs(ref["abs_sum"]))
        if (abs(got["sum"] - ref["sum"]) > rel * scale or abs(got["abs_sum"] - ref["abs_sum"]) > rel * scale
                or got["first4"] != [float(x) for x in ref["first4"]]):
            bad.append(f"{key}: got {got}, expected {ref}")
    return bad


BATCH_NORM_CLASSES = ("BatchNorm2d",)


def make_sv_state_dict(schema: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The kit's SV-network weights (v2pro kit §3): the recipe plus its BatchNorm supplement.

    Under the bare recipe half of the BatchNorm ``running_var`` values are negative and the network
    outputs NaN, so every BatchNorm2d ``.weight`` and ``.running_var`` takes the LayerNorm-scale rule
    instead (``1 + 0.02·noise`` with the key's own noise, rounded through float16), and every
    ``num_batches_tracked`` listed under the schema's ``int64_buffers`` is 0. Float entries come first in
    schema order, then the counters (the order of the kit's fingerprints).
    """
    state = make_state_dict(schema)
    for key, shape, _dtype, _kind, module_class in schema["entries"]:
        leaf = key.rsplit(".", 1)[-1]
        if module_class.rsplit(".", 1)[-1] in BATCH_NORM_CLASSES and leaf in ("weight", "running_var"):
            state[key] = (1.0 + 0.02 * _noise(key, shape)).half().float()
    for key, shape, *_ in schema.get("int64_buffers", []):
        state[key] = torch.zeros(shape, dtype=torch.long)
    return state
