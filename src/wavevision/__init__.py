"""wavevision: resource-efficient wavelet vision networks (WaveMix, WaveMix-Lite, Wave-ViT) on PyTorch.

Quick start::

    import torch, wavevision
    model = wavevision.create_model("wavemix_lite_8_10")   # 3,566 parameters
    logits = model(torch.rand(2, 1, 28, 28))
"""
from ._launch import prefer_passive_openmp

prefer_passive_openmp()  # the `wavevision` command only, before torch loads (see wavevision._launch)

from .models import (
    CheckpointMismatchError,
    ModelEntry,
    convert_official_state_dict,
    create_model,
    get_entry,
    list_models,
    save_checkpoint,
)
from .fuse import fuse

__version__ = "0.1.0"

__all__ = [
    "CheckpointMismatchError",
    "ModelEntry",
    "__version__",
    "convert_official_state_dict",
    "create_model",
    "fuse",
    "get_entry",
    "list_models",
    "save_checkpoint",
]
