"""CPU speed-ups of the reference models, applied by one module-swapping pass: :func:`accelerate`.

The model code (``wavevision.models``, ``wavevision.layers``) is the papers' operations with
plain torch modules. :func:`accelerate` swaps some of those modules, in place, for subclasses
with faster CPU paths; parameters, buffers and the state dict stay the same objects with the
same keys and shapes, so weights, optimisers, ``pretrained=``, ``checkpoint=``, pickling and
``copy.deepcopy`` are unaffected, and results equal the plain modules' to float rounding
(dropout in training mode draws other masks: :class:`FastDropout`'s own random stream).
``wavevision.create_model`` applies it by default; ``create_model(name, accel=False)`` gives
the plain reference.

Module map:

* :mod:`.kernels`: the 1x1 convolution as a batched matrix product, the 16-bit dropout mask;
* :mod:`.modules`: :class:`PointwiseConv2d`, :class:`FastDropout`, :class:`FastConvTranspose2d`
  (drop-in subclasses of ``nn.Conv2d``, ``nn.Dropout``, ``nn.ConvTranspose2d``);
* :mod:`.lean`: autograd functions that keep fewer activations (the lean MLP and BatchNorm,
  the fused residual);
* :mod:`.blocks`: :class:`LeanMlp`, :class:`FastWaveMixBlock` (lean path, fused residual),
  :class:`LeanPatchifyStem`;
* :mod:`.memory`: the checkpoint-segment memory model (:func:`balanced_segments`);
* :mod:`.wtconv`: :class:`FastWTConv2d` (large CPU maps' depthwise convolutions channels-last).

What is swapped: inside every WaveMix-style block (a module with a 1x1 ``reduction`` conv and
``feedforward`` MLPs: WaveMix, WaveMix-Lite, WaveMixSeg, the super-resolution models, the
token-mixer ablations) and every WaveMix MLP (``wavemix_mlp``'s six modules) its plain 1x1
convs, dropouts and transposed convs; the MLPs themselves (:class:`LeanMlp`); ``WaveMixBlock``;
the patchify stem; and a model whose ``layers`` hold WaveMix blocks gets
balanced checkpoint segments (:class:`~.memory.BalancedSegments`); every ``WTConv2d``
(WTConvNeXt, its UperNet, the ``wtconv`` token mixer) becomes a :class:`FastWTConv2d`. Every fast path falls back
to the plain computation where it does not apply (CUDA, autocast, tracing, hooks, ...).
Wave-ViT has nothing to swap.
"""
from __future__ import annotations

from typing import Any, cast

import torch.nn as nn

from ..layers.stems import PatchifyStem
from ..layers.wavemix_block import WaveMixBlock
from ..layers.wtconv import WTConv2d
from .blocks import FastWaveMixBlock, LeanMlp, LeanPatchifyStem
from .lean import lean_batch_norm, lean_enabled, lean_mlp
from .memory import BalancedSegments, balanced_segments, head_cost, kept_ratio
from .modules import FastConvTranspose2d, FastDropout, PointwiseConv2d, is_pointwise
from .wtconv import FastWTConv2d

__all__ = [
    "BalancedSegments",
    "FastConvTranspose2d",
    "FastDropout",
    "FastWTConv2d",
    "FastWaveMixBlock",
    "LeanMlp",
    "LeanPatchifyStem",
    "PointwiseConv2d",
    "accelerate",
    "balanced_segments",
    "head_cost",
    "is_accelerated",
    "kept_ratio",
    "lean_batch_norm",
    "lean_enabled",
    "lean_mlp",
]

# Fast class -> the plain class it stands for (the swap is undone by going back).
_PLAIN: dict[type, type] = {
    PointwiseConv2d: nn.Conv2d,
    FastDropout: nn.Dropout,
    FastConvTranspose2d: nn.ConvTranspose2d,
    LeanMlp: nn.Sequential,
    FastWaveMixBlock: WaveMixBlock,
    LeanPatchifyStem: PatchifyStem,
    FastWTConv2d: WTConv2d,
}


def _is_wavemix_style(m: nn.Module) -> bool:
    """A block of the WaveMix family: a 1x1 ``reduction`` conv and ``feedforward`` MLP(s)."""
    reduction = getattr(m, "reduction", None)
    return (
        isinstance(reduction, nn.Conv2d)
        and reduction.kernel_size == (1, 1)
        and any(name.startswith("feedforward") for name in m._modules)
    )


def _is_wavemix_mlp(m: nn.Module) -> bool:
    """``wavemix_mlp``'s layout: 1x1 conv, GELU, dropout, 1x1 conv, upsample, BatchNorm."""
    return (
        type(m) is nn.Sequential
        and len(m) == 6
        and all(is_pointwise(m[i]) or type(m[i]) is PointwiseConv2d for i in (0, 3))
        and isinstance(m[1], nn.GELU)
        and isinstance(m[2], nn.Dropout)
        and isinstance(m[5], nn.BatchNorm2d)
    )


def _fast_class(m: nn.Module) -> type | None:
    """The fast class of a plain leaf inside a WaveMix-style block, or None."""
    if is_pointwise(m):
        return PointwiseConv2d
    if type(m) is nn.Dropout:
        return FastDropout
    if type(m) is nn.ConvTranspose2d:
        return FastConvTranspose2d
    return None


def accelerate(model: nn.Module, enable: bool = True) -> nn.Module:
    """Swap ``model``'s plain modules for their CPU fast subclasses, in place; returns ``model``.

    The state dict (keys, shapes, the parameter objects themselves) is unchanged, and applying it
    twice changes nothing (idempotent). ``enable=False`` undoes it: every fast module goes back to
    its plain class, which gives the reference model (``create_model(name, accel=False)``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"accelerate() takes a torch.nn.Module, got {type(model).__name__}")
    if not enable:
        for m in model.modules():
            plain = _PLAIN.get(type(m))
            if plain is not None:
                m.__class__ = plain
            if "segment_planner" in vars(m):
                del m.segment_planner
        return model
    for m in list(model.modules()):
        if not (_is_wavemix_style(m) or _is_wavemix_mlp(m)):
            continue
        for sub in m.modules():
            fast = _fast_class(sub)
            if fast is not None:
                sub.__class__ = fast
        if _is_wavemix_mlp(m):
            m.__class__ = LeanMlp
        if type(m) is WaveMixBlock:
            m.__class__ = FastWaveMixBlock
    for m in model.modules():
        if type(m) is PatchifyStem:
            m.__class__ = LeanPatchifyStem
        if type(m) is WTConv2d:
            m.__class__ = FastWTConv2d
        layers = getattr(m, "layers", None)
        if hasattr(m, "segment_planner") and isinstance(layers, nn.ModuleList) and any(map(_is_wavemix_style, layers)):
            cast(Any, m).segment_planner = BalancedSegments()  # a WaveMix model (a detector's trunk too)
    return model


def is_accelerated(model: nn.Module) -> bool:
    """Whether any module of ``model`` is one of the fast classes :func:`accelerate` swaps in."""
    return any(type(m) in _PLAIN for m in model.modules())
