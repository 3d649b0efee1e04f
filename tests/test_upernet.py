"""UperNet on Wave-ViT (``upernet_wave_vit_{s,b}``) and on WTConvNeXt (``upernet_wtconvnext_{tiny,small,base}``),
and the ADE20K-style folder dataset.

Independent truths: the decoder's parameter count by hand from MMSegmentation's UPerHead layout,
its forward re-derived with torch's functional ops (``F.adaptive_avg_pool2d``, ``F.conv2d``,
``F.interpolate``), the backbone's maps against ``wave_vit_s(features_only=True)``, and the loss
written out. The parametrised suites (test_models, test_fx, test_timm_contract, ...) cover the
rest of the timm contract on small builds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wavevision
from wavevision.bench.complexity import count_parameters
from wavevision.data import DataFileError, DatasetInfo, build_dataset, detect_format
from wavevision.data.ade20k import ADE20K_CLASSES
from wavevision.engine import train
from wavevision.engine.tasks import get_task
from wavevision.models import CheckpointMismatchError, SegmentationOutput, UperNet
from wavevision.models.upernet import adaptive_avg_pool

from _optional import require
from _small import small_overrides

QUICK = dict(threads=1, progress=False, plots=False)
SMALL = small_overrides("upernet_wave_vit_s")  # the small Wave-ViT backbone, a 32-channel decoder
DIMS = {"upernet_wave_vit_s": (64, 128, 320, 448), "upernet_wave_vit_b": (64, 128, 320, 512)}


def _conv_block(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out  # conv without bias, BatchNorm weight and bias


def _uperhead_params(dims, channels=512, scales=4, classes=150) -> int:
    """MMSegmentation's UPerHead: PPM 1x1 blocks + 3x3 bottleneck, 1x1 laterals, 3x3 FPN convs, 3x3 fusion, classifier."""
    *fine, last = dims
    return (scales * _conv_block(last, channels, 1) + _conv_block(last + scales * channels, channels, 3)
            + sum(_conv_block(c, channels, 1) for c in fine) + len(fine) * _conv_block(channels, channels, 3)
            + _conv_block(len(dims) * channels, channels, 3) + channels * classes + classes)


@pytest.mark.parametrize("name", ["upernet_wave_vit_s", "upernet_wave_vit_b"])
def test_parameter_counts_by_hand(name):
    with torch.device("meta"):
        model = wavevision.create_model(name)
        backbone = wavevision.create_model(name.removeprefix("upernet_"), features_only=True)
        with_aux = wavevision.create_model(name, aux_head=True)
    assert count_parameters(model.backbone) == count_parameters(backbone)  # no classifier, no class block
    assert count_parameters(model.decode_head) == _uperhead_params(DIMS[name])
    assert count_parameters(model) == wavevision.get_entry(name).params
    # the auxiliary FCN head: a 3x3 block 320 -> 256 and a 1x1 classifier
    assert count_parameters(with_aux) - count_parameters(model) == _conv_block(320, 256, 3) + 256 * 150 + 150
    cfg = model.pretrained_cfg
    assert cfg["metrics"] == {"miou": {"upernet_wave_vit_s": 49.6, "upernet_wave_vit_b": 51.5}[name]}
    assert cfg["dataset"] == "ADE20K val" and cfg["num_classes"] == 150 and cfg["input_size"] == (3, 512, 512)
    assert model.feature_info.channels() == list(DIMS[name]) and model.feature_info.reduction() == [4, 8, 16, 32]


@pytest.mark.slow
def test_full_size_s_backbone_maps_output_size_and_training_step():
    """Full-size UperNet-S at 64x64 and 97x131: the backbone's maps are wave_vit_s(features_only)'s,
    logits are at the input's size, and a training step (auxiliary head on) reaches every parameter."""
    torch.manual_seed(0)
    model = wavevision.create_model("upernet_wave_vit_s", aux_head=True).eval()
    ref = wavevision.create_model("wave_vit_s", features_only=True).eval()
    ref.load_state_dict(model.backbone.state_dict())
    x = torch.rand(1, 3, 97, 131, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        for got, want, s in zip(maps, ref(x), (4, 8, 16, 32)):
            assert torch.equal(got, want) and got.shape[-2:] == (math.ceil(97 / s), math.ceil(131 / s))
        feats = model.forward_features(x)
        out = model(x)
    assert feats.shape == (1, 512, 25, 33) and out.shape == (1, 150, 97, 131)
    # x4 upsampling of the stride-4 logits, cropped: pixel i of the output lies in cell i // 4
    torch.testing.assert_close(out, model.forward_head(feats)[..., :97, :131])
    model.train()
    y = model(torch.rand(2, 3, 64, 64))
    assert isinstance(y, SegmentationOutput) and y.logits.shape == y.aux_logits.shape == (2, 150, 64, 64)
    (y.logits.square().mean() + y.aux_logits.square().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_full_size_b_forward():
    model = wavevision.create_model("upernet_wave_vit_b").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 150, 64, 64) and torch.isfinite(out).all()


def _conv_block_f(block, x):
    return F.relu(F.batch_norm(F.conv2d(x, block.conv.weight, padding=block.conv.padding), block.bn.running_mean,
                               block.bn.running_var, block.bn.weight, block.bn.bias, False, 0.0, block.bn.eps))


def test_decoder_equals_the_uperhead_dataflow_written_out():
    """PPM on the last map (torch's adaptive pooling), top-down FPN, fusion at the finest size: by hand."""
    torch.manual_seed(0)
    head = wavevision.create_model("upernet_wave_vit_s", **SMALL).eval().decode_head
    for m in head.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5), m.weight.data.uniform_(0.5, 1.5)
    g = torch.Generator().manual_seed(1)
    maps = [torch.randn(2, c, h, w, generator=g) for c, (h, w) in zip((16, 32, 48, 64), ((25, 33), (13, 17), (7, 9), (4, 5)))]

    def up(t, size):
        return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

    last = maps[-1]
    pooled = [up(_conv_block_f(stage[1], F.adaptive_avg_pool2d(last, s)), last.shape[-2:])
              for stage, s in zip(head.psp_modules, (1, 2, 3, 6))]
    lat = [_conv_block_f(c, m) for c, m in zip(head.lateral_convs, maps)] + [_conv_block_f(head.bottleneck, torch.cat([last, *pooled], 1))]
    for i in (3, 2, 1):
        lat[i - 1] = lat[i - 1] + up(lat[i], lat[i - 1].shape[-2:])
    outs = [_conv_block_f(c, t) for c, t in zip(head.fpn_convs, lat)] + [lat[3]]
    want = _conv_block_f(head.fpn_bottleneck, torch.cat([outs[0]] + [up(o, (25, 33)) for o in outs[1:]], 1))
    with torch.no_grad():
        got = head(maps)
    assert got.shape == (2, 32, 25, 33)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (4, 5), (7, 9), (16, 16)])
def test_exportable_adaptive_pool_equals_torchs(size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    for cells in (1, 2, 3, 6):
        torch.testing.assert_close(adaptive_avg_pool(x, cells), F.adaptive_avg_pool2d(x, cells), rtol=1e-12, atol=1e-12)


def test_checkpoint_round_trip_and_mmsegmentation_key_names(tmp_path):
    a = wavevision.create_model("upernet_wave_vit_s", aux_head=True, **SMALL).eval()
    keys = set(a.state_dict())
    for k in ("decode_head.psp_modules.3.1.conv.weight", "decode_head.bottleneck.bn.running_var",
              "decode_head.lateral_convs.2.conv.weight", "decode_head.fpn_convs.0.bn.weight",
              "decode_head.fpn_bottleneck.conv.weight", "decode_head.conv_seg.bias",
              "auxiliary_head.convs.0.conv.weight", "auxiliary_head.conv_seg.weight", "backbone.patch_embed1.conv.0.weight"):
        assert k in keys, k
    path = wavevision.save_checkpoint(a, tmp_path / "u.safetensors")
    b = wavevision.create_model(checkpoint=path).eval()
    x = torch.rand(1, 3, 40, 36)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def _save_classifier(tmp_path, name, **kw):
    torch.manual_seed(3)
    clf = wavevision.create_model(name, **kw)
    return clf, wavevision.save_checkpoint(clf, tmp_path / f"{name}.safetensors")


def test_backbone_checkpoint_loads_a_classifier(tmp_path):
    vit = SMALL["backbone_args"]
    clf, path = _save_classifier(tmp_path, "wave_vit_s", **vit)
    model = wavevision.create_model("upernet_wave_vit_s", backbone_checkpoint=str(path), **SMALL)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, clf.state_dict()[k]), k
    assert "backbone_checkpoint" not in model.model_kwargs  # a saved UperNet holds the weights itself
    # the reference's .pth layout: DataParallel prefix, float16 Haar buffers
    sd = {f"module.{k}": v for k, v in clf.state_dict().items()}
    sd["module.block1.0.attn.dwt.w_ll"] = torch.zeros(1, dtype=torch.float16)
    torch.save(sd, tmp_path / "ref.pth")
    again = wavevision.create_model("upernet_wave_vit_s", backbone_checkpoint=tmp_path / "ref.pth", **SMALL)
    assert torch.equal(again.backbone.state_dict()["norm4.weight"], clf.state_dict()["norm4.weight"])
    gray = wavevision.create_model("upernet_wave_vit_s", in_chans=1, backbone_checkpoint=path, **SMALL)
    torch.testing.assert_close(gray.backbone.state_dict()["patch_embed1.conv.0.weight"],
                               clf.state_dict()["patch_embed1.conv.0.weight"].sum(1, keepdim=True))


def test_backbone_checkpoint_of_another_architecture_names_the_key_and_shapes(tmp_path):
    vit = SMALL["backbone_args"]
    _, wider = _save_classifier(tmp_path, "wave_vit_s", **{**vit, "stem_hidden_dim": 16})
    with pytest.raises(CheckpointMismatchError, match=r"first mismatching key 'patch_embed1\.conv\.0\.weight' is "
                                                      r"\(16, 3, 7, 7\) in the checkpoint but \(8, 3, 7, 7\) in the model"):
        wavevision.create_model("upernet_wave_vit_s", backbone_checkpoint=wider, **SMALL)
    wavemix, wavemix_path = _save_classifier(tmp_path, "wavemix_lite_8_10")
    with pytest.raises(CheckpointMismatchError, match=r"backbone_checkpoint .* does not fit the wave_vit_s backbone of "
                                                      r"upernet_wave_vit_s: it holds a 'wavemix_lite_8_10' model; pass a "
                                                      r"classification checkpoint of wave_vit_s$"):
        wavevision.create_model("upernet_wave_vit_s", backbone_checkpoint=wavemix_path, **SMALL)
    torch.save(wavemix.state_dict(), tmp_path / "wavemix.pth")  # no config to name it: the keys tell
    with pytest.raises(CheckpointMismatchError, match=r"lacks .* first 'patch_embed1.*classification checkpoint of wave_vit_s"):
        wavevision.create_model("upernet_wave_vit_s", backbone_checkpoint=tmp_path / "wavemix.pth", **SMALL)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wavevision.create_model("upernet_wave_vit_s", backbone_checkpoint=tmp_path / "none.safetensors", **SMALL)


def test_backbone_kwargs_is_the_old_name_of_backbone_args():
    import wavevision.utils.deprecation as deprecation

    deprecation._WARNED.discard("UperNet(backbone_kwargs=...)")
    torch.manual_seed(0)
    new = wavevision.create_model("upernet_wave_vit_s", **SMALL)
    old_args = {**SMALL, "backbone_kwargs": SMALL["backbone_args"]}
    del old_args["backbone_args"]
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match=r"UperNet\(backbone_kwargs=...\) is deprecated.*use backbone_args"):
        old = wavevision.create_model("upernet_wave_vit_s", **old_args)
    assert old.state_dict().keys() == new.state_dict().keys()
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in old.state_dict().items())
    with pytest.raises(TypeError, match="backbone_args and backbone_kwargs name the same thing; pass only backbone_args"):
        wavevision.create_model("upernet_wave_vit_s", backbone_kwargs={}, **SMALL)
    with pytest.raises(TypeError, match="backbone_args must be a dict"):
        wavevision.create_model("upernet_wave_vit_s", backbone_args=[1])


def test_segmentation_loss_adds_the_auxiliary_logits():
    g = torch.Generator().manual_seed(0)
    logits, aux = torch.randn(2, 5, 6, 7, generator=g), torch.randn(2, 5, 6, 7, generator=g)
    target = torch.randint(0, 5, (2, 6, 7), generator=g)
    target[0, 0] = 255
    info = DatasetInfo(name="t", task="segmentation", in_chans=3, num_classes=5, class_names=None, image_size=None,
                       mean=(0.0,) * 3, std=(1.0,) * 3, ignore_index=255)
    loss = get_task("segmentation").loss(info)

    def ce(z):
        logp, keep = z.log_softmax(1), target != 255
        return -logp.gather(1, target.clamp(max=4)[:, None])[:, 0][keep].mean()

    torch.testing.assert_close(loss(SegmentationOutput(logits, aux, 0.4), target), ce(logits) + 0.4 * ce(aux))
    torch.testing.assert_close(loss(logits, target), ce(logits))


def test_bad_arguments_and_inputs_name_the_fix():
    with pytest.raises(ValueError, match="unknown model 'wave_vit_xl'"):
        wavevision.create_model("upernet_wave_vit_s", backbone="wave_vit_xl")
    with pytest.raises(ValueError, match="does not support global_pool='avg'"):
        wavevision.create_model("upernet_wave_vit_s", global_pool="avg", **SMALL)
    model = wavevision.create_model("upernet_wave_vit_s", **SMALL)
    with pytest.raises(ValueError, match="batch of at least 2 in training; use batch_size >= 2"):
        model.train()(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="too small for UperNet: the minimum is 32x32"):
        model.eval()(torch.rand(1, 3, 31, 64))
    backbone = wavevision.create_model("upernet_wave_vit_s", features_only=True, out_indices=(1, 3), **SMALL)
    assert backbone.decode_head is None and backbone.feature_info.reduction() == [8, 32]
    with pytest.raises(RuntimeError, match="needs the decoder"):
        backbone.forward_features(torch.rand(1, 3, 32, 32))


# ------------------------------------------------------------------------------------
# ADE20K-style folders


def _write_ade(root, n_train=10, n_val=3, labels=(3, 7)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("training", n_train), ("validation", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = 40 + 3 * i, 52 + 2 * i
            lab = np.zeros((h, w), np.uint8)
            lab[: h // 2], lab[h // 2:, : w // 2] = labels
            img = (rng.random((h, w, 3)) * 60 + lab[..., None] * 20).astype(np.uint8)
            Image.fromarray(img).save(root / "images" / split / f"ADE_{split}_{i:08d}.jpg")
            Image.fromarray(lab).save(root / "annotations" / split / f"ADE_{split}_{i:08d}.png")
    return root


@pytest.fixture(scope="module")
def ade(tmp_path_factory):
    return _write_ade(tmp_path_factory.mktemp("ade") / "ADEChallengeData2016")


def test_ade20k_layout_splits_and_labels(ade):
    assert detect_format(ade) == "ade20k" and detect_format(ade.parent) == "ade20k"
    assert len(ADE20K_CLASSES) == 150 and ADE20K_CLASSES[0] == "wall" and ADE20K_CLASSES[-1] == "flag"
    train_set, info = build_dataset(str(ade.parent), "train", image_size=48, crop_size=32)
    val_set, _ = build_dataset(str(ade), "val")
    test_set, test_info = build_dataset(str(ade), "test", image_size=48)
    assert (len(train_set), len(val_set), len(test_set)) == (9, 1, 3)  # val: a seeded 10 % of training
    assert info.name == "ade20k" and info.num_classes == 150 and info.ignore_index == 255
    assert info.class_names == ADE20K_CLASSES and info.image_size == (32, 32) and test_info.image_size is None
    image, mask = train_set[0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)
    raw = test_set.mask_loader(test_set.masks[0])  # label 0 -> ignored, k -> k - 1
    assert set(raw.unique().tolist()) == {255, 2, 6} and raw.shape == (40, 52)
    image, mask = test_set[1]  # 43x54 resized to a shorter side of 48, aspect kept
    assert image.shape == (3, 48, 60) and mask.shape == (48, 60)


def test_ade20k_bad_folders_name_the_file_and_fix(tmp_path):
    from PIL import Image

    root = _write_ade(tmp_path / "a", n_train=3, n_val=2)
    (root / "annotations" / "validation" / "ADE_validation_00000001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"ADE_validation_00000001\.jpg' has no annotation .*add its label map"):
        build_dataset(str(root), "test")
    root = _write_ade(tmp_path / "b", n_train=3, n_val=2)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "annotations" / "validation" / "ADE_validation_00000000.png")
    with pytest.raises(DataFileError, match=r"annotation .*ADE_validation_00000000\.png' is 10x10 but its image .* is 40x52.*re-export"):
        build_dataset(str(root), "test")
    data, _ = build_dataset(str(root), "test", verify=False)  # unchecked at build: the sample names both files
    with pytest.raises(DataFileError, match=r"ADE_validation_00000000\.jpg.*\(40, 52\) but its labels .*\(10, 10\).*re-export"):
        data[0]
    root = _write_ade(tmp_path / "c", n_train=3, n_val=2, labels=(3, 200))
    data, _ = build_dataset(str(root), "test")
    with pytest.raises(DataFileError, match=r"ADE_validation_00000000\.png' holds label 200, outside 0 \(other\) \.\. 150.*num_classes"):
        data[0]
    Image.fromarray(np.zeros((43, 54, 3), np.uint8)).save(root / "annotations" / "validation" / "ADE_validation_00000001.png")
    with pytest.raises(DataFileError, match=r"annotation .*ADE_validation_00000001\.png' should be a single-channel PNG"):
        data[1]
    data, info = build_dataset(str(root), "test", num_classes=200)
    labels = data[0][1]
    assert int(labels[labels != 255].max()) == 199 and info.class_names is None
    with pytest.raises(ValueError, match="crop_size .* does not fit"):
        build_dataset(str(root), "train", image_size=32, crop_size=64)
    with pytest.raises(FileNotFoundError, match="ADEChallengeData2016"):
        build_dataset("ade20k", "train", root=str(tmp_path))


@pytest.mark.slow
def test_train_eval_predict_on_an_ade20k_folder(ade, tmp_path, capsys):
    from wavevision.cli import main

    out = tmp_path / "run"
    result = train(dict(model="upernet_wave_vit_s"), dataset=str(ade), model_args=SMALL, dataset_args=dict(image_size=32),
                   epochs=1, batch_size=3, output=str(out), **QUICK)
    assert result.task == "segmentation" and result.model_name == "upernet_wave_vit_s"
    assert isinstance(result.model, UperNet) and result.model.num_classes == 150
    assert 0 <= result.test["miou"] <= 100 and math.isfinite(result.test["loss"])
    assert main(["eval", str(out), "--no-progress"]) == 0
    assert "miou" in capsys.readouterr().out
    image = ade / "images" / "validation" / "ADE_validation_00000002.jpg"
    assert main(["predict", str(out), str(image), "-o", str(tmp_path / "pred")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "pred" / "ADE_validation_00000002_mask.png").size == (56, 46)


@pytest.mark.slow
def test_aux_head_trains_on_digit_scenes(tmp_path):
    """The embedded segmentation set (1 channel, 11 classes) with the auxiliary head: its loss goes through the task."""
    result = train(dict(model="upernet_wave_vit_s"), dataset="digit-scenes", model_args={**SMALL, "aux_head": True},
                   dataset_args=dict(num_scenes=6), epochs=1, batch_size=3, output=str(tmp_path / "seg"), **QUICK)
    assert result.model.in_chans == 1 and result.model.auxiliary_head is not None
    assert math.isfinite(result.history[0]["train_loss"]) and 0 <= result.test["miou"] <= 100


def test_timm_layer_decay_groups_the_backbone_under_its_prefix():
    timm = require("timm")
    from timm.optim import create_optimizer_v2

    wavevision.register_timm()
    model = timm.create_model("upernet_wave_vit_s", **SMALL)
    assert model.group_matcher()["stem"] == r"^backbone\.patch_embed1\."
    opt = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    assert len({g["lr_scale"] for g in opt.param_groups}) > 4  # stem, blocks, stages; the decoder is the head (1.0)
    assert max(g["lr_scale"] for g in opt.param_groups) == 1.0
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_reset_classifier_rebuilds_both_heads_and_mmsegmentation_init():
    model = wavevision.create_model("upernet_wave_vit_s", aux_head=True, **SMALL)
    seg = model.decode_head.conv_seg
    assert seg.weight.std().item() == pytest.approx(0.01, rel=0.2) and not seg.bias.any()  # normal(0, 0.01)
    model.reset_classifier(0)
    assert model.auxiliary_head is None and isinstance(model.get_classifier(), torch.nn.Identity)
    model.reset_classifier(7)
    assert model.auxiliary_head.conv_seg.out_channels == 7 and model.get_classifier().out_channels == 7
    y = model.train()(torch.rand(2, 3, 32, 32))
    assert y.logits.shape == y.aux_logits.shape == (2, 7, 32, 32)


# ------------------------------------------------------------------------------------
# UperNet on WTConvNeXt (BGU-CS-VIL/WTConv semantic_segmentation/configs/wtconvnext/*.py)

WT_DIMS = {"tiny": (96, 192, 384, 768), "small": (96, 192, 384, 768), "base": (128, 256, 512, 1024)}
WT_DROP_PATH = {"tiny": 0.4, "small": 0.3, "base": 0.4}  # the configs' backbone drop_path_rate
WT_SMALL = small_overrides("upernet_wtconvnext_tiny")  # the small WTConvNeXt, a 32-channel decoder (inputs >= 96 px)


@pytest.mark.parametrize("size", ["tiny", "small", "base"])
def test_wtconvnext_parameter_counts_by_hand(size):
    name, dims = f"upernet_wtconvnext_{size}", WT_DIMS[size]
    with torch.device("meta"):
        model = wavevision.create_model(name)
        backbone = wavevision.create_model(f"wtconvnext_{size}", features_only=True)
        with_aux = wavevision.create_model(name, aux_head=True)
    assert count_parameters(model.backbone) == count_parameters(backbone)  # the classifier without its head
    assert count_parameters(model.stage_norms) == 2 * sum(dims)  # MMPretrain's norm0-norm3 (LN2d weight and bias)
    assert count_parameters(model.decode_head) == _uperhead_params(dims)  # in_channels = the stage widths
    assert count_parameters(model) == wavevision.get_entry(name).params
    # the configs' auxiliary FCN head on stage 3 (in_index 2): a 3x3 block of 256 channels and a 1x1 classifier
    assert count_parameters(with_aux) - count_parameters(model) == _conv_block(dims[2], 256, 3) + 256 * 150 + 150
    assert with_aux.aux_weight == 0.4 and with_aux.auxiliary_head.convs[0].conv.in_channels == dims[2]
    head = model.decode_head
    assert [m[0].cells for m in head.psp_modules] == [1, 2, 3, 6] and head.dropout.p == 0.1
    assert head.conv_seg.out_channels == 150 and head.fpn_bottleneck.conv.out_channels == 512
    blocks = [b for stage in model.backbone.stages for b in stage.blocks]
    assert blocks[-1].drop_path.p == pytest.approx(WT_DROP_PATH[size])  # linear from 0 over all blocks
    cfg = model.pretrained_cfg
    assert cfg["metrics"] == {} and cfg["task"] == "segmentation"  # the WTConv repository publishes no result
    assert cfg["min_input_size"] == (3, 96, 96) and model.min_input_size == 96
    assert model.feature_info.channels() == list(dims) and model.feature_info.reduction() == [4, 8, 16, 32]


def test_wtconvnext_layer_scale_starts_at_one_under_given_backbone_args():
    model = wavevision.create_model("upernet_wtconvnext_tiny", **WT_SMALL)
    gammas = [b.gamma for stage in model.backbone.stages for b in stage.blocks]
    assert gammas and all(torch.equal(g, torch.ones_like(g)) for g in gammas)  # the configs' layer_scale_init_value
    assert model.model_kwargs["backbone_args"]["ls_init_value"] == 1.0  # recorded: a rebuild makes the same model
    other = wavevision.create_model("upernet_wtconvnext_tiny", **{**WT_SMALL, "backbone_args": {
        **WT_SMALL["backbone_args"], "ls_init_value": 0.5}})
    assert torch.equal(other.backbone.stages[0].blocks[0].gamma, torch.full((8,), 0.5))
    import wavevision.utils.deprecation as deprecation

    deprecation._WARNED.discard("UperNet(backbone_kwargs=...)")
    with pytest.warns(FutureWarning, match="backbone_kwargs"):  # the old name merges the same way
        old = wavevision.create_model("upernet_wtconvnext_tiny", channels=32, backbone_kwargs=WT_SMALL["backbone_args"])
    assert torch.equal(old.backbone.stages[3].blocks[0].gamma, torch.ones(32))


def _layer_norm_2d(x, norm):
    """LayerNorm over the channels of a (B, C, H, W) map, written out (MMPretrain's LN2d, eps 1e-6)."""
    mean = x.mean(1, keepdim=True)
    var = (x - mean).square().mean(1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-6) * norm.weight[:, None, None] + norm.bias[:, None, None]


def test_wtconvnext_maps_are_the_backbones_through_their_own_norms_at_odd_sizes():
    torch.manual_seed(0)
    model = wavevision.create_model("upernet_wtconvnext_tiny", **WT_SMALL).eval()
    for norm in model.stage_norms:  # away from their init, so the test sees them
        norm.weight.data.uniform_(0.5, 1.5), norm.bias.data.uniform_(-0.5, 0.5)
    ref = wavevision.create_model("wtconvnext_tiny", features_only=True, **WT_SMALL["backbone_args"]).eval()
    ref.load_state_dict(model.backbone.state_dict())
    x = torch.rand(1, 3, 97, 131, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        for got, raw, norm, s in zip(maps, ref(x), model.stage_norms, (4, 8, 16, 32)):
            assert got.shape[-2:] == (97 // s, 131 // s)  # unpadded strided convs floor the sizes
            torch.testing.assert_close(got, _layer_norm_2d(raw, norm), atol=1e-5, rtol=1e-5)
        some = model.forward_intermediates(x, indices=[1, 3], intermediates_only=True)
        assert torch.equal(some[0], maps[1]) and torch.equal(some[1], maps[3])
        feats = model.forward_features(x)
        out = model(x)
    assert feats.shape == (1, 32, 24, 32) and out.shape == (1, 150, 97, 131)
    # the x4 logits cover the first 96 x 128 pixels; the rest repeat the last row and column
    full = model.forward_head(feats)
    torch.testing.assert_close(out[..., :96, :128], full, atol=0, rtol=0)
    assert torch.equal(out[..., 96, :128], full[..., 95, :]) and torch.equal(out[..., :96, 130], full[..., :, 127])
    for size in ((96, 96), (101, 99), (128, 100)):
        with torch.no_grad():
            assert model(torch.rand(1, 3, *size)).shape == (1, 150, *size)
    with pytest.raises(ValueError, match=r"too small for UperNet: the minimum is 96x96 \(the smallest input its "
                                         r"wtconvnext_tiny backbone takes\); resize or pad"):
        model(torch.rand(1, 3, 95, 128))


def test_wtconvnext_auxiliary_head_reads_stage_3_and_trains():
    torch.manual_seed(0)
    model = wavevision.create_model("upernet_wtconvnext_tiny", aux_head=True, **WT_SMALL).train()
    assert model.aux_index == 2 and model.auxiliary_head.convs[0].conv.in_channels == 24
    y = model(torch.rand(2, 3, 99, 103))
    assert isinstance(y, SegmentationOutput) and y.logits.shape == y.aux_logits.shape == (2, 150, 99, 103)
    assert y.aux_weight == 0.4
    (y.logits.square().mean() + y.aux_logits.square().mean()).backward()
    trained = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in trained)
    assert model.stage_norms[2].weight.grad.abs().sum() > 0  # the auxiliary head reads the normalised stage-3 map
    model.eval()
    assert isinstance(model(torch.rand(1, 3, 96, 96)), torch.Tensor)  # eval: the main logits only


def test_wtconvnext_backbone_checkpoint_loads_with_the_stage_norms_at_init(tmp_path):
    args = WT_SMALL["backbone_args"]
    clf, path = _save_classifier(tmp_path, "wtconvnext_tiny", **args)
    model = wavevision.create_model("upernet_wtconvnext_tiny", backbone_checkpoint=str(path), **WT_SMALL)
    own = clf.state_dict()
    backbone = {k.removeprefix("backbone."): v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    # the backbone's keys are the classifier's without its head (pool, LayerNorm, fc)
    assert set(backbone) == {k for k in own if not k.startswith("head.")} and "stages.0.blocks.0.conv_dw.wt_filter" in backbone
    assert all(torch.equal(v, own[k]) for k, v in backbone.items())
    assert not any(k.startswith("backbone.norm") for k in model.state_dict())  # the norms live beside the backbone
    for norm in model.stage_norms:  # not in the ImageNet checkpoint: weight 1, bias 0 (MMPretrain's LN2d init)
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and not norm.bias.any()
    # the public model's state dict (the released checkpoints' keys) as a .pth, under timm's "state_dict"
    torch.save({"state_dict": own}, tmp_path / "public.pth")
    again = wavevision.create_model("upernet_wtconvnext_tiny", backbone_checkpoint=tmp_path / "public.pth", **WT_SMALL)
    assert torch.equal(again.backbone.stem[0].weight, clf.stem[0].weight)
    _, wider = _save_classifier(tmp_path / "w", "wtconvnext_tiny", **{**args, "dims": (16, 16, 24, 32)})
    with pytest.raises(CheckpointMismatchError, match=r"first mismatching key 'stem\.0\.weight' is \(16, 3, 4, 4\) in "
                                                      r"the checkpoint but \(8, 3, 4, 4\) in the model"):
        wavevision.create_model("upernet_wtconvnext_tiny", backbone_checkpoint=wider, **WT_SMALL)


def test_wtconvnext_stage_wise_lr_decay_reads_the_models_names():
    """The configs' LearningRateDecayOptimizerConstructor (stage_wise, decay 0.9, num_layers 6 for T) on the
    real parameter names: stem and downsampling 0.9^7, stage i 0.9^(6 - i), the norms and heads 1."""
    from wavevision.engine.config import TrainConfig
    from wavevision.engine.schedule import build_optimizer

    model = wavevision.create_model("upernet_wtconvnext_tiny", aux_head=True, **WT_SMALL)
    cfg = TrainConfig(lr=1e-4, weight_decay=0.05, layer_decay=0.9, layer_decay_type="stage_wise",
                      layer_decay_layers=6).validate()
    opt = build_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    scale = {names[id(p)]: g["lr"] / 1e-4 for g in opt.param_groups for p in g["params"]}
    decay = {names[id(p)]: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    want = {"backbone.stem.0.weight": 0.9 ** 7, "backbone.stages.1.downsample.1.weight": 0.9 ** 7,
            "backbone.stages.0.blocks.0.conv_dw.base_conv.weight": 0.9 ** 6,
            "backbone.stages.1.blocks.0.mlp.fc1.weight": 0.9 ** 5, "backbone.stages.2.blocks.0.gamma": 0.9 ** 4,
            "backbone.stages.3.blocks.0.conv_dw.wavelet_scale.0.weight": 0.9 ** 3, "stage_norms.0.weight": 1.0,
            "decode_head.conv_seg.weight": 1.0, "auxiliary_head.convs.0.conv.weight": 1.0}
    for name, value in want.items():
        assert scale[name] == pytest.approx(value), name
    # MMSegmentation's weight decay: none on 1-D tensors (biases, norms, layer scales); the 4-D WTConv scales decay
    assert decay["backbone.stages.2.blocks.0.gamma"] == 0.0 and decay["stage_norms.0.bias"] == 0.0
    assert decay["backbone.stages.3.blocks.0.conv_dw.wavelet_scale.0.weight"] == 0.05
    assert "backbone.stages.0.blocks.0.conv_dw.wt_filter" not in scale  # the wavelet filters are not trained
    assert set(scale) == {n for n, p in model.named_parameters() if p.requires_grad}
