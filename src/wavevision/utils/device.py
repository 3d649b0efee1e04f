"""Device and dtype selection: the one place that names accelerator types."""
from __future__ import annotations

import torch

__all__ = ["available_devices", "is_cuda", "parse_dtype", "resolve_device"]

_ACCEL = "cuda"  # named here only, so the rest of the package stays device-agnostic

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "fp64": torch.float64, "double": torch.float64,
}


def is_cuda(device: torch.device) -> bool:
    """Whether ``device`` is a CUDA device (pinned host memory and CUDA-only dtypes depend on it)."""
    return device.type == _ACCEL


def available_devices() -> list[str]:
    """Names of the devices this process can use, e.g. ``['cpu', 'cuda:0']``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"{_ACCEL}:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """A ``torch.device`` from ``'auto'`` (the first accelerator, else CPU), ``'cpu'``, ``'cuda:1'``, ...

    Raises:
        ValueError: the device is malformed or not present here (the message lists what is).
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "auto"):
        names = available_devices()
        return torch.device(names[1] if len(names) > 1 else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"invalid device {spec!r} ({e}); available here: {', '.join(available_devices())}") from None
    here = available_devices()
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == _ACCEL:
        index = 0 if device.index is None else device.index
        if f"{_ACCEL}:{index}" not in here:
            raise ValueError(f"device {str(spec)!r} is not available on this machine; available here: {', '.join(here)}")
        return torch.device(_ACCEL, index)
    if device.type not in {n.split(":")[0] for n in here}:
        raise ValueError(f"device {str(spec)!r} is not available on this machine; available here: {', '.join(here)}")
    return device


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``'bf16'``/``'bfloat16'``, ``'fp16'``/``'float16'``/``'half'``, ``'fp32'``/``'float32'``, ``'fp64'`` -> dtype."""
    if isinstance(name, torch.dtype):
        return name
    key = str(name).strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {', '.join(sorted(_DTYPES))}")
    return _DTYPES[key]
