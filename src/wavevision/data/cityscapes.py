"""Cityscapes semantic segmentation (``leftImg8bit`` images with ``gtFine`` labels).

``root`` holds ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``. Label ids are mapped to the 19 training
classes; every other id becomes 255 (ignored). The official test labels are not public, so
``test`` is the official val (500 images) and ``val`` a fixed seeded hold-out of 10 % of the
2,975 training images (298; option ``val_size``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source
from .constants import IMAGENET_MEAN, IMAGENET_STD
from .datasets import FileSegmentation
from .folders import ImageLoader, verify_images
from .image import DataFileError, load_label_map
from .transforms import IGNORE_INDEX, Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize, to_size

__all__ = ["CITYSCAPES_CLASSES", "LABEL_TO_TRAIN_ID", "LabelIdsLoader", "cityscapes_pairs"]

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
# Cityscapes label id -> training id of the 19 evaluated classes (all others are ignored).
LABEL_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                     26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"


class LabelIdsLoader:
    """``path -> (H, W)`` int64 training ids from a ``*_gtFine_labelIds.png`` file."""

    def __init__(self) -> None:
        lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
        for label_id, train_id in LABEL_TO_TRAIN_ID.items():
            lut[label_id] = train_id
        self.lut = lut

    def __call__(self, path: str) -> torch.Tensor:
        ids = load_label_map(path)
        if ids.dtype != np.uint8:
            raise DataFileError(f"label file {path!r} should be a single-channel 8-bit PNG of label ids, "
                             f"got {ids.dtype} {ids.shape}")
        return torch.from_numpy(self.lut[ids])


def cityscapes_pairs(root: Path, official_split: str) -> tuple[list[Path], list[Path]]:
    """Matching image and label files of one official split, sorted by name."""
    images_dir, labels_dir = root / "leftImg8bit" / official_split, root / "gtFine" / official_split
    if not images_dir.is_dir():
        raise FileNotFoundError(f"cityscapes: no {str(images_dir)!r}; point root at the folder holding "
                                "leftImg8bit/ and gtFine/")
    images = sorted(images_dir.glob(f"*/*{_IMAGE_SUFFIX}"))
    if not images:
        raise FileNotFoundError(f"cityscapes: no <city>/*{_IMAGE_SUFFIX} files in {str(images_dir)!r}")
    labels = []
    for image in images:
        label = labels_dir / image.parent.name / (image.name[: -len(_IMAGE_SUFFIX)] + _LABEL_SUFFIX)
        if not label.is_file():
            raise FileNotFoundError(f"cityscapes: {str(image)!r} has no label file {str(label)!r}; "
                                    "download gtFine_trainvaltest and extract it beside leftImg8bit")
        labels.append(label)
    return images, labels


@register_dataset("cityscapes")
def build_cityscapes(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Options: ``image_size`` ((H, W) to resize images and labels to; default the native
    1024x2048), ``crop_size`` (training crops when augmenting; default ``image_size``),
    ``val_size``, ``verify``."""
    reject_unknown_options("cityscapes", options, ["image_size", "crop_size", "val_size", "verify"])
    root = Path(root)
    source, part = split_source(split, has_val=True, has_test=False)
    images, labels = cityscapes_pairs(root, source)
    if part is not None:
        idx = holdout_split(len(images), part, options.get("val_size")).tolist()
        images, labels = [images[i] for i in idx], [labels[i] for i in idx]
    verify_images(images + labels, options.get("verify"))
    size = to_size(options["image_size"], "image_size") if options.get("image_size") is not None else None
    crop = to_size(options["crop_size"], "crop_size") if options.get("crop_size") is not None else size
    steps: list = [] if size is None else [Resize(size)]
    sample_size = size
    if augment:
        if crop is None:
            raise ValueError("cityscapes: augment needs crop_size (or image_size), e.g. crop_size=(512, 1024)")
        steps += [RandomCrop(crop, padding=0), RandomHorizontalFlip()]
        sample_size = crop
    steps.append(Normalize(IMAGENET_MEAN, IMAGENET_STD))
    dataset = FileSegmentation(images, labels, ImageLoader(3), LabelIdsLoader(), Compose(steps))
    info = DatasetInfo(name="cityscapes", task="segmentation", in_chans=3, num_classes=19,
                       class_names=CITYSCAPES_CLASSES, image_size=sample_size, mean=IMAGENET_MEAN,
                       std=IMAGENET_STD, ignore_index=IGNORE_INDEX)
    return dataset, info
