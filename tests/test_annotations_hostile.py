"""Hostile annotation files (COCO, VOC) and images too small for super-resolution: every field is
checked before use or clipping, and every problem is one line naming the file, the entry and the
field, from Python and from the command line (issue 23)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wavevision.cli import main
from wavevision.data import build_dataset

from _optional import require

QUICK = ["--threads", "1", "--no-progress", "--no-plots"]
GOOD = {"id": 17, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 8], "area": 80.0, "iscrowd": 0,
        "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]}


@pytest.fixture
def coco_api():
    require("pycocotools")
    from pycocotools import mask as mask_utils

    return mask_utils


def _image(path: Path, w: int, h: int) -> None:
    Image.fromarray(np.full((h, w, 3), 128, dtype=np.uint8)).save(path)


def coco_folder(root: Path, annotations=None, images=None, *, text: str | None = None, fillers: int = 0) -> Path:
    """A COCO layout (the same file as train2017 and val2017): image 1 is 40x30 (a.png), plus
    ``fillers`` 40x30 images without objects; one category (id 3)."""
    (root / "annotations").mkdir(parents=True)
    imgs = images if images is not None else [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}]
    imgs = imgs + [{"id": 100 + i, "file_name": f"f{i}.png", "width": 40, "height": 30} for i in range(fillers)]
    data = {"images": imgs, "annotations": [GOOD] if annotations is None else annotations,
            "categories": [{"id": 3, "name": "cat"}]}
    for split in ("train2017", "val2017"):
        (root / split).mkdir()
        for im in imgs:
            name = im.get("file_name")
            if isinstance(name, str) and "/" not in name and name:  # tests place names with folders themselves
                _image(root / split / name, 40, 30)
        (root / "annotations" / f"instances_{split}.json").write_text(text if text is not None else json.dumps(data))
    return root


def one_line(message: str) -> str:
    lines = message.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in message, message
    return lines[0]


def _refused(root: Path, match: str, **options) -> str:
    """The one-line ValueError of building the COCO test split, which must hold ``match``."""
    with pytest.raises(ValueError) as info:
        build_dataset("coco", "test", root=root, **options)
    line = one_line(str(info.value))
    assert match in line, line
    return line


# ---------------------------------------------------------------------------------------------
# COCO: the fields of an annotation (refused, or dropped with invalid="skip")


def _rle(mask_utils, mask: np.ndarray) -> dict:
    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": enc["size"], "counts": enc["counts"].decode()}


@pytest.mark.parametrize("bad, field", [
    (dict(bbox=None), "'bbox' is missing"),
    (dict(bbox=[2, 3, float("inf"), 8]), "'bbox' is [2, 3, inf, 8], not 4 finite numbers"),
    (dict(bbox=[float("nan"), 3, 10, 8]), "'bbox' is [nan, 3, 10, 8], not 4 finite numbers"),
    (dict(bbox=[2, 3, 10**400, 8]), "'bbox' is [2, 3, 10000000000"),
    (dict(area=10**400), "'area' is 10000000000"),
    (dict(bbox=[2, 3, 1e30, 8]), "box [2, 3, 1e+30, 8] reaches more than 1 pixel past the edge of the 40x30 image"),
    (dict(bbox=[30, 3, 20, 8]), "box [30, 3, 20, 8] reaches more than 1 pixel past the edge"),
    (dict(bbox=[-5, 3, 10, 8]), "box [-5, 3, 10, 8] reaches more than 1 pixel past the edge"),
    (dict(bbox=[2, 3, 10]), "'bbox' is [2, 3, 10], not 4 finite numbers"),
    (dict(bbox="2 3 10 8"), "'bbox' is '2 3 10 8', not 4 finite numbers"),
    (dict(bbox=[2, 3, True, 8]), "not 4 finite numbers"),
    (dict(segmentation=[[2, 3, 12, 3, 12, 11, 2]]), "polygon 0 of 'segmentation' is [2, 3, 12, 3, 12, 11, 2]: a "
                                                    "polygon is an even number (at least 6)"),
    (dict(segmentation=[[2, 3, 12, 3]]), "polygon 0 of 'segmentation' is [2, 3, 12, 3]"),
    (dict(segmentation=[[]]), "polygon 0 of 'segmentation' is []"),
    (dict(segmentation=[[2, 3, 12, 3, 12, 11], [1, 1]]), "polygon 1 of 'segmentation' is [1, 1]"),
    (dict(segmentation=[[2, 3, 12, float("nan"), 12, 11]]), "polygon 0 of 'segmentation' is [2, 3, 12, nan, 12, 11]"),
    (dict(segmentation=[[2, 3, 12, 3, "x", 11]]), "polygon 0 of 'segmentation'"),
    (dict(segmentation=[[[2, 3], [12, 3], [12, 11]]]), "polygon 0 of 'segmentation'"),
    (dict(segmentation=[[2, 3, 1e9, 3, 12, 11]]), "polygon 0 of 'segmentation' has a point more than 1 pixel outside"),
    (dict(segmentation="polygon"), "'segmentation' is 'polygon', neither polygons nor an RLE"),
    (dict(segmentation={"size": [30, 40], "counts": [-5, 1205]}), "RLE 'counts' hold a negative run (-5)"),
    (dict(segmentation={"size": [30, 40], "counts": [5, 10]}), "RLE 'counts' cover 15 pixels but the 40x30 image "
                                                               "has 1,200"),
    (dict(segmentation={"size": [30, 40], "counts": [600.5, 599.5]}), "RLE 'counts' must be a list of integers"),
    (dict(segmentation={"size": [30, 40], "counts": "PPPPPPPP"}), "compressed RLE counts are cut short or damaged"),
    (dict(segmentation={"size": [30, 40], "counts": "0 "}), "compressed RLE counts hold ' ', not an RLE character"),
    (dict(segmentation={"size": [30, 40]}), "an RLE 'segmentation' needs exactly 'size' and 'counts'"),
    (dict(area=float("nan")), "'area' is nan, not a finite number >= 0"),
    (dict(area=-1), "'area' is -1, not a finite number >= 0"),
    (dict(area="80"), "'area' is '80', not a finite number >= 0"),
    (dict(iscrowd=2), "'iscrowd' is 2, not 0 or 1"),
    (dict(category_id=4), "category 4 is not in the file's categories"),
])
def test_coco_annotation_fields_are_refused_naming_file_annotation_and_field(tmp_path, coco_api, bad, field):
    ann = {**GOOD, **bad}
    if ann["bbox"] is None:
        del ann["bbox"]
    root = coco_folder(tmp_path / "coco", [ann])
    line = _refused(root, field)
    assert line.startswith(f"{root / 'annotations' / 'instances_val2017.json'}: annotation 17 of image 1 (a.png): ")
    assert line.endswith("fix the annotation or pass invalid='skip'"), line
    data, _ = build_dataset("coco", "test", root=root, invalid="skip")
    assert data[0][1]["boxes"].shape == (0, 4)


def test_a_compressed_rle_of_a_negative_run_is_refused(tmp_path, coco_api):
    """From the third run on, a run is stored as the difference to the run two back: "05M"
    decodes to 0, 5, then 0 + (-3)."""
    from wavevision.data.coco import _rle_counts

    assert _rle_counts("05M", "x") == [0, 5, -3]
    root = coco_folder(tmp_path / "coco", [{**GOOD, "segmentation": {"size": [30, 40], "counts": "05M"}}])
    _refused(root, "RLE 'counts' hold a negative run (-3)")


def test_compressed_rle_counts_decode_as_pycocotools_encodes(coco_api):
    from wavevision.data.coco import _rle_counts

    rng = np.random.default_rng(0)
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        mask = rng.random((h, w)) < (0.0 if trial == 0 else 1.0 if trial == 1 else rng.random())
        decoded = _rle_counts(_rle(coco_api, mask)["counts"], "x")
        assert decoded == _runs(mask.flatten(order="F")), trial


def _runs(flat: np.ndarray) -> list[int]:
    """COCO's runs of a column-major 0/1 vector: zeros first (possibly 0 of them), alternating."""
    runs, current, n = [], 0, 0
    for v in flat.tolist():
        if v != current:
            runs.append(n)
            current, n = v, 0
        n += 1
    return runs + [n]


def test_valid_fields_and_boxes_within_rounding_are_kept(tmp_path, coco_api):
    """A box reaching at most 1 pixel past an edge (rounding) is clipped; RLE and polygons of
    every valid form are read; ``area`` 0 and a missing ``area`` are accepted."""
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[5:15, 20:30] = 1
    anns = [{**GOOD, "bbox": [-0.5, 3, 40.8, 8]},
            {**GOOD, "id": 18, "area": 0, "segmentation": _rle(coco_api, mask)},
            {**{k: v for k, v in GOOD.items() if k != "area"}, "id": 19, "iscrowd": 1,
             "segmentation": {"size": [30, 40], "counts": [1200]}}]
    data, _ = build_dataset("coco", "test", root=coco_folder(tmp_path / "coco", anns))
    target = data[0][1]
    assert target["boxes"].tolist() == [[0, 3, 40, 11], [2, 3, 12, 11], [2, 3, 12, 11]]
    assert int(target["masks"][1].sum()) == 100 and target["iscrowd"].tolist() == [0, 0, 1]


def test_masks_false_does_not_read_the_segmentation(tmp_path, coco_api):
    root = coco_folder(tmp_path / "coco", [{**GOOD, "segmentation": [[1, 2, 3]]}])
    data, _ = build_dataset("coco", "test", root=root, masks=False)
    assert data[0][1]["boxes"].tolist() == [[2, 3, 12, 11]]
    _refused(root, "polygon 0 of 'segmentation' is [1, 2, 3]")


def test_coco_masks_that_cannot_fit_in_memory_are_refused_when_built(tmp_path, coco_api, monkeypatch):
    """Masks are one byte a pixel per object: 5 objects of a 40x30 image, stacked, need 12,000 bytes."""
    import wavevision.utils.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 11_999)
    root = coco_folder(tmp_path / "coco", [{**GOOD, "id": 17 + i} for i in range(5)])
    with pytest.raises(MemoryError) as info:
        build_dataset("coco", "test", root=root)
    assert one_line(str(info.value)).startswith(f"{root / 'annotations' / 'instances_val2017.json'}: the masks of "
                                                "image 1 (5 objects of 40x30) would need about"), str(info.value)
    assert len(build_dataset("coco", "test", root=root, masks=False)[0][0][1]["boxes"]) == 5
    monkeypatch.setattr(memory, "available_memory", lambda: 12_000)
    assert build_dataset("coco", "test", root=root)[0][0][1]["masks"].shape == (5, 30, 40)


# ---------------------------------------------------------------------------------------------
# COCO: the file itself (always an error: an index built from it would lose or mix entries)


def _image_entry(**fields):
    return [{"id": 1, "file_name": "a.png", "width": 40, "height": 30, **fields}]


@pytest.mark.parametrize("images, annotations, field", [
    (_image_entry() + [{"id": 1, "file_name": "b.png", "width": 40, "height": 30}], [],
     "image id 1 is used twice (entries 0 and 1); one would be lost"),
    (None, [GOOD, {**GOOD, "bbox": [20, 5, 10, 10]}], "annotation id 17 is used twice (entries 0 and 1)"),
    (None, [{k: v for k, v in GOOD.items() if k != "id"}], "annotation entry 0: 'id' is missing"),
    (None, [{**GOOD, "id": "17"}], "annotation entry 0: 'id' is '17', not an integer"),
    (None, [{k: v for k, v in GOOD.items() if k != "image_id"}], "annotation 17: 'image_id' is missing"),
    (None, [{k: v for k, v in GOOD.items() if k != "category_id"}], "annotation 17: 'category_id' is missing"),
    (None, [{**GOOD, "category_id": [3]}], "annotation 17: 'category_id' is [3], not an integer"),
    (None, [{**GOOD, "image_id": 5}], "annotation 17: 'image_id' 5 is not the id of an image of the file"),
    (None, [[1, 2]], "annotation entry 0 is [1, 2], not an object"),
    ([{"file_name": "a.png", "width": 40, "height": 30}], [], "image entry 0: 'id' is missing"),
    ([{"id": True, "file_name": "a.png", "width": 40, "height": 30}], [],
     "image entry 0: 'id' is True, not an integer"),
    (_image_entry(width=-1), [], "image 1: 'width' is -1, not an integer in 1..16384"),
    (_image_entry(height=float("nan")), [], "image 1: 'height' is nan, not an integer in 1..16384"),
    ([{"id": 1, "file_name": "a.png", "height": 30}], [], "image 1: 'width' is missing"),
    ([{"id": 1, "width": 40, "height": 30}], [], "image 1: 'file_name' is missing"),
])
def test_coco_file_problems_name_the_entry_and_field(tmp_path, coco_api, images, annotations, field):
    root = coco_folder(tmp_path / "coco", annotations, images)
    line = _refused(root, field)
    assert line.startswith(str(root / "annotations" / "instances_val2017.json")), line
    with pytest.raises(ValueError, match="used twice|missing|not an|not the id"):
        build_dataset("coco", "test", root=root, invalid="skip")  # not an annotation's problem: never skipped


@pytest.mark.parametrize("category, message", [
    ({"id": 3, "name": "dog"}, "category id 3 is used twice (entries 0 and 1)"),
    ({"id": 4, "name": "two\nlines"}, "category 4: 'name' is 'two\\nlines', not a printable string"),
    ({"id": 4, "name": 4}, "category 4: 'name' is 4, not a printable string"),
])
def test_categories_are_checked(tmp_path, coco_api, category, message):
    root = coco_folder(tmp_path / "coco")
    for f in (root / "annotations").iterdir():
        data = json.loads(f.read_text())
        data["categories"].append(category)
        f.write_text(json.dumps(data))
    _refused(root, message)


def test_annotations_that_are_not_a_list_are_refused(tmp_path, coco_api):
    root = coco_folder(tmp_path / "coco", text=json.dumps({"images": [], "categories": [], "annotations": None}))
    _refused(root, "instances_val2017.json: the annotation entries must be a list, got NoneType")


def test_deeply_nested_and_unreadable_json_are_one_line(tmp_path, coco_api):
    deep = '{"images": [], "categories": [], "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    line = _refused(coco_folder(tmp_path / "deep", text=deep), "JSON nested deeper than Python reads")
    assert "instances_val2017.json" in line
    huge = '{"images": [], "categories": [], "x": ' + "9" * 5000 + "}"  # past Python's 4,300-digit limit
    _refused(coco_folder(tmp_path / "huge", text=huge), "is not valid JSON")


# ---------------------------------------------------------------------------------------------
# File names stay inside the image folder (COCO file_name, VOC <filename>)


def test_file_in_folder_refuses_paths_leaving_the_folder(tmp_path):
    from wavevision.data.image import file_in_folder

    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", folder / "out")
    assert file_in_folder(folder, "sub/x.png", "f") == folder / "sub" / "x.png"
    for name, why in (("../x.png", "leads outside"), ("sub/../../x.png", "leads outside"),
                      ("/etc/passwd", "leads outside"), ("C:/x.png", "leads outside"), ("\\\\server\\x.png", "leads outside"), ("", "not a usable"),
                      ("a\x00.png", "not a usable"), (5, "not a usable"), ("\ud800.png", "not a usable"),
                      ("a" * 256 + ".png", "longer than 255 bytes"), ("out/x.png", "outside the image folder")):
        with pytest.raises(ValueError, match=f"^f: .*{why}"):
            file_in_folder(folder, name, "f")


@pytest.mark.parametrize("name", ["../secret.png", "/abs/secret.png", "link/secret.png"])
def test_coco_file_names_outside_the_image_folder_are_refused(tmp_path, coco_api, name):
    secret = tmp_path / "abs" / "secret.png"
    secret.parent.mkdir()
    _image(secret, 40, 30)
    root = coco_folder(tmp_path / "coco", [], _image_entry(file_name=name.replace("/abs", str(tmp_path / "abs"))))
    _image(root / "secret.png", 40, 30)  # ../secret.png from val2017 exists: it must still be refused
    os.symlink(tmp_path / "abs", root / "val2017" / "link")
    line = _refused(root, "image 1: ")
    assert "outside the image folder" in line or "leads outside" in line, line


def _voc(root: Path, *, filename="000000.jpg", size=(30, 40), box=("1", "1", "10", "20"), difficult="0",
         count: int = 10) -> Path:
    for d in ("Annotations", "JPEGImages"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = filename if i == 0 else f"{i:06d}.jpg"
        obj = (f"<object><name>dog</name><difficult>{difficult}</difficult><bndbox><xmin>{box[0]}</xmin>"
               f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>")
        (root / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>{size[1]}</width><height>{size[0]}</height>"
            f"</size>{obj}</annotation>")
        _image(root / "JPEGImages" / f"{i:06d}.jpg", 40, 30)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("000000\n")
    return root


@pytest.mark.parametrize("fields, message", [
    (dict(filename="../../x.jpg"), "000000.xml: <filename>: the file name '../../x.jpg' leads outside the image "
                                   "folder"),
    (dict(filename="/etc/hostname"), "<filename>: the file name '/etc/hostname' leads outside"),
    (dict(size=(0, 40)), "000000.xml: <size> says 40x0 pixels, outside 1..16384 a side"),
    (dict(size=(-30, 40)), "<size> says 40x-30 pixels"),
    (dict(box=("nan", "1", "10", "20")), "000000.xml: object 0 (dog): <xmin> is 'nan', not a finite number"),
    (dict(box=("1", "1", "1e400", "20")), "object 0 (dog): <xmax> is '1e400', not a finite number"),
    (dict(box=("1", "1", "ten", "20")), "object 0 (dog): <xmax> is 'ten', not a finite number"),
    (dict(box=("1", "1", "1e30", "20")), "lies outside the 40x30 image"),
    (dict(difficult="2"), "object 0 (dog): <difficult> is '2', not 0 or 1"),
])
def test_voc_fields_are_refused_naming_file_object_and_field(tmp_path, fields, message):
    root = _voc(tmp_path / "VOC2007", **fields)
    with pytest.raises(ValueError) as info:
        build_dataset("voc", "test", root=root)
    assert message in one_line(str(info.value)), str(info.value)


def test_voc_image_lists_hold_plain_names(tmp_path):
    root = _voc(tmp_path / "VOC2007")
    outside = tmp_path / "evil.xml"
    outside.write_text("<annotation><size><width>40</width><height>30</height></size></annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("000001\n../../evil\n")
    with pytest.raises(ValueError, match=r"test.txt: entry 2 \('../../evil'\) is not an image id"):
        build_dataset("voc", "test", root=root)



def test_voc_lists_without_a_training_list_are_named(tmp_path):
    root = _voc(tmp_path / "VOC2007")
    for name in ("train", "val"):
        (root / "ImageSets" / "Main" / f"{name}.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"Main has no train.txt or trainval.txt; add one"):
        build_dataset("voc", "train", root=root)  # was a bare KeyError: 'train'
    assert len(build_dataset("voc", "test", root=root)[0]) == 1


# ---------------------------------------------------------------------------------------------
# The command line: one line, no traceback


def _error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return one_line(capsys.readouterr().err)


def _train(root: Path, out: Path) -> list[str]:
    return ["train", "--model", "mask_rcnn_wave_vit_digits", "--dataset", "coco", "--data-root", str(root),
            "--epochs", "1", "--batch-size", "2", "--max-train-batches", "1", "-o", str(out), *QUICK]


@pytest.mark.parametrize("annotations, images, message", [
    ([{k: v for k, v in GOOD.items() if k != "bbox"}], None, "annotation 17 of image 1 (a.png): 'bbox' is missing"),
    ([{**GOOD, "bbox": [2, 3, 1e30, 8]}], None, "box [2, 3, 1e+30, 8] reaches more than 1 pixel past the edge"),
    ([{**GOOD, "segmentation": {"size": [30, 40], "counts": [-5, 1205]}}], None, "RLE 'counts' hold a negative run"),
    ([{**GOOD, "area": -1}], None, "'area' is -1, not a finite number >= 0"),
    ([], _image_entry() + [{"id": 1, "file_name": "b.png", "width": 40, "height": 30}], "image id 1 is used twice"),
    ([], _image_entry(file_name="../../../../etc/passwd"), "image 1: the file name '../../../../etc/passwd' leads "
                                                             "outside the image folder"),
])
def test_train_names_a_bad_coco_file_in_one_line(tmp_path, coco_api, capsys, annotations, images, message):
    require("torchvision")
    root = coco_folder(tmp_path / "coco", annotations, images, fillers=9)
    line = _error_line(capsys, _train(root, tmp_path / "run"))
    assert line.startswith(f"wavevision train: error: {root / 'annotations'}") and message in line, line
    assert not (tmp_path / "run").exists()


def test_train_names_a_deeply_nested_coco_file_in_one_line(tmp_path, coco_api, capsys):
    require("torchvision")
    deep = '{"images": [], "categories": [], "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    line = _error_line(capsys, _train(coco_folder(tmp_path / "coco", text=deep), tmp_path / "run"))
    assert "JSON nested deeper than Python reads" in line, line


def test_train_names_a_voc_filename_outside_its_folder_in_one_line(tmp_path, capsys):
    require("torchvision")
    require("pycocotools")
    root = _voc(tmp_path / "VOC2007", filename="../../../etc/hostname")  # every split's list names 000000
    argv = ["train", "--model", "mask_rcnn_wave_vit_digits", "--dataset", "voc", "--data-root", str(root), "--epochs",
            "1", "--batch-size", "2", "--max-train-batches", "1", "-o", str(tmp_path / "run"), *QUICK]
    line = _error_line(capsys, argv)
    assert line.startswith(f"wavevision train: error: {root / 'Annotations' / '000000.xml'}: <filename>: the file "
                           "name '../../../etc/hostname' leads outside the image folder"), line


# ---------------------------------------------------------------------------------------------
# Super-resolution: images below the minimum are one line naming the file and the minimum


def _sr_images(folder: Path, sides: list[int]) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, side in enumerate(sides):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_sr_images_smaller_than_one_low_resolution_pixel_are_named(tmp_path):
    root = _sr_images(tmp_path / "set", [16, 1, 16])
    line = _refused_sr(root, "test")
    assert line == f"image file {str(root / '1.png')!r} is 1x1 pixels, smaller than the minimum of 2x2 (one " \
                   "low-resolution pixel at x2); remove it"
    # read when used (verify=false, or more than 20,000 files): the same minimum, before resampling
    data, _ = build_dataset("sr-folder", "test", root=root, verify=False)
    assert data[0][1].shape == (3, 16, 16)
    with pytest.raises(ValueError, match=r"1.png' is 1x1 pixels, smaller than the minimum of 2x2 \(one low-resolution"):
        data[1]
    # images held in memory (cache=True) are checked when decoded, from the headers first
    _refused_sr(root, "test", cache=True)


def test_sr_training_images_smaller_than_the_patch_are_named(tmp_path):
    root = tmp_path / "sr"
    _sr_images(root / "train", [16, 16, 1, 16])
    _sr_images(root / "val", [16, 16])
    line = _refused_sr(root, "train", patch_size=8)
    assert line.endswith("2.png' is 1x1 pixels, smaller than the minimum of 8x8 (the patch or crop size 8); remove it, "
                         "or lower that size"), line
    data, _ = build_dataset("sr-folder", "train", root=root, patch_size=8, num_patches=4, verify=False)
    with pytest.raises(ValueError, match=r"2.png' is 1x1 pixels, smaller than the minimum of 8x8"):
        for i in range(len(data)):  # val holds one training image out: 2.png is not necessarily sample 2
            data[i]


def _refused_sr(root: Path, split: str, **options) -> str:
    with pytest.raises(ValueError) as info:
        build_dataset("sr-folder", split, root=root, **options)
    return one_line(str(info.value))


def test_sr_evaluation_names_the_smallest_measurable_image():
    import torch

    from wavevision.engine.metrics import SuperResolutionMeter

    meter = SuperResolutionMeter(border=2)
    assert meter.min_size() == 15
    meter.update(torch.rand(1, 3, 15, 15), torch.rand(1, 3, 15, 15))  # the minimum itself is measured
    with pytest.raises(ValueError, match=r"image of 14x15 pixels is too small to measure: PSNR and SSIM need at least "
                                         r"15x15 \(SSIM's 11x11 window inside a border crop of 2\)"):
        meter.update(torch.rand(1, 3, 15, 14), torch.rand(1, 3, 15, 14))


@pytest.fixture(scope="module")
def sr_weights(tmp_path_factory):
    """A state dict of an x2 WaveMixSR, for eval --model NAME --checkpoint FILE."""
    import torch

    import wavevision

    path = tmp_path_factory.mktemp("srw") / "sr.pth"
    torch.save(wavevision.create_model("wavemixsr_v1_x2").state_dict(), path)
    return path


@pytest.mark.parametrize("sides, message", [
    ([16, 1], "1.png' is 1x1 pixels, smaller than the minimum of 2x2 (one low-resolution pixel at x2); remove it"),
    ([16, 9], "an evaluation image of 8x8 pixels is too small to measure: PSNR and SSIM need at least 15x15"),
])
def test_sr_eval_names_a_too_small_image_in_one_line(tmp_path, capsys, sr_weights, sides, message):
    root = _sr_images(tmp_path / "set", sides)
    line = _error_line(capsys, ["eval", "--model", "wavemixsr_v1_x2", "--checkpoint",
                                str(sr_weights), "--dataset", "sr-folder", "--data-root", str(root), "--no-progress"])
    assert line.startswith("wavevision eval: error: ") and message in line, line


def test_sr_train_names_a_1x1_image_in_one_line(tmp_path, capsys):
    root = tmp_path / "sr"
    _sr_images(root / "train", [16, 1, 16, 16])
    _sr_images(root / "val", [16, 16])
    argv = ["train", "--model", "wavemixsr_v1_x2", "--model-arg", "final_dim=16", "--dataset", "sr-folder", "--data-root",
            str(root), "--dataset-arg", "patch_size=8", "--dataset-arg", "num_patches=4", "--epochs", "1",
            "--batch-size", "2", "-o", str(tmp_path / "run"), *QUICK]
    line = _error_line(capsys, [*argv, "--dataset-arg", "verify=false"])  # found when the sample is read
    assert "1.png' is 1x1 pixels, smaller than the minimum of 8x8" in line, line
    line = _error_line(capsys, argv)  # found from the headers when the dataset is built
    assert line.startswith("wavevision train: error: image file ") and "1.png' is 1x1 pixels" in line, line
