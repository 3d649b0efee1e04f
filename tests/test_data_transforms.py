"""Tensor transforms, image decoding, the predict-time input transform, bicubic helpers and
the registry's checks."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from wavevision.data import (
    DatasetInfo,
    bicubic_downsample,
    bicubic_upsample,
    build_dataset,
    convert_channels,
    list_datasets,
    load_image,
    prepare_image,
)
from wavevision.data._base import holdout_split, three_way_split
from wavevision.data.transforms import (
    CenterCrop,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    Resize,
    ResizeCover,
    train_transform,
)


def test_random_crop_is_a_window_of_the_padded_image_and_mask():
    torch.manual_seed(0)
    image = torch.rand(2, 6, 7)
    mask = torch.randint(0, 5, (6, 7))
    crop = RandomCrop((6, 7), padding=2)
    padded_img = F.pad(image, (2, 2, 2, 2))
    padded_mask = F.pad(mask, (2, 2, 2, 2), value=255)
    offsets = set()
    for _ in range(30):
        out_img, out_mask = crop(image, mask)
        assert out_img.shape == (2, 6, 7) and out_mask.shape == (6, 7) and out_mask.dtype == mask.dtype
        hits = [(t, lft) for t in range(5) for lft in range(5)
                if torch.equal(padded_img[:, t:t + 6, lft:lft + 7], out_img) and torch.equal(padded_mask[t:t + 6, lft:lft + 7], out_mask)]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 5
    # smaller than the crop: padded up; masks padded with the given fill
    out_img, out_mask = RandomCrop(10, mask_fill=0)(image, mask)
    assert out_img.shape == (2, 10, 10) and int(out_mask[-1, -1]) == 0


def test_flips_move_image_and_mask_together_and_are_seeded():
    image = torch.arange(12.0).view(1, 3, 4)
    mask = torch.arange(12).view(3, 4)
    for flip, dim in ((RandomHorizontalFlip(), -1), (RandomVerticalFlip(), -2)):
        results = set()
        for _ in range(20):
            out_img, out_mask = flip(image, mask)
            flipped = torch.equal(out_img, image.flip(dim))
            assert flipped != torch.equal(out_img, image)
            assert torch.equal(out_mask, mask.flip(dim) if flipped else mask)
            results.add(flipped)
        assert results == {True, False}
    t = train_transform(8, (0.5,), (0.25,), augment=True, vflip=True)
    torch.manual_seed(7)
    a = [t(torch.rand(1, 8, 8)) for _ in range(5)]
    torch.manual_seed(7)
    b = [t(torch.rand(1, 8, 8)) for _ in range(5)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert pickle.loads(pickle.dumps(t)).transforms[-1].mean == (0.5,)
    with pytest.raises(ValueError, match="probability"):
        RandomHorizontalFlip(1.5)


def test_resize_normalize_and_crops():
    image = torch.rand(3, 20, 30)
    out = Resize((10, 15))(image)
    pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).resize((15, 10), Image.BILINEAR)
    expect = torch.from_numpy(np.asarray(pil).astype(np.float32) / 255).permute(2, 0, 1)
    assert (out - expect).abs().mean() < 0.01  # antialiased shrink agrees with Pillow's
    assert Resize(10)(image).shape == (3, 10, 15)  # an int sizes the shorter side
    mask = torch.randint(0, 3, (20, 30))
    small_img, small_mask = ResizeCover((8, 8))(image, mask)
    assert small_img.shape == (3, 8, 12) and set(small_mask.unique().tolist()) <= {0, 1, 2}
    assert CenterCrop(4)(torch.arange(36.0).view(1, 6, 6))[0, 0].tolist() == [7.0, 8.0, 9.0, 10.0]
    norm = Normalize((0.5, 0.25, 0.0), (0.5, 0.25, 2.0))(torch.ones(3, 2, 2))
    assert norm[:, 0, 0].tolist() == [1.0, 3.0, 0.5]
    with pytest.raises(ValueError, match="std must be > 0.0, got 0.0"):
        Normalize((0.5,), (0.0,))
    with pytest.raises(ValueError, match="std must be a finite number, got nan"):
        Normalize((0.5,), (float("nan"),))
    with pytest.raises(ValueError, match="cannot crop 8x8 from an image of 6x6"):
        CenterCrop(8)(torch.rand(1, 6, 6))
    assert isinstance(Compose([Normalize((0.0,), (1.0,))])(torch.rand(1, 2, 2)), torch.Tensor)


def test_load_image_modes_and_errors(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    x = load_image(tmp_path / "rgb.png")
    assert x.dtype == torch.float32 and x.shape == (3, 5, 7)
    assert torch.equal(x, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png").shape == (1, 5, 7)
    rgba = np.dstack([rgb, np.full((5, 7), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert torch.equal(load_image(tmp_path / "rgba.png"), x)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png").shape == (3, 5, 7)
    deep = (np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    y = load_image(tmp_path / "deep.png")
    assert y.shape == (1, 5, 7) and abs(float(y[0, 4, 6]) - 34000 / 65535) < 1e-6
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees on load
    Image.fromarray(rgb).save(tmp_path / "turned.jpg", exif=exif)
    assert load_image(tmp_path / "turned.jpg").shape == (3, 7, 5)
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        load_image(tmp_path / "nothing.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="cannot decode image file .*broken.png"):
        load_image(tmp_path / "broken.png")


def test_channel_conversion_matches_pillow():
    rgb = np.random.default_rng(1).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    gray = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.float32) / 255
    assert (convert_channels(x, 1)[0] - torch.from_numpy(gray)).abs().max() <= 1 / 255 + 1e-6
    assert torch.equal(convert_channels(x[:1], 3), x[:1].expand(3, -1, -1))
    assert convert_channels(torch.rand(2, 4, 5, 5), 3).shape == (2, 3, 5, 5)
    with pytest.raises(ValueError, match="cannot convert an image with 2 channels"):
        convert_channels(torch.rand(2, 5, 5), 3)


def test_prepare_image_for_each_task():
    digits = DatasetInfo("digits", "classification", 1, 10, tuple("0123456789"), (16, 16), (0.3,), (0.3,))
    photo = torch.rand(3, 40, 30)
    x = prepare_image(photo, digits, image_size=digits.image_size)
    assert x.shape == (1, 16, 16)
    # shorter side scaled to 16 (40x30 -> 21x16), then the centre 16x16 kept
    gray = F.interpolate(convert_channels(photo, 1)[None], size=(21, 16), mode="bilinear", antialias=True)[0]
    expect = (gray[:, 2:18] - digits.mean[0]) / digits.std[0]
    torch.testing.assert_close(x, expect, atol=1e-5, rtol=0)
    assert prepare_image(photo, digits, image_size=28).shape == (1, 28, 28)
    sr = DatasetInfo("photos", "super_resolution", 3, None, None, (64, 64), (), (), scale=2)
    gray_photo = torch.rand(1, 9, 11)
    assert torch.equal(prepare_image(gray_photo, sr), gray_photo.expand(3, -1, -1))
    seg = DatasetInfo("scenes", "segmentation", 1, 2, ("a", "b"), (8, 8), (0.5,), (0.5,), ignore_index=255)
    assert prepare_image(torch.rand(2, 1, 13, 9), seg).shape == (2, 1, 13, 9)
    assert prepare_image(photo, digits).shape == (1, 40, 30)  # no size given: the image's own
    with pytest.raises(ValueError, match="float image"):
        prepare_image(torch.zeros(3, 4, 4, dtype=torch.uint8), digits)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        prepare_image(torch.rand(4, 4), digits)


def test_bicubic_helpers():
    hr = torch.rand(2, 3, 16, 12)
    lr = bicubic_downsample(hr, 4)
    assert lr.shape == (2, 3, 4, 3) and lr.min() >= 0 and lr.max() <= 1
    up = bicubic_upsample(lr[0], 4)
    assert up.shape == (3, 16, 12) and up.min() >= 0 and up.max() <= 1
    flat = torch.full((3, 5, 5), 0.3)
    torch.testing.assert_close(bicubic_upsample(flat, 2), torch.full((3, 10, 10), 0.3))
    with pytest.raises(ValueError, match="not a multiple of the scale 4"):
        bicubic_downsample(torch.rand(3, 10, 12), 4)
    with pytest.raises(ValueError, match="scale must be"):
        bicubic_upsample(lr, 5)


def test_registry_splits_and_info_checks():
    names = list_datasets()
    for name in ("digits", "digit-scenes", "photos", "imagefolder", "imagenet", "places365", "tiny-imagenet",
                 "cifar10", "cifar100", "mnist", "fashion-mnist", "emnist", "galaxy10", "cityscapes", "sr-folder", "div2k"):
        assert name in names
    with pytest.raises(ValueError, match="did you mean 'cifar10'"):
        build_dataset("cifar-10", "train", root=".")
    with pytest.raises(ValueError, match="is a path and root"):
        build_dataset("./somewhere", "train", root=".")
    a, b = holdout_split(100, "train"), holdout_split(100, "val")
    assert len(b) == 10 and len(a) == 90 and not set(a.tolist()) & set(b.tolist())
    assert torch.equal(holdout_split(100, "val"), b)
    parts = [three_way_split(50, s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [40, 5, 5] and len(set(torch.cat(parts).tolist())) == 50
    with pytest.raises(ValueError, match="too few"):
        three_way_split(2, "train")
    with pytest.raises(ValueError, match="DatasetInfo 'x': unknown task 'pose'; choose one of classification"):
        DatasetInfo("x", "pose", 3, 1, None, None, (), ())
    with pytest.raises(ValueError, match="one value per input channel"):
        DatasetInfo("x", "classification", 3, 2, None, None, (0.5,), (0.5,))
