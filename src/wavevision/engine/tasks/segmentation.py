"""Semantic segmentation: a class per pixel; cross entropy with an ignore index, mIoU and pixel accuracy."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...data import DatasetInfo
from ...data.transforms import resize
from ...outputs import SegmentationOutput
from ...utils.io import atomic_write_bytes
from ...utils.validate import check_int
from ..metrics import SegmentationMeter
from ._images import palette, png_bytes, readable_scale, to_pil, upscale, with_legend
from .base import LabelTask, PredictItem

__all__ = ["Segmentation", "SlidingWindow", "slide_inference", "window_starts"]


class _SegmentationLoss(nn.Module):
    """Cross entropy with the ignore index; for a training output with auxiliary logits (UperNet's
    ``aux_head``), plus ``aux_weight`` times theirs, as MMSegmentation does."""

    def __init__(self, ignore_index: int) -> None:
        super().__init__()
        self.ce = nn.CrossEntropyLoss(ignore_index=ignore_index)

    def forward(self, out: Any, target: torch.Tensor) -> torch.Tensor:
        if isinstance(out, SegmentationOutput):
            return self.ce(out.logits.float(), target) + out.aux_weight * self.ce(out.aux_logits.float(), target)
        return self.ce(out.float(), target)


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Starts of the windows MMSegmentation's ``mode='slide'`` puts along a side of ``length``: every
    ``stride`` pixels, the last one moved back to end at the border (one window of the whole side
    when it is shorter than ``crop``)."""
    count = max(length - crop + stride - 1, 0) // stride + 1
    return [max(min(i * stride + crop, length) - crop, 0) for i in range(count)]


def slide_inference(model: nn.Module, images: torch.Tensor, crop: tuple[int, int],
                    stride: tuple[int, int]) -> torch.Tensor:
    """Logits of ``model`` over ``images`` ``(N, C, H, W)`` from ``crop`` windows every ``stride`` pixels,
    each window's logits (resized to the window, bilinearly, if the model returns another size)
    averaged where windows overlap (a count map), as MMSegmentation's sliding-window test."""
    (ch, cw), (sh, sw) = crop, stride
    height, width = images.shape[-2:]
    total: torch.Tensor | None = None
    count = images.new_zeros((1, 1, height, width), dtype=torch.float32)
    for top in window_starts(height, ch, sh):
        for left in window_starts(width, cw, sw):
            bottom, right = min(top + ch, height), min(left + cw, width)
            out = model(images[..., top:bottom, left:right])
            out = out.logits if isinstance(out, SegmentationOutput) else out
            if tuple(out.shape[-2:]) != (bottom - top, right - left):
                out = F.interpolate(out.float(), size=(bottom - top, right - left), mode="bilinear", align_corners=False)
            if total is None:
                total = out.new_zeros((*out.shape[:2], height, width), dtype=torch.float32)
            total[..., top:bottom, left:right] += out.float()
            count[..., top:bottom, left:right] += 1
    assert total is not None  # at least one window on every side
    return total / count


class SlidingWindow(nn.Module):
    """``model`` evaluated by :func:`slide_inference` (wrap a segmentation model with it to test by
    sliding windows; MMSegmentation's ADE20K setting is ``crop=512, stride=341``)."""

    def __init__(self, model: nn.Module, crop: int | tuple[int, int] = 512, stride: int | tuple[int, int] = 341) -> None:
        super().__init__()

        def pair(v: int | tuple[int, int]) -> tuple[int, ...]:
            return (v, v) if isinstance(v, int) else tuple(v)

        crops, strides = pair(crop), pair(stride)
        for name, value in (("crop", crops), ("stride", strides)):
            if len(value) != 2:
                raise ValueError(f"sliding window {name} must be an int or (height, width), got {value!r}")
            for v in value:
                check_int(f"sliding window {name}", v, min=1)
        self.model = model
        self.crop: tuple[int, int] = (crops[0], crops[1])
        self.stride: tuple[int, int] = (strides[0], strides[1])
        if self.stride[0] > self.crop[0] or self.stride[1] > self.crop[1]:
            raise ValueError(f"sliding window stride {self.stride} is larger than its crop {self.crop}: pixels "
                             "between windows would get no prediction; use a stride of at most the crop")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return slide_inference(self.model, images, self.crop, self.stride)


class Segmentation(LabelTask):
    """One class per pixel (pixels labelled with the dataset's ignore index do not count)."""

    name = "segmentation"
    metric = "miou"
    metrics = ("loss", "miou", "pixel_acc")
    default_model = "wavemix_seg"
    input_size = (512, 512)
    slides = True

    def windowed(self, model: nn.Module, crop: int, stride: int) -> nn.Module:
        return SlidingWindow(model, crop, stride)

    def loss(self, info: DatasetInfo | None = None, *, label_smoothing: float = 0.0) -> nn.Module:
        ignore = -100 if info is None or info.ignore_index is None else info.ignore_index
        return _SegmentationLoss(ignore)

    def meter(self, info: DatasetInfo) -> SegmentationMeter:
        return SegmentationMeter(self.class_count(info), info.ignore_index)

    def synthetic_target(self, out: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, max(1, int(out.shape[1])), (n, *out.shape[2:]), generator=generator)

    def planned_files(self, names: list[str], out_dir: Path, model: nn.Module) -> list[Path]:
        return [out_dir / f"{n}_{kind}.png" for n in names for kind in ("mask", "overlay")]

    def render(self, item: PredictItem, *, info: DatasetInfo, model: nn.Module, out_dir: Path | None,
               topk: int) -> dict[str, Any]:
        from PIL import Image

        assert out_dir is not None  # needs_output: predict gives render its folder
        labels, n = item.out.argmax(0), self.class_count(info)
        names = info.class_names or tuple(str(i) for i in range(n))
        rgb = palette(n)
        colours = torch.tensor(rgb, dtype=torch.float32) / 255.0
        image = item.raw if item.raw.shape[0] == 3 else item.raw[:1].expand(3, -1, -1)
        if tuple(image.shape[-2:]) != tuple(labels.shape):
            image = resize(image, tuple(labels.shape))
        painted = colours[labels].permute(2, 0, 1)
        paint = torch.tensor([name.lower() != "background" for name in names])[labels].float()
        overlay = image * (1 - 0.55 * paint) + painted * 0.55 * paint
        mask_img = Image.fromarray(labels.to(torch.uint8).numpy(), mode="P")
        mask_img.putpalette([c for colour in rgb for c in colour])
        counts = torch.bincount(labels.flatten(), minlength=n).double() / labels.numel()
        legend = [(rgb[i], f"{names[i]} {100 * float(counts[i]):.1f} %") for i in range(n) if counts[i] > 0]
        factor = readable_scale(*labels.shape)
        drawing = with_legend(to_pil(upscale(overlay, factor)), legend, title="class, pixels")
        mask_path, overlay_path = self.planned_files([item.stem], out_dir, model)
        atomic_write_bytes(mask_path, png_bytes(mask_img))
        atomic_write_bytes(overlay_path, png_bytes(drawing))
        classes = {names[i]: 100.0 * float(counts[i]) for i in range(n) if counts[i] > 0}
        return {"image": str(item.path), "mask": str(mask_path), "overlay": str(overlay_path), "classes": classes}

    def describe(self, result: dict[str, Any]) -> str:
        shares = ", ".join(f"{name} {share:.1f} %" for name, share in sorted(result["classes"].items(), key=lambda kv: -kv[1]))
        return f"{result['image']}: {shares}\n  mask {result['mask']}\n  overlay {result['overlay']}"
