"""The WaveMix token-mixing block, one class for every level.

A level-L block (WaveMix, arXiv 2205.14375) reduces the map to C/4 channels with a 1x1
conv, takes a Haar pyramid of levels 1..L (each level computed once, from the previous
level's LL band), and mixes it coarse to fine: the coarsest level goes through its MLP,
whose upsampled C/2-channel output is concatenated to the next finer level's C channels,
and so on down to level 1, whose MLP returns C channels at the block's input size. The
model adds the residual around the block (:func:`residual_step`).

Module names match the public ``wavemix`` package (``reduction``, ``feedforward`` for
level 1 or ``feedforward1..L``, Sequential indices 0/3/4/5), so its state dicts load as-is.

These are the plain reference modules (``nn.Conv2d``, ``nn.Dropout``, ``nn.ConvTranspose2d``,
``nn.BatchNorm2d``); :func:`wavevision.accel.accelerate` swaps in CPU fast paths with the same
state dict.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..ops.padding import check_pad, crop_to, pad_to_multiple
from ..ops.transform import DEFAULT_MODE, check_wavelet, wavelet_bank, wavelet_pyramid
from .drop_path import drop_path

__all__ = ["UPSAMPLE_MODES", "WaveMixBlock", "residual_step", "wavemix_mlp"]

UPSAMPLE_MODES = ("convtranspose", "bilinear", "nearest")
# A level-L pyramid and its MLPs need about this many bytes per byte of the padded reduced map.
_PYRAMID_EXPANSION = 8.0
# The CPU fast modules that lived here; ``from wavevision.layers.wavemix_block import X`` keeps working.
_MOVED = ("FastConvTranspose2d", "FastDropout", "PointwiseConv2d")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from .. import accel  # accel imports this module: imported when asked for

        return getattr(accel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_upsample(upsample: str) -> None:
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"unknown upsample {upsample!r}; choose one of {UPSAMPLE_MODES}")


def wavemix_mlp(
    in_channels: int,
    hidden: int,
    ff_channel: int,
    out_channels: int,
    *,
    dropout: float = 0.0,
    upsample: str = "convtranspose",
) -> nn.Sequential:
    """One level's MLP: 1x1 conv, GELU, Dropout, 1x1 conv, x2 upsample, BatchNorm.

    With ``upsample="convtranspose"`` the second conv gives ``ff_channel`` channels and a
    ConvTranspose2d(4, stride 2, padding 1) maps them to ``out_channels`` (the reference).
    With a parameter-free upsample (WaveMix-Lite) the second conv gives ``out_channels``
    directly and index 4 is an ``nn.Upsample`` holding no parameters.
    """
    _check_upsample(upsample)
    if upsample == "convtranspose":
        second = nn.Conv2d(hidden, ff_channel, 1)
        up: nn.Module = nn.ConvTranspose2d(ff_channel, out_channels, 4, stride=2, padding=1)
    else:
        second = nn.Conv2d(hidden, out_channels, 1)
        up = nn.Upsample(scale_factor=2, mode=upsample, **({"align_corners": False} if upsample == "bilinear" else {}))
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 1),
        nn.GELU(),
        nn.Dropout(dropout),
        second,
        up,
        nn.BatchNorm2d(out_channels),
    )


class WaveMixBlock(nn.Module):
    """WaveMix token mixer at any level (1, 2, 3, 4, ...).

    Args:
        dim: channels C of the block's input and output; must be divisible by 4.
        level: number of Haar levels, >= 1.
        mult: hidden expansion of every MLP (hidden = C * mult).
        ff_channel: channels before the transposed-conv upsample.
        dropout: dropout inside the MLPs.
        upsample: ``"convtranspose"`` (reference) or ``"bilinear"`` / ``"nearest"``
            (parameter-free, WaveMix-Lite); parameter-free needs ``ff_channel == dim``.
        wavelet: ``"haar"`` (the reference, fast path, no PyWavelets) or any discrete
            PyWavelets name (``"db2"``, ``"sym4"``, ``"bior2.2"``, ...); no parameters change.
        mode: padding mode of longer filters (:mod:`wavevision.ops.transform`; default
            ``"periodization"``, whose levels halve exactly as the MLPs' x2 upsample needs).

    Inputs of any size work: the reduced map is zero-padded at the bottom/right to a
    multiple of 2^level and the output is cropped back (``wavevision.ops.padding``).
    """

    wavelet_bank: torch.Tensor | None  # a buffer (see __init__)

    def __init__(
        self,
        *,
        dim: int,
        level: int = 1,
        mult: int = 2,
        ff_channel: int | None = None,
        dropout: float = 0.0,
        upsample: str = "convtranspose",
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__()
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            raise ValueError(f"level must be an integer >= 1, got {level!r}")
        if dim % 4 or dim < 4:
            raise ValueError(
                f"final_dim must be a positive multiple of 4 (the block reduces to final_dim/4 channels "
                f"before the 4-band Haar transform), got {dim}; try {max(4, dim - dim % 4)} or {dim - dim % 4 + 4}"
            )
        if not isinstance(mult, int) or mult < 1:
            raise ValueError(f"mult must be an integer >= 1, got {mult!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        _check_upsample(upsample)
        ff_channel = dim if ff_channel is None else ff_channel
        if ff_channel < 1:
            raise ValueError(f"ff_channel must be >= 1, got {ff_channel}")
        if upsample != "convtranspose" and ff_channel != dim:
            raise ValueError(
                f"a parameter-free upsample ({upsample!r}) needs ff_channel == final_dim ({dim}), got {ff_channel}: "
                "the MLP's second conv feeds the upsample directly; use upsample='convtranspose' for other ff_channel"
            )
        self.dim = dim
        self.level = level
        self.wavelet, self.mode = check_wavelet(wavelet, mode)
        # None for Haar (the fast path); else the filters, moved with the block, in no state dict.
        self.register_buffer("wavelet_bank", wavelet_bank(self.wavelet, self.mode), persistent=False)
        for j in range(1, level + 1):
            in_ch = dim if j == level else dim + dim // 2
            out_ch = dim if j == 1 else dim // 2
            mlp = wavemix_mlp(in_ch, dim * mult, ff_channel, out_ch, dropout=dropout, upsample=upsample)
            self.add_module("feedforward" if level == 1 else f"feedforward{j}", mlp)
        # Registered after the MLPs so state-dict key order equals the public package's.
        self.reduction = nn.Conv2d(dim, dim // 4, 1)

    def mlps(self) -> list[nn.Module]:
        """The per-level MLPs, finest (level 1) first."""
        names = ["feedforward"] if self.level == 1 else [f"feedforward{j}" for j in range(1, self.level + 1)]
        return [self.get_submodule(name) for name in names]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mixed map (B, C, H, W); the model adds the residual."""
        coeffs, mlps, size = self.pyramid(x)
        y = mlps[-1](coeffs[-1])  # the coarsest level, then coarse to fine
        for j in range(self.level - 2, -1, -1):
            y = mlps[j](torch.cat([coeffs[j], y], dim=1))
        return crop_to(y, size)

    def pyramid(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[nn.Module], Any]:
        """The reduced map's wavelet pyramid (level 1 first: each level's bands as channels, the
        coarsest with its LL band), the level MLPs (level 1 first) and the size before padding."""
        r = self.reduction(x)
        check_pad(r, self.level, expansion=_PYRAMID_EXPANSION)
        padded = pad_to_multiple(r, 2**self.level)
        r, size = padded[0], padded[1]
        coeffs = wavelet_pyramid(r, self.level, self.wavelet_bank, self.mode, layout="wavemix")
        mlps = self.mlps()
        return coeffs, mlps, size

    def extra_repr(self) -> str:
        wave = "" if self.wavelet_bank is None else f", wavelet={self.wavelet!r}, mode={self.mode!r}"
        return f"dim={self.dim}, level={self.level}{wave}"


def residual_step(block: nn.Module, x: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
    """``x + block(x)``, the residual around a block, its branch dropped per sample with
    probability ``drop_prob`` (stochastic depth; pass 0 in eval mode). A block with an
    ``add_residual`` method (:mod:`wavevision.accel`'s) makes the sum itself where nothing is dropped."""
    if drop_prob > 0.0:
        return x + drop_path(block(x), drop_prob, True)
    add_residual = getattr(block, "add_residual", None)
    if add_residual is not None:
        return add_residual(x)
    return x + block(x)  # x first: the sum takes the input's memory format


# torch.fx: size checks and the transform are single graph nodes (wavevision.ops._fx).
for _leaf in ("check_pad", "pad_to_multiple", "crop_to", "wavelet_pyramid"):
    torch.fx.wrap(_leaf)
