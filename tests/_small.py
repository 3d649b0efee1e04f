"""Small, structurally complete builds of every registered model, for fast parametrised tests.

Every test file that loops over the registered models takes them from :func:`timm_models` and
builds them through :func:`small_model`, so a new model family needs one branch here and nothing
else. The detectors (torchvision models, not timm-interface ones) have their own parametrised
tests in ``tests/test_detection.py``.
"""
from __future__ import annotations

from typing import Any

import torch

import wavevision


def timm_models() -> list[str]:
    """Every registered model with the timm interface: all but the detectors (task ``detection``)."""
    return [n for n in wavevision.list_models() if wavevision.get_entry(n).task != "detection"]


def small_overrides(name: str) -> dict[str, Any]:
    """Overrides that keep the registered structure (stem, level, width, head) with fewer blocks."""
    if name == "mixer_mlp":  # a token MLP has a fixed grid: resample the odd sizes the tests use
        return {"depth": 1, "mixer_kwargs": {"resize": True}}
    vit = {"depths": (1, 1, 1, 1), "embed_dims": (16, 32, 48, 64), "num_heads": (1, 2, 3, 4), "stem_hidden_dim": 8}
    if name.startswith("wave_vit"):  # one block per stage, narrow; stem, strides, heads' layout, aux head kept
        return vit
    if name.startswith("upernet_"):  # the small Wave-ViT backbone, a 32-channel decoder (PPM + FPN layout kept)
        return {"backbone_args": vit, "channels": 32}
    if name.startswith("wavemixsr"):  # blocks run at the output size (x8: 64 times the input's area): narrow them
        return {"depth": 1, "final_dim": 16, "ff_channel": 16}
    return {"depth": 1}


def takes_depth(name: str) -> bool:
    """Whether a family's size is one ``depth`` (isotropic WaveMix, the mixers), not stages (Wave-ViT, UperNet)."""
    return "depth" in small_overrides(name)


def small_model(name: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """``create_model(name)`` with :func:`small_overrides` (then ``overrides``), seeded."""
    torch.manual_seed(seed)
    return wavevision.create_model(name, **{**small_overrides(name), **overrides})
