"""Token labeling targets from LV-ViT's per-image label files (``zihangJiang/TokenLabeling``).

The reference annotates every training image once with a large teacher (NFNet-F6 at 576 px,
``label_top5_train_nfnet``) and stores, per image, a ``(2, k, H, W)`` float16 tensor
(``torch.save``): row 0 the top-k teacher scores (raw logits) at each of the ``H x W`` locations,
row 1 their class indices (stored as floats). The file of ``<images>/<class>/<name>.JPEG`` is
``<labels>/<class>/<name>.pt`` (the image's folder name and its name up to the first dot).

Training crops the label map with the image: the RandomResizedCrop box (in normalised image
coordinates) is resampled out of the dense score map by RoIAlign (bilinear samples averaged in
each output bin, as the reference does with ``torchvision.ops.roi_align``), once to the token
grid (the dense target) and once to 1 x 1 (the class target: the teacher's label of the whole
crop); a left-right flip of the image mirrors the token grid. Scores are turned into class
distributions by a softmax over the classes (classes outside the top-k keep a zero logit, as in
the reference) and smoothed: ``p * (1 - s) + s / K`` (the reference adds ``s / K`` on top of
``p * (1 - s + s / K)``, so its rows sum to ``1 + s / K``; ours sum to 1).

One deliberate difference: the reference hands the box to ``roi_align`` as (y1, x1, y2, x2)
where it expects (x1, y1, x2, y2), so its label crop is the image crop mirrored about the
diagonal; here the label map is cropped with the image's own box.

Pure torch (``grid_sample``): no torchvision needed.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..utils.validate import check_float, check_int
from .image import DataFileError, MissingDataFile, convert_channels, load_image
from .transforms import normalize, resize, to_size

__all__ = ["Box", "RandomResizedCropWithLabels", "TokenLabelFolder", "TokenTargets", "crop_token_targets",
           "dense_score_map", "label_file", "load_token_labels", "roi_align_map", "sample_crop_box", "smooth"]

# A top-5 map of 18x18 float16 is ~7 KB; far larger files are not label files.
_MAX_FILE_BYTES = 64 << 20
_MAX_SIDE = 1024
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Box(NamedTuple):
    """A crop in normalised image coordinates (fractions of the height and width)."""

    top: float
    left: float
    height: float
    width: float


class TokenTargets(NamedTuple):
    """Targets of one cropped image: ``cls`` (K,) and ``dense`` (h * w, K) class distributions
    (tokens row-major), plus the image's folder label."""

    label: int | torch.Tensor
    cls: torch.Tensor
    dense: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> TokenTargets:
        """The targets of a collated batch on ``device``."""
        return TokenTargets(*(torch.as_tensor(v).to(device, non_blocking=non_blocking) for v in self))


def label_file(image: str | os.PathLike, labels_root: str | os.PathLike) -> Path:
    """The reference's label file of ``image``: ``labels_root/<image folder>/<name up to the first dot>.pt``."""
    image = Path(image)
    folder, stem = image.parent.name, image.name.split(".")[0]
    if not folder or not stem or folder in (".", ".."):
        raise ValueError(f"image {str(image)!r} has no class folder or no name to find its token-label file by")
    return Path(labels_root) / folder / f"{stem}.pt"


def load_token_labels(path: str | os.PathLike, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one label file: ``(scores, indices)``, float32 and int64, each ``(k, H, W)``.

    Raises:
        MissingDataFile: no such file.
        DataFileError: not a tensor file, or not a ``(2, k, H, W)`` float map with integer class
            indices in ``[0, num_classes)`` and finite scores (the message names the file).
    """
    path = Path(path)
    num_classes = check_int("num_classes", num_classes, min=1)
    if not path.is_file():
        raise MissingDataFile(f"token-label file {str(path)!r} not found; every training image needs one "
                              "(generate them with the reference's generate_label.py, or point the label folder right)")
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise DataFileError(f"token-label file {str(path)!r} is {path.stat().st_size:,} bytes, far larger than a "
                            f"(2, k, H, W) label map; replace it")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling failure is a bad file
        raise DataFileError(f"token-label file {str(path)!r} cannot be read as a tensor file "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); replace it") from None
    what = f"token-label file {str(path)!r}"
    if not isinstance(data, torch.Tensor):
        raise DataFileError(f"{what} holds a {type(data).__name__}, not a (2, k, H, W) tensor; replace it")
    if data.dim() != 4 or data.shape[0] != 2 or not 1 <= data.shape[1] <= num_classes \
            or not all(1 <= s <= _MAX_SIDE for s in data.shape[2:]):
        raise DataFileError(f"{what} has shape {tuple(data.shape)}; expected (2, k, H, W) with scores and class "
                            f"indices, 1 <= k <= {num_classes}, sides 1..{_MAX_SIDE}; replace it")
    if data.dtype not in _FLOAT_DTYPES:
        raise DataFileError(f"{what} has dtype {data.dtype}; expected a float tensor (the reference stores float16)")
    scores, indices = data[0].float(), data[1].float()
    if not torch.isfinite(scores).all():
        raise DataFileError(f"{what} holds non-finite scores; replace it")
    if not torch.equal(indices, indices.round()) or int(indices.min()) < 0 or int(indices.max()) >= num_classes:
        raise DataFileError(f"{what} holds class indices that are not integers in [0, {num_classes - 1}] "
                            f"(from {float(indices.min()):g} to {float(indices.max()):g}); wrong number of classes?")
    return scores, indices.long()


def dense_score_map(scores: torch.Tensor, indices: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K, H, W)`` map holding each top-k score at its class index and 0 elsewhere."""
    if scores.shape != indices.shape or scores.dim() != 3:
        raise ValueError(f"scores {tuple(scores.shape)} and indices {tuple(indices.shape)} must both be (k, H, W)")
    out = scores.new_zeros((num_classes,) + tuple(scores.shape[1:]))
    return out.scatter_(0, indices, scores)


def _sample_points(start: float, length: float, bins: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RoIAlign's sample positions along one axis, as grid_sample coordinates (align_corners=True):
    ``ceil(length / bins)`` evenly spaced points in each of ``bins`` bins (index space, pixel
    centres at integers), clamped to the map as roi_align does; and whether each counts (roi_align
    takes points more than one pixel outside the map as 0)."""
    n = max(1, math.ceil(length / bins))
    step = length / bins
    pos = start + (torch.arange(bins, dtype=torch.float64)[:, None] + (torch.arange(n, dtype=torch.float64) + 0.5) / n) * step
    pos = pos.flatten()
    inside = ((pos >= -1) & (pos <= side)).float()
    pos = pos.clamp(0, side - 1)
    return (pos * 2 / (side - 1) - 1 if side > 1 else pos * 0).float(), inside


def roi_align_map(maps: torch.Tensor, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """Resample ``box`` (normalised) of a ``(K, H, W)`` map to ``(K, h, w)`` the way the reference's
    ``roi_align`` call does: box edges at ``fraction * side - 0.5`` in pixel-index space, each side at
    least one pixel, each output bin the mean of bilinear samples on an adaptive grid."""
    _check_box(box)
    k, hh, ww = maps.shape
    h, w = size
    y0, x0 = box.top * hh - 0.5, box.left * ww - 0.5
    rh, rw = max(box.height * hh, 1.0), max(box.width * ww, 1.0)
    (ys, y_in), (xs, x_in) = _sample_points(y0, rh, h, hh), _sample_points(x0, rw, w, ww)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)[None]  # (1, h*ny, w*nx, [x, y])
    samples = F.grid_sample(maps[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
    samples = samples * (y_in[:, None] * x_in[None, :])
    return samples.view(k, h, len(ys) // h, w, len(xs) // w).mean(dim=(2, 4))


def _check_box(box: Box) -> None:
    t, lft, h, w = (float(v) for v in box)
    eps = 1e-6
    if not (0 <= t and 0 <= lft and h > 0 and w > 0 and t + h <= 1 + eps and lft + w <= 1 + eps):
        raise ValueError(f"crop box {tuple(box)} must lie inside the image (top, left >= 0, height, width > 0, "
                         "top + height <= 1, left + width <= 1)")


def crop_token_targets(scores: torch.Tensor, indices: torch.Tensor, box: Box, *, flip: bool, grid: tuple[int, int],
                       num_classes: int, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The class target (K,) and dense target (h * w, K) of one image cropped to ``box``
    (normalised) and then mirrored left-right when ``flip``: softmax over the classes of the
    RoIAligned score map, smoothed to ``p * (1 - s) + s / K``. Every row sums to 1."""
    s = check_float("label_smoothing", label_smoothing, min=0.0, max=1.0)
    maps = dense_score_map(scores, indices, num_classes)
    dense = roi_align_map(maps, box, grid)
    if flip:
        dense = dense.flip(-1)
    cls = roi_align_map(maps, box, (1, 1)).view(num_classes)
    return smooth(cls.softmax(0), s), smooth(dense.flatten(1).t().softmax(-1), s)


def smooth(probs: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Label smoothing of class distributions (last dim K): ``p * (1 - s) + s / K`` (rows keep summing to 1)."""
    return probs if not label_smoothing else probs * (1 - label_smoothing) + label_smoothing / probs.shape[-1]


def sample_crop_box(height: int, width: int, *, scale: Sequence[float] = (0.08, 1.0),
                    ratio: Sequence[float] = (3 / 4, 4 / 3), generator: torch.Generator | None = None
                    ) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box ``(top, left, h, w)`` in pixels (torchvision's algorithm: ten tries at a
    random area share and log-uniform aspect ratio, then the centre crop clamped to ``ratio``)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=generator))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class RandomResizedCropWithLabels:
    """RandomResizedCrop + left-right flip of an image, applied identically to its token labels.

    Args:
        size: output image size.
        grid: token grid of the dense target (7 x 7 for Wave-ViT's last stage at 224).
        num_classes: K.
        scale, ratio: RandomResizedCrop's area share and aspect-ratio ranges.
        hflip: flip probability.
        label_smoothing: smoothing of the class and dense targets.
        interpolation: ``bilinear``, ``bicubic`` or ``random`` (either, per image, as the reference).
        mean, std: normalisation after cropping (empty: none).
        image_augment: image-only steps (a :class:`wavevision.data.timm_augment.TimmImageAugment`:
            RandAugment or colour jitter before the crop, random erasing after normalisation);
            the label maps never pass them.
    """

    def __init__(self, size, *, grid, num_classes: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip: float = 0.5,
                 label_smoothing: float = 0.1, interpolation: str = "bilinear",
                 mean: Sequence[float] = (), std: Sequence[float] = (), image_augment: Any = None) -> None:
        self.size, self.grid = to_size(size), to_size(grid, "grid")
        self.num_classes = check_int("num_classes", num_classes, min=1)
        if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"scale must be 0 < min <= max <= 1 and ratio 0 < min <= max, got {scale}, {ratio}")
        if interpolation not in ("bilinear", "bicubic", "random"):
            raise ValueError(f"interpolation must be bilinear, bicubic or random, got {interpolation!r}")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.hflip = check_float("hflip", hflip, min=0.0, max=1.0)
        self.label_smoothing = check_float("label_smoothing", label_smoothing, min=0.0, max=1.0)
        self.interpolation, self.mean, self.std = interpolation, tuple(mean), tuple(std)
        self.image_augment = image_augment

    def __call__(self, image: torch.Tensor, scores: torch.Tensor, indices: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(C, H, W)`` image and its ``(k, h, w)`` label map -> cropped image, class target, dense target."""
        if self.image_augment is not None:
            image = self.image_augment.before_crop(image)
        H, W = image.shape[-2:]
        top, left, h, w = sample_crop_box(H, W, scale=self.scale, ratio=self.ratio)
        flip = float(torch.rand(())) < self.hflip
        mode = self.interpolation
        if mode == "random":
            mode = ("bilinear", "bicubic")[int(torch.randint(0, 2, ()))]
        out = resize(image[:, top:top + h, left:left + w], self.size, mode=mode)
        if flip:
            out = out.flip(-1)
        box = Box(top / H, left / W, h / H, w / W)
        cls, dense = crop_token_targets(scores, indices, box, flip=flip, grid=self.grid,
                                        num_classes=self.num_classes, label_smoothing=self.label_smoothing)
        out = normalize(out, self.mean, self.std)
        if self.image_augment is not None:
            out = self.image_augment.after_normalize(out)
        return out, cls, dense


class TokenLabelFolder(Dataset):
    """Images of an ImageNet-style class tree with their token-label files.

    Args:
        paths, labels: the images and their class indices (e.g. from
            :func:`wavevision.data.folders.scan_class_folders`).
        labels_root: the label folder (``<labels_root>/<class>/<name>.pt``).
        transform: a :class:`RandomResizedCropWithLabels`.
        check_files: verify at construction that every image has a label file (one line naming
            the first missing one) rather than failing mid-epoch.
        channels: image channels (3, or 1 for grayscale).

    Items are ``(image, TokenTargets(label, cls, dense))``.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], labels: Sequence[int], labels_root: str | os.PathLike,
                 transform: RandomResizedCropWithLabels, *, check_files: bool = True, channels: int = 3) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} images but {len(labels)} labels")
        self.paths = [Path(p) for p in paths]
        self.labels = [int(v) for v in labels]
        self.labels_root = Path(labels_root)
        if not self.labels_root.is_dir():
            raise FileNotFoundError(f"token-label folder {str(self.labels_root)!r} not found; give the folder of "
                                    "per-image label files (e.g. label_top5_train_nfnet)")
        self.files = [label_file(p, self.labels_root) for p in self.paths]
        if check_files:
            missing = next((f for f in self.files if not f.is_file()), None)
            if missing is not None:
                n = sum(not f.is_file() for f in self.files)
                raise MissingDataFile(f"token-label file {str(missing)!r} not found ({n} of {len(self.files)} images "
                                      "have none); every training image needs one")
        self.transform = transform
        self.channels = check_int("channels", channels, min=1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, TokenTargets]:
        image = convert_channels(load_image(self.paths[index]), self.channels)
        scores, indices = load_token_labels(self.files[index], self.transform.num_classes)
        out, cls, dense = self.transform(image, scores, indices)
        return out, TokenTargets(self.labels[index], cls, dense)
