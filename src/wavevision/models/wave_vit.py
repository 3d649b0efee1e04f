"""Wave-ViT: the wavelet vision transformer (S, B, L), with token labeling and dense features.

Paper: "Wave-ViT: Unifying Wavelet and Transformers for Visual Representation Learning"
(Yao et al., ECCV 2022, arXiv 2207.04978).

Four stages of (B, N, C) tokens: a conv stem (/4), then a strided conv per stage (/8, /16,
/32). Stages 1-2 use wavelet attention (keys/values from a Haar-downsampled map, the
inverse Haar transform feeding the projection), stages 3-4 standard multi-head attention;
every block's MLP has a depthwise conv on the token grid. After stage 4 a class-attention
block updates a class token (the mean of the tokens), and a LayerNorm precedes the head.

Token labeling (on by default, as in the reference): an auxiliary linear head on every
token; during training MixToken swaps a random box of stage-1 tokens between each sample
and its mirror in the batch (``B-1-i``) and the forward returns a :class:`TokenLabelOutput`
for :class:`wavevision.losses.TokenLabelLoss`; in eval mode the output is
``head(cls) + 0.5 * max over tokens of aux_head(tokens)``. ``token_label=False`` gives a
plain classifier without the auxiliary head.

The state dict has the reference's key names, order and shapes, without its float16 Haar
filter buffers (``*.attn.dwt.w_ll``, ..., ``*.attn.idwt.filters``): the transform here is
computed (``wavevision.ops.haar``, band-major layout) and those buffers are dropped when a
reference checkpoint is loaded (:func:`checkpoint_filter_fn`).
Differences from the reference code, none visible on the sizes it accepts: float32 works
(its float16 buffers break it), MixToken draws from torch's RNG (the reference used NumPy's
global RNG and ``np.int``), and any input of at least 32x32 works through the project's pad
policy (zero-pad at the bottom/right to a multiple of 32, crop dense outputs back).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn as nn

from ..layers.drop_path import DropPath
from ..layers.grad_checkpoint import checkpoint_seq
from ..layers.mlp import DWConvMlp, Mlp
from ..layers.wave_attention import Attention, ClassAttention, WaveAttention
from ..ops.padding import crop_to, pad_to_multiple
from ..ops.transform import DEFAULT_MODE
from ..outputs import Box, TokenLabelOutput, box_area  # the classification task's output type (re-exported)
from ..utils.validate import check_bool, check_float, check_per_stage
from ._base import ModelBase, check_global_pool, check_image, to_output_fmt
from ._builder import build_model, register_checkpoint_filter
from ._features import FeatureInfo, feature_take_indices
from ._pretrained import PretrainedCfg, generate_default_cfgs
from ._registry import register_model

__all__ = ["FeatureInfo", "TokenLabelOutput", "WaveViT", "checkpoint_filter_fn", "sample_mix_box"]

NUM_STAGES = 4
# MixToken's box is drawn in units of POOLING_SCALE x POOLING_SCALE stage-1 tokens: one
# stage-4 token (stride 32 / stride 4), so the box can be undone on the final grid.
POOLING_SCALE = 8
_LN_EPS = 1e-6  # the reference's norm_layer; its stem/downsample/key-value norms keep 1e-5


def sample_mix_box(grid_size: tuple[int, int], beta: float = 1.0) -> Box:
    """A MixToken/CutMix box on an (h, w) grid, drawn with torch's global RNG.

    The kept fraction ``lam`` ~ Beta(beta, beta); the box has sides ``int(side * sqrt(1 - lam))``
    centred on a uniform random token and clipped to the grid (as in the reference).
    Returns ``(top, left, bottom, right)``.
    """
    h, w = int(grid_size[0]), int(grid_size[1])
    lam = float(torch.distributions.Beta(float(beta), float(beta)).sample())
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    top, bottom = min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h)
    left, right = min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w)
    return top, left, bottom, right


def swap_box(tokens: torch.Tensor, grid_size: tuple[int, int], box: Box, scale: int = 1) -> torch.Tensor:
    """Replace the box (in units of ``scale`` tokens) of sample i by that of sample B-1-i.

    ``tokens``: (B, h * w, C) on a row-major (h, w) grid. Applying it twice is the identity,
    which is how the auxiliary logits are put back after MixToken.
    """
    if box_area(box) == 0:
        return tokens
    top, left, bottom, right = (v * scale for v in box)
    b, n, c = tokens.shape
    grid = tokens.reshape(b, grid_size[0], grid_size[1], c)
    out = grid.clone()
    out[:, top:bottom, left:right] = grid.flip(0)[:, top:bottom, left:right]
    return out.reshape(b, n, c)


def _mix_tokens(tokens: torch.Tensor, size: tuple[int, int], beta: float) -> tuple[torch.Tensor, Box]:
    """MixToken on stage-1 tokens: a random box (in units of POOLING_SCALE tokens) swapped with the
    mirrored sample; returns the tokens and the box on the final grid."""
    box = sample_mix_box((size[0] // POOLING_SCALE, size[1] // POOLING_SCALE), beta)
    return swap_box(tokens, size, box, POOLING_SCALE), box


def _tokens_to_map(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    b, n, c = x.shape
    return x.transpose(1, 2).reshape(b, c, size[0], size[1])


# --------------------------------------------------------------------------------------
# Building blocks


class Stem(nn.Module):
    """conv7x7 s2 (no bias), BN, ReLU, 2 x (conv3x3, BN, ReLU), conv3x3 s2, LayerNorm: /4 tokens."""

    def __init__(self, in_chans: int, hidden_dim: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_chans, hidden_dim, 7, 2, 3, bias=False), nn.BatchNorm2d(hidden_dim), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, bias=False), nn.BatchNorm2d(hidden_dim), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, bias=False), nn.BatchNorm2d(hidden_dim), nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(hidden_dim, dim, 3, 2, 1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(self.conv(x))
        size = (x.shape[-2], x.shape[-1])
        return self.norm(x.flatten(2).transpose(1, 2)), size


class Downsample(nn.Module):
    """conv3x3 s2 between stages, then LayerNorm: a (B, C, H, W) map to (B, H/2 * W/2, C') tokens."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, dim, 3, 2, 1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        size = (x.shape[-2], x.shape[-1])
        return self.norm(x.flatten(2).transpose(1, 2)), size


class Block(nn.Module):
    """Pre-norm transformer block: wavelet or standard attention, then the depthwise-conv MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, wavelet: str | None, drop_path: float,
                 mode: str = DEFAULT_MODE) -> None:
        """``wavelet``: the wavelet attention's wavelet; ``None`` gives standard attention."""
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = (WaveAttention(dim, num_heads, sr_ratio, wavelet=wavelet, mode=mode) if wavelet is not None
                     else Attention(dim, num_heads))
        self.mlp = DWConvMlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), size))
        return x + self.drop_path(self.mlp(self.norm2(x), size))


class ClassBlock(nn.Module):
    """Class-attention block: updates only the first (class) token; the others pass through."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = ClassAttention(dim, num_heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x[:, :1] + self.attn(self.norm1(x))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)


def _init_weights(m: nn.Module) -> None:
    """The reference's initialisation: normal(0, 0.02) linears, fan-out normal convs.

    The reference calls ``trunc_normal_(std=.02)``, whose bounds are absolute (+-2, i.e. 100
    standard deviations): the same distribution as a plain normal, which is several times cheaper.
    """
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _stage_tuple(name: str, value: Any, kind: type = int) -> tuple[Any, ...]:
    out = []
    for v in check_per_stage(name, value, NUM_STAGES):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        if kind is int:
            ok = ok and float(v).is_integer()
        if not ok:
            what = "positive integers" if kind is int else "positive numbers"
            raise ValueError(f"{name} must be {what}, got {value!r}")
        out.append(int(v) if kind is int else float(v))
    return tuple(out)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# --------------------------------------------------------------------------------------
# The model


class WaveViT(ModelBase):
    """Wave-ViT image classifier (and, built with ``features_only``, a four-stage backbone).

    Args:
        num_classes: classifier outputs; 0 returns the pooled features (no aux head).
        in_chans: input channels.
        stem_hidden_dim: width of the stem's three convs.
        embed_dims: token width per stage (stages 1-2 need multiples of 4).
        depths: blocks per stage.
        num_heads: attention heads per stage (each must divide its embed dim).
        mlp_ratios: MLP expansion per stage.
        sr_ratios: key/value stride of the wavelet attention in stages 1-2 (1 = none);
            stages 3-4 use standard attention and take 1.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over all blocks.
        drop_rate: dropout before the head (0 in the reference).
        global_pool: ``"token"`` (the class token, the reference), ``"avg"`` (mean of the
            stage-4 tokens) or ``""`` (the head on every token).
        token_label: build the auxiliary per-token head (token labeling); in training the
            forward returns a :class:`TokenLabelOutput`, in eval the combined logits.
        mix_token: apply MixToken in training (only with ``token_label``).
        wavelet: the wavelet attention's transform (stages 1-2): ``"haar"`` (the reference, fast
            path) or a discrete PyWavelets name such as ``"db2"``, ``"sym4"``, ``"bior2.2"``
            (same parameters).
        mode: padding mode of wavelets longer than Haar (default ``"periodization"``; see
            :mod:`wavevision.ops.transform`).

    Inputs of at least ``min_input_size`` (32) pixels a side; sizes that are not multiples of
    ``size_multiple`` (32) are zero-padded at the bottom/right (dense outputs cropped back).
    """

    norm4: nn.Module  # the last stage's norm (__init__ sets norm1..norm4 with setattr)

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_hidden_dim: int = 32,
        embed_dims: Sequence[int] = (64, 128, 320, 448),
        depths: Sequence[int] = (3, 4, 6, 3),
        num_heads: Sequence[int] = (2, 4, 10, 14),
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        sr_ratios: Sequence[int] = (4, 2, 1, 1),
        drop_path_rate: float = 0.0,
        drop_rate: float = 0.0,
        global_pool: str = "token",
        token_label: bool = True,
        mix_token: bool = True,
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__()
        _check_int("num_classes", num_classes, 0)
        _check_int("in_chans", in_chans, 1)
        _check_int("stem_hidden_dim", stem_hidden_dim, 1)
        dims, depths, heads, ratios, srs = _check_stages(embed_dims, depths, num_heads, mlp_ratios, sr_ratios)
        if not isinstance(drop_path_rate, (int, float)) or not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")

        self.in_chans = in_chans
        self.num_classes = num_classes
        self.embed_dims = dims
        self.num_features = self.head_hidden_size = dims[-1]
        self.global_pool = check_global_pool("WaveViT", global_pool, POOL_TYPES)
        self.token_label = check_bool("token_label", token_label)
        self.mix_token = check_bool("mix_token", mix_token)
        self.token_label_training = True
        self.mix_beta = 1.0
        # Stage 4 has stride 32; stage-1 keys/values stride 4 (stem) x 2 (Haar) x sr, stage 2's 8 x 2 x sr.
        self.size_multiple = math.lcm(4 * 2 ** (NUM_STAGES - 1), 8 * srs[0], 16 * srs[1])
        self.min_input_size = self.size_multiple
        self.num_stages = NUM_STAGES
        self._reductions = tuple(4 * 2**i for i in range(NUM_STAGES))
        self.feature_info = FeatureInfo(
            dict(num_chs=d, reduction=r, module=f"norm{i + 1}") for i, (d, r) in enumerate(zip(dims, self._reductions))
        )

        rates = torch.linspace(0, float(drop_path_rate), sum(depths), device="cpu").tolist()
        start = 0
        for i in range(NUM_STAGES):
            embed = Stem(in_chans, stem_hidden_dim, dims[0]) if i == 0 else Downsample(dims[i - 1], dims[i])
            blocks = nn.ModuleList(
                Block(dims[i], heads[i], ratios[i], srs[i], wavelet=wavelet if i < 2 else None, drop_path=rates[start + j],
                      mode=mode) for j in range(depths[i])
            )
            start += depths[i]
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dims[i], eps=_LN_EPS))
        self.post_network: nn.ModuleList | None = nn.ModuleList([ClassBlock(dims[-1], heads[-1], ratios[-1])])
        self.head_drop: nn.Module = nn.Dropout(check_float("drop_rate", drop_rate, min=0.0, lt=1.0))
        self.head: nn.Module | None = None
        self.aux_head: nn.Module | None = None
        self._set_heads(num_classes)
        self.apply(_init_weights)

    def _set_heads(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.aux_head = nn.Linear(self.num_features, num_classes) if self.token_label and num_classes > 0 else None

    # ---- input checks and the shared trunk ------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        check_image(x, "WaveViT", self.in_chans, self.min_input_size,
                    "one token at stride 32 and one stage-1 key/value token")

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        self._check_input(x)
        size = (x.shape[-2], x.shape[-1])
        return pad_to_multiple(x, self.size_multiple)[0], size

    def _run_blocks(self, blocks: nn.ModuleList, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """A stage's blocks; with checkpointing, in segments (:meth:`set_grad_checkpointing`)."""
        steps = [partial(blk, size=size) for blk in blocks]
        if self._checkpointing():
            return checkpoint_seq(steps, tokens, self._segment_lengths(len(steps)), modules=blocks)
        for step in steps:
            tokens = step(tokens)
        return tokens

    def _encode(
        self, x: torch.Tensor, *, take: Sequence[int] = (), last: int = NUM_STAGES - 1, mix: bool = False
    ) -> tuple[torch.Tensor, tuple[int, int], list[torch.Tensor], Box]:
        """Stages 1..last+1 on a padded image.

        Returns the last stage's tokens (before its norm), their grid size, the normalised
        (B, C, h, w) maps of the stages in ``take``, and the MixToken box (zero area if none).
        """
        maps: list[torch.Tensor] = []
        box: Box = (0, 0, 0, 0)
        feat = x
        for i in range(last + 1):
            tokens, size = getattr(self, f"patch_embed{i + 1}")(feat)
            if i == 0 and mix:
                tokens, box = _mix_tokens(tokens, size, self.mix_beta)
            tokens = self._run_blocks(getattr(self, f"block{i + 1}"), tokens, size)
            if i < last or i in take:
                # Stages 1-3 end with their norm (the reference's too); stage 4's norm comes
                # after the class block, so its map here is norm4 of its tokens.
                feat = _tokens_to_map(getattr(self, f"norm{i + 1}")(tokens), size)
                if i in take:
                    maps.append(feat)
        return tokens, size, maps, box

    def _post(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class token (mean of tokens) + class-attention block + final norm: (B, 1 + N, C)."""
        assert self.post_network is not None, "callers check _require_head first"
        x = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        for blk in self.post_network:
            x = blk(x)
        return self.norm4(x)

    # ---- timm interface ---------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled features: (B, 1 + N, C), the class token first, then the N stage-4 tokens, normalised."""
        self._require_head("forward_features")
        x, _ = self._prepare(x)
        return self._post(self._encode(x)[0])

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool == "token":
            return x[:, 0]
        if self.global_pool == "avg":
            return x[:, 1:].mean(dim=1)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pooled tokens -> head; with the class token and token labeling, plus ``0.5 * max over
        tokens of aux_head`` (the reference's inference output). ``pre_logits`` returns the pooled (B, C)."""
        self._require_head("forward_head")
        pooled = self.head_drop(self._pool(x))
        if pre_logits:
            return pooled
        assert self.head is not None, "_require_head checked it"
        out = self.head(pooled)
        if self.aux_head is not None and self.global_pool:
            out = out + 0.5 * self.aux_head(x[:, 1:]).amax(dim=1)
        return out

    def get_classifier(self) -> nn.Module:
        self._require_head("get_classifier")
        assert self.head is not None, "_require_head checked it"
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head (and the aux head with token labeling); 0 returns the pooled features
        (with ``global_pool=""``, every normalised token)."""
        self._require_head("reset_classifier")
        _check_int("num_classes", num_classes, 0)
        if global_pool is not None:
            self.global_pool = check_global_pool("WaveViT", global_pool, POOL_TYPES)
        self.num_classes = num_classes
        self._set_heads(num_classes)
        for m in (self.head, self.aux_head):
            if m is not None:
                m.apply(_init_weights)

    def set_token_label_training(self, enable: bool = True) -> None:
        """With token labeling, whether the training forward returns a :class:`TokenLabelOutput`
        (for :class:`wavevision.losses.TokenLabelLoss`; the default) or, disabled, the combined
        logits as in eval (what a plain cross-entropy loop such as timm's ``train.py`` expects;
        no MixToken then)."""
        self.token_label_training = check_bool("enable", enable)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise learning-rate decay (timm's format): the stem, then stages or blocks."""
        if coarse:
            return dict(stem=r"^patch_embed1\.", blocks=r"^(?:patch_embed|block|norm)(\d+)")
        return dict(stem=r"^patch_embed1\.", blocks=[(r"^block(\d+)\.(\d+)", None), (r"^(?:patch_embed|norm)(\d+)", (99999,))])

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Normalised stage maps (B, C_i, ceil(H / s_i), ceil(W / s_i)), s_i = 4, 8, 16, 32, for dense tasks.

        Args:
            indices: stages to return (0-3, negative counts from the end, in stage order),
                or an int n for the last n stages; all four by default.
            norm: accepted for timm's interface; every map already ends with its stage's norm.
            stop_early: run no stage after the last one taken (then the final output is not
                computed: needs ``intermediates_only``).
            output_fmt: ``"NCHW"`` or ``"NHWC"`` for the maps.
            intermediates_only: return only the list (the trunk stops after the last stage
                asked for) instead of (``forward_features`` output, list).
        """
        take, last = feature_take_indices(self.num_stages, indices, what="stage")
        self._check_output_fmt(output_fmt)
        if not intermediates_only:
            if stop_early:
                raise ValueError("stop_early=True skips the final stages, so it needs intermediates_only=True")
            self._require_head("forward_intermediates(intermediates_only=False)")
        x, (h, w) = self._prepare(x)
        tokens, _, maps, _ = self._encode(x, take=take, last=last if intermediates_only else self.num_stages - 1)
        maps = [to_output_fmt(crop_to(m, (-(-h // self._reductions[i]), -(-w // self._reductions[i]))), output_fmt)
                for m, i in zip(maps, take)]
        return maps if intermediates_only else (self._post(tokens), maps)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last one ``indices`` takes (and, with ``prune_head``, the class
        block and heads); returns the absolute stage indices taken. ``prune_norm`` changes nothing:
        each kept stage's norm makes its map."""
        take, last = feature_take_indices(self.num_stages, indices, what="stage")
        for i in range(last + 1, self.num_stages):
            for part in ("patch_embed", "block", "norm"):
                delattr(self, f"{part}{i + 1}")
        self.num_stages = last + 1
        self.feature_info = FeatureInfo(self.feature_info[: last + 1])
        if prune_head:
            self.post_network, self.head, self.aux_head = None, None, None
            self.head_drop = nn.Identity()
        return take

    # -- what a detection pyramid takes (models.detection asks the backbone, not its type) --
    def pyramid_indices(self) -> tuple[int, ...]:
        """The four stage outputs (strides 4, 8, 16, 32) a detection pyramid takes."""
        return tuple(range(NUM_STAGES))

    def pyramid_frozen_modules(self, levels: int) -> list[nn.Module]:
        """The modules of stages 1..``levels`` (stem, blocks, norm): what a detector's ``frozen_stages`` fixes."""
        return [getattr(self, f"{p}{i + 1}") for i in range(levels) for p in ("patch_embed", "block", "norm")]

    def _require_head(self, what: str) -> None:
        if self.features_only or self.post_network is None:
            raise RuntimeError(
                f"{what} needs the classification head, but this model has none (built with features_only=True, "
                "or pruned by prune_intermediate_layers); call forward_intermediates for the stage maps, or build "
                "it without features_only"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | TokenLabelOutput | list[torch.Tensor]:
        """Logits (B, num_classes); see the class docstring for training with token labeling and features_only."""
        if self.features_only:
            return self._features_forward(x)
        if not (self.training and self.aux_head is not None and self.token_label_training and self.global_pool == "token"):
            return self.forward_head(self.forward_features(x))
        x, _ = self._prepare(x)
        tokens, size, _, box = self._encode(x, mix=self.mix_token)
        feats = self._post(tokens)
        assert self.head is not None, "an aux head means the model has its heads"
        aux = swap_box(self.aux_head(feats[:, 1:]), size, box)  # undo MixToken on the dense logits
        return TokenLabelOutput(self.head(self.head_drop(feats[:, 0])), aux, box, size)


POOL_TYPES = ("token", "avg", "")


def _check_stages(embed_dims: Any, depths: Any, num_heads: Any, mlp_ratios: Any, sr_ratios: Any) -> tuple[tuple[Any, ...], ...]:
    """The per-stage settings as tuples, each value checked (divisibility by heads, multiples of 4, ...)."""
    dims = _stage_tuple("embed_dims", embed_dims)
    depths = _stage_tuple("depths", depths)
    heads = _stage_tuple("num_heads", num_heads)
    ratios = _stage_tuple("mlp_ratios", mlp_ratios, float)
    srs = _stage_tuple("sr_ratios", sr_ratios)
    if srs[2:] != (1, 1):
        raise ValueError(f"sr_ratios of stages 3-4 must be 1 (they use standard attention over all tokens), got {tuple(sr_ratios)}")
    for i, (d, h) in enumerate(zip(dims, heads)):
        if d % h:
            raise ValueError(
                f"embed_dims[{i}]={d} is not divisible by num_heads[{i}]={h}; pick a head count that divides the dim"
            )
        if i < 2 and d % 4:
            raise ValueError(f"embed_dims[{i}]={d} must be a multiple of 4 (wavelet attention reduces it to dim/4 for the Haar transform)")
    return dims, depths, heads, ratios, srs


# torch.fx: the input check, padding, cropping and MixToken's random box are single graph nodes.
for _leaf in ("check_image", "pad_to_multiple", "crop_to", "_mix_tokens", "swap_box"):
    torch.fx.wrap(_leaf)


# --------------------------------------------------------------------------------------
# Official checkpoints: module names equal the reference's; the float16 Haar filters it stores in
# every wavelet-attention layer are recomputed here, so its checkpoint filter drops them.

_REFERENCE_BUFFERS = (".attn.dwt.w_ll", ".attn.dwt.w_lh", ".attn.dwt.w_hl", ".attn.dwt.w_hh", ".attn.idwt.filters")


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """A reference Wave-ViT state dict in wavevision's layout: its recomputed Haar filter buffers dropped."""
    return {k: v for k, v in state_dict.items() if not k.endswith(_REFERENCE_BUFFERS)}


register_checkpoint_filter(WaveViT, checkpoint_filter_fn)

_REPO = "https://github.com/YehLi/ImageNetModel"
_PAPER = "Wave-ViT: Unifying Wavelet and Transformers for Visual Representation Learning (ECCV 2022)"
_COMMON: dict[str, Any] = dict(mlp_ratios=(8, 8, 4, 4), sr_ratios=(4, 2, 1, 1))


def _cfg(params: int, top1: float, macs: int | None = None, size: int = 224, **kwargs: Any) -> PretrainedCfg:
    """A Wave-ViT record: the reference's data settings (timm's ViT defaults: bicubic, crop 0.9,
    ImageNet mean/std), its first conv and both heads, the paper's top-1, and the exact
    parameters and multiply-accumulates of this implementation at ``size`` (within 0.05 % of the
    reference code's; the paper's "FLOPs" are multiply-accumulates)."""
    fields: dict[str, Any] = dict(
        input_size=(3, size, size), min_input_size=(3, 32, 32), pool_size=(size // 32, size // 32), crop_pct=0.9,
        first_conv="patch_embed1.conv.0", classifier=("head", "aux_head"), origin_url=_REPO, paper_ids="arXiv:2207.04978",
        paper_name=_PAPER, dataset="ImageNet-1k", metrics={"top1": top1}, metrics_source=_PAPER, params=params, macs=macs,
    )
    return PretrainedCfg(**{**fields, **kwargs})


def _at_384(params: int, top1: float, macs: int, paper_macs: float) -> PretrainedCfg:
    note = f"fine-tuned at 384x384 in the paper ({paper_macs} G multiply-accumulates there)"
    return _cfg(params, top1, macs, size=384, crop_pct=1.0, notes=(note,))


default_cfgs = generate_default_cfgs({
    "wave_vit_s.in1k": _cfg(22_690_176, 83.9, 4_621_269_632),
    "wave_vit_s.in1k_384": _at_384(22_690_176, 85.0, 15_012_938_112, 15.1),
    "wave_vit_b.in1k": _cfg(33_516_128, 84.8, 7_166_483_456),
    "wave_vit_b.in1k_384": _at_384(33_516_128, 85.6, 23_336_948_736, 23.4),
    "wave_vit_l.in1k": _cfg(57_474_504, 85.5, 14_706_430_976),
    "wave_vit_l.in1k_384": _at_384(57_474_504, 86.3, 47_288_226_816, 47.5),
})


def _create_wave_vit(variant: str, cfg: dict[str, Any], kwargs: dict[str, Any]) -> WaveViT:
    return build_model(variant, WaveViT, {**_COMMON, **cfg}, kwargs)


@register_model
def wave_vit_s(**kwargs: Any) -> WaveViT:
    """Wave-ViT-S: dims 64/128/320/448, depths 3/4/6/3, heads 2/4/10/14 (83.9 % top-1 at 224)."""
    cfg = dict(stem_hidden_dim=32, embed_dims=(64, 128, 320, 448), depths=(3, 4, 6, 3), num_heads=(2, 4, 10, 14))
    return _create_wave_vit("wave_vit_s", cfg, kwargs)


@register_model
def wave_vit_b(**kwargs: Any) -> WaveViT:
    """Wave-ViT-B: dims 64/128/320/512, depths 3/4/12/3, heads 2/4/10/16 (84.8 % top-1 at 224)."""
    cfg = dict(stem_hidden_dim=64, embed_dims=(64, 128, 320, 512), depths=(3, 4, 12, 3), num_heads=(2, 4, 10, 16))
    return _create_wave_vit("wave_vit_b", cfg, kwargs)


@register_model
def wave_vit_l(**kwargs: Any) -> WaveViT:
    """Wave-ViT-L: dims 96/192/384/512, depths 3/6/18/3, heads 3/6/12/16 (85.5 % top-1 at 224)."""
    cfg = dict(stem_hidden_dim=64, embed_dims=(96, 192, 384, 512), depths=(3, 6, 18, 3), num_heads=(3, 6, 12, 16))
    return _create_wave_vit("wave_vit_l", cfg, kwargs)
