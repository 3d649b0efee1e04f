"""wavevision.bench.suites and ``wavevision bench --suite``: the side-by-side baselines.

The report plumbing runs on fabricated measurements (hand-checked ratios); one real timm
model is measured at a tiny size; suite names and pretrained tags are checked against timm.
"""
from __future__ import annotations

import csv
import json
import types

import pytest
import torch
import torch.nn as nn
from PIL import Image

import wavevision
from wavevision.bench import BenchResult, MemorySpec, count_macs, count_parameters, cpu_peak_memory, runner, suites
from wavevision.bench.suites import SUITES, TIMM_TOP1, SuiteModel, reported_top1, run_suite
from wavevision.cli import main

from _optional import require

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = dict(input_size=16, batch_size=2, warmup=0, repeats=1)


def test_suite_models_and_pretrained_tags_exist_in_timm():
    timm = require("timm")
    names = set(timm.list_models())
    for suite in SUITES.values():
        for m in suite.models:
            if m.source == "timm":
                assert m.name in names, f"{suite.name}: timm has no {m.name}"
            else:
                assert m.name in wavevision.list_models(), m.name
    imagenet_timm = {m.name for m in SUITES["imagenet"].models if m.source == "timm"}
    assert set(TIMM_TOP1) == imagenet_timm  # every ImageNet baseline has a reported top-1
    for name, (tag, top1) in TIMM_TOP1.items():
        assert timm.list_pretrained(f"{name}.{tag}") == [f"{name}.{tag}"]
        assert 60 < top1 < 90


def test_imagenet_suite_covers_the_issue():
    suite = SUITES["imagenet"]
    assert suite.input_size == 224 and suite.dataset == "ImageNet-1k"
    assert {"wavemix_192_16_l1", "wavemix_192_16_l3", "wave_vit_s", "wtconvnext_tiny", "convnext_tiny"} <= {
        m.name for m in suite.models}
    assert len({m.label for m in suite.models}) == len(suite.models) == 13
    cifar = SUITES["cifar"]
    assert cifar.input_size == 32 and all(m.kwargs.get("num_classes") == 10 for m in cifar.models if m.source == "timm")
    assert all(wavevision.get_entry(m.name).reference["dataset"] == "CIFAR-10" for m in cifar.models if m.source == "wavevision")


def test_reported_top1_sources(monkeypatch):
    imagenet = {m.name: m for m in SUITES["imagenet"].models}
    value, source = reported_top1(imagenet["resnet18"], "ImageNet-1k")
    assert value == 69.752 and "resnet18.tv_in1k" in source and "results-imagenet.csv" in source
    assert reported_top1(imagenet["wave_vit_s"], "ImageNet-1k")[0] == 83.9
    assert reported_top1(imagenet["wavemix_192_16_l3"], "ImageNet-1k")[0] == 75.06
    value, source = reported_top1(imagenet["wavemix_192_16_l1"], "ImageNet-1k")  # the authors' released file
    assert value == 71.18 and "cloudwalker/wavemix" in source
    assert reported_top1(imagenet["wave_vit_s"], "CIFAR-10") == (None, "")
    # WTConvNeXt-T: the paper's figure in its pretrained_cfg; ConvNeXt-T: timm's, at timm's test size 288
    value, source = reported_top1(imagenet["wtconvnext_tiny"], "ImageNet-1k")
    assert value == 82.5 and source.startswith("pretrained_cfg metrics")
    value, source = reported_top1(imagenet["convnext_tiny"], "ImageNet-1k")
    assert value == 82.698 and "convnext_tiny.fb_in1k at 288" in source and "@0173a13" in source and "82.1 at 224" in source
    assert reported_top1(SuiteModel("resnet18", "timm", "r", {"num_classes": 10}), "ImageNet-1k") == (None, "")

    # pretrained_cfg wins over the registry reference, but only for the suite's dataset
    class WithCfg(nn.Module):
        pretrained_cfg = {"metrics": {"top1": 12.5}, "source": "test card"}

    entry = types.SimpleNamespace(pretrained_cfg=None, reference={"dataset": "ImageNet-1k", "metric": "top1", "value": 1.0})
    monkeypatch.setattr(suites, "get_entry", lambda name: entry)
    monkeypatch.setattr(suites, "create_model", lambda name: WithCfg())
    assert reported_top1(SuiteModel("x", "wavevision", "X"), "ImageNet-1k") == (12.5, "pretrained_cfg metrics (test card)")
    WithCfg.pretrained_cfg = {"metrics": {"top1": 12.5, "dataset": "CIFAR-10"}}
    assert reported_top1(SuiteModel("x", "wavevision", "X"), "ImageNet-1k")[0] == 1.0


def _fake_row(spec, *, params, macs, latency, train_mb, accuracy=None, status="ok", note=""):
    return BenchResult(model=spec.label, source=spec.source, status=status, note=note, input_shape=(3, 16, 16),
                       batch_size=2, params=params, macs=macs, latency_ms=latency,
                       throughput=None if latency is None else 2000 / latency,
                       train_step_ms=None if latency is None else 3 * latency, infer_peak_mb=110.0, infer_baseline_mb=100.0,
                       train_peak_mb=None if train_mb is None else 100.0 + train_mb, train_baseline_mb=100.0,
                       memory_method="peak RSS (test)", accuracy=accuracy, accuracy_source="given" if accuracy else "",
                       warmup=0, repeats=1, environment={"torch": torch.__version__, "threads": 1})


def test_report_plumbing_on_fabricated_measurements(monkeypatch, tmp_path):
    """Table, Markdown, CSV, JSON, PNG and the comparison from known numbers; a model timm
    lacks is a skipped row, an OOM and an unexpected exception are rows with notes."""
    fake = {  # label: (params, macs, latency ms, train MiB)
        "wavemix_192_16_l3": (28_000_000, 15e9, 10.0, 300.0),
        "timm:resnet50": (25_000_000, 4e9, 5.0, 150.0),  # 76.156: within 2 points of 75.06, leaner
        "timm:resnet18": (11_000_000, 2e9, 2.0, 100.0),  # 69.752: not close, less accurate
    }
    calls = []

    def fake_benchmark(models, **kw):
        (spec,) = models
        calls.append((spec.label, kw))
        if spec.label == "timm:deit_tiny_patch16_224":
            return [_fake_row(spec, params=5, macs=None, latency=None, train_mb=None, status="oom", note="out of memory in train")]
        if spec.label == "wave_vit_s":
            raise RuntimeError("boom")
        acc = (kw.get("accuracies") or {}).get(spec.label)
        p, m, lat, mem = fake[spec.label]
        return [_fake_row(spec, params=p, macs=int(m), latency=lat, train_mb=mem, accuracy=acc)]

    timm_names = ["resnet18", "resnet50", "deit_tiny_patch16_224"]
    monkeypatch.setattr(runner, "_import_timm", lambda: types.SimpleNamespace(list_models=lambda: timm_names,
                                                                             __version__="0.test"))
    monkeypatch.setattr(suites, "benchmark", fake_benchmark)
    only = ["WaveMix-192/16 level 3", "wave_vit_s", "resnet18", "resnet50", "deit_tiny_patch16_224", "Swin-T"]
    run = run_suite("imagenet", only=only, input_size=16, batch_size=2, warmup=0, repeats=1)
    assert [m.label for m in run.models] == ["WaveMix-192/16 level 3", "Wave-ViT-S", "ResNet-18", "ResNet-50", "DeiT-Ti", "Swin-T"]
    assert [c[0] for c in calls] == ["wavemix_192_16_l3", "wave_vit_s", "timm:resnet18", "timm:resnet50",
                                     "timm:deit_tiny_patch16_224"]  # Swin-T never measured
    assert calls[0][1]["accuracies"] == {"wavemix_192_16_l3": 75.06} and calls[0][1]["batch_size"] == 2
    status = {m.label: (r.status, r.note) for m, r in run.rows()}
    assert status["Swin-T"] == ("skipped", "timm 0.test has no model 'swin_tiny_patch4_window7_224'")
    assert status["Wave-ViT-S"] == ("error", "RuntimeError: boom") and status["DeiT-Ti"][0] == "oom"
    assert run.rows()[2][1].accuracy_source.endswith("resnet18.tv_in1k at 224")
    assert run.conditions["timm"] == "0.test" and run.conditions["torch_threads"] == torch.get_num_threads()
    assert {"OMP_WAIT_POLICY", "OMP_NUM_THREADS", "load_average_before", "load_average_after", "cpu"} <= set(run.conditions)

    lines = suites.similar_accuracy_comparison(run, within=2.0)
    assert lines == [
        "WaveMix-192/16 level 3 (75.06 %) vs ResNet-50 (76.16 %): params 1.12x, MACs 3.75x, latency 2.00x, "
        "train step 2.00x, train memory 2.00x",
        "WaveMix-192/16 level 3: baselines at least as accurate with lower training memory and latency: ResNet-50",
    ]
    text = suites.format_suite(run)
    assert "OMP_WAIT_POLICY=" in text and "Swin-T" in text and lines[0] in text and "0 warm-up + 1 timed runs" in text

    paths = suites.write_suite(run, tmp_path)
    assert set(paths) == {"json", "csv", "md", "txt", "png"}
    data = json.loads(paths["json"].read_text())
    assert data["suite"] == "imagenet" and data["settings"]["batch_size"] == 2 and data["similar_accuracy"] == lines
    assert [r["label"] for r in data["results"]][:2] == ["WaveMix-192/16 level 3", "Wave-ViT-S"]
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert rows[3]["label"] == "ResNet-50" and rows[3]["model"] == "timm:resnet50" and float(rows[3]["accuracy"]) == 76.156
    md = paths["md"].read_text().splitlines()
    assert md[3].startswith("| model | status | params |")
    assert md[5] == "| WaveMix-192/16 level 3 | ok | 28,000,000 | 15.00 G | 10 | 200 | 30 | 10 | 300 | 75.06 |"
    assert md[-1].startswith("| Swin-T | skipped | - |")
    with Image.open(paths["png"]) as im:
        assert im.format == "PNG" and im.size[1] > 800  # accuracy panels present: two rows


def test_comparison_without_reported_baseline_accuracies():
    spec = SuiteModel("wavemix_lite_32_7", "wavevision", "Lite")
    base = SuiteModel("resnet18", "timm", "R", {"num_classes": 10})
    rows = [_fake_row(spec.spec, params=1, macs=1, latency=1.0, train_mb=1.0, accuracy=80.0),
            _fake_row(base.spec, params=2, macs=2, latency=2.0, train_mb=2.0)]
    run = suites.SuiteRun(SUITES["cifar"], [spec, base], rows, {}, {})
    assert suites.similar_accuracy_comparison(run) == ["no measured baseline has a reported CIFAR-10 top-1: compare resources only"]


@pytest.mark.slow
def test_one_real_timm_model_measured():
    timm = require("timm")
    run = run_suite("cifar", only=["resnet10t"], memory=False, **TINY)
    (r,) = run.results
    assert r.status == "ok", r.note
    model = timm.create_model("resnet10t", num_classes=10)
    assert r.params == count_parameters(model) and r.input_shape == (3, 16, 16)
    assert r.macs == count_macs(model.eval(), (1, 3, 16, 16))
    assert r.latency_ms > 0 and r.throughput > 0 and r.train_step_ms > 0
    assert r.accuracy is None  # timm reports no CIFAR-10 top-1 for an ImageNet-stem ResNet
    # the training-memory case of a timm model in its fresh process (what the suite runs per model)
    mem = cpu_peak_memory(MemorySpec("resnet10t", "timm", {"num_classes": 10}, (3, 16, 16), 2, "float32", "train"))
    assert mem.status == "ok", mem.message
    assert mem.baseline_mb > 50 and 0 < mem.case_mb < 500


def test_bad_suite_arguments_fail_fast():
    with pytest.raises(ValueError, match="did you mean 'imagenet'"):
        run_suite("imagenett")
    with pytest.raises(ValueError, match="model of suite 'cifar'.*'resnet99'"):
        run_suite("cifar", only=["resnet99"])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        run_suite("cifar", batch_size=0)
    with pytest.raises(ValueError, match="input size"):
        run_suite("cifar", input_size=(0, 3))


# ------------------------------------------------------------------------------------
# The command line


def test_cli_suite(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["bench", "--suite", "cifar", "--only", "wavemix_lite_32_7", "--input-size", "16", "--batch-size", "2",
                 "--repeats", "1", "--warmup", "0", "--no-memory", "--threads", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "suite cifar" in text and "WaveMix-Lite-32/7" in text and "1 thread(s)" in text and "OMP_WAIT_POLICY" in text
    assert {p.name for p in out.iterdir()} == {f"suite-cifar.{e}" for e in ("json", "csv", "md", "txt", "png")}
    (row,) = json.loads((out / "suite-cifar.json").read_text())["results"]
    assert row["label"] == "WaveMix-Lite-32/7" and row["accuracy"] == 80.0 and row["input_shape"] == [3, 16, 16]
    assert row["params"] == 37_058 and row["batch_size"] == 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["bench", "--suite", "imagenet2"], "did you mean 'imagenet'"),
        (["bench", "--suite", "cifar", "mixer_dwt"], "MODEL names cannot be combined with --suite"),
        (["bench", "--suite", "cifar", "--model-arg", "depth=1"], "--model-arg cannot be combined with --suite"),
        (["bench", "--suite", "cifar", "--only", "nope"], "model of suite 'cifar'"),
        (["bench", "mixer_dwt", "--only", "resnet18"], "--only selects models of a --suite"),
        (["bench"], "or --suite imagenet"),
    ],
)
def test_cli_suite_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavevision bench: error:") and message in err and "Traceback" not in err
