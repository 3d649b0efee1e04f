"""Peak memory of one inference or one training step, measured for real.

* Accelerators (CUDA and the like): the caching allocator's peak (``max_memory_allocated``)
  during the case, in the benchmarking process, with the allocated bytes before the case
  (weights, inputs) as the baseline.
* CPU: every case runs in a fresh Python process (``python -m wavevision.bench._memcase``).
  It builds the model and its inputs and runs one batch-1 forward (so one-time library
  set-up stays out of the case), resets its peak resident set size to the current RSS (Linux
  ``/proc/self/clear_refs``), reads the peak RSS as the baseline, runs the case once at batch
  N (the first step, as a real run would) and reads the peak again. Both numbers are
  reported; the difference is the case's own memory (activations, gradients, AdamW state,
  workspaces). The child runs with ``MALLOC_MMAP_THRESHOLD_`` = 64 KiB so tensors get fresh
  pages instead of heap space freed earlier, which would hide them from the RSS. The peak is
  ``VmHWM`` where ``/proc`` exists, else ``ru_maxrss`` (see :func:`_peak_rss_mb` for why not
  ``ru_maxrss`` everywhere). Needs a POSIX system.

A case that runs out of memory is reported as ``"oom"`` rather than raised; on CPU a limit on
the case's extra address space (``limit_mb``, via ``RLIMIT_AS``) turns "would not fit in
this much memory" into such a result.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import torch

__all__ = ["MemoryResult", "MemorySpec", "accelerator_peak_memory", "cpu_peak_memory", "is_oom_error"]

MB = 2**20
_MMAP_THRESHOLD = 64 * 1024
_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "bad_alloc")


def is_oom_error(error: BaseException) -> bool:
    """Whether ``error`` means the device or the process ran out of memory."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error).lower() for m in _OOM_MARKERS)


@dataclass(frozen=True)
class MemorySpec:
    """What a fresh process needs to rebuild a benchmark case.

    Attributes:
        model: the model name; ``source`` says where it comes from (``wavevision`` or ``timm``).
        kwargs: keyword overrides for the builder.
        input_shape: (C, H, W) of one input.
        batch_size: inputs per step.
        dtype: ``float32``, ``bfloat16``, ...
        mode: ``infer`` (one forward, no autograd) or ``train`` (forward, backward, AdamW step).
        threads: torch threads in the child.
    """

    model: str
    source: str
    kwargs: Mapping[str, Any]
    input_shape: Sequence[int]
    batch_size: int
    dtype: str
    mode: str
    threads: int = 1


@dataclass
class MemoryResult:
    """Peak memory of one case in MiB: ``peak_mb`` in total, ``baseline_mb`` before it ran."""

    status: str  # "ok", "oom" or "error"
    peak_mb: Optional[float] = None
    baseline_mb: Optional[float] = None
    method: str = ""
    message: str = ""

    @property
    def case_mb(self) -> Optional[float]:
        """Peak minus baseline: what the case itself added."""
        if self.peak_mb is None or self.baseline_mb is None:
            return None
        return self.peak_mb - self.baseline_mb


def accelerator_peak_memory(run: Callable[[], Any], device: torch.device) -> MemoryResult:
    """Run ``run()`` once on an accelerator and read the allocator's peak (device-agnostic)."""
    module = torch.get_device_module(device)
    if not hasattr(module, "max_memory_allocated"):
        return MemoryResult("error", method="allocator", message=f"{device.type} reports no allocator statistics")
    module.synchronize(device)
    module.empty_cache()
    module.reset_peak_memory_stats(device)
    baseline = module.memory_allocated(device) / MB
    try:
        run()
        module.synchronize(device)
    except Exception as e:  # noqa: BLE001 - any OOM flavour is reported, others re-raised
        if not is_oom_error(e):
            raise
        module.empty_cache()
        return MemoryResult("oom", baseline_mb=baseline, method="allocator peak", message=str(e).splitlines()[0])
    return MemoryResult("ok", module.max_memory_allocated(device) / MB, baseline, "allocator peak (max_memory_allocated)")


def _peak_rss_mb() -> float:
    """The process's peak resident set size in MiB.

    Linux: ``VmHWM`` from ``/proc/self/status``, the memory map's own high-water mark. Not
    ``ru_maxrss``: after ``exec`` that also holds the peak of the process that started this one
    (the kernel carries the old memory map's peak over), so a child of a large benchmarking
    process would read the parent's size. Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / MB if sys.platform == "darwin" else rss / 1024


def cpu_peak_memory(spec: MemorySpec, *, limit_mb: Optional[float] = None, timeout: float = 600.0) -> MemoryResult:
    """Run one case in a fresh process and return its peak resident memory (see the module doc).

    Args:
        spec: the case.
        limit_mb: allow the case at most this much extra address space; beyond it the case
            is reported as ``"oom"``. None: no limit.
        timeout: seconds before the child is stopped (reported as an error).
    """
    payload = json.dumps({"spec": asdict(spec), "limit_mb": limit_mb})
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # glibc serves blocks above this from fresh mmaps returned on free, so a tensor's memory
    # shows in the RSS instead of hiding in heap space freed during imports.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(_MMAP_THRESHOLD))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wavevision.bench._memcase", payload],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        return MemoryResult("error", method="peak RSS", message=f"the memory case took more than {timeout:.0f} s")
    if proc.returncode == -signal.SIGKILL:
        return MemoryResult("oom", method="peak RSS", message="the case was killed (SIGKILL, most likely out of memory)")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return MemoryResult("error", method="peak RSS", message=f"memory subprocess failed (exit {proc.returncode}): {tail}")
    return MemoryResult(**json.loads(lines[-1]))


# ---------------------------------------------------------------------------------------
# The child process.


def _reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux ``clear_refs``), so imports and model
    building leave no high-water mark above the baseline. False where it is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _limit_address_space(extra_mb: float) -> None:
    import resource

    with open("/proc/self/statm") as f:
        vm_bytes = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = vm_bytes + int(extra_mb * MB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run_case(spec: MemorySpec, limit_mb: Optional[float]) -> Dict[str, Any]:
    from ..utils import parse_dtype
    from .runner import build_case

    torch.set_num_threads(max(1, int(spec.threads)))
    model, inputs, step = build_case(spec.model, spec.source, dict(spec.kwargs), tuple(spec.input_shape),
                                     spec.batch_size, torch.device("cpu"), parse_dtype(spec.dtype), spec.mode)
    # One batch-1 forward first, so one-time library set-up (kernels, thread pools) stays in
    # the baseline of both modes (the training case's target already ran one).
    was_training = model.training
    with torch.inference_mode():
        model.eval()(inputs[:1])
    model.train(was_training)
    reset = _reset_peak_rss()
    method = "peak RSS (VmHWM) of a fresh process during the first step, minus the RSS just before it" + (
        "" if reset else " (peak not resettable here: imports stay in the baseline)"
    )
    baseline = _peak_rss_mb()
    try:
        if limit_mb is not None:
            _limit_address_space(limit_mb)
        step()
    except Exception as e:  # noqa: BLE001 - reported to the parent as JSON
        if is_oom_error(e):
            return dict(status="oom", baseline_mb=baseline, method=method, message=str(e).splitlines()[0][:300])
        return dict(status="error", baseline_mb=baseline, method=method, message=f"{type(e).__name__}: {e}"[:300])
    return dict(status="ok", peak_mb=_peak_rss_mb(), baseline_mb=baseline, method=method)


def child_main(argv: Sequence[str]) -> int:
    """Entry point of the fresh process: run the case in ``argv[0]`` (JSON), print a JSON result."""
    payload = json.loads(argv[0])
    spec = MemorySpec(**payload["spec"])
    try:
        out = _run_case(spec, payload.get("limit_mb"))
    except Exception as e:  # noqa: BLE001 - building the case failed
        out = dict(status="error", method="peak RSS", message=f"{type(e).__name__}: {e}"[:300])
    print(json.dumps(out), flush=True)
    return 0
