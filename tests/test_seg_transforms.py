"""MMSegmentation's ADE20K pipeline (``wavevision.data.seg_transforms``, ``pipeline=mmseg``) and
sliding-window segmentation inference.

Independent truths: sizes computed by hand from MMCV's keep-ratio rule, label maps built so the
acceptable crops are known, Python's ``colorsys`` for HSV, and whole-image inference of a
pointwise (1x1 convolution) model for the sliding window.
"""
from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest
import torch

from wavevision.data import DatasetInfo, build_dataset
from wavevision.data.seg_transforms import (
    CatMaxRatioCrop,
    Pad,
    PhotoMetricDistortion,
    RandomFlip,
    Rescale,
    mmseg_train_pipeline,
    reduce_zero_label,
    rescale_size,
)
from wavevision.engine.evaluate import evaluate
from wavevision.engine.tasks.segmentation import SlidingWindow, slide_inference, window_starts

from _optional import require


@pytest.fixture
def vision():
    """The transforms run torchvision's v2 functional ops (the vision extra)."""
    require("torchvision")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_rescale_keeps_the_ratio_within_both_bounds(vision):
    # factor = min(2048 / long, 512 / short); sides int(x + 0.5), as MMCV's imrescale
    assert rescale_size(300, 400, (2048, 512)) == (512, 683)  # 400 * 512 / 300 = 682.67
    assert rescale_size(100, 1000, (2048, 512)) == (205, 2048)  # the long side binds: 2.048
    assert rescale_size(400, 300, (512, 2048)) == (683, 512)  # the order of scale does not matter
    image, label = torch.rand(3, 20, 40), torch.randint(0, 3, (20, 40))
    fixed = Rescale((80, 20))
    assert fixed(image, label)[0].shape == (3, 20, 40)  # the scale's own size: unchanged
    heights = []
    rescale = Rescale((80, 20), (0.5, 2.0), generator=_gen(0))
    for _ in range(200):
        out, lab = rescale(image, label)
        h, w = out.shape[-2:]
        heights.append(h)
        assert lab.shape == (h, w) and w == 2 * h  # keep-ratio of a 1:2 image
        assert set(lab.unique().tolist()) <= {0, 1, 2}  # labels are never blended
    # ratio 0.5 .. 2.0 of a short side of 20: scale (int(80 r), int(20 r)) -> 10 .. 40
    assert 10 <= min(heights) <= 11 and 39 <= max(heights) <= 40
    with pytest.raises(ValueError, match="ratio_range"):
        Rescale((80, 20), (2.0, 0.5))


def _two_classes(split_column: int, width: int = 64) -> torch.Tensor:
    label = torch.zeros(16, width, dtype=torch.long)
    label[:, split_column:] = 1
    return label


def test_cat_max_ratio_rejects_a_crop_dominated_by_one_class(vision):
    crop = CatMaxRatioCrop((16, 32), 0.75)
    assert not crop.acceptable(torch.zeros(4, 4, dtype=torch.long))  # one class only
    assert not crop.acceptable(_two_classes(24, 32))  # 3/4 exactly: not below 0.75
    assert crop.acceptable(_two_classes(16, 32))  # half and half
    assert not crop.acceptable(torch.full((4, 4), 255))  # nothing labelled
    mostly_ignored = torch.full((10, 10), 255)
    mostly_ignored[0, :6], mostly_ignored[1, :4] = 3, 5  # 6 : 4 of the labelled pixels; 255 does not count
    assert crop.acceptable(mostly_ignored)
    # classes 0 | 1 split at column 40 of 64: a 32-wide window at left L is acceptable for 17 <= L <= 31
    label = _two_classes(40)
    image = torch.arange(64.0).expand(3, 16, 64)  # the column index, to see where the crop came from
    unchecked = [CatMaxRatioCrop((16, 32), 1.0, generator=_gen(s))(image, label) for s in range(20)]
    assert any(not crop.acceptable(lab) for _, lab in unchecked)  # without the check, bad crops happen
    for seed in range(20):
        out, lab = CatMaxRatioCrop((16, 32), 0.75, generator=_gen(seed))(image, label)
        left = int(out[0, 0, 0])
        assert 17 <= left <= 31 and crop.acceptable(lab) and torch.equal(lab, label[:, left:left + 32])
    # an acceptable first window is kept: the same draw as without the check
    stripes = (torch.arange(64) % 2).expand(16, 64)
    for seed in range(5):
        a = CatMaxRatioCrop((8, 8), 0.75, generator=_gen(seed))(image, stripes)
        b = CatMaxRatioCrop((8, 8), 1.0, generator=_gen(seed))(image, stripes)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    small = CatMaxRatioCrop((32, 32), 0.75, generator=_gen(0))(torch.rand(3, 10, 12), torch.zeros(10, 12).long())
    assert small[0].shape == (3, 10, 12) and small[1].shape == (10, 12)  # smaller images: the whole side


def test_flip_moves_image_and_label_together(vision):
    label = torch.arange(12).view(3, 4)
    image = label.float().expand(3, 3, 4)
    out, lab = RandomFlip(1.0)(image, label)
    assert torch.equal(lab, label.flip(-1)) and torch.equal(out, image.flip(-1))
    out, lab = RandomFlip(0.0)(image, label)
    assert torch.equal(lab, label) and torch.equal(out, image)
    flip = RandomFlip(0.5, generator=_gen(0))
    flipped = 0
    for _ in range(40):
        out, lab = flip(image, label)
        assert torch.equal(out[0], lab.float())
        flipped += bool(torch.equal(lab, label.flip(-1)))
    assert 5 < flipped < 35


def _only(**kw) -> dict:
    base = dict(brightness_delta=0, contrast_range=(1.0, 1.0), saturation_range=(1.0, 1.0), hue_delta=0)
    return {**base, **kw}


def test_photometric_distortion_keeps_the_label_and_each_range(vision):
    label = torch.randint(0, 150, (4, 5))
    # brightness: + U(-32, 32) on the 0-255 scale, half the time
    grey = torch.full((3, 4, 5), 0.5)
    t = PhotoMetricDistortion(**_only(brightness_delta=32), generator=_gen(0))
    deltas = []
    for _ in range(60):
        out, lab = t(grey, label)
        assert torch.equal(lab, label)
        deltas.append(float(out[0, 0, 0] - 0.5) * 255)
        assert torch.allclose(out, out[0, 0, 0].expand_as(out))
    assert all(-32 - 1e-4 <= d <= 32 + 1e-4 for d in deltas)
    assert min(deltas) < -10 and max(deltas) > 10 and sum(abs(d) < 1e-6 for d in deltas) > 10
    # contrast: x U(0.5, 1.5) of the values themselves (MMSeg; no blend towards the mean)
    image = torch.rand(3, 4, 5) * 0.6 + 0.01
    t = PhotoMetricDistortion(**_only(contrast_range=(0.5, 1.5)), generator=_gen(1))
    factors = []
    for _ in range(60):
        out, _ = t(image, label)
        ratio = out / image
        assert torch.allclose(ratio, ratio[0, 0, 0].expand_as(ratio), atol=1e-5)
        factors.append(float(ratio[0, 0, 0]))
    assert all(0.5 - 1e-5 <= f <= 1.5 + 1e-5 for f in factors) and min(factors) < 0.8 and max(factors) > 1.2
    # saturation and hue, read back with colorsys
    pixel = torch.tensor([0.6, 0.3, 0.3]).view(3, 1, 1)  # hue 0, saturation 0.5, value 0.6
    sat = PhotoMetricDistortion(**_only(saturation_range=(0.5, 1.5)), generator=_gen(2))
    hue = PhotoMetricDistortion(**_only(hue_delta=18), generator=_gen(3))
    scales, shifts = [], []
    for _ in range(60):
        h, s, v = colorsys.rgb_to_hsv(*sat(pixel, label)[0].flatten().tolist())
        assert v == pytest.approx(0.6, abs=1e-5) and min(h, 1 - h) < 1e-5
        scales.append(s / 0.5)
        h, s, v = colorsys.rgb_to_hsv(*hue(pixel, label)[0].flatten().tolist())
        assert s == pytest.approx(0.5, abs=1e-5) and v == pytest.approx(0.6, abs=1e-5)
        shifts.append(round(((h + 0.5) % 1.0 - 0.5) * 360, 3))  # degrees, in (-180, 180]
    assert all(0.5 - 1e-4 <= f <= 1.5 + 1e-4 for f in scales) and min(scales) < 0.8 and max(scales) > 1.2
    # OpenCV half-degree units -18 .. 17: -36 .. 34 degrees in steps of 2
    assert all(-36 - 1e-3 <= d <= 34 + 1e-3 and abs(d / 2 - round(d / 2)) < 1e-2 for d in shifts)
    assert min(shifts) < -10 and max(shifts) > 10
    # every pixel of a random image: HSV there and back is the identity (colorsys's values)
    rgb = torch.rand(3, 6, 7)
    for _ in range(20):  # until the coin shifts the hue
        out, _ = hue(rgb, label)
        if not torch.equal(out, rgb):
            break
    assert not torch.equal(out, rgb)
    pixels_in, pixels_out = rgb.flatten(1).T.tolist(), out.flatten(1).T.tolist()
    turns = [(colorsys.rgb_to_hsv(*o)[0] - colorsys.rgb_to_hsv(*i)[0]) % 1.0 for i, o in zip(pixels_in, pixels_out)]
    assert max(turns) - min(turns) < 1e-4  # one shift for the whole image


def test_padding_fills_image_with_0_and_label_with_255(vision):
    image, label = torch.rand(3, 5, 6) + 1, torch.randint(0, 3, (5, 6))
    out, lab = Pad((8, 7))(image, label)
    assert out.shape == (3, 8, 7) and lab.shape == (8, 7)
    assert torch.equal(out[:, :5, :6], image) and torch.equal(lab[:5, :6], label)
    assert (out[:, 5:] == 0).all() and (out[:, :, 6:] == 0).all()
    assert (lab[5:] == 255).all() and (lab[:, 6:] == 255).all()
    assert Pad(4)(image, label)[0] is image  # already large enough


def test_reduce_zero_label():
    assert reduce_zero_label(torch.tensor([0, 1, 2, 150], dtype=torch.uint8)).tolist() == [255, 0, 1, 149]


def test_train_pipeline_is_seeded_and_stacks(vision):
    image, label = torch.rand(3, 40, 60), torch.randint(0, 4, (40, 60))

    def make(seed):
        return mmseg_train_pipeline(scale=(64, 16), crop_size=(24, 24), mean=(0.5,) * 3, std=(0.25,) * 3,
                                    generator=_gen(seed))

    a, b, c = make(0)(image, label), make(0)(image, label), make(1)(image, label)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    for seed in range(10):  # rescaled short sides 8 .. 32: small ones are padded to the crop
        out, lab = make(seed)(image, label)
        assert out.shape == (3, 24, 24) and lab.shape == (24, 24) and lab.dtype == torch.long


def test_sliding_window_equals_whole_image_for_a_pointwise_model():
    assert window_starts(50, 32, 21) == [0, 18] and window_starts(20, 32, 21) == [0]
    assert window_starts(683, 512, 341) == [0, 171] and window_starts(512, 512, 341) == [0]
    assert window_starts(1100, 512, 341) == [0, 341, 588]
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 1)
    x = torch.randn(2, 3, 50, 70)
    with torch.no_grad():
        assert torch.allclose(slide_inference(conv, x, (32, 32), (21, 21)), conv(x), atol=1e-5)
        assert torch.allclose(SlidingWindow(conv, 16, 5)(x), conv(x), atol=1e-5)

    def ones(t):  # the count map: every pixel covered, averaged
        return torch.ones(t.shape[0], 1, *t.shape[-2:])

    assert torch.equal(slide_inference(ones, x, (32, 32), (21, 21)), torch.ones(2, 1, 50, 70))
    with pytest.raises(ValueError, match="stride .* larger than its crop"):
        SlidingWindow(conv, 16, 20)
    info = DatasetInfo(name="toy", task="segmentation", in_chans=3, num_classes=4, class_names=None, image_size=None,
                       mean=(), std=(), ignore_index=255)
    data = [(torch.randn(3, 40, 45), torch.randint(0, 4, (40, 45))) for _ in range(3)]
    whole = evaluate(conv, data, info, batch_size=1, device="cpu")
    slid = evaluate(conv, data, info, batch_size=1, device="cpu", sliding_window=(16, 11))
    assert slid["miou"] == pytest.approx(whole["miou"]) and slid["loss"] == pytest.approx(whole["loss"], rel=1e-5)


def _write_ade(root, n_train=6, n_val=2):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("training", n_train), ("validation", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = 30 + 3 * i, 44 + 2 * i
            lab = np.zeros((h, w), np.uint8)
            lab[: h // 2], lab[h // 2:, : w // 2] = 3, 7
            img = (rng.random((h, w, 3)) * 60 + lab[..., None] * 20).astype(np.uint8)
            Image.fromarray(img).save(root / "images" / split / f"ADE_{split}_{i:08d}.jpg")
            Image.fromarray(lab).save(root / "annotations" / split / f"ADE_{split}_{i:08d}.png")
    return root


def test_ade20k_mmseg_pipeline_option(tmp_path, vision):
    root = _write_ade(tmp_path / "ADEChallengeData2016")
    torch.manual_seed(0)
    train_set, info = build_dataset(str(root), "train", augment=True, pipeline="mmseg", scale=[64, 16], crop_size=24)
    assert info.image_size == (24, 24)
    for i in range(len(train_set)):
        image, label = train_set[i]
        assert image.shape == (3, 24, 24) and label.shape == (24, 24)
        assert set(label.unique().tolist()) <= {2, 6, 255}  # reduce_zero_label, pad 255
    plain, _ = build_dataset(str(root), "train", augment=False, pipeline="mmseg", scale=[64, 16], crop_size=12)
    assert plain[0][0].shape == (3, 12, 12)
    test_set, test_info = build_dataset(str(root), "test", pipeline="mmseg", scale=[64, 16])
    image, label = test_set[1]  # 33x46 -> factor min(64/46, 16/33): 16x22
    assert test_info.image_size is None and image.shape == (3, 16, 22) and label.shape == (16, 22)
    with pytest.raises(ValueError, match="image_size does not apply to pipeline=mmseg; give scale"):
        build_dataset(str(root), "train", pipeline="mmseg", image_size=32)
    with pytest.raises(ValueError, match="scale applies to pipeline=mmseg only"):
        build_dataset(str(root), "train", scale=[64, 16])
    with pytest.raises(ValueError, match="pipeline"):
        build_dataset(str(root), "train", pipeline="mmdet")


@pytest.mark.slow
def test_two_step_train_with_the_mmseg_pipeline(tmp_path, capsys, vision):
    from wavevision.cli import main

    from _small import small_overrides

    root = _write_ade(tmp_path / "ADEChallengeData2016")
    out = tmp_path / "run"
    model_args = [a for k, v in small_overrides("upernet_wave_vit_s").items()
                  for a in ("--model-arg", f"{k}={json.dumps(v)}")]
    argv = ["train", "--model", "upernet_wave_vit_s", *model_args, "--dataset", str(root),
            "--dataset-arg", "pipeline=mmseg", "--dataset-arg", "scale=[64, 32]", "--dataset-arg", "crop_size=32",
            "--epochs", "1", "--batch-size", "2", "--max-train-batches", "2", "--max-eval-batches", "1",
            "--threads", "1", "--no-progress", "--no-plots", "--json", "-o", str(out)]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["dataset_args"] == {"pipeline": "mmseg", "scale": [64, 32], "crop_size": 32}
    assert 0 <= result["test"]["miou"] <= 100 and result == json.loads((out / "results.json").read_text())
    # evaluation by sliding windows from the command line (the run's pipeline: keep-ratio rescale to a short side of 32: two windows across)
    assert main(["eval", str(out), "--sliding-window", "32", "21", "--no-progress", "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= metrics["miou"] <= 100 and metrics["images"] == 2
    assert main(["eval", str(out), "--sliding-window", "32", "40", "--no-progress"]) == 2
    assert "stride (40, 40) is larger than its crop (32, 32)" in capsys.readouterr().err
