"""Parity with the public ``wavemix`` 0.2.4 package: same weights, same outputs and gradients.

The seven small configurations are those of ``shared/reference/wavemix_official_keys.json``
(key names, shapes, parameter counts and output shapes measured on the public code); the
JSON is embedded in tests/data so the suite runs from a fresh clone.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import wavevision

from _public_wavemix import import_public_wavemix

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("exact_fp32")]

KEYS = json.loads((Path(__file__).parent / "data" / "wavemix_official_keys.json").read_text())
SMALL = dict(depth=2, mult=2, ff_channel=16, final_dim=16)

# name in the JSON -> (public class key, public kwargs, our registered family)
CONFIGS = {
    **{
        f"classification_level{L}_patchify": (
            "cls", dict(SMALL, num_classes=10, level=L, initial_conv="pachify", patch_size=4, dropout=0.5), "wavemix")
        for L in (1, 2, 3, 4)
    },
    "classification_level2_strided": (
        "cls", dict(SMALL, num_classes=10, level=2, initial_conv="strided", stride=2, dropout=0.5), "wavemix"),
    "segmentation_level3": ("seg", dict(SMALL, num_classes=5, level=3, stride=2, dropout=0.0), "wavemix_seg"),
    "sisr_level1": ("sr", dict(SMALL, level=1, dropout=0.0), "wavemix_paper_sr"),
}


@pytest.fixture(scope="module")
def public():
    pkg, cls, seg, sr = import_public_wavemix()
    # The public transforms are module globals placed on cuda:0 whenever CUDA exists, so the
    # comparison runs where they live (CPU in CI).
    return {"cls": cls.WaveMix, "seg": seg.WaveMix, "sr": sr.WaveMix, "device": pkg.device}


def _randomize_bn(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BatchNorm statistics so eval mode exercises them."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=gen) * 0.2 + 1)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def _pair(public, name):
    kind, kwargs, family = CONFIGS[name]
    torch.manual_seed(0)
    ref = public[kind](**kwargs)
    _randomize_bn(ref, torch.Generator().manual_seed(1))
    ours = wavevision.create_model(family, **kwargs)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref.to(public["device"]), ours.to(public["device"])


def test_configs_cover_reference_json():
    assert set(CONFIGS) == {k for k in KEYS if k != "param_counts"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_layout_matches_reference_json(public, name):
    ref, ours = _pair(public, name)
    expected = {k: list(v) for k, v in KEYS[name]["state_dict"].items()}
    assert {k: list(v.shape) for k, v in ref.state_dict().items()} == expected
    assert {k: list(v.shape) for k, v in ours.state_dict().items()} == expected
    assert list(ours.state_dict()) == list(ref.state_dict())  # same order too
    assert sum(p.numel() for p in ours.parameters()) == KEYS[name]["params"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_and_input_gradients_match(public, name):
    ref, ours = _pair(public, name)
    ref.eval(), ours.eval()
    x = torch.randn(*KEYS[name]["input"], generator=torch.Generator().manual_seed(2)).to(public["device"])
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_ours = ref(x_ref), ours(x_ours)
    assert list(y_ours.shape) == KEYS[name]["output"]
    assert (y_ours - y_ref).abs().max().item() <= 1e-5
    proj = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(3)).to(public["device"])
    (y_ref * proj).sum().backward()
    (y_ours * proj).sum().backward()
    assert (x_ours.grad - x_ref.grad).abs().max().item() <= 1e-4
    # Parameter gradients agree too (same math, same weights).
    ref_grads = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        assert torch.allclose(p.grad, ref_grads[k].grad, atol=1e-4, rtol=1e-4), k


@pytest.mark.parametrize("name", ["classification_level3_patchify", "segmentation_level3", "sisr_level1"])
def test_public_checkpoint_file_loads_through_create_model(public, name, tmp_path):
    ref, _ = _pair(public, name)
    kind, kwargs, family = CONFIGS[name]
    # As saved from nn.DataParallel: every key prefixed with "module.".
    path = tmp_path / "public.pth"
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, path)
    ours = wavevision.create_model(family, checkpoint=path, **kwargs).eval().to(public["device"])
    x = torch.randn(*KEYS[name]["input"], generator=torch.Generator().manual_seed(4)).to(public["device"])
    assert (ours(x) - ref.eval()(x)).abs().max().item() <= 1e-5
    converted = wavevision.convert_official_state_dict({"state_dict": torch.load(path, weights_only=True)})
    assert set(converted) == set(ref.state_dict())


@pytest.mark.parametrize(
    "key,kind,kwargs,ours",
    [
        ("imagenet_L1_192_16_p4", "cls", dict(level=1), "wavemix_192_16_l1"),
        ("imagenet_L3_192_16_p4", "cls", dict(level=3), "wavemix_192_16_l3"),
        ("seg_L4_256_16_s2_20cls", "seg", dict(), "wavemix_seg_256_16_l4"),
        ("sisr_L1_144_4", "sr", dict(), "wavemix_paper_sr_144_4_x2"),
    ],
)
def test_paper_parameter_counts_match_public_code(public, key, kind, kwargs, ours):
    ref = public[kind](**kwargs)
    expected = KEYS["param_counts"][key]
    assert sum(p.numel() for p in ref.parameters()) == expected
    model = wavevision.create_model(ours)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert list(model.state_dict()) == list(ref.state_dict())


def test_train_mode_without_dropout_matches(public):
    """Train mode (batch statistics) with dropout 0 agrees too, and BN running stats update alike."""
    kwargs = dict(SMALL, num_classes=10, level=3, initial_conv="pachify", patch_size=4, dropout=0.0)
    torch.manual_seed(0)
    ref = public["cls"](**kwargs).train()
    ours = wavevision.create_model("wavemix", **kwargs).train()
    ours.load_state_dict(ref.state_dict())
    ref, ours = ref.to(public["device"]), ours.to(public["device"])
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(5)).to(public["device"])
    assert (ours(x) - ref(x)).abs().max().item() <= 1e-5
    ref_state = ref.state_dict()
    for k, v in ours.state_dict().items():
        assert torch.allclose(v.float(), ref_state[k].float(), atol=1e-6), k


def test_composed_stem_path_matches_public(public, monkeypatch):
    """The composed patchify stem (used for large batches) against the public code, outputs and gradients."""
    from wavevision.layers import stems

    monkeypatch.setattr(stems, "_MIN_SAVING", 0)
    ref, ours = _pair(public, "classification_level3_patchify")
    ref.eval(), ours.eval()
    assert ours.conv._composable()
    x = torch.randn(*KEYS["classification_level3_patchify"]["input"], generator=torch.Generator().manual_seed(6))
    x = x.to(public["device"])
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_ours = ref(x_ref), ours(x_ours)
    assert (y_ours - y_ref).abs().max().item() <= 1e-5
    y_ref.square().sum().backward()
    y_ours.square().sum().backward()
    assert (x_ours.grad - x_ref.grad).abs().max().item() <= 1e-4
    ref_grads = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        assert torch.allclose(p.grad, ref_grads[k].grad, atol=1e-4, rtol=1e-4), k
