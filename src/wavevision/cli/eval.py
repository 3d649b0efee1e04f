"""``wavevision eval``: metrics of a trained checkpoint on a dataset split (wavevision.engine.evaluate_checkpoint)."""
from __future__ import annotations

import argparse

from ..data._base import SPLITS
from ..engine import evaluate_checkpoint, evaluate_pretrained
from ..engine.config import parse_assignments
from ..engine.tasks import get_task
from ..models._hub_download import CLI_FIX, HubUnavailableError
from ..utils import format_table, write_json
from ..utils.validate import check_int
from ._help import task_metrics

HELP = f"evaluate a trained checkpoint or released weights on a dataset split (metrics such as {task_metrics()})"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", default=None,
                        help="a run directory (uses best.safetensors) or a .safetensors checkpoint of wavevision train")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="a registered model (name or name.tag, wavevision list --pretrained) or hf-hub:ORG/NAME "
                             "or local-dir:PATH; with --pretrained (its released weights) or --checkpoint FILE")
    parser.add_argument("--pretrained", action="store_true", help="evaluate --model's released weights (downloaded "
                        "into the Hugging Face cache; pip install huggingface_hub)")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="with --model: a state dict of that model (.pth of the public package or .safetensors); "
                             "alone: the same as the run argument")
    parser.add_argument("--scale", type=int, default=None, help="super-resolution factor (the dataset option scale)")
    parser.add_argument("-d", "--dataset", default=None, help="dataset name or path (default: the checkpoint's)")
    parser.add_argument("--data-root", default=None, help="dataset folder or file (default: the checkpoint's)")
    parser.add_argument("--download", action="store_true", help="download the dataset when it has a public URL")
    parser.add_argument("--dataset-arg", action="append", metavar="KEY=VALUE", help="dataset option (repeatable)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate (default test)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default 128; 1 when sizes vary)")
    parser.add_argument("--device", default="auto", help="auto, cpu or an accelerator such as cuda:0")
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="mixed precision autocast")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes")
    parser.add_argument("--max-batches", type=int, default=None, help="evaluate the first N batches only")
    parser.add_argument("--sliding-window", type=int, nargs=2, default=None, metavar=("CROP", "STRIDE"),
                        help="segmentation: infer by CROP windows every STRIDE pixels, logits averaged where they "
                             "overlap (MMSegmentation's slide test, e.g. 512 341); default: whole images")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the metrics to FILE as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    if args.json and Path(args.json).exists() and not args.overwrite:
        raise FileExistsError(f"{args.json} already exists; pass --overwrite or choose another --json file")
    for flag, value in (("--batch-size", args.batch_size), ("--max-batches", args.max_batches)):
        if value is not None:
            check_int(flag, value, min=1, max=2**31 - 1)
    check_int("--num-workers", args.num_workers, min=0, max=1024)
    dataset_args = parse_assignments(args.dataset_arg, "--dataset-arg")
    if args.scale is not None:
        if dataset_args.get("scale", args.scale) != args.scale:
            raise ValueError(f"--scale {args.scale} and --dataset-arg scale={dataset_args['scale']} disagree; pass one")
        dataset_args["scale"] = args.scale
    common = dict(split=args.split, data_root=args.data_root, download=args.download,
                  dataset_args=dataset_args, batch_size=args.batch_size,
                  device=args.device, amp=args.amp, num_workers=args.num_workers, max_batches=args.max_batches,
                  progress=args.progress, sliding_window=None if args.sliding_window is None else tuple(args.sliding_window))
    if args.model is None:
        if (args.run is None) == (args.checkpoint is None) or args.pretrained:
            raise ValueError("give one run directory or checkpoint (wavevision eval runs/NAME), or --model NAME with "
                             "--pretrained or --checkpoint FILE")
        result = evaluate_checkpoint(args.run or args.checkpoint, dataset=args.dataset, **common)
    else:
        if args.run is not None or args.pretrained == bool(args.checkpoint):
            raise ValueError("--model takes exactly one of --pretrained (its released weights) or --checkpoint FILE, "
                             "and no run directory")
        if args.dataset is None:
            raise ValueError("--model needs --dataset (the dataset to evaluate on, e.g. imagenet with --data-root PATH)")
        try:
            result = evaluate_pretrained(args.model, dataset=args.dataset, checkpoint=args.checkpoint, **common)
        except HubUnavailableError as e:  # the command's own alternative, not the Python one
            raise type(e)(e.problem, CLI_FIX) from None
    if os.environ.get("RANK", "0") != "0":
        return 0
    metrics = [m for m in get_task(result["task"]).metrics if m in result]
    print(f"{result['model']} on {result['dataset']} {result['split']} ({result['images']:,} images, "
          f"{result['images_per_second']:,.0f} images/s)")
    print(format_table([{m: result[m] for m in metrics}], metrics))
    published = ", ".join(f"{k} {v}" for k, v in (result.get("published") or {}).items())
    if published and not args.checkpoint:
        print(f"published: {published}")
    if args.json:
        write_json(args.json, result)
    return 0
