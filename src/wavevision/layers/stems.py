"""Stems that turn an image into the C-channel map the WaveMix blocks mix.

State-dict names follow the public ``wavemix`` package (``conv.0``, ``conv.1``, ...).

The patchify stem is three convolutions with nothing between them (3x3, 3x3, then a
patch-sized conv of stride patch), so their composition is one linear map: a single
(patch + 4)-sized convolution of stride patch over the image zero-padded by 2, except near
the border, where the real network zero-pads the intermediate maps instead of extending
them. :class:`PatchifyStem` computes that composition exactly: the composed kernel and
bias are rebuilt from the three weights on every call (autograd reaches the original
parameters) and a cheap correction removes what the extended intermediate maps add on the
one-pixel ring around the image. For the published widths this takes 9x (C=64, patch 4) to
25x (C=192) fewer multiply-accumulates than running the three convolutions; when it would
not save work (narrow stems, patch 1 at small widths, small batches where the fixed cost of
composing dominates) the three convolutions run as written.
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["STEM_TYPES", "PatchifyStem", "normalize_stem", "patchify_stem", "strided_stem"]

# 'pachify' is the public package's spelling; both are accepted.
STEM_TYPES = ("patchify", "pachify", "strided")


def normalize_stem(initial_conv: str) -> str:
    """Map the accepted spellings to ``"patchify"`` or ``"strided"``."""
    if initial_conv not in STEM_TYPES:
        raise ValueError(f"unknown initial_conv {initial_conv!r}; choose one of {STEM_TYPES}")
    return "patchify" if initial_conv in ("patchify", "pachify") else "strided"


# Below this many multiply-accumulates saved per call (about 3 ms of one CPU core) the fixed cost
# of composing the kernel and correcting the border outweighs the saving (small batches).
_MIN_SAVING = 1e8


def _compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Kernel of ``conv(conv(x, inner), outer)`` (valid, stride 1): (Co, Cm, a) after (Cm, Ci, b) -> (Co, Ci, a+b-1)."""
    k = inner.shape[-1]
    return F.conv2d(F.pad(outer, (k - 1,) * 4), inner.flip(-1, -2).transpose(0, 1))


def _plain(m: nn.Module) -> bool:
    """An ``nn.Conv2d`` exactly (not a subclass) with no hooks, so its forward is ``F.conv2d``."""
    return type(m) is nn.Conv2d and not (m._forward_hooks or m._forward_pre_hooks)


def _dispatch_mode_active() -> bool:
    # A TorchDispatchMode (FlopCounterMode in count_macs, FakeTensorMode, ...) sees the
    # reference convolutions, so operation counts stay those of the published architecture.
    return torch._C._len_torch_dispatch_stack() > 0


class PatchifyStem(nn.Sequential):
    """conv3x3(in -> C/4), conv3x3(C/4 -> C/2), conv(C/2 -> C, kernel = stride = patch), GELU, BN.

    An ``nn.Sequential`` with the public package's layout; its forward evaluates the three
    convolutions as one composed convolution when that is cheaper (module docstring). Set
    ``compose = False`` on an instance to always run them one by one.
    """

    compose: bool = True

    def _per_pixel(self) -> tuple[float, float]:
        """Multiply-accumulates per input pixel: (composed, the three convolutions). From the
        modules' sizes, not their weights (plain ints while ``torch.fx`` traces)."""
        c1, c2, c3 = self._convs()
        return _macs_per_pixel(c1.in_channels, c1.out_channels, c2.out_channels, c3.out_channels, c3.kernel_size[0])

    def _convs(self) -> tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]:
        return cast(nn.Conv2d, self[0]), cast(nn.Conv2d, self[1]), cast(nn.Conv2d, self[2])

    def _saving(self, x: torch.Tensor) -> float:
        c1, c2, c3 = self._convs()
        return _saving(x, c1.weight, c2.weight, c3.weight)

    def _static_composable(self) -> bool:
        """The module structure allows composing: plain 3x3/pad-1 convs, then kernel = stride = patch, no hooks,
        and the composed kernel costs less."""
        c1, c2, c3 = self._convs()
        if not (self.compose and _plain(c1) and _plain(c2) and _plain(c3)):
            return False
        if any(c.groups != 1 or c.dilation != (1, 1) or c.padding_mode != "zeros" for c in (c1, c2, c3)):
            return False
        if c1.kernel_size != (3, 3) or c2.kernel_size != (3, 3) or c1.stride != (1, 1) or c2.stride != (1, 1):
            return False
        if c1.padding != (1, 1) or c2.padding != (1, 1) or c3.padding != (0, 0):
            return False
        p = c3.kernel_size[0]
        if c3.kernel_size != (p, p) or c3.stride != (p, p):
            return False
        return self._per_pixel()[0] < 0.8 * self._per_pixel()[1]

    def _composable(self) -> bool:
        return self._static_composable() and _runtime_composable()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._static_composable():
            c1, c2, c3 = self._convs()
            y = _patchify_convs(x, c1.weight, c1.bias, c2.weight, c2.bias, c3.weight, c3.bias)
        else:
            y = self[2](self[1](self[0](x)))
        return self._tail(y)

    def _tail(self, y: torch.Tensor) -> torch.Tensor:
        """The modules after the three convolutions (GELU, BatchNorm)."""
        for m in list(self)[3:]:
            y = m(y)
        return y


def _macs_per_pixel(cin: int, c1: int, c2: int, c3: int, p: int) -> tuple[float, float]:
    """Multiply-accumulates per input pixel of a cin -> c1 -> c2 -> c3 stem of patch p: (composed, three convolutions)."""
    composed = c3 * cin * (p + 4) ** 2 / p**2
    separate = 9 * c1 * (cin + c2) + c3 * c2
    return composed, separate


def _saving(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor) -> float:
    composed, separate = _macs_per_pixel(w1.shape[1], w1.shape[0], w2.shape[0], w3.shape[0], w3.shape[-1])
    return (separate - composed) * x.shape[0] * x.shape[-2] * x.shape[-1]


def _runtime_composable() -> bool:
    if torch.jit.is_tracing():  # TorchScript / ONNX graphs keep the three convolutions (kernels must be known)
        return False
    return torch.compiler.is_compiling() or not _dispatch_mode_active()


def _patchify_convs(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
                    b2: torch.Tensor | None, w3: torch.Tensor, b3: torch.Tensor | None) -> torch.Tensor:
    """The stem's three convolutions, composed when that saves enough work on this input (decided at run
    time: a ``torch.fx`` leaf, so traced graphs choose like the module)."""
    p = w3.shape[-1]
    if x.dim() == 4 and x.device.type != "meta" and _runtime_composable() and _saving(x, w1, w2, w3) >= _MIN_SAVING:
        return _composed_stem(x, w1, b1, w2, b2, w3, b3)
    return F.conv2d(F.conv2d(F.conv2d(x, w1, b1, padding=1), w2, b2, padding=1), w3, b3, stride=p)


def _composed_stem(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
                   b2: torch.Tensor | None, w3: torch.Tensor, b3: torch.Tensor | None) -> torch.Tensor:
    """``c3(c2(c1(x)))`` for 3x3/pad-1, 3x3/pad-1, then kernel = stride = p convolutions.

    With U = c1 over x zero-padded by 2 (c1's map extended by one pixel on every side), the
    network feeds c2 with U minus its outer ring R, so
    ``c3(c2(.)) = composed(x) - c3(c2_nobias(R))``; R is non-zero on the ring only, so the
    correction touches the first and last rows and columns of patches.
    """
    p = w3.shape[-1]
    h, w = x.shape[-2:]
    if h % p or w % p or h < 1 or w < 1:
        return F.conv2d(F.conv2d(F.conv2d(x, w1, b1, padding=1), w2, b2, padding=1), w3, b3, stride=p)
    b1 = b1 if b1 is not None else w1.new_zeros(w1.shape[0])
    b2 = b2 if b2 is not None else w2.new_zeros(w2.shape[0])
    b3 = b3 if b3 is not None else w3.new_zeros(w3.shape[0])
    with torch.autocast(x.device.type, enabled=False):
        # Composed in the weights' precision; under autocast the big convolution below runs
        # in the autocast dtype like the three it replaces.
        w12 = _compose(w2, w1)
        b12 = b2 + w2.sum((2, 3)) @ b1
        w123 = _compose(w3, w12)
        b123 = b3 + w3.sum((2, 3)) @ b12
    y = F.conv2d(x, w123, b123, stride=p, padding=2)

    # The ring of U: rows -1 and h (full width, corners included), columns -1 and w
    # (rows 0..h-1 only, so every corner is counted once).
    xp = F.pad(x, (2, 2, 2, 2))
    u_top = F.conv2d(xp[:, :, 0:3], w1, b1)
    u_bot = F.conv2d(xp[:, :, h + 1 : h + 4], w1, b1)
    u_left = F.conv2d(xp[:, :, 1 : h + 3, 0:3], w1, b1)
    u_right = F.conv2d(xp[:, :, 1 : h + 3, w + 1 : w + 4], w1, b1)
    # What c2 adds from the ring to its output's ring, routed through c3.
    top = F.conv2d(F.conv2d(u_top, w2[:, :, 0:1]), w3[:, :, 0:1], stride=(1, p))
    bot = F.conv2d(F.conv2d(u_bot, w2[:, :, 2:3]), w3[:, :, p - 1 : p], stride=(1, p))
    left = F.conv2d(F.conv2d(u_left, w2[:, :, :, 0:1], padding=(1, 0)), w3[:, :, :, 0:1], stride=(p, 1))
    right = F.conv2d(F.conv2d(u_right, w2[:, :, :, 2:3], padding=(1, 0)), w3[:, :, :, p - 1 : p], stride=(p, 1))
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        return _SubtractBorder.apply(y, top, bot, left, right)
    return _subtract_border(y, top, bot, left, right)


def _subtract_border(y: torch.Tensor, top: torch.Tensor, bot: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    y[:, :, :1] -= top
    y[:, :, -1:] -= bot
    y[:, :, :, :1] -= left
    y[:, :, :, -1:] -= right
    return y


class _SubtractBorder(torch.autograd.Function):
    """In-place border correction whose backward passes the gradient through without a copy
    (autograd's in-place slice updates would copy the whole gradient once per slice)."""

    @staticmethod
    def forward(ctx, y, top, bot, left, right):
        ctx.mark_dirty(y)
        return _subtract_border(y, top, bot, left, right)

    @staticmethod
    def backward(ctx, g):
        return g, -g[:, :, :1], -g[:, :, -1:], -g[:, :, :, :1], -g[:, :, :, -1:]


def patchify_stem(in_chans: int, dim: int, patch_size: int) -> PatchifyStem:
    """conv3x3(in -> C/4), conv3x3(C/4 -> C/2), conv(C/2 -> C, kernel = stride = patch), GELU, BN."""
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    return PatchifyStem(
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


torch.fx.wrap("_patchify_convs")  # one graph node: the composition is chosen at run time
