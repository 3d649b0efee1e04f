"""Loading a trained checkpoint, checking it fits a dataset, and predicting on image files.

A checkpoint written by :func:`wavevision.engine.train` is ``best.safetensors`` (or
``last.safetensors``) with a JSON file beside it naming the model, its hyperparameters, the
task and the dataset's description (classes, normalisation), so prediction needs nothing else.
What a prediction looks like (top-k classes, a mask and overlay, an upscaled image) is the
task's :meth:`~wavevision.engine.Task.render`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from ..data import DatasetInfo, load_image, prepare_image
from ..data.image import check_image_file, image_error
from ..models import create_model, get_entry
from ..models._builder import _read_config
from ..utils.device import resolve_device
from ..utils.validate import PathLike, check_int
from .rundir import check_regular
from .sizing import check_fits_memory, meta_model
from .tasks import PredictItem, Task, get_task
from .tasks._images import palette

__all__ = ["Trained", "check_fits", "load_trained", "output_names", "palette", "predict"]


@dataclass
class Trained:
    """A model loaded from a checkpoint and what the checkpoint says about it."""

    model: nn.Module
    path: Path
    task: str
    info: Any | None  # wavevision.data.DatasetInfo of the training data, when recorded
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return getattr(self.model, "model_name", type(self.model).__name__)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta.get("config") or {})

    @property
    def task_def(self) -> Task:
        """The :class:`~wavevision.engine.Task` object of :attr:`task`."""
        return get_task(self.task)


def _weights_path(checkpoint: PathLike) -> Path:
    path = Path(checkpoint)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).exists() or (path / name).is_symlink():
                path = path / name
                break
        else:
            raise FileNotFoundError(f"{path} holds no best.safetensors or last.safetensors; is it a run directory?")
    elif not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise ValueError(f"{path} is not a wavevision checkpoint: give a run directory or a .safetensors file "
                         "saved by wavevision train or wavevision.save_checkpoint")
    for file in (path, path.with_suffix(".json")):  # a FIFO would hang the reader, /dev/zero fill the memory
        check_regular(file, "checkpoint file")
    return path


def _dataset_info(d: Any, path: Path):
    if not d:
        return None

    try:
        return DatasetInfo(**d)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path.with_suffix('.json')} describes its dataset wrongly ({e}); "
                         "use a checkpoint written by wavevision train") from None


def _check_declared(path: Path, key: str, declared: Any, model_task: str, model_name: str) -> None:
    """A task the checkpoint's JSON declares may only repeat its model's (the registry's)."""
    if declared not in (None, model_task):
        raise ValueError(f"{path.with_suffix('.json')}: {key} is {declared!r} but its model {model_name} is a "
                         f"{model_task} model; the file was edited or belongs to another checkpoint: use the .json "
                         "saved with these weights")


def _check_finite(model: nn.Module, path: Path) -> None:
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"checkpoint {path} holds NaN or infinite weights in {len(bad)} tensor(s) ({', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}): the training diverged; use an earlier checkpoint")


def load_trained(checkpoint: PathLike, *, device: str | torch.device = "cpu", model: str | None = None) -> Trained:
    """Rebuild the model of ``checkpoint`` (a run directory or a ``.safetensors`` file) in eval mode.

    With ``model`` (a registered name), ``checkpoint`` may also be a plain state dict of that
    model (``.pth``/``.pt``, e.g. the public WaveMixSR weights), loaded strictly into its default build.

    Raises:
        ValueError: a checkpoint file that is not a regular file, a config that is not a
            checkpoint's, or weights holding NaN or infinity.
    """
    if model is not None and Path(checkpoint).suffix != ".safetensors":
        return _load_named(model, Path(checkpoint), device)
    path = _weights_path(checkpoint)
    config = _read_config(path)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    sized = meta_model(lambda: create_model(config["model"], **(config.get("kwargs") or {})))
    check_fits_memory(sized, device=dev, what=f"the model of {path}", fix="is the JSON beside it the right one?")
    net = create_model(checkpoint=path)
    _check_finite(net, path)
    meta = config.get("extra") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path.with_suffix('.json')}: 'extra' must be a mapping, got {type(meta).__name__}")
    name = cast(str, net.model_name)
    model_task = get_entry(name).task
    info = _dataset_info(meta.get("dataset"), path)
    _check_declared(path, "extra.task", meta.get("task"), model_task, name)
    _check_declared(path, "extra.dataset.task", info.task if info else None, model_task, name)
    task = get_task(model_task).name
    return Trained(net.to(dev).eval(), path, task, info, meta)


def _load_named(name: str, path: Path, device: str | torch.device) -> Trained:
    """``create_model(name, checkpoint=path)`` for a plain state dict, in eval mode on ``device``."""
    task = get_entry(name).task  # an unknown name fails before the file is read
    check_regular(path, "checkpoint file")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    check_fits_memory(meta_model(lambda: create_model(name)), device=dev, what=f"the model {name}", fix="pick a smaller model")
    model = create_model(name, checkpoint=path)
    _check_finite(model, path)
    return Trained(model.to(dev).eval(), path, task, None, {})


def output_names(paths: Sequence[Path]) -> list[str]:
    """The stem of each image's result files: its own stem, unique unless the same file is given twice.

    Images sharing a stem (``a/x.png``, ``b/x.png``) are named by their path below the folder
    the clashing ones share (``a-x``, ``b-x``), with the extension where only that differs
    (``x.png``, ``x.jpg`` -> ``x-png``, ``x-jpg``).
    """
    stems = [p.stem for p in paths]
    names = list(stems)
    for stem in set(stems):
        group = [i for i, s in enumerate(stems) if s == stem]
        if len(group) < 2:
            continue
        full = [Path(os.path.abspath(paths[i])) for i in group]
        common = Path(os.path.commonpath([f.parent for f in full]))
        below = [f.relative_to(common) for f in full]
        keep_suffix = len({b.with_suffix("").as_posix() for b in below}) < len(below)
        for i, b in zip(group, below):
            parts = (*b.parent.parts, b.name.replace(".", "-") if keep_suffix else b.stem)
            names[i] = "-".join(parts)
    return names


def _refuse_collisions(paths: list[Path], names: list[str], task: Task, out_dir: Path | None, model: nn.Module) -> None:
    """Two images whose results would land in the same file (the same file given twice, or a
    derived name that another image has as its own): a ValueError naming both."""
    if out_dir is None:
        return
    shared = set(task.planned_files([], out_dir, model))  # files about all images (detections.json)
    owner: dict[Path, Path] = {}
    for path, name in zip(paths, names):
        for file in task.planned_files([name], out_dir, model):
            if file in owner and file not in shared:
                raise ValueError(f"{owner[file]} and {path} would both write {file}; give each image once, rename "
                                 "one, or predict them into separate --output folders")
            owner[file] = path


def _check_input_memory(trained: Trained, paths: list[Path], image_size: Any, device: torch.device) -> None:
    """Refuse, before any image is decoded, a prediction whose largest input could not fit in memory.

    Sizes come from the image headers; a dense task predicts at the image's own size unless
    ``image_size`` is given.
    """
    name, kwargs = getattr(trained.model, "model_name", None), getattr(trained.model, "model_kwargs", {})
    if name is None:
        return
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        what, fix = f"at {size[0]}x{size[1]} (--image-size)", "give a smaller --image-size"
    else:
        from PIL import Image

        sizes = []
        for path in paths:
            check_image_file(path)
            try:
                with Image.open(path) as img:  # the header only: nothing is decoded
                    sizes.append((img.size[1], img.size[0], path))
            except Exception as e:  # Pillow raises many types for damaged files
                raise image_error(path, e) from None
        height, width, biggest = max(sizes, key=lambda s: s[0] * s[1])
        size = (height, width)
        what = f"for {biggest} ({width}x{height} pixels)"
        fix = "shrink the image, or give --image-size (predictions are made at the image's own size)"
    chans = int(getattr(trained.model, "in_chans", 3))
    meta = meta_model(lambda: create_model(name, **kwargs)).eval()
    check_fits_memory(meta, device=device, input_shape=(1, chans, *size), what=f"predicting with {trained.path} {what}",
                      fix=fix)


def check_fits(trained: Trained, info: Any) -> None:
    """Raise a ValueError when ``trained`` cannot be evaluated on a dataset described by ``info``."""
    where = f"checkpoint {trained.path} holds a {trained.task.replace('_', '-')} model ({trained.name})"
    trained.task_def.check_fits(trained.model, trained.task, info, where)


def predict(
    checkpoint: PathLike | Trained,
    images: Sequence[PathLike],
    *,
    output: PathLike | None = None,
    topk: int = 5,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run a trained model on image files.

    Classification: the top-``k`` classes with probabilities (``predictions.json`` in ``output``
    when given). Segmentation: ``NAME_mask.png`` (class ids) and ``NAME_overlay.png`` (the image
    with a colour per class, classes named ``background`` left clear, enlarged to about 384 px
    when smaller, with a legend of the classes present) plus the share of pixels
    per class. Super-resolution: ``NAME_xS.png`` (the upscaled image) and ``NAME_compare.png``
    (bicubic beside the model). Detection: ``NAME_detections.png`` (masks, boxes and tags, drawn
    at about 384 px when smaller) and ``detections.json``. Files are written to ``output`` (needed for segmentation and
    super-resolution); existing files are kept unless ``overwrite``.

    Returns:
        One dict per image: ``image`` and ``top`` (classification), ``mask``/``overlay``/
        ``classes`` (segmentation), ``upscaled``/``comparison``/``size`` (super-resolution).
    """
    trained = checkpoint if isinstance(checkpoint, Trained) else load_trained(checkpoint, device=device)
    if not images:
        raise ValueError("give at least one image file")
    info, task = trained.info, trained.task_def
    if info is None:
        raise ValueError(f"{trained.path} does not record its dataset (classes, normalisation); "
                         "use a checkpoint written by wavevision train")
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    out_dir = None if output is None else Path(output)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--output {out_dir} is a file, not a folder; choose a folder for the results")
    if out_dir is None and task.needs_output:
        raise ValueError(f"{task.name.replace('_', '-')} predictions are images: pass an output folder (--output DIR)")
    if image_size is not None:
        image_size = check_int("image_size", image_size, min=1) if not isinstance(image_size, (tuple, list)) else \
            tuple(check_int("image_size", s, min=1) for s in image_size)
    paths = [Path(p) for p in images]
    names = output_names(paths)
    planned = [] if out_dir is None else task.planned_files(names, out_dir, trained.model)
    _refuse_collisions(paths, names, task, out_dir, trained.model)
    clash = [p for p in planned if p.exists()]
    if clash and not overwrite:
        raise FileExistsError(f"{clash[0]} already exists ({len(clash)} file(s) would be replaced); "
                              "pass --overwrite or choose another --output")
    model = trained.model
    dev = next(model.parameters()).device
    if image_size is None and task.resizes_inputs:
        image_size = info.image_size
    _check_input_memory(trained, paths, image_size, dev)
    results: list[dict[str, Any]] = []
    for path, name in zip(paths, names):
        raw = load_image(path)
        try:
            x = prepare_image(raw, info, image_size=image_size).unsqueeze(0).to(dev)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        with torch.no_grad():
            out = task.output(model(x))
        if task.nonfinite(out):
            raise ValueError(f"the model's output for {path} is NaN or infinite: its weights or normalisation "
                             "statistics are broken; retrain it or load another checkpoint")
        item = PredictItem(path=path, raw=raw, x=x[0].cpu(), out=out.cpu()[0], name=name)
        results.append(task.render(item, info=info, model=model, out_dir=out_dir, topk=topk))
    task.finish(results, out_dir)
    return results
