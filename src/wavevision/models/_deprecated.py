"""Old names that keep working: each warns once (a FutureWarning naming the new name), then resolves.

Model names are renamed in the registry (:func:`wavevision.models.register_model_deprecations`);
this module holds what classes and modules need: one warning per old name and process, a module
``__getattr__`` for renamed classes, and an import hook for renamed modules.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["renamed_attributes", "renamed_modules", "warn_renamed"]

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


class _RenamedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook: importing an old module path warns once and gives the module under its new path."""

    def __init__(self, renamed: Mapping[str, str]) -> None:
        self.renamed = dict(renamed)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(fullname, self) if fullname in self.renamed else None

    def create_module(self, spec: Any) -> ModuleType:
        new = self.renamed[spec.name]
        warn_renamed("module", spec.name, new, stacklevel=3)  # the import statement (warnings skips importlib's frames)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The new module is already executed."""


def renamed_modules(renamed: Mapping[str, str]) -> None:
    """Make each old dotted module path in ``renamed`` import its new one (warning once); idempotent."""
    for hook in sys.meta_path:
        if isinstance(hook, _RenamedModule):
            hook.renamed.update(renamed)
            return
    sys.meta_path.append(_RenamedModule(renamed))
