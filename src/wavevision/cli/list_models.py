"""``wavevision list``: registered models with their task, parameters, input and published results."""
from __future__ import annotations

import argparse

from ..models import deprecated_models, get_entry, get_pretrained_cfg, list_models, list_pretrained
from ..recipes import get_recipe, list_recipes
from ..utils import format_table
from ..utils.task_names import task_names, task_words

NAME = "list"
HELP = "list registered models (task, parameters, input size, published results)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'wavemix_lite*'")
    parser.add_argument("--task", default=None, help=f"only models of this task: {task_words()}")
    parser.add_argument("--tags", action="store_true", help="one row per pretrained tag (name.tag) instead of per model")
    parser.add_argument("--pretrained", action="store_true",
                        help="only tags with released weights (create_model(NAME, pretrained=True)), with their results")
    parser.add_argument("--recipes", action="store_true",
                        help="list the training recipes instead (name, model, dataset, expected result, estimated "
                             "accelerator-hours); the pattern matches recipe names")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _result(cfg: dict) -> str | None:
    """``"ImageNet-1k top1 75.06"`` from a record's dataset and metrics (None when it has neither)."""
    metrics = " ".join(f"{k} {v}" for k, v in cfg.get("metrics", {}).items())
    text = f"{cfg.get('dataset') or ''} {metrics}".strip()
    return text or None


def _weights(cfg: dict) -> str | None:
    """Where a record's weights are: ``hf-hub:repo/file``, a URL or a file (None: no weights)."""
    if cfg.get("hf_hub_id"):
        return f"hf-hub:{cfg['hf_hub_id']}/{cfg.get('hf_hub_filename') or 'model.safetensors'}"
    return cfg.get("url") or cfg.get("file")


def rows(pattern: str = "*", task: str | None = None, tags: bool = False, pretrained: bool = False) -> list:
    """One dict per matching model (or per ``name.tag`` with ``tags``; only tags with released
    weights with ``pretrained``): name, task, params, MACs, input size, the published result and
    its source, and where the weights are, all from the pretrained cfg."""
    import fnmatch

    if task is not None:
        task = task.replace("-", "_")
        if task not in task_names():
            raise ValueError(f"unknown task {task!r}; choose one of {task_words()}")
    out = []
    released = set(list_pretrained()) if pretrained else None
    per_tag = tags or pretrained  # the pattern then matches a tagged name too ('*.cifar10')
    for name in list_models("*" if per_tag else pattern, task=task):
        for tagged in get_entry(name).tags if per_tag else [name]:
            if released is not None and tagged not in released:
                continue
            if per_tag and not (fnmatch.fnmatch(tagged, pattern) or fnmatch.fnmatch(name, pattern)):
                continue
            cfg = get_pretrained_cfg(tagged)
            out.append({"name": tagged, "task": cfg["task"].replace("_", "-"), "params": cfg.get("params"),
                        "macs": cfg.get("macs"), "input": "x".join(map(str, cfg["input_size"])),
                        "dataset": cfg.get("dataset"), "metrics": cfg.get("metrics", {}), "reference": _result(cfg),
                        "source": cfg.get("metrics_source"), "weights": _weights(cfg)})
    return out


def recipe_rows(pattern: str = "*") -> list:
    """One dict per matching recipe: name, model, dataset, expected result and its source, estimated hours."""
    out = []
    for name in list_recipes(pattern):
        r = get_recipe(name)
        expected = None
        if r.expected is not None:
            expected = f"{r.expected.split} " + " ".join(f"{k} {v}" for k, v in r.expected.metrics.items())
        out.append({"name": name, "model": r.model, "dataset": r.data.dataset, "expected": expected,
                    "source": None if r.expected is None else str(r.expected.source),
                    "hours": r.cost.accelerator_hours, "accelerator": r.cost.accelerator})
    return out


def _run_recipes(args: argparse.Namespace) -> int:
    import json

    if args.task or args.tags or args.pretrained:
        raise ValueError("--recipes lists recipes; drop --task, --tags and --pretrained")
    found = recipe_rows(args.pattern)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        raise ValueError(f"no recipe matches {args.pattern!r}; wavevision list --recipes shows all")
    print(format_table(found, ["name", "model", "dataset", "expected", "hours"],
                       headers={"expected": "expected result", "hours": "est. hours"}))
    print("est. hours: accelerator-hours of a full run (A100 figures are analytical lower bounds, CPU ones measured); "
          "details: wavevision info --recipe NAME")
    return 0


def run(args: argparse.Namespace) -> int:
    import json

    if args.recipes:
        return _run_recipes(args)
    found = rows(args.pattern, args.task, args.tags, args.pretrained)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        import fnmatch

        renamed = [f"{old} is now {new}" for old, new in deprecated_models().items() if fnmatch.fnmatch(old, args.pattern)]
        raise ValueError(f"no {'released weights match' if args.pretrained else 'model matches'} {args.pattern!r}"
                         + (f" for task {args.task}" if args.task else "")
                         + (f" (renamed: {', '.join(renamed)})" if renamed else "") + "; wavevision list shows all")
    print(format_table(found, ["name", "task", "params", "input", "reference"],
                       headers={"reference": "published result" + (" (of the released weights)" if args.pretrained else "")}))
    if args.pretrained:
        print("load one with wavevision.create_model(NAME, pretrained=True); evaluate it with "
              "wavevision eval --model NAME --pretrained --dataset DATASET --data-root PATH")
    return 0
