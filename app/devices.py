"""What the launcher knows about the machine's GPUs (probed when a tab is built, never at import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_gb: float
    capability: tuple[int, int]


def detect_gpus() -> list[GpuInfo]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(GpuInfo(index, props.name, round(props.total_memory / 2**30, 1), (props.major, props.minor)))
    return gpus


def gpu_table(gpus: list[GpuInfo], cpu_label: str) -> str:
    """Upstream's "GPU info" box: one ``index\\tname`` line per GPU, or the CPU line."""
    if not gpus:
        return f"0\t{cpu_label}"
    return "\n".join(f"{gpu.index}\t{gpu.name} ({gpu.memory_gb} GB, sm_{gpu.capability[0]}{gpu.capability[1]})"
                     for gpu in gpus)


def default_worker_gpus(gpus: list[GpuInfo]) -> str:
    """Upstream's default for the 1A GPU fields: two workers on each GPU (``0-0``); empty on CPU."""
    return "-".join(f"{gpu.index}-{gpu.index}" for gpu in gpus)
