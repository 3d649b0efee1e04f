"""General 2D discrete wavelet transforms matching PyWavelets, on plain differentiable torch ops.

Any PyWavelets wavelet (orthogonal or biorthogonal) with the padding modes ``zero``,
``symmetric``, ``reflect``, ``periodic`` and ``periodization``. Coefficients equal
``pywt.dwt2`` / ``pywt.wavedec2`` and reconstructions equal ``pywt.idwt2`` /
``pywt.waverec2``. Each axis is one strided 1D convolution of the mode-extended signal
(analysis) or one transposed convolution (synthesis), so autograd differentiates it.
Haar needs nothing else; other wavelets take their coefficients from PyWavelets
(``pip install 'wavevision[wavelets]'``). Filters are made on the input's device and dtype.
"""
from __future__ import annotations

import functools
import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["WAVELET_MODES", "dwt2", "filter_bank", "idwt2", "wavedec2", "wavelet_filters", "waverec2"]

WAVELET_MODES = ("zero", "symmetric", "reflect", "periodic", "periodization")
_NP_PAD = {"symmetric": "symmetric", "reflect": "reflect", "periodic": "wrap"}
_S = 1.0 / math.sqrt(2.0)
_HAAR = (np.array([_S, _S]), np.array([-_S, _S]), np.array([_S, _S]), np.array([_S, -_S]))

Wavelet = Union[str, torch.Tensor, Sequence]


@functools.lru_cache(maxsize=64)
def _named_filters(name: str) -> Tuple[np.ndarray, ...]:
    if name in ("haar", "db1"):
        return _HAAR
    try:
        import pywt
    except ImportError:
        raise ImportError(
            f"wavelet {name!r} needs PyWavelets for its coefficients: pip install 'wavevision[wavelets]' "
            "(or pip install PyWavelets); 'haar' works without it"
        ) from None
    try:
        w = pywt.Wavelet(name)
    except ValueError:
        raise ValueError(f"unknown wavelet {name!r}; pywt.wavelist(kind='discrete') lists the valid names") from None
    return tuple(np.asarray(f, dtype=np.float64) for f in (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi))


def wavelet_filters(wavelet) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dec_lo, dec_hi, rec_lo, rec_hi) as float64 arrays, from a name, a ``pywt.Wavelet`` or a 4-tuple."""
    if isinstance(wavelet, str):
        return _named_filters(wavelet)  # type: ignore[return-value]
    if hasattr(wavelet, "dec_lo"):
        return tuple(np.asarray(f, dtype=np.float64) for f in (wavelet.dec_lo, wavelet.dec_hi, wavelet.rec_lo, wavelet.rec_hi))  # type: ignore[return-value]
    if isinstance(wavelet, (tuple, list)) and len(wavelet) == 4:
        filts = tuple(np.asarray(f, dtype=np.float64).ravel() for f in wavelet)
        if len({len(f) for f in filts}) != 1:
            raise ValueError("the four filters (dec_lo, dec_hi, rec_lo, rec_hi) must have the same length")
        return filts  # type: ignore[return-value]
    raise TypeError(f"wavelet must be a name, a pywt.Wavelet or a 4-tuple of filters, got {type(wavelet).__name__}")


def filter_bank(wavelet, *, device=None, dtype=None) -> torch.Tensor:
    """The filters as a (4, L) tensor, rows dec_lo, dec_hi, rec_lo, rec_hi."""
    return torch.tensor(np.stack(wavelet_filters(wavelet)), device=device, dtype=dtype or torch.get_default_dtype())


def _bank(wavelet: Wavelet, like: torch.Tensor) -> torch.Tensor:
    if isinstance(wavelet, torch.Tensor):
        if wavelet.dim() != 2 or wavelet.shape[0] != 4:
            raise ValueError(f"a filter tensor must have shape (4, L), got {tuple(wavelet.shape)}")
        return wavelet.to(device=like.device, dtype=like.dtype)
    return filter_bank(wavelet, device=like.device, dtype=like.dtype)


def _check(x: torch.Tensor, what: str, mode: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a 4D tensor (batch, channels, height, width), got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be floating point, got {x.dtype}; use x.float()")
    if mode not in WAVELET_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {WAVELET_MODES}")


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    # CPU convolutions in half precision are slow or missing: compute in float32 there.
    return torch.float32 if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def _analysis(x: torch.Tensor, h: torch.Tensor, mode: str) -> torch.Tensor:
    """Filter the last axis with h (2, L) and keep every second sample: (..., N) -> (..., 2, n)."""
    n_in, taps = x.shape[-1], h.shape[-1]
    if mode == "periodization":
        if n_in % 2:
            x = torch.cat([x, x[..., -1:]], dim=-1)
            n_in += 1
        idx = np.pad(np.arange(n_in), taps - 1, mode="wrap")
        x, offset, n_out = x[..., torch.as_tensor(idx, device=x.device)], taps // 2, n_in // 2
    else:
        if mode == "zero":
            x = F.pad(x, (taps - 1, taps - 1))
        else:
            idx = np.pad(np.arange(n_in), taps - 1, mode=_NP_PAD[mode])
            x = x[..., torch.as_tensor(idx, device=x.device)]
        offset, n_out = 1, (n_in + taps - 1) // 2
    lead = x.shape[:-1]
    x = x[..., offset:].reshape(-1, 1, x.shape[-1] - offset)
    y = F.conv1d(x, h.flip(-1).unsqueeze(1), stride=2)[..., :n_out]
    return y.reshape(*lead, 2, n_out)


def _synthesis(lo: torch.Tensor, hi: torch.Tensor, g: torch.Tensor, mode: str) -> torch.Tensor:
    """Upsample lo/hi along the last axis and filter with g (2, L), summing: (..., n) -> (..., m)."""
    n, taps = lo.shape[-1], g.shape[-1]
    lead = lo.shape[:-1]
    y = torch.stack([lo, hi], dim=-2).reshape(-1, 2, n)
    full = F.conv_transpose1d(y, g.unsqueeze(1), stride=2)  # (M, 1, 2n + L - 2): full convolution
    full = full.reshape(*lead, full.shape[-1])
    if mode != "periodization":
        return full[..., taps - 2 : 2 * n]
    period = 2 * n
    circ = full[..., :period]
    tail = full[..., period:]
    while tail.shape[-1]:
        k = min(period, tail.shape[-1])
        circ = circ + F.pad(tail[..., :k], (0, period - k))
        tail = tail[..., k:]
    return torch.roll(circ, -(taps // 2 - 1), dims=-1)


def dwt2(x: torch.Tensor, wavelet: Wavelet = "haar", mode: str = "zero") -> Tuple[torch.Tensor, torch.Tensor]:
    """One level of the 2D DWT, equal to ``pywt.dwt2`` on the last two axes.

    Args:
        x: (B, C, H, W) floating tensor.
        wavelet: a name, ``pywt.Wavelet``, 4-tuple of filters, or a (4, L) tensor from :func:`filter_bank`.
        mode: one of :data:`WAVELET_MODES`.

    Returns:
        (ll, highs): ll (B, C, h, w) and highs (B, C, 3, h, w) holding pywt's (cH, cV, cD).
    """
    _check(x, "dwt2 input", mode)
    out_dtype, work = x.dtype, _compute_dtype(x)
    x = x.to(work)
    bank = _bank(wavelet, x)
    dec = bank[:2]
    rows = _analysis(x, dec, mode)  # (B, C, H, W-band, w)
    both = _analysis(rows.permute(0, 1, 3, 4, 2), dec, mode)  # (B, C, W-band, w, H-band, h)
    both = both.permute(0, 1, 4, 2, 5, 3)  # (B, C, H-band, W-band, h, w)
    ll = both[:, :, 0, 0]
    highs = torch.stack([both[:, :, 1, 0], both[:, :, 0, 1], both[:, :, 1, 1]], dim=2)
    return ll.to(out_dtype), highs.to(out_dtype)


def idwt2(ll: torch.Tensor, highs: torch.Tensor, wavelet: Wavelet = "haar", mode: str = "zero") -> torch.Tensor:
    """Inverse of :func:`dwt2`, equal to ``pywt.idwt2`` (same output size)."""
    _check(ll, "idwt2 approximation", mode)
    if highs.dim() != 5 or highs.shape[2] != 3 or highs.shape[:2] != ll.shape[:2] or highs.shape[-2:] != ll.shape[-2:]:
        raise ValueError(
            f"idwt2 details must have shape (B, C, 3, h, w) matching the approximation {tuple(ll.shape)}, got {tuple(highs.shape)}"
        )
    out_dtype, work = ll.dtype, _compute_dtype(ll)
    ll, highs = ll.to(work), highs.to(work)
    rec = _bank(wavelet, ll)[2:]
    ch, cv, cd = highs.unbind(2)
    # Along H (axis -2) first: (cA, cH) -> low along W; (cV, cD) -> high along W.
    lo_w = _synthesis(ll.transpose(-1, -2), ch.transpose(-1, -2), rec, mode).transpose(-1, -2)
    hi_w = _synthesis(cv.transpose(-1, -2), cd.transpose(-1, -2), rec, mode).transpose(-1, -2)
    return _synthesis(lo_w, hi_w, rec, mode).to(out_dtype)


def _max_level(size: int, taps: int) -> int:
    if taps < 2 or size < taps - 1:
        return 0
    return int(math.floor(math.log2(size / (taps - 1))))


def wavedec2(x: torch.Tensor, wavelet: Wavelet = "haar", level: Optional[int] = None, mode: str = "zero") -> List[torch.Tensor]:
    """Multi-level 2D DWT, equal to ``pywt.wavedec2``: ``[ll_n, highs_n, ..., highs_1]``.

    Each ``highs_j`` is a (B, C, 3, h, w) tensor holding pywt's (cH, cV, cD) of level j.
    ``level=None`` uses the deepest useful level (``pywt.dwt_max_level``).
    """
    _check(x, "wavedec2 input", mode)
    bank = _bank(wavelet, x) if not isinstance(wavelet, torch.Tensor) else wavelet
    if level is None:
        level = max(1, _max_level(min(x.shape[-2:]), bank.shape[-1]))
    if not isinstance(level, int) or isinstance(level, bool) or level < 1:
        raise ValueError(f"level must be an integer >= 1, got {level!r}")
    details: List[torch.Tensor] = []
    ll = x
    for _ in range(level):
        ll, highs = dwt2(ll, bank, mode)
        details.append(highs)
    return [ll] + details[::-1]


def waverec2(coeffs: Sequence[torch.Tensor], wavelet: Wavelet = "haar", mode: str = "zero") -> torch.Tensor:
    """Inverse of :func:`wavedec2`, equal to ``pywt.waverec2`` (including its cropping of odd sizes)."""
    if len(coeffs) < 2:
        raise ValueError("waverec2 needs [ll, highs_n, ..., highs_1] with at least one detail level")
    ll = coeffs[0]
    for j, highs in enumerate(coeffs[1:]):
        if ll.shape[-2:] != highs.shape[-2:]:
            # pywt drops the last row/column of an approximation one sample larger than its details.
            if all(a - b in (0, 1) for a, b in zip(ll.shape[-2:], highs.shape[-2:])):
                ll = ll[..., : highs.shape[-2], : highs.shape[-1]]
            else:
                raise ValueError(
                    f"level {len(coeffs) - 1 - j}: approximation of size {tuple(ll.shape[-2:])} does not fit details of size {tuple(highs.shape[-2:])}"
                )
        ll = idwt2(ll, highs, wavelet, mode)
    return ll
