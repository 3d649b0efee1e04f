"""Super-resolution from folders of high-resolution images; the low-resolution inputs are made
on the fly by antialiased bicubic downsampling (x2, x4 or x8, option ``scale``), or read from
the LR files an evaluation set ships (option ``lr_source``).

Layouts of ``root``:

* DIV2K: ``DIV2K_train_HR/`` (800 images) and ``DIV2K_valid_HR/`` (100). The test images'
  HR are not public, so ``test`` is DIV2K_valid_HR and ``val`` a fixed seeded hold-out of 10 %
  of DIV2K_train_HR (80; option ``val_size``).
* ``train/`` with optional ``val/`` and ``test/`` folders of images (split rule as for every
  dataset: :func:`wavevision.data._base.split_source`; ``test`` needs ``val/`` or ``test/``).
* An evaluation set (Set5, Set14, BSD100, Urban100 ...): the images directly in ``root``,
  or in ``root/HR``, ``root/GTmod12``, ``root/original``, or the ``*_HR.*`` files of
  ``root/image_SRF_<scale>``. Only ``split="test"`` exists there. Given low-resolution
  images are used when present (``lr_source="auto"``, the default; ``lr_source="given"`` requires them,
  ``lr_source="bicubic"`` ignores them): the ``*_LR.*`` files beside the ``*_HR.*`` ones in
  ``image_SRF_<scale>`` (the Set5/Set14/BSD100/Urban100 release of Huang et al.), or
  ``root/LR_bicubic/X<scale>/<stem>x<scale>.*`` (the DIV2K / EDSR benchmark layout). Each HR
  image is cropped to a multiple of the scale and must then be exactly ``scale`` times its LR.

Training samples are ``patch_size`` high-resolution patches (default 96, a multiple of the
scale) with their aligned low-resolution patches, ``num_patches`` per epoch (default 1,000),
random positions and flips with ``augment``, fixed seeded positions without. Evaluation
samples are whole images cropped to a multiple of the scale (sizes differ: batch size 1), or
their centre ``eval_size`` crop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.memory import check_memory
from ..utils.validate import check_bool, check_choice, check_int
from ._base import (
    MAX_COUNT,
    SPLITS,
    DatasetInfo,
    holdout_split,
    register_dataset,
    reject_unknown_options,
    split_source,
    sr_scale,
    three_way_split,
)
from .datasets import SuperResolutionPairs, sr_min_size, to_float
from .folders import ImageLoader, verify_images
from .image import DataFileError, as_uint8, image_error, list_images, mod_crop
from .transforms import MAX_SIDE

__all__ = ["GivenPairs", "find_lr_images", "find_sr_images"]

_EVAL_SUBFOLDERS = ("HR", "GTmod12", "original")
LR_MODES = ("auto", "given", "bicubic")


def _eval_images(root: Path, scale: int) -> list[Path]:
    srf = root / f"image_SRF_{scale}"
    if srf.is_dir():
        return [p for p in list_images(srf) if p.stem.endswith("_HR")]
    for name in _EVAL_SUBFOLDERS:
        if (root / name).is_dir() and list_images(root / name):
            return list_images(root / name)
    return list_images(root)


def find_sr_images(root: Path, split: str, scale: int, val_size: int | None = None) -> list[Path]:
    """High-resolution image files of ``split`` under ``root`` (layouts in the module docstring)."""
    if not root.is_dir():
        raise FileNotFoundError(f"sr-folder: {str(root)!r} is not a folder of images")
    if (root / "DIV2K_train_HR").is_dir():
        folders = {"train": root / "DIV2K_train_HR"}
        if (root / "DIV2K_valid_HR").is_dir():
            folders["val"] = root / "DIV2K_valid_HR"
    else:
        folders = {s: root / s for s in SPLITS if (root / s).is_dir() and list_images(root / s)}
    if "train" not in folders:
        if folders:
            raise FileNotFoundError(f"sr-folder: {str(root)!r} has {', '.join(sorted(folders))}/ but no train/ folder of images")
        images = _eval_images(root, scale)
        if not images:
            raise FileNotFoundError(
                f"sr-folder: no images in {str(root)!r}; looked for DIV2K_train_HR/, train/ (+ val/, test/), "
                f"images directly inside, in {'/, '.join(_EVAL_SUBFOLDERS)}/ or image_SRF_{scale}/*_HR.*")
        if split != "test":
            raise ValueError(f"{str(root)!r} is an evaluation set ({len(images)} images, no train/ folder): use "
                             "split='test', and train on DIV2K or a folder with train/")
        return images
    has_val, has_test = "val" in folders, "test" in folders
    if not (has_val or has_test):
        images = list_images(folders["train"])
        return [images[i] for i in three_way_split(len(images), split).tolist()]
    source, part = split_source(split, has_val=has_val, has_test=has_test)
    images = list_images(folders[source])
    if part is not None:
        images = [images[i] for i in holdout_split(len(images), part, val_size).tolist()]
    return images


def find_lr_images(root: Path, hr: list[Path], scale: int) -> list[Path] | None:
    """The given low-resolution file of each of ``hr`` (an evaluation set's), or ``None`` when
    ``root`` ships none (layouts in the module docstring); a partial set is an error."""
    srf = root / f"image_SRF_{scale}"
    if (root / "train").is_dir() or (root / "DIV2K_train_HR").is_dir():
        return None  # training folders: the LR is always made from the HR
    if hr and all(p.parent == srf for p in hr):
        lr = {p.stem: p for p in list_images(srf) if p.stem.endswith("_LR")}
        names = [p.stem[: -len("_HR")] + "_LR" for p in hr]
    elif (root / "LR_bicubic" / f"X{scale}").is_dir():
        lr = {p.stem: p for p in list_images(root / "LR_bicubic" / f"X{scale}")}
        names = [f"{p.stem}x{scale}" for p in hr]
    else:
        return None
    if not lr:
        return None
    missing = [n for n in names if n not in lr]
    if missing:
        raise FileNotFoundError(f"sr-folder: {len(missing)} HR image(s) of {str(root)!r} have no LR file, e.g. "
                                f"{missing[0]!r}; add them, or pass lr_source=bicubic to make every LR by bicubic downsampling")
    return [lr[n] for n in names]


class GivenPairs(Dataset):
    """``(lr, hr)`` pairs read from files: each HR image is cropped to a multiple of ``scale`` and
    must then be exactly ``scale`` times its LR image (otherwise a :class:`DataFileError` names
    both files and sizes); optionally the centre ``crop_size`` window of both.

    Args:
        pairs: ``(lr_path, hr_path)`` of each sample.
        scale: the super-resolution factor.
        loader: ``path -> (C, H, W)`` float image.
        crop_size: the centre ``crop_size`` x ``crop_size`` HR window (a multiple of ``scale``).
    """

    def __init__(self, pairs: list[tuple[Path, Path]], scale: int, loader: ImageLoader, crop_size: int | None = None) -> None:
        if crop_size is not None and crop_size % scale:
            raise ValueError(f"eval_size must be a positive multiple of the scale {scale}, got {crop_size}")
        self.pairs, self.scale, self.loader, self.crop_size = list(pairs), int(scale), loader, crop_size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr_path, hr_path = self.pairs[index]
        lr, hr = to_float(self.loader(str(lr_path))), mod_crop(to_float(self.loader(str(hr_path))), self.scale)
        s, (h, w), (hh, ww) = self.scale, lr.shape[-2:], hr.shape[-2:]
        if (hh, ww) != (h * s, w * s):
            raise DataFileError(
                f"LR image {str(lr_path)!r} is {w}x{h} but its HR image {str(hr_path)!r} is {ww}x{hh} "
                f"(cropped to a multiple of {s}): not a x{s} pair (expected an LR of {ww // s}x{hh // s}); check the "
                "scale option, or pass lr_source=bicubic to make the LR images from the HR ones")
        if self.crop_size is not None:
            p = self.crop_size // s
            if p > h or p > w:
                raise DataFileError(f"{str(hr_path)!r} is {ww}x{hh}, smaller than the crop size {self.crop_size}; lower it")
            top, left = (h - p) // 2, (w - p) // 2
            lr, hr = lr[:, top:top + p, left:left + p], hr[:, top * s:(top + p) * s, left * s:(left + p) * s]
        return lr.contiguous(), hr.contiguous()


def _build(name: str, split: str, root: Path, augment: bool, options: dict[str, Any]) -> tuple[Dataset, DatasetInfo]:
    reject_unknown_options(name, options, ["scale", "patch_size", "num_patches", "eval_size", "val_size", "cache", "verify",
                                           "lr_source"])
    scale = sr_scale(options.get("scale", 2), name)
    paths = find_sr_images(Path(root), split, scale, options.get("val_size"))
    loader = ImageLoader(3)
    given = _given_lr(Path(root), paths, scale, check_choice("lr_source", options.get("lr_source", "auto"), LR_MODES), split)
    crop = options.get("eval_size")
    crop = None if crop is None else check_int("eval_size", crop, min=1, max=MAX_SIDE)
    patch = check_int("patch_size", options.get("patch_size", 96), min=1, max=MAX_SIDE) if split == "train" else None
    # a 1x1 image would end in the resampler's traceback: refused from the headers, naming the file
    verify_images(paths, options.get("verify"), sr_min_size(scale, patch or crop))
    if given is not None:
        verify_images(given, options.get("verify"))
        info = DatasetInfo(name=name, task="super_resolution", in_chans=3, num_classes=None, class_names=None,
                           image_size=None if crop is None else (crop, crop), mean=(), std=(), scale=scale)
        return GivenPairs(list(zip(given, paths)), scale, loader, crop), info
    # cache=True decodes every image once at build time (fast epochs, memory of the uint8 images)
    images: list = _decode_all(paths, loader) if _flag(options, "cache") else paths
    if patch is not None:
        num = check_int("num_patches", options.get("num_patches", 1000), min=1, max=MAX_COUNT * 10)
        dataset = SuperResolutionPairs(images, scale, patch_size=patch, augment=augment, num_samples=num, loader=loader)
        size: tuple[int, int] | None = (patch, patch)
    else:
        dataset = SuperResolutionPairs(images, scale, crop_size=crop, loader=loader)
        size = None if crop is None else (crop, crop)
    info = DatasetInfo(name=name, task="super_resolution", in_chans=3, num_classes=None, class_names=None,
                       image_size=size, mean=(), std=(), scale=scale)
    return dataset, info


def _given_lr(root: Path, hr: list[Path], scale: int, mode: str, split: str) -> list[Path] | None:
    """The LR files to read (option ``lr_source``), or ``None`` to make them by bicubic downsampling."""
    if mode == "bicubic" or split == "train":
        return None
    given = find_lr_images(root, hr, scale)
    if given is None and mode == "given":
        raise FileNotFoundError(f"sr-folder: lr_source=given, but {str(root)!r} has no LR images for x{scale} (looked for "
                                f"image_SRF_{scale}/*_LR.* and LR_bicubic/X{scale}/); drop lr_source=given to make them by "
                                "bicubic downsampling")
    return given


def _flag(options: dict[str, Any], key: str) -> bool | None:
    return None if options.get(key) is None else check_bool(key, options[key])


def _decode_all(paths: list[Path], loader: ImageLoader) -> list[torch.Tensor]:
    """Every image decoded to uint8, after checking from the headers that they fit in memory."""
    from PIL import Image

    need = 0
    for p in paths:
        try:
            with Image.open(p) as img:
                need += 3 * img.size[0] * img.size[1]
        except Exception as e:  # Pillow raises many types for damaged files
            raise image_error(p, e) from None
    check_memory(need, f"decoding {len(paths):,} images to hold in memory (cache=True)",
                 "drop the cache option to read them from disk when used")
    return [as_uint8(loader(str(p))) for p in paths]


@register_dataset("sr-folder")
def build_sr_folder(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Options: ``scale`` (2, 4 or 8), ``patch_size`` (96), ``num_patches`` (1,000), ``eval_size``
    (``None``: whole images), ``val_size``, ``cache`` (decode all images once), ``verify``, ``lr_source``
    (``auto``: an evaluation set's own LR files when it ships them; ``given``; ``bicubic``)."""
    return _build("sr-folder", split, root, augment, options)


@register_dataset("div2k")
def build_div2k(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """DIV2K (``DIV2K_train_HR``, ``DIV2K_valid_HR``). Options as ``sr-folder``."""
    if not (Path(root) / "DIV2K_train_HR").is_dir():
        raise FileNotFoundError(f"div2k: no DIV2K_train_HR/ in {str(root)!r}; point root at the folder holding "
                                "DIV2K_train_HR/ and DIV2K_valid_HR/")
    return _build("div2k", split, root, augment, options)
