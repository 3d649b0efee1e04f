"""The :class:`Recipe` record: everything that decides how a published number was trained.

A recipe is data, not code: frozen dataclasses of plain values (numbers, strings, tuples and
small dicts), so it prints, compares and turns into JSON (:meth:`Recipe.to_dict`) without
importing anything heavy. What the training engine makes of it lives in
``wavevision.engine.recipe``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENGINE_LOSSES", "Cost", "Data", "Difference", "EMA", "EvalProtocol", "Expected", "Loss", "Mixing", "Optimizer", "Recipe",
           "Schedule", "Source", "Step", "TokenLabels", "analytical_hours"]

OPTIMIZERS = ("adamw", "sgd", "lion")
SCHEDULES = ("cosine", "constant", "step", "poly", "two_phase")
AMP = ("none", "bf16", "fp16")
LR_SCALING = ("none", "linear")
LAYER_DECAY_TYPES = ("layer_wise", "stage_wise")
EVAL_MODES = ("whole", "sliding", "center_crop", "full_image")
# The losses named in the Loss docstring, which the engine trains with (each task's own loss; the
# name only says which); a recipe may name another (focal, huber), which the engine then reports missing.
ENGINE_LOSSES = ("cross_entropy", "soft_target_cross_entropy", "token_label_cross_entropy", "detection",
                 "segmentation", "l1")


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{where}: {message}")


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: a repository, a file in it and, when checked, a line.

    Attributes:
        repo: ``owner/name`` on GitHub, or a document such as ``REFERENCE.md §9``.
        file: the path inside the repository.
        line: the line the value sits on (None: not verified line by line).
        commit: the commit the line number refers to, when the file changed over time.
        note: what the source says beyond the value, e.g. a disagreement between files.
    """

    repo: str
    file: str = ""
    line: int | None = None
    commit: str | None = None
    note: str = ""

    def __str__(self) -> str:
        where = f"{self.repo}/{self.file}" if self.file else self.repo
        if self.commit:
            where += f"@{self.commit}"
        return where + (f":{self.line}" if self.line else "")


@dataclass(frozen=True)
class Step:
    """One operation of a data pipeline, in the reference library's words (``args`` as it takes them)."""

    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Data:
    """The dataset, its splits and the pipelines.

    Attributes:
        dataset: a registered dataset name (``wavevision.data.list_datasets()``).
        args: dataset options (``build_dataset(..., **args)``).
        train_split: the split trained on.
        select_split: the split the best epoch (or checkpoint) is chosen on.
        report_split: the split the expected result is measured on.
        train: the training pipeline, in order.
        eval: the evaluation pipeline, in order.
        repeated_augmentation: each image appears this many times per epoch, differently
            augmented (DeiT's RASampler; 1 is off).
    """

    dataset: str
    args: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    select_split: str = "val"
    report_split: str = "test"
    train: tuple[Step, ...] = ()
    eval: tuple[Step, ...] = ()
    repeated_augmentation: int = 1


@dataclass(frozen=True)
class Optimizer:
    """The optimizer, its learning rate and its parameter groups.

    Attributes:
        name: ``adamw``, ``sgd`` or ``lion``.
        lr: the base learning rate, at ``reference_batch`` when ``lr_scaling`` is ``linear``.
        lr_scaling: ``linear`` (lr x global batch / reference batch, Goyal et al.) or ``none``.
        reference_batch: the global batch ``lr`` is given for (with ``linear`` scaling).
        weight_decay: decoupled (AdamW, Lion) or L2 (SGD) weight decay.
        betas, eps: Adam's moments and epsilon (None: the optimizer's default).
        momentum, nesterov: SGD's.
        no_decay: parameter kinds kept out of weight decay: ``norm`` (normalisation weights),
            ``bias``, ``pos_embed`` (position tables), ``1d`` (every one-dimensional tensor, as
            timm's ``create_optimizer`` does).
        layer_decay: per-layer lr decay (None: off).
        layer_decay_type: ``layer_wise`` (timm's, by the model's group_matcher) or ``stage_wise``
            (MMSegmentation's ``decay_type='stage_wise'`` for ConvNeXt backbones).
        layer_decay_layers: MMSegmentation's ``num_layers`` of ``stage_wise`` (None otherwise).
    """

    name: str
    lr: float
    weight_decay: float = 0.0
    lr_scaling: str = "none"
    reference_batch: int | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    momentum: float | None = None
    nesterov: bool = False
    no_decay: tuple[str, ...] = ()
    layer_decay: float | None = None
    layer_decay_type: str = "layer_wise"
    layer_decay_layers: int | None = None

    def lr_for(self, global_batch: int) -> float:
        """The learning rate at ``global_batch`` under the scaling rule."""
        if self.lr_scaling == "linear":
            return self.lr * global_batch / self.reference_batch  # type: ignore[operator]
        return self.lr


@dataclass(frozen=True)
class Schedule:
    """How the learning rate moves.

    Attributes:
        kind: ``cosine`` (to ``min_lr``, then ``cooldown_epochs`` at ``min_lr``), ``constant``,
            ``step`` (x ``gamma`` at each of ``milestones`` epochs), ``poly`` (``(1 - t)^power``
            to ``min_lr`` by iteration) or ``two_phase`` (``Recipe.optimizer`` until ``patience``
            epochs pass without a better score on the selection split, then ``second`` from the
            best weights, again until ``patience`` epochs without improvement).
        warmup_epochs / warmup_iters: linear warm-up length (one of them, or neither).
        warmup_lr: the absolute learning rate warm-up starts from (timm's ``warmup_lr``).
        warmup_ratio: the fraction of the learning rate warm-up starts from (MMCV's).
        warmup_prefix: the decay starts when the warm-up ends (MMEngine's ``LinearLR`` then a
            scheduler that begins there) instead of running under it from step 0 (MMCV's).
        min_lr: the final learning rate.
        cooldown_epochs: epochs at ``min_lr`` after the cosine (timm's ``cooldown_epochs``).
        milestones, gamma: the step schedule.
        power: the poly schedule's exponent.
        patience: the two-phase schedule's epochs without improvement.
        second: the two-phase schedule's second optimizer.
    """

    kind: str
    warmup_epochs: float = 0.0
    warmup_iters: int = 0
    warmup_lr: float | None = None
    warmup_ratio: float | None = None
    warmup_prefix: bool = False
    min_lr: float = 0.0
    cooldown_epochs: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    power: float = 1.0
    patience: int | None = None
    second: Optimizer | None = None


@dataclass(frozen=True)
class TokenLabels:
    """LV-ViT token labeling (``zihangJiang/TokenLabeling``): dense score maps per training image.

    Attributes:
        files: the folder of per-image label files the reference reads.
        size: the token grid the maps are pooled to.
        dense_weight, cls_weight: weights of the dense and class cross-entropies.
    """

    files: str
    size: int
    dense_weight: float
    cls_weight: float


@dataclass(frozen=True)
class Mixing:
    """Mixup / CutMix with soft targets (timm's ``Mixup``)."""

    mixup_alpha: float
    cutmix_alpha: float
    prob: float = 1.0
    switch_prob: float = 0.5
    mode: str = "batch"


@dataclass(frozen=True)
class Loss:
    """The training loss.

    Attributes:
        name: ``cross_entropy``, ``soft_target_cross_entropy``, ``token_label_cross_entropy``,
            ``detection`` (the detector's own losses), ``segmentation`` (pixel cross-entropy
            ignoring 255) or ``l1``.
        label_smoothing: label smoothing of the class targets.
        token_labels: token-label targets (None: off).
        mixing: Mixup / CutMix (None: off).
        aux_weight: weight of an auxiliary head's loss (UperNet's FCN head; None: no auxiliary head).
    """

    name: str
    label_smoothing: float = 0.0
    token_labels: TokenLabels | None = None
    mixing: Mixing | None = None
    aux_weight: float | None = None


@dataclass(frozen=True)
class EMA:
    """An exponential moving average of the weights."""

    decay: float


@dataclass(frozen=True)
class EvalProtocol:
    """How the expected result is measured.

    Attributes:
        mode: ``center_crop`` (resize, then a centre crop), ``whole`` (whole image at a scale),
            ``sliding`` (sliding window) or ``full_image`` (the image as it is).
        crop_pct: the centre crop's share of the resized side (``center_crop``).
        interpolation: resize interpolation.
        size: the input or crop size (H, W), or the keep-ratio scale (long, short) of ``whole``.
        window, stride: the sliding window.
        metric: what is reported (``top1``, ``box_ap``, ``mask_ap``, ``miou``, ``psnr_y``).
        batch: the evaluation batch as a multiple of the training batch per device.
        interval: an iteration-based run validates every this many iterations (None: at each
            epoch's end, or once per pass over the data).
    """

    mode: str
    metric: str
    crop_pct: float | None = None
    interpolation: str | None = None
    size: tuple[int, int] | None = None
    window: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    batch: float = 1.0
    interval: int | None = None


@dataclass(frozen=True)
class Expected:
    """The published result and where it is published."""

    metrics: dict[str, float]
    split: str
    source: Source


@dataclass(frozen=True)
class Cost:
    """An estimate of what a full run takes.

    Attributes:
        accelerator_hours: hours on one accelerator of ``accelerator`` kind.
        accelerator: the device the estimate is for.
        how: how it was estimated (so it can be redone, or replaced by a measurement).
    """

    accelerator_hours: float
    accelerator: str
    how: str


@dataclass(frozen=True)
class Difference:
    """A field where the recipe departs from its reference, and why."""

    field: str
    reason: str


@dataclass(frozen=True)
class Recipe:
    """A named, complete description of a training run (see the package docstring).

    Attributes:
        name: the registered name.
        description: one line for listings.
        model: a registered model name; ``model_args`` its arguments (drop path included).
        data: dataset, splits and pipelines.
        optimizer: the optimizer and its parameter groups; ``schedule`` the learning rate's course.
        epochs / iterations: the run's length (one of them; a ``two_phase`` schedule has neither,
            its length is decided by ``patience``).
        global_batch: images per optimizer step over all devices; ``devices`` how many the
            reference used.
        amp: ``none``, ``bf16`` or ``fp16``; ``loss_scale`` fp16's (``dynamic`` or a static value).
        ema: weight averaging (None: off); ``clip_grad`` the gradient-norm clip (None: off).
        loss: the loss; ``eval`` the evaluation protocol.
        init: the weights training starts from (a model tag or file the reference names; None:
            random).
        frozen_norm: the backbone's BatchNorm weights and biases are not trained (MMCV's
            ``requires_grad=False``; their running statistics still update).
        expected: the published result, None for this project's own recipes.
        reference: where the recipe itself is written (the files read for it).
        cost: the estimated accelerator time of a full run.
        differences: where this recipe departs from ``reference``, each with its reason.
        dataset_default: the recipe ``train --dataset DATA`` uses without ``--recipe``.
    """

    name: str
    description: str
    model: str
    data: Data
    optimizer: Optimizer
    schedule: Schedule
    global_batch: int
    loss: Loss
    eval: EvalProtocol
    reference: Source
    cost: Cost
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    iterations: int | None = None
    devices: int = 1
    amp: str = "none"
    loss_scale: float | str | None = None
    ema: EMA | None = None
    clip_grad: float | None = None
    init: str | None = None
    frozen_norm: bool = False
    expected: Expected | None = None
    differences: tuple[Difference, ...] = ()
    dataset_default: bool = False

    def __post_init__(self) -> None:
        where = f"recipe {self.name!r}"
        _check(bool(self.name) and self.name == self.name.strip(), where, "needs a name without surrounding spaces")
        _check(self.optimizer.name in OPTIMIZERS, where, f"optimizer {self.optimizer.name!r} is not one of {OPTIMIZERS}")
        _check(self.schedule.kind in SCHEDULES, where, f"schedule {self.schedule.kind!r} is not one of {SCHEDULES}")
        _check(self.amp in AMP, where, f"amp {self.amp!r} is not one of {AMP}")
        _check(self.optimizer.lr_scaling in LR_SCALING, where, f"lr_scaling must be one of {LR_SCALING}")
        _check(self.optimizer.lr_scaling != "linear" or bool(self.optimizer.reference_batch), where,
               "linear lr scaling needs the reference_batch the lr is given for")
        opt = self.optimizer
        _check(opt.layer_decay_type in LAYER_DECAY_TYPES, where, f"layer_decay_type must be one of {LAYER_DECAY_TYPES}")
        _check((opt.layer_decay_type == "stage_wise") == (opt.layer_decay_layers is not None)
               and (opt.layer_decay_layers is None or opt.layer_decay is not None), where,
               "stage_wise layer decay needs layer_decay and layer_decay_layers (and only it takes layer_decay_layers)")
        _check(self.eval.mode in EVAL_MODES, where, f"eval mode {self.eval.mode!r} is not one of {EVAL_MODES}")
        two_phase = self.schedule.kind == "two_phase"
        lengths = (self.epochs is not None) + (self.iterations is not None)
        _check(lengths == (0 if two_phase else 1), where,
               "a two_phase schedule sets neither epochs nor iterations (patience decides)" if two_phase
               else "give exactly one of epochs and iterations")
        _check(not two_phase or (self.schedule.patience is not None and self.schedule.second is not None), where,
               "a two_phase schedule needs patience and a second optimizer")
        _check(self.eval.interval is None or (self.iterations is not None and self.eval.interval >= 1), where,
               "an evaluation interval (in iterations) needs a run given in iterations")
        _check(not (self.schedule.warmup_epochs and self.schedule.warmup_iters), where,
               "give warm-up in epochs or in iterations, not both")
        _check(self.global_batch >= 1 and self.devices >= 1 and self.global_batch % self.devices == 0, where,
               f"global batch {self.global_batch} must be a positive multiple of devices {self.devices}")
        _check(self.cost.accelerator_hours > 0 and math.isfinite(self.cost.accelerator_hours), where,
               "cost must be a positive number of hours")
        names = {f.name for f in dataclasses.fields(self)}
        for d in self.differences:
            _check(d.field.split(".")[0] in names and bool(d.reason), where,
                   f"difference {d.field!r} must name a recipe field and give a reason")

    @property
    def lr(self) -> float:
        """The learning rate at the recipe's global batch (the base lr scaled by its rule)."""
        return self.optimizer.lr_for(self.global_batch)

    @property
    def batch_per_device(self) -> int:
        return self.global_batch // self.devices

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-ready values (tuples become lists), plus the scaled ``lr``."""
        return _plain({**dataclasses.asdict(self), "lr": self.lr})

    def get(self, path: str) -> Any:
        """A field by its dotted path (``"optimizer.lr"``, ``"schedule.second.name"``)."""
        value: Any = self
        for part in path.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# A sustained rate, not a peak: about 30 % of an A100's 312 TFLOP/s dense fp16/bf16, the
# utilisation mixed-precision vision training commonly reaches.
A100_SUSTAINED_FLOPS = 0.3 * 312e12


def analytical_hours(macs_per_sample: float, samples: float, *, flops_per_second: float = A100_SUSTAINED_FLOPS) -> float:
    """Hours to train on ``samples`` inputs at ``macs_per_sample`` forward multiply-accumulates each.

    Training costs about three forward passes (the backward pass is two), each multiply-
    accumulate two floating-point operations: ``6 * macs * samples / flops_per_second``. Data
    loading, evaluation and communication are not counted, so this is a lower bound.
    """
    return 6.0 * macs_per_sample * samples / flops_per_second / 3600.0
