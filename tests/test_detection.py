"""Detectors on wavevision backbones (torchvision's Mask R-CNN, Faster R-CNN, RetinaNet, FCOS).

Every registered detector is built small (one block per stage, a 32-channel FPN, 64x64 images)
and trained one step, evaluated, round-tripped through a checkpoint; its stored parameter count
is recomputed from the registered build. Needs torchvision (skipped without it, except in CI).
"""
from __future__ import annotations

import sys

import pytest
import torch

import wavevision
from _optional import require
from wavevision.bench.complexity import count_macs, count_parameters
from wavevision.models import CheckpointMismatchError, get_pretrained_cfg, save_checkpoint
from wavevision.models.detection import pyramid_taps

DETECTORS = wavevision.list_models(task="detection")
TINY_VIT = dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), stem_hidden_dim=8)
TINY_MIX = dict(depth=4, final_dim=16, ff_channel=16, level=1)
HEADS = dict(num_classes=3, in_chans=3, fpn_channels=32, box_head_dim=32, mask_head_dim=16, min_size=64, max_size=64,
             anchor_sizes=(8, 16, 32, 64, 128))
# few proposals and detections keep the untrained detectors fast
FEW_ROIS = dict(rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30, rpn_pre_nms_top_n_test=100,
                rpn_post_nms_top_n_test=20, rpn_batch_size_per_image=32, box_batch_size_per_image=16,
                box_detections_per_img=5)
FEW_DENSE = dict(detections_per_img=5, topk_candidates=50)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _torchvision():
    require("torchvision")
    require("pycocotools")


def tiny(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    backbone = wavevision.get_entry(name).fn.__name__
    args = TINY_MIX if "wavemix" in backbone else TINY_VIT
    few = FEW_DENSE if "retinanet" in name or "fcos" in name else FEW_ROIS
    return wavevision.create_model(name, backbone_args=args, **{**HEADS, "detector_args": few, **kw})


def targets(n: int = 2, size: int = 64) -> list[dict[str, torch.Tensor]]:
    out = []
    for i in range(n):
        boxes = torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0 + i, 22.0, 60.0, 58.0]])
        masks = torch.zeros(2, size, size, dtype=torch.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
            m[y1:y2, x1:x2] = 1
        out.append({"boxes": boxes, "labels": torch.tensor([1, 3]), "masks": masks})
    return out


@pytest.mark.parametrize("name", DETECTORS)
def test_train_step_eval_and_checkpoint(name, tmp_path):
    model = tiny(name)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    model.train()
    losses = model(x, targets())
    assert losses and all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert len(out) == 2
    for det in out:
        assert det["boxes"].shape[-1] == 4 and len(det["scores"]) == len(det["labels"]) == len(det["boxes"])
        assert torch.isfinite(det["boxes"]).all() and (det["boxes"] >= 0).all() and (det["boxes"] <= 64).all()
        assert ("masks" in det) == name.startswith("mask_rcnn")
    path = save_checkpoint(model, tmp_path / "det.safetensors")
    again = wavevision.create_model(checkpoint=path).eval()
    with torch.no_grad():
        out2 = again(x)
    for a, b in zip(out, out2):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


@pytest.mark.parametrize("name", DETECTORS)
def test_stored_params_are_recomputed(name):
    """The records' parameter counts (torchvision's detector at the registered size) cannot drift."""
    with torch.device("meta"):
        model = wavevision.create_model(name)
    cfg = get_pretrained_cfg(name)
    assert count_parameters(model) == cfg["params"]
    assert cfg["task"] == "detection" and model.num_classes == cfg["num_classes"] and model.in_chans == cfg["input_size"][0]
    sd = model.state_dict()
    for key in (cfg["classifier"],) if isinstance(cfg["classifier"], str) else cfg["classifier"]:
        assert f"{key}.weight" in sd


@pytest.mark.parametrize("name", ["mask_rcnn_wave_vit_digits", "retinanet_wavemix_192_16_fpn_1x"])
def test_stored_macs_are_recomputed(name):
    with torch.device("meta"):
        model = wavevision.create_model(name)
    cfg = get_pretrained_cfg(name)
    assert count_macs(model, tuple(cfg["input_size"])) == cfg["macs"]


def test_paper_results_in_the_records():
    ap = {n: get_pretrained_cfg(n)["metrics"] for n in DETECTORS}
    assert ap["mask_rcnn_wave_vit_s_fpn_1x"] == {"box_ap": 46.6, "mask_ap": 42.4}
    assert ap["mask_rcnn_wave_vit_b_fpn_1x"] == {"box_ap": 47.6, "mask_ap": 43.0}
    assert ap["retinanet_wave_vit_s_fpn_1x"] == {"box_ap": 45.8}
    assert ap["retinanet_wave_vit_b_fpn_1x"] == {"box_ap": 47.2}


def test_pyramids_have_the_paper_levels():
    """Mask R-CNN: P2-P6 (strides 4..64) from the four stage maps; RetinaNet: P3-P7 (8..128)."""
    x = torch.zeros(1, 3, 64, 128)
    for name, sides in (("mask_rcnn_wave_vit_s_fpn_1x", [16, 8, 4, 2, 1]), ("retinanet_wave_vit_s_fpn_1x", [8, 4, 2, 1, 1]),
                        ("mask_rcnn_wavemix_192_16_fpn_1x", [16, 8, 4, 2, 1])):
        feats = tiny(name).net.backbone(x)
        assert [f.shape[-2] for f in feats.values()] == sides, name
        assert all(f.shape[1] == 32 for f in feats.values())
    assert pyramid_taps(16) == (3, 7, 11, 15) and pyramid_taps(4) == (0, 1, 2, 3) and pyramid_taps(6) == (1, 2, 3, 5)
    body = tiny("mask_rcnn_wavemix_192_16_fpn_1x").body
    assert body.trunk.out_indices == (0, 1, 2, 3) and body.strides == [4, 8, 16, 32]
    with pytest.raises(ValueError, match="at least 4 blocks"):
        pyramid_taps(3)


def test_frozen_stages_and_fpn_norms():
    model = tiny("mask_rcnn_wave_vit_s_fpn_1x", frozen_stages=2)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(any(f".trunk.{s}" in n for s in ("patch_embed1", "block1", "norm1", "patch_embed2", "block2",
                                                           "norm2")) for n in frozen)
    assert any(p.requires_grad for n, p in model.named_parameters() if ".trunk.block3" in n)
    model.train()
    sum(model(torch.rand(1, 3, 64, 64), targets(1)).values()).backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    mix = tiny("retinanet_wavemix_192_16_fpn_1x", frozen_stages=1)
    assert not mix.body.trunk.layers[0].parameters().__next__().requires_grad
    assert next(mix.body.trunk.layers[1].parameters()).requires_grad
    kinds = {type(m).__name__ for m in tiny("retinanet_wave_vit_s_fpn_1x", fpn_norm="group").modules()}
    assert "GroupNorm" in kinds
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny("retinanet_wave_vit_s_fpn_1x", fpn_norm="group", fpn_channels=24)
    with pytest.raises(ValueError, match="fpn_norm"):
        tiny("retinanet_wave_vit_s_fpn_1x", fpn_norm="layer")


def test_backbone_checkpoint_loads_and_the_wrong_one_is_named(tmp_path):
    torch.manual_seed(3)
    classifier = wavevision.create_model("wave_vit_s", num_classes=5, **TINY_VIT)
    path = save_checkpoint(classifier, tmp_path / "cls.safetensors")
    det = tiny("mask_rcnn_wave_vit_s_fpn_1x", backbone_checkpoint=str(path))
    trunk = det.body.trunk.state_dict()
    for k, v in classifier.state_dict().items():
        if k in trunk:
            assert torch.equal(trunk[k], v), k
    assert "backbone_checkpoint" not in det.model_kwargs  # the trained detector's checkpoint holds those weights
    other = save_checkpoint(wavevision.create_model("wave_vit_b", num_classes=5, **TINY_VIT), tmp_path / "b.safetensors")
    with pytest.raises(CheckpointMismatchError, match="holds a 'wave_vit_b' model, but this detector's backbone is 'wave_vit_s'"):
        tiny("mask_rcnn_wave_vit_s_fpn_1x", backbone_checkpoint=str(other))
    wide = save_checkpoint(wavevision.create_model("wave_vit_s", num_classes=5), tmp_path / "wide.safetensors")
    with pytest.raises(CheckpointMismatchError, match="shape mismatch.*this detector's backbone is 'wave_vit_s'"):
        tiny("mask_rcnn_wave_vit_s_fpn_1x", backbone_checkpoint=str(wide))


def test_training_mode_needs_targets_and_bad_options_are_named():
    model = tiny("retinanet_wave_vit_s_fpn_1x").train()
    with pytest.raises(RuntimeError, match="needs targets"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="detector"):
        wavevision.create_model("mask_rcnn_wave_vit_s_fpn_1x", detector="yolo")
    with pytest.raises(ValueError, match="anchor_sizes"):
        tiny("mask_rcnn_wave_vit_s_fpn_1x", anchor_sizes=(8, 16))
    with pytest.raises(ValueError, match="needs at least 4 blocks .one per pyramid level., got depth 1"):
        wavevision.create_model("mask_rcnn_wave_vit_s_fpn_1x", backbone="mixer_dwt", backbone_args=dict(depth=1))
    with pytest.raises(ValueError, match="'wavemix_seg' is a WaveMixSeg, not"):
        wavevision.create_model("mask_rcnn_wave_vit_s_fpn_1x", backbone="wavemix_seg", backbone_args=TINY_MIX)


def test_without_torchvision_the_error_says_what_to_install(monkeypatch):
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    assert "mask_rcnn_wave_vit_s_fpn_1x" in wavevision.list_models()  # listing needs no torchvision
    with pytest.raises(ImportError, match=r"torchvision is not usable here.*pip install -e '\.\[vision\]'"):
        wavevision.create_model("mask_rcnn_wave_vit_s_fpn_1x")
