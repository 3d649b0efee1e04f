"""The training loop: one function, :func:`train`, for every task, one process or many.

:func:`~wavevision.engine.plan.prepare` checks and builds everything first (nothing on disk
changes before it has); the loop then takes the run directory and trains. Model selection
uses the validation split only; the test split is evaluated once, at the end, with the
weights that scored best on validation. Each epoch ends with a checkpoint of the best and the
last weights and of the resumable :class:`~wavevision.engine.TrainState`;
``checkpoint_every=N`` also saves the state every N steps, and Ctrl-C or SIGTERM saves it at
the end of the current step before stopping. A resumed run restarts *inside* the epoch where
the state was saved: the data order of an epoch depends only on the seed and the epoch, the
augmentation of a sample only on the seed, the epoch and the sample's index, and every random
generator is restored, so in deterministic mode a stopped and resumed run ends with the same
weights as an uninterrupted one. With ``ema_decay`` the moving average of the weights is what the
run validates, tests and saves (best and last weights); the state file holds both.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from .._launch import warn_spin_waiting
from ..models import save_checkpoint
from ..models._builder import load_safetensors, save_safetensors_bytes
from ..recipes import get_recipe
from ..utils.io import atomic_write_bytes, read_text, write_json
from . import checkpoint as ckpt
from .config import TrainConfig, recipe_diff, resolve_config
from .distributed import all_gather_object, barrier, on_main, setup, teardown
from .evaluate import NonFiniteOutputs, autocast, evaluate, measure_throughput
from .plan import Plan, prepare
from .plots import plot_history
from .recipe import missing_pieces, warn_missing
from .result import TrainResult
from .rundir import check_regular
from .runlog import RunLog, format_seconds
from .runtime import Globals, StopFlag
from .sampling import ListSampler, epoch_indices, loader_settings, stream_indices
from .schedule import WarmupCosine, build_optimizer, build_scheduler, phase2_config
from .state import TrainState

__all__ = ["Callback", "LoopState", "TrainResult", "TrainingInterrupted", "WarmupCosine", "train"]

_MAX_RESULTS_BYTES = 64 << 20


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C or SIGTERM once the state is saved; the message says how to resume."""


class Callback:
    """Hooks called by :func:`train` (override what you need)."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimizer step (``state.epoch``, ``state.step``, ``state.global_step``)."""

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        """After each epoch's validation and checkpoint, with the epoch's log record."""


LoopState = TrainState  # the name callbacks saw before the state grew save/load


def train(
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    model: nn.Module | None = None,
    datasets: Mapping[str, tuple[Dataset, Any]] | None = None,
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
        Resuming a run that already finished returns its saved result (``result.note`` says so).

    Raises:
        TrainingInterrupted: after Ctrl-C or SIGTERM, once the state is saved for ``resume``.
    """
    if isinstance(config, TrainConfig):
        cfg = config.replace(**overrides) if overrides else config.replace()
    else:
        cfg = resolve_config(overrides={**dict(config or {}), **overrides})
    warn_missing(cfg.recipe)
    saved_globals = Globals.capture()
    ctx = setup(cfg.device)
    if ctx.device.type == "cpu":
        warn_spin_waiting(cfg.threads or torch.get_num_threads())
    try:
        plan = prepare(cfg, ctx, model, datasets)  # everything checked and built; the disk only read
        result = _Run(plan, list(callbacks)).run()
        barrier(ctx)  # leave the group together: a gloo process that exits while another still writes can abort
        return result
    finally:
        saved_globals.restore()
        teardown(ctx)


def recipe_record(cfg: TrainConfig) -> dict[str, Any] | None:
    """What a run records of its recipe: the name, the settings that override it, what the engine left out."""
    if cfg.recipe is None:
        return None

    overrides = {k: list(v) for k, v in recipe_diff(cfg).items() if k not in ("output",)}
    return {"name": cfg.recipe, "overrides": overrides, "missing": missing_pieces(get_recipe(cfg.recipe))}


class _Run:
    """One call of :func:`train`: the run directory taken, the loop, the final measurements."""

    def __init__(self, plan: Plan, callbacks: list[Callback]) -> None:
        self.plan, self.callbacks = plan, callbacks
        self.cfg, self.ctx, self.task, self.device = plan.cfg, plan.ctx, plan.task, plan.ctx.device
        self.run_dir = plan.run_dir.path
        self.state = TrainState(model=plan.model, optimizer=plan.optimizer, scheduler=plan.scheduler,
                                scaler=plan.scaler, run_dir=self.run_dir,
                                ema=None if plan.ema is None else plan.ema.module, switch_phase=self._switch_phase)
        self.state.zero_totals(("loss", "n", "seconds"), self.device)
        self.runlog = RunLog(self.run_dir, enabled=self.ctx.is_main)
        self._window = (0.0, 0.0, 0.0)  # the epoch's loss sum, images and seconds at the last step record
        self._clock: tuple[float, int] | None = None  # wall time and global step when this process began training
        self._train_loader: DataLoader | None = None  # made at the first epoch, its workers kept to the end

    def log(self, message: str) -> None:
        """A line on stderr from the main process: above the bars, or plain without them
        (``progress=False`` still says how each epoch went, as it ends)."""
        if not self.ctx.is_main:
            return
        if self.cfg.progress:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def run(self) -> TrainResult:
        config = {**self.cfg.to_dict(), "output": str(self.run_dir)}
        on_main(self.ctx, lambda: self.plan.run_dir.open(config, resume=self.cfg.resume))
        failed = True
        try:
            result = self._resume() if self.cfg.resume else None
            if result is None:
                self._fit()
                result = self._finish()
            failed = False
            return result
        finally:
            self._train_loader = None  # its persistent workers end with it
            self.runlog.close()
            if self.ctx.is_main:
                self.plan.run_dir.close(failed=failed)

    # -- the loop ----------------------------------------------------------------------------
    def _fit(self) -> None:
        state = self.state
        self.runlog.start(state.global_step)
        self._clock = (time.perf_counter(), state.global_step)
        # a resumed epoch's totals hold the steps before the save: the first step record covers this process's steps
        self._window = (float(state.totals["loss"]), float(state.totals["n"]), float(state.totals["seconds"]))
        with StopFlag() as stop:
            while state.epoch < self.cfg.epochs and not self._patience_spent():
                record = self._train_epoch(stop)
                self._sync_buffers()
                record.update(self._validate(record))
                self._end_epoch(record)

    def _train_epoch(self, stop: StopFlag) -> dict[str, Any]:
        state, bar = self.state, self._bar()
        self.plan.ddp.train()
        start = time.perf_counter()
        try:
            for batches in _groups(self._loader(), self.plan.accum_steps):
                self._step(batches)
                state.totals["seconds"] += time.perf_counter() - start
                if bar is not None:
                    bar.update(1)
                    if state.step % 10 == 0 or state.step == self.plan.epoch_steps(state.epoch):
                        bar.set_postfix(loss=f"{float(state.totals['loss'] / state.totals['n']):.4f}",
                                        run_eta=format_seconds(self._eta()), refresh=False)
                if self.cfg.log_every and state.global_step % self.cfg.log_every == 0:
                    self._log_step()
                self._after_step(stop)
                start = time.perf_counter()
        finally:
            if bar is not None:
                bar.close()
        return self._epoch_record()

    def _log_step(self) -> None:
        """A step record: the mean loss and the images per second since the previous one (this process's)."""
        if not self.runlog.enabled:
            return
        totals, (loss0, n0, s0) = self.state.totals, self._window
        loss, n, seconds = float(totals["loss"]), float(totals["n"]), float(totals["seconds"])
        self._window = (loss, n, seconds)
        if n <= n0:
            return
        self.runlog.step(epoch=self.state.epoch + 1, step=self.state.global_step,
                         lr=self.plan.optimizer.param_groups[0]["lr"], loss=(loss - loss0) / (n - n0),
                         images_per_second=(n - n0) / (seconds - s0) if seconds > s0 else math.nan)

    def _eta(self) -> float:
        """Seconds left of the whole run, at this process's pace so far (validation included)."""
        if self._clock is None or self.state.global_step <= self._clock[1]:
            return math.nan
        start, step0 = self._clock
        per_step = (time.perf_counter() - start) / (self.state.global_step - step0)
        total = sum(self.plan.epoch_steps(epoch) for epoch in range(self.cfg.epochs))  # a partial last epoch counts
        return per_step * max(0, total - self.state.global_step)

    def _step(self, batches: list[Any]) -> None:
        """One optimizer step on ``batches`` (one, or ``accum_steps`` with gradient accumulation),
        their sums added to the epoch's totals.

        Each batch's mean loss is weighted by its share of the step's samples, so the summed
        gradient is the mean over all of them, as one batch of that size would give."""
        plan, state, cfg = self.plan, self.state, self.cfg
        total = sum(_batch_len(b) for b in batches)
        plan.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            # DistributedDataParallel averages gradients over processes on the last batch only
            ddp = cast(nn.parallel.DistributedDataParallel, plan.ddp)  # a DistributedDataParallel when distributed
            with contextlib.nullcontext() if last or not self.ctx.distributed else ddp.no_sync():
                self._accumulate(batch, 1.0 if len(batches) == 1 else _batch_len(batch) / total)
        if cfg.clip_grad:
            plan.scaler.unscale_(plan.optimizer)
            torch.nn.utils.clip_grad_norm_(plan.ddp.parameters(), cfg.clip_grad)
        plan.scaler.step(plan.optimizer)
        plan.scaler.update()
        plan.scheduler.step()
        if plan.ema is not None:
            plan.ema.update(plan.model)
        state.step += 1
        state.global_step += 1

    def _accumulate(self, batch: Any, weight: float) -> None:
        """Forward and backward of one batch, its loss scaled by ``weight``; its sums into the totals."""
        plan, state = self.plan, self.state
        x, y = self.task.to_device(batch, self.device)
        self.task.check_target(y, plan.train.info)
        target = y
        if plan.mix is not None:
            if len(x) % 2:  # timm mixes a batch with its reverse: an odd batch leaves its last sample out
                x, y = x[:-1], y[:-1]
                if not len(x):
                    return
            x, target = plan.mix(x, y)
        with autocast(self.device, self.cfg.amp):
            out = self.task.forward(plan.ddp, x, target)
        loss = plan.loss(out, target)
        plan.scaler.scale(loss if weight == 1.0 else loss * weight).backward()
        n = len(x)
        state.totals["loss"] += loss.detach().double() * n
        state.totals["n"] += n
        for key, value in self.task.train_sums(out, y).items():
            state.totals[key] = state.totals.get(key, 0) + value.detach().double()

    def _after_step(self, stop: StopFlag) -> None:
        """Callbacks, then a stop on request (state saved) and the periodic checkpoint."""
        state, cfg = self.state, self.cfg
        for cb in self.callbacks:
            cb.on_step_end(state)
        if self._stop_requested(stop):
            self._save()
            raise TrainingInterrupted(f"stopped at epoch {state.epoch + 1}, step {state.step}; the state is saved: "
                                      f"continue with wavevision train --resume {self.run_dir}")
        if cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0 and state.step < self.plan.epoch_steps(state.epoch):
            self._save()

    def _epoch_record(self) -> dict[str, Any]:
        """The epoch's training numbers, summed over processes."""
        totals = self.state.totals
        keys = sorted(k for k in totals if k != "seconds")
        sums = torch.stack([torch.as_tensor(totals[k], dtype=torch.float64, device=self.device) for k in keys])
        if self.ctx.distributed:
            torch.distributed.all_reduce(sums)
        values = dict(zip(keys, (float(v) for v in sums)))
        loss_sum, count, seconds = values["loss"], values["n"], float(totals["seconds"])
        if not math.isfinite(loss_sum):
            raise ValueError(f"the training loss became {loss_sum} in epoch {self.state.epoch + 1}; lower --lr, "
                             "set --clip-grad, or use --amp none")
        record: dict[str, Any] = {"kind": "epoch", "epoch": self.state.epoch + 1, "step": self.state.global_step, "lr": self.plan.optimizer.param_groups[0]["lr"],
                                  "train_loss": loss_sum / max(count, 1)}
        record.update(self.task.train_metrics(values, count))
        record.update(train_images=int(count), train_seconds=seconds, epoch_seconds=seconds,
                      train_images_per_second=count / seconds if seconds > 0 else float("nan"))
        return record

    def _validate(self, record: dict[str, Any]) -> dict[str, Any]:
        """``val_*`` metrics of the epoch (its seconds added to ``record``)."""
        val, cfg = self.plan.val, self.cfg
        try:
            metrics = evaluate(self.plan.eval_model, val.data, val.info, batch_size=self.plan.eval_batch_size(val.info),
                               amp=cfg.amp, num_workers=cfg.num_workers, max_batches=cfg.max_eval_batches, ctx=self.ctx,
                               progress=cfg.progress, desc=f"val {self.state.epoch + 1}", sliding_window=self._window_test())
        except NonFiniteOutputs as e:  # in training, the advice is the diverging loss's, not "load another checkpoint"
            raise ValueError(f"validation in epoch {self.state.epoch + 1}: {e.what}; the training diverged: "
                             "lower --lr, set --clip-grad, or use --amp none") from None
        record["epoch_seconds"] += metrics["seconds"]
        return {f"val_{k}": v for k, v in metrics.items() if k not in ("images", "seconds", "images_per_second")}

    def _window_test(self) -> tuple[int, int] | None:
        """(crop, stride) of the sliding-window test (``sliding_window``), or None for whole images."""
        window = self.cfg.sliding_window
        return None if window is None else (window[0], window[1])

    def _end_epoch(self, record: dict[str, Any]) -> None:
        """Best epoch, checkpoint, log line, callbacks."""
        state, metric = self.state, self.task.metric
        if self.cfg.patience is not None:
            record["phase"] = state.phase
        improved = state.end_epoch(record, metric)
        self._count_patience(improved)
        extra = self._extra(state.epoch, {metric: record.get(f"val_{metric}", -math.inf)})
        if improved and self.ctx.is_main:
            _save_weights(self.plan.eval_model, self.run_dir / "best.safetensors", extra)
        state.zero_totals(("loss", "n", "seconds"), self.device)
        self._window = (0.0, 0.0, 0.0)
        self._save(extra)
        self.runlog.epoch(record)
        self.log(self._epoch_line(record))
        for cb in self.callbacks:
            cb.on_epoch_end(state, record)

    # -- two-phase training ------------------------------------------------------------------
    def _count_patience(self, improved: bool) -> None:
        """Count the epochs without a better score; phase 1's patience spent: phase 2 from the best weights."""
        state, patience = self.state, self.cfg.patience
        if patience is None:
            return
        state.stale = 0 if improved else state.stale + 1
        if state.phase == 1 and state.stale >= patience and state.epoch < self.cfg.epochs:
            self._switch_phase(2)
            assert state.best_weights is not None  # the first epoch always counts as best
            self.plan.model.load_state_dict(state.best_weights)
            if self.plan.ema is not None:
                assert state.ema is not None
                state.ema.load_state_dict(state.best_weights)
            state.phase, state.stale = 2, 0
            self.log(f"epoch {state.epoch}: no better validation {self.task.metric} for {patience} epochs; phase 2 "
                     f"({self.cfg.phase2_optimizer}, lr {self.cfg.phase2_lr:g}) from the weights of epoch "
                     f"{state.best['epoch']}")

    def _switch_phase(self, phase: int) -> None:
        """Build the optimizer and constant schedule of ``phase`` (2: the ``phase2_*`` settings)."""
        if phase != 2:
            raise ValueError(f"a saved two-phase state is in phase {phase}, this run starts in phase 1; the file is damaged")
        cfg = phase2_config(self.cfg)
        self.plan.optimizer = self.state.optimizer = build_optimizer(self.plan.model, cfg)
        self.plan.scheduler = self.state.scheduler = build_scheduler(self.plan.optimizer, cfg, self.plan.steps_per_epoch)

    def _patience_spent(self) -> bool:
        """Whether two-phase training's second patience ran out (the run is complete)."""
        state = self.state
        return self.cfg.patience is not None and state.phase == 2 and state.stale >= self.cfg.patience

    # -- pieces of the loop ----------------------------------------------------------------
    def _loader(self) -> DataLoader:
        """This process's remaining batches of the epoch (a resumed epoch skips the steps done).

        One loader serves every epoch, its workers persistent: its sampler is given the epoch's
        ``(epoch, index)`` pairs, so the workers' copies of the samples need no update."""
        cfg, state, seeded = self.cfg, self.state, self.plan.seeded
        per_step = cfg.batch_size * self.plan.accum_steps
        if cfg.eval_every is None:
            indices = [(state.epoch, i) for i in epoch_indices(len(seeded), self.ctx, cfg.seed, state.epoch,
                                                               cfg.repeated_augmentation)]
        else:  # a validation interval: its stretch of the passes over the data, each shuffled as an epoch is
            start = state.epoch * self.plan.steps_per_epoch * per_step
            indices = stream_indices(len(seeded), self.ctx, cfg.seed, start, self.plan.epoch_steps(state.epoch) * per_step,
                                     cfg.repeated_augmentation)
        indices = indices[: self.plan.epoch_steps(state.epoch) * per_step]
        if self._train_loader is None:
            self._train_loader = DataLoader(
                seeded, batch_size=cfg.batch_size, sampler=ListSampler([]),
                **loader_settings(cfg.num_workers, self.device, persistent=True), collate_fn=self.task.collate,
                generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global generator untouched
            )
        cast(ListSampler, self._train_loader.sampler).indices = indices[state.step * per_step:]
        return self._train_loader

    def _bar(self) -> Any:
        if not (self.ctx.is_main and self.cfg.progress):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.plan.epoch_steps(self.state.epoch), initial=self.state.step, unit="batch", leave=False,
                    desc=f"epoch {self.state.epoch + 1}/{self.cfg.epochs}", dynamic_ncols=True, file=sys.stderr)

    def _sync_buffers(self) -> None:
        """Give every process the main process's buffers (BatchNorm statistics): each process's
        last forward pass updated its own, so without this they would differ at evaluation."""
        if self.ctx.distributed:
            for buf in self.plan.model.buffers():
                torch.distributed.broadcast(buf, src=0)
            if self.plan.ema is not None:  # the average of each process's own statistics
                for buf in self.plan.ema.module.buffers():
                    torch.distributed.broadcast(buf, src=0)

    def _stop_requested(self, stop: StopFlag) -> bool:
        if not self.ctx.distributed:
            return stop.requested
        flag = torch.tensor([1.0 if stop.requested else 0.0], device=self.device)
        torch.distributed.all_reduce(flag)  # every process stops at the same step
        return bool(flag.item() > 0)

    def _extra(self, epoch: int, metric: dict[str, float]) -> dict[str, Any]:
        info = self.plan.train.info
        return {"task": info.task, "dataset": dataclasses.asdict(info), "epoch": epoch, "metric": metric,
                "config": self.cfg.to_dict()}

    def _save(self, extra: dict[str, Any] | None = None) -> None:
        """Write the last weights and the resumable state (every process sends its generators)."""
        rngs = all_gather_object(self.ctx, ckpt.capture_rng())
        if not self.ctx.is_main:
            return
        extra = extra if extra is not None else self._extra(self.state.epoch, {})
        _save_weights(self.plan.eval_model, self.run_dir / "last.safetensors", {**extra, "step": self.state.step})
        self.state.save(self.run_dir, rngs=rngs, fingerprint=self.plan.fingerprint)
        self.plan.run_dir.saved()  # a complete state: the run an --overwrite replaces can go

    def _epoch_line(self, r: dict[str, Any]) -> str:
        parts = [f"epoch {r['epoch']}/{self.cfg.epochs}", f"train loss {r['train_loss']:.4f}"]
        for m in self.task.metrics:
            if r.get(f"val_{m}") is not None:
                parts.append(f"val {m} {r[f'val_{m}']:.4g}")
        parts.append(f"{r['epoch_seconds']:.1f} s")
        if r["epoch"] < self.cfg.epochs:
            parts.append(f"run ETA {format_seconds(self._eta())}")
        return "  ".join(parts)

    # -- resume ------------------------------------------------------------------------------
    def _resume(self) -> TrainResult | None:
        """Restore the saved state; the saved result when the run is already complete, else None."""
        state, ctx = self.state, self.ctx
        if not state.load(self.run_dir, fingerprint=self.plan.fingerprint, rank=ctx.rank, world_size=ctx.world_size):
            self.log(f"{self.run_dir}: no checkpoint saved yet, starting from the beginning")
            return None
        if state.best["epoch"] > 0:
            state.best_weights = _read_weights(self.run_dir / "best.safetensors")
        if state.epoch >= self.cfg.epochs or self._patience_spent():
            return self._complete()
        self.runlog.restart(state.global_step, state.history)  # the log follows the state, even if the process died in between
        self.log(f"resuming {self.run_dir} at epoch {state.epoch + 1}, step {state.step}")
        return None

    def _complete(self) -> TrainResult | None:
        """The saved result of a run that finished all its epochs (None if it died before writing it)."""
        path, epochs = self.run_dir / "results.json", self.state.epoch
        if not path.exists():
            self.log(f"{self.run_dir} finished its {epochs} epochs but has no results.json: measuring them now")
            return None
        check_regular(path, "run file")
        text = read_text(path, max_bytes=_MAX_RESULTS_BYTES, what="run results")
        try:
            result = TrainResult.from_dict(json.loads(text))
            result.summary()  # every field a summary reads is usable
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
            why = " ".join(str(e).split())[:200] or type(e).__name__
            raise ValueError(f"{path} is not a readable run result ({why}); delete it and resume again to measure "
                             "the finished run anew") from None
        result.run_dir = self.run_dir  # this folder, also when it was copied or moved from where it was made
        if self.state.best_weights is not None:
            self.plan.model.load_state_dict(self.state.best_weights)
        result.model = self.plan.model
        result.note = (f"{self.run_dir} is already complete ({epochs}/{epochs} epochs); nothing to resume, "
                       "these are its saved results; start a new run (another --output) to train more")
        if self.ctx.is_main:  # said even without progress output: the run did not train
            print(f"note: {result.note}", file=sys.stderr)
        return result

    # -- the end -----------------------------------------------------------------------------
    def _finish(self) -> TrainResult:
        """Best weights back, the test split once, throughput, ``results.json`` and plots."""
        plan, cfg, ctx, state = self.plan, self.cfg, self.ctx, self.state
        digests = all_gather_object(ctx, _weights_digest(plan.model))
        if state.best_weights is not None:
            plan.model.load_state_dict(state.best_weights)
        test_metrics, throughput = self._test_and_throughput()
        seconds = sum(r["train_seconds"] for r in state.history)
        result = TrainResult(
            run_dir=self.run_dir, task=plan.train.info.task, model_name=cast(str, cfg.model), model_args=dict(cfg.model_args),
            dataset=cfg.dataset, params=plan.params, epochs=state.epoch, best_epoch=state.best["epoch"],
            val={k[4:]: v for k, v in state.best["metrics"].items()}, test=test_metrics,
            train_seconds=sum(r["epoch_seconds"] for r in state.history),
            train_images_per_second=sum(r["train_images"] for r in state.history) / seconds if seconds > 0 else math.nan,
            inference_images_per_second=throughput, world_size=ctx.world_size, weights_sha256=digests,
            history=state.history, config=cfg.to_dict(), model=plan.model, recipe=recipe_record(cfg),
        )
        if ctx.is_main:
            if len(set(digests)) > 1:
                print(f"warning: the {ctx.world_size} processes ended with different weights", file=sys.stderr)
            if cfg.plots:
                path = plot_history(state.history, self.run_dir / "curves.png", title=f"{cfg.model} on {cfg.dataset}",
                                    metrics=[m for m in self.task.metrics if m != "loss"])
                result.plots = None if path is None else str(path)
            write_json(self.run_dir / "results.json", result.to_dict())
        barrier(ctx)
        return result

    def _test_and_throughput(self) -> tuple[dict[str, Any] | None, float | None]:
        plan, cfg = self.plan, self.cfg
        test_metrics, example = None, None
        if plan.test is not None:
            test_metrics = evaluate(plan.model, plan.test.data, plan.test.info, amp=cfg.amp, ctx=self.ctx,
                                    batch_size=plan.eval_batch_size(plan.test.info), num_workers=cfg.num_workers,
                                    max_batches=cfg.max_eval_batches, progress=cfg.progress, desc="test",
                                    sliding_window=self._window_test())
            example = self._example(plan.test)
        if not self.ctx.is_main:
            return test_metrics, None
        if example is None:
            example = self._example(plan.val)
        return test_metrics, measure_throughput(plan.model, example, device=self.device, amp=cfg.amp)

    def _example(self, split: Any) -> Any:
        n = min(len(split.data), self.plan.eval_batch_size(split.info))
        x, _ = self.task.to_device(self.task.collate([split.data[i] for i in range(n)]), torch.device("cpu"))
        return x


def _groups(batches: Any, size: int) -> Any:
    """Lists of ``size`` consecutive batches (the last may be shorter)."""
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _batch_len(batch: Any) -> int:
    """Samples in a collated ``(inputs, targets)`` batch (inputs a tensor or a list of images)."""
    return len(batch[0])


def _weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _save_weights(model: nn.Module, path: Path, extra: dict[str, Any]) -> None:
    if getattr(model, "model_name", None):
        save_checkpoint(model, path, extra=extra)
        return
    atomic_write_bytes(path, save_safetensors_bytes(model.state_dict()))
    write_json(path.with_suffix(".json"), {"model": None, "extra": extra})


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    check_regular(path, "run file")  # a FIFO or /dev/zero would hang or fill the memory
    return load_safetensors(str(path))[0]
