"""Activation (gradient) checkpointing of one block, for ``model.set_grad_checkpointing()``.

A checkpointed block keeps only its input during the forward pass and runs again in the
backward pass to rebuild what its backward needs (``torch.utils.checkpoint``, non-reentrant):
a training step then holds one block's activations at a time instead of every block's.
The recomputation draws the same random numbers (dropout masks, drop path) because the RNG
state is restored, so gradients equal the plain model's. BatchNorm layers in training mode
would update their running statistics a second time during the recomputation; their
buffers are restored afterwards, so they are updated once per step, as without checkpointing.
The memory-lean paths (:mod:`wavevision.layers.lean`) run inside the checkpointed block as usual.
"""
from __future__ import annotations

import contextlib
from functools import partial
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from ..ops._fx import is_tracing

__all__ = ["checkpoint_block", "checkpointing_applies"]


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


def _contexts(module: nn.Module):
    return contextlib.nullcontext(), _KeepBatchNormStats(module)


def checkpoint_block(fn: Callable[..., torch.Tensor], module: nn.Module, *args: Any) -> torch.Tensor:
    """``fn(*args)`` (which runs ``module``) keeping only its inputs for backward.

    Args:
        fn: the block's computation, e.g. ``lambda x: block(x, residual=x)``.
        module: the module ``fn`` runs (its BatchNorm statistics are kept from double updates).
        *args: the inputs (tensors and constants).
    """
    return checkpoint(fn, *args, use_reentrant=False, context_fn=partial(_contexts, module))
