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
reference checkpoint is loaded (:func:`wavevision.convert_official_state_dict`).
Differences from the reference code, none visible on the sizes it accepts: float32 works
(its float16 buffers break it), MixToken draws from torch's RNG (the reference used NumPy's
global RNG and ``np.int``), and any input of at least 32x32 works through the project's pad
policy (zero-pad at the bottom/right to a multiple of 32, crop dense outputs back).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..layers.drop_path import DropPath
from ..layers.mlp import DWConvMlp, Mlp
from ..layers.wave_attention import Attention, ClassAttention, WaveAttention
from ..ops.padding import crop_to, pad_to_multiple
from ._builder import build_model
from ._registry import register_model
from .wavemix import _WaveMixBase

__all__ = ["FeatureInfo", "TokenLabelOutput", "WaveViT", "sample_mix_box"]

NUM_STAGES = 4
# MixToken's box is drawn in units of POOLING_SCALE x POOLING_SCALE stage-1 tokens: one
# stage-4 token (stride 32 / stride 4), so the box can be undone on the final grid.
POOLING_SCALE = 8
_LN_EPS = 1e-6  # the reference's norm_layer; its stem/downsample/key-value norms keep 1e-5
Box = Tuple[int, int, int, int]


class TokenLabelOutput(NamedTuple):
    """What a token-labeling Wave-ViT returns in training mode.

    Attributes:
        logits: (B, num_classes) class-token logits.
        aux_logits: (B, N, num_classes) logits of the N = h * w final tokens (row-major),
            with MixToken undone: entry (i, j) always predicts sample i's own content at
            token j, so dense targets need no mixing.
        box: ``(top, left, bottom, right)`` of the MixToken box on the final (h, w) grid:
            rows ``top:bottom`` and columns ``left:right`` of sample i came from sample
            ``B-1-i``. Zero area when nothing was mixed. The class target must be mixed
            with weight ``1 - area / N`` (``TokenLabelLoss`` does it).
        grid_size: (h, w) of the final token grid.
    """

    logits: torch.Tensor
    aux_logits: torch.Tensor
    box: Box
    grid_size: Tuple[int, int]


class FeatureInfo(list):
    """timm-style feature description: a list of ``{"num_chs", "reduction", "module"}`` dicts."""

    def channels(self) -> List[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> List[int]:
        return [f["reduction"] for f in self]


def sample_mix_box(grid_size: Tuple[int, int], beta: float = 1.0) -> Box:
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


def box_area(box: Box) -> int:
    top, left, bottom, right = box
    return max(bottom - top, 0) * max(right - left, 0)


def swap_box(tokens: torch.Tensor, grid_size: Tuple[int, int], box: Box, scale: int = 1) -> torch.Tensor:
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


def _tokens_to_map(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.proj(self.conv(x))
        size = (x.shape[-2], x.shape[-1])
        return self.norm(x.flatten(2).transpose(1, 2)), size


class Downsample(nn.Module):
    """conv3x3 s2 between stages, then LayerNorm: a (B, C, H, W) map to (B, H/2 * W/2, C') tokens."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, dim, 3, 2, 1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.proj(x)
        size = (x.shape[-2], x.shape[-1])
        return self.norm(x.flatten(2).transpose(1, 2)), size


class Block(nn.Module):
    """Pre-norm transformer block: wavelet or standard attention, then the depthwise-conv MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, wavelet: bool, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = WaveAttention(dim, num_heads, sr_ratio) if wavelet else Attention(dim, num_heads)
        self.mlp = DWConvMlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
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


def _stage_tuple(name: str, value: Any, kind: type = int) -> Tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != NUM_STAGES:
        raise ValueError(f"{name} must list one value per stage ({NUM_STAGES}), got {value!r}")
    out = []
    for v in value:
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


class WaveViT(nn.Module):
    """Wave-ViT image classifier (and, with ``features_only``, a four-stage backbone).

    Args:
        num_classes: classifier outputs; 0 returns the normalised class token (no aux head).
        in_chans: input channels.
        stem_hidden_dim: width of the stem's three convs.
        embed_dims: token width per stage (stages 1-2 need multiples of 4).
        depths: blocks per stage.
        num_heads: attention heads per stage (each must divide its embed dim).
        mlp_ratios: MLP expansion per stage.
        sr_ratios: key/value stride of the wavelet attention in stages 1-2 (1 = none);
            stages 3-4 use standard attention and take 1.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over all blocks.
        token_label: build the auxiliary per-token head (token labeling); in training the
            forward returns a :class:`TokenLabelOutput`, in eval the combined logits.
        mix_token: apply MixToken in training (only with ``token_label``).
        features_only: build only the four stages: the forward returns the stage maps
            (strides 4, 8, 16, 32) described by ``feature_info``.

    Inputs of at least ``min_input_size`` (32) pixels a side; sizes that are not multiples of
    ``size_multiple`` (32) are zero-padded at the bottom/right (dense outputs cropped back).
    """

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
        token_label: bool = True,
        mix_token: bool = True,
        features_only: bool = False,
    ) -> None:
        super().__init__()
        _check_int("num_classes", num_classes, 0)
        _check_int("in_chans", in_chans, 1)
        _check_int("stem_hidden_dim", stem_hidden_dim, 1)
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
        if not isinstance(drop_path_rate, (int, float)) or not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")

        self.in_chans = in_chans
        self.num_classes = num_classes
        self.embed_dims = dims
        self.num_features = dims[-1]
        self.token_label = bool(token_label)
        self.mix_token = bool(mix_token)
        self.mix_beta = 1.0
        self.features_only = bool(features_only)
        # Stage 4 has stride 32; stage-1 keys/values stride 4 (stem) x 2 (Haar) x sr, stage 2's 8 x 2 x sr.
        self.size_multiple = math.lcm(4 * 2 ** (NUM_STAGES - 1), 8 * srs[0], 16 * srs[1])
        self.min_input_size = self.size_multiple
        self.feature_info = FeatureInfo(
            dict(num_chs=d, reduction=4 * 2**i, module=f"norm{i + 1}") for i, d in enumerate(dims)
        )

        rates = torch.linspace(0, float(drop_path_rate), sum(depths), device="cpu").tolist()
        start = 0
        for i in range(NUM_STAGES):
            embed = Stem(in_chans, stem_hidden_dim, dims[0]) if i == 0 else Downsample(dims[i - 1], dims[i])
            blocks = nn.ModuleList(
                Block(dims[i], heads[i], ratios[i], srs[i], wavelet=i < 2, drop_path=rates[start + j]) for j in range(depths[i])
            )
            start += depths[i]
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dims[i], eps=_LN_EPS))
        if not self.features_only:
            self.post_network = nn.ModuleList([ClassBlock(dims[-1], heads[-1], ratios[-1])])
            self.head: nn.Module = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
            self.aux_head: Optional[nn.Module] = nn.Linear(dims[-1], num_classes) if self.token_label and num_classes > 0 else None
        self.apply(_init_weights)

    # ---- input checks and the shared trunk ------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        _WaveMixBase._check_input(self, x)  # type: ignore[arg-type]  # tensor, 4D, in_chans, floating point
        h, w = x.shape[-2:]
        m = self.min_input_size
        if h < m or w < m:
            raise ValueError(
                f"input of {h}x{w} pixels is too small for Wave-ViT's four stages: the minimum is {m}x{m} "
                f"(one token at stride 32 and one stage-1 key/value token); resize or pad the images to at least {m}x{m}"
            )

    def _prepare(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        self._check_input(x)
        size = (x.shape[-2], x.shape[-1])
        return pad_to_multiple(x, self.size_multiple)[0], size

    def _require_head(self, what: str) -> None:
        if self.features_only:
            raise RuntimeError(
                f"{what} needs the classification head, but this model was built with features_only=True; "
                "call model(x) for the four stage maps, or build it without features_only"
            )

    def _encode(
        self, x: torch.Tensor, *, take: Sequence[int] = (), last: int = NUM_STAGES - 1, mix: bool = False
    ) -> Tuple[torch.Tensor, Tuple[int, int], List[torch.Tensor], Box]:
        """Stages 1..last+1 on a padded image.

        Returns the last stage's tokens (before its norm), their grid size, the normalised
        (B, C, h, w) maps of the stages in ``take``, and the MixToken box (zero area if none).
        """
        maps: List[torch.Tensor] = []
        box: Box = (0, 0, 0, 0)
        feat = x
        for i in range(last + 1):
            tokens, size = getattr(self, f"patch_embed{i + 1}")(feat)
            if i == 0 and mix:
                box = sample_mix_box((size[0] // POOLING_SCALE, size[1] // POOLING_SCALE), self.mix_beta)
                tokens = swap_box(tokens, size, box, POOLING_SCALE)
            for blk in getattr(self, f"block{i + 1}"):
                tokens = blk(tokens, size)
            if i < NUM_STAGES - 1 or i in take:
                # Stages 1-3 end with their norm (the reference's too); stage 4's norm comes
                # after the class block, so its map here is norm4 of its tokens.
                feat = _tokens_to_map(getattr(self, f"norm{i + 1}")(tokens), size)
                if i in take:
                    maps.append(feat)
        return tokens, size, maps, box

    def _post(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class token (mean of tokens) + class-attention block + final norm: (B, 1 + N, C)."""
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

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class token -> head, plus ``0.5 * max over tokens of aux_head`` with token labeling.

        ``pre_logits`` returns the (B, C) class token.
        """
        self._require_head("forward_head")
        cls = x[:, 0]
        if pre_logits:
            return cls
        out = self.head(cls)
        if self.aux_head is not None:
            out = out + 0.5 * self.aux_head(x[:, 1:]).amax(dim=1)
        return out

    def get_classifier(self) -> nn.Module:
        self._require_head("get_classifier")
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head (and the aux head with token labeling); 0 returns the class token."""
        self._require_head("reset_classifier")
        _check_int("num_classes", num_classes, 0)
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.aux_head = nn.Linear(self.num_features, num_classes) if self.token_label and num_classes > 0 else None
        for m in (self.head, self.aux_head):
            if m is not None:
                m.apply(_init_weights)

    def _stage_indices(self, indices: Optional[Union[int, Sequence[int]]]) -> List[int]:
        n = NUM_STAGES
        if indices is None:
            return list(range(n))
        if isinstance(indices, int):
            if not 1 <= indices <= n:
                raise ValueError(f"indices={indices} asks for the last {indices} stages of {n}")
            return list(range(n - indices, n))
        take = set()
        for i in indices:
            if not isinstance(i, int) or not -n <= i < n:
                raise IndexError(f"stage index {i!r} out of range for {n} stages")
            take.add(i % n)
        if not take:
            raise ValueError("indices selects no stage")
        return sorted(take)

    def forward_intermediates(
        self, x: torch.Tensor, indices: Optional[Union[int, Sequence[int]]] = None, *, intermediates_only: bool = False
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Normalised stage maps (B, C_i, ceil(H / s_i), ceil(W / s_i)), s_i = 4, 8, 16, 32, for dense tasks.

        Args:
            indices: stages to return (0-3, negative counts from the end, in stage order),
                or an int n for the last n stages; all four by default.
            intermediates_only: return only the list (the trunk stops after the last
                stage asked for) instead of (``forward_features`` output, list).
        """
        take = self._stage_indices(indices)
        if not intermediates_only:
            self._require_head("forward_intermediates(intermediates_only=False)")
        x, (h, w) = self._prepare(x)
        tokens, _, maps, _ = self._encode(x, take=take, last=NUM_STAGES - 1 if not intermediates_only else take[-1])
        maps = [crop_to(m, (-(-h // s), -(-w // s))) for m, s in zip(maps, (self.feature_info[i]["reduction"] for i in take))]
        return maps if intermediates_only else (self._post(tokens), maps)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, TokenLabelOutput, List[torch.Tensor]]:
        """Logits (B, num_classes); see the class docstring for training with token labeling and features_only."""
        if self.features_only:
            return self.forward_intermediates(x, intermediates_only=True)
        if not (self.training and self.aux_head is not None):
            return self.forward_head(self.forward_features(x))
        x, _ = self._prepare(x)
        tokens, size, _, box = self._encode(x, mix=self.mix_token)
        feats = self._post(tokens)
        aux = swap_box(self.aux_head(feats[:, 1:]), size, box)  # undo MixToken on the dense logits
        return TokenLabelOutput(self.head(feats[:, 0]), aux, box, size)


# --------------------------------------------------------------------------------------
# Official checkpoints: module names equal the reference's, and the float16 Haar buffers it
# stores are dropped by wavevision.models._builder.convert_official_state_dict.

_PAPER = "Wave-ViT, ECCV 2022 (arXiv 2207.04978); params and MACs measured on the reference code"
_COMMON: Dict[str, Any] = dict(mlp_ratios=(8, 8, 4, 4), sr_ratios=(4, 2, 1, 1))


def _create_wave_vit(variant: str, cfg: Dict[str, Any], kwargs: Dict[str, Any]) -> WaveViT:
    return build_model(variant, WaveViT, {**_COMMON, **cfg}, kwargs)


def _reference(params: int, macs: int, flops: float, top1: float, flops_384: float, top1_384: float) -> Dict[str, Any]:
    """Paper numbers ("FLOPs" there are multiply-accumulates) and the reference code's exact counts."""
    return dict(
        params=params, macs_224=macs, dataset="ImageNet-1k", metric="top1", value=top1, resolution=224,
        paper_flops_224=flops, top1_384=top1_384, paper_flops_384=flops_384, source=_PAPER,
    )


@register_model(task="classification", params=22_690_176, reference=_reference(22_690_176, 4_623_276_672, 4.7e9, 83.9, 15.1e9, 85.0))
def wave_vit_s(**kwargs: Any) -> WaveViT:
    """Wave-ViT-S: dims 64/128/320/448, depths 3/4/6/3, heads 2/4/10/14 (83.9 % top-1 at 224)."""
    cfg = dict(stem_hidden_dim=32, embed_dims=(64, 128, 320, 448), depths=(3, 4, 6, 3), num_heads=(2, 4, 10, 14))
    return _create_wave_vit("wave_vit_s", cfg, kwargs)


@register_model(task="classification", params=33_516_128, reference=_reference(33_516_128, 7_168_490_496, 7.2e9, 84.8, 23.4e9, 85.6))
def wave_vit_b(**kwargs: Any) -> WaveViT:
    """Wave-ViT-B: dims 64/128/320/512, depths 3/4/12/3, heads 2/4/10/16 (84.8 % top-1 at 224)."""
    cfg = dict(stem_hidden_dim=64, embed_dims=(64, 128, 320, 512), depths=(3, 4, 12, 3), num_heads=(2, 4, 10, 16))
    return _create_wave_vit("wave_vit_b", cfg, kwargs)


@register_model(task="classification", params=57_474_504, reference=_reference(57_474_504, 14_710_043_648, 14.8e9, 85.5, 47.5e9, 86.3))
def wave_vit_l(**kwargs: Any) -> WaveViT:
    """Wave-ViT-L: dims 96/192/384/512, depths 3/6/18/3, heads 3/6/12/16 (85.5 % top-1 at 224)."""
    cfg = dict(stem_hidden_dim=64, embed_dims=(96, 192, 384, 512), depths=(3, 6, 18, 3), num_heads=(3, 6, 12, 16))
    return _create_wave_vit("wave_vit_l", cfg, kwargs)
