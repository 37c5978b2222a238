"""torch.distributed helpers for DDP under ``torchrun`` (one process per GPU, any number of machines).

There is no home-made launcher: a single process is a world of one; several processes are started by
``torchrun`` (``python -m torch.distributed.run``), which sets RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR.
Only the entry point reads the environment; it hands the mapping to :meth:`DistInfo.from_env`.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DistInfo:
        """Read torchrun's variables (absent = a single process)."""
        try:
            return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))
        except ValueError as exc:
            raise ValueError(f"bad torchrun environment (RANK/LOCAL_RANK/WORLD_SIZE): {exc}") from None


def select_device(requested: str, info: DistInfo) -> torch.device:
    """``auto`` = CUDA when present; each rank takes ``cuda:LOCAL_RANK``."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use device: cpu, "
                               "or install a CUDA build of PyTorch")
        index = info.local_rank if requested == "cuda" else int(requested.split(":", 1)[1])
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device(requested)


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU); nothing for a single process."""
    if not info.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" and sys.platform != "win32" else "gloo"  # no NCCL on Windows
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    log.info("joined process group: rank %d of %d (%s)", info.rank, info.world_size, backend)


def shutdown() -> None:
    """Leave the process group. DDP wrappers still referenced from reference cycles are collected first, while
    the group is alive: a gloo group torn down later, during interpreter exit, aborts the process (SIGABRT,
    "terminate called without an active exception") after training has finished."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def mean_across_ranks(value: float, device: torch.device) -> float:
    """Average a scalar over all ranks (the value itself for a single process)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on at least one (e.g. a stop request seen by one process)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper (state-dict keys without ``module.``)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
