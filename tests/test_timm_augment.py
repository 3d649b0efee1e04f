"""Classification training augmentation from timm.data: the recipe's settings reach timm's
create_transform, the folder datasets yield its output, reads are reproducible per batch, and
bad options or a missing timm are one-line errors."""
from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

from wavevision.data import build_dataset
from wavevision.engine.config import resolve_config
from wavevision.engine.recipe import missing_pieces
from wavevision.engine.sampling import SeededSamples
from wavevision.recipes import get_recipe

from _folders import class_tree
from _optional import require

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture
def folder(tmp_path):
    return class_tree(tmp_path, height=40, width=52, per_class=3)


def test_the_deit_recipe_calls_timm_create_transform_with_the_reference_settings(folder, monkeypatch):
    timm_data = require("timm.data")
    seen = {}

    def recorder(**kwargs):
        seen.update(kwargs)
        return lambda image: image

    monkeypatch.setattr(timm_data, "create_transform", recorder)
    cfg = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_deit"))
    build_dataset("imagenet", "train", root=folder, augment=True, **cfg.dataset_args)
    # DeiT main.py / datasets.py build_transform: create_transform(input_size=224, is_training=True,
    # color_jitter=0.4, auto_augment='rand-m9-mstd0.5-inc1', interpolation='bicubic', re_prob=0.25,
    # re_mode='pixel', re_count=1), timm's default scale/ratio and flip
    assert seen == dict(input_size=(224, 224), is_training=True, scale=(0.08, 1.0), ratio=(0.75, 4 / 3), hflip=0.5,
                        color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1", interpolation="bicubic",
                        mean=IMAGENET_MEAN, std=IMAGENET_STD, re_prob=0.25, re_mode="pixel", re_count=1)
    gaps = " ".join(missing_pieces(get_recipe("wave_vit_s_in1k_deit")))
    for gone in ("rand augment", "random erasing", "color jitter", "random resized crop"):
        assert gone not in gaps
    # with token labels, the token-label dataset crops (random interpolation) and flips image and labels
    # together; timm's image-only steps follow there (tests/test_data_pipeline.py)
    tl = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_tl")).dataset_args
    assert tl == {"token_labels": "label_top5_train_nfnet", "crop_pct": 0.96, "eval_interpolation": "bicubic",
                  "auto_augment": "rand-m9-mstd0.5-inc1", "color_jitter": 0.4, "re_prob": 0.25, "re_mode": "pixel",
                  "re_count": 1}
    assert "rand augment" not in " ".join(missing_pieces(get_recipe("wave_vit_s_in1k_tl")))


def test_samples_are_timms_output_and_reproducible_per_batch(folder):
    require("timm.data")
    opts = dict(image_size=32, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.5, re_mode="pixel", interpolation="bicubic")
    train, info = build_dataset("imagenet", "train", root=folder, augment=True, **opts)
    seeded = SeededSamples(train, seed=3)
    py, nps, tor = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    a = seeded.__getitems__([0, 1, 2])
    b = seeded.__getitems__([0, 1, 2])
    assert all(x[0].shape == (3, 32, 32) and torch.equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))
    assert random.getstate() == py and np.array_equal(np.random.get_state()[1], nps) and torch.equal(torch.get_rng_state(), tor)
    seeded.epoch = 1
    assert not torch.equal(seeded.__getitems__([0, 1, 2])[0][0], a[0][0])  # another epoch, other draws
    val, _ = build_dataset("imagenet", "val", root=folder, augment=False, **opts)
    assert val[0][0].shape == (3, 32, 32)  # evaluation keeps its resize and centre crop


def test_bad_options_and_a_missing_timm_are_one_line_errors(folder, monkeypatch):
    for bad, words in ((dict(scale=[0.5]), "two numbers"), (dict(scale=[1.0, 0.5]), "low <= high"),
                       (dict(re_mode="noise"), "re_mode"), (dict(interpolation="lanczos9"), "interpolation"),
                       (dict(auto_augment="cutout"), "timm policy"), (dict(re_prob=2.0), "re_prob")):
        with pytest.raises(ValueError, match=words) as e:
            build_dataset("imagenet", "train", root=folder, augment=True, **bad)
        assert "\n" not in str(e.value)
    from wavevision.engine.mixing import have_timm

    if have_timm():  # a policy only timm can read
        with pytest.raises(ValueError, match="'randaugment' is not a policy timm reads") as e:
            build_dataset("imagenet", "train", root=folder, augment=True, auto_augment="randaugment")
        assert "\n" not in str(e.value)
    monkeypatch.setitem(sys.modules, "timm.data", None)  # as in the core install
    with pytest.raises(ValueError, match=r"not installed: install the vision extra: pip install 'wavevision\[vision\]'"):
        build_dataset("imagenet", "train", root=folder, augment=True, auto_augment="rand-m9-mstd0.5-inc1")
