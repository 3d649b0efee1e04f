"""Memory-lean training paths: the same results as the modules they stand for, fewer saved activations.

Backward needs activations saved in forward, and in a WaveMix training step they are most of
the peak memory. Two autograd functions save less than the chain of modules they replace;
the same random dropout mask, results equal to float rounding (bit-identical in float64,
where the transposed convolution below keeps the NCHW layout):

* :func:`lean_mlp`, the body of a WaveMix MLP: 1x1 conv, GELU, dropout, 1x1 conv and the
  transposed-conv upsample. Autograd keeps the first conv's input, the GELU input, the
  dropout mask, the dropout output and the upsample's input; this keeps the first three and
  recomputes the other two in backward (a GELU, a multiply and the second 1x1 conv). Its
  transposed convolution runs from a channels-last input, which oneDNN computes about twice
  as fast (:class:`~wavevision.accel.modules.FastConvTranspose2d`).
* :func:`lean_batch_norm`, training-mode BatchNorm whose backward works from its output
  (``out = gamma * (u - mean) * invstd + beta``), optionally with a residual added
  to the output (``out + residual``, the block's residual sum). Layers after it keep that
  output anyway (the next block's reduction conv saves its input), so the BatchNorm's own
  copy of its input is not kept. Needs every ``|gamma| >= 1e-3``; otherwise it runs the
  plain module. Inside a checkpointed block ``lean_mlp(..., residual=r)`` runs it inside the
  MLP's autograd function, so the upsample's output is freed before the sum is made (two
  block-sized maps at a time, not three). Not elsewhere: autograd would then keep the sum,
  which the function saves, until the whole MLP's backward ends; a checkpoint's rebuilt copy
  is freed as soon as backward takes it.

Both run on CPU, float32/float64, eager autograd without autocast (:func:`lean_enabled`);
elsewhere (CUDA, ``torch.compile``, tracing, autocast) the callers use the plain modules.

Inside a checkpointed block (:func:`~wavevision.layers.grad_checkpoint.inside_checkpoint`) the
lean MLP keeps only its input and the mask and recomputes the GELU input too, twice (two more 1x1 convs in backward): once to start, and again
after the transposed convolution's backward, its peak, which then runs without the hidden
maps. With checkpointing the user has already chosen recomputation over memory, and the
blocks of a recomputed segment wait for their backward with fewer activations. What a
checkpoint rebuilds is freed as soon as backward takes it, so a lean backward that drops its
references there lowers the peak (outside a checkpoint autograd keeps saved tensors until the
function's backward ends).
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.grad_checkpoint import inside_checkpoint
from ..ops._fx import is_fx_tracing
from .kernels import keep_mask as _keep_mask
from .kernels import pointwise as _pointwise
from .kernels import pointwise_grads as _pointwise_grads
from .modules import FastConvTranspose2d, FastDropout, PointwiseConv2d

__all__ = ["lean_batch_norm", "lean_enabled", "lean_mlp"]

# Rebuilding the BatchNorm input divides by gamma; below this the rounding would be amplified.
_MIN_GAMMA = 1e-3


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # pragma: no cover - torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def lean_enabled(x: torch.Tensor) -> bool:
    """Whether the lean paths apply to a training forward on ``x`` (see the module docstring)."""
    return (
        not is_fx_tracing()  # first: a torch.fx Proxy has no device to test
        and torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not _autocast_on("cpu")
        # under a dispatch mode (FlopCounterMode in count_macs, FakeTensorMode) the plain
        # modules run, so operation counts are the architecture's, without recomputation
        and torch._C._len_torch_dispatch_stack() == 0
    )


def _no_hooks(*modules: nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in modules)


def _dropped(h: torch.Tensor, keep: torch.Tensor | None, scale: float) -> torch.Tensor:
    """The dropout output from the GELU input and the mask, as the lean MLP's forward computed it."""
    d = F.gelu(h)
    return d if keep is None else d.mul_(keep).mul_(scale)


class _LeanMlp(torch.autograd.Function):
    """1x1 conv, GELU, dropout, 1x1 conv, optionally ConvTranspose2d(4, 2, 1) and then, with a
    ``residual``, a training BatchNorm plus the residual (:class:`_LeanBatchNorm`'s arithmetic;
    the transposed conv's output is freed before the sum is made). Saves the input, the GELU
    input (unless ``keep_hidden`` is false: backward recomputes it), the mask, and for the
    BatchNorm the sum, the residual and the statistics."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, wt, bt, levels: int, channels_last_ok: bool, keep_hidden: bool,
                residual=None, bn_weight=None, bn_bias=None, running_mean=None, running_var=None,
                factor: float = 0.0, eps: float = 0.0):
        scale = 65536.0 / (65536 - levels)
        h: torch.Tensor | None
        h = _pointwise(x, w1, b1)
        d = F.gelu(h)
        if not keep_hidden:
            h = None  # backward rebuilds it: free it now
        keep = None
        if levels > 0:  # exactly FastDropout's arithmetic, in place
            keep = _keep_mask(d, levels)
            d = d.mul_(keep).mul_(scale)
        out = _pointwise(d, w2, b2)
        del d
        if wt is not None:
            # oneDNN's transposed convolution is twice as fast from a channels-last input
            # (FastConvTranspose2d); its output stays channels-last only where the caller takes it
            if out.dtype == torch.float32:
                out = out.contiguous(memory_format=torch.channels_last)
            out = F.conv_transpose2d(out, wt, bt, stride=2, padding=1)
            if not channels_last_ok and residual is None:
                out = out.contiguous()
        invstd = None
        if residual is not None:
            z, _, invstd = torch.native_batch_norm(out, bn_weight, bn_bias, running_mean, running_var, True, factor, eps)
            del out  # before the sum: two maps at a time, not three
            out = residual + z  # residual first: the sum takes its memory format
            del z
        ctx.save_for_backward(x, h, w1, b1 if h is None else None, w2, b2, wt, keep,
                              out if residual is not None else None, residual, bn_weight, bn_bias, invstd)
        ctx.scale, ctx.eps = scale, eps
        ctx.has_bias = (b1 is not None, b2 is not None, bt is not None)
        return out

    @staticmethod
    def backward(ctx, g):
        x, h, w1, b1, w2, b2, wt, keep, out, residual, bn_weight, bn_bias, invstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        grad_res = grad_bnw = grad_bnb = None
        if residual is not None:
            grad_res = g if need[10] else None
            z = out - residual
            del out  # a checkpoint's rebuilt sum is ours alone: freed before the BatchNorm's gradient is made
            g, grad_bnw, grad_bnb = _norm_grads(g, z, bn_weight, bn_bias, invstd, ctx.eps)
            del z
        hb1, hb2, hbt = ctx.has_bias
        rebuilt = h is None
        h = _pointwise(x, w1, b1) if rebuilt else h
        d = _dropped(h, keep, ctx.scale)
        grad_wt = grad_bt = None
        if wt is None:
            grad_v = g
        else:
            v = _pointwise(d, w2, b2)
            if rebuilt:  # rebuilt maps are cheap: drop them during the transposed conv's backward, its peak
                del h, d
            grad_v, grad_wt, grad_bt = torch.ops.aten.convolution_backward(
                g, v, wt, [wt.shape[1]] if hbt else None, [2, 2], [1, 1], [1, 1], True, [0, 0], 1,
                [True, bool(need[5]), bool(hbt and need[6])],
            )
            del v, g
            if rebuilt:
                h = _pointwise(x, w1, b1)
                d = _dropped(h, keep, ctx.scale)
        grad_d, grad_w2, grad_b2 = _pointwise_grads(grad_v, d, w2, True, bool(need[3]), bool(hb2 and need[4]))
        del d, grad_v
        if keep is not None:
            grad_d.mul_(keep).mul_(ctx.scale)
        grad_h = torch.ops.aten.gelu_backward.grad_input(grad_d, h, grad_input=grad_d)  # in place, elementwise
        del h
        grad_x, grad_w1, grad_b1 = _pointwise_grads(grad_h, x, w1, bool(need[0]), bool(need[1]), bool(hb1 and need[2]))
        return (grad_x, grad_w1, grad_b1, grad_w2, grad_b2, grad_wt, grad_bt, None, None, None,
                grad_res, grad_bnw, grad_bnb, None, None, None, None)


def lean_mlp(x: torch.Tensor, mlp: nn.Sequential, channels_last_ok: bool = False,
             residual: torch.Tensor | None = None) -> torch.Tensor:
    """The first five modules of a WaveMix MLP (1x1 conv, GELU, dropout, 1x1 conv, upsample)
    keeping only ``x`` (which the first conv keeps anyway), the GELU input (not inside a
    checkpoint) and the dropout's 1-byte mask; with ``residual``, the sixth (BatchNorm) too, plus the residual:
    ``mlp(x) + residual`` as :func:`lean_batch_norm` computes it. Inside a checkpointed block
    (:func:`~wavevision.layers.grad_checkpoint.inside_checkpoint`) that is one autograd function, which frees the transposed
    convolution's output before making the sum.

    Backward recomputes the dropout output and the second 1x1 convolution. Other module types, hooks,
    or inputs the lean path does not take (:func:`lean_enabled`, non-contiguous) run the
    modules as written. Without ``residual`` the BatchNorm is left to the caller; with
    ``channels_last_ok`` the transposed convolution's output may then come back channels-last.
    """
    conv1, gelu, dropout, conv2, up = (mlp[i] for i in range(5))
    transposed = (
        isinstance(up, nn.ConvTranspose2d)
        and type(up).forward in (nn.ConvTranspose2d.forward, FastConvTranspose2d.forward)
        and up.kernel_size == (4, 4)
        and up.stride == (2, 2)
        and up.padding == (1, 1)
        and up.output_padding == (0, 0)
        and up.dilation == (1, 1)
        and up.groups == 1
        and up.padding_mode == "zeros"
    )
    ok = (
        type(conv1) is PointwiseConv2d
        and type(gelu) is nn.GELU
        and gelu.approximate == "none"
        and type(dropout) is FastDropout
        and not dropout.inplace
        and type(conv2) is PointwiseConv2d
        and (transposed or type(up) is nn.Upsample)
        and _no_hooks(conv1, gelu, dropout, conv2, up)
        and lean_enabled(x)
        and x.dim() == 4
        and x.is_contiguous()
    )
    levels = round(cast(FastDropout, dropout).p * 65536) if ok and dropout.training else 0
    ok = ok and levels < 65536
    keep_hidden = not inside_checkpoint()  # a checkpoint rebuilds the hidden map
    args = (x, conv1.weight, conv1.bias, conv2.weight, conv2.bias)
    if residual is not None:
        bn = mlp[5]
        shape = (x.shape[0], up.out_channels, 2 * x.shape[2], 2 * x.shape[3]) if ok and transposed else ()
        # Only inside a checkpoint: there the sum, rebuilt, is freed when backward takes it;
        # elsewhere autograd would keep it until the whole MLP's backward ends
        if ok and transposed and not keep_hidden and _norm_applies(bn, shape, x.dtype, residual):
            factor = _count_batch(bn)
            return _LeanMlp.apply(*args, up.weight, up.bias, levels, True, keep_hidden,
                                  residual, bn.weight, bn.bias, bn.running_mean, bn.running_var, factor, bn.eps)
        return lean_batch_norm(lean_mlp(x, mlp, channels_last_ok=True), bn, residual)
    if not ok:
        return up(conv2(dropout(gelu(conv1(x)))))
    if transposed:
        return _LeanMlp.apply(*args, up.weight, up.bias, levels, channels_last_ok, keep_hidden)
    return up(_LeanMlp.apply(*args, None, None, levels, False, keep_hidden))


class _LeanBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, residual, weight, bias, running_mean, running_var, factor: float, eps: float):
        out, _, invstd = torch.native_batch_norm(u, weight, bias, running_mean, running_var, True, factor, eps)
        if residual is not None:  # residual first: the sum takes its memory format (u's may differ)
            out = residual + out
        ctx.save_for_backward(out, residual, weight, bias, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, g):
        out, residual, weight, bias, invstd = ctx.saved_tensors
        z = out - residual if residual is not None else out
        grad_u, grad_w, grad_b = _norm_grads(g, z, weight, bias, invstd, ctx.eps)
        del z
        grad_res = g if residual is not None and ctx.needs_input_grad[1] else None
        return grad_u, grad_res, grad_w, grad_b, None, None, None, None


def _norm_grads(g: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, invstd: torch.Tensor,
                eps: float):
    """Gradients of a training BatchNorm (input, weight, bias) from its output ``z`` (before any residual)."""
    # The kernel needs (u - mean) * invstd = x_hat = (z - beta) / gamma: give it z with "mean"
    # beta and "invstd" 1/gamma, and gamma^2 * invstd as the weight, so that its input
    # gradient factor weight * invstd is gamma * invstd again.
    return torch.ops.aten.native_batch_norm_backward(
        g, z, weight * weight * invstd, None, None, bias, weight.reciprocal(), True, eps, [True, True, True]
    )


def _norm_applies(bn: nn.Module, shape: tuple, dtype: torch.dtype, residual: torch.Tensor | None) -> bool:
    """Whether the lean BatchNorm takes ``bn`` on an input of ``shape`` and ``dtype`` (:func:`lean_batch_norm`)."""
    return (
        type(bn) is nn.BatchNorm2d
        and bn.training
        and bn.affine
        and bn.track_running_stats
        and bn.running_mean is not None
        and _no_hooks(bn)
        and len(shape) == 4
        and shape[0] * shape[2] * shape[3] > 1
        and (residual is None or (tuple(residual.shape) == tuple(shape) and residual.dtype == dtype))
        and bool(bn.weight.detach().abs().min() >= _MIN_GAMMA)
    )


def _count_batch(bn: nn.Module) -> float:
    """nn.BatchNorm2d's bookkeeping: count the batch; returns the running statistics' update
    factor (momentum None means a cumulative average)."""
    tracked = cast(torch.Tensor, bn.num_batches_tracked)
    momentum = cast("float | None", bn.momentum)
    tracked.add_(1)
    return 1.0 / float(tracked) if momentum is None else momentum


def lean_batch_norm(u: torch.Tensor, bn: nn.Module, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``bn(u)`` (plus ``residual`` when given) without keeping ``u`` for backward.

    Use it where the result is kept by later layers anyway; otherwise it saves nothing.
    Runs the plain module when the lean path does not apply: not an affine, tracking
    ``nn.BatchNorm2d`` in training mode, hooks, a ``|gamma|`` below 1e-3, one value per
    channel, or an input :func:`lean_enabled` rejects.
    """
    ok = lean_enabled(u) and _norm_applies(bn, tuple(u.shape), u.dtype, residual)
    if not ok:
        out = bn(u)
        return out if residual is None else out + residual
    factor = _count_batch(bn)
    return _LeanBatchNorm.apply(u, residual, bn.weight, bn.bias, bn.running_mean, bn.running_var, factor, bn.eps)
