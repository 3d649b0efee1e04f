"""The token-mixer ablation: train each ``mixer_*`` model with the same budget, over seeds.

Every mixer model (:mod:`wavevision.models.ablation`) is trained by the training engine
(:func:`wavevision.engine.train`) on the same dataset with the same configuration (the
dataset's recipe, ``epochs``, any ``train_args``), once per seed; the test split is scored
once per run with the weights that did best on validation. Per mixer the report gives test
accuracy (mean, sample standard deviation, min, max over seeds), parameters, MACs, training
time per run and the peak memory of one training step (:mod:`wavevision.bench.memory`).

The wavelet mixers (``dwt`` and ``wtconv``) can also be compared across wavelets:
``wavelets=("haar", "db2", "sym4", "bior2.2")`` trains each of them once per wavelet (rows
``dwt``, ``dwt:db2``, ..., ``wtconv:db2``; the dwt mixers keep their parameters and use the
transform of :mod:`wavevision.ops.transform`, WTConv's fixed filters grow with the wavelet's
length), and a mixer may name its wavelet directly (``"dwt:sym4"``, ``"wtconv:db2"``).

Runs are independent, so ``jobs`` worker processes (one torch thread each) train them side by
side. A finished run is reused when ``ablate`` is called again with the same settings and
output folder (its ``ablation_run.json`` records them); ``overwrite=True`` retrains.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data import build_dataset
from ..engine import train
from ..engine.config import resolve_config
from ..engine.tasks import get_task
from ..models import create_model, get_entry, list_models
from ..models.ablation import WAVELET_MIXERS
from ..ops.transform import check_wavelet
from ..utils import format_table, write_csv, write_json
from ..utils.validate import PathLike
from .complexity import count_macs
from .memory import MemorySpec, cpu_peak_memory
from .report import save_figure

__all__ = ["DEFAULT_MIXERS", "DEFAULT_WAVELETS", "WAVELET_CHOICES", "AblationReport", "AblationRow", "AblationRun", "ablate", "format_ablation",
           "plot_ablation", "write_ablation"]

DEFAULT_MIXERS = ("dwt", "dwt_l2", "pool", "fourier", "random", "dwconv", "mlp", "identity", "wtconv")
DEFAULT_WAVELETS = ("haar",)
#: Suggested wavelets to compare (any discrete PyWavelets name works): 2, 4, 8 and 6 taps.
WAVELET_CHOICES = ("haar", "db2", "sym4", "bior2.2")
_RUN_KEY = "ablation_run.json"


@dataclass
class AblationRun:
    """One (mixer, seed) training run."""

    mixer: str
    model: str
    seed: int
    test_acc: float
    val_acc: float
    best_epoch: int
    epochs: int
    train_seconds: float
    params: int
    run_dir: str
    reused: bool = False


@dataclass
class AblationRow:
    """One mixer over its seeds (accuracies in %, time in s per run, memory in MiB)."""

    mixer: str
    model: str
    params: int
    macs: int
    seeds: int
    test_acc_mean: float
    test_acc_std: float
    test_acc_min: float
    test_acc_max: float
    val_acc_mean: float
    train_seconds_mean: float
    train_memory_mb: float | None = None
    rank: int = 0


@dataclass
class AblationReport:
    """Everything an ablation produced; ``rows`` sorted best first."""

    rows: list[AblationRow]
    runs: list[AblationRun]
    budget: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "rows": [asdict(r) for r in self.rows], "runs": [asdict(r) for r in self.runs]}


def _model_name(mixer: str) -> str:
    """``dwt`` or ``mixer_dwt`` -> ``mixer_dwt``; anything else raises, suggesting close mixers."""
    import difflib

    available = list_models("mixer_*")
    name = mixer if str(mixer).startswith("mixer_") else f"mixer_{mixer}"
    if name in available:
        return name
    short = [n[len("mixer_"):] for n in available]
    close = difflib.get_close_matches(str(mixer), short + available, n=2, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    what = "is a model but not a token-mixer ablation model" if mixer in list_models() else "is not a token mixer"
    raise ValueError(f"{mixer!r} {what}.{hint} Choose from: {', '.join(short)}")


def _variants(mixers: Sequence[str], wavelets: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(row label, model name, its extra model arguments) per trained variant.

    A wavelet mixer (``mixer_dwt*``, ``mixer_wtconv``) gives one variant per wavelet (label
    ``dwt:db2``; Haar keeps the plain label); ``"dwt:sym4"`` names one wavelet; the other mixers
    have no wavelet.
    """
    if isinstance(wavelets, str) or not wavelets:
        raise ValueError(f"wavelets must be a non-empty list of names such as {list(WAVELET_CHOICES)}, got {wavelets!r}")
    for w in wavelets:
        check_wavelet(w)
    out = []
    for spec in mixers:
        mixer, _, wave = str(spec).partition(":")
        name = _model_name(mixer)
        is_wavelet = create_model(name, depth=1).mixer_type in WAVELET_MIXERS
        if wave and not is_wavelet:
            raise ValueError(f"{spec!r}: only the {' and '.join(WAVELET_MIXERS)} mixers take a wavelet (e.g. 'dwt:db2'); "
                             f"write {mixer!r}")
        if wave:
            check_wavelet(wave)
        for w in ([wave] if wave else list(wavelets) if is_wavelet else ["haar"]):
            w = w.strip().lower()
            short = name[len("mixer_"):]
            label = short if w == "haar" else f"{short}:{w}"
            out.append((label, name, {} if w == "haar" else {"wavelet": w}))
    return out


def _refuse_other_runs(requests: list[dict[str, Any]], out: Path) -> None:
    """Fail before training when a run folder holds another configuration's run (or anything else)."""
    clashes = []
    for req in requests:
        run_dir = Path(req["config"]["output"])
        if not run_dir.exists() or not any(run_dir.iterdir()):
            continue
        key_path = run_dir / _RUN_KEY
        saved = json.loads(key_path.read_text()).get("request") if key_path.is_file() else None
        if saved != req["config"]:
            clashes.append(run_dir.name)
    if clashes:
        raise FileExistsError(
            f"{out / 'runs'} already holds runs of other settings ({', '.join(clashes[:4])}"
            f"{', ...' if len(clashes) > 4 else ''}); pass --out DIR for a new ablation, or --overwrite to retrain them"
        )


def _train_run(request: dict[str, Any]) -> dict[str, Any]:
    """Train one (mixer, seed) with the engine; runs in a worker process when jobs > 1."""
    import torch

    torch.set_num_threads(request["threads"])
    run_dir = Path(request["config"]["output"])
    key_path = run_dir / _RUN_KEY
    if not request["overwrite"] and key_path.exists() and (run_dir / "results.json").exists():
        saved = json.loads(key_path.read_text())
        if saved.get("request") == request["config"]:
            return {**saved["run"], "reused": True}
    with contextlib.redirect_stderr(io.StringIO()):  # the runs' epoch lines: ablate shows its own bar
        result = train(dict(request["config"]), overwrite=True)
    run = dict(
        mixer=request["mixer"], model=request["config"]["model"], seed=request["config"]["seed"],
        test_acc=float(result.test["top1"]) if result.test else math.nan, val_acc=float(result.val.get("top1", math.nan)),
        best_epoch=result.best_epoch, epochs=result.epochs, train_seconds=float(result.train_seconds),
        params=int(result.params), run_dir=str(run_dir),
    )
    write_json(key_path, {"request": request["config"], "run": run})
    return {**run, "reused": False}


def _summary(mixer: str, model: str, runs: list[AblationRun], macs: int, memory: float | None) -> AblationRow:
    accs = [r.test_acc for r in runs]
    return AblationRow(
        mixer=mixer, model=model, params=runs[0].params, macs=macs, seeds=len(runs),
        test_acc_mean=statistics.fmean(accs), test_acc_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
        test_acc_min=min(accs), test_acc_max=max(accs), val_acc_mean=statistics.fmean(r.val_acc for r in runs),
        train_seconds_mean=statistics.fmean(r.train_seconds for r in runs), train_memory_mb=memory,
    )


def ablate(
    mixers: Sequence[str] = DEFAULT_MIXERS,
    *,
    wavelets: Sequence[str] = DEFAULT_WAVELETS,
    dataset: str = "digits",
    epochs: int = 10,
    seeds: int | Sequence[int] = 3,
    out_dir: PathLike = "ablation-results",
    jobs: int | None = None,
    train_args: Mapping[str, Any] | None = None,
    model_args: Mapping[str, Any] | None = None,
    memory: bool = True,
    overwrite: bool = False,
    progress: bool = False,
) -> AblationReport:
    """Train every mixer with the same budget over seeds and summarise.

    Args:
        mixers: ``dwt, dwt_l2, pool, fourier, random, dwconv, mlp, identity, wtconv`` (or ``mixer_*``
            names); a wavelet mixer may name its wavelet, ``"dwt:db2"``, ``"wtconv:db2"``.
        wavelets: each wavelet mixer (dwt, wtconv; without its own ``:wavelet``) is trained once per wavelet,
            e.g. ``WAVELET_CHOICES`` (``haar, db2, sym4, bior2.2``); names other than haar need PyWavelets.
        dataset: a classification dataset (registered name or path); default the embedded digits.
        epochs: training epochs of every run.
        seeds: a count n (seeds 0..n-1) or the seeds themselves.
        out_dir: one run directory per (mixer, seed) under ``out_dir/runs``.
        jobs: worker processes, each on one torch thread (default: min(2, CPUs)); 1 trains in
            this process.
        train_args: other :class:`~wavevision.engine.TrainConfig` keys for every run (lr, batch_size, ...).
        model_args: overrides for every mixer model (e.g. depth); ``img_size`` follows the dataset.
        memory: measure the peak memory of one training step per mixer.
        overwrite: retrain runs that a previous call already finished.
    """
    if not mixers:
        raise ValueError("ablate needs at least one mixer")
    variants = _variants(mixers, wavelets)
    labels = [label for label, _, _ in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"mixers repeat: {labels}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds must be a count >= 1 or distinct integers, got {seeds!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    jobs = min(2, os.cpu_count() or 1) if jobs is None else int(jobs)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    train_args = dict(train_args or {})
    for key in ("model", "model_args", "seed", "epochs", "output", "dataset", "overwrite", "resume"):
        if key in train_args:
            raise ValueError(f"train_args may not set {key!r}: ablate sets it for every run")
    _, info = build_dataset(dataset, "val", root=train_args.get("data_root"), download=bool(train_args.get("download")),
                            **dict(train_args.get("dataset_args", {})))
    task = get_task(info.task)
    for name in {name for _, name, _ in variants}:  # classifiers: a dataset of another task is refused by its task
        task.check_model(name, get_entry(name).task, info, list_models(task=info.task))
    margs = dict(model_args or {})
    if info.image_size is not None:
        margs.setdefault("img_size", list(info.image_size))
    out = Path(out_dir)
    requests: list[dict[str, Any]] = []
    for label, name, extra in variants:
        for seed in seed_list:
            folder = label.replace(":", "-")
            config = {**train_args, "dataset": dataset, "model": name, "model_args": {**margs, **extra}, "epochs": epochs,
                      "seed": seed, "output": str(out / "runs" / f"{folder}-seed{seed}"), "threads": 1,
                      "progress": False, "plots": False}
            resolve_config(overrides=config)  # bad keys or values fail now, not in a worker
            requests.append({"mixer": label, "config": config, "threads": 1, "overwrite": overwrite})
    if not overwrite:
        _refuse_other_runs(requests, out)
    budget_cfg = resolve_config(overrides=requests[0]["config"]).to_dict()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(requests), desc="ablate", unit="run", file=sys.stderr)
    done: list[dict[str, Any]] = []
    try:
        if jobs == 1:
            for req in requests:
                done.append(_train_run(req))
                if bar is not None:
                    bar.update(1)
        else:
            import multiprocessing

            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(_train_run, req) for req in requests]
                for fut in as_completed(futures):
                    done.append(fut.result())
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    runs = sorted((AblationRun(**d) for d in done), key=lambda r: (labels.index(r.mixer), r.seed))

    shape = (info.in_chans, *(info.image_size or (16, 16)))
    rows = []
    for mixer, name, extra in variants:
        kwargs = {**margs, **extra, "in_chans": info.in_chans, "num_classes": info.num_classes}
        model = create_model(name, **kwargs)
        mem = _train_memory(name, kwargs, shape, budget_cfg["batch_size"]) if memory else None
        rows.append(_summary(mixer, name, [r for r in runs if r.mixer == mixer], count_macs(model, (1, *shape)), mem))
    rows.sort(key=lambda r: -r.test_acc_mean)
    for i, row in enumerate(rows, 1):
        row.rank = i
    params = [r.params for r in rows]
    budget = {
        "dataset": dataset, "epochs": epochs, "seeds": seed_list, "batch_size": budget_cfg["batch_size"],
        "optimizer": budget_cfg["optimizer"], "lr": budget_cfg["lr"], "weight_decay": budget_cfg["weight_decay"],
        "scheduler": budget_cfg["scheduler"], "warmup_epochs": budget_cfg["warmup_epochs"],
        "label_smoothing": budget_cfg["label_smoothing"], "augment": budget_cfg["augment"],
        "model_args": margs, "train_args": train_args, "jobs": jobs, "threads_per_run": 1,
        "params_min": min(params), "params_max": max(params), "params_spread_pct": 100.0 * (max(params) / min(params) - 1),
        "input_shape": list(shape), "metric": "test top-1 with the best-on-validation weights",
    }
    return AblationReport(rows, runs, budget)


def _train_memory(name: str, kwargs: dict[str, Any], shape: Sequence[int], batch_size: int) -> float | None:
    """Peak memory of one training step at the ablation's batch size (MiB over the baseline on CPU)."""
    res = cpu_peak_memory(MemorySpec(name, "wavevision", kwargs, tuple(shape), batch_size, "float32", "train", 1))
    return res.case_mb if res.status == "ok" else None


_COLUMNS = {
    "rank": "rank", "mixer": "mixer", "test_acc_mean": "test top-1 %", "test_acc_std": "std", "test_acc_min": "min",
    "test_acc_max": "max", "params": "params", "macs": "MAC/img", "train_seconds_mean": "train s/run",
    "train_memory_mb": "train-step MiB",
}


def format_ablation(report: AblationReport) -> str:
    """The ranking table with the budget stated above it."""
    b = report.budget
    head = (
        f"token-mixer ablation on {b['dataset']} {'x'.join(map(str, b['input_shape']))}: {b['epochs']} epochs, batch "
        f"{b['batch_size']}, {b['optimizer']} lr {b['lr']:g} ({b['scheduler']}, warm-up {b['warmup_epochs']:g} epoch), "
        f"seeds {', '.join(map(str, b['seeds']))}\n"
        f"parameters {b['params_min']:,} to {b['params_max']:,} (spread {b['params_spread_pct']:.1f} %); "
        f"accuracy: {b['metric']}, mean and sample std over seeds; MAC = multiply-accumulates per image; "
        f"train-step MiB: peak RSS over baseline of one step at batch {b['batch_size']} (fresh process)\n"
        + (f"other settings: {b['train_args']}\n" if b["train_args"] else "")
        + (f"model overrides: {b['model_args']}\n" if set(b["model_args"]) - {"img_size"} else "")
    )
    return head + format_table([asdict(r) for r in report.rows], list(_COLUMNS), _COLUMNS)


def plot_ablation(report: AblationReport, path: PathLike) -> Path:
    """Accuracy per mixer (mean, std bars, each seed a dot), training time and memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.rows
    xs = list(range(len(rows)))
    labels = [f"{r.mixer}\n{r.params / 1e3:.1f}k" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(max(10.0, min(18.0, 2.1 * len(rows))), 4.2))
    ax = axes[0]
    ax.bar(xs, [r.test_acc_mean for r in rows], yerr=[r.test_acc_std for r in rows], capsize=3, color="tab:blue", alpha=0.7)
    for i, r in enumerate(rows):
        accs = [run.test_acc for run in report.runs if run.mixer == r.mixer]
        ax.scatter([i] * len(accs), accs, color="black", s=10, zorder=3)
    lo = min(run.test_acc for run in report.runs)
    ax.set_ylim(max(0.0, lo - 2.0), 100.0)
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("accuracy (mean, std; dots: seeds)", fontsize=9)
    for ax, key, title in ((axes[1], "train_seconds_mean", "training time per run (s)"),
                           (axes[2], "train_memory_mb", "training-step memory (MiB over baseline)")):
        values = [getattr(r, key) if getattr(r, key) is not None else 0.0 for r in rows]
        ax.bar(xs, values, color="tab:orange" if key.startswith("train_s") else "tab:green", alpha=0.7)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    b = report.budget
    fig.suptitle(f"token mixers on {b['dataset']}: {b['epochs']} epochs, {len(b['seeds'])} seed(s), "
                 f"params within {b['params_spread_pct']:.1f} %", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def write_ablation(report: AblationReport, out_dir: PathLike, *, plot: bool = True) -> dict[str, Path]:
    """``ablation.json`` (budget, rows, runs), ``ablation.csv`` (rows), ``ablation_runs.csv``, ``ablation.png``."""
    out = Path(out_dir)
    paths = {
        "json": write_json(out / "ablation.json", report.to_dict()),
        "csv": write_csv(out / "ablation.csv", [asdict(r) for r in report.rows]),
        "runs_csv": write_csv(out / "ablation_runs.csv", [asdict(r) for r in report.runs]),
    }
    if plot:
        paths["png"] = plot_ablation(report, out / "ablation.png")
    return paths
