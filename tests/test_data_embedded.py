"""The embedded real datasets (digits, digit-scenes, photos) against the data they come from."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wavevision.data import build_dataset

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def sk_digits():
    bunch = sklearn_datasets.load_digits()
    return torch.tensor(bunch.images, dtype=torch.float32), torch.tensor(bunch.target)


def _indices_of(images: torch.Tensor, sk_up: torch.Tensor) -> list[int]:
    """Match each image to the sklearn digit it equals (by exact bytes)."""
    lookup = {bytes(x.numpy().tobytes()): i for i, x in enumerate(sk_up)}
    return [lookup[bytes(x.numpy().tobytes())] for x in images]


def test_digits_splits_partition_the_real_data(sk_digits):
    images, targets = sk_digits
    up = F.interpolate(images[:, None] / 16.0, size=(16, 16), mode="bilinear", align_corners=False)
    seen: dict[str, list[int]] = {}
    for split in ("train", "val", "test"):
        ds, info = build_dataset("digits", split)
        assert info.task == "classification" and info.in_chans == 1 and info.num_classes == 10
        assert info.image_size == (16, 16) and info.class_names == tuple("0123456789")
        mean, std = torch.tensor(info.mean).view(1, 1, 1), torch.tensor(info.std).view(1, 1, 1)
        raw = torch.stack([ds[i][0] for i in range(len(ds))]) * std + mean
        assert raw.shape == (len(ds), 1, 16, 16) and raw.dtype == torch.float32
        idx = _indices_of(raw.clamp(0, 1).mul(1e4).round(), up.mul(1e4).round())
        assert [ds[i][1] for i in range(len(ds))] == targets[idx].tolist()
        torch.testing.assert_close(raw, up[idx], atol=1e-6, rtol=0)
        seen[split] = idx
    assert {k: len(v) for k, v in seen.items()} == {"train": 1259, "val": 179, "test": 359}
    assert len(set(seen["train"]) | set(seen["val"]) | set(seen["test"])) == 1797
    # stratified: every class in every split
    for idx in seen.values():
        assert set(targets[idx].tolist()) == set(range(10))


def test_digits_fixed_split_and_deterministic_augment():
    a, _ = build_dataset("digits", "train", augment=True)
    b, _ = build_dataset("digits", "train", augment=True)
    torch.manual_seed(3)
    xa = torch.stack([a[i][0] for i in range(32)])
    torch.manual_seed(3)
    xb = torch.stack([b[i][0] for i in range(32)])
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)
    plain, _ = build_dataset("digits", "train")
    assert not torch.equal(xa, torch.stack([plain[i][0] for i in range(32)]))  # crops moved something
    assert [a[i][1] for i in range(32)] == [plain[i][1] for i in range(32)]
    c = pickle.loads(pickle.dumps(a))
    torch.manual_seed(3)
    torch.testing.assert_close(torch.stack([c[i][0] for i in range(32)]), xa, rtol=0, atol=0)


def test_digits_image_size_option_and_errors():
    ds, info = build_dataset("digits", "val", image_size=28)
    assert ds[0][0].shape == (1, 28, 28) and info.image_size == (28, 28)
    ds, info = build_dataset("digits", "val", image_size=8)
    assert ds[0][0].shape == (1, 8, 8)
    with pytest.raises(ValueError, match="image_sise.*image_size"):
        build_dataset("digits", "train", image_sise=16)
    with pytest.raises(ValueError, match="split: 'valid' is not a valid choice.*'val'"):
        build_dataset("digits", "valid")
    with pytest.raises(ValueError, match=r"dataset: 'digit' is not a valid choice \(did you mean 'digits'"):
        build_dataset("digit", "train")


def _raw(image: torch.Tensor, info) -> torch.Tensor:
    mean = torch.tensor(info.mean).view(-1, 1, 1)
    std = torch.tensor(info.std).view(-1, 1, 1)
    return image * std + mean


def test_digit_scenes_are_made_of_the_real_digits_of_their_split(sk_digits):
    images, targets = sk_digits
    used: dict[str, set[int]] = {}
    for split, count in (("train", 1000), ("val", 200), ("test", 200)):
        ds, info = build_dataset("digit-scenes", split)
        assert len(ds) == count and info.task == "segmentation" and info.num_classes == 11
        assert info.ignore_index == 255 and info.image_size == (64, 64) and info.in_chans == 1
        digits_ds, _ = build_dataset("digits", split)
        split_idx = set(digits_ds_indices(split))
        used[split] = {d for placed in ds.layout for d, *_ in placed}
        assert used[split] <= split_idx
        assert all(2 <= len(placed) <= 4 for placed in ds.layout)
        for i in range(0, count, max(1, count // 25)):
            image, mask = ds[i]
            assert image.shape == (1, 64, 64) and image.dtype == torch.float32
            assert mask.shape == (64, 64) and mask.dtype == torch.int64
            raw = _raw(image, info)[0]
            expect_img = torch.zeros(64, 64)
            expect_mask = torch.zeros(64, 64, dtype=torch.int64)
            for d, top, left, side in ds.layout[i]:
                up = F.interpolate(images[d][None, None] / 16.0, size=(side, side), mode="bilinear",
                                   align_corners=False)[0, 0]
                expect_img[top:top + side, left:left + side] = up
                expect_mask[top:top + side, left:left + side] = (up >= 5 / 16).long() * (int(targets[d]) + 1)
            torch.testing.assert_close(raw, expect_img, atol=1e-5, rtol=0)
            assert torch.equal(mask, expect_mask)
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]


def digits_ds_indices(split: str) -> list[int]:
    from wavevision.data.embedded import digit_split_indices

    return digit_split_indices(split).tolist()


def test_digit_scenes_augment_moves_image_and_mask_together():
    ds, info = build_dataset("digit-scenes", "val", augment=True, num_scenes=20)
    plain, _ = build_dataset("digit-scenes", "val", num_scenes=20)
    torch.manual_seed(0)
    moved = 0
    for i in range(20):
        image, mask = ds[i]
        raw = _raw(image, info)[0]
        assert torch.all(raw[mask > 0] >= 5 / 16 - 1e-5) and torch.all(raw[mask == 0] < 5 / 16 + 1e-5)
        assert set(mask.unique().tolist()) <= set(plain[i][1].unique().tolist())
        moved += not torch.equal(mask, plain[i][1])
    assert moved > 10
    a, _ = build_dataset("digit-scenes", "test", num_scenes=5, image_size=48, digits_per_scene=(1, 1))
    assert a[0][0].shape == (1, 48, 48) and all(len(p) == 1 for p in a.layout)
    with pytest.raises(ValueError, match="digits_per_scene"):
        build_dataset("digit-scenes", "test", digits_per_scene=(3, 2))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / F.mse_loss(a, b)))


def test_photos_pairs_come_from_the_held_out_photographs():
    skimage_io = pytest.importorskip("skimage.io")
    from pathlib import Path

    import skimage.data
    from PIL import Image

    from wavevision.data import bicubic_downsample, bicubic_upsample
    from wavevision.data.embedded import PHOTOS

    assert not set(PHOTOS["train"]) & set(PHOTOS["val"] + PHOTOS["test"])
    assert not set(PHOTOS["val"]) & set(PHOTOS["test"])
    folder = Path(skimage.data.__file__).parent
    for scale in (2, 4):
        ds, info = build_dataset("photos", "test", scale=scale)
        assert info.task == "super_resolution" and info.scale == scale and info.mean == () and info.in_chans == 3
        assert len(ds) == len(PHOTOS["test"]) and info.image_size == (256, 256)
        for k, name in enumerate(PHOTOS["test"]):
            lr, hr = ds[k]
            assert lr.shape == (3, 256 // scale, 256 // scale) and hr.shape == (3, 256, 256)
            truth = torch.tensor(skimage_io.imread(folder / name), dtype=torch.float32) / 255
            truth = truth[..., None].expand(-1, -1, 3) if truth.dim() == 2 else truth
            H, W = truth.shape[:2]
            H, W = H - H % scale, W - W % scale
            top, left = (H // scale - 256 // scale) // 2 * scale, (W // scale - 256 // scale) // 2 * scale
            torch.testing.assert_close(hr, truth.permute(2, 0, 1)[:, top:top + 256, left:left + 256], atol=1e-6, rtol=0)
            # the LR is the image shrunk by bicubic: Pillow's bicubic reduction agrees
            pil = Image.open(folder / name).convert("RGB").crop((0, 0, W, H)).resize((W // scale, H // scale), Image.BICUBIC)
            pil = torch.tensor(np.asarray(pil), dtype=torch.float32).permute(2, 0, 1) / 255
            t, lft = top // scale, left // scale
            assert _psnr(lr, pil[:, t:t + lr.shape[1], lft:lft + lr.shape[2]]) > 40
            base = _psnr(bicubic_upsample(lr, scale), hr)
            assert 18 < base < 40
    train, info = build_dataset("photos", "train", scale=2, patch_size=32, num_patches=40)
    assert len(train) == 40 and info.image_size == (32, 32)
    lr, hr = train[3]
    assert lr.shape == (3, 16, 16) and hr.shape == (3, 32, 32)
    again, _ = build_dataset("photos", "train", scale=2, patch_size=32, num_patches=40)
    assert torch.equal(again[3][1], hr)  # fixed positions without augment
    aug, _ = build_dataset("photos", "train", scale=4, patch_size=64, augment=True, num_patches=8)
    torch.manual_seed(1)
    for i in range(8):
        lr, hr = aug[i]
        # aligned: shrinking the HR patch gives the LR patch (up to the patch border)
        assert _psnr(bicubic_downsample(hr, 4)[:, 2:-2, 2:-2], lr[:, 2:-2, 2:-2]) > 35
    with pytest.raises(ValueError, match="scale must be 2, 4 or 8"):
        build_dataset("photos", "train", scale=3)
    with pytest.raises(ValueError, match="multiple of the scale"):
        build_dataset("photos", "train", scale=4, patch_size=30)
