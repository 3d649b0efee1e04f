"""The size policy shared by every model: pad at the bottom/right, run, crop back.

Wavelet pyramids and strided stems need spatial sizes divisible by some factor m
(2^level for a level-L WaveMix block, stem stride x 4 for segmentation). Rather than
failing like the public code, models zero-pad the map at the bottom and right edges to
the next multiple of m, run, and crop dense outputs back to the original size. On sizes
already divisible nothing is padded, so results equal the reference exactly there.

Padding is bounded: a pyramid much deeper than the map (``2**level`` more than
:data:`MAX_PAD_FACTOR` times its side) would pad it to a huge multiple of itself, mostly
zeros, and is refused by :func:`check_pad` with the sizes and the deepest level that fits.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..utils.memory import check_memory, format_bytes

__all__ = ["MAX_PAD_FACTOR", "check_pad", "crop_to", "pad_to_multiple"]

#: The coarsest level of a pyramid may cover at most this many times the map's side.
MAX_PAD_FACTOR = 16
# Above this many bytes of padded map the available memory is checked before padding.
_CHECK_BYTES = 256 * 2**20


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad the last two dims of ``x`` up to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of ``x`` to ``size`` (a no-op when they already match)."""
    if x.shape[-2] == size[0] and x.shape[-1] == size[1]:
        return x
    return x[..., : size[0], : size[1]]


def check_pad(x: torch.Tensor, level: int, *, expansion: float = 1.0, what: str = "a WaveMix block") -> None:
    """Refuse a ``level``-level pyramid of ``x``'s map that padding would blow up.

    Args:
        x: the (B, C, H, W) map about to be padded to a multiple of ``2**level``.
        level: pyramid levels.
        expansion: bytes the pyramid needs per byte of padded map (for the memory check).
        what: the layer, for the message.

    Raises:
        ValueError: ``2**level`` exceeds :data:`MAX_PAD_FACTOR` times the map's longer side.
        MemoryError: the padded pyramid would not fit in the available memory (CPU tensors;
            on an accelerator its allocator reports what does not fit).
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    m = 2**level
    side = max(h, w, 1)
    ph, pw = -(-h // m) * m, -(-w // m) * m
    if m > MAX_PAD_FACTOR * side:
        deepest = int(math.floor(math.log2(MAX_PAD_FACTOR * side)))
        raise ValueError(
            f"level {level} is too deep for the {h}x{w} map of {what}: its pyramid would pad the map to {ph}x{pw} "
            f"({format_bytes(x.numel() / max(h * w, 1) * ph * pw * x.element_size())} of mostly zeros); use "
            f"level <= {deepest} for inputs of this size, or larger inputs"
        )
    need = x.numel() / max(h * w, 1) * ph * pw * x.element_size() * expansion
    if (ph, pw) != (h, w) and need > _CHECK_BYTES and x.device.type == "cpu":  # host memory is what it knows
        check_memory(need, f"a level-{level} pyramid of the {h}x{w} map padded to {ph}x{pw}",
                     "use a smaller level, batch or input")
