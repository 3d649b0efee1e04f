"""What differs between tasks: the loss, the meter, the metric that selects the best epoch,
and the model hyperparameters a dataset fixes (input channels, classes, scale)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict

import torch
import torch.nn as nn

from ..losses import TokenLabelLoss
from ..models.wave_vit import TokenLabelOutput
from .metrics import ClassificationMeter, Meter, SegmentationMeter, SuperResolutionMeter

__all__ = ["TaskSpec", "class_logits", "get_task"]


@dataclass(frozen=True)
class TaskSpec:
    """How the engine handles one task.

    Attributes:
        name: the task.
        metric: the validation metric that selects the best weights (higher is better).
        metrics: the metrics shown in summaries, in order.
    """

    name: str
    metric: str
    metrics: tuple

    def model_args(self, info: Any) -> Dict[str, Any]:
        """Hyperparameters the dataset decides."""
        args: Dict[str, Any] = {"in_chans": info.in_chans}
        if self.name == "super_resolution":
            if info.scale is not None:
                args["scale"] = info.scale
        else:
            args["num_classes"] = info.num_classes
        return args

    def loss_fn(self, info: Any, label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self.name == "classification":
            return _ClassificationLoss(label_smoothing)
        if self.name == "segmentation":
            ignore = -100 if info.ignore_index is None else info.ignore_index
            return _InFloat32(nn.CrossEntropyLoss(ignore_index=ignore))
        return _InFloat32(nn.L1Loss())

    def meter(self, info: Any) -> Meter:
        if self.name == "classification":
            return ClassificationMeter(info.num_classes)
        if self.name == "segmentation":
            return SegmentationMeter(info.num_classes, info.ignore_index)
        return SuperResolutionMeter(border=info.scale or 0)

    def check_target(self, target: torch.Tensor, info: Any) -> None:
        """Labels out of range raise a ValueError naming the value (before the loss hides it)."""
        if self.name == "super_resolution":
            return
        t = target
        if info.ignore_index is not None:
            t = t[t != info.ignore_index]
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= info.num_classes):
            bad = int(t.max()) if int(t.max()) >= info.num_classes else int(t.min())
            raise ValueError(
                f"label {bad} is out of range for dataset {info.name!r} with {info.num_classes} classes "
                f"(valid 0..{info.num_classes - 1}"
                + (f", ignore index {info.ignore_index})" if info.ignore_index is not None else ")")
                + "; check the labels or num_classes"
            )


class _InFloat32(nn.Module):
    """A loss computed in float32 whatever precision autocast left the output in."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(out.float(), target)


class _ClassificationLoss(nn.Module):
    """Cross entropy; for a token-labeling model's training output (Wave-ViT) the token-labeling loss."""

    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.token_labeling = TokenLabelLoss(label_smoothing=label_smoothing)

    def forward(self, out: Any, target: torch.Tensor) -> torch.Tensor:
        if isinstance(out, TokenLabelOutput):
            return self.token_labeling(out._replace(logits=out.logits.float(), aux_logits=out.aux_logits.float()), target)
        return self.ce(out.float(), target)


def class_logits(out: Any) -> torch.Tensor:
    """The (B, classes) logits of a model output (the class head's for a token-labeling output)."""
    return out.logits if isinstance(out, TokenLabelOutput) else out


_TASKS = {
    "classification": TaskSpec("classification", "top1", ("loss", "top1", "top5")),
    "segmentation": TaskSpec("segmentation", "miou", ("loss", "miou", "pixel_acc")),
    "super_resolution": TaskSpec("super_resolution", "psnr", ("loss", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")),
}


def get_task(name: str) -> TaskSpec:
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(_TASKS)}")
    return _TASKS[name]

