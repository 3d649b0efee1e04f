"""``benchmark``: parameters, MACs, latency, throughput, training-step time and peak memory.

For each model: build it (seeded), count parameters and multiply-accumulates
(:func:`~wavevision.bench.count_macs`: ``FlopCounterMode`` FLOPs / 2, per image), then time

* inference latency at batch 1 (eval mode, ``torch.inference_mode``),
* inference throughput at batch N (images per second),
* one training step at batch N (forward, a task loss, backward, AdamW step),

each after ``warmup`` untimed runs, over ``repeats`` timed runs, reporting the median and the
interquartile range; on accelerators the device is synchronised before and after every
timed run. Peak memory of inference and of a training step at batch N comes from
:mod:`wavevision.bench.memory` (allocator peak on accelerators, peak RSS of a fresh process
on CPU). A case that runs out of memory is recorded as ``"oom"`` and the run goes on.
"""
from __future__ import annotations

import importlib
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

from .._launch import warn_spin_waiting
from ..engine.sizing import check_fits_memory, meta_model
from ..engine.tasks import Classification, Task, get_task
from ..models import create_model, get_entry, list_models
from ..utils import parse_dtype, resolve_device
from ..utils.validate import check_float
from .complexity import count_macs, count_parameters
from .memory import MemoryResult, MemorySpec, accelerator_peak_memory, cpu_peak_memory, is_oom_error

__all__ = ["BenchResult", "ModelSpec", "benchmark", "build_case", "default_input_shape", "resolve_model"]

SizeLike = int | Sequence[int] | None
MACS_UNIT = "multiply-accumulates per image (FlopCounterMode FLOPs / 2: convolutions and matrix products)"



@dataclass(frozen=True)
class ModelSpec:
    """A model to benchmark: its ``name``, ``source`` (``wavevision`` or ``timm``), builder kwargs."""

    name: str
    source: str = "wavevision"
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name if self.source == "wavevision" else f"{self.source}:{self.name}"


@dataclass
class BenchResult:
    """One model's row. Times in milliseconds, throughput in images/s, memory in MiB.

    ``status`` is ``ok``, ``oom`` (some case ran out of memory: its fields are None and
    ``note`` says which), ``error`` (the model could not run, e.g. an input size it cannot
    take: ``note`` has the message) or ``skipped`` (e.g. timm is not installed).
    ``*_iqr`` is the interquartile range of the timed runs. ``*_peak_mb`` is the peak during
    the case and ``*_baseline_mb`` the memory before it (see ``memory_method``).
    """

    model: str
    status: str = "ok"
    note: str = ""
    source: str = "wavevision"
    task: str = Classification.name
    input_shape: tuple[int, ...] = ()
    batch_size: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    params: int | None = None
    macs: int | None = None
    macs_unit: str = MACS_UNIT
    latency_ms: float | None = None
    latency_ms_iqr: float | None = None
    throughput: float | None = None
    throughput_iqr: float | None = None
    train_step_ms: float | None = None
    train_step_ms_iqr: float | None = None
    infer_peak_mb: float | None = None
    infer_baseline_mb: float | None = None
    train_peak_mb: float | None = None
    train_baseline_mb: float | None = None
    memory_method: str = ""
    accuracy: float | None = None
    accuracy_source: str = ""
    warmup: int = 0
    repeats: int = 0
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def infer_case_mb(self) -> float | None:
        return None if self.infer_peak_mb is None or self.infer_baseline_mb is None else self.infer_peak_mb - self.infer_baseline_mb

    @property
    def train_case_mb(self) -> float | None:
        return None if self.train_peak_mb is None or self.train_baseline_mb is None else self.train_peak_mb - self.train_baseline_mb

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-ready record (environment included, derived case memory added)."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["infer_case_mb"] = self.infer_case_mb
        d["train_case_mb"] = self.train_case_mb
        return d


# ---------------------------------------------------------------------------------------
# Resolving names


def _import_timm():
    try:
        return importlib.import_module("timm")
    except Exception as e:  # noqa: BLE001 - a missing or broken install both mean "no timm"
        return e


def resolve_model(name: str | ModelSpec, kwargs: Mapping[str, Any] | None = None) -> ModelSpec:
    """A registered name, ``timm:NAME`` (or ``timm/NAME``), or a timm name when timm imports.

    Raises:
        ValueError: an unknown name, with close registered names suggested.
    """
    if isinstance(name, ModelSpec):
        return name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model names must be non-empty strings, got {name!r}")
    kwargs = dict(kwargs or {})
    for prefix in ("timm:", "timm/"):
        if name.startswith(prefix):
            return ModelSpec(name[len(prefix):], "timm", kwargs)
    if name in list_models(include_deprecated=True):  # a renamed model's old name too (it warns once when built)
        return ModelSpec(name, "wavevision", kwargs)
    timm = _import_timm()
    if not isinstance(timm, BaseException) and name in timm.list_models():
        return ModelSpec(name, "timm", kwargs)
    try:
        get_entry(name)
    except ValueError as e:
        hint = " or install timm to benchmark its models" if isinstance(timm, BaseException) else ""
        raise ValueError(f"{e} For a timm model write timm:{name}{hint}.") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _build_model(spec: ModelSpec) -> nn.Module:
    if spec.source == "timm":
        timm = _import_timm()
        if isinstance(timm, BaseException):
            raise ImportError(f"timm is not importable here ({timm}); pip install timm")
        return timm.create_model(spec.name, pretrained=False, **dict(spec.kwargs))
    return create_model(spec.name, **dict(spec.kwargs))


def _task(spec: ModelSpec) -> Task:
    """The task object of a model (timm models are classifiers)."""
    return get_task(get_entry(spec.name).task if spec.source == "wavevision" else Classification.name)


def default_input_shape(spec: ModelSpec, model: nn.Module, size: SizeLike = None) -> tuple[int, int, int]:
    """(C, H, W) of one input: ``size`` (int, (H, W) or (C, H, W)) or the model's usual size.

    Without ``size``: the model's ``pretrained_cfg["input_size"]`` (wavevision's and timm's
    models have one) at the model's channels, else 224 (classification), 512 (segmentation),
    64 (super-resolution).
    """
    chans = int(getattr(model, "in_chans", 3))
    if size is None:
        cfg_size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
        size = tuple(int(s) for s in cfg_size[-2:]) if cfg_size else _task(spec).input_size
    dims = _size_tuple(size)
    return (chans, *dims) if len(dims) == 2 else dims  # type: ignore[return-value]


def _size_tuple(size: int | Sequence[int]) -> tuple[int, ...]:
    dims = (size, size) if isinstance(size, int) else tuple(size)
    if len(dims) not in (2, 3) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise ValueError(f"input size must be S, (H, W) or (C, H, W) of positive ints, got {size!r}")
    return tuple(int(d) for d in dims)


# ---------------------------------------------------------------------------------------
# One case: model, inputs and the step to run


def _loss(task: Task, out: Any, target: torch.Tensor) -> torch.Tensor:
    """The task loss on the main output plus the mean of any other float outputs (so every
    output's backward runs, e.g. auxiliary token heads)."""
    if isinstance(out, Mapping):  # a detector's loss dict
        return task.loss()(out, target)
    outputs = [t for t in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    main, rest = outputs[0], outputs[1:]
    return task.loss()(main, target) + sum(t.float().mean() for t in rest)


def _target(task: Task, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The task's synthetic target for ``x``, shaped after the model's eval output on one input."""
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model(x[:1])
        model.train(was)
    out = out[0] if isinstance(out, (tuple, list)) else out
    g = torch.Generator(device="cpu").manual_seed(0)
    return task.synthetic_target(out, x.shape[0], g).to(x.device)


def build_case(name: str, source: str, kwargs: Mapping[str, Any], input_shape: tuple[int, ...], batch_size: int,
               device: torch.device, dtype: torch.dtype, mode: str) -> tuple[nn.Module, torch.Tensor, Callable[[], None]]:
    """Build ``(model, inputs, step)``: ``step()`` runs one inference (``mode="infer"``) or one
    training step (``"train"``: forward, loss, backward, AdamW step) at ``batch_size``."""
    spec = ModelSpec(name, source, kwargs)
    torch.manual_seed(0)
    model = _build_model(spec).to(device=device, dtype=dtype)
    g = torch.Generator(device="cpu").manual_seed(1)
    x = torch.rand((batch_size, *input_shape), generator=g).to(device=device, dtype=dtype)
    if mode == "infer":
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                model(x)

        return model, x, step
    if mode != "train":
        raise ValueError(f"mode must be 'infer' or 'train', got {mode!r}")
    task = _task(spec)
    target = _target(task, model, x)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4) if params else None

    def train_step() -> None:
        loss = _loss(task, task.forward(model, x, target), target)
        loss.backward()
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)

    return model, x, train_step


# ---------------------------------------------------------------------------------------
# Timing


def _sync(device: torch.device) -> None:
    if device.type != "cpu":
        torch.get_device_module(device).synchronize(device)


def _time_runs(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` runs after ``warmup`` runs, synchronised around each."""
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _median_iqr(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return float(values[0]), 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return float(statistics.median(values)), float(q3 - q1)


def _environment(device: torch.device) -> dict[str, Any]:
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.type == "cpu":
        env["device_name"] = platform.processor() or platform.machine()
    else:
        module = torch.get_device_module(device)
        env["device_name"] = module.get_device_name(device) if hasattr(module, "get_device_name") else device.type
    return env


def _accuracy(spec: ModelSpec, accuracies: Mapping[str, float]) -> tuple[float | None, str]:
    for key in (spec.label, spec.name):
        if key in accuracies:
            return float(accuracies[key]), "given"
    if spec.source == "wavevision":
        cfg = get_entry(spec.name).pretrained_cfg
        top1 = cfg.get("metrics", {}).get("top1")
        if isinstance(top1, (int, float)):
            return float(top1), f"reference: {cfg.get('dataset', '?')} top1 ({cfg.get('metrics_source', '')})"
    return None, ""


def _measure_memory(spec: ModelSpec, row: BenchResult, mode: str, device: torch.device, dtype: torch.dtype,
                    step: Callable[[], None], limit_mb: float | None) -> MemoryResult:
    if device.type == "cpu":
        mspec = MemorySpec(spec.name, spec.source, dict(spec.kwargs), row.input_shape, row.batch_size, row.dtype, mode,
                           torch.get_num_threads())
        return cpu_peak_memory(mspec, limit_mb=limit_mb)
    return accelerator_peak_memory(step, device)


def _memory_check(spec: ModelSpec, size: SizeLike, device: torch.device) -> Callable[[int, bool], None]:
    """``fits(batch, train)``: a MemoryError with the estimate when a wavevision model at that
    batch cannot fit on ``device`` (estimated on the ``meta`` device; timm models: not checked)."""
    if spec.source != "wavevision":
        return lambda batch, train: None
    meta = meta_model(lambda: _build_model(spec))
    shape = default_input_shape(spec, meta, size)

    def fits(batch: int, train: bool) -> None:
        check_fits_memory(meta, input_shape=(batch, *shape), train=train, optimizer_slots=2 if train else 0,
                          device=device, what=f"{'training' if train else 'inference of'} {spec.name} at batch "
                          f"{batch} of {'x'.join(map(str, shape))}", fix="give a smaller --input-size or --batch-size")

    return fits


def _bench_one(spec: ModelSpec, row: BenchResult, size: SizeLike, device: torch.device, dtype: torch.dtype,
               warmup: int, repeats: int, memory: bool, train: bool, limit_mb: float | None) -> None:
    """Fill ``row`` in place; raises only for errors that are not out-of-memory."""
    fits = _memory_check(spec, size, device)
    fits(1, False)  # an absurd size is refused before anything is allocated: the whole row is out of memory
    torch.manual_seed(0)
    model = _build_model(spec)
    row.params = count_parameters(model)
    row.input_shape = default_input_shape(spec, model, size)
    model = model.to(device=device, dtype=dtype).eval()
    # MACs need one forward at batch 1: a size the model cannot take fails here, clearly.
    row.macs = count_macs(model, (1, *row.input_shape))
    row.note = _task(spec).bench_note(model, row.input_shape)
    del model
    ooms: list[str] = []

    def case(label: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - OOM is a result, anything else is an error
            if not is_oom_error(e):
                raise
            ooms.append(label)
            if device.type != "cpu":
                torch.get_device_module(device).empty_cache()

    def latency() -> None:
        _, _, step = build_case(spec.name, spec.source, spec.kwargs, row.input_shape, 1, device, dtype, "infer")
        t = _time_runs(step, device, warmup, repeats)
        row.latency_ms, row.latency_ms_iqr = (v * 1e3 for v in _median_iqr(t))

    def throughput() -> None:
        fits(row.batch_size, False)
        _, _, step = build_case(spec.name, spec.source, spec.kwargs, row.input_shape, row.batch_size, device, dtype, "infer")
        rates = [row.batch_size / s for s in _time_runs(step, device, warmup, repeats)]
        row.throughput, row.throughput_iqr = _median_iqr(rates)

    def train_step() -> None:
        fits(row.batch_size, True)
        _, _, step = build_case(spec.name, spec.source, spec.kwargs, row.input_shape, row.batch_size, device, dtype, "train")
        t = _time_runs(step, device, warmup, repeats)
        row.train_step_ms, row.train_step_ms_iqr = (v * 1e3 for v in _median_iqr(t))

    case("latency@1", latency)
    case(f"throughput@{row.batch_size}", throughput)
    if train:
        case(f"train_step@{row.batch_size}", train_step)
    if memory:
        modes = ["infer", "train"] if train else ["infer"]
        for mode in modes:
            try:
                fits(row.batch_size, mode == "train")
            except MemoryError:
                ooms.append(f"{mode} memory@{row.batch_size}")
                continue
            step: Callable[[], None] = lambda: None  # noqa: E731
            if device.type != "cpu":
                _, _, step = build_case(spec.name, spec.source, spec.kwargs, row.input_shape, row.batch_size, device, dtype, mode)
            res = _measure_memory(spec, row, mode, device, dtype, step, limit_mb)
            row.memory_method = res.method or row.memory_method
            setattr(row, f"{mode}_baseline_mb", res.baseline_mb)
            if res.status == "ok":
                setattr(row, f"{mode}_peak_mb", res.peak_mb)
            elif res.status == "oom":
                ooms.append(f"{mode} memory@{row.batch_size}")
            else:
                raise RuntimeError(f"{mode} memory: {res.message}")
    if ooms:
        row.status = "oom"
        row.note = "; ".join(filter(None, ["out of memory in " + ", ".join(ooms), row.note]))


def benchmark(
    models: Sequence[str | ModelSpec],
    *,
    input_size: SizeLike = None,
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype = "float32",
    warmup: int = 3,
    repeats: int = 10,
    memory: bool = True,
    train: bool = True,
    accuracies: Mapping[str, float] | None = None,
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    memory_limit_mb: float | None = None,
    progress: bool = False,
) -> list[BenchResult]:
    """Measure each model; one :class:`BenchResult` per model, in order.

    Args:
        models: registered names, ``timm:NAME`` (skipped with a note when timm is missing),
            or :class:`ModelSpec`.
        input_size: S, (H, W) or (C, H, W) for every model; None: each model's usual size
            (:func:`default_input_shape`).
        batch_size: N for throughput, the training step and peak memory (latency uses 1).
        device: ``auto``, ``cpu``, ``cuda:1``, ... (a missing device raises, listing those here).
        dtype: parameters and inputs are cast to it (``float32``, ``bfloat16``, ``float16``).
        warmup, repeats: untimed and timed runs of every timing.
        memory: measure peak memory (CPU: two fresh processes per model).
        train: time and measure a training step too.
        accuracies: ``{name: accuracy}`` for the plots; else the registry's reference top-1.
        model_kwargs: ``{name: {override: value}}`` passed to the builders.
        memory_limit_mb: CPU only: a case needing more extra memory than this is reported as OOM.
        progress: show a tqdm bar.

    Raises:
        ValueError: unknown model names (close names suggested), a missing device, bad sizes
            or counts. Errors of one model at run time (e.g. a size it cannot take) are
            reported in its row instead.
    """
    if isinstance(models, (str, ModelSpec)):
        models = [models]
    if not models:
        raise ValueError("benchmark needs at least one model name")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not isinstance(warmup, int) or warmup < 0 or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1, got warmup={warmup!r}, repeats={repeats!r}")
    if input_size is not None:
        _size_tuple(input_size)
    if memory_limit_mb is not None:
        check_float("memory_limit_mb", memory_limit_mb, gt=0)
    for name, value in (accuracies or {}).items():
        check_float(f"accuracies[{name!r}]", value, min=0, max=100)
    dev = resolve_device(device)
    if dev.type == "cpu":
        warn_spin_waiting(torch.get_num_threads())
    dt = parse_dtype(dtype)
    dtype_name = str(dt).removeprefix("torch.")
    kwargs_for = dict(model_kwargs or {})
    specs = [resolve_model(m, kwargs_for.get(m) if isinstance(m, str) else None) for m in models]  # fail fast
    env = _environment(dev)
    accuracies = dict(accuracies or {})
    results: list[BenchResult] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc="bench", unit="model", file=sys.stderr)
    for spec in specs:
        row = BenchResult(model=spec.label, source=spec.source, task=_task(spec).name,
                          batch_size=batch_size, device=str(dev), dtype=dtype_name, warmup=warmup, repeats=repeats,
                          environment=env)
        row.accuracy, row.accuracy_source = _accuracy(spec, accuracies)
        if bar is not None:
            bar.set_postfix_str(spec.label)
        if spec.source == "timm" and isinstance(_import_timm(), BaseException):
            row.status, row.note = "skipped", f"timm is not installed here (pip install timm): {spec.name} skipped"
        else:
            try:
                _bench_one(spec, row, input_size, dev, dt, warmup, repeats, memory, train, memory_limit_mb)
            except Exception as e:  # noqa: BLE001 - one model's failure must not stop the others
                if is_oom_error(e):
                    row.status, row.note = "oom", f"out of memory: {str(e).splitlines()[0][:200]}"
                else:
                    row.status, row.note = "error", f"{type(e).__name__}: {e}"
        results.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results
