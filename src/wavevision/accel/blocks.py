"""Fast subclasses of the WaveMix modules (same submodules, same state dict) for the CPU step.

* :class:`LeanMlp`: a WaveMix MLP (``nn.Sequential`` of 1x1 conv, GELU, dropout, 1x1 conv,
  upsample, BatchNorm) whose training forward keeps fewer activations (:func:`~.lean.lean_mlp`);
* :class:`FastWaveMixBlock`: the block on the lean path, which also makes the model's residual
  sum itself (:meth:`FastWaveMixBlock.add_residual`, the *fused residual*: the last BatchNorm's
  input is not kept, the next block keeps the sum anyway), and hands CPU inference outputs back
  in the input's memory format;
* :class:`LeanPatchifyStem`: the patchify stem whose final BatchNorm trains on the lean path.

Each falls back to the plain modules where the lean paths do not apply (:func:`~.lean.lean_enabled`:
CUDA, autocast, tracing, ``torch.compile``, hooks).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..layers.layout import add_residual, in_format_of
from ..layers.stems import PatchifyStem
from ..layers.wavemix_block import WaveMixBlock
from ..ops.padding import crop_to
from .lean import lean_batch_norm, lean_enabled, lean_mlp

__all__ = ["FastWaveMixBlock", "LeanMlp", "LeanPatchifyStem"]


class LeanMlp(nn.Sequential):
    """A WaveMix MLP (six modules) whose training forward keeps fewer activations (:func:`~.lean.lean_mlp`)."""

    #: Set ``False`` on an instance to run the modules as written.
    lean: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.lean and torch.is_grad_enabled()):  # inference: nothing is kept anyway
            return super().forward(x)
        return self[5](lean_mlp(x, self))


def _run_mlp(mlp: nn.Module, x: torch.Tensor, lean: bool, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``mlp(x)`` (plus ``residual``); on the lean path the MLP and its final BatchNorm with
    the residual save fewer activations."""
    if not (lean and isinstance(mlp, LeanMlp) and mlp.lean and not (mlp._forward_hooks or mlp._forward_pre_hooks)):
        y = mlp(x)
        return y if residual is None else residual + y  # the residual's memory format (the upsample's may differ)
    if residual is not None:  # the MLP, its BatchNorm and the sum in one lean step
        return lean_mlp(x, mlp, residual=residual)
    return mlp[5](lean_mlp(x, mlp))


class FastWaveMixBlock(WaveMixBlock):
    """:class:`~wavevision.layers.WaveMixBlock` on the lean training path, with the fused residual."""

    #: Set ``False`` on an instance to run the modules as written (still the fast modules).
    lean: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mix(x, None)

    def add_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x + self(x)``: in a CPU training step the sum comes from the lean level-1 MLP, which
        does not keep the last BatchNorm's input for backward (the next block keeps the sum)."""
        if self._forward_hooks or self._forward_pre_hooks:  # hooks expect the block's own output
            return x + self(x)
        return self._mix(x, x)

    def _mix(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        lean = self.lean and lean_enabled(x)
        coeffs, mlps, size = self.pyramid(x)
        # the sum in the level-1 MLP where its output needs no crop
        fused_sum = residual is not None and lean and tuple(2 * n for n in coeffs[0].shape[-2:]) == tuple(size)
        y = coeffs[-1]
        for j in range(self.level - 1, -1, -1):
            if j < self.level - 1:
                y = torch.cat([coeffs[j], y], dim=1)
            y = _run_mlp(mlps[j], y, lean, residual if fused_sum and j == 0 else None)
        if fused_sum:
            return y
        y = crop_to(y, size)
        if residual is None:  # the input's memory format, as from every module
            return in_format_of(y, x)
        return add_residual(y, residual)


class LeanPatchifyStem(PatchifyStem):
    """The patchify stem whose final BatchNorm trains without keeping its input (the first block keeps its output)."""

    lean: bool = True

    def _tail(self, y: torch.Tensor) -> torch.Tensor:
        rest = list(self)[3:]
        if self.lean and len(rest) == 2:  # GELU, BatchNorm
            return lean_batch_norm(rest[0](y), rest[1])
        return super()._tail(y)


# torch.fx: run-time choices and size checks are single graph nodes (wavevision.ops._fx).
for _leaf in ("crop_to", "in_format_of", "add_residual"):
    torch.fx.wrap(_leaf)
