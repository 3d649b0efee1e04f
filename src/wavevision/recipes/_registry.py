"""The recipe registry: names and their :class:`Recipe` records (like the model registry)."""
from __future__ import annotations

import difflib
import fnmatch

from ._recipe import Recipe

__all__ = ["dataset_recipe", "get_recipe", "list_recipes", "register_recipe"]

_REGISTRY: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` under its name; a name registered twice, or a second default recipe for
    one dataset, is an error. Returns the recipe."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"register_recipe takes a Recipe, got {type(recipe).__name__}")
    if recipe.name in _REGISTRY:
        raise ValueError(f"recipe {recipe.name!r} is registered twice")
    existing = dataset_recipe(recipe.data.dataset) if recipe.dataset_default else None
    if existing is not None:
        raise ValueError(f"dataset {recipe.data.dataset!r} already has a default recipe "
                         f"({existing.name!r}); register {recipe.name!r} without dataset_default")
    _REGISTRY[recipe.name] = recipe
    return recipe


def list_recipes(pattern: str = "*") -> list[str]:
    """Sorted registered recipe names matching a shell-style ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_recipe(name: str) -> Recipe:
    """The recipe registered as ``name``; an unknown name raises a one-line ValueError with close names."""
    if not isinstance(name, str):
        raise TypeError(f"recipe name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown recipe {name!r}.{hint} See wavevision list --recipes for all names.") from None


def dataset_recipe(dataset: str) -> Recipe | None:
    """The recipe ``train --dataset DATASET`` uses when no recipe is named (None if there is none)."""
    return next((r for r in _REGISTRY.values() if r.dataset_default and r.data.dataset == dataset), None)
