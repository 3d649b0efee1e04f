"""Activation memory of a training step with and without ``set_grad_checkpointing()``.

Each case runs in a fresh process (CPU, ``OMP_NUM_THREADS`` threads): build the model and an
AdamW optimizer, run one small step so the gradients and the optimizer state exist, read the
resident memory (the baseline: weights, gradients, optimizer state, libraries), reset the
peak (``/proc/self/clear_refs``), run full-size training steps, and read the peak resident
memory (``VmHWM``). Activation memory = peak - baseline. Prints the cases, their ratios and the
time of a training step (the fastest after the first; noisy on a loaded machine) against the
plain model's. The cases: the plain model, ``set_grad_checkpointing()`` (the model's own segments,
printed) and uniform segments of ``--every`` blocks.

Like ``wavevision bench`` the children run with ``MALLOC_MMAP_THRESHOLD_=65536`` (``--malloc
default`` leaves glibc's dynamic threshold): freed tensors then go back to the system, so the
RSS follows live memory instead of heap space glibc keeps after the first free.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/grad_checkpointing.py --batch-size 8
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(key: str) -> int:
    """A ``/proc/self/status`` field in bytes (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def _loss(out, y):
    """Cross-entropy of class logits; the mean square of dense outputs (segmentation logits, images)
    and the sum over Wave-ViT's token-labelling outputs."""
    import torch.nn.functional as F

    if isinstance(out, tuple):  # Wave-ViT's TokenLabelOutput also holds the MixToken box and the grid size
        return sum(_loss(o, y) for o in out if hasattr(o, "dim"))
    return F.cross_entropy(out, y) if out.dim() == 2 else out.square().mean()


def _case(model_name: str, size: int, batch: int, steps: int, every: int) -> dict:
    """Runs inside the child process: one configuration, measured as described in the module docstring.

    every: 0 plain, -1 ``set_grad_checkpointing()`` (the model's segments), n segments of n blocks.
    """
    import time

    import torch

    import wavevision
    from wavevision.layers.grad_checkpoint import segment_bounds

    torch.manual_seed(0)
    model = wavevision.create_model(model_name).train()
    if every:
        model.set_grad_checkpointing(True, every=None if every < 0 else every)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    chans, classes = model.in_chans, model.num_classes

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        _loss(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=False)  # gradients stay allocated: part of the baseline

    step(torch.rand(1, chans, 32, 32), torch.zeros(1, dtype=torch.long))  # gradients and AdamW state now exist
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset VmHWM to the current RSS
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, chans, size, size, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x, y)
        seconds.append(time.perf_counter() - start)
    peak = _status("VmHWM")
    blocks = getattr(model, "layers", None)  # WaveMix; Wave-ViT segments each stage
    lengths = model._segment_lengths(len(blocks)) if every and blocks is not None else ()
    segments = [stop - start for start, stop in segment_bounds(len(blocks), lengths)] if lengths else []
    return dict(every=every, segments=segments, baseline_mb=baseline / 2**20, peak_mb=peak / 2**20,
                activation_mb=(peak - baseline) / 2**20, step_s=min(seconds[1:] or seconds))


def _run(args: argparse.Namespace, every: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", args.model, "--size", str(args.size),
           "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--every", str(every)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.setdefault("OMP_NUM_THREADS", "1")
    if args.malloc == "fresh-pages":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="wavemix_192_16_l3")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--every", type=int, nargs="*", default=[2, 1],
                   help="uniform segment lengths to measure besides the plain model and the default "
                        "segments of set_grad_checkpointing() (default: 2 1)")
    p.add_argument("--malloc", choices=["fresh-pages", "default"], default="fresh-pages")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_case(args.model, args.size, args.batch_size, args.steps, args.every[0])))
        return
    rows = [_run(args, every) for every in [0, -1, *args.every]]
    print(f"{args.model} at {args.size}x{args.size}, batch {args.batch_size}, {args.steps} training step(s), CPU, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}, malloc: {args.malloc}, "
          f"load average {os.getloadavg()[0]:.2f}")
    plain, plain_s = rows[0]["activation_mb"], rows[0]["step_s"]
    for r in rows:
        label = {0: "plain", -1: "checkpointing (default)"}.get(r["every"], f"checkpointing, every={r['every']}")
        if r["segments"] and r["every"] < 0:
            label += " " + "+".join(map(str, r["segments"]))
        print(f"  {label:26s} baseline {r['baseline_mb']:8.1f} MiB  peak {r['peak_mb']:8.1f} MiB  "
              f"activations {r['activation_mb']:8.1f} MiB  ratio {plain / r['activation_mb']:5.2f}x  "
              f"step {r['step_s']:6.2f} s ({r['step_s'] / plain_s:4.2f}x)")


if __name__ == "__main__":
    main()
