"""Image classification from folders of image files: ImageFolder trees and the ImageNet,
Places-365 and Tiny-ImageNet layouts.

Layouts read (class = subfolder name, sorted; images found recursively inside it):

* ``root/train/<class>/...`` with optional ``root/val/<class>/...`` (``valid``/``validation``
  accepted) and ``root/test/<class>/...``: ImageNet and Places-365 (standard) come this way.
  When the test split has no labels (ImageNet, Places-365), ``test`` is the official
  validation folder and ``val`` a fixed seeded hold-out of 10 % of train (at most 10,000;
  option ``val_size``); see :func:`wavevision.data._base.split_source`.
* ``root/<class>/...`` (one tree, no splits): a fixed seeded 80/10/10 train/val/test split.
* Tiny-ImageNet: ``train/<wnid>/images/*``, ``val/images/*`` with ``val/val_annotations.txt``
  and ``wnids.txt``: ``test`` is the official val (10,000), ``val`` 10,000 held out of train.

Images are decoded with Pillow when read and converted to ``in_chans`` (3 by default).
Evaluation resizes the shorter side to ``floor(image_size / crop_pct)`` (timm's
``transforms_imagenet_eval`` rounding: 224 / 0.96 -> 233) with ``eval_interpolation``
(``bilinear`` by default, ``bicubic`` in the ImageNet recipes) and centre-crops ``image_size``; training augmentation resizes the shorter side to ``image_size``, then takes a
random ``image_size`` crop after padding by 1/8 and flips left-right; timm's augmentation options
(``scale``, ``ratio``, ``interpolation``, ``hflip``, ``auto_augment``, ``color_jitter``,
``re_prob``, ``re_mode``, ``re_count``; :mod:`wavevision.data.timm_augment`) replace that with
timm's RandomResizedCrop, RandAugment and random erasing (needs the vision extra).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.io import read_text
from ..utils.validate import check_bool, check_choice, check_float
from ._base import DatasetInfo, holdout_split, register_dataset, reject_unknown_options, split_source, three_way_split
from .constants import IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD, IMAGENET_MEAN, IMAGENET_STD
from .datasets import FileClassification
from .image import IMAGE_EXTENSIONS, DataFileError, check_image_file, convert_channels, image_error, load_image
from .timm_augment import IMAGE_ONLY_OPTIONS, TIMM_OPTIONS, TimmImageAugment, TimmTrainTransform, timm_options
from .token_labels import RandomResizedCropWithLabels, TokenLabelFolder
from .transforms import CenterCrop, Compose, Normalize, RandomCrop, RandomHorizontalFlip, ResizeCover, to_size

__all__ = ["ImageLoader", "eval_resize", "find_split_folders", "scan_class_folders", "verify_images"]

_SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
# Check that every file opens as an image at build time when there are at most this many.
_VERIFY_LIMIT = 20_000
# Metadata files far larger than any real one (Tiny-ImageNet's: 2 KB of wnids, 450 KB of annotations).
_MAX_CLASS_LIST_BYTES = 1 << 20
_MAX_ANNOTATION_BYTES = 64 << 20


class ImageLoader:
    """``path -> (C, H, W)`` float image with ``channels`` channels (picklable for workers)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def __call__(self, path: str) -> torch.Tensor:
        return convert_channels(load_image(path), self.channels)


def _walk_images(top: Path, *, strict: bool = True) -> Iterator[Path]:
    """Image files under ``top`` in ``os.walk`` order (top-down, sorted), each folder once.

    ``top`` may be a link; folder links below it are not followed: one leading into ``top``'s
    own tree would only repeat its images (a link loop would never end), and with ``strict``
    one leading out of it raises, as does an unreadable folder (a class must neither lose
    images silently nor gain another's). Without ``strict`` both are skipped.
    """
    base = os.path.realpath(top)
    seen: set[tuple[int, int]] = set()  # bind mounts can loop too
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if not strict:
                continue
            raise DataFileError(f"cannot list {folder!r} ({e.strerror}); fix its permissions or move it out of "
                                "the dataset folder") from None
        subfolders = []
        for entry in entries:
            if entry.is_dir():
                if not entry.is_symlink():
                    subfolders.append(entry.path)
                elif strict and not _inside(os.path.realpath(entry.path), base):
                    raise ValueError(f"{entry.path!r} links to {os.path.realpath(entry.path)!r}, outside the "
                                     f"class folder {str(top)!r}; link the class folder itself, or copy the "
                                     "images in")
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS and entry.is_file():
                yield Path(entry.path)
        stack.extend(reversed(subfolders))


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _images_under(folder: Path) -> list[Path]:
    return list(_walk_images(folder))


def _has_image(folder: Path) -> bool:
    return next(_walk_images(folder, strict=False), None) is not None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _check_no_overlap(folder: Path, class_dirs: list[Path]) -> None:
    """Refuse class folders (links among them) that hold the split folder or each other: their
    images would be read twice, under two labels."""
    # sorted by path components, a folder's subfolders come right after it
    reals = sorted(((os.path.realpath(d), d) for d in class_dirs), key=lambda r: (r[0].split(os.sep), r[1]))
    top = os.path.realpath(folder)
    for real, d in reals:
        if _inside(top, real):
            raise ValueError(f"class folder {str(d)!r} links to {real!r}, which holds the class folders themselves; "
                             "remove the link")
    for (real, d), (other, e) in zip(reals, reals[1:]):
        if _inside(other, real):
            how = "the same folder" if other == real else "nested"
            raise ValueError(f"class folders {str(d)!r} and {str(e)!r} are {how} ({other!r}); their images would be "
                             "read under two labels, remove the link")


def is_class_tree(folder: Path) -> bool:
    """Whether ``folder`` holds class subfolders with images in them."""
    return folder.is_dir() and any(_has_image(d) for d in _class_dirs(folder))


def _no_images(folder: Path) -> FileNotFoundError:
    return FileNotFoundError(f"no class subfolders with images in {str(folder)!r} (looked for files ending in "
                             f"{', '.join(IMAGE_EXTENSIONS)}); expected {folder}/<class>/<image>")


def _defined_classes(folder: Path, class_dirs: list[Path], has_images: list[bool]) -> tuple[str, ...]:
    """The class names of the split that defines them: every class folder must hold an image
    (an empty one would be a missing class, shifting every later label)."""
    if not any(has_images):
        raise _no_images(folder)
    empty = [d.name for d, has in zip(class_dirs, has_images) if not has]
    if empty:
        raise FileNotFoundError(f"class folder{'s' if len(empty) > 1 else ''} {', '.join(empty[:5])}"
                                f"{' ...' if len(empty) > 5 else ''} in {str(folder)!r} hold no images (files "
                                f"ending in {', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder, "
                                "otherwise the class would be missing and every later class would shift")
    return tuple(d.name for d in class_dirs)


def class_names(folder: Path) -> tuple[str, ...]:
    """The classes :func:`scan_class_folders` would find in ``folder``, without listing every image."""
    class_dirs = _class_dirs(folder)
    _check_no_overlap(folder, class_dirs)
    return _defined_classes(folder, class_dirs, [_has_image(d) for d in class_dirs])


def scan_class_folders(folder: Path, classes: tuple[str, ...] | None = None) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Image paths, labels and class names of a class tree. With ``classes`` given (the training
    split's), every subfolder must be one of them."""
    class_dirs = _class_dirs(folder)
    _check_no_overlap(folder, class_dirs)
    listing = {d: _images_under(d) for d in class_dirs}
    dirs = [d for d, files in listing.items() if files]
    if classes is None:
        classes = _defined_classes(folder, class_dirs, [bool(listing[d]) for d in class_dirs])
    elif not dirs:
        raise _no_images(folder)
    names = tuple(d.name for d in dirs)
    index = {c: i for i, c in enumerate(classes)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(f"{str(folder)!r} has classes the training split lacks: {', '.join(unknown[:5])}"
                         f"{' ...' if len(unknown) > 5 else ''}; every split must use the training classes")
    paths: list[Path] = []
    labels: list[int] = []
    for d in dirs:
        files = listing[d]
        paths.extend(files)
        labels.extend([index[d.name]] * len(files))
    return paths, labels, classes


def verify_images(paths: list[Path], enabled: bool | None = None,
                  min_size: tuple[int, str, str] | None = None) -> None:
    """Open every file's header (Pillow) and raise :class:`DataFileError` naming the first
    unreadable one, not-a-file, decompression bomb or image with a side below ``min_size``
    (pixels, why, the fix). ``enabled=None`` checks only when there are at most 20,000 files
    (``enabled`` is a dataset's ``verify`` option, checked here for every builder)."""
    if enabled is not None:
        enabled = check_bool("verify", enabled)
    if enabled is False or (enabled is None and len(paths) > _VERIFY_LIMIT):
        return
    from PIL import Image

    for p in paths:
        check_image_file(Path(p))
        try:
            with Image.open(p) as img:
                w, h = img.size
        except Exception as e:  # Pillow raises many types for damaged files
            raise image_error(p, e) from None
        if min_size is not None and min(w, h) < min_size[0]:
            need, why, fix = min_size
            raise DataFileError(f"image file {str(p)!r} is {w}x{h} pixels, smaller than the minimum of "
                                f"{need}x{need} ({why}); {fix}")


def find_split_folders(root: Path) -> dict[str, Path]:
    """The labelled split folders (class trees) directly under ``root``."""
    found = {}
    for split, names in _SPLIT_FOLDERS.items():
        for n in names:
            if is_class_tree(root / n):
                found[split] = root / n
                break
    return found


def is_tiny_imagenet(root: Path) -> bool:
    # exists(), not is_file(): an annotation file that is a FIFO or device is refused when read
    return (root / "val" / "val_annotations.txt").exists() and (root / "train").is_dir()


def _tiny_imagenet(root: Path, source: str) -> tuple[list[Path], list[int], tuple[str, ...]]:
    wnids_file = root / "wnids.txt"
    if wnids_file.exists():
        text = read_text(wnids_file, max_bytes=_MAX_CLASS_LIST_BYTES, what="class list")
        classes = tuple(sorted(w.strip() for w in text.split() if w.strip()))
    else:
        classes = tuple(d.name for d in _class_dirs(root / "train"))
    if source == "train":
        return scan_class_folders(root / "train", classes)
    index = {c: i for i, c in enumerate(classes)}
    notes = root / "val" / "val_annotations.txt"
    paths, labels = [], []
    text = read_text(notes, max_bytes=_MAX_ANNOTATION_BYTES, what="annotation file")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise ValueError(f"{str(notes)!r} line {number}: {line!r} names no known class (wnids.txt); "
                             "the annotations belong to another dataset or are damaged")
        path = root / "val" / "images" / fields[0]
        if not path.is_file():
            raise FileNotFoundError(f"{str(notes)!r} line {number} names {str(path)!r}, which does not exist")
        paths.append(path)
        labels.append(index[fields[1]])
    if not paths:
        raise ValueError(f"{str(notes)!r} lists no images")
    return paths, labels, classes


def _select(paths: list[Path], labels: list[int], idx: torch.Tensor) -> tuple[list[Path], list[int]]:
    chosen = idx.tolist()
    return [paths[i] for i in chosen], [labels[i] for i in chosen]


def _layouts_hint(root: Path) -> str:
    return (f"no image-classification layout found in {str(root)!r}; looked for {root}/train/<class>/<image> "
            f"(with optional val/ and test/), {root}/<class>/<image>, and Tiny-ImageNet's "
            "train/ + val/val_annotations.txt")


def _normalisation(options: dict[str, Any], in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The ``mean``/``std`` options (default ImageNet's): one finite value per channel, stds > 0."""
    mean = options.get("mean", IMAGENET_MEAN if in_chans == 3 else IMAGENET_GRAY_MEAN)
    std = options.get("std", IMAGENET_STD if in_chans == 3 else IMAGENET_GRAY_STD)
    for key, value in (("mean", mean), ("std", std)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list of {in_chans} numbers, got {value!r}")
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"mean and std need {in_chans} values (one per input channel), got {len(mean)} and {len(std)}")
    return tuple(check_float("mean", m) for m in mean), tuple(check_float("std", s, gt=0.0) for s in std)


def _build(name: str, split: str, root: Path, augment: bool, options: dict[str, Any], *, image_size: int,
           crop_pct: float) -> tuple[Dataset, DatasetInfo]:
    reject_unknown_options(name, options, ["image_size", "crop_pct", "in_chans", "mean", "std", "val_size", "verify",
                                           "token_labels", "token_label_grid", "eval_interpolation",
                                           *TIMM_OPTIONS])
    timm_aug = timm_options(options)
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: {str(root)!r} is not a folder; point root at the dataset folder")
    size = to_size(options.get("image_size", image_size), "image_size")
    crop_pct = check_float("crop_pct", options.get("crop_pct", crop_pct), gt=0.0, max=1.0)
    eval_mode = check_choice("dataset option eval_interpolation", options.get("eval_interpolation", "bilinear"),
                             ("bilinear", "bicubic"))
    in_chans = options.get("in_chans", 3)
    if isinstance(in_chans, bool) or in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans!r}")
    in_chans = int(in_chans)
    if timm_aug and in_chans != 3:
        raise ValueError(f"{name}: timm's augmentation options ({', '.join(k for k in TIMM_OPTIONS if k in options)}) "
                         "need in_chans 3")
    mean, std = _normalisation(options, in_chans)

    if name == "tiny-imagenet" or is_tiny_imagenet(root):
        if not is_tiny_imagenet(root):
            raise FileNotFoundError(f"tiny-imagenet: {str(root)!r} lacks train/ and val/val_annotations.txt; "
                                    "point root at the extracted tiny-imagenet-200 folder")
        source, part = split_source(split, has_val=True, has_test=False)
        paths, labels, classes = _tiny_imagenet(root, source)
    else:
        folders = find_split_folders(root)
        part = None
        if "train" in folders and len(folders) > 1:
            source, part = split_source(split, has_val="val" in folders, has_test="test" in folders)
            known = None if source == "train" else class_names(folders["train"])  # train: scanned once below
            paths, labels, classes = scan_class_folders(folders[source], known)
        elif "train" in folders:  # train/ only: split it three ways
            paths, labels, classes = scan_class_folders(folders["train"])
            paths, labels = _select(paths, labels, three_way_split(len(paths), split))
        elif folders:  # an evaluation copy (ImageNet's val/ alone, for released weights): test only
            source = "test" if "test" in folders else "val"
            if split != "test":
                raise ValueError(f"{name}: {str(root)!r} holds only {source}/ (no train/), which serves the test "
                                 f"split; evaluate with split 'test' or add the train/ folder")
            paths, labels, classes = scan_class_folders(folders[source])
        elif is_class_tree(root):
            paths, labels, classes = scan_class_folders(root)
            split_names = {n for names in _SPLIT_FOLDERS.values() for n in names}
            if set(classes) <= split_names:
                raise ValueError(f"{str(root)!r} holds {'/, '.join(classes)}/ folders of images without class "
                                 "subfolders: for classification put each class in its own folder inside them "
                                 "(a super-resolution image folder is read by 'sr-folder')")
            paths, labels = _select(paths, labels, three_way_split(len(paths), split))
        else:
            raise FileNotFoundError(_layouts_hint(root))
    if part is not None:
        paths, labels = _select(paths, labels, holdout_split(len(paths), part, options.get("val_size")))
    verify_images(paths, options.get("verify"))

    info = DatasetInfo(name=name, task="classification", in_chans=in_chans, num_classes=len(classes),
                       class_names=classes, image_size=size, mean=mean, std=std)
    if augment and options.get("token_labels") is not None:
        return _token_label_dataset(root, paths, labels, info, options), info
    if augment and timm_aug:
        return FileClassification(paths, labels, ImageLoader(in_chans), TimmTrainTransform(size, mean, std, timm_aug)), info
    if augment:
        steps: list = [ResizeCover(size), RandomCrop(size, padding=max(1, size[0] // 8)), RandomHorizontalFlip()]
    else:
        steps = [ResizeCover(eval_resize(size, crop_pct), mode=eval_mode), CenterCrop(size)]
    steps.append(Normalize(mean, std))
    return FileClassification(paths, labels, ImageLoader(in_chans), Compose(steps)), info


def eval_resize(size: tuple[int, int], crop_pct: float) -> tuple[int, int]:
    """The size evaluation resizes to before its centre crop: ``floor(side / crop_pct)``, as timm's
    ``transforms_imagenet_eval`` (224 at 0.96 -> 233, at 0.875 -> 256)."""
    return math.floor(size[0] / crop_pct), math.floor(size[1] / crop_pct)


def _token_label_dataset(root: Path, paths: list[Path], labels: list[int], info: DatasetInfo,
                         options: dict[str, Any]) -> TokenLabelFolder:
    """Training images with LV-ViT token labels: the folder ``token_labels`` (relative paths are
    inside ``root``), RandomResizedCrop with the reference's random bilinear/bicubic choice and a
    flip shared by image and labels, dense targets on a ``token_label_grid`` grid (image size / 32,
    Wave-ViT's last stage, by default). timm's options apply as in TokenLabeling: ``scale``,
    ``ratio``, ``hflip``, ``interpolation`` to the shared crop, RandAugment or colour jitter and
    random erasing to the image only (:class:`~wavevision.data.timm_augment.TimmImageAugment`)."""
    folder = Path(str(options["token_labels"]))
    if not folder.is_absolute():
        folder = root / folder
        if not _inside(os.path.realpath(folder), os.path.realpath(root)):
            raise ValueError(f"token_labels {str(options['token_labels'])!r} leads out of the dataset folder "
                             f"{str(root)!r}; give an absolute path or one inside it")
    size, num_classes = info.image_size, info.num_classes
    assert size is not None and num_classes is not None  # a class tree's info has both
    grid = to_size(options.get("token_label_grid", (max(1, size[0] // 32), max(1, size[1] // 32))), "token_label_grid")
    aug, given = timm_options(options), [k for k in TIMM_OPTIONS if k in options]
    crop: dict[str, Any] = {k: aug[k] for k in ("scale", "ratio", "hflip", "interpolation") if k in given}
    image_augment = TimmImageAugment(size, info.mean, {**{k: aug[k] for k in IMAGE_ONLY_OPTIONS}, **crop}) \
        if any(k in given for k in IMAGE_ONLY_OPTIONS) else None
    transform = RandomResizedCropWithLabels(size, grid=grid, num_classes=num_classes,
                                            **{"interpolation": "random", **crop}, label_smoothing=0.0,
                                            mean=info.mean, std=info.std, image_augment=image_augment)
    return TokenLabelFolder(paths, labels, folder, transform, channels=info.in_chans)


@register_dataset("imagefolder")
def build_imagefolder(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Any class-folder tree (layouts in the module docstring). Options: ``image_size`` (224),
    ``crop_pct`` (1.0), ``eval_interpolation`` (``bilinear`` or ``bicubic``), ``in_chans`` (3 or 1), ``mean``/``std`` (ImageNet's), ``val_size``,
    ``verify`` (check every image opens at build time; default when at most 20,000 files),
    ``token_labels`` (training only: the folder of LV-ViT per-image label files, relative to
    ``root`` or absolute; targets become :class:`~wavevision.data.token_labels.TokenTargets`),
    ``token_label_grid`` (their token grid; default image size / 32)."""
    return _build("imagefolder", split, root, augment, options, image_size=224, crop_pct=1.0)


@register_dataset("imagenet")
def build_imagenet(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """ImageNet (ILSVRC-2012) with ``train/<wnid>`` and ``val/<wnid>`` folders; evaluation
    resizes to 256 and centre-crops 224 (``crop_pct`` 0.875). Options as ``imagefolder``."""
    return _build("imagenet", split, root, augment, options, image_size=224, crop_pct=0.875)


@register_dataset("places365")
def build_places365(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Places-365 standard (``train/<class>``, ``val/<class>``). Options as ``imagefolder``."""
    return _build("places365", split, root, augment, options, image_size=224, crop_pct=0.875)


@register_dataset("tiny-imagenet")
def build_tiny_imagenet(split: str, *, root=None, download=False, augment=False, **options) -> tuple[Dataset, DatasetInfo]:
    """Tiny-ImageNet-200 (64x64, 200 classes). Options as ``imagefolder`` (``image_size`` 64)."""
    return _build("tiny-imagenet", split, root, augment, options, image_size=64, crop_pct=1.0)
