"""COCO-format detection datasets: ``instances_*.json`` + an image folder, read with pycocotools.

Layout (COCO's own): ``ROOT/annotations/instances_train2017.json`` with its images in
``ROOT/train2017/`` (or ``ROOT/images/train2017/``, or ``ROOT/images/``), and likewise for
``val2017``; any ``instances_<name>.json`` whose name holds ``train`` or ``val`` is found. The
official validation annotations serve ``test`` and a fixed seeded hold-out of the training
images (``val_size``, default 10 % up to 5,000) serves ``val``, as for every wavevision dataset
whose test labels are not public. ``annotation_file=`` and ``image_dir=`` give one file instead
(its images are then split three ways, 80 / 10 / 10, by a fixed seed).

Objects: boxes (COCO's ``x, y, w, h`` become ``x1, y1, x2, y2``, clipped to the image), labels
(category ids sorted, numbered ``1..N``), masks from polygons and RLE (compressed or not) with
``masks=True`` (the default), and crowd regions kept with ``iscrowd=1`` (COCOeval ignores
detections on them; the detector is not trained on them). Images without annotations stay (they
train as negatives). Annotation errors are reported when the dataset is built (missing image
files, unknown categories, boxes of non-positive size or outside the image, masks whose size is
not the image's) naming the annotation; ``invalid="skip"`` drops such annotations instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.validate import check_choice, check_int
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source, three_way_split
from .boxes import check_objects, empty_target
from .image import MissingDataFile, convert_channels, load_image
from .folders import IMAGENET_MEAN, IMAGENET_STD
from .object_transforms import AugmentedObjects, RandomObjectHFlip
from .transforms import Normalize

__all__ = ["CocoDetection", "find_coco_annotations"]

_MAX_JSON = 2 << 30


def _coco_api() -> Any:
    try:
        from pycocotools import mask as mask_utils
        from pycocotools.coco import COCO
    except Exception as e:
        raise ImportError(f"COCO-format datasets are read with pycocotools ({type(e).__name__}: {e}); install the "
                          "vision stack: pip install -e '.[vision]'") from None
    return COCO, mask_utils


def find_coco_annotations(root: Path) -> dict[str, tuple[Path, Path]]:
    """``{"train": (json, image folder), "val": ...}`` found under ``root`` (COCO's layout)."""
    found: dict[str, tuple[Path, Path]] = {}
    for ann in sorted((root / "annotations").glob("instances_*.json")):
        name = ann.stem[len("instances_"):]
        kind = "train" if "train" in name else "val" if "val" in name else None
        if kind is None or kind in found:
            continue
        for images in (root / name, root / "images" / name, root / "images", root):
            if images.is_dir() and images != root / "annotations":
                found[kind] = (ann, images)
                break
    return found


def _load_coco(path: Path) -> Any:
    import json

    from ..utils.io import read_text

    COCO, _ = _coco_api()
    try:
        data = json.loads(read_text(path, max_bytes=_MAX_JSON, what="COCO annotation file"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); is the download complete?") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("categories"), list):
        raise ValueError(f"{path} is not a COCO instances file: it needs 'images', 'annotations' and 'categories'")
    data.setdefault("annotations", [])
    coco = COCO()
    coco.dataset = data
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco.createIndex()
    return coco


class CocoDetection(Dataset):
    """Images of a COCO file with their objects (see the module docstring); ``image_id`` is the
    position in this split (the COCO id is ``coco_ids[i]``)."""

    def __init__(self, coco: Any, image_dir: Path, image_ids: list[int], *, masks: bool = True,
                 invalid: str = "error", transform: Any = None, where: str = "COCO file") -> None:
        self.coco, self.image_dir, self.coco_ids = coco, Path(image_dir), list(image_ids)
        self.masks, self.transform, self.where = masks, transform, where
        check_choice("invalid", invalid, ("error", "skip"))
        self.labels = {c: i + 1 for i, c in enumerate(sorted(coco.cats))}
        self.objects = [self._objects(i, invalid) for i in self.coco_ids]

    def _objects(self, image_id: int, invalid: str) -> list[dict[str, Any]]:
        """The image's usable annotations, checked (errors name the annotation)."""
        img = self.coco.imgs[image_id]
        path = self.image_dir / img["file_name"]
        if not path.is_file():
            raise MissingDataFile(f"{self.where}: image {image_id} ({img['file_name']}) is missing from {self.image_dir}; "
                                  "restore it or remove its entry from the annotation file")
        out = []
        for ann in self.coco.imgToAnns.get(image_id, []):
            try:
                out.append(self._check(ann, img))
            except ValueError:
                if invalid == "error":
                    raise
        return out

    def _check(self, ann: dict[str, Any], img: dict[str, Any]) -> dict[str, Any]:
        where = f"{self.where}: annotation {ann.get('id')} of image {img['id']} ({img['file_name']})"
        if ann.get("category_id") not in self.labels:
            raise ValueError(f"{where}: category {ann.get('category_id')!r} is not in the file's categories; "
                             "fix the annotation or pass invalid='skip'")
        x, y, w, h = (float(v) for v in ann["bbox"])
        W, H = float(img["width"]), float(img["height"])
        box = [max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)]
        if w <= 0 or h <= 0:
            raise ValueError(f"{where}: box {ann['bbox']} has non-positive size; fix the annotation or pass "
                             "invalid='skip'")
        if box[2] <= box[0] or box[3] <= box[1]:  # a box partly outside is clipped; one wholly outside is an error
            raise ValueError(f"{where}: box {ann['bbox']} lies outside the {img['width']}x{img['height']} image; fix "
                             "the annotation or pass invalid='skip'")
        seg = ann.get("segmentation")
        if self.masks and isinstance(seg, dict) and list(seg.get("size", [])) != [img["height"], img["width"]]:
            raise ValueError(f"{where}: its mask is {seg.get('size')} (height, width) but the image is "
                             f"{[img['height'], img['width']]}; fix the annotation or pass invalid='skip'")
        if self.masks and not seg:
            raise ValueError(f"{where}: it has no segmentation; pass masks=False for boxes only, or invalid='skip'")
        return {"ann": ann, "box": box}

    def __len__(self) -> int:
        return len(self.coco_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        img = self.coco.imgs[self.coco_ids[index]]
        image = convert_channels(load_image(self.image_dir / img["file_name"]), 3)
        size = (int(img["height"]), int(img["width"]))
        if tuple(image.shape[-2:]) != size:
            raise ValueError(f"{self.where}: image {img['file_name']} is {image.shape[-1]}x{image.shape[-2]} but the "
                             f"annotations say {size[1]}x{size[0]}; the image or the annotation file is wrong")
        target = self._target(self.objects[index], size)
        check_objects(target, size, len(self.labels), f"{self.where}: image {img['file_name']}")
        target["image_id"] = torch.tensor(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, target

    def _target(self, objects: list[dict[str, Any]], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        if not objects:
            return empty_target(size, self.masks)
        anns = [o["ann"] for o in objects]
        target = {"boxes": torch.tensor([o["box"] for o in objects], dtype=torch.float32),
                  "labels": torch.tensor([self.labels[a["category_id"]] for a in anns], dtype=torch.int64),
                  "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in anns], dtype=torch.int64),
                  "area": torch.tensor([float(a.get("area", 0.0)) for a in anns], dtype=torch.float32)}
        if self.masks:
            import numpy as np

            target["masks"] = torch.from_numpy(np.stack([self.coco.annToMask(a) for a in anns])).to(torch.uint8)
        return target


def _split_ids(loaded: dict[str, tuple[Any, Path]], split: str, val_size: int | None) -> tuple[Any, Path, list[int]]:
    """The COCO object, image folder and image ids of ``split`` (``loaded`` holds the one file it reads)."""
    if "all" in loaded:
        coco, images = loaded["all"]
        ids = sorted(coco.imgs)
        return coco, images, [ids[i] for i in three_way_split(len(ids), split).tolist()]
    _, part = split_source(split, has_val=True, has_test=False)
    coco, images = next(iter(loaded.values()))
    ids = sorted(coco.imgs)
    if part is not None:
        size = min(max(1, round(0.1 * len(ids))), 5000) if val_size is None else val_size
        ids = [ids[i] for i in holdout_split(len(ids), part, size).tolist()]
    return coco, images, ids


@register_dataset("coco")
def build_coco(split: str, *, root=None, download: bool = False, augment: bool = False,
               **options: Any) -> tuple[Dataset, DatasetInfo]:
    """Options: ``masks`` (default True), ``invalid`` (``error`` or ``skip``), ``val_size``,
    ``annotation_file`` + ``image_dir`` (one file instead of the layout)."""
    reject_unknown_options("coco", options, ["masks", "invalid", "val_size", "annotation_file", "image_dir"])
    root = Path(root)
    if options.get("annotation_file"):
        found = {"all": (Path(options["annotation_file"]), Path(options.get("image_dir") or root))}
    else:
        found = {k: v for k, v in find_coco_annotations(root).items()}
        if "train" not in found and "val" not in found:
            raise FileNotFoundError(f"no annotations/instances_*.json under {root}; give the COCO folder, or "
                                    "annotation_file=PATH and image_dir=DIR")
        if len(found) == 1:  # one file only: split its images three ways
            found = {"all": next(iter(found.values()))}
    # COCO's test labels are not public: its official val file serves test, a hold-out of train serves val
    kind = "all" if "all" in found else {"test": "val"}.get(split, "train")
    ann_file, _ = found[kind]
    loaded = {kind: (_load_coco(ann_file), found[kind][1])}
    val_size = options.get("val_size")
    coco, images, ids = _split_ids(loaded, split, None if val_size is None else check_int("val_size", val_size, min=1))
    data = CocoDetection(coco, images, ids, masks=bool(options.get("masks", True)), invalid=options.get("invalid", "error"),
                         transform=Normalize(IMAGENET_MEAN, IMAGENET_STD), where=str(ann_file))
    if augment:  # MMDetection's RandomFlip(flip_ratio=0.5): boxes and masks move with the image
        data = AugmentedObjects(data, RandomObjectHFlip(0.5))
    names = tuple(str(coco.cats[c].get("name", c)) for c in sorted(coco.cats))
    info = DatasetInfo(name="coco", task="detection", in_chans=3, num_classes=len(names), class_names=names,
                       image_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return data, info


