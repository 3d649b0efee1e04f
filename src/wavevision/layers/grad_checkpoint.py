"""Activation (gradient) checkpointing of one block, for ``model.set_grad_checkpointing()``.

A checkpointed block keeps only its input during the forward pass and runs again in the
backward pass to rebuild what its backward needs (``torch.utils.checkpoint``, non-reentrant):
a training step then holds one block's activations at a time instead of every block's.
The recomputation draws the same random numbers (dropout masks, drop path) because the RNG
state is restored, so gradients equal the plain model's. BatchNorm layers in training mode
would update their running statistics a second time during the recomputation; their
buffers are restored afterwards, so they are updated once per step, as without checkpointing.
The memory-lean paths (:mod:`wavevision.layers.lean`) run inside the checkpointed block, where
the lean MLP keeps even less (:func:`~wavevision.layers.lean.in_checkpoint`).

Blocks are checkpointed in segments (a segment keeps only its input). In backward the
segments are recomputed last to first, and while segment k (counted from the first) is
recomputed, the inputs of segments 0..k are still kept: that phase peaks at about
``k + 1 + kept_ratio * length_k`` block inputs (plus what any block's backward needs), where
``kept_ratio`` is what one block keeps for backward in units of its input. Before it, the
head's backward runs while all m segment inputs are kept: about ``m + head`` (``head``: what
the head needs beyond a block's backward; a classifier's pooled head needs less, a dense
decoder at 2-4x the resolution more). :func:`balanced_segments` minimises the larger of the
two: long segments first, single blocks last (16 WaveMix-192 level-3 blocks: 4 3 3 2 2 1 1),
and few long segments behind a large decoder (16 WaveMix-Seg blocks: 8 8).
"""
from __future__ import annotations

import contextlib
import math
from functools import lru_cache, partial
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ..ops._fx import is_tracing
from ..utils.validate import check_float, check_int
from .lean import in_checkpoint

__all__ = ["balanced_segments", "checkpoint_block", "checkpointing_applies", "segment_bounds"]


def checkpointing_applies(enabled: bool) -> bool:
    """Whether a model with checkpointing ``enabled`` checkpoints this call: gradients on, not traced."""
    return enabled and torch.is_grad_enabled() and not is_tracing() and not torch.jit.is_scripting()


class _KeepBatchNormStats:
    """Restores the running statistics of ``module``'s training BatchNorms on exit."""

    def __init__(self, module: nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
        self.saved: list[list[torch.Tensor | None]] = []

    def __enter__(self) -> "_KeepBatchNormStats":
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
    # forward and recomputation must keep the same tensors: the lean MLP keeps less in both
    return in_checkpoint(), _recomputation(module)


def checkpoint_block(fn: Callable[..., torch.Tensor], module: nn.Module, *args: Any) -> torch.Tensor:
    """``fn(*args)`` (which runs ``module``) keeping only its inputs for backward.

    Args:
        fn: the block's computation, e.g. ``lambda x: block(x, residual=x)``.
        module: the module ``fn`` runs (its BatchNorm statistics are kept from double updates).
        *args: the inputs (tensors and constants).
    """
    return checkpoint(fn, *args, use_reentrant=False, context_fn=partial(_contexts, module))


def balanced_segments(n: int, kept_ratio: float, head: float = 0.0) -> tuple[int, ...]:
    """Lengths, first to last, of checkpointed segments of ``n`` blocks with the lowest estimated peak.

    The estimate (module docstring) is ``max(max_k (k + 1 + kept_ratio * length_k), m + head)``
    block inputs for m segments; among the arrangements that reach the lowest, the one with the
    lowest block phase, then the fewest segments (longest first), is returned.

    Args:
        n: number of blocks, >= 1.
        kept_ratio: activations one block keeps for backward, in units of its input (> 0).
        head: what the head's backward needs beyond a block's backward, in block inputs.
    """
    n = check_int("n", n, min=1)
    ratio = round(check_float("kept_ratio", kept_ratio, gt=0.0), 3)
    return _balanced_segments(n, ratio, round(check_float("head", head), 3))


@lru_cache(maxsize=64)
def _balanced_segments(n: int, ratio: float, head: float) -> tuple[int, ...]:
    def fill(peak: float) -> Optional[tuple[int, ...]]:
        """The fewest segments (longest first) whose block phase stays under ``peak``; None if none do."""
        lengths: list[int] = []
        while sum(lengths) < n:
            longest = math.floor((peak - len(lengths) - 1) / ratio + 1e-9)
            if longest < 1:
                return None
            lengths.append(min(longest, n - sum(lengths)))
        return tuple(lengths)

    def block_phase(lengths: tuple[int, ...]) -> float:
        return max(k + 1 + ratio * length for k, length in enumerate(lengths))

    # the block phase's possible values; one segment of n blocks fits under the largest
    peaks = sorted({k + 1 + ratio * length for k in range(n) for length in range(1, n + 1)})
    best: list[tuple[float, float, int, tuple[int, ...]]] = []
    for m in range(1, n + 1):  # the lowest block phase with at most m segments (monotonic in the peak)
        lo, hi = 0, len(peaks) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            fit = fill(peaks[mid])
            lo, hi = (lo, mid) if fit is not None and len(fit) <= m else (mid + 1, hi)
        lengths = fill(peaks[lo])
        assert lengths is not None
        phase = block_phase(lengths)
        best.append((max(phase, len(lengths) + head), phase, len(lengths), lengths))
    return min(best)[3]


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
