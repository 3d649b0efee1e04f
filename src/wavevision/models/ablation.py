"""Token-mixer ablation models: the WaveMix skeleton with a swappable token mixer.

Papers: "WaveMix: Resource-efficient Token Mixing for Images" (arXiv 2203.03689) and
"WaveMix: A Resource-efficient Neural Network for Image Analysis" (arXiv 2205.14375) claim
the multi-level DWT beats pooling, Fourier, random filters, depthwise conv and token MLPs
as a token mixer. :class:`MixerNet` is a :class:`~wavevision.models.WaveMix` whose blocks
are built by :func:`wavevision.layers.mixer_block`: with ``mixer="dwt"`` it *is* WaveMix
(same modules, same state-dict keys), with another mixer only the Haar transform inside
each block is replaced (see :mod:`wavevision.layers.mixers`).

The registered ``mixer_*`` models are sized for the embedded ``digits`` data (1 x 16 x 16,
10 classes): a patchify stem with patch 2 (8 x 8 maps), width 32, depth 4, mult 2. Their
parameter counts are kept within 5 % of each other: the level-1 skeleton uses ff_channel 32;
``mixer_mlp`` (whose token MLP adds 8.3 k parameters per block) and ``mixer_dwt_l2`` (whose
second level adds an MLP) use ff_channel 16, which brings them back to the same size.
``mixer_wtconv`` (WTConv, Finder et al., ECCV 2024: 5x5 kernels, 2 Haar levels on the 8 x 8
maps) adds 2,136 parameters per block (base 5x5 depthwise with bias 208, base scale 8, per
level 4 x 8 x 25 = 800 weights and 32 scales, and the fixed 2x2 analysis and synthesis
filters, 2 x 128, which the public layer stores as parameters): 8,544 in all, so it uses
ff_channel 28 (4 fewer channels save 9,232) and has 86,778 parameters. The spread over all
nine models is 83,818 to 87,786 (4.7 %).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from ..data.embedded import DIGITS_MEAN, DIGITS_STD
from ..layers.mixers import MIXERS, _pair, mixer_block
from ..layers.wtconv import WTConv2d, min_wtconv_size
from ..ops.transform import DEFAULT_MODE
from ._base import check_image
from ._builder import build_model
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model
from .wavemix import WaveMix

__all__ = ["WAVELET_MIXERS", "MixerNet"]

#: The mixers built on a wavelet transform: they take ``wavelet=`` (and the ablation's ``--wavelets``).
WAVELET_MIXERS = ("dwt", "wtconv")


class MixerNet(WaveMix):
    """WaveMix classifier whose blocks use token mixer ``mixer``.

    Args:
        mixer: one of ``dwt, pool, fourier, random, dwconv, mlp, identity, wtconv``.
        img_size: the input size the model is built for (int or (H, W)); only the ``mlp``
            mixer depends on it (its token grid is the blocks' map size at this input).
        mixer_kwargs: options of the mixer (``kernel_size`` for pool/random/dwconv/wtconv, ``seed``
            for random (block i gets seed + i), ``expansion`` and ``resize`` for mlp,
            ``wt_levels`` for wtconv).
        level: Haar levels of the ``dwt`` mixer; the other mixers need 1.
        wavelet: the ``dwt`` and ``wtconv`` mixers' wavelet (``"haar"``, or a PyWavelets name such
            as ``"db2"``, ``"sym4"``, ``"bior2.2"``: same parameters for dwt; WTConv's fixed filters
            grow with the wavelet's length); ``mode`` the dwt mixer's padding mode
            (:mod:`wavevision.ops.transform`; WTConv pads as the public code does). The other
            mixers take the default ``"haar"``.
        The other arguments are :class:`~wavevision.models.WaveMix`'s.
    """

    def __init__(
        self,
        *,
        mixer: str = "dwt",
        num_classes: int = 10,
        depth: int = 4,
        mult: int = 2,
        ff_channel: int = 32,
        final_dim: int = 32,
        dropout: float = 0.0,
        level: int = 1,
        initial_conv: str = "pachify",
        patch_size: int = 2,
        stride: int = 1,
        in_chans: int = 1,
        upsample: str = "convtranspose",
        img_size: int | Sequence[int] = 16,
        mixer_kwargs: Mapping[str, Any] | None = None,
        global_pool: str = "avg",
        drop_path_rate: float = 0.0,
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        if mixer not in MIXERS:
            mixer_block(mixer, dim=final_dim)  # raises the error that names the choices
        if mixer != "dwt" and level != 1:
            raise ValueError(f"level={level!r} applies to the dwt mixer only; the {mixer} mixer replaces a level-1 DWT")
        if mixer not in WAVELET_MIXERS and (wavelet, mode) != ("haar", DEFAULT_MODE):
            raise ValueError(f"wavelet={wavelet!r} / mode={mode!r} apply to the dwt and wtconv mixers only; the {mixer} "
                             "mixer has no wavelet transform (drop them, or use mixer='dwt')")
        if mixer == "wtconv" and mode != DEFAULT_MODE:
            raise ValueError(f"mode={mode!r} applies to the dwt mixer only; WTConv pads as its public code does (drop mode)")
        if mixer == "wtconv" and "wavelet" in (mixer_kwargs or {}):
            raise TypeError("set the wtconv mixer's wavelet with wavelet=..., not in mixer_kwargs")
        # WaveMix builds its own (dwt) blocks; for another mixer they are replaced below, so
        # for one seed every mixer gets the same stem and head weights.
        super().__init__(
            num_classes=num_classes, depth=depth, mult=mult, ff_channel=ff_channel, final_dim=final_dim,
            dropout=dropout, level=level, initial_conv=initial_conv, patch_size=patch_size, stride=stride,
            in_chans=in_chans, upsample=upsample, global_pool=global_pool, drop_path_rate=drop_path_rate,
            wavelet=wavelet if mixer == "dwt" else "haar", mode=mode,
        )
        self.wavelet = wavelet
        self.mixer_type = mixer
        self.img_size = _pair(img_size, "img_size")
        if mixer == "dwt":
            if mixer_kwargs:
                raise TypeError(f"the dwt mixer takes no mixer_kwargs (got {sorted(mixer_kwargs)}); set level instead")
            return
        self.layers = nn.ModuleList(
            mixer_block(mixer, dim=final_dim, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample,
                        **self._mixer_options(mixer, dict(mixer_kwargs or {}), i, stride))
            for i in range(depth)
        )
        if mixer == "wtconv":
            # WTConv's levels need maps of min_wtconv_size(levels) a side: the smallest input giving them
            levels = max(m.wt_levels for m in self.layers.modules() if isinstance(m, WTConv2d))
            need = min_wtconv_size(levels)
            self.min_input_size = next(n for n in range(1, 64 * need) if min(self.feature_grid((n, n), stride)) >= need)
            self._min_why = f"the wtconv mixer's {levels} wavelet levels need {need}x{need} maps"

    def _check_input(self, x: torch.Tensor) -> None:
        check_image(x, type(self).__name__, self.in_chans, getattr(self, "min_input_size", 1), getattr(self, "_min_why", ""))

    def _mixer_options(self, mixer: str, options: dict[str, Any], index: int, stride: int) -> dict[str, Any]:
        if mixer == "random" and options.get("seed") is not None:
            options["seed"] = int(options["seed"]) + index
        if mixer == "mlp" and "tokens" not in options:
            options["tokens"] = self.feature_grid(self.img_size, stride)
        if mixer == "wtconv":
            options["wavelet"] = self.wavelet
        return options

    def feature_grid(self, img_size: tuple[int, int], stride: int = 1) -> tuple[int, int]:
        """The map size a block's mixer sees for an ``img_size`` input (stem output, padded to even)."""

        def stem(n: int) -> int:
            if self.stem_type == "patchify":
                return -(-n // self.patch_size)
            half = -(-n // stride)  # two stride-s convolutions, each rounding up
            return -(-half // stride)

        return tuple(-(-stem(n) // 2) * 2 for n in img_size)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Registered ablation configurations (digits: 1 x 16 x 16, 10 classes).

_DEFAULTS: dict[str, Any] = dict(
    num_classes=10, depth=4, mult=2, ff_channel=32, final_dim=32, dropout=0.0, level=1,
    initial_conv="pachify", patch_size=2, stride=1, in_chans=1, upsample="convtranspose", img_size=16,
)
_NOTE = "wavevision token-mixer ablation configuration (ours, not a published model)"


def _cfg(mixer: str, params: int, macs: int) -> PretrainedCfg:
    """A digits record: 1 x 16 x 16 inputs normalised like the embedded digits data, 10 classes, 8 x 8 maps."""
    return PretrainedCfg(
        input_size=(1, 16, 16), pool_size=(8, 8), num_classes=10, interpolation="bilinear", crop_pct=1.0,
        mean=DIGITS_MEAN, std=DIGITS_STD, first_conv="conv.0", classifier="pool.2", license="mit", dataset="digits",
        params=params, macs=macs, description=f"WaveMix skeleton with the {mixer} token mixer", notes=(_NOTE,),
    )


default_cfgs = generate_default_cfgs({
    "mixer_dwt": _cfg("dwt", 87_466, 1_820_992),
    "mixer_dwt_l2": _cfg("level-2 dwt", 83_818, 1_411_392),
    "mixer_pool": _cfg("pool", 87_466, 1_820_992),
    "mixer_fourier": _cfg("fourier", 87_466, 1_820_992),
    "mixer_random": _cfg("random", 87_466, 1_839_424),
    "mixer_dwconv": _cfg("dwconv", 87_786, 1_839_424),
    "mixer_mlp": _cfg("mlp", 83_818, 1_493_312),
    "mixer_identity": _cfg("identity", 87_466, 1_820_992),
    "mixer_wtconv": _cfg("wtconv", 86_778, 1_788_736),
})


def _mixer(name: str, mixer: str, kwargs: dict[str, Any], **cfg: Any) -> MixerNet:
    return build_model(name, MixerNet, {**_DEFAULTS, "mixer": mixer, **cfg}, kwargs)


@register_model
def mixer_dwt(**kwargs: Any) -> MixerNet:
    """The WaveMix (level-1 Haar, WaveMix-Lite) block; any ``level`` as an override."""
    return _mixer("mixer_dwt", "dwt", kwargs)


@register_model
def mixer_dwt_l2(**kwargs: Any) -> MixerNet:
    """The level-2 WaveMix block (a two-level Haar pyramid), ff_channel 16 to match the others' size."""
    return _mixer("mixer_dwt_l2", "dwt", kwargs, level=2, ff_channel=16)


@register_model
def mixer_pool(**kwargs: Any) -> MixerNet:
    """PoolFormer-style 3x3 average pooling in place of the Haar DWT."""
    return _mixer("mixer_pool", "pool", kwargs)


@register_model
def mixer_fourier(**kwargs: Any) -> MixerNet:
    """FNet-style Fourier basis (real part of the 2D FFT) in place of the Haar DWT."""
    return _mixer("mixer_fourier", "fourier", kwargs)


@register_model
def mixer_random(**kwargs: Any) -> MixerNet:
    """Fixed random depthwise 3x3 filters (buffers) in place of the Haar DWT."""
    return _mixer("mixer_random", "random", kwargs)


@register_model
def mixer_dwconv(**kwargs: Any) -> MixerNet:
    """ConvMixer-style learned depthwise 3x3 conv in place of the Haar DWT."""
    return _mixer("mixer_dwconv", "dwconv", kwargs)


@register_model
def mixer_mlp(**kwargs: Any) -> MixerNet:
    """MLP-Mixer-style token MLP over the 8x8 token grid (fixed: built for img_size), ff_channel 16."""
    return _mixer("mixer_mlp", "mlp", kwargs, ff_channel=16)


@register_model
def mixer_identity(**kwargs: Any) -> MixerNet:
    """No token mixer: only the skeleton's 2x2 space-to-depth and transposed conv mix positions."""
    return _mixer("mixer_identity", "identity", kwargs)


@register_model
def mixer_wtconv(**kwargs: Any) -> MixerNet:
    """WTConv (5x5 kernels, 2 Haar levels) in place of the Haar DWT, ff_channel 28 to match the others' size."""
    return _mixer("mixer_wtconv", "wtconv", kwargs, ff_channel=28)


torch.fx.wrap("check_image")  # the input check is one torch.fx graph node, as in WaveMix
