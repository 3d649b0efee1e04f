"""Drop-in fast subclasses of plain torch modules (same parameters, same state dict) for the CPU step.

* :class:`PointwiseConv2d`, ``nn.Conv2d(in, out, 1)``: on NCHW CPU inputs one batched matrix
  product, about twice as fast as oneDNN's 1x1 convolution forward and backward there;
* :class:`FastDropout`: ``nn.Dropout`` draws one random number per element (``bernoulli_``,
  8-16 % of a WaveMix training step in profiles of the public package); this draws 16 random
  bits per element from 64-bit words and keeps a 1-byte mask for backward instead of a 4-byte
  one. Its random stream differs from ``nn.Dropout``'s (same distribution, other masks);
* :class:`FastConvTranspose2d`: in CPU float32 inference the transposed convolution runs from a
  channels-last copy of its input, which oneDNN computes about twice as fast.

Each falls back to the plain computation on other devices, dtypes and in traced graphs
(TorchScript, ONNX; ``torch.fx`` keeps the run-time choice as one graph node).
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.layout import inference_layout
from .kernels import keep_mask, pointwise

__all__ = ["FastConvTranspose2d", "FastDropout", "PointwiseConv2d", "is_pointwise"]


def is_pointwise(m: nn.Module) -> bool:
    """Whether ``m`` is exactly a plain 1x1 ``nn.Conv2d`` (stride 1, no padding, groups 1) that
    :class:`PointwiseConv2d` computes the same way."""
    return (
        type(m) is nn.Conv2d
        and m.kernel_size == (1, 1)
        and m.stride == (1, 1)
        and m.padding == (0, 0)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.padding_mode == "zeros"
    )


class PointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 1)``; runs as a batched matrix product on CPU NCHW inputs.

    Other inputs (channels_last, CUDA) and traced graphs (TorchScript, ONNX) use the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pointwise_conv2d(x, self.weight, self.bias)


def _pointwise_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """PointwiseConv2d's forward: the matrix product on contiguous CPU NCHW inputs, else the conv."""
    if x.dim() != 4 or x.device.type != "cpu" or not x.is_contiguous() or torch.jit.is_tracing():
        return F.conv2d(x, weight, bias)
    return pointwise(x, weight, bias)


def _mask_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout keeping an element when 16 fresh random bits clear a threshold.

    The keep probability is ``1 - round(p * 2**16) / 2**16`` (``p`` rounded to 1/65536) and the
    kept values are scaled by its inverse, so the output's expectation is exactly the input.
    Autograd saves only the 1-byte mask.
    """
    levels = round(p * 65536)
    if levels <= 0:
        return x
    if levels >= 65536:
        return x * 0.0
    if torch.compiler.is_compiling():
        return _dropout_op(x, levels)[0]
    return (x * keep_mask(x, levels)).mul_(65536.0 / (65536 - levels))


# Under torch.compile the dropout is an opaque custom op with its own backward: Inductor's
# per-element random numbers cost more than this whole dropout on CPU. The tag marks it as
# random for graph passes, and every call site has its own input, so none is merged.
if hasattr(torch.library, "custom_op"):

    @torch.library.custom_op("wavevision::mask_dropout", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
    def _dropout_op(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
        keep = keep_mask(x, levels)
        return (x * keep).mul_(65536.0 / (65536 - levels)), keep

    @_dropout_op.register_fake
    def _(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.empty_like(x), torch.empty_like(x, dtype=torch.uint8)

    def _dropout_setup(ctx, inputs, output) -> None:
        ctx.scale = 65536.0 / (65536 - inputs[1])
        ctx.save_for_backward(output[1])

    def _dropout_backward(ctx, grad: torch.Tensor, _grad_keep: torch.Tensor | None):
        (keep,) = ctx.saved_tensors
        return (grad * keep).mul_(ctx.scale), None

    _dropout_op.register_autograd(_dropout_backward, setup_context=_dropout_setup)

else:  # pragma: no cover - torch < 2.4
    _dropout_op = None  # type: ignore[assignment]  # torch < 2.4 has no custom_op: no op to define


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU (module docstring); same interface and state.

    CUDA, in-place use and traced graphs use ``F.dropout`` (fused kernels there).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return _fast_dropout(x, self.p, self.inplace)


def _fast_dropout(x: torch.Tensor, p: float, inplace: bool) -> torch.Tensor:
    """FastDropout's training forward: the 16-bit mask on CPU, ``F.dropout`` elsewhere."""
    fallback = inplace or x.device.type != "cpu" or not x.is_floating_point() or torch.jit.is_tracing()
    if fallback or (torch.compiler.is_compiling() and _dropout_op is None):
        return F.dropout(x, p, True, inplace)
    return _mask_dropout(x, p)


class FastConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d``; in CPU float32 inference it runs on a channels-last copy of its input.

    oneDNN computes the transposed convolution in channels-last either way; from an NCHW
    input it also reorders the input and copies the output back to NCHW, which makes it about
    twice as slow as from a channels-last input (measured for the WaveMix MLP's 4x4 / stride 2
    upsample). The output is then channels-last. With gradients enabled, on other devices and
    dtypes, or when traced or compiled, it is the plain module.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or self.padding_mode != "zeros":
            return super().forward(x, output_size)
        return _conv_transpose2d(
            # ConvTranspose2d accepts no string padding: it is always a tuple here.
            x, self.weight, self.bias, self.stride, cast("tuple[int, ...]", self.padding), self.output_padding,
            self.groups, self.dilation,
        )


def _conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, ...],
                      padding: tuple[int, ...], output_padding: tuple[int, ...], groups: int,
                      dilation: tuple[int, ...]) -> torch.Tensor:
    """FastConvTranspose2d's forward: from a channels-last copy in CPU float32 inference."""
    return F.conv_transpose2d(inference_layout(x), weight, bias, stride, padding, output_padding, groups, dilation)


# torch.fx: the run-time choices are single graph nodes (wavevision.ops._fx).
for _leaf in ("_pointwise_conv2d", "_fast_dropout", "_conv_transpose2d"):
    torch.fx.wrap(_leaf)
