"""wavevision.bench: records, memory measurement, OOM handling, reports and the bench command.

Correctness only: values are checked against independent counts and for sanity, never timings.
"""
from __future__ import annotations

import csv
import json
import types

import pytest
import torch
import torch.nn as nn

import wavevision
from wavevision.bench import (
    BenchResult,
    benchmark,
    count_macs,
    count_parameters,
    format_results,
    runner,
    write_results,
)
from wavevision.cli import main

from _optional import require

FAST = dict(warmup=1, repeats=3, batch_size=4)
SMALL = {"mixer_dwt": {"depth": 1}, "mixer_mlp": {"depth": 1}, "wavemix_lite_8_10": {"depth": 2}}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def measured():
    """One full run (timings and both memory cases in fresh processes) shared by the record tests."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield benchmark(["mixer_dwt"], model_kwargs=SMALL, **FAST)[0]
    finally:
        torch.set_num_threads(old)


@pytest.mark.slow
def test_record_has_every_field_and_independent_counts(measured):
    r = measured
    assert r.status == "ok", r.note
    model = wavevision.create_model("mixer_dwt", depth=1)
    assert r.params == count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert r.input_shape == (1, 16, 16)  # the registry's input size for the digits models
    assert r.macs == count_macs(model, (1, 1, 16, 16))
    assert "multiply-accumulates" in r.macs_unit
    for key in ("latency_ms", "throughput", "train_step_ms"):
        assert getattr(r, key) > 0, key
        assert getattr(r, f"{key}_iqr") >= 0
    for mode in ("infer", "train"):
        peak, base = getattr(r, f"{mode}_peak_mb"), getattr(r, f"{mode}_baseline_mb")
        assert base > 50  # a process with torch loaded
        assert peak >= base and peak - base < 500
    assert r.train_peak_mb > 0 and "fresh process" in r.memory_method
    env = r.environment
    assert env["torch"] == torch.__version__ and env["threads"] == 1 and env["device"] == "cpu"
    d = r.to_dict()
    assert set(BenchResult.__dataclass_fields__) <= set(d) and {"infer_case_mb", "train_case_mb"} <= set(d)
    json.dumps(d)


@pytest.mark.slow
def test_reports_are_written_and_open(measured, tmp_path):
    other = BenchResult(model="x", status="error", note="ValueError: boom", environment=measured.environment)
    results = [measured, other]
    text = format_results(results)
    assert "mixer_dwt" in text and "MAC" in text and "multiply-accumulates" in text and "x: error: ValueError: boom" in text
    paths = write_results(results, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["results"][0]["params"] == measured.params and "multiply-accumulates" in data["macs_unit"]
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [row["model"] for row in rows] == ["mixer_dwt", "x"]
    assert rows[0]["env_torch"] == torch.__version__ and rows[0]["input_shape"] == "1x16x16"
    assert int(rows[0]["macs"]) == measured.macs
    from PIL import Image

    with Image.open(paths["png"]) as im:
        im.verify()
    with Image.open(paths["png"]) as im:
        assert im.format == "PNG" and im.size[0] > 400


@pytest.mark.slow
def test_accuracy_plot_panels(measured, tmp_path):
    r2 = BenchResult(**{**measured.__dict__, "model": "other", "params": 10, "accuracy": 91.0})
    r1 = BenchResult(**{**measured.__dict__, "accuracy": 95.0})
    from PIL import Image

    path = write_results([r1, r2], tmp_path, prefix="acc")["png"]
    with Image.open(path) as im:
        # four panels (two rows) instead of two
        assert im.size[1] > 800


def test_accuracy_from_the_registry_reference():
    r = benchmark(["wavemix_lite_8_10"], memory=False, train=False, model_kwargs=SMALL, **FAST)[0]
    assert r.status == "ok" and r.input_shape == (1, 28, 28)  # MNIST-sized from its reference dataset
    assert r.accuracy == 99.0 and r.accuracy_source.startswith("reference: MNIST")
    given = benchmark(["wavemix_lite_8_10"], memory=False, train=False, model_kwargs=SMALL,
                      accuracies={"wavemix_lite_8_10": 42.0}, **FAST)[0]
    assert given.accuracy == 42.0 and given.accuracy_source == "given"


def test_oom_is_reported_and_the_run_goes_on(monkeypatch):
    real = runner._time_runs
    calls = {"n": 0}

    def flaky(step, device, warmup, repeats):
        calls["n"] += 1
        if calls["n"] == 2:  # the first model's throughput case
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        return real(step, device, warmup, repeats)

    monkeypatch.setattr(runner, "_time_runs", flaky)
    results = benchmark(["mixer_dwt", "mixer_pool"], memory=False, model_kwargs={"mixer_pool": {"depth": 1}, **SMALL}, **FAST)
    first, second = results
    assert first.status == "oom" and first.throughput is None and "throughput@4" in first.note
    assert first.latency_ms > 0 and first.train_step_ms > 0  # the other cases still ran
    assert second.status == "ok" and second.throughput > 0
    assert "oom" in format_results(results)


def test_a_batch_that_cannot_fit_is_refused_per_case_and_batch_one_is_still_measured(monkeypatch):
    """Before anything is allocated, each case at batch N is checked against the memory the
    device has (here 64 MiB): those that cannot fit are out of memory, the rest of the row stays."""
    import wavevision.engine.sizing as sizing

    monkeypatch.setattr(sizing, "device_memory", lambda device: 64 << 20)
    (row,) = benchmark(["mixer_dwt"], input_size=32, batch_size=4096, warmup=0, repeats=1, model_kwargs=SMALL)
    assert row.status == "oom" and row.params > 0 and row.macs > 0 and row.latency_ms > 0
    assert row.throughput is None and row.train_step_ms is None and row.infer_peak_mb is None
    for case in ("throughput@4096", "train_step@4096", "infer memory@4096", "train memory@4096"):
        assert case in row.note


@pytest.mark.slow
def test_cpu_memory_limit_turns_into_oom():
    """A real out-of-memory: the case's fresh process may add only 4 MiB of address space."""
    r = benchmark(["mixer_dwt"], input_size=32, batch_size=256, warmup=0, repeats=1, train=False,
                  model_kwargs=SMALL, memory_limit_mb=4)[0]
    assert r.status == "oom" and "infer memory@256" in r.note
    assert r.latency_ms > 0 and r.infer_peak_mb is None and r.infer_baseline_mb > 0


def test_size_a_model_cannot_take_is_an_error_row_and_others_run():
    results = benchmark(["mixer_mlp", "mixer_dwt"], input_size=20, memory=False, train=False, model_kwargs=SMALL, **FAST)
    bad, good = results
    assert bad.status == "error" and "fixed 8x8 token grid" in bad.note and "img_size" in bad.note
    assert good.status == "ok" and good.input_shape == (1, 20, 20)


def test_timm_models_skipped_without_timm(monkeypatch):
    monkeypatch.setattr(runner, "_import_timm", lambda: ImportError("No module named 'timm'"))
    (r,) = benchmark(["timm:resnet18"], memory=False, **FAST)
    assert r.status == "skipped" and "pip install timm" in r.note and r.model == "timm:resnet18"
    with pytest.raises(ValueError, match="timm:resnet18"):
        benchmark(["resnet18"], memory=False, **FAST)


class _TinyNet(nn.Module):
    """Stands in for a timm model; returns (logits, aux) in training mode like token-labelling models."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, num_classes)
        self.aux = nn.Linear(4, num_classes)

    def forward(self, x):
        f = self.conv(x).mean((2, 3))
        return (self.head(f), self.aux(f)) if self.training else self.head(f)


def test_timm_models_by_name_when_timm_imports(monkeypatch):
    fake = types.SimpleNamespace(list_models=lambda: ["tinynet"], create_model=lambda name, pretrained, **kw: _TinyNet(**kw))
    monkeypatch.setattr(runner, "_import_timm", lambda: fake)
    r1, r2 = benchmark(["tinynet", "timm/tinynet"], input_size=8, memory=False, **FAST)
    for r in (r1, r2):
        assert r.status == "ok" and r.source == "timm" and r.model == "timm:tinynet"
        assert r.params == count_parameters(_TinyNet()) and r.input_shape == (3, 8, 8)
        assert r.macs == 8 * 8 * 4 * 27 + 4 * 5  # conv, then the head
        assert r.train_step_ms > 0


@pytest.mark.slow
def test_real_timm_model_by_its_bare_name():
    """With timm installed (always under CI), a bare timm name resolves and is measured."""
    timm = require("timm")
    (r,) = benchmark(["resnet10t"], input_size=16, memory=False, model_kwargs={"resnet10t": {"num_classes": 7}},
                     batch_size=2, warmup=0, repeats=1)
    model = timm.create_model("resnet10t", num_classes=7)
    assert r.status == "ok" and r.source == "timm" and r.model == "timm:resnet10t", r.note
    assert r.params == count_parameters(model) and r.macs == count_macs(model.eval(), (1, 3, 16, 16))
    assert r.latency_ms > 0 and r.train_step_ms > 0


def test_dense_tasks_train_with_their_losses():
    small = dict(depth=1, final_dim=16, ff_channel=16)
    results = benchmark(["wavemix_seg", "wavemix_paper_sr"], input_size=16, batch_size=2, warmup=0, repeats=1, memory=False,
                        model_kwargs={"wavemix_seg": small, "wavemix_paper_sr": small})
    assert [r.task for r in results] == ["segmentation", "super_resolution"]
    assert all(r.status == "ok" and r.train_step_ms > 0 for r in results), [r.note for r in results]
    assert "memory: not measured" in format_results(results)


def test_bad_arguments_fail_fast():
    with pytest.raises(ValueError, match=r"Did you mean 'mixer_dwt'"):
        benchmark(["mixer_dwtt"])
    with pytest.raises(ValueError, match="not available.*available here: cpu"):
        benchmark(["mixer_dwt"], device="cuda:97")
    with pytest.raises(ValueError, match="batch_size"):
        benchmark(["mixer_dwt"], batch_size=0)
    with pytest.raises(ValueError, match="repeats"):
        benchmark(["mixer_dwt"], repeats=0)
    with pytest.raises(ValueError, match="input size"):
        benchmark(["mixer_dwt"], input_size=(0, 4))
    with pytest.raises(ValueError, match="unknown dtype"):
        benchmark(["mixer_dwt"], dtype="float8")
    with pytest.raises(ValueError, match="at least one"):
        benchmark([])


# ------------------------------------------------------------------------------------
# The command line


def test_cli_happy_path(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["bench", "mixer_dwt", "mixer_pool", "--model-arg", "depth=1", "--batch-size", "2", "--repeats", "2",
                 "--warmup", "0", "--no-memory", "--threads", "1", "--out", str(out), "--accuracy", "mixer_dwt=90.5",
                 "--input-size", "12", "12"])
    text = capsys.readouterr().out
    assert code == 0
    assert "mixer_dwt" in text and "mixer_pool" in text and "MACs/img" in text and "1x12x12" in text
    assert {p.name for p in out.iterdir()} >= {"bench.json", "bench.csv", "bench.png"}
    rows = json.loads((out / "bench.json").read_text())["results"]
    assert rows[0]["accuracy"] == 90.5 and rows[0]["params"] == count_parameters(wavevision.create_model("mixer_dwt", depth=1))


@pytest.mark.parametrize(
    "argv,message",
    [
        (["bench", "mixr_dwt"], "Did you mean 'mixer_dwt'"),
        (["bench", "mixer_dwt", "--accuracy", "mixer_dwt"], "NAME=VALUE"),
        (["bench", "mixer_dwt", "--input-size", "1", "2", "3", "4"], "S, H W or C H W"),
        (["bench", "mixer_dwt", "--device", "cuda:97"], "available here: cpu"),
        (["bench", "mixer_dwt", "--model-arg", "depth"], "KEY=VALUE"),
    ],
)
def test_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavevision bench: error:") and message in err and "Traceback" not in err


def test_cli_exit_code_1_when_a_model_fails(tmp_path, capsys):
    code = main(["bench", "mixer_mlp", "--input-size", "20", "--model-arg", "depth=1", "--no-memory", "--no-train",
                 "--repeats", "1", "--warmup", "0", "--out", str(tmp_path), "--no-plot"])
    assert code == 1
    out = capsys.readouterr().out
    assert "error" in out and "token grid" in out
    assert not (tmp_path / "bench.png").exists() and (tmp_path / "bench.csv").exists()


def test_macs_print_in_the_largest_fitting_unit():
    from wavevision.utils import SI, format_table

    assert [str(SI(v)) for v in (296_107_760_640, 73_845_312, 1_420, 999, 0)] == ["296.11 G", "73.85 M", "1.42 K", "999", "0"]
    table = format_table([{"m": "a", "macs": SI(296_107_760_640)}, {"m": "b", "macs": SI(73_845_312)}])
    assert table.splitlines()[2].endswith("296.11 G") and table.splitlines()[3].endswith(" 73.85 M")  # right-aligned
    assert json.loads(json.dumps({"macs": SI(73_845_312)}))["macs"] == 73_845_312  # records keep the number
