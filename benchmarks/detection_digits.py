"""Measure `wavevision train --dataset digit-objects`: the default Mask R-CNN (a small Wave-ViT + FPN).

Target (issue 14): box AP50 of at least 80 on the test split within about 10 minutes of
training on 2 CPU cores. Runs the recipe once per seed in a fresh subprocess and prints per seed:
test box AP / AP50 and mask AP / AP50 (pycocotools' COCOeval, percent), training seconds
(epochs plus per-epoch validation; dataset building and the final test pass excluded), the
process's CPU seconds (a load-independent measure of the work), the epoch where AP50 first
reached the target on validation, and the machine's load average before and after (other
processes on a shared machine slow every timing).

    python benchmarks/detection_digits.py                  # seed 0, 2 threads, the recipe
    python benchmarks/detection_digits.py --epochs 6       # override the recipe's epochs
    python benchmarks/detection_digits.py --passive --json out.json
    python benchmarks/detection_digits.py --passive --model-arg reference=mmdet --model-arg roi_sampling_ratio=0
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_AP50 = 80.0
TARGET_SECONDS = 600.0

_CHILD = """
import json, sys, time
from wavevision.engine import train
seed, threads, out, epochs, model_args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
extra = {} if epochs == "recipe" else {"epochs": int(epochs)}
extra["model_args"] = json.loads(model_args)
start, cpu = time.perf_counter(), time.process_time()
r = train(dataset="digit-objects", seed=seed, threads=threads, output=out, progress=False, plots=False, **extra)
reached = next((h["epoch"] for h in r.history if h.get("val_box_ap50", 0) >= TARGET_AP50), None)
print(json.dumps({"seed": seed, "test": r.test, "val": r.val, "best_epoch": r.best_epoch, "epochs": r.epochs,
                  "train_seconds": r.train_seconds, "wall_seconds": time.perf_counter() - start,
                  "cpu_seconds": time.process_time() - cpu, "params": r.params, "model": r.model_name,
                  "val_ap50_target_epoch": reached,
                  "seconds_to_target": sum(h["epoch_seconds"] for h in r.history[:reached]) if reached else None,
                  "train_images_per_second": r.train_images_per_second}))
""".replace("TARGET_AP50", repr(TARGET_AP50))


def _run(seed: int, threads: int, epochs: str, model_args: dict, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(seed), str(threads), str(Path(tmp) / "run"), epochs,
                               json.dumps(model_args)],
                              env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    parser.add_argument("--epochs", default="recipe", help="epochs (default: the recipe's)")
    parser.add_argument("--passive", action="store_true", help="run with OMP_WAIT_POLICY=PASSIVE")
    parser.add_argument("--json", default=None, help="write the records to this file")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="a model argument over the recipe's (VALUE read as JSON, else a string); repeatable")
    args = parser.parse_args()
    model_args = {}
    for item in args.model_arg:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--model-arg {item!r} is not KEY=VALUE")
        try:
            model_args[key] = json.loads(value)
        except json.JSONDecodeError:
            model_args[key] = value

    from wavevision.utils import format_table, write_json

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    rows = []
    for seed in args.seeds:
        load = os.getloadavg()[0]
        r = _run(seed, args.threads, str(args.epochs), model_args, env)
        r["model_args"] = model_args
        r.update(load_before=load, load_after=os.getloadavg()[0])
        rows.append(r)
        print(json.dumps(r), file=sys.stderr)
    table = [{"seed": r["seed"], "epochs": r["epochs"], "box AP50": r["test"]["box_ap50"], "box AP": r["test"]["box_ap"],
              "mask AP50": r["test"].get("mask_ap50"), "mask AP": r["test"].get("mask_ap"),
              "train s": r["train_seconds"], "cpu s": r["cpu_seconds"], "s to val AP50 target": r["seconds_to_target"],
              "load": f"{r['load_before']:.1f}/{r['load_after']:.1f}"} for r in rows]
    print(format_table(table))
    ok = all(r["test"]["box_ap50"] >= TARGET_AP50 and r["train_seconds"] <= TARGET_SECONDS for r in rows)
    print(f"target: test box AP50 >= {TARGET_AP50} within {TARGET_SECONDS:.0f} s of training on {args.threads} "
          f"threads: {'met' if ok else 'NOT met'} ({rows[0]['model']}, {rows[0]['params']:,} parameters)")
    if args.json:
        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
