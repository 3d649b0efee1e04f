"""``wavevision info MODEL``: layer table, parameters and multiply-accumulates at an input size."""
from __future__ import annotations

import argparse
from typing import Any

from ..bench import ModelSpec, count_macs, count_parameters, default_input_shape
from ..bench.complexity import counted_part
from ..engine.config import parse_assignments
from ..engine.recipe import engine_values, missing_pieces
from ..engine.sizing import check_fits_memory, meta_model
from ..models import create_model, get_entry
from ..recipes import get_recipe
from ..utils import SI, format_table
from ._help import task_sizes

HELP = "show a model's layers, parameters and multiply-accumulates at an input size, or a recipe's settings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None, help="a registered model name (wavevision list)")
    parser.add_argument("--recipe", metavar="NAME", default=None,
                        help="show a training recipe instead (wavevision list --recipes): every setting, the "
                             "reference, the estimated accelerator-hours, the differences and what the engine "
                             "cannot do yet")
    parser.add_argument("--size", type=int, nargs="+", metavar="N", default=None,
                        help="input height [width] (default: the size the model is registered for, else its "
                             f"reference dataset's, else {task_sizes()})")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="hyperparameter override (repeatable)")
    parser.add_argument("--depth", type=int, default=2, help="module nesting depth of the layer table (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _input_shape(name: str, model, size) -> tuple:
    if size and (len(size) > 2 or min(size) < 1):
        raise ValueError(f"--size takes a positive height and optionally a width, got {size}")
    return default_input_shape(ModelSpec(name), model, (size[0], size[-1]) if size else None)


def layer_rows(model, x, max_depth: int) -> list:
    """Modules up to ``max_depth`` dots deep: output shape, parameters and multiply-accumulates
    (``model`` in eval mode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    modules = [(n, m) for n, m in model.named_modules() if n and n.count(".") < max_depth]
    shapes: dict[str, Any] = {}  # output shape and first-call position of each module
    order: dict[str, float] = {}  # containers never called sit half a step before their first child

    def hook(name):
        def fn(module, inputs, output):
            order.setdefault(name, len(order))
            if name not in shapes and isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape)
        return fn

    def pre_hook(name):
        def fn(module, inputs):
            order.setdefault(name, len(order))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules]
    handles += [m.register_forward_pre_hook(pre_hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad(), counted_part(model), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    prefix = type(model).__name__ + "."
    macs = {k[len(prefix):]: sum(v.values()) // 2 for k, v in counter.get_flop_counts().items() if k.startswith(prefix)}
    # Containers that are never called (ModuleList) take their direct children's totals and place.
    called = set(order)
    for name, module in sorted(modules, key=lambda nm: -nm[0].count(".")):
        if name in called:
            continue
        children = [f"{name}.{c}" for c, _ in module.named_children()]
        macs.setdefault(name, sum(macs.get(c, 0) for c in children))
        first = [order[c] for c in children if c in order]
        order[name] = (min(first) - 0.5) if first else 1 << 30
    rows = []
    for name, m in sorted(modules, key=lambda nm: order.get(nm[0], 1 << 30)):
        rows.append({
            "layer": "  " * name.count(".") + name, "type": type(m).__name__,
            "output": "x".join(str(s) for s in shapes[name][1:]) if name in shapes else None,
            "params": sum(p.numel() for p in m.parameters()),
            "macs": macs.get(name, 0),
        })
    return rows


def recipe_summary(name: str) -> dict:
    """The recipe ``name`` fully resolved: every field, the scaled lr, the training settings the engine
    applies, and what it cannot do yet."""
    recipe = get_recipe(name)
    return {**recipe.to_dict(), "reference": str(recipe.reference), "reference_note": recipe.reference.note,
            "expected": None if recipe.expected is None else {**recipe.to_dict()["expected"],
                                                              "source": str(recipe.expected.source)},
            "train_settings": engine_values(recipe), "missing": missing_pieces(recipe)}


def _run_recipe(args: argparse.Namespace) -> int:
    import json

    if args.model is not None:
        raise ValueError(f"give a model or --recipe, not both (got {args.model!r} and --recipe {args.recipe})")
    summary = recipe_summary(args.recipe)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    skip = {"name", "description", "reference", "reference_note", "expected", "cost", "differences", "train_settings", "missing"}
    print(f"{summary['name']}: {summary['description']}")
    for key, value in summary.items():
        if key not in skip:
            print(f"  {key}: {_compact(value)}")
    expected = summary["expected"]
    print("expected: " + ("none published" if expected is None else
                          f"{expected['split']} " + ", ".join(f"{k} {v}" for k, v in expected["metrics"].items())
                          + f" ({expected['source']})"))
    print(f"reference: {summary['reference']}" + (f" ({summary['reference_note']})" if summary["reference_note"] else ""))
    if summary["differences"]:
        print("differences from the reference:")
        for d in summary["differences"]:
            print(f"  {d['field']}: {d['reason']}")
    cost = summary["cost"]
    print(f"estimated: {cost['accelerator_hours']:g} accelerator-hours on {cost['accelerator']} ({cost['how']})")
    print("the engine cannot do yet: " + ("; ".join(summary["missing"]) if summary["missing"] else "nothing (all applied)"))
    return 0


def _compact(value) -> str:
    """A nested value on one line, without the empty fields."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items() if v not in (None, (), [], {})) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return repr(value)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    if args.recipe is not None:
        return _run_recipe(args)
    if args.model is None:
        raise ValueError("give a model name (wavevision list) or --recipe NAME (wavevision list --recipes)")
    entry = get_entry(args.model)
    reference = entry.reference_for(args.model)
    if args.depth < 1:
        raise ValueError(f"--depth must be >= 1, got {args.depth}")
    overrides = parse_assignments(args.model_arg, "--model-arg")
    meta = meta_model(lambda: create_model(args.model, **overrides)).eval()
    c, h, w = _input_shape(args.model, meta, args.size)
    check_fits_memory(meta, input_shape=(1, c, h, w), what=f"{args.model} at {h}x{w}",
                      fix="give a smaller --size, or smaller --model-arg values (final_dim, ff_channel, depth)")
    model = create_model(args.model, **overrides).eval()
    x = torch.zeros(1, c, h, w)
    rows = layer_rows(model, x, args.depth)
    params = count_parameters(model)
    macs = count_macs(model, x)
    with torch.no_grad():
        out = model(x)
    out_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else (len(out), "detections")
    summary = {
        "model": args.model, "task": entry.task, "params": params, "trainable_params": count_parameters(model, trainable_only=True),
        "input": list(x.shape), "output": list(out_shape), "macs": macs, "reference": reference,
    }
    if args.json:
        print(json.dumps({**summary, "layers": rows}, indent=2))
        return 0
    print(f"{args.model} ({entry.task.replace('_', '-')})")
    shown = [{**r, "macs": SI(r["macs"])} for r in rows]
    print(format_table(shown, ["layer", "type", "output", "params", "macs"], headers={"macs": "MACs"}))
    print()
    print(f"parameters: {params:,}")
    print(f"input {'x'.join(map(str, x.shape))} -> output {'x'.join(map(str, out_shape))}")
    print(f"multiply-accumulates: {macs:,} ({SI(macs)}) per image at {h}x{w} "
          "(torch.utils.flop_counter FLOPs / 2)")
    if reference:
        ref = dict(reference)
        if isinstance(ref.get("params"), int):
            ref["params"] = f"{ref['params']:,}"
        if isinstance(ref.get("macs"), int):
            ref["macs"] = SI(ref["macs"])
        print("reference: " + ", ".join(f"{k} {v}" for k, v in ref.items()))
    return 0
