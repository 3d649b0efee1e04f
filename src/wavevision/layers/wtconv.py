"""WTConv: a depthwise convolution run on the wavelet sub-bands of several levels.

Paper: Finder, Amoyal, Treister and Freifeld, "Wavelet Convolutions for Large Receptive
Fields" (ECCV 2024, arXiv 2407.05848); public code ``BGU-CS-VIL/WTConv``.

For an input ``X`` of ``C`` channels and ``L = wt_levels``::

    X_LL^(0) = X
    [X_LL^(i), X_H^(i)] = WT(X_LL^(i-1))                      i = 1..L   (four sub-bands)
    [Y_LL^(i), Y_H^(i)] = s_i * Conv_i([X_LL^(i), X_H^(i)])   depthwise k x k on 4C channels
    Z^(L+1) = 0
    Z^(i) = IWT([Y_LL^(i) + Z^(i+1), Y_H^(i)])                 i = L..1
    WTConv(X) = s_0 * Conv_0(X) + Z^(1)                        (then subsampled by ``stride``)

Every level doubles the receptive field of its k x k convolution at the cost of 4C k^2
weights on a quarter of the pixels, so the receptive field grows exponentially with the
levels while the parameters grow linearly.

Conventions of the public code, kept so that its checkpoints load strictly (same keys,
shapes and parameter count):

* ``wt_filter`` / ``iwt_filter``: the (4C, 1, L, L) analysis and synthesis filters, stored as
  parameters that are not trained (``requires_grad=False``); channel ``4c + b`` is band ``b``
  (LL, LH, HL, HH) of input channel ``c``;
* ``base_conv`` (depthwise, ``padding='same'``, optional bias), ``base_scale.weight``
  (1, C, 1, 1) initialised to 1, ``wavelet_convs.i`` (depthwise on 4C channels, no bias) and
  ``wavelet_scale.i.weight`` (1, 4C, 1, 1) initialised to 0.1;
* odd heights or widths are zero-padded at the bottom / right before each level's transform
  and its synthesis is cropped back; ``stride`` subsamples the output (``AvgPool2d(1, stride)``).
* the transform is a stride-2 correlation with the reversed PyWavelets filters, zero padding
  ``L/2 - 1``, and the matching transposed convolution; for Haar this is exactly
  ``pywt.dwt2(x, 'haar')`` (and exactly invertible), for longer filters it is PyWavelets'
  ``periodization`` alignment with zeros outside the map (the public code's boundary
  handling, not one of PyWavelets' modes).

Haar (``wt_type`` ``"db1"`` or ``"haar"``) runs on the fast Haar kernels of
:mod:`wavevision.ops.haar` (band-major channels; the per-level weights are reordered to
match, a view of a few hundred numbers); every other discrete PyWavelets wavelet takes its
filters from :mod:`wavevision.ops.filterbank` and runs the strided convolutions.

The one speed choice lives apart, in :mod:`wavevision.accel`: its ``FastWTConv2d`` (swapped in
by ``accelerate``, which ``create_model`` applies) runs the depthwise convolutions of large CPU
maps channels-last through :meth:`WTConv2d.conv_input`, the identity here. The transforms and
checks are ``torch.fx`` leaves, so symbolic traces compute exactly what the module computes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from ..ops.filterbank import wavelet_filters
from ..ops.haar import haar_dwt2, haar_idwt2
from ..ops.transform import HAAR_NAMES, check_wavelet
from ..utils.validate import check_int

__all__ = [
    "ScaleModule", "WTConv1d", "WTConv2d", "max_wtconv_levels",
    "min_wtconv_size", "wavelet_conv_filters", "wtconv_check_input", "wtconv_dwt1", "wtconv_dwt2", "wtconv_idwt1",
    "wtconv_idwt2",
]


class ScaleModule(nn.Module):
    """A learned per-channel scale (``weight`` of shape ``dims``), no bias: the public ``_ScaleModule``."""

    def __init__(self, dims: list[int], init_scale: float = 1.0) -> None:
        super().__init__()
        self.dims = list(dims)
        self.weight = nn.Parameter(torch.full(self.dims, float(init_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


def wavelet_conv_filters(wavelet: str, channels: int, ndim: int = 2,
                         dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The analysis and synthesis filters of a WTConv layer, as the public code builds them.

    2D: (4C, 1, L, L), bands LL, LH, HL, HH of each channel in turn (outer products of the
    reversed decomposition filters, and of the reconstruction filters); 1D: (2C, 1, L),
    bands L, H. ``dtype`` float32 gives the public checkpoints' values bit for bit.
    """
    dec_lo, dec_hi, rec_lo, rec_hi = (torch.tensor(f, dtype=dtype) for f in wavelet_filters(wavelet))
    dec_lo, dec_hi = dec_lo.flip(0), dec_hi.flip(0)
    if ndim == 1:
        dec, rec = torch.stack([dec_lo, dec_hi]), torch.stack([rec_lo, rec_hi])
    else:
        # Row filter first (height), then column filter (width): band b = (row, column) in (lo|hi)^2.
        dec = torch.stack([torch.outer(r, c) for r, c in ((dec_lo, dec_lo), (dec_hi, dec_lo), (dec_lo, dec_hi), (dec_hi, dec_hi))])
        rec = torch.stack([torch.outer(r, c) for r, c in ((rec_lo, rec_lo), (rec_hi, rec_lo), (rec_lo, rec_hi), (rec_hi, rec_hi))])
    return dec[:, None].repeat(channels, *([1] * (ndim + 1))), rec[:, None].repeat(channels, *([1] * (ndim + 1)))


def min_wtconv_size(wt_levels: int) -> int:
    """The smallest map side on which ``wt_levels`` levels each still have two samples to split:
    ``2 ** (wt_levels - 1) + 1`` (1 for no levels)."""
    return 1 if wt_levels < 1 else 2 ** (wt_levels - 1) + 1


def max_wtconv_levels(size: int) -> int:
    """The most WTConv levels a map of side ``size`` allows (the inverse of :func:`min_wtconv_size`)."""
    return 0 if size < 2 else (size - 1).bit_length()


def _check_args(cls: str, in_channels: Any, out_channels: Any, kernel_size: Any, stride: Any, wt_levels: Any,
                wt_type: Any) -> tuple[int, int, int, int, str]:
    c = check_int(f"{cls} in_channels", in_channels, min=1)
    out = check_int(f"{cls} out_channels", out_channels, min=1)
    if out != c:
        raise ValueError(f"{cls} is depthwise, so out_channels must equal in_channels: got in_channels={c}, "
                         f"out_channels={out}; follow it with a 1x1 convolution to change the width")
    k = check_int(f"{cls} kernel_size", kernel_size, min=1)
    s = check_int(f"{cls} stride", stride, min=1)
    levels = check_int(f"{cls} wt_levels", wt_levels, min=0)
    try:
        name, _ = check_wavelet(wt_type)
    except ImportError:
        raise ImportError(f"{cls} wt_type={wt_type!r} needs PyWavelets for its filters: pip install "
                          "'wavevision[wavelets]' (or use wt_type='db1', Haar, which needs nothing else)") from None
    return c, k, s, levels, name


def _band_major(t: torch.Tensor, c: int, dim: int) -> torch.Tensor:
    """Reorder ``dim`` of a per-channel (4c + b) tensor to band-major (b * C + c), the Haar kernels' order."""
    return t.unflatten(dim, (c, 4)).transpose(dim, dim + 1).flatten(dim, dim + 1)


def _low_band(bands: torch.Tensor, c: int, band_major: bool) -> torch.Tensor:
    """The LL band (B, C, h, w) of sub-bands (B, 4C, h, w), band-major or per channel (a view)."""
    return bands[:, :c] if band_major else bands[:, 0::4]


def _add_to_low_band(bands: torch.Tensor, low: torch.Tensor, band_major: bool) -> torch.Tensor:
    """``bands`` (B, 4C, h, w) with ``low`` (B, C, h, w) added to their LL band (a new tensor)."""
    c = low.shape[1]
    if band_major:
        return torch.cat([bands[:, :c] + low, bands[:, c:]], dim=1)
    per_channel = bands.unflatten(1, (c, 4))
    return torch.cat([per_channel[:, :, :1] + low.unsqueeze(2), per_channel[:, :, 1:]], dim=2).flatten(1, 2)


def wtconv_check_input(x: Any, channels: int, wt_levels: int, ndim: int, cls: str) -> None:
    """The input checks of a WTConv layer, each a one-line ``ValueError`` / ``TypeError``
    (a ``torch.fx`` leaf: one graph node, run on every call)."""
    what = "(batch, channels, height, width)" if ndim == 4 else "(batch, channels, length)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{cls} expects a {ndim}D {what} tensor, got {type(x).__name__}")
    if x.dim() != ndim:
        hint = "; add a batch dimension with x.unsqueeze(0) for a single sample" if x.dim() == ndim - 1 else ""
        raise ValueError(f"{cls} expects a {ndim}D {what} tensor, got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{cls} expects a floating-point tensor, got dtype {x.dtype}; convert it, e.g. x.float()")
    if x.shape[1] != channels:
        raise ValueError(f"{cls} was built for {channels} channels, got {x.shape[1]} (input shape {tuple(x.shape)}); "
                         f"build it with in_channels=out_channels={x.shape[1]} or fix the input")
    need = min_wtconv_size(wt_levels)
    if min(x.shape[2:]) < need:
        size = "x".join(str(n) for n in x.shape[2:])
        side = f"{need}x{need}" if ndim == 4 else f"{need} samples"
        raise ValueError(f"{cls} with wt_levels={wt_levels} needs inputs of at least {side} (each level halves the "
                         f"size and the last one must have 2 samples to split), got {size}; use fewer levels "
                         f"(at most {max_wtconv_levels(min(x.shape[2:]))} here) or a larger input")


def wtconv_dwt2(x: torch.Tensor, wt_filter: torch.Tensor, fast_haar: bool) -> torch.Tensor:
    """One analysis level of :class:`WTConv2d`: (B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2)).

    ``fast_haar``: the fast Haar kernels (``wt_filter`` unused), bands band-major
    (LL | LH | HL | HH, each C channels); otherwise the public code's arithmetic, a stride-2
    depthwise correlation with the stored (4C, 1, L, L) filters after zero-padding odd sides at
    the bottom / right, bands per channel (channel ``4c + b``).
    """
    if fast_haar:
        return haar_dwt2(x, layout="band")
    h, w = x.shape[-2:]
    if h % 2 or w % 2:  # only then: a padded copy would also be what autograd saves
        x = F.pad(x, (0, w % 2, 0, h % 2))
    taps = wt_filter.shape[-1]
    return F.conv2d(x, wt_filter.to(x.dtype), stride=2, padding=taps // 2 - 1, groups=x.shape[1])


def wtconv_idwt2(y: torch.Tensor, iwt_filter: torch.Tensor, size: Sequence[int], fast_haar: bool) -> torch.Tensor:
    """One synthesis level of :class:`WTConv2d`: (B, 4C, h, w) in :func:`wtconv_dwt2`'s band order ->
    (B, C, H, W), cropped to the level's input ``size`` (the transpose of :func:`wtconv_dwt2`)."""
    if fast_haar:
        return haar_idwt2(y, layout="band", size=(size[0], size[1]))
    c, taps = y.shape[1] // 4, iwt_filter.shape[-1]
    x = F.conv_transpose2d(y, iwt_filter.to(y.dtype), stride=2, padding=taps // 2 - 1, groups=c)
    return x[..., : size[0], : size[1]]


def wtconv_dwt1(x: torch.Tensor, wt_filter: torch.Tensor) -> torch.Tensor:
    """One analysis level of :class:`WTConv1d`: (B, C, N) -> (B, 2C, ceil(N/2)), per channel (L, H)."""
    if x.shape[-1] % 2:
        x = F.pad(x, (0, 1))
    return F.conv1d(x, wt_filter.to(x.dtype), stride=2, padding=wt_filter.shape[-1] // 2 - 1, groups=x.shape[1])


def wtconv_idwt1(y: torch.Tensor, iwt_filter: torch.Tensor, size: int) -> torch.Tensor:
    """One synthesis level of :class:`WTConv1d`: (B, 2C, n) per channel (L, H) -> (B, C, ``size``)."""
    x = F.conv_transpose1d(y, iwt_filter.to(y.dtype), stride=2, padding=iwt_filter.shape[-1] // 2 - 1,
                           groups=y.shape[1] // 2)
    return x[..., :size]


class _WTConvNd(nn.Module):
    """What :class:`WTConv2d` and :class:`WTConv1d` share: the checked arguments, the stored
    filters, the base and per-level depthwise convolutions and their scales (the public order)."""

    _ndim = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, bias: bool,
                 wt_levels: int, wt_type: str) -> None:
        super().__init__()
        c, kernel_size, stride, levels, name = _check_args(type(self).__name__, in_channels, out_channels, kernel_size,
                                                           stride, wt_levels, wt_type)
        self.in_channels = c
        self.kernel_size = kernel_size
        self.wt_levels = levels
        self.wt_type = name
        self.stride = stride
        self.dilation = 1
        dec, rec = wavelet_conv_filters(name, c, ndim=self._ndim)
        self.wt_filter = nn.Parameter(dec, requires_grad=False)
        self.iwt_filter = nn.Parameter(rec, requires_grad=False)
        conv: type[nn.Conv1d | nn.Conv2d] = nn.Conv2d if self._ndim == 2 else nn.Conv1d
        bands, ones = 2**self._ndim, [1] * self._ndim  # sub-bands per channel; the scales' trailing dims
        self.base_conv = conv(c, c, kernel_size, padding="same", groups=c, bias=bias)
        self.base_scale = ScaleModule([1, c, *ones])
        self.wavelet_convs = nn.ModuleList([conv(bands * c, bands * c, kernel_size, padding="same", groups=bands * c,
                                                 bias=False) for _ in range(levels)])
        self.wavelet_scale = nn.ModuleList([ScaleModule([1, bands * c, *ones], init_scale=0.1) for _ in range(levels)])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, kernel_size={self.kernel_size}, wt_levels={self.wt_levels}, "
                f"wt_type={self.wt_type!r}, stride={self.stride}")


class WTConv2d(_WTConvNd):
    """The WTConv layer (module docstring): a drop-in for a depthwise ``nn.Conv2d``.

    Args:
        in_channels: channels C of the input (and of the output).
        out_channels: must equal ``in_channels`` (the layer is depthwise).
        kernel_size: side of every depthwise kernel (the base one and each level's).
        stride: subsampling of the output (1 keeps the size).
        bias: whether the base convolution has a bias.
        wt_levels: number of wavelet levels (0: a scaled depthwise convolution).
        wt_type: the wavelet, a discrete PyWavelets name (``"db1"`` / ``"haar"`` need no
            PyWavelets; close names are suggested for a typo).

    Input (B, C, H, W) of any floating dtype, with sides of at least
    :func:`min_wtconv_size` ``(wt_levels)``; output (B, C, ceil(H / stride), ceil(W / stride)).

    Attributes:
        use_fast_haar: ``True`` (default) runs Haar layers on the fast Haar kernels; ``False``
            runs them as the stored filters' convolutions, the public code's arithmetic (equal
            up to float rounding: the stored filters hold sqrt(1/2) rounded to float32).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 1, bias: bool = True,
                 wt_levels: int = 1, wt_type: str = "db1") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, bias, wt_levels, wt_type)
        self.use_fast_haar = True
        self.do_stride = nn.AvgPool2d(kernel_size=1, stride=self.stride) if self.stride > 1 else None

    @property
    def fast_haar(self) -> bool:
        """Whether the transforms take the fast Haar kernels (else the strided filter convolutions)."""
        return self.use_fast_haar and self.wt_type in HAAR_NAMES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wtconv_check_input(x, self.in_channels, self.wt_levels, 4, type(self).__name__)
        x = self.conv_input(x)  # one copy (if any) for the base convolution and the first transform
        out = self.base_scale(self.base_conv(x))
        if self.wt_levels:
            out = out + self.wavelet_branch(x)
        return out if self.do_stride is None else self.do_stride(out)

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The map a depthwise convolution reads: ``x`` itself. (``wavevision.accel``'s subclass
        returns a channels-last copy where oneDNN runs faster on it: same values.)"""
        return x

    def wavelet_branch(self, x: torch.Tensor) -> torch.Tensor:
        """``Z^(1)``: analysis down to ``wt_levels``, a scaled depthwise conv of each level's four
        sub-bands, then synthesis from the coarsest level, adding each level's LL on the way up.

        The sub-bands stay in the order their transform writes them: band-major for the Haar
        kernels (the stored weights are reordered instead), per channel for the filter path."""
        c, fast = self.in_channels, self.fast_haar
        sizes, levels = [], []
        ll = x
        for i in range(self.wt_levels):
            sizes.append(ll.shape[-2:])
            bands = wtconv_dwt2(ll, self.wt_filter, fast)  # (B, 4C, h, w)
            ll = _low_band(bands, c, fast)
            levels.append(self.level_conv(i, bands))
        z = levels[-1]
        for i in reversed(range(self.wt_levels)):
            if i < self.wt_levels - 1:
                z = _add_to_low_band(levels[i], z, fast)
            z = wtconv_idwt2(z, self.iwt_filter, sizes[i], fast)
        return z

    def level_conv(self, i: int, bands: torch.Tensor) -> torch.Tensor:
        """``s_i * Conv_i`` on the sub-bands of level ``i + 1`` (in the order of :meth:`wavelet_branch`)."""
        conv, scale = self.wavelet_convs[i], self.wavelet_scale[i]
        assert isinstance(conv, nn.Conv2d) and isinstance(scale, ScaleModule)
        if not self.fast_haar:
            return scale(conv(self.conv_input(bands)))
        c = self.in_channels
        y = F.conv2d(self.conv_input(bands), _band_major(conv.weight, c, 0), None, 1, "same", 1, 4 * c)
        return _band_major(scale.weight, c, 1) * y


class WTConv1d(_WTConvNd):
    """The 1D WTConv layer (public ``wtconv1d.py``, from TimePoint): sequences (B, C, N), two
    sub-bands (L, H) per level; same arguments, keys and conventions as :class:`WTConv2d`
    (``stride`` here is an average pool of ``stride`` samples, as in the public 1D code, so the
    output has ``N // stride`` samples). Every wavelet, Haar included, runs as the stored
    filters' strided convolutions."""

    _ndim = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 1, bias: bool = True,
                 wt_levels: int = 1, wt_type: str = "db1") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, bias, wt_levels, wt_type)
        self.do_stride = nn.AvgPool1d(kernel_size=self.stride, stride=self.stride) if self.stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wtconv_check_input(x, self.in_channels, self.wt_levels, 3, type(self).__name__)
        out = self.base_scale(self.base_conv(x))
        if self.wt_levels:
            out = out + self.wavelet_branch(x)
        return out if self.do_stride is None else self.do_stride(out)

    def wavelet_branch(self, x: torch.Tensor) -> torch.Tensor:
        """As :meth:`WTConv2d.wavelet_branch`, with two sub-bands per channel (per-channel order)."""
        sizes, levels = [], []
        low = x
        for conv, scale in zip(self.wavelet_convs, self.wavelet_scale):
            sizes.append(low.shape[-1])
            bands = wtconv_dwt1(low, self.wt_filter)
            low = bands[:, 0::2]
            levels.append(scale(conv(bands)))
        z = levels[-1]
        for i in reversed(range(self.wt_levels)):
            if i < self.wt_levels - 1:
                z = torch.stack([levels[i][:, 0::2] + z, levels[i][:, 1::2]], dim=2).flatten(1, 2)
            z = wtconv_idwt1(z, self.iwt_filter, sizes[i])
        return z


# torch.fx: the input checks and each transform level are single graph nodes (wavevision.ops._fx).
for _leaf in ("wtconv_check_input", "wtconv_dwt2", "wtconv_idwt2", "wtconv_dwt1", "wtconv_idwt1"):
    torch.fx.wrap(_leaf)
