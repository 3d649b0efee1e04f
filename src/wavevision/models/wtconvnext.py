"""WTConvNeXt: ConvNeXt with its depthwise 7x7 replaced by a WTConv (T, S, B).

Paper: Finder, Amoyal, Treister and Freifeld, "Wavelet Convolutions for Large Receptive
Fields" (ECCV 2024, arXiv 2407.05848); public code ``BGU-CS-VIL/WTConv``
(``wtconvnext/wtconvnext.py``, built from timm's ConvNeXt).

A patchify stem (4x4 conv, stride 4, then a channels-first LayerNorm) and four stages at
strides 4, 8, 16 and 32; stages 2-4 start with a channels-first LayerNorm and a 2x2 stride-2
conv. Each block is ``x + drop_path(gamma * MLP(LN(WTConv(x))))``: a :class:`WTConv2d`
(kernel 5, ``wt_levels`` 5, 4, 3, 2 by stage) where ConvNeXt has its depthwise 7x7, then
LayerNorm and the 4x MLP on channels-last pixels, and a per-channel layer scale ``gamma``
(initialised to 1e-6). The head pools, normalises (LayerNorm) and classifies.

The state dict has the public model's keys, order and shapes (``stem.0``/``stem.1``,
``stages.N.downsample.0``/``.1``, ``stages.N.blocks.M.{conv_dw, norm, mlp.fc1, mlp.fc2,
gamma}``, ``head.norm``, ``head.fc``), the WTConv layers' wavelet filters included (stored as
parameters that are not trained, as the public code does), so its checkpoints load strictly;
the initialisation is the public one (truncated normal of std 0.02 for every conv and
linear layer, zero biases, WTConv scales 1 and 0.1).

Every WTConv level halves its map and the last must still have two samples to split, so a
stage at stride ``s`` with ``L`` levels needs ``s * (2 ** (L - 1) + 1)`` input pixels a side:
96 for the registered models (stage 4: 32 x 3). ``forward_intermediates`` follows timm
1.0.31's ConvNeXt (one map per stage, indices 0-3); the public code, from timm 1.0.7, counted
the stem as index 0 of five.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.drop_path import DropPath
from ..layers.grad_checkpoint import checkpoint_seq
from ..layers.mlp import Mlp
from ..layers.wtconv import WTConv2d, min_wtconv_size
from ..ops.transform import check_wavelet
from ..utils.validate import check_bool, check_float, check_int, check_per_stage
from ._base import ModelBase, check_global_pool, check_image, to_output_fmt
from ._builder import build_model
from ._features import FeatureInfo, feature_take_indices
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model

__all__ = ["LayerNorm2d", "WTConvNeXt", "WTConvNeXtBlock", "WTConvNeXtStage"]

NUM_STAGES = 4
POOL_TYPES = ("avg", "max", "avgmax", "")
_LN_EPS = 1e-6  # timm's LayerNorm / LayerNorm2d default, used throughout ConvNeXt


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map (timm's ``LayerNorm2d``, eps 1e-6)."""

    def __init__(self, num_channels: int, eps: float = _LN_EPS) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class WTConvNeXtBlock(nn.Module):
    """WTConv -> LayerNorm -> Linear (4x) -> GELU -> Linear on channels-last pixels, layer scale, residual.

    Args:
        dim: channels.
        kernel_size: the WTConv's kernel side.
        wt_levels: the WTConv's wavelet levels.
        ls_init_value: initial layer scale (``None``: no ``gamma``).
        drop_path: stochastic-depth probability of the residual branch.
        conv_bias: whether the WTConv's base convolution has a bias.
        mlp_ratio: MLP expansion.
        wavelet: the WTConv's wavelet (its ``wt_type``).
    """

    def __init__(self, dim: int, *, kernel_size: int = 5, wt_levels: int = 0, ls_init_value: float | None = 1e-6,
                 drop_path: float = 0.0, conv_bias: bool = True, mlp_ratio: float = 4.0, wavelet: str = "db1") -> None:
        super().__init__()
        self.conv_dw = WTConv2d(dim, dim, kernel_size=kernel_size, bias=conv_bias, wt_levels=wt_levels, wt_type=wavelet)
        self.norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp = Mlp(dim, int(mlp_ratio * dim))
        self.gamma = nn.Parameter(ls_init_value * torch.ones(dim)) if ls_init_value is not None else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.mlp(self.norm(y)).permute(0, 3, 1, 2)
        if self.gamma is not None:
            y = y.mul(self.gamma.reshape(1, -1, 1, 1))
        return self.drop_path(y) + x


class WTConvNeXtStage(nn.Module):
    """A stage: a downsampling layer (channels-first LayerNorm + 2x2 stride-2 conv; none for
    the first stage) and its blocks (``blocks``, an ``nn.Sequential``)."""

    def __init__(self, in_chs: int, out_chs: int, *, depth: int, stride: int, kernel_size: int, wt_levels: int,
                 drop_path_rates: Sequence[float], ls_init_value: float | None, conv_bias: bool,
                 wavelet: str = "db1") -> None:
        super().__init__()
        if in_chs != out_chs or stride > 1:
            self.downsample: nn.Module = nn.Sequential(
                LayerNorm2d(in_chs),
                nn.Conv2d(in_chs, out_chs, kernel_size=2 if stride > 1 else 1, stride=stride, bias=conv_bias),
            )
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*(
            WTConvNeXtBlock(out_chs, kernel_size=kernel_size, wt_levels=wt_levels, ls_init_value=ls_init_value,
                            drop_path=drop_path_rates[j], conv_bias=conv_bias, wavelet=wavelet) for j in range(depth)
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class NormClassifierHead(nn.Module):
    """Pool -> LayerNorm -> dropout -> Linear (timm's ``NormMlpClassifierHead`` without a hidden layer).

    With ``pool_type=""`` the norm and the classifier act on every position of the map (the
    classifier as a per-pixel linear layer: the same weights as pooled, (B, classes, H, W) out).
    """

    def __init__(self, in_features: int, num_classes: int, pool_type: str = "avg", drop_rate: float = 0.0) -> None:
        super().__init__()
        self.pool_type = pool_type
        self.norm = LayerNorm2d(in_features)
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "avg":
            return F.adaptive_avg_pool2d(x, 1)
        if self.pool_type == "max":
            return F.adaptive_max_pool2d(x, 1)
        if self.pool_type == "avgmax":
            return 0.5 * (F.adaptive_avg_pool2d(x, 1) + F.adaptive_max_pool2d(x, 1))
        return x

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.norm(self._pool(x))
        if self.pool_type:
            x = x.flatten(1)
        x = self.drop(x)
        if pre_logits or isinstance(self.fc, nn.Identity):
            return x
        if self.pool_type:
            return self.fc(x)
        return self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def trunc_normal_(tensor: torch.Tensor, std: float = 0.02, bound: float = 2.0) -> torch.Tensor:
    """Fill ``tensor`` with a normal of mean 0 and ``std`` truncated to +-``bound`` (absolute),
    by the inverse CDF of a uniform draw: timm's ``trunc_normal_``, which the public model uses
    (torch's own now samples by rejection, other numbers from the same seed)."""
    cdf = 0.5 * (1.0 + math.erf(bound / std / math.sqrt(2.0)))  # P(z < bound / std)
    with torch.no_grad():
        return tensor.uniform_(1.0 - 2.0 * cdf, 2.0 * cdf - 1.0).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-bound, bound)


def _init_weights(model: nn.Module, head_init_scale: float) -> None:
    """The public initialisation (timm's ConvNeXt ``_init_weights``): every conv and linear layer's
    weight truncated normal (std 0.02, cut at +-2), biases zero, the head's linear scaled by
    ``head_init_scale``; in module order, so a seeded build draws what the public one draws."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Linear) and "head." in name:
                with torch.no_grad():
                    m.weight.mul_(head_init_scale)
                    m.bias.mul_(head_init_scale)


def _per_stage(name: str, value: Any, *, min_value: int, repeat: bool = False) -> tuple[int, ...]:
    """An int for every stage, each checked (``repeat``: one int stands for all four)."""
    if repeat and isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * NUM_STAGES
    return tuple(check_int(f"{name}[{i}]", v, min=min_value) for i, v in enumerate(check_per_stage(name, value, NUM_STAGES)))


class WTConvNeXt(ModelBase):
    """WTConvNeXt image classifier (and, built with ``features_only``, a four-stage backbone).

    Args:
        num_classes: classifier outputs; 0 returns the pooled, normalised features.
        in_chans: input channels.
        global_pool: ``"avg"`` (the public default), ``"max"``, ``"avgmax"`` or ``""`` (the
            normalised map, and logits at every position).
        depths: blocks per stage.
        dims: channels per stage.
        kernel_sizes: the WTConv kernel side, one for all stages or one per stage.
        wt_levels: the WTConv wavelet levels per stage.
        ls_init_value: initial layer scale of every block (``None``: no layer scale).
        patch_size: side and stride of the stem's patchify conv.
        head_init_scale: factor on the classifier's initial weights and bias.
        conv_bias: biases in the stem, downsampling and WTConv base convolutions.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over all blocks.
        wavelet: the wavelet of every WTConv (its ``wt_type``): ``"db1"`` (Haar, the paper's and the
            released weights') or any discrete PyWavelets name such as ``"db2"`` or ``"sym4"``
            (``pip install 'wavevision[wavelets]'``); the keys stay the same, the stored filters
            take the wavelet's length (so Haar checkpoints do not load into other wavelets).

    Inputs of at least ``min_input_size`` pixels a side (96 for the registered models).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        kernel_sizes: int | Sequence[int] = 5,
        wt_levels: Sequence[int] = (5, 4, 3, 2),
        ls_init_value: float | None = 1e-6,
        patch_size: int = 4,
        head_init_scale: float = 1.0,
        conv_bias: bool = True,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        wavelet: str = "db1",
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, min=0)
        self.in_chans = check_int("in_chans", in_chans, min=1)
        self.global_pool = check_global_pool("WTConvNeXt", global_pool, POOL_TYPES)
        depths_t = _per_stage("depths", depths, min_value=1)
        dims_t = _per_stage("dims", dims, min_value=1)
        kernels = _per_stage("kernel_sizes", kernel_sizes, min_value=1, repeat=True)
        levels = _per_stage("wt_levels", wt_levels, min_value=0)
        if ls_init_value is not None:
            ls_init_value = check_float("ls_init_value", ls_init_value)
        patch_size = check_int("patch_size", patch_size, min=1)
        head_init_scale = check_float("head_init_scale", head_init_scale)
        conv_bias = check_bool("conv_bias", conv_bias)
        self.drop_rate = check_float("drop_rate", drop_rate, min=0.0, lt=1.0)
        drop_path_rate = check_float("drop_path_rate", drop_path_rate, min=0.0, lt=1.0)
        self.wavelet, _ = check_wavelet(wavelet)

        self.depths, self.dims, self.wt_levels = depths_t, dims_t, levels
        self.reductions = tuple(patch_size * 2**i for i in range(NUM_STAGES))
        # Stage i's map is floor(side / reduction_i) pixels: it needs min_wtconv_size(levels_i) of them.
        needs = [r * min_wtconv_size(lv) for r, lv in zip(self.reductions, levels)]
        self.min_input_size = max(needs)
        worst = needs.index(self.min_input_size)
        self._min_size_why = (f"stage {worst + 1} runs at stride {self.reductions[worst]} and its WTConv's "
                              f"{levels[worst]} levels need maps of at least {min_wtconv_size(levels[worst])} pixels")
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_chans, dims_t[0], kernel_size=patch_size, stride=patch_size, bias=conv_bias),
            LayerNorm2d(dims_t[0]),
        )
        rates = [r.tolist() for r in torch.linspace(0, drop_path_rate, sum(depths_t), device="cpu").split(list(depths_t))]
        prev = dims_t[0]
        stages = []
        for i in range(NUM_STAGES):
            stages.append(WTConvNeXtStage(
                prev, dims_t[i], depth=depths_t[i], stride=1 if i == 0 else 2, kernel_size=kernels[i],
                wt_levels=levels[i], drop_path_rates=rates[i], ls_init_value=ls_init_value, conv_bias=conv_bias,
                wavelet=self.wavelet,
            ))
            prev = dims_t[i]
        self.stages = nn.Sequential(*stages)
        self.feature_info = FeatureInfo(
            dict(num_chs=d, reduction=r, module=f"stages.{i}") for i, (d, r) in enumerate(zip(dims_t, self.reductions))
        )
        self.num_features = self.head_hidden_size = dims_t[-1]
        self.head: NormClassifierHead | None = NormClassifierHead(self.num_features, self.num_classes, self.global_pool,
                                                                  self.drop_rate)
        self.head_init_scale = head_init_scale
        _init_weights(self, head_init_scale)

    # ---- the trunk ------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        check_image(x, "WTConvNeXt", self.in_chans, self.min_input_size, self._min_size_why)

    def _run_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Stage ``i``: its downsampling, then its blocks (with checkpointing, in segments)."""
        stage = self.stages[i]
        assert isinstance(stage, WTConvNeXtStage)
        if not self._checkpointing():
            return stage(x)  # a module call: forward hooks on the stage see its output
        blocks = list(stage.blocks)
        return checkpoint_seq(blocks, stage.downsample(x), self._segment_lengths(len(blocks)))

    # ---- timm interface ---------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's map (B, C, H / 32, W / 32), unpooled."""
        self._check_input(x)
        x = self.stem(x)
        for i in range(len(self.stages)):
            x = self._run_stage(i, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, LayerNorm, dropout, classifier; ``pre_logits`` returns the normalised pooled (B, C)."""
        self._require_head("forward_head")
        assert self.head is not None, "_require_head checked it"
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits (B, num_classes); a ``features_only`` backbone returns its maps as a list."""
        if self.features_only:
            return self._features_forward(x)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        self._require_head("get_classifier")
        assert self.head is not None, "_require_head checked it"
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh classifier for ``num_classes`` (0: none, the pooled features), initialised as at
        construction; ``global_pool`` replaces the pooling (``""``: the normalised map)."""
        self._require_head("reset_classifier")
        assert self.head is not None, "_require_head checked it"
        self.num_classes = check_int("num_classes", num_classes, min=0)
        if global_pool is not None:
            self.global_pool = self.head.pool_type = check_global_pool("WTConvNeXt", global_pool, POOL_TYPES)
        fc: nn.Module = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(fc, nn.Linear):
            trunc_normal_(fc.weight, std=0.02)
            nn.init.zeros_(fc.bias)
            with torch.no_grad():
                fc.weight.mul_(self.head_init_scale)
        param = next(self.head.norm.parameters())
        self.head.fc = fc.to(device=param.device, dtype=param.dtype)

    def no_weight_decay(self) -> set[str]:
        """The WTConv scales (``base_scale``, ``wavelet_scale``): the public model's set."""
        return {k for k, _ in self.named_parameters() if "wavelet_scale" in k or "base_scale" in k}

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise learning-rate decay (timm's ConvNeXt format)."""
        if coarse:
            return dict(stem=r"^stem", blocks=r"^stages\.(\d+)")
        return dict(stem=r"^stem", blocks=[(r"^stages\.(\d+)\.downsample", (0,)), (r"^stages\.(\d+)\.blocks\.(\d+)", None)])

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage maps (B, C_i, H / s_i, W / s_i), s_i = 4, 8, 16, 32 (timm's ConvNeXt semantics).

        Args:
            indices: stages to return (0-3, negative counts from the end), or an int n for the
                last n stages; all by default.
            norm: accepted for timm's interface; ConvNeXt has no norm between the last stage
                and the head, so it changes nothing.
            stop_early: run no stage after the last one taken (the final map is then that stage's).
            output_fmt: ``"NCHW"`` or ``"NHWC"`` for the maps.
            intermediates_only: return only the list (implies ``stop_early``) instead of
                (final map, list).
        """
        take, last = feature_take_indices(len(self.stages), indices, what="stage")
        self._check_output_fmt(output_fmt)
        self._check_input(x)
        x = self.stem(x)
        stop = last if stop_early or intermediates_only else len(self.stages) - 1
        maps = []
        for i in range(stop + 1):
            x = self._run_stage(i, x)
            if i in take:
                maps.append(to_output_fmt(x, output_fmt))
        return maps if intermediates_only else (x, maps)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last one ``indices`` takes (and the head with ``prune_head``);
        returns the absolute stage indices taken. ``prune_norm`` changes nothing (no final norm)."""
        take, last = feature_take_indices(len(self.stages), indices, what="stage")
        self.stages = self.stages[: last + 1]
        self.feature_info = FeatureInfo(self.feature_info[: last + 1])
        if prune_head:
            self.head = None
            self.num_classes = 0
        return take

    def _require_head(self, what: str) -> None:
        if self.features_only or self.head is None:
            raise RuntimeError(
                f"{what} needs the classification head, but this model has none (built with features_only=True, "
                "or pruned by prune_intermediate_layers); call forward_intermediates for the stage maps, or build "
                "it without features_only"
            )

    # -- what a detection pyramid takes (models.detection asks the backbone, not its type) --
    def pyramid_indices(self) -> tuple[int, ...]:
        """The four stage outputs (strides 4, 8, 16, 32) a detection pyramid takes."""
        return tuple(range(NUM_STAGES))

    def pyramid_frozen_modules(self, levels: int) -> list[nn.Module]:
        """The stem and stages 1..``levels``: what a detector's ``frozen_stages`` fixes."""
        return [self.stem, *self.stages[:levels]] if levels else []


# torch.fx: the input check is one graph node (WTConv2d's checks and transforms are leaves of their own).
torch.fx.wrap("check_image")


# --------------------------------------------------------------------------------------
# Registered models: the public README's ImageNet-1k results (top-1 at 224, EMA weights, released on
# Google Drive: load them from the file with checkpoint=PATH or pretrained_cfg_overlay=dict(file=PATH)).

_REPO = "https://github.com/BGU-CS-VIL/WTConv"
_PAPER = "Wavelet Convolutions for Large Receptive Fields (ECCV 2024)"
_DRIVE = "https://drive.google.com/file/d/{}/view"


def _cfg(params: int, macs: int, top1: float, drive_id: str, **kwargs: Any) -> PretrainedCfg:
    """A WTConvNeXt record: timm's ConvNeXt data settings (224, crop 0.875, bicubic, ImageNet
    mean/std), the public README's top-1 and checkpoint link, and the exact parameters (the
    wavelet filters included, as the public model counts them) and multiply-accumulates at 224."""
    fields: dict[str, Any] = dict(
        input_size=(3, 224, 224), min_input_size=(3, 96, 96), pool_size=(7, 7), crop_pct=0.875,
        interpolation="bicubic", first_conv="stem.0", classifier="head.fc", license="mit", origin_url=_REPO,
        paper_ids="arXiv:2407.05848", paper_name=_PAPER, dataset="ImageNet-1k", metrics={"top1": top1},
        metrics_source=f"{_REPO} README", params=params, macs=macs, url=_DRIVE.format(drive_id),
        notes=("the released weights are on Google Drive (url), which wavevision does not download: fetch the "
               "file and load it with create_model(name, checkpoint=PATH)",),
    )
    return PretrainedCfg(**{**fields, **kwargs})


default_cfgs = generate_default_cfgs({
    "wtconvnext_tiny.in1k": _cfg(30_595_624, 4_477_980_288, 82.5, "1wMgUUJBAs4Fz2dZoNS7QCk9kMB8MPMtC"),
    "wtconvnext_small.in1k": _cfg(54_448_936, 8_721_340_032, 83.6, "1F5yo1nSbCvUH8lQXTM1pdK4T_W_2PmFQ"),
    "wtconvnext_base.in1k": _cfg(94_225_128, 15_404_899_840, 84.1, "1snpt4L38NB8vIhKRcelylj0guGd0Q7q7"),
})


def _create_wtconvnext(variant: str, cfg: Mapping[str, Any], kwargs: dict[str, Any]) -> WTConvNeXt:
    return build_model(variant, WTConvNeXt, cfg, kwargs)


@register_model
def wtconvnext_tiny(**kwargs: Any) -> WTConvNeXt:
    """WTConvNeXt-T: dims 96/192/384/768, depths 3/3/9/3 (82.5 % top-1 at 224)."""
    return _create_wtconvnext("wtconvnext_tiny", dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)), kwargs)


@register_model
def wtconvnext_small(**kwargs: Any) -> WTConvNeXt:
    """WTConvNeXt-S: dims 96/192/384/768, depths 3/3/27/3 (83.6 % top-1 at 224)."""
    return _create_wtconvnext("wtconvnext_small", dict(depths=(3, 3, 27, 3), dims=(96, 192, 384, 768)), kwargs)


@register_model
def wtconvnext_base(**kwargs: Any) -> WTConvNeXt:
    """WTConvNeXt-B: dims 128/256/512/1024, depths 3/3/27/3 (84.1 % top-1 at 224)."""
    return _create_wtconvnext("wtconvnext_base", dict(depths=(3, 3, 27, 3), dims=(128, 256, 512, 1024)), kwargs)
