"""``wavevision bench``: parameters, MACs, latency, throughput, training-step time, peak memory,
of the models named or of a suite (``--suite imagenet``/``cifar``: wavevision beside timm)."""
from __future__ import annotations

import argparse

from ..bench import benchmark, format_results, write_results
from ..bench.suites import format_suite, run_suite, write_suite
from ..engine.config import parse_assignments
from . import CLIError

HELP = "measure models: parameters, MACs, latency, throughput, training step, peak memory (table, CSV/JSON, PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="registered names (wavevision list), or timm:NAME for timm models (skipped without timm)")
    parser.add_argument("--suite", metavar="NAME",
                        help="measure a suite side by side instead of MODELs: imagenet (WaveMix-192/16, Wave-ViT-S and "
                             "timm baselines at 224) or cifar (WaveMix-Lite against small timm CNNs at 32)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="with --suite: measure only this model of the suite (name or label; repeatable)")
    parser.add_argument("--input-size", type=int, nargs="+", metavar="N",
                        help="S, H W or C H W (default: each model's usual size, e.g. 224 for ImageNet models)")
    parser.add_argument("--batch-size", type=int,
                        help="batch N for throughput, training step and memory (default 32; suites: imagenet 8, cifar 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda:0, ... (default auto)")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 (default float32)")
    parser.add_argument("--warmup", type=int, help="untimed runs before each timing (default 3; suites: imagenet 1, cifar 2)")
    parser.add_argument("--repeats", type=int,
                        help="timed runs; median and IQR reported (default 10; suites: imagenet 3, cifar 5)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="builder override for every model, e.g. img_size=32 (repeatable)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory measurement (two subprocesses per model on CPU)")
    parser.add_argument("--no-train", action="store_true", help="skip the training step")
    parser.add_argument("--memory-limit-mb", type=float,
                        help="CPU: report a case needing more extra memory than this as OOM")
    parser.add_argument("--accuracy", action="append", default=[], metavar="NAME=VALUE",
                        help="an accuracy (%%) for the plots; repeatable (default: the registry's reference top-1)")
    parser.add_argument("--out", default="bench-results",
                        help="folder for bench.csv/.json/.png, or suite-NAME.csv/.json/.md/.txt/.png (default bench-results)")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")


def _accuracies(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise CLIError(f"--accuracy takes NAME=VALUE with a number, e.g. mixer_dwt=97.5; got {item!r}") from None
        if not 0 <= out[name] <= 100:  # also NaN and infinity, which the JSON results could not hold
            raise CLIError(f"--accuracy {item}: the accuracy must be a percentage from 0 to 100, e.g. {name}=97.5")
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.memory_limit_mb is not None and not args.memory_limit_mb > 0:  # NaN too
        raise ValueError(f"--memory-limit-mb must be a positive number of MiB, got {args.memory_limit_mb}")
    size = args.input_size
    if size is not None and len(size) not in (1, 2, 3):
        raise ValueError(f"--input-size takes S, H W or C H W, got {len(size)} numbers")
    size = None if size is None else (size[0] if len(size) == 1 else tuple(size))
    if args.suite is not None:
        return _run_suite(args, size)
    if not args.models:
        raise ValueError("give model names to measure (wavevision list shows them) or --suite imagenet / --suite cifar")
    if args.only:
        raise ValueError("--only selects models of a --suite; without --suite name the models directly")

    overrides = parse_assignments(args.model_arg, "--model-arg")
    results = benchmark(
        args.models, input_size=size,
        batch_size=32 if args.batch_size is None else args.batch_size, device=args.device, dtype=args.dtype,
        warmup=3 if args.warmup is None else args.warmup, repeats=10 if args.repeats is None else args.repeats,
        memory=not args.no_memory, train=not args.no_train,
        accuracies=_accuracies(args.accuracy), memory_limit_mb=args.memory_limit_mb, progress=True,
        model_kwargs={name: overrides for name in args.models} if overrides else None,
    )
    print(format_results(results))
    paths = write_results(results, args.out, plot=not args.no_plot)
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 1 if any(r.status == "error" for r in results) else 0


def _run_suite(args: argparse.Namespace, size: int | tuple[int, ...] | None) -> int:
    """``--suite NAME``: every model of the suite in one run; its own table, files and plot."""
    for flag, given in (("MODEL names", args.models), ("--model-arg", args.model_arg), ("--accuracy", args.accuracy)):
        if given:
            raise ValueError(f"{flag} cannot be combined with --suite (a suite fixes its models and reported "
                             f"accuracies); use --only NAME to measure part of it")
    run = run_suite(args.suite, only=args.only, input_size=size, batch_size=args.batch_size, warmup=args.warmup,
                    repeats=args.repeats, device=args.device, dtype=args.dtype, memory=not args.no_memory,
                    train=not args.no_train, memory_limit_mb=args.memory_limit_mb, progress=True)
    print(format_suite(run))
    paths = write_suite(run, args.out, plot=not args.no_plot)
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 1 if any(r.status == "error" for r in run.results) else 0
