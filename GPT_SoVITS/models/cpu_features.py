"""Which CPU instructions torch can use, and the engine's choice of bfloat16 on the CPU.

Why: on CPUs with AMX-BF16 tiles or AVX-512-BF16 dot products, oneDNN runs bfloat16 convolutions and matrix
products several times faster than float32 (the SoVITS decoder about 2.2× end to end on an AMX Xeon, see
docs/models.md). Elsewhere bfloat16 is emulated and slower than float32, so it is only worth using where the
hardware has it. ``auto`` takes AMX only: that is where it was measured; AVX-512-BF16 alone (e.g. Zen 4, Cooper
Lake) has no measurement, and such users can choose ``on``. Detection asks torch (it reads CPUID through its
bundled cpuinfo); a torch without those private helpers, or one whose helpers fail, counts as "no fast bfloat16".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import torch

log = logging.getLogger(__name__)

#: Values of the engine's ``cpu_bf16`` option: ``auto`` uses bfloat16 where the CPU computes it natively.
CPU_BF16_MODES = ("auto", "on", "off")
#: Instruction-set features that make bfloat16 fast (names as torch's capability dict spells them).
FAST_BF16_FEATURES = ("amx_bf16", "avx512_bf16")
#: The features that make ``cpu_bf16="auto"`` choose bfloat16 (measured faster there; see the module docstring).
AUTO_BF16_FEATURES = ("amx_bf16",)


def _capability_from_torch() -> Mapping[str, object]:
    """torch's CPU feature dict (``torch._C._cpu._get_cpu_capability()``, torch ≥ 2.4), or {} without it."""
    getter = getattr(getattr(torch._C, "_cpu", None), "_get_cpu_capability", None)
    if getter is None:
        return {}
    capability = getter()
    return capability if isinstance(capability, Mapping) else {}


def _flags_from_torch() -> dict[str, bool]:
    """The older per-feature probes (``torch.cpu._is_amx_tile_supported``…), for torches without the dict."""
    probes: dict[str, Callable[[], bool] | None] = {
        "amx_bf16": getattr(torch.cpu, "_is_amx_tile_supported", None),  # AMX tiles come with AMX-BF16
        "avx512_bf16": getattr(torch.cpu, "_is_avx512_bf16_supported", None),
    }
    return {name: bool(probe()) for name, probe in probes.items() if probe is not None}


def fast_bf16_features(capability: Mapping[str, object] | None = None) -> tuple[str, ...]:
    """The features of :data:`FAST_BF16_FEATURES` this CPU has (empty: none, or detection failed).

    ``capability`` replaces torch's feature dict (tests pass their own); None asks torch.
    """
    try:
        if capability is None:
            capability = _capability_from_torch() or _flags_from_torch()
        return tuple(name for name in FAST_BF16_FEATURES if bool(capability.get(name, False)))
    except (RuntimeError, AttributeError, TypeError, OSError) as exc:  # a private torch helper changed or failed
        log.info("CPU feature detection failed (%s); assuming no fast bfloat16", exc)
        return ()


def has_fast_bf16(capability: Mapping[str, object] | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (AMX-BF16 or AVX-512-BF16)."""
    return bool(fast_bf16_features(capability))


def use_cpu_bf16(mode: str, device: str | torch.device = "cpu",
                 capability: Mapping[str, object] | None = None) -> bool:
    """Resolve the ``cpu_bf16`` option for a model on ``device``: True means run the chosen parts in bfloat16.

    ``off``: never. ``on``: always on a CPU (slower than float32 where the CPU lacks native bfloat16).
    ``auto``: on a CPU with one of :data:`AUTO_BF16_FEATURES`. Other devices never (they have their own ``half``
    option).
    """
    if mode not in CPU_BF16_MODES:
        raise ValueError(f"cpu_bf16: {mode!r} is not one of {', '.join(CPU_BF16_MODES)}")
    if torch.device(device).type != "cpu" or mode == "off":
        return False
    return mode == "on" or any(name in AUTO_BF16_FEATURES for name in fast_bf16_features(capability))
