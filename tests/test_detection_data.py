"""Detection data and evaluation: digit-objects, COCO and VOC files, COCO mAP, the task in the engine."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from wavevision.data import build_dataset, detect_format
from wavevision.data.boxes import check_objects, tight_boxes
from wavevision.engine.tasks import get_task
from wavevision.engine.tasks.detection import DetectionMeter, Detections

from _optional import require


@pytest.fixture
def coco_api():
    require("pycocotools")
    from pycocotools import mask as mask_utils

    return mask_utils


# ---------------------------------------------------------------------------------------------
# digit-objects


def test_digit_objects_are_seeded_tight_and_varied():
    data, info = build_dataset("digit-objects", "train", num_images=60)
    again, _ = build_dataset("digit-objects", "train", num_images=60)
    test, _ = build_dataset("digit-objects", "test", num_images=60)
    assert info.task == "detection" and info.num_classes == 10 and info.in_chans == 1 and info.image_size == (96, 96)
    assert torch.equal(data.images, again.images) and not torch.equal(data.images, test.images)
    counts = [len(t["labels"]) for t in data.targets]
    assert 0 in counts and max(counts) >= 4  # negatives and crowded images
    sides, overlaps = [], 0
    for image, t in zip(data.images, data.targets):
        check_objects(t, (96, 96), 10, "digit-objects")
        assert torch.equal(t["boxes"], tight_boxes(t["masks"]))  # boxes are tight around each digit's ink
        assert (t["labels"] >= 1).all() and (t["labels"] <= 10).all()
        assert torch.equal(t["area"], t["masks"].flatten(1).sum(1).float())
        ink = image[0] >= 5 / 16
        assert torch.equal(ink, t["masks"].bool().any(0)) if len(t["masks"]) else not ink.any()
        b = t["boxes"]
        sides += (b[:, 2:] - b[:, :2]).max(1).values.tolist()
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                overlaps += bool((torch.min(b[i, 2:], b[j, 2:]) > torch.max(b[i, :2], b[j, :2])).all())
    assert min(sides) < 20 and max(sides) > 30 and overlaps > 0
    x, target = data[5]
    assert x.shape == (1, 96, 96) and int(target["image_id"]) == 5
    with pytest.raises(ValueError, match="digits_per_image"):
        build_dataset("digit-objects", "train", num_images=2, digits_per_image=(3, 1))


# ---------------------------------------------------------------------------------------------
# COCO files


def _image(path, w, h, value=128):
    Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8)).save(path)


def _coco_folder(root, mask_utils, *, annotations=None, images=None):
    """annotations/instances_{train,val}2017.json: image 1 with a polygon object, an RLE object and
    a crowd region (uncompressed RLE); image 2 with no objects."""
    (root / "annotations").mkdir(parents=True)
    rle = np.zeros((30, 40), dtype=np.uint8, order="F")
    rle[5:15, 20:30] = 1
    enc = mask_utils.encode(rle)
    enc["counts"] = enc["counts"].decode()
    crowd = np.zeros((30, 40), dtype=np.uint8)
    crowd[20:25, 0:10] = 1
    flat = crowd.flatten(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    imgs = images or [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
                      {"id": 2, "file_name": "b.png", "width": 20, "height": 10}]
    anns = annotations or [
        {"id": 10, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 8], "area": 60.0, "iscrowd": 0,
         "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]},
        {"id": 11, "image_id": 1, "category_id": 3, "bbox": [20, 5, 10, 10], "area": 100.0, "iscrowd": 0,
         "segmentation": enc},
        {"id": 12, "image_id": 1, "category_id": 3, "bbox": [0, 20, 10, 5], "area": 50.0, "iscrowd": 1,
         "segmentation": {"size": [30, 40], "counts": runs}},
    ]
    data = {"images": imgs, "annotations": anns, "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]}
    for split in ("train2017", "val2017"):
        (root / split).mkdir()
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
        for im in imgs:
            if im["file_name"] != "gone.png":
                _image(root / split / im["file_name"], im["width"], im["height"])
    return root


def test_coco_boxes_masks_crowd_and_empty_images(tmp_path, coco_api):
    root = _coco_folder(tmp_path / "coco", coco_api)
    assert detect_format(root) == "coco"
    data, info = build_dataset(str(root), "test")  # test = the official val2017 file
    assert info.task == "detection" and info.class_names == ("cat", "dog") and info.image_size is None
    x, t = data[0]
    assert x.shape == (3, 30, 40)
    assert t["labels"].tolist() == [2, 1, 1] and t["iscrowd"].tolist() == [0, 0, 1]
    assert t["boxes"].tolist() == [[2, 3, 12, 11], [20, 5, 30, 15], [0, 20, 10, 25]]
    assert t["masks"].shape == (3, 30, 40)
    assert int(t["masks"][1].sum()) == 100 and t["masks"][1, 5:15, 20:30].all()  # compressed RLE
    assert int(t["masks"][2].sum()) == 50 and t["masks"][2, 20:25, 0:10].all()  # uncompressed RLE (crowd)
    assert t["masks"][0, 5, 5] == 1 and t["masks"][0, 20, 20] == 0  # the polygon
    _, empty = data[1]
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 10, 20)
    train, _ = build_dataset("coco", "train", root=root, val_size=1)
    val, _ = build_dataset("coco", "val", root=root, val_size=1)
    assert len(train) == len(val) == 1 and train.coco_ids != val.coco_ids
    boxes_only, _ = build_dataset("coco", "test", root=root, masks=False)
    assert "masks" not in boxes_only[0][1]


@pytest.mark.parametrize("bad, message", [
    (dict(category_id=99), "category 99 is not in the file's categories"),
    (dict(bbox=[5, 5, 0, 4]), r"box \[5, 5, 0, 4\] has non-positive size"),
    (dict(bbox=[50, 40, 5, 5]), r"box \[50, 40, 5, 5\] lies outside the 40x30 image"),
    (dict(segmentation={"size": [10, 10], "counts": "0"}), r"its mask is \[10, 10\].*but the image is \[30, 40\]"),
])
def test_coco_bad_annotations_are_named(tmp_path, coco_api, bad, message):
    ann = {"id": 10, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 8], "area": 60.0, "iscrowd": 0,
           "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]], **bad}
    root = _coco_folder(tmp_path / "coco", coco_api, annotations=[ann])
    with pytest.raises(ValueError, match=rf"annotation 10 of image 1 \(a.png\): {message}"):
        build_dataset("coco", "test", root=root)
    data, _ = build_dataset("coco", "test", root=root, invalid="skip")
    assert data[0][1]["boxes"].shape == (0, 4)


def test_coco_missing_image_is_named(tmp_path, coco_api):
    images = [{"id": 1, "file_name": "gone.png", "width": 40, "height": 30}]
    root = _coco_folder(tmp_path / "coco", coco_api, images=images, annotations=[])
    with pytest.raises(FileNotFoundError, match=r"image 1 \(gone.png\) is missing from"):
        build_dataset("coco", "test", root=root)


# ---------------------------------------------------------------------------------------------
# VOC files


def _voc(root, objects, *, size=(30, 40), image=True):
    for d in ("Annotations", "JPEGImages"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(10):
        objs = "".join(f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                       f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b, d in objects)
        (root / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.jpg</filename><size><width>{size[1]}</width><height>{size[0]}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")
        if image:
            _image(root / "JPEGImages" / f"{i:06d}.jpg", size[1], size[0])
    return root


def test_voc_boxes_and_difficult_objects(tmp_path):
    _voc(tmp_path / "VOCdevkit" / "VOC2007", [("dog", (1, 1, 10, 20), 0), ("person", (5, 6, 40, 30), 1)])
    assert detect_format(tmp_path) == "voc"
    data, info = build_dataset("voc", "test", root=tmp_path)  # no image lists: a seeded 80/10/10 split
    assert info.num_classes == 20 and len(data) == 1
    x, t = data[0]
    assert x.shape == (3, 30, 40)
    assert t["boxes"].tolist() == [[0, 0, 10, 20], [4, 5, 40, 30]]  # 1-based corners
    assert t["labels"].tolist() == [12, 15] and t["iscrowd"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="class 'unicorn' is not one of the 20 classes"):
        build_dataset("voc", "test", root=_voc(tmp_path / "u", [("unicorn", (1, 1, 5, 5), 0)]))
    with pytest.raises(FileNotFoundError, match=r"Annotations/000004.xml refers to image 000004.jpg, which is missing"):
        build_dataset("voc", "test", root=_voc(tmp_path / "m", [], image=False))
    with pytest.raises(ValueError, match=r"box \[9.0, 0.0, 5.0, 5.0\] has non-positive width"):
        build_dataset("voc", "test", root=_voc(tmp_path / "z", [("dog", (10, 1, 5, 5), 0)]))


@pytest.mark.slow
def test_boxes_only_data_trains_a_box_detector(tmp_path):
    """VOC has no instance masks: the default detector becomes its Faster R-CNN build; a Mask R-CNN the user
    names is refused in one line naming the box detectors (not torchvision's error at the first step)."""
    require("torchvision")
    require("pycocotools")
    from wavevision.engine import train

    root = _voc(tmp_path / "voc", [("dog", (2, 3, 30, 40), 0), ("cat", (20, 10, 60, 50), 0)], size=(64, 64))
    small = dict(min_size=64, max_size=64, fpn_channels=32, box_head_dim=32)
    run = train(dataset="voc", data_root=str(root), model_args=small, epochs=1, batch_size=4, output=str(tmp_path / "run"),
                threads=1, progress=False, plots=False, test=False)
    assert run.model_name == "mask_rcnn_wave_vit_digits" and run.model_args["detector"] == "faster_rcnn"
    assert "train_loss_classifier" in run.history[0] and "train_loss_mask" not in run.history[0]
    for given in (dict(model="mask_rcnn_wave_vit_s_fpn_1x"), dict(model_args={**small, "detector": "mask_rcnn"})):
        with pytest.raises(ValueError) as e:
            train(given, dataset="voc", data_root=str(root), epochs=1, output=str(tmp_path / "no"), threads=1,
                  progress=False)
        assert "\n" not in str(e.value) and not (tmp_path / "no").exists()
        assert "is a Mask R-CNN, which trains on instance masks, but dataset 'voc' has boxes only" in str(e.value)
        assert "faster_rcnn_wave_vit_s_fpn_1x" in str(e.value) and "retinanet_wave_vit_s_fpn_1x" in str(e.value)
        assert "mask_rcnn_wave_vit_b_fpn_1x" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# COCO mAP (pycocotools' COCOeval) and the task's checks


def _gt(boxes, labels, size=(50, 50)):
    masks = torch.zeros(len(boxes), *size, dtype=torch.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, boxes):
        m[y1:y2, x1:x2] = 1
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels), "masks": masks,
            "image_id": torch.tensor(0)}


def _det(gt, scores):
    return {"boxes": gt["boxes"], "labels": gt["labels"], "scores": torch.tensor(scores),
            "masks": gt["masks"][:, None].float()}


def test_meter_ap_by_hand(coco_api):
    gt = _gt([[2, 2, 20, 20], [25, 25, 45, 45]], [1, 2])
    perfect = DetectionMeter(2)
    perfect.update([_det(gt, [0.9, 0.8])], [gt])
    m = perfect.compute()
    assert m["box_ap"] == pytest.approx(100) and m["mask_ap"] == pytest.approx(100) and m["box_ap50"] == pytest.approx(100)
    assert math.isnan(m["box_apl"])  # no large object: COCOeval's -1 becomes NaN
    # one of two objects found, then a false positive scored lower: 101-point interpolated
    # precision is 1 at recalls 0, 0.01, ..., 0.5 (51 points) and 0 beyond (recall never exceeds 1/2)
    two = _gt([[2, 2, 20, 20], [25, 25, 45, 45]], [1, 1])
    half = DetectionMeter(1)
    half.update([_det(_gt([[2, 2, 20, 20], [30, 0, 48, 10]], [1, 1]), [0.9, 0.8])], [two])
    assert half.compute()["box_ap50"] == pytest.approx(100 * 51 / 101)
    nothing = DetectionMeter(2)
    nothing.update([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0),
                     "masks": torch.zeros(0, 1, 50, 50)}], [gt])
    assert nothing.compute()["box_ap"] == 0.0 and int(nothing.totals["loss_n"]) == 1


def test_meter_gathers_every_process(coco_api, monkeypatch):
    """Under torchrun each process holds its shard; all_reduce gives every one the whole set."""
    import torch.distributed as dist

    a, b = _gt([[2, 2, 20, 20]], [1]), {**_gt([[5, 5, 30, 30]], [1]), "image_id": torch.tensor(1)}
    shards = [DetectionMeter(1), DetectionMeter(1)]
    shards[0].update([_det(a, [0.9])], [a])
    shards[1].update([{**_det(b, [0.8]), "boxes": torch.tensor([[40.0, 40, 49, 49]])}], [b])  # a miss
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    parts = [(m.images, m.gts, m.dts, m.mask_outputs) for m in shards]
    monkeypatch.setattr(dist, "all_gather_object", lambda out, obj: out.__setitem__(slice(None), parts))
    monkeypatch.setattr(dist, "all_reduce", lambda t: t.mul_(2))
    shards[0].all_reduce()
    assert len(shards[0].images) == 2 and int(shards[0].totals["loss_n"]) == 2
    assert shards[0].compute()["box_ap50"] == pytest.approx(100 * 51 / 101)  # one of two objects, as above


def test_task_checks_targets_and_collates():
    task = get_task("detection")
    info = build_dataset("digit-objects", "val", num_images=2)[1]
    good = _gt([[2, 2, 20, 20]], [3], size=(96, 96))
    task.check_target([good], info)
    for bad, message in ((dict(labels=torch.tensor([11])), r"label 11 is out of range 1..10"),
                         (dict(labels=torch.tensor([0])), r"label 0 is out of range 1..10 \(0 is background\)"),
                         (dict(boxes=torch.tensor([[5.0, 5, 5, 9]])), "non-positive width or height"),
                         (dict(masks=torch.zeros(1, 50, 50, dtype=torch.uint8)), None)):
        if message is None:  # masks of another size than the image (the dataset's 96x96)
            with pytest.raises(ValueError, match="masks are 50x50 but the image is 96x96"):
                check_objects({**good, **bad}, (96, 96), 10, "x")
            continue
        with pytest.raises(ValueError, match=message):
            task.check_target([{**good, **bad}], info)
    x, y = task.collate([(torch.zeros(1, 8, 8), good), (torch.zeros(1, 8, 8), good)])
    assert x.shape == (2, 1, 8, 8) and isinstance(y, Detections) and len(y) == 2
    x, _ = task.collate([(torch.zeros(1, 8, 8), good), (torch.zeros(1, 6, 8), good)])
    assert isinstance(x, list)  # sizes differ: a list, as torchvision's detectors take


def test_crowd_regions_are_not_trained_on():
    seen = []

    class Model(torch.nn.Module):
        def forward(self, images, targets=None):
            seen.extend(targets)
            return {"loss": torch.zeros(())}

    t = {**_gt([[2, 2, 20, 20], [25, 25, 45, 45]], [1, 2]), "iscrowd": torch.tensor([0, 1])}
    get_task("detection").forward(Model().train(), torch.zeros(1, 1, 50, 50), [t])
    assert seen[0]["labels"].tolist() == [1] and seen[0]["masks"].shape == (1, 50, 50)
    assert seen[0]["boxes"].tolist() == [[2, 2, 20, 20]] and int(seen[0]["image_id"]) == 0
