"""What the dense models (UperNet, the detectors) share about their backbone: the one loader of a
classification checkpoint into it, and the one name of the backbone's hyperparameters
(``backbone_args``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..utils.deprecation import warn_deprecated
from ..utils.validate import PathLike
from ._builder import CheckpointMismatchError, _config_path, _filtered, _read_config, _read_weights, adapt_input_conv
from ._pretrained import split_model_name_tag

__all__ = ["backbone_args", "load_backbone_checkpoint"]

_PREFIX = "backbone."


def backbone_args(args: dict[str, Any] | None, old: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """The backbone's hyperparameters, ``args`` (``backbone_args``); ``old`` is the earlier name
    ``backbone_kwargs``, still accepted with a one-time warning."""
    if old is not None:
        warn_deprecated(f"{owner}(backbone_kwargs=...)", "backbone_args=... (the same dict)", stacklevel=4)
        if args is not None:
            raise TypeError(f"{owner}: backbone_args and backbone_kwargs name the same thing; pass only backbone_args")
        args = old
    if args is not None and not isinstance(args, dict):
        raise TypeError(f"backbone_args must be a dict of the backbone's hyperparameters, got {type(args).__name__}")
    return dict(args or {})


def _classifier_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A classifier's state dict as is; a dense model's (UperNet's) ``backbone.*`` entries without the prefix."""
    if any(k.startswith(_PREFIX) for k in state):
        return {k[len(_PREFIX):]: v for k, v in state.items() if k.startswith(_PREFIX)}
    return state


def load_backbone_checkpoint(backbone: nn.Module, path: PathLike, *, owner: str) -> None:
    """Load a classification checkpoint into ``backbone``, a registered classifier built as a backbone.

    The file is a wavevision ``.safetensors`` (its ``.json`` beside it names the model, which must
    be the backbone's), the reference's ``.pth``, or a dense model's checkpoint whose ``backbone.*``
    weights are taken. The classifier's head is left out; the family's checkpoint filter maps its
    earlier layouts; the first convolution is adapted to the backbone's input channels (timm's rule).

    Args:
        backbone: the module to fill (its ``model_name`` and ``pretrained_cfg`` as ``create_model`` sets them).
        path: the checkpoint.
        owner: the model the backbone belongs to, for messages (``"upernet_wave_vit_s"``).

    Raises:
        CheckpointMismatchError: the file holds another model, or weights of other shapes, or lacks
            some of the backbone's: the message names the model, or the first key with both shapes.
    """
    path = Path(path)
    name = getattr(backbone, "model_name", type(backbone).__name__)
    where = f"backbone_checkpoint {path} does not fit the {name} backbone of {owner}"
    fix = f"pass a classification checkpoint of {name}"
    state = _read_weights(path)
    if path.suffix == ".safetensors" and _config_path(path).exists() and not any(k.startswith(_PREFIX) for k in state):
        saved = split_model_name_tag(_read_config(path)["model"])[0]
        if saved != name:
            raise CheckpointMismatchError(f"{where}: it holds a {saved!r} model; {fix}")
    state = dict(_filtered(backbone, _classifier_state(state)))
    own = backbone.state_dict()
    first_conv = (getattr(backbone, "pretrained_cfg", None) or {}).get("first_conv")
    key = f"{first_conv}.weight"
    if first_conv and key in state and key in own and state[key].dim() == 4 and state[key].shape[1] != own[key].shape[1]:
        state[key] = adapt_input_conv(own[key].shape[1], state[key])
    for k, v in own.items():
        if k in state and tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointMismatchError(f"{where}: first mismatching key {k!r} is {tuple(state[k].shape)} in the "
                                          f"checkpoint but {tuple(v.shape)} in the model; {fix}")
    missing = [k for k in own if k not in state]
    if missing:
        have = next(iter(state), None)
        raise CheckpointMismatchError(f"{where}: it lacks {len(missing)} of the backbone's {len(own)} weights, first "
                                      f"{missing[0]!r} (its own first key is {have!r}); {fix}")
    backbone.load_state_dict({k: state[k] for k in own}, strict=True)
