"""Initial weights of a training run (``init``): a checkpoint loaded before the first step.

A detector or UperNet takes a classification checkpoint into its backbone, through its
``load_backbone`` (both call :func:`wavevision.models._backbone.load_backbone_checkpoint`: every
backbone weight must be there with its shape, the classifier's head is left out); any other
model loads the whole checkpoint strictly, except that a ``NAME.TAG`` of the model's own
architecture loads as ``pretrained=True`` does (a classifier for another number of classes stays
fresh). The checkpoint is a file (``.safetensors`` or the
reference's ``.pth``), a Hub repository (``hf-hub:ORG/NAME``, its ``model.safetensors``) or a
registered model's released weights (``NAME.TAG``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch.nn as nn

from ..models import get_entry, list_models
from ..models._builder import _read_weights, _weights_file, load_adapted, load_state_dict_strict, weights_cap
from ..models._hub_download import hub_download
from ..models._pretrained import resolve_pretrained_cfg, split_model_name_tag

__all__ = ["init_file", "load_init"]


def init_file(spec: str, model: nn.Module) -> Path:
    """The local weights file ``spec`` names (downloaded into the Hub cache for ``hf-hub:`` and ``NAME.TAG``)."""
    cap = weights_cap(model)
    if spec.startswith("hf-hub:"):
        return hub_download(spec[len("hf-hub:"):], "model.safetensors", max_bytes=cap)
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    arch, _ = split_model_name_tag(spec)
    if arch in list_models(include_deprecated=True):
        cfg = resolve_pretrained_cfg(spec, get_entry(arch).cfgs)
        if not cfg.fetchable:
            published = cfg.url or cfg.origin_url
            where = f" (the authors publish them at {published})" if published else ""
            raise ValueError(f"init {spec!r}: {spec} has no released file wavevision can download{where}; download "
                             "the weights and give --init FILE (a .pth or .safetensors)")
        return _weights_file(cfg, arch, cap)
    raise ValueError(f"init {spec!r} is neither a file, hf-hub:ORG/NAME nor a registered model's NAME.TAG; give the "
                     "path of a .safetensors or .pth checkpoint")


def load_init(model: nn.Module, spec: str) -> str:
    """Load ``spec``'s weights into ``model`` (its backbone for a detector or UperNet); returns what was
    loaded, in words. Raises :class:`wavevision.CheckpointMismatchError` (one line) on other weights."""
    path = init_file(spec, model)
    arch, _ = split_model_name_tag(spec)
    if not Path(spec).expanduser().is_file() and arch == getattr(model, "model_name", None):
        # a tag of the model's own architecture: loaded as pretrained=True loads it (another number of classes
        # keeps the model's fresh classifier, with a warning)
        load_adapted(model, _read_weights(path), resolve_pretrained_cfg(spec, get_entry(arch).cfgs), source=str(path))
        return f"all weights from {path}"
    if callable(getattr(model, "load_backbone", None)):  # the dense models: detectors, UperNet
        cast(Any, model).load_backbone(path)
        return f"backbone from {path}"
    load_state_dict_strict(model, _read_weights(path), source=f"init {path}")
    return f"all weights from {path}"
