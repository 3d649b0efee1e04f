"""Detection augmentation: the horizontal flip moves boxes and masks with the image (issue 20 item 5)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wavevision.data import build_dataset
from wavevision.data.object_transforms import RandomObjectHFlip, hflip_objects

from _optional import require

W, H = 40, 30


def _gradient(path):
    """An image whose columns differ, so a mirrored image is told apart from the original."""
    x = np.tile(np.arange(W, dtype=np.uint8)[None, :, None] * 6, (H, 1, 3))
    Image.fromarray(x).save(path)


def test_hflip_objects_by_hand():
    image = torch.arange(2 * H * W, dtype=torch.float32).reshape(2, H, W)
    masks = torch.zeros(2, H, W, dtype=torch.uint8)
    masks[0, 3:11, 2:12] = 1
    masks[1, 0:5, 0:1] = 1  # touching the left edge
    target = {"boxes": torch.tensor([[2.0, 3.0, 12.0, 11.0], [0.0, 0.0, 1.0, 5.0]]), "labels": torch.tensor([1, 2]),
              "masks": masks, "area": torch.tensor([80.0, 5.0])}
    flipped, out = hflip_objects(image, target)
    # x1' = W - x2, x2' = W - x1; y unchanged
    assert out["boxes"].tolist() == [[40 - 12, 3, 40 - 2, 11], [39, 0, 40, 5]]
    assert torch.equal(flipped, image.flip(-1)) and torch.equal(out["masks"], masks.flip(-1))
    assert out["masks"][0, 3:11, 28:38].all() and int(out["masks"][0].sum()) == 80
    assert out["masks"][1, 0:5, 39].all()
    assert out["labels"] is target["labels"] and out["area"] is target["area"]
    assert target["boxes"].tolist()[0] == [2, 3, 12, 11]  # the input target is left alone
    # the mask's tight box is the flipped box
    ys, xs = torch.where(out["masks"][0] > 0)
    assert [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] == out["boxes"][0].tolist()
    _, empty = hflip_objects(image, {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)})
    assert empty["boxes"].shape == (0, 4)


def test_random_flip_probability_and_errors():
    image, target = torch.rand(1, 4, 6), {"boxes": torch.tensor([[1.0, 0.0, 2.0, 1.0]]), "labels": torch.tensor([1])}
    assert RandomObjectHFlip(0.0)(image, target)[1]["boxes"].tolist() == [[1, 0, 2, 1]]
    assert RandomObjectHFlip(1.0)(image, target)[1]["boxes"].tolist() == [[4, 0, 5, 1]]
    torch.manual_seed(0)
    flips = sum(RandomObjectHFlip(0.5)(image, target)[1]["boxes"][0, 0].item() == 4 for _ in range(400))
    assert 160 < flips < 240
    with pytest.raises(ValueError, match="flip probability must be <= 1.0"):
        RandomObjectHFlip(1.5)


def _coco(root):
    require("pycocotools")
    from pycocotools import mask as mask_utils

    (root / "annotations").mkdir(parents=True)
    rle = np.zeros((H, W), dtype=np.uint8, order="F")
    rle[5:15, 20:30] = 1
    enc = mask_utils.encode(rle)
    enc["counts"] = enc["counts"].decode()
    data = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
            "annotations": [
                {"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 8], "area": 80.0, "iscrowd": 0,
                 "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]},
                {"id": 11, "image_id": 1, "category_id": 1, "bbox": [20, 5, 10, 10], "area": 100.0, "iscrowd": 0,
                 "segmentation": enc}],
            "categories": [{"id": 1, "name": "thing"}]}
    for split in ("train2017", "val2017"):  # test = the val2017 file
        (root / split).mkdir()
        _gradient(root / split / "a.png")
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def _outcomes(data, seeds=range(12)):
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(data[0])
    return out


def test_coco_augment_flips_boxes_and_masks(tmp_path):
    root = _coco(tmp_path / "coco")
    plain, _ = build_dataset("coco", "test", root=root)
    augmented, _ = build_dataset("coco", "test", root=root, augment=True)
    x, t = plain[0]
    assert t["boxes"].tolist() == [[2, 3, 12, 11], [20, 5, 30, 15]]
    flipped = []
    for (xa, ta), again in zip(_outcomes(augmented), _outcomes(augmented)):
        assert torch.equal(xa, again[0]) and torch.equal(ta["boxes"], again[1]["boxes"])  # seeded: reproducible
        if torch.equal(xa, x):
            assert torch.equal(ta["boxes"], t["boxes"]) and torch.equal(ta["masks"], t["masks"])
        else:
            assert torch.equal(xa, x.flip(-1))
            assert ta["boxes"].tolist() == [[40 - 12, 3, 40 - 2, 11], [40 - 30, 5, 40 - 20, 15]]  # x1' = W - x2
            assert torch.equal(ta["masks"], t["masks"].flip(-1))
            assert ta["masks"][1, 5:15, 10:20].all() and int(ta["masks"][1].sum()) == 100
            assert torch.equal(ta["labels"], t["labels"]) and torch.equal(ta["area"], t["area"])
            flipped.append(True)
    assert 0 < len(flipped) < 12  # both outcomes occur over 12 seeds
    for xp, tp in _outcomes(plain):  # augment=False: never flipped
        assert torch.equal(xp, x) and torch.equal(tp["boxes"], t["boxes"]) and torch.equal(tp["masks"], t["masks"])
    assert augmented.coco_ids == plain.coco_ids  # the wrapped dataset's attributes still answer


def test_voc_augment_flips_boxes(tmp_path):
    voc = tmp_path / "VOC2007"
    for d in ("Annotations", "JPEGImages"):
        (voc / d).mkdir(parents=True)
    for i in range(10):
        (voc / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.png</filename><size><width>{W}</width><height>{H}</height></size>"
            "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox>"
            "</object></annotation>")
        _gradient(voc / "JPEGImages" / f"{i:06d}.png")
    plain, _ = build_dataset("voc", "test", root=tmp_path)
    augmented, _ = build_dataset("voc", "test", root=tmp_path, augment=True)
    x, t = plain[0]
    assert t["boxes"].tolist() == [[0, 0, 10, 20]]
    seen = set()
    for xa, ta in _outcomes(augmented):
        if torch.equal(xa, x):
            seen.add("kept")
            assert ta["boxes"].tolist() == [[0, 0, 10, 20]]
        else:
            seen.add("flipped")
            assert torch.equal(xa, x.flip(-1)) and ta["boxes"].tolist() == [[30, 0, 40, 20]]
    assert seen == {"kept", "flipped"}
    assert all(torch.equal(xp, x) for xp, _ in _outcomes(plain))
