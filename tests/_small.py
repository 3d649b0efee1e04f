"""Small, structurally complete builds of every registered model, for fast parametrised tests.

Every test file that loops over the registered models takes them from :func:`timm_models` and
builds them through :func:`small_model`. The overrides come from a table keyed by the family the
registry reports (``get_entry(name).family``, the module registering the model), so a new model
family needs one entry here and nothing else. The detectors (torchvision models, not
timm-interface ones) have their own parametrised tests in ``tests/test_detection.py``.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch

import wavevision

# One block per stage, narrow; stem, strides, heads' layout and aux head kept.
_VIT = {"depths": (1, 1, 1, 1), "embed_dims": (16, 32, 48, 64), "num_heads": (1, 2, 3, 4), "stem_hidden_dim": 8}
# Overrides that keep each family's registered structure (stem, level, width, head) with fewer blocks.
BY_FAMILY: dict[str, dict[str, Any]] = {
    "wavemix": {"depth": 1},
    "ablation": {"depth": 1},
    "wave_vit": _VIT,
    "upernet": {"backbone_args": _VIT, "channels": 32},  # the small Wave-ViT backbone, a 32-channel decoder
    "wavemixsr": {"depth": 1, "final_dim": 16, "ff_channel": 16},  # blocks run at the output size (x8: 64x the area)
    "wtconvnext": {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)},  # wt_levels kept: inputs of at least 96 px
}
# Single models that need more than their family's overrides.
BY_MODEL: dict[str, dict[str, Any]] = {
    "mixer_mlp": {"depth": 1, "mixer_kwargs": {"resize": True}},  # a token MLP has a fixed grid: resample odd sizes
    # the family's backbone_args are Wave-ViT's: these take the small WTConvNeXt (inputs of at least 96 px)
    **{f"upernet_wtconvnext_{size}": {"backbone_args": {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)},
                                      "channels": 32} for size in ("tiny", "small", "base")},
}


def timm_models() -> list[str]:
    """Every registered model with the timm interface: all but the detectors (task ``detection``)."""
    return [n for n in wavevision.list_models() if wavevision.get_entry(n).task != "detection"]


def small_overrides(name: str) -> dict[str, Any]:
    """Overrides that keep the registered structure (stem, level, width, head) with fewer blocks."""
    if name in BY_MODEL:
        return dict(BY_MODEL[name])
    family = wavevision.get_entry(name).family
    if family not in BY_FAMILY:
        raise KeyError(f"no small test build for family {family!r} (model {name!r}): add it to tests/_small.py BY_FAMILY")
    return dict(BY_FAMILY[family])


def takes_depth(name: str) -> bool:
    """Whether a family's size is one ``depth`` (isotropic WaveMix, the mixers), not stages (Wave-ViT, UperNet)."""
    return "depth" in small_overrides(name)


def small_model(name: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """``create_model(name)`` with :func:`small_overrides` (then ``overrides``), seeded."""
    torch.manual_seed(seed)
    return wavevision.create_model(name, **{**small_overrides(name), **overrides})


def _build_key(name: str) -> tuple:
    """What makes a small build itself: class, module repr (mixers, dropouts, levels), state-dict
    keys and shapes, and the recorded overrides; built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = small_model(name)
    shapes = tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())
    return type(model), repr(model), shapes, repr(sorted(model.model_kwargs.items()))


@functools.cache
def _small_build_groups(names: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    groups: dict[tuple, list[str]] = {}
    for name in names:
        groups.setdefault(_build_key(name), []).append(name)
    return tuple(tuple(g) for g in groups.values())


def small_build_groups(names: Iterable[str]) -> list[list[str]]:
    """``names`` grouped by identical small builds (:func:`small_model`), in registry order."""
    return [list(g) for g in _small_build_groups(tuple(names))]


def distinct_small_builds(names: Iterable[str], prefer: Iterable[str] = ()) -> list[str]:
    """One name of each group of identical small builds among ``names``: the first in ``prefer``
    (the fast subset's models), else the first registered one; in registry order.

    The small overrides replace exactly what tells some registered variants apart (Wave-ViT S/B/L:
    widths, depths, heads; WTConvNeXt T/S/B: depths and widths; WaveMix presets: depth), so their
    small builds are one module: the tests parametrised over the small builds run it once.
    Tests of each registered default or record keep every name.
    ``tests/test_slow_marker.py`` checks that every dropped name's build equals the kept one's.
    """
    preferred = set(prefer)
    return [next((n for n in g if n in preferred), g[0]) for g in _small_build_groups(tuple(names))]
