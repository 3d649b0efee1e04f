"""Classification training augmentation from timm.data (the vision extra), for the folder datasets.

The options below, given to a folder dataset (``imagenet``, ``imagefolder``, ``places365``,
``tiny-imagenet``) with ``augment=True``, replace its default training crop and flip by timm's
``create_transform(is_training=True)``: RandomResizedCrop with ``scale``, ``ratio`` and
``interpolation``, a flip with probability ``hflip``, ``auto_augment`` in timm's grammar
(``rand-m9-mstd0.5-inc1``), ``color_jitter`` (timm leaves it out when ``auto_augment`` is set,
as in the DeiT recipe), normalisation, and random erasing (``re_prob``, ``re_mode``, ``re_count``).
timm draws from Python's and NumPy's generators; the engine seeds them per batch with torch's
(``wavevision.engine.sampling.SeededSamples``), so runs and resumes stay reproducible.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..utils.validate import check_choice, check_float, check_int

__all__ = ["IMAGE_ONLY_OPTIONS", "TIMM_OPTIONS", "TimmImageAugment", "TimmTrainTransform", "timm_options"]

TIMM_OPTIONS = ("scale", "ratio", "interpolation", "hflip", "auto_augment", "color_jitter", "re_prob", "re_mode",
                "re_count")
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "random")


def _pair(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"dataset option {name} must be two numbers (low, high), got {value!r}")
    low, high = (check_float(f"dataset option {name}", v, gt=0.0) for v in value)
    if low > high:
        raise ValueError(f"dataset option {name} must be (low, high) with low <= high, got {value!r}")
    return low, high


def timm_options(options: dict[str, Any]) -> dict[str, Any]:
    """The timm augmentation options among ``options``, checked (empty: the dataset's own augmentation)."""
    given = {k: options[k] for k in TIMM_OPTIONS if k in options}
    if not given:
        return {}
    out: dict[str, Any] = {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3), "interpolation": "bilinear", "hflip": 0.5,
                           "auto_augment": None, "color_jitter": 0.4, "re_prob": 0.0, "re_mode": "const", "re_count": 1}
    for key, value in given.items():
        if key in ("scale", "ratio"):
            out[key] = _pair(key, value)
        elif key == "interpolation":
            out[key] = check_choice("dataset option interpolation", value, _INTERPOLATIONS)
        elif key in ("hflip", "re_prob"):
            out[key] = check_float(f"dataset option {key}", value, min=0.0, max=1.0)
        elif key == "color_jitter":
            out[key] = check_float("dataset option color_jitter", value, min=0.0)
        elif key == "re_mode":
            out[key] = check_choice("dataset option re_mode", value, ("const", "rand", "pixel"))
        elif key == "re_count":
            out[key] = check_int("dataset option re_count", value, min=1, max=64)
        elif value is not None:
            if not isinstance(value, str) or not value.startswith(("rand", "augmix", "original", "v0")):
                raise ValueError(f"dataset option auto_augment must be a timm policy such as 'rand-m9-mstd0.5-inc1', "
                                 f"got {value!r}")
            out[key] = value
    return out


class TimmTrainTransform:
    """A float ``(C, H, W)`` image in [0, 1] -> timm's training transform of it (picklable for workers)."""

    def __init__(self, size: tuple[int, int], mean: tuple[float, ...], std: tuple[float, ...], options: dict[str, Any]):
        try:
            from timm.data import create_transform  # optional: the vision extra
        except ImportError:
            raise ValueError("the dataset options " + ", ".join(sorted(options)) + " use timm's augmentation, which "
                             "is not installed: install the vision extra: pip install 'wavevision[vision]'") from None
        if options["auto_augment"] is not None:
            try:  # a policy timm cannot parse fails here, as one line, not in the first batch
                from timm.data.auto_augment import rand_augment_transform
                if options["auto_augment"].startswith("rand"):
                    rand_augment_transform(options["auto_augment"], {"translate_const": 100})
            except Exception as e:  # noqa: BLE001 (timm raises assertion errors and others)
                why = " ".join(str(e).split())
                raise ValueError(f"dataset option auto_augment {options['auto_augment']!r} is not a policy timm "
                                 f"reads{' (' + why + ')' if why else ''}; e.g. 'rand-m9-mstd0.5-inc1'") from None
        self.transform = create_transform(
            input_size=(int(size[0]), int(size[1])), is_training=True, scale=options["scale"], ratio=options["ratio"],
            hflip=options["hflip"], color_jitter=options["color_jitter"], auto_augment=options["auto_augment"],
            interpolation=options["interpolation"], mean=tuple(mean), std=tuple(std), re_prob=options["re_prob"],
            re_mode=options["re_mode"], re_count=options["re_count"])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        # the loader's floats are bytes / 255: this gives the decoded bytes back exactly
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return self.transform(Image.fromarray(np.ascontiguousarray(pixels), "RGB"))


# The timm options that change only the image, never where its pixels come from: with token labels
# they are applied beside the shared crop and flip (TokenLabeling's label_transforms_factory.py).
IMAGE_ONLY_OPTIONS = ("auto_augment", "color_jitter", "re_prob", "re_mode", "re_count")


class TimmImageAugment:
    """timm's image-only training steps around a crop done elsewhere (the token-label crop):
    :meth:`before_crop` applies RandAugment (``auto_augment``) or, without it, ColorJitter to the
    whole image, and :meth:`after_normalize` timm's RandomErasing to the normalised crop. This is
    TokenLabeling's order (flip, RandAugment or colour jitter, RandomResizedCrop, normalisation,
    erasing), with RandAugment built as timm's ``create_transform`` builds it: ``translate_const``
    45 % of the shorter output side, the fill the mean in bytes, the crop's interpolation unless
    it is ``random``. Label maps pass neither step (picklable for workers)."""

    def __init__(self, size: tuple[int, int], mean: tuple[float, ...], options: dict[str, Any]) -> None:
        try:  # optional: the vision extra
            from timm.data.auto_augment import rand_augment_transform
            from timm.data.random_erasing import RandomErasing
            from timm.data.transforms import str_to_pil_interp
            from torchvision.transforms import ColorJitter
        except ImportError:
            raise ValueError("the dataset options " + ", ".join(sorted(k for k in IMAGE_ONLY_OPTIONS if k in options))
                             + " use timm's augmentation, which is not installed: install the vision extra: "
                             "pip install 'wavevision[vision]'") from None
        self.before: Any = None
        policy, jitter = options.get("auto_augment"), options.get("color_jitter", 0.0)
        if policy is not None:
            if not policy.startswith("rand"):
                raise ValueError(f"dataset option auto_augment {policy!r}: with token labels only RandAugment "
                                 "('rand-...') is applied, as in TokenLabeling; e.g. 'rand-m9-mstd0.5-inc1'")
            params: dict[str, Any] = {"translate_const": int(min(size) * 0.45),
                                      "img_mean": tuple(min(255, round(255 * m)) for m in mean)}
            interpolation = options.get("interpolation")
            if interpolation and interpolation != "random":
                params["interpolation"] = str_to_pil_interp(interpolation)
            try:
                self.before = rand_augment_transform(policy, params)
            except Exception as e:  # noqa: BLE001 (timm raises assertion errors and others)
                why = " ".join(str(e).split())
                raise ValueError(f"dataset option auto_augment {policy!r} is not a policy timm reads"
                                 f"{' (' + why + ')' if why else ''}; e.g. 'rand-m9-mstd0.5-inc1'") from None
        elif jitter:  # TokenLabeling (as timm) jitters colour only without RandAugment
            self.before = ColorJitter(*(float(jitter),) * 3)
        re_prob = options.get("re_prob", 0.0)
        self.erase = RandomErasing(re_prob, mode=options.get("re_mode", "const"), max_count=options.get("re_count", 1),
                                   num_splits=0, device="cpu") if re_prob else None

    def before_crop(self, image: torch.Tensor) -> torch.Tensor:
        """RandAugment or colour jitter of a float ``(3, H, W)`` image in [0, 1] (same size out)."""
        if self.before is None:
            return image
        from PIL import Image

        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        out = self.before(Image.fromarray(np.ascontiguousarray(pixels), "RGB"))
        return torch.from_numpy(np.asarray(out, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255

    def after_normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Random erasing of a normalised ``(C, H, W)`` crop."""
        return image if self.erase is None else self.erase(image)
