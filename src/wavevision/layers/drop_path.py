"""Stochastic depth: drop a residual branch per sample while training."""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["DropPath", "drop_path"]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``p`` and rescale the rest by 1 / (1 - p).

    The identity when ``p == 0`` or not ``training``. Uses torch's global RNG.
    """
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (no parameters, nothing in the state dict).

    Args:
        p: probability of dropping a sample's branch, in [0, 1).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


torch.fx.wrap("drop_path")  # torch.fx: one graph node (its mask shape follows the input's rank)
