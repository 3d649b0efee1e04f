"""The fresh process that measures one memory case (``wavevision.bench.memory.cpu_peak_memory``):
it builds the case, resets the peak resident set size, runs the case once and prints a JSON result."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch

from ..utils import parse_dtype
from .memory import MB, MemorySpec, _peak_rss_mb, is_oom_error
from .runner import build_case


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


def _run_case(spec: MemorySpec, limit_mb: float | None) -> dict[str, Any]:
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


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
