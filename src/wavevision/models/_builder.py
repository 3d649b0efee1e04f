"""Building models by name, and loading weights: our checkpoints and the public package's.

Our checkpoints are a ``.safetensors`` file of the state dict plus a ``.json`` file beside
it (same stem) holding the model name and the keyword overrides it was built with, so
``create_model(checkpoint=path)`` alone rebuilds the model. Files saved by the public
``wavemix`` package (``torch.save(model.state_dict())``, ``.pth``/``.pt``) load through
:func:`convert_official_state_dict`.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn

from ..utils.io import atomic_write_bytes, read_text
from ..utils.validate import check_nested
from ._registry import get_entry
from ._safetensors import load_safetensors, save_safetensors_bytes

__all__ = [
    "CheckpointMismatchError",
    "build_model",
    "convert_official_state_dict",
    "create_model",
    "load_state_dict_strict",
    "save_checkpoint",
]

PathLike = Union[str, os.PathLike]
CHECKPOINT_FORMAT = "wavevision-checkpoint"
CHECKPOINT_VERSION = 1
# Keys official checkpoints carry that are not weights of ours (recomputed filter buffers):
# Wave-ViT's float16 Haar filters in every wavelet-attention layer.
_DROPPED_SUFFIXES: Tuple[str, ...] = (
    ".attn.dwt.w_ll", ".attn.dwt.w_lh", ".attn.dwt.w_hl", ".attn.dwt.w_hh", ".attn.idwt.filters",
)
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
_PREFIXES = ("module.", "_orig_mod.")


class CheckpointMismatchError(ValueError):
    """A state dict does not fit the model it is loaded into."""


def build_model(name: str, cls: type, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
    """Instantiate ``cls`` with ``defaults`` updated by ``overrides`` and remember how.

    Unknown override names raise a TypeError listing the accepted ones. The model gets
    ``model_name`` and ``model_kwargs`` (the overrides) so checkpoints can rebuild it.
    """
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise TypeError(f"{name}: unknown argument(s) {unknown}; accepted: {accepted}")
    model = cls(**{**defaults, **overrides})
    model.model_name = name
    model.model_kwargs = dict(overrides)
    return model


def _unwrap(obj: Any) -> Dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    for key in _WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"state dict entries must be tensors; {bad[:3]} are not")
    return dict(obj)


def convert_official_state_dict(state_dict: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """Map a state dict saved by the public implementation to wavevision's layout.

    Accepts a plain state dict or one wrapped under ``state_dict``/``model``; strips the
    ``module.`` prefix of (Distributed)DataParallel and ``_orig_mod.`` of torch.compile, and
    drops recomputed filter buffers (Wave-ViT's float16 ``*.attn.dwt.*`` / ``*.attn.idwt.filters``).
    WaveMix and Wave-ViT module names already equal the reference ones.
    """
    sd = _unwrap(state_dict)
    out: Dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        if key.endswith(_DROPPED_SUFFIXES):
            continue
        out[key] = value
    return out


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Load ``state_dict`` strictly, raising :class:`CheckpointMismatchError` that names what differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        name = getattr(model, "model_name", type(model).__name__)
        parts = [f"{source} does not fit model {name!r} (another architecture or configuration?)"]
        if shapes:
            k, got, want = shapes[0]
            parts.append(f"{len(shapes)} shape mismatch(es), first {k!r}: checkpoint {got} vs model {want}")
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        parts.append(
            "build the model with the checkpoint's hyperparameters (WaveMix: depth, final_dim, level, ...; "
            "Wave-ViT: embed_dims, depths, num_heads, token_label) or pick the matching name"
        )
        raise CheckpointMismatchError("; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def _config_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_checkpoint(model: nn.Module, path: PathLike, *, extra: Optional[Mapping[str, Any]] = None) -> Path:
    """Save ``model`` as ``path`` (safetensors) plus ``path`` with suffix ``.json`` (its config).

    Both files are written atomically. ``extra`` (JSON-serialisable) is stored in the config.
    Returns the weights path.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(path.suffix + ".safetensors") if path.suffix else path.with_suffix(".safetensors")
    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("save_checkpoint needs a model made by wavevision.create_model (it records the model name)")
    config = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": name,
        "kwargs": dict(getattr(model, "model_kwargs", {})),
        "extra": dict(extra or {}),
    }
    atomic_write_bytes(path, save_safetensors_bytes(model.state_dict(), {"model": name}))
    atomic_write_bytes(_config_path(path), (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    return path


def _for_model(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """A backbone built with ``features_only`` takes a full checkpoint: keys it lacks (the heads) are dropped.

    Missing keys and shape mismatches are still errors.
    """
    if not getattr(model, "features_only", False):
        return state_dict
    own = model.state_dict()
    return {k: v for k, v in state_dict.items() if k in own}


# A checkpoint's config is a few hundred bytes; anything near this is not one.
_MAX_CONFIG_BYTES = 1 << 20


def _read_config(path: Path) -> Dict[str, Any]:
    """The config beside checkpoint ``path``, checked before use: read with a size limit (no
    FIFOs or devices), ``format`` and ``version`` ours, ``model`` a name, ``kwargs`` a mapping of
    plain JSON values without NaN/infinity, ``extra`` a mapping. Errors name the file and the key."""
    cfg_path = _config_path(path)
    if not cfg_path.exists():
        raise FileNotFoundError(
            f"{path} has no config {cfg_path.name} beside it; pass the model name: create_model(NAME, checkpoint=...)"
        )
    where = f"checkpoint config {cfg_path}"
    text = read_text(cfg_path, max_bytes=_MAX_CONFIG_BYTES, what="checkpoint config")
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where} is not valid JSON ({e}); save the checkpoint again") from None
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply to be a checkpoint config") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(cfg).__name__}")
    if cfg.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{where}: 'format' must be {CHECKPOINT_FORMAT!r}, got {cfg.get('format')!r}; "
                         "is it the config of a wavevision checkpoint?")
    version = cfg.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{where}: 'version' must be an integer >= 1, got {version!r}")
    if version > CHECKPOINT_VERSION:
        raise ValueError(f"{where}: 'version' {version} is newer than this wavevision reads ({CHECKPOINT_VERSION}); "
                         "upgrade wavevision")
    if "model" not in cfg:
        raise ValueError(f"{where} has no 'model' (the registered model name); save the checkpoint again")
    if not isinstance(cfg["model"], str):
        raise ValueError(f"{where}: 'model' must be a model name (a string), got {cfg['model']!r}")
    for key, what in (("kwargs", "a mapping of argument names to values"), ("extra", "a mapping")):
        if not isinstance(cfg.setdefault(key, {}), dict):
            raise ValueError(f"{where}: {key!r} must be {what}, got {type(cfg[key]).__name__}")
    for name, value in cfg["kwargs"].items():
        check_nested(f"{where}: kwargs.{name}", value)
    return cfg


def _load_official(path: Path) -> Dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise ValueError(f"could not read {path} as a PyTorch state dict ({type(e).__name__}: {e})") from None
    return convert_official_state_dict(obj)


def create_model(
    name: Optional[str] = None,
    *,
    pretrained: bool = False,
    checkpoint: Optional[PathLike] = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, optionally loading weights.

    Args:
        name: a registered name (``wavevision.list_models()``). May be omitted when
            ``checkpoint`` is a wavevision checkpoint, whose config names the model.
        pretrained: no weights are hosted yet; download a checkpoint and pass ``checkpoint``.
        checkpoint: ``.safetensors`` saved by :func:`save_checkpoint` (config read from the
            ``.json`` beside it), or a ``.pth``/``.pt`` state dict of the public package.
        **overrides: hyperparameters replacing the registered defaults (e.g. ``num_classes``).
    """
    if pretrained:
        raise ValueError(
            "wavevision hosts no pretrained weights; pass checkpoint=PATH to a file saved by the "
            "public wavemix package or by wavevision.save_checkpoint"
        )
    if checkpoint is None:
        if name is None:
            raise ValueError("create_model needs a model name (see wavevision.list_models()) or checkpoint=PATH")
        entry = get_entry(name)
        return entry.fn(**overrides)
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        cfg = _read_config(path)
        if name is not None and name != cfg["model"]:
            raise CheckpointMismatchError(
                f"{path} holds a {cfg['model']!r} model, not {name!r}; call create_model(checkpoint=...) without a name"
            )
        model = get_entry(cfg["model"]).fn(**{**cfg.get("kwargs", {}), **overrides})
        tensors, _ = load_safetensors(str(path))
        load_state_dict_strict(model, _for_model(model, tensors), source=str(path))
        return model
    if name is None:
        raise ValueError(f"{path} is a plain state dict: pass the model name, e.g. create_model('wavemix', checkpoint=...)")
    model = get_entry(name).fn(**overrides)
    load_state_dict_strict(model, _for_model(model, _load_official(path)), source=str(path))
    return model
