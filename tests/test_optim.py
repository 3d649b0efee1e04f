"""The optimizer: parameter groups (no weight decay by kind or name, layer-wise lr decay against
timm's functions), AdamW's betas/eps and SGD's Nesterov flag from the configuration and the recipes."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import wavevision
from wavevision.engine.config import TrainConfig, resolve_config
from wavevision.engine.recipe import engine_values, missing_pieces
from wavevision.engine.schedule import build_optimizer, build_scheduler, param_groups
from wavevision.recipes import get_recipe

from _optional import require
from _small import small_overrides


class _Tiny(nn.Module):
    """A conv with BatchNorm, a linear with LayerNorm, a position table and a class token."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.fc, self.ln = nn.Linear(4, 4), nn.LayerNorm(4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.scale = nn.Parameter(torch.ones(()))


def _exempt(model: nn.Module, **cfg) -> set[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, TrainConfig(**cfg).validate())
    return {names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}


def test_no_decay_kinds():
    m = _Tiny()
    # the default ("1d") is the engine's old rule: every tensor of fewer than 2 dimensions
    assert _exempt(m) == {n for n, p in m.named_parameters() if p.ndim < 2}
    # MMCV's norm_decay_mult=0 with custom keys for position tables (UperNet): linear and conv biases decay
    assert _exempt(m, no_decay="norm,pos_embed") == {"bn.weight", "bn.bias", "ln.weight", "ln.bias", "pos_embed",
                                                     "cls_token"}
    assert _exempt(m, no_decay="bias") == {"conv.bias", "bn.bias", "fc.bias", "ln.bias"}
    assert _exempt(m, no_decay="none") == set()  # torch's AdamW(model.parameters(), weight_decay=...)
    with pytest.raises(ValueError, match="no_decay must be 'none' or a comma-separated list of 1d, norm"):
        TrainConfig(no_decay="norms").validate()


def test_1d_matches_timm_and_no_weight_decay_names():
    optim = require("timm.optim")
    m = _Tiny()
    m.no_weight_decay = lambda: {"pos_embed"}  # a model naming its own tables (timm's hook)
    names = {id(p): n for n, p in m.named_parameters()}
    theirs = optim.param_groups_weight_decay(m, 0.05, no_weight_decay_list=m.no_weight_decay())
    assert _exempt(m) == {names[id(p)] for g in theirs if g["weight_decay"] == 0.0 for p in g["params"]}


def test_layer_decay_against_timm():
    optim = require("timm.optim")
    torch.manual_seed(0)
    model = wavevision.create_model("wave_vit_s", num_classes=3, **small_overrides("wave_vit_s"))
    cfg = TrainConfig(layer_decay=0.75, lr=0.01, weight_decay=0.05).validate()
    opt = build_optimizer(model, cfg)
    ref = optim.param_groups_layer_decay(model, 0.05, no_weight_decay_list=(), layer_decay=0.75)
    key = lambda groups: sorted((round(g.get("lr_scale", 1.0), 12), g["weight_decay"], len(g["params"])) for g in groups)
    assert key(opt.param_groups) == key(ref) and len(ref) > 4
    scales = {g["lr_scale"] for g in ref}
    assert min(scales) < 0.75 ** 3 and max(scales) == 1.0  # the head full, the stem decayed most
    build_scheduler(opt, cfg.replace(warmup_iters=0), 10)  # the schedule multiplies each group's scaled lr
    assert sorted(g["lr"] / 0.01 for g in opt.param_groups) == pytest.approx(sorted(g["lr_scale"] for g in ref))
    with pytest.raises(ValueError, match="add 1d to no_decay"):
        TrainConfig(layer_decay=0.75, no_decay="norm").validate()


def test_adamw_betas_eps_and_sgd_nesterov():
    m = _Tiny()
    opt = build_optimizer(m, TrainConfig(adam_beta1=0.8, adam_beta2=0.95, adam_eps=1e-6).validate())
    assert opt.defaults["betas"] == (0.8, 0.95) and opt.defaults["eps"] == 1e-6
    assert build_optimizer(m, TrainConfig().validate()).defaults["betas"] == (0.9, 0.999)
    sgd = lambda **kw: build_optimizer(m, TrainConfig(optimizer="sgd", **kw).validate()).defaults["nesterov"]
    assert sgd() is True and sgd(momentum=0.0) is False  # the old default: Nesterov when momentum > 0
    assert sgd(nesterov=False) is False and sgd(nesterov=True) is True
    with pytest.raises(ValueError, match="nesterov needs SGD with momentum > 0"):
        TrainConfig(nesterov=True).validate()
    assert resolve_config(overrides={"optimizer": "sgd", "nesterov": "false"}).nesterov is False


def test_recipes_apply_their_optimizer_details():
    ade = get_recipe("upernet_wave_vit_s_ade20k_160k")
    v = engine_values(ade)
    assert v["no_decay"] == "norm,pos_embed" and (v["adam_beta1"], v["adam_beta2"], v["adam_eps"]) == (0.9, 0.999, 1e-8)
    wavemix = engine_values(get_recipe("wavemix_lite_144_7_cifar10"))
    assert wavemix["no_decay"] == "none"  # the authors' AdamW(model.parameters(), weight_decay=0.01)
    assert engine_values(get_recipe("mask_rcnn_wave_vit_s_coco_1x"))["no_decay"] == "none"  # MMCV: decay all
    assert engine_values(get_recipe("wave_vit_s_in1k_deit"))["no_decay"] == "1d"
    for name in ("upernet_wave_vit_s_ade20k_160k", "mask_rcnn_wave_vit_s_coco_1x", "wavemix_lite_144_7_cifar10"):
        gaps = " ".join(missing_pieces(get_recipe(name)))
        assert "decay" not in gaps and "betas" not in gaps and "Nesterov" not in gaps
    cfg = resolve_config(overrides={"recipe": "upernet_wave_vit_s_ade20k_160k"})
    assert cfg.no_decay == "norm,pos_embed"
