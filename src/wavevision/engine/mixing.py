"""Mixup / CutMix with soft targets, from timm (the vision extra).

:func:`build_mix` gives timm's ``timm.data.Mixup`` set from the configuration (``mixup_alpha``,
``cutmix_alpha``, ``mix_prob``, ``mix_switch_prob``, ``mix_mode``; ``label_smoothing`` moves into
the soft targets, as in timm's and DeiT's training scripts), or None when both alphas are 0. The
training step mixes each batch and the classification loss takes the soft targets
(cross entropy against probabilities: timm's ``SoftTargetCrossEntropy``). timm mixes a batch
with its reverse, so an odd batch leaves its last sample out (timm's loader drops the short batch).
"""
from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # config imports this module (through recipe.py) to name the gap
    from .config import TrainConfig
    from .tasks import Task

__all__ = ["TIMM_HINT", "build_mix", "have_timm", "mixes"]

TIMM_HINT = "install the vision extra: pip install 'wavevision[vision]'"


def have_timm() -> bool:
    """Whether timm is installed (without importing it)."""
    return importlib.util.find_spec("timm") is not None


def mixes(cfg: TrainConfig) -> bool:
    """Whether ``cfg`` asks for Mixup or CutMix."""
    return cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0


def build_mix(cfg: TrainConfig, task: Task, num_classes: int | None) -> Any:
    """timm's ``Mixup`` for ``cfg`` (None without Mixup/CutMix); a one-line ValueError when the task's
    targets are not one class per image or timm is missing."""
    if not mixes(cfg):
        return None
    if not task.mixes_labels or not num_classes:
        raise ValueError(f"mixup_alpha / cutmix_alpha mix class labels, but this is a {task.name} dataset: "
                         "set both to 0")
    try:
        from timm.data import Mixup  # optional: the vision extra
    except ImportError:
        raise ValueError(f"mixup_alpha / cutmix_alpha use timm's Mixup, which is not installed: {TIMM_HINT}, "
                         "or set both to 0") from None
    return Mixup(mixup_alpha=cfg.mixup_alpha, cutmix_alpha=cfg.cutmix_alpha, prob=cfg.mix_prob,
                 switch_prob=cfg.mix_switch_prob, mode=cfg.mix_mode, label_smoothing=cfg.label_smoothing,
                 num_classes=num_classes)
