"""Tensor transforms without torchvision.

Every transform takes an image ``(C, H, W)`` float tensor and optionally a mask ``(H, W)``
integer tensor; geometric transforms apply the same change to both (padding a mask with its
ignore index, resizing it with nearest neighbours), photometric ones leave the mask alone.
Called with an image only they return the image, with a mask they return ``(image, mask)``.

Randomness comes from torch's global generator (``torch.randint``/``torch.rand``), so a run is
reproducible given ``torch.manual_seed`` and DataLoader workers (seeded by torch) differ from
each other. Transforms are plain classes, so datasets holding them pickle for workers.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..utils.validate import check_float, check_int

__all__ = [
    "MAX_SIDE",
    "CenterCrop",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "Resize",
    "ResizeCover",
    "center_crop",
    "normalize",
    "resize",
    "to_size",
    "train_transform",
]

Size = int | Sequence[int]
IGNORE_INDEX = 255
# The largest image side this package resizes to: 16384 x 16384 RGB is 3 GiB as float32.
MAX_SIDE = 16384


def to_size(size: Size, what: str = "size") -> tuple[int, int]:
    """``int`` or ``(H, W)`` -> ``(H, W)`` of ints in ``1 .. MAX_SIDE`` (``ValueError`` otherwise)."""
    pair: Any = (size, size) if isinstance(size, numbers.Real) else size
    try:
        h, w = pair
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or (height, width), got {size!r}") from None
    return (check_int(what, h, min=1, max=MAX_SIDE), check_int(what, w, min=1, max=MAX_SIDE))


def _out(image: torch.Tensor, mask: torch.Tensor | None):
    return image if mask is None else (image, mask)


def resize(image: torch.Tensor, size: Size, *, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``(C, H, W)`` (or ``(N, C, H, W)``) float images; antialiased when shrinking,
    bicubic results clamped to the input's [0, 1] range."""
    h, w = to_size(size)
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    if tuple(x.shape[-2:]) == (h, w):
        return image
    shrinking = h < x.shape[-2] or w < x.shape[-1]
    x = F.interpolate(x, size=(h, w), mode=mode, align_corners=False, antialias=shrinking)
    if mode == "bicubic":
        x = x.clamp(0.0, 1.0)
    return x if batched else x.squeeze(0)


def resize_mask(mask: torch.Tensor, size: Size) -> torch.Tensor:
    """Nearest-neighbour resize of an ``(H, W)`` label mask (labels are never blended)."""
    h, w = to_size(size)
    if tuple(mask.shape) == (h, w):
        return mask
    x = F.interpolate(mask[None, None].float(), size=(h, w), mode="nearest-exact")
    return x[0, 0].to(mask.dtype)


def center_crop(x: torch.Tensor, size: Size) -> torch.Tensor:
    """Crop the centre ``(H, W)`` of the last two dimensions (which must be at least that big)."""
    h, w = to_size(size)
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"cannot crop {h}x{w} from an image of {H}x{W}; resize it first")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top:top + h, left:left + w]


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(image - mean) / std`` per channel of a ``(C, H, W)`` or ``(N, C, H, W)`` tensor."""
    if not mean:
        return image
    m = torch.as_tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image - m) / s


class Compose:
    """Apply transforms in order (each may take and return a mask beside the image)."""

    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        for t in self.transforms:
            if mask is None:
                image = t(image)
            else:
                image, mask = t(image, mask)
        return _out(image, mask)

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class Normalize:
    """Subtract ``mean`` and divide by ``std`` per channel (masks pass through)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ValueError(f"Normalize needs as many stds as means, got mean={mean}, std={std}")
        self.mean = tuple(check_float("mean", m) for m in mean)
        self.std = tuple(check_float("std", s, gt=0.0) for s in std)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        return _out(normalize(image, self.mean, self.std), mask)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Resize:
    """Resize to ``size`` (``(H, W)``; an int resizes the shorter side keeping the aspect ratio)."""

    def __init__(self, size: Size, mode: str = "bilinear") -> None:
        self.size, self.mode = size, mode
        to_size(size)

    def _target(self, h: int, w: int) -> tuple[int, int]:
        if isinstance(self.size, int):
            short = min(h, w)
            return max(1, round(h * self.size / short)), max(1, round(w * self.size / short))
        return to_size(self.size)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        size = self._target(*image.shape[-2:])
        image = resize(image, size, mode=self.mode)
        return _out(image, None if mask is None else resize_mask(mask, size))

    def __repr__(self) -> str:
        return f"Resize({self.size!r}, mode={self.mode!r})"


class ResizeCover:
    """Scale (keeping the aspect ratio) so the image covers ``size``: both sides at least as
    large as the target's, one of them equal. Masks are resized with nearest neighbours."""

    def __init__(self, size: Size, mode: str = "bilinear") -> None:
        self.size, self.mode = to_size(size), mode

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        (h, w), (H, W) = self.size, image.shape[-2:]
        ratio = max(h / H, w / W)
        target = (max(h, round(H * ratio)), max(w, round(W * ratio)))
        if max(target) > MAX_SIDE:  # a sliver (30000x1) covering a square: the intermediate cannot exist
            raise ValueError(f"an image of {H}x{W} pixels would be resized to {target[0]}x{target[1]} to cover "
                             f"{h}x{w}, more than {MAX_SIDE} pixels a side; crop the image closer to that shape first")
        image = resize(image, target, mode=self.mode)
        return _out(image, None if mask is None else resize_mask(mask, target))

    def __repr__(self) -> str:
        return f"ResizeCover({self.size})"


class CenterCrop:
    """Crop the centre ``size`` of image and mask."""

    def __init__(self, size: Size) -> None:
        self.size = to_size(size)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        return _out(center_crop(image, self.size), None if mask is None else center_crop(mask, self.size))

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomCrop:
    """Pad by ``padding`` pixels on every side (images with ``fill``, masks with ``mask_fill``,
    the ignore index by default), then crop a random ``size`` window; images smaller than
    ``size`` are padded up to it."""

    def __init__(self, size: Size, padding: int = 0, fill: float = 0.0, mask_fill: int = IGNORE_INDEX) -> None:
        self.size = to_size(size, "crop size")
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding, self.fill, self.mask_fill = int(padding), float(fill), int(mask_fill)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        h, w = self.size
        H, W = image.shape[-2:]
        p = self.padding
        # pad right/bottom further when the image is smaller than the crop
        extra_h, extra_w = max(0, h - (H + 2 * p)), max(0, w - (W + 2 * p))
        pads = (p, p + extra_w, p, p + extra_h)
        if any(pads):
            image = F.pad(image, pads, value=self.fill)
            if mask is not None:
                mask = F.pad(mask[None], pads, value=self.mask_fill)[0]
        H, W = image.shape[-2:]
        top = int(torch.randint(0, H - h + 1, ()))
        left = int(torch.randint(0, W - w + 1, ()))
        image = image[..., top:top + h, left:left + w]
        if mask is not None:
            mask = mask[top:top + h, left:left + w]
        return _out(image, mask)

    def __repr__(self) -> str:
        return f"RandomCrop({self.size}, padding={self.padding})"


class _RandomFlip:
    dim = -1

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        if float(torch.rand(())) < self.p:
            image = image.flip(self.dim)
            if mask is not None:
                mask = mask.flip(self.dim)
        return _out(image, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability ``p``."""

    dim = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability ``p``."""

    dim = -2


def train_transform(size: Size, mean: Sequence[float], std: Sequence[float], *, augment: bool,
                    hflip: bool = True, vflip: bool = False, padding: int | None = None, mask_fill: int = IGNORE_INDEX):
    """The standard pipeline of this package for fixed-size samples: when ``augment``, a random
    crop of ``size`` after padding by ``padding`` pixels (default 1/8 of the height) and the
    flips asked for; then normalisation. Works on images alone or on (image, mask) pairs."""
    h, w = to_size(size)
    steps: list = []
    if augment:
        steps.append(RandomCrop((h, w), padding=max(1, h // 8) if padding is None else padding, mask_fill=mask_fill))
        if hflip:
            steps.append(RandomHorizontalFlip())
        if vflip:
            steps.append(RandomVerticalFlip())
    if mean:
        steps.append(Normalize(mean, std))
    return Compose(steps)
