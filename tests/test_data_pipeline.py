"""The data pipeline pieces of the ImageNet recipes: the evaluation resize and centre crop at the
recipe's crop pct and interpolation (timm's transforms_imagenet_eval sizes), timm's image-only
augmentation after the token-label crop, the repeated-augmentation sampler, and the loader settings."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wavevision.data import build_dataset
from wavevision.data.folders import eval_resize
from wavevision.data.transforms import ResizeCover
from wavevision.engine.config import resolve_config
from wavevision.engine.recipe import missing_pieces
from wavevision.recipes import get_recipe

from _folders import class_tree
from _optional import require


@pytest.fixture
def folder(tmp_path):
    """An ImageNet-style tree of 500x375 photographs' shape (landscape), two classes."""
    return class_tree(tmp_path, height=375, width=500, per_class=2)


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


# -- token labels with timm's image-only augmentation -------------------------------------------
def _label_folder(root, num_classes=2, k=2, side=5):
    gen = torch.Generator().manual_seed(0)
    for cls in ("n01", "n02"):
        (root / "labels" / cls).mkdir(parents=True)
        for i in range(2):
            scores = torch.rand(k, side, side, generator=gen) * 5
            indices = torch.stack([torch.full((side, side), c % num_classes) for c in range(k)]).float()
            torch.save(torch.stack([scores, indices]).half(), root / "labels" / cls / f"{i}.pt")
    return root / "labels"


def test_the_token_label_recipe_builds_timm_rand_augment_and_erasing_as_tokenlabeling(folder, monkeypatch):
    require("timm.data")
    import timm.data.auto_augment as aa
    import timm.data.random_erasing as re

    seen = {}
    real_ra, real_re = aa.rand_augment_transform, re.RandomErasing

    def ra(config, params):
        seen["ra"] = (config, dict(params))
        return real_ra(config, params)

    def erasing(*args, **kwargs):
        seen["re"] = (args, kwargs)
        return real_re(*args, **kwargs)

    monkeypatch.setattr(aa, "rand_augment_transform", ra)
    monkeypatch.setattr(re, "RandomErasing", erasing)
    _label_folder(folder)
    args = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_tl")).dataset_args
    data, _ = build_dataset("imagenet", "train", root=folder, augment=True, **{**args, "token_labels": "labels"})
    # TokenLabeling label_transforms_factory.py: rand_augment_transform(auto_augment, dict(translate_const=
    # int(224 * 0.45), img_mean=round(255 * mean))) (no interpolation with 'random'), RandomErasing(re_prob,
    # mode=re_mode, max_count=re_count, num_splits=0, device='cpu'); no ColorJitter beside RandAugment
    assert seen["ra"] == ("rand-m9-mstd0.5-inc1", {"translate_const": 100, "img_mean": (124, 116, 104)})
    assert seen["re"] == ((0.25,), dict(mode="pixel", max_count=1, num_splits=0, device="cpu"))
    assert data.transform.interpolation == "random" and data.transform.scale == (0.08, 1.0)
    image, targets = data[0]
    assert image.shape == (3, 224, 224) and targets.dense.shape == (49, 2)
    assert not any(g.startswith("train") for g in missing_pieces(get_recipe("wave_vit_s_in1k_tl")))


def test_color_jitter_without_rand_augment_is_torchvisions(folder):
    require("timm.data")
    _label_folder(folder)
    data, _ = build_dataset("imagenet", "train", root=folder, augment=True, token_labels="labels", color_jitter=0.3)
    jitter = data.transform.image_augment.before
    assert type(jitter).__name__ == "ColorJitter" and jitter.brightness == (0.7, 1.3) and jitter.hue is None
    assert data.transform.image_augment.erase is None


def test_image_only_steps_leave_the_labels_alone(folder):
    require("timm.data")
    import random

    _label_folder(folder)
    plain, _ = build_dataset("imagenet", "train", root=folder, augment=True, token_labels="labels")
    strong, _ = build_dataset("imagenet", "train", root=folder, augment=True, token_labels="labels",
                              auto_augment="rand-m9-mstd0.5-inc1", re_prob=1.0, re_mode="pixel")
    assert plain.transform.image_augment is None
    for index in range(len(plain)):
        outs = []
        for data in (plain, strong):
            torch.manual_seed(index)  # the crop box and flip come from torch's generator
            random.seed(index)
            np.random.seed(index)
            outs.append(data[index])
        (a, ta), (b, tb) = outs
        assert torch.equal(ta.cls, tb.cls) and torch.equal(ta.dense, tb.dense) and ta.label == tb.label
        assert not torch.equal(a, b)  # the image was augmented (erasing with p = 1 at least)


def test_image_only_options_need_timm(folder, monkeypatch):
    import sys

    _label_folder(folder)
    monkeypatch.setitem(sys.modules, "timm.data.auto_augment", None)
    with pytest.raises(ValueError, match="not installed: install the vision extra"):
        build_dataset("imagenet", "train", root=folder, augment=True, token_labels="labels", re_prob=0.25)


# -- repeated augmentation ----------------------------------------------------------------------
from collections import Counter  # noqa: E402

from wavevision.engine.distributed import DistContext  # noqa: E402
from wavevision.engine.sampling import SeededSamples, epoch_indices, repeated_indices, samples_per_rank  # noqa: E402


@pytest.mark.parametrize("n, world", [(10, 1), (10, 3), (11, 2), (300, 4)])
def test_repeated_indices_show_each_image_repeats_times_across_ranks(n, world):
    # before the epoch is cut to the dataset's length, every index is dealt 3 times (wrapping pads the tail)
    total = math.ceil(n * 3 / world) * world
    full = Counter()
    for rank in range(world):
        g = torch.Generator().manual_seed(5 + 2)
        order = torch.randperm(n, generator=g).repeat_interleave(3).tolist()
        full.update(order[i % len(order)] for i in range(rank, total, world))
    assert sum(full.values()) == total and all(full[i] >= 3 for i in range(n))
    if total == 3 * n:
        assert set(full.values()) == {3}
    # what each rank reads: the first samples_per_rank of its share, deterministic by seed and epoch
    shares = [repeated_indices(n, num_replicas=world, rank=r, seed=5, epoch=2, repeats=3) for r in range(world)]
    kept = n // 256 * 256 // world if n >= 256 else math.ceil(n / world)  # DeiT RASampler's num_selected_samples
    assert all(len(s) == kept == samples_per_rank(n, world, 3) for s in shares)
    assert shares == [repeated_indices(n, num_replicas=world, rank=r, seed=5, epoch=2, repeats=3) for r in range(world)]
    assert shares != [repeated_indices(n, num_replicas=world, rank=r, seed=5, epoch=3, repeats=3) for r in range(world)]


def test_repeated_indices_by_hand_and_against_timm():
    # n = 4, 3 repeats, 2 ranks: the permutation p written p0 p0 p0 p1 p1 p1 ..., rank 0 reads positions 0, 2, 4,
    # rank 1 positions 1, 3, 5; each keeps ceil(4 / 2) = 2
    p = torch.randperm(4, generator=torch.Generator().manual_seed(0)).tolist()
    assert repeated_indices(4, num_replicas=2, rank=0, seed=0, epoch=0, repeats=3) == [p[0], p[0]]
    assert repeated_indices(4, num_replicas=2, rank=1, seed=0, epoch=0, repeats=3) == [p[0], p[1]]
    timm_sampler = require("timm.data.distributed_sampler").RepeatAugSampler
    for n, world, epoch in ((10, 1, 0), (10, 3, 4), (600, 4, 1), (11, 2, 7)):
        for rank in range(world):
            ref = timm_sampler(range(n), num_replicas=world, rank=rank, num_repeats=3)
            ref.set_epoch(epoch)  # timm seeds with the epoch alone: our seed 0
            assert repeated_indices(n, num_replicas=world, rank=rank, seed=0, epoch=epoch, repeats=3) == list(ref)


def test_epoch_indices_without_repeats_are_unchanged():
    ctx = DistContext(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    from torch.utils.data import DistributedSampler

    ref = DistributedSampler(range(9), num_replicas=2, rank=1, shuffle=True, seed=3)
    ref.set_epoch(2)
    assert epoch_indices(9, ctx, 3, 2) == list(ref) and samples_per_rank(9, 2) == 5


def test_copies_on_different_ranks_are_augmented_differently():
    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.rand(())

    a, b = SeededSamples(Noise(), seed=1, salt=0), SeededSamples(Noise(), seed=1, salt=1)
    assert a[2] != b[2] and a[2] == SeededSamples(Noise(), seed=1)[2]  # salt 0: the seeds as before


def test_the_deit_recipe_sets_three_repeats_and_trains_with_them():
    cfg = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_deit"))
    assert cfg.repeated_augmentation == 3
    assert not any("repeated" in g for g in missing_pieces(get_recipe("wave_vit_s_in1k_deit")))
    assert resolve_config(overrides=dict(recipe="wave_vit_s_in1k_tl")).repeated_augmentation == 1


@pytest.mark.slow
def test_a_run_with_repeats_resumes_to_the_same_weights(tmp_path):
    import signal

    from wavevision.engine import Callback, TrainingInterrupted, train
    from wavevision.models._builder import load_safetensors

    def cfg(name):
        return dict(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1, dropout=0.3), epochs=2,
                    batch_size=32, max_train_batches=3, max_eval_batches=1, deterministic=True, test=False,
                    repeated_augmentation=3, output=str(tmp_path / name), threads=1, progress=False, plots=False)

    class StopAtStep(Callback):
        def on_step_end(self, state):
            if state.global_step == 4:  # inside epoch 2
                signal.raise_signal(signal.SIGTERM)

    train(cfg("ref"))
    with pytest.raises(TrainingInterrupted):
        train(cfg("stopped"), callbacks=[StopAtStep()])
    train({**cfg("stopped"), "resume": True})
    ref, resumed = (load_safetensors(str(tmp_path / n / "last.safetensors"))[0] for n in ("ref", "stopped"))
    assert ref.keys() == resumed.keys() and all(torch.equal(ref[k], resumed[k]) for k in ref)


# -- loader settings ----------------------------------------------------------------------------
from wavevision.engine.sampling import default_workers, loader_settings  # noqa: E402


def test_cpu_runs_keep_the_loader_defaults():
    assert loader_settings(None, torch.device("cpu")) == {"num_workers": 0, "pin_memory": False}
    assert loader_settings(2, torch.device("cpu")) == {"num_workers": 2, "pin_memory": False, "prefetch_factor": 4}
    assert resolve_config(overrides={}).num_workers is None


@pytest.mark.parametrize("cores, local, expected", [(16, None, 8), (4, None, 3), (1, None, 1), (16, "4", 3),
                                                    (64, "8", 7), (16, "junk", 8)])
def test_accelerator_workers_follow_the_usable_cores(monkeypatch, cores, local, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    cuda = torch.device("cuda", 0)
    assert default_workers(cuda) == expected
    assert loader_settings(None, cuda) == {"num_workers": expected, "pin_memory": True, "prefetch_factor": 4}
    assert loader_settings(0, cuda) == {"num_workers": 0, "pin_memory": True}
