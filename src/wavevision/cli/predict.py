"""``wavevision predict``: run a trained checkpoint on image files (wavevision.engine.predict)."""
from __future__ import annotations

import argparse

from ..engine import load_trained, predict

HELP = "predict with a trained checkpoint: top-k classes, a mask overlay, an upscaled image, or boxes and masks of objects"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a run directory (uses best.safetensors) or a .safetensors checkpoint")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", default=None,
                        help="folder for the results (needed for segmentation, super-resolution and detection; "
                             "classification writes predictions.json there); result files already there are kept: "
                             "the command refuses, naming them, unless --overwrite. Images sharing a name (a/x.png, "
                             "b/x.png) get results named after their folders (a-x, b-x)")
    parser.add_argument("-k", "--topk", type=int, default=5, help="classes to show per image (default 5)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="resize inputs to this size first (default: a classifier's training size; dense tasks "
                             "keep each image's size); the memory it needs is checked before any image is decoded")
    parser.add_argument("--device", default="auto", help="auto, cpu or an accelerator such as cuda:0")
    parser.add_argument("--overwrite", action="store_true", help="replace result files already in --output")


def run(args: argparse.Namespace) -> int:
    if args.image_size is not None and args.image_size < 1:
        raise ValueError(f"--image-size must be >= 1, got {args.image_size}")
    trained = load_trained(args.checkpoint, device=args.device)
    results = predict(trained, args.images, output=args.output, topk=args.topk, image_size=args.image_size,
                      overwrite=args.overwrite)
    for r in results:
        print(trained.task_def.describe(r))
    if args.output and not trained.task_def.needs_output:
        print(f"predictions written to {args.output}")
    return 0
