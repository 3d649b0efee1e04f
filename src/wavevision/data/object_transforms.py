"""Transforms of detection samples: an image and its target dict move together.

Targets are as in ``wavevision.data.boxes`` (``boxes`` x1, y1, x2, y2 in pixels, optional
``masks`` (N, H, W)). Randomness comes from torch's global generator, as for the
classification and segmentation transforms (``wavevision.data.transforms``): a training run
seeds it per batch (``wavevision.engine.sampling.SeededSamples``), so the flips depend only on
the seed, the epoch and the batch, and a resumed run flips as an uninterrupted one would.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.validate import check_float

__all__ = ["AugmentedObjects", "RandomObjectHFlip", "hflip_objects"]

Target = dict[str, torch.Tensor]


def hflip_objects(image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Mirror an image ``(C, H, W)`` left-right with its objects: a box ``x1, x2`` becomes
    ``W - x2, W - x1`` (pixel edges, so a box touching the left edge ends touching the right),
    masks are mirrored like the image; other fields are unchanged."""
    width = image.shape[-1]
    out = dict(target)
    boxes = target["boxes"]
    if len(boxes):
        flipped = boxes.clone()
        flipped[:, 0] = width - boxes[:, 2]
        flipped[:, 2] = width - boxes[:, 0]
        out["boxes"] = flipped
    if "masks" in target:
        out["masks"] = target["masks"].flip(-1)
    return image.flip(-1), out


class RandomObjectHFlip:
    """:func:`hflip_objects` with probability ``p`` (MMDetection's ``RandomFlip`` at ``flip_ratio=0.5``)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = check_float("flip probability", p, min=0.0, max=1.0)

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        if float(torch.rand(())) < self.p:
            return hflip_objects(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"RandomObjectHFlip(p={self.p})"


class AugmentedObjects(Dataset):
    """A detection dataset whose samples pass through ``transform(image, target)`` (training
    augmentation added by a dataset builder when ``augment=True``)."""

    def __init__(self, dataset: Dataset, transform: Any) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image, target = self.dataset[index]
        return self.transform(image, target)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)  # the wrapped dataset's attributes (coco_ids, classes ...)
