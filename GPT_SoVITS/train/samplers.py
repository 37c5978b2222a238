"""Length-bucketed batch sampler shared by both trainers (VITS / upstream ``DistributedBucketSampler`` idea).

Items are grouped by length into buckets, so a batch holds clips of similar length (little padding). Each
bucket is padded by repeating its own items to a multiple of ``batch_size × world_size``; every rank then gets
the same number of batches (DDP needs that). The order depends only on ``seed + epoch``, so a run stopped in
the middle of an epoch can skip exactly the batches it already did.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BucketPlan:
    """Items per bucket (indices into the dataset) and how many items fell outside every bucket."""

    buckets: tuple[tuple[int, ...], ...]
    dropped: int


def plan_buckets(lengths: Sequence[int], boundaries: Sequence[int]) -> BucketPlan:
    """Bucket ``i`` holds lengths in ``(boundaries[i], boundaries[i+1]]``; others are dropped (counted)."""
    if len(boundaries) < 2 or list(boundaries) != sorted(boundaries):
        raise ValueError(f"bucket boundaries must be at least two increasing numbers, got {list(boundaries)}")
    buckets: list[list[int]] = [[] for _ in range(len(boundaries) - 1)]
    dropped = 0
    for idx, length in enumerate(lengths):
        b = bisect.bisect_left(boundaries, length) - 1  # boundaries[b] < length <= boundaries[b + 1]
        if 0 <= b < len(buckets):
            buckets[b].append(idx)
        else:
            dropped += 1
    return BucketPlan(tuple(tuple(b) for b in buckets if b), dropped)


def uniform_boundaries(max_length: int, width: int) -> list[int]:
    """``0, width, 2·width, …`` up to and including the first value ≥ ``max_length``."""
    width = max(1, int(width))
    top = (max(1, max_length) + width - 1) // width * width
    return list(range(0, top + 1, width))


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields this rank's batches (lists of dataset indices) for the current epoch."""

    def __init__(self, lengths: Sequence[int], boundaries: Sequence[int], batch_size: int, rank: int = 0,
                 world_size: int = 1, seed: int = 1234) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.plan = plan_buckets(lengths, boundaries)
        if not self.plan.buckets:
            raise ValueError(f"no item fits the length buckets {list(boundaries)} (all {len(lengths)} left out)")
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's order; ``skip`` leaves out its first batches (resume inside an epoch)."""
        self.epoch, self.skip = epoch, skip

    def batches(self, epoch: int) -> list[list[int]]:
        """All of this rank's batches of ``epoch``, in order."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        group = self.batch_size * self.world_size
        global_batches: list[list[int]] = []
        for bucket in self.plan.buckets:
            order = [bucket[i] for i in torch.randperm(len(bucket), generator=g).tolist()]
            padded_len = -(-len(order) // group) * group
            order += [order[i % len(order)] for i in range(padded_len - len(order))]
            for start in range(0, padded_len, group):
                chunk = order[start:start + group]
                global_batches.append(chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size])
        return [global_batches[i] for i in torch.randperm(len(global_batches), generator=g).tolist()]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches(self.epoch)[self.skip:]

    def __len__(self) -> int:
        return len(self.batches(self.epoch)) - self.skip

    def batches_per_epoch(self) -> int:
        group = self.batch_size * self.world_size
        return sum(-(-len(b) // group) for b in self.plan.buckets)
