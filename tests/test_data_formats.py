"""Local dataset formats, each read from a small fixture written here in the real format
(IDX headers, CIFAR pickles, HDF5, PNG/JPEG trees, Cityscapes naming, SR folders)."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavevision.data import bicubic_downsample, build_dataset, detect_format

RNG = np.random.default_rng(0)


def unnormalize(image: torch.Tensor, info) -> torch.Tensor:
    mean = torch.tensor(info.mean).view(-1, 1, 1)
    std = torch.tensor(info.std).view(-1, 1, 1)
    return image * std + mean


def as_bytes(image: torch.Tensor, info) -> np.ndarray:
    return unnormalize(image, info).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()


def all_samples(ds):
    return [ds[i] for i in range(len(ds))]


# ---------------------------------------------------------------------------------------------
# MNIST-family IDX


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def mnist_root(tmp_path):
    root = tmp_path / "mnist"
    data = {}
    for prefix, n, compress in (("train", 50, True), ("t10k", 20, False)):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, compress)
        data[prefix] = (images, labels)
    return root, data


def test_mnist_idx_splits_images_and_labels(mnist_root):
    root, data = mnist_root
    seen = {}
    for split in ("train", "val", "test"):
        ds, info = build_dataset("mnist", split, root=root)
        assert info.num_classes == 10 and info.in_chans == 1 and info.image_size == (28, 28)
        assert info.mean == (0.1307,)
        samples = all_samples(ds)
        assert all(x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int) for x, y in samples)
        seen[split] = samples
    assert (len(seen["train"]), len(seen["val"]), len(seen["test"])) == (45, 5, 20)
    info = build_dataset("mnist", "test", root=root)[1]
    # train + val are exactly the official training images, no overlap
    train_images, train_labels = data["train"]
    rebuilt = {as_bytes(x, info)[0].tobytes(): y for x, y in seen["train"] + seen["val"]}
    assert len(rebuilt) == 50
    for image, label in zip(train_images, train_labels):
        assert rebuilt[image.tobytes()] == label
    test_images, test_labels = data["t10k"]
    assert [as_bytes(x, info)[0].tobytes() for x, _ in seen["test"]] == [im.tobytes() for im in test_images]
    assert [y for _, y in seen["test"]] == test_labels.tolist()
    # same hold-out every time, resize option
    again, _ = build_dataset("mnist", "val", root=root)
    assert [y for _, y in all_samples(again)] == [y for _, y in seen["val"]]
    big, info = build_dataset("mnist", "test", root=root, image_size=32, val_size=10)
    assert big[0][0].shape == (1, 32, 32) and info.image_size == (32, 32)
    assert len(build_dataset("mnist", "train", root=root, val_size=10)[0]) == 40
    fashion, info = build_dataset("fashion-mnist", "test", root=root)
    assert info.class_names[9] == "Ankle boot" and len(fashion) == 20


def test_mnist_bad_files(mnist_root, tmp_path):
    root, _ = mnist_root
    labels = root / "t10k-labels-idx1-ubyte"
    write_idx(labels, np.array([3] * 19 + [10]), compress=False)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*label 10 is out of range 0\.\.9"):
        build_dataset("mnist", "test", root=root)
    images = root / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*truncated"):
        build_dataset("mnist", "test", root=root)
    images.write_bytes(b"\x89PNG not idx at all")
    with pytest.raises(ValueError, match="not an IDX file"):
        build_dataset("mnist", "test", root=root)
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        build_dataset("mnist", "train", root=tmp_path / "mnist" / "..")
    with pytest.raises(ValueError, match="val_size must be between 1 and 49"):
        build_dataset("mnist", "val", root=root, val_size=50)
    with pytest.raises(ValueError, match="pass root=PATH"):
        build_dataset("mnist", "train")


def test_emnist_letters_upright_and_zero_based(tmp_path):
    root = tmp_path / "emnist"
    upright = np.zeros((6, 28, 28), np.uint8)
    upright[:, 2, 20] = 255  # a mark near the top right: tells rows from columns
    labels = np.array([1, 2, 3, 24, 25, 26])
    for part in ("train", "test"):
        write_idx(root / "gzip" / f"emnist-letters-{part}-images-idx3-ubyte", upright.transpose(0, 2, 1), True)
        write_idx(root / "gzip" / f"emnist-letters-{part}-labels-idx1-ubyte", labels, True)
    ds, info = build_dataset("emnist", "test", root=root)
    assert info.num_classes == 26 and info.class_names[0] == "a"
    assert [y for _, y in all_samples(ds)] == [0, 1, 2, 23, 24, 25]
    raw = unnormalize(ds[0][0], info)[0]
    assert raw[2, 20] > 0.99 and raw[20, 2] < 0.01
    assert detect_format(root) == "emnist"
    with pytest.raises(ValueError, match="EMNIST subset: 'leters' is not a valid choice.*'letters'"):
        build_dataset("emnist", "test", root=root, subset="leters")


# ---------------------------------------------------------------------------------------------
# CIFAR


def write_cifar(root: Path, name: str) -> dict:
    def batch(n, offset, **labels):
        data = RNG.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        return {b"data": data, **{k.encode(): v for k, v in labels.items()}, b"batch_label": b"x"}

    def dump(path: Path, obj) -> None:
        path.write_bytes(pickle.dumps(obj, protocol=2))

    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        batches = [batch(12, i, labels=[(j + i) % 10 for j in range(12)]) for i in range(5)]
        for i, b in enumerate(batches, 1):
            dump(folder / f"data_batch_{i}", b)
        test = batch(10, 0, labels=list(range(10)))
        dump(folder / "test_batch", test)
        dump(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
        return {"train": batches, "test": [test]}
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    train = batch(40, 0, fine_labels=list(range(40)), coarse_labels=[i % 20 for i in range(40)])
    test = batch(10, 0, fine_labels=list(range(90, 100)), coarse_labels=list(range(10)))
    dump(folder / "train", train)
    dump(folder / "test", test)
    dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                           b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    return {"train": [train], "test": [test]}


def test_cifar10_pickles(tmp_path):
    batches = write_cifar(tmp_path, "cifar10")
    train_data = np.concatenate([b[b"data"] for b in batches["train"]])
    train_labels = sum((b[b"labels"] for b in batches["train"]), [])
    ds, info = build_dataset("cifar10", "train", root=tmp_path, val_size=6)
    val, _ = build_dataset("cifar10", "val", root=tmp_path / "cifar-10-batches-py", val_size=6)
    test, _ = build_dataset("cifar10", "test", root=tmp_path)
    assert (len(ds), len(val), len(test)) == (54, 6, 10)
    assert info.class_names == tuple(f"class{i}" for i in range(10)) and info.in_chans == 3
    got = {as_bytes(x, info).tobytes(): y for x, y in all_samples(ds) + all_samples(val)}
    for row, label in zip(train_data, train_labels):
        assert got[row.tobytes()] == label  # (N, 3072) rows are channel-major 3x32x32
    assert [y for _, y in all_samples(test)] == list(range(10))
    assert detect_format(tmp_path) == "cifar10"
    with pytest.raises(ValueError, match="val_size must be between 1 and 59"):
        build_dataset("cifar10", "val", root=tmp_path)  # default 5,000 is more than this fixture holds


def test_cifar100_fine_and_coarse_and_tampered_pickle(tmp_path):
    write_cifar(tmp_path, "cifar100")
    fine, info = build_dataset("cifar100", "test", root=tmp_path)
    assert info.num_classes == 100 and [y for _, y in all_samples(fine)] == list(range(90, 100))
    coarse, info = build_dataset("cifar100", "test", root=tmp_path, label_mode="coarse")
    assert info.num_classes == 20 and info.class_names[3] == "c3" and [y for _, y in all_samples(coarse)] == list(range(10))
    with pytest.raises(ValueError, match="label_mode: 'course' is not a valid choice.*'coarse'"):
        build_dataset("cifar100", "test", root=tmp_path, label_mode="course")
    assert detect_format(tmp_path) == "cifar100"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-100-python" / "test").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load .*print"):
        build_dataset("cifar100", "test", root=tmp_path)


# ---------------------------------------------------------------------------------------------
# image folders


def save_image(path: Path, size=(20, 24), mode="RGB", fmt=None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    array = RNG.integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(array, mode).save(path, format=fmt)
    return array


def test_imagefolder_train_val_layout(tmp_path):
    root = tmp_path / "inet"
    for split, n in (("train", 10), ("val", 3)):
        for cls in ("cat", "dog", "eel"):
            for i in range(n):
                ext = ".jpg" if i % 2 else ".png"
                save_image(root / split / cls / f"{i}{ext}", size=(20 + i, 16), mode="L" if i == 1 else "RGB")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    sizes = {}
    for split in ("train", "val", "test"):
        ds, info = build_dataset("imagefolder", split, root=root, image_size=16)
        assert info.class_names == ("cat", "dog", "eel") and info.image_size == (16, 16)
        samples = all_samples(ds)
        assert all(x.shape == (3, 16, 16) for x, _ in samples)
        sizes[split] = len(ds)
        if split == "test":  # the official val folder: 3 per class, in class order
            assert [y for _, y in samples] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert sizes == {"train": 27, "val": 3, "test": 9}
    # augmentation: random crops and flips, reproducible with torch's seed
    aug, _ = build_dataset("imagenet", "train", root=root, image_size=16)
    assert aug[0][0].shape == (3, 16, 16)
    aug, _ = build_dataset("imagefolder", "train", root=root, image_size=16, augment=True)
    torch.manual_seed(0)
    a = torch.stack([aug[i][0] for i in range(6)])
    torch.manual_seed(0)
    assert torch.equal(a, torch.stack([aug[i][0] for i in range(6)]))
    gray, info = build_dataset("imagefolder", "test", root=root, image_size=8, in_chans=1)
    assert gray[0][0].shape == (1, 8, 8) and info.in_chans == 1 and len(info.mean) == 1
    assert detect_format(root) == "imagefolder"
    # a class in val that train lacks
    save_image(root / "val" / "fox" / "0.png")
    with pytest.raises(ValueError, match="classes the training split lacks: fox"):
        build_dataset("imagefolder", "test", root=root)


def test_imagefolder_single_tree_and_bad_files(tmp_path):
    root = tmp_path / "tree"
    for cls in ("a", "b"):
        for i in range(15):
            save_image(root / cls / f"{i}.png", size=(8, 8))
    parts = {s: build_dataset("imagefolder", s, root=root, image_size=8)[0] for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in parts.items()} == {"train": 24, "val": 3, "test": 3}
    only_train = tmp_path / "only_train"
    (only_train).mkdir()
    (only_train / "train").symlink_to(root)
    assert [len(build_dataset("imagefolder", s, root=only_train)[0]) for s in ("train", "val", "test")] == [24, 3, 3]
    assert torch.equal(pickle.loads(pickle.dumps(parts["val"]))[1][0], parts["val"][1][0])
    paths = [set(d.paths) for d in parts.values()]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    victim = Path(parts["train"].paths[-1])
    good = victim.read_bytes()
    victim.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match=f"cannot decode image file '{victim}'"):
        build_dataset("imagefolder", "train", root=root)
    # truncated after the header: found when the sample is read, still naming the file
    victim.write_bytes(good[: len(good) // 2])
    ds, _ = build_dataset("imagefolder", "train", root=root, image_size=8)
    with pytest.raises(ValueError, match=f"cannot decode image file '{victim}'"):
        ds[len(ds) - 1]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no image-classification layout.*train/<class>"):
        build_dataset("imagefolder", "train", root=empty)
    with pytest.raises(FileNotFoundError, match="is empty"):
        build_dataset(str(empty), "train")
    (empty / "readme.txt").write_text("no data here")
    with pytest.raises(ValueError, match="(?s)no known dataset layout.*cifar10: cifar-10-batches-py"):
        build_dataset(str(empty), "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset("imagefolder", "train", root=tmp_path / "missing")


def test_an_evaluation_copy_with_only_val_serves_the_test_split(tmp_path):
    """ImageNet's val/<wnid>/ alone (what a user evaluating released weights has): the test split."""
    root = tmp_path / "imagenet"
    for w in ("n01440764", "n01443537"):
        for i in range(3):
            save_image(root / "val" / w / f"{w}_{i}.JPEG", size=(40, 30), fmt="JPEG")
    test, info = build_dataset("imagenet", "test", root=root, image_size=16)
    assert len(test) == 6 and info.class_names == ("n01440764", "n01443537") and test[0][0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match=r"holds only val/ \(no train/\), which serves the test split; evaluate with "
                                         r"split 'test'"):
        build_dataset("imagenet", "val", root=root)


def test_tiny_imagenet_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    (root).mkdir()
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        for i in range(10):
            save_image(root / "train" / w / "images" / f"{w}_{i}.JPEG", size=(64, 64), fmt="JPEG")
    lines = []
    for i in range(4):
        save_image(root / "val" / "images" / f"val_{i}.JPEG", size=(64, 64), fmt="JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[i % 2]}\t0\t0\t10\t10")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    test, info = build_dataset(str(root), "test")
    assert info.name == "tiny-imagenet" and info.image_size == (64, 64) and info.num_classes == 2
    assert [y for _, y in all_samples(test)] == [0, 1, 0, 1]
    assert len(build_dataset("tiny-imagenet", "val", root=root)[0]) == 2  # 10 % of 20
    assert len(build_dataset("tiny-imagenet", "train", root=root)[0]) == 18
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match="line 1.*names no known class"):
        build_dataset("tiny-imagenet", "test", root=root)


# ---------------------------------------------------------------------------------------------
# Galaxy10 DECals (HDF5)


def test_galaxy10_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "Galaxy10_DECals.h5"
    images = RNG.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(30) % 10
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["ans"] = labels
    sizes, seen = {}, {}
    for split in ("train", "val", "test"):
        ds, info = build_dataset(str(tmp_path), split)
        assert info.name == "galaxy10" and info.num_classes == 10 and info.class_names[0] == "Disturbed"
        sizes[split] = len(ds)
        for x, y in all_samples(ds):
            seen[as_bytes(x, info).transpose(1, 2, 0).tobytes()] = y
    assert sizes == {"train": 24, "val": 3, "test": 3}
    assert all(seen[im.tobytes()] == y for im, y in zip(images, labels))
    # workers each open the file; augmentation reproducible given torch's seed
    ds, _ = build_dataset("galaxy10", "train", root=path, augment=True, image_size=8)
    ds[0]  # opens the file in this process; a pickled copy must not carry the handle
    assert pickle.loads(pickle.dumps(ds))._file is None
    ds.close()
    loader = lambda: torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2)  # noqa: E731
    torch.manual_seed(0)
    first = torch.cat([x for x, _ in loader()])
    torch.manual_seed(0)
    assert torch.equal(first, torch.cat([x for x, _ in loader()])) and first.shape == (24, 3, 8, 8)
    with h5py.File(path, "a") as f:
        f["ans"][0] = 12
    with pytest.raises(ValueError, match="'ans' of .*Galaxy10_DECals.h5.*label 12 is out of range"):
        build_dataset("galaxy10", "train", root=path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["pixels"] = images
    with pytest.raises(ValueError, match="no images or ans dataset.*found: pixels"):
        build_dataset("galaxy10", "train", root=other)
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="cannot open .*broken.h5. as HDF5"):
        build_dataset("galaxy10", "train", root=tmp_path / "broken.h5")


# ---------------------------------------------------------------------------------------------
# Cityscapes


def write_cityscapes(root: Path, split: str, city: str, n: int) -> list[np.ndarray]:
    ids = []
    for i in range(n):
        stem = f"{city}_{i:06d}_000019"
        save_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", size=(32, 16))
        label = np.zeros((16, 32), np.uint8)
        label[:, :8] = 7      # road -> 0
        label[:, 8:16] = 26   # car -> 13
        label[:, 16:24] = 33  # bicycle -> 18
        label[:4, 24:] = 4    # static -> ignored
        label[4:, 24:] = i % 34
        path = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label).save(path)
        ids.append(label)
    return ids


def test_cityscapes_train_ids_and_splits(tmp_path):
    root = tmp_path / "cityscapes"
    write_cityscapes(root, "train", "aachen", 20)
    write_cityscapes(root, "val", "frankfurt", 3)
    test, info = build_dataset(str(root), "test")
    test = pickle.loads(pickle.dumps(test))  # what DataLoader workers get under spawn
    assert info.name == "cityscapes" and info.num_classes == 19 and info.ignore_index == 255
    assert info.class_names[13] == "car" and len(test) == 3
    image, mask = test[1]
    assert image.shape == (3, 16, 32) and mask.shape == (16, 32) and mask.dtype == torch.int64
    assert (mask[:, :8] == 0).all() and (mask[:, 8:16] == 13).all() and (mask[:, 16:24] == 18).all()
    assert (mask[:4, 24:] == 255).all() and (mask[4:, 24:] == 255).all()  # ids 4 and 1 are not evaluated
    train, _ = build_dataset("cityscapes", "train", root=root)
    # file i carries label id i (0..19) in its corner; of those, these are evaluated classes
    evaluated = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6}
    for i, name in enumerate(train.images):
        expect = evaluated.get(int(name.rsplit("_", 3)[1]), 255)
        assert int(train[i][1][5, 30]) == expect
    assert len(build_dataset("cityscapes", "val", root=root)[0]) == 2
    assert len(build_dataset("cityscapes", "train", root=root)[0]) == 18
    with pytest.raises(ValueError, match="verify must be true or false, got 'perhaps'"):
        build_dataset("cityscapes", "train", root=root, verify="perhaps")
    aug, info = build_dataset("cityscapes", "train", root=root, augment=True, crop_size=(8, 12))
    torch.manual_seed(0)
    image, mask = aug[0]
    assert image.shape == (3, 8, 12) and mask.shape == (8, 12) and info.image_size == (8, 12)
    assert set(mask.unique().tolist()) <= {0, 13, 18, 255}
    small, info = build_dataset("cityscapes", "test", root=root, image_size=(8, 16))
    assert small[0][0].shape == (3, 8, 16) and set(small[0][1].unique().tolist()) <= {0, 13, 18, 255}
    next((root / "gtFine" / "val" / "frankfurt").glob("*000001*")).unlink()
    with pytest.raises(FileNotFoundError, match="frankfurt_000001_000019_leftImg8bit.png' has no label file"):
        build_dataset("cityscapes", "test", root=root)


# ---------------------------------------------------------------------------------------------
# super-resolution folders


def test_div2k_layout_and_aligned_patches(tmp_path):
    root = tmp_path / "div2k"
    for i in range(10):
        save_image(root / "DIV2K_train_HR" / f"{i:04d}.png", size=(40, 36))
    for i in range(2):
        save_image(root / "DIV2K_valid_HR" / f"{801 + i:04d}.png", size=(30, 22))
    assert detect_format(root) == "div2k"
    train, info = build_dataset("div2k", "train", root=root, scale=2, patch_size=16, num_patches=12)
    assert len(train) == 12 and info.image_size == (16, 16) and info.scale == 2 and info.mean == ()
    lr, hr = train[0]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
    assert len(build_dataset("div2k", "val", root=root)[0]) == 1
    test, info = build_dataset("sr-folder", "test", root=root, scale=4)
    test = pickle.loads(pickle.dumps(test))
    assert info.image_size is None and len(test) == 2
    lr, hr = test[0]
    assert hr.shape == (3, 20, 28) and lr.shape == (3, 5, 7)  # 22x30 cropped to a multiple of 4
    torch.testing.assert_close(lr, bicubic_downsample(hr, 4))
    truth = torch.from_numpy(np.array(Image.open(root / "DIV2K_valid_HR" / "0801.png"))).permute(2, 0, 1) / 255
    torch.testing.assert_close(hr, truth[:, :20, :28])
    # random patches are aligned with the whole-image LR
    aug, _ = build_dataset("div2k", "train", root=root, scale=2, patch_size=8, augment=True, num_patches=20, cache=True)
    torch.manual_seed(0)
    for i in range(20):
        lr, hr = aug[i]
        shrunk = bicubic_downsample(hr, 2)  # equals the LR away from the patch border when aligned
        assert (lr - shrunk)[:, 1:-1, 1:-1].abs().mean() < 0.02  # a one-pixel shift gives ~0.1
    with pytest.raises(ValueError, match=r"0000.png' is 40x36 pixels, smaller than the minimum of 64x64 \(the patch"):
        build_dataset("div2k", "train", root=root, patch_size=64)[0][0]


def test_sr_evaluation_folders(tmp_path):
    set5 = tmp_path / "Set5"
    for name in ("baby", "bird", "butterfly"):
        save_image(set5 / f"{name}.png", size=(24, 20))
    test, info = build_dataset(str(set5), "test", scale=2)
    assert info.name == "sr-folder" and len(test) == 3 and test[0][1].shape == (3, 20, 24)
    with pytest.raises(ValueError, match="evaluation set \\(3 images.*split='test'"):
        build_dataset("sr-folder", "train", root=set5)
    srf = tmp_path / "Set14"
    for i in range(2):
        save_image(srf / "image_SRF_4" / f"img_{i:03d}_SRF_4_HR.png", size=(16, 16))
        save_image(srf / "image_SRF_4" / f"img_{i:03d}_SRF_4_LR.png", size=(4, 4))
    test, info = build_dataset("sr-folder", "test", root=srf, scale=4)
    assert len(test) == 2 and test[0][0].shape == (3, 4, 4) and test[0][1].shape == (3, 16, 16)
    crop, info = build_dataset("sr-folder", "test", root=set5, scale=2, eval_size=12)
    assert info.image_size == (12, 12) and crop[0][1].shape == (3, 12, 12) and crop[0][0].shape == (3, 6, 6)
    with pytest.raises(ValueError, match="scale must be 2, 4 or 8"):
        build_dataset("sr-folder", "test", root=set5, scale=3)
    # train/ + test/ folders of images: super-resolution, not classes named "train" and "test"
    split_root = tmp_path / "mine"
    for split, n in (("train", 5), ("test", 2)):
        for i in range(n):
            save_image(split_root / split / f"{i}.png", size=(16, 16))
    assert detect_format(split_root) == "sr-folder"
    assert len(build_dataset(str(split_root), "test")[0]) == 2
    assert len(build_dataset(str(split_root), "val", scale=2)[0]) == 1  # held out of train/
    with pytest.raises(ValueError, match="without class subfolders"):
        build_dataset("imagefolder", "train", root=split_root)
