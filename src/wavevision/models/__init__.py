"""Model families, the registry and the builder."""
from __future__ import annotations

from ._builder import (
    CheckpointMismatchError,
    convert_official_state_dict,
    create_model,
    load_state_dict_strict,
    save_checkpoint,
)
from ._deprecated import renamed_attributes
from ._features import FeatureInfo, feature_take_indices
from ._hub import list_pretrained, save_pretrained
from ._pretrained import DefaultCfg, PretrainedCfg, generate_default_cfgs, split_model_name_tag
from ._registry import (
    ModelEntry,
    deprecated_models,
    get_entry,
    get_pretrained_cfg,
    list_models,
    register_model,
    register_model_deprecations,
)
from .ablation import MixerNet
from .detection import WaveDetector
from .upernet import SegmentationOutput, UperNet
from .wave_vit import TokenLabelOutput, WaveViT
from .wavemix import WaveMix, WaveMixPaperSR, WaveMixPatchSeg, WaveMixSeg
from .wavemixsr import WaveMixSRV1, WaveMixSRV2
from .wtconvnext import WTConvNeXt

__all__ = [
    "CheckpointMismatchError",
    "DefaultCfg",
    "FeatureInfo",
    "MixerNet",
    "ModelEntry",
    "PretrainedCfg",
    "SegmentationOutput",
    "TokenLabelOutput",
    "UperNet",
    "WaveDetector",
    "WaveMix",
    "WaveMixPaperSR",
    "WaveMixPatchSeg",
    "WaveMixSRV1",
    "WaveMixSRV2",
    "WaveMixSeg",
    "WaveViT",
    "WTConvNeXt",
    "convert_official_state_dict",
    "create_model",
    "deprecated_models",
    "feature_take_indices",
    "generate_default_cfgs",
    "get_entry",
    "get_pretrained_cfg",
    "list_models",
    "list_pretrained",
    "load_state_dict_strict",
    "register_model",
    "register_model_deprecations",
    "save_checkpoint",
    "save_pretrained",
    "split_model_name_tag",
]

# Renamed in issue 21 (the names now say which paper): the old ones warn once, then work.
__getattr__ = renamed_attributes(__name__, {"WaveMixSR": "WaveMixPaperSR", "WaveMixSRY": "WaveMixSRV1"})
