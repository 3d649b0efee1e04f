"""The :class:`Task` interface: everything the engine needs to know about what a task means.

The training loop, evaluation, prediction and ``bench`` call these methods and never ask which
task they run. A task owns how samples become a batch (:meth:`Task.collate`), how a batch
reaches the device, the checks of targets against the dataset, the loss, the running training
statistics, the metric meter and how one evaluated batch feeds it, the synthetic target a
benchmark trains on, and how a prediction becomes files. A new task (detection, whose targets
are a list of dicts per image, or instance segmentation) is a new subclass registered with
:func:`~wavevision.engine.tasks.register_task`, with no change to the loop.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn
from torch.utils.data import default_collate

from ...data import DatasetInfo
from ..metrics import Meter

__all__ = ["InFloat32", "LabelTask", "PredictItem", "Task"]

Loss = Callable[[Any, Any], torch.Tensor]


@dataclass
class PredictItem:
    """One image on its way through :func:`wavevision.engine.predict`.

    Attributes:
        path: the image file.
        raw: the image as loaded (C, H, W) in [0, 1], before normalisation.
        x: the model's input (C, H, W), normalised as the training data was.
        out: the model's prediction for it (the task's :meth:`Task.output` of one sample).
        name: the stem of its result files (default the image's stem; ``predict`` makes the
            names of images sharing a stem unique).
    """

    path: Path
    raw: torch.Tensor
    x: torch.Tensor
    out: Any
    name: str = ""

    @property
    def stem(self) -> str:
        """The stem of this image's result files."""
        return self.name or self.path.stem


class Task:
    """What one task means to the engine; subclasses override what differs.

    Class attributes:
        name: the key shared with the model registry and ``DatasetInfo.task``.
        metric: the validation metric that selects the best epoch (higher is better).
        metrics: the metrics shown in summaries, in order.
        default_model: the model trained when neither the configuration nor a recipe names one.
        input_size: the (H, W) a model of this task is measured at when nothing else says.
        needs_output: predictions are files, so ``predict`` needs an output folder.
        resizes_inputs: prediction resizes an image to the dataset's size (a dense task keeps
            the image's own size).
        mixes_labels: its targets are one class per image, which Mixup/CutMix can mix.
        slides: its models can be tested by sliding windows (:meth:`windowed`).
    """

    name: ClassVar[str] = ""
    metric: ClassVar[str] = "loss"
    metrics: ClassVar[tuple[str, ...]] = ("loss",)
    default_model: ClassVar[str] = ""
    input_size: ClassVar[tuple[int, int]] = (224, 224)
    needs_output: ClassVar[bool] = True
    resizes_inputs: ClassVar[bool] = False
    mixes_labels: ClassVar[bool] = False
    slides: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- the dataset recipe ----------------------------------------------------------------
    def model_args(self, info: DatasetInfo) -> dict[str, Any]:
        """The model hyperparameters the dataset decides (input channels, classes, scale)."""
        return {"in_chans": info.in_chans}

    def check_model(self, model_name: str, model_task: str, info: DatasetInfo, choices: list[str]) -> None:
        """Refuse a model registered for another task than the dataset's."""
        if model_task != self.name:
            raise ValueError(
                f"model {model_name!r} is a {_words(model_task)} model but dataset {info.name!r} is for "
                f"{_words(self.name)}; choose one of: {', '.join(choices)}"
            )

    def fit_data(self, name: str, args: dict[str, Any], data: Any, info: DatasetInfo, *, chosen: bool,
                 model: nn.Module | None = None) -> dict[str, Any]:
        """The model arguments for training on ``data`` (what the first sample shows it holds): the
        task may change a default model's (``chosen`` False) or refuse a chosen one (or a given
        ``model``) in one line naming the alternatives. The base keeps them."""
        return args

    def bench_note(self, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        """What a reader of a benchmark row of ``model`` (in eval mode, one ``input_shape`` input)
        needs to know to read its numbers; the base has nothing to add."""
        return ""

    def check_fits(self, model: nn.Module, model_task: str, info: DatasetInfo, where: str) -> None:
        """Raise a ValueError when ``model`` (of ``model_task``) cannot run on data described by ``info``."""
        if info.task != model_task:
            raise ValueError(f"{where}, but dataset {info.name!r} is for {_words(info.task)}; "
                             "pick a checkpoint of that task or a dataset of this one")
        chans = getattr(model, "in_chans", info.in_chans)
        if chans != info.in_chans:
            raise ValueError(f"{where} with {chans} input channel(s), but dataset {info.name!r} has {info.in_chans}")

    # -- batches ------------------------------------------------------------------------------
    def collate(self, samples: list[Any]) -> Any:
        """Samples of the dataset -> one batch (stacked tensors by default)."""
        return default_collate(samples)

    def to_device(self, batch: Any, device: torch.device) -> tuple[Any, Any]:
        """A collated batch -> ``(inputs, targets)`` on ``device``."""
        x, y = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def check_target(self, target: Any, info: DatasetInfo) -> None:
        """Raise a ValueError naming a target the dataset cannot hold (before the loss hides it)."""

    def windowed(self, model: nn.Module, crop: int, stride: int) -> nn.Module:
        """``model`` evaluated by sliding windows of ``crop`` pixels every ``stride`` (a dense task's
        option; the others refuse it in one line)."""
        raise ValueError(f"sliding-window evaluation is for segmentation, not {self.name}; drop sliding_window")

    def forward(self, model: nn.Module, inputs: Any, targets: Any) -> Any:
        """Run ``model`` on a batch for training or evaluation: ``model(inputs)`` by default (a
        detector takes the targets too in training, where it returns its losses)."""
        return model(inputs)

    # -- training -----------------------------------------------------------------------------
    def loss(self, info: DatasetInfo | None = None, *, label_smoothing: float = 0.0) -> Loss:
        """``loss(model_output, targets)``, a scalar computed in float32 (``info`` None: defaults)."""
        raise NotImplementedError

    def train_sums(self, out: Any, target: Any) -> dict[str, torch.Tensor]:
        """Per-batch sums the training loop accumulates beside the loss (e.g. correct predictions)."""
        return {}

    def train_metrics(self, sums: dict[str, float], count: float) -> dict[str, float]:
        """The epoch's training record entries from the accumulated :meth:`train_sums`."""
        return {}

    # -- evaluation ---------------------------------------------------------------------------
    def meter(self, info: DatasetInfo) -> Meter:
        """A fresh meter for one evaluation pass."""
        raise NotImplementedError

    def output(self, out: Any) -> Any:
        """The prediction part of a model's output, in float32."""
        return out.float()

    def nonfinite(self, out: Any) -> torch.Tensor:
        """How many samples of :meth:`output` hold NaN or infinity."""
        return (~torch.isfinite(out)).flatten(1).any(1).sum()

    def evaluate_batch(self, meter: Meter, loss: Loss, out: Any, inputs: Any, target: Any, info: DatasetInfo) -> None:
        """Feed one evaluated batch (``out`` already through :meth:`output`) into ``meter``."""
        meter.add_loss(loss(out, target), len(inputs))
        meter.update(out, target)

    # -- benchmarks ---------------------------------------------------------------------------
    def synthetic_target(self, out: Any, n: int, generator: torch.Generator) -> Any:
        """Random targets for ``n`` inputs, shaped after ``out`` (one sample's output in eval mode)."""
        raise NotImplementedError

    # -- prediction ---------------------------------------------------------------------------
    def planned_files(self, names: list[str], out_dir: Path, model: nn.Module) -> list[Path]:
        """The files :meth:`render` and :meth:`finish` will write for images whose results are
        named ``names`` (:attr:`PredictItem.stem`), checked before any is written."""
        return []

    def render(self, item: PredictItem, *, info: DatasetInfo, model: nn.Module, out_dir: Path | None,
               topk: int) -> dict[str, Any]:
        """Turn one prediction into a result record (and files in ``out_dir``)."""
        raise NotImplementedError

    def finish(self, results: list[dict[str, Any]], out_dir: Path | None) -> list[Path]:
        """Write what covers all images (called once after :meth:`render`); returns the files written."""
        return []

    def describe(self, result: dict[str, Any]) -> str:
        """A few readable lines about one :meth:`render` record (the ``predict`` command prints them)."""
        return str(result)


class LabelTask(Task):
    """A task whose targets are class labels (per image or per pixel): the dataset fixes the classes."""

    def model_args(self, info: DatasetInfo) -> dict[str, Any]:
        return {**super().model_args(info), "num_classes": info.num_classes}

    def check_fits(self, model: nn.Module, model_task: str, info: DatasetInfo, where: str) -> None:
        super().check_fits(model, model_task, info, where)
        classes = getattr(model, "num_classes", info.num_classes)
        if classes != info.num_classes:
            raise ValueError(f"{where} with {classes} classes, but dataset {info.name!r} has {info.num_classes}")

    @staticmethod
    def class_count(info: DatasetInfo) -> int:
        """The classes of ``info`` (every dataset of a label task has them)."""
        assert info.num_classes is not None, f"dataset {info.name!r} of a label task has no num_classes"
        return info.num_classes

    def check_target(self, target: Any, info: DatasetInfo) -> None:
        """Labels outside ``0..num_classes-1`` (the ignore index aside) raise a ValueError naming the value."""
        if not target.numel():
            return
        classes = self.class_count(info)
        t = target if info.ignore_index is None else torch.where(target == info.ignore_index, 0, target)
        lo, hi = (int(v) for v in torch.aminmax(t))  # one pass, one device sync per batch
        if lo < 0 or hi >= classes:
            bad = hi if hi >= classes else lo
            raise ValueError(
                f"label {bad} is out of range for dataset {info.name!r} with {classes} classes "
                f"(valid 0..{classes - 1}"
                + (f", ignore index {info.ignore_index})" if info.ignore_index is not None else ")")
                + "; check the labels or num_classes"
            )


class InFloat32(nn.Module):
    """A loss computed in float32 whatever precision autocast left the output in."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(out.float(), target)


def _words(task: str) -> str:
    return task.replace("_", "-")
