"""Classification: one label per image; cross entropy (token labeling for Wave-ViT), top-1/top-5."""
from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from ...data import DatasetInfo
from ...data.token_labels import TokenTargets, smooth
from ...losses import TokenLabelLoss, soft_target_cross_entropy
from ...outputs import TokenLabelOutput
from ...utils.io import write_json
from ...utils.table import format_table
from ..metrics import ClassificationMeter
from .base import LabelTask, PredictItem

__all__ = ["Classification", "class_logits"]


def class_logits(out: Any) -> torch.Tensor:
    """The (B, classes) logits of a model output (the class head's for a token-labeling output)."""
    return out.logits if isinstance(out, TokenLabelOutput) else out


def _labels(target: Any) -> torch.Tensor:
    """The image labels of a batch's targets (token-label targets carry them beside the distributions)."""
    return cast(torch.Tensor, target.label) if isinstance(target, TokenTargets) else target  # a batch's: collated


class _ClassificationLoss(nn.Module):
    """Cross entropy; for a token-labeling model's training output (Wave-ViT) the token-labeling loss,
    on the dense teacher targets when the dataset gives them (``token_labels``), smoothed here."""

    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.token_labeling = TokenLabelLoss(label_smoothing=label_smoothing)

    def forward(self, out: Any, target: Any) -> torch.Tensor:
        if isinstance(target, TokenTargets):
            cls, dense = smooth(target.cls.float(), self.label_smoothing), smooth(target.dense.float(), self.label_smoothing)
            if isinstance(out, TokenLabelOutput):
                return self.token_labeling(out._replace(logits=out.logits.float(), aux_logits=out.aux_logits.float()),
                                           cls, dense)
            return soft_target_cross_entropy(class_logits(out).float(), cls)
        if isinstance(out, TokenLabelOutput):
            return self.token_labeling(out._replace(logits=out.logits.float(), aux_logits=out.aux_logits.float()), target)
        return self.ce(out.float(), target)


class Classification(LabelTask):
    """One class per image."""

    name = "classification"
    mixes_labels = True
    metric = "top1"
    metrics = ("loss", "top1", "top5")
    default_model = "wavemix_lite"
    input_size = (224, 224)
    needs_output = False
    resizes_inputs = True

    def loss(self, info: DatasetInfo | None = None, *, label_smoothing: float = 0.0) -> nn.Module:
        return _ClassificationLoss(label_smoothing)

    def check_target(self, target: Any, info: DatasetInfo) -> None:
        super().check_target(_labels(target), info)

    def train_sums(self, out: Any, target: Any) -> dict[str, torch.Tensor]:
        return {"correct": (class_logits(out).detach().argmax(1) == _labels(target)).sum()}

    def train_metrics(self, sums: dict[str, float], count: float) -> dict[str, float]:
        return {"train_top1": 100.0 * sums["correct"] / max(count, 1)}

    def meter(self, info: DatasetInfo) -> ClassificationMeter:
        return ClassificationMeter(self.class_count(info))

    def output(self, out: Any) -> torch.Tensor:
        return class_logits(out).float()

    def synthetic_target(self, out: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, max(1, int(out.shape[1])), (n,), generator=generator)

    def planned_files(self, names: list[str], out_dir: Path, model: nn.Module) -> list[Path]:
        return [out_dir / "predictions.json"]

    def render(self, item: PredictItem, *, info: DatasetInfo, model: nn.Module, out_dir: Path | None,
               topk: int) -> dict[str, Any]:
        probs = item.out.softmax(0)
        values, idx = probs.topk(min(topk, probs.numel()))
        names = info.class_names or tuple(str(i) for i in range(probs.numel()))
        return {"image": str(item.path), "top": [
            {"class": int(i), "name": names[int(i)], "probability": float(v)} for v, i in zip(values, idx)]}

    def finish(self, results: list[dict[str, Any]], out_dir: Path | None) -> list[Path]:
        return [] if out_dir is None else [write_json(out_dir / "predictions.json", results)]

    def describe(self, result: dict[str, Any]) -> str:
        best = result["top"][0]
        table = format_table([{"rank": i + 1, "class": t["name"], "probability %": 100 * t["probability"]}
                              for i, t in enumerate(result["top"])])
        return f"{result['image']}: {best['name']} ({100 * best['probability']:.1f} %)\n{table}"
