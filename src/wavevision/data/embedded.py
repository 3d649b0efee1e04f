"""Real datasets that work on a fresh machine without a download.

* ``digits``: scikit-learn's 1,797 handwritten digits (8x8, values 0..16), scaled to [0, 1] and
  upsampled bilinearly to 16x16 (option ``image_size``); a fixed seeded split stratified by
  class: per class 20 % test, 10 % val, the rest train (1,259 / 179 / 359 images).
* ``digit-scenes``: segmentation scenes composed from those digits, each split from the matching
  digits split (no digit appears in two splits); 64x64 scenes with 2-4 digits, pixel label 0
  for background and d + 1 for digit d (11 classes).
* ``photos``: super-resolution on scikit-image's bundled colour photographs (a fixed list below):
  training patches from some, validation and test on held-out ones.
"""
from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._base import SPLIT_SEED, DatasetInfo, register_dataset, reject_unknown_options
from .datasets import TensorClassification
from .transforms import Compose, Normalize, RandomCrop, to_size

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "digit_split_indices", "load_digits_tensor"]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
# Mean and std of the 16x16 training split (computed once; fixed so inputs never shift).
DIGITS_MEAN = (0.3062,)
DIGITS_STD = (0.3194,)
_DIGIT_FRACTIONS = {"test": 0.2, "val": 0.1}


def _need(module: str, extra: str = "data"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this dataset needs {module.split('.')[0]}: pip install 'wavevision[{extra}]'") from None


@functools.lru_cache(maxsize=1)
def load_digits_tensor() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as float32 ``(1797, 1, 8, 8)`` in [0, 1] (values / 16) and labels."""
    datasets = _need("sklearn.datasets")
    bunch = datasets.load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(bunch.target, dtype=torch.int64)


def digit_split_indices(split: str) -> torch.Tensor:
    """Indices into scikit-learn's digits of ``split``: per class a fixed seeded permutation,
    the first 20 % (rounded) test, the next 10 % val, the rest train."""
    _, labels = load_digits_tensor()
    g = torch.Generator().manual_seed(SPLIT_SEED)
    chosen = []
    for c in range(10):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = round(_DIGIT_FRACTIONS["test"] * len(idx))
        n_val = round(_DIGIT_FRACTIONS["val"] * len(idx))
        parts = {"test": idx[:n_test], "val": idx[n_test:n_test + n_val], "train": idx[n_test + n_val:]}
        chosen.append(parts[split])
    return torch.cat(chosen).sort().values


def upsample_digits(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of [0, 1] digit images (no overshoot, so values stay in [0, 1])."""
    if tuple(images.shape[-2:]) == size:
        return images
    antialias = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=antialias)


@register_dataset("digits", needs_root=False)
def build_digits(split: str, *, root=None, download: bool = False, augment: bool = False,
                 **options: Any) -> tuple[Dataset, DatasetInfo]:
    """Options: ``image_size`` (int or (H, W), default 16)."""
    reject_unknown_options("digits", options, ["image_size"])
    size = to_size(options.get("image_size", 16), "image_size")
    images, labels = load_digits_tensor()
    idx = digit_split_indices(split)
    x = upsample_digits(images[idx], size)
    steps: list = []
    if augment:
        # digits must not be mirrored; a shift of 1/8 of the size keeps them whole
        steps.append(RandomCrop(size, padding=max(1, size[0] // 8)))
    steps.append(Normalize(DIGITS_MEAN, DIGITS_STD))
    info = DatasetInfo(
        name="digits", task="classification", in_chans=1, num_classes=10, class_names=DIGIT_CLASSES,
        image_size=size, mean=DIGITS_MEAN, std=DIGITS_STD,
    )
    return TensorClassification(x, labels[idx], Compose(steps)), info
