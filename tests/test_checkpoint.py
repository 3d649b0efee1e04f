"""Our checkpoint format (safetensors + JSON config) and loading state dicts strictly."""
from __future__ import annotations

import json

import pytest
import torch

import wavevision
from wavevision.models._safetensors import load_safetensors, save_safetensors_bytes


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


def test_safetensors_writer_round_trip_all_dtypes(tmp_path):
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
    loaded, meta = load_safetensors(str(path))
    assert meta == {"k": "v"}
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v), k


def test_interoperates_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(6).reshape(2, 3), "c": torch.randn(2).bfloat16()}
    ours = tmp_path / "ours.safetensors"
    ours.write_bytes(save_safetensors_bytes(tensors))
    for k, v in st.load_file(str(ours)).items():
        assert torch.equal(v, tensors[k])
    theirs = tmp_path / "theirs.safetensors"
    st.save_file(tensors, str(theirs), metadata={"x": "y"})
    loaded, meta = load_safetensors(str(theirs))
    assert meta == {"x": "y"}
    for k, v in loaded.items():
        assert torch.equal(v, tensors[k])


def test_convert_official_state_dict_unwraps_and_strips_prefixes():
    model = _model()
    sd = model.state_dict()
    wrapped = {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}, "epoch": 3}
    out = wavevision.convert_official_state_dict(wrapped)
    assert list(out) == list(sd)
    with pytest.raises(TypeError, match="state dict"):
        wavevision.convert_official_state_dict([1, 2])
