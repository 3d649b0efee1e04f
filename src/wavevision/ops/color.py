"""RGB <-> YCbCr of ITU-R BT.601, the colour space of the super-resolution literature.

Two ranges of the same matrix, on images in [0, 1]:

* studio range (the default; MATLAB's ``rgb2ycbcr``, the SR benchmarks' protocol): Y in [16, 235] / 255,
  Cb and Cr in [16, 240] / 255: ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``.
* full range (``full_range=True``; JPEG / kornia's ``rgb_to_ycbcr``, what the WaveMixSR authors trained on): Y in
  [0, 1], ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = 0.5 + 0.564 (B - Y)``, ``Cr = 0.5 + 0.713 (R - Y)``.

The inverse is the exact matrix inverse (a round trip returns the input to float rounding),
and nothing is clamped: values outside the RGB cube stay invertible.
"""
from __future__ import annotations

import torch

from ..utils.validate import check_bool

__all__ = ["rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb"]

# Rows Y, Cb, Cr; columns R, G, B; and the offsets, per range (on [0, 1] values).
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
_FULL = (
    (_KR, _KG, _KB),
    (-0.5 * _KR / (1 - _KB), -0.5 * _KG / (1 - _KB), 0.5),
    (0.5, -0.5 * _KG / (1 - _KR), -0.5 * _KB / (1 - _KR)),
)
_STUDIO = (
    (65.481 / 255, 128.553 / 255, 24.966 / 255),
    (-37.797 / 255, -74.203 / 255, 112.0 / 255),
    (112.0 / 255, -93.786 / 255, -18.214 / 255),
)
_OFFSETS = {False: (16 / 255, 128 / 255, 128 / 255), True: (0.0, 0.5, 0.5)}
_MATRICES = {False: _STUDIO, True: _FULL}
_INVERSES = {k: tuple(map(tuple, torch.linalg.inv(torch.tensor(m, dtype=torch.float64)).tolist()))
             for k, m in _MATRICES.items()}


def _check(img: torch.Tensor, what: str) -> None:
    if not isinstance(img, torch.Tensor) or img.dim() < 3 or img.shape[-3] != 3:
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise ValueError(f"{what} needs (..., 3, H, W) images, got {shape}; convert grayscale or RGBA images to RGB first")
    if not img.is_floating_point():
        raise TypeError(f"{what} needs floating-point images in [0, 1], got {img.dtype}; use img.float() / 255")


def _apply(img: torch.Tensor, matrix: tuple, offset: tuple | None, before: bool) -> torch.Tensor:
    """``matrix @ (img - offset)`` (``before``) or ``matrix @ img + offset`` over the channel axis."""
    w = torch.tensor(matrix, dtype=img.dtype, device=img.device)
    b = torch.tensor(offset, dtype=img.dtype, device=img.device).view(3, 1, 1)
    x = img - b if before else img
    y = torch.einsum("ij,...jhw->...ihw", w, x)
    return y if before else y + b


def rgb_to_ycbcr(img: torch.Tensor, *, full_range: bool = False) -> torch.Tensor:
    """YCbCr (BT.601) of ``(..., 3, H, W)`` RGB images in [0, 1].

    Args:
        img: RGB images, channels third from last.
        full_range: JPEG/kornia's full range instead of the studio range of the SR benchmarks.
    """
    full = check_bool("full_range", full_range)
    _check(img, "rgb_to_ycbcr")
    return _apply(img, _MATRICES[full], _OFFSETS[full], before=False)


def ycbcr_to_rgb(img: torch.Tensor, *, full_range: bool = False) -> torch.Tensor:
    """RGB of ``(..., 3, H, W)`` BT.601 YCbCr images: the exact inverse of :func:`rgb_to_ycbcr`.

    Args:
        img: YCbCr images (Y, Cb, Cr), channels third from last.
        full_range: the images use the full range (as :func:`rgb_to_ycbcr`'s flag).
    """
    full = check_bool("full_range", full_range)
    _check(img, "ycbcr_to_rgb")
    return _apply(img, _INVERSES[full], _OFFSETS[full], before=True)


def rgb_to_y(img: torch.Tensor, *, full_range: bool = False) -> torch.Tensor:
    """The luma Y ``(..., 1, H, W)`` of ``(..., 3, H, W)`` RGB images in [0, 1] (the first row of
    :func:`rgb_to_ycbcr`): ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``, the Y on which the
    super-resolution literature reports PSNR and SSIM, or ``0.299 R + 0.587 G + 0.114 B`` with
    ``full_range=True``. The one luma function of the package (the SR metrics use it)."""
    full = check_bool("full_range", full_range)
    _check(img, "rgb_to_y")
    w = torch.tensor(_MATRICES[full][0], dtype=img.dtype, device=img.device)
    return torch.einsum("j,...jhw->...hw", w, img).unsqueeze(-3) + _OFFSETS[full][0]
