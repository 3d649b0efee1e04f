"""What every dataset shares: its description (:class:`DatasetInfo`), the registry behind
:func:`build_dataset` (in :mod:`._build`), split names, seeded hold-outs and errors that suggest the right choice."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.task_names import check_task
from ..utils.validate import check_choice, check_int

__all__ = [
    "SPLITS",
    "DatasetInfo",
    "check_split",
    "holdout_split",
    "register_dataset",
    "reject_unknown_options",
    "split_source",
    "sr_scale",
    "three_way_split",
]

SPLITS = ("train", "val", "test")

# A fixed seed for every split this package carves itself: the same samples land in the same
# split on every machine and in every run, whatever the training seed.
SPLIT_SEED = 0
# The most samples a dataset option may ask to be made (scenes; patches per epoch: 10x this).
MAX_COUNT = 1_000_000


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the training engine need to know about a dataset.

    Attributes:
        name: registered name (``"digits"``, ``"cifar10"``, ``"imagefolder"`` ...).
        task: ``"classification"``, ``"segmentation"``, ``"super_resolution"``, ``"detection"``
            or a task registered with :func:`wavevision.engine.register_task`.
        in_chans: channels of the input images the dataset yields.
        num_classes: classes (classification, segmentation), else ``None``.
        class_names: one name per class, or ``None``.
        image_size: ``(H, W)`` of every sample when fixed (for super-resolution: of the
            high-resolution target), else ``None`` (sizes vary: evaluate with batch size 1).
        mean, std: the per-channel normalisation applied to inputs (``()`` when none, as for
            super-resolution, whose inputs and targets stay in [0, 1]).
        ignore_index: label of pixels to ignore (segmentation: 255).
        scale: super-resolution factor (2, 4 or 8).
    """

    name: str
    task: str
    in_chans: int
    num_classes: int | None
    class_names: tuple[str, ...] | None
    image_size: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    ignore_index: int | None = None
    scale: int | None = None

    def __post_init__(self) -> None:
        # accept lists (an info read back from JSON) but keep the fields hashable tuples
        for key in ("class_names", "image_size", "mean", "std"):
            value = getattr(self, key)
            if isinstance(value, list):
                object.__setattr__(self, key, tuple(value))
        check_task(self.task, f"DatasetInfo {self.name!r}")
        if len(self.mean) != len(self.std) or (self.mean and len(self.mean) != self.in_chans):
            raise ValueError(
                f"DatasetInfo of {self.name!r}: mean/std need one value per input channel "
                f"({self.in_chans}), got {len(self.mean)} and {len(self.std)}"
            )
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"DatasetInfo of {self.name!r}: {len(self.class_names)} class names for "
                f"{self.num_classes} classes"
            )


Builder = Callable[..., "tuple[Dataset, DatasetInfo]"]
_BUILDERS: dict[str, Builder] = {}
_NEEDS_ROOT: set[str] = set()


def register_dataset(name: str, *, needs_root: bool = True) -> Callable[[Builder], Builder]:
    """Register ``fn(split, *, root, download, augment, **options) -> (dataset, info)`` as ``name``.

    ``needs_root=False`` marks embedded datasets that work without a path.
    """

    def wrap(fn: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _BUILDERS[name] = fn
        if needs_root:
            _NEEDS_ROOT.add(name)
        return fn

    return wrap




def check_split(split: str, splits: Sequence[str] = SPLITS) -> str:
    check_choice("split", split, splits)
    return split


def reject_unknown_options(name: str, options: dict[str, Any], known: Iterable[str]) -> None:
    """Raise ``ValueError`` when ``options`` holds keys the dataset does not take."""
    known = sorted(known)
    for key in options:
        if key not in known:
            check_choice(f"option of dataset {name!r}", key, known)


def sr_scale(value: Any, name: str) -> int:
    """The super-resolution factor option: 2, 4 or 8."""
    if isinstance(value, bool) or value not in (2, 4, 8):
        raise ValueError(f"scale must be 2, 4 or 8, got {value!r} (dataset {name!r})")
    return int(value)


def holdout_split(
    n: int, split: str, size: int | None = None, *, seed: int = SPLIT_SEED
) -> torch.Tensor:
    """Indices of ``split`` ("train" or "val") when a validation set is carved out of ``n``
    training samples: a fixed seeded permutation; ``size`` defaults to 10 % of ``n``
    (at least 1, at most 10,000)."""
    if size is None:
        size = min(max(1, round(0.1 * n)), 10_000)
    size = check_int("val_size", size)
    if not 0 < size < n:
        raise ValueError(f"val_size must be between 1 and {n - 1} (the training set has {n} samples), got {size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    chosen = perm[:size] if split == "val" else perm[size:]
    return chosen.sort().values


def split_source(split: str, *, has_val: bool, has_test: bool) -> tuple[str, str | None]:
    """Which official split serves ``split``, and which part of a seeded hold-out of it.

    The rule for every dataset: ``test`` is the official labelled test split, or the official
    validation split when the test labels are not public (ImageNet, Tiny-ImageNet, Places-365,
    Cityscapes, DIV2K); ``val`` is the official validation split only when a labelled test
    split exists too, otherwise a fixed seeded hold-out from train (:func:`holdout_split`),
    so model selection never sees the data results are reported on.

    Returns ``(official split, part)`` where ``part`` is ``None`` (all of it) or ``"train"``/
    ``"val"`` (that part of the hold-out of the official train split).
    """
    if not (has_val or has_test):
        raise ValueError("no official val or test split: use three_way_split")
    if split == "test":
        return ("test", None) if has_test else ("val", None)
    if has_val and has_test:
        return split, None
    return "train", split


def three_way_split(n: int, split: str, *, test_fraction: float = 0.1, val_fraction: float = 0.1,
                    seed: int = SPLIT_SEED) -> torch.Tensor:
    """Indices of ``split`` for data that comes without any split: a fixed seeded permutation,
    ``test_fraction`` for test, ``val_fraction`` for val, the rest train."""
    n_test, n_val = max(1, round(test_fraction * n)), max(1, round(val_fraction * n))
    if n_test + n_val >= n:
        raise ValueError(f"{n} samples are too few to split into train, val and test; add data")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}
    return parts[split].sort().values
