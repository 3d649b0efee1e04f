"""Measure every super-resolution model: size, cost and speed, then a short training on `photos`.

Issue 15 (WaveMixSR, WaveMixSR-V2): checks the V2 efficiency claim on this machine.

1. Complexity at the registered builds: parameters, multiply-accumulates for one 64x64 LR image
   (``FlopCounterMode`` FLOPs / 2, as every ``pretrained_cfg`` stores them), and CPU inference
   latency (batch 1, 64x64 LR, ``torch.no_grad``, median of ``--repeats`` after a warm-up), with
   each figure's ratio to WaveMixSR x2 measured in the same run.
2. A short, identical training on the embedded ``photos`` (x2, plus V2 at x4 beside bicubic x4):
   every model at the same width (``--width``, default 48 as the photos recipe) and its family's
   depth (wavemix_paper_sr 3 as the recipe, WaveMixSR 4, V2 2 per stage), ``--epochs`` epochs of
   ``--patches`` 64x64 patches, Adam-W as the recipe; held-out test PSNR/SSIM on studio-range Y
   with a ``scale``-pixel border, beside bicubic.

    python benchmarks/sr_models.py                        # both parts, 1 thread
    python benchmarks/sr_models.py --skip-training --repeats 20
    python benchmarks/sr_models.py --json sr.json

Timings depend on the machine's load (printed): the ratios in the same run are what to compare.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

MODELS = ["wavemix_paper_sr", "wavemix_paper_sr_144_4_x4", "wavemixsr_v1_x2", "wavemixsr_v2_x2", "wavemixsr_v2_x4", "wavemixsr_v2_x8"]
REFERENCE = "wavemixsr_v1_x2"
# (name, scale, width-independent overrides): the training comparison
TRAINED = [("wavemix_paper_sr", 2, dict(depth=3)), ("wavemixsr_v1_x2", 2, dict(depth=4)), ("wavemixsr_v2_x2", 2, dict(depth=2)),
           ("wavemixsr_v2_x4", 4, dict(depth=2))]


def _latency(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward pass (after two warm-up passes)."""
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(x)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def complexity(repeats: int) -> list[dict]:
    import wavevision
    from wavevision.bench.complexity import count_macs, count_parameters

    rows = []
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for name in MODELS:
        torch.manual_seed(0)
        model = wavevision.create_model(name).eval()
        rows.append(dict(model=name, scale=model.scale, params=count_parameters(model),
                         gmacs=count_macs(model, (3, 64, 64)) / 1e9, latency_ms=1e3 * _latency(model, x, repeats)))
    ref = next(r for r in rows if r["model"] == REFERENCE)
    for r in rows:
        for key in ("params", "gmacs", "latency_ms"):
            r[f"{key}_vs_ref"] = r[key] / ref[key]
    return rows


def _train_one(name: str, scale: int, overrides: dict, args: argparse.Namespace, out: str) -> dict:
    from wavevision.engine import RECIPES, train

    recipe = {k: v for k, v in RECIPES["photos"].items() if k not in ("model", "model_args", "epochs")}
    # the V2 block's ff_channel stays 4 * final_dim (the paper)
    width = dict(final_dim=args.width) if name.startswith("wavemixsr_v2") else dict(final_dim=args.width, ff_channel=args.width)
    start = time.perf_counter()
    result = train(dict(recipe, dataset="photos", model=name, model_args=dict(width, **overrides), epochs=args.epochs,
                        dataset_args=dict(scale=scale, num_patches=args.patches), output=os.path.join(out, name),
                        threads=args.threads, seed=0, progress=False, plots=False))
    t = result.test
    return dict(model=name, scale=scale, params=result.params, psnr=t["psnr"], ssim=t["ssim"],
                bicubic_psnr=t["bicubic_psnr"], bicubic_ssim=t["bicubic_ssim"], gain_db=t["psnr"] - t["bicubic_psnr"],
                seconds=time.perf_counter() - start)


def training(args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        return [_train_one(name, scale, overrides, args, out) for name, scale, overrides in TRAINED]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes per model")
    parser.add_argument("--width", type=int, default=48, help="final_dim of every model in the training comparison")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--patches", type=int, default=400, help="training patches per epoch")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--json", default=None, help="write both tables to this file")
    args = parser.parse_args()

    from wavevision.utils import format_table, write_json

    torch.set_num_threads(args.threads)
    env = dict(threads=args.threads, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(default)"),
               load_average=os.getloadavg(), torch=torch.__version__, cpus=os.cpu_count())
    print(f"threads {args.threads}, OMP_WAIT_POLICY {env['omp_wait_policy']}, load average "
          f"{' '.join(f'{v:.2f}' for v in env['load_average'])} on {env['cpus']} CPUs, torch {torch.__version__}")
    rows = complexity(args.repeats)
    print(f"\nRegistered builds, one 64x64 LR image (ratios to {REFERENCE}, same run)")
    print(format_table(rows, ["model", "scale", "params", "gmacs", "latency_ms", "params_vs_ref", "gmacs_vs_ref",
                              "latency_ms_vs_ref"]))
    trained = [] if args.skip_training else training(args)
    if trained:
        print(f"\nphotos test (2 held-out photos, 256x256 centre crops), width {args.width}, {args.epochs} epochs of "
              f"{args.patches} patches; PSNR/SSIM on studio-range Y, border = scale")
        print(format_table(trained, ["model", "scale", "params", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim",
                                     "gain_db", "seconds"]))
    env["load_average_after"] = os.getloadavg()
    if args.json:
        write_json(args.json, dict(environment=env, complexity=rows, photos=trained))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
