"""The registry's entry points: :func:`build_dataset`, :func:`list_datasets` and the checks made
before a dataset is read. This module sits above every dataset module (they register themselves in
:mod:`._base` when imported here), so the registry is complete whenever these run."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..utils.validate import PathLike, check_choice

# The dataset modules register themselves on import.
from . import ade20k, cifar, cityscapes, coco, digit_objects, embedded, folders, galaxy10, idx, sr, voc  # noqa: F401
from ._base import _BUILDERS, _NEEDS_ROOT, DatasetInfo, check_split
from .detect import detect_format
from .downloads import DOWNLOADS, cache_dir

__all__ = ["build_dataset", "check_dataset_source", "list_datasets"]


def list_datasets() -> list[str]:
    """Names :func:`build_dataset` accepts (a path is accepted too: its format is detected)."""
    return sorted(_BUILDERS)


def _looks_like_path(name: str) -> bool:
    return os.sep in name or (os.altsep is not None and os.altsep in name) or os.path.exists(name)


def build_dataset(
    name: str,
    split: str,
    *,
    root: PathLike | None = None,
    download: bool = False,
    augment: bool = False,
    **options: Any,
) -> tuple[Dataset, DatasetInfo]:
    """Build one split of a dataset and describe it.

    Args:
        name: a registered name (see :func:`list_datasets`) or a path, whose format is then
            detected (``root`` must be ``None`` then).
        split: ``"train"``, ``"val"`` or ``"test"``. Model selection uses ``"val"`` only;
            datasets without a labelled validation split get a fixed seeded hold-out from train.
        root: the dataset folder or file for local formats (not needed by ``digits``,
            ``digit-scenes``, ``photos``; with ``download=True`` defaults to the cache).
        download: fetch the files first when the dataset has a public URL (MNIST,
            Fashion-MNIST, CIFAR-10/100); files are verified against their checksums.
        augment: apply the training augmentations.
        **options: dataset options (``image_size``, ``scale``, ``patch_size`` ...); unknown
            options raise ``ValueError``.

    Returns:
        ``(dataset, info)``. Samples are ``(image, label)`` for classification,
        ``(image, mask)`` for segmentation and ``(lr, hr)`` for super-resolution.
    """
    name, root = check_dataset_source(name, split, root=root, download=download)
    return _BUILDERS[name](split, root=root, download=download, augment=augment, **options)


def check_dataset_source(name: str, split: str, *, root: PathLike | None = None,
                         download: bool = False) -> tuple[str, Path | None]:
    """The checks :func:`build_dataset` makes before reading anything: a known name (or a path whose
    format is detected), a split, and a ``root`` that exists (unless it will be downloaded).

    Callers that fetch something slow first (released weights) call it before, so a wrong path is
    named at once. Returns ``(name, root)`` as :func:`build_dataset` uses them.
    """
    if not isinstance(name, str):
        name = os.fspath(name)
    if name not in _BUILDERS and _looks_like_path(name):
        if root is not None:
            raise ValueError(f"dataset name {name!r} is a path and root={root!r} is given too: pass one")
        root, name = name, detect_format(name)
    check_choice("dataset", name, sorted(_BUILDERS), hint=" (or a path to a dataset folder or file)")
    check_split(split)
    downloadable = _downloadable()
    if name in _NEEDS_ROOT:
        if download and name not in downloadable:
            raise ValueError(f"dataset {name!r} has no download: pass root=PATH to its files (downloadable: "
                             f"{', '.join(sorted(downloadable))})")
        if root is None and not download:
            if name in downloadable and (cache_dir() / name).is_dir():
                root = cache_dir() / name  # downloaded by an earlier run
            else:
                raise ValueError(f"dataset {name!r} reads local files: pass root=PATH (the dataset folder)"
                                 + (", or download=True" if name in downloadable else ""))
    if root is not None:
        root = Path(root).expanduser()
        if not download and not root.exists():
            raise FileNotFoundError(f"dataset path {str(root)!r} does not exist; check the path")
    return name, root


def _downloadable() -> set[str]:
    return set(DOWNLOADS)
