"""Activation (gradient) checkpointing of one block, for ``model.set_grad_checkpointing()``.

A checkpointed block keeps only its input during the forward pass and runs again in the
backward pass to rebuild what its backward needs (``torch.utils.checkpoint``, non-reentrant):
a training step then holds one block's activations at a time instead of every block's.
The recomputation draws the same random numbers (dropout masks, drop path) because the RNG
state is restored, so gradients equal the plain model's. BatchNorm layers in training mode
would update their running statistics a second time during the recomputation; their
buffers are restored afterwards, so they are updated once per step, as without checkpointing.

Blocks are checkpointed in segments (a segment keeps only its input): :func:`checkpoint_seq`
runs a sequence of steps ``x = step(x)`` so, timm's helper of the same name without the
dependency. The plain models use segments of a fixed length; :func:`wavevision.accel.accelerate`
sizes them from a memory model of the blocks and the head (:mod:`wavevision.accel.memory`).
Code that keeps less inside a checkpointed segment asks :func:`inside_checkpoint`.
"""
from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ..ops._fx import is_tracing

__all__ = ["checkpoint_block", "checkpoint_seq", "checkpointing_applies", "in_checkpoint", "inside_checkpoint",
           "segment_bounds"]

_state = threading.local()  # per thread, like autograd's grad mode


@contextlib.contextmanager
def in_checkpoint() -> Iterator[None]:
    """Marks a checkpointed segment's forward and its recomputation (``torch.utils.checkpoint``
    needs both to keep the same tensors), for code that keeps less there (:func:`inside_checkpoint`)."""
    previous = getattr(_state, "in_checkpoint", False)
    _state.in_checkpoint = True
    try:
        yield
    finally:
        _state.in_checkpoint = previous


def inside_checkpoint() -> bool:
    """Whether this thread runs inside a checkpointed segment (forward or recomputation)."""
    return getattr(_state, "in_checkpoint", False)


def checkpointing_applies(enabled: bool) -> bool:
    """Whether a model with checkpointing ``enabled`` checkpoints this call: gradients on, not traced."""
    return enabled and torch.is_grad_enabled() and not is_tracing() and not torch.jit.is_scripting()


class _KeepBatchNormStats:
    """Restores the running statistics of ``module``'s training BatchNorms on exit."""

    def __init__(self, module: nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
        self.saved: list[list[torch.Tensor | None]] = []

    def __enter__(self) -> _KeepBatchNormStats:
        self.saved = [[None if b is None else b.detach().clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)]
                      for m in self.norms]
        return self

    def __exit__(self, *exc: Any) -> None:
        with torch.no_grad():
            for m, values in zip(self.norms, self.saved):
                for buf, value in zip((m.running_mean, m.running_var, m.num_batches_tracked), values):
                    if buf is not None and value is not None:
                        buf.copy_(value)


@contextlib.contextmanager
def _recomputation(module: nn.Module):
    with _KeepBatchNormStats(module), in_checkpoint():
        yield


def _contexts(module: nn.Module):
    # forward and recomputation must keep the same tensors: both run under in_checkpoint
    return in_checkpoint(), _recomputation(module)


def checkpoint_block(fn: Callable[..., torch.Tensor], module: nn.Module, *args: Any) -> torch.Tensor:
    """``fn(*args)`` (which runs ``module``) keeping only its inputs for backward.

    Args:
        fn: the block's computation, e.g. ``lambda x: x + block(x)``.
        module: the module ``fn`` runs (its BatchNorm statistics are kept from double updates).
        *args: the inputs (tensors and constants).
    """
    return checkpoint(fn, *args, use_reentrant=False, context_fn=partial(_contexts, module))


def segment_bounds(n: int, lengths: Sequence[int] | int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive segments covering ``n`` blocks: of the given ``lengths``
    (the last one cut at ``n``), or all of one length when an int is given."""
    if isinstance(lengths, int):
        lengths = [lengths] * math.ceil(n / lengths)
    bounds, start = [], 0
    for length in lengths:
        if start >= n:
            break
        bounds.append((start, min(n, start + length)))
        start += length
    if start < n:
        raise ValueError(f"segments of lengths {list(lengths)} do not cover {n} blocks")
    return bounds


def _run(steps: Sequence[Callable[[torch.Tensor], torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    for step in steps:
        x = step(x)
    return x


def checkpoint_seq(
    steps: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    x: torch.Tensor,
    every: Sequence[int] | int = 1,
    modules: Iterable[nn.Module] | None = None,
) -> torch.Tensor:
    """``x = step(x)`` for each step, checkpointed in consecutive segments (timm's ``checkpoint_seq``).

    Args:
        steps: the blocks (modules) or per-block callables, in order.
        x: the first step's input.
        every: steps per segment, or the segments' lengths first to last (:func:`segment_bounds`).
        modules: the module each step runs, where ``steps`` are not modules themselves (their
            BatchNorm statistics are kept from double updates during the recomputation).
    """
    owners: list[Any] = list(steps) if modules is None else list(modules)
    for start, stop in segment_bounds(len(steps), every):
        x = checkpoint_block(partial(_run, steps[start:stop]), nn.ModuleList(owners[start:stop]), x)
    return x
