"""Training, evaluation and prediction: the library behind ``wavevision train/eval/predict``.

Quick start::

    from wavevision.engine import train
    result = train(dataset="digits", epochs=2)     # the digits recipe: a small WaveMix-Lite
    print(result.summary())                         # also in result.run_dir / "results.json"
"""
from .checkpoint import RUN_FILES, load_state, save_state
from .config import RECIPES, TrainConfig, load_yaml, resolve_config
from .distributed import DistContext, ShardSampler
from .evaluate import evaluate, evaluate_checkpoint, measure_throughput
from .metrics import (
    ClassificationMeter,
    SegmentationMeter,
    SuperResolutionMeter,
    confusion_matrix,
    miou_from_confusion,
    psnr,
    rgb_to_y,
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
    "rgb_to_y",
    "save_state",
    "ssim",
    "train",
]
