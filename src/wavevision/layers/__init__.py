"""Building blocks shared by the models."""
from .mixers import MIXERS, TokenMixerBlock, build_token_mixer, mixer_block
from .stems import STEM_TYPES, normalize_stem, patchify_stem, strided_stem
from .wavemix_block import UPSAMPLE_MODES, WaveMixBlock, wavemix_mlp

__all__ = [
    "MIXERS",
    "STEM_TYPES",
    "TokenMixerBlock",
    "UPSAMPLE_MODES",
    "WaveMixBlock",
    "build_token_mixer",
    "mixer_block",
    "normalize_stem",
    "patchify_stem",
    "strided_stem",
    "wavemix_mlp",
]
