"""Memory a model or an input would need, estimated before anything is allocated.

A model is first built on PyTorch's ``meta`` device (shapes only, no storage): its parameters
give the bytes of weights, gradients and optimizer state, and a forward pass on a ``meta``
input gives the size of every layer's output. :func:`check_fits_memory` compares the estimate
with the memory of the device that will hold it and refuses, naming the estimate and the fix,
what could never fit (a width or an input size off by orders of magnitude), instead of letting
the allocator fail halfway or the kernel's OOM killer end the process without a word.

:func:`check_model_fits` is the one entry point: every path that builds a model from arguments
it was given (a checkpoint's config, a Hub folder's config.json, a command line) calls it before
the real build. Its arithmetic is Python integers: a tensor too large for PyTorch to even
describe (more than 2**62 bytes, a width of 10**9) is refused with its size, not with the
"storage size calculation overflowed" of the meta build.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..utils.memory import available_memory, check_memory, format_bytes

__all__ = ["MAX_BUILD_TENSORS", "ModelTooLargeError", "ModelTooManyTensorsError", "activation_bytes", "check_fits_memory", "check_model_fits", "device_memory",
           "meta_model", "parameter_bytes"]

# A tensor of more bytes than this cannot exist anywhere (PyTorch's sizes overflow at 2**63).
_IMPOSSIBLE_BYTES = 1 << 62
# More tensors than any model of this package builds by far (the largest: a few thousand); a depth of
# 10**6 from a config would otherwise spend an hour building Python objects before any memory check.
MAX_BUILD_TENSORS = 10_000
_FACTORIES = (torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
              torch.empty_strided)


class ModelTooLargeError(MemoryError):
    """A build or forward pass asks for a tensor too large for PyTorch to describe; ``nbytes``
    (a Python int) and ``shape`` say which."""

    def __init__(self, nbytes: int, shape: tuple[int, ...]) -> None:
        super().__init__(f"building the model would need a tensor of shape {shape} ({format_bytes(nbytes)}), "
                         "more than any machine has; use smaller model arguments")
        self.nbytes, self.shape = nbytes, shape


class ModelTooManyTensorsError(ValueError):
    """A build makes more tensors than any real model (a depth or a count off by orders of magnitude)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"building the model makes more than {limit:,} tensors, far more than any wavevision model "
                         "has; use smaller model arguments (a depth or a number of blocks)")


def _requested(func: Any, args: tuple, kwargs: dict) -> tuple[int, tuple[int, ...]] | None:
    """``(bytes, shape)`` a factory call asks for, in Python integers (None when not a plain size)."""
    size = kwargs.get("size", args[0] if args else ())
    if func is torch.randint:  # randint(high, size) / randint(low, high, size)
        size = kwargs.get("size", next((a for a in args if isinstance(a, (tuple, list, torch.Size))), ()))
    elif not isinstance(size, (tuple, list, torch.Size)):
        size = tuple(a for a in args if isinstance(a, int) and not isinstance(a, bool))
    try:
        shape = tuple(int(d) for d in size)
    except (TypeError, ValueError):
        return None
    dtype = kwargs.get("dtype") or torch.get_default_dtype()
    return math.prod(shape) * dtype.itemsize, shape


class _SizeGuard(TorchFunctionMode):
    """Refuses (``ModelTooLargeError``) a factory call for an impossible tensor before PyTorch computes
    its size in 64-bit integers."""

    def __init__(self) -> None:
        super().__init__()
        self.made = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - PyTorch's protocol
        kwargs = kwargs or {}
        if func in _FACTORIES:
            self.made += 1
            if self.made > MAX_BUILD_TENSORS:
                raise ModelTooManyTensorsError(MAX_BUILD_TENSORS)
            asked = _requested(func, args, kwargs)
            if asked is not None and asked[0] > _IMPOSSIBLE_BYTES:
                raise ModelTooLargeError(*asked)
        return func(*args, **kwargs)


class _LivePeak(TorchDispatchMode):
    """The most bytes of tensors alive at once while it is active: each new (non-view) output of an
    operator counts from its creation until Python frees it, as the eager allocator would see it
    (a residual block holds its input, a norm's input and output, ... at the same time)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - PyTorch's protocol
        out = func(*args, **(kwargs or {}))
        returns = getattr(getattr(func, "_schema", None), "returns", ())
        for i, t in enumerate(tree_flatten(out)[0]):
            if isinstance(t, torch.Tensor) and not (i < len(returns) and returns[i].alias_info is not None):
                nbytes = t.numel() * t.element_size()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, nbytes)
        return out


def meta_model(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with every tensor on the ``meta`` device (no memory), the global generator untouched.

    Raises:
        ModelTooLargeError: the build asks for a tensor of more than 2**62 bytes.
    """
    with torch.random.fork_rng(devices=[]), torch.device("meta"), _SizeGuard():
        try:
            return build()
        except RuntimeError as e:  # a size PyTorch could not compute in 64 bits, in an operator of the build
            if "overflow" in str(e).lower():
                raise ModelTooLargeError(_IMPOSSIBLE_BYTES, ()) from None
            raise


def check_model_fits(build: Callable[[], nn.Module], *, what: str, fix: str, device: torch.device | str = "cpu",
                     input_shape: Sequence[int] | None = None, train: bool = False,
                     optimizer_slots: int = 0) -> nn.Module:
    """Build ``build()`` on the ``meta`` device and refuse (``MemoryError``, one line with the estimate
    and ``fix``) a model and input that cannot fit on ``device``; returns the ``meta`` model.

    The one memory estimator of wavevision, called before allocating on every path that builds a
    model from given arguments (checkpoints, Hub folders, ``predict``, ``export``). Sizes are Python
    integers throughout: nothing overflows, whatever the arguments.

    Args:
        build: makes the model (``lambda: create_model(name, **kwargs)``); run on ``meta`` tensors only.
        what: what would need the memory, for the message (``"the model of runs/x/best.safetensors"``).
        fix: how to need less, for the message.
        device: where the model will run (its free memory is the limit).
        input_shape: (N, C, H, W) of one batch, to count activations too (None: weights only).
        train: count gradients, optimizer state and the activations kept for backward.
        optimizer_slots: optimizer tensors per parameter (AdamW 2, SGD with momentum 1).

    Raises:
        MemoryError: the estimate exceeds the memory available (``ModelTooLargeError`` when a single
            tensor could not even be described), naming ``what``, the estimate and ``fix``.
    """
    try:
        model = meta_model(build)
        check_fits_memory(model, what=what, fix=fix, device=device, input_shape=input_shape, train=train,
                          optimizer_slots=optimizer_slots)
    except ModelTooLargeError as e:
        shape = f" (a tensor of shape {e.shape})" if e.shape else ""
        raise MemoryError(f"{what} would need more than {format_bytes(e.nbytes)}{shape}, more than any machine "
                          f"has; {fix}") from None
    return model


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers of ``model`` (real or ``meta``)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def activation_bytes(model: nn.Module, input_shape: Sequence[int], *, train: bool) -> int:
    """Bytes of the activations of one forward pass of ``model`` at ``input_shape`` (N, C, H, W).

    A lower bound, so that only what could never fit is refused: training keeps at least the
    output of every layer with weights (convolutions, linear layers, norms) for the backward
    pass (their sum); inference needs at least the input and the largest output of any layer
    with its input (twice the largest); either needs at least the most bytes of tensors alive
    at once in the forward pass. The forward runs on ``meta`` tensors. Returns the
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
        with torch.no_grad(), _SizeGuard(), _LivePeak() as live:
            model(torch.empty(*input_shape, device="meta"))
    except (NotImplementedError, RuntimeError) as e:  # an operator without a meta kernel: the input alone
        if "overflow" in str(e).lower():  # an output too large to describe
            raise ModelTooLargeError(_IMPOSSIBLE_BYTES, ()) from None
        return x_bytes
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return max(live.peak, x_bytes + (sum(kept) if train else 2 * max(sizes, default=0)))


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
    """Refuse (MemoryError with the estimate) a model and input that cannot fit on ``device``
    (:func:`check_model_fits` builds the model and calls this: prefer it).

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
