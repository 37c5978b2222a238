"""The trainers' DataLoader workers as Windows starts them: spawned (a fresh interpreter that unpickles the dataset,
the collate function and the worker init), not forked. The batches must be the ones a single process makes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from GPT_SoVITS.train import gpt, sovits
from GPT_SoVITS.train.distributed import DistInfo
from GPT_SoVITS.train.loop import StopRequest
from tests.unit import test_train_gpt, test_train_sovits

pytestmark = pytest.mark.slow


def _batches(loader: torch.utils.data.DataLoader, **kwargs: object) -> list:
    again = torch.utils.data.DataLoader(loader.dataset, batch_sampler=loader.batch_sampler,
                                        collate_fn=loader.collate_fn, worker_init_fn=loader.worker_init_fn,
                                        **kwargs)
    return list(again)


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if hasattr(a, "__dataclass_fields__"):
        return all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("trainer", ["gpt", "sovits"])
def test_spawned_workers_make_the_same_batches(trainer: str, tmp_path: Path) -> None:
    if trainer == "gpt":
        cfg = test_train_gpt.make_cfg(tmp_path, n_items=4)
        run = gpt.GPTTrainer(cfg, DistInfo(), torch.device("cpu"), StopRequest())
    else:
        cfg = test_train_sovits.make_cfg(tmp_path)
        run = sovits.SoVITSTrainer(cfg, DistInfo(), torch.device("cpu"), StopRequest())
    loader = run.loader(1, 0).loader
    in_process = _batches(loader, num_workers=0)
    spawned = _batches(loader, num_workers=1, multiprocessing_context="spawn")
    assert len(in_process) == len(spawned) > 0
    assert all(_same(a, b) for a, b in zip(in_process, spawned, strict=True))
