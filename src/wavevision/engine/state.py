"""The train state: everything a training run changes as it goes, and how it is saved and resumed.

A :class:`TrainState` holds the model, optimizer, scheduler and loss scaler, the position in
the run (epoch, step in the epoch, global step), the history of epoch records, the best epoch
so far and the running totals of the current epoch. :meth:`TrainState.save` writes it, with
every process's random generators and the run's *fingerprint* (the settings that decide what
the run computes), to one file atomically; :meth:`TrainState.load` reads it back and refuses
a file that is not a regular file, is too large, is not a training state, or belongs to
another run or configuration, naming what differs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..models import load_state_dict_strict
from . import checkpoint as ckpt
from .config import RUNTIME_KEYS, TrainConfig, config_diff
from .sizing import parameter_bytes

__all__ = ["TrainState", "fingerprint"]

# A state holds the weights, their moving average, up to two optimizer tensors per weight and the
# history; more than this many times the weights (plus room for the history) is not a state of this model.
_STATE_SIZE_FACTOR = 5
_STATE_SLACK = 64 << 20


def fingerprint(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that decide what a run computes (the configuration less where and how fast it runs)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_KEYS}


def _empty_best() -> dict[str, Any]:
    return {"value": -math.inf, "epoch": 0, "metrics": {}}


@dataclass
class TrainState:
    """Where a run is and what it holds; callbacks receive it.

    Attributes:
        model: the model being trained (not its DistributedDataParallel wrapper).
        optimizer, scheduler, scaler: the optimizer, its per-step ``LambdaLR`` and the loss scaler.
        epoch: the 0-based epoch being trained (``epochs`` once the run is complete).
        step: optimizer steps done in this epoch.
        global_step: optimizer steps done in the run.
        history: one record per finished epoch (what ``log.jsonl`` holds).
        best: ``{"value", "epoch", "metrics"}`` of the best epoch on the validation split so far.
        totals: running sums of the current epoch (loss, samples, seconds, the task's sums).
        best_weights: the best epoch's weights on the CPU (not saved: ``best.safetensors`` holds them);
            the moving average's when the run keeps one.
        ema: the weights' moving average (a module like ``model``), or None.
        run_dir: the run directory.
        phase, stale: two-phase training's phase (1, 2) and epochs since the last better validation score.
        switch_phase: called with the saved phase before a resumed state's optimizer is loaded (the
            trainer builds that phase's optimizer), or None.
    """

    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    scaler: Any = None
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=_empty_best)
    totals: dict[str, torch.Tensor] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] | None = None
    run_dir: Path | None = None
    ema: nn.Module | None = None
    phase: int = 1
    stale: int = 0
    switch_phase: Any = None

    def zero_totals(self, keys: tuple[str, ...] | list[str], device: torch.device) -> None:
        """Start the running sums of an epoch at zero (float64 on ``device``)."""
        self.totals = {k: torch.zeros((), dtype=torch.float64, device=device) for k in keys}

    def end_epoch(self, record: dict[str, Any], metric: str) -> bool:
        """Append the finished epoch's ``record``, move to the next epoch, and say whether it is the best.

        The best epoch has the highest ``val_<metric>`` (the first epoch always counts as best).
        """
        value = record.get(f"val_{metric}", -math.inf)
        improved = value > self.best["value"] or self.best["epoch"] == 0
        if improved:
            self.best = {"value": value, "epoch": record["epoch"],
                         "metrics": {k: v for k, v in record.items() if k.startswith("val_")}}
            source = self.model if self.ema is None else self.ema
            assert source is not None, "TrainState.end_epoch needs the model"
            weights = source.state_dict()
            self.best_weights = {k: v.detach().cpu().clone() for k, v in weights.items()}
        self.history.append(record)
        self.epoch, self.step = record["epoch"], 0
        return improved

    def state_dict(self, rngs: list[Any], fingerprint: Mapping[str, Any]) -> dict[str, Any]:
        """What :meth:`save` writes: ``rngs`` are every process's generators (``checkpoint.capture_rng``)."""
        assert self.model is not None and self.optimizer is not None, "TrainState.state_dict needs the model and optimizer"
        out = {
            "fingerprint": dict(fingerprint),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rngs,
            "epoch": self.epoch, "step": self.step, "global_step": self.global_step,
            "history": self.history, "best": self.best,
            "totals": {k: v.detach().cpu() for k, v in self.totals.items()},
            "phase": self.phase, "stale": self.stale,
        }
        if self.ema is not None:
            out["ema"] = {k: v.detach().cpu() for k, v in self.ema.state_dict().items()}
        return out

    def save(self, run_dir: Path, *, rngs: list[Any], fingerprint: Mapping[str, Any]) -> Path:
        """Write the state to ``run_dir/last.state.pt`` atomically (a temporary file, then a rename)."""
        return ckpt.save_state(run_dir, self.state_dict(rngs, fingerprint))

    def load(self, run_dir: Path, *, fingerprint: Mapping[str, Any], rank: int = 0, world_size: int = 1) -> bool:
        """Restore what :meth:`save` wrote in ``run_dir``; False when the run saved no state yet.

        Raises:
            ValueError: the file is not a regular file, too large, not a training state, or
                from another run or configuration (the message names the settings that differ).
        """
        assert self.model is not None and self.optimizer is not None, "TrainState.load needs the model and optimizer"
        path = Path(run_dir) / ckpt.STATE_FILE
        saved = ckpt.load_state(run_dir, max_bytes=_STATE_SIZE_FACTOR * parameter_bytes(self.model) + _STATE_SLACK)
        if saved is None:
            return False
        _check_fingerprint(path, saved.get("fingerprint"), fingerprint)
        _check_position(path, saved, fingerprint.get("epochs"))
        ckpt.check_rng(saved.get("rng"), path)
        load_state_dict_strict(self.model, saved["model"], source=str(path))
        if self.ema is not None:
            if not isinstance(saved.get("ema"), Mapping):
                raise ValueError(f"{path} holds no moving average of the weights although the run keeps one; the file "
                                 "is damaged: put back this run's own state file or start a new run with --overwrite")
            load_state_dict_strict(self.ema, saved["ema"], source=f"{path} (ema)")
        phase, stale = saved.get("phase", 1), saved.get("stale", 0)
        if phase not in (1, 2) or isinstance(stale, bool) or not isinstance(stale, int) or stale < 0:
            raise ValueError(f"{path}: phase {phase!r} / stale {stale!r} are no two-phase position; the file is damaged: "
                             "put back this run's own state file or start a new run with --overwrite")
        if phase != self.phase and self.switch_phase is not None:
            self.switch_phase(phase)
        self.phase, self.stale = phase, stale
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        if len(saved["rng"]) == world_size:  # another number of processes draws afresh
            ckpt.restore_rng(saved["rng"][rank])
        self.epoch, self.step, self.global_step = saved["epoch"], saved["step"], saved["global_step"]
        self.history, self.best = list(saved["history"]), dict(saved["best"])
        device = next(iter(self.totals.values())).device if self.totals else torch.device("cpu")
        self.totals = {k: v.to(device) for k, v in saved["totals"].items()}
        return True



def _check_position(path: Path, saved: Mapping[str, Any], epochs: int | None) -> None:
    """Refuse a position no run reaches: a negative or non-integer epoch, step or global step, an
    epoch past the run's last, or a history of another length than the epochs done."""
    fix = "put back this run's own state file or start a new run with --overwrite"
    for key in ("epoch", "step", "global_step"):
        value = saved.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{path}: '{key}' must be an integer >= 0, got {value!r}; the file is damaged: {fix}")
    if isinstance(epochs, int) and saved["epoch"] > epochs:
        raise ValueError(f"{path}: 'epoch' is {saved['epoch']} but the run has {epochs} epochs; the file is damaged: {fix}")
    history = saved.get("history")
    if not isinstance(history, list) or len(history) != saved["epoch"]:
        got = f"{len(history)} record(s)" if isinstance(history, list) else type(history).__name__
        raise ValueError(f"{path}: 'history' holds {got} for {saved['epoch']} finished epoch(s); the file is damaged: {fix}")


def _check_fingerprint(path: Path, theirs: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> None:
    """Refuse a state saved by another run or configuration, naming what differs (old states carry none)."""
    if theirs is None:
        return
    diff = config_diff(theirs, expected, ignore=())
    if diff:
        shown = "; ".join(f"{k}: {a!r} in the state, {b!r} now" for k, (a, b) in list(diff.items())[:5])
        raise ValueError(f"{path} belongs to another run or configuration ({shown}); it cannot be resumed "
                         "here: put back this run's own state file or start a new run with --overwrite")
