"""Super-resolution: an image upscaled by the model's scale; L1 loss, PSNR/SSIM on Y beside bicubic."""
from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from ...data import DatasetInfo, bicubic_upsample
from ...utils.io import atomic_write_bytes
from ..metrics import Meter, SuperResolutionMeter
from ._images import png_bytes, side_by_side, to_pil
from .base import InFloat32, Loss, PredictItem, Task

__all__ = ["SuperResolution"]


class SuperResolution(Task):
    """A high-resolution image from a low-resolution one (targets in [0, 1], no normalisation)."""

    name = "super_resolution"
    metric = "psnr"
    metrics = ("loss", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
    default_model = "wavemix_paper_sr"
    input_size = (64, 64)

    def model_args(self, info: DatasetInfo) -> dict[str, Any]:
        args = super().model_args(info)
        if info.scale is not None:
            args["scale"] = info.scale
        return args

    def check_fits(self, model: nn.Module, model_task: str, info: DatasetInfo, where: str) -> None:
        super().check_fits(model, model_task, info, where)
        scale = getattr(model, "scale", info.scale)
        if info.scale is not None and scale != info.scale:
            raise ValueError(f"{where} for x{scale}, but dataset {info.name!r} is x{info.scale}; "
                             f"pass the dataset option scale={scale}")

    def loss(self, info: DatasetInfo | None = None, *, label_smoothing: float = 0.0) -> nn.Module:
        return InFloat32(nn.L1Loss())

    def meter(self, info: DatasetInfo) -> SuperResolutionMeter:
        return SuperResolutionMeter(border=info.scale or 0)

    def evaluate_batch(self, meter: Meter, loss: Loss, out: Any, inputs: Any, target: Any, info: DatasetInfo) -> None:
        super().evaluate_batch(meter, loss, out, inputs, target, info)
        assert info.scale is not None, f"super-resolution dataset {info.name!r} has no scale"
        meter.update(bicubic_upsample(inputs.float(), info.scale), target, prefix="bicubic_")

    def synthetic_target(self, out: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand((n, *out.shape[1:]), generator=generator)

    def planned_files(self, names: list[str], out_dir: Path, model: nn.Module) -> list[Path]:
        scale = getattr(model, "scale", 2)
        return [out_dir / f"{n}_{kind}.png" for n in names for kind in (f"x{scale}", "compare")]

    def render(self, item: PredictItem, *, info: DatasetInfo, model: nn.Module, out_dir: Path | None,
               topk: int) -> dict[str, Any]:
        assert out_dir is not None  # needs_output: predict gives render its folder
        lr, sr, scale = item.x.cpu(), item.out, cast(int, model.scale)
        up_path, cmp_path = self.planned_files([item.stem], out_dir, model)
        up = to_pil(sr)
        atomic_write_bytes(up_path, png_bytes(up))
        compare = side_by_side([to_pil(bicubic_upsample(lr, scale)), up], [f"bicubic x{scale}", f"model x{scale}"])
        atomic_write_bytes(cmp_path, png_bytes(compare))
        return {"image": str(item.path), "upscaled": str(up_path), "comparison": str(cmp_path),
                "size": [int(sr.shape[-2]), int(sr.shape[-1])], "input_size": [int(lr.shape[-2]), int(lr.shape[-1])]}

    def describe(self, result: dict[str, Any]) -> str:
        (h, w), (hh, ww) = result["input_size"], result["size"]
        return f"{result['image']}: {w}x{h} -> {ww}x{hh}\n  upscaled {result['upscaled']}\n  comparison {result['comparison']}"
