"""ADE20K scene parsing (the MIT SceneParsing benchmark, ``ADEChallengeData2016``) and folders laid out like it.

``root`` (or ``root/ADEChallengeData2016``) holds ``images/{training,validation}/<name>.jpg`` and
``annotations/{training,validation}/<name>.png``: single-channel label maps of the image's size
where 0 is "other" (not evaluated) and 1..150 the classes. As in MMSegmentation
(``reduce_zero_label``), 0 becomes the ignore index 255 and class ``k`` becomes ``k - 1``, giving
150 classes (option ``num_classes`` for other ADE20K-style folders). The validation labels are
the benchmark's reported split, so ``test`` is the official validation (2,000 images) and
``val`` a fixed seeded hold-out of 10 % of the training images (option ``val_size``), the rule
every dataset here follows.

Samples: the training split is resized (option ``image_size``: an int resizes the shorter side
keeping the aspect ratio, default 512 as MMSegmentation's test scale; or ``(H, W)``) and cut to
``crop_size`` (default 512) windows: random ones with random flips when augmenting, the centre
otherwise, so batches stack. ``val``/``test`` images are only resized: with an int
``image_size`` their sizes vary and evaluation runs one image at a time (whole-image inference).

``pipeline="mmseg"`` (needs torchvision) uses MMSegmentation's ADE20K pipeline instead
(:mod:`wavevision.data.seg_transforms`): training crops, when augmenting, rescale ``scale``
(``(long, short)``, default (2048, 512)) by a random ratio in 0.5-2.0 keeping the ratio, crop
``crop_size`` with cat_max_ratio 0.75, flip, photometric distortion, normalise and pad (0 / 255);
without augmenting, the keep-ratio rescale, padding and the centre crop. ``val``/``test`` images
are rescaled to ``scale`` keeping the ratio (MMSeg's single-scale test). ``image_size`` does not
apply there (``scale`` does).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils.validate import check_bool, check_choice, check_int
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source
from .constants import IMAGENET_MEAN, IMAGENET_STD
from .datasets import FileSegmentation
from .folders import _VERIFY_LIMIT, ImageLoader
from .image import DataFileError, check_image_file, image_error, list_images, load_label_map
from .seg_transforms import MMSEG_SCALE, Pad, Rescale, mmseg_test_pipeline, mmseg_train_pipeline, reduce_zero_label
from .transforms import (
    IGNORE_INDEX,
    MAX_SIDE,
    CenterCrop,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    to_size,
)

__all__ = ["ADE20K_CLASSES", "ADE20KLabelLoader", "ade20k_pairs", "ade20k_root"]

# The 150 classes of the SceneParsing benchmark, in label order 1..150 (objectInfo150).
ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
_SPLIT_DIRS = {"train": "training", "val": "validation"}
_DEFAULT_SIZE = 512


def ade20k_root(path: Path) -> Path | None:
    """The folder holding ``images/`` and ``annotations/`` (``path`` or its ``ADEChallengeData2016``), or None."""
    for root in (path, path / "ADEChallengeData2016"):
        if (root / "annotations").is_dir() and any((root / "images" / d).is_dir() for d in _SPLIT_DIRS.values()):
            return root
    return None


class ADE20KLabelLoader:
    """``path -> (H, W)`` int64 training labels of an ADE20K annotation: 0 -> 255 (ignored), k -> k - 1."""

    def __init__(self, num_classes: int = len(ADE20K_CLASSES)) -> None:
        self.num_classes = num_classes

    def __call__(self, path: str) -> torch.Tensor:
        labels = load_label_map(path, "annotation")
        top = int(labels.max()) if labels.size else 0
        if top > self.num_classes or int(labels.min(initial=0)) < 0:
            raise DataFileError(f"annotation {path!r} holds label {top}, outside 0 (other) .. {self.num_classes}; "
                                "fix the file, or pass the folder's class count (--dataset-arg num_classes=N)")
        return reduce_zero_label(torch.from_numpy(labels.astype(np.int64)), IGNORE_INDEX)


def ade20k_pairs(root: Path, official_split: str) -> tuple[list[Path], list[Path]]:
    """Matching image and annotation files of ``training`` / ``validation``, sorted by name."""
    images_dir, labels_dir = root / "images" / official_split, root / "annotations" / official_split
    if not images_dir.is_dir():
        raise FileNotFoundError(f"ade20k: no {str(images_dir)!r}; point root at the folder holding "
                                "images/{training,validation} and annotations/{training,validation}")
    images = list_images(images_dir)
    if not images:
        raise FileNotFoundError(f"ade20k: no images in {str(images_dir)!r}; put the .jpg files there")
    labels = [labels_dir / f"{image.stem}.png" for image in images]
    for image, label in zip(images, labels):
        if not label.is_file():
            raise FileNotFoundError(f"ade20k: image {str(image)!r} has no annotation {str(label)!r}; add its label "
                                    "map (a single-channel PNG of the same size) or remove the image")
    return images, labels


def _verify_pairs(images: list[Path], labels: list[Path], enabled: Any) -> None:
    """Open every header (Pillow) and refuse an unreadable file or an annotation whose size is not its image's;
    by default only up to 20,000 images (the ``verify`` option forces it on or off)."""
    if enabled is not None:
        enabled = check_bool("verify", enabled)
    if enabled is False or (enabled is None and len(images) > _VERIFY_LIMIT):
        return
    from PIL import Image

    for image, label in zip(images, labels):
        sizes = []
        for path, what in ((image, "image file"), (label, "annotation")):
            check_image_file(path, what)
            try:
                with Image.open(path) as img:
                    sizes.append(img.size)
            except Exception as e:  # Pillow raises many types for damaged files
                raise image_error(path, e, what) from None
        if sizes[0] != sizes[1]:
            (w, h), (lw, lh) = sizes
            raise DataFileError(f"annotation {str(label)!r} is {lh}x{lw} but its image {str(image)!r} is {h}x{w}; "
                                "an annotation is its image's label map at the same size: re-export it or remove the pair")


def _sizes(options: dict[str, Any]) -> tuple[Any, tuple[int, int] | None]:
    """``image_size`` (an int shorter side, or (H, W)) and ``crop_size`` ((H, W); default 512, or image_size's pair)."""
    size = options.get("image_size", _DEFAULT_SIZE)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = check_int("image_size", int(size), min=1, max=MAX_SIDE)
        default_crop: Any = min(_DEFAULT_SIZE, size)
    else:
        size = default_crop = to_size(size, "image_size")
    crop = options.get("crop_size", default_crop)
    crop = None if crop is None else to_size(crop, "crop_size")
    short = size if isinstance(size, int) else min(size)
    if crop is not None and isinstance(size, int) and max(crop) > short:
        raise ValueError(f"ade20k: crop_size {crop} does not fit images resized to a shorter side of {short}; "
                         "lower crop_size or raise image_size")
    if crop is not None and not isinstance(size, int) and (crop[0] > size[0] or crop[1] > size[1]):
        raise ValueError(f"ade20k: crop_size {crop} is larger than image_size {size}; lower crop_size")
    return size, crop


@register_dataset("ade20k")
def build_ade20k(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Options: ``image_size``, ``crop_size``, ``pipeline`` (``resize`` or ``mmseg``), ``scale`` (module
    docstring), ``num_classes`` (default 150), ``val_size``, ``verify``."""
    reject_unknown_options("ade20k", options, ["image_size", "crop_size", "num_classes", "val_size", "verify",
                                               "pipeline", "scale"])
    pipeline = check_choice("pipeline", options.get("pipeline", "resize"), ("resize", "mmseg"))
    found = ade20k_root(Path(root))
    if found is None:
        raise FileNotFoundError(f"ade20k: {str(root)!r} has no images/training or images/validation beside "
                                "annotations/; point root at ADEChallengeData2016 (or the folder holding it)")
    num_classes = check_int("num_classes", options.get("num_classes", len(ADE20K_CLASSES)), min=1, max=IGNORE_INDEX)
    source, part = split_source(split, has_val=True, has_test=False)
    images, labels = ade20k_pairs(found, _SPLIT_DIRS[source])
    if part is not None:
        idx = holdout_split(len(images), part, options.get("val_size")).tolist()
        images, labels = [images[i] for i in idx], [labels[i] for i in idx]
    _verify_pairs(images, labels, options.get("verify"))
    if pipeline == "mmseg":
        transform, sample_size = _mmseg_transform(split, augment, options)
        dataset = FileSegmentation(images, labels, ImageLoader(3), ADE20KLabelLoader(num_classes), transform)
        return dataset, _info(num_classes, sample_size)
    if "scale" in options:
        raise ValueError("ade20k: option scale applies to pipeline=mmseg only; give image_size, or add "
                         "--dataset-arg pipeline=mmseg")
    size, crop = _sizes(options)
    steps: list = [Resize(size)]
    sample_size = None if isinstance(size, int) else size
    if split == "train" and crop is not None:  # training batches stack: fixed windows
        steps += [RandomCrop(crop), RandomHorizontalFlip()] if augment else [CenterCrop(crop)]
        sample_size = crop
    steps.append(Normalize(IMAGENET_MEAN, IMAGENET_STD))
    dataset = FileSegmentation(images, labels, ImageLoader(3), ADE20KLabelLoader(num_classes), Compose(steps))
    return dataset, _info(num_classes, sample_size)


def _info(num_classes: int, sample_size: tuple[int, int] | None) -> DatasetInfo:
    names = ADE20K_CLASSES if num_classes == len(ADE20K_CLASSES) else None
    return DatasetInfo(name="ade20k", task="segmentation", in_chans=3, num_classes=num_classes, class_names=names,
                       image_size=sample_size, mean=IMAGENET_MEAN, std=IMAGENET_STD, ignore_index=IGNORE_INDEX)


def _mmseg_transform(split: str, augment: bool, options: dict[str, Any]) -> tuple[Compose, tuple[int, int] | None]:
    """MMSegmentation's pipeline for ``split`` and the size its samples share (None: they vary)."""
    if "image_size" in options:
        raise ValueError("ade20k: image_size does not apply to pipeline=mmseg; give scale=[LONG,SHORT] "
                         f"(default [{MMSEG_SCALE[0]},{MMSEG_SCALE[1]}]) and crop_size")
    scale = to_size(options.get("scale", MMSEG_SCALE), "scale")
    if split != "train":
        return mmseg_test_pipeline(scale=scale, mean=IMAGENET_MEAN, std=IMAGENET_STD), None
    crop = to_size(options.get("crop_size", _DEFAULT_SIZE), "crop_size")
    if augment:
        return mmseg_train_pipeline(scale=scale, crop_size=crop, mean=IMAGENET_MEAN, std=IMAGENET_STD), crop
    steps = [Rescale(scale), Normalize(IMAGENET_MEAN, IMAGENET_STD), Pad(crop), CenterCrop(crop)]
    return Compose(steps), crop
