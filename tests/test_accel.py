"""``wavevision.accel.accelerate``: the CPU fast modules compute what the plain reference modules do.

Every registered model is built twice from one seed, with ``accel=True`` (the default of
``create_model``) and ``accel=False`` (the plain reference modules), small (``tests/_small.py``;
the detectors small as in ``tests/test_detection.py``, compared through their backbone). In
float64 the two give equal outputs and equal gradients: in eval mode as they are, in training
mode with every dropout at p=0, because :class:`~wavevision.accel.FastDropout` draws its masks
from its own random stream (same distribution, other masks than ``nn.Dropout``); drop path and
MixToken draw from torch's generator in both, so they stay on. The state dicts have the same keys,
shapes and values, and ``accelerate`` applied again changes nothing.
"""
from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
import torch
import torch.nn as nn

import wavevision
from _slow import FAST_MODELS
from wavevision.accel import FastWaveMixBlock, PointwiseConv2d, accelerate, is_accelerated
from wavevision.layers import WaveMixBlock

from _optional import require
from _small import distinct_small_builds, small_model, timm_models

pytestmark = pytest.mark.usefixtures("one_thread")

# One build per distinct small build (tests/_small.py), and every detector (their own tiny builds).
NAMES = distinct_small_builds(timm_models(), prefer=FAST_MODELS) + [
    n for n in wavevision.list_models() if wavevision.get_entry(n).task == "detection"]
TINY_DETECTOR = dict(num_classes=3, in_chans=3, fpn_channels=32, box_head_dim=32, mask_head_dim=16, min_size=64, max_size=64,
                     anchor_sizes=(8, 16, 32, 64, 128))
TINY_VIT = dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), stem_hidden_dim=8)
TINY_MIX = dict(depth=4, final_dim=16, ff_channel=16, level=1, dropout=0.3)


def _detector(name: str) -> bool:
    return wavevision.get_entry(name).task == "detection"


def _build(name: str, accel: bool) -> nn.Module:
    if not _detector(name):
        return small_model(name, accel=accel)
    require("torchvision")
    torch.manual_seed(0)
    backbone = wavevision.get_entry(name).fn.__name__
    args = TINY_MIX if "wavemix" in backbone else TINY_VIT
    return wavevision.create_model(name, backbone_args=args, accel=accel, **TINY_DETECTOR)


def _pair(name: str) -> tuple[nn.Module, nn.Module]:
    return _build(name, True), _build(name, False)


def _tensors(out) -> list[torch.Tensor]:
    """Every tensor in a model's output (a tensor, a sequence, a mapping or a dataclass of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if dataclasses.is_dataclass(out):
        out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []


def _input(model: nn.Module, name: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if _detector(name):
        return torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64)
    side = max(getattr(model, "min_input_size", 0) or 12, 12)
    return torch.rand(2, model.in_chans, side, side, generator=g, dtype=torch.float64)


def _run(model: nn.Module, name: str, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs (a detector's backbone maps), seeded, with a loss whose gradients are taken."""
    torch.manual_seed(3)
    outs = _tensors(model.backbone(x) if _detector(name) else model(x))
    outs = [o for o in outs if o.is_floating_point()]
    if torch.is_grad_enabled():
        loss = sum((o * torch.linspace(-1, 1, o.shape[-1], dtype=o.dtype)).sum() for o in outs)
        loss.backward()
    return outs


def _no_dropout(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
    return model


@pytest.mark.parametrize("name", NAMES)
def test_accelerated_models_equal_the_reference(name):
    """Same state dict, ``accelerate`` idempotent and undoable; float64 eval-mode outputs, then a
    training step with dropout at p=0 (module docstring): equal outputs, gradients and buffers."""
    fast, plain = _pair(name)
    assert not is_accelerated(plain)
    sd, ref = fast.state_dict(), plain.state_dict()
    assert list(sd) == list(ref)
    for k in ref:
        assert sd[k].shape == ref[k].shape and sd[k].dtype == ref[k].dtype, k
        assert torch.equal(sd[k], ref[k]), k  # one seed, the same construction: the same values
    types = [type(m) for m in fast.modules()]
    params = [id(p) for p in fast.parameters()]
    assert accelerate(fast) is fast
    assert [type(m) for m in fast.modules()] == types and [id(p) for p in fast.parameters()] == params
    assert [type(m) for m in accelerate(copy.deepcopy(fast), enable=False).modules()] == [type(m) for m in plain.modules()]
    assert "accel" not in getattr(plain, "model_kwargs", {})

    fast, plain = fast.double(), plain.double()
    x = _input(plain, name)
    with torch.no_grad():
        for a, b in zip(_run(fast.eval(), name, x), _run(plain.eval(), name, x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    outs = _run(_no_dropout(fast).train(), name, x)
    refs = _run(_no_dropout(plain).train(), name, x)
    for a, b in zip(outs, refs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    grads = dict(fast.named_parameters())
    scale = max(p.grad.abs().max().item() for p in plain.parameters() if p.grad is not None)
    for k, p in plain.named_parameters():
        if p.grad is None:
            assert grads[k].grad is None, k
            continue
        torch.testing.assert_close(grads[k].grad, p.grad, rtol=1e-8, atol=1e-10 * scale, msg=k)
    for (k, a), b in zip(fast.named_buffers(), plain.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=k)


def test_what_is_swapped():
    """The plain model is the papers' modules; the accelerated one their fast subclasses."""
    plain = wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, level=2, accel=False)
    block = plain.layers[0]
    assert type(block) is WaveMixBlock
    assert [type(m) for m in block.feedforward1] == [nn.Conv2d, nn.GELU, nn.Dropout, nn.Conv2d, nn.ConvTranspose2d,
                                                     nn.BatchNorm2d]
    assert type(block.reduction) is nn.Conv2d and plain.segment_planner is None
    fast = accelerate(plain)
    assert type(fast.layers[0]) is FastWaveMixBlock and type(block.reduction) is PointwiseConv2d
    assert fast.segment_planner is not None
    assert isinstance(block, WaveMixBlock) and isinstance(block.reduction, nn.Conv2d)  # subclasses
    with pytest.raises(TypeError, match="accelerate\\(\\) takes a torch.nn.Module"):
        accelerate("wavemix")


def test_accel_keeps_the_timm_interface(tmp_path):
    """Checkpoints load across accel settings; features_only, fx, jit.trace, fuse, pickle and deepcopy
    work on the accelerated model and give the plain model's results."""
    torch.manual_seed(0)
    kw = dict(depth=2, final_dim=16, ff_channel=16, level=2, num_classes=5)
    fast = wavevision.create_model("wavemix", **kw).eval()
    path = wavevision.save_checkpoint(fast, tmp_path / "m.safetensors")
    plain = wavevision.create_model(checkpoint=path, accel=False).eval()
    assert not is_accelerated(plain) and is_accelerated(wavevision.create_model(checkpoint=path))
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        ref = plain(x)
        torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.fx.symbolic_trace(fast)(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.jit.trace(fast, x)(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(wavevision.fuse(fast)(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(pickle.loads(pickle.dumps(fast))(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(copy.deepcopy(fast)(x), ref, rtol=1e-4, atol=1e-5)
        feats = wavevision.create_model("wavemix", **kw, features_only=True, out_indices=(1,)).eval()
        feats.load_state_dict({k: v for k, v in fast.state_dict().items() if not k.startswith("pool")})
        torch.testing.assert_close(feats(x)[0], plain.forward_features(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="accel must be true or false"):
        wavevision.create_model("wavemix", accel="sometimes")


def test_moved_fast_modules_keep_their_old_import_paths():
    from wavevision.accel import FastConvTranspose2d, FastDropout
    from wavevision.layers import PointwiseConv2d as from_layers
    from wavevision.layers.wavemix_block import FastConvTranspose2d as up
    from wavevision.layers.wavemix_block import FastDropout as drop

    assert from_layers is PointwiseConv2d and drop is FastDropout and up is FastConvTranspose2d
