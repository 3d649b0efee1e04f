"""Metrics against hand-computed values and an independent implementation (scikit-image)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from wavevision.engine.metrics import (
    ClassificationMeter,
    SegmentationMeter,
    SuperResolutionMeter,
    confusion_matrix,
    miou_from_confusion,
    psnr,
    ssim,
)
from wavevision.ops import rgb_to_y


def test_accuracy_is_weighted_by_samples_across_unequal_batches():
    m = ClassificationMeter(num_classes=6, topk=5)
    # batch 1: 3 samples, 3 right; batch 2: 1 sample, wrong at top-1 but within top-5
    m.update(torch.eye(6)[:3] * 5, torch.tensor([0, 1, 2]))
    m.add_loss(torch.tensor(0.5), 3)
    logits = torch.tensor([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    m.update(logits, torch.tensor([4]))
    m.add_loss(torch.tensor(2.5), 1)
    out = m.compute()
    assert out["top1"] == pytest.approx(75.0)  # 3 of 4 samples, not the mean of 100 % and 0 %
    assert out["top5"] == pytest.approx(100.0)
    assert out["loss"] == pytest.approx((0.5 * 3 + 2.5) / 4)
    last_class = ClassificationMeter(num_classes=6, topk=5)
    last_class.update(logits, torch.tensor([5]))  # the 6th-ranked class is outside the top 5
    assert last_class.compute()["top5"] == 0.0


def test_top5_is_not_reported_with_five_classes_or_fewer():
    m = ClassificationMeter(num_classes=3)
    m.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    assert "top5" not in m.compute()


def test_confusion_matrix_miou_with_ignore_index_by_hand():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, target, 3, ignore_index=255)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    res = miou_from_confusion(cm)
    # IoU: class 0: 1 / (2 + 1 - 1) = 1/2; class 1: 2 / (2 + 3 - 2) = 2/3; class 2: 1
    assert res["miou"] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)
    assert res["pixel_acc"] == pytest.approx(100 * 4 / 5)


def test_miou_skips_classes_absent_from_targets_and_predictions():
    cm = confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]), 4)
    res = miou_from_confusion(cm)
    assert res["miou"] == pytest.approx(100.0)
    assert math.isnan(res["iou"][2]) and math.isnan(res["iou"][3])


def test_segmentation_meter_accumulates_over_batches_and_rejects_bad_labels():
    m = SegmentationMeter(num_classes=3, ignore_index=255)
    target = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    m.update(logits[:, :, :1], target[:, :1])  # the same pixels split into two batches
    m.update(logits[:, :, 1:], target[:, 1:])
    assert m.compute()["miou"] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)
    with pytest.raises(ValueError, match="label 7 is out of range for 3 classes"):
        m.update(logits, torch.full_like(target, 7))


def test_y_channel_is_bt601_studio_range_by_hand():
    # ITU-R BT.601: Kr = 0.299, Kb = 0.114, Kg = 1 - Kr - Kb = 0.587. Studio range puts Y in 16..235
    # of 255, so the RGB weights are K * 219 and the offset 16:
    #   0.299 * 219 = 65.481,  0.587 * 219 = 128.553,  0.114 * 219 = 24.966.
    # Y(R, G, B) * 255 for a few colours, done by hand:
    #   black (0, 0, 0):        16
    #   white (1, 1, 1):        16 + 65.481 + 128.553 + 24.966 = 16 + 219 = 235
    #   red   (1, 0, 0):        16 + 65.481 = 81.481
    #   green (0, 1, 0):        16 + 128.553 = 144.553
    #   blue  (0, 0, 1):        16 + 24.966 = 40.966
    #   grey  (0.5, 0.5, 0.5):  16 + 219 / 2 = 125.5
    #   (1, 0.5, 0.25):         16 + 65.481 + 64.2765 + 6.2415 = 151.999
    colours = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [1, 0.5, 0.25]],
                           dtype=torch.float64)
    by_hand = torch.tensor([16, 235, 81.481, 144.553, 40.966, 125.5, 151.999], dtype=torch.float64) / 255
    y = rgb_to_y(colours.T.reshape(1, 3, 1, 7))
    assert y.shape == (1, 1, 1, 7)
    torch.testing.assert_close(y.flatten(), by_hand, atol=1e-12, rtol=0)
    # full range (JPEG; what WaveMixSR's authors trained on): Y = 0.299 R + 0.587 G + 0.114 B, no offset
    #   (1, 0.5, 0.25): 0.299 + 0.2935 + 0.0285 = 0.621
    full = rgb_to_y(torch.tensor([1, 0.5, 0.25], dtype=torch.float64).view(3, 1, 1), full_range=True)
    assert full.shape == (1, 1, 1) and float(full) == pytest.approx(0.621, abs=1e-12)
    with pytest.raises(ValueError, match="rgb_to_y needs .*3, H, W.* convert grayscale"):
        rgb_to_y(torch.rand(1, 1, 4, 4))


def test_metrics_take_a_grey_image_as_its_own_y():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 1, 12, 12, generator=g), torch.rand(1, 1, 12, 12, generator=g)
    mse = ((a.double() - b.double()) ** 2).mean()
    assert float(psnr(a, b)) == pytest.approx(float(10 * torch.log10(1 / mse)), abs=1e-9)
    with pytest.raises(ValueError, match=r"expected \(B, 1 or 3, H, W\) images, got shape \(1, 2, 12, 12\)"):
        psnr(torch.rand(1, 2, 12, 12), torch.rand(1, 2, 12, 12))


def test_engine_rgb_to_y_is_the_ops_function_with_a_warning():
    import wavevision.engine
    import wavevision.utils.deprecation as deprecation

    deprecation._WARNED.discard("wavevision.engine.rgb_to_y")
    with pytest.warns(FutureWarning, match="wavevision.engine.rgb_to_y is deprecated.*use wavevision.ops.rgb_to_y"):
        assert wavevision.engine.rgb_to_y is rgb_to_y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wavevision.engine.rgb_to_y is rgb_to_y  # once per process


def _y(img: torch.Tensor) -> np.ndarray:
    """Y by hand with NumPy, from the BT.601 formula."""
    a = img.double().clamp(0, 1).numpy()
    return (16 + 65.481 * a[0] + 128.553 * a[1] + 24.966 * a[2]) / 255


def test_psnr_and_ssim_match_scikit_image_on_y_with_border_crop():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 40, 36, generator=g)
    sr = (hr + 0.08 * torch.randn(2, 3, 40, 36, generator=g)).clamp(0, 1)
    border = 4
    got_psnr, got_ssim = psnr(sr, hr, border=border), ssim(sr, hr, border=border)
    for i in range(2):
        y_sr, y_hr = _y(sr[i]), _y(hr[i])
        y_sr, y_hr = y_sr[border:-border, border:-border], y_hr[border:-border, border:-border]
        ref_psnr = metrics.peak_signal_noise_ratio(y_hr, y_sr, data_range=1.0)
        ref_ssim = metrics.structural_similarity(y_hr, y_sr, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                                 use_sample_covariance=False)
        assert float(got_psnr[i]) == pytest.approx(ref_psnr, abs=1e-6)
        assert float(got_ssim[i]) == pytest.approx(ref_ssim, abs=1e-6)


def test_sr_meter_averages_per_image_psnr():
    hr = torch.full((2, 1, 16, 16), 0.5)
    sr = hr.clone()
    sr[0] += 0.1  # MSE 0.01 -> 20 dB
    sr[1] += 0.01  # MSE 1e-4 -> 40 dB
    m = SuperResolutionMeter(border=2)
    m.update(sr[:1], hr[:1])
    m.update(sr[1:], hr[1:])
    m.update(hr, hr * 0 + 0.4, prefix="bicubic_")
    out = m.compute()
    assert out["psnr"] == pytest.approx(30.0, abs=1e-4)  # mean of 20 and 40, not the PSNR of the mean MSE
    assert out["bicubic_psnr"] == pytest.approx(20.0, abs=1e-4)
    assert out["ssim"] <= 1.0


def test_meters_keep_the_same_keys_when_empty():
    # every process must all-reduce the same tensors, even one whose shard had no sample
    cases = [
        (ClassificationMeter(10), torch.randn(2, 10), torch.tensor([1, 2])),
        (SegmentationMeter(3), torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)),
        (SuperResolutionMeter(0), torch.rand(1, 1, 12, 12), torch.rand(1, 1, 12, 12)),
    ]
    for meter, out, target in cases:
        empty = set(meter.totals)
        meter.update(out, target)
        meter.add_loss(torch.tensor(1.0), len(target))
        assert set(meter.totals) == empty
