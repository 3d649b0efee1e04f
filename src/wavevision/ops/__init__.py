"""Differentiable 2D wavelet transforms.

- :mod:`.haar`: the fast Haar path used by the models (memory-free autograd, two layouts).
- :mod:`.filterbank`: any PyWavelets wavelet and padding mode, matching ``pywt.wavedec2``.
- :mod:`.modules`: ``DWT2d`` / ``IDWT2d`` modules over both (filters are non-persistent buffers).
- :mod:`.padding`: the pad-then-crop size policy shared by every model.
"""
from .haar import HAAR_LAYOUTS, haar_dwt2, haar_idwt2, haar_wavedec2, haar_waverec2
from .padding import crop_to, pad_to_multiple

__all__ = [
    "HAAR_LAYOUTS",
    "crop_to",
    "haar_dwt2",
    "haar_idwt2",
    "haar_wavedec2",
    "haar_waverec2",
    "pad_to_multiple",
]
