"""The size policy shared by every model: pad at the bottom/right, run, crop back.

Wavelet pyramids and strided stems need spatial sizes divisible by some factor m
(2^level for a level-L WaveMix block, stem stride x 4 for segmentation). Rather than
failing like the public code, models zero-pad the map at the bottom and right edges to
the next multiple of m, run, and crop dense outputs back to the original size. On sizes
already divisible nothing is padded, so results equal the reference exactly there.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ["pad_to_multiple", "crop_to"]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Zero-pad the last two dims of ``x`` up to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)


def crop_to(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of ``x`` to ``size`` (a no-op when they already match)."""
    if x.shape[-2] == size[0] and x.shape[-1] == size[1]:
        return x
    return x[..., : size[0], : size[1]]
