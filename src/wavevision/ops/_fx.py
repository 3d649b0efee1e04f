"""Tracing tests shared by the fast paths: ``torch.jit.trace`` (TorchScript, ONNX) and ``torch.fx``.

Code that picks a fast path from a tensor's device, layout or shape cannot run on a
``torch.fx`` Proxy. Such choices live in small functions registered with ``torch.fx.wrap``
where they are called (one graph node each, the choice made at run time, so a traced graph
computes exactly what the module does), and Python control flow that only needs to know
whether it is being traced asks :func:`is_tracing`.
"""
from __future__ import annotations

import torch

try:  # symbolic tracing only (torch.export sets the same flag while compiling: not a Proxy there)
    from torch.fx._symbolic_trace import is_fx_symbolic_tracing as _is_fx_tracing
except ImportError:  # pragma: no cover - older torch: the flag itself, without the warning wrapper
    from torch.fx import _symbolic_trace as _st

    def _is_fx_tracing() -> bool:
        return bool(getattr(_st, "_is_fx_tracing_flag", False))

__all__ = ["is_fx_tracing", "is_tracing"]


def is_fx_tracing() -> bool:
    """True while ``torch.fx`` symbolically traces (``symbolic_trace``, timm/torchvision feature extractors)."""
    return bool(_is_fx_tracing())


def is_tracing() -> bool:
    """True while ``torch.jit.trace`` or ``torch.fx`` records the call."""
    return torch.jit.is_tracing() or is_fx_tracing()
