"""WTConv's CPU speed choice: depthwise convolutions of large maps run channels-last.

On CPU, oneDNN's NCHW depthwise convolution is 2-3 times slower, forward and backward, than the
same convolution on a channels-last copy for maps of 28 x 28 and more (C = 96..384, kernel 5),
while on smaller maps with 1536 or more channels channels-last is 2-4.5 times slower
(``benchmarks/wtconv_speed.py``, its depthwise table). :class:`FastWTConv2d` therefore hands
its convolutions a channels-last copy of maps of at least :data:`CHANNELS_LAST_MIN_PIXELS`
pixels and returns the output in the input's memory format; the values are the same.
"""
from __future__ import annotations

import torch

from ..layers.layout import in_format_of
from ..layers.wtconv import WTConv2d
from ..ops._fx import is_tracing

__all__ = ["CHANNELS_LAST_MIN_PIXELS", "FastWTConv2d", "conv_layout"]

#: CPU maps of at least this many pixels (28 x 28) run their depthwise convolutions channels-last.
CHANNELS_LAST_MIN_PIXELS = 28 * 28


def conv_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory format its depthwise convolution runs fastest in: channels-last for CPU
    maps of at least :data:`CHANNELS_LAST_MIN_PIXELS` pixels, otherwise as it is (also while
    traced or compiled, where the graph decides). The result holds ``x``'s values."""
    if x.device.type != "cpu" or x.shape[-2] * x.shape[-1] < CHANNELS_LAST_MIN_PIXELS or is_tracing() \
            or torch.compiler.is_compiling():
        return x
    return x.contiguous(memory_format=torch.channels_last)


class FastWTConv2d(WTConv2d):
    """:class:`~wavevision.layers.WTConv2d` whose depthwise convolutions read :func:`conv_layout`
    copies; the output comes back in the input's memory format."""

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        return conv_layout(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_format_of(super().forward(x), x)


# torch.fx: the run-time format choice is one graph node.
for _leaf in ("conv_layout", "in_format_of"):
    torch.fx.wrap(_leaf)
