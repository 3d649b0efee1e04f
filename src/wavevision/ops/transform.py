"""Which 2D wavelet transform a layer runs: the one place that maps ``(wavelet, mode)`` to it.

Layers with a wavelet choice (:class:`~wavevision.layers.WaveMixBlock`,
:class:`~wavevision.layers.wave_attention.WaveAttention`) call :func:`wavelet_bank` once in
their constructor and keep its result as a non-persistent buffer (so ``.to()``, ``.half()``
and DDP move it and state dicts never hold it); their forward passes that buffer to
:func:`wavelet_pyramid`, :func:`wavelet_dwt2` or :func:`wavelet_idwt2`.

* ``"haar"`` (and its alias ``"db1"``): the bank is ``None`` and every call takes the fast
  Haar path of :mod:`wavevision.ops.haar`, whatever the mode: with the even sizes the
  layers feed it, a 2-tap filter never reads past the border, so all modes give the same
  coefficients. PyWavelets is not needed.
* any other discrete PyWavelets name (``"db2"``, ``"sym4"``, ``"coif1"``, ``"bior2.2"``, ...):
  the bank holds its four filters (``pip install 'wavevision[wavelets]'``). Sides up to
  :data:`MATRIX_MAX_SIDE` samples are transformed by one matrix product per axis (the axis'
  analysis matrix, built from the filters with :mod:`wavevision.ops.filterbank`'s signal
  extension), longer sides by that module's extend-and-convolve path; both give PyWavelets'
  coefficients, and autograd differentiates either.

Sizes. The layers need every level to halve the map exactly (``ceil(n / 2)``), as Haar
does, so that a WaveMix MLP's x2 upsample lands on the next finer level and a sub-band
lines up with the pixels it came from. Filters longer than 2 taps make PyWavelets' output
longer than that in every mode but one:

* ``"periodization"`` (the default): the signal is treated as periodic and each level has
  exactly ``ceil(n / 2)`` coefficients. The transform is orthogonal for orthogonal
  wavelets and exactly invertible, and the coefficients are exactly
  ``pywt.wavedec2(x, wavelet, mode="periodization")``'s.
* every other mode of :data:`~wavevision.ops.filterbank.WAVELET_MODES` (``"zero"``,
  ``"symmetric"``, ``"reflect"``, ...): PyWavelets' ``L/2 - 1`` extra boundary coefficients
  per axis (L taps) are cropped, keeping the centred ``ceil(n / 2)``; each level is
  ``pywt.dwt2`` of the previous (cropped) approximation, cropped the same way. The inverse
  puts zeros where the cropped coefficients were, so it reconstructs exactly except within
  about L samples of the borders. Use these to avoid periodization's wrap-around at the
  image borders.

Channel layouts are those of :mod:`wavevision.ops.haar` (``"wavemix"`` or ``"band"``), so the
sub-bands reach a layer's convolutions in the order the Haar path gives them.
"""
from __future__ import annotations

import difflib
from typing import Any

import torch

from . import filterbank as fb
from .haar import _check_layout, haar_dwt2, haar_idwt2, haar_wavedec2
from .modules import pack_bands, unpack_bands

__all__ = ["DEFAULT_MODE", "HAAR_NAMES", "MATRIX_MAX_SIDE", "check_wavelet", "wavelet_bank", "wavelet_dwt2", "wavelet_idwt2",
           "wavelet_pyramid"]

#: The padding mode of the layers: the only one whose levels halve exactly with no crop.
DEFAULT_MODE = "periodization"
#: Names that take the fast Haar path (no PyWavelets).
HAAR_NAMES = ("haar", "db1")
#: Maps up to this many samples a side are transformed by one matrix product per axis (the
#: analysis matrix, built from the filter bank); longer sides by extension and strided convolution.
MATRIX_MAX_SIDE = 128


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""


def check_wavelet(wavelet: Any, mode: Any = DEFAULT_MODE) -> tuple[str, str]:
    """Validate a layer's ``wavelet`` and ``mode``; returns them normalised (lower case).

    Raises:
        TypeError: either is not a string.
        ValueError: unknown mode, or (with PyWavelets installed) an unknown or continuous
            wavelet name; the one-line message suggests close names.
        ImportError: a wavelet other than haar/db1 without PyWavelets installed.
    """
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string such as {DEFAULT_MODE!r}, got {type(mode).__name__}")
    if mode.strip().lower() not in fb.WAVELET_MODES:
        raise ValueError(f"unknown wavelet mode {mode!r}; {_close(mode.strip().lower(), list(fb.WAVELET_MODES))}"
                         f"choose one of {', '.join(fb.WAVELET_MODES)} (default {DEFAULT_MODE!r})")
    mode = mode.strip().lower()
    if not isinstance(wavelet, str):
        raise TypeError(f"wavelet must be a PyWavelets name such as 'haar' or 'db2', got {type(wavelet).__name__}")
    name = wavelet.strip().lower()
    if name in HAAR_NAMES:
        return name, mode
    try:
        import pywt  # optional: only names other than haar need it
    except ImportError:
        raise ImportError(f"wavelet {wavelet!r} needs PyWavelets for its filters: pip install 'wavevision[wavelets]' "
                          f"(or use wavelet='haar', which needs nothing else)") from None
    names = pywt.wavelist(kind="discrete")
    if name not in names:
        what = "a continuous wavelet (no filter bank)" if name in pywt.wavelist(kind="continuous") else "not a PyWavelets wavelet"
        raise ValueError(f"wavelet {wavelet!r} is {what}; {_close(name, names)}"
                         "use a discrete PyWavelets name (pywt.wavelist(kind='discrete')), e.g. 'haar', 'db2', 'sym4', 'bior2.2'")
    return name, mode


def wavelet_bank(wavelet: str = "haar", mode: str = DEFAULT_MODE) -> torch.Tensor | None:
    """What a layer keeps for its transform: ``None`` for Haar (the fast path), else the
    (4, L) filters (``dec_lo, dec_hi, rec_lo, rec_hi``) in the default dtype.

    Validates both arguments first (:func:`check_wavelet`).
    """
    name, _ = check_wavelet(wavelet, mode)
    if name in HAAR_NAMES:
        return None
    return fb.filter_bank(name, dtype=torch.get_default_dtype())


def _half(n: int) -> int:
    return (n + 1) // 2


def _analysis_matrix(n: int, bank: torch.Tensor, mode: str) -> torch.Tensor:
    """(n, 2 * ceil(n/2)) matrix of one axis' analysis: ``x @ A`` gives [low band, high band].

    Built by running the filter bank's 1D analysis (:mod:`wavevision.ops.filterbank`, pywt's
    convention) on the n unit vectors, so it holds exactly pywt's coefficients, cropped to the
    centred ceil(n/2) of each band outside periodization. Up to :data:`MATRIX_MAX_SIDE` samples
    one matrix product per axis is faster on CPU than extending and convolving.
    """
    taps = bank.shape[-1]
    m = fb._dwt_len(n, taps, mode)
    lo = taps // 2 - taps + 1 if mode == "periodization" else 2 - taps  # as filterbank._analysis
    eye = torch.eye(n, dtype=bank.dtype, device=bank.device).reshape(n, 1, 1, n)
    ext = fb._extend(eye, 3, lo, lo + 2 * m + taps - 2, mode).reshape(n, -1)
    # Column k of each band: the stride-2 correlation of the extended unit vectors with the filter.
    bands = torch.matmul(ext.unfold(1, taps, 2), bank[:2].flip(-1).t())  # (n, m, 2)
    t = _half(n)
    start = (m - t) // 2
    return bands[:, start : start + t].permute(0, 2, 1).reshape(n, 2 * t)


def _synthesis_matrix(n: int, bank: torch.Tensor, mode: str) -> torch.Tensor:
    """(2n, 2n) matrix of one axis' synthesis: ``[low, high] @ S`` inverts :func:`_analysis_matrix`
    of 2n samples (outside periodization, with zeros for the cropped border coefficients)."""
    eye = torch.eye(2 * n, dtype=bank.dtype, device=bank.device).reshape(2 * n, 2, 1, n)
    if mode != "periodization":
        full = _full_len(2 * n, bank.shape[-1])
        left = (full - n) // 2
        eye = torch.nn.functional.pad(eye, (left, full - n - left))
    return fb._synthesis(eye, bank[2:], 3, mode).reshape(2 * n, 2 * n)


def _full_len(n: int, taps: int) -> int:
    """PyWavelets' coefficient count for n samples in a non-periodization mode."""
    return (n + taps - 1) // 2


def _centre(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centred ``size`` window of the last two axes (the extra border coefficients cut off)."""
    h, w = t.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return t[..., top : top + size[0], left : left + size[1]]


def _uncentre(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`_centre`: zeros where the cropped coefficients were."""
    h, w = t.shape[-2:]
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    return torch.nn.functional.pad(t, (left, size[1] - w - left, top, size[0] - h - top))


def _dwt2_parts(x: torch.Tensor, bank: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(approximation (B, C, h, w), details (B, C, 3, h, w) = pywt's cH, cV, cD) at h = ceil(H / 2), w = ceil(W / 2)."""
    fb._check_tensor(x, "wavelet transform input")
    h, w = x.shape[-2:]
    th, tw = _half(h), _half(w)
    if max(h, w) > MATRIX_MAX_SIDE:  # long axes: extend and convolve (cost per sample ~ taps, not n)
        ll, highs = fb.dwt2(x, bank, mode)
        return _centre(ll, (th, tw)), _centre(highs, (th, tw))
    bank = bank.to(device=x.device, dtype=x.dtype)
    z = torch.matmul(_analysis_matrix(h, bank, mode).t(), torch.matmul(x, _analysis_matrix(w, bank, mode)))
    # Rows of z are the height bands, columns the width bands: cH is high along the height.
    highs = torch.stack([z[..., th:, :tw], z[..., :th, tw:], z[..., th:, tw:]], dim=2)
    return z[..., :th, :tw], highs


def _format_of(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` in ``x``'s memory format (channels_last kept, as the Haar path's outputs do): the
    layers' convolutions and residual sums then need no layout conversions."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y


def wavelet_dwt2(x: torch.Tensor, bank: torch.Tensor | None, mode: str = DEFAULT_MODE,
                 layout: str = "wavemix") -> torch.Tensor:
    """One level: (B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2)), bands in ``layout`` order.

    ``bank`` comes from :func:`wavelet_bank` (``None``: the Haar fast path).
    """
    if bank is None:
        return haar_dwt2(x, layout)
    return _format_of(pack_bands(*_dwt2_parts(x, bank, mode), layout), x)


def wavelet_idwt2(y: torch.Tensor, bank: torch.Tensor | None, mode: str = DEFAULT_MODE, layout: str = "wavemix",
                  size: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`wavelet_dwt2`: (B, 4C, h, w) -> (B, C, 2h, 2w), cropped to ``size`` when given."""
    if bank is None:
        return haar_idwt2(y, layout, size)
    _check_layout(layout)
    ll, highs = unpack_bands(y, layout)
    h, w = y.shape[-2:]
    if 2 * max(h, w) > MATRIX_MAX_SIDE:
        if mode != "periodization":
            taps = bank.shape[-1] + bank.shape[-1] % 2
            full = (_full_len(2 * h, taps), _full_len(2 * w, taps))
            ll, highs = _uncentre(ll, full), _uncentre(highs, full)
        out = fb.idwt2(ll, highs, bank, mode)
        return _format_of(out if size is None else out[..., : size[0], : size[1]], y)
    bank = bank.to(device=y.device, dtype=y.dtype)
    z = torch.cat([torch.cat([ll, highs[:, :, 1]], -1), torch.cat([highs[:, :, 0], highs[:, :, 2]], -1)], -2)
    out = torch.matmul(torch.matmul(_synthesis_matrix(h, bank, mode).t(), z), _synthesis_matrix(w, bank, mode))
    if size is not None:
        out = out[..., : size[0], : size[1]]
    return _format_of(out, y)


def wavelet_pyramid(x: torch.Tensor, levels: int, bank: torch.Tensor | None, mode: str = DEFAULT_MODE,
                    layout: str = "wavemix") -> list[torch.Tensor]:
    """Multi-level DWT, finest first, each level from the previous level's approximation.

    Entry j (0-based) is (B, 4C, ceil(H / 2^(j+1)), ...): level j+1's approximation then its
    details in ``layout`` order, as :func:`~wavevision.ops.haar.haar_wavedec2` returns (which
    it is, for ``bank=None``).
    """
    if bank is None:
        return haar_wavedec2(x, levels, layout=layout)
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
    _check_layout(layout)
    out: list[torch.Tensor] = []
    cur = x
    for _ in range(levels):
        cur, highs = _dwt2_parts(cur, bank, mode)
        out.append(_format_of(pack_bands(cur, highs, layout), x))
    return out
