"""Stems that turn an image into the C-channel map the WaveMix blocks mix.

State-dict names follow the public ``wavemix`` package (``conv.0``, ``conv.1``, ...).
"""
from __future__ import annotations

import torch.nn as nn

__all__ = ["STEM_TYPES", "normalize_stem", "patchify_stem", "strided_stem"]

# 'pachify' is the public package's spelling; both are accepted.
STEM_TYPES = ("patchify", "pachify", "strided")


def normalize_stem(initial_conv: str) -> str:
    """Map the accepted spellings to ``"patchify"`` or ``"strided"``."""
    if initial_conv not in STEM_TYPES:
        raise ValueError(f"unknown initial_conv {initial_conv!r}; choose one of {STEM_TYPES}")
    return "patchify" if initial_conv in ("patchify", "pachify") else "strided"


def patchify_stem(in_chans: int, dim: int, patch_size: int) -> nn.Sequential:
    """conv3x3(in -> C/4), conv3x3(C/4 -> C/2), conv(C/2 -> C, kernel = stride = patch), GELU, BN."""
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    return nn.Sequential(
        nn.Conv2d(in_chans, dim // 4, 3, 1, 1),
        nn.Conv2d(dim // 4, dim // 2, 3, 1, 1),
        nn.Conv2d(dim // 2, dim, patch_size, patch_size),
        nn.GELU(),
        nn.BatchNorm2d(dim),
    )


def strided_stem(in_chans: int, dim: int, stride: int) -> nn.Sequential:
    """conv3x3(in -> C/2, stride), conv3x3(C/2 -> C, stride); stride 1 is WaveMix-Lite's stem."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return nn.Sequential(
        nn.Conv2d(in_chans, dim // 2, 3, stride, 1),
        nn.Conv2d(dim // 2, dim, 3, stride, 1),
    )
