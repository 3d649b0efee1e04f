"""Detection samples: an image and one target dict of its objects (torchvision's layout).

A target holds ``boxes`` (N, 4) float32 ``x1, y1, x2, y2`` in pixels, ``labels`` (N,) int64 in
``1..num_classes`` (0 is background), optionally ``masks`` (N, H, W) uint8 at the image's size,
``iscrowd`` (N,) int64 (crowd regions are neither matched nor missed by COCO's evaluation and
are not trained on), ``area`` (N,) float32 and ``image_id`` (an int unique within the split).
Every loader checks its targets with :func:`check_objects`, so a bad annotation fails where it
is read, named, instead of deep inside a detector.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from .datasets import to_float

__all__ = ["DetectionSamples", "check_objects", "empty_target", "tight_boxes"]


def empty_target(size: tuple[int, int], masks: bool) -> dict[str, torch.Tensor]:
    """The target of an image without objects."""
    out = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
           "iscrowd": torch.zeros(0, dtype=torch.int64), "area": torch.zeros(0)}
    if masks:
        out["masks"] = torch.zeros(0, *size, dtype=torch.uint8)
    return out


def tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """The smallest ``x1, y1, x2, y2`` boxes (pixel edges) around each of ``masks`` (N, H, W)."""
    boxes = torch.zeros(len(masks), 4)
    for i, m in enumerate(masks):
        ys, xs = torch.where(m > 0)
        if len(ys):
            boxes[i] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    return boxes


def check_objects(target: dict[str, Any], size: tuple[float, float], num_classes: int, where: str) -> None:
    """Raise a ValueError naming ``where`` when a target cannot be trained on: boxes not (N, 4),
    outside the image or of non-positive size, labels outside ``1..num_classes``, masks whose
    size differs from the image's (``size`` = (H, W)), or fields of different lengths."""
    boxes, labels = target["boxes"], target["labels"]
    h, w = size
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{where}: boxes must be (N, 4) x1, y1, x2, y2, got shape {tuple(boxes.shape)}")
    if len(labels) != len(boxes):
        raise ValueError(f"{where}: {len(boxes)} boxes but {len(labels)} labels; give one label per box")
    if len(boxes):
        if not torch.isfinite(boxes).all():
            raise ValueError(f"{where}: a box holds NaN or infinity; fix the annotation")
        wh = boxes[:, 2:] - boxes[:, :2]
        bad = (wh <= 0).any(1).nonzero()
        if len(bad):
            b = boxes[int(bad[0])].tolist()
            raise ValueError(f"{where}: box {b} has non-positive width or height; fix or remove the annotation")
        out = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > w) | (boxes[:, 3] > h)
        if out.any():
            b = boxes[int(out.nonzero()[0])].tolist()
            raise ValueError(f"{where}: box {b} lies outside the {w}x{h} image; fix the annotation (or clip it)")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 1 or hi > num_classes:
            raise ValueError(f"{where}: label {lo if lo < 1 else hi} is out of range 1..{num_classes} "
                             "(0 is background); check the labels or num_classes")
    masks = target.get("masks")
    if masks is not None:
        if masks.dim() != 3 or len(masks) != len(boxes):
            raise ValueError(f"{where}: masks must be (N, H, W) with one mask per box, got {tuple(masks.shape)} "
                             f"for {len(boxes)} boxes")
        if tuple(masks.shape[-2:]) != (h, w):
            raise ValueError(f"{where}: masks are {masks.shape[-1]}x{masks.shape[-2]} but the image is {w}x{h}; "
                             "masks must cover the image exactly")


class DetectionSamples(Dataset):
    """Images held in memory (``(N, C, H, W)``, uint8 or float in [0, 1]) with one target each;
    samples are ``(image float32 normalised, target)`` with ``image_id`` = the sample's index.

    Args:
        images: the images.
        targets: one target dict per image (see the module docstring).
        transform: maps the float image to the model input (normalisation).
    """

    def __init__(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]],
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if images.dim() != 4 or len(images) != len(targets):
            raise ValueError(f"need images (N, C, H, W) and N targets, got {tuple(images.shape)} and {len(targets)}")
        self.images, self.targets, self.transform = images, targets, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = to_float(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        target = {k: v.clone() for k, v in self.targets[index].items()}
        target["image_id"] = torch.tensor(index)
        return image, target
