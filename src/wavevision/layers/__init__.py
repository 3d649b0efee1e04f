"""Building blocks shared by the models."""
from .stems import STEM_TYPES, normalize_stem, patchify_stem, strided_stem
from .wavemix_block import UPSAMPLE_MODES, WaveMixBlock, wavemix_mlp

__all__ = [
    "STEM_TYPES",
    "UPSAMPLE_MODES",
    "WaveMixBlock",
    "normalize_stem",
    "patchify_stem",
    "strided_stem",
    "wavemix_mlp",
]
