"""``wavevision list``: registered models with their task, parameters and reference results."""
from __future__ import annotations

import argparse

NAME = "list"
HELP = "list registered models (task, parameters, reference results)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'wavemix_lite*'")
    parser.add_argument("--task", default=None, help="only models of this task: classification, segmentation, "
                                                     "super-resolution")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def rows(pattern: str = "*", task: "str | None" = None) -> list:
    """One dict per matching model: name, task, params, and the published reference."""
    from ..models import get_entry, list_models
    from ..models._registry import TASKS

    if task is not None:
        task = task.replace("-", "_")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(t.replace('_', '-') for t in TASKS)}")
    out = []
    for name in list_models(pattern, task=task):
        e = get_entry(name)
        ref = e.reference
        result = None
        if "value" in ref:
            result = f"{ref.get('dataset', '')} {ref.get('metric', '')} {ref['value']}".strip()
        elif "dataset" in ref:
            result = ref["dataset"]
        out.append({"name": name, "task": e.task.replace("_", "-"), "params": e.params,
                    "reference_params": ref.get("params"), "reference": result, "source": ref.get("source")})
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from ..utils import format_table

    found = rows(args.pattern, args.task)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        raise ValueError(f"no model matches {args.pattern!r}" + (f" for task {args.task}" if args.task else "")
                         + "; wavevision list shows all")
    print(format_table(found, ["name", "task", "params", "reference_params", "reference"],
                       headers={"reference_params": "ref. params", "reference": "reference result"}))
    return 0
