"""WaveMixSR and WaveMixSR-V2: the WaveMix authors' super-resolution models.

Papers: "WaveMixSR: Resource-efficient Neural Network for Image Super-resolution" (WACV 2024,
arXiv 2307.00430) and "WaveMixSR-V2: Enhancing Super-resolution with Higher Efficiency"
(arXiv 2409.10582); code: github.com/pranavphoenix/WaveMixSR.
Registered as ``wavemixsr_v1_x2`` (:class:`WaveMixSRV1`) and ``wavemixsr_v2_x2/x4/x8``
(:class:`WaveMixSRV2`); the WaveMix paper's own super-resolution head is another model
(``wavemix_paper_sr*``, :class:`~wavevision.models.wavemix.WaveMixPaperSR`).

Both work in YCbCr: the luma Y goes through the network, the chroma Cb/Cr is only
bicubic-upsampled. An x2 *stage* is ``path1`` (bicubic x2, 3x3 conv to C/2, 3x3 conv to C),
``depth`` residual WaveMix blocks at the upsampled size, and ``final`` (3x3 conv to C/2, 1x1
conv to Y). WaveMixSR is one stage of level-1 WaveMix blocks (transposed-conv upsample), with the
public ``wavemixsr/model.py`` state-dict layout (``path1``, ``layers``, ``final``), so the
released ``bsd100_2x_y_*.pth`` files load strictly. WaveMixSR-V2 replaces each block's
transposed conv by PixelShuffle(2) and a 3x3 conv, and stacks x2 stages for x4 and x8
(``SR_blocks.<stage>.*``, the public ``WaveMixSRV2.py`` names).

Where the public V2 file contradicts the paper, the paper is followed: its stages build the
V1 ``Level1Waveblock`` (with ``ff_channel`` left at 16) instead of the new block, and it stacks
``sr / 2`` stages (4 for x8); here each stage uses the V2 block (whose second 1x1 conv must give
4C channels for PixelShuffle to return C) and x8 is 3 stages. The block count per stage is the
file's (2); no V2 weights are released.

Colour handling (``color``): ``"rgb"`` (default) takes RGB in [0, 1] and returns RGB, converting
with the full-range BT.601 matrix the authors trained with (kornia's ``rgb_to_ycbcr``; see
:mod:`wavevision.ops.color`); ``"ycbcr"`` takes and returns full-range YCbCr, exactly the public
models' interface; ``in_chans=1`` super-resolves a single channel as luma. Outputs are not
clamped. Any input size works (a block pads its reduced map to even size and crops back).

timm's interface: ``forward_features`` returns the last block's map with the upsampled Cb/Cr in
its last two channels (the head needs them: ``forward_head(forward_features(x)) == forward(x)``),
so ``num_features`` is C + 2 for colour inputs; ``forward_intermediates`` gives one such map per
block (at 2, 4, 8 times the input size by stage, ``feature_info`` reductions 1/2, 1/4, 1/8);
``num_classes`` is the output channels of the luma head (1: Y, recombined with the chroma;
another count returns the head's channels as they are, without colour handling).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Protocol, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import WaveMixBlock
from ..layers.grad_checkpoint import checkpoint_seq
from ..layers.wavemix_block import residual_step
from ..ops.color import rgb_to_ycbcr, ycbcr_to_rgb
from ..ops.haar import haar_dwt2
from ..ops.padding import crop_to, pad_to_multiple
from ..utils.validate import check_choice, check_float, check_int
from ._base import ModelBase, check_global_pool, check_image, to_output_fmt
from ._builder import CheckpointMismatchError, build_model
from ._deprecated import renamed_attributes
from ._features import FeatureInfo, feature_take_indices
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model, register_model_deprecations

__all__ = ["SRStage", "WaveMixSRV1", "WaveMixSRV2", "WaveMixSRV2Block", "check_sr_checkpoint"]

COLORS = ("rgb", "ycbcr")
V2_SCALES = (2, 4, 8)
IntermediatesOut = list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]


class WaveMixSRV2Block(nn.Module):
    """The WaveMixSR-V2 token mixer: 1x1 conv to C/4, a level-1 Haar DWT (C channels at half size),
    then ``Conv1x1(C, C*mult) -> GELU -> Dropout -> Conv1x1(C*mult, F) -> PixelShuffle(2) ->
    Conv3x3(F/4, C) -> BatchNorm`` with ``F = ff_channel``, 4C in the paper (PixelShuffle then
    returns C channels; a narrower F is this code's generalisation). The model adds the residual.
    Odd sizes: the reduced map is zero-padded at the bottom/right to even size and the output
    cropped back.

    Args:
        dim: channels C (a multiple of 4).
        mult: hidden expansion of the MLP.
        ff_channel: channels before PixelShuffle (a multiple of 4; ``None``: 4C).
        dropout: dropout after the GELU.
    """

    def __init__(self, *, dim: int, mult: int = 1, ff_channel: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        check_int("final_dim", dim, min=4)
        if dim % 4:
            raise ValueError(f"final_dim must be a multiple of 4 (the block reduces to final_dim/4 channels before "
                             f"the 4-band Haar transform), got {dim}")
        check_int("mult", mult, min=1)
        dropout = check_float("dropout", dropout, min=0.0, lt=1.0)
        ff = 4 * dim if ff_channel is None else check_int("ff_channel", ff_channel, min=4)
        if ff % 4:
            raise ValueError(f"ff_channel must be a multiple of 4 (PixelShuffle(2) folds 4 channels into one), got {ff}")
        self.dim = dim
        self.feedforward = nn.Sequential(
            nn.Conv2d(dim, dim * mult, 1), nn.GELU(), nn.Dropout(dropout), nn.Conv2d(dim * mult, ff, 1),
            nn.PixelShuffle(2), nn.Conv2d(ff // 4, dim, 3, padding=1), nn.BatchNorm2d(dim),
        )
        self.reduction = nn.Conv2d(dim, dim // 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, size = pad_to_multiple(self.reduction(x), 2)
        return crop_to(self.feedforward(haar_dwt2(r, layout="wavemix")), size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _path1(dim: int) -> nn.Sequential:
    """Bicubic x2, then 3x3 convs 1 -> C/2 -> C (the public ``path1``)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False),
                         nn.Conv2d(1, dim // 2, 3, padding=1), nn.Conv2d(dim // 2, dim, 3, padding=1))


def _final(dim: int, out_chans: int) -> nn.Sequential:
    """3x3 conv C -> C/2, then the 1x1 head (``out_chans`` outputs, none for 0: pre-logits)."""
    head = nn.Conv2d(dim // 2, out_chans, 1) if out_chans > 0 else nn.Identity()
    return nn.Sequential(nn.Conv2d(dim, dim // 2, 3, padding=1), head)


class _Stage(Protocol):
    """What a x2 stage has: an :class:`SRStage`, or a :class:`WaveMixSRV1` (one stage) itself."""

    layers: nn.ModuleList
    final: nn.Module  # nn.Sequential(3x3 conv, head); nn.Identity once pruned (prune_intermediate_layers)
    path1: nn.Module


class SRStage(nn.Module):
    """One x2 stage of WaveMixSR-V2: ``path1``, residual ``layers``, ``final`` (module docstring)."""

    layers: nn.ModuleList
    final: nn.Module
    path1: nn.Module

    def __init__(self, blocks: Sequence[nn.Module], dim: int, out_chans: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(blocks)
        self.final = _final(dim, out_chans)
        self.path1 = _path1(dim)


def _upsample2(c: torch.Tensor | None) -> torch.Tensor | None:
    """The chroma's bicubic x2 (the public ``path2``); ``None`` stays ``None``."""
    return None if c is None else F.interpolate(c, scale_factor=2, mode="bicubic", align_corners=False)


def _with_chroma(f: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return f if c is None else torch.cat([f, c.to(f.dtype)], dim=1)


class _LumaSR(ModelBase):
    """What WaveMixSR and WaveMixSR-V2 share: colour handling, the stages' forward, timm's interface."""

    in_chans: int
    scale: int
    color: str

    def _setup(self, *, dim: int, in_chans: int, num_classes: int, color: str, global_pool: str) -> None:
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 3 (RGB or YCbCr images) or 1 (a single luma channel), got {in_chans!r}")
        check_int("num_classes", num_classes, min=0)
        check_global_pool(type(self).__name__, global_pool, ("",))
        self.in_chans, self.num_classes = in_chans, num_classes
        self.color = check_choice("color", color, COLORS)
        self.dim = dim
        self.num_features = dim + (2 if in_chans == 3 else 0)
        self.head_hidden_size = dim // 2

    # -- structure -----------------------------------------------------------------------
    def _stages(self) -> list[_Stage]:
        """The x2 stages in order (each with ``path1``, ``layers``, ``final``)."""
        raise NotImplementedError

    def _stage_prefix(self, s: int) -> str:
        raise NotImplementedError

    def _block_positions(self) -> list[tuple[int, int]]:
        """``(stage, block)`` of every block, in running order (the intermediates' indices)."""
        return [(s, i) for s, st in enumerate(self._stages()) for i in range(len(st.layers))]

    def _set_feature_info(self, drop_path_rate: float) -> None:
        """``feature_info`` and the blocks' stochastic-depth rates (rising linearly to ``drop_path_rate``)."""
        rate, n = check_float("drop_path_rate", drop_path_rate, min=0.0, lt=1.0), len(self._block_positions())
        self.drop_path_rates = tuple(rate * k / max(n - 1, 1) for k in range(n))
        self.feature_info = FeatureInfo(
            dict(num_chs=self.num_features, reduction=1 / 2 ** (s + 1), module=f"{self._stage_prefix(s)}layers.{i}")
            for s, i in self._block_positions()
        )

    # -- forward pieces ------------------------------------------------------------------
    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input -> (luma, chroma or None), checking it first."""
        check_image(x, type(self).__name__, self.in_chans)
        if self.in_chans == 1:
            return x, None
        ycc = rgb_to_ycbcr(x, full_range=True) if self.color == "rgb" else x
        return ycc[:, :1], ycc[:, 1:]

    def _block(self, k: int, block: nn.Module, f: torch.Tensor) -> torch.Tensor:
        """Block ``k`` (running index) with its residual; checkpointed when checkpointing applies."""
        p = self.drop_path_rates[k] if self.training and k < len(self.drop_path_rates) else 0.0
        if self._checkpointing():
            return checkpoint_seq([partial(residual_step, block, drop_prob=p)], f, modules=[block])
        return residual_step(block, f, p)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """All stages but the last one's head: the last block's (B, C, sH, sW) map, with the
        bicubic Cb/Cr appended for colour inputs (B, C + 2, sH, sW)."""
        y, c = self._split(x)
        stages, k = self._stages(), 0
        for s, stage in enumerate(stages):
            f = stage.path1(y)
            for block in stage.layers:
                f, k = self._block(k, block, f), k + 1
            c = _upsample2(c)
            if s < len(stages) - 1:
                y = stage.final(f)
        return _with_chroma(f, c)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The last stage's ``final``; with the luma head (``num_classes=1``) and colour input, the
        super-resolved Y joined with the chroma and converted back to the input's colour space."""
        f, c = (x[:, :-2], x[:, -2:]) if self.in_chans == 3 else (x, None)
        final = cast(nn.Sequential, self._stages()[-1].final)
        h = final[0](f)
        if pre_logits:
            return h
        y = final[1](h)
        if c is None or self.num_classes != 1:
            return y
        out = torch.cat([y, c.to(y.dtype)], dim=1)
        return ycbcr_to_rgb(out, full_range=True) if self.color == "rgb" else out

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self._features_forward(x)
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> IntermediatesOut:
        """The map after each selected block (with the chroma, as ``forward_features``), numbered
        over all stages (timm's semantics; ``norm`` changes nothing: there is no final norm)."""
        positions = self._block_positions()
        take, last = feature_take_indices(len(positions), indices)
        self._check_output_fmt(output_fmt)
        stop = last if stop_early or intermediates_only else len(positions) - 1
        y, c = self._split(x)
        stages, maps, k = self._stages(), [], 0
        for s, stage in enumerate(stages[: positions[stop][0] + 1]):
            f, c = stage.path1(y), _upsample2(c)
            for block in stage.layers[: positions[stop][1] + 1 if s == positions[stop][0] else None]:
                f = self._block(k, block, f)
                if k in take:
                    maps.append(to_output_fmt(_with_chroma(f, c), output_fmt))
                k += 1
            if s < positions[stop][0]:
                y = stage.final(f)
        return maps if intermediates_only else (_with_chroma(f, c), maps)

    # -- heads -----------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return cast(nn.Sequential, self._stages()[-1].final)[1]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new 1x1 head of ``num_classes`` outputs (1: luma, with colour handling); 0 returns the C/2 pre-logits."""
        check_int("num_classes", num_classes, min=0)
        if global_pool is not None:
            check_global_pool(type(self).__name__, global_pool, ("",))
        self.num_classes = num_classes
        final = cast(nn.Sequential, self._stages()[-1].final)
        final[1] = nn.Conv2d(self.dim // 2, num_classes, 1) if num_classes > 0 else nn.Identity()

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the blocks (and stages) after the last map ``indices`` takes, and the last kept
        stage's ``final`` with ``prune_head``; returns the absolute indices taken."""
        positions = self._block_positions()
        take, last = feature_take_indices(len(positions), indices)
        s, i = positions[last]
        self._keep_stages(s + 1)
        stage = self._stages()[-1]
        stage.layers = stage.layers[: i + 1]
        self.feature_info = FeatureInfo(self.feature_info[: last + 1])
        if prune_head:
            stage.final = nn.Identity()
        return take

    def _keep_stages(self, n: int) -> None:
        """Keep the first ``n`` stages (one-stage models have nothing to drop)."""

    def check_checkpoint(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Name a checkpoint of another super-resolution layout (before the generic key diff)."""
        check_sr_checkpoint(self, state_dict)


class WaveMixSRV1(_LumaSR):
    """WaveMixSR (WACV 2024): one x2 stage of level-1 WaveMix blocks on Y (public layout:
    ``path1``, ``layers``, ``final``). The released configuration is depth 4, mult 1,
    ff_channel 144, final_dim 144, dropout 0.3 (1,704,385 parameters).

    Args:
        depth: WaveMix blocks.
        mult: MLP expansion of each block.
        ff_channel: channels before each block's transposed-conv upsample.
        final_dim: block width C (a multiple of 4).
        dropout: dropout inside the blocks' MLPs.
        scale: the upscaling factor; only 2 (WaveMixSR-V2 does x4 and x8).
        in_chans: 3 (RGB or YCbCr, see ``color``) or 1 (a luma channel).
        color: ``"rgb"`` (RGB in and out) or ``"ycbcr"`` (full-range YCbCr, the public interface).
        num_classes: outputs of the luma head (module docstring).
        global_pool: only ``""`` (no pooling).
        drop_path_rate: stochastic depth of the blocks' residual branches, rising linearly to this.
    """

    layers: nn.ModuleList
    final: nn.Module
    path1: nn.Module

    def __init__(self, *, depth: int = 4, mult: int = 1, ff_channel: int = 144, final_dim: int = 144,
                 dropout: float = 0.3, scale: int = 2, in_chans: int = 3, color: str = "rgb", num_classes: int = 1,
                 global_pool: str = "", drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if scale != 2:
            raise ValueError(f"WaveMixSR is an x2 model, got scale={scale!r}; for x4 or x8 use wavemixsr_v2_x4 or "
                             "wavemixsr_v2_x8 (stacked x2 stages)")
        check_int("depth", depth, min=1)
        self.scale = 2
        self._setup(dim=final_dim, in_chans=in_chans, num_classes=num_classes, color=color, global_pool=global_pool)
        self.layers = nn.ModuleList(
            WaveMixBlock(dim=final_dim, level=1, mult=mult, ff_channel=ff_channel, dropout=dropout) for _ in range(depth)
        )
        self.final = _final(final_dim, num_classes)
        self.path1 = _path1(final_dim)
        self._set_feature_info(drop_path_rate)

    def _stages(self) -> list[_Stage]:
        return [self]

    def _stage_prefix(self, s: int) -> str:
        return ""

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Layer-decay groups (timm's format): ``path1``, one group per block, the head last."""
        return dict(stem=r"^path1", blocks=r"^layers\.(\d+)" if coarse else [(r"^layers\.(\d+)", None)])


class WaveMixSRV2(_LumaSR):
    """WaveMixSR-V2: ``log2(scale)`` x2 stages (``SR_blocks``) of :class:`WaveMixSRV2Block` on Y.

    Args:
        scale: 2, 4 or 8.
        depth: V2 blocks per stage.
        mult: MLP expansion of each block.
        ff_channel: channels before each block's PixelShuffle (``None``: 4 * final_dim, the paper).
        final_dim: block width C (a multiple of 4).
        dropout: dropout inside the blocks' MLPs.
        in_chans, color, num_classes, global_pool, drop_path_rate: as :class:`WaveMixSRV1` (over all stages' blocks).
    """

    def __init__(self, *, scale: int = 2, depth: int = 2, mult: int = 1, ff_channel: int | None = None,
                 final_dim: int = 144, dropout: float = 0.3,
                 in_chans: int = 3, color: str = "rgb", num_classes: int = 1, global_pool: str = "",
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if scale not in V2_SCALES or isinstance(scale, bool):
            raise ValueError(f"WaveMixSR-V2 stacks x2 stages: scale must be one of {V2_SCALES}, got {scale!r}")
        check_int("depth", depth, min=1)
        self.scale = scale
        self._setup(dim=final_dim, in_chans=in_chans, num_classes=num_classes, color=color, global_pool=global_pool)
        n = scale.bit_length() - 1
        self.SR_blocks = nn.ModuleList(
            SRStage([WaveMixSRV2Block(dim=final_dim, mult=mult, ff_channel=ff_channel, dropout=dropout) for _ in range(depth)], final_dim,
                    num_classes if s == n - 1 else 1)
            for s in range(n)
        )
        self._set_feature_info(drop_path_rate)

    def _stages(self) -> list[_Stage]:
        return [cast(SRStage, stage) for stage in self.SR_blocks]

    def _stage_prefix(self, s: int) -> str:
        return f"SR_blocks.{s}."

    def _keep_stages(self, n: int) -> None:
        self.SR_blocks = self.SR_blocks[:n]

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Layer-decay groups (timm's format): the first ``path1``, then per stage its blocks and its ``final``."""
        blocks = [(r"^SR_blocks\.(\d+)\.path1", (0,)), (r"^SR_blocks\.(\d+)\.layers\.(\d+)", None),
                  (r"^SR_blocks\.(\d+)\.final", (99999,))]
        return dict(stem=r"^SR_blocks\.0\.path1", blocks=r"^SR_blocks\.(\d+)" if coarse else blocks)


# torch.fx: the input check and the colour conversions are single graph nodes.
for _leaf in ("check_image", "rgb_to_ycbcr", "ycbcr_to_rgb", "pad_to_multiple", "crop_to", "haar_dwt2"):
    torch.fx.wrap(_leaf)


# --------------------------------------------------------------------------------------
# Checkpoints of another layout


def _layout_of(keys: Sequence[str]) -> str | None:
    """Which super-resolution layout a state dict's keys are, in words with the model to build."""
    if any(k.startswith("SR_blocks.") for k in keys):
        stages = 1 + max(int(k.split(".")[1]) for k in keys if k.startswith("SR_blocks."))
        v1 = any(".layers.0.feedforward.4.weight" in k for k in keys)
        if v1:  # the public V2 file's stages of V1 blocks: no wavevision model has that layout
            return f"the public WaveMixSRV2.py layout with V1 blocks ({stages} stage(s)), which the V2 paper does not describe"
        return f"a WaveMixSR-V2 x{2 ** stages} checkpoint; build wavemixsr_v2_x{2 ** stages}"
    if any(k.startswith("path1.") for k in keys) and any(k.startswith("final.") for k in keys):
        return "a WaveMixSR (WACV 2024) x2 checkpoint; build wavemixsr_v1_x2"
    if any(k.startswith("expand.") for k in keys) and any(k.startswith("conv.") for k in keys):
        return "a wavemix.sisr checkpoint (conv/layers/expand); build wavemix_paper_sr or wavemix_paper_sr_144_4_x2"
    return None


def check_sr_checkpoint(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointMismatchError` naming the layout when ``state_dict`` is another
    super-resolution layout than ``model``'s (WaveMixSR, WaveMixSR-V2 with another scale, wavemix.sisr)."""
    own, theirs = _layout_of(list(model.state_dict())), _layout_of(list(state_dict))
    if theirs is None or theirs == own:
        return
    name = getattr(model, "model_name", type(model).__name__)
    raise CheckpointMismatchError(f"this checkpoint does not fit {name!r}: it is {theirs}")


# --------------------------------------------------------------------------------------
# Pretrained configurations (tests/test_pretrained_cfg.py recomputes params and MACs)

_REPO = "https://github.com/pranavphoenix/WaveMixSR"
_V1_PAPER = "WaveMixSR: Resource-efficient Neural Network for Image Super-resolution (WACV 2024)"
_V2_PAPER = "WaveMixSR-V2: Enhancing Super-resolution with Higher Efficiency (arXiv 2409.10582)"
_RAW: dict[str, Any] = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear", crop_pct=1.0)
_COLOR = "RGB in and out; the network sees Y of full-range BT.601 YCbCr, Cb/Cr are bicubic-upsampled"
_PROTOCOL = ("the authors' figure: Y of full-range YCbCr (kornia), torchmetrics PSNR; wavevision's protocol "
             "(studio-range Y, scale-pixel border crop) reads about 1.3 dB higher for the same errors")


def _sr_cfg(scale: int, first: str, classifier: str, params: int, macs: int, **kw: Any) -> PretrainedCfg:
    return PretrainedCfg(task="super_resolution", input_size=(3, 64, 64), pool_size=(64 * scale, 64 * scale),
                         num_classes=1, first_conv=first, classifier=classifier, license="mit", origin_url=_REPO,
                         params=params, macs=macs, scale=scale, color_space=_COLOR, **_RAW, **kw)


def _v1(weights: str, psnr: float, trained: str) -> PretrainedCfg:
    return _sr_cfg(2, "path1.1", "final.1", 1_704_385, 9_524_662_272, paper_name=_V1_PAPER, paper_ids=("arXiv:2307.00430",),
                   dataset="BSD100 x2", metrics={"psnr": psnr}, metrics_source=f"{_REPO} (saved_model_weights/{weights})",
                   description=f"WaveMixSR x2 (RGB in/out, Y through the network), trained on {trained}",
                   notes=(f"weights: {_REPO}/blob/main/saved_model_weights/{weights}; not hosted by wavevision: "
                          "create_model('wavemixsr_v1_x2', checkpoint=PATH)", _PROTOCOL))


def _v2(scale: int, params: int, macs: int) -> PretrainedCfg:
    last = (scale.bit_length() - 2)
    return _sr_cfg(scale, "SR_blocks.0.path1.1", f"SR_blocks.{last}.final.1", params, macs, paper_name=_V2_PAPER,
                   paper_ids=("arXiv:2409.10582",),
                   description=f"WaveMixSR-V2 x{scale}: {last + 1} x2 stage(s) of 2 PixelShuffle WaveMix blocks (C=144)",
                   notes=("no released weights", "follows the paper where the public WaveMixSRV2.py differs "
                          "(module docstring of wavevision.models.wavemixsr)"))


default_cfgs = generate_default_cfgs({
    "wavemixsr_v1_x2.div2k": _v1("bsd100_2x_y_div2k_33.08.pth", 33.08, "DIV2K"),
    "wavemixsr_v1_x2.df2k": _v1("bsd100_2x_y_df2k_33.2.pth", 33.2, "DF2K"),
    "wavemixsr_v2_x2": _v2(2, 780_985, 10_204_139_520),
    "wavemixsr_v2_x4": _v2(4, 1_561_970, 51_020_402_688),
    "wavemixsr_v2_x8": _v2(8, 2_342_955, 214_285_455_360),
})


# --------------------------------------------------------------------------------------
# Builders

_V1_DEFAULTS: dict[str, Any] = dict(depth=4, mult=1, ff_channel=144, final_dim=144, dropout=0.3)
_V2_DEFAULTS: dict[str, Any] = dict(depth=2, mult=1, final_dim=144, dropout=0.3)


def _v2_model(name: str, scale: int, kwargs: dict[str, Any]) -> WaveMixSRV2:
    if kwargs.get("scale", scale) != scale:
        raise ValueError(f"{name} is built for x{scale}, got scale={kwargs['scale']!r}; use "
                         f"wavemixsr_v2_x{kwargs['scale']} for another factor")
    return build_model(name, WaveMixSRV2, {**_V2_DEFAULTS, "scale": scale}, kwargs)


@register_model
def wavemixsr_v1_x2(**kwargs: Any) -> WaveMixSRV1:
    """WaveMixSR x2 (WACV 2024): 4 level-1 WaveMix blocks of width 144 on Y, the released configuration."""
    return build_model("wavemixsr_v1_x2", WaveMixSRV1, _V1_DEFAULTS, kwargs)


@register_model
def wavemixsr_v2_x2(**kwargs: Any) -> WaveMixSRV2:
    """WaveMixSR-V2 x2: one stage of 2 PixelShuffle WaveMix blocks of width 144 on Y."""
    return _v2_model("wavemixsr_v2_x2", 2, kwargs)


@register_model
def wavemixsr_v2_x4(**kwargs: Any) -> WaveMixSRV2:
    """WaveMixSR-V2 x4: two stacked x2 stages."""
    return _v2_model("wavemixsr_v2_x4", 4, kwargs)


@register_model
def wavemixsr_v2_x8(**kwargs: Any) -> WaveMixSRV2:
    """WaveMixSR-V2 x8: three stacked x2 stages (the public file would stack four)."""
    return _v2_model("wavemixsr_v2_x8", 8, kwargs)


# Names before issue 21 (the WaveMixSR paper's model was ``WaveMixSRY`` / ``wavemixsr_x2``): warn once, then work.
register_model_deprecations({"wavemixsr_x2": "wavemixsr_v1_x2"})
__getattr__ = renamed_attributes(__name__, {"WaveMixSRY": "WaveMixSRV1"})
