"""``wavevision export RUN|MODEL``: write ONNX or TorchScript (wavevision.export), optionally fused, or a
Hub-style folder, from a training run (its model, input size, normalisation and class names) or a name."""
from __future__ import annotations

import argparse
from typing import Any, cast

from ..bench import ModelSpec, default_input_shape
from ..engine.config import parse_assignments
from ..engine.sizing import check_fits_memory, meta_model
from ..export import DEFAULT_OPSET, ExportCheckError, export_metadata, export_onnx, export_torchscript, load_run
from ..models import create_model, get_entry, save_pretrained
from ..models._builder import _read_config
from ..models._pretrained import split_model_name_tag
from ..models._registry import resolve_model_name
from . import CLIError
from ._help import task_sizes

HELP = "export a model to ONNX (dynamic batch, checked with onnxruntime), TorchScript, or a Hugging Face Hub folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a run directory or a .safetensors checkpoint of wavevision train (its model, "
                                      "input channels and size, normalisation and class names come from the run), "
                                      "or a registered model name (wavevision list)")
    parser.add_argument("--format", choices=("onnx", "torchscript", "hub"), default="onnx",
                        help="output format (default onnx); hub: a folder of model.safetensors + config.json that "
                             "create_model('local-dir:PATH') loads, and 'hf-hub:ORG/NAME' once uploaded")
    parser.add_argument("--output", "-o", required=True, metavar="PATH",
                        help="file to write (.onnx or .pt), or the folder for --format hub")
    parser.add_argument("--checkpoint", metavar="PATH", default=None,
                        help="with a model name: weights to load, a wavevision .safetensors (the model is then the "
                             "checkpoint's) or a public-package .pth (default: random init)")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="hyperparameter override (repeatable)")
    parser.add_argument("--fuse", action="store_true", help="fold BatchNorm into convolutions and drop dropout first")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; see --exporter)")
    parser.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto",
                        help="ONNX exporter: auto = TorchScript-based, the torch.export-based one only for operators "
                             "the former cannot translate (default auto)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input height and width to trace at (default: the size a run trained on, else the size "
                             f"the model is registered for, else {task_sizes()}); the channels are always the model's; "
                             "the batch dimension stays dynamic")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip running the exported file and comparing it with PyTorch")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file (only once the new export has passed its check)")
    parser.add_argument("--json", action="store_true", help="print the export report as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    if args.format == "hub":
        return _export_hub(args)
    if args.format == "torchscript" and (args.opset is not None or args.exporter != "auto"):
        raise ValueError("--opset and --exporter apply to --format onnx only")
    if args.input_size is not None and min(args.input_size) < 1:
        raise ValueError(f"--input-size takes a positive height and width, got {args.input_size}")
    overrides = parse_assignments(args.model_arg, "--model-arg")
    source = _Source(args, overrides)  # an unknown name or a missing run fails before any file is touched
    out = Path(args.output)
    if out.is_dir():
        raise IsADirectoryError(f"--output {out} is a directory; give a file name such as {out / (source.stem + '.onnx')}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --output")
    model, size, origin = source.load_sized(tuple(args.input_size) if args.input_size else None)
    metadata = export_metadata(model, size)
    try:
        if args.format == "onnx":
            opset = DEFAULT_OPSET if args.opset is None else args.opset
            report = export_onnx(model, out, input_size=size, opset=opset, fuse=args.fuse, exporter=args.exporter,
                                 check=args.check, metadata=metadata)
        else:
            report = export_torchscript(model, out, input_size=size, fuse=args.fuse, check=args.check, metadata=metadata)
    except ExportCheckError as e:
        kept = f"{out} is left as it was" if out.exists() else f"{out} was not written"
        raise CLIError(f"{e}; {kept}") from None
    if args.json:
        record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(report).items()}
        print(json.dumps({**record, "input_size_from": origin}, indent=2))
        return 0
    kind = f"ONNX opset {report.opset}, {report.exporter} exporter" if report.format == "onnx" else "TorchScript (traced)"
    shape = "x".join(str(s) for s in report.input_shape[1:])
    print(f"wrote {report.path} ({kind}{', fused' if report.fused else ''}): input Bx{shape} ({origin}), dynamic batch, "
          f"{report.path.stat().st_size / 2**20:.1f} MiB in {report.seconds:.1f} s")
    if report.checks:
        runtime = "onnxruntime" if report.format == "onnx" else "the reloaded module"
        batches = ", ".join(str(b) for b in report.checks)
        print(f"{runtime} matches PyTorch at batch {batches}: max relative error {report.max_rel_error:.1e}")
    norm = f"mean {metadata['mean']}, std {metadata['std']}" if metadata.get("mean") else "none (inputs in [0, 1])"
    print(f"inputs: normalisation {norm}" + (f"; {len(metadata['class_names'])} class names" if metadata.get("class_names") else "")
          + " (stored in the file's metadata)")
    return 0


def _looks_like_path(text: str) -> bool:
    import os

    return os.path.exists(text) or "/" in text or os.sep in text or text.endswith((".safetensors", ".pth", ".pt"))


class _Source:
    """What ``wavevision export`` exports: a run directory or checkpoint (which brings its model,
    hyperparameters and dataset), or a registered name with optional ``--checkpoint`` weights.

    A name with a wavevision ``.safetensors`` checkpoint is the checkpoint's model: a name or a
    ``--model-arg`` that disagrees with what the checkpoint records is an error naming both.
    """

    def __init__(self, args: argparse.Namespace, overrides: dict) -> None:
        from pathlib import Path

        self.name, self.overrides, self.run = args.model, dict(overrides), None
        if _looks_like_path(args.model):
            run = Path(args.model)
            if args.checkpoint:
                raise ValueError(f"--checkpoint applies to a model name; {run} brings its own weights: drop --checkpoint")
            if overrides:
                raise ValueError(f"--model-arg applies to a model name; {run} records its own hyperparameters "
                                 "(in the .json beside its weights): drop --model-arg")
            if not run.exists():
                raise FileNotFoundError(f"{run} does not exist; give a run directory, a .safetensors checkpoint of "
                                        "wavevision train, or a registered model name (wavevision list)")
            self.run, self.stem = run, run.name if run.is_dir() else run.stem
            return
        get_entry(args.model)  # an unknown name: the registry's suggestions
        self.stem, self.checkpoint = args.model, args.checkpoint
        if not args.checkpoint or Path(args.checkpoint).suffix != ".safetensors":
            return
        ckpt = Path(args.checkpoint)
        if not ckpt.exists():
            raise FileNotFoundError(f"--checkpoint {ckpt} does not exist")
        config = _read_config(ckpt)
        where = ckpt.with_suffix(".json")
        arch = split_model_name_tag(resolve_model_name(args.model))[0]
        if arch != config["model"]:
            raise ValueError(f"the command names model {args.model!r}, but --checkpoint {ckpt} holds a {config['model']!r} "
                             f"(from {where}); drop the name: wavevision export {ckpt} -o PATH")
        recorded = config.get("kwargs") or {}
        for key, value in overrides.items():
            if recorded.get(key, object()) != value:
                theirs = f"{key}={recorded[key]!r}" if key in recorded else f"no {key} (the registered default)"
                raise ValueError(f"--model-arg {key}={value!r} disagrees with --checkpoint {ckpt}, which records {theirs} "
                                 f"in {where}; drop --model-arg {key}: the checkpoint's weights fix it")
        self.run = ckpt

    def load_sized(self, input_size: tuple[int, int] | None):
        """The model in eval mode (a run's dataset in its ``pretrained_cfg``), the (C, H, W) to trace
        at, and where that size comes from; the memory the trace needs is checked first."""
        fix = "give a smaller --input-size" + ("" if self.run else ", or smaller --model-arg values (final_dim, ff_channel, depth)")
        if self.run is None:  # a name (and perhaps a plain state dict): nothing is allocated before the check
            meta = meta_model(lambda: create_model(self.name, **self.overrides)).eval()
            size = default_input_shape(ModelSpec(self.name), meta, input_size)
            origin = "--input-size" if input_size else f"the size {self.name} is registered for"
            check_fits_memory(meta, input_shape=(2, *size), what=f"exporting {self.name} at {size[1]}x{size[2]}", fix=fix)
            return create_model(self.name, checkpoint=self.checkpoint, **self.overrides).eval(), size, origin
        model, run_size = load_run(self.run)
        name, kwargs = cast(str, model.model_name), cast(dict[str, Any], model.model_kwargs)
        chans = int(getattr(model, "in_chans", run_size[0] if run_size else 3))
        if input_size:
            size, origin = (chans, *input_size), "--input-size"
        elif run_size:
            size, origin = run_size, f"the size {self.run} trained on"
        else:
            size = default_input_shape(ModelSpec(name), model, None)
            origin = f"{self.run} records no input size: the size {name} is registered for"
        meta = meta_model(lambda: create_model(name, **kwargs)).eval()
        check_fits_memory(meta, input_shape=(2, *size), what=f"exporting {self.run} at {size[1]}x{size[2]}", fix=fix)
        return model, size, origin


def _export_hub(args: argparse.Namespace) -> int:
    """``--format hub``: a Hub-style folder (wavevision.save_pretrained) from a run, a checkpoint or a name."""
    from pathlib import Path

    if args.fuse or args.opset is not None or args.exporter != "auto" or args.input_size is not None:
        raise ValueError("--fuse, --opset, --exporter and --input-size apply to onnx and torchscript, not --format hub")
    out = Path(args.output)
    for name in ("model.safetensors", "config.json"):
        if (out / name).exists() and not args.overwrite:
            raise FileExistsError(f"{out / name} already exists; pass --overwrite to replace it or choose another --output")
    source = _Source(args, parse_assignments(args.model_arg, "--model-arg"))
    if source.run is not None:
        model = load_run(source.run)[0]
    else:
        meta = meta_model(lambda: create_model(source.name, **source.overrides))
        check_fits_memory(meta, what=f"the model {source.name}", fix="give smaller --model-arg values (final_dim, ff_channel, depth)")
        model = create_model(source.name, checkpoint=source.checkpoint, **source.overrides)
    folder = save_pretrained(model, out, overwrite=args.overwrite)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {folder}/model.safetensors and config.json ({model.model_name}, {params:,} parameters); load it "
          f"with wavevision.create_model('local-dir:{folder}'), or upload it (huggingface-cli upload ORG/NAME {folder}) "
          "and use 'hf-hub:ORG/NAME'")
    return 0
