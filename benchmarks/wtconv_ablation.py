"""The token-mixer ablation with the WTConv mixer beside the others, recorded for the docs.

Runs ``wavevision ablate`` (:func:`wavevision.bench.ablation.ablate`) on the embedded digits with
every mixer (``DEFAULT_MIXERS``, ``wtconv`` included), the same budget for each, and writes the
report with the measuring conditions (worker processes, one torch thread each,
``OMP_WAIT_POLICY``, CPUs, load average before and after, versions) to
``benchmarks/results/wtconv_ablation.json``; ``docs/wtconv.md`` shows it (``docs/gen_tables.py``).

    python benchmarks/wtconv_ablation.py                       # 10 epochs, 3 seeds (the command's defaults)
    python benchmarks/wtconv_ablation.py --epochs 3 --seeds 2  # shorter
    python benchmarks/wtconv_ablation.py --out ablation-wtconv # keep the run folders (default: a temporary one)

The same table from the command line: ``wavevision ablate --out ablation-wtconv``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP threads

import argparse  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "wtconv_ablation.json"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    from wavevision.bench.ablation import DEFAULT_MIXERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixers", nargs="+", default=list(DEFAULT_MIXERS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: min(2, CPUs))")
    parser.add_argument("--out", type=Path, default=None, help="run folders (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import wavevision
    from wavevision.bench.ablation import ablate, format_ablation
    from wavevision.utils import write_json

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "ablation"
        before, start = _load(), time.perf_counter()
        report = ablate(args.mixers, epochs=args.epochs, seeds=args.seeds, jobs=args.jobs, out_dir=out, progress=True)
        wall, after = time.perf_counter() - start, _load()
    print(format_ablation(report))
    record = {
        **report.to_dict(),
        "conditions": {
            "command": f"wavevision ablate --mixers {' '.join(args.mixers)} --epochs {args.epochs} --seeds {args.seeds}",
            "jobs": report.budget["jobs"], "threads_per_run": report.budget["threads_per_run"],
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "load_average_before": before, "load_average_after": after,
            "wall_seconds": round(wall, 1), "torch": torch.__version__, "wavevision": wavevision.__version__,
            "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
    }
    for run in record["runs"]:  # the run folders were temporary: keep their names only
        run["run_dir"] = Path(run["run_dir"]).name
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, record)
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
