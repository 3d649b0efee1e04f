"""How long the checkpointed segments of an accelerated WaveMix model are: a memory model.

Blocks are checkpointed in segments (a segment keeps only its input). In backward the
segments are recomputed last to first, and while segment k (counted from the first) is
recomputed, the inputs of segments 0..k are still kept: that phase peaks at about
``k + 1 + kept_ratio * length_k`` block inputs (plus what any block's backward needs), where
``kept_ratio`` is what one block keeps for backward in units of its input (:func:`kept_ratio`).
Before it, the head's backward runs while all m segment inputs are kept: about ``m + head``
(``head``: what the head needs beyond a block's backward, :func:`head_cost`; a classifier's
pooled head needs less, a dense decoder at 2-4x the resolution more). :func:`balanced_segments`
minimises the larger of the two: long segments first, single blocks last (16 WaveMix-192
level-3 blocks: 4 3 3 2 2 1 1), and few long segments behind a large decoder (16 WaveMix-Seg
blocks: 8 8). The estimates assume the lean paths of :mod:`wavevision.accel.lean`; the plain
models use fixed-length segments.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch.nn as nn

from ..layers.wavemix_block import WaveMixBlock
from ..utils.validate import check_float, check_int

__all__ = ["BalancedSegments", "balanced_segments", "head_cost", "kept_ratio"]

# The backward of a dense head needs about this many times the size of the maps it makes more
# than a block's backward (kept maps and their gradients), measured on WaveMixSR x2 and
# WaveMix-Seg (``benchmarks/grad_checkpointing.py``).
_DENSE_HEAD = 1.9
# What a block of another token mixer keeps, in units of its input (a rough default).
_OTHER_BLOCK = 2.0


def kept_ratio(block: nn.Module) -> float:
    """Activations a WaveMix block keeps for backward inside a checkpointed segment (lean path,
    fused residual), in units of the block's input: an estimate from the layer shapes; other
    blocks count as keeping two inputs' worth.

    Per level j (at 1/4^j of the input's area) the lean MLP keeps its input and the 1-byte
    dropout mask (not its GELU input, which a checkpoint rebuilds); levels above 1 keep their
    BatchNorm's input (at 1/4^(j-1)); the output (the residual sum, the next block's input)
    counts once.
    """
    if not isinstance(block, WaveMixBlock):
        return _OTHER_BLOCK
    ratio = 1.0
    mlp: Any
    for j, mlp in enumerate(block.mlps(), 1):
        mask = mlp[0].out_channels / 4 if mlp[2].p > 0 else 0.0
        ratio += (mlp[0].in_channels + mask) / (block.dim * 4**j)
        if j > 1:
            ratio += mlp[5].num_features / (block.dim * 4 ** (j - 1))
    return ratio


def _decoder_cost(decoder: nn.Module, width: int) -> float:
    """:func:`head_cost` of a decoder of transposed convs and a 1x1 classifier, from its maps' size
    in units of the blocks' map (``width`` channels)."""
    maps, area = 0.0, 1.0
    for m in decoder.modules():
        if isinstance(m, nn.ConvTranspose2d):
            area *= m.stride[0] * m.stride[1]
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            maps += m.out_channels * area / width
    return _DENSE_HEAD * maps


def head_cost(model: Any) -> float:
    """What the head's backward needs beyond a block's, in block inputs: nothing for a pooled
    classifier; a dense head (a decoder ``decoder``/``expand``, or per-position logits without
    pooling) keeps each map it makes for the next layer's backward and holds its gradient:
    about 1.9 times the maps' size."""
    decoder = getattr(model, "decoder", None)
    decoder = getattr(model, "expand", None) if decoder is None else decoder
    if isinstance(decoder, nn.Module):  # WaveMixSeg, WaveMixSR
        return _decoder_cost(decoder, model.num_features)
    if getattr(model, "global_pool", "avg"):
        return 0.0
    return _DENSE_HEAD * model.num_classes / model.num_features  # per-position logits


class BalancedSegments:
    """A model's segment lengths from its blocks and head (:func:`balanced_segments`); what
    :func:`~wavevision.accel.accelerate` gives a WaveMix model for ``set_grad_checkpointing(every=None)``."""

    def __call__(self, model: Any, n: int) -> tuple[int, ...]:
        ratios = [kept_ratio(b) for b in model.layers[:n]]
        return balanced_segments(n, sum(ratios) / max(len(ratios), 1), head_cost(model))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BalancedSegments)

    def __hash__(self) -> int:
        return hash(BalancedSegments)


def balanced_segments(n: int, kept_ratio: float, head: float = 0.0) -> tuple[int, ...]:
    """Lengths, first to last, of checkpointed segments of ``n`` blocks with the lowest estimated peak.

    The estimate (module docstring) is ``max(max_k (k + 1 + kept_ratio * length_k), m + head)``
    block inputs for m segments; among the arrangements that reach the lowest, the one with the
    lowest block phase, then the fewest segments (longest first), is returned.

    Args:
        n: number of blocks, >= 1.
        kept_ratio: activations one block keeps for backward, in units of its input (> 0).
        head: what the head's backward needs beyond a block's backward, in block inputs.
    """
    n = check_int("n", n, min=1)
    ratio = round(check_float("kept_ratio", kept_ratio, gt=0.0), 3)
    return _balanced_segments(n, ratio, round(check_float("head", head), 3))


@lru_cache(maxsize=64)
def _balanced_segments(n: int, ratio: float, head: float) -> tuple[int, ...]:
    def fill(peak: float) -> tuple[int, ...] | None:
        """The fewest segments (longest first) whose block phase stays under ``peak``; None if none do."""
        lengths: list[int] = []
        while sum(lengths) < n:
            longest = math.floor((peak - len(lengths) - 1) / ratio + 1e-9)
            if longest < 1:
                return None
            lengths.append(min(longest, n - sum(lengths)))
        return tuple(lengths)

    def block_phase(lengths: tuple[int, ...]) -> float:
        return max(k + 1 + ratio * length for k, length in enumerate(lengths))

    # the block phase's possible values; one segment of n blocks fits under the largest
    peaks = sorted({k + 1 + ratio * length for k in range(n) for length in range(1, n + 1)})
    best: list[tuple[float, float, int, tuple[int, ...]]] = []
    for m in range(1, n + 1):  # the lowest block phase with at most m segments (monotonic in the peak)
        lo, hi = 0, len(peaks) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            fit = fill(peaks[mid])
            lo, hi = (lo, mid) if fit is not None and len(fit) <= m else (mid + 1, hi)
        lengths = fill(peaks[lo])
        assert lengths is not None
        phase = block_phase(lengths)
        best.append((max(phase, len(lengths) + head), phase, len(lengths), lengths))
    return min(best)[3]
