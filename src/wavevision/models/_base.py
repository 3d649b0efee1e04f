"""What every wavevision model shares: timm's model interface around the family's own layers.

``pretrained_cfg`` (alias ``default_cfg``), ``set_grad_checkpointing``, ``group_matcher``,
``no_weight_decay``, the ``features_only`` backbone mode built on
``prune_intermediate_layers`` + ``forward_intermediates``, and the input check, which runs
as one ``torch.fx`` graph node so symbolic tracing works on every model.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn as nn

from ..layers.grad_checkpoint import checkpointing_applies
from ..utils.validate import check_bool, check_choice, check_int
from ._features import OUTPUT_FORMATS, FeatureInfo, default_out_indices

__all__ = ["ModelBase", "batch_norms", "check_global_pool", "check_image", "freeze_batch_norms", "to_output_fmt"]


def batch_norms(module: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers inside ``module`` (any dimension, SyncBatchNorm included)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def freeze_batch_norms(module: nn.Module, *, affine: bool = True, stats: bool = False) -> None:
    """Freeze the BatchNorm layers inside ``module``: ``affine`` their weights and biases
    (``requires_grad=False``, MMCV's ``requires_grad=False`` norm config), ``stats`` their running
    statistics (eval mode; call it again after every ``train()``, MMDetection's ``norm_eval``)."""
    for m in batch_norms(module):
        if affine:
            for p in m.parameters():
                p.requires_grad_(False)
        if stats:
            m.eval()


def check_image(x: torch.Tensor, model: str, in_chans: int, min_size: int = 1, why: str = "") -> None:
    """Refuse what a model cannot take, naming the fix: not a tensor, not 4D, wrong channels, an
    integer dtype, or a side below ``min_size`` (``why`` explains that minimum)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{model} expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        hint = "; add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else ""
        raise ValueError(f"{model} expects a 4D input (batch, channels, height, width), got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != in_chans:
        fix = f"build it with in_chans={x.shape[1]} or convert the images"
        if in_chans == 3 and x.shape[1] == 4:  # RGBA: the alpha channel is no colour
            fix = f"for RGBA images drop the alpha channel (x[:, :3]); otherwise {fix}"
        elif in_chans == 3 and x.shape[1] == 1:
            fix = f"repeat the grey channel to RGB (x.expand(-1, 3, -1, -1)) or {fix}"
        raise ValueError(
            f"{model} was built for {in_chans} input channel(s) but the input has {x.shape[1]} "
            f"(shape {tuple(x.shape)}); {fix}"
        )
    if not x.is_floating_point():
        raise TypeError(f"input must be floating point, got dtype {x.dtype}; convert with x.float() (and scale to [0, 1])")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(
            f"input of {h}x{w} pixels is too small for {model}: the minimum is {min_size}x{min_size}"
            f"{f' ({why})' if why else ''}; resize or pad the images to at least {min_size}x{min_size}"
        )


def to_output_fmt(x: torch.Tensor, output_fmt: str) -> torch.Tensor:
    """A (B, C, H, W) map in ``output_fmt`` (``NCHW`` or ``NHWC``)."""
    return x if output_fmt == "NCHW" else x.permute(0, 2, 3, 1)


def check_global_pool(model: str, global_pool: Any, choices: Sequence[str]) -> str:
    """``global_pool`` if ``model`` supports it; otherwise a ValueError naming the choices."""
    if global_pool not in choices:
        raise ValueError(f"{model} does not support global_pool={global_pool!r}; choose one of "
                         f"{', '.join(repr(c) for c in choices)}")
    return global_pool


class ModelBase(nn.Module):
    """Mixin of the timm interface; families implement the layer-specific methods
    (``forward_intermediates``, ``prune_intermediate_layers``, ``reset_classifier``, ``group_matcher``)."""

    #: The registered record this model was built from (timm's ``pretrained_cfg``, a plain dict).
    pretrained_cfg: dict[str, Any] = {}
    grad_checkpointing: bool = False
    grad_checkpointing_every: int | None = None
    features_only: bool = False
    out_indices: tuple[int, ...] = ()
    feature_info: FeatureInfo
    #: Sizes the segments of ``set_grad_checkpointing(every=None)``: ``(model, n) -> lengths``;
    #: ``None``: two blocks each. :func:`wavevision.accel.accelerate` sets a memory model for WaveMix.
    segment_planner: Callable[[nn.Module, int], Sequence[int] | int] | None = None

    if TYPE_CHECKING:  # the families' signatures, for the type checker only: no fallback at run time

        def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | Sequence[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
        ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]: ...

        def prune_intermediate_layers(
            self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
        ) -> list[int]: ...

        def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None: ...

    @property
    def default_cfg(self) -> dict[str, Any]:
        """Alias of ``pretrained_cfg`` (timm's older name)."""
        return self.pretrained_cfg

    @default_cfg.setter
    def default_cfg(self, cfg: dict[str, Any]) -> None:
        self.pretrained_cfg = cfg

    def set_grad_checkpointing(self, enable: bool = True, every: int | None = None) -> None:
        """Checkpoint activations in training (``torch.utils.checkpoint``): a training step keeps only
        the input of each segment of blocks (and of the stem) and recomputes the rest in backward,
        once per block. Gradients are unchanged (:mod:`wavevision.layers.grad_checkpoint`).

        Args:
            enable: turn checkpointing on or off.
            every: blocks per checkpointed segment. ``None`` (default) lets the family choose:
                accelerated WaveMix models (the default of ``create_model``) size their segments
                from what a block and the head keep (:func:`wavevision.accel.balanced_segments`:
                long segments first and single blocks last, or a few long ones behind a dense
                decoder; the lowest peak in ``benchmarks/grad_checkpointing.py``); others use
                two blocks per segment. ``forward_intermediates`` always checkpoints single blocks.
        """
        self.grad_checkpointing = check_bool("enable", enable)
        self.grad_checkpointing_every = None if every is None else check_int("every", every, min=1)

    def _checkpointing(self) -> bool:
        return checkpointing_applies(self.grad_checkpointing)

    def _segment_lengths(self, n: int) -> Sequence[int] | int:
        """Lengths of the checkpointed segments of ``n`` consecutive blocks (or one length for all)."""
        every = self.grad_checkpointing_every
        return self._default_segments(n) if every is None else every

    def _default_segments(self, n: int) -> Sequence[int] | int:
        """Segment lengths of ``set_grad_checkpointing(every=None)``: the planner's, or two blocks each."""
        planner = self.segment_planner
        return 2 if planner is None else planner(self, n)

    def no_weight_decay(self) -> set[str]:
        """Parameter names to exclude from weight decay beyond biases and norms (none here: no
        position embeddings or learned tokens)."""
        return set()

    def _check_output_fmt(self, output_fmt: str) -> None:
        check_choice("output_fmt", output_fmt, OUTPUT_FORMATS)


    def _require_head(self, what: str) -> None:
        if self.features_only:
            raise RuntimeError(
                f"{what} needs the model's head, but this model was built with features_only=True; "
                "call model(x) for its feature maps, or build it without features_only"
            )

    def as_backbone(self, out_indices: int | Sequence[int] | None = None) -> ModelBase:
        """Turn this model into a ``features_only`` backbone in place: the head and the blocks after
        the last map taken are removed, and ``model(x)`` returns the maps ``out_indices`` picks
        (default: the last four) as a list; ``feature_info`` describes them. Returns the model."""
        if self.features_only:
            raise RuntimeError("this model is already a features_only backbone")
        if out_indices is None:
            out_indices = default_out_indices(len(self.feature_info))
        info = FeatureInfo(self.feature_info)
        take = self.prune_intermediate_layers(out_indices, prune_norm=False, prune_head=True)
        self.features_only = True
        self.out_indices = tuple(take)
        self.feature_info = FeatureInfo(info[i] for i in take)
        return self

    def _features_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = self.forward_intermediates(x, indices=list(self.out_indices), intermediates_only=True)
        return cast("list[torch.Tensor]", maps)
