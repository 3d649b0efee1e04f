"""Effective receptive fields: models whose receptive field is known by construction, radii by hand."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import wavevision
from wavevision.bench.erf import (
    average_erf,
    compare_erf,
    conv_stack,
    effective_receptive_field,
    erf_radii,
    plot_erf,
    plot_erf_comparison,
    wtconv_stack_erf,
    wtconvnext_erf,
)
from wavevision.cli import main

from _optional import require

pytestmark = pytest.mark.usefixtures("one_thread")


def _conv(k, seed=0, ones=False):
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 2, k, padding=k // 2)
    if ones:
        nn.init.ones_(conv.weight)
    return conv


def _support(mass):
    rows, cols = np.nonzero(mass)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_single_3x3_conv_has_a_3x3_support_weighted_by_the_kernel():
    conv = _conv(3, seed=1)
    res = effective_receptive_field(conv, input_shape=(1, 9, 9), samples=3)
    assert _support(res.mass) == (3, 5, 3, 5)
    # d out[4, 4] / d x[4 + i, 4 + j] = w[1 + i, 1 + j] (cross-correlation), summed over output channels
    # (the gradient sums over the two output channels before the absolute value)
    grad = conv.weight.detach()[:, 0].sum(0).abs().numpy()
    np.testing.assert_allclose(res.mass[3:6, 3:6], grad / grad.sum(), rtol=1e-5)
    assert res.mass.sum() == pytest.approx(1.0)


def test_uniform_3x3_radii_by_hand():
    res = effective_receptive_field(_conv(3, ones=True), input_shape=(1, 9, 9), samples=1)
    np.testing.assert_allclose(res.mass[3:6, 3:6], np.full((3, 3), 1 / 9), rtol=1e-6)
    assert res.center == pytest.approx((4.0, 4.0))
    # centre 1/9, +4 edge neighbours at distance 1 -> 5/9 >= 50 %; all 9 within sqrt(2)
    assert res.r50 == pytest.approx(1.0) and res.r90 == pytest.approx(math.sqrt(2))


def test_1x1_conv_is_one_pixel():
    res = effective_receptive_field(_conv(1), input_shape=(1, 8, 8), samples=2)
    assert np.count_nonzero(res.mass) == 1 and res.mass[4, 4] == pytest.approx(1.0)  # the central unit of an even map
    assert res.r50 == 0 and res.r90 == 0 and res.center == (4.0, 4.0)


def test_two_stacked_3x3_convs_give_5x5():
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 1, 3, padding=1))
    res = effective_receptive_field(model, input_shape=(1, 11, 11), samples=2)
    assert _support(res.mass) == (3, 7, 3, 7)


class _Blocks(nn.Module):
    """A model with blocks and forward_features (a 3x3 block, then a 1x1 block) and a pooled head."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 1)])
        self.head = nn.Linear(2, 3)

    def forward_features(self, x):
        for block in self.layers:
            x = block(x) + x
        return x

    def forward(self, x):
        return self.head(self.forward_features(x).mean((2, 3)))


def test_block_erf_and_features_before_pooling():
    model = _Blocks()
    whole = effective_receptive_field(model, input_shape=(2, 7, 7), samples=2)
    assert whole.target == "model" and _support(whole.mass) == (2, 4, 2, 4)  # residual + 3x3
    b0 = effective_receptive_field(model, input_shape=(2, 7, 7), samples=2, block=0)
    b1 = effective_receptive_field(model, input_shape=(2, 7, 7), samples=2, block=-1)
    assert b0.target == "block 0" and _support(b0.mass) == (2, 4, 2, 4)
    assert b1.target == "block 1" and np.count_nonzero(b1.mass) == 1  # the block itself, without the residual
    assert model.training  # the mode is restored


def test_erf_radii_by_hand():
    m = np.zeros((5, 5))
    m[2, 2] = 0.5
    for i, j in [(0, 2), (4, 2), (2, 0), (2, 4)]:
        m[i, j] = 0.125
    center, (r50, r90) = erf_radii(m)
    assert center == pytest.approx((2.0, 2.0)) and r50 == 0 and r90 == 2
    # scale does not matter; the centroid follows the mass
    center, (r50,) = erf_radii(np.array([[0.0, 3.0, 1.0]]), (0.5,))
    assert center == pytest.approx((0.0, 1.25)) and r50 == pytest.approx(0.25)


def test_registered_model_erf_is_a_distribution_on_the_input():
    torch.manual_seed(0)
    model = wavevision.create_model("mixer_dwt", depth=1)
    res = effective_receptive_field(model, input_shape=(1, 16, 16), samples=4)
    assert res.mass.shape == (16, 16) and res.mass.sum() == pytest.approx(1.0) and (res.mass >= 0).all()
    assert 0 <= res.r50 <= res.r90 <= res.r99 < 16
    assert abs(res.center[0] - 8) < 2 and abs(res.center[1] - 8) < 2


def test_erf_errors():
    logits = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match="spatial output map"):
        effective_receptive_field(logits, input_shape=(1, 4, 4), samples=1)
    with pytest.raises(ValueError, match="not a block"):
        effective_receptive_field(_Blocks(), input_shape=(2, 5, 5), samples=1, block=5)
    with pytest.raises(ValueError, match="input_shape"):
        effective_receptive_field(_Blocks())
    zero = nn.Conv2d(1, 1, 3, padding=1)
    nn.init.zeros_(zero.weight)
    with pytest.raises(ValueError, match="all zeros"):
        effective_receptive_field(zero, input_shape=(1, 5, 5), samples=1)


def test_plots_open(tmp_path):
    from PIL import Image

    res = effective_receptive_field(_conv(3), input_shape=(1, 9, 9), samples=1, label="conv3")
    rows = compare_erf([("L1", "mixer_dwt", {"depth": 1}), ("pool", "mixer_pool", {"depth": 1})],
                       input_shape=(1, 16, 16), samples=2, seeds=2)
    assert [r.label for r in rows] == ["L1", "pool"] and rows[0].meta["seeds"] == 2
    for path in (plot_erf(res, tmp_path / "one.png"), plot_erf_comparison({"a": rows, "b": rows[:1]}, tmp_path / "cmp.png")):
        with Image.open(path) as im:
            im.verify()


def test_cli_single_model_and_block(tmp_path, capsys):
    assert main(["erf", "mixer_dwt", "--model-arg", "depth=2", "--samples", "2", "--out", str(tmp_path)]) == 0
    assert main(["erf", "mixer_dwt", "--model-arg", "depth=2", "--samples", "2", "--block", "1", "--data", "digits",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "mixer_dwt (model)" in text and "mixer_dwt (block 1)" in text and "r50" in text and "r90" in text
    rec = json.loads((tmp_path / "erf_mixer_dwt_block1.json").read_text())
    assert rec["data"] == "digits" and rec["samples"] == 2 and len(rec["mass"]) == 8  # the 8x8 block map
    assert (tmp_path / "erf_mixer_dwt.png").exists() and (tmp_path / "erf_mixer_dwt_block1.png").exists()


def test_cli_compare(tmp_path, capsys):
    assert main(["erf", "--compare", "--depth", "1", "--levels", "1", "3", "--samples", "2", "--seeds", "1",
                 "--input-size", "32", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "erf_compare.json").read_text())
    assert [r["label"] for r in records] == ["dwt L1", "dwt L3", "dwconv", "pool"] * 2
    assert {r["view"] for r in records} == {"one block (block 0)", "whole stack (depth 1)"}
    assert (tmp_path / "erf_compare.png").exists() and (tmp_path / "erf_compare.csv").exists()
    assert "dwt L3" in capsys.readouterr().out


# ------------------------------------------------------------------------------------
# WTConv against ConvNeXt's 7x7 depthwise convolution (the WTConv paper's Figure 1)


def test_conv_stacks_are_what_they_say():
    from wavevision.layers.wtconv import WTConv2d

    dw = conv_stack("dwconv", 3, 4)
    assert len(dw) == 3 and all(isinstance(m, nn.Conv2d) and m.kernel_size == (7, 7) and m.groups == 4 for m in dw)
    wt = conv_stack("wtconv", 2, 4, wt_levels=4)
    assert len(wt) == 2 and all(isinstance(m, WTConv2d) and m.wt_levels == 4 and m.base_conv.kernel_size == (5, 5)
                                for m in wt)
    # one 7x7 layer: the ERF support is exactly 7x7; two: 13x13
    for n, side in ((1, 7), (2, 13)):
        res = average_erf("dw", lambda n=n: conv_stack("dwconv", n, 2), input_shape=(2, 21, 21), samples=1, seeds=1)
        top, bottom, left, right = _support(res.mass)
        assert (bottom - top + 1, right - left + 1) == (side, side)
    with pytest.raises(ValueError, match="kind"):
        conv_stack("conv", 1, 2)


def test_wtconv_stack_erf_is_wider_than_the_7x7_stack():
    """The paper's claim at initialisation: WTConv (kernel 5, 3 levels) spreads the gradient mass
    much further than ConvNeXt's 7x7 depthwise conv, for one layer and for a stack (seeded)."""
    rows = wtconv_stack_erf(depth=2, channels=4, levels=(3,), input_size=40, samples=2, seeds=2)
    assert list(rows) == ["one layer", "stack of 2"]
    for results in rows.values():
        dw, wt = results
        assert dw.label == "7x7 dw (ConvNeXt)" and wt.label == "WTConv k5 L3"
        assert wt.meta["wt_levels"] == 3 and wt.meta["weights"] == "initialisation" and wt.samples == 4
        assert wt.r90 > 1.5 * dw.r90 and wt.r99 > 1.5 * dw.r99, (dw.r90, wt.r90)
        # inside the 7x7 stack's support (3 pixels a layer each way; the centroid may sit off the centre pixel)
        assert dw.r99 <= 3 * math.sqrt(2) * dw.meta["layers"] + 0.5
    with pytest.raises(ValueError, match="too small for 5 WTConv levels: use at least 17"):
        wtconv_stack_erf(levels=(5,), input_size=16)


def _tiny_convnext_args():
    return {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)}


def test_wtconvnext_erf_at_init_and_trained(tmp_path):
    """Both whole models at initialisation; with checkpoints, the loaded models' own ERFs (computed
    directly on models built from the same files) and labels that say so."""
    timm = require("timm")
    args = _tiny_convnext_args()
    init = wtconvnext_erf(input_size=96, samples=1, seeds=1, model_args=args)
    assert [r.label for r in init] == ["WTConvNeXt-T (init)", "ConvNeXt-T (init)"]
    assert init[1].meta["model"].startswith("timm") and init[0].meta["weights"] == "initialisation"
    assert all(r.mass.shape == (96, 96) and r.mass.sum() == pytest.approx(1.0) for r in init)

    torch.manual_seed(3)
    ours = wavevision.create_model("wtconvnext_tiny", **args)
    theirs = timm.create_model("convnext_tiny", **args)
    for m in (ours, theirs):  # not the initial weights: a visible difference if the files were ignored
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.05 * torch.randn_like(p))
    torch.save({"model": ours.state_dict()}, tmp_path / "wtconvnext.pth")
    torch.save(theirs.state_dict(), tmp_path / "convnext.pth")
    trained = wtconvnext_erf(checkpoint=tmp_path / "wtconvnext.pth", baseline_checkpoint=tmp_path / "convnext.pth",
                             input_size=96, samples=2, seeds=3, model_args=args)
    assert [r.label for r in trained] == ["WTConvNeXt-T (trained)", "ConvNeXt-T (trained)"]
    assert trained[0].meta["seeds"] == 1 and trained[1].meta["weights"].endswith("convnext.pth")
    for res, model in zip(trained, (ours, theirs)):
        direct = effective_receptive_field(model, input_shape=(3, 96, 96), samples=2, seed=0)
        np.testing.assert_allclose(res.mass, direct.mass, rtol=1e-5, atol=1e-12)


def test_wtconvnext_erf_without_timm_builds_convnext_from_wtconvnext(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    (res,) = wtconvnext_erf(input_size=96, samples=1, model_args=_tiny_convnext_args())[1:]
    assert res.label == "ConvNeXt-T (init)" and "wt_levels=(0, 0, 0, 0), kernel_sizes=7" in res.meta["model"]
    with pytest.raises(ValueError, match="ConvNeXt-T checkpoint needs timm"):
        wtconvnext_erf(baseline_checkpoint=tmp_path / "c.pth", input_size=96, samples=1, model_args=_tiny_convnext_args())


def test_cli_compare_wtconv(tmp_path, capsys):
    assert main(["erf", "--compare", "wtconv", "--depth", "2", "--levels", "3", "--samples", "1", "--seeds", "1",
                 "--input-size", "32", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "erf_wtconv.json").read_text())
    assert [(r["view"], r["label"]) for r in records] == [
        ("one layer", "7x7 dw (ConvNeXt)"), ("one layer", "WTConv k5 L3"),
        ("stack of 2", "7x7 dw (ConvNeXt)"), ("stack of 2", "WTConv k5 L3")]
    assert (tmp_path / "erf_wtconv.png").exists() and (tmp_path / "erf_wtconv.csv").exists()
    assert "WTConv k5 L3" in capsys.readouterr().out
    assert main(["erf", "--compare", "wtconvnext", "--samples", "1", "--input-size", "96", "--model-arg",
                 "depths=[1, 1, 1, 1]", "--model-arg", "dims=[8, 16, 24, 32]", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "erf_wtconvnext.json").read_text())
    assert [r["label"] for r in records] == ["WTConvNeXt-T (init)", "ConvNeXt-T (init)"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["erf"], "name a model"),
        (["erf", "mixer_dwtt"], "Did you mean 'mixer_dwt'"),
        (["erf", "mixer_dwt", "--block", "9"], "not a block"),
        (["erf", "mixer_mlp", "--input-size", "20"], "fixed 8x8 token grid"),
        (["erf", "mixer_dwt", "--compare"], "drop MODEL"),
        (["erf", "mixer_dwt", "--samples", "0"], "--samples must be >= 1"),
        (["erf", "wavemix_lite_8_10", "--data", "digits", "--model-arg", "in_chans=3"], "1-channel images"),
        (["erf", "--compare", "wtconv", "--checkpoint", "w.pth"], "layer stacks at initialisation"),
        (["erf", "--compare", "wtconv", "--input-size", "10", "20"], "square --input-size"),
        (["erf", "--compare", "wtconvnext", "--levels", "3"], "drop --levels/--depth"),
        (["erf", "mixer_dwt", "--baseline-checkpoint", "c.pth"], "--baseline-checkpoint is ConvNeXt-T's weights"),
    ],
)
def test_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavevision erf: error:") and message in err
