"""What a training run produced: :class:`TrainResult` (also ``results.json`` in the run directory)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn as nn

from ..utils.table import format_table
from .tasks import get_task

__all__ = ["TrainResult"]

_NOT_SAVED = ("model", "note")


@dataclass
class TrainResult:
    """What a run produced (``to_dict()`` is the JSON record written to ``results.json``)."""

    run_dir: Path | None
    task: str
    model_name: str
    model_args: dict[str, Any]
    dataset: str
    params: int
    epochs: int
    best_epoch: int
    val: dict[str, float]
    test: dict[str, float] | None
    train_seconds: float
    train_images_per_second: float
    inference_images_per_second: float | None
    world_size: int
    weights_sha256: list[str]
    history: list[dict[str, Any]]
    config: dict[str, Any]
    plots: str | None = None
    recipe: dict[str, Any] | None = None  # {"name", "overrides": {key: [recipe, run]}, "missing": [...]}
    model: nn.Module | None = field(default=None, repr=False)
    note: str | None = field(default=None, repr=False)  # e.g. "the run was already complete"

    @property
    def metric(self) -> str:
        """The validation metric that chose the best epoch."""
        return get_task(self.task).metric

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _NOT_SAVED}
        out["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        out["metric"] = self.metric
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TrainResult:
        """The result of a ``results.json`` record (``model`` is not part of it)."""
        names = {f.name for f in dataclasses.fields(cls)} - set(_NOT_SAVED)
        missing = sorted(n for n in names if n not in record and cls.__dataclass_fields__[n].default is dataclasses.MISSING)
        if missing:
            raise ValueError(f"a training result needs {', '.join(missing)}")
        values = {k: record[k] for k in names if k in record}
        if values.get("run_dir") is not None:
            values["run_dir"] = Path(values["run_dir"])
        return cls(**values)

    def summary(self) -> str:
        """A readable table of the run's final numbers."""
        metrics = get_task(self.task).metrics
        rows = []
        for split, values in (("val (best)", self.val), ("test", self.test)):
            if values:
                rows.append({"split": split, **{m: values.get(m) for m in metrics}})
        table = format_table(rows, ["split", *[m for m in metrics if any(r.get(m) is not None for r in rows)]])
        lines = [
            f"{self.model_name} on {self.dataset} ({self.task}): {self.params:,} parameters, "
            f"best epoch {self.best_epoch}/{self.epochs}",
            table,
            f"training: {self.train_seconds:.1f} s, {self.train_images_per_second:,.0f} images/s"
            + (f" over {self.world_size} processes" if self.world_size > 1 else ""),
        ]
        if self.inference_images_per_second:
            lines.append(f"inference: {self.inference_images_per_second:,.0f} images/s")
        if self.plots:
            lines.append(f"plots: {self.plots}")
        if self.run_dir is not None:
            lines.append(f"run directory: {self.run_dir}")
        return "\n".join(lines)
