"""LoRA for the v3/v4 CFM, in peft's file layout, without depending on peft.

Upstream fine-tunes v3/v4 by wrapping ``cfm`` with ``peft.get_peft_model`` (rank r, alpha = r, targets
``to_q``/``to_k``/``to_v``/``to_out.0`` of every DiT attention, A Kaiming-uniform, B zero, no dropout, no
bias). Its files therefore name tensors the way peft does:

* resume files: ``cfm.base_model.model.estimator.….attn.to_q.base_layer.weight`` (the frozen base) and
  ``….to_q.lora_A.default.weight`` [r, in] / ``….lora_B.default.weight`` [out, r];
* release files (``SoVITS_weights_v4/*_l<r>.pth``, header ``04``; v3: ``03``): float16 copies of the LoRA
  tensors, the fully trained ``ref_enc``/``bridge``/``wns1``/``linear_mel``, and every buffer.

:class:`LoraCFM` reproduces that module tree (``base_model.model`` is the wrapped CFM, each target a
:class:`LoraLinear` with ``base_layer``/``lora_A``/``lora_B``), so ``state_dict()`` yields exactly those keys.
Merging is W = W_base + (alpha / r) · B·A.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from GPT_SoVITS.checkpoints import CheckpointError
from GPT_SoVITS.fileio import atomic_path
from GPT_SoVITS.models.cfm import CFM
from GPT_SoVITS.models.sovits_v4 import SynthesizerTrnV3

log = logging.getLogger(__name__)

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
ADAPTER = "default"  # peft's adapter name, part of every key
WRAPPED_PREFIX = "cfm.base_model.model."
PLAIN_PREFIX = "cfm."
#: Modules upstream trains in full next to the LoRA tensors (they are in release files).
TRAINED_IN_FULL = ("ref_enc.", "bridge.", "wns1.", "linear_mel.")
#: Modules frozen by ``freeze_quantizer`` during LoRA training.
FROZEN_ENCODERS = ("ssl_proj", "quantizer", "enc_p")
_LORA_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<which>[AB])\." + ADAPTER + r"\.weight")


class LoraLinear(nn.Module):
    """``base_layer(x) + scaling · lora_B(lora_A(x))`` around an existing ``nn.Linear`` (peft's layer layout)."""

    def __init__(self, base_layer: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base_layer = base_layer
        self.lora_A = nn.ModuleDict({ADAPTER: nn.Linear(base_layer.in_features, rank, bias=False,
                                                        device=base_layer.weight.device,
                                                        dtype=base_layer.weight.dtype)})
        self.lora_B = nn.ModuleDict({ADAPTER: nn.Linear(rank, base_layer.out_features, bias=False,
                                                        device=base_layer.weight.device,
                                                        dtype=base_layer.weight.dtype)})
        self.rank = rank
        self.scaling = alpha / rank
        if base_layer.weight.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_A[ADAPTER].weight, a=math.sqrt(5))  # peft's default
            nn.init.zeros_(self.lora_B[ADAPTER].weight)  # so the wrapped model starts as the base model

    def forward(self, x: Tensor) -> Tensor:
        return self.base_layer(x) + self.lora_B[ADAPTER](self.lora_A[ADAPTER](x)) * self.scaling

    def delta_weight(self) -> Tensor:
        """scaling · B·A [out, in], computed in float32."""
        return (self.lora_B[ADAPTER].weight.float() @ self.lora_A[ADAPTER].weight.float()) * self.scaling

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """The base layer, its weight replaced by W + scaling·B·A (for :meth:`LoraCFM.merge_and_unload`)."""
        base = self.base_layer
        weight = base.weight.float() + self.delta_weight()
        base.weight = nn.Parameter(weight.to(base.weight.dtype), requires_grad=base.weight.requires_grad)
        return base


class _LoraModel(nn.Module):
    """peft's middle level (``base_model``): holds the wrapped module as ``model``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)


def _target_names(module: nn.Module) -> list[str]:
    return [name for name, child in module.named_modules()
            if isinstance(child, nn.Linear) and any(name == t or name.endswith("." + t) for t in LORA_TARGETS)]


class LoraCFM(nn.Module):
    """A CFM whose attention projections carry LoRA; key layout ``base_model.model.…`` as peft's.

    Calls, ``inference`` and any other attribute go to the wrapped CFM, so the model code needs no change.
    """

    def __init__(self, cfm: CFM, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        self.rank = int(rank)
        self.alpha = float(alpha if alpha is not None else rank)
        targets = _target_names(cfm)
        if not targets:
            raise ValueError("the CFM has no attention projections to put LoRA on")
        for name in targets:
            parent_name, _, leaf = name.rpartition(".")
            parent = cfm.get_submodule(parent_name)
            parent.register_module(leaf, LoraLinear(parent.get_submodule(leaf), self.rank, self.alpha))
        self.base_model = _LoraModel(cfm)

    @property
    def cfm(self) -> CFM:
        return self.base_model.model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.base_model.model(*args, **kwargs)

    def inference(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.base_model.model.inference(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model.model, name)

    def lora_layers(self) -> dict[str, LoraLinear]:
        """Path inside the CFM → LoRA layer (88 for the full-size DiT)."""
        return {name: layer for name, layer in self.cfm.named_modules() if isinstance(layer, LoraLinear)}

    def merge_and_unload(self) -> CFM:
        """The wrapped CFM with every LoRA layer merged into a plain Linear (W + scaling·B·A)."""
        cfm = self.cfm
        for name, layer in self.lora_layers().items():
            parent_name, _, leaf = name.rpartition(".")
            cfm.get_submodule(parent_name).register_module(leaf, layer.merged())
        return cfm


# ------------------------------------------------------------------------------------------------- training


def add_lora(model: SynthesizerTrnV3, rank: int, alpha: float | None = None) -> LoraCFM:
    """Wrap ``model.cfm`` with LoRA of ``rank`` (alpha defaults to the rank, as upstream) in place.

    The DiT's own weights are frozen; the LoRA tensors train. Returns the wrapper (now ``model.cfm``).
    """
    if isinstance(model.cfm, LoraCFM):
        raise ValueError("the CFM already carries LoRA")
    model.cfm.requires_grad_(False)
    wrapped = LoraCFM(model.cfm, rank, alpha)
    for layer in wrapped.lora_layers().values():
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    model.cfm = wrapped
    return wrapped


def prepare_lora_training(model: SynthesizerTrnV3, rank: int) -> list[nn.Parameter]:
    """Upstream's LoRA fine-tuning set-up: :func:`add_lora`, and (with ``freeze_quantizer``) ``ssl_proj``, the
    quantizer and ``enc_p`` frozen. Returns the trainable parameters: the LoRA tensors plus ``ref_enc``,
    ``bridge``, ``wns1`` and ``linear_mel`` in full (rank 32: 253 tensors, 36.2 M values)."""
    add_lora(model, rank)
    if model.cfg.encoder.freeze_quantizer:
        for name in FROZEN_ENCODERS:
            getattr(model, name).requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


# -------------------------------------------------------------------------------------------- release files


def lora_release_keys(model: SynthesizerTrnV3) -> list[str]:
    """The state-dict keys a LoRA release file holds, in state-dict order: the LoRA A/B tensors, all of
    ``ref_enc``/``bridge``/``wns1``/``linear_mel``, and every buffer (codebook, rotary table). Not the frozen DiT
    base, ``enc_p`` or ``ssl_proj``: the file is not a complete model."""
    if not isinstance(model.cfm, LoraCFM):
        raise ValueError("the model's CFM carries no LoRA (call add_lora / prepare_lora_training first)")
    state = model.state_dict(keep_vars=True)
    if any(key.startswith("wns1.enc.") and key.endswith(".weight") for key in state):
        raise ValueError("wns1's weight norm is folded (prepare_for_inference): release files keep weight_g/weight_v")
    buffers = {name for name, _ in model.named_buffers()}
    return [key for key in state if key in buffers or key.startswith(TRAINED_IN_FULL) or _LORA_KEY.fullmatch(key)]


def _fp16_copies(tensors: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    return OrderedDict((key, value.detach().to("cpu", torch.float16) if value.is_floating_point()
                        else value.detach().cpu()) for key, value in tensors.items())


def lora_release_weights(model: SynthesizerTrnV3) -> OrderedDict[str, Tensor]:
    """The ``weight`` dict of a LoRA release file exactly as upstream writes it: float16 copies of the tensors
    :func:`lora_release_keys` names (rank 32: 258 tensors, 37.7 M values)."""
    state = model.state_dict()
    return _fp16_copies({key: state[key] for key in lora_release_keys(model)})


def lora_release_checkpoint(model: SynthesizerTrnV3, config: Mapping[str, Any], epoch: int,
                            step: int) -> dict[str, Any]:
    """The whole release object: ``weight``, ``config`` (a plain dict; upstream pickles its HParams there),
    ``info`` (``"<epoch>epoch_<step>iteration"``) and ``lora_rank`` (an int; only LoRA files have it)."""
    return {"weight": lora_release_weights(model), "config": dict(config), "info": f"{epoch}epoch_{step}iteration",
            "lora_rank": model.cfm.rank}


def lora_release_from_tensors(tensors: Mapping[str, Tensor], config: Mapping[str, Any], epoch: int, step: int,
                              rank: int) -> dict[str, Any]:
    """The release object of already-extracted trained tensors (a training state's, in :func:`lora_release_keys`
    order): the same file :func:`lora_release_checkpoint` writes, without building the model."""
    if not any(_LORA_KEY.fullmatch(key[len(WRAPPED_PREFIX):]) for key in tensors if key.startswith(WRAPPED_PREFIX)):
        raise ValueError("these tensors hold no LoRA pair (expected the trained tensors of a LoRA model)")
    return {"weight": _fp16_copies(tensors), "config": dict(config), "info": f"{epoch}epoch_{step}iteration",
            "lora_rank": int(rank)}


def save_lora_release(path: Path, checkpoint: Mapping[str, Any], tag: bytes) -> Path:
    """Write a release object with upstream's 2-byte header ``tag`` (``model.variant.release_tag``: ``04``
    for v4, ``03`` for v3) in place of the zip's ``PK``, atomically. Upstream recognises LoRA files by it."""
    if len(tag) != 2:
        raise ValueError(f"the header tag must be 2 bytes, got {tag!r}")
    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    data = bytearray(buffer.getvalue())
    data[:2] = tag
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_bytes(bytes(data))
    return Path(path)


@torch.no_grad()
def merge_lora_release(model: SynthesizerTrnV3, weight: Mapping[str, Tensor], rank: int | None = None,
                       alpha: float | None = None) -> SynthesizerTrnV3:
    """Apply a LoRA release ``weight`` dict to a base model built from the pretrained s2Gv4/s2Gv3 weights.

    As upstream (load non-strictly, then merge): tensors the file has replace the model's (peft prefixes mapped
    to the plain layout), every complete LoRA pair adds alpha/rank · B·A (alpha defaults to the rank, the rank
    to the A tensors' rows) to its target weight, and what the file lacks stays the base model's. Call before
    ``prepare_for_inference`` (the file holds ``wns1``'s weight-norm pairs). Returns ``model``, changed in place.

    Raises :class:`CheckpointError` for tensors of the wrong shape, half LoRA pairs, or a file of which no
    tensor belongs to this model.
    """
    if isinstance(model.cfm, LoraCFM):
        raise ValueError("merge into a plain model (built from the pretrained weights), not a LoRA-wrapped one")
    plain: dict[str, Tensor] = {}
    pairs: dict[str, dict[str, Tensor]] = {}
    for key, value in weight.items():
        if key.startswith(WRAPPED_PREFIX):
            rest = key[len(WRAPPED_PREFIX):]
            match = _LORA_KEY.fullmatch(rest)
            if match:
                pairs.setdefault(match["module"], {})[match["which"]] = value
                continue
            key = PLAIN_PREFIX + rest.replace(".base_layer.", ".")
        plain[key] = value
    state = model.state_dict()
    unknown = [key for key in plain if key not in state]
    if unknown and len(unknown) == len(plain) and not pairs:
        raise CheckpointError(f"none of the file's tensors belong to a v3/v4 SoVITS model (e.g. {unknown[0]!r})")
    if unknown:
        log.warning("LoRA file: ignoring %d tensors the model does not have (e.g. %s)", len(unknown), unknown[0])
    for key, value in plain.items():
        if key in state:
            if state[key].shape != value.shape:
                raise CheckpointError(f"LoRA file: {key} is {tuple(value.shape)}, the model has "
                                      f"{tuple(state[key].shape)}")
            state[key].copy_(value)
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise CheckpointError(f"LoRA file: {module} has lora_{''.join(ab)} but not its partner")
        target = model.get_submodule(PLAIN_PREFIX + module)
        lora_a, lora_b = ab["A"].float(), ab["B"].float()
        pair_rank = rank or lora_a.shape[0]
        if (lora_b.shape[1] != lora_a.shape[0] or target.weight.shape != (lora_b.shape[0], lora_a.shape[1])):
            raise CheckpointError(f"LoRA file: {module} pair {tuple(lora_b.shape)}·{tuple(lora_a.shape)} does not "
                                  f"fit its layer {tuple(target.weight.shape)}")
        scaling = (alpha if alpha is not None else pair_rank) / pair_rank
        merged = target.weight.float() + (lora_b @ lora_a) * scaling
        target.weight.copy_(merged.to(target.weight.dtype))
    log.info("merged %d LoRA pairs and %d tensors", len(pairs), len(plain) - len(unknown))
    return model
