"""Task objects: what classification, segmentation, super-resolution and detection mean to the engine.

``get_task(name)`` returns the registered :class:`Task` for a task name (the key the model
registry and ``DatasetInfo.task`` use). The engine chooses the object once and calls it; no
code outside these files compares task names. A new task is a :class:`Task` subclass passed
to :func:`register_task`.
"""
from __future__ import annotations

from ...outputs import SegmentationOutput, TokenLabelOutput  # the tasks' output types (models return them)
from ...utils.task_names import add_task_name, remove_task_name
from .base import InFloat32, PredictItem, Task
from .classification import Classification, class_logits
from .detection import Detection
from .segmentation import Segmentation
from .super_resolution import SuperResolution

__all__ = [
    "Classification",
    "Detection",
    "InFloat32",
    "PredictItem",
    "Segmentation",
    "SegmentationOutput",
    "SuperResolution",
    "Task",
    "TokenLabelOutput",
    "class_logits",
    "get_task",
    "list_tasks",
    "register_task",
]

_TASKS: dict[str, Task] = {}


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Make ``task`` the object :func:`get_task` returns for ``task.name``; from then on the model
    registry and ``DatasetInfo`` accept the name too.

    Raises:
        ValueError: the name is already taken (``replace=True`` swaps it on purpose), or empty.
    """
    if not isinstance(task, Task) or not task.name:
        raise ValueError(f"register_task needs a Task instance with a name, got {task!r}")
    if task.name in _TASKS and not replace:
        raise ValueError(f"task {task.name!r} is registered twice; pass replace=True to swap it")
    _TASKS[task.name] = task
    add_task_name(task.name)
    return task


def unregister_task(name: str) -> None:
    """Forget the task ``name`` (tests that register a task of their own clean up with this)."""
    _TASKS.pop(name, None)
    remove_task_name(name)


def get_task(name: str | Task) -> Task:
    """The registered task object for ``name`` (a Task is returned as it is)."""
    if isinstance(name, Task):
        return name
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(_TASKS)}")
    return _TASKS[name]


def list_tasks() -> list[str]:
    """The registered task names."""
    return list(_TASKS)


for _task in (Classification(), Segmentation(), SuperResolution(), Detection()):
    register_task(_task)
del _task
