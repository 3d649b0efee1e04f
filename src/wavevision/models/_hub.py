"""The Hugging Face Hub: released weights in one call, and Hub-style folders of our own models.

Downloads go through ``huggingface_hub.hf_hub_download`` (an optional dependency, imported
only when a download is asked for), so files land in the Hub cache every user already has.
``HF_ENDPOINT`` (a mirror), ``HF_HOME`` / ``HF_HUB_CACHE`` (the cache) and ``HF_HUB_OFFLINE``
(cache only) are read when a download is made, not when a module is imported.

A Hub-style folder is what timm writes and reads: ``model.safetensors`` plus ``config.json``
holding the registered ``architecture``, ``num_classes``, ``num_features``, ``model_args``
(the hyperparameters it was built with) and its ``pretrained_cfg``. :func:`save_pretrained`
writes one; ``create_model("hf-hub:org/name")`` and ``create_model("local-dir:PATH")`` load one.
"""
from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch.nn as nn

from ..utils.io import atomic_write_bytes, read_text
from ..utils.validate import check_bool, check_nested

__all__ = [
    "CONFIG_NAME",
    "HF_HUB_PREFIX",
    "LOCAL_DIR_PREFIX",
    "WEIGHTS_NAME",
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
_LOCAL_FIX = ("or download the file yourself and pass pretrained_cfg_overlay=dict(file=PATH) "
              "(wavevision.create_model(NAME, checkpoint=PATH) for a plain state dict)")


def _hub_module() -> Any:
    try:
        import huggingface_hub
    except ImportError as e:
        raise ImportError(
            f"downloading from the Hugging Face Hub needs huggingface_hub ({e}): pip install huggingface_hub "
            f"(or pip install 'wavevision[hub]'), {_LOCAL_FIX}"
        ) from None
    return huggingface_hub


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The Hub cache a download uses: ``cache_dir``, else ``HF_HUB_CACHE``, else ``HF_HOME/hub``,
    else None (huggingface_hub's default, ``~/.cache/huggingface/hub``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return None


def _split_revision(repo_id: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")`` (timm's hf_hub_id form)."""
    repo, _, revision = repo_id.partition("@")
    return repo, revision or None


def hub_download(repo_id: str, filename: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Download ``filename`` of Hub repo ``repo_id`` (``org/name`` or ``org/name@revision``) into the
    Hub cache, or find it there, and return its path.

    Raises:
        ImportError: huggingface_hub is not installed (says what to install).
        FileNotFoundError: the repo or file does not exist, or offline mode is on and the cache lacks it.
        ConnectionError: the Hub cannot be reached and the file is not cached.
        OSError: the transfer failed (for example, it ended early).
    """
    hub = _hub_module()
    from huggingface_hub import errors

    repo, revision = _split_revision(repo_id)
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/{repo}/resolve/{revision or 'main'}/{filename}"
    cache = hub_cache_dir(cache_dir)
    offline = _truthy(os.environ.get("HF_HUB_OFFLINE"))
    try:
        path = hub.hf_hub_download(repo, filename, revision=revision, cache_dir=cache, endpoint=endpoint,
                                   local_files_only=offline, library_name="wavevision")
    except errors.LocalEntryNotFoundError as e:
        where = f"the Hugging Face cache ({cache or '~/.cache/huggingface/hub'})"
        if offline:
            raise FileNotFoundError(f"{url} is not in {where} and offline mode is on (HF_HUB_OFFLINE=1): run once "
                                    f"with network access to fill the cache, {_LOCAL_FIX}") from None
        reason = str(e.__cause__ or e).splitlines()[0]
        raise ConnectionError(f"could not download {url}: the Hub cannot be reached ({reason}) and the file is not "
                              f"in {where}; check the network (HF_ENDPOINT names a mirror), {_LOCAL_FIX}") from None
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError) as e:
        kind = type(e).__name__.replace("Error", "").replace("Remote", "")
        raise FileNotFoundError(f"{url} does not exist on the Hub ({kind}); check the repo id and file name") from None
    except Exception as e:  # the transfer itself (its HTTP stack raises types of its own): one message
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise OSError(f"downloading {url} failed ({reason}); try again (a partial file is resumed), {_LOCAL_FIX}") from None
    return Path(path)


def list_pretrained(pattern: str = "*") -> list[str]:
    """The ``name.tag`` of every record with released weights whose tagged name (or model name)
    matches the shell-style ``pattern``; the default tag of each model first, as in timm."""
    from ._registry import get_entry, list_models

    out = []
    for name in list_models():
        entry = get_entry(name)
        for tag in entry.cfgs.tags:
            tagged = f"{name}.{tag}" if tag else name
            if entry.cfgs.cfgs[tag].has_weights and (fnmatch.fnmatch(tagged, pattern) or fnmatch.fnmatch(name, pattern)):
                out.append(tagged)
    return out


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
    from ._builder import save_safetensors_bytes

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
           if k not in ("url", "file", "hf_hub_id", "hf_hub_filename", "source", "architecture")}
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
    ``model_args`` a mapping of plain values (no NaN), ``pretrained_cfg`` a mapping."""
    where = f"Hub config {path}"
    text = read_text(path, max_bytes=_MAX_CONFIG_BYTES, what="Hub config")
    try:
        cfg = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{where} is not valid JSON ({e}); write the folder again with save_pretrained") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(cfg).__name__}")
    arch = cfg.get("architecture")
    if not isinstance(arch, str) or not arch:
        raise ValueError(f"{where} has no 'architecture' (the registered model name); is it a wavevision or timm "
                         "model folder?")
    for key in ("model_args", "pretrained_cfg"):
        if not isinstance(cfg.setdefault(key, {}), dict):
            raise ValueError(f"{where}: {key!r} must be a mapping, got {type(cfg[key]).__name__}")
    for name, value in cfg["model_args"].items():
        check_nested(f"{where}: model_args.{name}", value)
    return cfg


def folder_files(spec: str, *, cache_dir: str | os.PathLike | None = None) -> tuple[Path, Path, str]:
    """``(config.json, weights, source)`` of ``hf-hub:org/name[@rev]`` or ``local-dir:PATH``."""
    if spec.startswith(HF_HUB_PREFIX):
        repo = spec[len(HF_HUB_PREFIX):]
        org, _, rest = repo.partition("@")[0].partition("/")
        if not org or not rest or "/" in rest:
            raise ValueError(f"{spec!r} names no Hub repo; write hf-hub:ORG/NAME (optionally @REVISION)")
        config = hub_download(repo, CONFIG_NAME, cache_dir=cache_dir)
        try:
            weights = hub_download(repo, WEIGHTS_NAME, cache_dir=cache_dir)
        except FileNotFoundError:
            weights = hub_download(repo, LEGACY_WEIGHTS_NAME, cache_dir=cache_dir)
        return config, weights, spec
    folder = Path(spec[len(LOCAL_DIR_PREFIX):]).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{spec!r}: {folder} is not a folder; point local-dir: at a folder written by "
                                "wavevision.save_pretrained (or wavevision export RUN --format hub)")
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}; is it a folder written by wavevision.save_pretrained?")
    weights = folder / WEIGHTS_NAME
    if not weights.exists() and (folder / LEGACY_WEIGHTS_NAME).exists():
        weights = folder / LEGACY_WEIGHTS_NAME
    if not weights.exists():
        raise FileNotFoundError(f"{folder} has no {WEIGHTS_NAME}; write the folder again with save_pretrained")
    return config, weights, spec


def hub_model_args(cfg: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments to build a folder's model: its ``model_args`` and ``pretrained_cfg``, then ``overrides``."""
    args = {**cfg["model_args"], **overrides}
    if "pretrained_cfg" not in overrides and cfg["pretrained_cfg"]:
        # JSON has no tuples: sizes, mean and std come back as lists
        args["pretrained_cfg"] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["pretrained_cfg"].items()}
    return args
