"""A stop signal never kills DataLoader workers, even one sent while an epoch's workers are being started."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from GPT_SoVITS.train.loop import STOP_SIGNALS, ShieldedLoader, ignore_stop_signals


class _SelfSignalling(torch.utils.data.Dataset):
    """Each item is fetched in a worker that has just been sent SIGTERM (as the stop button does)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return i


def _recording_init(folder: Path):
    def init(worker_id: int) -> None:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        (folder / f"w{worker_id}").write_text(",".join(str(int(s)) for s in sorted(blocked)))
        ignore_stop_signals(worker_id)

    return init


def test_workers_are_born_with_stop_signals_blocked_and_survive_them(tmp_path: Path) -> None:
    loader = torch.utils.data.DataLoader(_SelfSignalling(), batch_size=1, num_workers=2,
                                         worker_init_fn=_recording_init(tmp_path))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    items = [int(b) for b in ShieldedLoader(loader)]
    assert items == [0, 1, 2, 3]  # no "DataLoader worker is killed by signal"
    for worker in ("w0", "w1"):
        blocked = {int(s) for s in (tmp_path / worker).read_text().split(",") if s}
        assert {int(s) for s in STOP_SIGNALS} <= blocked  # a signal before worker_init_fn stays pending
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the trainer's own mask is restored
    assert len(ShieldedLoader(loader)) == 4

