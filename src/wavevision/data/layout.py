"""The on-disk layouts of the datasets the published recipes train on, checked before a recipe runs.

A dataset builder reads what it finds and falls back where it can (a training hold-out when no
test folder exists, one annotation file split three ways). A recipe trains, selects and reports
on named splits of the real dataset, so :func:`check_layout` insists on every folder and file of
the real layout and names the first one missing, with the layout expected, in one line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LAYOUTS", "Layout", "check_layout"]


@dataclass(frozen=True)
class Layout:
    """What a dataset's root holds.

    Attributes:
        needs: paths relative to the root, each a ``|``-separated list of alternatives (globs
            allowed; a trailing ``/`` means a folder).
        shape: the layout in words, for the error.
        nested: a folder the root may hold the dataset in instead (ADE20K's ``ADEChallengeData2016``).
    """

    needs: tuple[str, ...]
    shape: str
    nested: str | None = None


_CLASS_TREE = "train/<class>/<image> and val/<class>/<image> (one folder per class)"
LAYOUTS: dict[str, Layout] = {
    "imagenet": Layout(("train/", "val/"), f"ILSVRC2012 as {_CLASS_TREE}"),
    "places365": Layout(("train/", "val/"), f"Places-365 as {_CLASS_TREE}"),
    "tiny-imagenet": Layout(("train/", "val/images/", "val/val_annotations.txt"),
                            "tiny-imagenet-200: train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt"),
    "cifar10": Layout(("cifar-10-batches-py/batches.meta", *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                       "cifar-10-batches-py/test_batch"),
                      "cifar-10-batches-py/ (batches.meta, data_batch_1..5, test_batch: the python version)"),
    "cifar100": Layout(("cifar-100-python/meta", "cifar-100-python/train", "cifar-100-python/test"),
                       "cifar-100-python/ (meta, train, test: the python version)"),
    "galaxy10": Layout(("*.h5",), "Galaxy10_DECals.h5 (the file, or a folder holding it)"),
    "cityscapes": Layout(("leftImg8bit/train/", "leftImg8bit/val/", "gtFine/train/", "gtFine/val/"),
                         "leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and gtFine/{train,val}/<city>/"
                         "*_gtFine_labelIds.png"),
    "ade20k": Layout(("images/training/", "images/validation/", "annotations/training/", "annotations/validation/"),
                     "ADEChallengeData2016: images/{training,validation}/*.jpg and annotations/{training,validation}/*.png",
                     nested="ADEChallengeData2016"),
    "coco": Layout(("annotations/instances_*train*.json", "train*/|images/train*/|images/",
                    "annotations/instances_*val*.json", "val*/|images/val*/|images/"),
                   "annotations/instances_{train,val}2017.json with the images in train2017/ and val2017/"),
    "div2k": Layout(("DIV2K_train_HR/", "DIV2K_valid_HR/"),
                    "DIV2K_train_HR/*.png and DIV2K_valid_HR/*.png (the HR images; wavevision makes the bicubic LR "
                    "inputs itself, so the LR folders are not needed)"),
}


def _present(root: Path, need: str) -> bool:
    for option in need.split("|"):
        folder = option.endswith("/")
        pattern = option.rstrip("/")
        if any(p.is_dir() if folder else p.is_file() for p in root.glob(pattern)):
            return True
    return False


def check_layout(dataset: str, root: str | os.PathLike[str], *, what: str = "") -> None:
    """Raise a one-line FileNotFoundError naming the first folder or file of ``dataset``'s real layout
    that ``root`` lacks, and the layout expected; datasets without a registered layout pass.

    Args:
        dataset: a registered dataset name.
        root: the data root given for it.
        what: who asks, to start the message (``"recipe NAME: "``).
    """
    layout = LAYOUTS.get(dataset)
    if layout is None:
        return
    root = Path(root)
    if dataset == "galaxy10" and root.is_file():
        return
    if not root.is_dir():
        raise FileNotFoundError(f"{what}{dataset} data root {str(root)!r} is not a folder; expected {layout.shape}")
    if layout.nested and not any((root / n.split("|")[0].rstrip("/")).exists() for n in layout.needs) \
            and (root / layout.nested).is_dir():
        root = root / layout.nested
    for need in layout.needs:
        if not _present(root, need):
            shown = " or ".join(need.split("|"))
            raise FileNotFoundError(f"{what}{dataset} data root {str(root)!r} has no {shown}; expected {layout.shape}")
