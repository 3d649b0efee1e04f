"""A recipe's data root of the wrong layout: one line naming what is missing and the layout expected,
before anything is built or written (wavevision.data.layout, checked by the training plan)."""
from __future__ import annotations

import shutil

import pytest

from _recipe_data import TOKEN_LABELS, WRITERS
from wavevision.data.layout import LAYOUTS, check_layout
from wavevision.recipes import get_recipe, list_recipes

from _optional import require

# dataset -> (a path the tiny copy is written with, removed; what the error must name; a word of the layout)
MISSING = [
    ("imagenet", "val", "val/", "ILSVRC2012"),
    ("imagenet", "train", "train/", "one folder per class"),
    ("places365", "val", "val/", "Places-365"),
    ("tiny-imagenet", "val/val_annotations.txt", "val/val_annotations.txt", "tiny-imagenet-200"),
    ("tiny-imagenet", "val/images", "val/images/", "val/images/*.JPEG"),
    ("cifar10", "cifar-10-batches-py/data_batch_3", "cifar-10-batches-py/data_batch_3", "python version"),
    ("cifar10", "cifar-10-batches-py/test_batch", "cifar-10-batches-py/test_batch", "data_batch_1..5"),
    ("cifar100", "cifar-100-python/test", "cifar-100-python/test", "cifar-100-python/"),
    ("galaxy10", "Galaxy10_DECals.h5", "*.h5", "Galaxy10_DECals.h5"),
    ("cityscapes", "gtFine", "gtFine/train/", "gtFine_labelIds"),
    ("cityscapes", "leftImg8bit/val", "leftImg8bit/val/", "leftImg8bit/{train,val}"),
    ("ade20k", "annotations/validation", "annotations/validation/", "ADEChallengeData2016"),
    ("ade20k", "images/training", "images/training/", "annotations/{training,validation}"),
    ("coco", "annotations/instances_val2017.json", "annotations/instances_*val*.json", "instances_{train,val}2017"),
    ("coco", "train2017", "train*/ or images/train*/ or images/", "train2017/ and val2017/"),
    ("div2k", "DIV2K_valid_HR", "DIV2K_valid_HR/", "LR folders are not needed"),
]


def _remove(root, part):
    path = root / part
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_every_dataset_a_recipe_reads_from_disk_has_a_layout():
    assert {get_recipe(n).data.dataset for n in list_recipes()} - set(LAYOUTS) == {
        "digits", "digit-scenes", "digit-objects", "photos"}  # embedded: no data root
    assert {m[0] for m in MISSING} == set(LAYOUTS)


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_the_real_layout_passes(dataset, tmp_path):
    if dataset == "galaxy10":
        require("h5py")
    check_layout(dataset, WRITERS[dataset](tmp_path / "data"))


@pytest.mark.parametrize("dataset, part, named, shape", MISSING)
def test_a_missing_folder_or_file_is_named_with_the_layout(dataset, part, named, shape, tmp_path):
    if dataset == "galaxy10":
        require("h5py")
    root = WRITERS[dataset](tmp_path / "data")
    _remove(root, part)
    with pytest.raises(FileNotFoundError) as e:
        check_layout(dataset, root, what="recipe r: ")
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"recipe r: {dataset} data root {str(root)!r} has no {named}; expected")
    assert shape in line


def test_nested_and_single_file_roots(tmp_path):
    ade = WRITERS["ade20k"](tmp_path / "ade" / "ADEChallengeData2016")
    check_layout("ade20k", ade.parent)  # the folder holding ADEChallengeData2016, as the dataset accepts
    require("h5py")
    galaxy = WRITERS["galaxy10"](tmp_path / "galaxy")
    check_layout("galaxy10", galaxy / "Galaxy10_DECals.h5")
    with pytest.raises(FileNotFoundError, match=r"^imagenet data root '.*nowhere' is not a folder; expected ILSVRC2012"):
        check_layout("imagenet", tmp_path / "nowhere")
    check_layout("digits", tmp_path / "nowhere")  # no layout: an embedded set


def test_train_refuses_a_wrong_layout_before_writing_anything(tmp_path, capsys):
    from wavevision.cli import main

    root = WRITERS["cityscapes"](tmp_path / "data")
    _remove(root, "gtFine/val")
    out = tmp_path / "run"
    code = main(["train", "--recipe", "wavemix_seg_192_16_l3_cityscapes", "--data-root", str(root), "--amp", "none",
                 "--no-progress", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    last = err.strip().splitlines()[-1]
    assert "recipe wavemix_seg_192_16_l3_cityscapes: cityscapes data root" in last and "has no gtFine/val/" in last


def test_missing_token_labels_are_named(tmp_path):
    from wavevision.engine import train

    root = WRITERS["imagenet"](tmp_path / "data")
    shutil.rmtree(root / TOKEN_LABELS)
    with pytest.raises(FileNotFoundError, match=rf"token-label folder '.*{TOKEN_LABELS}' not found; give the folder"):
        train(recipe="wave_vit_s_in1k_tl", data_root=str(root), amp="none", epochs=2, cooldown_epochs=1, progress=False,
              output=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
