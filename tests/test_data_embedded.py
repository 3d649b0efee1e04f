"""The embedded real datasets (digits, digit-scenes, photos) against the data they come from."""
from __future__ import annotations

import pickle

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
    with pytest.raises(ValueError, match="split 'valid'.*'val'"):
        build_dataset("digits", "valid")
    with pytest.raises(ValueError, match="dataset 'digit'.*did you mean 'digits'"):
        build_dataset("digit", "train")
