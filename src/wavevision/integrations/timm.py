"""Every wavevision model in timm's registry, so timm's tools take them like their own.

Importing this module (or calling :func:`wavevision.register_timm`) registers each name of
``wavevision.list_models()`` with ``timm.models.register_model``, with its pretrained
records (all tags) converted to timm's ``PretrainedCfg``. Then::

    import timm, wavevision
    wavevision.register_timm()
    model = timm.create_model("wavemix_lite_8_10", num_classes=10)   # or "wave_vit_s.in1k_384"
    cfg = timm.data.resolve_data_config(model=model)                  # 1 x 28 x 28, MNIST mean/std
    transform = timm.data.create_transform(**cfg)
    backbone = timm.create_model("wave_vit_s", features_only=True, out_indices=(1, 2, 3))

timm's keyword arguments reach the wavevision builder unchanged (``pretrained``,
``pretrained_cfg``, ``pretrained_cfg_overlay``, ``num_classes``, ``in_chans``, ``drop_rate``,
``drop_path_rate``, ``global_pool``, ``features_only``, ``out_indices``, ``feature_cls``; timm's
``feature_cfg`` dict is unpacked into the last two). Wave-ViT models made here return plain
logits in training (``set_token_label_training(False)``), as timm's training loop expects.

timm's ``train.py`` takes ``--model NAME`` once the names are registered in its process; run
it through a two-line launcher (see the README, "Using wavevision models with timm").
Registration is idempotent; a name timm already has for another model is skipped with a warning.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import timm  # noqa: F401 - this module exists to use it
from timm.models import PretrainedCfg as TimmPretrainedCfg
from timm.models import generate_default_cfgs, is_model, model_entrypoint, register_model

from ..models import WaveViT, create_model, get_entry, list_models
from ..models._pretrained import PretrainedCfg

__all__ = ["register_timm"]

#: timm reads each registered name's records from this module's ``default_cfgs`` (its convention).
default_cfgs: dict[str, Any] = {}
_TIMM_FIELDS = {f.name for f in dataclasses.fields(TimmPretrainedCfg)}
_OURS = {f.name for f in dataclasses.fields(PretrainedCfg)}


def _timm_record(cfg: PretrainedCfg) -> dict[str, Any]:
    """Our record with only the fields timm's ``PretrainedCfg`` has."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k in _TIMM_FIELDS}


def _as_ours(pretrained_cfg: Any) -> Any:
    """A timm ``PretrainedCfg`` passed to ``timm.create_model`` as a dict of our fields (unset ones left out)."""
    if isinstance(pretrained_cfg, TimmPretrainedCfg):
        cfg = dataclasses.asdict(pretrained_cfg)
        extra = sorted(k for k, v in cfg.items() if k not in _OURS and v is not None)
        if extra:
            raise ValueError(f"pretrained_cfg fields {extra} are not supported by wavevision models")
        return {k: v for k, v in cfg.items() if k in _OURS and v is not None}
    return pretrained_cfg


def _entrypoint(name: str) -> Callable[..., Any]:
    def build(pretrained: bool = False, **kwargs: Any) -> Any:
        # timm passes its optional arguments as None when unset
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        feature_cfg = kwargs.pop("feature_cfg", None) or {}
        unknown = sorted(set(feature_cfg) - {"feature_cls", "out_indices"})
        if unknown:
            raise ValueError(f"{name}: feature_cfg keys {unknown} are not supported; use feature_cls and out_indices")
        kwargs.update(feature_cfg)
        if "pretrained_cfg" in kwargs:
            kwargs["pretrained_cfg"] = _as_ours(kwargs["pretrained_cfg"])
        model = create_model(name, pretrained=pretrained, **kwargs)
        if isinstance(model, WaveViT):
            model.set_token_label_training(False)
        return model

    build.__name__ = build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = get_entry(name).fn.__doc__
    return build


def register_timm() -> list[str]:
    """Register every wavevision model with timm (idempotent); returns the names registered by this call."""
    done = []
    for name in list_models():
        if is_model(name):
            if getattr(model_entrypoint(name), "__module__", None) != __name__:
                warnings.warn(f"timm already has a model named {name!r}; wavevision's {name} is not registered in timm",
                              stacklevel=2)
            continue
        entry = get_entry(name)
        records: dict[str, Any] = {f"{name}.{tag}" if tag else name: _timm_record(entry.cfgs.cfgs[tag]) for tag in entry.cfgs.tags}
        default_cfgs.update(generate_default_cfgs(records))
        register_model(_entrypoint(name))
        done.append(name)
    return done


REGISTERED: list[str] = register_timm()  # importing this module registers; the names it added
