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
train as negatives).

Everything read from the file is checked before use (:func:`check_coco_file`, then
:func:`check_annotation`), and each problem is one line naming the file, the annotation (or
image) id and the field. The file: images with unique integer ids, a ``file_name`` that stays
inside the image folder and a positive integer size; categories and annotations with unique
integer ids, annotations naming an image of the file. Each annotation, when its dataset is built:
a known category, a ``bbox`` of four finite numbers with positive size inside the image (up to
one pixel past an edge, then clipped: exported files carry rounding), ``iscrowd`` 0 or 1,
``area`` (when given) finite and >= 0, and with masks a segmentation that is polygons of an even
number (>= 6) of finite coordinates inside the image, or an RLE of the image's size whose
counts are non-negative and sum to height x width. ``invalid="skip"`` drops annotations that
fail these checks instead; problems of the file itself are always errors.
"""
from __future__ import annotations

import json
import math
import numbers
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils.io import read_text
from ..utils.memory import check_memory
from ..utils.validate import check_choice, check_int, short_repr
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source, three_way_split
from .boxes import check_objects, empty_target
from .constants import IMAGENET_MEAN, IMAGENET_STD
from .image import MissingDataFile, convert_channels, file_in_folder, load_image
from .object_transforms import AugmentedObjects, RandomObjectHFlip
from .transforms import MAX_SIDE, Normalize

__all__ = ["CocoDetection", "check_annotation", "check_coco_file", "find_coco_annotations"]

_MAX_JSON = 2 << 30
_EDGE_SLACK = 1.0  # pixels a box or polygon may reach past the image's edge (rounding in exported files)
_SKIP = "fix the annotation or pass invalid='skip'"


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
    COCO, _ = _coco_api()
    try:
        data = json.loads(read_text(path, max_bytes=_MAX_JSON, what="COCO annotation file"))
    except RecursionError:
        raise ValueError(f"{path}: JSON nested deeper than Python reads ({sys.getrecursionlimit()} levels); a COCO "
                         "file is a few levels deep: the file is damaged, replace it") from None
    except ValueError as e:  # JSONDecodeError, and integers of more than 4,300 digits
        raise ValueError(f"{path} is not valid JSON ({' '.join(str(e).split())}); is the download complete?") from None
    check_coco_file(data, str(path))
    data.setdefault("annotations", [])
    coco = COCO()
    coco.dataset = data
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco.createIndex()
    return coco


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (JSON integers past a float's range, 1e400 written out, are not)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _unique_ids(entries: Any, kind: str, where: str) -> dict[int, int]:
    """``{id: position}`` of a list of ``kind`` entries (dicts with unique integer ids)."""
    if not isinstance(entries, list):
        raise ValueError(f"{where}: the {kind} entries must be a list, got {type(entries).__name__}; is it a COCO "
                         "instances file?")
    seen: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: {kind} entry {i} is {short_repr(entry)}, not an object; fix the file")
        if "id" not in entry:
            raise ValueError(f"{where}: {kind} entry {i}: 'id' is missing; give every {kind} a unique integer id")
        key = entry["id"]
        if not _is_int(key):
            raise ValueError(f"{where}: {kind} entry {i}: 'id' is {short_repr(key)}, not an integer; fix the file")
        if key in seen:
            raise ValueError(f"{where}: {kind} id {key} is used twice (entries {seen[key]} and {i}); one would be "
                             f"lost: give every {kind} its own id")
        seen[key] = i
    return seen


def check_coco_file(data: Any, where: str) -> None:
    """Refuse a COCO instances file that cannot be indexed without losing or mixing entries: a
    ValueError (one line starting with ``where``, the file) names the entry and the field.

    Images: unique integer ids, a ``file_name``, an integer ``width`` and ``height`` in
    ``1..16384``. Categories: unique integer ids, printable names. Annotations: unique integer
    ids, an integer ``image_id`` naming an image of the file, an integer ``category_id``. The
    fields of each annotation are checked by :func:`check_annotation` when a dataset is built.
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("categories"), list):
        raise ValueError(f"{where} is not a COCO instances file: it needs 'images', 'annotations' and 'categories'")
    images = _unique_ids(data["images"], "image", where)
    _unique_ids(data["categories"], "category", where)
    for cat in data["categories"]:  # names become class names, printed in tables: one line each
        name = cat.get("name", "")
        if not isinstance(name, str) or not name.isprintable():
            raise ValueError(f"{where}: category {cat['id']}: 'name' is {short_repr(name)}, not a printable string; "
                             "fix the file")
    for img in data["images"]:
        at = f"{where}: image {img['id']}"
        for key in ("width", "height"):
            value = img.get(key)
            if value is None:
                raise ValueError(f"{at}: {key!r} is missing; give the image's size in pixels")
            if not (_is_int(value) and 1 <= value <= MAX_SIDE):
                raise ValueError(f"{at}: {key!r} is {short_repr(value)}, not an integer in 1..{MAX_SIDE}; give the "
                                 "image's size in pixels")
        if "file_name" not in img:  # its value is checked against the image folder (file_in_folder) when used
            raise ValueError(f"{at}: 'file_name' is missing; give the image's path relative to the image folder")
    anns = data.setdefault("annotations", [])
    _unique_ids(anns, "annotation", where)
    for ann in anns:
        at = f"{where}: annotation {ann['id']}"
        for key in ("image_id", "category_id"):
            if key not in ann:
                raise ValueError(f"{at}: {key!r} is missing; give it, or remove the annotation")
        if not _is_int(ann["category_id"]):  # pycocotools indexes it (an unknown one is an annotation's problem)
            raise ValueError(f"{at}: 'category_id' is {short_repr(ann['category_id'])}, not an integer; fix it, or "
                             "remove the annotation")
        if not _is_int(ann["image_id"]) or ann["image_id"] not in images:
            raise ValueError(f"{at}: 'image_id' {short_repr(ann['image_id'])} is not the id of an image of the file; "
                             "fix it, or remove the annotation")


def _rle_counts(counts: str, at: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' encoding: 5 bits a character
    from ``'0'``, a continuation bit, a sign bit on the last, runs after the second stored as the
    difference to the run two back). A string that does not decode is refused."""
    out: list[int] = []
    p = 0
    while p < len(counts):
        x = k = 0
        more = True
        while more:
            if p == len(counts) or k == 7:  # 7 characters hold 35 bits, more than any run of an image
                raise ValueError(f"{at}: its compressed RLE counts are cut short or damaged; {_SKIP}")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"{at}: its compressed RLE counts hold {counts[p]!r}, not an RLE character; {_SKIP}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)
        out.append(x + out[-2] if len(out) > 2 else x)
    return out


def _check_segmentation(seg: Any, img: dict[str, Any], at: str) -> None:
    """Polygons of an even number (>= 6) of finite coordinates inside the image, or an RLE of
    the image's size whose counts are non-negative and sum to height x width."""
    H, W = img["height"], img["width"]
    if isinstance(seg, dict):
        if set(seg) != {"size", "counts"}:
            raise ValueError(f"{at}: an RLE 'segmentation' needs exactly 'size' and 'counts', got keys "
                             f"{short_repr(sorted(map(str, seg)))}; {_SKIP}")
        if seg["size"] != [H, W]:
            raise ValueError(f"{at}: its mask is {short_repr(seg['size'])} (height, width) but the image is {[H, W]}; "
                             f"{_SKIP}")
        counts = seg["counts"]
        if isinstance(counts, str):
            counts = _rle_counts(counts, at)
        elif not (isinstance(counts, list) and all(_is_int(c) for c in counts)):
            raise ValueError(f"{at}: RLE 'counts' must be a list of integers or a compressed string, got "
                             f"{short_repr(counts)}; {_SKIP}")
        if any(c < 0 for c in counts):
            raise ValueError(f"{at}: RLE 'counts' hold a negative run ({min(counts)}); {_SKIP}")
        if sum(counts) != H * W:
            raise ValueError(f"{at}: RLE 'counts' cover {sum(counts):,} pixels but the {W}x{H} image has {H * W:,}; "
                             f"{_SKIP}")
        return
    if not isinstance(seg, list):
        raise ValueError(f"{at}: 'segmentation' is {short_repr(seg)}, neither polygons nor an RLE; pass masks=False "
                         f"for boxes only, or {_SKIP}")
    for i, poly in enumerate(seg):
        try:  # one array per polygon: a check per coordinate in Python would take seconds on COCO's train file
            xy = np.asarray(poly) if isinstance(poly, list) else None
        except (ValueError, TypeError, OverflowError):  # ragged nesting
            xy = None
        if (xy is None or xy.ndim != 1 or xy.dtype.kind not in "iuf" or len(xy) < 6 or len(xy) % 2
                or not np.isfinite(xy).all()):
            raise ValueError(f"{at}: polygon {i} of 'segmentation' is {short_repr(poly)}: a polygon is an even number "
                             f"(at least 6) of finite x, y coordinates; {_SKIP}")
        xy = xy.astype(np.float64).reshape(-1, 2)
        s = _EDGE_SLACK
        if (xy < -s).any() or (xy[:, 0] > W + s).any() or (xy[:, 1] > H + s).any():
            raise ValueError(f"{at}: polygon {i} of 'segmentation' has a point more than {s:g} pixel outside the "
                             f"{W}x{H} image ({short_repr(poly)}); {_SKIP}")


def check_annotation(ann: dict[str, Any], img: dict[str, Any], labels: dict[int, int], masks: bool,
                     where: str) -> list[float]:
    """The ``x1, y1, x2, y2`` box of one annotation of ``img`` (clipped to the image), after
    checking every field it uses (module docstring); a ValueError names ``where`` (the file),
    the annotation and the field. ``labels`` maps the file's category ids; ``masks`` says
    whether the segmentation is read."""
    at = f"{where}: annotation {ann['id']} of image {img['id']} ({img['file_name']})"
    if ann["category_id"] not in labels:
        raise ValueError(f"{at}: category {short_repr(ann['category_id'])} is not in the file's categories; {_SKIP}")
    if "bbox" not in ann:
        raise ValueError(f"{at}: 'bbox' is missing; {_SKIP}")
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise ValueError(f"{at}: 'bbox' is {short_repr(bbox)}, not 4 finite numbers x, y, width, height; {_SKIP}")
    x, y, w, h = (float(v) for v in bbox)
    W, H, s = float(img["width"]), float(img["height"]), _EDGE_SLACK
    if w <= 0 or h <= 0:
        raise ValueError(f"{at}: box {short_repr(bbox)} has non-positive size; {_SKIP}")
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise ValueError(f"{at}: box {short_repr(bbox)} lies outside the {img['width']}x{img['height']} image; {_SKIP}")
    if x < -s or y < -s or x + w > W + s or y + h > H + s:  # refused, not clipped: a box this far out is wrong
        raise ValueError(f"{at}: box {short_repr(bbox)} reaches more than {s:g} pixel past the edge of the "
                         f"{img['width']}x{img['height']} image; {_SKIP}")
    if "iscrowd" in ann and not (_is_int(ann["iscrowd"]) and ann["iscrowd"] in (0, 1)):
        raise ValueError(f"{at}: 'iscrowd' is {short_repr(ann['iscrowd'])}, not 0 or 1; {_SKIP}")
    if "area" in ann and not (_is_number(ann["area"]) and ann["area"] >= 0):
        raise ValueError(f"{at}: 'area' is {short_repr(ann['area'])}, not a finite number >= 0; {_SKIP}")
    if masks:
        seg = ann.get("segmentation")
        if not seg:
            raise ValueError(f"{at}: it has no segmentation; pass masks=False for boxes only, or {_SKIP}")
        _check_segmentation(seg, img, at)
    return [max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)]


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
        if masks and self.coco_ids:
            self._check_mask_memory()

    def _check_mask_memory(self) -> None:
        """Refuse (before training starts) an image whose masks, one byte a pixel per object and
        held twice while stacked, would not fit in memory."""
        sizes = [(self.coco.imgs[i]["height"] * self.coco.imgs[i]["width"] * len(objs), k)
                 for k, (i, objs) in enumerate(zip(self.coco_ids, self.objects))]
        pixels, k = max(sizes)
        img = self.coco.imgs[self.coco_ids[k]]
        check_memory(2 * pixels, f"{self.where}: the masks of image {img['id']} ({len(self.objects[k]):,} objects of "
                     f"{img['width']}x{img['height']})", "pass masks=False for boxes only, or split the "
                     "image's annotations")

    def _objects(self, image_id: int, invalid: str) -> list[dict[str, Any]]:
        """The image's usable annotations, checked (errors name the annotation)."""
        img = self.coco.imgs[image_id]
        path = file_in_folder(self.image_dir, img["file_name"], f"{self.where}: image {image_id}")
        if not path.is_file():
            raise MissingDataFile(f"{self.where}: image {image_id} ({img['file_name']}) is missing from {self.image_dir}; "
                                  "restore it or remove its entry from the annotation file")
        out = []
        for ann in self.coco.imgToAnns.get(image_id, []):
            try:
                box = check_annotation(ann, img, self.labels, self.masks, self.where)
            except ValueError:
                if invalid == "error":
                    raise
                continue
            out.append({"ann": ann, "box": box})
        return out

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
    data: Dataset = CocoDetection(coco, images, ids, masks=bool(options.get("masks", True)), invalid=options.get("invalid", "error"),
                         transform=Normalize(IMAGENET_MEAN, IMAGENET_STD), where=str(ann_file))
    if augment:  # MMDetection's RandomFlip(flip_ratio=0.5): boxes and masks move with the image
        data = AugmentedObjects(data, RandomObjectHFlip(0.5))
    names = tuple(str(coco.cats[c].get("name", c)) for c in sorted(coco.cats))
    info = DatasetInfo(name="coco", task="detection", in_chans=3, num_classes=len(names), class_names=names,
                       image_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return data, info


