"""Hostile dataset files and folders: corrupt images and decompression bombs (also read in
DataLoader workers and through the train/eval/predict commands), symlink loops, links leaving a
class folder, unreadable class folders, damaged metadata files and sizes that cannot fit."""
from __future__ import annotations

import gc
import gzip
import os
import struct
import weakref
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wavevision.cli import main
from wavevision.data import DataFileError, build_dataset, load_image
from wavevision.data.folders import scan_class_folders, verify_images

from _deadline import finishes, in_subprocess

QUICK = ["--threads", "1", "--no-progress", "--no-plots"]
TINY = ["--model-arg", "final_dim=16", "--model-arg", "ff_channel=16", "--model-arg", "depth=1"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A 1-bit PNG whose header declares ``side`` x ``side`` pixels (1e10: far past Pillow's limit)."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", zlib.compress(row * 4)) + png_chunk(b"IEND", b""))
    return path


def truncated_png(path: Path, seed: int = 0) -> Path:
    """A real PNG cut inside its image data: the header opens, decoding fails."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    return path


def image_tree(root: Path, classes=("a", "b"), per_class: int = 10, size: int = 8) -> Path:
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Images: corrupt files and decompression bombs are one-line errors naming the file


def test_decompression_bomb_is_a_one_line_error_naming_the_file(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(DataFileError, match=r"image file '.*bomb\.png' is a decompression bomb .*10000000000 pixels"):
        load_image(bomb)
    with pytest.raises(DataFileError, match=r"bomb\.png' is a decompression bomb") as info:
        verify_images([bomb])
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_corrupt_and_unreadable_images_name_the_file(tmp_path):
    bad = truncated_png(tmp_path / "cut.png")
    with Image.open(bad) as img:
        assert img.size == (16, 16)  # the header is fine: only decoding finds the damage
    with pytest.raises(DataFileError, match=r"cannot decode image file '.*cut\.png' \(corrupt or not an image"):
        load_image(bad)
    with pytest.raises(DataFileError, match=r"image file '.*missing\.png' does not exist") as info:
        load_image(tmp_path / "missing.png")
    assert isinstance(info.value, FileNotFoundError)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        with pytest.raises(DataFileError, match=r"'.*pipe\.png' is not a regular file"):
            load_image(tmp_path / "pipe.png")  # opening a FIFO would block forever


class _Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = [str(p) for p in paths]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return load_image(self.paths[i]).mean()


def vanished(path: Path) -> Path:
    """An image deleted after the dataset was built."""
    path.unlink(missing_ok=True)
    return path


@pytest.mark.parametrize("make", [truncated_png, bomb_png, vanished])
def test_errors_in_dataloader_workers_stay_one_line(tmp_path, make):
    paths = [tmp_path / f"{i}.png" for i in range(4)]
    for p in paths[1:]:
        Image.new("RGB", (4, 4)).save(p)
    make(paths[0])
    it = iter(torch.utils.data.DataLoader(_Files(paths), batch_size=1, num_workers=2))
    alive = weakref.ref(it)
    gc.disable()  # only reference counting frees below
    try:
        with pytest.raises(DataFileError) as info:
            for _ in it:
                pass
        message = str(info.value)
        del it, info
        # torch re-raises through a local variable (a reference cycle that keeps the workers
        # until the garbage collector runs, then 5 s each to stop) unless the class has `message`
        assert alive() is None, "the DataLoader iterator outlived the error"
    finally:
        gc.enable()
    assert "\n" not in message and "0.png" in message and "worker" not in message, message
    assert message == str(DataFileError(message))  # re-raising again keeps it


def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", str(data), *TINY, "--dataset-arg", "image_size=8", "--epochs", "1",
            "--batch-size", "4", "--max-eval-batches", "1", "-o", str(out), *QUICK, *extra]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A tiny run trained on a folder dataset (3 classes, 8x8 PNGs)."""
    base = tmp_path_factory.mktemp("hostile")
    data = image_tree(base / "data", classes=("a", "b", "c"), per_class=8)
    assert main(_train_argv(data, base / "run", "--max-train-batches", "1", "--no-test")) == 0
    return data, base / "run"


def _broken_copy(root: Path, make) -> Path:
    """The folder dataset with every image of class a broken by ``make``."""
    copy = image_tree(root, classes=("a", "b", "c"), per_class=8)
    for p in (copy / "a").iterdir():
        make(p)
    return copy


def _error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return one_line(capsys.readouterr().err)


def test_train_eval_predict_name_a_bad_image_in_one_line(folder_run, tmp_path, capsys):
    data, run = folder_run
    corrupt, bomb = "cannot decode image file", "is a decompression bomb"
    for make, message in ((truncated_png, corrupt), (bomb_png, bomb)):  # predict reads the file itself
        line = _error_line(capsys, ["predict", str(run), str(make(tmp_path / f"{make.__name__}.png"))])
        assert message in line and make.__name__ in line, line
    # read by two worker processes (verify=false: the build-time check would find them first)
    cut, bombs = _broken_copy(tmp_path / "cut", truncated_png), _broken_copy(tmp_path / "bombs", bomb_png)
    no_check = ["--num-workers", "2", "--dataset-arg", "verify=false"]
    line = _error_line(capsys, _train_argv(cut, tmp_path / "run", *no_check))
    assert corrupt in line and str(cut / "a") in line, line
    line = _error_line(capsys, ["eval", str(run), "--dataset", str(bombs), "--split", "train", *no_check,
                                "--dataset-arg", "image_size=8", "--no-progress"])
    assert bomb in line and str(bombs / "a") in line, line
    # the build-time check (verify, on by default) finds a bomb before training starts
    line = _error_line(capsys, _train_argv(bombs, tmp_path / "run2"))
    assert bomb in line and str(bombs / "a") in line, line


# ---------------------------------------------------------------------------------------------
# Folders: link loops, links leaving a class folder, unreadable class folders


@pytest.mark.slow
def test_symlink_loops_neither_hang_nor_duplicate_samples(tmp_path):
    data = image_tree(tmp_path / "data", per_class=3)
    (data / "a" / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(data / "a" / "sub" / "deep.png")
    os.symlink("..", data / "a" / "sub" / "up")  # a loop back to the class folder
    os.symlink(".", data / "a" / "self")  # a loop onto itself
    os.symlink("sub", data / "a" / "again")  # a second way into the same folder (sorted before it)
    os.symlink(data / "b", data / "b" / "loop")
    everything = image_tree(tmp_path / "everything", per_class=1)
    os.symlink("/", everything / "a" / "root")  # would walk the whole machine
    # a walk that follows links would spin (or read the machine): run it apart, with a deadline
    done = in_subprocess(
        "from pathlib import Path\n"
        "from wavevision.data.folders import scan_class_folders\n"
        f"data = Path({str(data)!r})\n"
        "paths, labels, classes = scan_class_folders(data)\n"
        "print(classes, labels)\n"
        "print(*[p.relative_to(data).as_posix() for p in paths])\n"
        "try:\n"
        f"    scan_class_folders(Path({str(everything)!r}))\n"
        "except ValueError as e:\n"
        "    print(e)\n", 60, "listing folders with link loops")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "('a', 'b') [0, 0, 0, 0, 1, 1, 1]", done.stdout
    assert lines[1].split() == ["a/0.png", "a/1.png", "a/2.png", "a/sub/deep.png", "b/0.png", "b/1.png", "b/2.png"]
    assert "a/root' links to '/', outside the class folder" in lines[2], done.stdout


def test_a_link_leaving_the_class_folder_is_refused(tmp_path):
    data = image_tree(tmp_path / "data", per_class=2)
    outside = image_tree(tmp_path / "elsewhere", classes=("x",), per_class=2)
    os.symlink(outside / "x", data / "a" / "more")
    with pytest.raises(ValueError, match=r"'.*data/a/more' links to '.*elsewhere/x', outside the class folder "
                                         r"'.*data/a'; link the class folder itself, or copy the images in"):
        scan_class_folders(data)
    # a class folder may itself be a link (a common way to assemble a dataset) ...
    (data / "a" / "more").unlink()
    os.symlink(outside / "x", data / "x")
    paths, labels, classes = scan_class_folders(data)
    assert classes == ("a", "b", "x") and len(paths) == 6
    # ... but not to the folder holding the classes, nor to another class: its images would repeat
    os.symlink(".", data / "all")
    with pytest.raises(ValueError, match=r"class folder '.*data/all' links to '.*data', which holds the class folders"):
        scan_class_folders(data)
    (data / "all").unlink()
    os.symlink(outside / "x", data / "y")
    with pytest.raises(ValueError, match=r"class folders '.*data/x' and '.*data/y' are the same folder"):
        scan_class_folders(data)


def test_an_unreadable_class_folder_is_an_error(tmp_path, monkeypatch):
    data = image_tree(tmp_path / "data", classes=("a", "b", "c"), per_class=2)
    real_scandir = os.scandir
    locked = str(data / "b")

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataFileError, match=r"cannot list '.*data/b' \(Permission denied\)"):
        scan_class_folders(data)


def test_an_empty_class_folder_in_the_training_split_is_an_error(tmp_path):
    """As torchvision's ImageFolder: a class with no images would silently shift every later
    label. A validation split may lack a class (its labels come from the training split)."""
    data = image_tree(tmp_path / "data", classes=("train/a", "train/c", "val/a", "val/c"), per_class=2)
    (data / "train" / "b").mkdir()
    with pytest.raises(FileNotFoundError, match=r"class folder b in '.*train' hold no images.*add images or remove"):
        build_dataset("imagefolder", "train", root=data, image_size=8)
    (data / "train" / "b" / "0.png").write_bytes((data / "train" / "a" / "0.png").read_bytes())
    (data / "val" / "b").mkdir()  # no validation images of b: fine, b keeps label 1 from train
    train, info = build_dataset("imagefolder", "train", root=data, image_size=8)
    assert info.class_names == ("a", "b", "c") and {int(train[i][1]) for i in range(len(train))} <= {0, 1, 2}
    for split in ("val", "test"):  # both come from val/ (a holdout each)
        held, held_info = build_dataset("imagefolder", split, root=data, image_size=8)
        assert held_info.class_names == ("a", "b", "c") and {int(held[i][1]) for i in range(len(held))} <= {0, 2}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_class_folder_is_an_error_for_real(tmp_path):
    data = image_tree(tmp_path / "data", classes=("a", "b", "c"), per_class=2)
    (data / "b").chmod(0)
    try:
        with pytest.raises(DataFileError, match=r"cannot list '.*data/b'"):
            build_dataset("imagefolder", "train", root=data, image_size=8)
    finally:
        (data / "b").chmod(0o755)


# ---------------------------------------------------------------------------------------------
# Metadata files: declared sizes checked against the file, size limits, no FIFOs


def idx_bytes(dims: tuple[int, ...], payload: bytes = b"", code: int = 0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_idx_header_declaring_more_than_the_file_holds(tmp_path):
    from wavevision.data.idx import read_idx

    huge = tmp_path / "huge-idx3-ubyte"
    huge.write_bytes(idx_bytes((2**32 - 1, 2**32 - 1, 2**32 - 1), b"\x00" * 100))
    with pytest.raises(ValueError, match=r"huge-idx3-ubyte' is truncated: dimensions \(4294967295, 4294967295, "
                                         r"4294967295\) need 79228162\d+ bytes of data, found 100"):
        read_idx(huge)
    packed = tmp_path / "packed-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(idx_bytes((10**6, 1000, 1000), b"\x00" * 1000)))
    with pytest.raises(ValueError, match=r"packed-idx3-ubyte.gz' is truncated: dimensions \(1000000, 1000, 1000\) "
                                         r"need 1000000000000 bytes of data, more than a gzip file of \d+ bytes holds"):
        read_idx(packed)
    wide = tmp_path / "wide-idx3-ubyte"
    wide.write_bytes(idx_bytes((1,) * 200))
    with pytest.raises(ValueError, match=r"declares 200 dimensions"):
        read_idx(wide)


def test_idx_gzip_with_a_damaged_checksum_is_refused(tmp_path):
    from wavevision.data.idx import read_idx

    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    data = bytearray(gzip.compress(idx_bytes(images.shape, images.tobytes())))
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    path = tmp_path / "crc-idx3-ubyte.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"cannot read '.*crc-idx3-ubyte.gz' \(CRC check failed.*the file is damaged"):
        read_idx(path)


def test_idx_gzip_bomb_is_read_only_as_far_as_declared(tmp_path):
    """A small .gz whose stream runs on for 256 MiB past the declared images: only the declared
    bytes are decompressed (measured with tracemalloc, not time)."""
    import tracemalloc

    from wavevision.data.idx import read_idx

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = tmp_path / "bomb-idx3-ubyte.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    parts = [compressor.compress(idx_bytes(images.shape, images.tobytes()))]
    zeros = b"\x00" * (1 << 20)
    parts += [compressor.compress(zeros) for _ in range(256)]
    path.write_bytes(b"".join(parts) + compressor.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        array = read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(array, images)
    assert peak < 32 << 20, f"reading a 2-image IDX file allocated {peak / 2**20:.0f} MiB"


def _cifar_folder(root: Path) -> Path:
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}, protocol=2))
    return folder


def test_cifar_batches_hold_arrays_of_the_declared_shape(tmp_path):
    import pickle

    folder = _cifar_folder(tmp_path)
    # the dict {"data": <10**12 zeros as nested lists>, "labels": [...]}: numpy would walk 10**12 items
    value = pickle.loads(nested_list_bomb_dict())
    assert len(value["data"]) == 1000 and len(value["data"][0][0][0]) == 1000
    (folder / "test_batch").write_bytes(nested_list_bomb_dict())
    with pytest.raises(ValueError, match=r"test_batch': 'data' must be a uint8 array \(N, 3072\), got list"):
        finishes(lambda: build_dataset("cifar10", "test", root=tmp_path), 30, "reading a nested-list CIFAR batch")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8),
                                                      b"labels": [[0] * 3] * 4}, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch': 'labels' must be 4 integers"):
        build_dataset("cifar10", "test", root=tmp_path)


def nested_list_bomb_dict(levels: int = 4, width: int = 1000) -> bytes:
    """``{"data": <width ** levels zeros as nested lists>, "labels": [0]}`` pickled in a few KiB:
    every level repeats one memoised list."""
    import pickle

    out = [pickle.PROTO + b"\x02", pickle.EMPTY_DICT, pickle.SHORT_BINUNICODE + b"\x04data"]
    out += [pickle.MARK] + [pickle.BININT1 + b"\x00"] * width + [pickle.LIST, pickle.BINPUT + b"\x00", pickle.POP]
    for level in range(1, levels):
        out += [pickle.MARK] + [pickle.BINGET + bytes([level - 1])] * width
        out += [pickle.LIST, pickle.BINPUT + bytes([level])] + ([pickle.POP] if level < levels - 1 else [])
    out += [pickle.SETITEM]
    out += [pickle.SHORT_BINUNICODE + b"\x06labels", pickle.MARK, pickle.BININT1 + b"\x00", pickle.LIST,
            pickle.SETITEM, pickle.STOP]
    return b"".join(out)


def test_cifar_batch_size_is_limited(tmp_path):
    folder = _cifar_folder(tmp_path)
    with open(folder / "test_batch", "r+b") as f:
        f.truncate(300 << 20)  # sparse: no disk used
    with pytest.raises(ValueError, match=r"CIFAR file .*test_batch is 314,572,800 bytes, more than the "
                                         r"268,435,456 such a file can be"):
        build_dataset("cifar10", "test", root=tmp_path)


def _tiny_imagenet(root: Path) -> Path:
    for wnid in ("n01", "n02"):
        (root / "train" / wnid / "images").mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG")
    (root / "val" / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "val" / "images" / "val_0.JPEG")
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t8\t8\n")
    (root / "wnids.txt").write_text("n01\nn02\n")
    return root


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["wnids.txt", "val/val_annotations.txt"])
def test_tiny_imagenet_metadata_fifo_or_huge_is_refused(tmp_path, name):
    root = _tiny_imagenet(tmp_path / "tiny")
    assert len(build_dataset("tiny-imagenet", "test", root=root, image_size=8)[0]) == 1
    (root / name).unlink()
    with open(root / name, "wb") as f:
        f.truncate(100 << 20)
    with pytest.raises(ValueError, match=rf"{name.split('/')[-1]} is 104,857,600 bytes, more than the"):
        build_dataset("tiny-imagenet", "test", root=root, image_size=8)
    (root / name).unlink()
    os.mkfifo(root / name)
    with pytest.raises(ValueError, match="is a FIFO, not a regular file"):
        finishes(lambda: build_dataset("tiny-imagenet", "test", root=root, image_size=8), 30, "reading a FIFO")


# ---------------------------------------------------------------------------------------------
# Sizes: a resize that cannot fit in memory says so (with the estimate); options have bounds


@pytest.fixture
def little_memory(monkeypatch):
    """The machine reports 8 MiB available: every in-memory dataset below needs more."""
    from wavevision.utils import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 8 << 20)


def _mnist(root: Path, n: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images.shape, images.tobytes()))
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes((n,), (np.arange(n) % 10).astype(np.uint8).tobytes()))
    return root


@pytest.mark.parametrize("name, options, what", [
    ("digits", dict(image_size=128), r"resizing 359 images to 128x128 would need about 22\.4 MiB"),
    ("digit-scenes", dict(image_size=128, num_scenes=200), r"composing 200 scenes of 128x128 would need about 15\.\d MiB"),
    ("mnist", dict(image_size=512), r"resizing 20 images to 512x512 would need about \d+\.\d MiB"),
    ("cifar10", dict(image_size=1024), r"resizing 4 images to 1024x1024 would need about \d+\.\d MiB"),
])
def test_a_resize_that_cannot_fit_in_memory_says_so(tmp_path, little_memory, name, options, what):
    roots = {"mnist": lambda: _mnist(tmp_path / "mnist"), "cifar10": lambda: _cifar_folder(tmp_path) and tmp_path}
    root = roots[name]() if name in roots else None
    with pytest.raises(MemoryError, match=rf"^{what}, more than the 8\.0 MiB of memory available; use a smaller "
                                          r"image_size") as info:
        build_dataset(name, "test", root=root, **options)
    assert "\n" not in str(info.value)


def test_caching_images_that_cannot_fit_says_so(tmp_path, little_memory):
    for split in ("train", "test"):
        (tmp_path / "sr" / split).mkdir(parents=True)
        Image.new("RGB", (2048, 2048)).save(tmp_path / "sr" / split / "big.png")
    with pytest.raises(MemoryError, match=r"^decoding 1 images to hold in memory \(cache=True\) would need about "
                                          r"12\.0 MiB, more than the 8\.0 MiB .*drop the cache option"):
        build_dataset("sr-folder", "test", root=tmp_path / "sr", cache=True)


@pytest.mark.parametrize("name, options, message", [
    ("digits", dict(image_size=16.5), "image_size must be an integer, got 16.5"),
    ("digits", dict(image_size=10**6), "image_size must be <= 16384, got 1000000"),
    ("digits", dict(image_size=(16, 0)), "image_size must be >= 1, got 0"),
    ("digits", dict(image_size=float("nan")), "image_size must be an integer, got nan"),
    ("digit-scenes", dict(num_scenes=10**12), "num_scenes must be <= 1000000, got 1000000000000"),
    ("digit-scenes", dict(num_scenes=2.5), "num_scenes must be an integer, got 2.5"),
    ("digit-scenes", dict(digits_per_scene=(1, 10**9)), r"digits_per_scene must be \(min, max\) with 1 <= min <= max <= 16"),
    ("photos", dict(num_patches=10**12), "num_patches must be <= 10000000, got 1000000000000"),
    ("photos", dict(patch_size=10**9), "patch_size must be <= 16384, got 1000000000"),
    ("photos", dict(scale=float("nan")), "scale must be 2, 4 or 8, got nan"),
    ("photos", dict(eval_size=-8), "eval_size must be >= 1, got -8"),
])
def test_dataset_options_have_bounds(name, options, message):
    split = "train" if "num_patches" in options or "patch_size" in options else "test"
    with pytest.raises(ValueError, match=f"^{message}" if "(" not in message else message):
        build_dataset(name, split, **options)


@pytest.mark.parametrize("options, message", [
    (dict(crop_pct=float("nan")), "crop_pct must be a finite number, got nan"),
    (dict(mean=[float("nan")] * 3), "mean must be a finite number, got nan"),
    (dict(std=[0.2, 0.0, 0.2]), "std must be > 0.0, got 0.0"),
    (dict(std=[0.2]), r"mean and std need 3 values \(one per input channel\), got 3 and 1"),
    (dict(val_size=float("nan")), "val_size must be an integer, got nan"),
    (dict(in_chans=2), "in_chans must be 1 or 3, got 2"),
    (dict(verify="maybe"), "verify must be true or false, got 'maybe'"),
])
def test_folder_options_have_bounds(tmp_path, options, message):
    for split in ("train", "val"):  # no test/ folder: val is a hold-out of train (val_size)
        image_tree(tmp_path / "data" / split, per_class=10)
    with pytest.raises(ValueError, match=message):
        build_dataset("imagefolder", "val", root=tmp_path / "data", image_size=8, **options)


def test_galaxy10_file_declaring_huge_images_or_labels(tmp_path, little_memory):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "Galaxy10_DECals.h5"
    with h5py.File(path, "w") as f:  # chunked and never written: declared, not stored
        f.create_dataset("images", shape=(20, 100_000, 100_000, 3), dtype=np.uint8, chunks=(1, 64, 64, 3))
        f.create_dataset("ans", data=np.arange(20) % 10)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match=r"'images' are 100000x100000, larger than the 16384x16384"):
        build_dataset("galaxy10", "test", root=path)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", shape=(10**9, 8, 8, 3), dtype=np.uint8, chunks=(1, 8, 8, 3))
        f.create_dataset("ans", shape=(10**9,), dtype=np.int64, chunks=(1024,))
    with pytest.raises(MemoryError, match=r"^reading 1,000,000,000 labels .* would need about 7\.5 GiB"):
        build_dataset("galaxy10", "test", root=path)


def test_galaxy10_labels_that_do_not_match_the_images_are_refused_before_reading(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "Galaxy10_DECals.h5"
    for ans, found in [(dict(shape=(10**9, 2), dtype=np.int64, chunks=(1024, 2)), r"an array of shape \(1000000000, 2\)"),
                       (dict(shape=(10**9,), dtype=np.int64, chunks=(1024,)), "1,000,000,000 labels")]:
        with h5py.File(path, "w") as f:  # declared, never stored: reading it would need gigabytes
            f.create_dataset("images", data=np.zeros((20, 8, 8, 3), dtype=np.uint8))
            f.create_dataset("ans", **ans)
        with pytest.raises(ValueError, match=rf"{found} in 'ans' for 20 images"):
            build_dataset("galaxy10", "test", root=path)


def test_galaxy10_file_damaged_after_the_build_names_it(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "Galaxy10_DECals.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8))
        f.create_dataset("ans", data=np.arange(20) % 10)
    ds, _ = build_dataset("galaxy10", "test", root=path)
    path.write_bytes(b"not hdf5 any more")  # what a worker process then opens
    with pytest.raises(DataFileError, match=r"cannot read image \d+ of '.*Galaxy10_DECals.h5' .*damaged"):
        ds[0]
