"""Benchmark reports: a text table, JSON and CSV records, and PNG scatter plots."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..utils import SI, format_table, write_csv, write_json
from ..utils.validate import PathLike
from .runner import MACS_UNIT, BenchResult

__all__ = ["format_results", "plot_results", "save_figure", "write_results"]


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


def _memory_view(row: BenchResult) -> dict[str, float | None]:
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
        row: dict[str, Any] = {k: getattr(r, k, None) for k in _COLUMNS if hasattr(r, k)}
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


def _flat(result: BenchResult) -> dict[str, Any]:
    d = result.to_dict()
    env = d.pop("environment")
    d["input_shape"] = "x".join(map(str, result.input_shape))
    d.update({f"env_{k}": v for k, v in env.items()})
    return d


def plot_results(results: Sequence[BenchResult], path: PathLike) -> Path:
    """PNG scatters: latency and training-step memory against parameters, and accuracy
    against latency and memory when at least two models have an accuracy (:func:`bench_figure`)."""
    return save_figure(bench_figure(results), path)


def _accuracy_limits(values: Sequence[float]) -> tuple:
    """A y range around the accuracies that never leaves 0-100 %."""
    lo, hi = min(values), max(values)
    pad = max(1.0, 0.08 * (hi - lo))
    return max(0.0, lo - pad), min(100.0, hi + pad)


def bench_figure(results: Sequence[BenchResult]) -> Any:
    """The matplotlib figure of :func:`plot_results`. A panel needs two models measured (one
    point compares nothing; a single model gets its one-point panels), the footnote names what
    was left out, and accuracy axes stay within 0-100 %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r.params is not None]
    cpu = bool(results) and results[0].device == "cpu"
    mem_label = "training step: peak RSS - baseline (MiB)" if cpu else "training step: allocator peak (MiB)"
    lat_label = "inference latency, batch 1 (ms)"
    candidates = [("params", "latency_ms", "parameters", lat_label), ("params", "train_mb", "parameters", mem_label),
                  ("latency_ms", "accuracy", lat_label, "accuracy (%)"), ("train_mb", "accuracy", mem_label, "accuracy (%)")]

    def value(r: BenchResult, key: str) -> float | None:
        if key in ("train_mb", "infer_mb"):
            return _memory_view(r)[key]
        return getattr(r, key)

    measured = []
    for xk, yk, xl, yl in candidates:
        pts = [(value(r, xk), value(r, yk), r.model) for r in ok]
        measured.append(((xk, yk, xl, yl), [(x, y, n) for x, y, n in pts if x is not None and y is not None]))
    enough = 2 if any(len(pts) >= 2 for _, pts in measured) else 1
    panels = [(spec, pts) for spec, pts in measured if len(pts) >= enough]
    short = {"params": "parameters", "latency_ms": "latency", "train_mb": "training memory", "accuracy": "accuracy"}
    left_out = [f"{short[spec[1]]} vs {short[spec[0]]}" for spec, pts in measured if len(pts) < enough]
    cols = 2 if len(panels) > 1 else 1
    rows_n = max(1, (len(panels) + 1) // 2)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6.5 * cols, 4.6 * rows_n + 0.3), squeeze=False)
    for ax, ((xk, yk, xl, yl), points) in zip(axes.flat, panels):
        for x, y, name in points:
            ax.scatter([x], [y], s=36)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if xk == "params" and min(p[0] for p in points) > 0:
            ax.set_xscale("log")
        if yk == "accuracy":
            ax.set_ylim(*_accuracy_limits([p[1] for p in points]))
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no measurements", ha="center", va="center", transform=axes.flat[0].transAxes)
    if results:
        r0 = results[0]
        fig.suptitle(f"wavevision bench: {r0.device}, {r0.dtype}, batch {r0.batch_size} "
                     f"(torch {r0.environment.get('torch', '?')}, {r0.environment.get('threads', '?')} threads)", fontsize=10)
    acc = [r for r in ok if r.accuracy is not None]
    foot = "memory: " + _memory_label(results)
    if len(acc) == 1:
        foot += f"; only {acc[0].model} has an accuracy ({acc[0].accuracy:g} %; --accuracy NAME=VALUE adds others)"
    elif any(r.accuracy_source.startswith("reference") for r in acc):
        foot += "; reference accuracies come from different datasets: compare within a dataset only"
    if left_out:
        foot += f"; left out (fewer than {enough} models measured): {', '.join(left_out)}"
    fig.text(0.01, 0.005, foot, fontsize=7, style="italic", wrap=True)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


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
                  plot: bool = True) -> dict[str, Path]:
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
