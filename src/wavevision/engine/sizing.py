"""Memory a model or an input would need, estimated before anything is allocated.

A model is first built on PyTorch's ``meta`` device (shapes only, no storage): its parameters
give the bytes of weights, gradients and optimizer state, and a forward pass on a ``meta``
input gives the size of every layer's output. :func:`check_fits_memory` compares the estimate
with the memory of the device that will hold it and refuses, naming the estimate and the fix,
what could never fit (a width or an input size off by orders of magnitude), instead of letting
the allocator fail halfway or the kernel's OOM killer end the process without a word.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn

from ..utils.memory import available_memory, check_memory

__all__ = ["activation_bytes", "check_fits_memory", "device_memory", "meta_model", "parameter_bytes"]


def meta_model(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with every tensor on the ``meta`` device (no memory), the global generator untouched."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build()


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers of ``model`` (real or ``meta``)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def activation_bytes(model: nn.Module, input_shape: Sequence[int], *, train: bool) -> int:
    """Bytes of the activations of one forward pass of ``model`` at ``input_shape`` (N, C, H, W).

    A lower bound, so that only what could never fit is refused: training keeps at least the
    output of every layer with weights (convolutions, linear layers, norms) for the backward
    pass (their sum); inference needs at least the input and the largest output of any layer
    with its input (twice the largest). The forward runs on ``meta`` tensors. Returns the
    input's bytes alone for a model that cannot run on ``meta`` tensors; a model that refuses
    the size raises its own error.
    """
    x_bytes = math.prod(int(s) for s in input_shape) * 4
    sizes: list[int] = []
    kept: list[int] = []

    def hook(module: nn.Module, inputs: object, output: object) -> None:
        outs = output if isinstance(output, (tuple, list)) else (output,)
        sizes.append(sum(t.numel() * t.element_size() for t in outs if isinstance(t, torch.Tensor)))
        if any(True for _ in module.parameters(recurse=False)):
            kept.append(sizes[-1])

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was = model.training
    try:
        model.train(train)
        with torch.no_grad():
            model(torch.empty(*input_shape, device="meta"))
    except (NotImplementedError, RuntimeError):  # an operator without a meta kernel: the input alone
        return x_bytes
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return x_bytes + (sum(kept) if train else 2 * max(sizes, default=0))


def device_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (the accelerator's free memory, or the host's available memory)."""
    if device.type == "cpu" or device.type == "meta":
        return available_memory()
    module = getattr(torch, device.type, None)
    try:
        return int(module.mem_get_info(device)[0])  # type: ignore[union-attr]
    except (AttributeError, RuntimeError, TypeError):
        return None


def check_fits_memory(model: nn.Module, *, what: str, fix: str, device: torch.device | str = "cpu",
                      input_shape: Sequence[int] | None = None, train: bool = False,
                      optimizer_slots: int = 0) -> int:
    """Refuse (MemoryError with the estimate) a model and input that cannot fit on ``device``.

    Args:
        model: the model, usually built by :func:`meta_model`.
        what: what would need the memory, for the message (``"training wavemix_lite ..."``).
        fix: how to need less, for the message.
        device: where it would run.
        input_shape: (N, C, H, W) of one batch, to count activations (None: weights only).
        train: count gradients, optimizer state and the activations kept for backward.
        optimizer_slots: optimizer tensors per parameter (AdamW 2, SGD with momentum 1).

    Returns:
        The estimate in bytes.
    """
    device = torch.device(device)
    weights = parameter_bytes(model)
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    need = weights + (grads * (1 + optimizer_slots) if train else 0)
    if input_shape is not None:
        need += activation_bytes(model, input_shape, train=train)
    free = device_memory(device)
    if free is not None:  # a platform that does not say is not checked
        check_memory(need, what, fix, available=free)
    return need
