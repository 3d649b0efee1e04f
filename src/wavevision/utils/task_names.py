"""The task names every part of the package accepts: one list behind the model registry's
records, ``DatasetInfo.task``, ``list_models(task=...)`` and the command line's help texts.

What a task means (its loss, targets, meter, outputs) lives in its object in
:mod:`wavevision.engine.tasks`; :func:`wavevision.engine.register_task` adds the object's name
here, so a task registered once is accepted by the models and the datasets alike. This module
imports nothing of the package, so the lowest layers can ask it.
"""
from __future__ import annotations

__all__ = ["add_task_name", "check_task", "remove_task_name", "task_names", "task_words"]

# The built-in tasks, in the order listings show them; the engine registers one object for each.
_NAMES: list[str] = ["classification", "segmentation", "super_resolution", "detection"]


def task_names() -> tuple[str, ...]:
    """The accepted task names (the built-in ones first, then those registered since)."""
    return tuple(_NAMES)


def task_words() -> str:
    """The task names as a command line writes them, ``classification, ..., super-resolution, ...``."""
    return ", ".join(name.replace("_", "-") for name in _NAMES)


def add_task_name(name: str) -> None:
    """Accept ``name`` as a task name from now on (an accepted name is left as it is)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a task name must be a non-empty string, got {name!r}")
    if name not in _NAMES:
        _NAMES.append(name)


def remove_task_name(name: str) -> None:
    """Stop accepting ``name`` (what ``unregister_task`` calls; unknown names are ignored)."""
    if name in _NAMES:
        _NAMES.remove(name)


def check_task(task: object, where: str = "task") -> str:
    """``task`` if it is an accepted task name; otherwise a ValueError naming ``where`` and the
    accepted names."""
    if task not in _NAMES:
        raise ValueError(f"{where}: unknown task {task!r}; choose one of {', '.join(_NAMES)} "
                         "(or register a new one with wavevision.engine.register_task)")
    return str(task)
