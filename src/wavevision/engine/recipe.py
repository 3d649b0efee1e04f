"""What the training engine makes of a :class:`wavevision.recipes.Recipe`.

:func:`engine_values` gives the :class:`TrainConfig` keys a recipe sets (model and its
arguments, dataset and its options, epochs, batch per process, the scaled learning rate,
optimizer, weight decay, momentum, warm-up, schedule, min lr, label smoothing, clipping, AMP,
augmentation); :func:`missing_pieces` names, in words, every part of the recipe the engine
cannot do yet, so that training a recipe never drops a setting silently.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..recipes import Recipe, get_recipe

__all__ = ["RecipeGapWarning", "engine_values", "missing_line", "missing_pieces", "warn_missing"]


class RecipeGapWarning(UserWarning):
    """A recipe is trained without parts the engine cannot do yet (the message names them)."""

# Pipeline operations the engine's dataset builders perform (with augment=True for the random ones).
_DONE_BY_DATASETS = {"normalize", "to_tensor", "random_crop", "hflip", "random_patch", "reduce_zero_label"}
_RANDOM = {"random_crop", "hflip", "random_patch", "random_resized_crop", "rand_augment", "color_jitter",
           "random_erasing", "photometric_distortion"}
# Losses whose label smoothing the engine applies (token labels: to the teacher's targets, in the task's loss).
_SMOOTHED_LOSSES = ("cross_entropy", "token_label_cross_entropy")
# The RandomResizedCrop the token-label dataset option performs (data/token_labels.py defaults, random interpolation).
_TOKEN_LABEL_CROP = {"scale": (0.08, 1.0), "ratio": (0.75, 4 / 3), "interpolation": "random"}
# What a detector's own transform does (torchvision's GeneralizedRCNNTransform, set up by
# wavevision.models.detection: shorter side to 800, longer at most 1333, padded to a multiple of 32).
_DETECTOR_RESIZE = ((1333, 800), True)
_DETECTOR_PAD = 32


def engine_values(recipe: Recipe) -> dict[str, Any]:
    """The :class:`TrainConfig` values of ``recipe`` (only keys the engine has)."""
    opt, sched = recipe.optimizer, recipe.schedule
    values: dict[str, Any] = {
        "model": recipe.model, "model_args": dict(recipe.model_args), "dataset": recipe.data.dataset,
        "batch_size": recipe.batch_per_device, "optimizer": opt.name, "lr": recipe.lr,
        "weight_decay": opt.weight_decay, "augment": any(s.op in _RANDOM for s in recipe.data.train),
    }
    if recipe.data.args:
        values["dataset_args"] = dict(recipe.data.args)
    if recipe.epochs is not None:
        values["epochs"] = recipe.epochs
    if opt.momentum is not None:
        values["momentum"] = opt.momentum
    if sched.kind in ("cosine", "constant"):
        values["scheduler"] = sched.kind
        values["min_lr"] = sched.min_lr
    if sched.warmup_epochs:
        values["warmup_epochs"] = float(sched.warmup_epochs)
    if recipe.loss.label_smoothing and recipe.loss.name in _SMOOTHED_LOSSES:
        values["label_smoothing"] = recipe.loss.label_smoothing
    if recipe.loss.token_labels is not None:  # the dataset option of wavevision.data.token_labels; its grid
        # defaults to image size / 32 (the recipes' 7 at 224), so it follows a changed image_size
        values["dataset_args"] = {**values.get("dataset_args", {}), "token_labels": recipe.loss.token_labels.files}
    if recipe.clip_grad is not None:
        values["clip_grad"] = recipe.clip_grad
    if recipe.amp != "none":
        values["amp"] = recipe.amp
    return values


def _pipeline_gaps(recipe: Recipe) -> list[str]:
    """The pipeline steps that neither the dataset builders nor the model perform."""
    detector = recipe.loss.name == "detection"
    gaps = []
    for where, steps in (("train", recipe.data.train), ("eval", recipe.data.eval)):
        for step in steps:
            if step.op in _DONE_BY_DATASETS and "cat_max_ratio" not in step.args:
                continue
            if where == "train" and recipe.loss.token_labels is not None and step.op == "random_resized_crop" and \
                    {k: v for k, v in step.args.items() if k != "size"} == _TOKEN_LABEL_CROP:
                continue  # wavevision.data.token_labels crops image and labels this way
            if detector and step.op == "resize" and (tuple(step.args.get("scale", ())),
                                                     step.args.get("keep_ratio")) == _DETECTOR_RESIZE:
                continue
            if detector and step.op == "pad" and step.args.get("size_divisor") == _DETECTOR_PAD:
                continue
            gaps.append(f"{where} {step.op.replace('_', ' ')}")
    return list(dict.fromkeys(gaps))


def missing_pieces(recipe: Recipe) -> list[str]:
    """The parts of ``recipe`` the engine cannot do yet, each in a few words (empty: it does all)."""
    opt, sched, loss = recipe.optimizer, recipe.schedule, recipe.loss
    gaps = []
    if opt.name not in ("adamw", "sgd"):
        gaps.append(f"the {opt.name} optimizer")
    if opt.name == "sgd" and opt.momentum and not opt.nesterov:
        gaps.append("plain (non-Nesterov) SGD momentum")
    if opt.betas not in (None, (0.9, 0.999)) or opt.eps not in (None, 1e-8):
        gaps.append("Adam betas/eps other than (0.9, 0.999)/1e-8")
    if set(opt.no_decay) - {"1d"}:
        gaps.append("no-decay groups by name (" + ", ".join(sorted(set(opt.no_decay) - {"1d"})) + "; the engine exempts "
                    "every 1-D tensor)")
    if not opt.no_decay and opt.weight_decay:
        gaps.append("weight decay on biases and norms (the engine exempts every 1-D tensor)")
    if opt.layer_decay is not None:
        gaps.append("layer-wise lr decay")
    if sched.kind in ("step", "poly", "two_phase"):
        gaps.append({"step": f"the step schedule (x{sched.gamma:g} at epochs {list(sched.milestones)})",
                     "poly": f"the poly schedule (power {sched.power:g}, by iteration)",
                     "two_phase": f"the two-phase optimizer ({opt.name} then {sched.second.name if sched.second else '?'}"
                                  f" from the best weights, patience {sched.patience} epochs; the engine trains "
                                  "the first optimizer for --epochs)"}[sched.kind])
    if sched.warmup_iters:
        gaps.append(f"warm-up by iterations ({sched.warmup_iters})")
    if sched.warmup_lr or sched.warmup_ratio:
        gaps.append("a warm-up start lr (the engine warms up from 0)")
    if sched.cooldown_epochs:
        gaps.append(f"{sched.cooldown_epochs} cool-down epochs")
    if recipe.iterations is not None:
        gaps.append(f"a length in iterations ({recipe.iterations:,}; give --epochs)")
    if loss.token_labels is not None and (loss.token_labels.cls_weight, loss.token_labels.dense_weight) != (1.0, 0.5):
        gaps.append(f"token-label loss weights {loss.token_labels.cls_weight:g}/{loss.token_labels.dense_weight:g} "
                    "(the engine's are 1.0 class / 0.5 dense)")
    if loss.mixing is not None:
        gaps.append("Mixup/CutMix with soft targets")
    if loss.label_smoothing and loss.name not in _SMOOTHED_LOSSES:
        gaps.append(f"label smoothing inside the {loss.name.replace('_', ' ')}")
    if recipe.ema is not None:
        gaps.append("model EMA")
    if recipe.data.repeated_augmentation > 1:
        gaps.append(f"repeated augmentation (x{recipe.data.repeated_augmentation})")
    if recipe.amp == "fp16" and isinstance(recipe.loss_scale, float):
        gaps.append(f"a static fp16 loss scale ({recipe.loss_scale:g}; the engine's is dynamic)")
    if recipe.init is not None:
        gaps.append(f"initial weights ({recipe.init})")
    if recipe.frozen_norm:
        gaps.append("frozen backbone BatchNorm")
    if recipe.devices > 1:
        gaps.append(f"gradient accumulation (global batch {recipe.global_batch} = {recipe.devices} processes x "
                    f"{recipe.batch_per_device}; fewer processes train a smaller global batch)")
    if recipe.eval.mode != "full_image":
        detail = {"center_crop": f"resize and centre crop at crop pct {recipe.eval.crop_pct}",
                  "whole": f"whole-image test at scale {recipe.eval.size}", "sliding": "sliding-window test"}[recipe.eval.mode]
        if not (recipe.loss.name == "detection" and recipe.eval.size == _DETECTOR_RESIZE[0]):
            gaps.append(f"the evaluation protocol ({detail})")
    return gaps + _pipeline_gaps(recipe)


def missing_line(recipe: Recipe) -> str | None:
    """One line naming what the engine cannot do of ``recipe`` (None when it does everything)."""
    gaps = missing_pieces(recipe)
    if not gaps:
        return None
    return (f"recipe {recipe.name}: the engine cannot do yet: {'; '.join(gaps)}; training without them, so the "
            "expected result is not reproduced")


def warn_missing(name: str | None) -> None:
    """Warn (:class:`RecipeGapWarning`) when the recipe ``name`` has parts the engine cannot do."""
    line = None if name is None else missing_line(get_recipe(name))
    if line is not None:
        warnings.warn(line, RecipeGapWarning, stacklevel=3)
