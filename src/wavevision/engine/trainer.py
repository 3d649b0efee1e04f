"""The training loop: one function, :func:`train`, for every task, one process or many.

Model selection uses the validation split only; the test split is evaluated once, at the
end, with the weights that scored best on validation. Each epoch ends with a checkpoint of
the best and the last weights and of the resumable state (see :mod:`.checkpoint`);
``checkpoint_every=N`` also saves the state every N steps, and Ctrl-C or SIGTERM saves it at
the end of the current step before stopping. A resumed run restarts *inside* the epoch where
the state was saved: the data order of an epoch depends only on the seed and the epoch, the
augmentation of a sample only on the seed, the epoch and the sample's index, and every random
generator is restored, so in deterministic mode a stopped and resumed run ends with the same
weights as an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ..models import get_entry, list_models, load_state_dict_strict, save_checkpoint
from ..utils.io import append_jsonl, atomic_write_text, write_json
from ..utils.table import format_table
from . import checkpoint as ckpt
from .config import RECIPES, TASK_DEFAULT_MODELS, TrainConfig, config_diff, resolve_config
from .distributed import DistContext, all_gather_object, barrier, setup, teardown
from .evaluate import autocast, evaluate, measure_throughput
from .tasks import class_logits, get_task

__all__ = ["Callback", "TrainResult", "TrainingInterrupted", "train"]


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C or SIGTERM once the state is saved; the message says how to resume."""


class Callback:
    """Hooks called by :func:`train` (override what you need)."""

    def on_step_end(self, state: "LoopState") -> None:
        """After each optimizer step (``state.epoch``, ``state.step``, ``state.global_step``)."""

    def on_epoch_end(self, state: "LoopState", record: Dict[str, Any]) -> None:
        """After each epoch's validation and checkpoint, with the epoch's log record."""


@dataclass
class LoopState:
    """Where the loop is; what callbacks see."""

    epoch: int = 0  # 0-based epoch being trained
    step: int = 0  # optimizer steps done in this epoch
    global_step: int = 0
    model: Optional[nn.Module] = None
    run_dir: Optional[Path] = None


@dataclass
class TrainResult:
    """What a run produced (``to_dict()`` is the JSON record written to ``results.json``)."""

    run_dir: Optional[Path]
    task: str
    model_name: str
    model_args: Dict[str, Any]
    dataset: str
    params: int
    epochs: int
    best_epoch: int
    val: Dict[str, float]
    test: Optional[Dict[str, float]]
    train_seconds: float
    train_images_per_second: float
    inference_images_per_second: Optional[float]
    world_size: int
    weights_sha256: List[str]
    history: List[Dict[str, Any]]
    config: Dict[str, Any]
    plots: Optional[str] = None
    model: Optional[nn.Module] = field(default=None, repr=False)

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    def to_dict(self) -> Dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        out["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        out["metric"] = self.metric
        return out

    def summary(self) -> str:
        """A readable table of the run's final numbers."""
        spec = get_task(self.task)
        rows = []
        for split, metrics in (("val (best)", self.val), ("test", self.test)):
            if metrics:
                rows.append({"split": split, **{m: metrics.get(m) for m in spec.metrics}})
        table = format_table(rows, ["split", *[m for m in spec.metrics if any(r.get(m) is not None for r in rows)]])
        lines = [
            f"{self.model_name} on {self.dataset} ({self.task}): {self.params:,} parameters, "
            f"best epoch {self.best_epoch}/{self.epochs}",
            table,
            f"training: {self.train_seconds:.1f} s, {self.train_images_per_second:,.0f} images/s"
            + (f" over {self.world_size} processes" if self.world_size > 1 else ""),
        ]
        if self.inference_images_per_second:
            lines.append(f"inference: {self.inference_images_per_second:,.0f} images/s")
        if self.plots:
            lines.append(f"plots: {self.plots}")
        if self.run_dir is not None:
            lines.append(f"run directory: {self.run_dir}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Data: deterministic order and augmentation


class _SeededSamples(Dataset):
    """Reads each batch with torch's generator seeded from (seed, epoch, the batch's first index).

    Augmentation then depends only on the seed, the epoch and the batch's samples, not on
    worker processes or on where a run was resumed; the global generator is saved and restored
    around each read, so dropout's random stream is left alone.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: List[int]) -> list:
        batch_seed = ((self.seed * 1_000_003 + self.epoch) * 2_147_483_647 + int(indices[0])) % (2**63 - 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_seed)
            return [self.dataset[i] for i in indices]


class _ListSampler(Sampler[int]):
    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _epoch_indices(n: int, ctx: DistContext, seed: int, epoch: int) -> List[int]:
    """This process's sample order for ``epoch`` (``DistributedSampler``: shuffled from seed + epoch,
    padded so every process gets as many samples)."""
    sampler = DistributedSampler(range(n), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


# ----------------------------------------------------------------------------------------
# Schedule and optimizer


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


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)  # no decay on biases and norm scales
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr)


# ----------------------------------------------------------------------------------------
# Setup helpers


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return keep.strip("-.") or "run"


def default_output(cfg: TrainConfig) -> Path:
    dataset = Path(cfg.dataset).name if (os.sep in cfg.dataset or os.path.exists(cfg.dataset)) else cfg.dataset
    return Path("runs") / f"{_slug(dataset)}-{_slug(str(cfg.model))}"


def _resolve_model(cfg: TrainConfig, info: Any, model: Optional[nn.Module]) -> TrainConfig:
    """Fill in the model name (recipe or task default) and the hyperparameters the dataset fixes."""
    spec = get_task(info.task)
    if model is not None:
        name = getattr(model, "model_name", type(model).__name__)
        return cfg.replace(model=name, model_args=dict(getattr(model, "model_kwargs", cfg.model_args)))
    name = cfg.model or TASK_DEFAULT_MODELS[info.task]
    entry = get_entry(name)
    if entry.task != info.task:
        choices = ", ".join(list_models(task=info.task))
        raise ValueError(
            f"model {name!r} is a {entry.task.replace('_', '-')} model but dataset {info.name!r} is for "
            f"{info.task.replace('_', '-')}; choose one of: {choices}"
        )
    args = dict(cfg.model_args)
    if cfg.model is None and RECIPES.get(cfg.dataset, {}).get("model") == name:
        args = {**RECIPES[cfg.dataset].get("model_args", {}), **args}
    for key, value in spec.model_args(info).items():
        if key in args and args[key] != value:
            raise ValueError(
                f"model argument {key}={args[key]!r} does not fit dataset {info.name!r}, which has {key}={value!r}; "
                f"drop {key} from the model arguments"
            )
        args[key] = value
    return cfg.replace(model=name, model_args=args)


def _build_split(cfg: TrainConfig, split: str, ctx: DistContext, augment: bool = False):
    from ..data import build_dataset

    def build(download: bool):
        return build_dataset(cfg.dataset, split, root=cfg.data_root, download=download, augment=augment,
                             **cfg.dataset_args)

    if ctx.distributed and cfg.download:  # one process downloads, the others wait and read
        if ctx.is_main:
            out = build(True)
        barrier(ctx)
        return out if ctx.is_main else build(False)
    return build(cfg.download)


def _prepare_run_dir(run_dir: Path, cfg: TrainConfig) -> Optional[Dict[str, Any]]:
    """Check the directory against --resume/--overwrite; returns the saved config when resuming."""
    existing = [name for name in ckpt.RUN_FILES if (run_dir / name).exists()]
    if cfg.resume:
        if not (run_dir / "config.yaml").exists():
            raise FileNotFoundError(
                f"nothing to resume in {run_dir}: it holds no config.yaml (is this the run directory? "
                "drop --resume to start a new run)"
            )
        import yaml

        return yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if existing and not cfg.overwrite:
        raise FileExistsError(
            f"{run_dir} already holds a run ({', '.join(existing[:3])}...); pass --resume to continue it, "
            "--overwrite to replace it, or --output DIR for a new one"
        )
    for name in existing:
        (run_dir / name).unlink()
    return None


def _check_resume_config(run_dir: Path, saved: Mapping[str, Any], cfg: TrainConfig) -> None:
    diff = config_diff(saved, cfg.to_dict())
    if diff:
        shown = "; ".join(f"{k}: {a!r} in the run, {b!r} now" for k, (a, b) in list(diff.items())[:5])
        raise ValueError(
            f"cannot resume {run_dir}: it was made with another configuration ({shown}); "
            "resume with the same settings (wavevision train --resume DIR alone reuses them) or start a new run"
        )


def _weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _save_weights(model: nn.Module, path: Path, extra: Dict[str, Any]) -> None:
    if getattr(model, "model_name", None):
        save_checkpoint(model, path, extra=extra)
        return
    from ..models._builder import save_safetensors_bytes
    from ..utils.io import atomic_write_bytes

    atomic_write_bytes(path, save_safetensors_bytes(model.state_dict()))
    write_json(path.with_suffix(".json"), {"model": None, "extra": extra})


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step (a second Ctrl-C stops at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


@dataclass
class _Globals:
    """Process-wide torch settings a run changes, put back when it ends."""

    threads: int
    deterministic: bool
    cudnn_benchmark: bool

    @classmethod
    def capture(cls) -> "_Globals":
        return cls(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                   torch.backends.cudnn.benchmark)

    def restore(self) -> None:
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.deterministic)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------
# The loop


def train(
    config: "TrainConfig | Mapping[str, Any] | None" = None,
    *,
    model: Optional[nn.Module] = None,
    datasets: Optional[Mapping[str, Tuple[Dataset, Any]]] = None,
    callbacks: Sequence[Callback] = (),
    **overrides: Any,
) -> TrainResult:
    """Train a model as ``config`` says and return the result (also written to the run directory).

    Args:
        config: a :class:`TrainConfig`, or a mapping of its keys (the dataset recipe then fills
            in what is not given); keyword ``overrides`` win over both.
        model: a model to train instead of building ``config.model`` (made by
            ``wavevision.create_model`` so that checkpoints can rebuild it).
        datasets: ``{"train": (dataset, info), "val": ..., "test": ...}`` instead of building
            ``config.dataset`` (``info`` is a ``wavevision.data.DatasetInfo``).
        callbacks: :class:`Callback` objects.

    Returns:
        A :class:`TrainResult`; ``result.model`` holds the best weights on the validation split.

    Raises:
        TrainingInterrupted: after Ctrl-C or SIGTERM, once the state is saved for ``resume``.
    """
    if isinstance(config, TrainConfig):
        cfg = config.replace(**overrides) if overrides else config.replace()
    else:
        cfg = resolve_config(overrides={**dict(config or {}), **overrides})
    saved_globals = _Globals.capture()
    ctx = setup(cfg.device)
    try:
        result = _Run(cfg, ctx, model, datasets, list(callbacks)).run()
        barrier(ctx)  # leave the group together: a gloo process that exits while another still writes can abort
        return result
    finally:
        saved_globals.restore()
        teardown(ctx)


class _Run:
    """One call of :func:`train` (kept as an object so the loop reads top to bottom)."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext, model: Optional[nn.Module],
                 datasets: Optional[Mapping[str, Tuple[Dataset, Any]]], callbacks: List[Callback]) -> None:
        self.cfg, self.ctx, self.given_model, self.datasets, self.callbacks = cfg, ctx, model, datasets, callbacks
        self.device = ctx.device
        self.out = sys.stderr

    # -- small helpers ------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.ctx.is_main and self.cfg.progress:
            from tqdm.auto import tqdm

            tqdm.write(message, file=self.out)

    def split(self, name: str, augment: bool = False):
        if self.datasets is not None:
            if name not in self.datasets:
                raise ValueError(f"datasets has no {name!r} split; give train, val and test")
            return self.datasets[name]
        return _build_split(self.cfg, name, self.ctx, augment)

    def eval_batch_size(self, info: Any) -> int:
        if info.image_size is None:
            return 1  # sizes vary: batches cannot be stacked
        return self.cfg.eval_batch_size or 2 * self.cfg.batch_size

    # -- the run ------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, ctx = self.cfg, self.ctx
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        if cfg.amp != "none":
            autocast(self.device, cfg.amp)  # fails early on fp16 without an accelerator

        train_set, info = self.split("train", augment=cfg.augment)
        val_set, val_info = self.split("val")
        test_split = self.split("test") if cfg.test else None  # a missing test split fails now, not at the end
        if len(train_set) == 0 or len(val_set) == 0:
            raise ValueError(f"dataset {cfg.dataset!r} has an empty {'train' if len(train_set) == 0 else 'val'} split; "
                             "check the dataset path")
        self.task = get_task(info.task)
        cfg = self.cfg = _resolve_model(cfg, info, self.given_model)

        run_dir = Path(cfg.output) if cfg.output else default_output(cfg)
        saved_cfg = _prepare_run_dir(run_dir, cfg) if ctx.is_main else None
        if ctx.distributed:
            from .distributed import broadcast_object

            saved_cfg = broadcast_object(ctx, saved_cfg)
        if cfg.resume:
            _check_resume_config(run_dir, saved_cfg or {}, cfg)
        elif ctx.is_main:
            import yaml

            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", yaml.safe_dump({**cfg.to_dict(), "output": str(run_dir)},
                                                                      sort_keys=False))
        barrier(ctx)
        self.run_dir = run_dir

        # model, optimizer, schedule
        _seed_all(cfg.seed)
        if self.given_model is not None:
            net = self.given_model
        else:
            from ..models import create_model

            net = create_model(cfg.model, **cfg.model_args)
        net = net.to(self.device)
        self.net = net
        params = sum(p.numel() for p in net.parameters())
        ddp = net
        if ctx.distributed:
            ddp = nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if self.device.type != "cpu" else None)
        torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout differs between processes

        seeded = _SeededSamples(train_set, cfg.seed)
        n_batches = math.ceil(len(_epoch_indices(len(train_set), ctx, cfg.seed, 0)) / cfg.batch_size)
        steps_per_epoch = min(n_batches, cfg.max_train_batches or n_batches)
        optimizer = _optimizer(net, cfg)
        schedule = WarmupCosine(cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch),
                                cfg.min_lr / cfg.lr, cfg.scheduler)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        loss_fn = self.task.loss_fn(info, cfg.label_smoothing)

        state = LoopState(model=net, run_dir=run_dir)
        history: List[Dict[str, Any]] = []
        best: Dict[str, Any] = {"value": -math.inf, "epoch": 0, "metrics": {}}
        totals = self._zero_totals()
        best_weights: Optional[Dict[str, torch.Tensor]] = None
        if cfg.resume:
            resumed = ckpt.load_state(run_dir)
            if resumed is None:
                self.log(f"{run_dir}: no checkpoint saved yet, starting from the beginning")
            else:
                load_state_dict_strict(net, resumed["model"], source=str(run_dir / ckpt.STATE_FILE))
                optimizer.load_state_dict(resumed["optimizer"])
                scheduler.load_state_dict(resumed["scheduler"])
                scaler.load_state_dict(resumed["scaler"])
                rngs = resumed["rng"]
                if len(rngs) == ctx.world_size:
                    ckpt.restore_rng(rngs[ctx.rank])
                state.epoch, state.step, state.global_step = resumed["epoch"], resumed["step"], resumed["global_step"]
                history, best = list(resumed["history"]), dict(resumed["best"])
                totals = {k: v.to(self.device) for k, v in resumed["totals"].items()}
                if best["epoch"] > 0:
                    from ..models._builder import load_safetensors

                    best_weights = load_safetensors(run_dir / "best.safetensors")[0]
                if ctx.is_main:  # the log follows the state, even if the process died in between
                    atomic_write_text(run_dir / "log.jsonl", "".join(_jsonl(r) for r in history))
                self.log(f"resuming {run_dir} at epoch {state.epoch + 1}, step {state.step}")

        self.common = dict(info=info, val_info=val_info, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
        with _StopFlag() as stop:
            while state.epoch < cfg.epochs:
                record = self._train_epoch(ddp, seeded, state, totals, steps_per_epoch, loss_fn, stop, history, best)
                self._sync_buffers()
                metrics = evaluate(net, val_set, val_info, batch_size=self.eval_batch_size(val_info),
                                   amp=cfg.amp, num_workers=cfg.num_workers, max_batches=cfg.max_eval_batches,
                                   ctx=ctx, progress=cfg.progress, desc=f"val {state.epoch + 1}")
                record.update({f"val_{k}": v for k, v in metrics.items() if k not in ("images", "seconds", "images_per_second")})
                record["epoch_seconds"] += metrics["seconds"]
                value = metrics.get(self.task.metric, -math.inf)
                epoch_no = state.epoch + 1
                extra = self._extra(info, epoch_no, {self.task.metric: value})
                if value > best["value"] or best["epoch"] == 0:
                    best = {"value": value, "epoch": epoch_no, "metrics": {k: record[k] for k in record if k.startswith("val_")}}
                    best_weights = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                    if ctx.is_main:
                        _save_weights(net, run_dir / "best.safetensors", extra)
                history.append(record)
                state.epoch, state.step = epoch_no, 0
                totals = self._zero_totals()
                self._save(state, totals, history, best, extra)
                if ctx.is_main:
                    append_jsonl(run_dir / "log.jsonl", record)
                self.log(self._epoch_line(record))
                for cb in self.callbacks:
                    cb.on_epoch_end(state, record)

        final_digest = _weights_digest(net)
        digests = all_gather_object(ctx, final_digest)
        if best_weights is not None:
            net.load_state_dict(best_weights)
        test_metrics = None
        throughput = None
        example = None
        if test_split is not None:
            test_set, test_info = test_split
            test_metrics = evaluate(net, test_set, test_info, batch_size=self.eval_batch_size(test_info), amp=cfg.amp,
                                    num_workers=cfg.num_workers, max_batches=cfg.max_eval_batches, ctx=ctx,
                                    progress=cfg.progress, desc="test")
            example = _example_batch(test_set, self.eval_batch_size(test_info))
        if ctx.is_main:
            if example is None:
                example = _example_batch(val_set, self.eval_batch_size(val_info))
            throughput = measure_throughput(net, example, device=self.device, amp=cfg.amp)
        train_seconds = sum(r["epoch_seconds"] for r in history)
        train_images = sum(r["train_images"] for r in history)
        train_step_seconds = sum(r["train_seconds"] for r in history)
        result = TrainResult(
            run_dir=run_dir, task=info.task, model_name=cfg.model, model_args=dict(cfg.model_args),
            dataset=cfg.dataset, params=params, epochs=cfg.epochs, best_epoch=best["epoch"],
            val={k[4:]: v for k, v in best["metrics"].items()},
            test=None if test_metrics is None else {k: v for k, v in test_metrics.items()},
            train_seconds=train_seconds,
            train_images_per_second=train_images / train_step_seconds if train_step_seconds > 0 else float("nan"),
            inference_images_per_second=throughput, world_size=ctx.world_size, weights_sha256=digests,
            history=history, config=cfg.to_dict(), model=net,
        )
        if ctx.is_main:
            if len(set(digests)) > 1:
                print(f"warning: the {ctx.world_size} processes ended with different weights", file=sys.stderr)
            if cfg.plots:
                from .plots import plot_history

                path = plot_history(history, run_dir / "curves.png", metrics=[m for m in self.task.metrics if m != "loss"],
                                    title=f"{cfg.model} on {cfg.dataset}")
                result.plots = None if path is None else str(path)
            write_json(run_dir / "results.json", result.to_dict())
        barrier(self.ctx)
        return result

    # -- pieces of the loop -------------------------------------------------------------
    def _zero_totals(self) -> Dict[str, torch.Tensor]:
        z = lambda: torch.zeros((), dtype=torch.float64, device=self.device)  # noqa: E731
        return {"loss": z(), "correct": z(), "n": z(), "seconds": z()}

    def _train_epoch(self, ddp: nn.Module, seeded: _SeededSamples, state: LoopState, totals: Dict[str, torch.Tensor],
                     steps: int, loss_fn: Callable, stop: _StopFlag, history, best) -> Dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        info, optimizer, scheduler, scaler = (self.common[k] for k in ("info", "optimizer", "scheduler", "scaler"))
        seeded.epoch = state.epoch
        indices = _epoch_indices(len(seeded), ctx, cfg.seed, state.epoch)[: steps * cfg.batch_size]
        loader = DataLoader(
            seeded, batch_size=cfg.batch_size, sampler=_ListSampler(indices[state.step * cfg.batch_size:]),
            num_workers=cfg.num_workers, pin_memory=self.device.type != "cpu",
            generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global generator untouched
        )
        bar = None
        if ctx.is_main and cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, initial=state.step, desc=f"epoch {state.epoch + 1}/{cfg.epochs}", unit="batch",
                       leave=False, dynamic_ncols=True, file=self.out)
        ddp.train()
        classification = info.task == "classification"
        start = time.perf_counter()
        try:
            for x, y in loader:
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                self.task.check_target(y, info)
                with autocast(self.device, cfg.amp):
                    out = ddp(x)
                loss = loss_fn(out, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.clip_grad:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(ddp.parameters(), cfg.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                n = y.shape[0]
                totals["loss"] += loss.detach().double() * n
                totals["n"] += n
                if classification:
                    totals["correct"] += (class_logits(out).detach().argmax(1) == y).sum()
                state.step += 1
                state.global_step += 1
                if bar is not None:
                    bar.update(1)
                    if state.step % 10 == 0 or state.step == steps:
                        bar.set_postfix(loss=f"{float(totals['loss'] / totals['n']):.4f}", refresh=False)
                for cb in self.callbacks:
                    cb.on_step_end(state)
                if self._stop_requested(stop):
                    totals["seconds"] += time.perf_counter() - start
                    self._save(state, totals, history, best, self._extra(info, state.epoch, {}))
                    raise TrainingInterrupted(
                        f"stopped at epoch {state.epoch + 1}, step {state.step}; the state is saved: "
                        f"continue with wavevision train --resume {self.run_dir}"
                    )
                if cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0 and state.step < steps:
                    totals["seconds"] += time.perf_counter() - start
                    start = time.perf_counter()
                    self._save(state, totals, history, best, self._extra(info, state.epoch, {}))
        finally:
            if bar is not None:
                bar.close()
        totals["seconds"] += time.perf_counter() - start
        sums = torch.stack([totals["loss"], totals["correct"], totals["n"]])
        if ctx.distributed:
            torch.distributed.all_reduce(sums)
        loss_sum, correct, count = (float(v) for v in sums)
        if not math.isfinite(loss_sum):
            raise ValueError(
                f"the training loss became {loss_sum} in epoch {state.epoch + 1}; lower --lr, set --clip-grad, "
                "or use --amp none"
            )
        seconds = float(totals["seconds"])
        record: Dict[str, Any] = {"epoch": state.epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                                  "train_loss": loss_sum / max(count, 1)}
        if classification:
            record["train_top1"] = 100.0 * correct / max(count, 1)
        record.update(train_images=int(count), train_seconds=seconds, epoch_seconds=seconds,
                      train_images_per_second=count / seconds if seconds > 0 else float("nan"))
        return record

    def _sync_buffers(self) -> None:
        """Give every process the main process's buffers (BatchNorm statistics): each process's
        last forward pass updated its own, so without this they would differ at evaluation."""
        if self.ctx.distributed:
            for buf in self.net.buffers():
                torch.distributed.broadcast(buf, src=0)

    def _stop_requested(self, stop: _StopFlag) -> bool:
        if not self.ctx.distributed:
            return stop.requested
        flag = torch.tensor([1.0 if stop.requested else 0.0], device=self.device)
        torch.distributed.all_reduce(flag)  # every process stops at the same step
        return bool(flag.item() > 0)

    def _extra(self, info: Any, epoch: int, metric: Dict[str, float]) -> Dict[str, Any]:
        return {
            "task": info.task, "dataset": dataclasses.asdict(info), "epoch": epoch,
            "metric": metric, "config": self.cfg.to_dict(),
        }

    def _save(self, state: LoopState, totals, history, best, extra) -> None:
        """Write the last weights and the resumable state (every process sends its generators)."""
        ctx = self.ctx
        rngs = all_gather_object(ctx, ckpt.capture_rng())
        if not ctx.is_main:
            return
        net = self.net
        _save_weights(net, self.run_dir / "last.safetensors", {**extra, "step": state.step})
        ckpt.save_state(self.run_dir, {
            "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "optimizer": self.common["optimizer"].state_dict(),
            "scheduler": self.common["scheduler"].state_dict(),
            "scaler": self.common["scaler"].state_dict(),
            "rng": rngs,
            "epoch": state.epoch, "step": state.step, "global_step": state.global_step,
            "history": history, "best": best,
            "totals": {k: v.detach().cpu() for k, v in totals.items()},
        })

    def _epoch_line(self, r: Dict[str, Any]) -> str:
        parts = [f"epoch {r['epoch']}/{self.cfg.epochs}", f"train loss {r['train_loss']:.4f}"]
        for m in self.task.metrics:
            if f"val_{m}" in r and r[f"val_{m}"] is not None:
                parts.append(f"val {m} {r[f'val_{m}']:.4g}")
        parts.append(f"{r['epoch_seconds']:.1f} s")
        return "  ".join(parts)


def _jsonl(record: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(record)) + "\n"


def _example_batch(dataset: Dataset, batch_size: int) -> torch.Tensor:
    n = min(len(dataset), batch_size)  # type: ignore[arg-type]
    return torch.stack([dataset[i][0] for i in range(n)])
