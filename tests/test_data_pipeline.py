"""The data pipeline pieces of the ImageNet recipes: the evaluation resize and centre crop at the
recipe's crop pct and interpolation (timm's transforms_imagenet_eval sizes), timm's image-only
augmentation after the token-label crop, the repeated-augmentation sampler, and the loader settings."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from wavevision.data import build_dataset
from wavevision.data.folders import eval_resize
from wavevision.data.transforms import ResizeCover
from wavevision.engine.config import resolve_config
from wavevision.engine.recipe import missing_pieces
from wavevision.recipes import get_recipe

from _optional import require


@pytest.fixture
def folder(tmp_path):
    """An ImageNet-style tree of 500x375 photographs' shape (landscape), two classes."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    return tmp_path


# -- evaluation protocol ------------------------------------------------------------------------
@pytest.mark.parametrize("size, crop_pct, expected", [(224, 0.96, 233), (224, 0.875, 256), (384, 1.0, 384),
                                                      (224, 0.9, 248), (64, 1.0, 64)])
def test_eval_resize_floors_size_over_crop_pct(size, crop_pct, expected):
    # by hand: 224 / 0.96 = 233.33 -> 233; 224 / 0.875 = 256; 224 / 0.9 = 248.9 -> 248 (floor, not round)
    assert eval_resize((size, size), crop_pct) == (expected, expected)


def test_eval_resize_matches_timm():
    timm_data = require("timm.data")
    for crop_pct in (0.96, 0.875, 0.9, 0.95, 1.0):
        resize = timm_data.create_transform(224, is_training=False, crop_pct=crop_pct, interpolation="bicubic").transforms[0]
        assert eval_resize((224, 224), crop_pct) == (resize.size, resize.size)


def test_the_imagenet_recipe_evaluates_at_crop_pct_096_bicubic(folder):
    cfg = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_deit"))
    assert cfg.dataset_args["crop_pct"] == 0.96 and cfg.dataset_args["eval_interpolation"] == "bicubic"
    data, _ = build_dataset("imagenet", "val", root=folder, augment=False,
                            **{k: cfg.dataset_args[k] for k in ("crop_pct", "eval_interpolation")})
    resize = data.transform.transforms[0]
    assert isinstance(resize, ResizeCover) and resize.size == (233, 233) and resize.mode == "bicubic"
    image, _ = data[0]
    assert image.shape == (3, 224, 224)
    # the shorter side (375) goes to 233, the longer to 500 * 233 / 375 = 310.7
    assert resize(torch.rand(3, 375, 500)).shape == (3, 233, 311)
    for name in ("wave_vit_s_in1k_deit", "wave_vit_s_in1k_tl"):
        assert not any("evaluation protocol" in g or "resize center crop" in g for g in missing_pieces(get_recipe(name)))


def test_eval_defaults_are_unchanged(folder):
    data, _ = build_dataset("imagenet", "val", root=folder)
    resize = data.transform.transforms[0]
    assert resize.size == (256, 256) and resize.mode == "bilinear"


def test_a_bad_eval_interpolation_is_one_line(folder):
    with pytest.raises(ValueError, match="eval_interpolation"):
        build_dataset("imagenet", "val", root=folder, eval_interpolation="lanczos")
