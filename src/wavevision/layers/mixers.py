"""Token mixers that can replace the Haar DWT inside a WaveMix block, for ablations.

The WaveMix papers (arXiv 2203.03689, 2205.14375) claim the multi-level 2D DWT mixes tokens
better than the usual alternatives. To test that, :func:`mixer_block` builds a block of the
same shape as a WaveMix block with the spatial operation swapped:

* ``dwt``: the WaveMix block itself (:class:`~wavevision.layers.WaveMixBlock`, any level).
* every other mixer: a :class:`TokenMixerBlock`, the level-1 WaveMix block with the Haar
  transform replaced by ``space_to_depth(mixer(x))``. The 1x1 reduction to C/4 channels, the
  MLP on C channels at half size, the transposed-conv upsample and the BatchNorm are the same
  modules as in the WaveMix block (built by :func:`~wavevision.layers.wavemix_mlp`).

The spatial mixers act on the reduced C/4-channel map at full size and keep its shape; a
lossless 2x2 space-to-depth (``pixel_unshuffle``) then gives the C channels at half size that
the level-1 DWT would give. Each mixer is the published token-mixing operator alone; the
normalisation and residual the papers wrap around it are left out because the skeleton
supplies its own (the MLP ends in BatchNorm, the model adds a residual around each block):

* ``pool`` (PoolFormer): k x k average pooling, stride 1, padding not counted. PoolFormer
  subtracts the input only to cancel its own residual, so that subtraction is left out.
* ``fourier`` (FNet, for images): the real part of the orthonormal 2D FFT over height and width.
* ``random``: fixed random depthwise k x k filters (a buffer, never trained), seeded.
* ``dwconv`` (ConvMixer): a learned depthwise k x k convolution (the trainable twin of ``random``).
* ``mlp`` (MLP-Mixer): a token MLP shared by all channels over the H x W tokens; it needs a
  fixed token grid (see :class:`TokenMLPMixer` for other sizes).
* ``identity``: nothing; only the skeleton's own 2x2 space-to-depth and the transposed conv
  move information between positions.
* ``wtconv`` (WTConv, Finder et al., ECCV 2024): the :class:`~wavevision.layers.WTConv2d` layer,
  a depthwise k x k convolution plus depthwise k x k convolutions of the wavelet sub-bands of
  ``wt_levels`` levels (default 5x5 and 2 levels: on the ablation's 8x8 maps the coarsest
  level is 2x2, where a 5x5 kernel already sees the whole map), Haar unless ``wavelet=`` names
  another discrete wavelet.

Note that at level 1 the Haar DWT is an orthonormal mix of each 2x2 patch, so ``dwt`` at level
1 and ``identity`` span the same functions (the first 1x1 conv of the MLP can absorb the Haar
matrix); they differ only in how training sees them. Levels >= 2 are where the DWT adds a
multi-scale pyramid.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.padding import crop_to, pad_to_multiple
from .wavemix_block import WaveMixBlock, wavemix_mlp
from .wtconv import WTConv2d

__all__ = [
    "MIXERS",
    "DepthwiseConvMixer",
    "FourierMixer",
    "PoolMixer",
    "RandomFilterMixer",
    "TokenMLPMixer",
    "TokenMixerBlock",
    "WTConvMixer",
    "build_token_mixer",
    "mixer_block",
]

MIXERS = ("dwt", "pool", "fourier", "random", "dwconv", "mlp", "identity", "wtconv")


def _check_kernel(kernel_size: Any) -> int:
    if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 1 (so the map keeps its size), got {kernel_size!r}")
    return kernel_size


class PoolMixer(nn.Module):
    """PoolFormer's token mixer: ``kernel_size`` average pooling, stride 1, padding not counted."""

    def __init__(self, channels: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        k = _check_kernel(kernel_size)
        self.pool = nn.AvgPool2d(k, stride=1, padding=k // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


class FourierMixer(nn.Module):
    """FNet's token mixer on an image: ``Re(FFT2(x))`` over (H, W), orthonormal, no parameters.

    Half-precision inputs are transformed in float32 (CPU FFTs take no bfloat16) and cast back.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fourier_real(x)


def _fourier_real(x: torch.Tensor) -> torch.Tensor:
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    return torch.fft.fft2(work, norm="ortho").real.to(x.dtype)


class RandomFilterMixer(nn.Module):
    """Fixed random depthwise ``kernel_size`` filters: a persistent buffer, never trained.

    Weights are drawn from N(0, 1 / k^2) (unit gain on white noise). ``seed=None`` draws from
    torch's global generator (so ``torch.manual_seed`` fixes them like any initialisation);
    an int draws from a private generator, the same filters whatever the global state.
    """

    weight: torch.Tensor  # a buffer

    def __init__(self, channels: int, *, kernel_size: int = 3, seed: int | None = None) -> None:
        super().__init__()
        k = _check_kernel(kernel_size)
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        weight = torch.randn(channels, 1, k, k, generator=gen) / k
        self.register_buffer("weight", weight)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[-1]
        return F.conv2d(x, self.weight.to(x.dtype), padding=k // 2, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.weight.shape[-1]}"


class DepthwiseConvMixer(nn.Module):
    """ConvMixer's spatial mixing: a learned depthwise ``kernel_size`` convolution (with bias)."""

    def __init__(self, channels: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        k = _check_kernel(kernel_size)
        self.conv = nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{what} must be a positive int or an (H, W) pair of positive ints, got {value!r}")
    return int(pair[0]), int(pair[1])


class TokenMLPMixer(nn.Module):
    """MLP-Mixer's token mixing: ``Linear(N, hidden) -> GELU -> Linear(hidden, N)`` over the
    N = H x W tokens of each channel, shared by all channels.

    Args:
        channels: unused (the MLP is shared across channels); kept for a uniform signature.
        tokens: the fixed token grid (H, W) the MLP is built for.
        expansion: hidden = round(N * expansion).
        resize: what to do with another grid size. False (default): raise a ValueError
            naming the built grid. True: resample the map bilinearly to the grid (antialiased
            when shrinking), mix, and resample back; an approximation, documented as such.
    """

    def __init__(self, channels: int, *, tokens: int | Sequence[int] | None = None, expansion: float = 1.0,
                 resize: bool = False) -> None:
        super().__init__()
        if tokens is None:
            raise ValueError("the mlp mixer needs its token grid: tokens=(H, W) of the map it mixes")
        self.tokens = _pair(tokens, "tokens")
        if not (isinstance(expansion, (int, float)) and expansion > 0):
            raise ValueError(f"expansion must be a positive number, got {expansion!r}")
        n = self.tokens[0] * self.tokens[1]
        hidden = max(1, round(n * float(expansion)))
        self.resize = bool(resize)
        self.fc1 = nn.Linear(n, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = _to_grid(x, self.tokens, self.resize)
        b, c = g.shape[0], g.shape[1]
        y = self.fc2(self.act(self.fc1(g.reshape(b, c, -1)))).reshape(b, c, self.tokens[0], self.tokens[1])
        return _from_grid(y, x)

    def extra_repr(self) -> str:
        return f"tokens={self.tokens}, resize={self.resize}"


def _resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _to_grid(x: torch.Tensor, tokens: tuple[int, int], resize: bool) -> torch.Tensor:
    """``x`` on the mixer's token grid: as is, resampled (``resize``), or a clear error."""
    size = (x.shape[-2], x.shape[-1])
    if size == tokens:
        return x
    if not resize:
        raise ValueError(
            f"the mlp token mixer has a fixed {tokens[0]}x{tokens[1]} token grid but got a "
            f"{size[0]}x{size[1]} map: build the model for your input size (img_size=(H, W)), or pass "
            "mixer_kwargs={'resize': True} to resample other sizes to the grid"
        )
    return _resample(x, tokens)


def _from_grid(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The token grid ``y`` back at the size of the mixer's input ``like``."""
    size = (like.shape[-2], like.shape[-1])
    return y if tuple(y.shape[-2:]) == size else _resample(y, size)


class WTConvMixer(nn.Module):
    """WTConv as the token mixer: a :class:`~wavevision.layers.WTConv2d` on ``channels`` channels.

    Args:
        channels: channels of the map (the layer is depthwise).
        kernel_size: side of the base and of every level's depthwise kernel (the paper's 5).
        wt_levels: wavelet levels; maps need sides of at least ``2 ** (wt_levels - 1) + 1``.
        wavelet: ``"haar"`` (the fast Haar path, the public ``db1``) or another discrete
            PyWavelets name (``"db2"``, ``"sym4"``, ...).

    The state-dict keys under ``wtconv.`` are the public layer's, so its weights load as they are.
    """

    def __init__(self, channels: int, *, kernel_size: int = 5, wt_levels: int = 2, wavelet: str = "haar") -> None:
        super().__init__()
        self.wtconv = WTConv2d(channels, channels, kernel_size, wt_levels=wt_levels, wt_type=wavelet)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wtconv(x)


_TOKEN_MIXERS = {
    "pool": PoolMixer,
    "fourier": FourierMixer,
    "random": RandomFilterMixer,
    "dwconv": DepthwiseConvMixer,
    "mlp": TokenMLPMixer,
    "identity": None,
    "wtconv": WTConvMixer,
}


def _check_mixer(name: Any) -> str:
    if name not in MIXERS:
        close = difflib.get_close_matches(str(name), MIXERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown token mixer {name!r}{hint}; choose one of {', '.join(MIXERS)}")
    return name


def build_token_mixer(name: str, channels: int, **kwargs: Any) -> nn.Module:
    """The shape-keeping spatial mixer ``name`` for a ``channels``-channel map.

    ``dwt`` is not one: the Haar transform changes the shape and lives inside
    :class:`~wavevision.layers.WaveMixBlock`; use :func:`mixer_block`. Unknown keyword
    arguments raise a TypeError naming the accepted ones.
    """
    if _check_mixer(name) == "dwt":
        raise ValueError("the dwt mixer is the WaveMix block itself: build it with mixer_block('dwt', dim=..., level=...)")
    cls = _TOKEN_MIXERS[name]
    if cls is None:
        if kwargs:
            raise TypeError(f"the identity mixer takes no options, got {sorted(kwargs)}")
        return nn.Identity()
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "channels")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"the {name} mixer does not take {unknown}; it accepts {accepted or 'no options'}")
    return cls(channels, **kwargs)


class TokenMixerBlock(nn.Module):
    """The level-1 WaveMix block with the Haar DWT replaced by ``space_to_depth(mixer(x))``.

    ``reduction`` (1x1, C -> C/4), the spatial ``mixer`` on C/4 channels, 2x2 space-to-depth
    (C channels at half size), then ``feedforward``: the WaveMix MLP (1x1 C -> C*mult, GELU,
    Dropout, 1x1 -> ff_channel, x2 transposed conv -> C, BatchNorm). Odd sizes are zero-padded
    at the bottom/right to even and the output cropped back, as in the WaveMix block.
    """

    def __init__(
        self,
        *,
        dim: int,
        mixer: str,
        mult: int = 2,
        ff_channel: int | None = None,
        dropout: float = 0.0,
        upsample: str = "convtranspose",
        **mixer_kwargs: Any,
    ) -> None:
        super().__init__()
        if _check_mixer(mixer) == "dwt":
            raise ValueError("TokenMixerBlock takes the non-wavelet mixers; the dwt mixer is WaveMixBlock")
        if not isinstance(dim, int) or dim < 4 or dim % 4:
            raise ValueError(f"final_dim must be a positive multiple of 4 (the block reduces to final_dim/4 channels), got {dim!r}")
        if not isinstance(mult, int) or mult < 1:
            raise ValueError(f"mult must be an integer >= 1, got {mult!r}")
        ff_channel = dim if ff_channel is None else ff_channel
        self.dim = dim
        self.mixer_type = mixer
        # Same construction order as WaveMixBlock (MLP, then reduction) so seeded weights line up.
        self.feedforward = wavemix_mlp(dim, dim * mult, ff_channel, dim, dropout=dropout, upsample=upsample)
        self.reduction = nn.Conv2d(dim, dim // 4, 1)
        self.mixer = build_token_mixer(mixer, dim // 4, **mixer_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, size = pad_to_multiple(self.reduction(x), 2)
        y = F.pixel_unshuffle(self.mixer(y), 2)
        return crop_to(self.feedforward(y), size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, mixer={self.mixer_type!r}"


def mixer_block(
    mixer: str,
    *,
    dim: int,
    level: int = 1,
    mult: int = 2,
    ff_channel: int | None = None,
    dropout: float = 0.0,
    upsample: str = "convtranspose",
    **mixer_kwargs: Any,
) -> nn.Module:
    """A WaveMix-shaped block with token mixer ``mixer`` (one of :data:`MIXERS`).

    ``dwt`` returns a :class:`~wavevision.layers.WaveMixBlock` of ``level`` (it takes no
    ``mixer_kwargs``); the others return a :class:`TokenMixerBlock` and need ``level == 1``.
    The block maps (B, dim, H, W) to the same shape; the model adds the residual.
    """
    if _check_mixer(mixer) == "dwt":
        if mixer_kwargs:
            raise TypeError(f"the dwt mixer takes no mixer options (got {sorted(mixer_kwargs)}); set level instead")
        return WaveMixBlock(dim=dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample)
    if level != 1:
        raise ValueError(
            f"level={level!r} applies to the dwt mixer only; the {mixer} mixer replaces a level-1 DWT (use level=1)"
        )
    return TokenMixerBlock(dim=dim, mixer=mixer, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample,
                           **mixer_kwargs)


for _leaf in ("_fourier_real", "_to_grid", "_from_grid", "pad_to_multiple", "crop_to"):  # torch.fx graph nodes
    torch.fx.wrap(_leaf)
