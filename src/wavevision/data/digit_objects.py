"""``digit-objects``: an embedded, real detection and instance-segmentation dataset.

Images composed from scikit-learn's handwritten digits (the ``digits`` dataset's fixed split, so
no digit appears in two splits): each 96x96 one-channel image holds 1-5 digits (option
``digits_per_image``), each upsampled bilinearly to a random square side in 12..40 pixels
(``digit_sizes``) and placed at a random position where its box overlaps every earlier one by at
most IoU 0.3 (overlaps happen; ink is composited by maximum). One object per digit: label
``d + 1`` for digit d (0 is background), its mask the pixels where its own ink reaches 5/16 of
full intensity, its box the tight box around that mask. 5 % of the images hold no digit
(negatives train too). Splits: 800 / 100 / 200 images (``num_images``), each from a fixed seed.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.memory import check_memory
from ..utils.validate import check_float, check_int
from ._base import MAX_COUNT, SPLIT_SEED, DatasetInfo, register_dataset, reject_unknown_options
from .boxes import DetectionSamples, empty_target, tight_boxes
from .embedded import INK_THRESHOLD, digit_split_indices, load_digits_tensor, upsample_digits
from .transforms import Normalize, to_size

__all__ = ["OBJECT_CLASSES", "OBJECT_COUNTS", "compose_objects"]

OBJECT_COUNTS = {"train": 800, "val": 100, "test": 200}
OBJECT_CLASSES = tuple(f"digit {d}" for d in range(10))
_SEEDS = {"train": 11, "val": 12, "test": 13}
# Mean and std of the default training split (computed once; fixed so inputs never shift).
OBJECTS_MEAN = (0.0698,)
OBJECTS_STD = (0.2031,)
_EMPTY_FRACTION = 0.05


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two (top, left, bottom, right) boxes."""
    h = min(a[2], b[2]) - max(a[0], b[0])
    w = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(h, 0) * max(w, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _place(side: int, size: tuple[int, int], placed: list, max_iou: float, g: torch.Generator):
    """A (top, left, bottom, right) square of ``side`` overlapping each placed one by IoU <= max_iou (or None)."""
    for _ in range(50):
        top = int(torch.randint(0, size[0] - side + 1, (), generator=g))
        left = int(torch.randint(0, size[1] - side + 1, (), generator=g))
        box = (top, left, top + side, left + side)
        if all(_iou(box, other) <= max_iou for other in placed):
            return box
    return None


def compose_objects(digits: torch.Tensor, labels: torch.Tensor, count: int, *, size: tuple[int, int] = (96, 96),
                    per_image: tuple[int, int] = (1, 5), digit_sizes: tuple[int, int] = (12, 40),
                    max_iou: float = 0.3, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """``count`` images ``(count, 1, H, W)`` in [0, 1] composed from ``digits`` ``(M, 1, 8, 8)``,
    and their targets (see the module docstring)."""
    H, W = size
    lo, hi = per_image
    if not 1 <= lo <= hi <= 16:
        raise ValueError(f"digits_per_image must be (min, max) with 1 <= min <= max <= 16, got {per_image}")
    if not 1 <= digit_sizes[0] <= digit_sizes[1] <= min(H, W):
        raise ValueError(f"digit_sizes must be (min, max) with 1 <= min <= max <= {min(H, W)} (the image side), "
                         f"got {digit_sizes}")
    check_memory(count * H * W * (4 + hi), f"composing {count:,} images of {H}x{W}",
                 "use a smaller image_size or fewer num_images")
    g = torch.Generator().manual_seed(seed)
    ups: dict[tuple[int, int], torch.Tensor] = {}  # (digit, side) -> upsampled, made when first drawn
    images = torch.zeros(count, 1, H, W)
    targets = []
    for i in range(count):
        n = 0 if float(torch.rand((), generator=g)) < _EMPTY_FRACTION else int(torch.randint(lo, hi + 1, (), generator=g))
        placed: list[tuple[int, int, int, int]] = []
        masks: list[torch.Tensor] = []
        classes: list[int] = []
        for _ in range(n):
            d = int(torch.randint(0, len(digits), (), generator=g))
            side = int(torch.randint(digit_sizes[0], digit_sizes[1] + 1, (), generator=g))
            box = _place(side, size, placed, max_iou, g)
            if box is None:
                continue
            t, lft, b, r = box
            if (d, side) not in ups:
                ups[d, side] = upsample_digits(digits[d:d + 1], (side, side))[0, 0]
            up = ups[d, side]
            images[i, 0, t:b, lft:r] = torch.maximum(images[i, 0, t:b, lft:r], up)
            mask = torch.zeros(H, W, dtype=torch.uint8)
            mask[t:b, lft:r] = up >= INK_THRESHOLD
            if not mask.any():
                continue
            placed.append(box)
            masks.append(mask)
            classes.append(int(labels[d]) + 1)
        targets.append(_target(masks, classes, size))
    return images, targets


def _target(masks: list[torch.Tensor], classes: list[int], size: tuple[int, int]) -> dict[str, torch.Tensor]:
    if not masks:
        return empty_target(size, masks=True)
    m = torch.stack(masks)
    return {"boxes": tight_boxes(m), "labels": torch.tensor(classes, dtype=torch.int64), "masks": m,
            "iscrowd": torch.zeros(len(m), dtype=torch.int64), "area": m.flatten(1).sum(1).float()}


def _pair(value: Any, what: str) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (min, max) pair of ints, got {value!r}") from None
    return check_int(what, lo, min=1), check_int(what, hi, min=1)


@register_dataset("digit-objects", needs_root=False)
def build_digit_objects(split: str, *, root=None, download: bool = False, augment: bool = False,
                        **options: Any) -> tuple[Dataset, DatasetInfo]:
    """Options: ``image_size`` (default 96), ``num_images`` (800 / 100 / 200), ``digits_per_image``
    ((min, max), default (1, 5)), ``digit_sizes`` ((min, max) side, default (12, 40)), ``max_iou``
    (the most two digits' boxes overlap, default 0.3). No augmentation (digits must not be mirrored)."""
    reject_unknown_options("digit-objects", options, ["image_size", "num_images", "digits_per_image", "digit_sizes",
                                                       "max_iou"])
    size = to_size(options.get("image_size", 96), "image_size")
    count = check_int("num_images", options.get("num_images", OBJECT_COUNTS[split]), min=1, max=MAX_COUNT)
    images, labels = load_digits_tensor()
    idx = digit_split_indices(split)
    pixels, targets = compose_objects(
        images[idx], labels[idx], count, size=size, per_image=_pair(options.get("digits_per_image", (1, 5)), "digits_per_image"),
        digit_sizes=_pair(options.get("digit_sizes", (12, 40)), "digit_sizes"),
        max_iou=check_float("max_iou", options.get("max_iou", 0.3), min=0.0, max=1.0), seed=SPLIT_SEED + _SEEDS[split])
    info = DatasetInfo(name="digit-objects", task="detection", in_chans=1, num_classes=10, class_names=OBJECT_CLASSES,
                       image_size=size, mean=OBJECTS_MEAN, std=OBJECTS_STD)
    return DetectionSamples(pixels, targets, Normalize(OBJECTS_MEAN, OBJECTS_STD)), info
