"""Old names that keep working: each warns once (a FutureWarning naming the new name), then resolves.

Model names are renamed in the registry (:func:`wavevision.models.register_model_deprecations`);
this module holds what classes need: one warning per old name and process and a module
``__getattr__`` for renamed classes (a renamed module keeps a stub at its old path).
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["renamed_attributes", "warn_renamed"]

_warned: set[str] = set()


def warn_renamed(what: str, old: str, new: str, stacklevel: int = 3) -> None:
    """Warn once per process that ``what`` ``old`` is now ``new`` (a FutureWarning, as timm's deprecated names)."""
    key = f"{what}:{old}"
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(f"{what} {old!r} is deprecated and will be removed: it is now {new!r}; use the new name",
                  FutureWarning, stacklevel=stacklevel)


def renamed_attributes(module: str, renamed: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module``: ``renamed`` maps old attribute names to new ones,
    which are read from the module itself after a one-time warning."""

    def __getattr__(name: str) -> Any:
        if name not in renamed:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warn_renamed("class", f"{module}.{name}", f"{module}.{renamed[name]}")
        return getattr(sys.modules[module], renamed[name])

    return __getattr__
