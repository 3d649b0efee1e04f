"""MMSegmentation's ADE20K pipeline as composable transforms over ``(image, label)`` tensors.

The train pipeline of MMSegmentation 0.x's ``ade20k.py`` (the one the Wave-ViT + UperNet
numbers were trained with): random rescale of a ``(long, short)`` scale by a ratio in
``ratio_range`` keeping the aspect ratio, a random crop whose largest class covers at most
``cat_max_ratio`` of its labelled pixels (up to 10 tries), horizontal flip, photometric
distortion, normalisation, padding to the crop size (image 0, label 255). The test pipeline
rescales to the scale keeping the ratio and normalises. ``reduce_zero_label`` (0 -> 255,
``k`` -> ``k - 1``) happens when the label map is read (:class:`~wavevision.data.ade20k.ADE20KLabelLoader`).

Images are ``(3, H, W)`` float RGB in [0, 1], labels ``(H, W)`` int64. Each random transform
draws from its ``generator`` (a ``torch.Generator``) or, when None, from torch's global one,
so a run is reproducible given ``torch.manual_seed`` and DataLoader workers (seeded by torch)
differ from each other. Geometric operations use ``torchvision.transforms.v2.functional``
(the ``vision`` extra), imported when a transform runs, so the core install imports this module.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..utils.validate import check_float, check_int
from .transforms import IGNORE_INDEX, Compose, Normalize, to_size

__all__ = [
    "CatMaxRatioCrop", "Pad", "PhotoMetricDistortion", "RandomFlip", "Rescale", "mmseg_test_pipeline",
    "mmseg_train_pipeline", "reduce_zero_label", "rescale_size",
]

MMSEG_SCALE = (2048, 512)  # (long side at most, short side at most), MMSegmentation's ADE20K img_scale
MMSEG_CROP = (512, 512)


def _v2() -> Any:
    """``torchvision.transforms.v2.functional``, or a one-line ImportError naming the extra."""
    try:
        from torchvision.transforms.v2 import functional  # optional extra, only where a transform runs
    except ImportError:
        raise ImportError("the MMSegmentation pipeline (pipeline=mmseg) needs torchvision: "
                          "pip install 'wavevision[vision]'") from None
    return functional


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _coin(p: float, generator: torch.Generator | None) -> bool:
    return float(torch.rand((), generator=generator)) < p


def reduce_zero_label(label: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """MMSegmentation's ``reduce_zero_label``: class 0 ("other") -> ``ignore_index``, ``k`` -> ``k - 1``."""
    out = label.long() - 1
    return out.masked_fill_(out < 0, ignore_index)


def rescale_size(height: int, width: int, scale: Sequence[int]) -> tuple[int, int]:
    """The ``(H, W)`` MMCV's keep-ratio ``imrescale`` gives: the largest factor that keeps the long
    side within ``max(scale)`` and the short side within ``min(scale)``, sides rounded half up."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


class Rescale:
    """Resize keeping the aspect ratio to ``scale`` (``(long, short)`` bounds, :func:`rescale_size`),
    first multiplied by a ratio drawn uniformly from ``ratio_range`` when given (MMSeg's
    ``Resize(img_scale, ratio_range, keep_ratio=True)``). Images bilinear without antialiasing
    (OpenCV's ``INTER_LINEAR``, as MMCV), labels nearest."""

    def __init__(self, scale: Sequence[int] = MMSEG_SCALE, ratio_range: Sequence[float] | None = None, *,
                 generator: torch.Generator | None = None) -> None:
        self.scale = to_size(scale, "scale")
        if ratio_range is not None:
            low, high = (check_float("ratio_range", r, gt=0.0) for r in ratio_range)
            if low > high:
                raise ValueError(f"ratio_range must be (low, high) with low <= high, got {tuple(ratio_range)}")
            ratio_range = (low, high)
        self.ratio_range, self.generator = ratio_range, generator

    def target_scale(self) -> tuple[int, int]:
        """The ``(long, short)`` bounds of one call: the scale times a random ratio (MMSeg's ``int(s * r)``)."""
        if self.ratio_range is None:
            return self.scale
        low, high = self.ratio_range
        ratio = _uniform(low, high, self.generator)
        return max(1, int(self.scale[0] * ratio)), max(1, int(self.scale[1] * ratio))

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        F = _v2()
        size = list(rescale_size(image.shape[-2], image.shape[-1], self.target_scale()))
        image = F.resize(image, size, interpolation=F.InterpolationMode.BILINEAR, antialias=False)
        label = F.resize(label[None], size, interpolation=F.InterpolationMode.NEAREST)[0]
        return image, label

    def __repr__(self) -> str:
        return f"Rescale(scale={self.scale}, ratio_range={self.ratio_range})"


class CatMaxRatioCrop:
    """A random ``size`` crop (the whole side where the image is smaller) of image and label;
    with ``cat_max_ratio`` below 1 a crop is drawn again (up to ``tries`` times, then the last one
    drawn is kept) while it holds fewer than two classes or its most frequent class covers
    ``cat_max_ratio`` or more of its labelled pixels (``ignore_index`` not counted), as MMSeg's
    ``RandomCrop``."""

    def __init__(self, size: Sequence[int] | int = MMSEG_CROP, cat_max_ratio: float = 1.0, *,
                 ignore_index: int = IGNORE_INDEX, tries: int = 10, generator: torch.Generator | None = None) -> None:
        self.size = to_size(size, "crop_size")
        self.cat_max_ratio = check_float("cat_max_ratio", cat_max_ratio, gt=0.0, max=1.0)
        self.ignore_index, self.tries = ignore_index, check_int("tries", tries, min=0)
        self.generator = generator

    def draw(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of one random window inside a ``height x width`` image."""
        h, w = min(self.size[0], height), min(self.size[1], width)
        top = int(torch.randint(0, height - h + 1, (), generator=self.generator))
        left = int(torch.randint(0, width - w + 1, (), generator=self.generator))
        return top, left, h, w

    def acceptable(self, label: torch.Tensor) -> bool:
        """True when ``label`` (a crop) holds two classes or more and none covers ``cat_max_ratio``."""
        counts = torch.bincount(label[label != self.ignore_index].flatten())
        counts = counts[counts > 0]
        return len(counts) > 1 and float(counts.max()) / float(counts.sum()) < self.cat_max_ratio

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = label.shape[-2:]
        top, left, h, w = self.draw(height, width)
        if self.cat_max_ratio < 1.0:
            for _ in range(self.tries):
                if self.acceptable(label[top:top + h, left:left + w]):
                    break
                top, left, h, w = self.draw(height, width)
        return image[..., top:top + h, left:left + w], label[top:top + h, left:left + w]

    def __repr__(self) -> str:
        return f"CatMaxRatioCrop(size={self.size}, cat_max_ratio={self.cat_max_ratio})"


class RandomFlip:
    """Flip image and label left-right together with probability ``p``."""

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        self.p, self.generator = check_float("p", p, min=0.0, max=1.0), generator

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if _coin(self.p, self.generator):
            F = _v2()
            return F.horizontal_flip(image), F.horizontal_flip(label)
        return image, label

    def __repr__(self) -> str:
        return f"RandomFlip(p={self.p})"


def _rgb_to_hsv(image: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] -> HSV with hue in [0, 1) (a full turn is 1)."""
    r, g, b = image.unbind(0)
    high, _ = image.max(0)
    low, _ = image.min(0)
    span = high - low
    safe = torch.where(span > 0, span, torch.ones_like(span))
    hue = torch.where(high == r, (g - b) / safe, torch.where(high == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(span > 0, hue / 6.0, torch.zeros_like(hue)) % 1.0
    sat = torch.where(high > 0, span / torch.where(high > 0, high, torch.ones_like(high)), torch.zeros_like(high))
    return torch.stack([hue, sat, high])


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    hue, sat, val = hsv.unbind(0)
    k = (torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype).view(3, 1, 1) + hue * 6.0) % 6.0
    return val - val * sat * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


class PhotoMetricDistortion:
    """MMSegmentation's ``PhotoMetricDistortion``, each step with probability 0.5: brightness
    ``+ U(-brightness_delta, brightness_delta)`` (on the 0-255 scale), contrast ``x U(contrast_range)``
    before or after the HSV steps (a coin decides), saturation ``x U(saturation_range)`` of the HSV
    S channel, hue ``+ randint(-hue_delta, hue_delta)`` in OpenCV's half-degree units; clipped to the
    valid range after every step. The label is returned unchanged.

    Not ``v2.ColorJitter``: ColorJitter scales brightness instead of adding to it, blends contrast
    towards the grey mean and saturation towards greyscale instead of multiplying the pixel values
    and the S channel, and shuffles all four steps; these would train on different images than the
    published numbers. Values stay float (MMSeg truncates to uint8 after each step; at most 1/255).
    """

    def __init__(self, brightness_delta: float = 32, contrast_range: Sequence[float] = (0.5, 1.5),
                 saturation_range: Sequence[float] = (0.5, 1.5), hue_delta: int = 18, *,
                 generator: torch.Generator | None = None) -> None:
        self.brightness_delta = check_float("brightness_delta", brightness_delta, min=0.0, max=255.0)
        self.contrast_range = tuple(check_float("contrast_range", c, min=0.0) for c in contrast_range)
        self.saturation_range = tuple(check_float("saturation_range", s, min=0.0) for s in saturation_range)
        self.hue_delta = check_int("hue_delta", hue_delta, min=0, max=180)
        self.generator = generator

    def _contrast(self, image: torch.Tensor) -> torch.Tensor:
        if _coin(0.5, self.generator):
            low, high = self.contrast_range
            image = (image * _uniform(low, high, self.generator)).clamp_(0.0, 1.0)
        return image

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        if _coin(0.5, g):
            delta = _uniform(-self.brightness_delta, self.brightness_delta, g) / 255.0
            image = (image + delta).clamp(0.0, 1.0)
        contrast_first = _coin(0.5, g)
        if contrast_first:
            image = self._contrast(image)
        saturate = _coin(0.5, g)
        factor = _uniform(self.saturation_range[0], self.saturation_range[1], g) if saturate else 1.0
        shift_hue = _coin(0.5, g) and self.hue_delta > 0
        # as numpy's randint(-d, d), d excluded: shifts of -d .. d - 1 half-degrees (OpenCV's hue is 0..179)
        shift = int(torch.randint(-self.hue_delta, self.hue_delta, (), generator=g)) if shift_hue else 0
        if saturate or shift_hue:
            hsv = _rgb_to_hsv(image)
            hsv[1] = (hsv[1] * factor).clamp_(0.0, 1.0)
            hsv[0] = (hsv[0] + shift / 180.0) % 1.0
            image = _hsv_to_rgb(hsv).clamp_(0.0, 1.0)
        if not contrast_first:
            image = self._contrast(image)
        return image, label

    def __repr__(self) -> str:
        return (f"PhotoMetricDistortion(brightness_delta={self.brightness_delta}, contrast_range={self.contrast_range}, "
                f"saturation_range={self.saturation_range}, hue_delta={self.hue_delta})")


class Pad:
    """Pad bottom and right up to ``size`` (image with ``fill``, label with ``label_fill``), as MMCV's ``impad``."""

    def __init__(self, size: Sequence[int] | int = MMSEG_CROP, fill: float = 0.0, label_fill: int = IGNORE_INDEX) -> None:
        self.size, self.fill, self.label_fill = to_size(size, "pad size"), float(fill), int(label_fill)

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bottom, right = max(0, self.size[0] - image.shape[-2]), max(0, self.size[1] - image.shape[-1])
        if not (bottom or right):
            return image, label
        F = _v2()
        padding = [0, 0, right, bottom]  # left, top, right, bottom
        return F.pad(image, padding, fill=self.fill), F.pad(label[None], padding, fill=self.label_fill)[0]

    def __repr__(self) -> str:
        return f"Pad(size={self.size}, fill={self.fill}, label_fill={self.label_fill})"


def mmseg_train_pipeline(*, scale: Sequence[int] = MMSEG_SCALE, ratio_range: Sequence[float] = (0.5, 2.0),
                         crop_size: Sequence[int] | int = MMSEG_CROP, cat_max_ratio: float = 0.75, flip: float = 0.5,
                         mean: Sequence[float], std: Sequence[float], ignore_index: int = IGNORE_INDEX,
                         generator: torch.Generator | None = None) -> Compose:
    """MMSegmentation's ADE20K train pipeline (after loading and ``reduce_zero_label``); ``mean``/``std``
    on the [0, 1] scale. One ``generator`` (None: torch's global one) drives every random step."""
    _v2()
    return Compose([
        Rescale(scale, ratio_range, generator=generator),
        CatMaxRatioCrop(crop_size, cat_max_ratio, ignore_index=ignore_index, generator=generator),
        RandomFlip(flip, generator=generator),
        PhotoMetricDistortion(generator=generator),
        Normalize(mean, std),
        Pad(crop_size, 0.0, ignore_index),
    ])


def mmseg_test_pipeline(*, scale: Sequence[int] = MMSEG_SCALE, mean: Sequence[float], std: Sequence[float]) -> Compose:
    """MMSegmentation's single-scale ADE20K test pipeline: keep-ratio rescale to ``scale``, normalise."""
    _v2()
    return Compose([Rescale(scale), Normalize(mean, std)])
