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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

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
    peak_mb: float | None = None
    baseline_mb: float | None = None
    method: str = ""
    message: str = ""

    @property
    def case_mb(self) -> float | None:
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


def cpu_peak_memory(spec: MemorySpec, *, limit_mb: float | None = None, timeout: float = 600.0) -> MemoryResult:
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
