"""Tensor kernels the CPU fast paths share: the 1x1 convolution as a batched matrix product
(and its gradients) and the 16-bit dropout mask."""
from __future__ import annotations

import torch

__all__ = ["keep_mask", "pointwise", "pointwise_grads"]


def pointwise(d: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """1x1 convolution of a contiguous NCHW tensor as one batched matrix product."""
    n, c, h, w = d.shape
    o = weight.shape[0]
    w2 = weight.view(o, c).expand(n, -1, -1)
    d3 = d.view(n, c, h * w)
    if bias is None:
        return torch.bmm(w2, d3).view(n, o, h, w)
    return torch.baddbmm(bias.view(1, -1, 1).expand(n, -1, h * w), w2, d3).view(n, o, h, w)


def pointwise_grads(g: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, need_x: bool, need_w: bool, need_b: bool):
    """Gradients of :func:`pointwise` (input, weight, bias) from the output gradient ``g``."""
    n, c, hh, ww = x.shape
    o = weight.shape[0]
    g3 = g.reshape(n, o, hh * ww)
    grad_w = torch.bmm(g3, x.view(n, c, hh * ww).transpose(1, 2)).sum(0).view_as(weight) if need_w else None
    grad_b = g3.sum((0, 2)) if need_b else None
    grad_x = torch.bmm(weight.view(o, c).t().expand(n, -1, -1), g3).view(n, c, hh, ww) if need_x else None
    return grad_x, grad_w, grad_b


def keep_mask(x: torch.Tensor, levels: int) -> torch.Tensor:
    """0/1 uint8 mask shaped and strided like ``x``: 1 where 16 fresh random bits clear ``levels``/65536.

    uint8 rather than bool: multiplying a float tensor by it is about twice as fast on CPU
    (and ``masked_fill`` / ``where`` with a random mask are slower still)."""
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
    bits = words.view(torch.int16)[:n]
    dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
    bits = bits.as_strided(x.shape, x.stride()) if dense else bits.view(x.shape)
    return (bits >= levels - 32768).view(torch.uint8)
