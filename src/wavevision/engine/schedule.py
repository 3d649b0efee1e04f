"""The optimizer and the learning-rate schedule of a training run.

:class:`LRSchedule` gives the learning rate of each optimizer step as a fraction of the peak:
cosine (to ``min_lr``, then ``cooldown_epochs`` at ``min_lr``), constant, step (times
``lr_gamma`` at each epoch of ``lr_milestones``) or poly (``(1 - t/T)^lr_power`` to ``min_lr``,
by iteration), after a linear warm-up of ``warmup_epochs`` or ``warmup_iters`` steps.

Two warm-ups: with ``warmup_ratio`` unset, the engine's own ramp (``(s + 1) / (W + 1)``), the
decay starting when it ends; with ``warmup_ratio`` set, the reference libraries' warm-up from
``warmup_ratio x lr``, the decay's clock running from step 0 under it: for the cosine it replaces
the first steps (timm's ``CosineLRScheduler``, ``warmup_prefix=False``), for step and poly it
scales the schedule's lr (MMCV's ``warmup="linear"``); with ``warmup_prefix`` as well, the ramp from
``warmup_ratio`` alone, the decay's clock starting when it ends (MMEngine's ``LinearLR`` followed by
a scheduler that begins there). The schedule moves every step where timm moves every epoch, and
equals timm's at each epoch's first step.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn as nn

from ..utils.validate import check_float
from .config import TrainConfig

__all__ = ["OPTIMIZER_SLOTS", "LRSchedule", "WarmupCosine", "build_optimizer", "build_scheduler", "lr_schedule",
           "param_groups", "phase2_config", "stage_wise_id"]

# Tensors of optimizer state per parameter (for memory estimates): AdamW's two moments, SGD's momentum.
OPTIMIZER_SLOTS = {"adamw": 2, "sgd": 1}


class LRSchedule:
    """Learning-rate factor (of the peak lr) at each 0-based optimizer step (see the module docstring).

    Args:
        kind: ``cosine``, ``constant``, ``step`` or ``poly``.
        total_steps: the run's optimizer steps; ``steps_per_epoch`` those of one epoch.
        warmup_steps: the linear warm-up's length in steps.
        warmup_ratio: the fraction of the peak warm-up starts from (None: the engine's own ramp).
        warmup_prefix: with ``warmup_ratio``, the decay starts after the warm-up instead of under it.
        min_ratio: ``min_lr / lr`` (cosine and poly).
        cooldown_steps: steps at ``min_ratio`` after the cosine.
        milestones, gamma: the step schedule (epochs, factor).
        power: the poly schedule's exponent.
    """

    def __init__(self, kind: str, total_steps: int, steps_per_epoch: int = 1, *, warmup_steps: int = 0,
                 warmup_ratio: float | None = None, warmup_prefix: bool = False, min_ratio: float = 0.0,
                 cooldown_steps: int = 0, milestones: Sequence[int] = (), gamma: float = 0.1,
                 power: float = 1.0) -> None:
        self.kind, self.total_steps, self.steps_per_epoch = kind, total_steps, max(1, steps_per_epoch)
        self.warmup_steps, self.warmup_ratio, self.min_ratio = warmup_steps, warmup_ratio, min_ratio
        self.warmup_prefix = warmup_prefix
        self.cooldown_steps, self.milestones, self.gamma, self.power = cooldown_steps, tuple(milestones), gamma, power

    def __call__(self, step: int) -> float:
        w = self.warmup_steps
        if self.warmup_ratio is None:  # the engine's ramp, then the decay over the steps after it
            if step < w:
                return (step + 1) / (w + 1)
            return self._decay(step, step - w, self.total_steps - w)
        rise = self.warmup_ratio + (1.0 - self.warmup_ratio) * step / max(1, w)
        if self.warmup_prefix:  # the ramp alone, then the decay over the steps after it
            return rise if step < w else self._decay(step, step - w, self.total_steps - w)
        main = self._decay(step, step, self.total_steps)
        if step >= w:
            return main
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


# Parameter names the pos_embed kind keeps out of weight decay (MMCV custom_keys, timm's no_weight_decay lists).
_POSITION_NAMES = ("pos_embed", "pos_block", "cls_token", "absolute_pos", "relative_position_bias_table")
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _exempt(model: nn.Module, kinds: set[str]) -> set[str]:
    """Names of the trainable parameters of ``model`` that ``kinds`` keep out of weight decay."""
    skip = set(cast(Any, model).no_weight_decay()) if "1d" in kinds and hasattr(model, "no_weight_decay") else set()
    norm_params = {f"{m_name}.{p_name}" if m_name else p_name for m_name, m in model.named_modules()
                   if isinstance(m, _NORMS) for p_name, _ in m.named_parameters(recurse=False)}
    out = set()
    for n, p in model.named_parameters():
        if (("1d" in kinds and (p.ndim <= 1 or n in skip))
                or ("norm" in kinds and (n in norm_params or "norm" in n))
                or ("bias" in kinds and n.endswith("bias"))
                or ("pos_embed" in kinds and any(k in n for k in _POSITION_NAMES))):
            out.add(n)
    return out


# MMSegmentation's stage ids of a ConvNeXt backbone (timm's names, under an optional ``backbone.``): the stem
# and every stage's downsampling layer, then each stage's blocks.
_STEM_OR_DOWNSAMPLE = re.compile(r"^(?:backbone\.)?(?:stem\.|stages\.\d+\.downsample\.)")
_STAGE_BLOCKS = re.compile(r"^(?:backbone\.)?stages\.(\d+)\.blocks\.")


def stage_wise_id(name: str, num_layers: int) -> int:
    """MMSegmentation's stage id of parameter ``name`` (``get_stage_id_for_convnext``, ``decay_type='stage_wise'``,
    in timm's ConvNeXt names): 0 for the stem and the downsampling layers, ``i + 1`` for stage ``i``'s
    blocks, ``num_layers + 1`` for everything else (decoders, auxiliary heads, per-stage output norms)."""
    if _STEM_OR_DOWNSAMPLE.match(name):
        return 0
    block = _STAGE_BLOCKS.match(name)
    return int(block.group(1)) + 1 if block else num_layers + 1


def _stage_wise_groups(model: nn.Module, cfg: TrainConfig, exempt: set[str]) -> list[dict]:
    """MMSegmentation's ``LearningRateDecayOptimizerConstructor`` with ``decay_type='stage_wise'``: a group
    per (stage id, decayed or not), lr x ``layer_decay ** (layer_decay_layers + 1 - id)``."""
    assert cfg.layer_decay is not None and cfg.layer_decay_layers is not None  # TrainConfig.validate says so
    groups: dict[tuple[int, bool], dict] = {}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not any(_STAGE_BLOCKS.match(n) for n, _ in named):
        raise ValueError(f"layer_decay_type stage_wise needs a ConvNeXt-layout model (stem, stages.N.downsample, "
                         f"stages.N.blocks), but {type(model).__name__} has no stages.N.blocks parameters; use "
                         "layer_decay_type layer_wise")
    for n, p in named:
        layer, decay = stage_wise_id(n, cfg.layer_decay_layers), n not in exempt
        if (layer, decay) not in groups:
            scale = cfg.layer_decay ** (cfg.layer_decay_layers + 1 - layer)
            groups[layer, decay] = {"params": [], "weight_decay": cfg.weight_decay if decay else 0.0,
                                    "lr_scale": scale, "lr": cfg.lr * scale}
        groups[layer, decay]["params"].append(p)
    return list(groups.values())


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: ``weight_decay`` on all but the ``no_decay`` kinds; with
    ``layer_decay``, timm's ``param_groups_layer_decay`` (one group per layer, ``lr`` scaled) or, with
    ``layer_decay_type='stage_wise'``, MMSegmentation's stage-wise groups (:func:`stage_wise_id`)."""
    kinds = set() if cfg.no_decay == "none" else {k.strip() for k in cfg.no_decay.split(",")}
    exempt = _exempt(model, kinds)
    if cfg.layer_decay is not None and cfg.layer_decay_type == "stage_wise":
        return _stage_wise_groups(model, cfg, exempt)
    if cfg.layer_decay is not None:
        try:  # optional extra: timm's grouping by the model's group_matcher
            from timm.optim import param_groups_layer_decay
        except ImportError as e:
            raise ValueError("layer_decay needs timm's param_groups_layer_decay: pip install 'wavevision[vision]' "
                             "(or leave layer_decay unset)") from e
        groups = param_groups_layer_decay(model, cfg.weight_decay, no_weight_decay_list=sorted(exempt),
                                          layer_decay=cfg.layer_decay)
        for g in groups:  # the LambdaLR scales each group's initial lr
            g["lr"] = cfg.lr * g.get("lr_scale", 1.0)
        return groups
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if n in exempt else decay).append(p)
    return [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (``adam_beta1``, ``adam_beta2``, ``adam_eps``) or SGD (Nesterov by ``nesterov``, default:
    when momentum > 0) over :func:`param_groups`."""
    groups = param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        nesterov = cfg.momentum > 0 if cfg.nesterov is None else cfg.nesterov
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps)


def phase2_config(cfg: TrainConfig) -> TrainConfig:
    """The configuration of two-phase training's second optimizer (``phase2_*``, a constant lr)."""
    return cfg.replace(optimizer=cfg.phase2_optimizer, lr=cfg.phase2_lr, momentum=cfg.phase2_momentum,
                       nesterov=cfg.phase2_nesterov if cfg.phase2_optimizer == "sgd" else None,
                       weight_decay=cfg.phase2_weight_decay, layer_decay=None, layer_decay_type="layer_wise",
                       layer_decay_layers=None, patience=None)


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int) -> LRSchedule:
    """The :class:`LRSchedule` of ``cfg`` over its ``epochs * steps_per_epoch`` (or ``iterations``) optimizer steps."""
    min_ratio = check_float("min_lr / lr", cfg.min_lr / cfg.lr, min=0.0)
    warmup = cfg.warmup_iters or round(cfg.warmup_epochs * steps_per_epoch)
    total = cfg.epochs * steps_per_epoch if cfg.iterations is None else cfg.iterations
    return LRSchedule(cfg.scheduler, total, steps_per_epoch, warmup_steps=warmup,
                      warmup_ratio=cfg.warmup_ratio, warmup_prefix=cfg.warmup_prefix, min_ratio=min_ratio,
                      cooldown_steps=cfg.cooldown_epochs * steps_per_epoch, milestones=cfg.lr_milestones,
                      gamma=cfg.lr_gamma, power=cfg.lr_power)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step ``LambdaLR`` of :func:`lr_schedule`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(cfg, steps_per_epoch))
