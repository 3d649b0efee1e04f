"""WaveMix and WaveMix-Lite: classification, semantic segmentation and super-resolution.

Papers: "WaveMix: Resource-efficient Token Mixing for Images" (arXiv 2203.03689) and
"WaveMix: A Resource-efficient Neural Network for Image Analysis" (arXiv 2205.14375).

The state-dict layout equals the public ``wavemix`` 0.2.4 package (``conv``, ``layers``,
``pool.2`` / ``expand``), so its checkpoints load strictly. Differences from that code,
all invisible on the sizes it accepts: each Haar level is computed once per block (it
recomputes the lower levels), the transform is a module-free function (no device-bound
globals), and any input size works (pad then crop, ``wavevision.ops.padding``).

Every model speaks timm's interface (:mod:`wavevision.models._base`): ``pretrained_cfg``
records (``default_cfgs`` below), ``forward_intermediates`` / ``features_only`` with one
feature map per block, ``reset_classifier(num_classes, global_pool)``, gradient
checkpointing, and ``torch.fx`` tracing.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.constants import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from ..fuse import fuse as _fuse
from ..layers import WaveMixBlock, normalize_stem, patchify_stem, strided_stem
from ..layers.grad_checkpoint import checkpoint_seq
from ..layers.layout import in_format_of, inference_layout
from ..layers.stems import STEM_TYPES
from ..layers.wavemix_block import residual_step
from ..ops.padding import crop_to, pad_to_multiple
from ..ops.transform import DEFAULT_MODE
from ..utils.validate import check_float
from ._base import ModelBase, check_global_pool, check_image, to_output_fmt
from ._builder import build_model
from ._deprecated import renamed_attributes
from ._features import FeatureInfo, feature_take_indices, pyramid_taps
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model, register_model_deprecations

__all__ = ["WaveMix", "WaveMixPaperSR", "WaveMixPatchSeg", "WaveMixSeg"]

IntermediatesOut = list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]
POOL_TYPES = ("avg", "max", "")
DENSE_POOL_TYPES = ("",)


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _resize_like(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``y`` resized (bilinear) to ``ref``'s spatial size where they differ."""
    if y.shape[-2:] == ref.shape[-2:]:
        return y
    return F.interpolate(y, size=tuple(ref.shape[-2:]), mode="bilinear", align_corners=False)


class _WaveMixBase(ModelBase):
    """Stem + residual WaveMix blocks; subclasses add the head.

    Shared timm interface: ``forward_features``, ``forward_intermediates`` (the map after any
    block), ``prune_intermediate_layers``, ``feature_info`` (one entry per block, all at the
    stem's reduction), ``set_grad_checkpointing`` (per block), ``group_matcher``.
    """

    in_chans: int
    num_features: int
    head_hidden_size: int
    layers: nn.ModuleList
    conv: nn.Module  # the stem

    @classmethod
    def ignored_arguments(cls, args: dict[str, Any]) -> dict[str, str]:
        """The stem arguments ``args`` make the model ignore, with why (``create_model`` refuses
        them when given): ``patch_size`` with the strided stem, ``stride`` with the patchify one."""
        params = inspect.signature(cls.__init__).parameters
        if "initial_conv" not in params:
            return {}
        stem = args.get("initial_conv", params["initial_conv"].default)
        if stem not in STEM_TYPES:
            return {}  # the class names the bad value
        if normalize_stem(stem) == "strided":
            return {"patch_size": "the strided stem (initial_conv='strided') has no patches; pass initial_conv='patchify' "
                                  "to use patch_size, or drop it"}
        return {"stride": "the patchify stem (initial_conv='patchify') has no stride of its own; pass "
                          "initial_conv='strided' to use stride, or drop it"}

    def _build_blocks(
        self, *, depth: int, dim: int, level: int, mult: int, ff_channel: int, dropout: float, upsample: str,
        drop_path_rate: float = 0.0, wavelet: str = "haar", mode: str = DEFAULT_MODE,
    ) -> nn.ModuleList:
        _check_positive_int("depth", depth)
        _check_positive_int("in_chans", self.in_chans)
        rate = check_float("drop_path_rate", drop_path_rate, min=0.0, lt=1.0)
        self.drop_path_rates = tuple(rate * i / max(depth - 1, 1) for i in range(depth))
        return nn.ModuleList(
            WaveMixBlock(dim=dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample,
                         wavelet=wavelet, mode=mode)
            for _ in range(depth)
        )

    def _set_feature_info(self, reduction: int) -> None:
        self.feature_info = FeatureInfo(
            dict(num_chs=self.num_features, reduction=reduction, module=f"layers.{i}") for i in range(len(self.layers))
        )

    def _check_input(self, x: torch.Tensor) -> None:
        check_image(x, type(self).__name__, self.in_chans)

    def _step(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Block ``i`` with the residual around it (stochastic depth on its branch in training)."""
        p = self.drop_path_rates[i] if self.training and i < len(self.drop_path_rates) else 0.0
        return residual_step(self.layers[i], x, p)

    def _block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Block ``i``, checkpointed on its own when checkpointing applies (intermediates need each output)."""
        if self._checkpointing():
            return checkpoint_seq([partial(self._step, i)], x, modules=[self.layers[i]])
        return self._step(i, x)

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        """All blocks, ``x = x + block(x)``; with checkpointing, in segments (:meth:`set_grad_checkpointing`)."""
        steps = [partial(self._step, i) for i in range(len(self.layers))]
        if self._checkpointing():
            return checkpoint_seq(steps, x, self._segment_lengths(len(steps)), modules=self.layers)
        for step in steps:
            x = step(x)
        return x

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """The stem, checkpointed too when checkpointing applies (its maps are at the input's resolution)."""
        if self._checkpointing():
            return checkpoint_seq([self._stem], x, modules=[self.conv])
        return self._stem(x)

    def fuse(self) -> nn.Module:
        """An eval-only copy with BatchNorm folded into the transposed convs and dropout removed
        (:func:`wavevision.fuse`); call ``model.eval()`` first."""
        return _fuse(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and blocks: the unpooled (B, final_dim, h, w) map, in the input's memory format."""
        return in_format_of(self._features(x), x)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self._blocks(self._embed(inference_layout(x)))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> IntermediatesOut:
        """Feature maps after the selected blocks (all by default), for dense tasks (timm's semantics).

        Args:
            indices: block indices (negative count from the end), or an int n for the last n.
            norm: accepted for timm's interface; WaveMix has no final norm, so it changes nothing.
            stop_early: run no block after the last one taken (the final map is then that block's).
            output_fmt: ``"NCHW"`` or ``"NHWC"`` for the intermediates.
            intermediates_only: return only the list instead of (final map, list); implies ``stop_early``.
        """
        take, last = feature_take_indices(len(self.layers), indices)
        self._check_output_fmt(output_fmt)
        self._check_input(x)
        inp, x = x, self._embed(inference_layout(x))
        stop = last if stop_early or intermediates_only else len(self.layers) - 1
        maps = []
        for i in range(stop + 1):
            x = self._block(i, x)
            if i in take:
                maps.append(to_output_fmt(x if output_fmt == "NHWC" else in_format_of(x, inp), output_fmt))  # NHWC: a view
        return maps if intermediates_only else (in_format_of(x, inp), maps)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the blocks after the last one ``indices`` takes (and the head with ``prune_head``);
        returns the absolute indices taken. ``prune_norm`` changes nothing (no final norm)."""
        take, last = feature_take_indices(len(self.layers), indices)
        self.layers = self.layers[: last + 1]
        self.feature_info = FeatureInfo(self.feature_info[: last + 1])
        if prune_head:
            self._prune_head()
        return take

    def _prune_head(self) -> None:
        self.reset_classifier(0, "")

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise learning-rate decay (timm's format): the stem, then one group per block."""
        return dict(stem=r"^conv", blocks=r"^layers\.(\d+)" if coarse else [(r"^layers\.(\d+)", None)])


class WaveMix(_WaveMixBase):
    """WaveMix / WaveMix-Lite image classifier.

    Args:
        num_classes: classifier outputs; 0 gives pooled features.
        depth: number of WaveMix blocks.
        mult: MLP expansion.
        ff_channel: channels before each transposed-conv upsample.
        final_dim: block width C (multiple of 4).
        dropout: dropout inside the blocks' MLPs (timm's ``drop_rate`` maps to it).
        level: Haar levels per block (>= 1).
        initial_conv: ``"pachify"``/``"patchify"`` (convs + patch embedding) or ``"strided"``.
        patch_size: patch size of the patchify stem.
        stride: stride of each strided-stem conv (1 for WaveMix-Lite).
        in_chans: input channels (1 for grayscale data).
        upsample: ``"convtranspose"`` or parameter-free ``"bilinear"``/``"nearest"``.
        global_pool: ``"avg"`` (the reference), ``"max"``, or ``""`` (no pooling: per-position
            logits (B, num_classes, h, w), or the unpooled map with ``num_classes=0``).
        drop_path_rate: stochastic depth of the blocks' residual branches, rising linearly to
            this over the blocks (0: none, the reference).
        wavelet: the blocks' wavelet: ``"haar"`` (the reference, fast path) or any discrete
            PyWavelets name such as ``"db2"``, ``"sym4"``, ``"bior2.2"`` (same parameters).
        mode: padding mode of wavelets longer than Haar (default ``"periodization"``; see
            :mod:`wavevision.ops.transform`).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        depth: int = 16,
        mult: int = 2,
        ff_channel: int = 192,
        final_dim: int = 192,
        dropout: float = 0.5,
        level: int = 3,
        initial_conv: str = "pachify",
        patch_size: int = 4,
        stride: int = 2,
        in_chans: int = 3,
        upsample: str = "convtranspose",
        global_pool: str = "avg",
        drop_path_rate: float = 0.0,
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__()
        _check_positive_int("num_classes", num_classes, 0)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = final_dim
        self.stem_type = normalize_stem(initial_conv)
        self.patch_size = patch_size
        self.global_pool = check_global_pool(type(self).__name__, global_pool, POOL_TYPES)
        self.layers = self._build_blocks(
            depth=depth, dim=final_dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample,
            drop_path_rate=drop_path_rate, wavelet=wavelet, mode=mode,
        )
        self.pool = nn.Sequential(*self._pool_layers(global_pool), self._classifier(num_classes))
        if self.stem_type == "strided":
            self.conv = strided_stem(in_chans, final_dim, stride)
        else:
            self.conv = patchify_stem(in_chans, final_dim, patch_size)
        self._set_feature_info(patch_size if self.stem_type == "patchify" else stride**2)

    @staticmethod
    def _pool_layers(global_pool: str) -> list[nn.Module]:
        if not global_pool:
            return [nn.Identity(), nn.Identity()]
        pool = nn.AdaptiveAvgPool2d(1) if global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        return [pool, nn.Flatten(1)]

    def _classifier(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem_type == "patchify":
            # Sizes not divisible by the patch: pad so no border pixel is dropped.
            x = pad_to_multiple(x, self.patch_size)[0]
        return self.conv(x)

    def get_classifier(self) -> nn.Module:
        return self.pool[2]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (and the pooling, when ``global_pool`` is given); ``num_classes=0``
        makes the model return pooled features (with ``global_pool=""``, the unpooled map)."""
        _check_positive_int("num_classes", num_classes, 0)
        if global_pool is not None:
            self.global_pool = check_global_pool(type(self).__name__, global_pool, POOL_TYPES)
            self.pool[0], self.pool[1] = self._pool_layers(global_pool)
        self.num_classes = num_classes
        self.pool[2] = self._classifier(num_classes)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global pooling, then the classifier unless ``pre_logits`` (applied per position without pooling)."""
        x = self.pool[1](self.pool[0](x))
        if pre_logits:
            return x
        if not self.global_pool and isinstance(self.pool[2], nn.Linear):
            return F.linear(x.movedim(1, -1), self.pool[2].weight, self.pool[2].bias).movedim(-1, 1)
        return self.pool[2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self._features_forward(x)
        y = self.forward_head(self._features(x))  # pooled: the map's memory format does not matter
        return y if self.global_pool else in_format_of(y, x)

    # -- what a detection pyramid takes (models.detection asks the backbone, not its type) --
    def pyramid_indices(self) -> tuple[int, ...]:
        """The four block outputs a detection pyramid takes (:func:`pyramid_taps`); all at the stem's stride."""
        return pyramid_taps(len(self.layers))

    def pyramid_frozen_modules(self, levels: int) -> list[nn.Module]:
        """The stem and the blocks up to the ``levels``-th pyramid map (a backbone built with
        ``out_indices=pyramid_indices()``): what a detector's ``frozen_stages=levels`` fixes."""
        return [self.conv, *self.layers[: self.out_indices[levels - 1] + 1]] if levels else []


class WaveMixSeg(_WaveMixBase):
    """WaveMix for semantic segmentation: logits (B, num_classes, H, W) at the input's size.

    Stem, blocks, then the decoder (``expand``): two x2 transposed convs and a 1x1 classifier.
    The public ``SemSegment`` layout has a strided stem (two convs of ``stride``) and decoder
    widths final_dim/2 and final_dim/4; ``initial_conv="patchify"`` takes the classifier's
    patchify stem instead and ``decoder_dims`` other widths. Inputs are padded to a multiple of
    the stem's reduction (stride^2 or the patch) and the logits cropped back; where the
    decoder's x4 does not undo the stem, its output is resized (bilinear) first.
    ``global_pool`` takes only ``""`` (a dense model pools nothing); ``drop_rate`` maps to
    ``dropout`` and ``drop_path_rate`` is the blocks' stochastic depth, and ``wavelet`` / ``mode``
    the blocks' transform, as for :class:`WaveMix`.
    """

    # The decoder's attribute, hence its state-dict prefix.
    _decoder_name = "expand"

    def __init__(
        self,
        *,
        num_classes: int = 20,
        depth: int = 16,
        mult: int = 2,
        ff_channel: int = 256,
        final_dim: int = 256,
        dropout: float = 0.0,
        level: int = 4,
        stride: int = 2,
        in_chans: int = 3,
        upsample: str = "convtranspose",
        global_pool: str = "",
        drop_path_rate: float = 0.0,
        initial_conv: str = "strided",
        patch_size: int = 4,
        decoder_dims: Sequence[int] | None = None,
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__()
        _check_positive_int("num_classes", num_classes, 0)
        _check_positive_int("stride", stride)
        _check_positive_int("patch_size", patch_size)
        check_global_pool(type(self).__name__, global_pool, DENSE_POOL_TYPES)
        dims = (final_dim // 2, final_dim // 4) if decoder_dims is None else tuple(decoder_dims)
        if len(dims) != 2:
            raise ValueError(f"decoder_dims takes the widths of the two transposed convs, got {decoder_dims!r}")
        for d in dims:
            _check_positive_int("decoder_dims", d)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.num_features = final_dim
        self.head_hidden_size = dims[1]
        self.stride = stride
        self.stem_type = normalize_stem(initial_conv)
        self.reduction = patch_size if self.stem_type == "patchify" else stride**2
        self.layers = self._build_blocks(
            depth=depth, dim=final_dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample,
            drop_path_rate=drop_path_rate, wavelet=wavelet, mode=mode,
        )
        setattr(self, self._decoder_name, nn.Sequential(
            nn.ConvTranspose2d(final_dim, dims[0], 4, stride=2, padding=1),
            nn.ConvTranspose2d(dims[0], dims[1], 4, stride=2, padding=1),
            self._classifier(num_classes),
        ))
        if self.stem_type == "patchify":
            self.conv = patchify_stem(in_chans, final_dim, patch_size)
        else:
            self.conv = strided_stem(in_chans, final_dim, stride)
        self._set_feature_info(self.reduction)

    @property
    def decoder(self) -> nn.Module:
        """The x4 decoder (``expand``, or ``pool`` in :class:`WaveMixPatchSeg`)."""
        return getattr(self, self._decoder_name)

    def _classifier(self, num_classes: int) -> nn.Module:
        return nn.Conv2d(self.head_hidden_size, num_classes, 1) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return cast(nn.Sequential, self.decoder)[2]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the per-pixel classifier; 0 returns the decoder's last feature maps."""
        _check_positive_int("num_classes", num_classes, 0)
        if global_pool is not None:
            check_global_pool(type(self).__name__, global_pool, DENSE_POOL_TYPES)
        self.num_classes = num_classes
        cast(nn.Sequential, self.decoder)[2] = self._classifier(num_classes)

    def _prune_head(self) -> None:
        setattr(self, self._decoder_name, nn.Identity())

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The decoder: x4 upsampling, then the 1x1 classifier unless ``pre_logits``."""
        decoder = cast(nn.Sequential, self.decoder)
        x = decoder[1](decoder[0](x))
        return x if pre_logits else decoder[2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self._features_forward(x)
        self._check_input(x)
        padded = pad_to_multiple(inference_layout(x), self.reduction)
        y = self.forward_head(self._blocks(self._embed(padded[0])))
        return in_format_of(crop_to(_resize_like(y, padded[0]), padded[1]), x)


class WaveMixPatchSeg(WaveMixSeg):
    """The authors' Cityscapes layout (their 83.04 mIoU file): the ImageNet classifier's patchify
    stem and blocks with its ``pool`` (pooling + linear head) replaced by a x4 decoder of two
    transposed convs (192 -> 128 -> 64) and a 1x1 classifier, so the state dict is the
    classifier's ``conv.*`` and ``layers.*`` plus ``pool.0``-``pool.2``. Not the 63 M
    :class:`WaveMixSeg` layout. Arguments as :class:`WaveMixSeg`, defaults those of the file.
    """

    _decoder_name = "pool"

    def __init__(
        self,
        *,
        num_classes: int = 20,
        depth: int = 16,
        mult: int = 2,
        ff_channel: int = 192,
        final_dim: int = 192,
        dropout: float = 0.5,
        level: int = 3,
        initial_conv: str = "patchify",
        patch_size: int = 4,
        decoder_dims: Sequence[int] | None = (128, 64),
        stride: int = 2,
        in_chans: int = 3,
        upsample: str = "convtranspose",
        global_pool: str = "",
        drop_path_rate: float = 0.0,
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__(num_classes=num_classes, depth=depth, mult=mult, ff_channel=ff_channel, final_dim=final_dim,
                         dropout=dropout, level=level, stride=stride, in_chans=in_chans, upsample=upsample,
                         global_pool=global_pool, drop_path_rate=drop_path_rate, initial_conv=initial_conv,
                         patch_size=patch_size, decoder_dims=decoder_dims, wavelet=wavelet, mode=mode)


class WaveMixPaperSR(_WaveMixBase):
    """The WaveMix paper's single-image super-resolution model (x2, or x4 with a second x2 stage),
    registered as ``wavemix_paper_sr*``; the later WaveMixSR papers' models are
    :mod:`wavevision.models.wavemixsr`.

    Stride-1 stem, blocks, then ``expand``: transposed conv(s) x2 and a 1x1 conv to
    ``num_classes`` output channels (default ``in_chans``). Output (B, num_classes, scale*H,
    scale*W) for any H, W. ``global_pool`` takes only ``""``; ``wavelet`` / ``mode`` as for :class:`WaveMix`.
    """

    expand: nn.Module  # nn.Sequential; nn.Identity once a backbone (as_backbone)

    def __init__(
        self,
        *,
        depth: int = 4,
        mult: int = 2,
        ff_channel: int = 144,
        final_dim: int = 144,
        dropout: float = 0.0,
        level: int = 1,
        scale: int = 2,
        in_chans: int = 3,
        upsample: str = "convtranspose",
        num_classes: int | None = None,
        global_pool: str = "",
        drop_path_rate: float = 0.0,
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale!r}")
        num_classes = in_chans if num_classes is None else num_classes
        _check_positive_int("num_classes", num_classes, 0)
        check_global_pool(type(self).__name__, global_pool, DENSE_POOL_TYPES)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.num_features = final_dim
        self.scale = scale
        self.head_hidden_size = self._head_dim = final_dim // scale
        self.layers = self._build_blocks(
            depth=depth, dim=final_dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample,
            drop_path_rate=drop_path_rate, wavelet=wavelet, mode=mode,
        )
        ups: list[nn.Module] = [nn.ConvTranspose2d(final_dim, final_dim // 2, 4, stride=2, padding=1)]
        if scale == 4:
            ups.append(nn.ConvTranspose2d(final_dim // 2, final_dim // 4, 4, stride=2, padding=1))
        self.expand = nn.Sequential(*ups, self._classifier(num_classes))
        self.conv = strided_stem(in_chans, final_dim, 1)
        self._set_feature_info(1)

    def _classifier(self, num_classes: int) -> nn.Module:
        return nn.Conv2d(self._head_dim, num_classes, 1) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return cast(nn.Sequential, self.expand)[-1]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the output 1x1 conv (``num_classes`` output channels); 0 returns upsampled features."""
        _check_positive_int("num_classes", num_classes, 0)
        if global_pool is not None:
            check_global_pool(type(self).__name__, global_pool, DENSE_POOL_TYPES)
        self.num_classes = num_classes
        cast(nn.Sequential, self.expand)[-1] = self._classifier(num_classes)

    def _prune_head(self) -> None:
        self.expand = nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        expand = cast(nn.Sequential, self.expand)
        for up in expand[:-1]:
            x = up(x)
        return x if pre_logits else expand[-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self._features_forward(x)
        return in_format_of(self.forward_head(self._features(x)), x)


# torch.fx: size checks, padding and run-time layout choices are single graph nodes.
for _leaf in ("check_image", "pad_to_multiple", "crop_to", "inference_layout", "in_format_of", "_resize_like"):
    torch.fx.wrap(_leaf)


# --------------------------------------------------------------------------------------
# Pretrained configurations: one record per registered name (timm's fields plus the published
# result, exact parameters and multiply-accumulates at input_size; tests/test_pretrained_cfg.py
# recomputes both). The authors' released files (REFERENCE: the Hub repo cloudwalker/wavemix) are
# tags of the registered configuration they fit (``name.tag``, ``_released``), downloaded by
# ``create_model(name, pretrained=True)`` through huggingface_hub.

_REPO = "https://github.com/pranavphoenix/WaveMix"
_README = "WaveMix README (github.com/pranavphoenix/WaveMix)"
_PAPER = "WaveMix: A Resource-efficient Neural Network for Image Analysis (arXiv 2205.14375)"
_PAPERS = ("arXiv:2203.03689", "arXiv:2205.14375")
_MNIST = dict(mean=(0.1307,), std=(0.3081,))  # the normalisation wavevision's MNIST loader applies
_FASHION = dict(mean=(0.2860,), std=(0.3530,))
_CIFAR10 = dict(mean=CIFAR10_MEAN, std=CIFAR10_STD)
_RAW = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # super-resolution works on [0, 1] pixels
_CIFAR100 = dict(mean=CIFAR100_MEAN, std=CIFAR100_STD)
# The authors' training script's Tiny-ImageNet statistics (Image_Classification/tinyimagenet.py).
_TINY = dict(mean=(0.4803, 0.4481, 0.3975), std=(0.2764, 0.2689, 0.2816))
_HUB = "cloudwalker/wavemix"
_HUB_SOURCE = "WaveMix README; weights at huggingface.co/cloudwalker/wavemix"


# Each task's head, and how its inputs are prepared: dense tasks and small images are resized
# whole (bilinear, no crop); ImageNet-sized classifiers keep timm's bicubic centre crop.
_RESIZED = dict(interpolation="bilinear", crop_pct=1.0)
_HEADS: dict[str, dict[str, Any]] = {
    "classification": dict(classifier="pool.2"),
    "segmentation": dict(classifier="expand.2", **_RESIZED),
    "super_resolution": dict(classifier="expand.1", **_RESIZED),
}


def _cfg(**kwargs: Any) -> PretrainedCfg:
    """A WaveMix record: the public code's licence and papers, ``conv.0`` first, and the task's head."""
    base: dict[str, Any] = dict(first_conv="conv.0", license="mit", origin_url=_REPO, paper_ids=_PAPERS,
                                paper_name=_PAPER, **_HEADS[kwargs.get("task", "classification")])
    if kwargs.get("input_size", (3, 224, 224))[-1] <= 64:
        base.update(_RESIZED)
    return PretrainedCfg(**{**base, **kwargs})


def _released(path: str, dataset: str, metrics: dict[str, float], **kw: Any) -> dict[str, Any]:
    """A record of one of the authors' released files: its Hub path, dataset and result."""
    return dict(hf_hub_id=_HUB, hf_hub_filename=f"Saved_Models_Weights/{path}", dataset=dataset, metrics=metrics,
                metrics_source=_HUB_SOURCE, **kw)


def _imagenet(path: str, top1: float, **kw: Any) -> dict[str, Any]:
    return _released(f"ImageNet/{path}", "ImageNet-1k", {"top1": top1}, pool_size=(56, 56), **kw)


def _tiny(path: str, top1: float, size: int = 64, **kw: Any) -> dict[str, Any]:
    return _released(f"tinyimagenet/{path}", "Tiny-ImageNet", {"top1": top1}, input_size=(3, size, size),
                     num_classes=200, **_TINY, **kw)


def _galaxy(path: str, top1: float, **kw: Any) -> dict[str, Any]:
    """Galaxy10 DECals: 256x256 images in [0, 1], not normalised (the authors' script: ToTensor only)."""
    return _released(f"galaxy10/{path}", "Galaxy10 DECals", {"top1": top1}, input_size=(3, 256, 256), num_classes=10,
                     pool_size=(64, 64), **_RAW, **kw)


def _digits(size: int, dataset: str, metric: float, source: str, num_classes: int = 10, **kw: Any) -> dict[str, Any]:
    return dict(input_size=(1, size, size), pool_size=(size, size), num_classes=num_classes, dataset=dataset,
                metrics={"top1": metric}, metrics_source=source, **kw)


def _cifar(top1: float, source: str, **kw: Any) -> dict[str, Any]:
    return dict(input_size=(3, 32, 32), pool_size=(32, 32), num_classes=10, dataset="CIFAR-10",
                metrics={"top1": top1}, metrics_source=source, **_CIFAR10, **kw)


default_cfgs = generate_default_cfgs({
    "wavemix": _cfg(pool_size=(56, 56), params=27_857_608, macs=15_093_935_616,
                    description="WaveMix classifier family (the public package's defaults: ImageNet layout)"),
    "wavemix_lite": _cfg(input_size=(3, 32, 32), pool_size=(32, 32), params=9_856_680, macs=2_772_035_584,
                         description="WaveMix-Lite family (the repository's Lite-256/7), sized for 32x32 images"),
    "wavemix_seg": _cfg(task="segmentation", input_size=(3, 512, 512), pool_size=(128, 128), num_classes=20,
                        params=63_164_628, macs=135_316_635_648, description="WaveMix segmentation family (public SemSegment defaults)"),
    "wavemix_paper_sr": _cfg(task="super_resolution", input_size=(3, 64, 64), pool_size=(64, 64), num_classes=3,
                       params=1_944_867, macs=2_856_812_544, **_RAW, description="WaveMix x2 super-resolution family (public sisr defaults)"),
    "wavemix_lite_8_10": _cfg(**_digits(28, "MNIST", 99.0, _README), **_MNIST, params=3_566, macs=881_296),
    "wavemix_lite_8_5": _cfg(**_digits(28, "Fashion-MNIST", 90.0, _README), **_FASHION, params=7_156, macs=1_571_216),
    "wavemix_lite_32_7": _cfg(**_cifar(80.0, _README), params=37_058, macs=14_336_320),
    "wavemix_lite_64_6": _cfg(**_cifar(90.0, _README), params=520_106, macs=151_880_320),
    "wavemix_lite_112_16": _cfg(
        **_digits(28, "EMNIST-Letters", 95.96, _PAPER, num_classes=26), **_MNIST, params=4_135_514, macs=870_750_944,
        notes=("mean/std are MNIST's; wavevision's EMNIST loader computes them from the training split",),
    ),
    "wavemix_lite_144_7.cifar10": _cfg(**_released("cifar10/cifar10_94.58.pth", "CIFAR-10", {"top1": 94.58}),
                                       input_size=(3, 32, 32), pool_size=(32, 32), num_classes=10, **_CIFAR10,
                                       params=3_042_550, macs=877_880_736,
                                       notes=("the paper reports 97.29 % for this configuration (arXiv 2205.14375); "
                                              "the released file scores 94.58 %",)),
    "wavemix_lite_320_8.cifar10": _cfg(**_released("cifar10/cifar10_95.37.pth", "CIFAR-10", {"top1": 95.37}),
                                       input_size=(3, 32, 32), pool_size=(32, 32), num_classes=10, **_CIFAR10,
                                       params=17_073_610, macs=4_880_305_280),
    "wavemix_lite_256_8.cifar100": _cfg(**_released("cifar100/cifar100_77.82.pth", "CIFAR-100", {"top1": 77.82}),
                                        input_size=(3, 32, 32), pool_size=(32, 32), num_classes=100, **_CIFAR100,
                                        params=10_954_084, macs=3_124_126_720),
    "wavemix_lite_256_10.cifar100": _cfg(**_released("cifar100/cifar100_78.81.pth", "CIFAR-100", {"top1": 78.81}),
                                         input_size=(3, 32, 32), pool_size=(32, 32), num_classes=100, **_CIFAR100,
                                         params=13_611_492, macs=3_828_769_792),
    "wavemix_lite_256_12.tiny_imagenet": _cfg(**_tiny("tinyimagenet_62.51.pth", 62.51), pool_size=(64, 64),
                                              params=16_294_600, macs=18_133_600_256),
    "wavemix_192_16_l1.in1k": _cfg(**_imagenet("wavemixlite_71.18.pth", 71.18), params=12_494_536, macs=12_781_825_536),
    "wavemix_192_16_l1.galaxy10_decals": _cfg(**_galaxy("galaxy_90.23.pth", 90.23), params=12_303_466, macs=16_694_380_416),
    "wavemix_192_16_l3.in1k": _cfg(**_imagenet("wavemix_192_16_75.06.pth", 75.06), params=27_857_608,
                                   macs=15_093_935_616),
    "wavemix_192_16_l3.tiny_imagenet": _cfg(**_tiny("tiny_71.69.pth", 71.69), pool_size=(16, 16), params=27_703_208,
                                            macs=1_232_180_736),
    "wavemix_192_16_l3.tiny_imagenet_128": _cfg(**_tiny("tiny_78.76.pth", 78.76, 128), pool_size=(32, 32),
                                                params=27_703_208, macs=4_928_607_744),
    "wavemix_192_16_l3.galaxy10_decals": _cfg(**_galaxy("galaxy_95.42.pth", 95.42), params=27_666_538, macs=19_714_279_296),
    "wavemix_256_16_l3.in1k": _cfg(**_imagenet("ImageNet73.03.pth", 73.03), params=49_416_808, macs=26_804_676_608),
    "wavemix_256_16_l4.in1k": _cfg(**_imagenet("imagenet4level_70.42.pth", 70.42), params=62_764_776, macs=28_902_516_736),
    "wavemix_256_12_l2.places365": _cfg(**_released("Places365/places365_54.94.pth", "Places-365", {"top1": 54.94}),
                                        num_classes=365, pool_size=(28, 28), params=28_449_261, macs=9_283_857_664),
    "wavemix_seg_192_16_l3.cityscapes": _cfg(
        **_released("cityscapes_83.04.pth", "Cityscapes val", {"miou": 83.04}), task="segmentation",
        input_size=(3, 256, 512), pool_size=(64, 128), num_classes=20, classifier="pool.2", params=28_190_388, macs=47_112_519_680,
        notes=("the authors' Cityscapes file: the ImageNet classifier's layout with a x4 decoder as its pool; "
               "20 outputs (19 train ids and one more) at the input's resolution",),
    ),
    "wavemix_seg_256_16_l4": _cfg(task="segmentation", input_size=(3, 512, 1024), pool_size=(128, 256), num_classes=20,
                                  dataset="Cityscapes val", metrics={"miou": 82.70}, metrics_source=_PAPER,
                                  params=63_164_628, macs=270_633_271_296),
    "wavemix_paper_sr_144_4_x2": _cfg(task="super_resolution", input_size=(3, 64, 64), pool_size=(64, 64), num_classes=3,
                                params=1_944_867, macs=2_856_812_544, **_RAW, notes=("the public wavemix 0.2.4 sisr model",)),
    "wavemix_paper_sr_144_4_x4": _cfg(task="super_resolution", input_size=(3, 64, 64), pool_size=(64, 64), num_classes=3,
                                params=1_986_267, macs=3_539_828_736, **_RAW, classifier="expand.2",
                                notes=("x4 variant of WaveMix-144/4: a second x2 transposed-conv stage (ours)",)),
})


# --------------------------------------------------------------------------------------
# Builders. Defaults of the family entries are the public package's constructor defaults.

_WAVEMIX_DEFAULTS: dict[str, Any] = dict(
    num_classes=1000, depth=16, mult=2, ff_channel=192, final_dim=192, dropout=0.5,
    level=3, initial_conv="pachify", patch_size=4, stride=2,
)
_LITE_DEFAULTS: dict[str, Any] = dict(
    num_classes=1000, depth=7, mult=2, ff_channel=256, final_dim=256, dropout=0.5,
    level=1, initial_conv="strided", stride=1,
)
_SEG_DEFAULTS: dict[str, Any] = dict(
    num_classes=20, depth=16, mult=2, ff_channel=256, final_dim=256, dropout=0.0, level=4, stride=2
)
_SR_DEFAULTS: dict[str, Any] = dict(depth=4, mult=2, ff_channel=144, final_dim=144, dropout=0.0, level=1, scale=2)


def _lite(name: str, dim: int, depth: int, upsample: str, defaults: dict[str, Any], kwargs: dict[str, Any]) -> WaveMix:
    """WaveMix-Lite-C/D: final_dim = ff_channel = C, depth D, mult 2, level 1, stride-1 stem."""
    cfg = {**_LITE_DEFAULTS, "final_dim": dim, "ff_channel": dim, "depth": depth, "upsample": upsample, "dropout": 0.0}
    return build_model(name, WaveMix, {**cfg, **defaults}, kwargs)


def _released_lite(name: str, dim: int, depth: int, num_classes: int, kwargs: dict[str, Any]) -> WaveMix:
    """A WaveMix-Lite-C/D of the authors' released files: transposed-conv upsample, dropout 0.5."""
    return _lite(name, dim, depth, "convtranspose", dict(num_classes=num_classes, dropout=0.5), kwargs)


@register_model
def wavemix(**kwargs: Any) -> WaveMix:
    """WaveMix classifier family; accepts the public package's hyperparameter names."""
    return build_model("wavemix", WaveMix, _WAVEMIX_DEFAULTS, kwargs)


@register_model
def wavemix_lite(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite family: level-1 blocks, stride-1 stem (defaults: the repository's Lite-256/7)."""
    return build_model("wavemix_lite", WaveMix, _LITE_DEFAULTS, kwargs)


@register_model
def wavemix_seg(**kwargs: Any) -> WaveMixSeg:
    """WaveMix segmentation family (public ``SemSegment`` defaults: level 4, C=256, 20 classes)."""
    return build_model("wavemix_seg", WaveMixSeg, _SEG_DEFAULTS, kwargs)


@register_model
def wavemix_paper_sr(**kwargs: Any) -> WaveMixPaperSR:
    """WaveMix super-resolution family (public ``sisr`` defaults: level 1, C=144, depth 4, x2)."""
    return build_model("wavemix_paper_sr", WaveMixPaperSR, _SR_DEFAULTS, kwargs)


# --------------------------------------------------------------------------------------
# Named configurations from the papers and the WaveMix README.


@register_model
def wavemix_lite_8_10(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-8/10, parameter-free upsample, 1-channel 28x28 digits (99 % on MNIST)."""
    return _lite("wavemix_lite_8_10", 8, 10, "bilinear", dict(num_classes=10, in_chans=1), kwargs)


@register_model
def wavemix_lite_8_5(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-8/5 with transposed-conv upsample (90 % on Fashion-MNIST)."""
    return _lite("wavemix_lite_8_5", 8, 5, "convtranspose", dict(num_classes=10, in_chans=1), kwargs)


@register_model
def wavemix_lite_32_7(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-32/7, parameter-free upsample (80 % on CIFAR-10)."""
    return _lite("wavemix_lite_32_7", 32, 7, "bilinear", dict(num_classes=10), kwargs)


@register_model
def wavemix_lite_64_6(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-64/6 with transposed-conv upsample (90 % on CIFAR-10)."""
    return _lite("wavemix_lite_64_6", 64, 6, "convtranspose", dict(num_classes=10), kwargs)


@register_model
def wavemix_lite_144_7(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-144/7 for CIFAR-10, about 3.0 M parameters (paper: 97.29 %; the released file: 94.58 %)."""
    return _lite("wavemix_lite_144_7", 144, 7, "convtranspose", dict(num_classes=10), kwargs)


@register_model
def wavemix_lite_112_16(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-112/16 for 1-channel EMNIST-Letters, 26 classes (95.96 %, about 4.1 M parameters)."""
    return _lite("wavemix_lite_112_16", 112, 16, "convtranspose", dict(num_classes=26, in_chans=1), kwargs)


@register_model
def wavemix_192_16_l1(**kwargs: Any) -> WaveMix:
    """WaveMix-192/16 with level-1 blocks, patch 4, 1000 classes."""
    return build_model("wavemix_192_16_l1", WaveMix, {**_WAVEMIX_DEFAULTS, "level": 1}, kwargs)


@register_model
def wavemix_192_16_l3(**kwargs: Any) -> WaveMix:
    """WaveMix-192/16 with level-3 blocks, patch 4, 1000 classes (75.06 % ImageNet-1k top-1)."""
    return build_model("wavemix_192_16_l3", WaveMix, {**_WAVEMIX_DEFAULTS, "level": 3}, kwargs)


@register_model
def wavemix_lite_320_8(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-320/8 for CIFAR-10 (the authors' 95.37 % file)."""
    return _released_lite("wavemix_lite_320_8", 320, 8, 10, kwargs)


@register_model
def wavemix_lite_256_8(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-256/8 for CIFAR-100 (the authors' 77.82 % file)."""
    return _released_lite("wavemix_lite_256_8", 256, 8, 100, kwargs)


@register_model
def wavemix_lite_256_10(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-256/10 for CIFAR-100 (the authors' 78.81 % file)."""
    return _released_lite("wavemix_lite_256_10", 256, 10, 100, kwargs)


@register_model
def wavemix_lite_256_12(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-256/12 for Tiny-ImageNet, 200 classes (the authors' 62.51 % file)."""
    return _released_lite("wavemix_lite_256_12", 256, 12, 200, kwargs)


@register_model
def wavemix_256_16_l3(**kwargs: Any) -> WaveMix:
    """WaveMix-256/16 with level-3 blocks, patch 4, 1000 classes (the authors' 73.03 % ImageNet file)."""
    cfg = {**_WAVEMIX_DEFAULTS, "final_dim": 256, "ff_channel": 256, "level": 3}
    return build_model("wavemix_256_16_l3", WaveMix, cfg, kwargs)


@register_model
def wavemix_256_16_l4(**kwargs: Any) -> WaveMix:
    """WaveMix-256/16 with level-4 blocks and a stride-2 strided stem (the authors' 70.42 % ImageNet file)."""
    cfg = {**_WAVEMIX_DEFAULTS, "final_dim": 256, "ff_channel": 256, "level": 4, "initial_conv": "strided", "stride": 2}
    return build_model("wavemix_256_16_l4", WaveMix, cfg, kwargs)


@register_model
def wavemix_256_12_l2(**kwargs: Any) -> WaveMix:
    """WaveMix-256/12 with level-2 blocks and patch 8, 365 classes (the authors' Places-365 54.94 % file)."""
    cfg = {**_WAVEMIX_DEFAULTS, "num_classes": 365, "depth": 12, "final_dim": 256, "ff_channel": 256, "level": 2,
           "patch_size": 8}
    return build_model("wavemix_256_12_l2", WaveMix, cfg, kwargs)


@register_model
def wavemix_seg_192_16_l3(**kwargs: Any) -> WaveMixPatchSeg:
    """The authors' Cityscapes model (83.04 mIoU file): WaveMix-192/16 level 3, patch 4, with a x4 decoder
    (:class:`WaveMixPatchSeg`, not the 63 M WaveMixSeg layout); 20 classes at the input's resolution."""
    return build_model("wavemix_seg_192_16_l3", WaveMixPatchSeg, {}, kwargs)


@register_model
def wavemix_seg_256_16_l4(**kwargs: Any) -> WaveMixSeg:
    """WaveMix-256/16 level-4 segmentation model, stride-2 stem, 20 classes (82.70 mIoU on Cityscapes val)."""
    return build_model("wavemix_seg_256_16_l4", WaveMixSeg, _SEG_DEFAULTS, kwargs)


@register_model
def wavemix_paper_sr_144_4_x2(**kwargs: Any) -> WaveMixPaperSR:
    """WaveMix-144/4 level-1 x2 super-resolution model (the public package's ``sisr`` model)."""
    return build_model("wavemix_paper_sr_144_4_x2", WaveMixPaperSR, _SR_DEFAULTS, kwargs)


@register_model
def wavemix_paper_sr_144_4_x4(**kwargs: Any) -> WaveMixPaperSR:
    """x4 variant of WaveMix-144/4: a second x2 transposed-conv stage before the output conv (ours)."""
    return build_model("wavemix_paper_sr_144_4_x4", WaveMixPaperSR, {**_SR_DEFAULTS, "scale": 4}, kwargs)


# Names before issue 21: the WaveMix paper's super-resolution head was ``WaveMixSR`` / ``wavemix_sr*``, easily
# taken for the later WaveMixSR paper's model (wavevision.models.wavemixsr). They warn once, then work.
register_model_deprecations({"wavemix_sr": "wavemix_paper_sr", "wavemix_sr_144_4_x2": "wavemix_paper_sr_144_4_x2",
                             "wavemix_sr_144_4_x4": "wavemix_paper_sr_144_4_x4"})
__getattr__ = renamed_attributes(__name__, {"WaveMixSR": "WaveMixPaperSR"})
