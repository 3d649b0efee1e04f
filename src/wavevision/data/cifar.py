"""CIFAR-10 and CIFAR-100 from their python pickles (``cifar-10-batches-py``, ``cifar-100-python``).

``root`` is the folder holding ``cifar-10-batches-py`` (or ``cifar-100-python``) or that folder
itself. There is no official validation split: ``val`` is a fixed seeded hold-out of 5,000 of
the 50,000 training images (option ``val_size``), ``train`` the other 45,000, ``test`` the
official 10,000. CIFAR-100 takes ``label_mode="fine"`` (100 classes, default) or ``"coarse"``
(20 superclasses).

The pickles are read with an unpickler that only builds arrays, lists and dicts, so a
tampered file cannot run code.
"""
from __future__ import annotations

import functools
import importlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils.io import read_bytes
from ..utils.validate import check_choice
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source
from .constants import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from .datasets import TensorClassification, check_labels, resize_stack
from .downloads import fetch_dataset
from .transforms import to_size, train_transform

__all__ = ["find_cifar_folder", "read_cifar_pickle"]

_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta"),
    "cifar100": ("cifar-100-python", ("train",), ("test",), "meta"),
}
_STATS = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}
_CLASSES = {"label_names": 10, "fine_label_names": 100, "coarse_label_names": 20}
# The largest official file (CIFAR-100's train) is 155 MB.
_MAX_PICKLE_BYTES = 256 << 20
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (CIFAR pickles hold only arrays)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return getattr(importlib.import_module(module.replace("__builtin__", "builtins")), name)


def read_cifar_pickle(path: Path) -> dict[str, Any]:
    """Load one CIFAR pickle with str keys (the files were written by Python 2); files over
    256 MiB (the largest official one is 155 MB), FIFOs and devices are refused before reading."""
    if not path.exists():
        raise FileNotFoundError(f"CIFAR file {str(path)!r} is missing; the extracted folder is incomplete, extract it again")
    data = read_bytes(path, max_bytes=_MAX_PICKLE_BYTES, what="CIFAR file")
    try:
        raw = _ArraysOnly(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise ValueError(f"cannot read CIFAR pickle {str(path)!r} ({e}); the file is damaged, download it again") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{str(path)!r} is not a CIFAR batch (expected a dict, got {type(raw).__name__})")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}


def find_cifar_folder(root: Path, name: str) -> Path:
    folder_name = _LAYOUT[name][0]
    for candidate in (root / folder_name, root):
        if (candidate / _LAYOUT[name][3]).is_file():
            return candidate
    raise FileNotFoundError(f"{name}: no {folder_name}/{_LAYOUT[name][3]} under {str(root)!r}; point root at the "
                            f"folder holding {folder_name} (the extracted python version), or pass download=True")


def _names(values: Any, count: int, where: str) -> tuple[str, ...]:
    """``count`` class names from a meta file's list of bytes or str."""
    if not isinstance(values, list) or len(values) != count or not all(isinstance(v, (bytes, str)) for v in values):
        got = f"{len(values)} entries" if isinstance(values, list) else type(values).__name__
        raise ValueError(f"{where} should list {count} class names, got {got}; the file is damaged, download it again")
    return tuple(v.decode("latin1") if isinstance(v, bytes) else v for v in values)


def _batch_arrays(batch: dict[str, Any], label_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images (N, 3072) uint8 and N labels, checked before numpy converts anything (a
    tampered file could hold nested lists that stand for far more items than its size)."""
    data, labels = batch.get("data"), batch.get(label_key)
    if data is None or labels is None:
        raise ValueError(f"{where} has no 'data'/'{label_key}' entries: not a CIFAR batch")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{where}: 'data' must be a uint8 array (N, 3072), got {got}; the file is damaged")
    n = len(data)
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and len(labels) == n and labels.dtype.kind in "iu"
    else:
        ok = isinstance(labels, list) and len(labels) == n and all(type(v) is int for v in labels)
    if not ok:
        raise ValueError(f"{where}: '{label_key}' must be {n} integers (one per image); the file is damaged")
    return data, np.asarray(labels, dtype=np.int64)


def _load_part(folder: Path, name: str, part: str, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    _, train_files, test_files, _ = _LAYOUT[name]
    files = train_files if part == "train" else test_files
    stamps = tuple((folder / f).stat().st_mtime_ns if (folder / f).is_file() else 0 for f in files)
    return _load_files(folder, name, files, label_key, stamps)


@functools.lru_cache(maxsize=4)
def _load_files(folder: Path, name: str, files: tuple[str, ...], label_key: str,
                stamps: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The batches ``files`` as uint8 images (N, 3, 32, 32) and labels (cached per file version)."""
    xs, ys = [], []
    for file in files:
        path = folder / file
        data, labels = _batch_arrays(read_cifar_pickle(path), label_key, repr(str(path)))
        xs.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        ys.append(torch.from_numpy(labels))
    return torch.cat(xs), torch.cat(ys)


def _build(name: str, split: str, root: Path | None, download: bool, augment: bool, options: dict[str, Any]):
    reject_unknown_options(name, options, ["image_size", "val_size", "base_url"] + (["label_mode"] if name == "cifar100" else []))
    if download:
        root = fetch_dataset(name, root, base_url=options.get("base_url"))
    assert root is not None
    folder = find_cifar_folder(root, name)
    meta = read_cifar_pickle(folder / _LAYOUT[name][3])
    if name == "cifar10":
        label_key, names_key = "labels", "label_names"
    else:
        mode = options.get("label_mode", "fine")
        check_choice("CIFAR-100 label_mode", mode, ["fine", "coarse"])
        label_key, names_key = f"{mode}_labels", f"{mode}_label_names"
    if names_key not in meta:
        raise ValueError(f"{str(folder / _LAYOUT[name][3])!r} has no {names_key!r}: not the {name} meta file")
    class_names = _names(meta[names_key], _CLASSES[names_key], repr(str(folder / _LAYOUT[name][3])))
    source, part = split_source(split, has_val=False, has_test=True)
    x, y = _load_part(folder, name, source, label_key)
    check_labels(y, len(class_names), f"{name} {source} labels in {str(folder)!r}")
    if part is not None:
        idx = holdout_split(len(x), part, options.get("val_size", 5000))
        x, y = x[idx], y[idx]
    size = to_size(options.get("image_size", 32), "image_size")
    x = resize_stack(x, size)
    mean, std = _STATS[name]
    transform = train_transform(size, mean, std, augment=augment, hflip=True, padding=max(1, size[0] // 8))
    info = DatasetInfo(name=name, task="classification", in_chans=3, num_classes=len(class_names),
                       class_names=class_names, image_size=size, mean=mean, std=std)
    return TensorClassification(x, y, transform), info


@register_dataset("cifar10")
def build_cifar10(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """CIFAR-10. Options: ``image_size`` (default 32), ``val_size`` (default 5,000), ``base_url``."""
    return _build("cifar10", split, root, download, augment, options)


@register_dataset("cifar100")
def build_cifar100(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """CIFAR-100. Options: ``label_mode`` ("fine" or "coarse"), ``image_size``, ``val_size``, ``base_url``."""
    return _build("cifar100", split, root, download, augment, options)
