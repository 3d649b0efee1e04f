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
import math
import stat
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils.memory import check_memory
from ..utils.validate import check_choice
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source
from .datasets import TensorClassification, channel_stats, check_labels, resize_stack
from .downloads import fetch_dataset
from .transforms import to_size, train_transform

__all__ = ["EMNIST_SUBSETS", "find_idx_file", "read_idx"]

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Deflate expands at most about 1032:1, so a gzip file cannot hold more than this many times its size.
_MAX_GZIP_RATIO = 1032
_MAX_IDX_DIMS = 4
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
_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {"mnist": ((0.1307,), (0.3081,)), "fashion-mnist": ((0.2860,), (0.3530,))}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or raw, told apart by content) into an array.

    The header's dimensions are checked against the file's size before the data is read, and
    only the bytes they declare are ever decompressed, so a damaged header or a gzip bomb
    fails in one line instead of filling memory.

    Raises:
        ValueError: naming the file when the header is not IDX, declares more data than the
            file can hold, or the data is cut short.
    """
    where = repr(str(path))
    size = _regular_file_size(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with (gzip.GzipFile(fileobj=raw) if compressed else raw) as stream:
                dtype, dims = _read_idx_header(cast(BinaryIO, stream), where)
                header = 4 + 4 * len(dims)
                need = math.prod(dims) * dtype.itemsize
                if compressed and need > size * _MAX_GZIP_RATIO:
                    raise ValueError(f"{where} is truncated: dimensions {dims} need {need} bytes of data, more than "
                                     f"a gzip file of {size} bytes holds; download it again")
                if not compressed and need > size - header:
                    raise ValueError(f"{where} is truncated: dimensions {dims} need {need} bytes of data, found "
                                     f"{size - header}; download it again")
                check_memory(need, f"reading {where} ({' x '.join(map(str, dims))} values)",
                             "use a machine with more memory, or check that the file is the dataset's")
                data = stream.read(need)
                if compressed:  # one byte more: at the stream's end gzip checks its CRC (data past it stays unread)
                    stream.read(1)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"cannot read {where} ({e}); the file is damaged, download it again") from None
    if len(data) < need:
        raise ValueError(f"{where} is truncated: dimensions {dims} need {need} bytes of data, found {len(data)}; "
                         "download it again")
    return np.frombuffer(data, dtype, count=math.prod(dims)).reshape(dims).astype(dtype.newbyteorder("="))


def _regular_file_size(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"IDX file {str(path)!r} is not a regular file; replace it with the real file")
    return st.st_size


def _read_idx_header(stream: BinaryIO, where: str) -> tuple[np.dtype, tuple[int, ...]]:
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
        raise ValueError(f"{where} is not an IDX file (bad header {magic.hex()}); expected MNIST-style idx1/idx3 files")
    ndim = magic[3]
    if not 1 <= ndim <= _MAX_IDX_DIMS:
        raise ValueError(f"{where} declares {ndim} dimensions (IDX files of images and labels have 1 to "
                         f"{_MAX_IDX_DIMS}); the file is damaged, download it again")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(f"{where} is truncated (header cut short); download it again")
    return np.dtype(_IDX_TYPES[magic[2]]), struct.unpack(f">{ndim}I", raw_dims)


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
