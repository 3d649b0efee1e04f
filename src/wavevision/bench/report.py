"""Benchmark reports: a text table, JSON and CSV records, and PNG scatter plots."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..utils import SI, format_table, write_csv, write_json
from .runner import MACS_UNIT, BenchResult

__all__ = ["format_results", "plot_results", "save_figure", "write_results"]

PathLike = Union[str, "os.PathLike[str]"]

_COLUMNS = {
    "model": "model",
    "status": "status",
    "params": "params",
    "macs": "MACs/img",
    "latency_ms": "latency ms (b=1)",
    "latency_ms_iqr": "IQR",
    "throughput": "img/s (b=N)",
    "train_step_ms": "train step ms",
    "train_step_ms_iqr": "IQR ",
    "infer_mb": "infer MiB",
    "train_mb": "train MiB",
}


def _memory_view(row: BenchResult) -> Dict[str, Optional[float]]:
    """On CPU the case's own memory (peak RSS minus the baseline); on accelerators the allocator peak."""
    if row.device == "cpu":
        return {"infer_mb": row.infer_case_mb, "train_mb": row.train_case_mb}
    return {"infer_mb": row.infer_peak_mb, "train_mb": row.train_peak_mb}


def _memory_label(results: Sequence[BenchResult]) -> str:
    if results and results[0].device == "cpu":
        return "peak RSS of a fresh process minus its RSS before the case (MiB)"
    return "allocator peak during the case (MiB)"


def _readable(value: Any) -> Any:
    """Floats of 1000 and more as whole numbers (thousands separated), smaller ones as they are."""
    if isinstance(value, float) and not isinstance(value, SI) and value == value and abs(value) >= 1000:
        return int(round(value))
    return value


def format_results(results: Sequence[BenchResult]) -> str:
    """A readable table with a header naming the setup and units, and notes for failed rows."""
    if not results:
        return "(no results)"
    first = results[0]
    env = first.environment
    rows = []
    for r in results:
        row: Dict[str, Any] = {k: getattr(r, k, None) for k in _COLUMNS if hasattr(r, k)}
        row["macs"] = None if r.macs is None else SI(r.macs)
        row.update(_memory_view(r))
        rows.append({k: _readable(v) for k, v in row.items()})
    shapes = sorted({"x".join(map(str, r.input_shape)) for r in results if r.input_shape})
    head = [
        f"device {first.device} ({env.get('device_name', '?')}), dtype {first.dtype}, batch N={first.batch_size}, "
        f"input {', '.join(shapes) or '?'}, torch {env.get('torch', '?')}, {env.get('threads', '?')} thread(s)",
        f"timings: median and interquartile range of {first.repeats} runs after {first.warmup} warm-up runs; "
        f"MACs/img = {MACS_UNIT} per image (K, M, G: thousands, millions, billions)",
        f"memory: {_memory_label(results)}" if any(r.memory_method for r in results) else "memory: not measured",
        "",
    ]
    table = format_table(rows, list(_COLUMNS), _COLUMNS)
    notes = [f"  {r.model}: {r.status}: {r.note}" for r in results if r.note]
    return "\n".join(head) + table + ("\n\nnotes:\n" + "\n".join(notes) if notes else "")


def _flat(result: BenchResult) -> Dict[str, Any]:
    d = result.to_dict()
    env = d.pop("environment")
    d["input_shape"] = "x".join(map(str, result.input_shape))
    d.update({f"env_{k}": v for k, v in env.items()})
    return d


def plot_results(results: Sequence[BenchResult], path: PathLike) -> Path:
    """PNG scatters: latency and training-step memory against parameters, and accuracy
    against latency and memory for the models that have an accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r.params is not None]
    acc = [r for r in ok if r.accuracy is not None]
    cpu = bool(results) and results[0].device == "cpu"
    mem_label = "training step: peak RSS - baseline (MiB)" if cpu else "training step: allocator peak (MiB)"
    panels: List[tuple] = [
        ("params", "latency_ms", "parameters", "inference latency, batch 1 (ms)"),
        ("params", "train_mb", "parameters", mem_label),
    ]
    if acc:
        panels += [("latency_ms", "accuracy", "inference latency, batch 1 (ms)", "accuracy (%)"),
                   ("train_mb", "accuracy", mem_label, "accuracy (%)")]
    cols = 2
    rows_n = (len(panels) + 1) // 2
    fig, axes = plt.subplots(rows_n, cols, figsize=(6.5 * cols, 4.6 * rows_n), squeeze=False)

    def value(r: BenchResult, key: str) -> Optional[float]:
        if key in ("train_mb", "infer_mb"):
            return _memory_view(r)[key]
        return getattr(r, key)

    for ax, (xk, yk, xl, yl) in zip(axes.flat, panels):
        pts = [(value(r, xk), value(r, yk), r.model) for r in (acc if "accuracy" in (xk, yk) else ok)]
        pts = [(x, y, n) for x, y, n in pts if x is not None and y is not None]
        for x, y, name in pts:
            ax.scatter([x], [y], s=36)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if xk == "params" and pts and min(p[0] for p in pts) > 0:
            ax.set_xscale("log")
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.grid(alpha=0.3)
        if not pts:
            ax.text(0.5, 0.5, "no measurements", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if results:
        r0 = results[0]
        fig.suptitle(f"wavevision bench: {r0.device}, {r0.dtype}, batch {r0.batch_size} "
                     f"(torch {r0.environment.get('torch', '?')}, {r0.environment.get('threads', '?')} threads)", fontsize=10)
    foot = "memory: " + _memory_label(results)
    if acc and any(r.accuracy_source.startswith("reference") for r in acc):
        foot += "; reference accuracies come from different datasets: compare within a dataset only"
    fig.text(0.01, 0.005, foot, fontsize=7, style="italic")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path)


def save_figure(fig: Any, path: PathLike, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically (temp file, then rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path


def write_results(results: Sequence[BenchResult], out_dir: PathLike, *, prefix: str = "bench",
                  plot: bool = True) -> Dict[str, Path]:
    """Write ``PREFIX.json`` (records with the environment), ``PREFIX.csv`` and ``PREFIX.png``."""
    out = Path(out_dir)
    paths = {
        "json": write_json(out / f"{prefix}.json", {"macs_unit": MACS_UNIT, "memory": _memory_label(results),
                                                   "results": [r.to_dict() for r in results]}),
        "csv": write_csv(out / f"{prefix}.csv", [_flat(r) for r in results]),
    }
    if plot:
        paths["png"] = plot_results(results, out / f"{prefix}.png")
    return paths
