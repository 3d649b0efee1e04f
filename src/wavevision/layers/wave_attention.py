"""Attention layers of Wave-ViT: wavelet attention, multi-head self-attention, class attention.

Wavelet attention (Wave-ViT, ECCV 2022) keeps the queries at full resolution and takes keys
and values from a Haar-downsampled map: the tokens are reduced to C/4 channels, transformed
by one Haar level (band-major layout, C channels at half size), filtered by a 3x3 conv, then
strided by ``sr_ratio`` before the key/value projection. The filtered bands also go through
the inverse Haar transform (C/4 channels at full size) and join the attention output in the
projection. Submodule names follow the reference so its checkpoints load; the reference's
float16 filter buffers (``dwt.*``, ``idwt.filters``) are not kept: the Haar transform is
computed (``wavevision.ops.haar``), so it follows the input's dtype and device.

``wavelet=`` swaps the Haar transform for any discrete PyWavelets wavelet (same parameters;
``mode`` pads the longer filters, default ``"periodization"`` so the bands keep half the
size): :mod:`wavevision.ops.transform` picks the transform.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.transform import (
    DEFAULT_MODE,
    check_wavelet,
    wavelet_bank,
    wavelet_dwt2,
    wavelet_idwt2,
)

__all__ = ["Attention", "ClassAttention", "WaveAttention", "attention"]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v for (B, heads, N, d) queries and (B, heads, M, d) keys/values.

    On CPU the product is written out (q @ k^T, softmax, @ v) exactly as the reference does,
    because ``torch.utils.flop_counter`` has no formula for the fused CPU kernel of
    ``F.scaled_dot_product_attention`` (torch 2.13 counts it as 0): written out, the two
    matrix products are counted like the reference's and ``count_macs`` stays faithful. On
    accelerators the fused kernel is used for its memory and speed; the counter's formulas
    for the flash/efficient/cuDNN kernels count the same 2 x N x M x d multiply-accumulates.
    """
    if q.device.type == "cpu":
        attn = torch.matmul(q, k.transpose(-2, -1)) * scale
        return torch.matmul(attn.softmax(dim=-1), v)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def _check_heads(dim: int, num_heads: int) -> None:
    for name, value in (("dim", dim), ("num_heads", num_heads)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if dim % num_heads:
        divisors = [d for d in range(1, min(dim, 64) + 1) if dim % d == 0]
        raise ValueError(
            f"embed dim {dim} is not divisible by num_heads={num_heads}; use a head count that divides it "
            f"({', '.join(map(str, divisors))}) or change the embed dim"
        )


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C / heads)."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class WaveAttention(nn.Module):
    """Wavelet multi-head attention on (B, H*W, C) tokens.

    Args:
        dim: token width C (a multiple of 4 and of ``num_heads``).
        num_heads: attention heads.
        sr_ratio: kernel = stride of the key/value conv on the half-size Haar map
            (1: no conv, keys/values at half resolution).
        wavelet: ``"haar"`` (the reference, fast path) or a discrete PyWavelets name
            (``"db2"``, ``"sym4"``, ``"bior2.2"``, ...).
        mode: padding mode of filters longer than Haar (:mod:`wavevision.ops.transform`).
    """

    wavelet_bank: torch.Tensor | None  # a buffer (registered in __init__)

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, *, wavelet: str = "haar",
                 mode: str = DEFAULT_MODE) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        if dim % 4:
            raise ValueError(f"wavelet attention needs a dim divisible by 4 (C/4 channels go through the Haar transform), got {dim}")
        if not isinstance(sr_ratio, int) or isinstance(sr_ratio, bool) or sr_ratio < 1:
            raise ValueError(f"sr_ratio must be an integer >= 1, got {sr_ratio!r}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.sr_ratio = sr_ratio
        self.wavelet, self.mode = check_wavelet(wavelet, mode)
        # None for Haar (the fast path); else the filters, moved with the layer, in no state dict.
        self.register_buffer("wavelet_bank", wavelet_bank(self.wavelet, self.mode), persistent=False)
        self.reduce = nn.Sequential(nn.Conv2d(dim, dim // 4, 1), nn.BatchNorm2d(dim // 4), nn.ReLU(inplace=True))
        self.filter = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.BatchNorm2d(dim), nn.ReLU(inplace=True))
        self.kv_embed = nn.Conv2d(dim, dim, sr_ratio, sr_ratio) if sr_ratio > 1 else nn.Identity()
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim))
        self.proj = nn.Linear(dim + dim // 4, dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``x``: (B, H*W, C) tokens of an (H, W) grid; returns (B, H*W, C)."""
        b, n, c = x.shape
        h, w = size
        q = _split_heads(self.q(x), self.num_heads)
        grid = x.transpose(1, 2).reshape(b, c, h, w)
        bands = self.filter(wavelet_dwt2(self.reduce(grid), self.wavelet_bank, self.mode, "band"))  # (B, C, H/2, W/2)
        local = wavelet_idwt2(bands, self.wavelet_bank, self.mode, "band", (h, w)).flatten(2).transpose(1, 2)  # (B, N, C/4)
        kv = self.kv(self.kv_embed(bands).flatten(2).transpose(1, 2))  # (B, M, 2C)
        k, v = _split_heads(kv, 2 * self.num_heads).chunk(2, dim=1)
        out = _merge_heads(attention(q, k, v, self.scale))
        return self.proj(torch.cat([out, local], dim=-1))


class Attention(nn.Module):
    """Multi-head self-attention with separate query and key/value projections (``q``, ``kv``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """``x``: (B, N, C); ``size`` is accepted for a uniform block interface and unused."""
        q = _split_heads(self.q(x), self.num_heads)
        k, v = _split_heads(self.kv(x), 2 * self.num_heads).chunk(2, dim=1)
        return self.proj(_merge_heads(attention(q, k, v, self.scale)))


class ClassAttention(nn.Module):
    """Class attention (CaiT-style): the first token queries all tokens; returns its update (B, 1, C)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.kv = nn.Linear(dim, 2 * dim)
        self.q = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, v = _split_heads(self.kv(x), 2 * self.num_heads).chunk(2, dim=1)
        q = _split_heads(self.q(x[:, :1]), self.num_heads)
        return self.proj(_merge_heads(attention(q, k, v, self.scale)))


for _leaf in ("attention", "wavelet_dwt2", "wavelet_idwt2"):  # torch.fx: run-time checks and device choice as one node
    torch.fx.wrap(_leaf)
