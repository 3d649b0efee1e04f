"""Differentiable 2D wavelet transforms.

- :mod:`.haar`: the fast Haar path used by the models (memory-free autograd, two layouts).
- :mod:`.filterbank`: any PyWavelets wavelet and padding mode, matching ``pywt.wavedec2``.
- :mod:`.modules`: ``DWT2d`` / ``IDWT2d`` modules over both (filters are non-persistent buffers).
- :mod:`.padding`: the pad-then-crop size policy shared by every model.
- :mod:`.transform`: which transform a layer's ``wavelet=`` / ``mode=`` choice runs (Haar fast path or filter bank).
- :mod:`.color`: RGB <-> YCbCr (ITU-R BT.601, studio or full range) for super-resolution.
"""
from __future__ import annotations

from .color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from .filterbank import WAVELET_MODES, dwt2, filter_bank, idwt2, wavedec2, wavelet_filters, waverec2
from .haar import HAAR_LAYOUTS, haar_dwt2, haar_idwt2, haar_wavedec2, haar_waverec2
from .modules import DWT2d, IDWT2d, pack_bands, unpack_bands
from .padding import crop_to, pad_to_multiple
from .transform import check_wavelet, wavelet_bank, wavelet_dwt2, wavelet_idwt2, wavelet_pyramid

__all__ = [
    "DWT2d",
    "HAAR_LAYOUTS",
    "IDWT2d",
    "WAVELET_MODES",
    "crop_to",
    "dwt2",
    "filter_bank",
    "haar_dwt2",
    "haar_idwt2",
    "haar_wavedec2",
    "haar_waverec2",
    "idwt2",
    "pack_bands",
    "pad_to_multiple",
    "check_wavelet",
    "rgb_to_y",
    "rgb_to_ycbcr",
    "unpack_bands",
    "wavedec2",
    "wavelet_bank",
    "wavelet_dwt2",
    "wavelet_filters",
    "wavelet_idwt2",
    "wavelet_pyramid",
    "waverec2",
    "ycbcr_to_rgb",
]
