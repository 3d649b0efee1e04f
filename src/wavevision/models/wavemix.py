"""WaveMix and WaveMix-Lite: classification, semantic segmentation and super-resolution.

Papers: "WaveMix: Resource-efficient Token Mixing for Images" (arXiv 2203.03689) and
"WaveMix: A Resource-efficient Neural Network for Image Analysis" (arXiv 2205.14375).

The state-dict layout equals the public ``wavemix`` 0.2.4 package (``conv``, ``layers``,
``pool.2`` / ``expand``), so its checkpoints load strictly. Differences from that code,
all invisible on the sizes it accepts: each Haar level is computed once per block (it
recomputes the lower levels), the transform is a module-free function (no device-bound
globals), and any input size works (pad then crop, ``wavevision.ops.padding``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import WaveMixBlock, normalize_stem, patchify_stem, strided_stem
from ..ops.padding import crop_to, pad_to_multiple
from ._builder import build_model
from ._registry import register_model

__all__ = ["WaveMix", "WaveMixSeg", "WaveMixSR"]


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _inference_layout(x: torch.Tensor) -> torch.Tensor:
    """The input as the blocks run fastest: channels-last in CPU float32 inference.

    oneDNN runs the convolutions and transposed convolutions channels-last either way (from
    NCHW it reorders in and out); in inference nothing needs NCHW, so the image (a few
    channels, cheap to reorder) goes channels-last and the map stays so. With gradients
    enabled (the 1x1 convs as matrix products and the BatchNorm backward want NCHW), on other
    devices or dtypes, traced or compiled, the input is returned as is.
    """
    if (
        torch.is_grad_enabled()
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or x.dim() != 4
        or not x.is_contiguous()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
    ):
        return x
    return x.contiguous(memory_format=torch.channels_last)


def _in_format_of(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` in the memory format of the input ``x`` (NCHW in, NCHW out)."""
    return y.contiguous() if x.is_contiguous() and not y.is_contiguous() else y


def _residual(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``block(x) + x``; WaveMix blocks add the residual themselves (a leaner training step,
    :meth:`WaveMixBlock.forward`) unless forward hooks on the block expect its own output."""
    if isinstance(block, WaveMixBlock) and not block._forward_hooks:
        return block(x, residual=x)
    return x + block(x)  # x first: the sum takes the input's memory format


class _WaveMixBase(nn.Module):
    """Stem + residual WaveMix blocks; subclasses add the head."""

    in_chans: int
    num_features: int

    def _build_blocks(
        self, *, depth: int, dim: int, level: int, mult: int, ff_channel: int, dropout: float, upsample: str
    ) -> nn.ModuleList:
        _check_positive_int("depth", depth)
        _check_positive_int("in_chans", self.in_chans)
        return nn.ModuleList(
            WaveMixBlock(dim=dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample)
            for _ in range(depth)
        )

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            hint = "; add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else ""
            raise ValueError(f"{type(self).__name__} expects a 4D input (batch, channels, height, width), got shape {tuple(x.shape)}{hint}")
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"{type(self).__name__} was built for {self.in_chans} input channel(s) but the input has {x.shape[1]} "
                f"(shape {tuple(x.shape)}); build it with in_chans={x.shape[1]} or convert the images"
            )
        if not x.is_floating_point():
            raise TypeError(f"input must be floating point, got dtype {x.dtype}; convert with x.float() (and scale to [0, 1])")

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.layers:
            x = _residual(block, x)
        return x

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def fuse(self) -> nn.Module:
        """An eval-only copy with BatchNorm folded into the transposed convs and dropout removed
        (:func:`wavevision.fuse`); call ``model.eval()`` first."""
        from ..fuse import fuse

        return fuse(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and blocks: the unpooled (B, final_dim, h, w) map, in the input's memory format."""
        return _in_format_of(self._features(x), x)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self._blocks(self._stem(_inference_layout(x)))

    def forward_intermediates(
        self, x: torch.Tensor, indices: Optional[Union[int, Sequence[int]]] = None, *, intermediates_only: bool = False
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Feature maps after the selected blocks (all by default), for dense tasks.

        Args:
            indices: block indices to return (negative counts from the end), or an int n
                for the last n blocks.
            intermediates_only: return only the list instead of (final map, list).
        """
        n = len(self.layers)
        if indices is None:
            take = list(range(n))
        elif isinstance(indices, int):
            if not 1 <= indices <= n:
                raise ValueError(f"indices={indices} asks for the last {indices} blocks of {n}")
            take = list(range(n - indices, n))
        else:
            take = []
            for i in indices:
                if not -n <= i < n:
                    raise IndexError(f"block index {i} out of range for {n} blocks")
                take.append(i % n)
        self._check_input(x)
        inp, x = x, self._stem(_inference_layout(x))
        maps = []
        for i, block in enumerate(self.layers):
            x = _residual(block, x)
            if i in take:
                maps.append(_in_format_of(x, inp))
        return maps if intermediates_only else (_in_format_of(x, inp), maps)


class WaveMix(_WaveMixBase):
    """WaveMix / WaveMix-Lite image classifier.

    Args:
        num_classes: classifier outputs; 0 gives pooled features.
        depth: number of WaveMix blocks.
        mult: MLP expansion.
        ff_channel: channels before each transposed-conv upsample.
        final_dim: block width C (multiple of 4).
        dropout: dropout inside the blocks' MLPs.
        level: Haar levels per block (>= 1).
        initial_conv: ``"pachify"``/``"patchify"`` (convs + patch embedding) or ``"strided"``.
        patch_size: patch size of the patchify stem.
        stride: stride of each strided-stem conv (1 for WaveMix-Lite).
        in_chans: input channels (1 for grayscale data).
        upsample: ``"convtranspose"`` or parameter-free ``"bilinear"``/``"nearest"``.
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
    ) -> None:
        super().__init__()
        _check_positive_int("num_classes", num_classes, 0)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.num_features = final_dim
        self.stem_type = normalize_stem(initial_conv)
        self.patch_size = patch_size
        self.layers = self._build_blocks(
            depth=depth, dim=final_dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample
        )
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(final_dim, num_classes) if num_classes > 0 else nn.Identity(),
        )
        if self.stem_type == "strided":
            self.conv = strided_stem(in_chans, final_dim, stride)
        else:
            self.conv = patchify_stem(in_chans, final_dim, patch_size)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem_type == "patchify":
            # Sizes not divisible by the patch: pad so no border pixel is dropped.
            x, _ = pad_to_multiple(x, self.patch_size)
        return self.conv(x)

    def get_classifier(self) -> nn.Module:
        return self.pool[2]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier; ``num_classes=0`` makes the model return pooled features."""
        _check_positive_int("num_classes", num_classes, 0)
        self.num_classes = num_classes
        self.pool[2] = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, then the classifier unless ``pre_logits``."""
        x = self.pool[1](self.pool[0](x))
        return x if pre_logits else self.pool[2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self._features(x))  # pooled: the map's memory format does not matter


class WaveMixSeg(_WaveMixBase):
    """WaveMix for semantic segmentation: logits (B, num_classes, H, W) at the input's size.

    Strided stem (two convs of ``stride``), blocks, then ``expand``: two x2 transposed convs
    and a 1x1 classifier. Inputs are padded to a multiple of stride^2 and the logits cropped
    back; for strides other than 2 the decoder's x4 output is resized (bilinear) first.
    """

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
    ) -> None:
        super().__init__()
        _check_positive_int("num_classes", num_classes, 0)
        _check_positive_int("stride", stride)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.num_features = final_dim
        self.stride = stride
        self.layers = self._build_blocks(
            depth=depth, dim=final_dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample
        )
        self.expand = nn.Sequential(
            nn.ConvTranspose2d(final_dim, final_dim // 2, 4, stride=2, padding=1),
            nn.ConvTranspose2d(final_dim // 2, final_dim // 4, 4, stride=2, padding=1),
            nn.Conv2d(final_dim // 4, num_classes, 1) if num_classes > 0 else nn.Identity(),
        )
        self.conv = strided_stem(in_chans, final_dim, stride)

    def get_classifier(self) -> nn.Module:
        return self.expand[2]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the per-pixel classifier; 0 returns the decoder's final_dim/4 feature maps."""
        _check_positive_int("num_classes", num_classes, 0)
        self.num_classes = num_classes
        self.expand[2] = nn.Conv2d(self.num_features // 4, num_classes, 1) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The decoder: x4 upsampling, then the 1x1 classifier unless ``pre_logits``."""
        x = self.expand[1](self.expand[0](x))
        return x if pre_logits else self.expand[2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        inp = x
        x, size = pad_to_multiple(_inference_layout(x), self.stride**2)
        padded = x.shape[-2:]
        y = self.forward_head(self._blocks(self._stem(x)))
        if y.shape[-2:] != padded:
            y = F.interpolate(y, size=tuple(padded), mode="bilinear", align_corners=False)
        return _in_format_of(crop_to(y, size), inp)


class WaveMixSR(_WaveMixBase):
    """WaveMix for single-image super-resolution (x2, or x4 with a second x2 stage).

    Stride-1 stem, blocks, then ``expand``: transposed conv(s) x2 and a 1x1 conv back to
    ``in_chans``. Output (B, in_chans, scale*H, scale*W) for any H, W.
    """

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
    ) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale!r}")
        self.in_chans = in_chans
        self.num_classes = in_chans
        self.num_features = final_dim
        self.scale = scale
        self.layers = self._build_blocks(
            depth=depth, dim=final_dim, level=level, mult=mult, ff_channel=ff_channel, dropout=dropout, upsample=upsample
        )
        ups: List[nn.Module] = [nn.ConvTranspose2d(final_dim, final_dim // 2, 4, stride=2, padding=1)]
        if scale == 4:
            ups.append(nn.ConvTranspose2d(final_dim // 2, final_dim // 4, 4, stride=2, padding=1))
        self._head_dim = final_dim // scale
        self.expand = nn.Sequential(*ups, nn.Conv2d(self._head_dim, in_chans, 1))
        self.conv = strided_stem(in_chans, final_dim, 1)

    def get_classifier(self) -> nn.Module:
        return self.expand[-1]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the output 1x1 conv (``num_classes`` output channels); 0 returns upsampled features."""
        _check_positive_int("num_classes", num_classes, 0)
        self.num_classes = num_classes
        self.expand[-1] = nn.Conv2d(self._head_dim, num_classes, 1) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        for up in self.expand[:-1]:
            x = up(x)
        return x if pre_logits else self.expand[-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _in_format_of(self.forward_head(self._features(x)), x)


# --------------------------------------------------------------------------------------
# Builders. Defaults of the family entries are the public package's constructor defaults.

_WAVEMIX_DEFAULTS: Dict[str, Any] = dict(
    num_classes=1000, depth=16, mult=2, ff_channel=192, final_dim=192, dropout=0.5,
    level=3, initial_conv="pachify", patch_size=4, stride=2,
)
_LITE_DEFAULTS: Dict[str, Any] = dict(
    num_classes=1000, depth=7, mult=2, ff_channel=256, final_dim=256, dropout=0.5,
    level=1, initial_conv="strided", stride=1,
)
_SEG_DEFAULTS: Dict[str, Any] = dict(
    num_classes=20, depth=16, mult=2, ff_channel=256, final_dim=256, dropout=0.0, level=4, stride=2
)
_SR_DEFAULTS: Dict[str, Any] = dict(depth=4, mult=2, ff_channel=144, final_dim=144, dropout=0.0, level=1, scale=2)


def _lite(name: str, dim: int, depth: int, upsample: str, defaults: Dict[str, Any], kwargs: Dict[str, Any]) -> WaveMix:
    """WaveMix-Lite-C/D: final_dim = ff_channel = C, depth D, mult 2, level 1, stride-1 stem."""
    cfg = {**_LITE_DEFAULTS, "final_dim": dim, "ff_channel": dim, "depth": depth, "upsample": upsample, "dropout": 0.0}
    return build_model(name, WaveMix, {**cfg, **defaults}, kwargs)


@register_model(task="classification", params=27_857_608)
def wavemix(**kwargs: Any) -> WaveMix:
    """WaveMix classifier family; accepts the public package's hyperparameter names."""
    return build_model("wavemix", WaveMix, _WAVEMIX_DEFAULTS, kwargs)


@register_model(task="classification", params=9_856_680)
def wavemix_lite(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite family: level-1 blocks, stride-1 stem (defaults: the repository's Lite-256/7)."""
    return build_model("wavemix_lite", WaveMix, _LITE_DEFAULTS, kwargs)


@register_model(task="segmentation", params=63_164_628)
def wavemix_seg(**kwargs: Any) -> WaveMixSeg:
    """WaveMix segmentation family (public ``SemSegment`` defaults: level 4, C=256, 20 classes)."""
    return build_model("wavemix_seg", WaveMixSeg, _SEG_DEFAULTS, kwargs)


@register_model(task="super_resolution", params=1_944_867)
def wavemix_sr(**kwargs: Any) -> WaveMixSR:
    """WaveMix super-resolution family (public ``sisr`` defaults: level 1, C=144, depth 4, x2)."""
    return build_model("wavemix_sr", WaveMixSR, _SR_DEFAULTS, kwargs)


# --------------------------------------------------------------------------------------
# Named configurations from the papers and the WaveMix README, with their reference numbers.

_README = "WaveMix README (github.com/pranavphoenix/WaveMix)"
_PAPER = "arXiv 2205.14375"


@register_model(
    task="classification", params=3_566,
    reference=dict(params=3_566, dataset="MNIST", metric="top1", value=99.0, source=_README),
)
def wavemix_lite_8_10(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-8/10, parameter-free upsample, 1-channel 28x28 digits (99 % on MNIST)."""
    return _lite("wavemix_lite_8_10", 8, 10, "bilinear", dict(num_classes=10, in_chans=1), kwargs)


@register_model(
    task="classification", params=7_156,
    reference=dict(params=7_156, dataset="Fashion-MNIST", metric="top1", value=90.0, source=_README),
)
def wavemix_lite_8_5(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-8/5 with transposed-conv upsample (90 % on Fashion-MNIST)."""
    return _lite("wavemix_lite_8_5", 8, 5, "convtranspose", dict(num_classes=10, in_chans=1), kwargs)


@register_model(
    task="classification", params=37_058,
    reference=dict(params=37_058, dataset="CIFAR-10", metric="top1", value=80.0, source=_README),
)
def wavemix_lite_32_7(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-32/7, parameter-free upsample (80 % on CIFAR-10)."""
    return _lite("wavemix_lite_32_7", 32, 7, "bilinear", dict(num_classes=10), kwargs)


@register_model(
    task="classification", params=520_106,
    reference=dict(params=520_106, dataset="CIFAR-10", metric="top1", value=90.0, source=_README),
)
def wavemix_lite_64_6(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-64/6 with transposed-conv upsample (90 % on CIFAR-10)."""
    return _lite("wavemix_lite_64_6", 64, 6, "convtranspose", dict(num_classes=10), kwargs)


@register_model(
    task="classification", params=3_042_550,
    reference=dict(params_approx=3.0e6, dataset="CIFAR-10", metric="top1", value=97.29, source=_PAPER),
)
def wavemix_lite_144_7(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-144/7 (97.29 % on CIFAR-10, about 3.0 M parameters)."""
    return _lite("wavemix_lite_144_7", 144, 7, "convtranspose", dict(num_classes=10), kwargs)


@register_model(
    task="classification", params=4_135_514,
    reference=dict(params_approx=4.1e6, dataset="EMNIST-Letters", metric="top1", value=95.96, source=_PAPER),
)
def wavemix_lite_112_16(**kwargs: Any) -> WaveMix:
    """WaveMix-Lite-112/16 for 1-channel EMNIST-Letters, 26 classes (95.96 %, about 4.1 M parameters)."""
    return _lite("wavemix_lite_112_16", 112, 16, "convtranspose", dict(num_classes=26, in_chans=1), kwargs)


@register_model(
    task="classification", params=12_494_536,
    reference=dict(params=12_494_536, dataset="ImageNet-1k", source=_PAPER),
)
def wavemix_192_16_l1(**kwargs: Any) -> WaveMix:
    """WaveMix-192/16 with level-1 blocks, patch 4, 1000 classes."""
    return build_model("wavemix_192_16_l1", WaveMix, {**_WAVEMIX_DEFAULTS, "level": 1}, kwargs)


@register_model(
    task="classification", params=27_857_608,
    reference=dict(params=27_857_608, dataset="ImageNet-1k", metric="top1", value=75.06, source=_PAPER),
)
def wavemix_192_16_l3(**kwargs: Any) -> WaveMix:
    """WaveMix-192/16 with level-3 blocks, patch 4, 1000 classes (75.06 % ImageNet-1k top-1)."""
    return build_model("wavemix_192_16_l3", WaveMix, {**_WAVEMIX_DEFAULTS, "level": 3}, kwargs)


@register_model(
    task="segmentation", params=63_164_628,
    reference=dict(params=63_164_628, dataset="Cityscapes val", metric="mIoU", value=82.70, source=_PAPER),
)
def wavemix_seg_256_16_l4(**kwargs: Any) -> WaveMixSeg:
    """WaveMix-256/16 level-4 segmentation model, stride-2 stem, 20 classes (82.70 mIoU on Cityscapes val)."""
    return build_model("wavemix_seg_256_16_l4", WaveMixSeg, _SEG_DEFAULTS, kwargs)


@register_model(
    task="super_resolution", params=1_944_867,
    reference=dict(params=1_944_867, source="wavemix 0.2.4 sisr defaults"),
)
def wavemix_sr_144_4_x2(**kwargs: Any) -> WaveMixSR:
    """WaveMix-144/4 level-1 x2 super-resolution model (the public package's ``sisr`` model)."""
    return build_model("wavemix_sr_144_4_x2", WaveMixSR, _SR_DEFAULTS, kwargs)


@register_model(task="super_resolution", params=1_986_267)
def wavemix_sr_144_4_x4(**kwargs: Any) -> WaveMixSR:
    """x4 variant of WaveMix-144/4: a second x2 transposed-conv stage before the output conv (ours)."""
    return build_model("wavemix_sr_144_4_x4", WaveMixSR, {**_SR_DEFAULTS, "scale": 4}, kwargs)
