"""Object detection and instance segmentation on wavevision backbones, with torchvision's detectors.

Wave-ViT (ECCV 2022) evaluates its backbone on COCO with Mask R-CNN and RetinaNet (1x schedule,
MMDetection); here the same detectors come from torchvision (``MaskRCNN``, ``RetinaNet``,
``FasterRCNN``, ``FCOS``), fed by a wavevision backbone and torchvision's
``FeaturePyramidNetwork``:

* **Wave-ViT**: the four stage maps (strides 4, 8, 16, 32), each after its stage norm.
  Mask R-CNN / Faster R-CNN take P2-P5 from all four plus a max-pooled P6
  (``LastLevelMaxPool``); RetinaNet and FCOS take P3-P5 from the stride-8/16/32 maps plus P6-P7
  computed from the stride-32 map (``LastLevelP6P7``, MMDetection's ``add_extra_convs='on_input'``).
* **WaveMix** is isotropic (every block keeps the stem's resolution), so its pyramid follows a
  rule (ViTDet's simple pyramid): the maps after blocks ``round(k * depth / 4)``, k = 1..4 (evenly
  spaced depths, the last block last), are resampled from the stem's stride ``s`` to strides 4,
  8, 16, 32: a stride-``t/s`` ``t/s`` x ``t/s`` conv where the target stride ``t`` is coarser, a
  transposed conv of that factor where it is finer, nothing where they agree.

Labels follow torchvision: ``num_classes`` object classes are labels ``1..num_classes`` and 0 is
background (the heads get ``num_classes + 1`` outputs). Inputs arrive normalised by the dataset
(as everywhere in wavevision), so the detector's own transform only resizes (``min_size``,
``max_size``) and pads to a multiple of 32.

**Parameters and MACs.** ``params`` is the whole torchvision detector at 80 classes (COCO). It
differs slightly from the paper's MMDetection builds: torchvision's heads hold a background
logit (MMDetection's sigmoid heads do not) and its RoI box head has no shared-conv variant;
the backbone and FPN are identical layer for layer. ``macs`` counts the part whose cost the
image size alone fixes: backbone + FPN + the dense head (RPN head for the two-stage detectors,
the classification and box heads of RetinaNet / FCOS) on one ``input_size`` image (1280x800, as
MMDetection reports FLOPs). The per-proposal RoI heads (box and mask) and post-processing are not
counted: their cost follows how many proposals survive, which depends on the weights and the
image. ``FlopCounterMode`` FLOPs / 2, like every other record.

torchvision is imported only when a detector is built; without it the error says what to install.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from ..utils.validate import check_choice, check_int
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model
from .wave_vit import WaveViT
from .wavemix import WaveMix

__all__ = ["WaveDetector", "WaveMixPyramid", "WaveViTBody", "detector_needs", "pyramid_taps"]

DETECTORS = ("mask_rcnn", "faster_rcnn", "retinanet", "fcos")
FPN_NORMS = ("none", "batch", "group")
PYRAMID_STRIDES = (4, 8, 16, 32)
_INSTALL = "pip install -e '.[vision]' (or pip install 'wavevision[vision]'; torchvision must match your torch)"


def detector_needs() -> Any:
    """``torchvision`` (imported here, not at package import); a clear ImportError when it is absent or broken."""
    try:
        import torchvision
        from torchvision.models import detection  # noqa: F401
        from torchvision.ops import feature_pyramid_network  # noqa: F401
    except Exception as e:  # torchvision beside the wrong torch raises RuntimeError, not ImportError
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImportError(f"wavevision's detectors are torchvision models, and torchvision is not usable here "
                          f"({reason}); install the vision stack: {_INSTALL}") from None
    return torchvision


def pyramid_taps(depth: int) -> tuple[int, ...]:
    """The blocks of an isotropic backbone whose outputs feed the pyramid: after blocks
    ``round(k * depth / 4)`` for k = 1..4 (0-based indices; needs at least four blocks)."""
    if check_int("depth", depth, min=1) < 4:
        raise ValueError(f"a WaveMix backbone needs at least 4 blocks (one per pyramid level), got depth {depth}")
    return tuple(round(k * depth / 4) - 1 for k in range(1, 5))


def _freeze(modules: Sequence[nn.Module]) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)


class WaveViTBody(nn.Module):
    """A ``features_only`` Wave-ViT as a torchvision backbone body: ``{"0": stride 4, ..., "3": stride 32}``.

    Args:
        trunk: a Wave-ViT built with ``features_only=True`` (the four stage maps, normalised).
        frozen_stages: stages whose weights stay fixed (0: none; k: the stem and stages 1..k).
    """

    def __init__(self, trunk: nn.Module, frozen_stages: int = 0) -> None:
        super().__init__()
        self.trunk = trunk
        self.channels = list(trunk.feature_info.channels())
        self.strides = list(trunk.feature_info.reduction())
        self.frozen_stages = check_int("frozen_stages", frozen_stages, min=0, max=len(self.channels))
        _freeze([getattr(trunk, f"{p}{i + 1}") for i in range(frozen_stages) for p in ("patch_embed", "block", "norm")])

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict((str(i), m) for i, m in enumerate(self.trunk(x)))


def _resampler(channels: int, source: int, target: int) -> nn.Module:
    """``source``-stride maps to ``target`` stride: a strided conv (coarser), a transposed conv (finer)."""
    if target == source:
        return nn.Identity()
    if target > source:
        f = target // source
        return nn.Conv2d(channels, channels, kernel_size=f, stride=f)
    f = source // target
    return nn.ConvTranspose2d(channels, channels, kernel_size=f, stride=f)


class WaveMixPyramid(nn.Module):
    """A ``features_only`` WaveMix (taps at :func:`pyramid_taps`) resampled to strides 4, 8, 16, 32.

    Args:
        trunk: a WaveMix built with ``features_only=True, out_indices=pyramid_taps(depth)``.
        frozen_stages: pyramid levels whose blocks stay fixed (k: the stem and the blocks up to the k-th tap).
    """

    def __init__(self, trunk: nn.Module, frozen_stages: int = 0) -> None:
        super().__init__()
        self.trunk = trunk
        source = trunk.feature_info.reduction()[0]
        for t in PYRAMID_STRIDES:
            if max(t, source) % min(t, source):
                raise ValueError(f"a WaveMix stem of stride {source} cannot be resampled to stride {t}; "
                                 "use a stem of stride 1, 2, 4, 8, 16 or 32")
        width = trunk.feature_info.channels()[0]
        self.resample = nn.ModuleList(_resampler(width, source, t) for t in PYRAMID_STRIDES)
        self.channels = [width] * len(PYRAMID_STRIDES)
        self.strides = list(PYRAMID_STRIDES)
        self.frozen_stages = check_int("frozen_stages", frozen_stages, min=0, max=len(PYRAMID_STRIDES))
        if frozen_stages:
            last = trunk.out_indices[frozen_stages - 1]
            _freeze([trunk.conv, *trunk.layers[: last + 1]])

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.trunk(x)
        return OrderedDict((str(i), r(m)) for i, (r, m) in enumerate(zip(self.resample, maps)))


class _BodyWithFPN(nn.Module):
    """A body's maps (those ``levels`` picks) through a FeaturePyramidNetwork (torchvision's
    ``BackboneWithFPN`` takes a body by child names; ours returns its maps directly)."""

    def __init__(self, body: nn.Module, levels: Sequence[int], out_channels: int, extra: nn.Module,
                 norm_layer: Any) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.body, self.levels = body, tuple(str(i) for i in levels)
        self.fpn = FeaturePyramidNetwork([body.channels[i] for i in levels], out_channels, extra_blocks=extra,
                                         norm_layer=norm_layer)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        return self.fpn(OrderedDict((k, maps[k]) for k in self.levels))


def _fpn_norm(norm: str, channels: int) -> Any:
    check_choice("fpn_norm", norm, FPN_NORMS)
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "group":
        if channels % 32:
            raise ValueError(f"fpn_norm='group' uses 32 groups, so fpn_channels must be a multiple of 32, got {channels}")
        return partial(nn.GroupNorm, 32)
    return None


def _anchor_sizes(sizes: Sequence[int] | None, scales: int) -> tuple[tuple[int, ...], ...]:
    """One anchor size per level (``scales`` octave steps each: 3 for RetinaNet, like torchvision)."""
    base = (32, 64, 128, 256, 512) if sizes is None else tuple(sizes)
    if len(base) != 5 or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in base):
        raise ValueError(f"anchor_sizes must be five positive ints (one per pyramid level), got {sizes!r}")
    return tuple(tuple(int(s * 2 ** (k / scales)) for k in range(scales)) for s in base)


class WaveDetector(nn.Module):
    """A torchvision detector (``net``) on a wavevision backbone with an FPN.

    ``model(images)`` in eval mode returns one dict per image (``boxes`` (N, 4) xyxy in the
    image's pixels, ``labels`` 1..num_classes, ``scores``, and for Mask R-CNN ``masks``
    (N, 1, H, W) probabilities); in training ``model(images, targets)`` returns torchvision's
    loss dict. ``images`` is a list of (C, H, W) tensors (sizes may differ) or a (B, C, H, W) batch.

    Args:
        detector: ``mask_rcnn``, ``faster_rcnn``, ``retinanet`` or ``fcos``.
        backbone: a registered Wave-ViT or WaveMix classifier name (built with ``features_only``).
        backbone_args: overrides for the backbone (e.g. smaller ``depths``).
        num_classes: object classes (labels 1..num_classes; 0 is background).
        in_chans: input channels.
        fpn_channels: channels of every pyramid level.
        fpn_norm: ``none`` (the paper's), ``batch`` or ``group`` (32 groups) in the FPN's convs.
        frozen_stages: backbone stages (Wave-ViT) or pyramid taps (WaveMix) kept fixed.
        min_size, max_size: torchvision's resize (shorter side to ``min_size``, longer at most ``max_size``).
        anchor_sizes: base anchor size per pyramid level (five ints; torchvision's 32..512 by default).
        box_head_dim: width of the two-layer RoI box head (Mask / Faster R-CNN).
        mask_head_dim: channels of the four-conv RoI mask head (Mask R-CNN).
        roi_sampling_ratio: RoIAlign's samples per bin side (torchvision's 2; 1 is 4x cheaper, for CPUs).
        detector_args: further keyword arguments for torchvision's detector (``box_score_thresh``,
            ``rpn_batch_size_per_image``, ``detections_per_img`` ...).
    """

    def __init__(self, *, detector: str = "mask_rcnn", backbone: str = "wave_vit_s", backbone_args: dict | None = None,
                 num_classes: int = 80, in_chans: int = 3, fpn_channels: int = 256, fpn_norm: str = "none",
                 frozen_stages: int = 0, min_size: int = 800, max_size: int = 1333,
                 anchor_sizes: Sequence[int] | None = None, box_head_dim: int = 1024, mask_head_dim: int = 256,
                 roi_sampling_ratio: int = 2, detector_args: dict | None = None) -> None:
        super().__init__()
        detector_needs()
        check_choice("detector", detector, DETECTORS)
        self.detector, self.backbone_name = detector, backbone
        self.num_classes = check_int("num_classes", num_classes, min=1)
        self.in_chans = check_int("in_chans", in_chans, min=1)
        check_int("fpn_channels", fpn_channels, min=1)
        self.min_size, self.max_size = check_int("min_size", min_size, min=32), check_int("max_size", max_size, min=32)
        body = _make_body(backbone, dict(backbone_args or {}), in_chans, frozen_stages)
        retina = detector in ("retinanet", "fcos")  # P3-P7, like torchvision's and MMDetection's builds
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

        levels = (1, 2, 3) if retina else (0, 1, 2, 3)
        extra = LastLevelP6P7(body.channels[-1], fpn_channels) if retina else LastLevelMaxPool()
        features = _BodyWithFPN(body, levels, fpn_channels, extra, _fpn_norm(fpn_norm, fpn_channels))
        self.net = _make_detector(detector, features, num_classes + 1, dict(
            min_size=min_size, max_size=max_size, image_mean=[0.0] * in_chans, image_std=[1.0] * in_chans,
            **_heads(detector, fpn_channels, num_classes + 1, anchor_sizes, box_head_dim, mask_head_dim,
                     roi_sampling_ratio),
            **dict(detector_args or {})))
        self.has_masks = detector == "mask_rcnn"
        self._dense = False

    @property
    def body(self) -> nn.Module:
        """The backbone body (a :class:`WaveViTBody` or :class:`WaveMixPyramid`)."""
        return self.net.backbone.body

    def forward(self, images: Any, targets: list[dict[str, torch.Tensor]] | None = None) -> Any:
        if self._dense:
            return self._dense_forward(images)
        if self.training and targets is None:
            raise RuntimeError(f"{type(self).__name__} in training mode needs targets (a list of dicts with boxes and "
                             "labels, and masks for Mask R-CNN); call model.eval() to detect")
        return self.net(images, targets)

    def _dense_forward(self, x: torch.Tensor) -> Any:
        feats = list(self.net.backbone(x).values())
        return (self.net.rpn.head if hasattr(self.net, "rpn") else self.net.head)(feats)

    @contextlib.contextmanager
    def dense_only(self) -> Iterator["WaveDetector"]:
        """Within it, ``model(x)`` on a (B, C, H, W) batch runs only the part whose cost the image
        size fixes (backbone, FPN, dense head): what ``macs`` counts (see the module docstring)."""
        self._dense = True
        try:
            yield self
        finally:
            self._dense = False

    def load_backbone(self, path: str | Path) -> None:
        """Load a wavevision classification checkpoint (``.safetensors`` + its ``.json``) or a
        public ``.pth`` state dict into the backbone; the classifier's head is dropped.

        Raises:
            CheckpointMismatchError: the checkpoint is of another backbone (the message names both).
        """
        from ._builder import CheckpointMismatchError, _read_config, _read_weights, load_state_dict_strict

        path = Path(path)
        if path.suffix == ".safetensors" and path.with_suffix(".json").exists():
            saved = _read_config(path)["model"]
            if saved != self.backbone_name:
                raise CheckpointMismatchError(f"backbone_checkpoint {path} holds a {saved!r} model, but this detector's "
                                              f"backbone is {self.backbone_name!r}; give a {self.backbone_name} "
                                              "classification checkpoint")
        state = _read_weights(path)
        trunk = self.body.trunk
        own = trunk.state_dict()
        kept = {k: v for k, v in state.items() if k in own}
        try:
            load_state_dict_strict(trunk, kept, source=f"backbone_checkpoint {path}")
        except CheckpointMismatchError as e:
            raise CheckpointMismatchError(f"{e} (this detector's backbone is {self.backbone_name!r})") from None


def _make_body(backbone: str, args: dict, in_chans: int, frozen_stages: int) -> nn.Module:
    """The registered classifier ``backbone`` turned into a pyramid body (its head removed)."""
    from ._builder import create_model

    trunk = create_model(backbone, in_chans=in_chans, **args)
    if isinstance(trunk, WaveViT):
        return WaveViTBody(trunk.as_backbone(), frozen_stages)
    if isinstance(trunk, WaveMix):
        return WaveMixPyramid(trunk.as_backbone(pyramid_taps(len(trunk.layers))), frozen_stages)
    raise ValueError(f"backbone {backbone!r} is a {type(trunk).__name__}, not a Wave-ViT or WaveMix classifier; "
                     "choose e.g. wave_vit_s, wave_vit_b or wavemix_192_16_l3")


def _heads(detector: str, channels: int, classes: int, anchor_sizes: Sequence[int] | None, box_dim: int,
           mask_dim: int, sampling: int) -> dict[str, Any]:
    """The anchors and RoI heads sized for ``channels``-wide pyramid levels."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    if detector == "fcos":  # one anchor per location: the level's stride (8..128) by default, like torchvision
        sizes = tuple((s,) for s in (anchor_sizes or (8, 16, 32, 64, 128)))
        return dict(anchor_generator=AnchorGenerator(_check_sizes(sizes), ((1.0,),) * 5))
    if detector == "retinanet":
        return dict(anchor_generator=AnchorGenerator(_anchor_sizes(anchor_sizes, 3), ((0.5, 1.0, 2.0),) * 5))
    check_int("box_head_dim", box_dim, min=1)
    check_int("roi_sampling_ratio", sampling, min=1)
    levels = ["0", "1", "2", "3"]  # P2-P5; P6 only feeds the RPN
    out: dict[str, Any] = dict(
        rpn_anchor_generator=AnchorGenerator(_anchor_sizes(anchor_sizes, 1), ((0.5, 1.0, 2.0),) * 5),
        box_roi_pool=MultiScaleRoIAlign(levels, 7, sampling), box_head=TwoMLPHead(channels * 7 * 7, box_dim),
        box_predictor=FastRCNNPredictor(box_dim, classes))
    if detector == "mask_rcnn":
        check_int("mask_head_dim", mask_dim, min=1)
        out.update(mask_roi_pool=MultiScaleRoIAlign(levels, 14, sampling), mask_head=MaskRCNNHeads(channels, [mask_dim] * 4, 1),
                   mask_predictor=MaskRCNNPredictor(mask_dim, mask_dim, classes))
    return out


def _check_sizes(sizes: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    if len(sizes) != 5 or any(not isinstance(s[0], int) or s[0] < 1 for s in sizes):
        raise ValueError(f"anchor_sizes must be five positive ints (one per pyramid level), got {sizes!r}")
    return sizes


def _make_detector(detector: str, features: nn.Module, classes: int, kwargs: dict[str, Any]) -> nn.Module:
    from torchvision.models import detection

    cls = {"mask_rcnn": detection.MaskRCNN, "faster_rcnn": detection.FasterRCNN,
           "retinanet": detection.RetinaNet, "fcos": detection.FCOS}[detector]
    try:
        # the R-CNNs get their predictors (sized for the FPN) from _heads, so no class count of their own
        return cls(features, num_classes=None if "box_predictor" in kwargs else classes, **kwargs)
    except TypeError as e:
        raise TypeError(f"{detector}: {e}; see torchvision.models.detection.{cls.__name__} for detector_args") from None


# --------------------------------------------------------------------------------------
# Records and registered builders

_PAPER = "Wave-ViT: Unifying Wavelet and Transformers for Visual Representation Learning (ECCV 2022)"
_REPO = "https://github.com/YehLi/ImageNetModel"
_COCO_NOTE = ("params: torchvision's detector at 80 classes (background logit included); macs: backbone + FPN + "
              "dense head at 800x1280, RoI heads not counted (see wavevision.models.detection)")


def _det_cfg(detector: str, params: int, macs: int, metrics: dict[str, float] | None = None,
             **kwargs: Any) -> PretrainedCfg:
    classifier = {"mask_rcnn": ("net.roi_heads.box_predictor.cls_score", "net.roi_heads.mask_predictor.mask_fcn_logits"),
                  "faster_rcnn": "net.roi_heads.box_predictor.cls_score",
                  "retinanet": "net.head.classification_head.cls_logits",
                  "fcos": "net.head.classification_head.cls_logits"}[detector]
    fields: dict[str, Any] = dict(
        task="detection", input_size=(3, 800, 1280), min_input_size=(3, 32, 32), num_classes=80, crop_pct=1.0,
        interpolation="bilinear", classifier=classifier, dataset="COCO val2017" if metrics else None,
        metrics=dict(metrics or {}), metrics_source=_PAPER if metrics else None, paper_name=_PAPER,
        origin_url=_REPO, paper_ids="arXiv:2207.04978", params=params, macs=macs, notes=(_COCO_NOTE,))
    return PretrainedCfg(**{**fields, **kwargs})


_DIGITS = dict(input_size=(1, 96, 96), num_classes=10, mean=(0.0,), std=(1.0,), dataset=None, notes=(
    "a small CPU-sized detector for the embedded digit-objects dataset (wavevision train --dataset digit-objects)",))

default_cfgs = generate_default_cfgs({
    "mask_rcnn_wave_vit_s_fpn_1x": _det_cfg("mask_rcnn", 39_533_285, 296_107_760_640, {"box_ap": 46.6, "mask_ap": 42.4}),
    "mask_rcnn_wave_vit_b_fpn_1x": _det_cfg("mask_rcnn", 49_509_509, 406_658_544_640, {"box_ap": 47.6, "mask_ap": 43.0}),
    "retinanet_wave_vit_s_fpn_1x": _det_cfg("retinanet", 29_484_781, 345_247_285_760, {"box_ap": 45.8}),
    "retinanet_wave_vit_b_fpn_1x": _det_cfg("retinanet", 39_608_461, 455_836_408_320, {"box_ap": 47.2}),
    "faster_rcnn_wave_vit_s_fpn_1x": _det_cfg("faster_rcnn", 36_889_748, 296_107_760_640),
    "fcos_wave_vit_s_fpn_1x": _det_cfg("fcos", 27_923_782, 311_878_292_480),
    "mask_rcnn_wavemix_192_16_fpn_1x": _det_cfg("mask_rcnn", 50_867_989, 420_042_224_640),
    "retinanet_wavemix_192_16_fpn_1x": _det_cfg("retinanet", 40_196_893, 466_931_243_520),
    "mask_rcnn_wave_vit_digits": _det_cfg("mask_rcnn", 1_420_077, 73_845_312, **_DIGITS),
})


def _create_detector(variant: str, cfg: dict[str, Any], kwargs: dict[str, Any]) -> WaveDetector:
    """Build ``variant``; ``backbone_checkpoint=PATH`` loads a classification checkpoint into the
    backbone (not recorded in ``model_kwargs``: a trained detector's checkpoint holds those weights)."""
    from ._builder import build_model

    kwargs = dict(kwargs)
    checkpoint = kwargs.pop("backbone_checkpoint", None)
    model = build_model(variant, WaveDetector, cfg, kwargs)
    if checkpoint is not None and not next(model.parameters()).is_meta:  # a meta build (sizing) holds no values
        model.load_backbone(checkpoint)
    return model


_TINY_VIT = dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), stem_hidden_dim=8,
                 sr_ratios=(2, 1, 1, 1))


@register_model
def mask_rcnn_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Mask R-CNN, Wave-ViT-S + FPN (P2-P6), 1x schedule (paper: 46.6 box AP, 42.4 mask AP on COCO val2017)."""
    return _create_detector("mask_rcnn_wave_vit_s_fpn_1x", dict(detector="mask_rcnn", backbone="wave_vit_s"), kwargs)


@register_model
def mask_rcnn_wave_vit_b_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Mask R-CNN, Wave-ViT-B + FPN (P2-P6), 1x schedule (paper: 47.6 box AP, 43.0 mask AP)."""
    return _create_detector("mask_rcnn_wave_vit_b_fpn_1x", dict(detector="mask_rcnn", backbone="wave_vit_b"), kwargs)


@register_model
def retinanet_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """RetinaNet, Wave-ViT-S + FPN (P3-P7), 1x schedule (paper: 45.8 box AP)."""
    return _create_detector("retinanet_wave_vit_s_fpn_1x", dict(detector="retinanet", backbone="wave_vit_s"), kwargs)


@register_model
def retinanet_wave_vit_b_fpn_1x(**kwargs: Any) -> WaveDetector:
    """RetinaNet, Wave-ViT-B + FPN (P3-P7), 1x schedule (paper: 47.2 box AP)."""
    return _create_detector("retinanet_wave_vit_b_fpn_1x", dict(detector="retinanet", backbone="wave_vit_b"), kwargs)


@register_model
def faster_rcnn_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Faster R-CNN, Wave-ViT-S + FPN (P2-P6), 1x schedule (not in the paper)."""
    return _create_detector("faster_rcnn_wave_vit_s_fpn_1x", dict(detector="faster_rcnn", backbone="wave_vit_s"), kwargs)


@register_model
def fcos_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """FCOS, Wave-ViT-S + FPN (P3-P7), 1x schedule (not in the paper)."""
    return _create_detector("fcos_wave_vit_s_fpn_1x", dict(detector="fcos", backbone="wave_vit_s"), kwargs)


@register_model
def mask_rcnn_wavemix_192_16_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Mask R-CNN on WaveMix-192/16 (level 3) with the isotropic pyramid rule (module docstring)."""
    return _create_detector("mask_rcnn_wavemix_192_16_fpn_1x",
                            dict(detector="mask_rcnn", backbone="wavemix_192_16_l3"), kwargs)


@register_model
def retinanet_wavemix_192_16_fpn_1x(**kwargs: Any) -> WaveDetector:
    """RetinaNet on WaveMix-192/16 (level 3) with the isotropic pyramid rule (module docstring)."""
    return _create_detector("retinanet_wavemix_192_16_fpn_1x",
                            dict(detector="retinanet", backbone="wavemix_192_16_l3"), kwargs)


@register_model
def mask_rcnn_wave_vit_digits(**kwargs: Any) -> WaveDetector:
    """A CPU-sized Mask R-CNN (one-block-per-stage Wave-ViT, 64-channel FPN, small RoI heads and
    anchors 8-128) for 96x96 one-channel images: the digit-objects default."""
    cfg = dict(detector="mask_rcnn", backbone="wave_vit_s", backbone_args=_TINY_VIT, num_classes=10, in_chans=1,
               fpn_channels=64, min_size=96, max_size=96, anchor_sizes=(8, 16, 32, 64, 128), box_head_dim=256,
               mask_head_dim=64, roi_sampling_ratio=1,
               detector_args=dict(rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
                                  rpn_post_nms_top_n_test=150, rpn_batch_size_per_image=128,
                                  box_batch_size_per_image=64, box_detections_per_img=30))
    return _create_detector("mask_rcnn_wave_vit_digits", cfg, kwargs)

