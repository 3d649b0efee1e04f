"""UperNet semantic segmentation on a Wave-ViT or WTConvNeXt backbone (the papers' ADE20K setups).

Paper: "Unified Perceptual Parsing for Scene Understanding" (Xiao et al., ECCV 2018); the
Wave-ViT paper (arXiv 2207.04978) trains UperNet on its backbone with MMSegmentation
(ADE20K, 512x512 crops, 160k iterations: 49.6 mIoU for Wave-ViT-S, 51.5 for Wave-ViT-B); the
WTConv repository (``BGU-CS-VIL/WTConv``, ``semantic_segmentation/``) publishes MMSegmentation
configs of UperNet on WTConvNeXt-T/S/B for the same setup, but no result.

The decoder is MMSegmentation's ``UPerHead`` written in plain PyTorch, with its module names
(``decode_head.psp_modules``, ``bottleneck``, ``lateral_convs``, ``fpn_convs``,
``fpn_bottleneck``, ``conv_seg``; each conv block ``conv``/``bn``/``activate``):

* the backbone's four stage maps (strides 4/8/16/32, each after its stage norm; with
  ``stage_norms``, each through a LayerNorm of its own first, as MMPretrain's ConvNeXt gives
  them to MMSegmentation: its ``norm0``-``norm3`` with ``gap_before_final_norm=False``);
* a pyramid pooling module on the stride-32 map (average pools to 1, 2, 3, 6 cells, a 1x1
  conv block each, upsampled back and concatenated with the map, then a 3x3 conv block);
* an FPN: 1x1 lateral conv blocks on the other maps, top-down addition of the bilinearly
  upsampled coarser level, a 3x3 conv block per level;
* the four levels upsampled to stride 4, concatenated, a 3x3 conv block (``channels``, 512),
  dropout (0.1) and a 1x1 classifier;
* the logits upsampled x4 (bilinear) and cropped to the input, so any input the backbone
  takes gives logits at its own size (Wave-ViT, from 32 pixels a side, pads to a multiple of
  32 inside and crops its maps to ``ceil(size / stride)``; WTConvNeXt, from 96, floors them:
  the logits are then padded by replicating the last rows and columns, so the output keeps
  the input's size).

MMSegmentation's configs add an auxiliary FCN head on the stride-16 map (a 3x3 conv block of
256 channels, dropout, 1x1 classifier; loss weight 0.4) used only in training. Here it is
optional (``aux_head=True``): in training the model then returns a :class:`SegmentationOutput`
whose auxiliary logits the segmentation task's loss adds with ``aux_weight``; in eval mode the
output is the main logits either way. The registered parameter counts and MACs are those of
the inference model (no auxiliary head), at 512x512.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.padding import crop_to
from ..outputs import SegmentationOutput  # the segmentation task's output type (re-exported)
from ..utils.validate import PathLike, check_bool, check_float, check_int
from ._backbone import backbone_args as _backbone_args
from ._backbone import load_backbone_checkpoint
from ._base import ModelBase, check_global_pool, check_image, freeze_batch_norms, to_output_fmt
from ._builder import build_model
from ._features import FeatureInfo, feature_take_indices
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import get_entry, register_model
from .wtconvnext import LayerNorm2d

__all__ = ["SegmentationOutput", "UperNet"]

DENSE_POOL_TYPES = ("",)

# The backbone's timm methods, which nn.Module's __getattr__ types as Tensor | Module.
_MapsFn = Callable[..., list[torch.Tensor]]


def _resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``, as MMSegmentation's decode heads) where the size differs."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def fit_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The last two dims of ``x`` cropped to ``size``, or, where shorter, extended to it by repeating the
    last row or column (a backbone that floors its maps leaves the last pixels to its last cells)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    x = crop_to(x, (min(h, int(size[0])), min(w, int(size[1]))))
    if h >= size[0] and w >= size[1]:
        return x
    return F.pad(x, (0, max(0, int(size[1]) - w), 0, max(0, int(size[0]) - h)), mode="replicate")


def _pool_matrix(n: int, cells: int, like: torch.Tensor) -> torch.Tensor:
    """(cells, n) averaging weights of adaptive average pooling along one axis: cell i averages
    positions ``floor(i * n / cells) .. ceil((i + 1) * n / cells) - 1`` (``nn.AdaptiveAvgPool2d``'s bins)."""
    i = torch.arange(cells, device=like.device)[:, None]
    j = torch.arange(n, device=like.device)[None, :]
    start, stop = i * n // cells, ((i + 1) * n + cells - 1) // cells
    inside = (j >= start) & (j < stop)
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def adaptive_avg_pool(x: torch.Tensor, cells: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, cells)`` as two small matrix products, which every exporter translates
    (the TorchScript ONNX exporter refuses adaptive pooling whose output size does not divide the input's)."""
    rows, cols = _pool_matrix(x.shape[-2], cells, x), _pool_matrix(x.shape[-1], cells, x)
    return torch.matmul(torch.matmul(rows, x), cols.t())


class AdaptiveAvgPool(nn.Module):
    """:func:`adaptive_avg_pool` as a module (in place of ``nn.AdaptiveAvgPool2d``; no state)."""

    def __init__(self, cells: int) -> None:
        super().__init__()
        self.cells = cells

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool(x, self.cells)

    def extra_repr(self) -> str:
        return f"cells={self.cells}"


def _check_pooled_batch(x: torch.Tensor, training: bool) -> None:
    """BatchNorm on the 1x1 pooled map needs two values per channel in training: say so before torch does."""
    if training and x.shape[0] == 1:
        raise ValueError("UperNet's pyramid pooling normalises a 1x1 pooled map with BatchNorm, which needs a batch of "
                         "at least 2 in training; use batch_size >= 2 (or model.eval() for inference)")


class ConvModule(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU, with MMCV's ``ConvModule`` child names."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.activate = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")  # MMCV's ConvModule init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))

    def fuse_pairs(self) -> list[tuple[str, str]]:
        """The conv-BN pair :func:`wavevision.fuse` folds."""
        return [("conv", "bn")]


class UPerHead(nn.Module):
    """Pyramid pooling on the last map + FPN over all maps, fused at the first map's resolution.

    Args:
        in_channels: channels of the backbone maps, finest first.
        channels: width of every conv block (MMSegmentation: 512).
        pool_scales: output cells of the pyramid pooling's average pools.
        num_classes: outputs of the classifier ``conv_seg`` (0: none), which :meth:`forward` leaves to :meth:`cls_seg`.
        drop_rate: dropout before the classifier.
    """

    def __init__(self, in_channels: Sequence[int], channels: int, pool_scales: Sequence[int], num_classes: int,
                 drop_rate: float) -> None:
        super().__init__()
        *fine, last = in_channels
        self.psp_modules = nn.ModuleList(
            nn.Sequential(AdaptiveAvgPool(s), ConvModule(last, channels, 1)) for s in pool_scales
        )
        self.bottleneck = ConvModule(last + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in fine)
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3) for _ in fine)
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)
        self.dropout = nn.Dropout2d(drop_rate)
        self.conv_seg = _classifier(channels, num_classes)

    def cls_seg(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout and the 1x1 classifier (MMSegmentation's name)."""
        return self.conv_seg(self.dropout(x))

    def psp_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pyramid pooling module on the coarsest map: pooled branches upsampled back, concatenated, 3x3 conv."""
        _check_pooled_batch(x, self.training)
        size = x.shape[-2:]
        return self.bottleneck(torch.cat([x] + [_resize_to(stage(x), size) for stage in self.psp_modules], dim=1))

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, channels, h0, w0) at the finest map's size from the backbone maps (finest first)."""
        laterals = [conv(m) for conv, m in zip(self.lateral_convs, maps)] + [self.psp_forward(maps[-1])]
        for i in range(len(laterals) - 1, 0, -1):  # top-down: add the upsampled coarser level
            laterals[i - 1] = laterals[i - 1] + _resize_to(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        size = outs[0].shape[-2:]
        return self.fpn_bottleneck(torch.cat([outs[0]] + [_resize_to(o, size) for o in outs[1:]], dim=1))


class FCNHead(nn.Module):
    """MMSegmentation's auxiliary ``FCNHead`` (one 3x3 conv block, no input concat): dropout, 1x1 classifier."""

    def __init__(self, in_chs: int, channels: int, num_classes: int, drop_rate: float) -> None:
        super().__init__()
        self.convs = nn.Sequential(ConvModule(in_chs, channels, 3))
        self.dropout = nn.Dropout2d(drop_rate)
        self.conv_seg = _classifier(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.dropout(self.convs(x)))


def _classifier(channels: int, num_classes: int) -> nn.Module:
    """The 1x1 classifier, initialised as MMSegmentation's ``conv_seg`` (normal, std 0.01; zero bias)."""
    if num_classes == 0:
        return nn.Identity()
    conv = nn.Conv2d(channels, num_classes, 1)
    nn.init.normal_(conv.weight, std=0.01)
    assert conv.bias is not None  # Conv2d's default bias=True
    nn.init.zeros_(conv.bias)
    return conv


def _prefixed(pattern: Any, prefix: str) -> Any:
    """A ``group_matcher`` entry of the backbone (a regex, or a list of (regex, suffix)) for keys under ``prefix``."""
    if isinstance(pattern, str):
        return "^" + re.escape(prefix) + pattern.lstrip("^")
    return [(_prefixed(p, prefix), suffix) for p, suffix in pattern]


class UperNet(ModelBase):
    """UperNet: a backbone's four stage maps -> :class:`UPerHead` -> per-pixel logits at the input's size.

    Args:
        num_classes: classes per pixel (ADE20K: 150); 0 returns the decoder's ``channels``
            features upsampled to the input size.
        in_chans: input channels.
        backbone: a registered model name, built with ``features_only`` (``wave_vit_s``, ``wave_vit_b``,
            ``wtconvnext_tiny``: four stage maps; any model's maps work, finest first).
        backbone_args: hyperparameters of the backbone (e.g. ``depths``, ``embed_dims``).
        stage_norms: a LayerNorm (channels-first, eps 1e-6) on each backbone map before the decoders
            (``stage_norms.N``; MMPretrain's ConvNeXt ``norm0``-``norm3`` with
            ``gap_before_final_norm=False``). Not part of the backbone: its classification
            checkpoint loads without them, and they start at weight 1, bias 0.
        channels: width of the decoder (MMSegmentation: 512).
        pool_scales: the pyramid pooling's output cells.
        drop_rate: dropout before the classifiers (MMSegmentation: 0.1).
        drop_path_rate: the backbone's stochastic depth.
        aux_head: build MMSegmentation's auxiliary FCN head (training only; see the module docstring).
        aux_channels: its width (256).
        aux_index: the backbone map it reads (2: stride 16).
        aux_weight: its loss weight (0.4).
        global_pool: only ``""`` (a dense model pools nothing).
        frozen_norm: the backbone's BatchNorm weights and biases are not trained
            (``requires_grad=False``, what the Wave-ViT segmentation code does).
        norm_eval: the backbone's BatchNorm layers stay in eval mode in ``train()`` too, so their
            running statistics do not change (MMSegmentation's ``norm_eval=True``).
        backbone_kwargs: the earlier name of ``backbone_args`` (deprecated: warns once).
    """

    def __init__(
        self,
        *,
        num_classes: int = 150,
        in_chans: int = 3,
        backbone: str = "wave_vit_s",
        backbone_args: dict[str, Any] | None = None,
        channels: int = 512,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        drop_rate: float = 0.1,
        drop_path_rate: float = 0.0,
        stage_norms: bool = False,
        aux_head: bool = False,
        aux_channels: int = 256,
        aux_index: int = 2,
        aux_weight: float = 0.4,
        global_pool: str = "",
        frozen_norm: bool = False,
        norm_eval: bool = False,
        backbone_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, min=0)
        self.in_chans = check_int("in_chans", in_chans, min=1)
        check_global_pool(type(self).__name__, global_pool, DENSE_POOL_TYPES)
        self.num_features = self.head_hidden_size = check_int("channels", channels, min=1)
        scales = tuple(check_int("pool_scales", s, min=1) for s in pool_scales)
        self.drop_rate = check_float("drop_rate", drop_rate, min=0.0, lt=1.0)
        self.backbone_name = backbone
        self.backbone = self._build_backbone(backbone, _backbone_args(backbone_args, backbone_kwargs, "UperNet"),
                                             drop_path_rate)
        info = self.backbone.feature_info
        self.stage_norms: nn.ModuleList | None = None
        if check_bool("stage_norms", stage_norms):
            self.stage_norms = nn.ModuleList(LayerNorm2d(c) for c in info.channels())
        self.feature_info = FeatureInfo(
            dict(e, module=f"backbone.{e['module']}" if self.stage_norms is None else f"stage_norms.{i}")
            for i, e in enumerate(info))
        self.min_input_size = int(getattr(self.backbone, "min_input_size", 1))
        self.decode_head: UPerHead | None = UPerHead(info.channels(), channels, scales, num_classes, self.drop_rate)
        self.aux_index = check_int("aux_index", aux_index, min=-len(info), max=len(info) - 1) % len(info)
        self.aux_weight = check_float("aux_weight", aux_weight, min=0.0)
        self.aux_channels = check_int("aux_channels", aux_channels, min=1)
        self.aux_head = check_bool("aux_head", aux_head)
        self.auxiliary_head: FCNHead | None = self._aux_head(num_classes)
        self.frozen_norm, self.norm_eval = check_bool("frozen_norm", frozen_norm), check_bool("norm_eval", norm_eval)
        if self.frozen_norm:
            freeze_batch_norms(self.backbone)
        self.train(self.training)

    def train(self, mode: bool = True) -> UperNet:
        """``nn.Module.train``; with ``norm_eval`` the backbone's BatchNorm layers stay in eval mode."""
        super().train(mode)
        if mode and self.norm_eval:
            freeze_batch_norms(self.backbone, affine=False, stats=True)
        return self

    def _aux_head(self, num_classes: int) -> FCNHead | None:
        if not (self.aux_head and num_classes > 0):
            return None
        return FCNHead(self.feature_info.channels(self.aux_index), self.aux_channels, num_classes, self.drop_rate)

    def _build_backbone(self, name: Any, kwargs: dict[str, Any], drop_path_rate: float) -> ModelBase:
        if not isinstance(name, str):
            raise TypeError(f"backbone must be a registered model name such as 'wave_vit_s', got {name!r}")
        args = {"num_classes": 0, "in_chans": self.in_chans, "drop_path_rate": drop_path_rate, **kwargs}
        return get_entry(name).fn(features_only=True, **args)

    def load_backbone(self, path: PathLike) -> None:
        """Load a classification checkpoint of the backbone (ours ``.safetensors`` or the reference's
        ``.pth``) into ``self.backbone`` (:func:`wavevision.models._backbone.load_backbone_checkpoint`)."""
        load_backbone_checkpoint(self.backbone, path, owner=getattr(self, "model_name", type(self).__name__))

    # ---- the timm interface ---------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        check_image(x, "UperNet", self.in_chans, self.min_input_size, f"the smallest input its {self.backbone_name} backbone takes")

    def _maps(self, x: torch.Tensor, indices: Sequence[int] | None = None, norm: bool = False,
              stop_early: bool = True) -> list[torch.Tensor]:
        """The backbone's maps ``indices`` (default: all), through their ``stage_norms`` where the model has them."""
        take = list(range(len(self.feature_info))) if indices is None else list(indices)
        maps = cast(_MapsFn, self.backbone.forward_intermediates)(x, indices=take, norm=norm, stop_early=stop_early,
                                                                 intermediates_only=True)
        if self.stage_norms is None:
            return maps
        return [self.stage_norms[i](m) for i, m in zip(take, maps)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's fused map (B, channels, H / 4, W / 4), rounded as the backbone rounds its stride-4 map."""
        head = self._decoder("forward_features")
        self._check_input(x)
        return head(self._maps(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Dropout and the 1x1 classifier (not with ``pre_logits``), then x4 bilinear upsampling to the
        input's grid (the logits of an input whose sides are multiples of 4; :meth:`forward` fits them
        to other sizes, :func:`fit_to`)."""
        head = self._decoder("forward_head")
        if not pre_logits:
            x = head.cls_seg(x)
        return self._upsample(x)

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=float(self.feature_info[0]["reduction"]), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor | SegmentationOutput | list[torch.Tensor]:
        """Logits (B, num_classes, H, W); in training with ``aux_head``, a :class:`SegmentationOutput`."""
        if self.features_only:
            return self._features_forward(x)
        head = self._decoder("forward")
        size = (x.shape[-2], x.shape[-1])
        self._check_input(x)
        maps = self._maps(x)
        logits = fit_to(self.forward_head(head(maps)), size)
        if not (self.training and self.auxiliary_head is not None):
            return logits
        aux = fit_to(self._upsample(_resize_to(self.auxiliary_head(maps[self.aux_index]), maps[0].shape[-2:])), size)
        return SegmentationOutput(logits, aux, self.aux_weight)

    def get_classifier(self) -> nn.Module:
        return self._decoder("get_classifier").conv_seg

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (and the auxiliary head's); 0 returns the decoder's features at the input size."""
        head = self._decoder("reset_classifier")
        check_int("num_classes", num_classes, min=0)
        if global_pool is not None:
            check_global_pool(type(self).__name__, global_pool, DENSE_POOL_TYPES)
        self.num_classes = num_classes
        head.conv_seg = _classifier(self.num_features, num_classes)
        self.auxiliary_head = self._aux_head(num_classes)

    def _require_head(self, what: str) -> None:
        if self.features_only or self.decode_head is None:
            raise RuntimeError(f"{what} needs the decoder, but this UperNet has none (built with features_only=True or "
                               "pruned); call forward_intermediates for the backbone maps, or build it without features_only")

    def _decoder(self, what: str) -> UPerHead:
        """The decoder (:meth:`_require_head` raises for ``what`` when there is none)."""
        self._require_head(what)
        assert self.decode_head is not None
        return self.decode_head

    def set_grad_checkpointing(self, enable: bool = True, every: int | None = None) -> None:
        """Checkpoint the backbone's blocks in training (the decoder's maps are kept)."""
        super().set_grad_checkpointing(enable, every)
        self.backbone.set_grad_checkpointing(enable, every)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """The backbone's groups (timm's format, under ``backbone.``); the decoder is the head."""
        return {k: _prefixed(v, "backbone.") for k, v in cast(Callable[[bool], dict[str, Any]], self.backbone.group_matcher)(coarse).items()}

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The maps the decoder reads: the backbone's stage maps (timm's semantics; see the backbone's
        ``forward_intermediates``), through ``stage_norms`` where the model has them (``norm`` changes
        nothing more); without ``intermediates_only`` also the decoder's fused map (:meth:`forward_features`)."""
        take, _ = feature_take_indices(len(self.feature_info), indices, what="stage")
        self._check_output_fmt(output_fmt)
        self._check_input(x)
        if intermediates_only:
            return [to_output_fmt(m, output_fmt) for m in self._maps(x, take, norm, stop_early)]
        if stop_early:
            raise ValueError("stop_early=True skips the final stages, so it needs intermediates_only=True")
        head = self._decoder("forward_intermediates(intermediates_only=False)")
        maps = self._maps(x)
        return head(maps), [to_output_fmt(maps[i], output_fmt) for i in take]

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the backbone stages after the last one taken and (``prune_head``) the decoder; returns the indices taken."""
        take = cast(Callable[..., list[int]], self.backbone.prune_intermediate_layers)(indices, prune_norm=prune_norm, prune_head=True)
        self.feature_info = FeatureInfo(self.feature_info[: max(take) + 1])
        if self.stage_norms is not None:
            self.stage_norms = self.stage_norms[: max(take) + 1]
        if prune_head:
            self.decode_head, self.auxiliary_head = None, None
        return take


# torch.fx: sizes read from tensors, the crop and the input checks are single graph nodes.
for _leaf in ("check_image", "fit_to", "_resize_to", "_check_pooled_batch", "adaptive_avg_pool"):
    torch.fx.wrap(_leaf)


# --------------------------------------------------------------------------------------
# Pretrained configurations: the paper's ADE20K mIoU (Wave-ViT; WTConv publishes none); params and MACs
# of this build at 512x512 without the auxiliary head (tests/test_pretrained_cfg.py recomputes them).
# No weights are hosted.

_PAPER = "Wave-ViT: Unifying Wavelet and Transformers for Visual Representation Learning (ECCV 2022)"
_NOTE = ("UperNet as MMSegmentation's UPerHead (512 channels, pool scales 1/2/3/6); params and MACs exclude the "
         "auxiliary FCN head MMSegmentation trains with (aux_head=True adds it); the paper trained 160k iterations "
         "at 512x512 crops with an ImageNet-1k Wave-ViT backbone")


def _cfg(miou: float, params: int, macs: int) -> PretrainedCfg:
    return PretrainedCfg(
        task="segmentation", input_size=(3, 512, 512), min_input_size=(3, 32, 32), pool_size=(128, 128),
        interpolation="bilinear", crop_pct=1.0, num_classes=150, first_conv="backbone.patch_embed1.conv.0",
        classifier="decode_head.conv_seg", origin_url="https://github.com/YehLi/ImageNetModel", paper_ids="arXiv:2207.04978",
        paper_name=_PAPER, dataset="ADE20K val", metrics={"miou": miou}, metrics_source=_PAPER,
        params=params, macs=macs, notes=(_NOTE,),
    )


_WTCONV = "https://github.com/BGU-CS-VIL/WTConv"
_WTCONV_PAPER = "Wavelet Convolutions for Large Receptive Fields (ECCV 2024)"
_WTCONV_NOTE = ("UperNet on WTConvNeXt as the WTConv repository's MMSegmentation configs build it "
                "(semantic_segmentation/configs/wtconvnext/: UPerHead of 512 channels, pool scales 1/2/3/6, a "
                "LayerNorm on each backbone map, layer scale initialised to 1.0); the repository publishes no ADE20K "
                "result and no segmentation weights, so the record holds no metric; params and MACs exclude the "
                "auxiliary FCN head the configs train with (aux_head=True adds it)")


def _wtconvnext_cfg(params: int, macs: int) -> PretrainedCfg:
    return PretrainedCfg(
        task="segmentation", input_size=(3, 512, 512), min_input_size=(3, 96, 96), pool_size=(128, 128),
        interpolation="bilinear", crop_pct=1.0, num_classes=150, first_conv="backbone.stem.0",
        classifier="decode_head.conv_seg", license="mit", origin_url=_WTCONV, paper_ids="arXiv:2407.05848",
        paper_name=_WTCONV_PAPER, dataset="ADE20K", params=params, macs=macs, notes=(_WTCONV_NOTE,),
    )


default_cfgs = generate_default_cfgs({
    "upernet_wave_vit_s": _cfg(49.6, 48_663_430, 240_022_091_776),
    "upernet_wave_vit_b": _cfg(51.5, 59_049_254, 256_621_035_520),
    "upernet_wtconvnext_tiny": _wtconvnext_cfg(61_325_334, 234_740_152_320),
    "upernet_wtconvnext_small": _wtconvnext_cfg(85_178_646, 256_892_614_656),
    "upernet_wtconvnext_base": _wtconvnext_cfg(126_517_910, 292_577_714_176),
})


def _create_upernet(variant: str, defaults: dict[str, Any], kwargs: dict[str, Any]) -> UperNet:
    """Build ``variant``; ``backbone_checkpoint=PATH`` loads a classification checkpoint into the backbone
    (not recorded in ``model_kwargs``: a saved UperNet holds those weights itself). The variant's own
    backbone arguments stay under the caller's, key by key."""
    checkpoint = kwargs.pop("backbone_checkpoint", None)
    own, key = defaults.get("backbone_args"), "backbone_kwargs" if "backbone_kwargs" in kwargs else "backbone_args"
    if own is not None and isinstance(kwargs.get(key), dict):  # given ones: on top of the variant's
        kwargs[key] = {**own, **kwargs[key]}
        if key == "backbone_kwargs":  # the deprecated name takes the place of the variant's backbone_args
            defaults = {k: v for k, v in defaults.items() if k != "backbone_args"}
    model = build_model(variant, UperNet, defaults, kwargs)
    if checkpoint is not None:
        model.load_backbone(checkpoint)
    return model


@register_model
def upernet_wave_vit_s(**kwargs: Any) -> UperNet:
    """UperNet on Wave-ViT-S, 150 ADE20K classes (49.6 mIoU in the paper)."""
    return _create_upernet("upernet_wave_vit_s", dict(backbone="wave_vit_s"), kwargs)


@register_model
def upernet_wave_vit_b(**kwargs: Any) -> UperNet:
    """UperNet on Wave-ViT-B, 150 ADE20K classes (51.5 mIoU in the paper)."""
    return _create_upernet("upernet_wave_vit_b", dict(backbone="wave_vit_b"), kwargs)


def _wtconvnext(size: str, drop_path_rate: float) -> dict[str, Any]:
    """The configs' backbone: WTConvNeXt of ``size``, layer scale from 1.0, a LayerNorm on each map."""
    return dict(backbone=f"wtconvnext_{size}", backbone_args=dict(ls_init_value=1.0), stage_norms=True,
                drop_path_rate=drop_path_rate)


@register_model
def upernet_wtconvnext_tiny(**kwargs: Any) -> UperNet:
    """UperNet on WTConvNeXt-T, 150 ADE20K classes (the WTConv repository's config: drop path 0.4)."""
    return _create_upernet("upernet_wtconvnext_tiny", _wtconvnext("tiny", 0.4), kwargs)


@register_model
def upernet_wtconvnext_small(**kwargs: Any) -> UperNet:
    """UperNet on WTConvNeXt-S, 150 ADE20K classes (the WTConv repository's config: drop path 0.3)."""
    return _create_upernet("upernet_wtconvnext_small", _wtconvnext("small", 0.3), kwargs)


@register_model
def upernet_wtconvnext_base(**kwargs: Any) -> UperNet:
    """UperNet on WTConvNeXt-B, 150 ADE20K classes (the WTConv repository's config: drop path 0.4)."""
    return _create_upernet("upernet_wtconvnext_base", _wtconvnext("base", 0.4), kwargs)
