"""Pascal VOC detection datasets: ``Annotations/*.xml`` (boxes) + ``JPEGImages/``.

Layout: ``ROOT`` (or ``ROOT/VOCdevkit/VOC2007``, ``ROOT/VOC2012`` ...) holding ``Annotations/``,
``JPEGImages/`` and, optionally, ``ImageSets/Main/{train,val,trainval,test}.txt``. ``test`` is
``test.txt`` (or ``val.txt`` when there is no test list), ``val`` is ``val.txt`` when a test
list exists, else a fixed seeded hold-out of the training list; without any list the annotated
images are split three ways (80 / 10 / 10) by a fixed seed. The classes are VOC's 20 (option
``classes`` names others, in label order). VOC's corner coordinates are 1-based pixels, so a
box ``xmin..xmax`` becomes ``x1 = xmin - 1, x2 = xmax``. Objects marked ``difficult`` are kept
with ``iscrowd=1``: COCOeval neither rewards nor penalises detections on them, close to VOC's
own rule, and the detector is not trained on them. Boxes only (no masks).

Every field is checked before use and each problem is one line naming the XML file, the object
and the field: the size, finite corners, ``<difficult>`` 0 or 1, a ``<filename>`` that stays
inside ``JPEGImages/``, image-list entries that are plain names; boxes must lie inside the image
(:func:`wavevision.data.boxes.check_objects`).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.io import read_bytes
from ..utils.validate import short_repr
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source, three_way_split
from .boxes import check_objects, empty_target
from .constants import IMAGENET_MEAN, IMAGENET_STD
from .image import MissingDataFile, convert_channels, file_in_folder, load_image
from .object_transforms import AugmentedObjects, RandomObjectHFlip
from .transforms import MAX_SIDE, Normalize

__all__ = ["VOC_CLASSES", "VocDetection", "find_voc_root", "parse_voc_xml"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
_MAX_XML = 1 << 20
_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def find_voc_root(root: Path) -> Path | None:
    """The folder holding ``Annotations/`` and ``JPEGImages/`` at or under ``root`` (None if none)."""
    candidates = [root, *sorted(root.glob("VOC*")), *sorted(root.glob("VOCdevkit/VOC*"))]
    return next((c for c in candidates if (c / "Annotations").is_dir() and (c / "JPEGImages").is_dir()), None)


def parse_voc_xml(path: Path, classes: tuple[str, ...]) -> dict[str, Any]:
    """``{"file": name, "size": (H, W), "objects": [(label, [x1, y1, x2, y2], difficult)]}`` of one
    annotation file; a ValueError names the file, the object (its position, from 0) and the field:
    the size must be integers in ``1..16384``, the corners finite numbers, ``<difficult>`` 0 or 1."""
    try:
        tree = ET.fromstring(read_bytes(path, max_bytes=_MAX_XML, what="VOC annotation"))
    except ET.ParseError as e:
        raise ValueError(f"{path} is not valid XML ({e}); fix or remove the annotation file") from None
    size = tree.find("size")
    try:
        hw = (int(size.findtext("height")), int(size.findtext("width")))  # type: ignore[union-attr, arg-type]  # missing: caught below
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"{path}: no <size> with <width> and <height>; fix the annotation file") from None
    if not all(1 <= v <= MAX_SIDE for v in hw):
        raise ValueError(f"{path}: <size> says {hw[1]}x{hw[0]} pixels, outside 1..{MAX_SIDE} a side; fix the "
                         "annotation file")
    objects = []
    for k, obj in enumerate(tree.iter("object")):
        name = (obj.findtext("name") or "").strip()
        if name not in classes:
            raise ValueError(f"{path}: class {short_repr(name)} is not one of the {len(classes)} classes "
                             f"({', '.join(classes[:5])}, ...); pass classes=[...] naming all classes")
        at = f"{path}: object {k} ({name})"
        b = obj.find("bndbox")
        if b is None or any(b.findtext(c) is None for c in _CORNERS):
            raise ValueError(f"{at} has no complete <bndbox> (<xmin>, <ymin>, <xmax>, <ymax>); fix the annotation")
        box = []
        for c in _CORNERS:
            text = b.findtext(c) or ""
            try:
                v = float(text)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise ValueError(f"{at}: <{c}> is {short_repr(text.strip())}, not a finite number; fix the annotation")
            box.append(v)
        difficult = (obj.findtext("difficult") or "0").strip()
        if difficult not in ("0", "1"):
            raise ValueError(f"{at}: <difficult> is {short_repr(difficult)}, not 0 or 1; fix the annotation")
        objects.append((classes.index(name) + 1, [box[0] - 1, box[1] - 1, box[2], box[3]], difficult == "1"))
    return {"file": tree.findtext("filename") or path.stem + ".jpg", "size": hw, "objects": objects}


class VocDetection(Dataset):
    """VOC images with their boxes (targets as in ``wavevision.data.boxes``), checked when built."""

    def __init__(self, voc: Path, ids: list[str], classes: tuple[str, ...], transform: Any = None) -> None:
        self.voc, self.ids, self.classes, self.transform = voc, ids, classes, transform
        self.records = [parse_voc_xml(voc / "Annotations" / f"{i}.xml", classes) for i in ids]
        for i, rec in zip(ids, self.records):
            xml = voc / "Annotations" / f"{i}.xml"
            if not file_in_folder(voc / "JPEGImages", rec["file"], f"{xml}: <filename>").is_file():
                raise MissingDataFile(f"{voc / 'Annotations' / f'{i}.xml'} refers to image {rec['file']}, which is missing "
                                      f"from {voc / 'JPEGImages'}; restore it or remove the annotation")
            check_objects(self._target(rec), rec["size"], len(classes), str(voc / "Annotations" / f"{i}.xml"))

    @staticmethod
    def _target(rec: dict[str, Any]) -> dict[str, torch.Tensor]:
        if not rec["objects"]:
            return empty_target(rec["size"], masks=False)
        labels, boxes, difficult = zip(*rec["objects"])
        t = torch.tensor(boxes, dtype=torch.float32)
        return {"boxes": t, "labels": torch.tensor(labels, dtype=torch.int64),
                "iscrowd": torch.tensor(difficult, dtype=torch.int64), "area": (t[:, 2:] - t[:, :2]).prod(1)}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rec = self.records[index]
        image = convert_channels(load_image(self.voc / "JPEGImages" / rec["file"]), 3)
        if tuple(image.shape[-2:]) != rec["size"]:
            raise ValueError(f"{self.voc / 'JPEGImages' / rec['file']} is {image.shape[-1]}x{image.shape[-2]} but its "
                             f"annotation says {rec['size'][1]}x{rec['size'][0]}; the image or the XML is wrong")
        target = self._target(rec)
        target["image_id"] = torch.tensor(index)
        return (self.transform(image) if self.transform is not None else image), target


def _read_list(path: Path) -> list[str]:
    """The image ids of an ``ImageSets`` list: plain names (a path part would read another folder's files)."""
    text = read_bytes(path, max_bytes=64 << 20, what="VOC image list").decode(errors="replace")
    ids = [line.split()[0] for line in text.splitlines() if line.strip()]
    for n, i in enumerate(ids):
        if "/" in i or "\\" in i or i in (".", ".."):
            raise ValueError(f"{path}: entry {n + 1} ({short_repr(i)}) is not an image id (a file name without "
                             "folder or extension); fix the list")
    return ids


def _split_ids(voc: Path, split: str) -> list[str]:
    lists = voc / "ImageSets" / "Main"
    have = {n: lists / f"{n}.txt" for n in ("train", "val", "trainval", "test") if (lists / f"{n}.txt").is_file()}
    if not have:
        ids = sorted(p.stem for p in (voc / "Annotations").glob("*.xml"))
        if not ids:
            raise FileNotFoundError(f"{voc / 'Annotations'} holds no .xml annotation; is it a VOC folder?")
        return [ids[i] for i in three_way_split(len(ids), split).tolist()]
    has_test = "test" in have
    source, part = split_source(split, has_val="val" in have and has_test, has_test=has_test)
    if source == "train" and part is not None:
        train = have.get("trainval") or have.get("train")
        if train is None:
            raise FileNotFoundError(f"{lists} has no train.txt or trainval.txt; add one or remove the lists to split "
                                    "the images by seed")
        ids = _read_list(train)
        return [ids[i] for i in holdout_split(len(ids), part).tolist()]
    if source not in have:
        raise FileNotFoundError(f"{lists} has no {source}.txt; add it or remove the lists to split the images by seed")
    return _read_list(have[source])


@register_dataset("voc")
def build_voc(split: str, *, root=None, download: bool = False, augment: bool = False,
              **options: Any) -> tuple[Dataset, DatasetInfo]:
    """Options: ``classes`` (class names in label order; default VOC's 20)."""
    reject_unknown_options("voc", options, ["classes"])
    voc = find_voc_root(Path(root))
    if voc is None:
        raise FileNotFoundError(f"no Annotations/ + JPEGImages/ under {root} (looked in VOC*/ and VOCdevkit/VOC*/ "
                                "too); give the VOC folder")
    classes = tuple(str(c) for c in options.get("classes", VOC_CLASSES))
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names, got {list(classes)}")
    data: Dataset = VocDetection(voc, _split_ids(voc, split), classes, Normalize(IMAGENET_MEAN, IMAGENET_STD))
    if augment:  # MMDetection's RandomFlip(flip_ratio=0.5): boxes and masks move with the image
        data = AugmentedObjects(data, RandomObjectHFlip(0.5))
    info = DatasetInfo(name="voc", task="detection", in_chans=3, num_classes=len(classes), class_names=classes,
                       image_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return data, info
