"""The model registry: names, the functions that build them, and their pretrained configurations."""
from __future__ import annotations

import difflib
import fnmatch
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..utils.task_names import check_task
from ._deprecated import warn_renamed
from ._pretrained import DefaultCfg, split_model_name_tag

__all__ = ["ModelEntry", "deprecated_models", "get_entry", "get_pretrained_cfg", "list_models", "register_model",
           "register_model_deprecations", "resolve_model_name", "suggest"]

@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one name.

    Attributes:
        name: the registered name.
        fn: builder taking keyword overrides and returning the model.
        cfgs: the model's pretrained configurations by tag (``cfgs.default`` first).
    """

    name: str
    fn: Callable[..., Any]
    cfgs: DefaultCfg

    @property
    def family(self) -> str:
        """The model family: the module under ``wavevision.models`` that registers it (``"wavemix"``,
        ``"wave_vit"``, ``"wavemixsr"``, ...), as timm records each model's module."""
        return self.fn.__module__.rsplit(".", 1)[-1]

    @property
    def task(self) -> str:
        """The model's task, one of :func:`wavevision.utils.task_names.task_names`."""
        return self.cfgs.default.task

    @property
    def params(self) -> int | None:
        """Exact parameter count of the default build."""
        return self.cfgs.default.params

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """The default tag's record as a plain dict (what ``model.pretrained_cfg`` holds)."""
        return self.cfgs.default.to_dict()

    @property
    def tags(self) -> list[str]:
        """``name`` or ``name.tag`` for every record, the default first."""
        return [f"{self.name}.{t}" if t else self.name for t in self.cfgs.tags]

    @property
    def reference(self) -> dict[str, Any]:
        """The default record's published facts in one flat dict (dataset, metrics, params,
        MACs, source), for display."""
        return self.reference_for(self.name)

    def reference_for(self, name: str) -> dict[str, Any]:
        """:attr:`reference` of the record ``name`` or ``name.tag`` names."""
        tag = split_model_name_tag(name)[1]
        cfg = self.cfgs.cfgs[tag] if tag in self.cfgs.cfgs else self.cfgs.default
        facts: dict[str, Any] = {"dataset": cfg.dataset, **cfg.metrics, "params": cfg.params, "macs": cfg.macs,
                                 "input_size": cfg.input_size, "source": cfg.metrics_source or cfg.paper_name}
        return {k: v for k, v in facts.items() if v is not None}


_REGISTRY: dict[str, ModelEntry] = {}
_DEPRECATED: dict[str, str] = {}  # old model name -> its registered name (timm's deprecated names)


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator registering a builder under its function name, with the records listed for that
    name in its module's ``default_cfgs``. A name registered twice, or without a record, is an error."""
    name = fn.__name__
    if name in _REGISTRY or name in _DEPRECATED:
        raise ValueError(f"model {name!r} is registered twice")
    cfgs = getattr(sys.modules[fn.__module__], "default_cfgs", {}).get(name)
    if not isinstance(cfgs, DefaultCfg):
        raise ValueError(f"model {name!r} has no pretrained cfg: list it in {fn.__module__}.default_cfgs")
    check_task(cfgs.default.task, f"model {name!r}")
    _REGISTRY[name] = ModelEntry(name, fn, cfgs)
    return fn


def register_model_deprecations(deprecations: dict[str, str]) -> None:
    """Keep old model names working after a rename (timm's ``register_model_deprecations``): each
    old name (and its ``name.tag``) builds the new model, with a FutureWarning naming the new name
    once per process. Old names are hidden from :func:`list_models` unless ``include_deprecated``."""
    for old, new in deprecations.items():
        if old in _REGISTRY or old in _DEPRECATED:
            raise ValueError(f"deprecated model name {old!r} is registered twice")
        if new not in _REGISTRY:
            raise ValueError(f"deprecated model name {old!r} points to {new!r}, which is not registered")
        _DEPRECATED[old] = new


def deprecated_models() -> dict[str, str]:
    """Old model names and the registered names they now resolve to."""
    return dict(_DEPRECATED)


def resolve_model_name(name: str) -> str:
    """``name`` (or ``name.tag``) with a deprecated model name replaced by its new one (warning once);
    any other name (or non-string, which :func:`get_entry` refuses) unchanged."""
    if not isinstance(name, str):
        return name
    arch, tag = split_model_name_tag(name)
    if arch not in _DEPRECATED:
        return name
    new = _DEPRECATED[arch]
    warn_renamed("model name", arch, new, stacklevel=4)
    return f"{new}.{tag}" if tag else new


def suggest(name: str, n: int = 3) -> list[str]:
    """Registered names close to ``name``."""
    return difflib.get_close_matches(name, list(_REGISTRY), n=n, cutoff=0.5)


def get_entry(name: str) -> ModelEntry:
    """The entry for ``name`` (a ``name.tag`` gives its model's entry); unknown names raise a
    ValueError suggesting close names."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    name = resolve_model_name(name)
    arch, tag = split_model_name_tag(name)
    try:
        entry = _REGISTRY[arch]
    except KeyError:
        close = suggest(arch)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} See wavevision.list_models() for all names.") from None
    if tag and tag not in entry.cfgs.cfgs:
        every = [t for e in _REGISTRY.values() for t in e.tags]
        close = difflib.get_close_matches(name, every, n=3, cutoff=0.8)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"{arch} has no pretrained tag {tag!r}{hint}; known: {', '.join(map(repr, entry.tags))}; "
                         "wavevision.list_pretrained() lists the tags with released weights")
    return entry


def get_pretrained_cfg(name: str) -> dict[str, Any]:
    """The record of ``name`` or ``name.tag`` as a plain dict."""
    entry = get_entry(name)
    tag = split_model_name_tag(name)[1] or entry.cfgs.tags[0]
    return entry.cfgs.cfgs[tag].to_dict()


def list_models(pattern: str = "*", *, task: str | None = None, pretrained: bool = False,
                include_deprecated: bool = False) -> list[str]:
    """Sorted registered names matching a shell-style ``pattern``, optionally of one ``task`` or
    only those with released weights (``pretrained=True``); ``include_deprecated`` adds the old
    names that still build a renamed model (:func:`deprecated_models`). An unknown ``task`` is an error."""
    if task is not None:
        check_task(task, "list_models")
    entries = list(_REGISTRY.items())
    if include_deprecated:
        entries += [(old, _REGISTRY[new]) for old, new in _DEPRECATED.items()]
    names = [
        n for n, e in entries
        if fnmatch.fnmatch(n, pattern) and (task is None or e.task == task) and (not pretrained or e.cfgs.is_pretrained)
    ]
    return sorted(names)
