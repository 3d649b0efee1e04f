"""Building models by name, and loading weights: our checkpoints, pretrained records and the public package's.

Builders take timm's standard arguments (``pretrained``, ``pretrained_cfg``,
``pretrained_cfg_overlay``, ``num_classes``, ``in_chans``, ``drop_rate``, ``drop_path_rate``,
``global_pool``, ``features_only``, ``out_indices``, ``feature_cls``) besides each family's
hyperparameters, and give every model its ``pretrained_cfg`` record.

Our checkpoints are a ``.safetensors`` file of the state dict plus a ``.json`` file beside
it (same stem) holding the model name and the keyword overrides it was built with, so
``create_model(checkpoint=path)`` alone rebuilds the model. Files saved by the public
``wavemix`` package (``torch.save(model.state_dict())``, ``.pth``/``.pt``) load through
:func:`convert_official_state_dict`. Every safetensors read and write goes through the
``safetensors`` library (memory-mapped, offsets validated).
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
import torch.nn as nn

from ..accel import accelerate
from ..utils.io import atomic_write_bytes, read_text
from ..utils.validate import PathLike, check_bool, check_nested
from ._hub import (
    _LOADING_KEYS,
    folder_config,
    folder_weights,
    hub_download,
    hub_model_args,
    read_hub_config,
    save_safetensors_bytes,
)
from ._pretrained import PretrainedCfg, cfg_for_features, resolve_pretrained_cfg, split_model_name_tag
from ._registry import get_entry, resolve_model_name

__all__ = [
    "CheckpointMismatchError",
    "build_model",
    "convert_official_state_dict",
    "create_model",
    "load_safetensors",
    "load_state_dict_strict",
    "register_checkpoint_filter",
    "save_checkpoint",
    "save_safetensors_bytes",  # defined in _hub (which this module imports), named here too
]

CHECKPOINT_FORMAT = "wavevision-checkpoint"
CHECKPOINT_VERSION = 1
# timm's train.py saves "state_dict" and, with --model-ema, "state_dict_ema" beside it: the first found wins
# (timm's validate.py also loads "state_dict" unless told --use-ema); a file of EMA weights alone loads too.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "state_dict_ema")
_PREFIXES = ("module.", "_orig_mod.")
_M = TypeVar("_M", bound=nn.Module)
# timm's arguments that only steer the build; they are not recorded for rebuilding from a checkpoint.
_BUILD_ONLY = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "accel")
FEATURE_CLASSES = ("getter",)
_FOLDER_PREFIXES = ("hf-hub:", "local-dir:")  # timm's prefixes for Hub-style folders (models._hub)


class CheckpointMismatchError(ValueError):
    """A state dict does not fit the model it is loaded into."""


CheckpointFilter = Callable[[Mapping[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]
# Each family's checkpoint filter by model class (timm's pretrained_filter_fn), registered by the family's module.
_CHECKPOINT_FILTERS: dict[type, CheckpointFilter] = {}


def register_checkpoint_filter(cls: type, fn: CheckpointFilter) -> CheckpointFilter:
    """Make ``fn(state_dict, model)`` map every state dict loaded into a ``cls`` (or a subclass without a
    filter of its own) to that model's keys first: the family's foreign layouts (its reference
    code's extra buffers, earlier wavevision layouts). One filter per class; returns ``fn``."""
    if cls in _CHECKPOINT_FILTERS:
        raise ValueError(f"{cls.__name__} already has a checkpoint filter ({_CHECKPOINT_FILTERS[cls].__name__})")
    _CHECKPOINT_FILTERS[cls] = fn
    return fn


def _accepted(cls: type) -> list[str]:
    return [p for p in inspect.signature(cast(Any, cls).__init__).parameters if p != "self"]


def _drop_rate_alias(name: str, kwargs: dict[str, Any], accepted: list[str]) -> None:
    """timm's ``drop_rate`` is the family's ``dropout`` where the class has no ``drop_rate`` of its own."""
    if "drop_rate" not in kwargs or "drop_rate" in accepted or "dropout" not in accepted:
        return
    rate = kwargs.pop("drop_rate")
    if "dropout" in kwargs and kwargs["dropout"] != rate:
        raise ValueError(f"{name}: drop_rate={rate!r} and dropout={kwargs['dropout']!r} disagree; drop_rate is "
                         "timm's name for dropout here, pass one of them")
    kwargs["dropout"] = rate


def _feature_args(name: str, kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """Pop ``features_only``, ``out_indices``, ``feature_cls``; returns (features_only, out_indices)."""
    features_only = check_bool("features_only", kwargs.pop("features_only", False))
    out_indices = kwargs.pop("out_indices", None)
    feature_cls = kwargs.pop("feature_cls", None)
    if not features_only and (out_indices is not None or feature_cls is not None):
        raise ValueError(f"{name}: out_indices and feature_cls apply to a backbone; pass features_only=True with them")
    if feature_cls is not None and (not isinstance(feature_cls, str) or feature_cls.lower() not in FEATURE_CLASSES):
        raise ValueError(
            f"{name}: feature_cls={feature_cls!r} is not supported; choose one of {FEATURE_CLASSES} (the default): "
            "wavevision backbones return their maps through forward_intermediates; timm's hook, list, dict and fx "
            "wrappers need models built as a sequence of feature modules"
        )
    return features_only, out_indices


def _check_argument_types(name: str, cls: type, defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
    """Name an argument of another kind than its default (``final_dim='eight'``, ``final_dim=16.0``):
    called when the class failed with a TypeError, whose own message (``not all arguments
    converted during string formatting``) says nothing of the argument."""
    params = inspect.signature(cast(Any, cls).__init__).parameters
    for key, value in kwargs.items():
        default = defaults[key] if key in defaults else getattr(params.get(key), "default", None)
        if isinstance(default, bool) or not isinstance(default, (int, float)) or value is None:
            continue
        if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name}: argument {key} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: argument {key} must be a number, got {value!r}") from None


def _check_used(name: str, cls: type, defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
    """Refuse an argument the model's other settings make it ignore (``patch_size`` with a
    strided stem): it would be recorded in checkpoints while changing nothing."""
    ignored = getattr(cls, "ignored_arguments", None)
    if ignored is None:
        return
    for key, reason in ignored({**defaults, **kwargs}).items():
        if key in kwargs:
            raise ValueError(f"{name}: argument {key}={kwargs[key]!r} has no effect: {reason}")


def build_model(name: str, cls: type[_M], defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> _M:
    """Instantiate ``cls`` with ``defaults`` updated by ``overrides`` and remember how.

    ``overrides`` may hold timm's standard arguments besides the class's own: ``pretrained``
    (load the weights the record names), ``pretrained_cfg`` (a tag, a dict or a record),
    ``pretrained_cfg_overlay`` (fields replaced), ``drop_rate`` (the family's ``dropout`` where it
    has no ``drop_rate``), and ``features_only`` / ``out_indices`` / ``feature_cls`` (a backbone
    returning feature maps), and ``accel`` (default True: :func:`wavevision.accel.accelerate`
    swaps in the CPU fast modules, same state dict; False: the plain reference modules).
    Unknown names raise a TypeError listing the accepted ones. The model gets ``model_name``,
    ``model_kwargs`` (the overrides, to rebuild it from a checkpoint) and ``pretrained_cfg``.
    """
    kwargs = dict(overrides)
    pretrained = check_bool("pretrained", kwargs.pop("pretrained", False))
    accel = check_bool("accel", kwargs.pop("accel", True))
    cfg = resolve_pretrained_cfg(name, get_entry(name).cfgs, kwargs.pop("pretrained_cfg", None),
                                 kwargs.pop("pretrained_cfg_overlay", None))
    cache_dir = kwargs.pop("cache_dir", None)
    features_only, out_indices = _feature_args(name, kwargs)
    accepted = _accepted(cls)
    recorded = {k: v for k, v in overrides.items() if k not in _BUILD_ONLY}
    if "num_classes" not in kwargs and "num_classes" in accepted and cfg.num_classes != get_entry(name).cfgs.default.num_classes:
        # A tag trained on another dataset brings its head size (timm's rule), recorded for rebuilding.
        kwargs["num_classes"] = recorded["num_classes"] = cfg.num_classes
    _drop_rate_alias(name, kwargs, accepted)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{name}: unknown argument(s) {unknown}; accepted: {accepted} and timm's pretrained, "
                        "pretrained_cfg, pretrained_cfg_overlay, drop_rate, features_only, out_indices, feature_cls, accel")
    _check_used(name, cls, defaults, kwargs)
    try:
        model: Any = cls(**{**defaults, **kwargs})
    except TypeError:
        _check_argument_types(name, cls, defaults, kwargs)
        raise
    model.model_name = name
    model.model_kwargs = recorded
    model.pretrained_cfg = cfg.to_dict()
    if pretrained:
        load_pretrained(model, cfg, cache_dir=cache_dir)
    if features_only:
        model.as_backbone(out_indices)
        model.pretrained_cfg = cfg_for_features(model.pretrained_cfg)
    return cast(_M, accelerate(model, accel))  # accelerate swaps submodules in place: the same model


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
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


def convert_official_state_dict(state_dict: Mapping[str, Any], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Map a state dict saved by the public implementation to wavevision's layout.

    Accepts a plain state dict or one wrapped under ``state_dict``/``model`` (or ``state_dict_ema``
    alone: ``state_dict`` wins in a timm train.py checkpoint holding both); strips the
    ``module.`` prefix of (Distributed)DataParallel and ``_orig_mod.`` of torch.compile. With
    ``model``, its family's registered checkpoint filter then maps what is left (e.g. Wave-ViT
    drops the reference's recomputed float16 Haar buffers); loading into a model applies it anyway.
    WaveMix and Wave-ViT module names already equal the reference ones.
    """
    sd = _unwrap(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out if model is None else dict(_filtered(model, out))


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Load ``state_dict`` strictly, raising :class:`CheckpointMismatchError` that names what differs
    (the family's registered checkpoint filter, where it has one, maps its other layouts first, and
    its ``check_checkpoint(state_dict)`` names a foreign layout)."""
    state_dict = _filtered(model, state_dict)
    check = getattr(model, "check_checkpoint", None)
    if callable(check):
        check(state_dict)
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
        shape_args = [a for a in _accepted(type(model)) if a not in ("num_classes", "in_chans")][:5]  # the model's own
        parts.append(f"build the model with the checkpoint's hyperparameters ({type(model).__name__}: "
                     f"{', '.join(shape_args)}, ...) or pick the matching name")
        raise CheckpointMismatchError("; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def _filtered(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """``state_dict`` through the checkpoint filter registered for the model's class (the nearest in its
    method resolution order; :func:`register_checkpoint_filter`), if any."""
    for cls in type(model).__mro__:
        if cls in _CHECKPOINT_FILTERS:
            return _CHECKPOINT_FILTERS[cls](state_dict, model)
    return state_dict


def _config_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_checkpoint(model: nn.Module, path: PathLike, *, extra: Mapping[str, Any] | None = None) -> Path:
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


def _read_config(path: Path) -> dict[str, Any]:
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
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply to be a checkpoint config") from None
    except ValueError as e:  # JSONDecodeError, and integers of more than 4,300 digits
        raise ValueError(f"{where} is not valid JSON ({' '.join(str(e).split())[:200]}); save the checkpoint "
                         "again") from None
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
    cfg["model"] = resolve_model_name(cfg["model"])  # a checkpoint saved under a renamed model's old name
    for key, what in (("kwargs", "a mapping of argument names to values"), ("extra", "a mapping")):
        if not isinstance(cfg.setdefault(key, {}), dict):
            raise ValueError(f"{where}: {key!r} must be {what}, got {type(cfg[key]).__name__}")
    loading = sorted(k for k in cfg["kwargs"] if k in _LOADING_KEYS)
    if loading:  # a config describes the architecture; the weights are the file beside it
        raise ValueError(f"{where} asks for loading with kwargs.{loading[0]}; a checkpoint's config cannot load weights "
                         "from elsewhere: remove it (the weights are the .safetensors beside it)")
    for name, value in cfg["kwargs"].items():
        check_nested(f"{where}: kwargs.{name}", value)
    return cfg


def _load_official(path: Path) -> dict[str, torch.Tensor]:
    _check_regular_file(path)
    try:
        # timm's train.py checkpoints also hold its argparse.Namespace: allowed, nothing else is
        safe = getattr(torch.serialization, "safe_globals", None)
        with safe([argparse.Namespace]) if safe is not None else contextlib.nullcontext():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        why = " ".join(str(e).split())[:200]  # torch's refusals span many lines
        raise ValueError(f"could not read {path} as a PyTorch state dict ({type(e).__name__}: {why}); if it was "
                         "downloaded, the transfer may have been cut short: delete the file and download it again") from None
    try:
        return convert_official_state_dict(obj)
    except TypeError as e:
        raise ValueError(f"{path} is not a state dict: {e}; save model.state_dict(), not the model or other objects") from None


# --------------------------------------------------------------------------------------
# safetensors files (the library: memory-mapped reads, validated offsets)


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file (a FIFO would block, a device never ends) before opening it."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; point to a weights file")


def load_safetensors(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file into CPU tensors; returns (tensors, metadata).

    Raises:
        ValueError: a file that is not valid safetensors (truncated, overlapping or out-of-range
            entries, a bad header), named with the library's reason.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    _check_regular_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path} is not a valid safetensors file ({e}); was it written completely?") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``.pth``/``.pt`` one (the public package's layout)."""
    if path.suffix == ".safetensors":
        return convert_official_state_dict(load_safetensors(path)[0])
    return _load_official(path)


# --------------------------------------------------------------------------------------
# Pretrained weights named by a record


def adapt_input_conv(in_chans: int, weight: torch.Tensor) -> torch.Tensor:
    """A first-conv weight trained on ``weight.shape[1]`` channels for ``in_chans`` channels (timm's rule):
    RGB to one channel sums the filters; more channels repeat them, scaled to keep the response."""
    have = weight.shape[1]
    if in_chans == have:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // have)
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (have / in_chans)


def _names(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


def _weights_file(cfg: PretrainedCfg, name: str, max_bytes: int, cache_dir: PathLike | None = None) -> Path:
    """The local file of ``cfg``'s weights: its ``file``, or its Hub file downloaded into the Hub cache
    (at most ``max_bytes``, or exactly the record's ``file_size``; matching its ``file_sha256``)."""
    if cfg.file:
        return Path(cfg.file)
    if cfg.hf_hub_id:
        return hub_download(cfg.hf_hub_id, cfg.hf_hub_filename or "model.safetensors", cache_dir=cache_dir,
                            max_bytes=max_bytes, size=cfg.file_size, sha256=cfg.file_sha256)
    if cfg.url:
        raise ValueError(
            f"{name}: its weights are published at {cfg.url}, which wavevision does not download; "
            "fetch the file and pass pretrained_cfg_overlay=dict(file=PATH) (or checkpoint=PATH)"
        )
    tagged = _tags_with_weights(name)
    hint = f"; tags with weights: {', '.join(tagged)}" if tagged else \
        " (wavevision.list_pretrained() lists the models that have them)"
    raise ValueError(
        f"{name}{'.' + cfg.tag if cfg.tag else ''} has no released weights (its pretrained_cfg names no file, url "
        f"or hf_hub_id){hint}; for weights you have, pass checkpoint=PATH or pretrained_cfg_overlay=dict(file=PATH)"
    )


def _tags_with_weights(name: str) -> list[str]:
    cfgs = get_entry(name).cfgs
    return [f"{name}.{t}" if t else name for t in cfgs.tags if cfgs.cfgs[t].has_weights]


def load_pretrained(model: nn.Module, cfg: PretrainedCfg, *, cache_dir: PathLike | None = None) -> None:
    """Load the weights ``cfg`` names into ``model`` (downloading a Hub file into the Hub cache),
    adapted as :func:`load_adapted` does."""
    name = getattr(model, "model_name", type(model).__name__)
    path = _weights_file(cfg, name, weights_cap(model), cache_dir)
    load_adapted(model, _read_weights(path), cfg, source=str(path))


def weights_cap(model: nn.Module) -> int:
    """The most bytes a weights file of ``model`` (real or ``meta``) may take when downloaded: twice
    its state dict (float64 copies fit) plus 1 MiB and 4 KiB per tensor (names, headers, zip entries)."""
    tensors = list(model.state_dict().values())
    return 2 * sum(t.numel() * t.element_size() for t in tensors) + (1 << 20) + 4096 * len(tensors)


def load_adapted(model: nn.Module, state: dict[str, torch.Tensor], cfg: PretrainedCfg, *, source: str) -> None:
    """Load ``state`` (trained for ``cfg``) into ``model`` like timm: a classifier for another
    ``num_classes`` is dropped (the model keeps its fresh one, with a warning saying so), and the
    first conv is adapted to the model's ``in_chans``. Everything else must fit exactly
    (:class:`CheckpointMismatchError` names the first mismatching key and both shapes)."""
    state = dict(_filtered(model, state))
    own = model.state_dict()
    classes = getattr(model, "num_classes", cfg.num_classes)
    if classes != cfg.num_classes:
        head = [k for p in _names(cfg.classifier) for k in (f"{p}.weight", f"{p}.bias")]
        dropped = [k for k in head if state.pop(k, None) is not None]
        state.update({k: own[k] for k in head if k in own})  # the model's fresh head
        if dropped:
            warnings.warn(f"{source} has a {cfg.num_classes}-class head and the model {classes} classes: its "
                          f"classifier ({', '.join(dropped)}) is not loaded and stays freshly initialised; "
                          "fine-tune it on your data", stacklevel=3)
    for prefix in _names(cfg.first_conv):
        key = f"{prefix}.weight"
        if key in state and key in own and state[key].shape[1] != own[key].shape[1]:
            state[key] = adapt_input_conv(own[key].shape[1], state[key])
    load_state_dict_strict(model, _for_model(model, state), source=source)


def _from_folder(spec: str, overrides: dict[str, Any]) -> nn.Module:
    """The model of a Hub-style folder (``hf-hub:org/name`` or ``local-dir:PATH``) with its weights:
    its config read and checked, the model sized on the ``meta`` device, then the weights fetched."""
    from dataclasses import replace

    cache_dir = overrides.pop("cache_dir", None)
    config_path = folder_config(spec, cache_dir=cache_dir)
    cfg = read_hub_config(config_path)
    try:
        entry = get_entry(cfg["architecture"])
    except ValueError as e:
        raise ValueError(f"{config_path} names architecture {cfg['architecture']!r}, which is not a wavevision "
                         f"model ({e}); a timm model folder loads with timm.create_model") from None
    overrides.pop("pretrained", None)
    args = hub_model_args(cfg, overrides)
    sized = _check_fits(lambda: entry.fn(**args), f"the model of {spec}", "is its config.json the right one?")
    classes, built = cfg.get("num_classes"), getattr(sized, "num_classes", None)
    if classes is not None and built is not None and "num_classes" not in overrides and classes != built:
        raise ValueError(f"{config_path}: num_classes {classes} disagrees with the {built} classes its "
                         "model_args build; write the folder again with save_pretrained (or correct one of them)")
    weights = folder_weights(spec, cache_dir=cache_dir, max_bytes=weights_cap(sized))
    model = entry.fn(**args)
    saved = PretrainedCfg.from_dict(model.pretrained_cfg)
    if classes is not None:
        saved = replace(saved, num_classes=classes)
    load_adapted(model, _read_weights(weights), saved, source=f"{spec} ({weights.name})")
    return model


def _check_fits(build: Any, what: str, fix: str) -> nn.Module:
    """The one memory estimate (:func:`wavevision.engine.sizing.check_model_fits`) before a real build."""
    from ..engine.sizing import check_model_fits  # engine imports this module: imported when used

    return check_model_fits(build, what=what, fix=fix)


# --------------------------------------------------------------------------------------
# The one entry point


def create_model(
    name: str | None = None,
    *,
    pretrained: bool = False,
    checkpoint: PathLike | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, optionally loading weights.

    Args:
        name: a registered name (``wavevision.list_models()``), optionally with a pretrained tag
            (``"wavemix_192_16_l3.in1k"``, see ``wavevision.list_pretrained()``); or a Hub-style
            folder written by :func:`wavevision.save_pretrained`, on the Hub (``"hf-hub:org/name"``)
            or on disk (``"local-dir:PATH"``), whose weights are always loaded. May be omitted
            when ``checkpoint`` is a wavevision checkpoint, whose config names the model.
        pretrained: load the weights the record names: the authors' released files download
            through huggingface_hub into the Hub cache (``HF_ENDPOINT``, ``HF_HOME``,
            ``HF_HUB_OFFLINE`` honoured); ``pretrained_cfg_overlay=dict(file=PATH)`` takes a
            local file instead. A ``num_classes`` other than the weights' keeps a fresh head.
        checkpoint: ``.safetensors`` saved by :func:`save_checkpoint` (config read from the
            ``.json`` beside it), or a ``.pth``/``.pt`` state dict of the public package.
        **overrides: hyperparameters replacing the registered defaults (e.g. ``num_classes``)
            and timm's standard arguments (``pretrained_cfg``, ``pretrained_cfg_overlay``,
            ``drop_rate``, ``drop_path_rate``, ``global_pool``, ``features_only``,
            ``out_indices``, ``feature_cls``), and ``accel``: True (default) applies
            :func:`wavevision.accel.accelerate` (CPU fast modules, same state dict), False
            builds the plain reference modules.
    """
    if isinstance(name, str) and name.startswith(_FOLDER_PREFIXES):
        if checkpoint is not None:
            raise ValueError(f"{name!r} names its weights already; drop checkpoint=PATH")
        return _from_folder(name, overrides)
    if name is not None:
        name = resolve_model_name(name)  # a renamed model's old name: a one-time warning, then the new name
        get_entry(name)  # unknown names and tags: a clear error first
        arch, tag = split_model_name_tag(name)
        if tag and overrides.get("pretrained_cfg") is None:
            overrides["pretrained_cfg"] = tag
        name = arch
    if checkpoint is None:
        if name is None:
            raise ValueError("create_model needs a model name (see wavevision.list_models()) or checkpoint=PATH")
        if pretrained:  # sized before the build and the download
            _check_fits(lambda: get_entry(name).fn(**overrides), f"the model {name}",
                        "pick a smaller model or smaller arguments")
        return get_entry(name).fn(pretrained=pretrained, **overrides)
    if pretrained:
        raise ValueError("pass either pretrained=True (the registered weights) or checkpoint=PATH, not both")
    path = Path(checkpoint)
    _check_regular_file(path)
    if path.suffix == ".safetensors":
        cfg = _read_config(path)
        if name is not None and name != cfg["model"]:
            raise CheckpointMismatchError(
                f"{path} holds a {cfg['model']!r} model, not {name!r}; call create_model(checkpoint=...) without a name"
            )
        kwargs = {**cfg.get("kwargs", {}), **overrides}
        entry = get_entry(cfg["model"])
        _check_fits(lambda: entry.fn(**kwargs), f"the model of {path}", f"is {_config_path(path).name} beside it "
                    "the right one?")
        model = entry.fn(**kwargs)
        tensors, _ = load_safetensors(path)
        load_state_dict_strict(model, _for_model(model, tensors), source=str(path))
        return model
    if name is None:
        raise ValueError(f"{path} is a plain state dict: pass the model name, e.g. create_model('wavemix', checkpoint=...)")
    _check_fits(lambda: get_entry(name).fn(**overrides), f"the model {name}", "pick a smaller model or smaller arguments")
    model = get_entry(name).fn(**overrides)
    load_state_dict_strict(model, _for_model(model, _load_official(path)), source=str(path))
    return model
