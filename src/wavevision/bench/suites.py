"""Benchmark suites: wavevision models side by side with timm baselines, in one run.

``imagenet``: the WaveMix ImageNet configurations (WaveMix-192/16, level 1 and level 3),
Wave-ViT-S and WTConvNeXt-T against timm's ResNet-18/50, DeiT-Ti/S, ConvMixer-1024/20,
PoolFormer-S12, MLP-Mixer-B/16, Swin-T and ConvNeXt-T (WTConvNeXt-T's baseline), all at 224x224
with 1000 classes. ``cifar``: the CIFAR-10
WaveMix-Lite models against small timm CNNs (10 classes) at 32x32.

Every model is measured by :func:`wavevision.bench.benchmark` (fresh process per memory
case, median and IQR of the timings) on its own, so a model timm lacks is a ``skipped`` row
and an out-of-memory case an ``oom`` row while the rest of the suite goes on. The run records
its conditions (threads, ``OMP_*`` settings, load average before and after, CPU, versions),
because on a shared CPU they move timings more than the models do.

Reported top-1 for the accuracy plots: wavevision models carry it in
``model.pretrained_cfg["metrics"]["top1"]`` (else the registry entry's ``reference``); for
timm baselines :data:`TIMM_TOP1` holds timm's own validation figure for the pretrained tag
named beside it.
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..models import create_model, get_entry
from ..utils import SI, atomic_write_text, format_table, parse_dtype, resolve_device, write_csv, write_json
from ..utils.validate import PathLike, check_choice, check_float, check_int
from . import runner
from .memory import is_oom_error
from .report import _flat, _memory_label, _memory_view, _readable, format_results, plot_results
from .runner import MACS_UNIT, BenchResult, ModelSpec, benchmark

__all__ = ["SUITES", "TIMM_TOP1", "Suite", "SuiteModel", "SuiteRun", "format_suite", "get_suite", "measuring_conditions",
           "reported_top1", "run_suite", "similar_accuracy_comparison", "suite_markdown", "write_suite"]

# timm's ImageNet-1k validation top-1 (%) at 224x224 for the pretrained tag named, from
# results/results-imagenet.csv of huggingface/pytorch-image-models (commit aa4b585, 2026).
# ResNets: the torchvision recipe (tv_in1k), the figures the WaveMix papers compare with,
# rather than timm's default tags trained 3-6x longer (ResNet-50 a1_in1k: 80.38).
# ConvNeXt-T: the same file at commit 0173a13, which lists convnext_tiny.fb_in1k at timm's test
# size for it, 288x288 (crop 1.0): 82.698; the ConvNeXt paper's 224x224 figure, the one the
# WTConv paper compares with, is 82.1.
_TIMM_CSV = "timm results-imagenet.csv (huggingface/pytorch-image-models@aa4b585)"
_TIMM_CSV_0173 = "timm results-imagenet.csv (huggingface/pytorch-image-models@0173a13)"
TIMM_TOP1: dict[str, tuple[str, float]] = {
    "resnet18": ("tv_in1k", 69.752),
    "resnet50": ("tv_in1k", 76.156),
    "deit_tiny_patch16_224": ("fb_in1k", 72.190),
    "deit_small_patch16_224": ("fb_in1k", 79.856),
    "convmixer_1024_20_ks9_p14": ("in1k", 76.944),
    "poolformer_s12": ("sail_in1k", 77.238),
    "mixer_b16_224": ("goog_in21k_ft_in1k", 76.616),  # pretrained on ImageNet-21k first
    "swin_tiny_patch4_window7_224": ("ms_in1k", 81.388),
    "convnext_tiny": ("fb_in1k", 82.698),  # evaluated at 288x288 (see above)
}
# Where a TIMM_TOP1 figure comes from when not _TIMM_CSV at 224x224: (file, evaluation size, note).
_TIMM_TOP1_EVAL: dict[str, tuple[str, int, str]] = {
    "convnext_tiny": (_TIMM_CSV_0173, 288, "timm's test size; the ConvNeXt paper gives 82.1 at 224"),
}


@dataclass(frozen=True)
class SuiteModel:
    """One model of a suite: registry or timm ``name``, its ``source``, a display ``label``
    and builder ``kwargs``."""

    name: str
    source: str
    label: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.name, self.source, dict(self.kwargs))


@dataclass(frozen=True)
class Suite:
    """A named comparison: models, the dataset whose top-1 the plots use, and the defaults
    (input size, batch N, warm-up and timed runs) practical on a small CPU."""

    name: str
    description: str
    dataset: str
    input_size: int
    models: tuple[SuiteModel, ...]
    batch_size: int
    warmup: int
    repeats: int


def _timm(name: str, label: str, **kwargs: Any) -> SuiteModel:
    return SuiteModel(name, "timm", label, kwargs)


def _ours(name: str, label: str) -> SuiteModel:
    return SuiteModel(name, "wavevision", label)


SUITES: dict[str, Suite] = {
    "imagenet": Suite(
        "imagenet", "WaveMix ImageNet configurations, Wave-ViT-S and WTConvNeXt-T against timm baselines, 224x224, "
        "1000 classes",
        "ImageNet-1k", 224,
        (
            _ours("wavemix_192_16_l1", "WaveMix-192/16 level 1"),
            _ours("wavemix_192_16_l3", "WaveMix-192/16 level 3"),
            _ours("wave_vit_s", "Wave-ViT-S"),
            _ours("wtconvnext_tiny", "WTConvNeXt-T"),
            _timm("resnet18", "ResNet-18"),
            _timm("resnet50", "ResNet-50"),
            _timm("deit_tiny_patch16_224", "DeiT-Ti"),
            _timm("deit_small_patch16_224", "DeiT-S"),
            _timm("convmixer_1024_20_ks9_p14", "ConvMixer-1024/20"),
            _timm("poolformer_s12", "PoolFormer-S12"),
            _timm("mixer_b16_224", "MLP-Mixer-B/16"),
            _timm("swin_tiny_patch4_window7_224", "Swin-T"),
            _timm("convnext_tiny", "ConvNeXt-T"),
        ),
        batch_size=8, warmup=1, repeats=3,
    ),
    "cifar": Suite(
        "cifar", "CIFAR-10 WaveMix-Lite models against small timm CNNs (ImageNet stems, 10 classes), 32x32",
        "CIFAR-10", 32,
        (
            _ours("wavemix_lite_32_7", "WaveMix-Lite-32/7"),
            _ours("wavemix_lite_64_6", "WaveMix-Lite-64/6"),
            _ours("wavemix_lite_144_7", "WaveMix-Lite-144/7"),
            _timm("mobilenetv3_small_100", "MobileNetV3-S", num_classes=10),
            _timm("regnetx_002", "RegNetX-200MF", num_classes=10),
            _timm("resnet10t", "ResNet-10-T", num_classes=10),
            _timm("resnet18", "ResNet-18", num_classes=10),
        ),
        batch_size=32, warmup=2, repeats=5,
    ),
}


def get_suite(name: str) -> Suite:
    """The suite called ``name`` (a ValueError lists the suites otherwise)."""
    return SUITES[check_choice("suite", name, SUITES)]


@dataclass
class SuiteRun:
    """What :func:`run_suite` measured: one :class:`BenchResult` per suite model (same order),
    the run's settings and the measuring conditions."""

    suite: Suite
    models: list[SuiteModel]
    results: list[BenchResult]
    settings: dict[str, Any]
    conditions: dict[str, Any]

    def rows(self) -> list[tuple[SuiteModel, BenchResult]]:
        return list(zip(self.models, self.results))


# ---------------------------------------------------------------------------------------
# Reported accuracy and measuring conditions


def _pretrained_cfg(name: str) -> Mapping[str, Any]:
    """A wavevision model's ``pretrained_cfg`` (registry entry, else a model built on the meta
    device, which allocates nothing); empty where there is none."""
    cfg = getattr(get_entry(name), "pretrained_cfg", None)
    if cfg is None:
        try:
            with torch.device("meta"):
                cfg = getattr(create_model(name), "pretrained_cfg", None)
        except Exception:  # noqa: BLE001 - no config is a missing accuracy, not a failed suite
            return {}
    if cfg is not None and hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    return cfg if isinstance(cfg, Mapping) else {}


def reported_top1(model: SuiteModel, dataset: str) -> tuple[float | None, str]:
    """The top-1 (%) reported for ``model`` on ``dataset`` and where it comes from, or (None, "")."""
    if model.source == "timm":
        if dataset != "ImageNet-1k" or model.name not in TIMM_TOP1 or model.kwargs.get("num_classes", 1000) != 1000:
            return None, ""
        tag, top1 = TIMM_TOP1[model.name]
        source, size, note = _TIMM_TOP1_EVAL.get(model.name, (_TIMM_CSV, 224, ""))
        return top1, f"{source}: {model.name}.{tag} at {size}" + (f" ({note})" if note else "")
    cfg = _pretrained_cfg(model.name)
    metrics = cfg.get("metrics")
    if isinstance(metrics, Mapping) and isinstance(metrics.get("top1"), (int, float)):
        where = metrics.get("dataset") or cfg.get("dataset")
        if where is None or str(where).lower() == dataset.lower():
            return float(metrics["top1"]), f"pretrained_cfg metrics ({cfg.get('metrics_source') or cfg.get('source') or metrics.get('source') or model.name})"
    ref = get_entry(model.name).reference
    if ref.get("metric") in ("top1", "accuracy") and isinstance(ref.get("value"), (int, float)) and ref.get("dataset") == dataset:
        return float(ref["value"]), f"registry reference ({ref.get('source', '')})"
    return None, ""


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def measuring_conditions() -> dict[str, Any]:
    """What moves CPU timings: torch threads, the OpenMP settings, the CPU, its load, versions."""
    timm = runner._import_timm()
    return {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "load_average_before": _load_average(),
        "torch": torch.__version__,
        "timm": "not importable" if isinstance(timm, BaseException) else timm.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------------------------------
# Running a suite


def _select(suite: Suite, only: Sequence[str] | None) -> list[SuiteModel]:
    """The suite's models named in ``only`` (names or labels), in suite order; all without it."""
    if not only:
        return list(suite.models)
    by_key = {key: m for m in suite.models for key in (m.name, m.label)}
    picked = [by_key[check_choice(f"model of suite {suite.name!r}", name, list(by_key))] for name in only]
    return [m for m in suite.models if any(m is p for p in picked)]


def _row_for(model: SuiteModel, settings: Mapping[str, Any], status: str, note: str) -> BenchResult:
    return BenchResult(model=model.spec.label, status=status, note=note, source=model.source,
                       batch_size=settings["batch_size"], device=str(settings["device"]), dtype=str(settings["dtype"]),
                       warmup=settings["warmup"], repeats=settings["repeats"])


def _measure(model: SuiteModel, suite: Suite, settings: Mapping[str, Any], memory_limit_mb: float | None) -> BenchResult:
    """One model's row; a model timm lacks is ``skipped``, any failure a row with a note."""
    if model.source == "timm":
        timm = runner._import_timm()
        if not isinstance(timm, BaseException) and model.name not in timm.list_models():
            return _row_for(model, settings, "skipped", f"timm {timm.__version__} has no model {model.name!r}")
    try:
        top1, source = reported_top1(model, suite.dataset)
        (row,) = benchmark(
            [model.spec], input_size=settings["input_size"], batch_size=settings["batch_size"],
            device=settings["device"], dtype=settings["dtype"], warmup=settings["warmup"], repeats=settings["repeats"],
            memory=settings["memory"], train=settings["train"], memory_limit_mb=memory_limit_mb,
            accuracies=None if top1 is None else {model.spec.label: top1},
        )
    except Exception as e:  # noqa: BLE001 - one model's failure must not stop the suite
        status = "oom" if is_oom_error(e) else "error"
        return _row_for(model, settings, status, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
    if top1 is not None:
        row.accuracy_source = source
    return row


def run_suite(suite: str | Suite, *, only: Sequence[str] | None = None, input_size: int | Sequence[int] | None = None,
              batch_size: int | None = None, warmup: int | None = None, repeats: int | None = None,
              device: str | torch.device | None = "auto", dtype: str | torch.dtype = "float32", memory: bool = True,
              train: bool = True, memory_limit_mb: float | None = None, progress: bool = False) -> SuiteRun:
    """Measure every model of a suite, one after another, in the same conditions.

    Args:
        suite: ``"imagenet"``, ``"cifar"`` or a :class:`Suite`.
        only: measure only these models of the suite (registry/timm names or labels).
        input_size: S, (H, W) or (C, H, W) instead of the suite's size (small sizes for tests).
        batch_size, warmup, repeats: instead of the suite's defaults (latency always uses batch 1).
        device, dtype, memory, train, memory_limit_mb: as for :func:`wavevision.bench.benchmark`.
        progress: a tqdm bar over the models.
    """
    s = suite if isinstance(suite, Suite) else get_suite(suite)
    models = _select(s, only)
    if input_size is not None:
        runner._size_tuple(input_size)  # a bad size stops the run before it measures anything
    if memory_limit_mb is not None:
        check_float("memory_limit_mb", memory_limit_mb, gt=0)
    settings = {
        "input_size": s.input_size if input_size is None else input_size,
        "batch_size": check_int("batch_size", s.batch_size if batch_size is None else batch_size, min=1),
        "warmup": check_int("warmup", s.warmup if warmup is None else warmup, min=0),
        "repeats": check_int("repeats", s.repeats if repeats is None else repeats, min=1),
        "device": str(resolve_device(device)), "dtype": str(parse_dtype(dtype)).removeprefix("torch."),
        "memory": bool(memory), "train": bool(train),
    }
    conditions = measuring_conditions()
    start = time.perf_counter()
    iterator: Any = models
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(models, desc=f"suite {s.name}", unit="model")
    results = []
    for m in iterator:
        if progress:
            iterator.set_postfix_str(m.label)
        results.append(_measure(m, s, settings, memory_limit_mb))
    measured_env = next((r.environment for r in results if r.environment), {})
    for r in results:
        r.environment = r.environment or dict(measured_env)
    conditions.update(load_average_after=_load_average(), seconds=round(time.perf_counter() - start, 1))
    return SuiteRun(s, models, results, settings, conditions)


# ---------------------------------------------------------------------------------------
# Reports


def _num(value: Any, digits: int = 3) -> str:
    """A Markdown cell: ints thousands-separated, floats to ``digits`` significant figures
    (whole numbers from 10**(digits-1) up), "-" for None."""
    if value is None:
        return "-"
    if isinstance(value, SI):
        return str(value)
    if isinstance(value, int) or abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _summary(run: SuiteRun) -> list[dict[str, Any]]:
    """One display row per model: label, the claim's measurements, reported top-1."""
    rows = []
    for m, r in run.rows():
        rows.append({
            "label": m.label, "status": r.status, "params": r.params, "macs": None if r.macs is None else SI(r.macs),
            "latency_ms": r.latency_ms, "throughput": r.throughput, "train_step_ms": r.train_step_ms,
            **_memory_view(r), "top1": r.accuracy,
        })
    return rows


_SUMMARY_HEADERS = {
    "label": "model", "status": "status", "params": "params", "macs": "MACs/img", "latency_ms": "latency ms (b=1)",
    "throughput": "img/s (b=N)", "train_step_ms": "train step ms (b=N)", "infer_mb": "infer MiB (b=N)",
    "train_mb": "train MiB (b=N)", "top1": "top-1 %",
}


def _describe(run: SuiteRun) -> list[str]:
    c, st = run.conditions, run.settings
    load = f"load average (1/5/15 min) {c.get('load_average_before')} before, {c.get('load_average_after')} after"
    return [
        f"suite {run.suite.name}: {run.suite.description}",
        f"conditions: {c.get('cpu')} ({c.get('cpu_count')} CPUs), torch {c.get('torch')} with {c.get('torch_threads')} "
        f"thread(s), OMP_NUM_THREADS={c.get('OMP_NUM_THREADS')}, OMP_WAIT_POLICY={c.get('OMP_WAIT_POLICY')}, "
        f"timm {c.get('timm')}; {load}; {c.get('seconds', '?')} s in all",
        f"settings: input {st['input_size']}, latency at batch 1, throughput, training step and memory at batch "
        f"N={st['batch_size']}, {st['warmup']} warm-up + {st['repeats']} timed runs, {st['device']}, {st['dtype']}",
    ]


def format_suite(run: SuiteRun, *, within: float = 2.0) -> str:
    """The detailed table (:func:`format_results`), a summary with labels and reported top-1,
    where each top-1 comes from, and the comparison at similar accuracy."""
    lines = _describe(run) + ["", format_results(run.results), "", f"summary (memory: {_memory_label(run.results)}):", ""]
    readable = [{k: _readable(v) for k, v in row.items()} for row in _summary(run)]
    lines.append(format_table(readable, list(_SUMMARY_HEADERS), _SUMMARY_HEADERS))
    sources = [f"  {m.label}: {r.accuracy_source}" for m, r in run.rows() if r.accuracy is not None]
    if sources:
        lines += ["", f"reported {run.suite.dataset} top-1:"] + sources
    comparison = similar_accuracy_comparison(run, within=within)
    if comparison:
        lines += ["", f"at similar accuracy (within {within:g} points of top-1; ratios are ours / theirs):"]
        lines += [f"  {line}" for line in comparison]
    return "\n".join(lines)


def suite_markdown(run: SuiteRun) -> str:
    """The summary as a Markdown table (for a README), the conditions above it as comments."""
    out = [f"<!-- {line} -->" for line in _describe(run)]
    out += ["| " + " | ".join(_SUMMARY_HEADERS.values()) + " |", "|" + "---|" * len(_SUMMARY_HEADERS)]
    for row in _summary(run):
        cells = [str(v) if k in ("label", "status") else _num(v, 4 if k == "top1" else 3) for k, v in row.items()]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def similar_accuracy_comparison(run: SuiteRun, *, within: float = 2.0) -> list[str]:
    """For each measured wavevision model with a reported top-1: its ratios (ours / theirs) to the
    baselines within ``within`` points, and the baselines at least as accurate that need less
    training memory and less latency (each one contradicts a "leaner at equal accuracy" claim)."""
    measured = [(m, r, _memory_view(r)["train_mb"]) for m, r in run.rows() if r.accuracy is not None and r.status == "ok"]
    ours = [x for x in measured if x[0].source == "wavevision"]
    theirs = [x for x in measured if x[0].source != "wavevision"]
    if ours and not theirs:
        return [f"no measured baseline has a reported {run.suite.dataset} top-1: compare resources only"]
    lines = []
    for m, r, mem in ours:
        near, better = [], []
        for b, rb, memb in theirs:
            assert r.accuracy is not None and rb.accuracy is not None  # measured: accuracy is not None
            if abs(rb.accuracy - r.accuracy) <= within:
                ratios = (("params", r.params, rb.params), ("MACs", r.macs, rb.macs), ("latency", r.latency_ms, rb.latency_ms),
                          ("train step", r.train_step_ms, rb.train_step_ms), ("train memory", mem, memb))
                near.append(f"{b.label} ({rb.accuracy:.2f} %): " + ", ".join(f"{k} {_ratio(a, c)}" for k, a, c in ratios))
            if (rb.accuracy >= r.accuracy and mem is not None and memb is not None and r.latency_ms is not None
                    and rb.latency_ms is not None and memb < mem and rb.latency_ms < r.latency_ms):
                better.append(b.label)
        lines.append(f"{m.label} ({r.accuracy:.2f} %) vs " + ("; ".join(near) if near else "no baseline this close"))
        lines.append(f"{m.label}: baselines at least as accurate with lower training memory and latency: "
                     + (", ".join(better) or "none"))
    return lines


def _ratio(ours: float | None, theirs: float | None) -> str:
    return "-" if ours is None or not theirs else f"{ours / theirs:.2f}x"


def write_suite(run: SuiteRun, out_dir: PathLike, *, plot: bool = True, within: float = 2.0) -> dict[str, Path]:
    """Write ``suite-NAME.json`` (settings, conditions, records, comparison), ``.csv``, ``.md``
    (the summary table), ``.txt`` (the printed report) and ``.png`` (:func:`plot_results`)."""
    out = Path(out_dir)
    prefix = f"suite-{run.suite.name}"
    records = [{"label": m.label, **r.to_dict()} for m, r in run.rows()]
    paths = {
        "json": write_json(out / f"{prefix}.json", {
            "suite": run.suite.name, "description": run.suite.description, "dataset": run.suite.dataset,
            "settings": run.settings, "conditions": run.conditions, "macs_unit": MACS_UNIT,
            "memory": _memory_label(run.results), "results": records,
            "similar_accuracy": similar_accuracy_comparison(run, within=within),
        }),
        "csv": write_csv(out / f"{prefix}.csv", [{"label": m.label, **_flat(r)} for m, r in run.rows()]),
        "md": atomic_write_text(out / f"{prefix}.md", suite_markdown(run)),
        "txt": atomic_write_text(out / f"{prefix}.txt", format_suite(run, within=within) + "\n"),
    }
    if plot:
        paths["png"] = plot_results([replace(r, model=m.label) for m, r in run.rows()], out / f"{prefix}.png")
    return paths
