"""What the training engine makes of a :class:`wavevision.recipes.Recipe`.

:func:`engine_values` gives the :class:`TrainConfig` keys a recipe sets (model and its
arguments, dataset and its options, epochs, batch per process, global batch (by accumulation), the scaled learning rate,
optimizer (Adam betas/eps, Nesterov, no-decay kinds, layer decay: timm's or stage-wise), weight decay, momentum, warm-up (epochs or steps, start ratio), schedule (cosine with cool-down,
step, poly), min lr, label smoothing, Mixup/CutMix (with timm), clipping, EMA, AMP,
augmentation, the sliding-window test); :func:`missing_pieces` names, in words, every part of the recipe the engine
cannot do yet, so that training a recipe never drops a setting silently.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..models import get_entry, list_models
from ..models._pretrained import resolve_pretrained_cfg, split_model_name_tag
from ..recipes import Optimizer, Recipe, Step, get_recipe
from ..recipes._recipe import ENGINE_LOSSES
from .mixing import TIMM_HINT, have_timm

__all__ = ["RecipeGapWarning", "engine_values", "missing_line", "missing_pieces", "warn_missing"]


class RecipeGapWarning(UserWarning):
    """A recipe is trained without parts the engine cannot do yet (the message names them)."""

# Pipeline operations the engine's dataset builders perform (with augment=True for the random ones).
_DONE_BY_DATASETS = {"normalize", "to_tensor", "random_crop", "hflip", "random_patch", "reduce_zero_label"}
# Done inside the model: the WaveMixSR models take RGB and work on full-range YCbCr (models/wavemixsr.py).
_DONE_BY_MODELS = {"rgb_to_ycbcr"}
_RANDOM = {"random_crop", "hflip", "random_patch", "random_resized_crop", "rand_augment", "color_jitter",
           "random_erasing", "photometric_distortion"}
# Losses whose label smoothing the engine applies (token labels: to the teacher's targets, in the task's loss).
_SMOOTHED_LOSSES = ("cross_entropy", "token_label_cross_entropy")
# The RandomResizedCrop the token-label dataset option performs (data/token_labels.py defaults, random interpolation).
_TOKEN_LABEL_CROP = {"scale": (0.08, 1.0), "ratio": (0.75, 4 / 3), "interpolation": "random"}
# What a detector's own transform does (the reference='mmdet' builds: MMDetection's keep-ratio resize,
# shorter side to 800, longer at most 1333, then torchvision's padding to a multiple of 32).
_DETECTOR_RESIZE = ((1333, 800), True)
_DETECTOR_PAD = 32
# MMSegmentation's ADE20K pipeline as the ade20k dataset's pipeline=mmseg performs it (wavevision.data.seg_transforms).
_DONE_BY_MMSEG = {"reduce_zero_label", "resize", "random_crop", "hflip", "photometric_distortion", "normalize", "pad"}


def _mmseg_args(recipe: Recipe) -> dict[str, Any] | None:
    """The ade20k options selecting MMSegmentation's pipeline when ``recipe``'s is that one (else None)."""
    steps = {s.op: s.args for s in recipe.data.train}
    if recipe.data.dataset != "ade20k" or "photometric_distortion" not in steps or steps["photometric_distortion"]:
        return None
    if (tuple(steps.get("resize", {}).get("ratio_range", ())) != (0.5, 2.0)
            or steps.get("random_crop", {}).get("cat_max_ratio") != 0.75 or steps.get("hflip", {}).get("p") != 0.5):
        return None
    return {"pipeline": "mmseg", "scale": list(steps["resize"]["scale"]),
            "crop_size": list(steps["random_crop"]["size"])}


# The epochs bound of a two-phase run (patience ends it; the authors' loop has no bound).
_TWO_PHASE_MAX_EPOCHS = 1000
# Model families with a frozen_norm option (backbone BatchNorm affine not trained): the detectors and UperNet.
_FROZEN_NORM_MODELS = ("mask_rcnn_", "faster_rcnn_", "retinanet_", "fcos_", "upernet_")


def _has_frozen_norm(recipe: Recipe) -> bool:
    return recipe.model.startswith(_FROZEN_NORM_MODELS)


def _train_sizes(step: Step) -> tuple[int, ...] | None:
    """The short sides of a detector's multi-scale resize (MMDetection's ``img_scale`` list with
    ``keep_ratio``, long side 1333: ``multiscale_mode`` ``value`` draws one of them, ``range`` any
    integer between two), the detectors' ``train_sizes``; None where ``step`` is not one."""
    scales, mode = step.args.get("scale"), step.args.get("multiscale_mode", "value")
    if (step.op != "resize" or not step.args.get("keep_ratio") or not isinstance(scales, (list, tuple)) or not scales
            or not all(isinstance(s, (list, tuple)) and len(s) == 2 for s in scales)
            or any(long != _DETECTOR_RESIZE[0][0] for long, _ in scales)):
        return None
    shorts = [int(short) for _, short in scales]
    if mode == "range" and len(shorts) == 2:
        return tuple(range(min(shorts), max(shorts) + 1))
    return tuple(shorts) if mode == "value" else None


def init_spec(recipe: Recipe) -> str | None:
    """The registered ``NAME.TAG`` that ``recipe.init`` starts with, when the engine can load it by itself
    (``wavevision.engine.init``: a detector or UperNet takes it into its backbone, a model of the tag's own
    architecture takes all of it) and the tag names a released file to download; None otherwise."""
    if recipe.init is None:
        return None
    spec = recipe.init.split()[0]
    arch, _ = split_model_name_tag(spec)
    if arch not in list_models() or not (_has_frozen_norm(recipe) or arch == recipe.model):
        return None
    try:
        cfg = resolve_pretrained_cfg(spec, get_entry(arch).cfgs)
    except ValueError:  # an unknown tag
        return None
    return spec if cfg.fetchable else None


def engine_values(recipe: Recipe) -> dict[str, Any]:
    """The :class:`TrainConfig` values of ``recipe`` (only keys the engine has)."""
    opt, sched = recipe.optimizer, recipe.schedule
    values: dict[str, Any] = {
        "model": recipe.model, "model_args": dict(recipe.model_args), "dataset": recipe.data.dataset,
        "batch_size": recipe.batch_per_device, "optimizer": opt.name, "lr": recipe.lr,
        "weight_decay": opt.weight_decay, "augment": any(s.op in _RANDOM for s in recipe.data.train),
    }
    if recipe.data.args or _timm_augment(recipe) or _mmseg_args(recipe) or _eval_args(recipe):
        values["dataset_args"] = {**(_mmseg_args(recipe) or {}), **recipe.data.args, **_timm_augment(recipe),
                                  **_eval_args(recipe)}
    if recipe.epochs is not None:
        values["epochs"] = recipe.epochs
    if recipe.iterations is not None:
        values["iterations"] = recipe.iterations
        if recipe.eval.interval is not None:
            values["eval_every"] = recipe.eval.interval
    if _sliding(recipe) is not None:
        values["sliding_window"] = list(_sliding(recipe) or ())
    if opt.momentum is not None:
        values["momentum"] = opt.momentum
    values.update(_optimizer_details(opt))
    if sched.kind in ("cosine", "constant", "step", "poly"):
        values["scheduler"] = sched.kind
    if sched.kind == "two_phase" and sched.second is not None:  # each phase at a constant lr, epochs a bound
        second = sched.second
        values.update(scheduler="constant", patience=sched.patience, epochs=_TWO_PHASE_MAX_EPOCHS,
                      phase2_optimizer=second.name, phase2_lr=second.lr, phase2_momentum=second.momentum or 0.0,
                      phase2_nesterov=bool(second.nesterov and second.momentum), phase2_weight_decay=second.weight_decay)
    if sched.kind in ("cosine", "constant", "poly"):
        values["min_lr"] = sched.min_lr
    if sched.kind == "step":
        values.update(lr_milestones=list(sched.milestones), lr_gamma=sched.gamma)
    if sched.kind == "poly":
        values["lr_power"] = sched.power
    if sched.warmup_epochs:
        values["warmup_epochs"] = float(sched.warmup_epochs)
    if sched.warmup_iters:
        values["warmup_iters"] = sched.warmup_iters
    if sched.warmup_ratio is not None:
        values["warmup_ratio"] = sched.warmup_ratio
    elif sched.warmup_lr is not None:  # timm's absolute start, as a fraction of this global batch's lr
        values["warmup_ratio"] = sched.warmup_lr / recipe.lr
    if sched.warmup_prefix:
        values["warmup_prefix"] = True
    if sched.cooldown_epochs:
        values["cooldown_epochs"] = sched.cooldown_epochs
    if recipe.loss.label_smoothing and (recipe.loss.name in _SMOOTHED_LOSSES or _mixes(recipe)):
        values["label_smoothing"] = recipe.loss.label_smoothing  # with Mixup: in its soft targets
    if recipe.loss.token_labels is not None:  # the dataset option of wavevision.data.token_labels; its grid
        # defaults to image size / 32 (the recipes' 7 at 224), so it follows a changed image_size
        values["dataset_args"] = {**values.get("dataset_args", {}), "token_labels": recipe.loss.token_labels.files}
    if _mixes(recipe):
        mix = recipe.loss.mixing
        assert mix is not None  # _mixes says so
        values.update(mixup_alpha=mix.mixup_alpha, cutmix_alpha=mix.cutmix_alpha, mix_prob=mix.prob,
                      mix_switch_prob=mix.switch_prob, mix_mode=mix.mode)
    if recipe.data.repeated_augmentation > 1:
        values["repeated_augmentation"] = recipe.data.repeated_augmentation
    if recipe.clip_grad is not None:
        values["clip_grad"] = recipe.clip_grad
    if recipe.devices > 1:  # reached on fewer processes by gradient accumulation
        values["global_batch"] = recipe.global_batch
    if recipe.ema is not None:
        values["ema_decay"] = recipe.ema.decay
    if recipe.amp != "none":
        values["amp"] = recipe.amp
    if recipe.amp == "fp16" and isinstance(recipe.loss_scale, float):
        values["loss_scale"] = recipe.loss_scale
    if recipe.frozen_norm and _has_frozen_norm(recipe):
        values["model_args"]["frozen_norm"] = True
    if init_spec(recipe) is not None:  # downloaded into the Hub cache by the run, unless --init names other weights
        values["init"] = init_spec(recipe)
    sizes = [t for t in map(_train_sizes, recipe.data.train) if t] if recipe.loss.name == "detection" else []
    if sizes:  # multi-scale training (the 3x schedules): the detector's own resize draws the short side
        values["model_args"]["train_sizes"] = list(sizes[0])
    return values


def _sliding(recipe: Recipe) -> tuple[int, int] | None:
    """(crop, stride) of the recipe's sliding-window test when the engine performs it: square windows and
    strides, on images the dataset's pipeline=mmseg rescales to the recipe's test scale."""
    ev, mmseg = recipe.eval, _mmseg_args(recipe)
    if ev.mode != "sliding" or ev.window is None or ev.stride is None or mmseg is None:
        return None
    if ev.window[0] != ev.window[1] or ev.stride[0] != ev.stride[1] or list(ev.size or ()) != mmseg["scale"]:
        return None
    return ev.window[0], ev.stride[0]


def _optimizer_details(opt: Optimizer) -> dict[str, Any]:
    """The TrainConfig keys of the optimizer's Adam moments, Nesterov flag, no-decay kinds and layer decay."""
    values: dict[str, Any] = {"no_decay": ",".join(opt.no_decay) or "none"}
    if opt.name == "adamw":
        beta1, beta2 = opt.betas or (0.9, 0.999)
        values.update(adam_beta1=beta1, adam_beta2=beta2, adam_eps=1e-8 if opt.eps is None else opt.eps)
    if opt.name == "sgd":
        values["nesterov"] = bool(opt.nesterov and opt.momentum)
    if opt.layer_decay is not None and (have_timm() or opt.layer_decay_type == "stage_wise"):
        values["layer_decay"] = opt.layer_decay
        if opt.layer_decay_type == "stage_wise":  # the engine's own grouping: no timm needed
            values.update(layer_decay_type="stage_wise", layer_decay_layers=opt.layer_decay_layers)
    return values


# The folder datasets take timm's training augmentation as options (wavevision.data.timm_augment).
_TIMM_AUGMENT_DATASETS = {"imagenet", "imagefolder", "places365", "tiny-imagenet"}
_TIMM_STEPS = {"random_resized_crop", "hflip", "color_jitter", "rand_augment", "random_erasing", "normalize"}


def _timm_augment(recipe: Recipe) -> dict[str, Any]:
    """The dataset options that make timm perform the recipe's classification training pipeline
    (empty when timm is absent, the dataset takes no such options or a step is not timm's)."""
    steps = {s.op: s.args for s in recipe.data.train}
    if recipe.loss.token_labels is not None:  # the token-label dataset crops and flips; timm the image only
        steps = {op: args for op, args in steps.items() if op not in ("random_resized_crop", "hflip")}
        steps["random_resized_crop"] = {"interpolation": "random"}
    if (recipe.data.dataset not in _TIMM_AUGMENT_DATASETS or "random_resized_crop" not in steps
            or not set(steps) <= _TIMM_STEPS or not have_timm()):
        return {}
    crop = steps["random_resized_crop"]
    out: dict[str, Any] = {"scale": list(crop.get("scale", (0.08, 1.0))), "ratio": list(crop.get("ratio", (0.75, 4 / 3))),
                           "interpolation": crop.get("interpolation", "bilinear"),
                           "hflip": steps["hflip"].get("p", 0.5) if "hflip" in steps else 0.0,
                           "color_jitter": steps["color_jitter"].get("strength", 0.4) if "color_jitter" in steps else 0.0}
    if recipe.loss.token_labels is not None:  # the crop's settings are the token-label dataset's own
        out = {"color_jitter": out["color_jitter"]}
    if "rand_augment" in steps:
        out["auto_augment"] = steps["rand_augment"]["config"]
    if "random_erasing" in steps:
        erase = steps["random_erasing"]
        out.update(re_prob=erase.get("p", 0.25), re_mode=erase.get("mode", "const"), re_count=erase.get("count", 1))
    return out


def _eval_args(recipe: Recipe) -> dict[str, Any]:
    """The folder-dataset options performing the recipe's resize-and-centre-crop evaluation (timm's
    ``transforms_imagenet_eval``: shorter side to floor(size / crop pct), then the crop); empty when
    the dataset or protocol is another."""
    ev, dataset = recipe.eval, recipe.data.dataset
    size = recipe.data.args.get("image_size", 64 if dataset == "tiny-imagenet" else 224)
    if (dataset not in _TIMM_AUGMENT_DATASETS or ev.mode != "center_crop" or ev.crop_pct is None
            or (ev.interpolation or "bilinear") not in ("bilinear", "bicubic")
            or ev.size not in (None, (size, size), [size, size])):
        return {}
    return {"crop_pct": ev.crop_pct, "eval_interpolation": ev.interpolation or "bilinear"}


def _mixes(recipe: Recipe) -> bool:
    """Whether the engine applies the recipe's Mixup/CutMix: timm's soft-target loss, with timm installed."""
    return recipe.loss.mixing is not None and recipe.loss.name == "soft_target_cross_entropy" and have_timm()


def _pipeline_gaps(recipe: Recipe) -> list[str]:
    """The pipeline steps that neither the dataset builders nor the model perform."""
    detector, mmseg = recipe.loss.name == "detection", _mmseg_args(recipe) is not None
    by_timm = (_TIMM_STEPS - ({"random_resized_crop", "hflip"} if recipe.loss.token_labels is not None else set())
               if _timm_augment(recipe) else set())
    gaps = []
    for where, steps in (("train", recipe.data.train), ("eval", recipe.data.eval)):
        for step in steps:
            if step.op in _DONE_BY_DATASETS and "cat_max_ratio" not in step.args:
                continue
            if step.op in _DONE_BY_MODELS and recipe.model.startswith("wavemixsr"):
                continue
            if where == "eval" and step.op == "resize_center_crop" and _eval_args(recipe):
                continue
            if where == "train" and step.op in by_timm:
                continue
            if mmseg and step.op in _DONE_BY_MMSEG:
                continue
            if step.op == "resize" and "size" in step.args and \
                    tuple(step.args["size"]) == tuple(recipe.data.args.get("image_size") or ()):
                continue  # the dataset's image_size option resizes images and labels
            if where == "train" and recipe.loss.token_labels is not None and step.op == "random_resized_crop" and \
                    {k: v for k, v in step.args.items() if k != "size"} == _TOKEN_LABEL_CROP:
                continue  # wavevision.data.token_labels crops image and labels this way
            if detector and step.op == "resize" and (tuple(step.args.get("scale", ())),
                                                     step.args.get("keep_ratio")) == _DETECTOR_RESIZE:
                continue
            if detector and where == "train" and _train_sizes(step):
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
    if opt.layer_decay is not None and opt.layer_decay_type == "layer_wise" and not have_timm():
        gaps.append(f"layer-wise lr decay ({opt.layer_decay:g}; {TIMM_HINT})")
    if sched.kind == "two_phase" and (sched.second is None or sched.second.name not in ("adamw", "sgd")):
        gaps.append(f"the two-phase optimizer's second phase ({sched.second.name if sched.second else 'none given'})")
    if loss.name not in ENGINE_LOSSES:
        gaps.append(f"the {loss.name.replace('_', ' ')} loss (the engine trains with the task's own)")
    if loss.token_labels is not None and (loss.token_labels.cls_weight, loss.token_labels.dense_weight) != (1.0, 0.5):
        gaps.append(f"token-label loss weights {loss.token_labels.cls_weight:g}/{loss.token_labels.dense_weight:g} "
                    "(the engine's are 1.0 class / 0.5 dense)")
    if loss.mixing is not None and not _mixes(recipe):
        gaps.append("Mixup/CutMix with soft targets (timm's Mixup: " + (TIMM_HINT + ")" if not have_timm() else
                                                                        f"not with the {loss.name.replace('_', ' ')})"))
    if loss.label_smoothing and loss.name not in _SMOOTHED_LOSSES and not _mixes(recipe):
        gaps.append(f"label smoothing inside the {loss.name.replace('_', ' ')}")
    if recipe.init is not None and init_spec(recipe) is None:
        gaps.append(f"initial weights ({recipe.init}; no released file wavevision can fetch and load: give --init FILE)")
    if recipe.frozen_norm and not _has_frozen_norm(recipe):
        gaps.append("frozen backbone BatchNorm")
    if recipe.eval.mode != "full_image":
        detail = {"center_crop": f"resize and centre crop at crop pct {recipe.eval.crop_pct}",
                  "whole": f"whole-image test at scale {recipe.eval.size}", "sliding": "sliding-window test"}[recipe.eval.mode]
        mmseg = _mmseg_args(recipe)
        if not (recipe.loss.name == "detection" and recipe.eval.size == _DETECTOR_RESIZE[0]) and not _eval_args(
                recipe) and not (
                mmseg and recipe.eval.mode == "whole" and list(recipe.eval.size or ()) == mmseg["scale"]) and \
                _sliding(recipe) is None:
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
