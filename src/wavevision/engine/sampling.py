"""Deterministic data order and augmentation, so that a resumed run sees exactly the batches an
uninterrupted one would: an epoch's order depends only on the seed and the epoch, a batch's
augmentation only on the seed, the epoch and the batch's first sample (and, with repeated
augmentation, the process, so that an image's copies are augmented differently)."""
from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..utils.device import is_cuda
from .distributed import DistContext

__all__ = ["ListSampler", "SeededSamples", "default_workers", "epoch_indices", "loader_settings", "repeated_indices",
           "samples_per_rank", "stream_indices"]

# timm's RepeatAugSampler (DeiT's RASampler) keeps an epoch at the dataset's length, rounded down to this many images.
_SELECTED_ROUND = 256


class SeededSamples(Dataset):
    """Reads each batch with torch's, Python's and NumPy's generators seeded from (seed, epoch, the
    batch's first index).

    Augmentation then depends only on the seed, the epoch and the batch's samples, not on
    worker processes or on where a run was resumed; the global generator is saved and restored
    around each read (Python's and NumPy's too), so dropout's and Mixup's random streams are left alone.
    """

    def __init__(self, dataset: Dataset, seed: int, salt: int = 0) -> None:
        self.dataset, self.seed, self.epoch, self.salt = dataset, seed, 0, salt

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int] | list[tuple[int, int]]) -> list:
        """The samples of ``indices``: dataset indices, or ``(epoch, index)`` pairs (what
        :class:`ListSampler` gives a loader that lives across epochs, whose worker processes keep
        the copy of this object they started with, ``epoch`` included)."""
        epoch = self.epoch
        if indices and isinstance(indices[0], tuple):
            epoch = int(indices[0][0])
            flat = [int(i) for _, i in indices]
        else:
            flat = cast("list[int]", indices)
        batch_seed = ((self.seed * 1_000_003 + epoch) * 2_147_483_647 + int(flat[0])
                      + self.salt * 1_000_000_007) % (2**63 - 1)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(batch_seed)
                # timm's augmentations draw from Python's and NumPy's generators: seeded alike, then put back
                random.seed(batch_seed)
                np.random.seed(batch_seed % 2**32)
                return [self.dataset[i] for i in flat]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class ListSampler(Sampler[Any]):
    """Exactly these indices, in this order; :attr:`indices` may be replaced between epochs (a loader
    with persistent workers keeps its sampler and reads it anew at each ``iter``)."""

    def __init__(self, indices: Sequence[Any]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.indices))

    def __len__(self) -> int:
        return len(self.indices)


def samples_per_rank(n: int, world_size: int, repeats: int = 1) -> int:
    """How many samples each process reads per epoch from :func:`epoch_indices`."""
    if repeats == 1:
        return math.ceil(n / world_size)  # DistributedSampler pads every rank to this
    selected = n // _SELECTED_ROUND * _SELECTED_ROUND // world_size if n >= _SELECTED_ROUND else math.ceil(n / world_size)
    return min(selected, math.ceil(n * repeats / world_size))


def repeated_indices(n: int, *, num_replicas: int, rank: int, seed: int, epoch: int, repeats: int) -> list[int]:
    """Repeated augmentation (timm's ``RepeatAugSampler``, DeiT's ``RASampler``): a permutation drawn
    from seed + epoch, each index written ``repeats`` times in a row and dealt round-robin to the
    processes (padded by wrapping), so an image's copies go to different processes; each process
    then keeps :func:`samples_per_rank` of its share, so an epoch stays the dataset's length."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).repeat_interleave(repeats).tolist()
    total = math.ceil(n * repeats / num_replicas) * num_replicas
    mine = [order[i % len(order)] for i in range(rank, total, num_replicas)]
    return mine[: samples_per_rank(n, num_replicas, repeats)]


def epoch_indices(n: int, ctx: DistContext, seed: int, epoch: int, repeats: int = 1) -> list[int]:
    """This process's sample order for ``epoch`` (``DistributedSampler``: shuffled from seed + epoch,
    padded so every process gets as many samples; with ``repeats`` > 1 :func:`repeated_indices`)."""
    if repeats > 1:
        return repeated_indices(n, num_replicas=ctx.world_size, rank=ctx.rank, seed=seed, epoch=epoch, repeats=repeats)
    sampler: DistributedSampler = DistributedSampler(cast(Any, range(n)), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def stream_indices(n: int, ctx: DistContext, seed: int, start: int, count: int, repeats: int = 1) -> list[tuple[int, int]]:
    """``count`` ``(pass, index)`` pairs of this process's endless stream of samples from position ``start``:
    pass after pass over the data, pass ``k`` in the order :func:`epoch_indices` gives epoch ``k`` (an
    iteration-based run, MMSegmentation's infinite sampler, cut into validation intervals)."""
    per_pass = samples_per_rank(n, ctx.world_size, repeats)
    out: list[tuple[int, int]] = []
    while len(out) < count:
        pass_no, offset = divmod(start + len(out), per_pass)
        order = epoch_indices(n, ctx, seed, pass_no, repeats)[:per_pass]
        out.extend((pass_no, i) for i in order[offset: offset + count - len(out)])
    return out


# Loader workers chosen for an accelerator: at most this many per process (decoding JPEGs and timm's
# augmentation scale with cores, but beyond ~8 a process mostly waits on the accelerator or the disk).
_MAX_AUTO_WORKERS = 8
_PREFETCH_FACTOR = 4


def default_workers(device: torch.device) -> int:
    """Loader workers when none are asked for: 0 on CPU (the training itself uses the cores, and
    tests assume it), else this process's share of the usable cores (``os.sched_getaffinity``,
    divided by torchrun's ``LOCAL_WORLD_SIZE``) less one for the training loop, 1 to 8."""
    if device.type == "cpu":
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, min(_MAX_AUTO_WORKERS, cores // local - 1))


def loader_settings(num_workers: int | None, device: torch.device, *, persistent: bool = False) -> dict[str, Any]:
    """DataLoader keywords: ``num_workers`` (None: :func:`default_workers`), pinned memory for CUDA
    (asynchronous copies with ``non_blocking``), and a deeper prefetch (4 batches a worker) with workers;
    ``persistent``: the workers outlive an epoch (``persistent_workers``, for a loader used every epoch,
    so no epoch starts by forking workers and re-opening files)."""
    workers = default_workers(device) if num_workers is None else num_workers
    out: dict[str, Any] = {"num_workers": workers, "pin_memory": is_cuda(device)}
    if workers > 0:
        out["prefetch_factor"] = _PREFETCH_FACTOR
        if persistent:
            out["persistent_workers"] = True
    return out
