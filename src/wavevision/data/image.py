"""Reading images (Pillow) into tensors, channel conversion, the eval-time input transform
used by ``predict``, and the bicubic resampling that makes and upsamples low-resolution images."""
from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.validate import PathLike, short_repr
from .transforms import ResizeCover, Size, center_crop, normalize

if TYPE_CHECKING:
    from ._base import DatasetInfo

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataFileError",
    "MissingDataFile",
    "bicubic_downsample",
    "bicubic_upsample",
    "convert_channels",
    "file_in_folder",
    "list_images",
    "load_image",
    "load_label_map",
    "prepare_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# ITU-R BT.601 luma, the weights Pillow's "L" conversion uses.
_LUMA = (0.299, 0.587, 0.114)


class DataFileError(ValueError):
    """A data file that cannot be used (corrupt, a decompression bomb, unreadable), in one line
    naming the file and the fix.

    In a DataLoader worker process torch sends the error to the main process as text and
    raises ``DataFileError("Caught DataFileError in DataLoader worker process N.\nOriginal
    Traceback ...")`` there; the one-line message is recovered from that text, so the command
    line still reports one line.
    """

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(_original_message(type(self).__name__, str(message)), *args)

    @property
    def message(self) -> str:
        """The one-line message.

        Defined on the class, it makes torch re-raise a worker's error as
        ``DataFileError(message=...)`` straight away instead of through a local variable: the
        local would hold the error in a reference cycle with its traceback, which keeps the
        DataLoader's workers alive until the garbage collector runs (then 5 s each to stop).
        """
        return str(self.args[0]) if self.args else ""


class MissingDataFile(DataFileError, FileNotFoundError):
    """A data file that does not exist (also a FileNotFoundError)."""


def _original_message(kind: str, message: str) -> str:
    """The message of a ``kind`` error from the text torch's DataLoader re-raises it with."""
    if not message.startswith(f"Caught {kind} ") or "\nOriginal Traceback" not in message:
        return message
    marker = f"{kind}: "
    for line in reversed(message.splitlines()):
        if marker in line:
            return line[line.index(marker) + len(marker):]
    return message


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, case-insensitive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def file_in_folder(folder: Path, name: object, where: str) -> Path:
    """``folder / name`` for a file name read from an annotation file, refused (a ValueError
    starting with ``where``) unless it is a non-empty relative path that stays inside ``folder``
    once resolved: no ``..`` part, no absolute path or drive, no link leading out of the folder."""
    fix = "give a path relative to the image folder"
    try:  # a lone surrogate (JSON allows one) cannot name a file
        parts = [os.fsencode(p) for p in name.replace("\\", "/").split("/")] if isinstance(name, str) else None
    except UnicodeEncodeError:
        parts = None
    if parts is None or not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ValueError(f"{where}: the file name {short_repr(name)} is not a usable relative path; {fix}")
    if any(len(part) > 255 for part in parts):  # the usual file system limit (ENAMETOOLONG)
        raise ValueError(f"{where}: the file name {short_repr(name)} has a part longer than 255 bytes; {fix}")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or b".." in parts:
        raise ValueError(f"{where}: the file name {short_repr(name)} leads outside the image folder {str(folder)!r}; "
                         f"{fix}")
    path = folder / name
    real, base = os.path.realpath(path), os.path.realpath(folder)
    if not real.startswith(base.rstrip(os.sep) + os.sep):
        raise ValueError(f"{where}: {short_repr(name)} resolves to {real!r}, outside the image folder "
                         f"{str(folder)!r} (a link); copy the image into the folder, or link the whole folder instead")
    return path


def check_image_file(path: Path, what: str = "image file") -> None:
    """Raise :class:`DataFileError` unless ``path`` is a regular file (opening a FIFO would block)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MissingDataFile(f"{what} {str(path)!r} does not exist") from None
    except OSError as e:
        raise DataFileError(f"cannot read {what} {str(path)!r} ({e.strerror}); check its permissions") from None
    if not stat.S_ISREG(mode):
        raise DataFileError(f"{what} {str(path)!r} is not a regular file; replace it with the image")


def image_error(path: PathLike, error: BaseException, what: str = "image file") -> DataFileError:
    """The one-line :class:`DataFileError` for ``error`` raised while Pillow read ``path``."""
    from PIL import Image

    where = f"{what} {str(path)!r}"
    reason = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, Image.DecompressionBombError):
        return DataFileError(f"{where} is a decompression bomb ({reason}); shrink the image, or raise "
                             "PIL.Image.MAX_IMAGE_PIXELS if it is genuine")
    if isinstance(error, PermissionError):
        return DataFileError(f"cannot read {where} (permission denied); check its permissions")
    if isinstance(error, MemoryError):
        return DataFileError(f"{where} is too large to decode in the memory available; shrink the image")
    return DataFileError(f"cannot decode {where} (corrupt or not an image: {reason}); replace or remove it")


def load_image(path: PathLike) -> torch.Tensor:
    """Decode an image file into a float32 ``(C, H, W)`` tensor in [0, 1].

    Grayscale files give 1 channel, everything else 3 (alpha is dropped, palettes expanded,
    16-bit and float images scaled to [0, 1]); the EXIF orientation is applied.

    Raises:
        MissingDataFile: the file does not exist (a FileNotFoundError and a DataFileError).
        DataFileError: the file is not a regular file, not a readable image, or a
            decompression bomb (Pillow's pixel limit); the message names the file.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    check_image_file(path)
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            array = _to_array(img)
    except Exception as e:  # Pillow raises many types for damaged files; each is the file's fault
        raise image_error(path, e) from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_label_map(path: PathLike, what: str = "label file") -> np.ndarray:
    """The pixel values of a label-map file as stored (no conversion), checked to be one integer channel.

    Raises:
        DataFileError: not a regular file, not readable by Pillow, or not a single-channel integer
            image; the message names the file and ``what`` it is.
    """
    from PIL import Image

    check_image_file(Path(path), what)
    try:
        with Image.open(path) as img:
            labels = np.asarray(img)
    except Exception as e:  # Pillow raises many types for damaged files
        raise image_error(path, e, what) from None
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise DataFileError(f"{what} {str(path)!r} should be a single-channel PNG of label indices, got "
                            f"{labels.dtype} {labels.shape}; save the label map in mode 'L' or 'P'")
    return labels


def _to_array(img) -> np.ndarray:
    """A Pillow image -> float32 (H, W, 1 or 3) in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(img, dtype=np.float32) / 65535.0
    elif mode == "I":
        a = np.asarray(img, dtype=np.float64)
        a = (a / (65535.0 if a.max(initial=0) > 255 else 255.0)).astype(np.float32)
    elif mode == "F":
        a = np.asarray(img, dtype=np.float32)
        if a.max(initial=0) > 1.0:
            a = a / 255.0
    elif mode in ("1", "L", "LA"):
        a = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    else:
        a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    a = np.clip(a, 0.0, 1.0)
    return a[:, :, None] if a.ndim == 2 else a


def convert_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert a ``(C, H, W)`` (or batched) image between 1 (gray), 3 (RGB) and 4 (RGBA) channels."""
    c = image.shape[-3]
    if c == channels:
        return image
    if c == 4:
        image, c = image[..., :3, :, :], 3
        if channels == 3:
            return image
    if c == 1 and channels == 3:
        return image.expand(*image.shape[:-3], 3, *image.shape[-2:]).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=image.dtype, device=image.device).view(3, 1, 1)
        return (image * w).sum(dim=-3, keepdim=True)
    raise ValueError(f"cannot convert an image with {image.shape[-3]} channels to {channels}; "
                     "give a grayscale (1), RGB (3) or RGBA (4) image")


def prepare_image(image: torch.Tensor, info: DatasetInfo, image_size: Size | None = None) -> torch.Tensor:
    """The eval-time transform: turn a loaded image into the input of a model trained on ``info``.

    Converts channels to ``info.in_chans``, resizes to ``image_size`` when one is given (a
    classifier's: ``info.image_size``; dense tasks keep the image's size) by scaling the shorter
    side and centre-cropping, so the aspect ratio is kept, then normalises with
    ``info.mean``/``info.std`` (super-resolution's are empty: inputs stay in [0, 1]). Accepts
    ``(C, H, W)`` or ``(N, C, H, W)`` float images in [0, 1].
    """
    if image.dim() not in (3, 4):
        raise ValueError(f"prepare_image needs a (C, H, W) or (N, C, H, W) image, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"prepare_image needs a float image in [0, 1], got {image.dtype}; use load_image")
    image = convert_channels(image, info.in_chans)
    if image_size is not None:
        image = resize_and_crop(image, image_size)
    return normalize(image, info.mean, info.std)


def resize_and_crop(image: torch.Tensor, size: Size) -> torch.Tensor:
    """Scale so the image covers ``size`` (aspect ratio kept), then centre-crop to it."""
    return center_crop(ResizeCover(size)(image), size)


def _check_scale(scale: int) -> int:
    if scale not in (2, 3, 4, 8):
        raise ValueError(f"super-resolution scale must be 2, 3, 4 or 8, got {scale!r}")
    return int(scale)


def bicubic_downsample(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-resolution input made from ``hr`` ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1]:
    antialiased bicubic downsampling by ``scale`` (H and W must be multiples of it)."""
    scale = _check_scale(scale)
    H, W = hr.shape[-2:]
    if H % scale or W % scale:
        raise ValueError(f"high-resolution size {H}x{W} is not a multiple of the scale {scale}; crop it first")
    x = hr if hr.dim() == 4 else hr.unsqueeze(0)
    lr = F.interpolate(x, size=(H // scale, W // scale), mode="bicubic", align_corners=False, antialias=True)
    lr = lr.clamp(0.0, 1.0)
    return lr if hr.dim() == 4 else lr.squeeze(0)


def bicubic_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline of super-resolution: ``lr`` ``(C, h, w)`` or ``(N, C, h, w)`` in
    [0, 1] upsampled by ``scale`` and clamped to [0, 1]."""
    scale = _check_scale(scale)
    x = lr if lr.dim() == 4 else lr.unsqueeze(0)
    sr = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)
    return sr if lr.dim() == 4 else sr.squeeze(0)


def mod_crop(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right of ``hr`` so its size is a multiple of ``scale``."""
    H, W = hr.shape[-2:]
    return hr[..., : H - H % scale, : W - W % scale]


def as_uint8(image: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8 [0, 255] (compact storage for images held in memory)."""
    return image.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def stack_sizes(images: Sequence[torch.Tensor]) -> tuple[int, int] | None:
    """The common ``(H, W)`` of ``images``, or ``None`` when they differ."""
    sizes = {tuple(im.shape[-2:]) for im in images}
    return sizes.pop() if len(sizes) == 1 else None  # type: ignore[return-value]
