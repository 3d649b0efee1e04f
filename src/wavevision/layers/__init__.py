"""Building blocks shared by the models (the plain reference modules; CPU fast paths: wavevision.accel)."""
from __future__ import annotations

from typing import Any

from .drop_path import DropPath, drop_path
from .mixers import MIXERS, TokenMixerBlock, build_token_mixer, mixer_block
from .mlp import DWConvMlp, Mlp, TokenDWConv
from .stems import STEM_TYPES, normalize_stem, patchify_stem, strided_stem
from .wave_attention import Attention, ClassAttention, WaveAttention, attention
from .wavemix_block import _MOVED, UPSAMPLE_MODES, WaveMixBlock, wavemix_mlp
from .wtconv import WTConv1d, WTConv2d, min_wtconv_size

__all__ = [
    "Attention",
    "ClassAttention",
    "DWConvMlp",
    "DropPath",
    "MIXERS",
    "Mlp",
    "STEM_TYPES",
    "TokenDWConv",
    "TokenMixerBlock",
    "UPSAMPLE_MODES",
    "WaveAttention",
    "WaveMixBlock",
    "WTConv1d",
    "WTConv2d",
    "attention",
    "build_token_mixer",
    "drop_path",
    "min_wtconv_size",
    "mixer_block",
    "normalize_stem",
    "patchify_stem",
    "strided_stem",
    "wavemix_mlp",
]


def __getattr__(name: str) -> Any:
    """The CPU fast modules moved to :mod:`wavevision.accel`; ``wavevision.layers.PointwiseConv2d`` keeps working."""
    if name in _MOVED:
        from .. import accel  # accel imports this package: imported when asked for

        return getattr(accel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
