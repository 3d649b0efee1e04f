"""Help-text pieces derived from the registries, so ``--help`` names every task (and its sizes)
without a list of its own."""
from __future__ import annotations

from ..utils.task_names import task_names


def task_sizes() -> str:
    """``224x224 for classification, 512x512 for segmentation, ...``: the input size each
    registered task is measured at when nothing else says (``Task.input_size``)."""
    # the engine's task objects hold the sizes; `wavevision train`'s flags import the engine anyway
    from ..engine.tasks import get_task

    return ", ".join(f"{'x'.join(map(str, get_task(n).input_size))} for {n.replace('_', '-')}" for n in task_names())


def task_metrics() -> str:
    """``top1 (classification), ..., box_ap (detection)``: the metric that selects the best epoch, per registered task."""
    from ..engine.tasks import get_task  # as task_sizes

    return ", ".join(f"{get_task(n).metric} ({n.replace('_', '-')})" for n in task_names())
