"""The token-mixer ablation: a tiny real run through the training engine, reports, reuse, errors."""
from __future__ import annotations

import csv
import json

import pytest
import torch

import wavevision
from wavevision.bench.ablation import ablate, format_ablation, write_ablation
from wavevision.bench.complexity import count_macs
from wavevision.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

# 1 epoch of 2 batches, 1 seed, 2 mixers: checks the plumbing, not the ranking.
TINY = dict(epochs=1, seeds=1, jobs=1, train_args={"max_train_batches": 2})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    old = torch.get_num_threads()
    try:
        yield out, ablate(["dwt", "pool"], out_dir=out, **TINY)
    finally:
        torch.set_num_threads(old)


@pytest.mark.slow
def test_tiny_run_trains_every_mixer_with_the_engine(tiny):
    out, report = tiny
    assert sorted(r.mixer for r in report.rows) == ["dwt", "pool"]
    assert [r.rank for r in report.rows] == [1, 2]
    assert report.rows[0].test_acc_mean >= report.rows[1].test_acc_mean
    for row in report.rows:
        assert row.params == wavevision.get_entry(row.model).params
        assert row.macs == count_macs(wavevision.create_model(row.model), (1, 1, 16, 16))
        assert 0 <= row.test_acc_min <= row.test_acc_mean <= row.test_acc_max <= 100 and row.seeds == 1
        assert row.train_seconds_mean > 0 and row.train_memory_mb is not None and row.train_memory_mb > 0
    for run in report.runs:
        run_dir = out / "runs" / f"{run.mixer}-seed0"
        results = json.loads((run_dir / "results.json").read_text())  # written by wavevision.engine.train
        assert results["model_name"] == f"mixer_{run.mixer}" and results["epochs"] == 1
        assert results["test"]["top1"] == pytest.approx(run.test_acc) and not run.reused
    b = report.budget
    assert b["epochs"] == 1 and b["seeds"] == [0] and b["dataset"] == "digits" and b["batch_size"] == 64
    assert b["params_spread_pct"] == 0.0 and b["train_args"] == {"max_train_batches": 2}


@pytest.mark.slow
def test_reports(tiny, tmp_path):
    _, report = tiny
    text = format_ablation(report)
    assert "1 epochs" in text and "seeds 0" in text and "spread 0.0 %" in text and "max_train_batches" in text
    assert "dwt" in text and "pool" in text and "test top-1 %" in text
    paths = write_ablation(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert {r["mixer"] for r in data["rows"]} == {"dwt", "pool"} and len(data["runs"]) == 2
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert {"rank", "mixer", "test_acc_mean", "test_acc_std", "params", "train_memory_mb"} <= set(rows[0])
    from PIL import Image

    with Image.open(paths["png"]) as im:
        im.verify()


@pytest.mark.slow
def test_finished_runs_are_reused(tiny):
    out, report = tiny
    again = ablate(["pool", "dwt"], out_dir=out, memory=False, **TINY)
    assert all(r.reused for r in again.runs)
    assert {r.mixer: r.test_acc for r in again.runs} == {r.mixer: r.test_acc for r in report.runs}


@pytest.mark.slow
def test_runs_of_other_settings_are_not_overwritten(tiny):
    """Another configuration into the same folder fails before training; nothing is touched."""
    out, report = tiny
    weights = out / "runs" / "dwt-seed0" / "best.safetensors"
    before = weights.read_bytes()
    other = {**TINY, "train_args": {"max_train_batches": 2, "lr": 1e-4}}
    with pytest.raises(FileExistsError, match=r"runs already holds runs of other settings \(dwt-seed0, pool-seed0\).*--out DIR.*--overwrite"):
        ablate(["dwt", "pool"], out_dir=out, memory=False, **other)
    assert weights.read_bytes() == before


@pytest.mark.slow
def test_cli_happy_path_reuses_the_runs(tiny, capsys):
    out, _ = tiny
    code = main(["ablate", "--mixers", "dwt", "pool", "--epochs", "1", "--seeds", "1", "--jobs", "1",
                 "--train-arg", "max_train_batches=2", "--no-memory", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "rank" in text and "2 of 2 runs were reused" in text and "ablation.png" in text


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(mixers=["dwtt"]), ValueError, "Did you mean 'dwt'"),
        (dict(mixers=["wavemix_lite"]), ValueError, "not a token-mixer ablation model.*Choose from: dwconv, dwt"),
        (dict(mixers=["dwt", "mixer_dwt"]), ValueError, "repeat"),
        (dict(seeds=0), ValueError, "seeds"),
        (dict(epochs=0), ValueError, "epochs"),
        (dict(jobs=0), ValueError, "jobs"),
        (dict(train_args={"epochs": 3}), ValueError, "ablate sets it"),
        (dict(train_args={"learning_rate": 3}), ValueError, "learning_rate"),
        (dict(dataset="digit-scenes"), ValueError, "is a classification model but dataset .digit-scenes. is for segmentation"),
    ],
)
def test_errors(kwargs, error, match, tmp_path):
    args = {"mixers": ["dwt"], "out_dir": tmp_path, **kwargs}
    with pytest.raises(error, match=match):
        ablate(args.pop("mixers"), **args)


def test_wavelet_variants_cover_dwt_and_wtconv():
    from wavevision.bench.ablation import DEFAULT_MIXERS, _variants

    from _optional import require

    require("pywt")  # the names other than haar are checked against PyWavelets
    assert "wtconv" in DEFAULT_MIXERS
    assert _variants(["wtconv", "pool", "dwt"], ["haar", "db2"]) == [
        ("wtconv", "mixer_wtconv", {}), ("wtconv:db2", "mixer_wtconv", {"wavelet": "db2"}), ("pool", "mixer_pool", {}),
        ("dwt", "mixer_dwt", {}), ("dwt:db2", "mixer_dwt", {"wavelet": "db2"})]
    assert _variants(["wtconv:sym4"], ["haar"]) == [("wtconv:sym4", "mixer_wtconv", {"wavelet": "sym4"})]
    with pytest.raises(ValueError, match="only the dwt and wtconv mixers take a wavelet"):
        _variants(["pool:db2"], ["haar"])


@pytest.mark.slow
def test_tiny_wtconv_run(tmp_path):
    """The WTConv mixer trains through the engine like the others (one batch, one seed)."""
    report = ablate(["wtconv"], out_dir=tmp_path, epochs=1, seeds=1, jobs=1, memory=False,
                    train_args={"max_train_batches": 1, "max_eval_batches": 1})
    (row,) = report.rows
    assert row.mixer == "wtconv" and row.params == 86_778 == wavevision.get_entry("mixer_wtconv").params
    assert 0 <= row.test_acc_mean <= 100


def test_cli_errors(capsys):
    assert main(["ablate", "--mixers", "poool"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavevision ablate: error:") and "Did you mean 'pool'" in err


@pytest.mark.slow
def test_parallel_jobs_give_the_same_runs(tmp_path):
    """jobs=2 trains in spawned worker processes (the default on 2+ cores); a run is seeded, so the
    worker's result equals the in-process one."""
    args = dict(epochs=1, seeds=[3], train_args={"max_train_batches": 1, "max_eval_batches": 1}, memory=False)
    par = ablate(["identity", "pool"], out_dir=tmp_path / "par", jobs=2, **args)
    seq = ablate(["identity"], out_dir=tmp_path / "seq", jobs=1, **args)
    assert [r.mixer for r in par.runs] == ["identity", "pool"] and par.budget["jobs"] == 2
    assert par.runs[0].test_acc == seq.runs[0].test_acc and par.runs[0].val_acc == seq.runs[0].val_acc
