"""``wavevision ablate``: the token-mixer ablation (each mixer trained with the same budget, over seeds)."""
from __future__ import annotations

import argparse

from ..bench.ablation import (
    DEFAULT_MIXERS,
    DEFAULT_WAVELETS,
    WAVELET_CHOICES,
    ablate,
    format_ablation,
    write_ablation,
)
from ..engine.config import parse_assignments

HELP = "train the WaveMix skeleton with each token mixer (same budget, several seeds); table, CSV/JSON, PNG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mixers", nargs="+", default=list(DEFAULT_MIXERS), metavar="MIXER",
                        help=f"mixers to train (default: all: {' '.join(DEFAULT_MIXERS)})")
    parser.add_argument("--wavelets", nargs="+", default=list(DEFAULT_WAVELETS), metavar="WAVELET",
                        help=f"train each wavelet mixer (dwt, wtconv) once per wavelet, e.g. {' '.join(WAVELET_CHOICES)} (any discrete "
                             f"PyWavelets name; non-Haar need pip install 'wavevision[wavelets]'); default "
                             f"{' '.join(DEFAULT_WAVELETS)}. A mixer may also name one: dwt:db2, wtconv:db2")
    parser.add_argument("--dataset", default="digits", help="classification dataset, name or path (default digits)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of every run (default 10)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per mixer, 0..N-1 (default 3)")
    parser.add_argument("--jobs", type=int, help="runs trained side by side, one thread each (default: min(2, CPUs))")
    parser.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="training setting for every run, e.g. lr=1e-3 or batch_size=32 (repeatable)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every mixer model, e.g. depth=2 (repeatable)")
    parser.add_argument("--no-memory", action="store_true", help="skip the training-step memory measurement")
    parser.add_argument("--overwrite", action="store_true", help="retrain runs a previous call already finished")
    parser.add_argument("--out", default="ablation-results", help="output folder (default ablation-results)")


def run(args: argparse.Namespace) -> int:
    report = ablate(
        args.mixers, wavelets=args.wavelets, dataset=args.dataset, epochs=args.epochs, seeds=args.seeds, out_dir=args.out, jobs=args.jobs,
        train_args=parse_assignments(args.train_arg, "--train-arg"),
        model_args=parse_assignments(args.model_arg, "--model-arg"),
        memory=not args.no_memory, overwrite=args.overwrite, progress=True,
    )
    print(format_ablation(report))
    paths = write_ablation(report, args.out)
    reused = sum(r.reused for r in report.runs)
    if reused:
        print(f"\n{reused} of {len(report.runs)} runs were reused from {args.out}/runs (--overwrite retrains them)")
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0
