"""ONNX and TorchScript export of every registered model, fused models, and the ``wavevision export`` command."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import wavevision
from _slow import FEWER_MODELS, small_build_cases
from wavevision.cli import main
from wavevision.export import export_onnx, export_torchscript, onnx_opset_range

from _small import small_model, timm_models

ort = pytest.importorskip("onnxruntime")

NAMES = timm_models()


pytestmark = pytest.mark.usefixtures("one_thread")  # two OpenMP threads per op wait on each other here


def _side(model) -> int:
    return getattr(model, "min_input_size", 0) or 16


def _batch(model, n: int, seed: int) -> torch.Tensor:
    s = _side(model)
    return torch.rand(n, model.in_chans, s, s, generator=torch.Generator().manual_seed(seed))


def _assert_close(out, ref: torch.Tensor, tol: float = 1e-4) -> None:
    out = torch.as_tensor(np.asarray(out)) if not isinstance(out, torch.Tensor) else out
    assert out.shape == ref.shape
    assert ((out.double() - ref.double()).abs().max() / ref.double().abs().max()).item() <= tol


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check_onnx(path, model) -> None:
    """Independent of the exporter's own check: onnxruntime at two new batch sizes."""
    session = _session(path)
    assert session.get_inputs()[0].shape[0] == "batch"  # symbolic batch dimension
    for n, seed in ((1, 10), (3, 11)):
        x = _batch(model, n, seed)
        with torch.no_grad():
            ref = model(x)
        _assert_close(session.run(None, {"input": x.numpy()})[0], ref)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_onnx_every_model_dynamic_batch(name, tmp_path):
    model = small_model(name).eval()
    report = export_onnx(model, tmp_path / f"{name}.onnx", input_size=(_side(model),) * 2, check=False)
    assert report.path.exists() and report.format == "onnx" and report.input_shape[0] == 2
    # Models whose operators the TorchScript exporter lacks (FFT, antialiased resize) go through dynamo.
    assert report.exporter in ("torchscript", "dynamo")
    assert model.training is False
    _check_onnx(report.path, model)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_torchscript_every_model(name, tmp_path):
    model = small_model(name).train()  # the exporter works in eval mode and restores the mode afterwards
    report = export_torchscript(model, tmp_path / f"{name}.pt", input_size=(_side(model),) * 2, check=False)
    assert model.training is True
    model.eval()
    loaded = torch.jit.load(str(report.path))
    for n, seed in ((1, 10), (3, 11)):
        x = _batch(model, n, seed)
        with torch.no_grad():
            _assert_close(loaded(x), model(x))


@pytest.mark.parametrize("name", ["wavemix", pytest.param("wave_vit_s", marks=pytest.mark.slow)])
def test_fused_model_exports(name, tmp_path):
    model = small_model(name).eval()
    report = export_onnx(model, tmp_path / "f.onnx", input_size=(_side(model),) * 2, fuse=True)
    assert report.fused and set(report.checks) == {2, 3} and report.max_rel_error <= 1e-4
    _check_onnx(report.path, model)  # the fused graph answers like the unfused model
    ts = export_torchscript(model, tmp_path / "f.pt", input_size=(_side(model),) * 2, fuse=True)
    assert ts.fused and ts.max_rel_error <= 1e-4


def test_exported_onnx_graph_has_no_batchnorm_when_fused(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = small_model("wavemix_lite_8_5").eval()
    plain = export_onnx(model, tmp_path / "a.onnx", input_size=(16, 16), check=False)
    fused = export_onnx(model, tmp_path / "b.onnx", input_size=(16, 16), check=False, fuse=True)
    ops = lambda p: {n.op_type for n in onnx.load(str(p)).graph.node}  # noqa: E731
    assert "BatchNormalization" in ops(plain.path) or "Mul" in ops(plain.path)
    assert "BatchNormalization" not in ops(fused.path)


def test_bad_opset_exporter_and_inputs(tmp_path):
    model = small_model("wavemix_lite_8_10").eval()
    lo, hi = onnx_opset_range("torchscript")
    with pytest.raises(ValueError, match=rf"opset 99 .*choose an opset from {onnx_opset_range()[0]} to"):
        export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16), opset=99)
    with pytest.raises(ValueError, match=rf"from {lo} to {hi}"):
        export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16), opset=hi + 1, exporter="torchscript")
    with pytest.raises(ValueError, match="from 18 to"):
        export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16), opset=17, exporter="dynamo")
    with pytest.raises(ValueError, match="exporter: 'legacy' is not a valid choice; choose one of auto, torchscript, dynamo"):
        export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16), exporter="legacy")
    with pytest.raises(ValueError, match="input_size"):
        export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"\(H, W\) or \(C, H, W\)"):
        export_torchscript(model, tmp_path / "m.pt", input_size=(1, 2, 3, 4))
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.pt").exists()

    class TwoOutputs(torch.nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(TypeError, match="one tensor"):
        export_torchscript(TwoOutputs(), tmp_path / "t.pt", input_size=(1, 4, 4))


def test_missing_onnx_packages_name_the_fix(tmp_path, monkeypatch):
    model = small_model("wavemix_lite_8_10").eval()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"onnxruntime.*pip install"):
        export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16))
    export_onnx(model, tmp_path / "m.onnx", input_size=(16, 16), check=False)  # writing needs no onnxruntime
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"onnxscript.*wavevision\[onnx\]"):
        export_onnx(model, tmp_path / "d.onnx", input_size=(16, 16), opset=18, exporter="dynamo", check=False)


@pytest.mark.slow
def test_import_does_not_load_onnx():
    code = ("import sys, wavevision, wavevision.export, wavevision.cli.export, wavevision.fuse; "
            "bad = [m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------
# The command line


def test_cli_export_onnx_and_torchscript(tmp_path, capsys):
    out = tmp_path / "lite.onnx"
    assert main(["export", "wavemix_lite_8_10", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ONNX opset 17" in text and "onnxruntime matches PyTorch at batch 2, 3" in text and "Bx1x28x28" in text
    model = wavevision.create_model("wavemix_lite_8_10").eval()
    session = _session(out)
    assert session.get_inputs()[0].shape[1:] == [1, 28, 28]

    ts = tmp_path / "mix.pt"
    args = ["export", "wavemix", "--model-arg", "depth=1", "--model-arg", "final_dim=32", "--model-arg", "ff_channel=32",
            "--format", "torchscript", "--fuse", "--input-size", "32", "48", "-o", str(ts), "--json"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["format"] == "torchscript" and record["fused"] and record["input_shape"] == [2, 3, 32, 48]
    assert torch.jit.load(str(ts))(torch.rand(1, 3, 32, 48)).shape == (1, 1000)
    del model


def test_cli_export_loads_a_checkpoint(tmp_path, capsys):
    torch.manual_seed(3)
    model = wavevision.create_model("wavemix_lite_8_5").eval()
    ckpt = wavevision.save_checkpoint(model, tmp_path / "m.safetensors")
    out = tmp_path / "m.onnx"
    assert main(["export", "wavemix_lite_8_5", "--checkpoint", str(ckpt), "--opset", "13", "-o", str(out), "--no-check"]) == 0
    assert "opset 13" in capsys.readouterr().out
    x = torch.rand(2, 1, 28, 28)
    session = _session(out)
    _assert_close(session.run(None, {"input": x.numpy()})[0], model(x).detach())


@pytest.mark.parametrize(
    "args,message",
    [
        (["nope"], "unknown model 'nope'"),
        (["wavemix_lite_8_10", "--opset", "99"], "opset 99 is not supported"),
        (["wavemix_lite_8_10", "--checkpoint", "missing.safetensors"], "does not exist"),
        (["wavemix_lite_8_10", "--format", "torchscript", "--opset", "13"], "apply to --format onnx only"),
        (["wavemix_lite_8_10", "--input-size", "0", "28"], "positive height and width"),
        (["wavemix_lite_8_10", "--model-arg", "depth"], "KEY=VALUE"),
    ],
)
def test_cli_export_errors(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *args, "-o", "out.onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavevision export: error: ") and message in err
    assert not (tmp_path / "out.onnx").exists()


def test_cli_export_keeps_existing_files(tmp_path, capsys):
    out = tmp_path / "keep.onnx"
    out.write_bytes(b"precious")
    assert main(["export", "wavemix_lite_8_10", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["export", "wavemix_lite_8_10", "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["export", "wavemix_lite_8_10", "-o", str(out), "--overwrite", "--no-check"]) == 0
    assert out.read_bytes() != b"precious"


# ---------------------------------------------------------------------------------------
# Exporting a training run (issue 22): the run brings its model, channels, size, normalisation
# and class names; a failed check never replaces a good file (issue 23).


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A tiny digits run: 1 input channel, 16x16 images, 10 named classes."""
    from wavevision.engine import train

    out = tmp_path_factory.mktemp("export") / "mine"
    train(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1), epochs=1, batch_size=32,
          max_train_batches=2, max_eval_batches=1, test=False, output=str(out), threads=1, progress=False, plots=False)
    return out


def _run_model(run):
    from wavevision.engine import load_trained

    return load_trained(run).model


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavevision export: error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


@pytest.mark.parametrize("spelling", ["dir", "absolute", "best"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_cli_export_a_run_in_every_format(digits_run, spelling, fmt, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(digits_run.parent)
    source = {"dir": digits_run.name, "absolute": str(digits_run.resolve()), "best": f"{digits_run.name}/best.safetensors"}[spelling]
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    assert main(["export", source, "--format", fmt, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Bx1x16x16 (the size" in text and "trained on" in text and "mean [0.3062]" in text
    model = _run_model(digits_run)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
    if fmt == "onnx":
        session = _session(out)
        assert session.get_inputs()[0].shape[1:] == [1, 16, 16]  # the run's size and channels, not the registry's 3x32x32
        meta = session.get_modelmeta().custom_metadata_map
        _assert_close(session.run(None, {"input": x.numpy()})[0], ref)
        meta = {k: json.loads(v) if v[:1] in "[{0123456789" else v for k, v in meta.items()}  # strings as they are
    else:
        extra = {"wavevision.json": ""}
        loaded = torch.jit.load(str(out), _extra_files=extra)
        _assert_close(loaded(x), ref)
        meta = json.loads(extra["wavevision.json"])
    assert meta["model"] == "wavemix_lite" and meta["input_size"] == [1, 16, 16] and meta["dataset"] == "digits"
    assert meta["class_names"] == [str(d) for d in range(10)] and meta["mean"] == [0.3062] and meta["std"] == [0.3194]


def test_cli_export_a_name_with_a_run_checkpoint_takes_its_channels_and_size(digits_run, tmp_path, capsys):
    best = str(digits_run / "best.safetensors")
    out = tmp_path / "x.onnx"
    assert main(["export", "wavemix_lite", "--checkpoint", best, "-o", str(out)]) == 0
    assert _session(out).get_inputs()[0].shape[1:] == [1, 16, 16]
    capsys.readouterr()
    assert main(["export", "wavemix_lite", "--checkpoint", best, "--model-arg", "in_chans=1", "--input-size", "24", "20",
                 "-o", str(out), "--overwrite", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["input_shape"] == [2, 1, 24, 20] and record["input_size_from"] == "--input-size"
    assert _session(out).get_inputs()[0].shape[1:] == [1, 24, 20]  # --input-size overrides the size, never the channels


@pytest.mark.parametrize("args, message", [
    (["wavemix", "--checkpoint", "{best}"], r"names model 'wavemix', but --checkpoint .*best.safetensors holds a 'wavemix_lite' \(from .*best.json\)"),
    (["wavemix_lite", "--checkpoint", "{best}", "--model-arg", "in_chans=3"],
     r"--model-arg in_chans=3 disagrees with --checkpoint .*best.safetensors, which records in_chans=1 in .*best.json"),
    (["wavemix_lite", "--checkpoint", "{best}", "--model-arg", "level=2"], r"records no level \(the registered default\)"),
    (["{run}", "--model-arg", "depth=2"], r"--model-arg applies to a model name; .* records its own hyperparameters"),
    (["{run}", "--checkpoint", "{best}"], r"--checkpoint applies to a model name"),
    (["{run}/../nothere"], r"nothere does not exist; give a run directory"),
])
def test_cli_export_names_where_disagreeing_values_come_from(digits_run, args, message, tmp_path, capsys):
    argv = [a.format(run=digits_run, best=digits_run / "best.safetensors") for a in args]
    err = _error(capsys, ["export", *argv, "-o", str(tmp_path / "x.onnx")])
    assert re.search(message, err), err
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export_hub_of_an_absurd_width_is_refused_with_an_estimate(tmp_path, capsys):
    err = _error(capsys, ["export", "wavemix_lite", "--format", "hub", "-o", str(tmp_path / "h"),
                          "--model-arg", "final_dim=1048576", "--model-arg", "ff_channel=1048576"])
    assert "would need about" in err and "--model-arg" in err and not (tmp_path / "h").exists()


def test_example_channels_must_be_the_models(tmp_path):
    model = small_model("wavemix_lite_8_10").eval()  # in_chans=1
    with pytest.raises(ValueError, match=r"3 channel\(s\) but the model takes 1 \(its in_chans"):
        export_onnx(model, tmp_path / "m.onnx", input_size=(3, 16, 16))
    assert not (tmp_path / "m.onnx").exists()


class _BakesTheBatch(torch.nn.Module):
    """Traces to a graph that multiplies by the traced batch size: its exports fail their check."""

    in_chans = 1

    def forward(self, x):
        return x.flatten(1) * float(x.shape[0])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_failed_check_keeps_the_existing_file(fmt, tmp_path):
    path = tmp_path / f"good.{fmt}"
    path.write_bytes(b"a good model")
    exporter = export_onnx if fmt == "onnx" else export_torchscript
    with pytest.raises(RuntimeError, match="differs from PyTorch at batch 3"):
        exporter(_BakesTheBatch(), path, input_size=(4, 4))
    assert path.read_bytes() == b"a good model"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left either


def test_load_run_gives_python_the_same_export(digits_run, tmp_path):
    from wavevision.export import load_run

    model, size = load_run(digits_run)
    assert size == (1, 16, 16)
    report = export_torchscript(model, tmp_path / "m.pt", input_size=size[1:])
    assert report.input_shape == (2, 1, 16, 16)
    assert report.metadata["class_names"] == [str(d) for d in range(10)] and report.metadata["mean"] == [0.3062]


@pytest.mark.slow
def test_cli_overwrite_keeps_a_good_file_when_the_new_export_fails_its_check(tmp_path, capsys, monkeypatch):
    import wavevision.export as exporting

    good = tmp_path / "lite.pt"
    assert main(["export", "wavemix_lite_8_10", "--format", "torchscript", "-o", str(good)]) == 0
    before = good.read_bytes()
    monkeypatch.setattr(exporting, "_relative_error", lambda ours, ref: 1.0)  # the reloaded module answers wrongly
    err = _error(capsys, ["export", "wavemix_lite_8_10", "--format", "torchscript", "-o", str(good), "--overwrite"])
    assert "differs from PyTorch at batch 2" in err and f"{good} is left as it was" in err
    assert good.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["lite.pt"]
