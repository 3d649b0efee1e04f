"""MNIST, Fashion-MNIST and EMNIST from their IDX files (gzip-compressed or raw).

Files are looked for in ``root``, ``root/raw``, ``root/<MNIST|FashionMNIST|EMNIST>/raw`` and
``root/gzip`` (the layouts of the official archives and of torchvision). There is no official
validation split: ``val`` is a fixed seeded hold-out of 10 % of the training images (at most
10,000; option ``val_size``), ``train`` the rest, ``test`` the official test set.
EMNIST images are stored transposed (they are turned upright here) and the ``letters`` subset
numbers its classes from 1 (shifted to start at 0).
"""
from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ._base import DatasetInfo, check_choice, holdout_split, register_dataset, reject_unknown_options, split_source
from .datasets import TensorClassification, channel_stats, check_labels, resize_stack
from .transforms import to_size, train_transform

__all__ = ["EMNIST_SUBSETS", "find_idx_file", "read_idx"]

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "emnist": "EMNIST"}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
_DIGITS = tuple("0123456789")
_UPPER = tuple(chr(c) for c in range(ord("A"), ord("Z") + 1))
_LOWER = tuple(chr(c) for c in range(ord("a"), ord("z") + 1))
# EMNIST's subsets and their classes (balanced and bymerge merge the lowercase letters that look
# like their capitals, keeping a b d e f g h n q r t).
EMNIST_SUBSETS: dict[str, tuple[str, ...]] = {
    "balanced": _DIGITS + _UPPER + tuple("abdefghnqrt"),
    "bymerge": _DIGITS + _UPPER + tuple("abdefghnqrt"),
    "byclass": _DIGITS + _UPPER + _LOWER,
    "digits": _DIGITS,
    "letters": _LOWER,
    "mnist": _DIGITS,
}
# Normalisation of the official training images (well-known values); EMNIST's are computed.
_STATS = {"mnist": ((0.1307,), (0.3081,)), "fashion-mnist": ((0.2860,), (0.3530,))}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or raw, told apart by content) into an array.

    Raises ``ValueError`` naming the file when the header is not IDX or the data is cut short.
    """
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"cannot read {str(path)!r} ({e}); the file is damaged, download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad header {data[:4].hex()}); "
                         "expected MNIST-style idx1/idx3 files")
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{str(path)!r} is truncated (header cut short); download it again")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    need = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header < need:
        raise ValueError(f"{str(path)!r} is truncated: dimensions {dims} need {need} bytes of data, "
                         f"found {len(data) - header}; download it again")
    return np.frombuffer(data, dtype, count=int(np.prod(dims)), offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _folders(root: Path, name: str) -> list[Path]:
    return [root, root / "raw", root / _FOLDERS[name] / "raw", root / _FOLDERS[name], root / "gzip"]


def find_idx_file(root: Path, name: str, stem: str) -> Path:
    """The IDX file ``stem`` (or ``stem.gz``) of dataset ``name`` under ``root``."""
    for folder in _folders(root, name):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    looked = ", ".join(str(f) for f in _folders(root, name))
    raise FileNotFoundError(f"{name}: no {stem}[.gz] under {str(root)!r} (looked in {looked}); "
                            "point root at the folder holding the IDX files"
                            + (", or pass download=True" if name != "emnist" else ""))


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime: int) -> np.ndarray:
    return read_idx(path)


def _read(path: Path) -> np.ndarray:
    return _load(path, path.stat().st_mtime_ns)


def _stems(name: str, subset: str | None, part: str) -> tuple[str, str]:
    prefix = "train" if part == "train" else "t10k"
    if name == "emnist":
        prefix = f"emnist-{subset}-{'train' if part == 'train' else 'test'}"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _images_and_labels(root: Path, name: str, subset: str | None, part: str, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    image_stem, label_stem = _stems(name, subset, part)
    image_path, label_path = find_idx_file(root, name, image_stem), find_idx_file(root, name, label_stem)
    images, labels = _read(image_path), _read(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{str(image_path)!r} should hold uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{str(label_path)!r} holds {labels.shape} labels for {len(images)} images in "
                         f"{str(image_path)!r}; they must match")
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    if name == "emnist":
        x = x.transpose(-1, -2).contiguous()  # stored column-major
        if subset == "letters":
            if len(y) and int(y.min()) < 1:
                raise ValueError(f"{str(label_path)!r}: EMNIST letters labels run 1..26, found {int(y.min())}")
            y = y - 1
    check_labels(y, classes, repr(str(label_path)))
    return x, y


def _build(name: str, split: str, root: Path | None, download: bool, augment: bool, options: dict[str, Any]):
    known = ["image_size", "val_size", "base_url"] + (["subset"] if name == "emnist" else [])
    reject_unknown_options(name, options, known)
    if download:
        from .downloads import fetch_dataset

        root = fetch_dataset(name, root, base_url=options.get("base_url"))
    assert root is not None
    subset = None
    if name == "emnist":
        subset = options.get("subset", "letters")
        check_choice("EMNIST subset", subset, sorted(EMNIST_SUBSETS))
        class_names = EMNIST_SUBSETS[subset]
    else:
        class_names = FASHION_CLASSES if name == "fashion-mnist" else _DIGITS
    source, part = split_source(split, has_val=False, has_test=True)
    x, y = _images_and_labels(root, name, subset, source, len(class_names))
    if name in _STATS:
        mean, std = _STATS[name]
    else:
        mean, std = channel_stats(x if source == "train" else _images_and_labels(root, name, subset, "train", len(class_names))[0])
    if part is not None:
        idx = holdout_split(len(x), part, options.get("val_size"))
        x, y = x[idx], y[idx]
    size = to_size(options.get("image_size", tuple(x.shape[-2:])), "image_size")
    x = resize_stack(x, size)
    # digits, letters and clothes are not mirror-symmetric: shifts only
    transform = train_transform(size, mean, std, augment=augment, hflip=False)
    info = DatasetInfo(name=name, task="classification", in_chans=1,
                       num_classes=len(class_names), class_names=class_names, image_size=size, mean=mean, std=std)
    return TensorClassification(x, y, transform), info


@register_dataset("mnist")
def build_mnist(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """MNIST (10 digits, 60,000 + 10,000 images of 28x28). Options: ``image_size``, ``val_size``, ``base_url``."""
    return _build("mnist", split, root, download, augment, options)


@register_dataset("fashion-mnist")
def build_fashion_mnist(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Fashion-MNIST (10 clothes classes, 60,000 + 10,000 images of 28x28). Options as MNIST."""
    return _build("fashion-mnist", split, root, download, augment, options)


@register_dataset("emnist")
def build_emnist(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """EMNIST from its ``gzip/emnist-<subset>-*`` files. Options: ``subset`` (letters (default),
    balanced, byclass, bymerge, digits, mnist), ``image_size``, ``val_size``."""
    return _build("emnist", split, root, download, augment, options)
