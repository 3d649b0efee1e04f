"""Learning-rate schedules: the engine's own (unchanged), step, poly, warm-up by steps and from a
ratio, cosine with cool-down against timm's CosineLRScheduler and hand-computed values; the
configuration's checks and flags; recipes that now apply their schedules."""
from __future__ import annotations

import json
import math

import pytest
import torch

from wavevision.cli import build_parser
from wavevision.cli.train import build_config
from wavevision.engine import train
from wavevision.engine.config import TrainConfig, config_diff, resolve_config
from wavevision.engine.recipe import missing_pieces
from wavevision.engine.schedule import LRSchedule, WarmupCosine, build_scheduler, lr_schedule
from wavevision.recipes import get_recipe

from _optional import require


def _old_warmup_cosine(step, total, warmup, min_ratio, kind):
    """The engine's schedule before step/poly/ratio existed, as it was written."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if kind == "constant":
        return 1.0
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


@pytest.mark.parametrize("kind", ["cosine", "constant"])
@pytest.mark.parametrize("warmup", [0, 3])
def test_defaults_give_the_old_schedule_exactly(kind, warmup):
    cfg = TrainConfig(epochs=4, lr=0.01, min_lr=0.001, scheduler=kind, warmup_epochs=warmup / 5)
    sched = lr_schedule(cfg, 5)
    for s in range(22):
        assert sched(s) == _old_warmup_cosine(s, 20, warmup, 0.1, kind)
        assert WarmupCosine(20, warmup, 0.1, kind)(s) == _old_warmup_cosine(s, 20, warmup, 0.1, kind)


def test_step_schedule_with_mmcv_warmup_by_hand():
    # MMDetection 1x, shrunk: 4 steps per epoch, x0.1 at epochs 2 and 3, 5 warm-up steps from 0.001
    sched = LRSchedule("step", 16, 4, warmup_steps=5, warmup_ratio=0.001, milestones=(2, 3), gamma=0.1)
    assert sched(0) == pytest.approx(0.001)
    assert sched(2) == pytest.approx(0.001 + 0.999 * 2 / 5)
    assert [sched(s) for s in (5, 7)] == [1.0, 1.0]
    assert [sched(s) for s in (8, 11)] == pytest.approx([0.1, 0.1])
    assert [sched(s) for s in (12, 15)] == pytest.approx([0.01, 0.01])
    # warm-up that reaches into a decayed epoch scales the decayed lr (MMCV: regular_lr * (1 - k))
    late = LRSchedule("step", 16, 2, warmup_steps=6, warmup_ratio=0.5, milestones=(2,), gamma=0.1)
    assert late(4) == pytest.approx(0.1 * (0.5 + 0.5 * 4 / 6))


def test_poly_schedule_by_hand():
    sched = LRSchedule("poly", 100, 10, warmup_steps=10, warmup_ratio=1e-6, min_ratio=0.1, power=0.9)
    assert sched(50) == pytest.approx(0.1 + 0.9 * 0.5 ** 0.9)
    assert sched(99) == pytest.approx(0.1 + 0.9 * 0.01 ** 0.9)
    assert sched(100) == pytest.approx(0.1)
    assert sched(3) == pytest.approx((0.1 + 0.9 * 0.97 ** 0.9) * (1e-6 + (1 - 1e-6) * 3 / 10))
    assert LRSchedule("poly", 10, power=1.0)(4) == pytest.approx(0.6)  # power 1: linear to 0


def test_poly_after_a_prefix_warmup_by_hand():
    # MMEngine's LinearLR(start_factor=1e-6, end=1500) then PolyLR(power=1, begin=1500, end=160000, eta_min=0)
    # (the WTConvNeXt ADE20K configs), at 1/100 of the length: the ramp alone, then poly over the remaining steps
    sched = LRSchedule("poly", 1600, warmup_steps=15, warmup_ratio=1e-6, warmup_prefix=True, power=1.0)
    assert sched(0) == pytest.approx(1e-6) and sched(5) == pytest.approx(1e-6 + (1 - 1e-6) * 5 / 15)
    assert sched(15) == 1.0 and sched(15 + 317) == pytest.approx(1 - 317 / 1585) and sched(1600) == 0.0
    cfg = TrainConfig(iterations=1600, scheduler="poly", warmup_iters=15, warmup_ratio=1e-6, warmup_prefix=True)
    assert lr_schedule(cfg.validate(), 100)(15 + 317) == sched(15 + 317)
    with pytest.raises(ValueError, match="warmup_prefix needs warmup_ratio"):
        TrainConfig(warmup_prefix=True).validate()


def test_cosine_with_cooldown_by_hand():
    lr, lo = 1e-3, 1e-5
    cfg = TrainConfig(epochs=12, lr=lr, min_lr=lo, warmup_epochs=3, warmup_ratio=1e-6 / lr, cooldown_epochs=2)
    sched = lr_schedule(cfg, 4)
    assert lr * sched(0) == pytest.approx(1e-6)
    assert lr * sched(6) == pytest.approx(1e-6 + 1.5 * (lr - 1e-6) / 3)  # epoch 1.5 of a 3-epoch warm-up
    assert lr * sched(24) == pytest.approx(lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * 6 / 10)))
    assert [lr * sched(s) for s in (40, 44, 47)] == pytest.approx([lo] * 3)  # the cool-down: epochs 10 and 11


@pytest.mark.parametrize("spe", [1, 4])
def test_cosine_with_cooldown_equals_timm(spe):
    CosineLRScheduler = require("timm.scheduler").CosineLRScheduler

    lr, lo, epochs, cooldown, warmup, warmup_lr = 1e-3, 1e-5, 12, 2, 3, 1e-6
    cfg = TrainConfig(epochs=epochs, lr=lr, min_lr=lo, warmup_epochs=warmup, warmup_ratio=warmup_lr / lr,
                      cooldown_epochs=cooldown)
    ours = lr_schedule(cfg, spe)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    # timm's create_scheduler: t_initial = epochs, and the run lasts t_initial + cooldown_epochs epochs
    ref = CosineLRScheduler(opt, t_initial=epochs - cooldown, lr_min=lo, warmup_t=warmup, warmup_lr_init=warmup_lr,
                            cycle_limit=1, t_in_epochs=True)
    for epoch in range(epochs):  # timm moves once per epoch: equal at each epoch's first step
        ref.step(epoch)
        assert lr * ours(epoch * spe) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
    for s in range(epochs * spe):  # and in between, timm's formula at the fractional epoch
        assert lr * ours(s) == pytest.approx(ref._get_lr(s / spe)[0], rel=1e-12, abs=1e-15)


def test_scheduler_steps_the_optimizer_lr():
    cfg = TrainConfig(epochs=3, lr=0.1, scheduler="step", lr_milestones=[1, 2], lr_gamma=0.5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, 2)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


@pytest.mark.parametrize("values, words", [
    (dict(scheduler="step"), "set lr_milestones (--lr-milestones 8 11)"),
    (dict(scheduler="step", lr_milestones=[8, 8]), "increasing"),
    (dict(lr_milestones=[11, 8]), "increasing"),
    (dict(lr_milestones=[0]), "lr_milestones[0]"),
    (dict(lr_milestones="8 11"), "list of integers"),
    (dict(warmup_epochs=1.0, warmup_iters=5), "not both"),
    (dict(epochs=10, cooldown_epochs=10), "cool-down must leave"),
    (dict(warmup_ratio=1.0), "warmup_ratio"),
    (dict(lr_gamma=0.0), "lr_gamma"),
    (dict(lr_power=-1.0), "lr_power"),
    (dict(scheduler="linear"), "scheduler"),
])
def test_bad_schedule_settings_are_one_line_errors(values, words):
    with pytest.raises(ValueError) as e:
        TrainConfig.from_dict(values)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_flags_set_the_schedule():
    args = build_parser().parse_args(["train", "--scheduler", "step", "--lr-milestones", "8", "11", "--lr-gamma", "0.5",
                                      "--warmup-iters", "500", "--warmup-ratio", "0.001", "--epochs", "12"])
    cfg = build_config(args)
    assert (cfg.scheduler, cfg.lr_milestones, cfg.lr_gamma, cfg.warmup_iters, cfg.warmup_ratio) == \
        ("step", [8, 11], 0.5, 500, 0.001)
    args = build_parser().parse_args(["train", "--scheduler", "poly", "--lr-power", "0.9", "--cooldown-epochs", "1"])
    cfg = build_config(args)
    assert (cfg.lr_power, cfg.cooldown_epochs) == (0.9, 1)


def test_a_run_saved_before_these_fields_still_matches():
    new = TrainConfig().to_dict()
    old = {k: v for k, v in new.items()
           if k not in ("warmup_iters", "warmup_ratio", "cooldown_epochs", "lr_milestones", "lr_gamma", "lr_power")}
    assert config_diff(old, new) == {} and config_diff(new, old) == {}
    assert config_diff(old, {**new, "lr_gamma": 0.5}) == {"lr_gamma": (0.1, 0.5)}


def test_recipes_apply_their_schedules():
    coco = resolve_config(overrides=dict(recipe="mask_rcnn_wave_vit_s_coco_1x"))
    assert (coco.scheduler, coco.lr_milestones, coco.lr_gamma, coco.warmup_iters, coco.warmup_ratio) == \
        ("step", [8, 11], 0.1, 500, 0.001)
    ade = resolve_config(overrides=dict(recipe="upernet_wave_vit_s_ade20k_160k", epochs=3))
    assert (ade.scheduler, ade.lr_power, ade.warmup_iters, ade.warmup_ratio, ade.min_lr) == ("poly", 1.0, 1500, 1e-6, 0.0)
    vit = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_tl"))
    assert vit.cooldown_epochs == 10 and vit.warmup_epochs == 5 and vit.lr * vit.warmup_ratio == pytest.approx(1e-6)
    for name in ("mask_rcnn_wave_vit_s_coco_1x", "upernet_wave_vit_s_ade20k_160k", "wave_vit_s_in1k_tl"):
        gaps = " ".join(missing_pieces(get_recipe(name)))
        for gone in ("step schedule", "poly schedule", "warm-up by iterations", "warm-up start lr", "cool-down"):
            assert gone not in gaps, (name, gone)


def test_training_follows_the_step_schedule(tmp_path):
    cfg = dict(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1), epochs=3, batch_size=16,
               max_train_batches=2, max_eval_batches=1, test=False, threads=1, progress=False, plots=False,
               output=str(tmp_path / "run"), lr=0.01, scheduler="step", lr_milestones=[1, 2], lr_gamma=0.5,
               warmup_iters=1, warmup_ratio=0.1)
    train(cfg)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    # each record's lr is the one of the next step: epoch 2's first, epoch 3's first, past the end
    assert [r["lr"] for r in log] == pytest.approx([0.005, 0.0025, 0.0025])


def test_a_warmup_in_steps_replaces_the_recipes_warmup_in_epochs():
    assert resolve_config(overrides=dict(dataset="digits")).warmup_epochs == 1.0  # the digits recipe's
    cfg = resolve_config(overrides=dict(dataset="digits", warmup_iters=7))
    assert (cfg.warmup_epochs, cfg.warmup_iters) == (0.0, 7)
    cfg = resolve_config(overrides=dict(recipe="mask_rcnn_wave_vit_s_coco_1x", warmup_epochs=0.5))
    assert (cfg.warmup_epochs, cfg.warmup_iters) == (0.5, 0)
