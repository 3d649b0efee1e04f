"""Loading a trained checkpoint, checking it fits a dataset, and predicting on image files.

A checkpoint written by :func:`wavevision.engine.train` is ``best.safetensors`` (or
``last.safetensors``) with a JSON file beside it naming the model, its hyperparameters, the
task and the dataset's description (classes, normalisation), so prediction needs nothing else.
"""
from __future__ import annotations

import colorsys
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from ..utils.io import atomic_write_bytes, write_json

__all__ = ["Trained", "check_fits", "load_trained", "palette", "predict"]

PathLike = Union[str, "Path"]


@dataclass
class Trained:
    """A model loaded from a checkpoint and what the checkpoint says about it."""

    model: nn.Module
    path: Path
    task: str
    info: Optional[Any]  # wavevision.data.DatasetInfo of the training data, when recorded
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return getattr(self.model, "model_name", type(self.model).__name__)

    @property
    def config(self) -> Dict[str, Any]:
        return dict(self.meta.get("config") or {})


def _weights_path(checkpoint: PathLike) -> Path:
    path = Path(checkpoint)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).exists():
                return path / name
        raise FileNotFoundError(f"{path} holds no best.safetensors or last.safetensors; is it a run directory?")
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise ValueError(f"{path} is not a wavevision checkpoint: give a run directory or a .safetensors file "
                         "saved by wavevision train or wavevision.save_checkpoint")
    return path


def _dataset_info(d: Optional[Dict[str, Any]]):
    if not d:
        return None
    from ..data import DatasetInfo

    d = dict(d)
    for key in ("class_names", "image_size", "mean", "std"):
        if d.get(key) is not None:
            d[key] = tuple(d[key])
    return DatasetInfo(**d)


def load_trained(checkpoint: PathLike, *, device: "str | torch.device" = "cpu") -> Trained:
    """Rebuild the model of ``checkpoint`` (a run directory or a ``.safetensors`` file) in eval mode."""
    from ..models import create_model, get_entry
    from ..utils.device import resolve_device

    path = _weights_path(checkpoint)
    model = create_model(checkpoint=path)
    cfg_path = path.with_suffix(".json")
    meta = json.loads(cfg_path.read_text()).get("extra", {}) if cfg_path.exists() else {}
    task = meta.get("task") or get_entry(model.model_name).task
    info = _dataset_info(meta.get("dataset"))
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return Trained(model.to(dev).eval(), path, task, info, meta)


def check_fits(trained: Trained, info: Any) -> None:
    """Raise a ValueError when ``trained`` cannot be evaluated on a dataset described by ``info``."""
    where = f"checkpoint {trained.path} holds a {trained.task.replace('_', '-')} model ({trained.name})"
    if info.task != trained.task:
        raise ValueError(f"{where}, but dataset {info.name!r} is for {info.task.replace('_', '-')}; "
                         "pick a checkpoint of that task or a dataset of this one")
    model = trained.model
    if getattr(model, "in_chans", info.in_chans) != info.in_chans:
        raise ValueError(f"{where} with {model.in_chans} input channel(s), but dataset {info.name!r} has {info.in_chans}")
    if info.task != "super_resolution" and getattr(model, "num_classes", info.num_classes) != info.num_classes:
        raise ValueError(f"{where} with {model.num_classes} classes, but dataset {info.name!r} has {info.num_classes}")
    if info.task == "super_resolution" and info.scale is not None and getattr(model, "scale", info.scale) != info.scale:
        raise ValueError(f"{where} for x{model.scale}, but dataset {info.name!r} is x{info.scale}; "
                         f"pass the dataset option scale={model.scale}")


def palette(n: int) -> List[tuple]:
    """``n`` distinct RGB colours (0-255), evenly spread hues at alternating brightness."""
    colours = []
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0 if i % 2 == 0 else 0.75)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def _to_pil(image: torch.Tensor):
    from PIL import Image

    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    if array.shape[0] == 1:
        return Image.fromarray(array[0].numpy(), mode="L")
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def _png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _side_by_side(images: Sequence[Any], labels: Sequence[str]):
    from PIL import Image, ImageDraw

    gap, header = 8, 16
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images) + header
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for im, label in zip(images, labels):
        canvas.paste(im.convert("RGB"), (x, header))
        draw.text((x + 2, 2), label, fill=(0, 0, 0))
        x += im.width + gap
    return canvas


def predict(
    checkpoint: "PathLike | Trained",
    images: Sequence[PathLike],
    *,
    output: Optional[PathLike] = None,
    topk: int = 5,
    image_size: Optional[int] = None,
    device: "str | torch.device" = "cpu",
    overwrite: bool = False,
) -> List[Dict[str, Any]]:
    """Run a trained model on image files.

    Classification: the top-``k`` classes with probabilities (``predictions.json`` in ``output``
    when given). Segmentation: ``NAME_mask.png`` (class ids) and ``NAME_overlay.png`` (the image
    with a colour per class; classes named ``background`` stay clear) plus the share of pixels
    per class. Super-resolution: ``NAME_xS.png`` (the upscaled image) and ``NAME_compare.png``
    (bicubic beside the model). Files are written to ``output`` (needed for segmentation and
    super-resolution); existing files are kept unless ``overwrite``.

    Returns:
        One dict per image: ``image`` and ``top`` (classification), ``mask``/``overlay``/
        ``classes`` (segmentation), ``upscaled``/``comparison``/``size`` (super-resolution).
    """
    from ..data import bicubic_upsample, load_image, prepare_image

    trained = checkpoint if isinstance(checkpoint, Trained) else load_trained(checkpoint, device=device)
    if not images:
        raise ValueError("give at least one image file")
    info = trained.info
    if info is None:
        raise ValueError(f"{trained.path} does not record its dataset (classes, normalisation); "
                         "use a checkpoint written by wavevision train")
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    out_dir = None if output is None else Path(output)
    if out_dir is None and trained.task != "classification":
        raise ValueError(f"{trained.task.replace('_', '-')} predictions are images: pass an output folder (--output DIR)")
    paths = [Path(p) for p in images]
    planned = _planned_files(trained, paths, out_dir)
    clash = [p for p in planned if p.exists()]
    if clash and not overwrite:
        raise FileExistsError(f"{clash[0]} already exists ({len(clash)} file(s) would be replaced); "
                              "pass --overwrite or choose another --output")
    model = trained.model
    dev = next(model.parameters()).device
    results: List[Dict[str, Any]] = []
    for path in paths:
        raw = load_image(path)
        x = prepare_image(raw, info, image_size=image_size).unsqueeze(0).to(dev)
        with torch.no_grad():
            y = model(x).float().cpu()[0]
        if trained.task == "classification":
            probs = y.softmax(0)
            k = min(topk, probs.numel())
            values, idx = probs.topk(k)
            names = info.class_names or tuple(str(i) for i in range(probs.numel()))
            results.append({"image": str(path), "top": [
                {"class": int(i), "name": names[int(i)], "probability": float(v)} for v, i in zip(values, idx)]})
        elif trained.task == "segmentation":
            results.append(_write_segmentation(path, raw, y.argmax(0), info, out_dir))
        else:
            results.append(_write_super_resolution(path, x[0].cpu(), y, bicubic_upsample(x[0].cpu(), model.scale),
                                                   model.scale, out_dir))
    if out_dir is not None and trained.task == "classification":
        write_json(out_dir / "predictions.json", results)
    return results


def _planned_files(trained: Trained, paths: Sequence[Path], out_dir: Optional[Path]) -> List[Path]:
    if out_dir is None:
        return []
    if trained.task == "classification":
        return [out_dir / "predictions.json"]
    if trained.task == "segmentation":
        return [out_dir / f"{p.stem}_{kind}.png" for p in paths for kind in ("mask", "overlay")]
    scale = getattr(trained.model, "scale", 2)
    return [out_dir / f"{p.stem}_{kind}.png" for p in paths for kind in (f"x{scale}", "compare")]


def _write_segmentation(path: Path, raw: torch.Tensor, labels: torch.Tensor, info: Any, out_dir: Path) -> Dict[str, Any]:
    from PIL import Image

    n = info.num_classes
    names = info.class_names or tuple(str(i) for i in range(n))
    colours = torch.tensor(palette(n), dtype=torch.float32) / 255.0
    image = raw if raw.shape[0] == 3 else raw[:1].expand(3, -1, -1)
    if tuple(image.shape[-2:]) != tuple(labels.shape):
        from ..data.transforms import resize

        image = resize(image, tuple(labels.shape))
    painted = colours[labels].permute(2, 0, 1)
    paint = torch.tensor([name.lower() != "background" for name in names])[labels].float()
    overlay = image * (1 - 0.55 * paint) + painted * 0.55 * paint
    mask_img = Image.fromarray(labels.to(torch.uint8).numpy(), mode="P")
    mask_img.putpalette([c for rgb in palette(n) for c in rgb])
    mask_path, overlay_path = out_dir / f"{path.stem}_mask.png", out_dir / f"{path.stem}_overlay.png"
    atomic_write_bytes(mask_path, _png_bytes(mask_img))
    atomic_write_bytes(overlay_path, _png_bytes(_to_pil(overlay)))
    counts = torch.bincount(labels.flatten(), minlength=n).double() / labels.numel()
    classes = {names[i]: 100.0 * float(counts[i]) for i in range(n) if counts[i] > 0}
    return {"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path), "classes": classes}


def _write_super_resolution(path: Path, lr: torch.Tensor, sr: torch.Tensor, bicubic: torch.Tensor, scale: int,
                            out_dir: Path) -> Dict[str, Any]:
    up_path, cmp_path = out_dir / f"{path.stem}_x{scale}.png", out_dir / f"{path.stem}_compare.png"
    up = _to_pil(sr)
    atomic_write_bytes(up_path, _png_bytes(up))
    compare = _side_by_side([_to_pil(bicubic), up], [f"bicubic x{scale}", f"model x{scale}"])
    atomic_write_bytes(cmp_path, _png_bytes(compare))
    return {"image": str(path), "upscaled": str(up_path), "comparison": str(cmp_path),
            "size": [int(sr.shape[-2]), int(sr.shape[-1])], "input_size": [int(lr.shape[-2]), int(lr.shape[-1])]}
