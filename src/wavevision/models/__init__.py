"""Model families, the registry and the builder."""
from ._builder import (
    CheckpointMismatchError,
    convert_official_state_dict,
    create_model,
    load_state_dict_strict,
    save_checkpoint,
)
from ._hub import list_pretrained, save_pretrained
from ._features import FeatureInfo, feature_take_indices
from ._pretrained import DefaultCfg, PretrainedCfg, generate_default_cfgs, split_model_name_tag
from ._registry import ModelEntry, get_entry, get_pretrained_cfg, list_models, register_model
from .wavemix import WaveMix, WaveMixPatchSeg, WaveMixSeg, WaveMixSR
from .wave_vit import TokenLabelOutput, WaveViT
from .ablation import MixerNet
from .upernet import SegmentationOutput, UperNet
from .detection import WaveDetector
from .wavemix_sr import WaveMixSRV2, WaveMixSRY

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
    "WaveMixPatchSeg",
    "WaveMixSR",
    "WaveMixSRV2",
    "WaveMixSRY",
    "WaveMixSeg",
    "WaveViT",
    "convert_official_state_dict",
    "create_model",
    "feature_take_indices",
    "generate_default_cfgs",
    "get_entry",
    "get_pretrained_cfg",
    "list_models",
    "list_pretrained",
    "load_state_dict_strict",
    "register_model",
    "save_checkpoint",
    "save_pretrained",
    "split_model_name_tag",
]
