"""Training, evaluation and prediction: the library behind ``wavevision train/eval/predict``.

Quick start::

    from wavevision.engine import train
    result = train(dataset="digits", epochs=2)     # the digits recipe: a small WaveMix-Lite
    print(result.summary())                         # also in result.run_dir / "results.json"

Which file owns what:

* ``trainer.py``: :func:`train` and the loop (train an epoch, validate, end the epoch, finish);
* ``plan.py``: :func:`prepare`, everything checked and built before the run directory changes;
* ``tasks/``: one :class:`Task` object per task (loss, targets, meter, collate, bench target,
  prediction files) and the registry (:func:`get_task`, :func:`register_task`);
* ``state.py``: :class:`TrainState` (model, optimizer, scheduler, scaler, position, history,
  best, totals) with atomic save/load and a fingerprint of the run;
* ``rundir.py``: :class:`RunDir` (config.yaml, overwrite, resume, the lock, the files a run writes);
* ``checkpoint.py``: the state file format and the random generators of a process;
* ``evaluate.py``, ``predict.py``: metrics of a model on a split; a checkpoint on image files;
* ``metrics.py``, ``plots.py``, ``config.py``, ``schedule.py``, ``sampling.py``, ``sizing.py``,
  ``runtime.py``, ``distributed.py``, ``result.py``: the pieces these use.
"""
from __future__ import annotations

from typing import Any

from ..ops.color import rgb_to_y as _rgb_to_y
from ..utils.deprecation import warn_deprecated
from .checkpoint import RUN_FILES, load_state, save_state
from .config import RECIPES, TrainConfig, load_yaml, resolve_config
from .distributed import DistContext, ShardSampler
from .evaluate import evaluate, evaluate_checkpoint, evaluate_pretrained, measure_throughput
from .metrics import (
    ClassificationMeter,
    SegmentationMeter,
    SuperResolutionMeter,
    confusion_matrix,
    miou_from_confusion,
    psnr,
    ssim,
)
from .plan import Plan, prepare
from .plots import plot_history
from .predict import Trained, check_fits, load_trained, predict
from .result import TrainResult
from .rundir import RunDir, RunDirLocked, command_config
from .state import TrainState
from .tasks import Task, get_task, list_tasks, register_task
from .trainer import Callback, LoopState, TrainingInterrupted, train

__all__ = [
    "RECIPES",
    "RUN_FILES",
    "Callback",
    "ClassificationMeter",
    "DistContext",
    "LoopState",
    "Plan",
    "RunDir",
    "RunDirLocked",
    "SegmentationMeter",
    "ShardSampler",
    "SuperResolutionMeter",
    "Task",
    "TrainConfig",
    "TrainState",
    "Trained",
    "TrainResult",
    "TrainingInterrupted",
    "confusion_matrix",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_pretrained",
    "check_fits",
    "command_config",
    "get_task",
    "list_tasks",
    "load_state",
    "load_trained",
    "load_yaml",
    "measure_throughput",
    "miou_from_confusion",
    "plot_history",
    "predict",
    "prepare",
    "psnr",
    "register_task",
    "resolve_config",
    "save_state",
    "ssim",
    "train",
]


def __getattr__(name: str) -> Any:
    # ``wavevision.engine.rgb_to_y`` was a second luma function beside ``wavevision.ops.rgb_to_y``
    if name == "rgb_to_y":
        warn_deprecated("wavevision.engine.rgb_to_y", "wavevision.ops.rgb_to_y (one-channel images are an error there)")
        return _rgb_to_y
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
