"""``nn.Module`` wrappers of the transforms: multi-level DWT and its inverse.

Haar with ``mode="zero"`` takes the fast path of :mod:`wavevision.ops.haar` (memory-free
autograd); every other wavelet or mode uses the general filter bank of
:mod:`wavevision.ops.filterbank` (PyWavelets supplies the coefficients). Filters are
non-persistent buffers, so ``.to()``, ``.half()`` and DDP move them and state dicts do not
hold them.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from . import filterbank as fb
from .haar import _check_layout, haar_wavedec2, haar_waverec2

__all__ = ["DWT2d", "IDWT2d", "pack_bands", "unpack_bands"]

_HAAR_NAMES = ("haar", "db1")


def pack_bands(ll: torch.Tensor, highs: torch.Tensor, layout: str = "wavemix") -> torch.Tensor:
    """(B, C, h, w) approximation + (B, C, 3, h, w) details -> one (B, 4C, h, w) tensor in ``layout``."""
    _check_layout(layout)
    det = highs.flatten(1, 2) if layout == "wavemix" else highs.transpose(1, 2).flatten(1, 2)
    return torch.cat([ll, det], dim=1)


def unpack_bands(y: torch.Tensor, layout: str = "wavemix") -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_bands`."""
    _check_layout(layout)
    c = y.shape[1] // 4
    ll, det = y[:, :c], y[:, c:]
    highs = det.unflatten(1, (c, 3)) if layout == "wavemix" else det.unflatten(1, (3, c)).transpose(1, 2)
    return ll, highs


class _WaveletModule(nn.Module):
    def __init__(self, wave: str, mode: str, layout: str) -> None:
        super().__init__()
        _check_layout(layout)
        if mode not in fb.WAVELET_MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {fb.WAVELET_MODES}")
        self.wave = wave
        self.mode = mode
        self.layout = layout
        self.fast_haar = isinstance(wave, str) and wave in _HAAR_NAMES and mode == "zero"
        # Kept in float64 (exact coefficients) until .to()/.half() says otherwise; each call casts to the input.
        self.register_buffer("filters", fb.filter_bank(wave, dtype=torch.float64), persistent=False)

    def extra_repr(self) -> str:
        return f"wave={self.wave!r}, mode={self.mode!r}, layout={self.layout!r}"


class DWT2d(_WaveletModule):
    """Multi-level 2D DWT.

    Args:
        wave: wavelet name (``"haar"`` needs nothing else; others need PyWavelets).
        levels: number of levels (>= 1).
        mode: ``"zero"``, ``"symmetric"``, ``"reflect"``, ``"periodization"``, ...
        layout: ``"wavemix"`` or ``"band"`` channel order (see :mod:`wavevision.ops.haar`).

    ``forward(x)`` returns a list of ``levels`` tensors, finest first; entry j holds level
    j+1's approximation followed by its three detail bands, (B, 4C, h_j, w_j).
    """

    def __init__(self, wave: str = "haar", levels: int = 1, mode: str = "zero", layout: str = "wavemix") -> None:
        super().__init__(wave, mode, layout)
        if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
        self.levels = levels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.fast_haar:
            return haar_wavedec2(x, self.levels, self.layout)
        out: list[torch.Tensor] = []
        cur = x
        for _ in range(self.levels):
            cur, highs = fb.dwt2(cur, self.filters, mode=self.mode)
            out.append(pack_bands(cur, highs, self.layout))
        return out

    def extra_repr(self) -> str:
        return f"levels={self.levels}, " + super().extra_repr()


class IDWT2d(_WaveletModule):
    """Inverse of :class:`DWT2d`: uses the coarsest approximation and every level's details.

    ``forward(coeffs, size=None)``: ``size`` is the original (H, W); the output is cropped to it.
    """

    def __init__(self, wave: str = "haar", mode: str = "zero", layout: str = "wavemix") -> None:
        super().__init__(wave, mode, layout)

    def forward(self, coeffs: Sequence[torch.Tensor], size: tuple[int, int] | None = None) -> torch.Tensor:
        if len(coeffs) == 0:
            raise ValueError("IDWT2d needs at least one level of coefficients")
        if self.fast_haar:
            return haar_waverec2(coeffs, self.layout, size)
        unpacked = [unpack_bands(c, self.layout) for c in coeffs]
        pyramid: list = [unpacked[-1][0]] + [highs for _, highs in reversed(unpacked)]
        y = fb.waverec2(pyramid, self.filters, mode=self.mode)
        if size is not None:
            y = y[..., : size[0], : size[1]]
        return y
