"""The run's log: ``log.jsonl`` always, TensorBoard event files when ``tensorboard`` is installed.

``log.jsonl`` holds one JSON object per line: a ``"kind": "step"`` record every ``log_every``
optimizer steps (``epoch``, global ``step``, ``lr``, the mean training ``loss`` and the images
per second since the previous record, of the main process; after a resume, the first covers
the steps since the resume) and a ``"kind": "epoch"`` record at
each epoch's end (the epoch's training numbers and its ``val_*`` metrics, exactly the record
``results.json`` keeps in ``history``). Each line is written whole and flushed. A resumed run
first rewrites the file to what its saved state had reached (step records up to the saved
global step, the saved epoch records) and then appends, so no step is logged twice.
"""
from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..utils.io import append_jsonl, atomic_write_text

__all__ = ["RunLog", "format_seconds", "have_tensorboard"]

LOG_NAME = "log.jsonl"
TENSORBOARD_DIR = "tensorboard"
_MAX_LOG_BYTES = 256 << 20  # a resumed run reads the old log; more than this is not a log of ours


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s`` (``?`` when not finite)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class RunLog:
    """Writes a run's step and epoch records (main process only; other processes pass ``enabled=False``)."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / LOG_NAME
        self.enabled = enabled
        self._tensorboard = enabled and tensorboard
        self._writer: Any = None
        self._purge_step = 0

    def start(self, global_step: int) -> None:
        """Training starts (or resumes) at ``global_step``: TensorBoard events a replaced or resumed
        run logged after it are purged (``purge_step``) when the writer opens, at the first record,
        so a step never shows twice and a run that fails before its first record leaves no folder."""
        self._purge_step = global_step

    def _tb(self) -> Any:
        if self._tensorboard and self._writer is None:
            self._writer = _summary_writer(self.path.parent / TENSORBOARD_DIR, self._purge_step)
            self._tensorboard = self._writer is not None
        return self._writer

    def restart(self, global_step: int, history: Sequence[dict[str, Any]]) -> None:
        """Make the file what the saved state reached: the old step records up to ``global_step``
        and the saved epoch records, in order (what was logged after the save is done again)."""
        if not self.enabled:
            return
        steps = [r for r in _read_records(self.path) if r.get("kind") == "step" and r.get("step", math.inf) <= global_step]
        epochs = [dict(r) for r in history]
        records = sorted(steps + epochs, key=lambda r: (r.get("step", 0), r.get("kind") == "epoch"))
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))

    def step(self, *, epoch: int, step: int, lr: float, loss: float, images_per_second: float) -> None:
        """One step record (``step`` the global optimizer step)."""
        if not self.enabled:
            return
        record = {"kind": "step", "epoch": epoch, "step": step, "lr": lr, "loss": loss,
                  "images_per_second": images_per_second}
        append_jsonl(self.path, record)
        writer = self._tb()
        if writer is not None:
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/lr", lr, step)
            writer.add_scalar("train/images_per_second", images_per_second, step)

    def epoch(self, record: dict[str, Any]) -> None:
        """The epoch record (``"kind": "epoch"``, ``step`` the global step at the epoch's end)."""
        if not self.enabled:
            return
        append_jsonl(self.path, record)
        writer = self._tb()
        if writer is not None:
            for key, value in record.items():
                if key not in ("epoch", "step", "kind") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    group = "val" if key.startswith("val_") else "epoch"
                    writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, record["step"])
            writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def have_tensorboard() -> bool:
    """Whether TensorBoard event files can be written (the ``tensorboard`` package is installed)."""
    return importlib.util.find_spec("tensorboard") is not None


def _summary_writer(folder: Path, purge_step: int) -> Any:
    """A SummaryWriter on ``folder``, or None without tensorboard."""
    if not have_tensorboard():
        return None
    from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package

    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)


def _read_records(path: Path) -> list[dict[str, Any]]:
    """The complete JSON-object lines of an earlier log (a torn last line or foreign content is skipped)."""
    if not path.is_file() or path.stat().st_size > _MAX_LOG_BYTES:
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
