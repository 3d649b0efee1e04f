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
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.io import read_bytes
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source, three_way_split
from .boxes import check_objects, empty_target
from .folders import IMAGENET_MEAN, IMAGENET_STD
from .image import MissingDataFile, convert_channels, load_image
from .object_transforms import AugmentedObjects, RandomObjectHFlip
from .transforms import Normalize

__all__ = ["VOC_CLASSES", "VocDetection", "find_voc_root", "parse_voc_xml"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
_MAX_XML = 1 << 20


def find_voc_root(root: Path) -> Path | None:
    """The folder holding ``Annotations/`` and ``JPEGImages/`` at or under ``root`` (None if none)."""
    candidates = [root, *sorted(root.glob("VOC*")), *sorted(root.glob("VOCdevkit/VOC*"))]
    return next((c for c in candidates if (c / "Annotations").is_dir() and (c / "JPEGImages").is_dir()), None)


def parse_voc_xml(path: Path, classes: tuple[str, ...]) -> dict[str, Any]:
    """``{"file": name, "size": (H, W), "objects": [(label, [x1, y1, x2, y2], difficult)]}`` of one
    annotation file; a ValueError names the file and the problem."""
    try:
        tree = ET.fromstring(read_bytes(path, max_bytes=_MAX_XML, what="VOC annotation"))
    except ET.ParseError as e:
        raise ValueError(f"{path} is not valid XML ({e}); fix or remove the annotation file") from None
    size = tree.find("size")
    try:
        hw = (int(size.findtext("height")), int(size.findtext("width")))  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"{path}: no <size> with <width> and <height>; fix the annotation file") from None
    objects = []
    for obj in tree.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in classes:
            raise ValueError(f"{path}: class {name!r} is not one of the {len(classes)} classes ({', '.join(classes[:5])}"
                             ", ...); pass classes=[...] naming all classes")
        try:
            b = obj.find("bndbox")
            box = [float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr,arg-type]
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"{path}: an object of class {name!r} has no complete <bndbox>; fix the annotation") from None
        box = [box[0] - 1, box[1] - 1, box[2], box[3]]
        objects.append((classes.index(name) + 1, box, (obj.findtext("difficult") or "0").strip() == "1"))
    return {"file": tree.findtext("filename") or path.stem + ".jpg", "size": hw, "objects": objects}


class VocDetection(Dataset):
    """VOC images with their boxes (targets as in ``wavevision.data.boxes``), checked when built."""

    def __init__(self, voc: Path, ids: list[str], classes: tuple[str, ...], transform: Any = None) -> None:
        self.voc, self.ids, self.classes, self.transform = voc, ids, classes, transform
        self.records = [parse_voc_xml(voc / "Annotations" / f"{i}.xml", classes) for i in ids]
        for i, rec in zip(ids, self.records):
            if not (voc / "JPEGImages" / rec["file"]).is_file():
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
    return [line.split()[0] for line in read_bytes(path, max_bytes=64 << 20, what="VOC image list").decode().splitlines()
            if line.strip()]


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
        ids = _read_list(have.get("trainval") or have["train"])
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
    data = VocDetection(voc, _split_ids(voc, split), classes, Normalize(IMAGENET_MEAN, IMAGENET_STD))
    if augment:  # MMDetection's RandomFlip(flip_ratio=0.5): boxes and masks move with the image
        data = AugmentedObjects(data, RandomObjectHFlip(0.5))
    info = DatasetInfo(name="voc", task="detection", in_chans=3, num_classes=len(classes), class_names=classes,
                       image_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return data, info
