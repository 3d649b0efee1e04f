"""Feature maps for dense tasks, shared by every family: which maps to take, and what they are.

Every backbone-capable model has ``feature_info`` (one entry per map it can return: channels,
reduction from the input, the module producing it), ``forward_intermediates`` and
``prune_intermediate_layers`` with timm's semantics, and builds as a backbone with
``features_only=True`` (``out_indices`` choosing the maps). An isotropic model (WaveMix) has
one entry per block, all at the stem's reduction; Wave-ViT has its four stages. A backbone that
feeds a detection pyramid says which four maps (``pyramid_indices()``; :func:`pyramid_taps` for
an isotropic one) and what ``frozen_stages`` fixes (``pyramid_frozen_modules(k)``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..utils.validate import check_int

__all__ = ["OUTPUT_FORMATS", "PYRAMID_LEVELS", "FeatureInfo", "default_out_indices", "feature_take_indices",
           "pyramid_taps"]

OUTPUT_FORMATS = ("NCHW", "NHWC")
# features_only without out_indices returns the last (up to) this many maps, as timm's getter does.
_DEFAULT_MAPS = 4
# Maps a detection pyramid takes from a backbone (strides 4, 8, 16, 32 in the detectors).
PYRAMID_LEVELS = 4


class FeatureInfo(list):
    """timm-style feature description: a list of ``{"num_chs", "reduction", "module"}`` dicts."""

    def __init__(self, entries: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(dict(e, index=e.get("index", i)) for i, e in enumerate(entries))

    def _get(self, key: str, idx: int | Sequence[int] | None) -> Any:
        if idx is None:
            return [f[key] for f in self]
        if isinstance(idx, int):
            return self[idx][key]
        return [self[i][key] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channels of every map (or of map ``idx``)."""
        return self._get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """Input-to-map stride of every map (or of map ``idx``)."""
        return self._get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """The module whose output each map is."""
        return self._get("module", idx)


def feature_take_indices(num: int, indices: int | Sequence[int] | None = None, what: str = "block") -> tuple[list[int], int]:
    """Absolute indices to take among ``num`` maps, sorted and without repeats (the order the
    maps come out in), and the largest (timm's semantics).

    Args:
        num: how many maps the model has.
        indices: None for all, an int n for the last n, or indices (negative count from the end).
        what: the maps' name for messages (``block``, ``stage``).

    Raises:
        ValueError: an int out of 1..num, an empty list; IndexError: an index out of range;
        TypeError: a non-integer index.
    """
    if indices is None:
        indices = num
    if isinstance(indices, bool) or not isinstance(indices, (int, Sequence)) or isinstance(indices, str):
        raise TypeError(f"indices must be None, an int or a sequence of ints, got {indices!r}")
    if isinstance(indices, int):
        if not 1 <= indices <= num:
            raise ValueError(f"indices={indices} asks for the last {indices} {what}s of {num}; choose 1..{num}")
        take = list(range(num - indices, num))
    else:
        take = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"{what} indices must be ints, got {i!r}")
            if not -num <= i < num:
                raise IndexError(f"{what} index {i} out of range for {num} {what}s (valid: {-num}..{num - 1})")
            take.append(i % num)
        if not take:
            raise ValueError(f"indices selects no {what}; give at least one of 0..{num - 1}")
    take = sorted(set(take))
    return take, take[-1]


def default_out_indices(num: int) -> tuple[int, ...]:
    """The maps a backbone returns without ``out_indices``: the last (up to) four."""
    n = min(_DEFAULT_MAPS, num)
    return tuple(range(num - n, num))


def pyramid_taps(depth: int) -> tuple[int, ...]:
    """The blocks of an isotropic backbone whose outputs feed a detection pyramid: after blocks
    ``round(k * depth / 4)`` for k = 1..4 (0-based indices; needs at least four blocks)."""
    if check_int("depth", depth, min=1) < PYRAMID_LEVELS:
        raise ValueError(f"an isotropic backbone needs at least 4 blocks (one per pyramid level), got depth {depth}")
    return tuple(round(k * depth / PYRAMID_LEVELS) - 1 for k in range(1, PYRAMID_LEVELS + 1))
