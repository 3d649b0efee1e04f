"""Evaluating a model on a dataset split: sample-weighted metrics, sharded over processes."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from .._launch import warn_spin_waiting
from ..data import build_dataset
from ..data._build import check_dataset_source
from ..models import create_model, get_entry
from ..utils.device import is_cuda, resolve_device
from ..utils.validate import check_int
from .distributed import DistContext, ShardSampler, barrier, setup, teardown
from .metrics import Meter
from .predict import Trained, check_fits, load_trained
from .sampling import loader_settings
from .sizing import check_model_fits
from .tasks import Task, get_task

__all__ = [
    "NonFiniteOutputs", "Renormalized", "autocast", "check_amp", "evaluate", "evaluate_checkpoint", "evaluate_pretrained",
    "measure_throughput", "run_batches",
]


def check_amp(amp: str, device: torch.device) -> None:
    """Raise a one-line ValueError when ``device`` cannot run ``amp`` (``none``, ``bf16``, ``fp16``).

    fp16 needs an accelerator: CPU autocast has no float16 loss scaling worth using, so it is
    refused rather than silently run in another precision; bf16 runs on CPU and on accelerators
    that support it (CUDA from Ampere on)."""
    if amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"unknown amp {amp!r}; choose one of none, bf16, fp16")
    if amp == "fp16" and device.type == "cpu":
        raise ValueError("amp fp16 needs an accelerator; on CPU use --amp bf16 or --amp none")
    if amp == "bf16" and is_cuda(device) and not torch.cuda.is_bf16_supported():
        raise ValueError(f"amp bf16 is not supported by {torch.cuda.get_device_name(device)}; use --amp fp16 or none")


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` in ``none``/``bf16``/``fp16`` (checked by :func:`check_amp`)."""
    check_amp(amp, device)
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _loader(dataset: Dataset, batch_size: int, ctx: DistContext, num_workers: int | None, device: torch.device,
            task: Task) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=ShardSampler(len(cast(Sized, dataset)), ctx.rank, ctx.world_size),
        **loader_settings(num_workers, device), collate_fn=task.collate,
    )


def run_batches(model: nn.Module, loader: Iterable[Any], task: str | Task, info: Any, device: torch.device, *,
                amp: str = "none", max_batches: int | None = None, progress: Any = None) -> Meter:
    """Evaluate ``model`` over ``loader``'s batches into the task's meter (not yet reduced over processes)."""
    task = get_task(task)
    meter, loss = task.meter(info), task.loss(info)
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = task.to_device(batch, device)
            task.check_target(y, info)
            with autocast(device, amp):
                out = task.output(task.forward(model, x, y))
            meter.add_nonfinite(task.nonfinite(out))
            task.evaluate_batch(meter, loss, out, x, y, info)
            if progress is not None:
                progress.update(1)
    return meter


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    info: Any,
    *,
    batch_size: int = 128,
    device: str | torch.device = "auto",
    amp: str = "none",
    num_workers: int | None = 0,
    max_batches: int | None = None,
    ctx: DistContext | None = None,
    progress: bool = False,
    desc: str = "eval",
    sliding_window: tuple[int, int] | None = None,
) -> dict[str, float]:
    """Metrics of ``model`` on ``dataset`` for ``info.task``.

    Classification: ``loss``, ``top1``, ``top5`` (percent). Segmentation: ``loss``, ``miou``,
    ``pixel_acc`` (percent; the ignore index skipped). Super-resolution: ``loss``, ``psnr``
    (dB), ``ssim`` on the Y channel with a border of ``scale`` pixels cropped, and the same for
    bicubic upsampling (``bicubic_psnr``, ``bicubic_ssim``). Detection: COCO's ``box_ap``,
    ``box_ap50``, ``box_ap75``, ``box_aps/m/l`` and the ``mask_*`` ones (pycocotools, percent;
    no loss: detectors compute none in evaluation). Under ``torch.distributed`` every
    process evaluates its shard and the sums are all-reduced, so every process returns the
    metrics of the whole set. Also ``seconds`` and ``images_per_second`` (data loading included).
    Segmentation runs on whole images unless ``sliding_window`` is ``(crop, stride)`` (MMSeg's
    ``mode='slide'``, e.g. ``(512, 341)``: :class:`~wavevision.engine.tasks.segmentation.SlidingWindow`).

    Raises:
        ValueError: ``max_batches`` below 1, or model outputs that are NaN or infinite (the
            metrics would mean nothing).
    """
    check_int("batch_size", batch_size, min=1)
    if max_batches is not None:
        check_int("max_batches", max_batches, min=1)
    if ctx is None:
        ctx = DistContext(device=resolve_device(device) if not isinstance(device, torch.device) else device)
    dev = ctx.device
    if dev.type == "cpu":
        warn_spin_waiting(torch.get_num_threads())
    model = model.to(dev)
    task = get_task(info.task)
    if sliding_window is not None:
        model = task.windowed(model, *sliding_window)
    loader = _loader(dataset, batch_size, ctx, num_workers, dev, task)
    bar = None
    if progress and ctx.is_main:
        from tqdm.auto import tqdm

        total = len(loader) if max_batches is None else min(len(loader), max_batches)
        bar = tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
    start = time.perf_counter()
    try:
        meter = run_batches(model, loader, task, info, dev, amp=amp, max_batches=max_batches, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    if ctx.distributed:
        meter.all_reduce(dev)
    n = float(meter.totals["loss_n"])
    if meter.nonfinite:
        raise NonFiniteOutputs(meter.nonfinite, int(n), info.name)
    out = meter.compute()
    out.update(images=int(n), seconds=seconds, images_per_second=n / seconds if seconds > 0 else float("nan"))
    return out


class NonFiniteOutputs(ValueError):
    """:func:`evaluate` found NaN or infinite model outputs for ``count`` of ``images`` images."""

    def __init__(self, count: int, images: int, dataset: str) -> None:
        self.what = f"the model's outputs are NaN or infinite for {count} of {images} images of dataset {dataset!r}"
        super().__init__(f"{self.what}: its weights or normalisation statistics are broken; retrain it or load "
                         "another checkpoint")


def _synchronize(device: torch.device) -> None:
    backend = getattr(torch, device.type, None)
    if device.type != "cpu" and backend is not None and hasattr(backend, "synchronize"):
        backend.synchronize()


def measure_throughput(model: nn.Module, example: torch.Tensor, *, device: torch.device, amp: str = "none",
                       min_seconds: float = 1.0, warmup: int = 2, max_iters: int = 200) -> float:
    """Inference images per second of ``model`` (eval mode, no grad) on a batch like ``example``."""
    model.eval()
    x = example.to(device)
    with torch.no_grad(), autocast(device, amp):
        for _ in range(warmup):
            model(x)
        _synchronize(device)
        start = time.perf_counter()
        iters = 0
        while iters < max_iters:
            model(x)
            iters += 1
            _synchronize(device)
            if time.perf_counter() - start >= min_seconds:
                break
        seconds = time.perf_counter() - start
    return iters * x.shape[0] / seconds


def evaluate_checkpoint(
    checkpoint: Any,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_root: str | None = None,
    download: bool = False,
    dataset_args: dict[str, Any] | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "none",
    num_workers: int = 0,
    max_batches: int | None = None,
    progress: bool = False,
    sliding_window: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Evaluate a trained checkpoint (a run directory or a ``.safetensors`` file) on a dataset split.
    (A plain state dict of a registered model: :func:`evaluate_pretrained` with ``checkpoint``.)

    The dataset, its folder and options default to the ones the checkpoint was trained on.
    ``sliding_window=(crop, stride)``: segmentation by sliding windows (:func:`evaluate`).
    Runs under torchrun too (each process evaluates a shard). Returns the metrics of
    :func:`evaluate` plus ``model``, ``dataset``, ``split`` and ``checkpoint``.
    """
    if max_batches is not None:
        check_int("max_batches", max_batches, min=1)
    ctx = setup(device)
    try:
        trained = load_trained(checkpoint, device=ctx.device)
        cfg = trained.config
        name = dataset or cfg.get("dataset")
        if not name:
            raise ValueError(f"{trained.path} does not record its dataset: pass --dataset NAME")
        same = dataset is None or dataset == cfg.get("dataset")
        root = data_root if data_root is not None else (cfg.get("data_root") if same else None)
        options = dict(cfg.get("dataset_args") or {}) if same else {}
        options.update(dataset_args or {})
        data, info = build_dataset(name, split, root=root, download=download, augment=False, **options)
        metrics, info = _evaluate_split(trained, data, info, f"{name} {split}", batch_size=batch_size, amp=amp,
                                        num_workers=num_workers, max_batches=max_batches, ctx=ctx, progress=progress,
                                        sliding_window=sliding_window)
        barrier(ctx)  # leave the group together (see wavevision.engine.train)
    finally:
        teardown(ctx)
    return {"checkpoint": str(trained.path), "model": trained.name, "dataset": name, "split": split,
            "task": info.task, **metrics}


def _evaluate_split(trained: Any, data: Dataset, info: Any, desc: str, *, batch_size: int | None, amp: str,
                    num_workers: int, max_batches: int | None, ctx: DistContext, progress: bool,
                    sliding_window: tuple[int, int] | None = None) -> tuple[dict[str, Any], Any]:
    """:func:`evaluate` of a loaded model on a built split, after checking they fit; returns (metrics, info)."""
    if len(cast(Sized, data)) == 0:
        raise ValueError(f"the {desc} split is empty; check the dataset path")
    check_fits(trained, info)
    size = batch_size or (1 if info.image_size is None else 128)
    metrics = evaluate(trained.model, data, info, batch_size=size, amp=amp, num_workers=num_workers,
                       max_batches=max_batches, ctx=ctx, progress=progress, desc=desc, sliding_window=sliding_window)
    return metrics, info


class Renormalized(Dataset):
    """A dataset whose images (the first item of each sample) are re-normalised from the
    dataset's ``mean``/``std`` to a model's: ``(x * std_d + mean_d - mean_m) / std_m``, exact
    for the affine normalisation every wavevision dataset applies (none = mean 0, std 1)."""

    def __init__(self, data: Dataset, src: tuple[tuple[float, ...], tuple[float, ...]],
                 dst: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
        self.data = data
        (m0, s0), (m1, s1) = src, dst
        shape = (-1, 1, 1)
        self.scale = (torch.tensor(s0) / torch.tensor(s1)).view(shape)
        self.shift = ((torch.tensor(m0) - torch.tensor(m1)) / torch.tensor(s1)).view(shape)

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        x, *rest = self.data[index]
        return (x * self.scale + self.shift, *rest)


def _stats(values: tuple[float, ...], fill: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in values) if values else (fill,) * n


def evaluate_pretrained(
    model: str,
    *,
    dataset: str,
    checkpoint: str | None = None,
    split: str = "test",
    data_root: str | None = None,
    download: bool = False,
    dataset_args: dict[str, Any] | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "none",
    num_workers: int = 0,
    max_batches: int | None = None,
    progress: bool = False,
    sliding_window: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Evaluate released weights (``create_model(model, pretrained=True)``: a registered
    ``name`` or ``name.tag``, or ``hf-hub:org/name`` / ``local-dir:PATH``) on a dataset split,
    prepared as the weights expect: classification images at the ``pretrained_cfg`` input size
    (unless ``dataset_args`` gives ``image_size``) and every image re-normalised to its mean/std.
    ``checkpoint`` takes the weights from a file instead (a public-package ``.pth`` or a
    ``.safetensors`` state dict of that model). Returns the metrics of :func:`evaluate` plus
    ``model``, ``dataset``, ``split``, ``weights`` and the record's ``published`` metrics.
    """
    from dataclasses import replace

    if max_batches is not None:
        check_int("max_batches", max_batches, min=1)
    registered = ":" not in model  # not an hf-hub: / local-dir: folder
    if registered:
        get_entry(model)  # an unknown name or tag fails before anything is read
    check_dataset_source(dataset, split, root=data_root, download=download)  # a wrong path before any download
    ctx = setup(device)
    try:
        if checkpoint is not None:  # sized, loaded strictly and checked for NaN there
            net = load_trained(checkpoint, device=ctx.device, model=model).model
        else:
            if registered:
                check_model_fits(lambda: create_model(model), device=ctx.device, what=f"the model {model}",
                                 fix="pick a smaller model")
            net = create_model(model, pretrained=True).to(ctx.device).eval()
        cfg = cast(dict[str, Any], net.pretrained_cfg)
        task = get_entry(cast(str, net.model_name)).task
        trained = Trained(net, Path(model), task, None, {})
        options = dict(dataset_args or {})
        if trained.task_def.resizes_inputs and "image_size" not in options:
            options["image_size"] = list(cfg["input_size"][1:])
        data, info = build_dataset(dataset, split, root=data_root, download=download, augment=False, **options)
        n = info.in_chans
        src = (_stats(info.mean, 0.0, n), _stats(info.std, 1.0, n))
        dst = (_stats(tuple(cfg.get("mean", ())), 0.0, n), _stats(tuple(cfg.get("std", ())), 1.0, n))
        if len(dst[0]) == n and src != dst:
            data, info = Renormalized(data, src, dst), replace(info, mean=dst[0], std=dst[1])
        metrics, info = _evaluate_split(trained, data, info, f"{dataset} {split}", batch_size=batch_size, amp=amp,
                                        num_workers=num_workers, max_batches=max_batches, ctx=ctx, progress=progress,
                                        sliding_window=sliding_window)
        barrier(ctx)
    finally:
        teardown(ctx)
    weights = checkpoint or (f"{cfg['hf_hub_id']}/{cfg.get('hf_hub_filename')}" if cfg.get("hf_hub_id")
                             else cfg.get("file", model))
    return {"weights": weights, "model": model, "dataset": dataset, "split": split, "task": info.task,
            "published": dict(cfg.get("metrics") or {}), **metrics}
