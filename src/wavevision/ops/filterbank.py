"""General 2D discrete wavelet transforms on plain, differentiable torch ops.

Any orthogonal or biorthogonal wavelet (``haar``, ``db2``, ``sym4``, ``coif1``,
``bior2.2``, ...) with the signal-extension modes of :data:`WAVELET_MODES`. The results
equal PyWavelets': :func:`dwt2` / :func:`wavedec2` give the coefficients of ``pywt.dwt2`` /
``pywt.wavedec2`` and :func:`idwt2` / :func:`waverec2` the arrays of ``pywt.idwt2`` /
``pywt.waverec2`` (same sizes, same cropping), on the last two axes of a (B, C, H, W) tensor.

How it is computed (per axis, separably):

* analysis: the signal is extended by the mode (slices, flips and concatenation, so
  extensions longer than the signal repeat the way PyWavelets' do), then one strided
  ``conv2d`` with the reversed decomposition filters keeps the odd samples of the full
  convolution, as PyWavelets does;
* synthesis: one ``conv_transpose2d`` (stride 2) with the reconstruction filters, keeping
  the "valid" part; for ``periodization`` the coefficients are first extended periodically.

Everything is autograd-differentiable (also with respect to a filter tensor). ``haar`` /
``db1`` need nothing else; other names take their coefficients from PyWavelets
(``pip install 'wavevision[wavelets]'``). Filters are created on the input's device and in
its dtype; on CPU, float16 / bfloat16 inputs are computed in float32 and cast back.
"""
from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["WAVELET_MODES", "dwt2", "filter_bank", "idwt2", "wavedec2", "wavelet_filters", "waverec2"]

#: Signal-extension modes, with PyWavelets' meaning:
#: ``zero`` (zeros), ``symmetric`` (half-sample mirror, edge repeated), ``reflect``
#: (whole-sample mirror, edge not repeated), ``periodization`` (circular, output ceil(N/2)),
#: ``periodic`` (circular, full-length output), ``constant`` (edge value repeated) and
#: ``antisymmetric`` (half-sample mirror with the sign flipped).
WAVELET_MODES: tuple[str, ...] = (
    "zero",
    "symmetric",
    "reflect",
    "periodization",
    "periodic",
    "constant",
    "antisymmetric",
)

# A name, a (4, L) filter tensor, a 4-sequence of filters, or a pywt.Wavelet (hence Any).
WaveletLike = Union[str, torch.Tensor, Sequence[Any], Any]  # noqa: UP007 (evaluated at runtime on 3.10)

_INSTALL_HINT = "pip install 'wavevision[wavelets]' (or pip install PyWavelets)"


# --------------------------------------------------------------------------- filters


def _haar_filters() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s = math.sqrt(0.5)  # == pywt's 0.7071067811865476
    return (np.array([s, s]), np.array([-s, s]), np.array([s, s]), np.array([s, -s]))


@functools.lru_cache(maxsize=128)
def _pywt_filters(name: str) -> tuple[np.ndarray, ...]:
    """Filters of a named wavelet from PyWavelets (imported lazily), cached by lower-case name."""
    try:
        import pywt
    except ImportError:
        raise ImportError(
            f"wavelet {name!r} needs PyWavelets for its filter coefficients: {_INSTALL_HINT}. "
            "Only 'haar' / 'db1' work without it."
        ) from None
    try:
        wav = pywt.Wavelet(name)
    except ValueError as err:
        raise ValueError(
            f"unknown discrete wavelet {name!r} ({err}); see pywt.wavelist(kind='discrete') for the valid names"
        ) from None
    return _as_filters((wav.dec_lo, wav.dec_hi, wav.rec_lo, wav.rec_hi))


def _as_filters(filters: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Four equal-length, finite 1D float64 arrays, zero-padded at the end to even length like pywt."""
    arrays = []
    for name, f in zip(("dec_lo", "dec_hi", "rec_lo", "rec_hi"), filters):
        if isinstance(f, torch.Tensor):
            f = f.detach().cpu().double().numpy()
        a = np.asarray(f, dtype=np.float64)
        if a.ndim != 1 or a.size < 1:
            raise ValueError(f"filter {name} must be a non-empty 1D array, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"filter {name} has non-finite values")
        arrays.append(a)
    lengths = {a.size for a in arrays}
    if len(lengths) != 1:
        raise ValueError(
            "the four filters (dec_lo, dec_hi, rec_lo, rec_hi) must have the same length, "
            f"got {[a.size for a in arrays]}"
        )
    if arrays[0].size % 2:
        arrays = [np.append(a, 0.0) for a in arrays]  # pywt pads odd-length filter banks the same way
    if arrays[0].size < 2:
        raise ValueError("wavelet filters need at least 2 taps")
    return tuple(arrays)


def wavelet_filters(wavelet: WaveletLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four filters of a wavelet, in PyWavelets' convention.

    Args:
        wavelet: a name (``"haar"`` / ``"db1"`` need no PyWavelets; other names do, e.g.
            ``"db2"``, ``"sym4"``, ``"bior2.2"``), a ``pywt.Wavelet`` (or any object with
            ``dec_lo``, ``dec_hi``, ``rec_lo``, ``rec_hi``), a 4-sequence of 1D array-likes, or a
            (4, L) tensor as made by :func:`filter_bank`.

    Returns:
        ``(dec_lo, dec_hi, rec_lo, rec_hi)``: fresh float64 arrays of one even length (odd
        lengths are zero-padded at the end, as PyWavelets does).

    Raises:
        ImportError: a name other than haar/db1 and PyWavelets is not installed.
        ValueError: unknown name or malformed filters.
        TypeError: anything else.
    """
    if isinstance(wavelet, str):
        key = wavelet.strip().lower()
        filters = _haar_filters() if key in ("haar", "db1") else _pywt_filters(key)
    elif isinstance(wavelet, torch.Tensor):
        if wavelet.dim() != 2 or wavelet.shape[0] != 4:
            raise ValueError(f"a filter tensor must have shape (4, L) (from filter_bank), got {tuple(wavelet.shape)}")
        filters = _as_filters(tuple(wavelet))
    elif all(hasattr(wavelet, a) for a in ("dec_lo", "dec_hi", "rec_lo", "rec_hi")):
        wav: Any = wavelet  # a pywt.Wavelet or any object with the four filter attributes
        filters = _as_filters((wav.dec_lo, wav.dec_hi, wav.rec_lo, wav.rec_hi))
    elif isinstance(wavelet, (tuple, list)) and len(wavelet) == 4:
        filters = _as_filters(wavelet)
    else:
        raise TypeError(
            "wavelet must be a name such as 'db2', a pywt.Wavelet, a 4-tuple (dec_lo, dec_hi, rec_lo, rec_hi) "
            f"or a (4, L) tensor from filter_bank, got {type(wavelet).__name__}"
        )
    dec_lo, dec_hi, rec_lo, rec_hi = (np.array(f, dtype=np.float64) for f in filters)
    return dec_lo, dec_hi, rec_lo, rec_hi


def filter_bank(
    wavelet: WaveletLike, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The filters as one (4, L) tensor, rows ``dec_lo, dec_hi, rec_lo, rec_hi`` (e.g. for a buffer).

    Args:
        wavelet: anything :func:`wavelet_filters` accepts.
        device: where to create it (default: torch's default device).
        dtype: its dtype (default: ``torch.get_default_dtype()``).
    """
    bank = np.stack(wavelet_filters(wavelet))
    return torch.tensor(bank, device=device, dtype=dtype if dtype is not None else torch.get_default_dtype())


def _bank_for(wavelet: WaveletLike, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(4, L) filters on ``device`` / ``dtype``; a tensor is used as is (gradients flow into it)."""
    if isinstance(wavelet, torch.Tensor):
        if wavelet.dim() != 2 or wavelet.shape[0] != 4 or wavelet.shape[1] < 1:
            raise ValueError(f"a filter tensor must have shape (4, L) (from filter_bank), got {tuple(wavelet.shape)}")
        if not wavelet.is_floating_point():
            raise TypeError(f"a filter tensor must be floating point, got {wavelet.dtype}")
        bank = wavelet.to(device=device, dtype=dtype)
        if bank.shape[1] % 2:
            bank = F.pad(bank, (0, 1))  # same even-length padding as wavelet_filters / pywt
        return bank
    return filter_bank(wavelet, device=device, dtype=dtype)


# --------------------------------------------------------------------------- checks


def _work_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    # Half-precision convolutions on CPU are slow or missing: compute those in float32.
    if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return dtype


def _check_mode(mode: Any) -> None:
    if not isinstance(mode, str) or mode not in WAVELET_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(WAVELET_MODES)}")


def _check_tensor(x: Any, what: str, ndim: int = 4, layout: str = "(B, C, H, W)") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        hint = "; add batch/channel axes, e.g. x[None, None] for one image" if ndim == 4 and x.dim() < 4 else ""
        raise ValueError(f"{what} must be a {ndim}D tensor {layout}, got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got {x.dtype}; convert it, e.g. x.float()")


def _check_level(level: Any) -> int:
    if isinstance(level, bool) or not isinstance(level, numbers.Integral):
        raise TypeError(f"level must be an integer >= 1 (or None for the pywt default), got {level!r}")
    if level < 1:
        raise ValueError(f"level must be an integer >= 1 (or None for the pywt default), got {level!r}")
    return int(level)


def _dwt_len(n: int, taps: int, mode: str) -> int:
    return (n + 1) // 2 if mode == "periodization" else (n + taps - 1) // 2


def _pywt_max_level(n: int, taps: int) -> int:
    """``pywt.dwt_max_level(n, taps)``: the deepest level free of boundary effects (integer arithmetic)."""
    if taps < 2 or n < taps - 1:
        return 0
    return (n // (taps - 1)).bit_length() - 1


def _shrinking_levels(n: int, taps: int, mode: str) -> int:
    """How many levels still make an axis of length n shorter (beyond that it stays or grows)."""
    levels = 0
    while _dwt_len(n, taps, mode) < n:
        n = _dwt_len(n, taps, mode)
        levels += 1
    return levels


# --------------------------------------------------------------------------- 1D building blocks


def _source(i: int, n: int, mode: str) -> tuple[int, int]:
    """(source index, sign) of position i of a length-n signal extended by ``mode`` (not zero)."""
    if mode == "periodic":
        return i % n, 1
    if mode == "periodization":  # odd n: the last sample is repeated once, then circular
        return min(i % (n + n % 2), n - 1), 1
    if mode == "constant":
        return min(max(i, 0), n - 1), 1
    if mode == "reflect":  # whole-sample mirror: period 2n - 2
        r = i % (2 * n - 2)
        return (r, 1) if r < n else (2 * n - 2 - r, 1)
    r = i % (2 * n)  # symmetric / antisymmetric: half-sample mirror, period 2n
    if r < n:
        return r, 1
    return 2 * n - 1 - r, (-1 if mode == "antisymmetric" else 1)


def _pieces(x: torch.Tensor, dim: int, positions: range, mode: str) -> list[torch.Tensor]:
    """The extension of x along dim at ``positions`` (outside [0, n)), as runs of slices."""
    n = x.shape[dim]
    src = [_source(i, n, mode) for i in positions]
    out: list[torch.Tensor] = []
    k = 0
    while k < len(src):
        start, sign = src[k]
        step, length = 1, 1
        if k + 1 < len(src) and src[k + 1][1] == sign and src[k + 1][0] - start in (-1, 0, 1):
            step = src[k + 1][0] - start
            while k + length < len(src) and src[k + length] == (start + step * length, sign):
                length += 1
        if step == 1:
            piece = x.narrow(dim, start, length)
        elif step == -1:
            piece = x.narrow(dim, start - length + 1, length).flip(dim)
        else:
            shape = list(x.shape)
            shape[dim] = length
            piece = x.narrow(dim, start, 1).expand(shape)
        out.append(-piece if sign < 0 else piece)
        k += length
    return out


def _extend(x: torch.Tensor, dim: int, lo: int, hi: int, mode: str) -> torch.Tensor:
    """Positions lo..hi-1 (lo <= 0, hi >= n) of x extended along dim (2 or 3) by ``mode``."""
    n = x.shape[dim]
    if lo == 0 and hi == n:
        return x
    if mode == "zero":
        pad = (-lo, hi - n) if dim == 3 else (0, 0, -lo, hi - n)
        return F.pad(x, pad)
    parts = _pieces(x, dim, range(lo, 0), mode) + [x] + _pieces(x, dim, range(n, hi), mode)
    return torch.cat(parts, dim=dim)


def _analysis(x: torch.Tensor, dec: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """(M, 1, H, W) -> (M, 2, ...): low/high band along dim (2 or 3), pywt's downsampling convolution.

    Keeps out[k] = sum_j h[j] * ext[2k + 1 - j] (``periodization``: ext[2k + L/2 - j], circular),
    i.e. a stride-2 correlation of the extended signal with the reversed filter.
    """
    n_in, taps = x.shape[dim], dec.shape[-1]
    n_out = _dwt_len(n_in, taps, mode)
    lo = taps // 2 - taps + 1 if mode == "periodization" else 2 - taps
    ext = _extend(x, dim, lo, lo + 2 * n_out + taps - 2, mode)
    shape = (2, 1, taps, 1) if dim == 2 else (2, 1, 1, taps)
    stride = (2, 1) if dim == 2 else (1, 2)
    return F.conv2d(ext, dec.flip(-1).reshape(shape), stride=stride)


def _synthesis(y: torch.Tensor, rec: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """(M, 2, ...) low/high coefficients -> (M, 1, ...) along dim (2 or 3), pywt's idwt.

    Transposed stride-2 convolution with the reconstruction filters; non-periodization modes
    keep the valid part (length 2n - L + 2), ``periodization`` wraps the coefficients
    circularly and keeps 2n samples.
    """
    n, taps = y.shape[dim], rec.shape[-1]
    shape = (2, 1, taps, 1) if dim == 2 else (2, 1, 1, taps)
    stride = (2, 1) if dim == 2 else (1, 2)
    weight = rec.reshape(shape)
    if mode != "periodization":
        padding = (taps - 2, 0) if dim == 2 else (0, taps - 2)
        return F.conv_transpose2d(y, weight, stride=stride, padding=padding)
    shift = taps // 2 - 1
    k0 = -((taps - 1 - shift) // 2)  # first and one-past-last coefficient touching outputs 0..2n-1
    k1 = (2 * n - 1 + shift) // 2 + 1
    full = F.conv_transpose2d(_extend(y, dim, k0, k1, "periodic"), weight, stride=stride)
    return full.narrow(dim, shift - 2 * k0, 2 * n)


# --------------------------------------------------------------------------- 2D transforms


def _dwt2(x: torch.Tensor, bank: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    b, c, h, w = x.shape
    if min(h, w) < 1 or (mode == "reflect" and min(h, w) < 2):
        need = 2 if mode == "reflect" else 1
        raise ValueError(f"dwt2 needs at least {need} sample(s) per spatial axis in mode {mode!r}, got {h}x{w}")
    dec = bank[:2]
    y = _analysis(x.reshape(b * c, 1, h, w), dec, 3, mode)  # (BC, 2[w band], h, w')
    wo = y.shape[3]
    y = _analysis(y.reshape(b * c * 2, 1, h, wo), dec, 2, mode)  # (2BC, 2[h band], h', w')
    y = y.reshape(b, c, 4, y.shape[2], wo)  # bands (w, h): aa, ad -> cH, da -> cV, dd -> cD
    return y[:, :, 0], y[:, :, 1:]


def _idwt2(ll: torch.Tensor, highs: torch.Tensor, bank: torch.Tensor, mode: str) -> torch.Tensor:
    b, c, h, w = ll.shape
    taps = bank.shape[-1]
    if mode != "periodization" and 2 * min(h, w) < taps - 1:
        raise ValueError(
            f"idwt2 coefficients of size {h}x{w} are too small for a {taps}-tap wavelet in mode {mode!r}: "
            f"each axis needs at least {taps // 2} samples (dwt2 always produces enough); check wavelet and mode"
        )
    rec = bank[2:]
    y = torch.cat([ll.unsqueeze(2), highs], dim=2).reshape(b * c * 2, 2, h, w)  # (w band) x (h band: lo, hi)
    y = _synthesis(y, rec, 2, mode)  # (2BC, 1, H, w)
    y = _synthesis(y.reshape(b * c, 2, y.shape[2], w), rec, 3, mode)  # (BC, 1, H, W)
    return y.reshape(b, c, y.shape[2], y.shape[3])


def _as_highs(highs: Any, ll: torch.Tensor, what: str) -> torch.Tensor:
    """Details as one (B, C, 3, h, w) tensor (a (cH, cV, cD) sequence of 4D tensors is stacked)."""
    if isinstance(highs, (tuple, list)) and len(highs) == 3 and all(isinstance(t, torch.Tensor) for t in highs):
        if len({tuple(t.shape) for t in highs}) != 1:
            raise ValueError(f"{what}: cH, cV, cD must have one shape, got {[tuple(t.shape) for t in highs]}")
        highs = torch.stack(list(highs), dim=2)
    _check_tensor(highs, what, 5, "(B, C, 3, h, w)")
    if highs.shape[2] != 3 or highs.shape[:2] != ll.shape[:2]:
        raise ValueError(
            f"{what} must have shape (B, C, 3, h, w) with B, C = {tuple(ll.shape[:2])} of the approximation, "
            f"got {tuple(highs.shape)}; pass the details returned by dwt2 / wavedec2"
        )
    return highs


def dwt2(x: torch.Tensor, wavelet: WaveletLike = "haar", mode: str = "zero") -> tuple[torch.Tensor, torch.Tensor]:
    """One level of the 2D DWT on the last two axes, equal to ``pywt.dwt2(x, wavelet, mode)``.

    Args:
        x: (B, C, H, W) floating-point tensor (any memory format, device and float dtype).
        wavelet: a name, ``pywt.Wavelet``, 4-tuple of filters, or a (4, L) tensor from
            :func:`filter_bank` (then no lookup happens and gradients reach the filters).
        mode: one of :data:`WAVELET_MODES`.

    Returns:
        ``(ll, highs)``: ll (B, C, h, w) is pywt's cA; highs (B, C, 3, h, w) holds pywt's
        (cH, cV, cD) in ``highs[:, :, 0]``, ``[:, :, 1]``, ``[:, :, 2]``. h = floor((H + L - 1) / 2)
        (``periodization``: ceil(H / 2)), likewise w.
    """
    _check_tensor(x, "dwt2 input")
    _check_mode(mode)
    work = _work_dtype(x.dtype, x.device)
    ll, highs = _dwt2(x.to(work), _bank_for(wavelet, x.device, work), mode)
    return ll.to(x.dtype), highs.to(x.dtype)


def idwt2(ll: torch.Tensor, highs: torch.Tensor, wavelet: WaveletLike = "haar", mode: str = "zero") -> torch.Tensor:
    """One level of the inverse 2D DWT, equal to ``pywt.idwt2((cA, (cH, cV, cD)), wavelet, mode)``.

    Args:
        ll: (B, C, h, w) approximation.
        highs: (B, C, 3, h, w) details (cH, cV, cD), or a 3-sequence of (B, C, h, w) tensors.
        wavelet: as for :func:`dwt2`.
        mode: as for :func:`dwt2`.

    Returns:
        (B, C, H, W) with pywt's size: 2h - L + 2 (``periodization``: 2h), likewise W. For odd
        original sizes this is one sample larger than the signal; crop it (as :func:`waverec2` does).
    """
    _check_tensor(ll, "idwt2 approximation (ll)", 4, "(B, C, h, w)")
    _check_mode(mode)
    highs = _as_highs(highs, ll, "idwt2 details (highs)")
    if highs.shape[-2:] != ll.shape[-2:]:
        raise ValueError(
            f"idwt2 details have spatial size {tuple(highs.shape[-2:])} but the approximation has "
            f"{tuple(ll.shape[-2:])}; they must match (pass the pair returned by dwt2)"
        )
    work = _work_dtype(ll.dtype, ll.device)
    out = _idwt2(ll.to(work), highs.to(work), _bank_for(wavelet, ll.device, work), mode)
    return out.to(ll.dtype)


def wavedec2(
    x: torch.Tensor, wavelet: WaveletLike = "haar", level: int | None = None, mode: str = "zero"
) -> list[torch.Tensor]:
    """Multi-level 2D DWT, equal to ``pywt.wavedec2(x, wavelet, mode, level)``.

    Args:
        x: (B, C, H, W) floating-point tensor.
        wavelet: as for :func:`dwt2`.
        level: number of levels (>= 1). ``None`` takes pywt's default,
            ``min(pywt.dwt_max_level(n, L) for n in (H, W))``, which is 0 (and the result just
            ``[x]``, like pywt) when the image is shorter than the filter. Levels deeper than
            that are allowed (pywt only warns) as long as each level still shrinks the image.
        mode: as for :func:`dwt2`.

    Returns:
        ``[ll_n, highs_n, ..., highs_1]``: the coarsest approximation (B, C, h_n, w_n), then
        each level's details (B, C, 3, h_j, w_j) holding pywt's (cH, cV, cD), coarsest first.

    Raises:
        ValueError: the level is < 1 or deeper than the size allows (the message gives the maximum).
    """
    _check_tensor(x, "wavedec2 input")
    _check_mode(mode)
    work = _work_dtype(x.dtype, x.device)
    bank = _bank_for(wavelet, x.device, work)
    taps = bank.shape[-1]
    h, w = x.shape[-2:]
    if level is None:
        level = min(_pywt_max_level(h, taps), _pywt_max_level(w, taps))
        if level == 0:
            return [x]
    else:
        level = _check_level(level)
        deepest = max(1, min(_shrinking_levels(h, taps, mode), _shrinking_levels(w, taps, mode)))
        if level > deepest:
            raise ValueError(
                f"level {level} is too high for a {h}x{w} input with a {taps}-tap wavelet in mode {mode!r}: "
                f"the maximum is {deepest} (deeper levels would no longer shrink the approximation; the "
                f"boundary-effect-free depth pywt.dwt_max_level gives is "
                f"{min(_pywt_max_level(h, taps), _pywt_max_level(w, taps))}); use a smaller level or a shorter wavelet"
            )
    ll = x.to(work)
    details: list[torch.Tensor] = []
    for _ in range(level):
        ll, highs = _dwt2(ll, bank, mode)
        details.append(highs.to(x.dtype))
    return [ll.to(x.dtype)] + details[::-1]


def waverec2(coeffs: Sequence[Any], wavelet: WaveletLike = "haar", mode: str = "zero") -> torch.Tensor:
    """Multi-level inverse 2D DWT, equal to ``pywt.waverec2(coeffs, wavelet, mode)``.

    Args:
        coeffs: ``[ll_n, highs_n, ..., highs_1]`` as returned by :func:`wavedec2`; each
            ``highs_j`` is (B, C, 3, h_j, w_j) or a (cH, cV, cD) sequence of 4D tensors.
        wavelet: as for :func:`dwt2`.
        mode: as for :func:`dwt2`.

    Returns:
        (B, C, H, W) with pywt's size. Like pywt, an approximation one sample larger than the
        next level's details (odd sizes) loses its last row/column; the final output can be one
        sample larger than the original odd-sized input (crop it to the original size).
    """
    if not isinstance(coeffs, (list, tuple)) or len(coeffs) < 1:
        raise ValueError("waverec2 needs a non-empty list [ll_n, highs_n, ..., highs_1] as returned by wavedec2")
    ll = coeffs[0]
    _check_tensor(ll, "waverec2 coeffs[0] (approximation)", 4, "(B, C, h, w)")
    _check_mode(mode)
    if len(coeffs) == 1:
        return ll  # level-0 decomposition, as in pywt
    work = _work_dtype(ll.dtype, ll.device)
    bank = _bank_for(wavelet, ll.device, work)
    out = ll.to(work)
    for j, raw in enumerate(coeffs[1:], start=1):
        highs = _as_highs(raw, out, f"waverec2 coeffs[{j}] (details)")
        (ah, aw), (dh, dw) = out.shape[-2:], highs.shape[-2:]
        if ah - dh not in (0, 1) or aw - dw not in (0, 1):
            raise ValueError(
                f"waverec2 coeffs[{j}]: details of spatial size {dh}x{dw} do not fit the approximation of "
                f"size {ah}x{aw} (it must be equal or one larger per axis); pass the list from wavedec2 "
                "unchanged, with the same wavelet and mode"
            )
        out = _idwt2(out[..., :dh, :dw], highs.to(work), bank, mode)
    return out.to(ll.dtype)
