"""Model size and arithmetic: parameters and multiply-accumulates (MACs).

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass and
divided by 2 (the counter reports FLOPs = 2 x MACs for convolutions and matrix products), the
way the reference numbers in ``REFERENCE.md`` were measured. Element-wise work (activations,
norms, the Haar transform's additions) is not counted, as usual in the literature.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = ["count_macs", "count_parameters", "counted_part"]

InputLike = torch.Tensor | Sequence[int]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _as_input(model: nn.Module, inputs: InputLike) -> torch.Tensor:
    if isinstance(inputs, torch.Tensor):
        return inputs
    size = tuple(int(s) for s in inputs)
    if len(size) == 2:  # (H, W): batch 1, the model's input channels
        size = (1, int(getattr(model, "in_chans", 3)), *size)
    elif len(size) == 3:  # (C, H, W)
        size = (1, *size)
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"input size must be (H, W), (C, H, W) or (B, C, H, W) of positive ints, got {inputs!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.zeros(size, device=device, dtype=dtype)


def counted_part(model: nn.Module) -> contextlib.AbstractContextManager:
    """Where a model's full forward costs what its outputs decide (a detector's RoI heads run on
    the proposals that survive), its ``dense_only()`` context: the part the image size fixes."""
    dense = getattr(model, "dense_only", None)
    return dense() if callable(dense) else contextlib.nullcontext()


def count_macs(model: nn.Module, inputs: InputLike) -> int:
    """Multiply-accumulates of one eval-mode forward pass.

    Args:
        model: any module.
        inputs: a tensor, or a size ``(H, W)`` / ``(C, H, W)`` / ``(B, C, H, W)`` (zeros on the
            model's device; batch 1 and ``model.in_chans`` channels when not given).

    Returns:
        ``FlopCounterMode`` total FLOPs // 2, for the whole batch.
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = _as_input(model, inputs)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counted_part(model), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2
