"""Fused inference: fold BatchNorm into the convolution that feeds it and drop dropout.

:func:`fuse` returns an eval-only copy of any model. A BatchNorm in eval mode is a
per-channel affine map ``y = (x - mean) * gamma / sqrt(var + eps) + beta``; when the only
input of the BatchNorm is the output of a convolution (or transposed convolution, or
linear layer), that map folds into the convolution's weight and bias exactly, and the
BatchNorm becomes ``nn.Identity``.

A pair is folded only where the adjacency is provable:

* inside an ``nn.Sequential`` (or subclass): a conv followed by a BatchNorm of the same
  width, possibly with neutral modules between them: ``nn.Identity``, dropout (an identity
  in eval mode) and ``nn.Upsample`` in ``nearest``/``linear``/``bilinear``/``trilinear``
  mode (per-channel interpolation whose weights sum to 1 commutes with a per-channel
  affine map);
* through a hook: any module may define ``fuse_pairs(self)`` returning ``(conv, bn)`` pairs
  of dotted submodule names relative to itself, promising that the BatchNorm consumes the
  convolution's output and nothing else does (for models whose forward is not a Sequential).

Dropout modules (every ``nn.Dropout*`` / ``nn.AlphaDropout`` kind) are replaced by
``nn.Identity``. Outputs match the unfused eval model to float rounding (the folded
parameters are computed in float64).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import cast

import torch
import torch.nn as nn

__all__ = ["fuse", "fuse_conv_bn"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_NEUTRAL_UPSAMPLE = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear")


def _out_channels(conv: nn.Module) -> int:
    return conv.out_features if isinstance(conv, nn.Linear) else cast(int, conv.out_channels)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        isinstance(conv, _CONVS)
        and isinstance(bn, nn.modules.batchnorm._BatchNorm)
        and bn.track_running_stats
        and bn.running_mean is not None
        and bn.num_features == _out_channels(conv)
        and not isinstance(getattr(conv, "weight", None), torch.nn.parameter.UninitializedParameter)
    )


def _neutral(m: nn.Module) -> bool:
    if isinstance(m, (nn.Identity, nn.modules.dropout._DropoutNd)):
        return True
    return type(m) is nn.Upsample and m.mode in _NEUTRAL_UPSAMPLE


@torch.no_grad()
def fuse_conv_bn(conv: nn.Module, bn: nn.Module) -> None:
    """Fold eval-mode BatchNorm ``bn`` into ``conv`` (Conv*d, ConvTranspose*d or Linear), in place.

    Afterwards ``conv(x)`` equals ``bn(conv(x))`` of before (to float rounding); the caller
    replaces ``bn`` by ``nn.Identity``.
    """
    if not _foldable(conv, bn):
        raise ValueError(
            f"cannot fold {type(bn).__name__}({getattr(bn, 'num_features', '?')}) into {type(conv).__name__}: "
            "need a BatchNorm with running statistics and as many features as the layer's outputs"
        )
    conv = cast("nn.modules.conv._ConvNd | nn.Linear", conv)
    bn = cast(nn.modules.batchnorm._BatchNorm, bn)
    running_mean, running_var = cast(torch.Tensor, bn.running_mean), cast(torch.Tensor, bn.running_var)
    w = conv.weight
    scale = running_var.double().add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        # weight (in, out / groups, *k): output channel g * (out/groups) + j sits at [g*(in/groups) + i, j].
        g = conv.groups
        shape = (g, w.shape[0] // g, w.shape[1]) + (1,) * (w.dim() - 2)
        new_w = (w.double().reshape(g, w.shape[0] // g, *w.shape[1:]) * scale.reshape(g, 1, *shape[2:])).reshape(w.shape)
    else:
        new_w = w.double() * scale.reshape(-1, *([1] * (w.dim() - 1)))
    old_b = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    new_b = old_b * scale + shift
    w.copy_(new_w.to(w.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(new_b.to(device=w.device, dtype=w.dtype), requires_grad=w.requires_grad)
    else:
        conv.bias.copy_(new_b.to(conv.bias.dtype))


def _sequential_pairs(seq: nn.Sequential) -> Iterator[tuple[str, str]]:
    names = list(seq._modules)
    for i, name in enumerate(names):
        conv = seq._modules[name]
        if not isinstance(conv, _CONVS):
            continue
        for later in names[i + 1 :]:
            m = seq._modules[later]
            if _foldable(conv, m):
                yield name, later
                break
            if m is None or not _neutral(m):
                break


def _pairs(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module, nn.Module]]:
    """(parent of bn, bn's attribute name, conv, bn) for every provable pair."""
    found = []
    for prefix, module in model.named_modules():
        pairs: Iterable[tuple[str, str]] = ()
        hook = getattr(module, "fuse_pairs", None)
        if callable(hook):
            pairs = hook()
        elif isinstance(module, nn.Sequential):
            pairs = _sequential_pairs(module)
        for conv_name, bn_name in pairs:
            conv = module.get_submodule(conv_name)
            bn = module.get_submodule(bn_name)
            if not _foldable(conv, bn):
                raise ValueError(
                    f"{type(module).__name__}.fuse_pairs() names ({conv_name!r}, {bn_name!r}) in {prefix or 'the model'}, "
                    f"but {type(conv).__name__} -> {type(bn).__name__} cannot be folded"
                )
            parent_name, _, attr = bn_name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            found.append((parent, attr, conv, bn))
    return found


def _refuse_training(module: nn.Module, args: tuple) -> None:
    if module.training:
        raise RuntimeError(
            f"this {type(module).__name__} was fused for inference (BatchNorm folded into convolutions, dropout removed) "
            "and cannot train; train the original model and call wavevision.fuse(model.eval()) again"
        )


def fuse(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """An eval-only copy of ``model`` with BatchNorm folded into convolutions and dropout removed.

    Works for any model (module docstring: which pairs are folded). The result stays in eval
    mode: a forward after ``.train()`` raises.

    Args:
        model: a model in eval mode (``model.eval()``); it is not modified.
        inplace: fuse ``model`` itself instead of a deep copy.

    Returns:
        The fused model, on the same device and dtype.

    Raises:
        ValueError: the model (or a submodule) is in training mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fuse() takes a torch.nn.Module, got {type(model).__name__}")
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise ValueError(
            f"fuse() needs a model in eval mode, but {training[0]!r} is in training mode; call model.eval() first "
            "(folding uses BatchNorm's running statistics, which training mode would keep updating)"
        )
    fused = model if inplace else copy.deepcopy(model)
    for parent, attr, conv, bn in _pairs(fused):
        fuse_conv_bn(conv, bn)
        setattr(parent, attr, nn.Identity())
    for name, m in list(fused.named_modules()):
        if isinstance(m, nn.modules.dropout._DropoutNd) and name:
            parent_name, _, attr = name.rpartition(".")
            setattr(fused.get_submodule(parent_name) if parent_name else fused, attr, nn.Identity())
    fused.eval()
    if _refuse_training not in fused._forward_pre_hooks.values():
        fused.register_forward_pre_hook(_refuse_training)
    return fused
