"""ImageNet-style training input pipeline throughput: images per second per loader worker (CPU core).

What one worker does per image in the DeiT recipe (``wave_vit_s_in1k_deit``): decode a JPEG
(Pillow), timm's RandomResizedCrop to 224 (bicubic), flip, RandAugment ``rand-m9-mstd0.5-inc1``,
normalisation and random erasing (p 0.25, pixel), read through ``build_dataset("imagenet", ...)``
with the recipe's dataset options, batched by a DataLoader. The JPEGs are generated here
(default 256 of 500x375, ImageNet's typical size, quality 90, smooth content with noise so
they decode like photographs). Each worker count runs ``--epochs`` passes over the images
with persistent workers; the first is a warm-up, the median of the rest is reported.

The figure is images/s divided by the workers: how many cores a GPU needs to be kept fed
(e.g. an H100 training Wave-ViT-S at ~2,000 images/s needs 2,000 / this figure cores).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/imagenet_pipeline.py            # 1 and 2 workers
    python benchmarks/imagenet_pipeline.py --workers 1 2 4 --images 512

Writes benchmarks/results/imagenet_pipeline.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from wavevision.data import build_dataset
from wavevision.engine.config import resolve_config

RESULTS = Path(__file__).resolve().parent / "results" / "imagenet_pipeline.json"


def make_jpegs(root: Path, count: int, width: int, height: int) -> None:
    """``count`` JPEGs of ``width`` x ``height`` in two classes under root/train (and two in root/val)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for split, n in (("train", count), ("val", 2)):
        for i in range(n):
            folder = root / split / f"n{i % 2:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            f = rng.uniform(0.005, 0.05, 3)
            base = np.stack([np.sin(xx * f[c] + yy * f[(c + 1) % 3]) for c in range(3)], -1) * 100 + 128
            pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def measure(dataset, workers: int, batch: int, epochs: int) -> list[float]:
    """Images per second of each pass over ``dataset`` with ``workers`` persistent workers."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=True,
                        prefetch_factor=4, worker_init_fn=lambda _: torch.set_num_threads(1))
    rates = []
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for images, _labels in loader:
            n += images.shape[0]
        rates.append(n / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, nargs=2, default=(500, 375), metavar=("W", "H"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="passes per worker count (the first is a warm-up)")
    parser.add_argument("--recipe", default="wave_vit_s_in1k_deit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = resolve_config(overrides=dict(recipe=args.recipe)).dataset_args
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root, args.images, *args.size)
        dataset, _ = build_dataset("imagenet", "train", root=root, augment=True, **options)
        rows = []
        for workers in args.workers:
            rates = measure(dataset, workers, args.batch, args.epochs)
            best = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
            rows.append({"workers": workers, "images_per_second": round(best, 1),
                         "images_per_second_per_worker": round(best / workers, 1),
                         "passes": [round(r, 1) for r in rates]})
            print(f"{workers} worker(s): {best:7.1f} images/s, {best / workers:6.1f} per worker "
                  f"(passes: {', '.join(f'{r:.0f}' for r in rates)})")
    import timm

    result = {
        "pipeline": f"{args.recipe}: JPEG decode + timm RandomResizedCrop 224 bicubic, flip, RandAugment, "
                    "normalize, random erasing",
        "dataset_options": options, "images": args.images, "image_size": list(args.size), "batch": args.batch,
        "rows": rows,
        "environment": {"cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "torch_threads_per_worker": 1,
                        "torch": torch.__version__, "timm": timm.__version__, "pillow": Image.__version__,
                        "processor": platform.processor() or platform.machine()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
