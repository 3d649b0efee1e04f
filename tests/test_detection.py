"""Detectors on wavevision backbones (torchvision's Mask R-CNN, Faster R-CNN, RetinaNet, FCOS).

Every registered detector is built small (one block per stage, a 32-channel FPN, 64x64 images)
and trained one step, evaluated, round-tripped through a checkpoint; its stored parameter count
is recomputed from the registered build. Needs torchvision (skipped without it, except in CI).
"""
from __future__ import annotations

import math
import pickle
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wavevision
from wavevision.bench.complexity import count_macs, count_parameters
from wavevision.engine.tasks.detection import DetectionMeter
from wavevision.models import CheckpointMismatchError, WaveDetector, detection, get_pretrained_cfg, save_checkpoint
from wavevision.models._builder import save_safetensors_bytes
from wavevision.models.detection import pyramid_taps

from _optional import require

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
        feats = tiny(name).backbone(x)
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
    with pytest.raises(CheckpointMismatchError, match="does not fit the wave_vit_s backbone of mask_rcnn_wave_vit_s_fpn_1x: "
                                                      "it holds a 'wave_vit_b' model"):
        tiny("mask_rcnn_wave_vit_s_fpn_1x", backbone_checkpoint=str(other))
    wide = save_checkpoint(wavevision.create_model("wave_vit_s", num_classes=5), tmp_path / "wide.safetensors")
    with pytest.raises(CheckpointMismatchError, match=r"first mismatching key '.*' is \(.*\) in the checkpoint but "
                                                      r"\(.*\) in the model; pass a classification checkpoint of wave_vit_s"):
        tiny("mask_rcnn_wave_vit_s_fpn_1x", backbone_checkpoint=str(wide))
    # the loader UperNet shares adapts the first convolution to the detector's channels (timm's rule)
    gray = tiny("mask_rcnn_wave_vit_s_fpn_1x", backbone_checkpoint=str(path), in_chans=1)
    first = classifier.pretrained_cfg["first_conv"] + ".weight"
    torch.testing.assert_close(gray.body.trunk.state_dict()[first], classifier.state_dict()[first].sum(1, keepdim=True))


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


# -- torchvision's detectors, as themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("name,tv", [("mask_rcnn_wave_vit_s_fpn_1x", "MaskRCNN"), ("faster_rcnn_wave_vit_s_fpn_1x", "FasterRCNN"),
                                     ("retinanet_wavemix_192_16_fpn_1x", "RetinaNet"), ("fcos_wave_vit_s_fpn_1x", "FCOS")])
def test_detectors_are_torchvision_detectors(name, tv):
    import torchvision

    model = tiny(name)
    assert isinstance(model, getattr(torchvision.models.detection, tv)) and isinstance(model, WaveDetector)
    assert type(model).__name__ == f"Wave{tv}" and model.num_classes == 3
    assert isinstance(model.transform, torchvision.models.detection.transform.GeneralizedRCNNTransform)
    # torchvision's own keys: a torchvision detector's state dict with the same layout loads as it is
    assert not any(k.startswith("net.") for k in model.state_dict())
    head = "roi_heads.box_predictor.cls_score.weight" if tv.endswith("RCNN") else "head.classification_head.cls_logits.weight"
    assert head in model.state_dict()
    # outside the backbone body, the keys are those of torchvision's own ResNet-50 build of the same detector
    builder = {"MaskRCNN": "maskrcnn_resnet50_fpn", "FasterRCNN": "fasterrcnn_resnet50_fpn",
               "RetinaNet": "retinanet_resnet50_fpn", "FCOS": "fcos_resnet50_fpn"}[tv]
    with torch.device("meta"):
        theirs = getattr(torchvision.models.detection, builder)(weights=None, weights_backbone=None).state_dict()
    assert {k for k in model.state_dict() if not k.startswith("backbone.body.")} == \
        {k for k in theirs if not k.startswith("backbone.body.")}


def test_torchvision_finetuning_tutorial_steps_run_as_written():
    """The steps of torchvision's "TorchVision Object Detection Finetuning Tutorial", verbatim, on the
    registered Mask R-CNN (its backbone narrowed so the step takes a second)."""
    import torchvision
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    model = tiny("mask_rcnn_wave_vit_s_fpn_1x")
    num_classes = 2
    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    in_features_mask = model.roi_heads.mask_predictor.conv5_mask.in_channels
    hidden_layer = 256
    model.roi_heads.mask_predictor = MaskRCNNPredictor(in_features_mask, hidden_layer, num_classes)
    assert model.num_classes == 1 and isinstance(model.rpn, torchvision.models.detection.rpn.RegionProposalNetwork)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=0.0005)
    images = list(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    tg = [{**t, "labels": torch.ones_like(t["labels"])} for t in targets()]
    model.train()
    before = model.roi_heads.mask_predictor.mask_fcn_logits.weight.clone()
    loss_dict = model(images, tg)
    losses = sum(loss for loss in loss_dict.values())
    optimizer.zero_grad()
    losses.backward()
    optimizer.step()
    assert torch.isfinite(losses) and {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness"} <= set(loss_dict)
    assert not torch.equal(before, model.roi_heads.mask_predictor.mask_fcn_logits.weight)
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert all(set(d["labels"].tolist()) <= {1} and d["masks"].shape[1:] == (1, 64, 64) for d in out)


def test_earlier_wrapper_checkpoints_load_with_one_note(tmp_path, monkeypatch):
    """Checkpoints saved when the detector held torchvision's model as ``.net`` (keys ``net.*``)."""
    monkeypatch.setattr(detection, "_legacy_noted", False)
    model = tiny("mask_rcnn_wave_vit_s_fpn_1x", seed=4).eval()
    old = {f"net.{k}": v for k, v in model.state_dict().items()}
    path = save_checkpoint(model, tmp_path / "old.safetensors")
    path.write_bytes(save_safetensors_bytes(old, {"model": model.model_name}))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x)[0]["boxes"]
    with pytest.warns(UserWarning, match="'net.' keys are renamed"):
        again = wavevision.create_model(checkpoint=path).eval()
    fresh = tiny("mask_rcnn_wave_vit_s_fpn_1x", seed=9).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the note is given once
        fresh.load_state_dict(old)  # torch's own loading takes them too
    with torch.no_grad():
        assert torch.equal(again(x)[0]["boxes"], want) and torch.equal(fresh(x)[0]["boxes"], want)
        assert torch.equal(pickle.loads(pickle.dumps(again))(x)[0]["boxes"], want)


# -- reference="mmdet": MMDetection 2.x's formulas, written out -----------------------------------------------------


def test_mmdet_extra_levels_follow_mmdetection_fpn():
    """MMDetection 2.x FPN, RetinaNet config (``add_extra_convs='on_input'``, ``relu_before_extra_convs=False``):
    ``P6 = conv6(C5)``, ``P7 = conv7(P6)`` with no ReLU; FCOS (``'on_output'``, ReLU before extra convs):
    ``P6 = conv6(P5)``, ``P7 = conv7(relu(P6))``. torchvision's: ``P7 = conv7(relu(P6))`` on C5, or P5 when
    C5 is as wide as the FPN (64 here)."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))

    def conv(t, m):
        return F.conv2d(t, m.weight, m.bias, stride=2, padding=1)

    for name, ref in (("retinanet_wave_vit_s_fpn_1x", None), ("fcos_wave_vit_s_fpn_1x", "mmdet")):
        model = tiny(name, fpn_channels=64, **({"reference": ref} if ref else {})).eval()
        assert model.reference == "mmdet"
        with torch.no_grad():
            c5 = model.body(x)["3"]
            feats = model.backbone(x)
        extra = model.backbone.fpn.extra_blocks
        p5, p6, p7 = feats["3"], feats["p6"], feats["p7"]
        if name.startswith("retinanet"):
            torch.testing.assert_close(p6, conv(c5, extra.p6))
            torch.testing.assert_close(p7, conv(p6, extra.p7))  # no ReLU
            assert (p6 < 0).any()  # so a ReLU would have changed P7
        else:
            torch.testing.assert_close(p6, conv(p5, extra.p6))
            torch.testing.assert_close(p7, conv(F.relu(p6), extra.p7))
    tv = tiny("retinanet_wave_vit_s_fpn_1x", fpn_channels=64, reference="torchvision").eval()
    with torch.no_grad():
        feats = tv.backbone(x)
    extra = tv.backbone.fpn.extra_blocks
    torch.testing.assert_close(feats["p6"], conv(feats["3"], extra.p6))  # torchvision: P5, as widths agree
    torch.testing.assert_close(feats["p7"], conv(F.relu(feats["p6"]), extra.p7))


def _mmcv_roi_align(feat: torch.Tensor, box: list[float], scale: float, out: int, ratio: int, aligned: bool) -> torch.Tensor:
    """mmcv's RoIAlign forward (roi_align_kernel: bilinear_interpolate), one RoI on a (C, H, W) map."""
    C, H, W = feat.shape
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - off for v in box)
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bw, bh = rw / out, rh / out
    gw = ratio if ratio > 0 else math.ceil(rw / out)
    gh = ratio if ratio > 0 else math.ceil(rh / out)

    def bilinear(y, x):
        if y < -1.0 or y > H or x < -1.0 or x > W:
            return torch.zeros(C)
        y, x = max(y, 0.0), max(x, 0.0)
        yl, xl = int(y), int(x)
        if yl >= H - 1:
            yl = yh = H - 1
            y = float(yl)
        else:
            yh = yl + 1
        if xl >= W - 1:
            xl = xh = W - 1
            x = float(xl)
        else:
            xh = xl + 1
        ly, lx = y - yl, x - xl
        return ((1 - ly) * (1 - lx) * feat[:, yl, xl] + (1 - ly) * lx * feat[:, yl, xh]
                + ly * (1 - lx) * feat[:, yh, xl] + ly * lx * feat[:, yh, xh])

    res = torch.zeros(C, out, out)
    for ph in range(out):
        for pw in range(out):
            acc = torch.zeros(C)
            for iy in range(gh):
                for ix in range(gw):
                    acc += bilinear(y1 + ph * bh + (iy + 0.5) * bh / gh, x1 + pw * bw + (ix + 0.5) * bw / gw)
            res[:, ph, pw] = acc / max(gh * gw, 1)
    return res


def test_mmdet_roi_align_follows_mmdetection():
    """MMDetection 2.x's SingleRoIExtractor: level ``floor(log2(sqrt(w h) / 56 + 1e-6))`` clamped to P2-P5
    (``finest_scale=56``), then mmcv's RoIAlign with ``sampling_ratio=0`` (adaptive) and ``aligned=True``."""
    model = tiny("mask_rcnn_wave_vit_s_fpn_1x").eval()
    assert model.roi_heads.box_roi_pool.sampling_ratio == 0 and model.roi_heads.mask_roi_pool.sampling_ratio == 0
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(6)))
        boxes = torch.tensor([[3.3, 5.1, 20.7, 30.2], [10.0, 4.0, 100.5, 60.0], [0.0, 0.0, 127.0, 63.0]])
        got = model.roi_heads.box_roi_pool(feats, [boxes], [(64, 128)])
    assert got.shape == (3, 32, 7, 7)
    for box, pooled in zip(boxes.tolist(), got):
        level = min(max(math.floor(math.log2(math.sqrt((box[2] - box[0]) * (box[3] - box[1])) / 56 + 1e-6)), 0), 3)
        want = _mmcv_roi_align(feats[str(level)][0], box, 1 / 2 ** (level + 2), 7, 0, aligned=True)
        torch.testing.assert_close(pooled, want, rtol=1e-4, atol=1e-5)
    tv = tiny("mask_rcnn_wave_vit_s_fpn_1x", reference="torchvision")
    assert tv.roi_heads.box_roi_pool.sampling_ratio == 2 and type(tv.roi_heads.box_roi_pool).__name__ == "MultiScaleRoIAlign"
    assert tiny("mask_rcnn_wave_vit_s_fpn_1x", roi_sampling_ratio=1).roi_heads.box_roi_pool.sampling_ratio == 1


def test_mask_area_sizes_objects_for_cocoeval():
    """COCO's ``area`` of an object with a mask is its mask's pixel count (pycocotools' ``maskUtils.area``),
    not its box's; the dataset's own ``area`` wins where it gives one."""
    from pycocotools import mask as mask_utils

    t = targets(1)[0]
    t["masks"][0, 6:20, 4:9] = 0  # an L-shaped object: mask area below its box's
    meter = DetectionMeter(3)
    meter.update([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}],
                 [{**t, "image_id": torch.tensor(1)}])
    coco = [float(mask_utils.area(mask_utils.encode(np.asfortranarray(m.numpy())))) for m in t["masks"]]
    assert [g["area"] for g in meter.gts] == coco and coco[0] < 26 * 34
    boxes_only = DetectionMeter(3)
    boxes_only.update([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}],
                      [{"boxes": t["boxes"], "labels": t["labels"], "image_id": torch.tensor(1), "area": torch.tensor([5.0, 6.0])}])
    assert [g["area"] for g in boxes_only.gts] == [5.0, 6.0]
