"""The detection pipeline of the COCO recipes: MMDetection's keep-ratio resize and padding,
multi-scale training, and frozen backbone BatchNorm (issue 20, item 3)."""
from __future__ import annotations

import pytest
import torch

import wavevision
from wavevision.models.detection import mmdet_resized_size

from _optional import require

TINY_VIT = dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), stem_hidden_dim=8)
HEADS = dict(num_classes=3, fpn_channels=32, box_head_dim=32, mask_head_dim=16, anchor_sizes=(8, 16, 32, 64, 128))
FEW_ROIS = dict(rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30, rpn_pre_nms_top_n_test=100,
                rpn_post_nms_top_n_test=20, rpn_batch_size_per_image=32, box_batch_size_per_image=16,
                box_detections_per_img=5)
SCALES = tuple(range(480, 801, 32))  # MMDetection's 3x multi-scale short sides

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _torchvision():
    require("torchvision")


def tiny(name: str = "mask_rcnn_wave_vit_s_fpn_1x", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    few = dict(detections_per_img=5, topk_candidates=50) if "retinanet" in name else FEW_ROIS
    return wavevision.create_model(name, backbone_args=TINY_VIT, **{**HEADS, "detector_args": few, **kw})


# -- keep-ratio resize to (1333, 800), padding to 32 -------------------------------------------------------------

# (h, w) -> resized (h, w) -> padded (h, w), by hand: scale = min(800 / short, 1333 / long), sides rounded half up
SIZES = [((480, 640), (800, 1067), (800, 1088)),    # 640 * 5/3 = 1066.67 (torchvision floors it to 1066)
         ((500, 375), (1067, 800), (1088, 800)),    # portrait: 500 * 800/375 = 1066.67
         ((427, 640), (800, 1199), (800, 1216)),    # 640 * 800/427 = 1199.06
         ((300, 1000), (400, 1333), (416, 1344)),   # the long side caps: scale 1.333 (800/300 would be 2.67)
         ((800, 1333), (800, 1333), (800, 1344))]   # already at scale


@pytest.mark.parametrize("shape,resized,padded", SIZES)
def test_mmdet_resize_and_pad_by_hand(shape, resized, padded):
    assert mmdet_resized_size(*shape, 800, 1333) == resized
    transform = tiny("retinanet_wave_vit_s_fpn_1x").transform
    for mode in (True, False):  # single scale: training and evaluation agree
        transform.train(mode)
        images, _ = transform([torch.rand(3, *shape)])
        assert images.image_sizes == [resized] and tuple(images.tensors.shape[-2:]) == padded
        assert images.tensors[0, :, resized[0]:].abs().sum() == 0 and images.tensors[0, :, :, resized[1]:].abs().sum() == 0


def test_resize_moves_boxes_and_masks_and_keeps_values():
    transform = tiny().transform.train()
    image = torch.full((3, 480, 640), 0.25)
    masks = torch.zeros(1, 480, 640, dtype=torch.uint8)
    masks[0, 48:96, 64:128] = 1
    target = {"boxes": torch.tensor([[64.0, 48.0, 128.0, 96.0], [0.0, 0.0, 640.0, 480.0]]), "labels": torch.tensor([1, 2]),
              "masks": masks}
    images, (out,) = transform([image], [target])
    sx, sy = 1067 / 640, 800 / 480  # per-axis factors, as MMDetection scales boxes
    assert torch.allclose(out["boxes"], torch.tensor([[64 * sx, 48 * sy, 128 * sx, 96 * sy], [0, 0, 1067, 800]]))
    assert out["masks"].shape == (1, 800, 1067) and out["masks"].dtype == torch.uint8
    ys, xs = out["masks"][0].nonzero(as_tuple=True)
    # nearest: output row y reads input row floor(y * 480/800), column x reads floor(x * 640/1067)
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (80, 160, 107, 214)
    assert torch.allclose(images.tensors[0, :, :800, :1067], torch.tensor(0.25))  # normalised by the dataset, not again
    assert target["boxes"][0, 2] == 128.0  # the caller's target is left as it was


def test_defaults_keep_torchvision_transform():
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    digits = wavevision.create_model("mask_rcnn_wave_vit_digits")
    assert type(digits.transform) is GeneralizedRCNNTransform and not digits.frozen_norm and not digits.norm_eval
    fcos = tiny("fcos_wave_vit_s_fpn_1x", detector_args={})  # torchvision's reference: torchvision's resize
    assert type(fcos.transform) is GeneralizedRCNNTransform
    images, _ = fcos.eval().transform([torch.rand(3, 480, 640)])
    assert images.image_sizes == [(800, 1066)]


@pytest.mark.slow
def test_eval_maps_predictions_back_to_the_input_size():
    model = tiny().eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 120, 90)])
    assert out["masks"].shape[-2:] == (120, 90)
    if len(out["boxes"]):
        assert out["boxes"][:, 2].max() <= 90 and out["boxes"][:, 3].max() <= 120


# -- multi-scale training --------------------------------------------------------------------------------------


def _short_sides(transform, n: int, shape=(480, 640)) -> list[int]:
    return [min(transform([torch.rand(3, *shape)])[0].image_sizes[0]) for _ in range(n)]


def test_multiscale_sizes_come_from_the_list_seeded_and_eval_is_single_scale():
    transform = tiny(train_sizes=SCALES).transform.train()
    torch.manual_seed(3)
    first = _short_sides(transform, 24)
    torch.manual_seed(3)
    assert _short_sides(transform, 24) == first
    assert set(first) <= set(SCALES) and len(set(first)) > 3
    torch.manual_seed(4)
    assert _short_sides(transform, 24) != first
    # a 200x1000 image reaches the 1333 cap before any drawn short side (>= 480 > 1333/5)
    assert {transform([torch.rand(3, 200, 1000)])[0].image_sizes[0] for _ in range(12)} == {(267, 1333)}
    transform.eval()
    assert _short_sides(transform, 5) == [800] * 5


def test_multiscale_trains_a_step():
    model = tiny(train_sizes=(96, 128), min_size=128, max_size=200).train()
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 8:40, 8:40] = 1
    losses = model([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]),
                                              "labels": torch.tensor([1]), "masks": masks}])
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("kw,match", [(dict(train_sizes=SCALES, reference="torchvision"), "reference='mmdet'"),
                                      (dict(train_sizes=()), "non-empty list"), (dict(train_sizes=(480, 16)), "train_sizes"),
                                      (dict(frozen_norm="maybe"), "frozen_norm")])
def test_bad_options(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny(**kw)


# -- frozen backbone BatchNorm ---------------------------------------------------------------------------------


def _step(model) -> None:
    masks = torch.zeros(2, 64, 64, dtype=torch.uint8)
    masks[0, 6:40, 4:30] = 1
    masks[1, 22:58, 20:60] = 1
    target = {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0, 22.0, 60.0, 58.0]]), "labels": torch.tensor([1, 3]),
              "masks": masks}
    torch.manual_seed(1)
    losses = model([torch.rand(3, 64, 64), torch.rand(3, 64, 64)], [target, dict(target)])
    sum(losses.values()).backward()


@pytest.mark.parametrize("name", ["mask_rcnn_wave_vit_s_fpn_1x", "retinanet_wave_vit_s_fpn_1x"])
def test_frozen_norm_eval(name):
    plain = tiny(name, min_size=64, max_size=64)
    model = tiny(name, min_size=64, max_size=64, frozen_norm=True, norm_eval=True)
    bns = [m for m in model.body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) >= 3  # Wave-ViT's stem and wave-attention BatchNorms
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    assert list(model.state_dict()) == list(plain.state_dict())
    model.train()
    assert model.training and all(not m.training for m in bns)
    assert any(m.training for m in model.modules() if m not in bns)
    before = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bns]
    _step(model)
    for m, (mean, var, count) in zip(bns, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var) and torch.equal(m.num_batches_tracked, count)
        assert not m.weight.requires_grad and m.weight.grad is None and m.bias.grad is None
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in model.body.trunk.parameters() if p.requires_grad)
    assert len(trained) == len(list(plain.parameters())) - 2 * len(bns)
    model.eval()
    model.train(True)
    assert all(not m.training for m in bns)


def test_frozen_norm_alone_is_the_reference_behaviour():
    """Wave-ViT's detection code sets requires_grad=False on its BatchNorms but no norm_eval: the
    affine parameters stay fixed while the running statistics still follow the batches."""
    model = tiny(min_size=64, max_size=64, frozen_norm=True).train()
    bns = [m for m in model.body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    weights = [m.weight.clone() for m in bns]
    before = [m.running_mean.clone() for m in bns]
    assert all(m.training for m in bns)
    _step(model)
    assert all(m.weight.grad is None for m in bns)
    assert any(not torch.equal(m.running_mean, b) for m, b in zip(bns, before))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    optimizer.step()
    assert all(torch.equal(m.weight, w) for m, w in zip(bns, weights))


# -- the recipes -----------------------------------------------------------------------------------------------


def test_coco_recipes_build_the_pipeline():
    from wavevision.engine.recipe import engine_values, missing_pieces
    from wavevision.recipes import get_recipe

    for detector in ("mask_rcnn", "retinanet"):
        for size in ("s", "b"):
            recipe = get_recipe(f"{detector}_wave_vit_{size}_coco_1x")
            values = engine_values(recipe)
            assert values["model_args"] == {"backbone_args": {"drop_path_rate": 0.1}, "frozen_norm": True}
            gaps = missing_pieces(recipe)
            assert not any("BatchNorm" in g or "resize" in g or "pad" in g for g in gaps), gaps
            model = wavevision.create_model(values["model"], **{**values["model_args"], "backbone_args": TINY_VIT},
                                            **HEADS)
            assert model.frozen_norm and model.transform.min_size == (800,) and model.transform.max_size == 1333
            assert model.transform.size_divisible == 32 and type(model.transform).__name__ == "MMDetTransform"
            assert all(not m.weight.requires_grad for m in model.body.modules() if isinstance(m, torch.nn.BatchNorm2d))
    for size in ("s", "b"):
        recipe = get_recipe(f"upernet_wave_vit_{size}_ade20k_160k")
        assert engine_values(recipe)["model_args"]["frozen_norm"] is True
        assert not any("BatchNorm" in g for g in missing_pieces(recipe))


def test_upernet_frozen_norm():
    kw = dict(backbone_args=TINY_VIT, channels=16, num_classes=4)
    torch.manual_seed(0)
    plain = wavevision.create_model("upernet_wave_vit_s", **kw)
    torch.manual_seed(0)
    model = wavevision.create_model("upernet_wave_vit_s", frozen_norm=True, norm_eval=True, **kw).train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) >= 3 and all(not m.training for m in bns)
    assert any(m.training for m in model.decode_head.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert list(model.state_dict()) == list(plain.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    before = [m.running_var.clone() for m in bns]
    out = model(torch.rand(2, 3, 64, 64))
    (out if isinstance(out, torch.Tensor) else out[0]).mean().backward()
    assert all(torch.equal(m.running_var, b) and m.weight.grad is None for m, b in zip(bns, before))
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    model.eval().train()
    assert all(not m.training for m in bns)
    trains = wavevision.create_model("upernet_wave_vit_s", frozen_norm=True, **kw).train()  # the reference's: stats move
    assert all(m.training and not m.weight.requires_grad for m in trains.backbone.modules()
               if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("args,sizes", [
    (dict(scale=[(1333, s) for s in SCALES], multiscale_mode="value"), SCALES),
    (dict(scale=[(1333, 480), (1333, 800)], multiscale_mode="range"), tuple(range(480, 801))),
])
def test_a_multiscale_recipe_sets_train_sizes(args, sizes):
    import dataclasses

    from wavevision.engine.recipe import engine_values, missing_pieces
    from wavevision.recipes import Step, get_recipe

    base = get_recipe("mask_rcnn_wave_vit_s_coco_1x")
    train = (Step("resize", {**args, "keep_ratio": True}),) + base.data.train[1:]
    recipe = dataclasses.replace(base, name="mask_rcnn_wave_vit_s_coco_3x_ms",
                                 data=dataclasses.replace(base.data, train=train))
    values = engine_values(recipe)
    assert values["model_args"]["train_sizes"] == list(sizes)
    assert not any("resize" in g for g in missing_pieces(recipe))
    assert "train_sizes" not in engine_values(base)["model_args"]
    model = wavevision.create_model(values["model"], **{**values["model_args"], "backbone_args": TINY_VIT}, **HEADS)
    assert model.transform.train_sizes == sizes and model.transform.min_size == (800,)
    other = dataclasses.replace(recipe, data=dataclasses.replace(base.data, train=(
        Step("resize", {"scale": [(1000, 480), (1000, 600)], "keep_ratio": True}),) + base.data.train[1:]))
    assert "train_sizes" not in engine_values(other)["model_args"]  # another long side: not the detector's resize
    assert any("train resize" in g for g in missing_pieces(other))
