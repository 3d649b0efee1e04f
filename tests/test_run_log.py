"""The run's log: log.jsonl step and epoch records, resume without duplicates, TensorBoard events, the run ETA."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from wavevision.engine import Callback, TrainingInterrupted, train
from wavevision.engine.runlog import TENSORBOARD_DIR, format_seconds, have_tensorboard

from _optional import core_only, in_ci

TINY = {"final_dim": 16, "ff_channel": 16, "depth": 1}


def _cfg(tmp_path: Path, name: str, **extra) -> dict:
    return {**dict(dataset="digits", model="wavemix_lite", model_args=TINY, epochs=2, max_train_batches=4,
                   max_eval_batches=1, batch_size=16, test=False, progress=False, plots=False, threads=1,
                   deterministic=True, log_every=2, checkpoint_every=3, output=str(tmp_path / name)), **extra}


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_log_lines_parse_and_match_results(tmp_path):
    result = train(_cfg(tmp_path, "run"))
    records = _records(tmp_path / "run")
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["step"] for r in steps] == [2, 4, 6, 8]  # log_every=2 over 2 epochs of 4 steps
    assert [r["epoch"] for r in steps] == [1, 1, 2, 2]
    for r in steps:
        assert set(r) == {"kind", "epoch", "step", "lr", "loss", "images_per_second"}
        assert r["loss"] > 0 and r["lr"] >= 0 and r["images_per_second"] > 0
    assert steps[0]["lr"] > steps[-1]["lr"]  # the cosine reaches 0 at the last step
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert epochs == saved["history"] == json.loads(json.dumps(result.history))
    assert [r["step"] for r in epochs] == [4, 8] and all("val_top1" in r for r in epochs)
    # each epoch's loss is the image-weighted mean of its two step windows (equal-sized batches here)
    for e in epochs:
        window = [r["loss"] for r in steps if r["epoch"] == e["epoch"]]
        assert e["train_loss"] == pytest.approx(sum(window) / len(window), rel=1e-9)
    assert records == sorted(records, key=lambda r: (r["step"], r["kind"] == "epoch"))


@pytest.mark.slow
def test_resumed_run_appends_without_duplicates(tmp_path):
    class StopAtStep(Callback):
        def on_step_end(self, state):
            if state.global_step == 7:  # epoch 2, after the step record of step 6 and the state saved at step 6
                signal.raise_signal(signal.SIGTERM)

    full = train(_cfg(tmp_path, "full"))
    cfg = _cfg(tmp_path, "stopped")
    with pytest.raises(TrainingInterrupted):
        train(cfg, callbacks=[StopAtStep()])
    with open(tmp_path / "stopped" / "log.jsonl", "a") as f:  # a record logged after the save, and a torn line
        f.write(json.dumps({"kind": "step", "epoch": 2, "step": 8, "lr": 1.0, "loss": 1.0, "images_per_second": 1.0})
                + "\n{\"kind\": \"st")
    train({**cfg, "resume": True})
    records, ref = _records(tmp_path / "stopped"), _records(tmp_path / "full")
    assert [(r["kind"], r["step"]) for r in records] == [(r["kind"], r["step"]) for r in ref]
    timing = ("images_per_second", "train_images_per_second", "train_seconds", "epoch_seconds")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in records]
    ref_strip = [{k: v for k, v in r.items() if k not in timing} for r in ref]
    # deterministic: the same numbers, except the loss of the first step record after the resume, which
    # covers the steps this process ran (step 8 alone), not the whole window since step 6
    assert [r for r in strip if r["step"] != 8 or r["kind"] == "epoch"] == \
           [r for r in ref_strip if r["step"] != 8 or r["kind"] == "epoch"]
    assert full.history[-1]["val_top1"] == records[-1]["val_top1"]


def test_tensorboard_event_files(tmp_path):
    if not have_tensorboard():
        if in_ci() and not core_only():
            pytest.fail("under CI the test extra (tensorboard) must be installed")
        pytest.skip("tensorboard is not installed (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(_cfg(tmp_path, "tb"))
    folder = tmp_path / "tb" / TENSORBOARD_DIR
    assert list(folder.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(folder))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4, 6, 8]
    assert [e.step for e in acc.Scalars("val/top1")] == [4, 8]


def test_log_every_zero_writes_epoch_records_only(tmp_path):
    train(_cfg(tmp_path, "quiet", log_every=0, epochs=1))
    assert [r["kind"] for r in _records(tmp_path / "quiet")] == ["epoch"]


def test_run_eta_on_the_epoch_line(tmp_path, capsys):
    train(_cfg(tmp_path, "eta"))
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "run ETA " in err.split("epoch 1/2")[1].splitlines()[0]
    assert "run ETA" not in err.split("epoch 2/2")[1].splitlines()[0]  # nothing left after the last epoch


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 42.4, 185, 3720, float("nan"))] == ["0s", "42s", "3m05s", "1h02m", "?"]


# -- mixed precision: both kinds accepted and checked before anything is written ---------------

def test_amp_bf16_trains_on_cpu(tmp_path):
    result = train(_cfg(tmp_path, "bf16", amp="bf16", epochs=1))
    assert result.history[0]["train_loss"] == result.history[0]["train_loss"]  # finite, not NaN


def test_amp_fp16_on_cpu_is_a_one_line_error_before_the_run_directory(tmp_path):
    with pytest.raises(ValueError, match=r"^amp fp16 needs an accelerator; on CPU use --amp bf16 or --amp none$"):
        train(_cfg(tmp_path, "fp16", amp="fp16", epochs=1))
    assert not (tmp_path / "fp16").exists()


def test_amp_fp16_on_cpu_from_the_command_line(tmp_path, capsys):
    from wavevision.cli import main

    code = main(["train", "--model-arg", "depth=1", "--epochs", "1", "--amp", "fp16", "--device", "cpu",
                 "--output", str(tmp_path / "cli"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "amp fp16 needs an accelerator" in err[0]
    assert not (tmp_path / "cli").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cuda(tmp_path, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        with pytest.raises(ValueError, match="amp bf16 is not supported"):
            train(_cfg(tmp_path, amp, amp=amp, epochs=1, device="cuda"))
        return
    result = train(_cfg(tmp_path, amp, amp=amp, epochs=1, device="cuda", deterministic=False))
    assert result.history[0]["train_loss"] == result.history[0]["train_loss"]
