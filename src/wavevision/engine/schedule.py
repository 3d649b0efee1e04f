"""The optimizer and the learning-rate schedule of a training run.

:class:`LRSchedule` gives the learning rate of each optimizer step as a fraction of the peak:
cosine (to ``min_lr``, then ``cooldown_epochs`` at ``min_lr``), constant, step (times
``lr_gamma`` at each epoch of ``lr_milestones``) or poly (``(1 - t/T)^lr_power`` to ``min_lr``,
by iteration), after a linear warm-up of ``warmup_epochs`` or ``warmup_iters`` steps.

Two warm-ups: with ``warmup_ratio`` unset, the engine's own ramp (``(s + 1) / (W + 1)``), the
decay starting when it ends; with ``warmup_ratio`` set, the reference libraries' warm-up from
``warmup_ratio x lr``, the decay's clock running from step 0 under it: for the cosine it replaces
the first steps (timm's ``CosineLRScheduler``, ``warmup_prefix=False``), for step and poly it
scales the schedule's lr (MMCV's ``warmup="linear"``). The schedule moves every step where timm
moves every epoch, and equals timm's at each epoch's first step.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..utils.validate import check_float
from .config import TrainConfig

__all__ = ["OPTIMIZER_SLOTS", "LRSchedule", "WarmupCosine", "build_optimizer", "build_scheduler", "lr_schedule"]

# Tensors of optimizer state per parameter (for memory estimates): AdamW's two moments, SGD's momentum.
OPTIMIZER_SLOTS = {"adamw": 2, "sgd": 1}


class LRSchedule:
    """Learning-rate factor (of the peak lr) at each 0-based optimizer step (see the module docstring).

    Args:
        kind: ``cosine``, ``constant``, ``step`` or ``poly``.
        total_steps: the run's optimizer steps; ``steps_per_epoch`` those of one epoch.
        warmup_steps: the linear warm-up's length in steps.
        warmup_ratio: the fraction of the peak warm-up starts from (None: the engine's own ramp).
        min_ratio: ``min_lr / lr`` (cosine and poly).
        cooldown_steps: steps at ``min_ratio`` after the cosine.
        milestones, gamma: the step schedule (epochs, factor).
        power: the poly schedule's exponent.
    """

    def __init__(self, kind: str, total_steps: int, steps_per_epoch: int = 1, *, warmup_steps: int = 0,
                 warmup_ratio: float | None = None, min_ratio: float = 0.0, cooldown_steps: int = 0,
                 milestones: Sequence[int] = (), gamma: float = 0.1, power: float = 1.0) -> None:
        self.kind, self.total_steps, self.steps_per_epoch = kind, total_steps, max(1, steps_per_epoch)
        self.warmup_steps, self.warmup_ratio, self.min_ratio = warmup_steps, warmup_ratio, min_ratio
        self.cooldown_steps, self.milestones, self.gamma, self.power = cooldown_steps, tuple(milestones), gamma, power

    def __call__(self, step: int) -> float:
        w = self.warmup_steps
        if self.warmup_ratio is None:  # the engine's ramp, then the decay over the steps after it
            if step < w:
                return (step + 1) / (w + 1)
            return self._decay(step, step - w, self.total_steps - w)
        main = self._decay(step, step, self.total_steps)
        if step >= w:
            return main
        rise = self.warmup_ratio + (1.0 - self.warmup_ratio) * step / w
        return rise if self.kind == "cosine" else main * rise

    def _decay(self, step: int, t: int, span: int) -> float:
        """The schedule after warm-up: ``t`` steps into a decay of ``span`` steps (``step``: in the run)."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "step":  # by epoch, counted from the run's start as MMCV's epoch-based runner does
            epoch = step // self.steps_per_epoch
            return self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.kind == "poly":
            x = min(1.0, t / max(1, span))
            return self.min_ratio + (1.0 - self.min_ratio) * (1.0 - x) ** self.power
        x = min(1.0, t / max(1, span - self.cooldown_steps))  # cosine, then min_ratio through the cool-down
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * x))


class WarmupCosine(LRSchedule):
    """Learning-rate factor per step: linear warm-up from 0, then cosine to ``min_ratio`` (or constant)."""

    def __init__(self, total_steps: int, warmup_steps: int, min_ratio: float, kind: str = "cosine") -> None:
        super().__init__(kind, total_steps, warmup_steps=warmup_steps, min_ratio=min_ratio)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov when momentum > 0) with no weight decay on biases and norm scales."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int) -> LRSchedule:
    """The :class:`LRSchedule` of ``cfg`` over its ``epochs * steps_per_epoch`` optimizer steps."""
    min_ratio = check_float("min_lr / lr", cfg.min_lr / cfg.lr, min=0.0)
    warmup = cfg.warmup_iters or round(cfg.warmup_epochs * steps_per_epoch)
    return LRSchedule(cfg.scheduler, cfg.epochs * steps_per_epoch, steps_per_epoch, warmup_steps=warmup,
                      warmup_ratio=cfg.warmup_ratio, min_ratio=min_ratio,
                      cooldown_steps=cfg.cooldown_epochs * steps_per_epoch, milestones=cfg.lr_milestones,
                      gamma=cfg.lr_gamma, power=cfg.lr_power)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step ``LambdaLR`` of :func:`lr_schedule`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(cfg, steps_per_epoch))
