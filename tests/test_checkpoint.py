"""Our checkpoint format (safetensors + JSON config) and loading state dicts strictly."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

import wavevision
from wavevision.models._builder import load_safetensors, save_safetensors_bytes


def _model(**kw):
    torch.manual_seed(0)
    return wavevision.create_model("wavemix_lite", num_classes=5, depth=2, final_dim=16, ff_channel=16, **kw).eval()


def test_save_then_rebuild_from_checkpoint_alone(tmp_path):
    model = _model(in_chans=1, upsample="bilinear")
    path = wavevision.save_checkpoint(model, tmp_path / "run" / "best.safetensors", extra={"epoch": 3})
    assert path.exists() and path.with_suffix(".json").exists()
    config = json.loads(path.with_suffix(".json").read_text())
    assert config["model"] == "wavemix_lite" and config["extra"] == {"epoch": 3}
    assert config["kwargs"]["in_chans"] == 1
    rebuilt = wavevision.create_model(checkpoint=path).eval()
    x = torch.rand(2, 1, 12, 12)
    assert torch.equal(rebuilt(x), model(x))
    # No temporary files are left behind by the atomic writes.
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.json", "best.safetensors"]


def test_checkpoint_suffix_added(tmp_path):
    path = wavevision.save_checkpoint(_model(), tmp_path / "weights")
    assert path.name == "weights.safetensors"


def test_checkpoint_of_another_model_name_is_refused(tmp_path):
    path = wavevision.save_checkpoint(_model(), tmp_path / "m.safetensors")
    with pytest.raises(wavevision.CheckpointMismatchError, match="holds a 'wavemix_lite' model"):
        wavevision.create_model("wavemix", checkpoint=path)


def test_overrides_that_change_the_architecture_name_the_mismatch(tmp_path):
    path = wavevision.save_checkpoint(_model(), tmp_path / "m.safetensors")
    with pytest.raises(wavevision.CheckpointMismatchError, match="shape mismatch.*pool.2.weight"):
        wavevision.create_model(checkpoint=path, num_classes=7)


def test_truncated_safetensors_file(tmp_path):
    path = wavevision.save_checkpoint(_model(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        wavevision.create_model(checkpoint=path)


def test_missing_config_beside_weights(tmp_path):
    path = wavevision.save_checkpoint(_model(), tmp_path / "m.safetensors")
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="pass the model name"):
        wavevision.create_model(checkpoint=path)


def test_safetensors_round_trip_all_dtypes(tmp_path):
    tensors = {
        "f64": torch.randn(3, 2, dtype=torch.float64),
        "f32": torch.randn(4),
        "f16": torch.randn(2, 2).half(),
        "bf16": torch.randn(5).bfloat16(),
        "i64": torch.tensor(7),  # 0-d, like BatchNorm's num_batches_tracked
        "u8": torch.arange(10, dtype=torch.uint8),
        "b": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "noncontig": torch.randn(4, 6)[:, ::2],
    }
    path = tmp_path / "t.safetensors"
    path.write_bytes(save_safetensors_bytes(tensors, {"k": "v"}))
    loaded, meta = load_safetensors(path)
    assert meta == {"k": "v"}
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v), k
    # the library reads what we write and we read what it writes
    for k, v in safetensors.torch.load_file(str(path)).items():
        assert torch.equal(v, tensors[k])
    theirs = tmp_path / "theirs.safetensors"
    safetensors.torch.save_file({"a": torch.randn(3, 4)}, str(theirs), metadata={"x": "y"})
    assert load_safetensors(theirs)[1] == {"x": "y"}


def _crafted(path: Path, entries: dict, data: bytes) -> Path:
    raw = json.dumps(entries).encode()
    raw += b" " * ((-len(raw)) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_overlapping_and_out_of_range_entries_are_refused(tmp_path):
    """The library validates offsets: entries sharing bytes, or reaching past the data, are refused."""
    overlap = {f"t{i}": {"dtype": "F32", "shape": [256], "data_offsets": [0, 1024]} for i in range(3)}
    with pytest.raises(ValueError, match="not a valid safetensors file.*invalid offset"):
        load_safetensors(_crafted(tmp_path / "overlap.safetensors", overlap, bytes(1024)))
    past = {"a": {"dtype": "F32", "shape": [512], "data_offsets": [0, 2048]}}
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_safetensors(_crafted(tmp_path / "past.safetensors", past, bytes(1024)))


@pytest.mark.slow
def test_crafted_file_costs_no_memory_to_refuse(tmp_path):
    """A 21 MB file whose 100 entries all cover its whole data took 2.2 GB with the old reader; now
    it is refused while the process stays near its baseline (peak RSS of a fresh process)."""
    n = 21 * 2**20
    entries = {f"t{i}": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]} for i in range(100)}
    path = _crafted(tmp_path / "crafted.safetensors", entries, bytes(n))
    code = (
        "import resource, sys\n"
        "from wavevision.models._builder import load_safetensors\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    load_safetensors(sys.argv[1])\nexcept ValueError as e:\n    print('refused', e)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(wavevision.__file__).parents[1]), "OMP_NUM_THREADS": "1"})
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("refused") and "invalid offset" in lines[0]
    assert int(lines[-1]) < 64  # MiB above the process's baseline; the old reader needed 2,200


def test_a_fifo_is_refused_before_opening(tmp_path):
    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load_safetensors(fifo)


def test_timm_train_checkpoints_load(tmp_path):
    """timm's train.py saves {'epoch', 'arch', 'state_dict', 'optimizer', 'version', 'args': Namespace}."""
    import argparse

    model = _model()
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 3, "arch": "wavemix_lite", "state_dict": model.state_dict(), "version": 2,
                "args": argparse.Namespace(model="wavemix_lite", lr=0.1)}, path)
    loaded = wavevision.create_model("wavemix_lite", num_classes=5, depth=2, final_dim=16, ff_channel=16,
                                     checkpoint=path).eval()
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded(x), model(x))


def test_convert_official_state_dict_unwraps_and_strips_prefixes():
    model = _model()
    sd = model.state_dict()
    wrapped = {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}, "epoch": 3}
    out = wavevision.convert_official_state_dict(wrapped)
    assert list(out) == list(sd)
    with pytest.raises(TypeError, match="state dict"):
        wavevision.convert_official_state_dict([1, 2])
