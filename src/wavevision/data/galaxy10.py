"""Galaxy10 DECals from its HDF5 file (``Galaxy10_DECals.h5``: ``images`` (N, 256, 256, 3)
uint8 and ``ans`` (N,) class ids 0..9).

``root`` is the ``.h5`` file or a folder holding it. The file has no splits: a fixed seeded
10 % test, 10 % val, 80 % train split (of 17,736 images: 1,774 / 1,774 / 14,188). Images are
read lazily (the file is opened once per DataLoader worker). Galaxies have no up or left, so
augmentation flips both ways besides the padded random crop.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils.memory import check_memory
from ._base import DatasetInfo, register_dataset, reject_unknown_options, three_way_split
from .datasets import channel_stats, check_labels, to_float
from .image import DataFileError
from .transforms import MAX_SIDE, resize, to_size, train_transform

__all__ = ["GALAXY10_CLASSES", "H5Images", "find_galaxy10_file"]

GALAXY10_CLASSES = (
    "Disturbed", "Merging", "Round Smooth", "In-between Round Smooth", "Cigar Shaped Smooth", "Barred Spiral",
    "Unbarred Tight Spiral", "Unbarred Loose Spiral", "Edge-on without Bulge", "Edge-on with Bulge",
)
_STATS_SAMPLES = 512


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Galaxy10 needs h5py: pip install 'wavevision[data]'") from None
    return h5py


def find_galaxy10_file(root: Path) -> Path:
    if root.is_file():
        return root
    files = sorted(root.glob("*.h5")) + sorted(root.glob("*.hdf5"))
    preferred = [f for f in files if f.name.lower().startswith("galaxy10")]
    if preferred or files:
        return (preferred or files)[0]
    raise FileNotFoundError(f"galaxy10: no .h5 file in {str(root)!r}; point root at Galaxy10_DECals.h5")


@functools.lru_cache(maxsize=4)
def _inspect(path: Path, mtime: int) -> tuple[tuple[int, ...], np.ndarray]:
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"cannot open {str(path)!r} as HDF5 ({e}); the file is damaged or not Galaxy10") from None
    with f:
        missing = [k for k in ("images", "ans") if k not in f]
        if missing:
            raise ValueError(f"{str(path)!r} has no {' or '.join(missing)} dataset (found: {', '.join(f.keys()) or 'none'}); "
                             "expected Galaxy10 DECals' 'images' and 'ans'")
        shape = tuple(f["images"].shape)
        if len(shape) != 4 or shape[-1] not in (1, 3) or f["images"].dtype != np.uint8:
            raise ValueError(f"{str(path)!r}: 'images' should be uint8 (N, H, W, 3), got {f['images'].dtype} {shape}")
        if max(shape[1:3]) > MAX_SIDE:  # HDF5 can declare sizes it never stores
            raise ValueError(f"{str(path)!r}: 'images' are {shape[1]}x{shape[2]}, larger than the {MAX_SIDE}x{MAX_SIDE} "
                             "this package reads; the file is damaged or not Galaxy10")
        ans = f["ans"]  # its declared shape is checked before anything is read
        if ans.ndim != 1 or ans.shape[0] != shape[0]:
            found = f"{ans.shape[0]:,} labels" if ans.ndim == 1 else f"an array of shape {tuple(ans.shape)}"
            raise ValueError(f"{str(path)!r}: {found} in 'ans' for {shape[0]} images")
        check_memory(shape[0] * 8, f"reading {shape[0]:,} labels of {str(path)!r}", "check that the file is Galaxy10's")
        labels = np.asarray(ans[:], dtype=np.int64)
    return shape, labels


class H5Images(Dataset):
    """Classification samples read from an HDF5 file's ``images`` (N, H, W, C) and given labels."""

    def __init__(self, path: Path, indices: torch.Tensor, labels: torch.Tensor, transform=None,
                 image_size: tuple[int, int] | None = None) -> None:
        self.path, self.indices, self.labels = str(path), indices.tolist(), labels.tolist()
        self.transform, self.image_size = transform, image_size
        self._file: Any = None  # an h5py.File, opened on first read in each process

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None  # each process opens its own handle
        return state

    def __len__(self) -> int:
        return len(self.indices)

    def close(self) -> None:
        """Close this process's handle on the file (it reopens on the next read)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, index: int) -> torch.Tensor:
        try:
            if self._file is None:
                self._file = _h5py().File(self.path, "r")
            array = np.asarray(self._file["images"][self.indices[index]])
        except (OSError, KeyError, ValueError) as e:  # a damaged chunk, a file replaced since the build
            raise DataFileError(f"cannot read image {self.indices[index]} of {self.path!r} ({e}); the file is "
                                "damaged, download it again") from None
        image = torch.from_numpy(array).permute(2, 0, 1)
        image = to_float(image)
        if self.image_size is not None:
            image = resize(image, self.image_size)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.read(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


@functools.lru_cache(maxsize=4)
def _stats(path: Path, mtime: int, indices: tuple[int, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    ds = H5Images(path, torch.tensor(indices), torch.zeros(len(indices), dtype=torch.long))
    shape = _inspect(path, mtime)[0]
    check_memory(len(indices) * shape[1] * shape[2] * shape[3] * 4 * 2,
                 f"sampling {len(indices)} images of {shape[1]}x{shape[2]} for the normalisation", "use a machine with "
                 "more memory")
    return channel_stats(torch.stack([ds.read(i) for i in range(len(ds))]))


@register_dataset("galaxy10")
def build_galaxy10(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Galaxy10 DECals. Options: ``image_size`` (default: the file's, 256)."""
    reject_unknown_options("galaxy10", options, ["image_size"])
    path = find_galaxy10_file(Path(root))
    mtime = path.stat().st_mtime_ns
    shape, labels = _inspect(path, mtime)
    check_labels(torch.from_numpy(labels), len(GALAXY10_CLASSES), f"'ans' of {str(path)!r}")
    idx = three_way_split(shape[0], split)
    native = (shape[1], shape[2])
    size = to_size(options.get("image_size", native), "image_size")
    # normalisation from a fixed seeded sample of the training images
    train_idx = three_way_split(shape[0], "train")
    sample = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(0))[:_STATS_SAMPLES]]
    mean, std = _stats(path, mtime, tuple(sorted(sample.tolist())))
    transform = train_transform(size, mean, std, augment=augment, hflip=True, vflip=True)
    dataset = H5Images(path, idx, torch.from_numpy(labels)[idx], transform, None if size == native else size)
    info = DatasetInfo(name="galaxy10", task="classification", in_chans=shape[-1], num_classes=10,
                       class_names=GALAXY10_CLASSES, image_size=size, mean=mean, std=std)
    return dataset, info
