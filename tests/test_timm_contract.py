"""timm's model checks for every registered model, created through timm's own factory.

``wavevision.register_timm()`` puts every wavevision model in timm's registry; each test below
is one of the checks of timm's ``tests/test_models.py`` (timm 1.0.31) applied to
``timm.create_model(name, ...)``: forward (with grad checkpointing), backward, default cfgs,
``features_only`` (the default feature class and ``feature_cls="getter"``),
``forward_intermediates``, and ``torch.fx`` forward/backward through torchvision's feature
extractor with timm's tracer settings. Differences from timm's file, all for the 2-core CI
budget or for models its checks were not written for:

* models are built with fewer blocks (``tests/_small.py``; four for WaveMix in the feature checks, two in the others), WaveMix at most
  32 channels wide, and run at smaller inputs (``TARGET`` below instead of timm's 96-384)
  through timm's own input-size rule;
* dense models (segmentation, super-resolution) have no pooled head: where timm checks the
  last axis of pooled logits they are checked on the channel axis of their maps, and the
  global-pool parts of the cfg check do not apply to them;
* Wave-ViT, a transformer, gets timm's "non-standard" cfg check (tokens, not a map).
"""
from __future__ import annotations

import math

import pytest
import torch

import wavevision
from _slow import FEWER_MODELS, model_cases, small_build_cases

from _optional import require
from _small import small_overrides, timm_models

NAMES = timm_models()
TARGET = 32  # timm: 384 (forward), 128 (backward, fx), 96 (features)
MAX_FWD_OUT_SIZE = 448


@pytest.fixture(scope="module")
def timm():
    mod = require("timm")
    wavevision.register_timm()
    return mod


def _task(name: str) -> str:
    return wavevision.get_entry(name).task


def _is_transformer(name: str) -> bool:
    return name.startswith("wave_vit")


def _small(name: str, depth: int = 4) -> dict:
    """Four blocks (timm's feature checks want at least three maps; the forward, backward and fx checks
    take two, as many graph nodes per block for half the time), WaveMix at most 32 channels wide."""
    overrides = small_overrides(name)
    if "depth" in overrides:
        overrides["depth"] = depth
    if name.startswith("wavemix") and wavevision.create_model(name, depth=1).num_features > 32:
        overrides.update(final_dim=32, ff_channel=32)
    return overrides


def _create(timm, name: str, depth: int = 4, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, **{**_small(name, depth), **kwargs})


def _input_size(timm, name: str, model=None, target: int | None = TARGET):
    """timm's ``_get_input_size``: the cfg's input size, capped at ``target`` (or its minimum size)."""
    if model is None:
        get = lambda k: timm.models.get_pretrained_cfg_value(name, k)  # noqa: E731
    else:
        get = model.default_cfg.get
    input_size, fixed, minimum = get("input_size"), get("fixed_input_size"), get("min_input_size")
    assert input_size is not None
    if fixed:
        return tuple(input_size)
    if target and max(input_size) > target:
        return tuple(minimum) if minimum else tuple(min(s, target) for s in input_size)
    return tuple(input_size)


def _class_axis(name: str, out: torch.Tensor) -> int:
    return -1 if _task(name) == "classification" else 1


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_model_forward(timm, name):
    model = _create(timm, name, depth=2).eval()
    x = torch.randn(1, *_input_size(timm, name, model))
    with torch.no_grad():
        out = model(x)
        assert out.shape[0] == 1 and not torch.isnan(out).any()
        if hasattr(model, "set_grad_checkpointing"):  # timm: optional here (tests/test_grad_checkpointing.py requires it)
            model.set_grad_checkpointing()
            torch.testing.assert_close(model(x), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_model_backward(timm, name):
    size = _input_size(timm, name)
    model = _create(timm, name, depth=2, num_classes=42).train()
    # Parameters stored but not trained (WTConv's wavelet filters, requires_grad=False) get no gradient.
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = model(torch.randn(2, *size))
    if isinstance(out, tuple):
        out = torch.cat(out)
    out.mean().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, f"no gradient for {n}"
    assert num_params == sum(p.grad.numel() for p in model.parameters() if p.grad is not None)
    assert out.shape[_class_axis(name, out)] == 42
    assert not torch.isnan(out).any()


def _check_first_conv_and_classifier(model):
    cfg, sd = model.default_cfg, model.state_dict()
    if cfg.get("num_classes"):
        classifier = cfg["classifier"]
        for c in (classifier,) if isinstance(classifier, str) else classifier:
            assert c + ".weight" in sd, f"{c} not in model params"
    first_conv = cfg["first_conv"]
    for fc in (first_conv,) if isinstance(first_conv, str) else first_conv:
        assert fc + ".weight" in sd, f"{fc} not in model params"


def _check_cfg_std(timm, name, model, x):
    pool_size = model.default_cfg["pool_size"]
    feats = model.forward_features(x)
    pre = model.forward_head(feats, pre_logits=True)
    assert tuple(feats.shape[-2:]) == tuple(pool_size), f"unpooled feature shape {feats.shape} != config {pool_size}"
    assert feats.shape[1] == model.num_features
    assert pre.shape[1] == model.head_hidden_size
    model.reset_classifier(0)
    assert model.num_classes == 0
    out = model(x)
    assert out.shape[1] == model.head_hidden_size and out.shape == pre.shape
    if _task(name) != "classification":
        return  # dense outputs: no global pooling to remove
    assert out.dim() == 2
    model.reset_classifier(0, "")
    out = model(x)
    assert out.dim() == 4 and tuple(out.shape[-2:]) == tuple(pool_size)
    model = _create(timm, name, num_classes=0, global_pool="").eval()
    out = model(x)
    assert out.dim() == 4 and tuple(out.shape[-2:]) == tuple(pool_size)


def _check_cfg_non_std(timm, name, model):
    x = torch.randn(1, *_input_size(timm, name, model, target=None))
    feats = model.forward_features(x)
    pre = model.forward_head(feats, pre_logits=True)
    assert feats.shape[-1 if feats.dim() == 3 else 1] == model.num_features
    assert pre.shape[1] == model.head_hidden_size
    model.reset_classifier(0)
    assert model.num_classes == 0
    out = model(x)
    assert out.shape[-1 if out.dim() == 3 else 1] == model.head_hidden_size and out.shape == pre.shape
    model = _create(timm, name, num_classes=0).eval()
    assert model(x).shape[-1] == model.num_features


@pytest.mark.parametrize("name", model_cases(NAMES, fast=FEWER_MODELS))
def test_model_default_cfgs(timm, name):
    model = _create(timm, name).eval()
    assert model.num_classes >= 0 and model.num_features > 0 and model.head_hidden_size > 0
    _check_first_conv_and_classifier(model)
    with torch.no_grad():
        if _is_transformer(name):
            _check_cfg_non_std(timm, name, model)
            return
        input_size = model.default_cfg["input_size"]
        if all(s <= MAX_FWD_OUT_SIZE for s in input_size):  # timm checks output sizes up to 448 only
            _check_cfg_std(timm, name, model, torch.randn(1, *input_size))


def _check_feature_maps(model, outputs, size, batch=1):
    channels, reductions = model.feature_info.channels(), model.feature_info.reduction()
    assert len(channels) == len(outputs)
    for c, r, o in zip(channels, reductions, outputs):
        assert o.shape[0] == batch and o.shape[1] == c
        assert o.shape[2] <= math.ceil(size[-2] / r) + 1 and o.shape[3] <= math.ceil(size[-1] / r) + 1
        assert not torch.isnan(o).any()


@pytest.mark.parametrize("feature_cls", [None, "getter"])
@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_model_forward_features(timm, name, feature_cls):
    model = _create(timm, name, features_only=True, feature_cls=feature_cls).eval()
    assert len(model.feature_info.channels()) >= 3
    size = _input_size(timm, name, model)
    with torch.no_grad():
        _check_feature_maps(model, model(torch.randn(1, *size)), size)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_model_forward_intermediates(timm, name):
    model = _create(timm, name).eval()
    if min(model.feature_info.reduction()) >= 1:  # timm's FeatureInfo asserts reduction >= 1: WaveMixSR's maps are upsampled
        timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    assert len(model.feature_info.channels()) >= 3
    size = _input_size(timm, name, model)
    x = torch.randn(1, *size)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x, output_fmt="NCHW")
        _check_feature_maps(model, maps, size)
        torch.testing.assert_close(final, model.forward_features(x))
        if hasattr(model, "set_grad_checkpointing"):
            model.set_grad_checkpointing()
            torch.testing.assert_close(model.forward_intermediates(x, output_fmt="NCHW")[0], final, rtol=1e-4, atol=1e-5)


def _fx_model(timm, model, train: bool = False):
    """timm's ``_create_fx_model``: torchvision's feature extractor returning the graph's output nodes."""
    fe = require("torchvision.models.feature_extraction")
    kwargs = dict(leaf_modules=timm.models.get_notrace_modules(), autowrap_functions=timm.models.get_notrace_functions(),
                  param_shapes_constant=True)
    train_nodes, eval_nodes = fe.get_graph_node_names(model, tracer_kwargs=kwargs)
    train_return, eval_return = [train_nodes[-1]], [eval_nodes[-1]]
    if train:
        graph = fe.NodePathTracer(**kwargs).trace(model)
        nodes = list(reversed(graph.nodes))
        outputs = [n.name for n in nodes[0]._input_nodes.keys()]
        names = [n.name for n in nodes]
        train_return = [train_nodes[-names.index(n)] for n in outputs]
    return fe.create_feature_extractor(model, train_return_nodes=train_return, eval_return_nodes=eval_return,
                                       tracer_kwargs=kwargs)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_model_forward_fx(timm, name):
    model = _create(timm, name, depth=2).eval()
    x = torch.randn(1, *_input_size(timm, name, model))
    with torch.inference_mode():
        out = model(x)
        fx_out = torch.cat(tuple(_fx_model(timm, model)(x).values()))
    assert torch.equal(fx_out, out)
    assert not torch.isnan(out).any()


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_model_backward_fx(timm, name):
    size = _input_size(timm, name)
    model = _create(timm, name, depth=2, num_classes=42).train()
    # Parameters stored but not trained (WTConv's wavelet filters, requires_grad=False) get no gradient.
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fx = _fx_model(timm, model, train=True)
    out = torch.cat(tuple(fx(torch.randn(2, *size)).values()))
    out.mean().backward()
    for n, p in fx.named_parameters():
        assert (p.grad is not None) == p.requires_grad, f"no gradient for {n}"
    assert num_params == sum(p.grad.numel() for p in fx.parameters() if p.grad is not None)
    assert out.shape[_class_axis(name, out)] == 42 and not torch.isnan(out).any()


# ------------------------------------------------------------------------------------
# timm's tools on wavevision models (beyond its model checks)


@pytest.mark.slow
def test_registration_is_idempotent_and_lazy(timm):
    assert wavevision.register_timm() == []  # the fixture registered everything already
    assert set(NAMES) <= set(timm.list_models("*"))
    assert "wave_vit_s.in1k_384" in timm.list_pretrained("wave_vit_s*") or \
        timm.models.get_pretrained_cfg("wave_vit_s.in1k_384").input_size == (3, 384, 384)
    import subprocess
    import sys

    code = "import sys, wavevision; assert 'timm' not in sys.modules; import wavevision.integrations.timm; " \
           "assert 'wavemix' in sys.modules['timm'].list_models('wavemix')"
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import wavevision; names = wavevision.register_timm(); assert len(names) == len(wavevision.list_models()), " \
           "names; assert wavevision.register_timm() == []"  # the first call returns every name it registered
    subprocess.run([sys.executable, "-c", code], check=True)


def test_resolve_data_config_and_transform_follow_the_record(timm):
    from PIL import Image

    model = timm.create_model("wavemix_lite_8_10")
    cfg = timm.data.resolve_data_config(model=model)
    assert cfg["input_size"] == (1, 28, 28) and cfg["mean"] == (0.1307,) and cfg["std"] == (0.3081,)
    assert cfg["interpolation"] == "bilinear" and cfg["crop_pct"] == 1.0
    assert timm.data.resolve_data_config({}, model=timm.create_model("wave_vit_s.in1k_384"))["input_size"] == (3, 384, 384)
    transform = timm.data.create_transform(**cfg)
    image = Image.fromarray((torch.rand(40, 36) * 255).byte().numpy(), mode="L")
    x = transform(image)
    assert x.shape == (1, 28, 28)
    with torch.no_grad():
        assert model.eval()(x[None]).shape == (1, 10)
    assert timm.models.get_pretrained_cfg_value("wavemix_192_16_l3", "input_size") == (3, 224, 224)


def test_create_model_arguments_reach_the_builder(timm):
    model = timm.create_model("wavemix_lite_8_10", num_classes=3, in_chans=3, drop_rate=0.2, drop_path_rate=0.1,
                              global_pool="max")
    assert (model.num_classes, model.in_chans, model.global_pool) == (3, 3, "max")
    assert model.drop_path_rates[-1] == pytest.approx(0.1)
    backbone = timm.create_model("wave_vit_s", features_only=True, out_indices=(1, 3), depths=(1, 1, 1, 1))
    assert backbone.feature_info.channels() == [128, 448] and backbone.feature_info.reduction() == [8, 32]
    cfg_kw = timm.create_model("wave_vit_s", features_only=True, feature_cfg=dict(out_indices=(2,)), depths=(1, 1, 1, 1))
    assert cfg_kw.feature_info.reduction() == [16]
    with pytest.raises(ValueError, match="does not support global_pool='token'"):
        timm.create_model("wavemix_lite_8_10", global_pool="token")
    vit = timm.create_model("wave_vit_s", depths=(1, 1, 1, 1)).train()
    assert isinstance(vit(torch.rand(2, 3, 32, 32)), torch.Tensor)  # plain logits for timm's training loop


def test_pretrained_and_load_checkpoint_through_timm(timm, tmp_path):
    torch.manual_seed(0)
    ours = wavevision.create_model("wavemix_lite_8_10").eval()
    path = wavevision.save_checkpoint(ours, tmp_path / "w.safetensors")
    x = torch.rand(2, 1, 28, 28)
    loaded = timm.create_model("wavemix_lite_8_10", pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    fresh = timm.create_model("wavemix_lite_8_10").eval()
    timm.models.load_checkpoint(fresh, str(path))  # timm's own safetensors reader
    via_path = timm.create_model("wavemix_lite_8_10", checkpoint_path=str(path)).eval()
    with torch.no_grad():
        ref = ours(x)
        for m in (loaded, fresh, via_path):
            assert torch.equal(m(x), ref)


def test_timm_feature_getter_wraps_our_models(timm):
    model = _create(timm, "wavemix_192_16_l3").eval()
    ref = _create(timm, "wavemix_192_16_l3").eval()
    from timm.models._features import FeatureGetterNet

    wrapped = FeatureGetterNet(model, out_indices=(1, 3))  # prunes, then forward_intermediates
    assert wrapped.feature_info.channels() == [32, 32] and len(model.layers) == 4
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(wrapped(x), ref.forward_intermediates(x, indices=(1, 3), intermediates_only=True)):
            assert torch.equal(a, b)


def test_timm_optimizer_factory_uses_group_matcher_and_no_weight_decay(timm):
    from timm.optim import create_optimizer_v2

    model = timm.create_model("wavemix_lite_8_10", depth=3)
    opt = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    scales = sorted({g["lr_scale"] for g in opt.param_groups})
    assert len(scales) == 5  # stem, three blocks, head
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    vit = timm.create_model("wave_vit_s", depths=(1, 1, 1, 1))
    opt = create_optimizer_v2(vit, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    assert len({g["lr_scale"] for g in opt.param_groups}) > 4
