"""Token-label files (LV-ViT format): reading, cropping/flipping with the image, pooling, loss."""
from __future__ import annotations

import math

import pytest
import torch

from wavevision.data import DataFileError, MissingDataFile
from wavevision.data.token_labels import (
    Box,
    RandomResizedCropWithLabels,
    TokenLabelFolder,
    crop_token_targets,
    label_file,
    load_token_labels,
    roi_align_map,
)
from wavevision.losses import TokenLabelLoss
from wavevision.models.wave_vit import TokenLabelOutput

S = 30.0  # teacher logit of the one class stored per location


def _x_map(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A top-1 label map whose class at each location is its column x (score S)."""
    indices = torch.arange(w).expand(h, w)[None].clone()
    return torch.full((1, h, w), S), indices


def _softmax_rows(logits: list[list[float]], smoothing: float = 0.0) -> torch.Tensor:
    """Hand softmax of each row, then p * (1 - s) + s / K."""
    out = []
    for row in logits:
        z = sum(math.exp(v) for v in row)
        out.append([math.exp(v) / z * (1 - smoothing) + smoothing / len(row) for v in row])
    return torch.tensor(out, dtype=torch.float64)


def _onehot_logits(classes: list[int], k: int, value: float = S) -> list[list[float]]:
    return [[value if c == j else 0.0 for j in range(k)] for c in classes]


def test_full_box_keeps_column_classes_and_flip_reverses_them():
    scores, idx = _x_map(2, 4)
    _, dense = crop_token_targets(scores, idx, Box(0, 0, 1, 1), flip=False, grid=(2, 4), num_classes=4)
    expect = _softmax_rows(_onehot_logits([0, 1, 2, 3] * 2, 4))
    torch.testing.assert_close(dense.double(), expect, atol=1e-6, rtol=0)
    _, flipped = crop_token_targets(scores, idx, Box(0, 0, 1, 1), flip=True, grid=(2, 4), num_classes=4)
    assert flipped.argmax(-1).tolist() == [3, 2, 1, 0, 3, 2, 1, 0]


def test_crop_of_left_half_keeps_only_left_classes():
    scores, idx = _x_map(2, 8)
    cls, dense = crop_token_targets(scores, idx, Box(0, 0, 1, 0.5), flip=False, grid=(2, 4), num_classes=8)
    torch.testing.assert_close(dense.double(), _softmax_rows(_onehot_logits([0, 1, 2, 3] * 2, 8)), atol=1e-6, rtol=0)
    # the class target averages the crop: classes 0..3 each hold S / 4 of the logit, 4..7 none
    torch.testing.assert_close(cls.double(), _softmax_rows([[S / 4] * 4 + [0.0] * 4])[0], atol=1e-6, rtol=0)
    _, right = crop_token_targets(scores, idx, Box(0, 0.5, 1, 0.5), flip=True, grid=(1, 4), num_classes=8)
    assert right.argmax(-1).tolist() == [7, 6, 5, 4]


def test_pooling_to_a_coarser_grid_averages_the_scores_of_each_token():
    scores, idx = _x_map(2, 4)
    _, dense = crop_token_targets(scores, idx, Box(0, 0, 1, 1), flip=False, grid=(1, 2), num_classes=4)
    expect = _softmax_rows([[S / 2, S / 2, 0, 0], [0, 0, S / 2, S / 2]])
    torch.testing.assert_close(dense.double(), expect, atol=1e-6, rtol=0)


def test_rows_are_distributions_with_smoothing():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 6, 6, generator=g) * 5
    idx = torch.stack([torch.randperm(10, generator=g)[:5] for _ in range(36)], 1).view(5, 6, 6)
    cls, dense = crop_token_targets(scores, idx, Box(0.1, 0.2, 0.6, 0.7), flip=True, grid=(7, 7),
                                    num_classes=10, label_smoothing=0.1)
    assert dense.shape == (49, 10) and cls.shape == (10,)
    torch.testing.assert_close(dense.sum(-1), torch.ones(49))
    torch.testing.assert_close(cls.sum(), torch.tensor(1.0))
    assert float(dense.min()) >= 0.1 / 10 - 1e-7


def test_roi_align_matches_torchvision_on_the_references_box_convention():
    ops = pytest.importorskip("torchvision.ops")
    g = torch.Generator().manual_seed(1)
    for hh, ww in ((18, 18), (14, 9)):
        maps = torch.randn(3, hh, ww, generator=g)
        for _ in range(10):
            t, lft = (0.9 * torch.rand(2, generator=g)).tolist()
            h, w = ((1 - t) * float(torch.rand((), generator=g)) + 1e-3, (1 - lft) * float(torch.rand((), generator=g)) + 1e-3)
            h, w = min(h, 1 - t), min(w, 1 - lft)
            for size in ((7, 7), (1, 1), (2, 3)):
                boxes = torch.tensor([[0, lft * ww - 0.5, t * hh - 0.5, (lft + w) * ww - 0.5, (t + h) * hh - 0.5]])
                ref = ops.roi_align(maps[None], boxes, output_size=size)[0]
                torch.testing.assert_close(roi_align_map(maps, Box(t, lft, h, w), size), ref, atol=1e-5, rtol=0)


def test_transform_crops_and_flips_labels_with_the_image():
    torch.manual_seed(0)
    image = torch.linspace(0, 1, 32).expand(1, 32, 32).clone()  # brightness = column
    scores, idx = _x_map(8, 8)  # class = column
    t = RandomResizedCropWithLabels(16, grid=(2, 4), num_classes=8, scale=(0.3, 1.0), hflip=0.5, label_smoothing=0.1)
    seen = set()
    for _ in range(12):
        out, cls, dense = t(image, scores, idx)
        assert out.shape == (1, 16, 16) and dense.shape == (8, 8)
        cols = dense.view(2, 4, 8).argmax(-1)[0].tolist()
        brighter_right = float(out[0, :, -1].mean()) > float(out[0, :, 0].mean())
        assert cols == sorted(cols, reverse=not brighter_right), (cols, brighter_right)
        seen.add(brighter_right)
    assert seen == {True, False}  # both flip decisions were exercised


def _save(path, tensor):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tensor, path)


def test_label_file_follows_the_reference_layout(tmp_path):
    assert label_file(tmp_path / "train" / "n01" / "n01_5.JPEG", tmp_path / "lab") == tmp_path / "lab" / "n01" / "n01_5.pt"


def test_load_reads_float16_top_k_files(tmp_path):
    f = tmp_path / "a" / "x.pt"
    _save(f, torch.stack([torch.rand(5, 3, 3), torch.randint(0, 10, (5, 3, 3)).float()]).half())
    scores, idx = load_token_labels(f, 10)
    assert scores.dtype == torch.float32 and idx.dtype == torch.int64 and scores.shape == idx.shape == (5, 3, 3)


@pytest.mark.parametrize("bad, words", [
    (torch.zeros(5, 3, 3, dtype=torch.float16), "shape (5, 3, 3)"),
    (torch.zeros(3, 5, 3, 3, dtype=torch.float16), "shape (3, 5, 3, 3)"),
    (torch.zeros(2, 5, 3, 3, dtype=torch.int64), "dtype torch.int64"),
    (torch.stack([torch.zeros(5, 3, 3), torch.full((5, 3, 3), 12.0)]), "class indices"),
    (torch.stack([torch.zeros(5, 3, 3), torch.full((5, 3, 3), 1.5)]), "class indices"),
    ({"scores": torch.zeros(1)}, "holds a dict"),
])
def test_bad_label_files_give_one_line_naming_the_file(tmp_path, bad, words):
    f = tmp_path / "c" / "img.pt"
    _save(f, bad)
    with pytest.raises(DataFileError) as e:
        load_token_labels(f, 10)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and words in msg


def test_missing_and_unreadable_files_give_one_line_naming_the_file(tmp_path):
    f = tmp_path / "c" / "none.pt"
    with pytest.raises(MissingDataFile) as e:
        load_token_labels(f, 10)
    assert "\n" not in str(e.value) and str(f) in str(e.value)
    f.parent.mkdir()
    f.write_bytes(b"not a tensor")
    with pytest.raises(DataFileError) as e:
        load_token_labels(f, 10)
    assert "\n" not in str(e.value) and str(f) in str(e.value)


def _folder(tmp_path, n=2):
    from PIL import Image
    paths = []
    for i in range(n):
        p = tmp_path / "train" / f"c{i}" / f"c{i}_{i}.png"
        p.parent.mkdir(parents=True)
        Image.new("RGB", (20, 24), (10 * i, 0, 0)).save(p)
        paths.append(p)
    return paths


def test_folder_dataset_yields_cropped_targets(tmp_path):
    paths = _folder(tmp_path)
    for p in paths:
        _save(label_file(p, tmp_path / "lab"), torch.stack([torch.rand(5, 4, 4), torch.randint(0, 6, (5, 4, 4)).float()]).half())
    t = RandomResizedCropWithLabels(14, grid=(2, 2), num_classes=6, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    ds = TokenLabelFolder(paths, [0, 1], tmp_path / "lab", t)
    image, target = ds[1]
    assert image.shape == (3, 14, 14) and target.label == 1
    assert target.cls.shape == (6,) and target.dense.shape == (4, 6)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch[1].dense.shape == (2, 4, 6) and batch[1].label.tolist() == [0, 1]


def test_folder_dataset_names_the_first_missing_label_file(tmp_path):
    paths = _folder(tmp_path)
    (tmp_path / "lab").mkdir()
    with pytest.raises(MissingDataFile) as e:
        TokenLabelFolder(paths, [0, 1], tmp_path / "lab", RandomResizedCropWithLabels(8, grid=2, num_classes=4))
    assert "\n" not in str(e.value) and str(label_file(paths[0], tmp_path / "lab")) in str(e.value)


def test_loss_equals_hand_computed_value_on_a_tiny_example():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    aux = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]]])
    cls_t = torch.tensor([[0.7, 0.2, 0.1]])
    dense_t = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.9, 0.1]]])
    out = TokenLabelOutput(logits, aux, (0, 0, 0, 0), (1, 2))
    loss = TokenLabelLoss(cls_weight=1.0, dense_weight=0.5)(out, cls_t, dense_t)

    def ce(z, p):
        lse = math.log(sum(math.exp(v) for v in z))
        return -sum(pi * (zi - lse) for zi, pi in zip(z, p))

    cls = ce([2, 0, -1], [0.7, 0.2, 0.1])
    dense = (ce([1, 1, 0], [0.5, 0.5, 0]) + ce([0, 3, 0], [0, 0.9, 0.1])) / 2
    assert float(loss) == pytest.approx(1.0 * cls + 0.5 * dense, rel=1e-6)


def _tree(tmp_path, classes=3, per_class=3, size=64, k=2):
    """A tiny ImageNet-style tree (train/, val/) with a label file per training image."""
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in range(classes):
            for i in range(per_class):
                p = tmp_path / "data" / split / f"n{c:02d}" / f"n{c:02d}_{i}.JPEG"
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (size, size), (80 * c, 40 * i, 0)).save(p, format="PNG")
                if split == "train":
                    idx = torch.stack([torch.randperm(classes, generator=g)[:k] for _ in range(16)], 1).view(k, 4, 4)
                    _save(label_file(p, tmp_path / "data" / "labels"), torch.stack([torch.rand(k, 4, 4, generator=g) * 5,
                                                                                    idx.float()]).half())
    return tmp_path / "data"


def test_imagefolder_option_builds_token_label_training_data(tmp_path):
    from wavevision.data import build_dataset
    root = _tree(tmp_path)
    ds, info = build_dataset("imagefolder", "train", root=root, augment=True, token_labels="labels", image_size=64)
    assert isinstance(ds, TokenLabelFolder)
    image, target = ds[0]
    assert image.shape == (3, 64, 64) and target.dense.shape == (4, info.num_classes)  # 64 / 32 = 2x2 tokens
    val, _ = build_dataset("imagefolder", "val", root=root, augment=False, token_labels="labels", image_size=64)
    assert not isinstance(val, TokenLabelFolder)  # evaluation reads plain labels
    with pytest.raises(ValueError, match="leads out of the dataset folder"):
        build_dataset("imagefolder", "train", root=root, augment=True, token_labels="../elsewhere")


def test_engine_loss_smooths_token_targets_and_weighs_dense_half():
    from wavevision.data.token_labels import TokenTargets, smooth
    from wavevision.engine.tasks.classification import Classification
    g = torch.Generator().manual_seed(2)
    out = TokenLabelOutput(torch.randn(2, 3, generator=g), torch.randn(2, 4, 3, generator=g), (0, 0, 0, 0), (2, 2))
    cls, dense = torch.rand(2, 3, generator=g).softmax(-1), torch.rand(2, 4, 3, generator=g).softmax(-1)
    target = TokenTargets(torch.tensor([0, 2]), cls, dense)
    got = Classification().loss(label_smoothing=0.1)(out, target)
    want = TokenLabelLoss(cls_weight=1.0, dense_weight=0.5)(out, smooth(cls, 0.1), smooth(dense, 0.1))
    torch.testing.assert_close(got, want)


@pytest.mark.slow
def test_two_training_steps_with_token_labels(tmp_path):
    from wavevision.engine import train
    root = _tree(tmp_path)
    vit = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4], stem_hidden_dim=8)
    result = train(dict(dataset="imagefolder", data_root=str(root), model="wave_vit_s", model_args=vit,
                        dataset_args={"image_size": 64, "token_labels": "labels"}, epochs=1, batch_size=4,
                        max_train_batches=2, max_eval_batches=1, label_smoothing=0.1, test=False,
                        output=str(tmp_path / "run"), threads=1, progress=False, plots=False))
    assert math.isfinite(result.history[0]["train_loss"]) and 0 <= result.history[0]["train_top1"] <= 100


@pytest.mark.slow
def test_recipe_trains_on_token_labels_inside_the_data_root(tmp_path):
    import warnings

    from wavevision.engine import train
    from wavevision.engine.config import resolve_config
    root = _tree(tmp_path)
    (root / "labels").rename(root / "label_top5_train_nfnet")  # the recipe's folder name, inside the root
    cfg = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_tl", data_root=str(root), amp="none", epochs=1,
                                        cooldown_epochs=0,
                                        batch_size=4, max_train_batches=2, max_eval_batches=1, test=False,
                                        model_args=dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                                        num_heads=[1, 2, 3, 4], stem_hidden_dim=8),
                                        dataset_args={"image_size": 64}, output=str(tmp_path / "run"), threads=1,
                                        progress=False, plots=False))
    assert cfg.dataset_args["token_labels"] == "label_top5_train_nfnet" and cfg.dataset_args["image_size"] == 64
    assert cfg.label_smoothing == 0.1  # (with timm: RandAugment and erasing of the image, test_data_pipeline.py)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(cfg)
    assert math.isfinite(result.history[0]["train_loss"])
    assert not any("token-label" in str(w.message) for w in caught)
