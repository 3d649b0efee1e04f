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

from ..utils.memory import check_memory
from ..utils.validate import check_int
from ._base import MAX_COUNT, SPLIT_SEED, DatasetInfo, register_dataset, reject_unknown_options, sr_scale
from .datasets import SuperResolutionPairs, TensorClassification, TensorSegmentation
from .image import as_uint8, convert_channels, load_image
from .transforms import IGNORE_INDEX, MAX_SIDE, to_size, train_transform

__all__ = [
    "DIGITS_MEAN",
    "DIGITS_STD",
    "PHOTOS",
    "SCENE_COUNTS",
    "compose_scenes",
    "digit_split_indices",
    "load_digits_tensor",
]

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
    check_memory(len(idx) * size[0] * size[1] * 4, f"resizing {len(idx):,} images to {size[0]}x{size[1]}",
                 "use a smaller image_size (--dataset-arg image_size=N)")
    x = upsample_digits(images[idx], size)
    # digits must not be mirrored: shifts only
    transform = train_transform(size, DIGITS_MEAN, DIGITS_STD, augment=augment, hflip=False)
    info = DatasetInfo(
        name="digits", task="classification", in_chans=1, num_classes=10, class_names=DIGIT_CLASSES,
        image_size=size, mean=DIGITS_MEAN, std=DIGITS_STD,
    )
    return TensorClassification(x, labels[idx], transform), info


# ---------------------------------------------------------------------------------------------
# digit-scenes

SCENE_COUNTS = {"train": 1000, "val": 200, "test": 200}
SCENE_CLASSES = ("background",) + tuple(f"digit {d}" for d in range(10))
SCENES_MEAN = (0.0886,)
SCENES_STD = (0.2236,)
_SCENE_SEEDS = {"train": 1, "val": 2, "test": 3}
# A pixel belongs to a digit where its ink reaches 5/16 of full intensity.
INK_THRESHOLD = 5 / 16
# More digits than fit a scene are only attempts that fail (each one 50 tries).
MAX_DIGITS_PER_SCENE = 16


class Scenes:
    """Scenes composed from digits: images, masks and, per scene, where each digit went:
    ``layout[i]`` lists ``(digit index, top, left, side)``."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, layout: list[list[tuple[int, int, int, int]]]) -> None:
        self.images, self.masks, self.layout = images, masks, layout


def compose_scenes(
    digits: torch.Tensor,
    labels: torch.Tensor,
    count: int,
    *,
    size: tuple[int, int] = (64, 64),
    per_scene: tuple[int, int] = (2, 4),
    digit_sizes: tuple[int, int] = (16, 24),
    seed: int = SPLIT_SEED,
) -> Scenes:
    """Compose ``count`` scenes from ``digits`` ``(M, 1, 8, 8)`` in [0, 1]: each holds
    ``per_scene`` digits (inclusive range) drawn at random, each upsampled bilinearly to a random
    square size in ``digit_sizes`` and placed where it overlaps no other digit's box.
    Masks label background 0 and ink of digit d (>= ``INK_THRESHOLD``) d + 1."""
    H, W = size
    lo, hi = per_scene
    if not 1 <= lo <= hi <= MAX_DIGITS_PER_SCENE:
        raise ValueError(f"digits_per_scene must be (min, max) with 1 <= min <= max <= {MAX_DIGITS_PER_SCENE}, "
                         f"got {per_scene}")
    if digit_sizes[1] > min(H, W):
        raise ValueError(f"scene size {H}x{W} is smaller than a digit ({digit_sizes[1]} pixels); use image_size >= {digit_sizes[1]}")
    # float images and uint8 masks
    check_memory(count * H * W * 5, f"composing {count:,} scenes of {H}x{W}",
                 "use a smaller image_size or fewer num_scenes")
    g = torch.Generator().manual_seed(seed)
    upsampled = {side: upsample_digits(digits, (side, side))[:, 0] for side in range(digit_sizes[0], digit_sizes[1] + 1)}
    inked = {side: up >= INK_THRESHOLD for side, up in upsampled.items()}
    images = torch.zeros(count, 1, H, W)
    masks = torch.zeros(count, H, W, dtype=torch.uint8)
    layout: list[list[tuple[int, int, int, int]]] = []
    for i in range(count):
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(int(torch.randint(lo, hi + 1, (), generator=g))):
            d = int(torch.randint(0, len(digits), (), generator=g))
            side = int(torch.randint(digit_sizes[0], digit_sizes[1] + 1, (), generator=g))
            for _attempt in range(50):
                top = int(torch.randint(0, H - side + 1, (), generator=g))
                left = int(torch.randint(0, W - side + 1, (), generator=g))
                if all(top + side <= t or t + s <= top or left + side <= lft or lft + s <= left for _, t, lft, s in placed):
                    break
            else:
                continue  # no free room for this digit: the scene keeps fewer
            placed.append((d, top, left, side))
            images[i, 0, top:top + side, left:left + side] = upsampled[side][d]
            masks[i, top:top + side, left:left + side] = inked[side][d] * (int(labels[d]) + 1)
        layout.append(placed)
    return Scenes(images, masks, layout)


def _size_pair(value: Any, what: str) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (min, max) pair of ints, got {value!r}") from None
    return check_int(what, lo), check_int(what, hi)


@register_dataset("digit-scenes", needs_root=False)
def build_digit_scenes(split: str, *, root=None, download: bool = False, augment: bool = False,
                       **options: Any) -> tuple[Dataset, DatasetInfo]:
    """Options: ``image_size`` (scene size, default 64), ``num_scenes`` (default 1000 / 200 /
    200 for train / val / test), ``digits_per_scene`` ((min, max), default (2, 4))."""
    reject_unknown_options("digit-scenes", options, ["image_size", "num_scenes", "digits_per_scene"])
    size = to_size(options.get("image_size", 64), "image_size")
    count = check_int("num_scenes", options.get("num_scenes", SCENE_COUNTS[split]), min=1, max=MAX_COUNT)
    per_scene = _size_pair(options.get("digits_per_scene", (2, 4)), "digits_per_scene")
    images, labels = load_digits_tensor()
    idx = digit_split_indices(split)
    scenes = compose_scenes(images[idx], labels[idx], count, size=size, per_scene=per_scene,
                            seed=SPLIT_SEED + _SCENE_SEEDS[split])
    # shifts only (mirrored digits are not digits); the padding is true background, label 0
    transform = train_transform(size, SCENES_MEAN, SCENES_STD, augment=augment, hflip=False, mask_fill=0)
    dataset = TensorSegmentation(scenes.images, scenes.masks, transform)
    # where each scene's digits came from: (index into scikit-learn's digits, top, left, side)
    dataset.layout = [[(int(idx[d]), t, lft, s) for d, t, lft, s in placed] for placed in scenes.layout]
    info = DatasetInfo(
        name="digit-scenes", task="segmentation", in_chans=1, num_classes=11, class_names=SCENE_CLASSES,
        image_size=size, mean=SCENES_MEAN, std=SCENES_STD, ignore_index=IGNORE_INDEX,
    )
    return dataset, info


# ---------------------------------------------------------------------------------------------
# photos

# scikit-image's bundled photographs (file names in skimage/data); grayscale ones are used as
# RGB with equal channels. The two motorcycle views are near copies, so only one is used.
PHOTOS = {
    "train": ("astronaut.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
              "retina.jpg", "brick.png", "grass.png", "gravel.png", "moon.png"),
    "val": ("rocket.jpg", "coins.png"),
    "test": ("chelsea.png", "camera.png"),
}


@functools.cache
def _photo(name: str) -> torch.Tensor:
    from pathlib import Path

    skdata = _need("skimage.data")
    return as_uint8(convert_channels(load_image(Path(skdata.__file__).parent / name), 3))


@register_dataset("photos", needs_root=False)
def build_photos(split: str, *, root=None, download: bool = False, augment: bool = False,
                 **options: Any) -> tuple[Dataset, DatasetInfo]:
    """Options: ``scale`` (2, 4 or 8, default 2); train: ``patch_size`` (high-resolution patch,
    default 64) and ``num_patches`` (per epoch, default 1000); val/test: ``eval_size`` (centre
    crop of each photo, default 256, so batches stack; ``None`` for whole photos)."""
    reject_unknown_options("photos", options, ["scale", "patch_size", "num_patches", "eval_size"])
    scale = sr_scale(options.get("scale", 2), "photos")
    images = [_photo(n) for n in PHOTOS[split]]
    if split == "train":
        patch = check_int("patch_size", options.get("patch_size", 64), min=1, max=MAX_SIDE)
        dataset = SuperResolutionPairs(images, scale, patch_size=patch, augment=augment,
                                       num_samples=check_int("num_patches", options.get("num_patches", 1000),
                                                             min=1, max=MAX_COUNT * 10))
        size: tuple[int, int] | None = (patch, patch)
    else:
        crop = options.get("eval_size", 256)
        crop = None if crop is None else check_int("eval_size", crop, min=1, max=MAX_SIDE)
        dataset = SuperResolutionPairs(images, scale, crop_size=crop)
        size = None if crop is None else (crop, crop)
    info = DatasetInfo(name="photos", task="super_resolution", in_chans=3, num_classes=None, class_names=None,
                       image_size=size, mean=(), std=(), scale=scale)
    return dataset, info
