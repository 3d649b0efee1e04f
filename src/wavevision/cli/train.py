"""``wavevision train``: train a model (flags, a YAML file, or both; see wavevision.engine.train)."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from ..engine import TrainingInterrupted, train
from ..engine.config import DICT_FLAGS, FIELDS, RECIPES, field_kind, parse_assignments, recipe_diff
from ..engine.recipe import RecipeGapWarning, missing_line
from ..engine.rundir import command_config
from ..recipes import get_recipe
from ..utils.task_names import task_words

HELP = f"train a model on a dataset ({task_words()})"

_SHORT = {"config": "-c", "model": "-m", "dataset": "-d", "output": "-o"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Precedence: defaults < the dataset's recipe (" + ", ".join(RECIPES) + ") or the --recipe named "
        "(wavevision list --recipes) < the YAML file (-c) < flags; flags that override a --recipe are printed and "
        "recorded in results.json. "
        "The resolved configuration is saved as RUN_DIR/config.yaml; `wavevision train -c RUN_DIR/config.yaml` "
        "reruns it. Multi-process: torchrun --nproc_per_node=N -m wavevision train ..."
    )
    parser.add_argument("-c", "--config", metavar="YAML", default=None, help="YAML file of configuration keys")
    for name, f in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if any(name in recipe for recipe in RECIPES.values()):
            fallback = f.default if f.default is not dataclasses.MISSING else "none"
            help_text += f" (default: the dataset recipe's, else {fallback})"
        elif f.default is not dataclasses.MISSING and f.default not in (None, False) and not isinstance(f.default, bool):
            help_text += f" (default {f.default})"
        common = dict(default=argparse.SUPPRESS, help=help_text, dest=name)
        if name in DICT_FLAGS:
            parser.add_argument(DICT_FLAGS[name], action="append", metavar="KEY=VALUE", **{**common, "help": help_text + " (repeatable)"})
        elif name == "resume":
            parser.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR", **{
                **common, "help": "continue the run in RUN_DIR (default: --output) from its last saved state, "
                                  "with its saved configuration"})
        elif field_kind(f).startswith("list["):
            parser.add_argument(flag, nargs="+", metavar="N", **common)
        elif "bool" in field_kind(f):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        else:
            names = [flag] + ([_SHORT[name]] if name in _SHORT else [])
            kwargs = dict(common)
            if f.metadata.get("choices"):
                kwargs["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
            parser.add_argument(*names, **kwargs)
    parser.add_argument("--json", action="store_true", help="print the result record as JSON instead of the summary")


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    for name in FIELDS:
        if hasattr(args, name):
            value = getattr(args, name)
            if name in DICT_FLAGS:
                value = parse_assignments(value, DICT_FLAGS[name])
            out[name] = value
    return out


def build_config(args: argparse.Namespace):
    """The TrainConfig the command line asks for (a resumed run starts from its saved configuration)."""
    return command_config(args.config, _overrides(args))


def run(args: argparse.Namespace) -> int:
    import json
    import warnings

    config = build_config(args)
    _report_recipe(config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecipeGapWarning)  # _report_recipe said it already
            result = train(config)
    except TrainingInterrupted as e:
        print(f"wavevision train: {e}", file=sys.stderr)
        return 130
    if _is_main():  # under torchrun only the first process reports
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, default=str))
        else:
            print(result.summary())
    return 0


def _report_recipe(config) -> None:
    """Print (stderr, first process) the settings that override the recipe and what the engine leaves out."""
    if config.recipe is None or not _is_main():
        return
    diff = {k: v for k, v in recipe_diff(config).items() if k != "output"}
    if diff:
        print(f"recipe {config.recipe}, overridden:", file=sys.stderr)
        for key, (recipe, run) in diff.items():
            print(f"  {key}: {recipe!r} -> {run!r}", file=sys.stderr)
    line = missing_line(get_recipe(config.recipe))
    if line:
        print(f"wavevision train: {line}", file=sys.stderr)


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
