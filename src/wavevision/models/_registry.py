"""The model registry: names, the functions that build them, and their reference numbers."""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

__all__ = ["ModelEntry", "get_entry", "list_models", "register_model", "suggest"]

TASKS = ("classification", "segmentation", "super_resolution")


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one name.

    Attributes:
        name: the registered name.
        fn: builder taking keyword overrides and returning the model.
        task: one of ``classification``, ``segmentation``, ``super_resolution``.
        params: exact parameter count of the default build (None for open family entries
            whose size depends on the overrides).
        reference: published facts (reference params, metric, value, dataset, source).
    """

    name: str
    fn: Callable[..., Any]
    task: str
    params: Optional[int] = None
    reference: Dict[str, Any] = field(default_factory=dict)


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(*, task: str, params: Optional[int] = None, reference: Optional[Dict[str, Any]] = None):
    """Decorator registering a model builder under its function name; a name registered twice is an error."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, task, params, dict(reference or {}))
        return fn

    return wrap


def suggest(name: str, n: int = 3) -> List[str]:
    """Registered names close to ``name``."""
    return difflib.get_close_matches(name, list(_REGISTRY), n=n, cutoff=0.5)


def get_entry(name: str) -> ModelEntry:
    """The entry for ``name``; unknown names raise a ValueError suggesting close names."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = suggest(name)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} See wavevision.list_models() for all names.") from None


def list_models(pattern: str = "*", *, task: Optional[str] = None) -> List[str]:
    """Sorted registered names matching a shell-style ``pattern``, optionally of one ``task``."""
    names = [n for n, e in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (task is None or e.task == task)]
    return sorted(names)
