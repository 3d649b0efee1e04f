"""Object detection and instance segmentation: per-image target dicts, torchvision's loss dict, COCO mAP.

Batches are ``(images, targets)``: images stacked when they share a size (else a list), targets
a list of dicts (``boxes``, ``labels``, optionally ``masks``; see ``wavevision.data.boxes``). In
training the detector is called with the targets and returns torchvision's loss dict, whose sum
is the loss; in evaluation it returns one dict of detections per image. Metrics are COCO's,
computed by pycocotools' ``COCOeval`` (percent, like every wavevision metric; objects are sized
for APs/APm/APl by the dataset's ``area``, else by their mask's pixel count, as COCO does): ``box_ap``
(AP at IoU .50:.95), ``box_ap50``, ``box_ap75``, ``box_aps`` / ``box_apm`` / ``box_apl`` (small,
medium, large objects; NaN where a split has none) and the same ``mask_*`` for models that
predict masks on data that has them. Under torchrun every process gathers the others'
detections, so each computes the metrics of the whole set.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from ...data import DatasetInfo
from ...data.boxes import check_objects
from ...models import create_model, list_models
from ...utils.io import atomic_write_bytes, write_json
from ..metrics import Meter
from ..sizing import meta_model
from ._images import draw_label, font, palette, png_bytes, readable_scale, to_pil, upscale
from .base import LabelTask, PredictItem

__all__ = ["Detection", "DetectionMeter", "Detections"]

# Detections drawn on a prediction's PNG (the JSON keeps all of them).
DRAW_SCORE = 0.5
_STATS = ("ap", "ap50", "ap75", "aps", "apm", "apl")


def _pycocotools() -> Any:
    try:
        from pycocotools import mask as mask_utils
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except Exception as e:
        raise ImportError(f"COCO evaluation needs pycocotools ({type(e).__name__}: {e}); install the vision stack: "
                          "pip install -e '.[vision]'") from None
    return mask_utils, COCO, COCOeval


class Detections(list):
    """Per-image dicts of tensors (targets or detections) that move between devices like a tensor."""

    def to(self, device: Any, non_blocking: bool = False) -> Detections:
        return Detections({k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                           for k, v in d.items()} for d in self)

    def cpu(self) -> Detections:
        return self.to("cpu")


class _LossDictSum(nn.Module):
    """The sum of torchvision's loss dict (each term in float32)."""

    def forward(self, out: dict[str, torch.Tensor], target: Any) -> torch.Tensor:
        return cast(torch.Tensor, sum(v.float() for v in out.values()))  # a detector's loss dict is never empty


def _xywh(boxes: torch.Tensor) -> list[list[float]]:
    b = boxes.detach().double().cpu()
    return torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1).tolist()


def _rles(masks: torch.Tensor) -> list[dict[str, Any]]:
    """Binary masks (N, H, W) as COCO run-length encodings (counts as str, JSON-ready)."""
    import numpy as np

    mask_utils = _pycocotools()[0]
    if not len(masks):
        return []
    array = np.asfortranarray(masks.detach().to(torch.uint8).cpu().permute(1, 2, 0).numpy())
    out = mask_utils.encode(array)
    for r in out:
        r["counts"] = r["counts"].decode("ascii")
    return out


def coco_detections(image_id: int, det: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """One image's detections in COCO results format (masks thresholded at 0.5 as RLE)."""
    boxes, scores, labels = _xywh(det["boxes"]), det["scores"].tolist(), det["labels"].tolist()
    masks = _rles(det["masks"][:, 0] > 0.5) if "masks" in det else [None] * len(boxes)
    out = []
    for b, s, c, m in zip(boxes, scores, labels, masks):
        rec = {"image_id": image_id, "category_id": int(c), "bbox": b, "score": float(s)}
        if m is not None:
            rec["segmentation"] = m
        out.append(rec)
    return out


def _without_crowd(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    crowd = target.get("iscrowd")
    if crowd is None or not crowd.any():
        return target
    keep = crowd == 0
    n = len(crowd)
    return {k: v[keep] if isinstance(v, torch.Tensor) and v.dim() and len(v) == n else v for k, v in target.items()}


def _areas(target: dict[str, torch.Tensor]) -> torch.Tensor:
    """The objects' areas for COCOeval's size ranges (small < 32², medium, large > 96²): the
    dataset's ``area`` where it gives one; else, as COCO defines it, the mask's pixel count
    where there are masks (MMDetection's COCO evaluation reads that area from the annotations),
    and the box's area only for boxes-only data."""
    boxes, area, masks = target["boxes"], target.get("area"), target.get("masks")
    if area is not None and len(area) == len(boxes):
        return area
    if masks is not None and len(masks) == len(boxes):
        return masks.flatten(1).ne(0).sum(1).double()
    return (boxes[:, 2:] - boxes[:, :2]).prod(1)


class DetectionMeter(Meter):
    """Ground truths and detections of the images seen, evaluated with pycocotools' COCOeval.

    The image count sits in ``totals["loss_n"]`` (the engine's sample count); detectors compute
    no loss in evaluation, so none is reported.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self._zero("loss_n")
        self.images: list[dict[str, Any]] = []
        self.gts: list[dict[str, Any]] = []
        self.dts: list[dict[str, Any]] = []
        self.mask_outputs = False  # the model predicts masks

    def update(self, outputs: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> None:
        for det, tgt in zip(outputs, targets):
            image_id = int(tgt["image_id"])
            masks = tgt.get("masks")
            h, w = (int(s) for s in masks.shape[-2:]) if masks is not None else (0, 0)
            self.images.append({"id": image_id, "height": h, "width": w, "has_masks": masks is not None})
            boxes = tgt["boxes"]
            areas = _areas(tgt).tolist()
            crowd = tgt.get("iscrowd", torch.zeros(len(boxes), dtype=torch.int64)).tolist()
            rles = _rles(masks) if masks is not None else [None] * len(boxes)
            for b, c, a, z, m in zip(_xywh(boxes), tgt["labels"].tolist(), areas, crowd, rles):
                ann = {"image_id": image_id, "category_id": int(c), "bbox": b, "area": float(a), "iscrowd": int(z)}
                if m is not None:
                    ann["segmentation"] = m
                self.gts.append(ann)
            self.dts.extend(coco_detections(image_id, det))
            self.mask_outputs |= "masks" in det
        self._add("loss_n", torch.tensor(float(len(targets))))

    def all_reduce(self, device: torch.device | None = None) -> None:
        """Gather every process's images, ground truths and detections (then sum the counts)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(parts, (self.images, self.gts, self.dts, self.mask_outputs))
            self.images = [x for p in parts for x in p[0]]
            self.gts = [x for p in parts for x in p[1]]
            self.dts = [x for p in parts for x in p[2]]
            self.mask_outputs = any(p[3] for p in parts)
        super().all_reduce(device)

    def compute(self) -> dict[str, float]:
        out = {f"box_{s}": v for s, v in zip(_STATS, self._evaluate("bbox"))}
        if self.images and all(i["has_masks"] for i in self.images) and self.mask_outputs:
            out.update({f"mask_{s}": v for s, v in zip(_STATS, self._evaluate("segm"))})
        return out

    def _evaluate(self, kind: str) -> list[float]:
        """COCOeval's six AP numbers for ``kind`` (``bbox`` or ``segm``), in percent (NaN where undefined)."""
        _, COCO, COCOeval = _pycocotools()
        if not self.gts or not self.dts:
            return [0.0 if self.gts else math.nan] * len(_STATS)
        gt = COCO()
        gt.dataset = {"images": [{"id": i["id"], "height": i["height"], "width": i["width"]} for i in self.images],
                      "annotations": [{**a, "id": n + 1} for n, a in enumerate(self.gts)],
                      "categories": [{"id": c} for c in range(1, self.num_classes + 1)]}
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            gt.createIndex()
            # one result kind at a time: loadRes turns a result's box into its segmentation otherwise
            drop = "segmentation" if kind == "bbox" else "bbox"
            dt = gt.loadRes([{k: v for k, v in d.items() if k != drop} for d in self.dts])
            ev = COCOeval(gt, dt, kind)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return [100.0 * float(v) if v >= 0 else math.nan for v in ev.stats[: len(_STATS)]]


class Detection(LabelTask):
    """Boxes (and, for Mask R-CNN, instance masks) of objects of ``num_classes`` classes (labels 1..N;
    the dataset fixes the classes, as for the other label tasks)."""

    name = "detection"
    metric = "box_ap"
    metrics = ("box_ap", "box_ap50", "mask_ap", "mask_ap50")
    default_model = "mask_rcnn_wave_vit_digits"
    input_size = (800, 1280)

    # -- batches ------------------------------------------------------------------------------
    def collate(self, samples: list[Any]) -> tuple[Any, Detections]:
        images = [s[0] for s in samples]
        same = all(im.shape == images[0].shape for im in images)
        return (torch.stack(images) if same else images), Detections(s[1] for s in samples)

    def to_device(self, batch: Any, device: torch.device) -> tuple[Any, Detections]:
        x, y = batch
        x = x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else [im.to(device) for im in x]
        return x, Detections(y).to(device, non_blocking=True)

    def fit_data(self, name: str, args: dict[str, Any], data: Any, info: DatasetInfo, *, chosen: bool,
                 model: nn.Module | None = None) -> dict[str, Any]:
        """Boxes-only data (its first target has no ``masks``) cannot train Mask R-CNN: the default
        model (no ``--model`` and no ``detector`` argument) becomes the same build with
        ``detector="faster_rcnn"``; a Mask R-CNN named by the user is refused in one line naming
        the box detectors."""
        if "masks" in data[0][1]:
            return args
        chosen = chosen or model is not None or "detector" in args
        masked = model if model is not None else meta_model(lambda: create_model(name, **args))
        if not getattr(masked, "has_masks", False):
            return args
        if not chosen:
            return {**args, "detector": "faster_rcnn"}
        boxes = [n for n in list_models(task=self.name) if not meta_model(functools.partial(create_model, n)).has_masks]
        raise ValueError(f"model {name!r} is a Mask R-CNN, which trains on instance masks, but dataset {info.name!r} "
                         f"has boxes only; choose a box detector: --model {' / '.join(boxes)}, or keep the model "
                         "with --model-arg detector=faster_rcnn (or retinanet, fcos)")

    def check_target(self, target: Any, info: DatasetInfo) -> None:
        """Each image's boxes (positive size), labels (1..num_classes) and masks (one per box) checked
        (``target``: a list of one dict of tensors per image)."""
        for t in target:
            masks = t.get("masks")
            size = (masks.shape[-2], masks.shape[-1]) if masks is not None else info.image_size or (math.inf, math.inf)
            check_objects(t, size, self.class_count(info), f"dataset {info.name!r}, image {int(t.get('image_id', -1))}")

    def forward(self, model: nn.Module, inputs: Any, targets: Any) -> Any:
        """Training: ``model(images, targets)`` (the loss dict; crowd regions left out, as in
        torchvision's references); evaluation: ``model(images)``."""
        return model(inputs, [_without_crowd(t) for t in targets]) if model.training else model(inputs)

    # -- training -----------------------------------------------------------------------------
    def loss(self, info: DatasetInfo | None = None, *, label_smoothing: float = 0.0) -> nn.Module:
        return _LossDictSum()

    def train_sums(self, out: dict[str, torch.Tensor], target: Any) -> dict[str, torch.Tensor]:
        return {k: v.detach().double() * len(target) for k, v in out.items()}

    def train_metrics(self, sums: dict[str, float], count: float) -> dict[str, float]:
        return {f"train_{k}": v / max(count, 1) for k, v in sums.items() if k.startswith("loss_")}

    # -- evaluation ---------------------------------------------------------------------------
    def meter(self, info: DatasetInfo) -> DetectionMeter:
        return DetectionMeter(self.class_count(info))

    def output(self, out: Any) -> Detections:
        return Detections({k: v.float() if v.is_floating_point() else v for k, v in d.items()} for d in out)

    def nonfinite(self, out: Detections) -> torch.Tensor:
        return torch.tensor(sum(int(not (torch.isfinite(d["boxes"]).all() and torch.isfinite(d["scores"]).all()))
                                for d in out))

    def evaluate_batch(self, meter: Meter, loss: Any, out: Any, inputs: Any, target: Any, info: DatasetInfo) -> None:
        meter.update(out, target)

    # -- benchmarks ---------------------------------------------------------------------------
    def synthetic_target(self, out: Any, n: int, generator: torch.Generator) -> Detections:
        """Two random boxes of label 1 per image (with box-shaped masks for a mask model, whose
        eval output ``out["masks"]`` gives the image size; boxes only: within 64x64)."""
        masked = isinstance(out, dict) and "masks" in out
        h, w = tuple(out["masks"].shape[-2:]) if masked else (64, 64)
        targets = Detections()
        for _ in range(n):
            xy = torch.rand(2, 2, generator=generator) * torch.tensor([w / 2, h / 2])
            wh = (0.2 + 0.3 * torch.rand(2, 2, generator=generator)) * torch.tensor([w, h])
            boxes = torch.cat([xy, xy + wh], 1).floor()
            target = {"boxes": boxes, "labels": torch.ones(2, dtype=torch.int64)}
            if masked:
                target["masks"] = torch.zeros(2, h, w, dtype=torch.uint8)
                for m, (x1, y1, x2, y2) in zip(target["masks"], boxes.int().tolist()):
                    m[y1:y2, x1:x2] = 1
            targets.append(target)
        return targets

    def bench_note(self, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        """How many detections the benchmarked weights keep per image: inference runs the RoI
        heads (Mask R-CNN's mask head above all) on every one of them, so an untrained detector,
        whose near-uniform scores all pass the threshold up to the per-image cap, is measured in
        its worst case, while a training step runs them on proposals sampled around the two
        synthetic objects of :meth:`synthetic_target`."""
        x = torch.rand(1, *input_shape, generator=torch.Generator().manual_seed(0))
        param = next(model.parameters())
        with torch.no_grad():
            kept = len(model.eval()(x.to(param.device, param.dtype))[0]["boxes"])
        heads = getattr(model, "roi_heads", None)
        cap = heads.detections_per_img if heads is not None else getattr(model, "detections_per_img", None)
        mask = " and mask head" if getattr(model, "has_masks", False) else ""
        return (f"these weights keep {kept} detections per image (at most {cap}); inference runs the RoI box{mask} "
                f"heads on all of them (untrained weights reach the cap: the worst case), the training step on "
                "proposals sampled around 2 synthetic objects per image, so inference can need more memory")

    # -- prediction ---------------------------------------------------------------------------
    def planned_files(self, names: list[str], out_dir: Path, model: nn.Module) -> list[Path]:
        return [out_dir / f"{n}_detections.png" for n in names] + [out_dir / "detections.json"]

    def render(self, item: PredictItem, *, info: DatasetInfo, model: nn.Module, out_dir: Path | None,
               topk: int) -> dict[str, Any]:
        assert out_dir is not None  # needs_output: predict gives render its folder
        det = item.out
        names = info.class_names or tuple(str(i + 1) for i in range(self.class_count(info)))
        png = out_dir / f"{item.stem}_detections.png"
        atomic_write_bytes(png, png_bytes(draw_detections(item.raw, det, names)))
        records = coco_detections(0, det)
        for r in records:
            r.pop("image_id")
            r["category_name"] = names[r["category_id"] - 1] if 0 < r["category_id"] <= len(names) else str(r["category_id"])
        return {"image": str(item.path), "drawing": str(png), "detections": records}

    def finish(self, results: list[dict[str, Any]], out_dir: Path | None) -> list[Path]:
        """``detections.json``: every detection in COCO results format (``image_id`` = the image's
        position in the list, ``file_name`` beside it)."""
        rows = [{"image_id": i, "file_name": r["image"], **d} for i, r in enumerate(results) for d in r["detections"]]
        return [] if out_dir is None else [write_json(out_dir / "detections.json", rows)]

    def describe(self, result: dict[str, Any]) -> str:
        shown = [d for d in result["detections"] if d["score"] >= DRAW_SCORE]
        lines = [f"  {d['category_name']} {100 * d['score']:.0f} % at x {d['bbox'][0]:.0f}, y {d['bbox'][1]:.0f}, "
                 f"{d['bbox'][2]:.0f}x{d['bbox'][3]:.0f}" for d in shown[:20]]
        more = [f"  ... and {len(shown) - 20} more"] if len(shown) > 20 else []
        return "\n".join([f"{result['image']}: {len(shown)} object(s) with score >= {DRAW_SCORE} "
                          f"({len(result['detections'])} detections)", *lines, *more, f"  drawing {result['drawing']}"])


def draw_detections(image: torch.Tensor, det: dict[str, torch.Tensor], names: tuple[str, ...]) -> Any:
    """``image`` (C, H, W) in [0, 1] with the detections scoring at least :data:`DRAW_SCORE`: mask
    overlays, boxes and ``name score`` tags, one colour per class (a PIL RGB image). A small image
    is enlarged by an integer factor to about 384 px first (:func:`readable_scale`), so that the
    tags stay legible and inside the picture; the JSON keeps the image's own coordinates."""
    from PIL import ImageDraw

    keep = det["scores"] >= DRAW_SCORE
    factor = readable_scale(*image.shape[-2:])
    rgb = upscale(image if image.shape[0] == 3 else image[:1].expand(3, -1, -1), factor)
    colours = palette(len(names) + 1)
    if "masks" in det and keep.any():
        for m, c in zip(upscale(det["masks"][keep][:, 0], factor) > 0.5, det["labels"][keep].tolist()):
            colour = torch.tensor(colours[c], dtype=torch.float32).view(3, 1, 1) / 255.0
            rgb = torch.where(m, 0.5 * rgb + 0.5 * colour, rgb)
    pil = to_pil(rgb)
    draw = ImageDraw.Draw(pil)
    face = font(max(10, min(16, 4 * factor)))
    shown = [([v * factor for v in box], c, s) for box, c, s in
             zip(det["boxes"][keep].tolist(), det["labels"][keep].tolist(), det["scores"][keep].tolist())]
    for box, c, _ in shown:
        draw.rectangle(box, outline=colours[c], width=2 if factor > 1 else 1)
    taken: list = []
    for box, c, s in sorted(shown, key=lambda d: -d[2]):  # tags last (no box over one), the surest first
        name = names[c - 1] if 0 < c <= len(names) else str(c)
        draw_label(draw, box, f"{name} {100 * s:.0f}%", colours[c], pil.size, face, taken)
    return pil
