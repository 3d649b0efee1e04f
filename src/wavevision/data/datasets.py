"""Generic dataset classes the formats build on: images in memory or on disk, with labels,
masks or high-resolution targets. All of them pickle (for DataLoader workers)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..utils.memory import check_memory
from ._base import SPLIT_SEED
from .image import DataFileError, as_uint8, bicubic_downsample, mod_crop
from .transforms import resize

__all__ = [
    "FileClassification",
    "FileSegmentation",
    "SuperResolutionPairs",
    "TensorClassification",
    "TensorSegmentation",
    "channel_stats",
    "check_labels",
    "resize_stack",
    "sr_min_size",
    "to_float",
]


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float tensors are returned as float32 unchanged."""
    if image.dtype == torch.uint8:
        return image.float().div_(255.0)
    return image.float()


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``(N, C, H, W)`` images (uint8 read as [0, 1]), in chunks so
    large uint8 sets never become one float copy; rounded to 4 decimals."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        x = to_float(images[start:start + chunk]).double()
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0).sqrt()
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std)


def resize_stack(images: torch.Tensor, size: tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """Resize a uint8 ``(N, C, H, W)`` stack (bilinear, antialiased when shrinking), kept uint8."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    n, c, (h, w) = len(images), images.shape[1], size
    # the uint8 result, and one chunk resized in float32 plus its uint8 copy
    check_memory(n * c * h * w + min(n, chunk) * c * h * w * 5, f"resizing {n:,} images to {h}x{w}",
                 "use a smaller image_size (--dataset-arg image_size=N)")
    return torch.cat([as_uint8(resize(to_float(images[i:i + chunk]), size)) for i in range(0, len(images), chunk)])


def check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` when a label is outside ``0 .. num_classes - 1``."""
    if len(labels) == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{where}: label {bad} is out of range 0..{num_classes - 1}; "
                         "the file is damaged or belongs to another dataset")


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


class TensorSegmentation(Dataset):
    """Images ``(N, C, H, W)`` (uint8 or float in [0, 1]) with label masks ``(N, H, W)``
    (uint8 or int64); samples are ``(image float32, mask int64)``.

    ``transform(image, mask) -> (image, mask)`` applies joint augmentations and normalisation.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, transform: Callable | None = None) -> None:
        if images.dim() != 4 or masks.dim() != 3 or len(images) != len(masks) or images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(f"need images (N, C, H, W) and masks (N, H, W), got {tuple(images.shape)} and {tuple(masks.shape)}")
        self.images, self.masks, self.transform = images, masks, transform
        #: digit-scenes only: where each scene's digits came from (index into the digits, top, left, side)
        self.layout: list[list[tuple[int, int, int, int]]] = []

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = to_float(self.images[index]), self.masks[index].long()
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


class FileSegmentation(Dataset):
    """Pairs of image and label files: ``loader(path)`` decodes an image to float ``(C, H, W)``,
    ``mask_loader(path)`` a label file to int64 ``(H, W)``; ``transform`` as above."""

    def __init__(self, images: Sequence[Path], masks: Sequence[Path], loader: Callable, mask_loader: Callable,
                 transform: Callable | None = None) -> None:
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} label files")
        self.images, self.masks = [str(p) for p in images], [str(p) for p in masks]
        self.loader, self.mask_loader, self.transform = loader, mask_loader, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.loader(self.images[index]), self.mask_loader(self.masks[index])
        if image.shape[-2:] != mask.shape[-2:]:
            raise DataFileError(f"image {self.images[index]!r} is {tuple(image.shape[-2:])} but its labels "
                             f"{self.masks[index]!r} are {tuple(mask.shape)}; a label map must have its image's size: "
                             "re-export it or remove the pair")
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


HighRes = torch.Tensor | str | Path


def sr_min_size(scale: int, window: int | None = None) -> tuple[int, str, str]:
    """The smallest side of a high-resolution image that super-resolution samples can be made
    from (one low-resolution pixel, or the patch/crop ``window``), why, and the fix."""
    if window and window > scale:
        return int(window), f"the patch or crop size {window}", "remove it, or lower that size"
    return int(scale), f"one low-resolution pixel at x{scale}", "remove it"


class SuperResolutionPairs(Dataset):
    """``(lr, hr)`` pairs in [0, 1]: ``lr`` is the antialiased bicubic downsampling of the whole
    high-resolution image (cropped to a multiple of ``scale``) and windows are cut aligned, so
    ``hr`` covers exactly the pixels ``lr`` was made from.

    Args:
        images: high-resolution images, uint8/float ``(C, H, W)`` tensors in memory or paths
            decoded by ``loader``.
        scale: the super-resolution factor.
        patch_size: cut ``patch_size`` x ``patch_size`` high-resolution patches (a multiple of
            ``scale``): random ones with random flips when ``augment``, otherwise at fixed
            seeded positions. ``None`` gives whole images (or their centre ``crop_size``).
        num_samples: samples per epoch (image ``k % len(images)`` for sample ``k``); default
            one per image.
        crop_size: without ``patch_size``, the centre ``crop_size`` x ``crop_size`` window of
            each image, so evaluation batches stack.
        loader: ``path -> (C, H, W)`` float, for paths.
    """

    def __init__(self, images: Sequence[HighRes], scale: int, *, patch_size: int | None = None, augment: bool = False,
                 num_samples: int | None = None, crop_size: int | None = None, loader: Callable | None = None) -> None:
        if not images:
            raise ValueError("no high-resolution images given")
        for name, value in (("patch_size", patch_size), ("crop_size", crop_size)):
            if value is not None and (value < scale or value % scale):
                raise ValueError(f"{name} must be a positive multiple of the scale {scale}, got {value}")
        if any(not isinstance(im, torch.Tensor) for im in images) and loader is None:
            raise ValueError("paths need a loader")
        self.images, self.scale, self.loader = list(images), int(scale), loader
        self.patch_size, self.crop_size, self.augment = patch_size, crop_size, augment
        self.num_samples = len(self.images) if num_samples is None else int(num_samples)
        # images held in memory get their low-resolution version once
        self._lr = [bicubic_downsample(self._checked(to_float(im), f"image {k}"), scale)
                    if isinstance(im, torch.Tensor) else None for k, im in enumerate(self.images)]
        g = torch.Generator().manual_seed(SPLIT_SEED)
        self._positions = torch.rand(self.num_samples, 2, generator=g)  # fixed patch positions without augment

    def __len__(self) -> int:
        return self.num_samples

    def _checked(self, hr: torch.Tensor, where: str) -> torch.Tensor:
        """``hr`` cropped to a multiple of the scale, refused when smaller than :func:`sr_min_size`."""
        need, why, fix = sr_min_size(self.scale, self.patch_size or self.crop_size)
        if min(hr.shape[-2:]) < need:
            raise DataFileError(f"{where} is {hr.shape[-1]}x{hr.shape[-2]} pixels, smaller than the minimum of "
                                f"{need}x{need} ({why}); {fix}")
        return mod_crop(hr, self.scale)

    def _pair(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """LR (float) and HR (as stored: uint8 or float, converted after cropping) of image k."""
        im = self.images[k]
        if isinstance(im, torch.Tensor):
            lr = self._lr[k]
            assert lr is not None  # made in __init__ for every image held in memory
            return lr, mod_crop(im, self.scale)
        assert self.loader is not None  # __init__ refuses paths without a loader
        hr = self._checked(self.loader(im), repr(str(im)))
        return bicubic_downsample(hr, self.scale), hr

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = index % len(self.images)
        lr, hr = self._pair(k)
        s, h, w = self.scale, lr.shape[-2], lr.shape[-1]
        window = self.patch_size or self.crop_size
        if window is not None:  # it fits: _checked refused smaller images
            p = window // s
            if self.patch_size is None:
                top, left = (h - p) // 2, (w - p) // 2
            elif self.augment:
                top, left = int(torch.randint(0, h - p + 1, ())), int(torch.randint(0, w - p + 1, ()))
            else:
                u, v = self._positions[index].tolist()
                top, left = int(u * (h - p + 1)), int(v * (w - p + 1))
            lr = lr[:, top:top + p, left:left + p]
            hr = hr[:, top * s:(top + p) * s, left * s:(left + p) * s]
        hr = to_float(hr)
        if self.augment:
            for dim in (-1, -2):
                if float(torch.rand(())) < 0.5:
                    lr, hr = lr.flip(dim), hr.flip(dim)
        return lr.contiguous(), hr.contiguous()
