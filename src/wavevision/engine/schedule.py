"""The optimizer and the learning-rate schedule of a training run."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..utils.validate import check_float
from .config import TrainConfig

__all__ = ["OPTIMIZER_SLOTS", "WarmupCosine", "build_optimizer", "build_scheduler"]

# Tensors of optimizer state per parameter (for memory estimates): AdamW's two moments, SGD's momentum.
OPTIMIZER_SLOTS = {"adamw": 2, "sgd": 1}


class WarmupCosine:
    """Learning-rate factor per step: linear warm-up from 0, then cosine to ``min_ratio`` (or constant)."""

    def __init__(self, total_steps: int, warmup_steps: int, min_ratio: float, kind: str = "cosine") -> None:
        self.total_steps, self.warmup_steps, self.min_ratio, self.kind = total_steps, warmup_steps, min_ratio, kind

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


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


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step ``LambdaLR`` of :class:`WarmupCosine` over the run's ``epochs * steps_per_epoch`` steps."""
    min_ratio = check_float("min_lr / lr", cfg.min_lr / cfg.lr, min=0.0)
    schedule = WarmupCosine(cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch), min_ratio,
                            cfg.scheduler)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
