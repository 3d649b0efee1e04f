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

**A torchvision detector, not a wrapper.** ``create_model("mask_rcnn_wave_vit_s_fpn_1x")`` returns
a :class:`WaveDetector` that *is* torchvision's ``MaskRCNN`` (``RetinaNet``, ``FasterRCNN``,
``FCOS``): a subclass built when torchvision is first needed (``WaveMaskRCNN`` ...), so
``model.backbone``, ``model.rpn``, ``model.roi_heads``, ``model.transform`` and torchvision's
fine-tuning recipes (``model.roi_heads.box_predictor = FastRCNNPredictor(...)``) work unchanged,
and its state-dict keys are torchvision's. Checkpoints of the earlier wrapper (keys under
``net.``) still load, with a one-time note.

**Reference numerics** (``reference``). ``"torchvision"`` keeps torchvision's choices;
``"mmdet"`` (the default of the ``*_fpn_1x`` builds but FCOS's, as the paper's numbers come from
MMDetection 2.x) computes what MMDetection 2.x's configs compute:

* RetinaNet's P6 is a stride-2 3x3 conv on C5 (``add_extra_convs='on_input'``, always the
  backbone map) and P7 the same on P6 *without* a ReLU between them
  (``relu_before_extra_convs=False``); torchvision puts a ReLU there and takes P5 instead of C5
  when their widths agree. FCOS follows MMDetection's FCOS config (``'on_output'``: P6 from P5,
  ReLU before P7).
* RoIAlign (box and mask RoIs) samples adaptively (``sampling_ratio=0``: ``ceil(bin size)``
  points per bin side) with ``aligned=True`` (box corners moved by half a pixel, mmcv's ``RoIAlign``
  default), where torchvision's detectors use 2 points and ``aligned=False``. The level of a
  RoI is the same in both (``floor(log2(sqrt(wh) / 56))``, clamped to P2-P5).
* The resize is MMDetection's keep-ratio ``Resize`` (short side ``min_size`` unless the long
  side would pass ``max_size``, sides rounded half up: 480x640 becomes 800x1067, padded to
  800x1088), where torchvision floors the sides (800x1066); ``train_sizes`` adds MMDetection's
  multi-scale training.

The evaluation side (COCO size ranges from the mask area where a dataset gives no ``area``) is
the rule of ``wavevision.engine.tasks.detection`` for every detector.

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
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from ..utils.validate import check_bool, check_choice, check_int
from ._backbone import backbone_args as _backbone_args
from ._backbone import load_backbone_checkpoint
from ._base import freeze_batch_norms
from ._builder import build_model, create_model, register_checkpoint_filter
from ._features import FeatureInfo, pyramid_taps
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model

__all__ = ["PyramidBody", "WaveDetector", "WaveMixPyramid", "WaveViTBody", "checkpoint_filter_fn", "detector_class",
           "detector_needs", "mmdet_resized_size", "pyramid_taps"]

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


def _freeze(modules: Sequence[nn.Module]) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)


def mmdet_resized_size(height: int, width: int, short: int, long: int) -> tuple[int, int]:
    """MMDetection 2.x's keep-ratio size (``Resize(img_scale=(long, short), keep_ratio=True)``,
    ``mmcv.rescale_size``): the scale ``min(short / min(h, w), long / max(h, w))`` makes the short
    side ``short`` unless the long side would pass ``long``; each side is rounded half up.

    >>> mmdet_resized_size(480, 640, 800, 1333)
    (800, 1067)
    """
    scale = min(short / min(height, width), long / max(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


def _resampler(channels: int, source: int, target: int) -> nn.Module:
    """``source``-stride maps to ``target`` stride: a strided conv (coarser), a transposed conv (finer)."""
    if target == source:
        return nn.Identity()
    if target > source:
        f = target // source
        return nn.Conv2d(channels, channels, kernel_size=f, stride=f)
    f = source // target
    return nn.ConvTranspose2d(channels, channels, kernel_size=f, stride=f)


class PyramidBody(nn.Module):
    """A ``features_only`` backbone's four maps as a torchvision backbone body at strides 4, 8, 16, 32
    (``{"0": stride 4, ..., "3": stride 32}``). Each map is resampled from its own stride: a
    hierarchical backbone (Wave-ViT) is used as it is, an isotropic one (WaveMix) gets strided or
    transposed convs (module docstring). The backbone says what it provides: its
    ``pyramid_indices()`` chose the maps (``out_indices``), its ``pyramid_frozen_modules(k)`` names
    what ``frozen_stages=k`` fixes.

    Args:
        trunk: a backbone built with ``features_only=True, out_indices=trunk.pyramid_indices()``.
        frozen_stages: pyramid levels whose modules stay fixed (0: none; k: the stem and all up to the k-th map).
    """

    def __init__(self, trunk: nn.Module, frozen_stages: int = 0) -> None:
        super().__init__()
        self.trunk = trunk
        info = cast(FeatureInfo, trunk.feature_info)
        channels, sources = list(info.channels()), list(info.reduction())
        if len(channels) != len(PYRAMID_STRIDES):
            raise ValueError(f"a detection pyramid takes {len(PYRAMID_STRIDES)} backbone maps, got {len(channels)}; "
                             "build the backbone with out_indices=pyramid_indices()")
        for source, t in zip(sources, PYRAMID_STRIDES):
            if max(t, source) % min(t, source):
                raise ValueError(f"a backbone map of stride {source} cannot be resampled to stride {t}; "
                                 "use a stem of stride 1, 2, 4, 8, 16 or 32")
        self.resample = nn.ModuleList(_resampler(c, s, t) for c, s, t in zip(channels, sources, PYRAMID_STRIDES))
        self.channels = channels
        self.strides = list(PYRAMID_STRIDES)
        self.frozen_stages = check_int("frozen_stages", frozen_stages, min=0, max=len(PYRAMID_STRIDES))
        frozen_modules = cast(Callable[[int], list[nn.Module]], trunk.pyramid_frozen_modules)
        _freeze(frozen_modules(frozen_stages) if frozen_stages else [])

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = self.trunk(x)
        return OrderedDict((str(i), r(m)) for i, (r, m) in enumerate(zip(self.resample, maps)))


# The bodies' earlier names (one class per family, chosen by the backbone's type).
WaveViTBody = WaveMixPyramid = PyramidBody


class _BodyWithFPN(nn.Module):
    """A body's maps (those ``levels`` picks) through a FeaturePyramidNetwork (torchvision's
    ``BackboneWithFPN`` takes a body by child names; ours returns its maps directly)."""

    def __init__(self, body: PyramidBody, levels: Sequence[int], out_channels: int, extra: nn.Module,
                 norm_layer: Any) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.body, self.levels = body, tuple(str(i) for i in levels)
        self.fpn = FeaturePyramidNetwork([body.channels[i] for i in levels], out_channels, extra_blocks=extra,
                                         norm_layer=norm_layer)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
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


REFERENCES = ("torchvision", "mmdet")
# torchvision's detector class of each kind, and the name of its wavevision subclass
_CLASSES = {"mask_rcnn": "MaskRCNN", "faster_rcnn": "FasterRCNN", "retinanet": "RetinaNet", "fcos": "FCOS"}
_LEGACY_PREFIX = "net."  # the earlier WaveDetector held the torchvision model as ``self.net``
_legacy_noted = False


class WaveDetector(nn.Module):
    """A torchvision detector on a wavevision backbone with an FPN.

    ``WaveDetector(detector=...)`` returns an instance of a subclass of both this class and
    torchvision's detector class (``WaveMaskRCNN`` is a ``torchvision.models.detection.MaskRCNN``),
    so everything torchvision documents for its detectors applies.

    ``model(images)`` in eval mode returns one dict per image (``boxes`` (N, 4) xyxy in the
    image's pixels, ``labels`` 1..num_classes, ``scores``, and for Mask R-CNN ``masks``
    (N, 1, H, W) probabilities); in training ``model(images, targets)`` returns torchvision's
    loss dict. ``images`` is a list of (C, H, W) tensors (sizes may differ) or a (B, C, H, W) batch.

    Args:
        detector: ``mask_rcnn``, ``faster_rcnn``, ``retinanet`` or ``fcos``.
        backbone: a registered Wave-ViT or WaveMix classifier name (built with ``features_only``).
        backbone_args: overrides for the backbone (e.g. smaller ``depths``), the name UperNet uses too.
        num_classes: object classes (labels 1..num_classes; 0 is background).
        in_chans: input channels.
        fpn_channels: channels of every pyramid level.
        fpn_norm: ``none`` (the paper's), ``batch`` or ``group`` (32 groups) in the FPN's convs.
        frozen_stages: backbone stages (Wave-ViT) or pyramid taps (WaveMix) kept fixed.
        min_size, max_size: the resize (shorter side to ``min_size``, longer at most ``max_size``;
            with ``reference="mmdet"`` MMDetection's rounding, :func:`mmdet_resized_size`). The
            batch is padded to a multiple of 32 either way.
        train_sizes: multi-scale training (MMDetection's ``multiscale_mode='value'``, the 3x
            schedules): in training each image's short side is drawn from these (torch's global
            RNG, so ``torch.manual_seed`` repeats it), the long side still at most ``max_size``;
            evaluation keeps ``min_size``. Needs ``reference="mmdet"``. None: single scale.
        frozen_norm: the backbone's BatchNorm weights and biases are not trained
            (``requires_grad=False``, what the Wave-ViT detection and segmentation code does).
        norm_eval: the backbone's BatchNorm layers stay in eval mode in ``train()`` too, so their
            running statistics do not change (MMDetection's ``norm_eval=True``).
        anchor_sizes: base anchor size per pyramid level (five ints; torchvision's 32..512 by default).
        box_head_dim: width of the two-layer RoI box head (Mask / Faster R-CNN).
        mask_head_dim: channels of the four-conv RoI mask head (Mask R-CNN).
        reference: ``torchvision`` or ``mmdet``: whose P6/P7 and RoIAlign to compute (module docstring).
        roi_sampling_ratio: RoIAlign's samples per bin side; None: the reference's (torchvision 2,
            MMDetection 0 = adaptive); 1 is the cheapest, for CPUs.
        detector_args: further keyword arguments for torchvision's detector (``box_score_thresh``,
            ``rpn_batch_size_per_image``, ``detections_per_img`` ...).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> WaveDetector:
        # WaveDetector(...) builds the subclass of the torchvision detector it names
        if cls is WaveDetector:
            cls = detector_class(kwargs.get("detector", "mask_rcnn"))
        return super().__new__(cls)

    def __init__(self, *, detector: str = "mask_rcnn", backbone: str = "wave_vit_s", backbone_args: dict | None = None,
                 num_classes: int = 80, in_chans: int = 3, fpn_channels: int = 256, fpn_norm: str = "none",
                 frozen_stages: int = 0, min_size: int = 800, max_size: int = 1333,
                 train_sizes: Sequence[int] | None = None, frozen_norm: bool = False, norm_eval: bool = False,
                 anchor_sizes: Sequence[int] | None = None, box_head_dim: int = 1024, mask_head_dim: int = 256,
                 reference: str = "torchvision", roi_sampling_ratio: int | None = None,
                 detector_args: dict | None = None) -> None:
        if not isinstance(self, detector_class(detector)):
            raise ValueError(f"detector={detector!r} does not fit a {type(self).__name__}; build it with "
                             f"WaveDetector(detector={detector!r}) or wavevision.create_model")
        check_choice("reference", reference, REFERENCES)
        check_int("num_classes", num_classes, min=1)
        check_int("in_chans", in_chans, min=1)
        check_int("fpn_channels", fpn_channels, min=1)
        check_int("min_size", min_size, min=32)
        check_int("max_size", max_size, min=32)
        frozen_norm, norm_eval = check_bool("frozen_norm", frozen_norm), check_bool("norm_eval", norm_eval)
        if train_sizes is not None:
            if reference != "mmdet":
                raise ValueError(f"train_sizes (multi-scale training) follows MMDetection's resize; give "
                                 f"reference='mmdet' (got {reference!r}) or leave train_sizes out")
            if isinstance(train_sizes, (str, bytes)) or not isinstance(train_sizes, Sequence) or not train_sizes:
                raise ValueError(f"train_sizes must be a non-empty list of short sides (e.g. 480..800 step 32), "
                                 f"got {train_sizes!r}")
            train_sizes = tuple(check_int("train_sizes[]", t, min=32) for t in train_sizes)
        body = _make_body(backbone, _backbone_args(backbone_args, None, "WaveDetector"), in_chans, frozen_stages)
        retina = detector in ("retinanet", "fcos")  # P3-P7, like torchvision's and MMDetection's builds
        levels = (1, 2, 3) if retina else (0, 1, 2, 3)
        features = _BodyWithFPN(body, levels, fpn_channels, _extra_levels(detector, reference, body, fpn_channels),
                                _fpn_norm(fpn_norm, fpn_channels))
        if roi_sampling_ratio is None:
            roi_sampling_ratio = 0 if reference == "mmdet" else 2
        kwargs = dict(min_size=min_size, max_size=max_size, image_mean=[0.0] * in_chans, image_std=[1.0] * in_chans,
                      **_heads(detector, fpn_channels, num_classes + 1, anchor_sizes, box_head_dim, mask_head_dim,
                               roi_sampling_ratio, aligned=reference == "mmdet"),
                      **dict(detector_args or {}))
        try:
            # the R-CNNs get their predictors (sized for the FPN) from _heads, so no class count of their own
            super().__init__(features, num_classes=None if "box_predictor" in kwargs else num_classes + 1, **kwargs)
        except TypeError as e:
            raise TypeError(f"{detector}: {e}; see torchvision.models.detection.{_CLASSES[detector]} for "
                            "detector_args") from None
        self.detector, self.backbone_name, self.reference = detector, backbone, reference
        self.in_chans, self.min_size, self.max_size = in_chans, min_size, max_size
        if reference == "mmdet":
            self.transform = _lazy_class("MMDetTransform")(min_size, max_size, in_chans, train_sizes)
        self.train_sizes, self.frozen_norm, self.norm_eval = train_sizes, frozen_norm, norm_eval
        if frozen_norm:
            freeze_batch_norms(self.body)
        self.train(self.training)
        self.has_masks = detector == "mask_rcnn"
        self._dense = False
        self._register_load_state_dict_pre_hook(_rename_legacy_keys)

    @property
    def num_classes(self) -> int:
        """Object classes (labels 1..num_classes), read from the classifier, so a predictor
        replaced the torchvision way (``roi_heads.box_predictor = ...``) is followed."""
        det: Any = self  # the torchvision detector subclass this is at run time
        if hasattr(self, "roi_heads"):
            return det.roi_heads.box_predictor.cls_score.out_features - 1
        return det.head.classification_head.num_classes - 1

    def train(self, mode: bool = True) -> WaveDetector:
        """``nn.Module.train``; with ``norm_eval`` the backbone's BatchNorm layers stay in eval mode."""
        super().train(mode)
        if mode and self.norm_eval:
            freeze_batch_norms(self.body, affine=False, stats=True)
        return self

    @property
    def body(self) -> PyramidBody:
        """The backbone body (a :class:`PyramidBody`)."""
        det: Any = self  # the torchvision detector subclass this is at run time
        return cast(PyramidBody, det.backbone.body)

    def forward(self, images: Any, targets: list[dict[str, torch.Tensor]] | None = None) -> Any:
        if self._dense:
            return self._dense_forward(images)
        if self.training and targets is None:
            raise RuntimeError(f"{type(self).__name__} in training mode needs targets (a list of dicts with boxes and "
                               "labels, and masks for Mask R-CNN); call model.eval() to detect")
        return super().forward(images, targets)

    def _dense_forward(self, x: torch.Tensor) -> Any:
        det: Any = self  # the torchvision detector subclass this is at run time
        feats = list(det.backbone(x).values())
        return (det.rpn.head if hasattr(self, "rpn") else det.head)(feats)

    @contextlib.contextmanager
    def dense_only(self) -> Iterator[WaveDetector]:
        """Within it, ``model(x)`` on a (B, C, H, W) batch runs only the part whose cost the image
        size fixes (backbone, FPN, dense head): what ``macs`` counts (see the module docstring)."""
        self._dense = True
        try:
            yield self
        finally:
            self._dense = False

    def load_backbone(self, path: str | Path) -> None:
        """Load a wavevision classification checkpoint (``.safetensors`` + its ``.json``) or a
        public ``.pth`` state dict into the backbone; the classifier's head is dropped
        (:func:`wavevision.models._backbone.load_backbone_checkpoint`, the loader UperNet uses too).
        """
        load_backbone_checkpoint(self.body.trunk, path, owner=getattr(self, "model_name", type(self).__name__))


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor],
                         model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """A detector state dict in torchvision's key layout: the earlier ``WaveDetector`` wrapper's
    keys (``net.backbone...``, ``net.roi_heads...``) lose their ``net.`` prefix; the first such
    load in a process says so once. Other keys are kept as they are."""
    global _legacy_noted
    if not any(k.startswith(_LEGACY_PREFIX) for k in state_dict):
        return dict(state_dict)
    if not _legacy_noted:
        _legacy_noted = True
        warnings.warn("loading a detector checkpoint of wavevision before detectors became torchvision models: its "
                      "'net.' keys are renamed to torchvision's (save it again to drop this note)", stacklevel=3)
    return {k[len(_LEGACY_PREFIX):] if k.startswith(_LEGACY_PREFIX) else k: v for k, v in state_dict.items()}


register_checkpoint_filter(WaveDetector, checkpoint_filter_fn)  # the earlier wrapper's ``net.`` keys


def _rename_legacy_keys(state_dict: dict, prefix: str, *args: Any) -> None:
    """Load pre-hook: ``model.load_state_dict(old)`` takes an earlier wrapper's ``net.`` keys too."""
    legacy = prefix + _LEGACY_PREFIX
    if any(k.startswith(legacy) for k in state_dict):
        renamed = checkpoint_filter_fn({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)})
        for k in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[k]
        state_dict.update({prefix + k: v for k, v in renamed.items()})


# --------------------------------------------------------------------------------------
# Classes that subclass torchvision's, made when torchvision is first needed (the package
# never imports torchvision at import); module __getattr__ finds them, so pickle does too.

_made: dict[str, type] = {}


def detector_class(detector: str) -> type:
    """The :class:`WaveDetector` subclass of torchvision's ``detector`` class (``WaveMaskRCNN`` ...)."""
    check_choice("detector", detector, DETECTORS)
    return _lazy_class(f"Wave{_CLASSES[detector]}")


def _lazy_class(name: str) -> type:
    torchvision = detector_needs()  # every time: a broken torchvision is named even after a first build
    if name not in _made:
        if name == "MMDetTransform":
            _made[name] = type(name, (_MMDetTransform, torchvision.models.detection.transform.GeneralizedRCNNTransform),
                               {"__module__": __name__, "__doc__": _MMDetTransform.__doc__})
        elif name == "MMDetExtraLevels":
            _made[name] = type(name, (_MMDetExtraLevels, torchvision.ops.feature_pyramid_network.ExtraFPNBlock),
                               {"__module__": __name__, "__doc__": _MMDetExtraLevels.__doc__})
        elif name == "AlignedMultiScaleRoIAlign":
            _made[name] = type(name, (_AlignedRoIAlign, torchvision.ops.MultiScaleRoIAlign),
                               {"__module__": __name__, "__doc__": _AlignedRoIAlign.__doc__})
        else:
            base = getattr(torchvision.models.detection, name[len("Wave"):])
            _made[name] = type(name, (WaveDetector, base), {"__module__": __name__, "__qualname__": name,
                                                            "__doc__": f"{WaveDetector.__doc__}\n    (torchvision's "
                                                                       f"{base.__name__}.)"})
    return _made[name]


_LAZY_NAMES = {f"Wave{c}" for c in _CLASSES.values()} | {"MMDetExtraLevels", "AlignedMultiScaleRoIAlign", "MMDetTransform"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        return _lazy_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _MMDetTransform(nn.Module):
    """torchvision's ``GeneralizedRCNNTransform`` with MMDetection 2.x's keep-ratio ``Resize``
    (:func:`mmdet_resized_size`: sides rounded half up where torchvision floors them, so a
    480x640 image becomes 800x1067, not 800x1066; bilinear image, nearest masks, boxes scaled
    per axis and clipped to the image) and optional multi-scale training (``train_sizes``).
    Normalisation (the identity: the datasets normalise), padding to a multiple of 32 and the
    mapping of predictions back to the input size are torchvision's."""

    # set by torchvision's GeneralizedRCNNTransform, this class's base at run time
    min_size: tuple[int, ...]
    max_size: int
    size_divisible: int

    def __init__(self, min_size: int, max_size: int, in_chans: int, train_sizes: Sequence[int] | None = None) -> None:
        super().__init__(min_size=min_size, max_size=max_size, image_mean=[0.0] * in_chans,
                         image_std=[1.0] * in_chans, size_divisible=32)
        self.train_sizes = tuple(train_sizes) if train_sizes else None

    def short_side(self) -> int:
        """The short side of the next image: drawn from ``train_sizes`` in training, else ``min_size``."""
        if self.training and self.train_sizes:
            return self.train_sizes[int(torch.randint(len(self.train_sizes), ()))]
        return self.min_size[-1]

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, Any]:
        from torchvision.models.detection.transform import resize_boxes, resize_keypoints

        h, w = image.shape[-2:]
        size = mmdet_resized_size(h, w, self.short_side(), self.max_size)
        image = nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        if target is None:
            return image, target
        target = dict(target)
        boxes = resize_boxes(target["boxes"], (h, w), size)
        target["boxes"] = torch.stack([boxes[:, 0].clamp(0, size[1]), boxes[:, 1].clamp(0, size[0]),
                                       boxes[:, 2].clamp(0, size[1]), boxes[:, 3].clamp(0, size[0])], dim=1)
        if "masks" in target:
            masks = target["masks"]
            target["masks"] = nn.functional.interpolate(masks[:, None].float(), size=size)[:, 0].to(masks.dtype)
        if "keypoints" in target:
            target["keypoints"] = resize_keypoints(target["keypoints"], (h, w), size)
        return image, target

    def __repr__(self) -> str:
        scales = f", train_sizes={list(self.train_sizes)}" if self.train_sizes else ""
        return (f"{type(self).__name__}(MMDetection keep-ratio resize to min_size={self.min_size[-1]}, "
                f"max_size={self.max_size}{scales}, pad to {self.size_divisible})")


class _MMDetExtraLevels(nn.Module):
    """P6 and P7 as MMDetection 2.x's FPN computes them: a stride-2 3x3 conv on C5
    (``source="input"``, RetinaNet's ``add_extra_convs='on_input'``) or on P5 (``"output"``,
    FCOS's ``'on_output'``), then the same conv on P6, with a ReLU before it only where
    ``relu_before_extra_convs`` (FCOS: True, RetinaNet: False)."""

    def __init__(self, in_channels: int, out_channels: int, *, source: str, relu: bool) -> None:
        super().__init__()
        self.p6 = nn.Conv2d(in_channels if source == "input" else out_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)
        for m in (self.p6, self.p7):  # torchvision's initialisation of its P6/P7
            nn.init.kaiming_uniform_(m.weight, a=1)
            assert m.bias is not None  # Conv2d's default bias=True
            nn.init.constant_(m.bias, 0)
        self.source, self.relu = source, relu

    def forward(self, p: list[torch.Tensor], c: list[torch.Tensor], names: list[str]) -> tuple[list, list]:
        p6 = self.p6(c[-1] if self.source == "input" else p[-1])
        p7 = self.p7(torch.relu(p6) if self.relu else p6)
        return [*p, p6, p7], [*names, "p6", "p7"]


class _AlignedRoIAlign(nn.Module):
    """torchvision's ``MultiScaleRoIAlign`` (same level mapping and scales) with mmcv's
    ``aligned=True`` RoIAlign: sampling positions shifted by half a pixel, as MMDetection 2.x pools."""

    # set by torchvision's MultiScaleRoIAlign, this class's base at run time
    featmap_names: list[str]
    output_size: tuple[int, int]
    sampling_ratio: int
    canonical_scale: int
    canonical_level: int
    scales: list[float] | None
    map_levels: Callable[[list[torch.Tensor]], torch.Tensor] | None

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        from torchvision.ops import roi_align
        from torchvision.ops.poolers import _setup_scales

        feats = [x[k] for k in self.featmap_names]
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(feats, image_shapes, self.canonical_scale, self.canonical_level)
        scales, map_levels = self.scales, self.map_levels
        assert scales is not None and map_levels is not None  # set just above
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)])
        levels = map_levels(boxes)
        out = feats[0].new_zeros((len(rois), feats[0].shape[1], *self.output_size))
        for level, (feat, scale) in enumerate(zip(feats, scales)):
            idx = torch.where(levels == level)[0]
            out[idx] = roi_align(feat, rois[idx], self.output_size, spatial_scale=scale,
                                 sampling_ratio=self.sampling_ratio, aligned=True).to(out.dtype)
        return out


def _extra_levels(detector: str, reference: str, body: PyramidBody, channels: int) -> nn.Module:
    """The pyramid's levels beyond the backbone's: P6 (max pool) for the R-CNNs, P6-P7 for the dense detectors."""
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    if detector in ("mask_rcnn", "faster_rcnn"):
        return LastLevelMaxPool()
    if reference == "torchvision":
        return LastLevelP6P7(body.channels[-1], channels)
    source, relu = ("input", False) if detector == "retinanet" else ("output", True)
    return _lazy_class("MMDetExtraLevels")(body.channels[-1], channels, source=source, relu=relu)



def _make_body(backbone: str, args: dict, in_chans: int, frozen_stages: int) -> PyramidBody:
    """The registered classifier ``backbone`` turned into a pyramid body (its head removed)."""
    trunk: Any = create_model(backbone, in_chans=in_chans, **args)  # its pyramid methods are checked here
    if not callable(getattr(trunk, "pyramid_indices", None)):  # the backbone says which maps it gives a pyramid
        raise ValueError(f"backbone {backbone!r} is a {type(trunk).__name__}, not a backbone that gives "
                         "a detection pyramid (it has no pyramid_indices); choose e.g. wave_vit_s, wave_vit_b or "
                         "wavemix_192_16_l3")
    return PyramidBody(trunk.as_backbone(trunk.pyramid_indices()), frozen_stages)


def _heads(detector: str, channels: int, classes: int, anchor_sizes: Sequence[int] | None, box_dim: int,
           mask_dim: int, sampling: int, *, aligned: bool) -> dict[str, Any]:
    """The anchors and RoI heads sized for ``channels``-wide pyramid levels (RoIAlign ``aligned`` as mmcv's)."""
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
    check_int("roi_sampling_ratio", sampling, min=0)
    levels = ["0", "1", "2", "3"]  # P2-P5; P6 only feeds the RPN
    pool = _lazy_class("AlignedMultiScaleRoIAlign") if aligned else MultiScaleRoIAlign
    out: dict[str, Any] = dict(
        rpn_anchor_generator=AnchorGenerator(_anchor_sizes(anchor_sizes, 1), ((0.5, 1.0, 2.0),) * 5),
        box_roi_pool=pool(levels, 7, sampling), box_head=TwoMLPHead(channels * 7 * 7, box_dim),
        box_predictor=FastRCNNPredictor(box_dim, classes))
    if detector == "mask_rcnn":
        check_int("mask_head_dim", mask_dim, min=1)
        out.update(mask_roi_pool=pool(levels, 14, sampling), mask_head=MaskRCNNHeads(channels, [mask_dim] * 4, 1),
                   mask_predictor=MaskRCNNPredictor(mask_dim, mask_dim, classes))
    return out


def _check_sizes(sizes: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    if len(sizes) != 5 or any(not isinstance(s[0], int) or s[0] < 1 for s in sizes):
        raise ValueError(f"anchor_sizes must be five positive ints (one per pyramid level), got {sizes!r}")
    return sizes


# --------------------------------------------------------------------------------------
# Records and registered builders

_PAPER = "Wave-ViT: Unifying Wavelet and Transformers for Visual Representation Learning (ECCV 2022)"
_REPO = "https://github.com/YehLi/ImageNetModel"
_COCO_NOTE = ("params: torchvision's detector at 80 classes (background logit included); macs: backbone + FPN + "
              "dense head at 800x1280, RoI heads not counted (see wavevision.models.detection)")


def _det_cfg(detector: str, params: int, macs: int, metrics: dict[str, float] | None = None,
             **kwargs: Any) -> PretrainedCfg:
    classifier = {"mask_rcnn": ("roi_heads.box_predictor.cls_score", "roi_heads.mask_predictor.mask_fcn_logits"),
                  "faster_rcnn": "roi_heads.box_predictor.cls_score",
                  "retinanet": "head.classification_head.cls_logits",
                  "fcos": "head.classification_head.cls_logits"}[detector]
    fields: dict[str, Any] = dict(
        task="detection", input_size=(3, 800, 1280), min_input_size=(3, 32, 32), num_classes=80, crop_pct=1.0,
        interpolation="bilinear", classifier=classifier, dataset="COCO val2017" if metrics else None,
        metrics=dict(metrics or {}), metrics_source=_PAPER if metrics else None, paper_name=_PAPER,
        origin_url=_REPO, paper_ids="arXiv:2207.04978", params=params, macs=macs, notes=(_COCO_NOTE,))
    return PretrainedCfg(**{**fields, **kwargs})


_DIGITS: dict[str, Any] = dict(input_size=(1, 96, 96), num_classes=10, mean=(0.0,), std=(1.0,), dataset=None, notes=(
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
    return _create_detector("mask_rcnn_wave_vit_s_fpn_1x",
                            dict(detector="mask_rcnn", backbone="wave_vit_s", reference="mmdet"), kwargs)


@register_model
def mask_rcnn_wave_vit_b_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Mask R-CNN, Wave-ViT-B + FPN (P2-P6), 1x schedule (paper: 47.6 box AP, 43.0 mask AP)."""
    return _create_detector("mask_rcnn_wave_vit_b_fpn_1x",
                            dict(detector="mask_rcnn", backbone="wave_vit_b", reference="mmdet"), kwargs)


@register_model
def retinanet_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """RetinaNet, Wave-ViT-S + FPN (P3-P7), 1x schedule (paper: 45.8 box AP)."""
    return _create_detector("retinanet_wave_vit_s_fpn_1x",
                            dict(detector="retinanet", backbone="wave_vit_s", reference="mmdet"), kwargs)


@register_model
def retinanet_wave_vit_b_fpn_1x(**kwargs: Any) -> WaveDetector:
    """RetinaNet, Wave-ViT-B + FPN (P3-P7), 1x schedule (paper: 47.2 box AP)."""
    return _create_detector("retinanet_wave_vit_b_fpn_1x",
                            dict(detector="retinanet", backbone="wave_vit_b", reference="mmdet"), kwargs)


@register_model
def faster_rcnn_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Faster R-CNN, Wave-ViT-S + FPN (P2-P6), 1x schedule (not in the paper)."""
    return _create_detector("faster_rcnn_wave_vit_s_fpn_1x",
                            dict(detector="faster_rcnn", backbone="wave_vit_s", reference="mmdet"), kwargs)


@register_model
def fcos_wave_vit_s_fpn_1x(**kwargs: Any) -> WaveDetector:
    """FCOS, Wave-ViT-S + FPN (P3-P7), 1x schedule (not in the paper)."""
    return _create_detector("fcos_wave_vit_s_fpn_1x", dict(detector="fcos", backbone="wave_vit_s"), kwargs)


@register_model
def mask_rcnn_wavemix_192_16_fpn_1x(**kwargs: Any) -> WaveDetector:
    """Mask R-CNN on WaveMix-192/16 (level 3) with the isotropic pyramid rule (module docstring)."""
    return _create_detector("mask_rcnn_wavemix_192_16_fpn_1x",
                            dict(detector="mask_rcnn", backbone="wavemix_192_16_l3", reference="mmdet"), kwargs)


@register_model
def retinanet_wavemix_192_16_fpn_1x(**kwargs: Any) -> WaveDetector:
    """RetinaNet on WaveMix-192/16 (level 3) with the isotropic pyramid rule (module docstring)."""
    return _create_detector("retinanet_wavemix_192_16_fpn_1x",
                            dict(detector="retinanet", backbone="wavemix_192_16_l3", reference="mmdet"), kwargs)


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

