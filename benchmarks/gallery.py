"""Make the docs' gallery: every kind of picture wavevision writes, from the commands a user runs.

Runs the ``wavevision`` subcommands in this process (short trainings on the embedded data,
then ``predict``, ``bench``, ``ablate`` and ``erf``), copies each PNG they wrote into
``docs/gallery/`` (reduced to a 256-colour palette, so the files stay small) and writes
``docs/gallery.md`` with one section per picture and the command behind it.

    python benchmarks/gallery.py                     # about 10 minutes on 2 CPU cores
    python benchmarks/gallery.py --det-epochs 5      # a better detector (the recipe's epochs)
    python benchmarks/gallery.py --work /tmp/runs    # keep the runs (default: a temporary folder)

Needs the ``data`` and ``plot`` extras, and the vision stack for the detection pictures
(without it they are left out, with a note).
"""
from __future__ import annotations

import os

# Before torch loads (wavevision imports it): the commands below run in this process, and
# OpenMP reads its wait policy once. This is what the wavevision command sets for itself.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str]) -> None:
    from wavevision.cli import main

    print("$ wavevision " + " ".join(argv), file=sys.stderr, flush=True)
    code = main(argv)
    if code != 0:
        raise SystemExit(f"wavevision {' '.join(argv)} failed with exit code {code}")


def _save_gray(array, path: Path) -> Path:
    from PIL import Image

    Image.fromarray((array * 255).round().clip(0, 255).astype("uint8")).save(path)
    return path


def _shrink(src: Path, dst: Path) -> Path:
    """``src`` as a 256-colour PNG at ``dst`` (plots and drawings have few colours; photos keep RGB)."""
    from PIL import Image

    with Image.open(src) as img:
        rgb = img.convert("RGB")
        small = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(dst, optimize=True)
    if dst.stat().st_size > src.stat().st_size:  # already small (an indexed mask): keep the original
        dst.write_bytes(src.read_bytes())
    return dst


# (gallery file, caption, command shown to the reader)
Entry = tuple[str, str, str]


def make(work: Path, out: Path, det_epochs: int) -> list[tuple[Entry, Path]]:
    """Run the commands in ``work`` and return (entry, the PNG it wrote)."""

    from wavevision.data import build_dataset

    made: list[tuple[Entry, Path]] = []
    quiet = ["--no-progress", "--overwrite"]  # --overwrite: a kept --work folder can be reused

    _run(["train", "--dataset", "digits", "--epochs", "5", "-o", str(work / "digits"), *quiet])
    made.append((("digits_curves.png", "Training curves of the digits classifier (loss, top-1, top-5, learning rate "
                   "per epoch; every panel names its curves).", "wavevision train --epochs 5"),
                 work / "digits" / "curves.png"))

    _run(["train", "--dataset", "digit-scenes", "--epochs", "8", "-o", str(work / "scenes"), *quiet])
    scenes, _ = build_dataset("digit-scenes", "test")
    scene = _save_gray(scenes.images[0, 0].numpy(), work / "scene.png")
    _run(["predict", str(work / "scenes"), str(scene), "-o", str(work / "scene-pred"), "--overwrite"])
    made += [
        (("segmentation_curves.png", "Segmentation curves (mIoU, pixel accuracy) on digit-scenes.",
          "wavevision train --dataset digit-scenes --epochs 8"), work / "scenes" / "curves.png"),
        (("segmentation_overlay.png", "A segmentation prediction: the 64x64 scene enlarged 6x, each class in its "
          "colour (background left clear), and a legend of the classes present with their share of pixels.",
          "wavevision predict runs/digit-scenes-wavemix_seg scene.png -o out/"),
         work / "scene-pred" / "scene_overlay.png"),
        (("segmentation_mask.png", "The mask file itself: one class id per pixel at the image's size, with a palette "
          "whose background (class 0) is black.", "(same command: out/scene_mask.png)"),
         work / "scene-pred" / "scene_mask.png"),
    ]

    _run(["train", "--dataset", "photos", "--epochs", "3", "--dataset-arg", "num_patches=400",
          "-o", str(work / "photos"), *quiet])
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.chelsea()[60:188, 130:258]).save(work / "cat.png")
    _run(["predict", str(work / "photos"), str(work / "cat.png"), "-o", str(work / "sr-pred"), "--overwrite"])
    made += [
        (("sr_curves.png", "Super-resolution curves: PSNR and SSIM of the model (solid) beside bicubic "
          "upsampling (dashed) on the validation photos.",
          "wavevision train --dataset photos --epochs 3 --dataset-arg num_patches=400"),
         work / "photos" / "curves.png"),
        (("sr_compare.png", "A super-resolution prediction (x2) beside bicubic upsampling of the same 128x128 crop.",
          "wavevision predict runs/photos-wavemix_paper_sr cat.png -o out/"), work / "sr-pred" / "cat_compare.png"),
    ]

    if all(importlib.util.find_spec(m) for m in ("torchvision", "pycocotools")):
        _run(["train", "--dataset", "digit-objects", "--epochs", str(det_epochs), "-o", str(work / "det"), *quiet])
        objects, _ = build_dataset("digit-objects", "test")
        images = [_save_gray(objects.images[i, 0].numpy(), work / f"objects{i}.png") for i in (0, 1)]
        _run(["predict", str(work / "det"), *map(str, images), "-o", str(work / "det-pred"), "--overwrite"])
        made += [
            (("detection_curves.png", "Detection curves (COCO box and mask AP on validation).",
              f"wavevision train --dataset digit-objects --epochs {det_epochs}"), work / "det" / "curves.png"),
            (("detection_prediction.png", f"Detections after {det_epochs} epochs on a 96x96 test image, drawn 4x "
              "larger: masks, boxes and a tag per object (class, score) kept inside the picture.",
              "wavevision predict runs/det objects0.png -o out/"), work / "det-pred" / "objects0_detections.png"),
            (("detection_prediction_2.png", "Another test image of the same run.",
              "wavevision predict runs/det objects1.png -o out/"), work / "det-pred" / "objects1_detections.png"),
        ]
    else:
        print("note: torchvision or pycocotools is missing, so the detection pictures are left out", file=sys.stderr)

    _run(["bench", "mixer_dwt", "mixer_pool", "wavemix_lite_8_10", "--batch-size", "32", "--repeats", "3",
          "--out", str(work / "bench")])
    made.append((("bench.png", "`wavevision bench` of three models: latency and training memory against parameters. "
                  "Only one of them has a reference accuracy, so there are no accuracy panels (the footnote says so).",
                  "wavevision bench mixer_dwt mixer_pool wavemix_lite_8_10 --batch-size 32"), work / "bench" / "bench.png"))
    _run(["bench", "wavemix_lite_8_10", "wavemix_lite_8_5", "mixer_dwt", "--batch-size", "32", "--repeats", "3",
          "--no-memory", "--out", str(work / "bench-acc")])
    made.append((("bench_accuracy.png", "With two or more reference accuracies the accuracy panels appear, their axis "
                  "kept within 100 %. Memory was not measured here (`--no-memory`), so its panels are left out "
                  "and the footnote names them.",
                  "wavevision bench wavemix_lite_8_10 wavemix_lite_8_5 mixer_dwt --no-memory"),
                 work / "bench-acc" / "bench.png"))

    _run(["ablate", "--mixers", "dwt", "pool", "identity", "--epochs", "3", "--seeds", "2", "--out", str(work / "ablation")])
    made.append((("ablation.png", "`wavevision ablate` (3 mixers, 2 seeds, 3 epochs): accuracy with seeds as dots, "
                  "training time and training-step memory per mixer.",
                  "wavevision ablate --mixers dwt pool identity --epochs 3 --seeds 2"), work / "ablation" / "ablation.png"))

    _run(["erf", "mixer_dwt", "--out", str(work / "erf")])
    _run(["erf", "--compare", "--seeds", "1", "--samples", "8", "--out", str(work / "erf")])
    made += [
        (("erf.png", "Effective receptive field of `mixer_dwt` at initialisation (log scale; circles at r50 and r90).",
          "wavevision erf mixer_dwt"), work / "erf" / "erf_mixer_dwt.png"),
        (("erf_compare.png", "ERFs of WaveMix levels 1-4 beside the dwconv and pool mixers, one block and the whole "
          "stack, with their radii.", "wavevision erf --compare --seeds 1 --samples 8"), work / "erf" / "erf_compare.png"),
    ]
    return made


def write_gallery(made: list[tuple[Entry, Path]], out: Path, seconds: float) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Gallery: the pictures wavevision writes", "",
             "Every kind of PNG the commands write, from short runs on the embedded data (so the models are "
             "weak; the point is what the pictures show). Made by `python benchmarks/gallery.py` in "
             f"{seconds / 60:.0f} minutes on a 2-core CPU; rerun it after changing a plot.", ""]
    for (name, caption, command), src in made:
        _shrink(src, out / name)
        lines += [f"## {name[:-4].replace('_', ' ')}", "", caption, "", f"`{command}`", "",
                  f"![{name}](gallery/{name})", ""]
    md = out.parent / "gallery.md"
    md.write_text("\n".join(lines))
    return md


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "gallery"), help="folder of the PNGs (gallery.md beside it)")
    parser.add_argument("--work", default=None, help="folder for the runs (default: a temporary folder, removed)")
    parser.add_argument("--det-epochs", type=int, default=3, help="epochs of the detection run (default 3)")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        made = make(work, Path(args.out), args.det_epochs)
        md = write_gallery(made, Path(args.out), time.perf_counter() - start)
    total = sum((Path(args.out) / e[0]).stat().st_size for e, _ in made)
    print(f"wrote {md} and {len(made)} pictures ({total / 1024:.0f} KiB) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
