"""Semantic segmentation: a class per pixel; cross entropy with an ignore index, mIoU and pixel accuracy."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ...data import DatasetInfo
from ...models.upernet import SegmentationOutput
from ...utils.io import atomic_write_bytes
from ..metrics import SegmentationMeter
from ._images import palette, png_bytes, readable_scale, to_pil, upscale, with_legend
from .base import LabelTask, PredictItem

__all__ = ["Segmentation"]


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


class Segmentation(LabelTask):
    """One class per pixel (pixels labelled with the dataset's ignore index do not count)."""

    name = "segmentation"
    metric = "miou"
    metrics = ("loss", "miou", "pixel_acc")
    default_model = "wavemix_seg"
    input_size = (512, 512)

    def loss(self, info: DatasetInfo | None = None, *, label_smoothing: float = 0.0) -> nn.Module:
        ignore = -100 if info is None or info.ignore_index is None else info.ignore_index
        return _SegmentationLoss(ignore)

    def meter(self, info: DatasetInfo) -> SegmentationMeter:
        return SegmentationMeter(info.num_classes, info.ignore_index)

    def synthetic_target(self, out: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, max(1, int(out.shape[1])), (n, *out.shape[2:]), generator=generator)

    def planned_files(self, names: list[str], out_dir: Path, model: nn.Module) -> list[Path]:
        return [out_dir / f"{n}_{kind}.png" for n in names for kind in ("mask", "overlay")]

    def render(self, item: PredictItem, *, info: DatasetInfo, model: nn.Module, out_dir: Path | None,
               topk: int) -> dict[str, Any]:
        from PIL import Image

        labels, n = item.out.argmax(0), info.num_classes
        names = info.class_names or tuple(str(i) for i in range(n))
        rgb = palette(n)
        colours = torch.tensor(rgb, dtype=torch.float32) / 255.0
        image = item.raw if item.raw.shape[0] == 3 else item.raw[:1].expand(3, -1, -1)
        if tuple(image.shape[-2:]) != tuple(labels.shape):
            from ...data.transforms import resize

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
