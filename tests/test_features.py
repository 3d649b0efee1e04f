"""timm's model interface on our own: builder arguments, backbones, intermediates, heads, weights.

What timm's factory passes (``features_only``, ``out_indices``, ``feature_cls``, ``global_pool``,
``drop_rate``, ``drop_path_rate``, ``pretrained`` with a record's ``file``, ...) checked without
timm installed; ``tests/test_timm_contract.py`` runs timm's own checks through timm.
"""
from __future__ import annotations

import re

import pytest
import torch

import wavevision
from _slow import FEWER_MODELS, small_build_cases

from _small import small_model, takes_depth, timm_models

NAMES = timm_models()


def _x(model, n=2, side=None, seed=1):
    side = side or getattr(model, "min_input_size", 0) or 16
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, model.in_chans, side, side, generator=g)


def _deep(name, **kw):
    """A small build with five blocks (Wave-ViT: its four stages)."""
    return small_model(name, **({"depth": 5} if takes_depth(name) else {}), **kw)


# ------------------------------------------------------------------------------------
# Backbones: features_only, out_indices, forward_intermediates, prune_intermediate_layers


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_features_only_returns_the_full_models_intermediates(name):
    full = _deep(name).eval()
    backbone = _deep(name, features_only=True).eval()
    n = len(full.feature_info)
    want = list(range(max(0, n - 4), n))  # the last four maps by default, as timm's getter
    assert backbone.features_only and list(backbone.out_indices) == want
    assert backbone.feature_info.channels() == full.feature_info.channels(want)
    assert backbone.feature_info.reduction() == full.feature_info.reduction(want)
    assert set(backbone.state_dict()) <= set(full.state_dict())
    backbone.load_state_dict({k: v for k, v in full.state_dict().items() if k in backbone.state_dict()})
    x = _x(full)
    with torch.no_grad():
        maps = backbone(x)
        ref = full.forward_intermediates(x, indices=want, intermediates_only=True)
    assert len(maps) == len(want)
    for m, r, c in zip(maps, ref, backbone.feature_info.channels()):
        assert m.shape[1] == c and torch.equal(m, r)
    assert backbone.pretrained_cfg.get("num_classes") is None and "classifier" not in backbone.pretrained_cfg


@pytest.mark.parametrize("name", ["wavemix_lite_8_10", "wavemix_seg", "wave_vit_s"])
def test_out_indices_pick_and_prune(name):
    full = _deep(name).eval()
    n = len(full.feature_info)
    x = _x(full)
    with torch.no_grad():
        every = full.forward_intermediates(x, intermediates_only=True)
        for out_indices, want in (((0, 2), [0, 2]), ((-1,), [n - 1]), (2, [n - 2, n - 1])):
            backbone = _deep(name, features_only=True, out_indices=out_indices).eval()
            backbone.load_state_dict({k: v for k, v in full.state_dict().items() if k in backbone.state_dict()})
            assert list(backbone.out_indices) == want
            got = backbone(x)
            assert [torch.equal(a, every[i]) for a, i in zip(got, want)] == [True] * len(want)
        shallow = _deep(name, features_only=True, out_indices=(1,))  # blocks after the last map are dropped
        assert len(shallow.state_dict()) < len(_deep(name, features_only=True, out_indices=(n - 1,)).state_dict())


@pytest.mark.parametrize("name", ["wavemix_192_16_l3", "wave_vit_s", "wavemix_paper_sr"])
def test_forward_intermediates_timm_arguments(name):
    model = _deep(name).eval()
    x = _x(model)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        nhwc = model.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
        for a, b in zip(nhwc, maps):
            assert torch.equal(a, b.permute(0, 2, 3, 1))
        normed = model.forward_intermediates(x, norm=True, intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(normed, maps))  # every map already ends normalised
        early = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
        assert torch.equal(early[0], maps[0])
    with pytest.raises(ValueError, match="output_fmt: 'NLC' is not a valid choice.*NCHW, NHWC"):
        model.forward_intermediates(x, output_fmt="NLC")


def test_prune_intermediate_layers_like_timm():
    model = _deep("wavemix_lite_8_10").eval()
    assert model.prune_intermediate_layers((1, 2)) == [1, 2]
    assert len(model.layers) == 3 and len(model.feature_info) == 3 and model.num_classes == 0
    with torch.no_grad():
        assert model(_x(model)).dim() == 4  # head and pooling gone: the unpooled map
    vit = small_model("wave_vit_s")
    assert vit.prune_intermediate_layers(2, prune_head=True) == [2, 3]
    with pytest.raises(RuntimeError, match="has none.*prune_intermediate_layers"):
        vit.forward_features(_x(vit))
    vit = small_model("wave_vit_s")
    assert vit.prune_intermediate_layers([0, 1]) == [0, 1] and not hasattr(vit, "block3")


def test_backbone_loads_a_full_checkpoint(tmp_path):
    full = _deep("wavemix_lite_8_10").eval()
    path = wavevision.save_checkpoint(full, tmp_path / "full.safetensors")
    backbone = wavevision.create_model(checkpoint=path, features_only=True, out_indices=(2, 4)).eval()
    x = _x(full)
    with torch.no_grad():
        for a, b in zip(backbone(x), full.forward_intermediates(x, indices=[2, 4], intermediates_only=True)):
            assert torch.equal(a, b)
    again = wavevision.save_checkpoint(backbone, tmp_path / "backbone.safetensors")
    rebuilt = wavevision.create_model(checkpoint=again)  # a backbone checkpoint rebuilds as a backbone
    assert rebuilt.features_only and list(rebuilt.out_indices) == [2, 4]


# ------------------------------------------------------------------------------------
# Heads: reset_classifier(num_classes, global_pool), global_pool, head_hidden_size


def test_global_pool_choices_and_per_position_logits():
    model = small_model("wavemix_192_16_l3", depth=2, num_classes=7).eval()
    x = _x(model)
    with torch.no_grad():
        logits = model(x)
        assert model.head_hidden_size == model.num_features == 192
        classifier = model.get_classifier().state_dict()
        model.reset_classifier(7, global_pool="")
        model.get_classifier().load_state_dict(classifier)
        dense = model(x)  # the classifier at every position: its mean is the pooled logits (linearity)
        assert dense.shape == (2, 7, 4, 4)
        torch.testing.assert_close(dense.mean((2, 3)), logits, rtol=1e-5, atol=1e-5)
        model.reset_classifier(0, "max")
        assert torch.equal(model(x), model.forward_features(x).amax((2, 3)))
    built = small_model("wavemix_192_16_l3", depth=2, num_classes=0, global_pool="")
    assert built.eval()(x).shape == (2, 192, 4, 4)


@pytest.mark.parametrize("name,pool,choices", [
    ("wavemix_lite_8_10", "token", "'avg', 'max', ''"),
    ("wave_vit_s", "max", "'token', 'avg', ''"),
    ("wavemix_seg", "avg", "''"),
    ("wavemix_paper_sr", "avg", "''"),
])
def test_unsupported_global_pool_names_the_choices(name, pool, choices):
    with pytest.raises(ValueError, match=rf"does not support global_pool={pool!r}; choose one of {re.escape(choices)}"):
        small_model(name, global_pool=pool)
    model = small_model(name)
    with pytest.raises(ValueError, match="does not support global_pool"):
        model.reset_classifier(3, pool)


def test_wave_vit_pooling_and_head_dropout():
    model = small_model("wave_vit_s", num_classes=5, drop_rate=0.5).eval()
    x = _x(model)
    with torch.no_grad():
        feats = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats[:, 0])
        model.reset_classifier(0, "avg")
        torch.testing.assert_close(model(x), feats[:, 1:].mean(1))
        model.reset_classifier(0, "")
        torch.testing.assert_close(model(x), feats)
    assert model.head_hidden_size == model.num_features == 64


# ------------------------------------------------------------------------------------
# Builder arguments


def test_drop_rate_is_the_dropout_and_conflicts_are_refused():
    model = wavevision.create_model("wavemix_lite_8_10", drop_rate=0.3)
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}
    assert model.model_kwargs == {"drop_rate": 0.3}
    with pytest.raises(ValueError, match="drop_rate=0.3 and dropout=0.1 disagree"):
        wavevision.create_model("wavemix_lite_8_10", drop_rate=0.3, dropout=0.1)


def test_drop_path_rate_drops_residual_branches_in_training_only():
    a = small_model("wavemix_lite_8_10", depth=4, seed=0).train()
    b = small_model("wavemix_lite_8_10", depth=4, seed=0, drop_path_rate=0.9).train()
    assert b.drop_path_rates[0] == 0.0 and b.drop_path_rates[-1] == pytest.approx(0.9)
    x = _x(a, n=8)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))
    a.train(), b.train()
    torch.manual_seed(0)
    out_a = a(x)
    torch.manual_seed(0)
    assert not torch.allclose(b(x), out_a)
    with pytest.raises(ValueError, match=r"drop_path_rate must be < 1.0"):
        small_model("wavemix_lite_8_10", drop_path_rate=1.0)


@pytest.mark.parametrize("kw,match", [
    (dict(out_indices=(1,)), "out_indices and feature_cls apply to a backbone; pass features_only=True"),
    (dict(features_only=True, feature_cls="hook"), r"feature_cls='hook' is not supported; choose one of \('getter',\)"),
    (dict(features_only=True, out_indices=(7,)), r"block index 7 out of range for 5 blocks \(valid: -5\.\.4\)"),
    (dict(features_only=True, out_indices=9), r"indices=9 asks for the last 9 blocks of 5; choose 1\.\.5"),
    (dict(features_only=True, out_indices=()), "indices selects no block"),
    (dict(features_only="yes please"), "features_only must be true or false"),
])
def test_bad_backbone_arguments_name_the_choices(kw, match):
    with pytest.raises((ValueError, IndexError), match=match):
        small_model("wavemix_lite_8_10", depth=5, **kw)


def test_timm_interface_helpers():
    model = small_model("wavemix_lite_8_10", depth=3)
    matcher = model.group_matcher()
    names = [n for n, _ in model.named_parameters()]
    stem = [n for n in names if re.match(matcher["stem"], n)]
    blocks = [n for n in names if re.match(matcher["blocks"][0][0], n)]
    assert stem and all(n.startswith("conv.") for n in stem)
    assert {re.match(matcher["blocks"][0][0], n).group(1) for n in blocks} == {"0", "1", "2"}
    assert model.no_weight_decay() == set()
    vit = small_model("wave_vit_s")
    coarse = vit.group_matcher(coarse=True)
    assert {re.match(coarse["blocks"], n).group(1) for n, _ in vit.named_parameters()
            if re.match(coarse["blocks"], n)} == {"1", "2", "3", "4"}


# ------------------------------------------------------------------------------------
# pretrained=True: the weights a record names, adapted like timm


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = wavevision.create_model("wavemix_lite_8_10").eval()
    path = tmp_path / "mnist.pth"
    torch.save(model.state_dict(), path)  # the public package's format
    return model, path


def test_pretrained_loads_the_records_file(weights):
    model, path = weights
    x = torch.rand(2, 1, 28, 28)
    loaded = wavevision.create_model("wavemix_lite_8_10", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))
    assert loaded.pretrained_cfg["file"] == str(path)


def test_pretrained_with_other_classes_keeps_a_fresh_classifier(weights):
    model, path = weights
    loaded = wavevision.create_model("wavemix_lite_8_10", pretrained=True, num_classes=3,
                                     pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_features(x), model.forward_features(x), rtol=0, atol=0)
    assert loaded.get_classifier().weight.shape == (3, 8)


def test_pretrained_rgb_weights_adapt_to_one_channel(tmp_path):
    """Summed first-conv filters: the adapted model on a gray image equals the original on (g, g, g)."""
    torch.manual_seed(0)
    rgb = wavevision.create_model("wavemix_lite_32_7").eval()
    path = wavevision.save_checkpoint(rgb, tmp_path / "rgb.safetensors")
    gray = wavevision.create_model("wavemix_lite_32_7", pretrained=True, in_chans=1,
                                   pretrained_cfg_overlay=dict(file=str(path))).eval()
    g = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gray(g), rgb(g.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_pretrained_without_weights_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match=r"wavemix has no released weights .*wavevision.list_pretrained\(\) lists "
                                         r"the models that have them.*pretrained_cfg_overlay=dict\(file=PATH\)"):
        wavevision.create_model("wavemix", pretrained=True)
    with pytest.raises(ValueError, match=r"wavemix_lite_144_7.paper has no released weights.*tags with weights: "
                                         r"wavemix_lite_144_7.cifar10"):
        wavevision.create_model("wavemix_lite_144_7", pretrained=True,
                                pretrained_cfg=dict(tag="paper", hf_hub_id=None, hf_hub_filename=None))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wavevision.create_model("wavemix_lite_8_10", pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / "x.pth")))
    with pytest.raises(ValueError, match="either pretrained=True .* or checkpoint=PATH"):
        wavevision.create_model("wavemix_lite_8_10", pretrained=True, checkpoint=tmp_path / "x.pth")


# ------------------------------------------------------------------------------------
# Padding is bounded by the input size


def test_a_pyramid_far_deeper_than_the_map_is_refused():
    model = wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, level=8).eval()
    with pytest.raises(ValueError, match=r"level 8 is too deep for the 8x8 map.*pad the map to 256x256.*use level <= 7"):
        model(torch.rand(1, 3, 32, 32))
    with torch.no_grad():  # the same model takes inputs its pyramid fits (16x16 maps: 16 x 16 >= 2^8)
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
    absurd = wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, level=40).eval()
    with pytest.raises(ValueError, match="level 40 is too deep"):  # refused before any allocation
        absurd(torch.rand(1, 3, 224, 224))
    shallow = wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, level=4).eval()
    with torch.no_grad():
        assert shallow(torch.rand(1, 3, 1, 1)).shape == (1, 1000)  # 1x1 maps: up to 16x padding is fine


def test_padding_that_cannot_fit_in_memory_is_refused_before_allocating(monkeypatch):
    import wavevision.ops.padding as padding

    monkeypatch.setattr(padding, "check_memory", lambda need, what, fix: (_ for _ in ()).throw(
        MemoryError(f"{what} would need about {need / 2**30:.1f} GiB; {fix}")))
    monkeypatch.setattr(padding, "_CHECK_BYTES", 0)
    model = wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, level=5).eval()
    with pytest.raises(MemoryError, match=r"level-5 pyramid of the 9x9 map padded to 32x32.*smaller level"):
        model(torch.rand(1, 3, 36, 36))


@pytest.mark.parametrize("name, out_indices, expected", [("wave_vit_s", (3, 1), [1, 3]),
                                                     ("wavemix_lite_8_10", (2, 2, -1, 0), [0, 2, 9])])
def test_feature_info_describes_the_maps_for_unsorted_or_repeated_indices(name, out_indices, expected):
    """Maps come out in block order, once each; ``out_indices`` and ``feature_info`` say the same."""
    kw = {"depths": (1, 1, 1, 1), "embed_dims": (16, 32, 48, 64), "num_heads": (1, 2, 3, 4)} if name == "wave_vit_s" else {}
    model = wavevision.create_model(name, features_only=True, out_indices=out_indices, **kw).eval()
    with torch.no_grad():
        maps = model(torch.rand(1, model.in_chans, 64, 64))
    assert list(model.out_indices) == expected and len(maps) == len(expected)
    assert [m.shape[1] for m in maps] == model.feature_info.channels()
