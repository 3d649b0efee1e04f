"""Every registered model: forward, backward, state dict, parameter count, sizes, interface."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import wavevision
from _slow import model_cases, small_build_cases
from wavevision.layers import WaveMixBlock
from wavevision.models import UperNet, WaveViT, WTConvNeXt
from wavevision.ops import haar as haar_mod

from _small import small_model, takes_depth, timm_models

NAMES = timm_models()


def _task(name):
    return wavevision.get_entry(name).task


def _build(name, seed=0, **kw):
    """The registered model with fewer blocks; width, level, stem and head are the registered ones."""
    return small_model(name, seed, **kw)


def _narrow(name, seed=0):
    """Depth 1 and, for the wide models, final_dim 32 (the configuration the stored outputs were made with)."""
    if not takes_depth(name):
        return small_model(name, seed)
    kw = dict(depth=1)
    if _task(name) != "classification" or name in ("wavemix", "wavemix_lite") or any(s in name for s in ("192", "144", "112")):
        kw.update(final_dim=32, ff_channel=32)
    torch.manual_seed(seed)
    return wavevision.create_model(name, **kw)


def _hw(model, h, w):
    """(h, w) for models without a minimum input size; shifted by the minimum (32 for Wave-ViT) otherwise,
    so sizes stay not divisible by the model's strides."""
    m = getattr(model, "min_input_size", 0)
    return (h + m, w + m) if m else (h, w)


def _outputs(out):
    """The tensors a forward returned (a token-labeling Wave-ViT returns class and per-token logits in training)."""
    return [out] if isinstance(out, torch.Tensor) else [out.logits, out.aux_logits]


def _input(model, h=None, w=None, n=2, seed=1, dtype=torch.float32):
    """n images of h x w pixels; by default 32 x 32, or the model's minimum where larger (WTConvNeXt: 96)."""
    side = max(32, getattr(model, "min_input_size", 0))
    h, w = h or side, w or side
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, model.in_chans, h, w, generator=g, dtype=torch.float64).to(dtype)


def _expected_shape(name, model, n, h, w):
    task = _task(name)
    if task == "classification":
        return (n, model.num_classes)
    if task == "segmentation":
        return (n, model.num_classes, h, w)
    return (n, model.in_chans, model.scale * h, model.scale * w)


def _feature_shape(name, model, n, h, w):
    """Shape of forward_features for an (h, w) input: a map, or Wave-ViT's class token + stage-4 tokens."""
    if isinstance(model, WaveViT):
        return (n, 1 + (-(-h // 32)) * (-(-w // 32)), model.num_features)
    return (n, model.num_features, *_feature_size(name, model, h, w))


def _feature_size(name, model, h, w, index=-1):
    """Spatial size of block ``index``'s map for an (h, w) input."""
    task = _task(name)
    if isinstance(model, WTConvNeXt):  # unpadded strided convs: floor(size / stride), as ConvNeXt
        r = model.feature_info[index]["reduction"]
        return h // r, w // r
    if isinstance(model, UperNet):  # the decoder fuses at the finest stage map's stride
        r = model.feature_info[0]["reduction"]
        return -(-h // r), -(-w // r)
    if task == "super_resolution":  # at the input's size, or upsampled first (WaveMixSR: reduction 1/2, 1/4, ...)
        r = model.feature_info[index]["reduction"]
        return round(h / r), round(w / r)
    if task == "segmentation":
        s = model.stride
        return _ceil(_ceil(h, s), s), _ceil(_ceil(w, s), s)
    if model.stem_type == "patchify":
        p = model.patch_size
        return -(-h // p), -(-w // p)
    s = model.conv[0].stride[0]
    return _ceil(_ceil(h, s), s), _ceil(_ceil(w, s), s)


def _ceil(a, b):
    return -(-a // b)


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------
# Registered defaults


@pytest.mark.parametrize("name", model_cases(NAMES))
def test_parameter_count_of_registered_default(name):
    entry = wavevision.get_entry(name)
    assert isinstance(entry.params, int)
    with torch.device("meta"):  # the full-size build's parameters, without allocating or initialising them
        model = wavevision.create_model(name)
    assert _n_params(model) == entry.params
    assert model.model_name == name and model.model_kwargs == {}


def test_list_models_filters():
    lite = wavevision.list_models("wavemix_lite*")
    assert lite and all(n.startswith("wavemix_lite") for n in lite)
    assert {"wavemix_lite", "wavemix_lite_8_10"} <= set(lite)
    assert lite == sorted(lite)
    seg = wavevision.list_models(task="segmentation")
    assert {"wavemix_seg", "wavemix_seg_256_16_l4"} <= set(seg)
    assert all(wavevision.get_entry(n).task == "segmentation" for n in seg)
    assert set(seg) == {n for n in NAMES if _task(n) == "segmentation"}
    assert set(NAMES) | set(wavevision.list_models(task="detection")) == set(wavevision.list_models("*"))
    for task in ("classification", "segmentation", "super_resolution", "detection"):
        assert wavevision.list_models(task=task)


# ------------------------------------------------------------------------------------
# Per-model behaviour on small builds


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_forward_shape_and_finite(name):
    model = _build(name).eval()
    x = _input(model)
    with torch.no_grad():
        out = model(x)
    assert out.shape == _expected_shape(name, model, 2, *x.shape[-2:])
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_backward_finite_grads(name):
    model = _build(name).train()
    x = _input(model).requires_grad_()
    out = model(x)
    sum(o.square().mean() for o in _outputs(out)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    params = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    assert params
    for k, p in params:
        assert p.grad is not None, f"{k} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{k} has a non-finite gradient"


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_state_dict_round_trip(name):
    a, b = _build(name, seed=0).eval(), _build(name, seed=1).eval()
    x = _input(a)
    with torch.no_grad():
        assert not torch.equal(a(x), b(x))
        b.load_state_dict(a.state_dict())
        assert torch.equal(a(x), b(x))
    assert a.state_dict().keys() == b.state_dict().keys()


@pytest.mark.parametrize("name", small_build_cases(NAMES))
@pytest.mark.parametrize("size", [(33, 27), (37, 45), (65, 33), (3, 5), (1, 1)])
def test_odd_sizes(name, size):
    model = _build(name).eval()
    minimum = getattr(model, "min_input_size", 1)
    if min(size) < minimum:  # Wave-ViT: below one stride-32 cell the error names the minimum
        with pytest.raises(ValueError, match=rf"too small.*minimum is {minimum}x{minimum}"):
            model(_input(model, *size, n=1))
        return
    with torch.no_grad():
        out = model(_input(model, *size, n=1))
    assert out.shape == _expected_shape(name, model, 1, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_channels_last_matches(name):
    model = _build(name).eval()
    x = _input(model, *_hw(model, 20, 24))
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out.contiguous(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_eval_is_deterministic(name):
    model = _build(name).eval()
    x = _input(model, *_hw(model, 24, 20))
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_features_head_and_reset_classifier(name):
    model = _build(name).eval()
    task = _task(name)
    n, (h, w) = 2, _hw(model, 16, 16)
    x = _input(model, h, w)
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_features(x)
        assert feats.shape == _feature_shape(name, model, n, h, w)
        # forward pools the channels-last map of CPU inference, forward_features returns it in the
        # input's (NCHW) layout: the same numbers summed in another order
        torch.testing.assert_close(model.forward_head(feats), logits, atol=1e-6, rtol=1e-5)
        pre = model.forward_head(feats, pre_logits=True)
        if task == "classification":
            assert pre.shape == (n, model.num_features)
            # WaveMix pools the map; Wave-ViT's pre-logits are its (normalised) class token, WTConvNeXt's
            # the pooled map normalised (ConvNeXt's head: pool, LayerNorm, classifier).
            want = feats[:, 0] if isinstance(model, WaveViT) else feats.mean((2, 3))
            if isinstance(model, WTConvNeXt):
                want = torch.nn.functional.layer_norm(want, want.shape[-1:], model.head.norm.weight, model.head.norm.bias,
                                                      1e-6)
            torch.testing.assert_close(pre, want)
        assert model.get_classifier() is not None

        model.reset_classifier(0)
        assert model.num_classes == 0
        out = model(x)
        if task == "classification":
            assert out.shape == (n, model.num_features)
            torch.testing.assert_close(out, pre, atol=1e-6, rtol=1e-5)  # with gradients: NCHW, not channels-last
        elif task == "segmentation":
            assert out.shape == (n, model.head_hidden_size, h, w)  # the decoder's last width
        else:
            assert out.shape == (n, model.head_hidden_size, model.scale * h, model.scale * w)
        assert torch.isfinite(out).all()

        model.reset_classifier(7)
        assert model.num_classes == 7
        assert model(x).shape == {
            "classification": (n, 7),
            "segmentation": (n, 7, h, w),
            "super_resolution": (n, 7, getattr(model, "scale", 1) * h, getattr(model, "scale", 1) * w),
        }[task]


def _check_wave_vit_intermediates(model):
    """Wave-ViT's intermediates are its four normalised stage maps, cropped to ceil(size / stride)
    (UperNet's are its Wave-ViT backbone's, with the decoder's fused map as the final output);
    WTConvNeXt's are its four stage maps, floor(size / stride) (unpadded strided convs, as ConvNeXt)."""
    n, (h, w) = 1, _hw(model, 16, 12)
    floors = isinstance(model, WTConvNeXt) or isinstance(getattr(model, "backbone", None), WTConvNeXt)  # its UperNet too
    size = (lambda a, s: a // s) if floors else (lambda a, s: -(-a // s))
    x = _input(model, h, w, n=n)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert len(maps) == len(model.feature_info) == 4
        for m, info in zip(maps, model.feature_info):
            s = info["reduction"]
            assert m.shape == (n, info["num_chs"], size(h, s), size(w, s))
        torch.testing.assert_close(final, model.forward_features(x), atol=0, rtol=0)
        if isinstance(model, WaveViT):  # the last map is the final tokens (after the class token) on their grid
            torch.testing.assert_close(maps[-1].flatten(2).transpose(1, 2), final[:, 1:], atol=1e-6, rtol=1e-6)
        only = model.forward_intermediates(x, intermediates_only=True)
        for a, b in zip(only, maps):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
        for indices, want in (([-1], [3]), ([0], [0]), (2, [2, 3]), ([2, 0], [0, 2])):
            got = model.forward_intermediates(x, indices=indices, intermediates_only=True)
            assert len(got) == len(want)
            for a, i in zip(got, want):
                torch.testing.assert_close(a, maps[i], atol=0, rtol=0)


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_forward_intermediates(name):
    if not takes_depth(name):
        _check_wave_vit_intermediates(_build(name).eval())
        return
    model = _build(name, depth=2).eval()
    n, h, w = 1, 16, 12
    x = _input(model, h, w, n=n)
    with torch.no_grad():
        feats = model.forward_features(x)
        final, maps = model.forward_intermediates(x)
        assert isinstance(maps, list) and len(maps) == len(model.feature_info)
        assert len(maps) >= 2  # depth 2 (per x2 stage for WaveMixSR-V2)
        for i, m in enumerate(maps):
            assert m.shape == (n, model.num_features, *_feature_size(name, model, h, w, i))
        torch.testing.assert_close(final, feats, atol=0, rtol=0)
        torch.testing.assert_close(maps[-1], final, atol=0, rtol=0)
        assert not torch.equal(maps[0], maps[1])

        only = model.forward_intermediates(x, intermediates_only=True)
        assert isinstance(only, list) and len(only) == len(maps)
        for a, b in zip(only, maps):
            torch.testing.assert_close(a, b, atol=0, rtol=0)

        last = model.forward_intermediates(x, indices=[-1], intermediates_only=True)
        assert len(last) == 1
        torch.testing.assert_close(last[0], maps[-1], atol=0, rtol=0)
        first = model.forward_intermediates(x, indices=[0], intermediates_only=True)
        torch.testing.assert_close(first[0], maps[0], atol=0, rtol=0)
        last_n = model.forward_intermediates(x, indices=1, intermediates_only=True)
        torch.testing.assert_close(last_n[0], maps[-1], atol=0, rtol=0)


@pytest.mark.parametrize("name", small_build_cases(NAMES))
def test_double_and_bfloat16_run(name):
    model = _build(name).eval()
    x = _input(model, *_hw(model, 16, 16))
    with torch.no_grad():
        ref = model(x)
        out64 = model.double()(_input(model, *_hw(model, 16, 16), dtype=torch.float64))
        assert out64.dtype == torch.float64
        torch.testing.assert_close(out64.float(), ref, atol=1e-4, rtol=1e-4)
        out16 = model.to(torch.bfloat16)(x.bfloat16())
    assert out16.dtype == torch.bfloat16
    assert out16.shape == ref.shape and torch.isfinite(out16.float()).all()


def test_bfloat16_close_to_float32():
    model = _build("wavemix_lite_8_10", depth=2).eval()
    x = _input(model, 28, 28, n=4)
    with torch.no_grad():
        ref = model(x)
        out = model.to(torch.bfloat16)(x.bfloat16()).float()
    scale = ref.abs().max().item()
    # bfloat16 keeps 8 mantissa bits: a few tenths of a percent per op; 2 % of the logit range is loose.
    assert (out - ref).abs().max().item() <= 0.02 * scale


# ------------------------------------------------------------------------------------
# Block generality


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
def test_any_level_computes_each_haar_level_once(level, monkeypatch):
    model = wavevision.create_model("wavemix", level=level, depth=1, final_dim=16, ff_channel=16, num_classes=3).eval()
    block = model.layers[0]
    names = {n for n, _ in block.named_children()}
    mlps = {"feedforward"} if level == 1 else {f"feedforward{j}" for j in range(1, level + 1)}
    assert names == mlps | {"reduction"}
    assert len(block.mlps()) == level

    dwt_calls, idwt_calls = [], []
    dwt_apply, idwt_apply = haar_mod._HaarDWT.apply, haar_mod._HaarIDWT.apply

    def counting_dwt(*args, **kwargs):
        dwt_calls.append(tuple(args[0].shape))
        return dwt_apply(*args, **kwargs)

    def counting_idwt(*args, **kwargs):
        idwt_calls.append(1)
        return idwt_apply(*args, **kwargs)

    monkeypatch.setattr(haar_mod._HaarDWT, "apply", counting_dwt)
    monkeypatch.setattr(haar_mod._HaarIDWT, "apply", counting_idwt)
    for size in [(64, 64), (50, 70)]:
        dwt_calls.clear()
        with torch.no_grad():
            out = model(torch.rand(1, 3, *size))
        assert out.shape == (1, 3) and torch.isfinite(out).all()
        assert len(dwt_calls) == level, dwt_calls
        # Each call halves the previous level's output: a pyramid, not a recomputation.
        for a, b in zip(dwt_calls, dwt_calls[1:]):
            assert b[-2:] == (a[-2] // 2, a[-1] // 2)
    assert idwt_calls == []


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_block_keeps_any_input_size(level):
    torch.manual_seed(0)
    block = WaveMixBlock(dim=16, level=level, mult=2, ff_channel=16).eval()
    for size in [(1, 1), (5, 3), (13, 18), (16, 16)]:
        with torch.no_grad():
            assert block(torch.rand(2, 16, *size)).shape == (2, 16, *size)


@pytest.mark.parametrize("upsample,has_params", [("bilinear", False), ("nearest", False), ("convtranspose", True)])
@pytest.mark.parametrize("level", [1, 2])
def test_upsample_choices(upsample, has_params, level):
    model = wavevision.create_model("wavemix_lite", depth=1, final_dim=16, ff_channel=16, level=level, upsample=upsample)
    for mlp in model.layers[0].mlps():
        up = mlp[4]
        assert (sum(p.numel() for p in up.parameters()) > 0) == has_params
        if not has_params:
            assert isinstance(up, torch.nn.Upsample) and up.mode == upsample
        else:
            assert isinstance(up, torch.nn.ConvTranspose2d)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, 9, 11)).shape == (1, 1000)


def test_expected_output_is_stable():
    """A seeded model's output on a fixed input; catches silent changes to the math."""
    torch.manual_seed(0)
    model = wavevision.create_model("wavemix_lite_8_10").eval()
    x = torch.linspace(0, 1, 28 * 28).reshape(1, 1, 28, 28)
    with torch.no_grad():
        y = model(x)
        # The same computation written out by hand with the public-package semantics.
        h = model.conv(x)
        for blk in model.layers:
            r = haar_mod.haar_dwt2(blk.reduction(h))
            h = blk.feedforward(r) + h
        torch.testing.assert_close(y, model.pool[2](h.mean((2, 3))))


EXPECTED = Path(__file__).parent / "data" / "expected_outputs.json"


@pytest.mark.parametrize("name", model_cases(NAMES))
def test_expected_outputs(name, regen_expected):
    """A seeded small model's output on a fixed input against a stored copy (``--regen-expected`` rewrites it)."""
    model = _narrow(name).eval()
    h, w = _hw(model, 16, 16)
    n = model.in_chans * h * w
    x = torch.linspace(-1, 1, n, dtype=torch.float64).reshape(1, model.in_chans, h, w).float()
    with torch.no_grad():
        out = model(x).flatten()[:8].tolist()
    stored = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    if regen_expected:
        stored[name] = out
        EXPECTED.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    assert name in stored, f"no stored output for {name}: run pytest tests/test_models.py --regen-expected"
    torch.testing.assert_close(torch.tensor(out), torch.tensor(stored[name]), atol=1e-5, rtol=1e-4)
