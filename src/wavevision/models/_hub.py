"""The Hugging Face Hub: released weights in one call, and Hub-style folders of our own models.

Downloads go through :func:`wavevision.models._hub_download.hub_download` into the Hub cache every
user already has (huggingface_hub's layout; the package is imported only when a download is asked
for), with every name the mirror sends validated and every transfer bounded in time and size.
``HF_ENDPOINT`` (a mirror), ``HF_HOME`` / ``HF_HUB_CACHE`` (the cache) and ``HF_HUB_OFFLINE``
(cache only) are read when a download is made, not when a module is imported.

A Hub-style folder is what timm writes and reads: ``model.safetensors`` plus ``config.json``
holding the registered ``architecture``, ``num_classes``, ``num_features``, ``model_args``
(the hyperparameters it was built with) and its ``pretrained_cfg``. :func:`save_pretrained`
writes one; ``create_model("hf-hub:org/name")`` and ``create_model("local-dir:PATH")`` load one.
A folder's config describes an architecture; it may not ask for loading anything (weights from
elsewhere, a file, a URL, a Hub id): :func:`read_hub_config` refuses such keys and values.
"""
from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..utils.io import atomic_write_bytes, read_text
from ..utils.validate import check_bool, check_nested
from ._hub_download import HubUnavailableError, hub_download
from ._registry import get_entry, list_models

__all__ = [
    "CONFIG_NAME",
    "HF_HUB_PREFIX",
    "LOCAL_DIR_PREFIX",
    "WEIGHTS_NAME",
    "folder_config",
    "folder_weights",
    "hub_download",
    "list_pretrained",
    "read_hub_config",
    "save_pretrained",
]

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_model.bin"  # what older Hub repos (and timm before safetensors) hold
_MAX_CONFIG_BYTES = 1 << 20
# What a folder's config may not hold: arguments that load weights or name where they come from.
_LOADING_KEYS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint", "cache_dir", "file",
                 "url", "hf_hub_id", "hf_hub_filename", "source")
# pretrained_cfg fields that say where weights are (save_pretrained drops them): never from a folder.
_SOURCE_KEYS = ("url", "file", "hf_hub_id", "hf_hub_filename", "source", "file_size", "file_sha256")


def list_pretrained(pattern: str = "*") -> list[str]:
    """The ``name.tag`` of every record with released weights whose tagged name (or model name)
    matches the shell-style ``pattern``; the default tag of each model first, as in timm."""
    out = []
    for name in list_models():
        entry = get_entry(name)
        for tag in entry.cfgs.tags:
            tagged = f"{name}.{tag}" if tag else name
            if entry.cfgs.cfgs[tag].has_weights and (fnmatch.fnmatch(tagged, pattern) or fnmatch.fnmatch(name, pattern)):
                out.append(tagged)
    return out


def save_safetensors_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """``tensors`` (moved to CPU, made contiguous) as safetensors bytes, with string ``metadata``."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return save(flat, metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None)


# --------------------------------------------------------------------------------------
# Hub-style folders


def save_pretrained(model: nn.Module, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model`` as a Hub-style folder: ``model.safetensors`` and ``config.json``.

    Upload the folder to a Hub repo (``huggingface-cli upload org/name FOLDER``) and anyone loads
    it with ``create_model("hf-hub:org/name")``; locally, ``create_model("local-dir:FOLDER")``.

    Args:
        model: a model made by :func:`wavevision.create_model` (it records its name and arguments).
        folder: the folder to write (created when missing).
        overwrite: replace an existing ``model.safetensors`` / ``config.json`` there.

    Returns:
        The folder.
    """
    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("save_pretrained needs a model made by wavevision.create_model (it records the model name)")
    overwrite = check_bool("overwrite", overwrite)
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder; choose a folder to write the model into")
    existing = [n for n in (WEIGHTS_NAME, CONFIG_NAME) if (folder / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{folder} already holds {', '.join(existing)}; pass overwrite=True (--overwrite) "
                              "or choose another folder")
    cfg = {k: v for k, v in dict(getattr(model, "pretrained_cfg", {}) or {}).items()
           if k not in (*_SOURCE_KEYS, "architecture")}
    params = sum(p.numel() for p in model.parameters())
    if cfg.get("params") != params:  # a build other than the record's: its count, and no stale MACs
        cfg.pop("macs", None)
        cfg["params"] = params
    config = {
        "architecture": name,
        "num_classes": getattr(model, "num_classes", None),
        "num_features": getattr(model, "num_features", None),
        "model_args": dict(getattr(model, "model_kwargs", {})),
        "pretrained_cfg": cfg,
        "library": "wavevision",
    }
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / WEIGHTS_NAME, save_safetensors_bytes(model.state_dict(), {"format": "pt"}))
    atomic_write_bytes(folder / CONFIG_NAME, text.encode())
    return folder


def read_hub_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a Hub-style folder, checked: size-limited, ``architecture`` a name,
    ``model_args`` a mapping of plain values (no NaN), ``pretrained_cfg`` a mapping, ``num_classes``
    agreeing with ``model_args``; and nothing that asks for loading: no ``pretrained``,
    ``pretrained_cfg_overlay``, ``checkpoint`` (or other loading keys) anywhere, no weights source in
    ``pretrained_cfg``, no file, URL or Hub id as a value of ``model_args``."""
    where = f"Hub config {path}"
    text = read_text(path, max_bytes=_MAX_CONFIG_BYTES, what="Hub config")
    try:
        cfg = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, and integers of more than 4,300 digits
        raise ValueError(f"{where} is not valid JSON ({' '.join(str(e).split())[:200]}); write the folder again with "
                         "save_pretrained") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(cfg).__name__}")
    arch = cfg.get("architecture")
    if not isinstance(arch, str) or not arch:
        raise ValueError(f"{where} has no 'architecture' (the registered model name); is it a wavevision or timm "
                         "model folder?")
    for key in ("model_args", "pretrained_cfg"):
        if not isinstance(cfg.setdefault(key, {}), dict):
            raise ValueError(f"{where}: {key!r} must be a mapping, got {type(cfg[key]).__name__}")
    fix = ("a folder's config describes an architecture, it cannot load weights from elsewhere: remove it, and pass "
           "weights yourself (create_model(NAME, checkpoint=PATH))")
    top = tuple(k for k in _LOADING_KEYS if k != "pretrained_cfg")  # which describes the weights: allowed
    for scope, keys in (("", top), ("model_args.", _LOADING_KEYS),
                        ("pretrained_cfg.", _SOURCE_KEYS)):
        found = sorted(k for k in (cfg[scope[:-1]] if scope else cfg) if k in keys)
        if found:
            raise ValueError(f"{where} asks for loading with {scope}{found[0]!r}; {fix}")
    for name, value in cfg["model_args"].items():
        check_nested(f"{where}: model_args.{name}", value)
        location = _location_in(value)
        if location is not None:
            raise ValueError(f"{where}: model_args.{name} holds {location[:80]!r}, which names a file, URL or Hub "
                             f"repo; {fix}")
    classes = cfg.get("num_classes")
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 0):
        raise ValueError(f"{where}: 'num_classes' must be an integer >= 0, got {classes!r}")
    args_classes = cfg["model_args"].get("num_classes")
    if classes is not None and args_classes is not None and args_classes != classes:
        raise ValueError(f"{where}: num_classes {classes} disagrees with model_args.num_classes {args_classes}; "
                         "write the folder again with save_pretrained (or correct one of them)")
    return cfg


def _location_in(value: Any) -> str | None:
    """The first string in ``value`` (nested) that names a place: a path, a URL or a Hub id."""
    if isinstance(value, str):
        marks = ("/", "\\", ":", "~")
        return value if any(m in value for m in marks) or value.startswith(".") else None
    if isinstance(value, dict):
        value = list(value.keys()) + list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _location_in(item)
            if found is not None:
                return found
    return None


def folder_config(spec: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """``config.json`` of ``hf-hub:org/name[@rev]`` (downloaded, at most 1 MiB) or ``local-dir:PATH``."""
    if spec.startswith(HF_HUB_PREFIX):
        repo = spec[len(HF_HUB_PREFIX):]
        org, _, rest = repo.partition("@")[0].partition("/")
        if not org or not rest or "/" in rest:
            raise ValueError(f"{spec!r} names no Hub repo; write hf-hub:ORG/NAME (optionally @REVISION)")
        return hub_download(repo, CONFIG_NAME, cache_dir=cache_dir, max_bytes=_MAX_CONFIG_BYTES)
    folder = Path(spec[len(LOCAL_DIR_PREFIX):]).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{spec!r}: {folder} is not a folder; point local-dir: at a folder written by "
                                "wavevision.save_pretrained (or wavevision export RUN --format hub)")
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}; is it a folder written by wavevision.save_pretrained?")
    return config


def folder_weights(spec: str, *, max_bytes: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """The weights of ``hf-hub:org/name[@rev]`` (downloaded, at most ``max_bytes``) or ``local-dir:PATH``."""
    if spec.startswith(HF_HUB_PREFIX):
        repo = spec[len(HF_HUB_PREFIX):]
        try:
            return hub_download(repo, WEIGHTS_NAME, cache_dir=cache_dir, max_bytes=max_bytes)
        except HubUnavailableError:  # offline or unreachable: asking for the other name cannot help
            raise
        except FileNotFoundError:
            return hub_download(repo, LEGACY_WEIGHTS_NAME, cache_dir=cache_dir, max_bytes=max_bytes)
    folder = Path(spec[len(LOCAL_DIR_PREFIX):]).expanduser()
    weights = folder / WEIGHTS_NAME
    if not weights.exists() and (folder / LEGACY_WEIGHTS_NAME).exists():
        weights = folder / LEGACY_WEIGHTS_NAME
    if not weights.exists():
        raise FileNotFoundError(f"{folder} has no {WEIGHTS_NAME}; write the folder again with save_pretrained")
    return weights


def hub_model_args(cfg: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments to build a folder's model: its ``model_args`` and ``pretrained_cfg``, then ``overrides``."""
    args = {**cfg["model_args"], **overrides}
    if "pretrained_cfg" not in overrides and cfg["pretrained_cfg"]:
        # JSON has no tuples: sizes, mean and std come back as lists
        args["pretrained_cfg"] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["pretrained_cfg"].items()}
    return args
