"""Multi-process training through ``torch.distributed``, set up from torchrun's environment.

``torchrun --nproc_per_node=N -m wavevision train ...`` starts N processes with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; :func:`setup`
reads them, joins the process group (NCCL on accelerators, gloo on CPU) and picks this
process's device. A plain ``python`` run is a world of one and touches no process group.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..utils.device import resolve_device

__all__ = [
    "DistContext", "ShardSampler", "all_gather_object", "barrier", "broadcast_object", "on_main", "setup", "teardown",
]


@dataclass
class DistContext:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # True when :func:`setup` created the process group

    @property
    def is_main(self) -> bool:
        """Only the main process writes files, prints and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer (set by torchrun?)") from None


def setup(device: str = "auto", backend: str | None = None) -> DistContext:
    """Join the process group described by torchrun's environment variables, if any.

    Args:
        device: ``auto``, ``cpu`` or an accelerator; with several processes per machine each
            takes the accelerator of index ``LOCAL_RANK``.
        backend: ``nccl`` or ``gloo``; default NCCL for accelerators, gloo for CPU.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device)
    if world > 1 and dev.type != "cpu" and dev.index is not None:
        dev = resolve_device(f"{dev.type}:{local_rank}")
    if world <= 1 or not dist.is_available():
        return DistContext(device=dev)
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns_group=False)
    if backend is None:
        backend = "gloo" if dev.type == "cpu" else "nccl"
    if dev.type != "cpu" and hasattr(torch, dev.type):
        getattr(torch, dev.type).set_device(dev)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, dev, owns_group=True)


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """``obj`` of the main process, on every process."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(ctx: DistContext, obj: Any) -> list[Any]:
    """One ``obj`` per process, in rank order."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


T = TypeVar("T")


def on_main(ctx: DistContext, fn: Callable[[], T]) -> T:
    """``fn()`` run by the main process only; every process returns its result or raises its error.

    Without this, an error on the main process (a locked run directory, say) would leave the
    others waiting forever at their next collective call.
    """
    if not ctx.distributed:
        return fn()
    result, error = None, None
    if ctx.is_main:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - handed to every process, then raised
            error = e
    result, failure = broadcast_object(ctx, (result, None if error is None else (type(error), str(error))))
    if error is not None:
        raise error
    if failure is not None:
        kind, message = failure
        try:
            raised = kind(message)
        except Exception:  # noqa: BLE001 - a type that takes other arguments
            raised = RuntimeError(message)
        raise raised
    return result


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index starting at ``rank``, in order, without padding.

    Used for evaluation: unlike ``DistributedSampler`` it repeats no sample, so sums of
    per-sample results over the processes equal one pass over the whole set.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
