"""Every registered record (``pretrained_cfg``): timm's fields, our facts, and numbers that cannot drift.

Parameters and multiply-accumulates stored in each record are recomputed from the registered
build (on the meta device: shapes only), so a published or stored number cannot drift silently.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import wavevision
from _slow import model_cases
from wavevision.bench.complexity import count_macs, count_parameters
from wavevision.data.cifar import _STATS as CIFAR_STATS
from wavevision.data.embedded import DIGITS_MEAN, DIGITS_STD
from wavevision.data.idx import _STATS as IDX_STATS
from wavevision.models import DefaultCfg, PretrainedCfg, generate_default_cfgs, get_pretrained_cfg

from _small import timm_models

NAMES = timm_models()
TAGGED = [t for n in NAMES for t in wavevision.get_entry(n).tags]
# timm 1.0.31's PretrainedCfg fields (its _pretrained.py), which model.pretrained_cfg must use.
TIMM_FIELDS = {
    "url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "architecture", "tag", "custom_load",
    "input_size", "test_input_size", "min_input_size", "fixed_input_size", "interpolation", "crop_pct",
    "test_crop_pct", "crop_mode", "mean", "std", "num_classes", "label_offset", "label_names", "label_descriptions",
    "pool_size", "test_pool_size", "first_conv", "classifier", "license", "description", "origin_url", "paper_name",
    "paper_ids", "notes",
}


def _meta(name, **kw):
    with torch.device("meta"):
        return wavevision.create_model(name, **kw)


@pytest.mark.parametrize("tagged", model_cases(TAGGED))
def test_stored_params_and_macs_are_recomputed(tagged):
    cfg = get_pretrained_cfg(tagged)
    model = _meta(tagged)
    assert count_parameters(model) == cfg["params"]
    assert count_macs(model, tuple(cfg["input_size"])) == cfg["macs"], "MACs at input_size drifted"


@pytest.mark.parametrize("tagged", model_cases(TAGGED))
def test_record_fields_fit_the_model(tagged):
    """timm's field names; input channels, classes, first conv, classifier and pool size match the build."""
    cfg = get_pretrained_cfg(tagged)
    ours = {f.name for f in dataclasses.fields(PretrainedCfg)}
    assert TIMM_FIELDS - {"state_dict"} <= ours
    model = _meta(tagged)
    assert model.pretrained_cfg == cfg and model.default_cfg is model.pretrained_cfg
    c, h, w = cfg["input_size"]
    assert c == model.in_chans and cfg["num_classes"] == model.num_classes
    assert len(cfg["mean"]) == len(cfg["std"]) == c
    sd = model.state_dict()
    for key in (cfg["first_conv"],) if isinstance(cfg["first_conv"], str) else cfg["first_conv"]:
        assert f"{key}.weight" in sd
    for key in (cfg["classifier"],) if isinstance(cfg["classifier"], str) else cfg["classifier"]:
        assert f"{key}.weight" in sd
    assert cfg["task"] == wavevision.get_entry(tagged).task
    if cfg.get("min_input_size"):
        assert tuple(cfg["min_input_size"]) == (c, model.min_input_size, model.min_input_size)
    with torch.device("meta"):  # eval: a training-mode BatchNorm on a pooled 1x1 map (UperNet) needs a batch of 2
        feats = model.eval().forward_features(torch.empty(1, c, h, w))
    grid = feats.shape[-2:] if feats.dim() == 4 else None
    if grid is not None:
        assert tuple(grid) == tuple(cfg["pool_size"])
    else:  # Wave-ViT: class token + the stage-4 grid
        assert feats.shape[1] == 1 + cfg["pool_size"][0] * cfg["pool_size"][1]


def test_published_results_and_normalisation():
    """The records carry the papers' and README's numbers and the normalisation our loaders apply."""
    top1 = {n: get_pretrained_cfg(n).get("metrics", {}).get("top1") for n in TAGGED}
    assert top1["wavemix_192_16_l3.in1k"] == 75.06 and top1["wavemix_lite_8_10"] == 99.0
    assert top1["wavemix_lite_144_7.cifar10"] == 94.58 and top1["wavemix_lite_112_16"] == 95.96
    assert (top1["wave_vit_s.in1k"], top1["wave_vit_b.in1k"], top1["wave_vit_l.in1k"]) == (83.9, 84.8, 85.5)
    assert (top1["wave_vit_s.in1k_384"], top1["wave_vit_l.in1k_384"]) == (85.0, 86.3)
    assert get_pretrained_cfg("wavemix_seg_256_16_l4")["metrics"] == {"miou": 82.70}
    mnist = get_pretrained_cfg("wavemix_lite_8_10")
    assert (mnist["input_size"], mnist["mean"], mnist["std"]) == ((1, 28, 28), *IDX_STATS["mnist"])
    assert (get_pretrained_cfg("wavemix_lite_8_5")["mean"], get_pretrained_cfg("wavemix_lite_8_5")["std"]) == \
        IDX_STATS["fashion-mnist"]
    cifar = get_pretrained_cfg("wavemix_lite_64_6")
    assert (cifar["mean"], cifar["std"]) == CIFAR_STATS["cifar10"] and cifar["input_size"] == (3, 32, 32)
    digits = get_pretrained_cfg("mixer_dwt")
    assert (digits["mean"], digits["std"], digits["input_size"]) == (DIGITS_MEAN, DIGITS_STD, (1, 16, 16))
    for name in NAMES:
        cfg = get_pretrained_cfg(name)
        assert cfg.get("metrics") is None or all(isinstance(v, float) for v in cfg["metrics"].values())
        if cfg.get("metrics"):
            assert cfg.get("dataset") and cfg.get("metrics_source")


def test_tags_resolve_like_timm():
    entry = wavevision.get_entry("wave_vit_s")
    assert entry.tags == ["wave_vit_s.in1k", "wave_vit_s.in1k_384"]  # the first is the default
    assert wavevision.create_model("wave_vit_s", depths=(1, 1, 1, 1)).pretrained_cfg["tag"] == "in1k"
    m384 = wavevision.create_model("wave_vit_s.in1k_384", depths=(1, 1, 1, 1))
    assert m384.pretrained_cfg["input_size"] == (3, 384, 384) and m384.pretrained_cfg["tag"] == "in1k_384"
    assert m384.model_name == "wave_vit_s"
    same = wavevision.create_model("wave_vit_s", pretrained_cfg="in1k_384", depths=(1, 1, 1, 1))
    assert same.pretrained_cfg == m384.pretrained_cfg
    with pytest.raises(ValueError, match=r"wave_vit_s has no pretrained tag 'in22k'.*; known: 'wave_vit_s.in1k'"):
        wavevision.create_model("wave_vit_s.in22k")
    assert wavevision.get_entry("wavemix_lite_8_10").tags == ["wavemix_lite_8_10"]  # one untagged record


def test_overlay_and_dict_cfgs():
    m = wavevision.create_model("wavemix_lite_8_10", pretrained_cfg_overlay=dict(crop_pct=0.9, mean=(0.5,)))
    assert m.pretrained_cfg["crop_pct"] == 0.9 and m.pretrained_cfg["mean"] == (0.5,)
    assert m.pretrained_cfg["std"] == (0.3081,)  # the rest is the registered record
    m = wavevision.create_model("wavemix_lite_8_10", pretrained_cfg=dict(input_size=(1, 32, 32)))
    assert m.pretrained_cfg["input_size"] == (1, 32, 32) and m.pretrained_cfg["num_classes"] == 10
    with pytest.raises(ValueError, match=r"unknown pretrained_cfg_overlay key\(s\) \['crop'\]"):
        wavevision.create_model("wavemix_lite_8_10", pretrained_cfg_overlay=dict(crop=0.9))
    with pytest.raises(ValueError, match=r"unknown pretrained_cfg key\(s\) \['sizes'\]"):
        wavevision.create_model("wavemix_lite_8_10", pretrained_cfg=dict(sizes=3))
    assert "pretrained_cfg_overlay" not in m.model_kwargs  # not recorded for rebuilding from a checkpoint


def test_generate_default_cfgs_orders_tags_like_timm():
    cfgs = generate_default_cfgs({
        "m.a": dict(input_size=(3, 32, 32)),
        "m.b": dict(file="/weights.safetensors"),
        "m.c*": dict(),
        "n": dict(),
    })
    assert isinstance(cfgs["m"], DefaultCfg) and list(cfgs["m"].tags) == ["c", "b", "a"]
    assert cfgs["m"].is_pretrained and not cfgs["n"].is_pretrained
    assert cfgs["m"].cfgs["a"].architecture == "m" and cfgs["m"].cfgs["a"].tag == "a"
    with pytest.raises(ValueError, match="listed twice"):
        generate_default_cfgs({"m.a": {}, "m.a*": {}})


def test_list_shows_the_cfgs_results():
    from wavevision.cli.list_models import rows

    by_name = {r["name"]: r for r in rows(tags=True)}
    assert by_name["wavemix_192_16_l3.in1k"]["reference"] == "ImageNet-1k top1 75.06"
    assert by_name["wave_vit_l.in1k_384"]["input"] == "3x384x384"
    assert by_name["wavemix_lite_8_10"]["params"] == 3_566 and by_name["wavemix_lite_8_10"]["macs"] == 881_296
    assert wavevision.get_entry("wavemix_192_16_l3").reference["top1"] == 75.06
