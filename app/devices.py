"""What the launcher knows about the machine's GPUs (probed when a tab is built, never at import), and the
defaults upstream derives from them (training batch sizes, the 1Ba panel per version)."""

from __future__ import annotations

from dataclasses import dataclass

from GPT_SoVITS.versions import version_spec


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


def default_batch_sizes(gpus: list[GpuInfo], ram_gb: float) -> tuple[int, int]:
    """Upstream's defaults (SoVITS, GPT): half the smallest GPU's GB, or a quarter of the RAM on CPU; ≥ 1."""
    if gpus:
        per_gpu = int(min(g.memory_gb for g in gpus) // 2)
        return max(1, per_gpu), max(1, per_gpu)
    per_cpu = max(1, int(ram_gb // 4))
    return per_cpu, per_cpu


def lora_batch_size(gpus: list[GpuInfo], ram_gb: float) -> int:
    """Upstream's LoRA default: the smallest GPU's GB // 8, halved where fp16 is off (GPUs below compute capability
    5.3, where ``auto`` precision trains in fp32); on CPU a quarter of the RAM as for the other trainers; ≥ 1."""
    from GPT_SoVITS.train.precision import MIN_FP16_CAPABILITY

    if not gpus:
        return max(1, int(ram_gb // 4))
    size = int(min(g.memory_gb for g in gpus) // 8)
    if any(g.capability < MIN_FP16_CAPABILITY for g in gpus):
        size //= 2
    return max(1, size)


@dataclass(frozen=True)
class SoVITSPanelDefaults:
    """What the SoVITS panel shows for a version (upstream's 1Ba defaults and slider ranges)."""

    lora: bool  # LoRA fine-tuning: rank choice shown; text-module LR and discriminator hidden
    batch: int
    epochs: int
    max_epochs: int
    save_every: int
    max_save_every: int

    @property
    def max_batch(self) -> int:
        return max(3 * self.batch, 4)


def sovits_panel_defaults(version: str, gpus: list[GpuInfo], ram_gb: float) -> SoVITSPanelDefaults:
    """v1/v2/Pro: batch from memory, 8 epochs (≤ 25), save every 4; LoRA (v4): GPU GB // 8, 2 epochs (≤ 16), save
    every epoch (≤ 10), as upstream's webui switches them."""
    if version_spec(version).fine_tunes_with_lora:
        return SoVITSPanelDefaults(True, lora_batch_size(gpus, ram_gb), 2, 16, 1, 10)
    return SoVITSPanelDefaults(False, default_batch_sizes(gpus, ram_gb)[0], 8, 25, 4, 25)
