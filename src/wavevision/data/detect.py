"""Telling a dataset's format from its path, for ``build_dataset("/path/to/data", split)``."""
from __future__ import annotations

import os
from pathlib import Path

from ._base import SPLITS
from .ade20k import ade20k_root
from .folders import find_split_folders, is_class_tree, is_tiny_imagenet
from .image import list_images
from .voc import find_voc_root

__all__ = ["LAYOUTS", "detect_format"]

# What is looked for, in order (shown to the user when nothing matches).
LAYOUTS = (
    ("cifar10", "cifar-10-batches-py/ or its batches.meta"),
    ("cifar100", "cifar-100-python/ or its meta + train files"),
    ("emnist", "emnist-<subset>-train-images-idx3-ubyte[.gz] (also in gzip/)"),
    ("mnist / fashion-mnist", "train-images-idx3-ubyte[.gz] (also in raw/; 'fashion' in the path means Fashion-MNIST)"),
    ("galaxy10", "a .h5 file (Galaxy10_DECals.h5) or a folder holding one"),
    ("cityscapes", "leftImg8bit/ + gtFine/"),
    ("ade20k", "images/{training,validation}/ + annotations/ (also inside ADEChallengeData2016/)"),
    ("coco", "annotations/instances_*.json + the image folders"),
    ("voc", "Annotations/*.xml + JPEGImages/ (also under VOCdevkit/VOC*/ or VOC*/)"),
    ("div2k", "DIV2K_train_HR/"),
    ("tiny-imagenet", "train/ + val/val_annotations.txt"),
    ("imagefolder", "train/<class>/<image> (optional val/, test/) or <class>/<image>"),
    ("sr-folder", "train/ of images without class folders, or a folder of images (Set5, Set14, BSD100)"),
)


def _has(folder: Path, pattern: str) -> bool:
    return any(folder.glob(pattern))


def _idx_name(folder: Path) -> str | None:
    for sub in (folder, folder / "raw", folder / "gzip", folder / "MNIST" / "raw", folder / "FashionMNIST" / "raw",
                folder / "EMNIST" / "raw"):
        if not sub.is_dir():
            continue
        if _has(sub, "emnist-*-train-images-idx3-ubyte*"):
            return "emnist"
        if _has(sub, "train-images-idx3-ubyte*"):
            return "fashion-mnist" if "fashion" in str(sub.resolve()).lower() else "mnist"
    return None


def detect_format(path: str | os.PathLike) -> str:
    """The registered dataset name whose layout ``path`` has.

    Raises:
        FileNotFoundError: the path does not exist or is an empty folder.
        ValueError: no known layout matches (the message lists the layouts looked for).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"dataset path {str(p)!r} does not exist; check the path")
    if p.is_file():
        if p.suffix.lower() in (".h5", ".hdf5"):
            return "galaxy10"
        raise FileNotFoundError(f"{str(p)!r} is a file of no known dataset format; a dataset path is a folder, "
                                "or a Galaxy10 .h5 file")
    if (p / "cifar-10-batches-py").is_dir() or (p / "batches.meta").is_file():
        return "cifar10"
    if (p / "cifar-100-python").is_dir() or ((p / "meta").is_file() and (p / "train").is_file()):
        return "cifar100"
    name = _idx_name(p)
    if name is not None:
        return name
    if _has(p, "*.h5") or _has(p, "*.hdf5"):
        return "galaxy10"
    if (p / "leftImg8bit").is_dir() and (p / "gtFine").is_dir():
        return "cityscapes"
    if ade20k_root(p) is not None:
        return "ade20k"
    if _has(p / "annotations", "instances_*.json"):
        return "coco"
    if find_voc_root(p) is not None:
        return "voc"
    if (p / "DIV2K_train_HR").is_dir():
        return "div2k"
    if is_tiny_imagenet(p):
        return "tiny-imagenet"
    split_dirs = [p / s for s in SPLITS if (p / s).is_dir()]
    if split_dirs and all(list_images(d) and not is_class_tree(d) for d in split_dirs):
        return "sr-folder"  # split folders of images, no classes
    if "train" in find_split_folders(p) or is_class_tree(p):
        return "imagefolder"
    if ((p / "train").is_dir() and list_images(p / "train")) or list_images(p) or any(
            (p / d).is_dir() for d in ("HR", "GTmod12", "original", "image_SRF_2", "image_SRF_4")):
        return "sr-folder"
    looked = "\n".join(f"  {name}: {what}" for name, what in LAYOUTS)
    if not any(p.iterdir()):
        raise FileNotFoundError(f"dataset folder {str(p)!r} is empty; put the dataset files there")
    raise ValueError(f"no known dataset layout in {str(p)!r}; looked for:\n{looked}\n"
                     "or pass the dataset name and root explicitly")
