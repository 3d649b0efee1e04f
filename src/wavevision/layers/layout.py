"""Memory-format choices of CPU inference, made at run time (``torch.fx`` leaf functions).

oneDNN runs convolutions and transposed convolutions channels-last either way (from NCHW it
reorders in and out); in CPU float32 inference nothing needs NCHW, so the image (a few
channels, cheap to reorder) goes channels-last and the map stays so, and outputs are handed
back in the input's format. Traced graphs call these functions as single nodes
(``torch.fx.wrap`` where they are used), so a graph makes the same choice as the module.
"""
from __future__ import annotations

import torch

__all__ = ["add_residual", "in_format_of", "inference_layout"]


def inference_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` channels-last in CPU float32 inference on a contiguous 4D input; otherwise as is
    (gradients enabled: the 1x1 convs as matrix products and the BatchNorm backward want NCHW;
    other devices or dtypes; ``torch.jit.trace`` or ``torch.compile``)."""
    if (
        torch.is_grad_enabled()
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or x.dim() != 4
        or not x.is_contiguous()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
    ):
        return x
    return x.contiguous(memory_format=torch.channels_last)


def in_format_of(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` in the memory format of the input ``x`` (NCHW in, NCHW out)."""
    return y.contiguous() if x.is_contiguous() and not y.is_contiguous() else y


def add_residual(y: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``residual + y`` (the residual's memory format); in inference the fresh ``y`` takes the
    sum in place when it has the residual's layout and dtype, so no new buffer is allocated
    (not under ``torch.jit.trace``: its check re-runs without gradients, and both graphs must agree)."""
    if not torch.is_grad_enabled() and not torch.jit.is_tracing() and y.stride() == residual.stride() and y.dtype == residual.dtype and y._base is None:
        return y.add_(residual)
    return residual + y
