"""Model EMA: an exponential moving average of the weights, updated after every optimizer step.

:func:`build_ema` uses timm's ``ModelEmaV3`` when timm is installed, else :class:`OwnEma`, the
same update without timm (the core install trains with EMA too): after each step every
floating-point tensor of the state dict, parameters and buffers alike, moves to
``ema + (1 - decay) * (model - ema)``, and integer buffers are copied. The average lives in
``.module``, a copy of the model in eval mode; the engine validates, tests and saves it, and
keeps it in the resumable state.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn

__all__ = ["OwnEma", "build_ema"]


class OwnEma(nn.Module):
    """timm's ``ModelEmaV3`` update at a fixed decay (no warm-up), for installs without timm."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema, live = [], []
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                ema.append(e)
                live.append(m)
            else:
                e.copy_(m)
        if ema:
            torch._foreach_lerp_(ema, live, weight=1.0 - self.decay)


def build_ema(model: nn.Module, decay: float) -> Any:
    """An EMA of ``model`` (an object with ``.module`` and ``.update(model)``): timm's ``ModelEmaV3``
    when timm is installed, else :class:`OwnEma`."""
    try:
        from timm.utils import ModelEmaV3  # optional: the vision extra
    except ImportError:
        return OwnEma(model, decay)
    return ModelEmaV3(model, decay=decay)
