"""Generic dataset classes the formats build on: images in memory or on disk, with labels,
masks or high-resolution targets. All of them pickle (for DataLoader workers)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

__all__ = ["FileClassification", "TensorClassification", "to_float"]


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float tensors are returned as float32 unchanged."""
    if image.dtype == torch.uint8:
        return image.float().div_(255.0)
    return image.float()


class TensorClassification(Dataset):
    """Images held in one tensor ``(N, C, H, W)`` (uint8 or float in [0, 1]) with int labels.

    ``transform`` maps a float ``(C, H, W)`` image to the model input (augment, normalise).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        if images.dim() != 4 or len(images) != len(labels):
            raise ValueError(f"need images (N, C, H, W) and N labels, got {tuple(images.shape)} and {len(labels)}")
        self.images, self.labels, self.transform = images, labels.long(), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = to_float(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


class FileClassification(Dataset):
    """Image files with int labels, decoded with Pillow when a sample is read.

    ``loader(path) -> (C, H, W) float`` decodes (and converts channels); ``transform`` as above.
    """

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], loader: Callable, transform: Callable | None = None) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} files but {len(labels)} labels")
        self.paths = [str(p) for p in paths]
        self.labels = [int(v) for v in labels]
        self.loader, self.transform = loader, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.loader(self.paths[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]
