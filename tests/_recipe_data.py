"""Tiny datasets in the real on-disk formats the recipes read (ImageNet class folders with LV-ViT
token-label files, Tiny-ImageNet, CIFAR pickles, Galaxy10 HDF5, Cityscapes, ADE20K, COCO json,
DIV2K), each a few seeded images, for the recipe end-to-end tests.

Each ``write_*`` function makes the dataset under ``root`` and returns ``root``; :data:`WRITERS`
maps a registered dataset name to its writer.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _folders import class_tree

TOKEN_LABELS = "label_top5_train_nfnet"  # the folder the Wave-ViT token-label recipes name, inside the root


def _save(path: Path, array: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)


def write_token_labels(root: Path, *, classes: int, grid: int = 4, k: int = 2) -> None:
    """LV-ViT's label files for every ``train/<class>/<image>``: ``<labels>/<class>/<stem>.pt``, a
    float16 ``(2, k, grid, grid)`` map of top-k teacher scores and their class indices."""
    from wavevision.data.token_labels import label_file

    g = torch.Generator().manual_seed(0)
    for image in sorted((root / "train").glob("*/*")):
        idx = torch.stack([torch.randperm(classes, generator=g)[:k] for _ in range(grid * grid)], 1)
        scores = torch.rand(k, grid * grid, generator=g) * 5
        target = label_file(image, root / TOKEN_LABELS)
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(torch.stack([scores, idx.float()]).view(2, k, grid, grid).half(), target)


def write_imagenet(root: Path) -> Path:
    """``train/<wnid>/*.png`` and ``val/<wnid>/*.png`` (two classes), with token-label files."""
    class_tree(root, height=72, width=80, per_class=4)
    write_token_labels(root, classes=2)
    return root


def write_places365(root: Path) -> Path:
    """Places-365's class-folder layout (``train/<class>/``, ``val/<class>/``)."""
    return class_tree(root, height=72, width=80, per_class=4)


def write_tiny_imagenet(root: Path) -> Path:
    """``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` + ``val/val_annotations.txt``."""
    rng, wnids = np.random.default_rng(1), ["n01443537", "n01629819"]
    (root / "train").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        for i in range(5):
            _save(root / "train" / w / "images" / f"{w}_{i}.JPEG", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
                  format="JPEG")
    lines = []
    for i in range(4):
        _save(root / "val" / "images" / f"val_{i}.JPEG", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), format="JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[i % 2]}\t0\t0\t10\t10")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def _pickle(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar(root: Path, classes: int) -> Path:
    """The python version of CIFAR-10 (``cifar-10-batches-py/``) or CIFAR-100 (``cifar-100-python/``)."""
    rng = np.random.default_rng(2)

    def batch(n: int, key: str) -> dict:
        return {b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8), key.encode(): [i % classes for i in range(n)],
                b"batch_label": b"generated"}

    if classes == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i in range(1, 6):
            _pickle(folder / f"data_batch_{i}", batch(4, "labels"))
        _pickle(folder / "test_batch", batch(4, "labels"))
        _pickle(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
        return root
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        data = batch(20 if name == "train" else 4, "fine_labels")
        data[b"coarse_labels"] = [i % 20 for i in range(len(data[b"data"]))]
        _pickle(folder / name, data)
    _pickle(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                              b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    return root


def write_galaxy10(root: Path) -> Path:
    """``Galaxy10_DECals.h5`` with ``images`` (N, H, W, 3) uint8 and ``ans`` (N,) labels."""
    import h5py

    root.mkdir(parents=True)
    rng = np.random.default_rng(3)
    with h5py.File(root / "Galaxy10_DECals.h5", "w") as f:
        f["images"] = rng.integers(0, 256, (30, 24, 24, 3), dtype=np.uint8)
        f["ans"] = np.arange(30) % 10
    return root


def write_cityscapes(root: Path) -> Path:
    """``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``gtFine/.../*_gtFine_labelIds.png``."""
    rng = np.random.default_rng(4)
    for split, city, n in (("train", "aachen", 6), ("val", "frankfurt", 2)):
        for i in range(n):
            stem = f"{city}_{i:06d}_000019"
            _save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                  rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
            label = np.full((32, 64), 7, np.uint8)  # road
            label[:, 32:] = 26  # car
            label[:4] = 4  # static: not evaluated
            _save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label)
    return root


def write_ade20k(root: Path) -> Path:
    """``images/{training,validation}/ADE_*.jpg`` with ``annotations/.../ADE_*.png`` (0: other, 1-150)."""
    rng = np.random.default_rng(5)
    h, w = 48, 64
    for split, short, n in (("training", "train", 8), ("validation", "val", 2)):
        for i in range(1, n + 1):
            label = np.zeros((h, w), np.uint8)
            for _ in range(3):
                y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
                label[y:y + h // 2, x:x + w // 2] = int(rng.integers(1, 151))
            image = (rng.random((h, w, 3)) * 60 + label[..., None]).astype(np.uint8)
            _save(root / "images" / split / f"ADE_{short}_{i:08d}.jpg", image, quality=90)
            _save(root / "annotations" / split / f"ADE_{short}_{i:08d}.png", label)
    return root


def write_coco(root: Path, n: int = 4, size: tuple[int, int] = (96, 64)) -> Path:
    """``annotations/instances_{train,val}2017.json`` and ``{train,val}2017/*.jpg``: each image holds
    two filled rectangles of random classes, annotated as boxes and polygons."""
    rng, (w, h) = np.random.default_rng(6), size
    categories = [{"id": i, "name": f"class{i}", "supercategory": "shape"} for i in (1, 2, 3)]
    (root / "annotations").mkdir(parents=True)
    for split, count in (("train2017", n), ("val2017", 2)):
        images, annotations = [], []
        for i in range(1, count + 1):
            image = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
            for _ in range(2):
                bw, bh = int(rng.integers(w // 6, w // 3)), int(rng.integers(h // 6, h // 3))
                x, y, cat = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh)), int(rng.integers(1, 4))
                image[y:y + bh, x:x + bw] = 70 * cat
                annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat, "iscrowd": 0,
                                    "bbox": [x, y, bw, bh], "area": float(bw * bh),
                                    "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]})
            name = f"{i:012d}.jpg"
            _save(root / split / name, image, quality=90)
            images.append({"id": i, "file_name": name, "width": w, "height": h})
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root


def write_div2k(root: Path) -> Path:
    """``DIV2K_train_HR/0001.png ...`` and ``DIV2K_valid_HR/0801.png ...``."""
    rng = np.random.default_rng(7)
    for folder, first, n in (("DIV2K_train_HR", 1, 4), ("DIV2K_valid_HR", 801, 2)):
        for i in range(first, first + n):
            _save(root / folder / f"{i:04d}.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return root


WRITERS: dict[str, Callable[[Path], Path]] = {
    "imagenet": write_imagenet, "places365": write_places365, "tiny-imagenet": write_tiny_imagenet,
    "cifar10": lambda root: write_cifar(root, 10), "cifar100": lambda root: write_cifar(root, 100),
    "galaxy10": write_galaxy10, "cityscapes": write_cityscapes, "ade20k": write_ade20k, "coco": write_coco,
    "div2k": write_div2k,
}
