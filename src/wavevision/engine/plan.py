"""Everything a training run needs, built and checked before anything on disk changes.

:func:`prepare` resolves the configuration, opens the dataset splits, chooses the task and
the model, checks the run directory (read only), estimates the memory of the model on the
``meta`` device, then builds the model, the optimizer, the schedule, the loss scaler and the
loss. Only a :class:`Plan` that got this far may touch the run directory, so a bad setting
never costs the run already there.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sized
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from ..data import build_dataset
from ..data.layout import check_layout
from ..models import create_model, get_entry, list_models
from ..recipes import get_recipe
from ..utils.validate import check_int
from .config import FIELDS, RECIPES, TrainConfig
from .distributed import DistContext, barrier, on_main
from .ema import build_ema
from .evaluate import check_amp
from .init import load_init
from .mixing import build_mix
from .rundir import RunDir, default_output
from .runtime import apply_runtime, seed_all
from .sampling import SeededSamples, samples_per_rank
from .schedule import OPTIMIZER_SLOTS, build_optimizer, build_scheduler
from .sizing import check_fits_memory, meta_model
from .state import fingerprint
from .tasks import Task, get_task

__all__ = ["Plan", "Split", "accumulation_steps", "prepare", "resolve_model"]


class Split(NamedTuple):
    """A dataset split and its description (``wavevision.data.DatasetInfo``)."""

    data: Dataset
    info: Any


@dataclass
class Plan:
    """A checked training run, ready to take its run directory (see :func:`prepare`)."""

    cfg: TrainConfig
    ctx: DistContext
    task: Task
    train: Split
    val: Split
    test: Split | None
    run_dir: RunDir
    model: nn.Module
    ddp: nn.Module
    ema: Any  # the weights' moving average (``.module``, ``.update(model)``), or None
    mix: Any  # timm's Mixup/CutMix (``mix(x, y) -> (x, soft targets)``), or None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    loss: Any
    seeded: SeededSamples
    steps_per_epoch: int  # optimizer steps, each of accum_steps batches
    accum_steps: int
    params: int
    fingerprint: dict[str, Any]

    @property
    def eval_model(self) -> nn.Module:
        """The weights the run validates, tests and saves: the moving average when there is one."""
        return self.model if self.ema is None else self.ema.module

    def epoch_steps(self, epoch: int) -> int:
        """The optimizer steps of the 0-based ``epoch``: ``steps_per_epoch``, fewer in the last epoch of a
        run given in ``iterations``."""
        if self.cfg.iterations is None:
            return self.steps_per_epoch
        return min(self.steps_per_epoch, self.cfg.iterations - epoch * self.steps_per_epoch)

    def eval_batch_size(self, info: Any) -> int:
        if info.image_size is None:
            return 1  # sizes vary: batches cannot be stacked
        return self.cfg.eval_batch_size or 2 * self.cfg.batch_size


def prepare(cfg: TrainConfig, ctx: DistContext, model: nn.Module | None = None,
            datasets: Mapping[str, tuple[Dataset, Any]] | None = None) -> Plan:
    """Check and build everything of a run (see the module docstring); the disk is only read."""
    cfg.validate()  # the one check of every setting (train() gives a validated config; a hand-made one is too)
    apply_runtime(cfg, ctx.device)
    check_amp(cfg.amp, ctx.device)  # before the run directory is touched
    if cfg.recipe is not None and cfg.data_root is not None and datasets is None:
        _check_recipe_layout(cfg)
    train, val, test = _open_splits(cfg, ctx, datasets)
    task = get_task(train.info.task)
    if cfg.sliding_window is not None and not task.slides:
        raise ValueError(f"sliding_window is a segmentation test, but {cfg.dataset} is a {task.name} dataset; drop "
                         "--sliding-window")
    cfg = resolve_model(cfg, train.info, task, model, train.data)
    mix = build_mix(cfg, task, getattr(train.info, "num_classes", None))
    accum = accumulation_steps(cfg, ctx.world_size)
    per_rank = samples_per_rank(len(train.data), ctx.world_size, cfg.repeated_augmentation)
    n_steps = math.ceil(per_rank / (cfg.batch_size * accum))
    if cfg.eval_every is not None:  # the data streams pass after pass; an "epoch" is one validation interval
        n_steps = cfg.eval_every
    steps = min(n_steps, cfg.max_train_batches or n_steps)
    cfg = _with_length(cfg, steps)
    run_dir = RunDir(cfg.output if cfg.output else default_output(cfg))
    on_main(ctx, lambda: run_dir.check(cfg))
    net = _build_model(cfg, ctx, model, train)
    if cfg.init is not None:  # before DDP wraps it and before the optimizer and EMA copy it
        load_init(net, cfg.init)
    ddp = net
    if ctx.distributed:
        ddp = nn.parallel.DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type != "cpu" else None)
    torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout differs between processes
    optimizer = build_optimizer(net, cfg)
    smoothing = 0.0 if mix is not None else cfg.label_smoothing  # Mixup smooths its soft targets itself
    return Plan(
        cfg=cfg, ctx=ctx, task=task, train=train, val=val, test=test, run_dir=run_dir, model=net, ddp=ddp,
        ema=None if cfg.ema_decay is None else build_ema(net, cfg.ema_decay), mix=mix,
        optimizer=optimizer, scheduler=build_scheduler(optimizer, cfg, steps),
        scaler=build_scaler(cfg, ctx.device),
        loss=task.loss(train.info, label_smoothing=smoothing),
        seeded=SeededSamples(train.data, cfg.seed, salt=ctx.rank if cfg.repeated_augmentation > 1 else 0),
        steps_per_epoch=steps, accum_steps=accum, params=sum(p.numel() for p in net.parameters()), fingerprint=fingerprint(cfg),
    )


def _check_recipe_layout(cfg: TrainConfig) -> None:
    """A recipe's dataset must be laid out as the real one (every split it trains, selects and reports on)."""
    assert cfg.recipe is not None and cfg.data_root is not None  # prepare() calls this only when both are set
    if cfg.dataset == get_recipe(cfg.recipe).data.dataset:
        check_layout(cfg.dataset, cfg.data_root, what=f"recipe {cfg.recipe}: ")


def build_scaler(cfg: TrainConfig, device: torch.device) -> torch.amp.GradScaler:
    """The fp16 loss scaler: dynamic (torch's defaults), or static at ``loss_scale`` (growth disabled)."""
    if cfg.loss_scale is None:
        return torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    return torch.amp.GradScaler(device.type, init_scale=cfg.loss_scale, growth_interval=_MAX_INTERVAL,
                                enabled=cfg.amp == "fp16")


# GradScaler's growth interval that a run never reaches (torch keeps it as an int32 counter).
_MAX_INTERVAL = 2**31 - 1


def _with_length(cfg: TrainConfig, steps: int) -> TrainConfig:
    """``cfg`` with the epochs its ``iterations`` take at ``steps`` per epoch (the last one partial);
    unchanged without ``iterations``. Before the run directory's check, so a resume compares these."""
    if cfg.iterations is None:
        return cfg
    epochs = check_int(f"the epochs of iterations {cfg.iterations} at {steps} steps per epoch",
                       math.ceil(cfg.iterations / steps), max=FIELDS["epochs"].metadata["max"])
    if cfg.scheduler == "cosine" and cfg.cooldown_epochs * steps >= cfg.iterations:
        raise ValueError(f"cooldown_epochs is {cfg.cooldown_epochs} but iterations {cfg.iterations} make {epochs} "
                         f"epochs of {steps} steps; the cool-down must leave the cosine some steps: lower it")
    return cfg.replace(epochs=epochs)


def accumulation_steps(cfg: TrainConfig, world_size: int) -> int:
    """Batches per optimizer step: ``accum_steps``, or ``global_batch / (batch_size x world_size)``
    (a ValueError when that is no whole number or disagrees with an ``accum_steps`` also given)."""
    if cfg.global_batch is None:
        return cfg.accum_steps
    per_pass = cfg.batch_size * world_size
    accum, rest = divmod(cfg.global_batch, per_pass)
    if accum < 1 or rest:
        raise ValueError(f"global_batch {cfg.global_batch} cannot be reached with batch_size {cfg.batch_size} on "
                         f"{world_size} process(es) ({per_pass} images per pass): choose a batch_size and a number "
                         f"of processes whose product divides {cfg.global_batch}")
    if cfg.accum_steps not in (1, accum):
        raise ValueError(f"accum_steps {cfg.accum_steps} disagrees with global_batch {cfg.global_batch}, which needs "
                         f"{accum} at batch_size {cfg.batch_size} on {world_size} process(es): set one of them")
    return accum


def _open_splits(cfg: TrainConfig, ctx: DistContext, given: Mapping[str, tuple[Dataset, Any]] | None):
    def split(name: str, augment: bool = False) -> Split:
        if given is not None:
            if name not in given:
                raise ValueError(f"datasets has no {name!r} split; give train, val and test")
            return Split(*given[name])
        return Split(*_build_split(cfg, name, ctx, augment))

    train, val = split("train", augment=cfg.augment), split("val")
    test = split("test") if cfg.test else None  # a missing test split fails now, not at the end
    for name, s in (("train", train), ("val", val)):
        if len(cast(Sized, s.data)) == 0:
            raise ValueError(f"dataset {cfg.dataset!r} has an empty {name} split; check the dataset path")
    return train, val, test


def _build_split(cfg: TrainConfig, split: str, ctx: DistContext, augment: bool):
    def build(download: bool):
        return build_dataset(cfg.dataset, split, root=cfg.data_root, download=download, augment=augment,
                             **cfg.dataset_args)

    if ctx.distributed and cfg.download:  # one process downloads, the others wait and read
        if ctx.is_main:
            out = build(True)
        barrier(ctx)
        return out if ctx.is_main else build(False)
    return build(cfg.download)


def resolve_model(cfg: TrainConfig, info: Any, task: Task, model: nn.Module | None,
                  data: Dataset | None = None) -> TrainConfig:
    """Fill in the model name (recipe or task default) and the hyperparameters the dataset fixes
    (and, given the training ``data``, what its samples hold: the task's ``fit_data``)."""
    if model is not None:
        name = getattr(model, "model_name", type(model).__name__)
        args = dict(getattr(model, "model_kwargs", cfg.model_args))
        if data is not None:
            task.fit_data(name, args, data, info, chosen=True, model=model)
        return cfg.replace(model=name, model_args=args)
    name = cfg.model or task.default_model
    task.check_model(name, get_entry(name).task, info, list_models(task=info.task))
    args = dict(cfg.model_args)
    if cfg.model is None and RECIPES.get(cfg.dataset, {}).get("model") == name:
        args = {**RECIPES[cfg.dataset].get("model_args", {}), **args}
    for key, value in task.model_args(info).items():
        if key in args and args[key] != value:
            raise ValueError(
                f"model argument {key}={args[key]!r} does not fit dataset {info.name!r}, which has {key}={value!r}; "
                f"drop {key} from the model arguments"
            )
        args[key] = value
    if data is not None:
        args = task.fit_data(name, args, data, info, chosen=cfg.model is not None)
    return cfg.replace(model=name, model_args=args)


def _build_model(cfg: TrainConfig, ctx: DistContext, given: nn.Module | None, train: Split) -> nn.Module:
    """The model on its device, seeded; a registered model is first sized on the ``meta`` device."""
    if given is None:
        shape = _sample_shape(train.data)
        meta = meta_model(lambda: create_model(cfg.model, **cfg.model_args))
        params = sum(p.numel() for p in meta.parameters())
        check_fits_memory(
            meta, device=ctx.device, train=True,
            optimizer_slots=OPTIMIZER_SLOTS[cfg.optimizer] + (cfg.ema_decay is not None),  # the average: one more copy
            input_shape=None if shape is None else (cfg.batch_size, *shape),
            what=f"training {cfg.model} ({params:,} parameters) at batch {cfg.batch_size}",
            fix="use a smaller model (model_args such as final_dim, ff_channel or depth) or a smaller batch_size",
        )
    seed_all(cfg.seed)
    net = given if given is not None else create_model(cfg.model, **cfg.model_args)
    return net.to(ctx.device)


def _sample_shape(data: Dataset) -> tuple[int, ...] | None:
    """The shape of the first training input (without touching the global generator), if it is a tensor."""
    with torch.random.fork_rng(devices=[]):
        x = data[0][0]
    return tuple(x.shape) if isinstance(x, torch.Tensor) else None
