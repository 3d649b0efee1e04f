"""wavevision: resource-efficient wavelet vision networks (WaveMix, WaveMix-Lite, Wave-ViT) on PyTorch.

Quick start::

    import torch, wavevision
    model = wavevision.create_model("wavemix_lite_8_10")   # 3,566 parameters
    logits = model(torch.rand(2, 1, 28, 28))
    model.pretrained_cfg["input_size"], model.pretrained_cfg["metrics"]   # (1, 28, 28), {'top1': 99.0}

``wavevision.register_timm()`` makes every model available to ``timm.create_model`` (timm is
imported only then).
"""
from __future__ import annotations

import sys

from ._launch import prefer_passive_openmp

prefer_passive_openmp()  # the `wavevision` command only, before torch loads (see wavevision._launch)

from .fuse import fuse
from .models import (
    CheckpointMismatchError,
    ModelEntry,
    PretrainedCfg,
    convert_official_state_dict,
    create_model,
    get_entry,
    get_pretrained_cfg,
    list_models,
    list_pretrained,
    save_checkpoint,
    save_pretrained,
)


def register_timm() -> list[str]:
    """Register every wavevision model in timm's registry (idempotent; needs ``pip install timm``).

    Afterwards ``timm.create_model(name, pretrained=..., num_classes=..., features_only=...)``,
    ``timm.data.resolve_data_config`` and ``timm.create_transform`` take wavevision names.
    Returns the names this call registered. Same as ``import wavevision.integrations.timm``.
    """
    try:
        import timm  # noqa: F401 - the optional dependency, imported only here
    except ImportError as e:
        raise ImportError(f"register_timm needs timm ({e}); pip install timm, or pip install -e '.[vision]'") from None
    first = "wavevision.integrations.timm" not in sys.modules
    # here, not at module level: the bridge imports timm (optional) and registers on import
    from .integrations import timm as _timm

    return list(_timm.REGISTERED) if first else _timm.register_timm()


__version__ = "0.1.0"

__all__ = [
    "CheckpointMismatchError",
    "ModelEntry",
    "PretrainedCfg",
    "__version__",
    "convert_official_state_dict",
    "create_model",
    "fuse",
    "get_entry",
    "get_pretrained_cfg",
    "list_models",
    "list_pretrained",
    "register_timm",
    "save_checkpoint",
    "save_pretrained",
]
