"""Token MLPs of the transformer models: plain and with a depthwise conv on the token grid.

Tokens are (B, N, C) in row-major order of an (H, W) grid. Submodule names (``fc1``,
``dwconv.dwconv``, ``fc2``) follow the Wave-ViT reference so its checkpoints load.
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["DWConvMlp", "Mlp", "TokenDWConv"]


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on tokens (the class-attention block's MLP)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TokenDWConv(nn.Module):
    """Depthwise 3x3 conv (with bias) applied to (B, N, C) tokens laid out on an (H, W) grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, size[0], size[1])
        return self.dwconv(x).flatten(2).transpose(1, 2)


class DWConvMlp(nn.Module):
    """PVTv2-style MLP: Linear -> depthwise 3x3 conv on the token grid -> GELU -> Linear.

    Args:
        dim: token width C.
        hidden_dim: expanded width (C x mlp ratio).
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = TokenDWConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``x``: (B, H*W, C) tokens; ``size``: (H, W)."""
        return self.fc2(self.act(self.dwconv(self.fc1(x), size)))
