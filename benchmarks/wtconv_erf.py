"""The WTConv paper's Figure 1 here: effective receptive fields of ConvNeXt's 7x7 depthwise
convolution and of WTConv, as layer stacks and as whole models.

Rows of the figure (``docs/images/wtconv_erf.png``) and of ``benchmarks/results/wtconv_erf.json``:

* ``one layer`` and ``stack of N``: N depthwise 7x7 convolutions (ConvNeXt's) against N
  :class:`~wavevision.layers.WTConv2d` (kernel 5, 5 and 4 levels, as WTConvNeXt-T's stages 1 and
  2), at initialisation, averaged over seeds and noise inputs (:func:`wavevision.bench.erf.wtconv_stack_erf`);
* ``whole model``: WTConvNeXt-T against ConvNeXt-T (timm's ``convnext_tiny``), with the weights
  of ``--checkpoint`` / ``--baseline-checkpoint`` (the released WTConvNeXt-T file is on Google
  Drive, see ``docs/wtconv.md``) or at initialisation, labelled so. At initialisation ConvNeXt's
  layer scale (1e-6) makes every block almost the identity, so this row then shows the stem and
  downsampling layers of both; ``whole model, layer scale 1`` builds both with ``ls_init_value=1``
  so that the blocks' spatial mixing shows without weights.

    python benchmarks/wtconv_erf.py                                  # about 3 minutes on 2 CPU cores
    python benchmarks/wtconv_erf.py --checkpoint WTConvNeXt_tiny_5_300e_ema.pth \\
        --baseline-checkpoint convnext_tiny_1k_224_ema.pth --input-size 1024 --samples 50   # the paper's setting

The same from the command line: ``wavevision erf --compare wtconv`` and ``wavevision erf --compare wtconvnext``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP threads

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gallery import _shrink  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "wtconv_erf.json"
FIGURE = ROOT / "docs" / "images" / "wtconv_erf.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3, help="layers in each stack (ConvNeXt-T's stage 1 has 3 blocks)")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--stack-size", type=int, default=64, help="side of the stacks' noise inputs")
    parser.add_argument("--stack-samples", type=int, default=8)
    parser.add_argument("--stack-seeds", type=int, default=4)
    parser.add_argument("--checkpoint", type=Path, help="WTConvNeXt-T weights (a released .pth)")
    parser.add_argument("--baseline-checkpoint", type=Path, help="ConvNeXt-T weights (timm or the original .pth)")
    parser.add_argument("--input-size", type=int, default=224, help="side of the whole models' noise inputs")
    parser.add_argument("--samples", type=int, default=2, help="noise inputs per whole model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--png", type=Path, default=FIGURE)
    args = parser.parse_args(argv)

    import torch

    from wavevision.bench.erf import plot_erf_comparison, wtconv_stack_erf, wtconvnext_erf
    from wavevision.utils import write_json

    torch.set_num_threads(args.threads)
    load_before, start = [round(v, 2) for v in os.getloadavg()], time.perf_counter()
    rows = wtconv_stack_erf(depth=args.depth, channels=args.channels, input_size=args.stack_size,
                            samples=args.stack_samples, seeds=args.stack_seeds)
    trained = args.checkpoint is not None or args.baseline_checkpoint is not None
    rows["whole model"] = wtconvnext_erf(checkpoint=args.checkpoint, baseline_checkpoint=args.baseline_checkpoint,
                                         input_size=args.input_size, samples=args.samples)
    if not trained:
        rows["whole model, layer scale 1"] = [
            r for r in wtconvnext_erf(input_size=args.input_size, samples=args.samples,
                                      model_args={"ls_init_value": 1.0})]
        for r in rows["whole model, layer scale 1"]:
            r.label = r.label.replace("(init)", "(init, ls 1)")
    seconds = time.perf_counter() - start
    records = [{"view": view, **r.to_dict()} for view, results in rows.items() for r in results]
    title = (f"ERF: ConvNeXt's 7x7 depthwise vs WTConv; stacks at init ({args.stack_seeds} seeds x "
             f"{args.stack_samples} noise inputs {args.channels}x{args.stack_size}x{args.stack_size})\nwhole models "
             f"{'with the given weights' if trained else 'at init'} ({args.samples} noise inputs "
             f"3x{args.input_size}x{args.input_size}); log-scale maps, circles r50 (solid) / r90 (dashed)")
    args.png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # drawn, then reduced to a 256-colour palette as the gallery's
        _shrink(plot_erf_comparison(rows, Path(tmp) / "erf.png", title=title), args.png)
    write_json(args.json, {
        "records": records,
        "conditions": {
            "threads": args.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "load_average_before": load_before,
            "load_average_after": [round(v, 2) for v in os.getloadavg()], "seconds": round(seconds, 1),
            "torch": torch.__version__, "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "figure": str(args.png.relative_to(ROOT)) if args.png.is_relative_to(ROOT) else str(args.png),
        },
    })
    width = max(len(r["label"]) for r in records)
    for rec in records:
        print(f"{rec['view']:<28} {rec['label']:<{width}} r50 {rec['r50']:6.2f}  r90 {rec['r90']:6.2f}  "
              f"r99 {rec['r99']:6.2f}  (map {rec['map_size'][0]}x{rec['map_size'][1]})")
    print(f"wrote {args.png} and {args.json} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
