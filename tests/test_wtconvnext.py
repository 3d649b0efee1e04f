"""WTConvNeXt-T/S/B (models/wtconvnext.py) against the public model, and its checkpoints.

The public model's key names, shapes and parameter counts (T/S/B), and a reduced configuration
of the public class (depths 1/1/1/1, dims 4/8/12/16) with its state dict, an input and its
float64 outputs, are in ``tests/data/wtconvnext_public.pt.gz``, written by
``benchmarks/wtconvnext_parity.py`` from BGU-CS-VIL/WTConv, so no copy of the public code is
needed here. T/S/B are built on the ``meta`` device (shapes only).
"""
from __future__ import annotations

import argparse
import gzip
import io
import math
import re
from pathlib import Path

import pytest
import torch

import wavevision
from wavevision.models import CheckpointMismatchError, WTConvNeXt, load_state_dict_strict
from wavevision.models.wtconvnext import trunc_normal_

from _small import small_model

FIXTURE = torch.load(io.BytesIO(gzip.decompress((Path(__file__).parent / "data" / "wtconvnext_public.pt.gz").read_bytes())),
                     weights_only=True)
REDUCED = FIXTURE["reduced"]
NAMES = ("wtconvnext_tiny", "wtconvnext_small", "wtconvnext_base")
PUBLISHED_PARAMS = {"wtconvnext_tiny": 30_595_624, "wtconvnext_small": 54_448_936, "wtconvnext_base": 94_225_128}


def _public_state() -> dict[str, torch.Tensor]:
    """The reduced public model's state dict (benchmarks/wtconvnext_parity.py's ``pack_state``)."""
    packed = REDUCED["state"]
    sizes = {h: [math.prod(s) for s, hh in zip(packed["shapes"], packed["half"]) if hh == h] for h in (True, False)}
    parts = {h: iter(packed["float16" if h else "float32"].float().split(sizes[h])) for h in (True, False)}
    return {k: next(parts[h]).reshape(s) for k, s, h in zip(packed["keys"], packed["shapes"], packed["half"])}


def _reduced(**kw) -> WTConvNeXt:
    return wavevision.create_model("wtconvnext_tiny", **{**REDUCED["args"], **kw}).eval()


def _x() -> torch.Tensor:
    """The fixture's 97x101 image: bytes b as b / 128 - 1 (exact in float32)."""
    return REDUCED["input"].float() / 128 - 1


def _meta(name: str, **kw) -> WTConvNeXt:
    with torch.device("meta"):
        return wavevision.create_model(name, **kw)


# --------------------------------------------------------------------------------------
# The public model: layout, counts, outputs


@pytest.mark.parametrize("name", NAMES)
def test_keys_shapes_and_parameter_counts_equal_the_public_model(name):
    public = FIXTURE["models"][name]
    model = _meta(name)
    sd = model.state_dict()
    assert list(sd) == public["keys"]  # the same names in the same order
    assert [list(v.shape) for v in sd.values()] == public["shapes"]
    assert sum(p.numel() for p in model.parameters()) == public["params"] == PUBLISHED_PARAMS[name]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == public["trainable"]
    cfg = wavevision.get_pretrained_cfg(name)
    assert cfg["params"] == public["params"] and cfg["metrics"]["top1"] == {"wtconvnext_tiny": 82.5,
                                                                              "wtconvnext_small": 83.6,
                                                                              "wtconvnext_base": 84.1}[name]
    # the only parameters not trained are the WTConv wavelet filters (4C x 1 x 2 x 2 each, analysis and synthesis)
    frozen = [k for k, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(k.endswith(("conv_dw.wt_filter", "conv_dw.iwt_filter")) for k in frozen)
    assert len(frozen) == 2 * sum(model.depths)


def test_the_public_state_dict_loads_strictly_and_reproduces_its_outputs():
    model = _reduced()
    load_state_dict_strict(model, _public_state(), source="public state dict")
    x = _x()
    with torch.no_grad():
        logits = model(x)
        final, maps = model.forward_intermediates(x)
    torch.testing.assert_close(logits, REDUCED["logits"].float(), rtol=0, atol=1e-5)
    torch.testing.assert_close(final, REDUCED["features"].float(), rtol=0, atol=1e-5)
    for got, want in zip(maps, REDUCED["stages"], strict=True):
        torch.testing.assert_close(got, want.float(), rtol=0, atol=1e-5)
    with torch.no_grad():  # float64: the public Haar filters are float32 roundings of 1/2 (0.49999997), ours exact
        torch.testing.assert_close(model.double()(x.double()), REDUCED["logits"], rtol=1e-6, atol=1e-9)


def test_a_seeded_build_has_the_public_initialisation():
    """timm's ConvNeXt init: truncated normal (std .02) weights, zero biases, layer scale 1e-6,
    WTConv scales 1 (base) and 0.1 (levels), LayerNorms 1 / 0."""
    torch.manual_seed(0)
    model = _reduced()
    sd = model.state_dict()
    assert all(torch.all(v == 1e-6) for k, v in sd.items() if k.endswith(".gamma"))
    assert all(torch.all(v == 1) for k, v in sd.items() if "base_scale" in k)
    assert all(torch.all(v == 0.1) for k, v in sd.items() if "wavelet_scale" in k)
    assert all(torch.all(v == 0) for k, v in sd.items() if k.endswith(".bias"))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 + 3 + 4 and all(torch.all(m.weight == 1) for m in norms)  # stem, downsamples, blocks, head
    weights = torch.cat([m.weight.detach().flatten() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))])
    assert 0.018 < float(weights.std()) < 0.022 and float(weights.abs().max()) < 0.2


def test_trunc_normal_is_the_truncated_normal():
    """The inverse-CDF sampler: bounds hold, and mean and variance are the truncated normal's."""
    torch.manual_seed(0)
    x = trunc_normal_(torch.empty(200_000, dtype=torch.float64), std=1.0, bound=0.5)
    assert float(x.abs().max()) <= 0.5
    phi = math.exp(-0.125) / math.sqrt(2 * math.pi)  # N(0, 1) density at 0.5
    var = 1 - 2 * 0.5 * phi / math.erf(0.5 / math.sqrt(2))  # variance of N(0, 1) cut at +-0.5
    assert abs(float(x.mean())) < 3e-3 and float(x.var()) == pytest.approx(var, rel=1e-2)
    y = trunc_normal_(torch.empty(200_000), std=0.02)
    assert float(y.std()) == pytest.approx(0.02, rel=1e-2)


def test_registered_defaults_match_the_public_constructor():
    model = _meta("wtconvnext_tiny")
    assert model.depths == (3, 3, 9, 3) and model.dims == (96, 192, 384, 768) and model.wt_levels == (5, 4, 3, 2)
    blocks = [b for s in model.stages for b in s.blocks]
    assert {b.conv_dw.base_conv.kernel_size for b in blocks} == {(5, 5)}
    assert [s.blocks[0].conv_dw.wt_levels for s in model.stages] == [5, 4, 3, 2]
    assert model.min_input_size == 96 and model.pretrained_cfg["min_input_size"] == (3, 96, 96)
    cfg = model.pretrained_cfg
    assert (cfg["input_size"], cfg["crop_pct"], cfg["interpolation"]) == ((3, 224, 224), 0.875, "bicubic")
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    rates = [getattr(b.drop_path, "p", 0.0) for s in _meta("wtconvnext_tiny", drop_path_rate=0.1).stages for b in s.blocks]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.1) and rates == sorted(rates)
    assert model.no_weight_decay() == {k for k, _ in model.named_parameters() if "scale" in k}


# --------------------------------------------------------------------------------------
# Checkpoints from files: the public formats


def _reference_logits() -> torch.Tensor:
    model = _reduced()
    load_state_dict_strict(model, _public_state())
    with torch.no_grad():
        return model(_x())


def _train_py_checkpoint(state: dict, ema: dict) -> dict:
    """What timm's train.py (CheckpointSaver) writes with --model-ema: the weights beside the run's state."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=1e-3)
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    return {"epoch": 299, "arch": "wtconvnext_tiny", "optimizer": opt.state_dict(), "version": 2,
            "args": argparse.Namespace(model="wtconvnext_tiny", drop_path=0.1, lr=4e-3, aa="rand-m9-mstd0.5-inc1"),
            "state_dict": state, "state_dict_ema": ema, "metric": 82.5,
            "saver": {"checkpoint_files": [("checkpoint-299.pth.tar", 82.5)], "best_epoch": 299, "best_metric": 82.5,
                      "pending": (299, 82.5)}}


@pytest.mark.parametrize("layout", ["plain", "state_dict", "model", "state_dict_ema", "train_py", "ddp"])
def test_public_checkpoint_formats_load_from_a_file(layout, tmp_path):
    state = _public_state()
    obj = {"plain": state, "state_dict": {"state_dict": state}, "model": {"model": state},
           "state_dict_ema": {"state_dict_ema": state},
           "train_py": _train_py_checkpoint(state, {k: torch.zeros_like(v) for k, v in state.items()}),
           "ddp": {"state_dict": {f"module.{k}": v for k, v in state.items()}}}[layout]
    path = tmp_path / "WTConvNeXt_tiny_5_300e_ema.pth"
    torch.save(obj, path)
    want = _reference_logits()
    by_checkpoint = wavevision.create_model("wtconvnext_tiny", checkpoint=path, **REDUCED["args"]).eval()
    by_overlay = wavevision.create_model("wtconvnext_tiny", pretrained=True, **REDUCED["args"],
                                         pretrained_cfg_overlay=dict(file=str(path), num_classes=10)).eval()
    with torch.no_grad():
        for model in (by_checkpoint, by_overlay):
            assert torch.equal(model(_x()), want)  # train.py's file: its "state_dict", as timm's validate.py loads


def test_a_wavevision_checkpoint_round_trips(tmp_path):
    model = _reduced()
    load_state_dict_strict(model, _public_state())
    path = wavevision.save_checkpoint(model, tmp_path / "w.safetensors")
    again = wavevision.create_model(checkpoint=path).eval()
    with torch.no_grad():
        assert torch.equal(again(_x()), model(_x()))


def test_pretrained_without_the_file_names_the_drive_link_and_the_fix():
    with pytest.raises(ValueError, match=r"drive\.google\.com.*pretrained_cfg_overlay=dict\(file=PATH\)"):
        wavevision.create_model("wtconvnext_tiny", pretrained=True, **REDUCED["args"])
    assert set(wavevision.list_pretrained("wtconvnext*")) == {f"{n}.in1k" for n in NAMES}


def test_a_checkpoint_of_another_size_names_the_first_mismatching_key_and_both_shapes(tmp_path):
    with pytest.raises(CheckpointMismatchError) as e:  # T into B: shapes first differ at the stem
        load_state_dict_strict(_meta("wtconvnext_base"), _meta("wtconvnext_tiny").state_dict())
    msg = str(e.value)
    assert "\n" not in msg and "'wtconvnext_base'" in msg
    assert "first 'stem.0.weight': checkpoint (96, 3, 4, 4) vs model (128, 3, 4, 4)" in msg
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\), e\.g\. \['stages\.2\.blocks\.9\."):
        load_state_dict_strict(_meta("wtconvnext_small"), _meta("wtconvnext_tiny").state_dict())  # S has 27 blocks
    path = tmp_path / "reduced.pth"
    torch.save(_public_state(), path)
    with pytest.raises(CheckpointMismatchError) as e:
        wavevision.create_model("wtconvnext_tiny", checkpoint=path, **{**REDUCED["args"], "dims": (4, 8, 12, 20)})
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "first 'stages.3.downsample.1.weight': checkpoint (16, 12, 2, 2) vs model (20, 12, 2, 2)" in msg


# --------------------------------------------------------------------------------------
# Features, heads, sizes, checkpointing


def test_features_and_intermediates_have_the_stage_shapes():
    model = small_model("wtconvnext_tiny").eval()
    x = torch.rand(2, 3, 100, 131)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert [tuple(m.shape) for m in maps] == [(2, 8, 25, 32), (2, 16, 12, 16), (2, 24, 6, 8), (2, 32, 3, 4)]
        assert torch.equal(final, model.forward_features(x)) and torch.equal(final, maps[-1])
        nhwc = model.forward_intermediates(x, indices=[1], output_fmt="NHWC", intermediates_only=True)
        assert torch.equal(nhwc[0], maps[1].permute(0, 2, 3, 1))
        early_final, early = model.forward_intermediates(x, indices=[0, 2], stop_early=True)
        assert torch.equal(early_final, maps[2]) and torch.equal(early[0], maps[0])
    backbone = small_model("wtconvnext_tiny", features_only=True, out_indices=(1, 3)).eval()
    backbone.load_state_dict({k: v for k, v in model.state_dict().items() if k in backbone.state_dict()})
    assert backbone.feature_info.channels() == [16, 32] and backbone.feature_info.reduction() == [8, 32]
    assert backbone.feature_info.module_name() == ["stages.1", "stages.3"]
    assert not any(k.startswith("head.") for k in backbone.state_dict())
    with torch.no_grad():
        assert all(torch.equal(a, maps[i]) for a, i in zip(backbone(x), (1, 3), strict=True))
    shallow = small_model("wtconvnext_tiny", features_only=True, out_indices=(0, 1))
    assert len(shallow.stages) == 2 and shallow.pyramid_indices() == (0, 1, 2, 3)
    assert small_model("wtconvnext_tiny").pyramid_frozen_modules(2)[0] is not None


def test_global_pool_choices_and_per_pixel_logits():
    model = small_model("wtconvnext_tiny", num_classes=5).eval()
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model(x)
        model.reset_classifier(5, "")
        assert model.global_pool == ""
        model.head.fc.load_state_dict(small_model("wtconvnext_tiny", num_classes=5).head.fc.state_dict())
        dense = model(x)  # (1, 5, 3, 4): the classifier at every position of the normalised map
        assert dense.shape == (1, 5, 3, 4)
        normed = model.head.norm(feats)
        want = torch.einsum("bchw,kc->bkhw", normed, model.head.fc.weight) + model.head.fc.bias[:, None, None]
        torch.testing.assert_close(dense, want)
        # pooled logits are the classifier on the normalised mean of the map
        torch.testing.assert_close(pooled, model.head.fc(model.head.norm(feats.mean((2, 3), keepdim=True)).flatten(1)))
    for pool in ("max", "avgmax"):
        assert small_model("wtconvnext_tiny", global_pool=pool).eval()(x).shape == (1, 1000)
    with pytest.raises(ValueError, match="does not support global_pool='token'"):
        small_model("wtconvnext_tiny", global_pool="token")


def test_inputs_below_the_minimum_are_refused_naming_it():
    model = small_model("wtconvnext_tiny").eval()
    with pytest.raises(ValueError, match=r"95x96 pixels is too small for WTConvNeXt: the minimum is 96x96 \(stage 4"):
        model(torch.rand(1, 3, 95, 96))
    fewer = small_model("wtconvnext_tiny", wt_levels=(2, 2, 1, 0))
    assert fewer.min_input_size == 32  # stage 3: stride 16 x 2 pixels, stage 4: stride 32 x 1
    with torch.no_grad():
        assert fewer.eval()(torch.rand(1, 3, 32, 33)).shape == (1, 1000)


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"depths must list one value per stage \(4\), got 3"):
        small_model("wtconvnext_tiny", depths=3)
    with pytest.raises(ValueError, match=r"wt_levels\[0\]"):
        small_model("wtconvnext_tiny", wt_levels=(-1, 4, 3, 2))
    model = small_model("wtconvnext_tiny", kernel_sizes=3)  # one kernel side for every stage
    assert {b.conv_dw.base_conv.kernel_size for s in model.stages for b in s.blocks} == {(3, 3)}
    with pytest.raises(TypeError, match="unknown argument"):
        small_model("wtconvnext_tiny", output_stride=16)  # the public dilated variant is not built here


def test_grad_checkpointing_gives_the_same_outputs_and_gradients():
    kw = dict(depths=(2, 1, 3, 1), drop_path_rate=0.2)
    plain = small_model("wtconvnext_tiny", **kw).double().train()
    ckpt = small_model("wtconvnext_tiny", **kw).double().train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing()
    x = torch.rand(2, 3, 96, 100, dtype=torch.float64)
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(3)  # the same drop-path draws
        out = model(x)
        (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
        results.append((out, {k: p.grad for k, p in model.named_parameters() if p.requires_grad}))
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    assert grads_a.keys() == grads_b.keys()
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-9, atol=1e-12, msg=k)


def test_group_matcher_gives_timm_layer_decay_groups():
    model = small_model("wtconvnext_tiny", depths=(1, 2, 1, 1))
    coarse, fine = model.group_matcher(coarse=True), model.group_matcher()
    assert coarse["stem"] == fine["stem"] == r"^stem"
    names = [k for k, _ in model.named_parameters()]
    assert all(re.match(coarse["stem"], k) or re.match(coarse["blocks"], k) or k.startswith("head.") for k in names)
    assert {re.match(r"^stages\.(\d+)\.blocks\.(\d+)", k).groups() for k in names if ".blocks." in k} == \
        {("0", "0"), ("1", "0"), ("1", "1"), ("2", "0"), ("3", "0")}


def test_the_wavelet_is_swappable_and_haar_checkpoints_refuse_other_wavelets(tmp_path):
    """``wavelet=`` reaches every WTConv (the paper's Haar by default); another wavelet keeps the
    keys, stores its own (longer) filters, and a Haar checkpoint then fails on the first filter."""
    pytest.importorskip("pywt")
    haar = small_model("wtconvnext_tiny").eval()
    db2 = small_model("wtconvnext_tiny", wavelet="db2").eval()
    assert {b.conv_dw.wt_type for s in db2.stages for b in s.blocks} == {"db2"}
    assert {b.conv_dw.wt_type for s in haar.stages for b in s.blocks} == {"db1"}
    assert db2.state_dict().keys() == haar.state_dict().keys()
    first = "stages.0.blocks.0.conv_dw.wt_filter"
    assert db2.state_dict()[first].shape[-2:] == (4, 4) and haar.state_dict()[first].shape[-2:] == (2, 2)
    with torch.no_grad():
        assert torch.isfinite(db2(torch.rand(1, 3, 96, 97))).all()
    with pytest.raises(CheckpointMismatchError, match=re.escape(first)):
        load_state_dict_strict(db2, haar.state_dict())
    with pytest.raises(ValueError, match="did you mean 'haar'"):
        small_model("wtconvnext_tiny", wavelet="hasr")
