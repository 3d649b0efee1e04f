"""Fast one-level 2D Haar transform and its inverse, with memory-free autograd.

One level maps a 2x2 patch ``[[a, b], [c, d]]`` (row, column) to four bands at half
height and width. The signs follow PyWavelets' ``dwt2(x, 'haar')`` (and therefore the
public WaveMix package, which wraps pytorch_wavelets)::

    LL = (a + b + c + d) / 2        (pywt cA)
    LH = (a + b - c - d) / 2        (pywt cH, first detail band)
    HL = (a - b + c - d) / 2        (pywt cV, second detail band)
    HH = (a - b - c + d) / 2        (pywt cD, third detail band)

The transform is orthonormal, so the backward pass of the forward transform is the
inverse transform of the incoming gradient and vice versa: neither direction saves a
tensor for backward. Both directions are differentiable any number of times.

Channel layouts (``layout`` argument), for an input of C channels:

* ``"wavemix"``: ``[LL_0..LL_{C-1}, LH_0, HL_0, HH_0, LH_1, HL_1, HH_1, ...]`` (the public
  WaveMix package: low band first, then the three detail bands interleaved per channel).
* ``"band"``: ``[LL_0..LL_{C-1}, LH_0..LH_{C-1}, HL_0.., HH_0..]`` (band-major, Wave-ViT).

Odd heights or widths are zero-padded at the bottom/right before the transform, exactly
like ``pywt.dwt2(..., mode='zero')`` for Haar; :func:`haar_idwt2` takes the original
size to crop its output back.

Two implementations of the same arithmetic, chosen per call:

* eager: custom autograd Functions whose kernels write each band straight into its slot of
  the output (no band temporaries) and whose backward is the other transform;
* traced (under ``torch.compile``, ``torch.jit.trace`` and ONNX export): plain strided slices,
  additions and a concatenation. Those ops save nothing for backward either, give no graph
  break, let Inductor fuse each direction into one pass, and export as standard ONNX ops.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["HAAR_LAYOUTS", "haar_dwt2", "haar_idwt2", "haar_wavedec2", "haar_waverec2"]

HAAR_LAYOUTS = ("wavemix", "band")


def _check_layout(layout: str) -> None:
    if layout not in HAAR_LAYOUTS:
        raise ValueError(f"unknown Haar channel layout {layout!r}; choose one of {HAAR_LAYOUTS}")


def _check_4d(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{what} must be 4D (batch, channels, height, width), got shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got dtype {x.dtype}; use x.float()")


def _like(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Uninitialised output with x's dtype/device and its memory format (channels_last kept)."""
    fmt = (
        torch.channels_last
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _bands(y: torch.Tensor, layout: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Views of the four bands (each B, C, h, w) inside a (B, 4C, h, w) tensor."""
    b, c4, h, w = y.shape
    c = c4 // 4
    ll = y[:, :c]
    if layout == "band":
        return ll, y[:, c : 2 * c], y[:, 2 * c : 3 * c], y[:, 3 * c :]
    det = y[:, c:].unflatten(1, (c, 3))
    return ll, det[:, :, 0], det[:, :, 1], det[:, :, 2]


def _forward(x: torch.Tensor, layout: str) -> torch.Tensor:
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2))
        h, w = h + h % 2, w + w % 2
    v = x.unflatten(3, (w // 2, 2)).unflatten(2, (h // 2, 2))  # B, C, h2, 2, w2, 2
    top, bot = v[:, :, :, 0], v[:, :, :, 1]  # B, C, h2, w2, 2
    s = (top + bot).mul_(0.5)
    d = (top - bot).mul_(0.5)
    out = _like(x, (b, 4 * c, h // 2, w // 2))
    ll, lh, hl, hh = _bands(out, layout)
    # Writing through out= views fills the result in place, with no band temporaries.
    torch.add(s[..., 0], s[..., 1], out=ll)
    torch.add(d[..., 0], d[..., 1], out=lh)
    torch.sub(s[..., 0], s[..., 1], out=hl)
    torch.sub(d[..., 0], d[..., 1], out=hh)
    return out


def _inverse(y: torch.Tensor, layout: str, size: tuple[int, int] | None) -> torch.Tensor:
    b, c4, h2, w2 = y.shape
    if c4 % 4:
        raise ValueError(f"inverse Haar input needs a multiple of 4 channels, got {c4}")
    c = c4 // 4
    ll, lh, hl, hh = _bands(y, layout)
    # Row pairs first: top/bottom halves of the low and high column filters.
    lo_top, lo_bot = (ll + lh).mul_(0.5), (ll - lh).mul_(0.5)
    hi_top, hi_bot = (hl + hh).mul_(0.5), (hl - hh).mul_(0.5)
    out = _like(y, (b, c, 2 * h2, 2 * w2))
    v = out.unflatten(3, (w2, 2)).unflatten(2, (h2, 2))
    torch.add(lo_top, hi_top, out=v[:, :, :, 0, :, 0])
    torch.sub(lo_top, hi_top, out=v[:, :, :, 0, :, 1])
    torch.add(lo_bot, hi_bot, out=v[:, :, :, 1, :, 0])
    torch.sub(lo_bot, hi_bot, out=v[:, :, :, 1, :, 1])
    if size is not None and (size[0] != 2 * h2 or size[1] != 2 * w2):
        out = out[:, :, : size[0], : size[1]]
    return out


def _tracing() -> bool:
    """True while torch.compile / torch.export or torch.jit.trace (and so ONNX export) records the call."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _band_slices(y: torch.Tensor, layout: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four bands of a (B, 4C, h, w) tensor as channel slices (no reshape of the batch dim)."""
    c = y.shape[1] // 4
    if layout == "band":
        return y[:, :c], y[:, c : 2 * c], y[:, 2 * c : 3 * c], y[:, 3 * c :]
    return y[:, :c], y[:, c::3], y[:, c + 1 :: 3], y[:, c + 2 :: 3]


def _forward_ops(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The forward transform as traceable tensor ops (autograd through them saves no tensor)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2))
    a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    s0, s1, d0, d1 = a + c, b + d, a - c, b - d
    ll, lh, hl, hh = (s0 + s1) * 0.5, (d0 + d1) * 0.5, (s0 - s1) * 0.5, (d0 - d1) * 0.5
    if layout == "band":
        return torch.cat([ll, lh, hl, hh], 1)
    return torch.cat([ll, torch.stack([lh, hl, hh], 2).flatten(1, 2)], 1)


def _inverse_ops(y: torch.Tensor, layout: str, size: tuple[int, int] | None) -> torch.Tensor:
    """The inverse transform as traceable tensor ops."""
    c, h2, w2 = y.shape[1] // 4, y.shape[-2], y.shape[-1]
    ll, lh, hl, hh = _band_slices(y, layout)
    p, m, q, r = ll + lh, ll - lh, hl + hh, hl - hh
    top = torch.stack([(p + q) * 0.5, (p - q) * 0.5], -1)  # B, C, h, w, 2 (columns 2j, 2j+1)
    bot = torch.stack([(m + r) * 0.5, (m - r) * 0.5], -1)
    out = torch.stack([top, bot], 3).reshape(-1, c, 2 * h2, 2 * w2)
    if size is not None and (size[0] != 2 * h2 or size[1] != 2 * w2):
        out = out[:, :, : size[0], : size[1]]
    return out


class _HaarDWT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, layout: str) -> torch.Tensor:
        ctx.layout = layout
        ctx.size = tuple(x.shape[-2:])
        return _forward(x, layout)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _HaarIDWT.apply(grad, ctx.layout, ctx.size), None


class _HaarIDWT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, layout: str, size: tuple[int, int] | None) -> torch.Tensor:
        ctx.layout = layout
        ctx.padded = size is not None and (size[0] != 2 * y.shape[-2] or size[1] != 2 * y.shape[-1])
        return _inverse(y, layout, size)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.padded:
            # The forward cropped the zero-padded border: its gradient is zero there.
            h, w = grad.shape[-2:]
            grad = F.pad(grad, (0, w % 2, 0, h % 2))
        return _HaarDWT.apply(grad, ctx.layout), None, None


def haar_dwt2(x: torch.Tensor, layout: str = "wavemix") -> torch.Tensor:
    """One level of the 2D Haar DWT.

    Args:
        x: input of shape (B, C, H, W), any floating dtype, contiguous or channels_last.
            Odd H or W is zero-padded at the end (PyWavelets' ``mode='zero'``).
        layout: ``"wavemix"`` or ``"band"`` channel order of the result (module docstring).

    Returns:
        Tensor of shape (B, 4C, ceil(H/2), ceil(W/2)).
    """
    _check_4d(x, "haar_dwt2 input")
    _check_layout(layout)
    if _tracing():
        return _forward_ops(x, layout)
    return _HaarDWT.apply(x, layout)


def haar_idwt2(y: torch.Tensor, layout: str = "wavemix", size: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`haar_dwt2`.

    Args:
        y: coefficients of shape (B, 4C, h, w) in the given ``layout``.
        layout: channel order of ``y``.
        size: (H, W) of the signal before the forward transform; the output is cropped to it
            (needed only when H or W was odd). Default: (2h, 2w).
    """
    _check_4d(y, "haar_idwt2 input")
    _check_layout(layout)
    if y.shape[1] % 4:
        raise ValueError(f"haar_idwt2 input needs a multiple of 4 channels, got {y.shape[1]}")
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if not (2 * y.shape[-2] - 1 <= size[0] <= 2 * y.shape[-2] and 2 * y.shape[-1] - 1 <= size[1] <= 2 * y.shape[-1]):
            raise ValueError(
                f"size {size} does not fit coefficients of spatial size {tuple(y.shape[-2:])}; "
                f"expected height {2 * y.shape[-2] - 1} or {2 * y.shape[-2]} and width "
                f"{2 * y.shape[-1] - 1} or {2 * y.shape[-1]}"
            )
    if _tracing():
        return _inverse_ops(y, layout, size)
    return _HaarIDWT.apply(y, layout, size)


def haar_wavedec2(x: torch.Tensor, levels: int, layout: str = "wavemix") -> list[torch.Tensor]:
    """Multi-level Haar DWT, each level computed once from the previous level's LL band.

    Returns a list of ``levels`` tensors, finest first: entry j (0-based) has shape
    (B, 4C, ceil(H / 2^(j+1)), ...) and holds level j+1's LL band followed by its details
    in ``layout`` order. The LL part of the last entry is the coarsest approximation.
    """
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
    _check_4d(x, "haar_wavedec2 input")
    c = x.shape[1]
    out: list[torch.Tensor] = []
    cur = x
    for _ in range(levels):
        y = haar_dwt2(cur, layout)
        out.append(y)
        cur = y[:, :c]
    return out


def haar_waverec2(coeffs: Sequence[torch.Tensor], layout: str = "wavemix", size: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`haar_wavedec2`: uses the coarsest entry's LL band and every level's details.

    ``size`` is the original (H, W); intermediate sizes are derived from it when given.
    """
    if len(coeffs) == 0:
        raise ValueError("haar_waverec2 needs at least one level of coefficients")
    levels = len(coeffs)
    sizes: list[tuple[int, int] | None] = [None] * levels
    if size is not None:
        h, w = int(size[0]), int(size[1])
        for j in range(levels):
            sizes[j] = (h, w)
            h, w = (h + 1) // 2, (w + 1) // 2
    c = coeffs[0].shape[1] // 4
    ll = coeffs[-1][:, :c]
    for j in range(levels - 1, -1, -1):
        y = coeffs[j]
        if ll.shape[-2:] != y.shape[-2:]:
            raise ValueError(
                f"level {j + 1}: approximation of size {tuple(ll.shape[-2:])} does not match details of size {tuple(y.shape[-2:])}"
            )
        y = torch.cat([ll, y[:, c:]], dim=1)
        ll = haar_idwt2(y, layout, sizes[j])
    return ll
