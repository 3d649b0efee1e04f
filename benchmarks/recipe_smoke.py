"""Smoke benchmark of three full recipes: a few hundred steps each on generated data in the real formats.

For each recipe (Wave-ViT-S with token labels on ImageNet, Mask R-CNN Wave-ViT-S on COCO 1x,
UperNet Wave-ViT-S on ADE20K 160k) this writes a small dataset in the format the real one
has on disk (an ImageNet class-folder tree with LV-ViT token-label ``.pt`` files beside it; COCO
``annotations/instances_*.json`` with polygon masks and images; ADE20K's ``images/`` and
``annotations/`` folders) at the real input sizes, then trains it through ``wavevision.engine.train``
with the recipe and these overrides only: the run's length, no test pass, one validation batch
per epoch, no plots, and one micro-batch per optimizer step (the recipe's per-device batch, or
``--batch``; a single device reaches the recipe's global batch by accumulating ``accumulation`` of
them, so a full run is ``accumulation`` times as many of these steps; the optimizer's own step, done once
per accumulation in a real run, is timed here on every step, so the projection errs long).

Printed and written to ``benchmarks/results/recipe_smoke.json`` per recipe: steps per second
(warm-up steps and steps that follow a validation or checkpoint left out), peak memory
(``torch.cuda.max_memory_allocated`` on CUDA, per recipe; the process's peak RSS so far on CPU) and the projected
hours of the full recipe on this one device (full steps / steps per second). CPU projections
are meaningless for these recipes; the numbers worth reading come from an accelerator.

    python benchmarks/recipe_smoke.py --device cuda              # about 8 minutes on one H100
    python benchmarks/recipe_smoke.py --device cpu --steps 2 --batch 1   # proves the pipeline works
                                                    # (Mask R-CNN at 1333x800 in fp32: ~17 GB at batch 2)
    python benchmarks/recipe_smoke.py --tiny --steps 1           # tiny models and sizes (the test)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "recipe_smoke.json"
RECIPES = ("wave_vit_s_in1k_tl", "mask_rcnn_wave_vit_s_coco_1x", "upernet_wave_vit_s_ade20k_160k")
WARMUP_STEPS = 5
# Full-run sizes: ImageNet-1k train images, COCO train2017 images with annotations, ADE20K iterations.
IMAGENET_TRAIN = 1_281_167
COCO_TRAIN = 117_266
_TINY_VIT = {"embed_dims": [16, 32, 48, 64], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 3, 4], "stem_hidden_dim": 8}


# -- generated datasets in their on-disk formats -----------------------------------------------

def _imagenet_tree(root: Path, *, n: int, size: int, classes: int, tokens: int) -> dict[str, Any]:
    """``train/<class>/<name>.JPEG`` and ``val/...``, with ``label_top5_train_nfnet/<class>/<name>.pt``
    (a (2, 5, tokens, tokens) float16 map: top-5 teacher scores and their class indices)."""
    from PIL import Image

    from wavevision.data.token_labels import label_file

    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    k = min(5, classes)
    for split, count in (("train", n), ("val", max(classes, n // 8))):
        for i in range(count):
            c = i % classes
            path = root / split / f"n{c:08d}" / f"n{c:08d}_{i}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, format="JPEG", quality=85)
            if split == "train":
                idx = torch.stack([torch.randperm(classes, generator=g)[:k] for _ in range(tokens * tokens)], 1)
                scores = torch.rand(k, tokens * tokens, generator=g) * 10
                target = label_file(path, root / "label_top5_train_nfnet")
                target.parent.mkdir(parents=True, exist_ok=True)
                torch.save(torch.stack([scores, idx.float()]).view(2, k, tokens, tokens).half(), target)
    return {}


def _coco_folder(root: Path, *, n: int, size: tuple[int, int], classes: int) -> dict[str, Any]:
    """``annotations/instances_{train,val}2017.json`` and ``{train,val}2017/*.jpg``: each image with
    three rectangles of random classes, as polygons."""
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    cats = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(classes)]
    for split in ("train2017", "val2017"):
        (root / split).mkdir(parents=True)
        images, anns = [], []
        for i in range(n if split == "train2017" else max(2, n // 8)):
            img = rng.integers(0, 64, (h, w, 3), dtype=np.uint8)
            for _ in range(3):
                bw, bh = int(rng.integers(w // 8, w // 3)), int(rng.integers(h // 8, h // 3))
                x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                cat = int(rng.integers(1, classes + 1))
                img[y:y + bh, x:x + bw] = 60 + 190 * cat // classes
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat, "iscrowd": 0,
                             "bbox": [x, y, bw, bh], "area": float(bw * bh),
                             "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]})
            name = f"{i + 1:012d}.jpg"
            Image.fromarray(img).save(root / split / name, quality=90)
            images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return {}


def _ade20k_folder(root: Path, *, n: int, size: tuple[int, int]) -> dict[str, Any]:
    """``images/{training,validation}/ADE_*.jpg`` with ``annotations/.../ADE_*.png`` (labels 0-150)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    for split, count in (("training", n), ("validation", max(2, n // 8))):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(count):
            lab = np.zeros((h, w), np.uint8)
            for _ in range(4):
                y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
                lab[y:y + h // 2, x:x + w // 2] = int(rng.integers(1, 151))
            img = (rng.random((h, w, 3)) * 40 + lab[..., None]).astype(np.uint8)
            Image.fromarray(img).save(root / "images" / split / f"ADE_{split}_{i:08d}.jpg", quality=90)
            Image.fromarray(lab).save(root / "annotations" / split / f"ADE_{split}_{i:08d}.png")
    return {}


# -- one recipe ----------------------------------------------------------------------------------

class _Clock:
    """Times each optimizer step; only steps that directly follow another step in the same epoch count
    (not the first ``warmup``, not those after a validation or checkpoint)."""

    def __init__(self, device: torch.device, warmup: int) -> None:
        self.device, self.warmup, self.last, self.gaps, self.steps = device, warmup, None, [], 0

    def on_step_end(self, state: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = (time.perf_counter(), state.epoch)
        self.steps += 1
        if self.last is not None and self.last[1] == now[1] and self.steps > self.warmup:
            self.gaps.append(now[0] - self.last[0])
        self.last = now

    def on_epoch_end(self, state: Any, record: dict[str, Any]) -> None:
        self.last = None


def _spec(name: str, tiny: bool) -> dict[str, Any]:
    """The generator, its sizes, the model overrides and the full run's length (steps per device, at
    the recipe's per-device batch) of each recipe."""
    if name == "wave_vit_s_in1k_tl":
        size = 64 if tiny else 256  # stored at 256, RandomResizedCrop to the recipe's 224
        return dict(make=lambda root: _imagenet_tree(root, n=8 if tiny else 1024, size=size, classes=4 if tiny else 100,
                                                    tokens=2 if tiny else 14),
                    dataset_args={"image_size": 64} if tiny else {}, model_args=_TINY_VIT if tiny else {},
                    full_steps=lambda r, b: r.epochs * math.ceil(IMAGENET_TRAIN / r.global_batch) * math.ceil(r.global_batch / b))
    if name == "mask_rcnn_wave_vit_s_coco_1x":
        return dict(make=lambda root: _coco_folder(root, n=4 if tiny else 128, size=(96, 64) if tiny else (640, 480),
                                                   classes=3 if tiny else 80),
                    dataset_args={}, model_args={"backbone_args": _TINY_VIT, "min_size": 64, "max_size": 96} if tiny else {},
                    full_steps=lambda r, b: r.epochs * math.ceil(COCO_TRAIN / b))
    return dict(make=lambda root: _ade20k_folder(root, n=4 if tiny else 128, size=(96, 64) if tiny else (683, 512)),
                dataset_args={"scale": [128, 32], "crop_size": [32, 32]} if tiny else {},
                model_args={"backbone_args": _TINY_VIT, "channels": 16} if tiny else {},
                full_steps=lambda r, b: r.iterations * math.ceil(r.global_batch / b))


def run_recipe(name: str, *, device: str, steps: int, tiny: bool, workdir: Path, threads: int | None,
               batch: int | None = None) -> dict[str, Any]:
    """Generate the data, train ``steps`` steps of recipe ``name`` and measure (see the module docstring)."""
    from wavevision.engine import Callback, train
    from wavevision.recipes import get_recipe

    recipe, spec = get_recipe(name), _spec(name, tiny)
    root = workdir / name
    spec["make"](root)
    dev = torch.device(device)
    clock = _Clock(dev, warmup=min(WARMUP_STEPS, max(steps - 2, 0)))  # short runs: at least one gap timed
    callback = type("SmokeClock", (Callback,), {"on_step_end": lambda s, st: clock.on_step_end(st),
                                                "on_epoch_end": lambda s, st, r: clock.on_epoch_end(st, r)})()
    batch = batch or (2 if tiny else recipe.batch_per_device)
    overrides: dict[str, Any] = dict(
        recipe=name, data_root=str(root), device=device, output=str(workdir / f"{name}-run"), batch_size=batch,
        global_batch=batch, epochs=10_000, max_train_batches=None, max_eval_batches=1, test=False, plots=False,
        progress=False, log_every=0, warmup_epochs=0.0, warmup_iters=0, cooldown_epochs=0,
        num_workers=0 if dev.type == "cpu" else min(8, os.cpu_count() or 1), threads=threads,
    )
    if dev.type == "cpu" and recipe.amp == "fp16":
        overrides["amp"] = "none"  # fp16 needs an accelerator
    if spec["dataset_args"]:
        overrides["dataset_args"] = spec["dataset_args"]
    if spec["model_args"]:
        overrides["model_args"] = spec["model_args"]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    class _Stop(Exception):
        pass

    class Stop(Callback):
        def on_step_end(self, state: Any) -> None:
            if clock.steps >= steps:
                raise _Stop

    start = time.perf_counter()
    try:
        train(callbacks=[callback, Stop()], **overrides)
    except _Stop:
        pass
    wall = time.perf_counter() - start
    rate = len(clock.gaps) / sum(clock.gaps) if clock.gaps else clock.steps / wall
    if dev.type == "cuda":
        peak, what = torch.cuda.max_memory_allocated(dev), "torch.cuda.max_memory_allocated"
    else:
        peak, what = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "peak RSS of the process (earlier recipes of the run included)"
    full = spec["full_steps"](recipe, batch)
    return {"recipe": name, "model": recipe.model, "steps": clock.steps, "timed_steps": len(clock.gaps),
            "batch_per_step": batch, "recipe_batch_per_device": recipe.batch_per_device,
            "accumulation": math.ceil(recipe.global_batch / batch),
            "amp": overrides.get("amp", recipe.amp), "steps_per_second": rate, "images_per_second": rate * batch,
            "peak_memory_bytes": int(peak), "peak_memory": what, "full_steps": full,
            "projected_hours": full / rate / 3600, "wall_seconds": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=150, help="steps per recipe (the first few are warm-up)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--tiny", action="store_true", help="tiny models and inputs (a test of the pipeline, not a benchmark)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per step instead of the recipe's per-device batch (a smaller one fits a CPU's memory)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")

    from wavevision.utils import format_table, write_json

    rows = []
    with tempfile.TemporaryDirectory(prefix="recipe_smoke_") as tmp:
        for name in args.recipes:
            print(f"{name}: generating data and training {args.steps} steps on {args.device}", file=sys.stderr, flush=True)
            rows.append(run_recipe(name, device=args.device, steps=args.steps, tiny=args.tiny, workdir=Path(tmp),
                                   threads=args.threads, batch=args.batch))
    device_name = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else platform.processor() or platform.machine()
    report = {"device": args.device, "device_name": device_name, "tiny": args.tiny, "steps": args.steps, "batch": args.batch,
              "torch": torch.__version__, "recipes": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, report)
    print(format_table([{"recipe": r["recipe"], "batch": r["batch_per_step"], "steps/s": f"{r['steps_per_second']:.3g}",
                         "images/s": f"{r['images_per_second']:.3g}", "peak GiB": f"{r['peak_memory_bytes'] / 2**30:.2f}",
                         "projected hours (1 device)": f"{r['projected_hours']:,.1f}"} for r in rows]))
    print(f"device: {args.device} ({device_name}); written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
