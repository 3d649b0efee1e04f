"""``wavevision erf``: effective receptive fields as heat maps and radii (r50, r90)."""
from __future__ import annotations

import argparse
from collections.abc import Sized
from typing import Any, cast

from ..bench.erf import (
    WTCONVNEXT_STAGE_LEVELS,
    compare_erf,
    effective_receptive_field,
    plot_erf,
    plot_erf_comparison,
    wtconv_stack_erf,
    wtconvnext_erf,
)
from ..bench.runner import ModelSpec, default_input_shape
from ..data import build_dataset
from ..engine.config import parse_assignments
from ..models import create_model, get_entry
from ..utils import write_csv, write_json
from . import CLIError

HELP = ("effective receptive field of a model or one block (PNG heat map, r50/r90), or --compare mixers and levels, "
        "WTConv against ConvNeXt's 7x7 (wtconv), WTConvNeXt-T against ConvNeXt-T (wtconvnext)")

_COMPARE_MIXERS = ("dwconv", "pool")
_COMPARISONS = ("mixers", "wtconv", "wtconvnext")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="registered model name (omit with --compare)")
    parser.add_argument("--checkpoint", help="weights to load (a trained model's ERF instead of the initial one); with "
                                             "--compare wtconvnext: WTConvNeXt-T's weights (a released .pth)")
    parser.add_argument("--baseline-checkpoint", metavar="FILE",
                        help="--compare wtconvnext: ConvNeXt-T's weights (timm's convnext_tiny or the original .pth)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="builder override (repeatable)")
    parser.add_argument("--block", type=int, help="one block's ERF (index into the model's blocks) instead of the whole stack")
    parser.add_argument("--input-size", type=int, nargs="+", metavar="N",
                        help="S, H W or C H W (default: the model's usual size; 64 with --compare)")
    parser.add_argument("--samples", type=int, default=16, help="inputs the gradient is averaged over (default 16)")
    parser.add_argument("--data", metavar="DATASET", help="average over a dataset's test images (e.g. digits) instead of noise")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's initialisation and of the noise inputs")
    parser.add_argument("--compare", nargs="?", const="mixers", choices=_COMPARISONS, metavar="WHAT",
                        help="mixers (the default): WaveMix (mixer_dwt) at levels 1-4 against the dwconv and pool mixers at "
                             "equal depth; wtconv: stacks of ConvNeXt's 7x7 depthwise conv against WTConv (kernel 5, "
                             "levels 5 and 4 as WTConvNeXt's stages 1-2) at initialisation; wtconvnext: WTConvNeXt-T "
                             "against ConvNeXt-T (timm's convnext_tiny), trained with --checkpoint/--baseline-checkpoint, "
                             "else at initialisation")
    parser.add_argument("--depth", type=int,
                        help="--compare: blocks in every model (mixers, default 4) or layers in every stack (wtconv, default 3)")
    parser.add_argument("--levels", type=int, nargs="+",
                        help="--compare: DWT levels (mixers, default 1 2 3 4) or WTConv levels (wtconv, default "
                             f"{' '.join(map(str, WTCONVNEXT_STAGE_LEVELS))})")
    parser.add_argument("--seeds", type=int, default=2, help="--compare: initialisations averaged per model (default 2)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default="erf-results",
                        help="output folder (default erf-results); result files already there are kept: the command "
                             "refuses, naming them, unless --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace result files already in --out")


def _inputs(args: argparse.Namespace, in_chans: int, size):
    """Images of --data (first --samples of the test split), or None for noise."""
    if not args.data:
        return None
    import torch

    options: dict[str, Any] = {} if size is None else {"image_size": tuple(size[-2:])}
    dataset, info = build_dataset(args.data, "test", **options)
    if info.in_chans != in_chans:
        raise ValueError(f"--data {args.data} has {info.in_chans}-channel images but the model takes {in_chans}")
    n = min(args.samples, len(cast(Sized, dataset)))
    return torch.stack([dataset[i][0] for i in range(n)])


def _refuse_existing(paths: list, overwrite: bool) -> None:
    """The rule of every command that writes results (predict, erf, export): an existing file is
    replaced only with --overwrite."""
    clash = [p for p in paths if p.exists()]
    if clash and not overwrite:
        raise FileExistsError(f"{clash[0]} already exists ({len(clash)} file(s) would be replaced); pass --overwrite "
                              "or choose another --out")


def _print_records(records: list[dict[str, Any]]) -> None:
    width = max(10, *(len(r["label"]) for r in records))
    print(f"{'view':<24} {'model':<{width}} {'r50 px':>7} {'r90 px':>7} {'r99 px':>7}")
    for rec in records:
        print(f"{rec['view']:<24} {rec['label']:<{width}} {rec['r50']:7.2f} {rec['r90']:7.2f} {rec['r99']:7.2f}")


def _compare_wtconv(args: argparse.Namespace, out: Any, size: Any, overrides: dict[str, Any]) -> list:
    """--compare wtconv (layer stacks at initialisation) or wtconvnext (the two whole models)."""
    if args.model:
        raise CLIError(f"--compare {args.compare} builds its own models; drop MODEL")
    side = None if size is None else (size if isinstance(size, int) else size[-1])
    if size is not None and not isinstance(size, int) and (len(size) == 3 or size[-2] != size[-1]):
        raise ValueError(f"--compare {args.compare} takes a square --input-size S (got {' '.join(map(str, args.input_size))})")
    if args.compare == "wtconv":
        if args.checkpoint or args.baseline_checkpoint or args.data or overrides:
            raise CLIError("--compare wtconv measures layer stacks at initialisation; drop --checkpoint, "
                           "--baseline-checkpoint, --data and --model-arg (use --compare wtconvnext for trained models)")
        stem = "erf_wtconv"
        _refuse_existing([out / f"{stem}.{ext}" for ext in ("png", "json", "csv")], args.overwrite)
        rows = wtconv_stack_erf(depth=args.depth or 3, levels=args.levels or WTCONVNEXT_STAGE_LEVELS,
                                input_size=side or 64, samples=args.samples, seeds=args.seeds)
        title = (f"ConvNeXt 7x7 depthwise vs WTConv at initialisation, {args.seeds} seed(s) x {args.samples} noise "
                 "inputs; log-scale maps, circles r50 (solid) / r90 (dashed)")
    else:
        if args.levels or args.depth:
            raise CLIError("--compare wtconvnext measures the two whole models; drop --levels/--depth "
                           "(--model-arg changes both builds)")
        stem = "erf_wtconvnext"
        _refuse_existing([out / f"{stem}.{ext}" for ext in ("png", "json", "csv")], args.overwrite)
        results = wtconvnext_erf(checkpoint=args.checkpoint, baseline_checkpoint=args.baseline_checkpoint,
                                 input_size=side or 224, samples=args.samples, seeds=args.seeds,
                                 inputs=_inputs(args, 3, (side or 224, side or 224)), model_args=overrides)
        rows = {"whole model": results}
        title = (f"WTConvNeXt-T vs ConvNeXt-T ({', '.join(r.label for r in results)}), "
                 f"{args.data or 'noise'} inputs; log-scale maps, circles r50 (solid) / r90 (dashed)")
    records = [{"view": view, **r.to_dict()} for view, results in rows.items() for r in results]
    png = plot_erf_comparison(rows, out / f"{stem}.png", title=title)
    _print_records(records)
    return [png, write_json(out / f"{stem}.json", records), write_csv(out / f"{stem}.csv", records)]


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    for flag in ("samples", "seeds", "depth"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.input_size is not None and len(args.input_size) not in (1, 2, 3):
        raise ValueError(f"--input-size takes S, H W or C H W, got {len(args.input_size)} numbers")
    size = None if args.input_size is None else (args.input_size[0] if len(args.input_size) == 1 else tuple(args.input_size))
    overrides = parse_assignments(args.model_arg, "--model-arg")
    from pathlib import Path

    out = Path(args.out)
    if args.compare in ("wtconv", "wtconvnext"):
        paths = _compare_wtconv(args, out, size, overrides)
    elif args.compare:
        if args.model or args.checkpoint or args.baseline_checkpoint:
            raise CLIError("--compare builds its own models (mixer_dwt at each level, mixer_dwconv, mixer_pool); drop MODEL/--checkpoint")
        levels = args.levels or [1, 2, 3, 4]
        if any(level < 1 for level in levels):
            raise ValueError(f"--levels must be >= 1, got {levels}")
        depth = args.depth or 4
        common = {"depth": depth, **overrides}
        models = [(f"dwt L{lv}", "mixer_dwt", {**common, "level": lv}) for lv in levels]
        models += [(m, f"mixer_{m}", dict(common)) for m in _COMPARE_MIXERS]
        _refuse_existing([out / f"erf_compare.{ext}" for ext in ("png", "json", "csv")], args.overwrite)
        shape = default_input_shape(ModelSpec("mixer_dwt"), create_model("mixer_dwt", depth=1), size or 64)
        rows = {"one block (block 0)": compare_erf(models, input_shape=shape, samples=args.samples, seeds=args.seeds, block=0),
                f"whole stack (depth {depth})": compare_erf(models, input_shape=shape, samples=args.samples,
                                                                  seeds=args.seeds)}
        records = [{"view": view, **r.to_dict()} for view, results in rows.items() for r in results]
        png = plot_erf_comparison(rows, out / "erf_compare.png",
                                  title=f"ERF at initialisation, {args.seeds} seed(s) x {args.samples} noise inputs "
                                        f"{'x'.join(map(str, shape))}; log-scale maps, circles r50 (solid) / r90 (dashed)")
        paths = [png, write_json(out / "erf_compare.json", records), write_csv(out / "erf_compare.csv", records)]
        _print_records(records)
    else:
        if args.baseline_checkpoint:
            raise CLIError("--baseline-checkpoint is ConvNeXt-T's weights for --compare wtconvnext; drop it or add that")
        if not args.model:
            raise CLIError("name a model (e.g. wavevision erf mixer_dwt) or pass --compare")
        get_entry(args.model)  # unknown names: the registry's suggestions
        torch.manual_seed(args.seed)
        model = create_model(args.model, checkpoint=args.checkpoint, **overrides)
        shape = default_input_shape(ModelSpec(args.model), model, size)
        res = effective_receptive_field(model, inputs=_inputs(args, shape[0], size), input_shape=shape,
                                        samples=args.samples, block=args.block, seed=args.seed, label=args.model)
        res.meta.update(model=args.model, checkpoint=args.checkpoint, data=args.data or "noise (standard normal)")
        stem = f"erf_{args.model}" + ("" if args.block is None else f"_block{res.target.split()[-1]}")
        _refuse_existing([out / f"{stem}.png", out / f"{stem}.json"], args.overwrite)
        paths = [plot_erf(res, out / f"{stem}.png"), write_json(out / f"{stem}.json", res.to_dict(with_map=True))]
        print(f"{args.model} ({res.target}): map {res.mass.shape[0]}x{res.mass.shape[1]}, centre "
              f"({res.center[0]:.1f}, {res.center[1]:.1f}), r50 {res.r50:.2f} px, r90 {res.r90:.2f} px, r99 {res.r99:.2f} px "
              f"({res.samples} inputs)")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
