"""``wavevision export MODEL``: write ONNX or TorchScript (wavevision.export), optionally fused."""
from __future__ import annotations

import argparse

HELP = "export a model to ONNX (dynamic batch, checked with onnxruntime), TorchScript, or a Hugging Face Hub folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a registered model name (wavevision list); with --format hub also a run "
                                      "directory or a .safetensors checkpoint of wavevision train")
    parser.add_argument("--format", choices=("onnx", "torchscript", "hub"), default="onnx",
                        help="output format (default onnx); hub: a folder of model.safetensors + config.json that "
                             "create_model('local-dir:PATH') loads, and 'hf-hub:ORG/NAME' once uploaded")
    parser.add_argument("--output", "-o", required=True, metavar="PATH",
                        help="file to write (.onnx or .pt), or the folder for --format hub")
    parser.add_argument("--checkpoint", metavar="PATH", default=None,
                        help="weights to load: a wavevision .safetensors or a public-package .pth (default: random init)")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="hyperparameter override (repeatable)")
    parser.add_argument("--fuse", action="store_true", help="fold BatchNorm into convolutions and drop dropout first")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; see --exporter)")
    parser.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto",
                        help="ONNX exporter: auto = TorchScript-based, the torch.export-based one only for operators "
                             "the former cannot translate (default auto)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input height and width to trace at (default: the size the model is registered for, "
                             "else its reference dataset's, else 224 / 512 / 64 for classification / segmentation / "
                             "super-resolution); the batch dimension stays dynamic")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip running the exported file and comparing it with PyTorch")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--json", action="store_true", help="print the export report as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..bench import ModelSpec, default_input_shape
    from ..engine.config import parse_assignments
    from ..engine.sizing import check_fits_memory, meta_model
    from ..export import DEFAULT_OPSET, export_onnx, export_torchscript
    from ..models import create_model, get_entry

    if args.format == "hub":
        return _export_hub(args)
    get_entry(args.model)  # an unknown name fails before any file is touched
    out = Path(args.output)
    if out.is_dir():
        raise IsADirectoryError(f"--output {out} is a directory; give a file name such as {out / (args.model + '.onnx')}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --output")
    if args.format == "torchscript" and (args.opset is not None or args.exporter != "auto"):
        raise ValueError("--opset and --exporter apply to --format onnx only")
    if args.input_size is not None and min(args.input_size) < 1:
        raise ValueError(f"--input-size takes a positive height and width, got {args.input_size}")
    overrides = parse_assignments(args.model_arg, "--model-arg")
    meta = meta_model(lambda: create_model(args.model, **overrides)).eval()
    size = default_input_shape(ModelSpec(args.model), meta, tuple(args.input_size) if args.input_size else None)
    check_fits_memory(meta, input_shape=(2, *size), what=f"exporting {args.model} at {size[1]}x{size[2]}",
                      fix="give a smaller --input-size, or smaller --model-arg values (final_dim, ff_channel, depth)")
    model = create_model(args.model, checkpoint=args.checkpoint, **overrides).eval()
    if args.format == "onnx":
        opset = DEFAULT_OPSET if args.opset is None else args.opset
        report = export_onnx(model, out, input_size=size, opset=opset, fuse=args.fuse, exporter=args.exporter, check=args.check)
    else:
        report = export_torchscript(model, out, input_size=size, fuse=args.fuse, check=args.check)
    if args.json:
        record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(report).items()}
        print(json.dumps(record, indent=2))
        return 0
    kind = f"ONNX opset {report.opset}, {report.exporter} exporter" if report.format == "onnx" else "TorchScript (traced)"
    shape = "x".join(str(s) for s in report.input_shape[1:])
    print(f"wrote {report.path} ({kind}{', fused' if report.fused else ''}): input Bx{shape}, dynamic batch, "
          f"{report.path.stat().st_size / 2**20:.1f} MiB in {report.seconds:.1f} s")
    if report.checks:
        runtime = "onnxruntime" if report.format == "onnx" else "the reloaded module"
        batches = ", ".join(str(b) for b in report.checks)
        print(f"{runtime} matches PyTorch at batch {batches}: max relative error {report.max_rel_error:.1e}")
    return 0


def _dataset_cfg(cfg: dict, info: object) -> dict:
    """``cfg`` updated with what a run's dataset says about the trained weights: its name, head
    size, class names, input size and normalisation (so the folder documents its own inputs)."""
    out = dict(cfg, dataset=info.name, num_classes=info.num_classes)
    if info.class_names:
        out["label_names"] = tuple(info.class_names)
    if info.image_size:
        out["input_size"] = (info.in_chans, *info.image_size)
    if info.mean:
        out["mean"], out["std"] = tuple(info.mean), tuple(info.std)
    return out


def _export_hub(args: argparse.Namespace) -> int:
    """``--format hub``: a Hub-style folder (wavevision.save_pretrained) from a run, a checkpoint or a name."""
    import os
    from pathlib import Path

    from ..engine.config import parse_assignments
    from ..models import create_model, get_entry, save_pretrained

    if args.fuse or args.opset is not None or args.exporter != "auto" or args.input_size is not None:
        raise ValueError("--fuse, --opset, --exporter and --input-size apply to onnx and torchscript, not --format hub")
    out = Path(args.output)
    for name in ("model.safetensors", "config.json"):
        if (out / name).exists() and not args.overwrite:
            raise FileExistsError(f"{out / name} already exists; pass --overwrite to replace it or choose another --output")
    overrides = parse_assignments(args.model_arg, "--model-arg")
    source = Path(args.model)
    if source.is_dir() or source.suffix == ".safetensors":
        if args.checkpoint or overrides:
            raise ValueError("--checkpoint and --model-arg apply to a model name; a run directory brings its own")
        from ..engine.predict import load_trained

        trained = load_trained(source)
        model = trained.model
        if trained.info is not None:
            model.pretrained_cfg = _dataset_cfg(model.pretrained_cfg, trained.info)
    else:
        if not source.exists() and ("/" in args.model or os.sep in args.model):
            raise FileNotFoundError(f"{source} does not exist; give a run directory, a .safetensors checkpoint or a "
                                    "registered model name (wavevision list)")
        get_entry(args.model)  # an unknown name fails before any file is touched
        model = create_model(args.model, checkpoint=args.checkpoint, **overrides)
    folder = save_pretrained(model, out, overwrite=args.overwrite)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {folder}/model.safetensors and config.json ({model.model_name}, {params:,} parameters); load it "
          f"with wavevision.create_model('local-dir:{folder}'), or upload it (huggingface-cli upload ORG/NAME {folder}) "
          "and use 'hf-hub:ORG/NAME'")
    return 0
