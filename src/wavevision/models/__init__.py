"""Model families, the registry and the builder."""
from ._builder import (
    CheckpointMismatchError,
    convert_official_state_dict,
    create_model,
    load_state_dict_strict,
    save_checkpoint,
)
from ._registry import ModelEntry, get_entry, list_models, register_model
from .wavemix import WaveMix, WaveMixSeg, WaveMixSR
from .wave_vit import TokenLabelOutput, WaveViT
from .ablation import MixerNet

__all__ = [
    "CheckpointMismatchError",
    "MixerNet",
    "ModelEntry",
    "TokenLabelOutput",
    "WaveMix",
    "WaveMixSR",
    "WaveMixSeg",
    "WaveViT",
    "convert_official_state_dict",
    "create_model",
    "get_entry",
    "list_models",
    "load_state_dict_strict",
    "register_model",
    "save_checkpoint",
]
