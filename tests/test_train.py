"""The training engine end to end: three tasks on the embedded datasets, resume equality (also
after a process is killed mid-epoch), overwrite protection, bad input, and DDP over two processes."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

import wavevision
from wavevision.engine import RECIPES, Callback, TrainingInterrupted, train
from wavevision.models._builder import load_safetensors

TINY = dict(final_dim=16, ff_channel=16, depth=1)
QUICK = dict(threads=1, progress=False, plots=False)


def _digits(tmp_path: Path, name: str, **kw):
    cfg = dict(dataset="digits", model_args=TINY, epochs=2, batch_size=32, max_train_batches=3, max_eval_batches=2,
               output=str(tmp_path / name), **QUICK)
    cfg.update(kw)
    return cfg


def _weights(run_dir: Path, which: str = "last") -> dict:
    return load_safetensors(str(run_dir / f"{which}.safetensors"))[0]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _without_timings(history):
    return [{k: v for k, v in r.items() if "second" not in k} for r in history]


def test_classification_on_digits_end_to_end(tmp_path):
    result = train(_digits(tmp_path, "cls", plots=True, max_eval_batches=None))
    run = tmp_path / "cls"
    for name in ("config.yaml", "best.safetensors", "best.json", "last.safetensors", "last.state.pt",
                 "log.jsonl", "results.json", "curves.png"):
        assert (run / name).exists(), name
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(not any(k.startswith("test") for k in r) for r in log)  # test never seen while training
    # the best epoch is chosen on the validation split
    best = max(log, key=lambda r: r["val_top1"])
    assert result.best_epoch == best["epoch"] and result.val["top1"] == best["val_top1"]
    assert result.test["images"] == 359 and 0 <= result.test["top1"] <= 100  # the whole test split, once
    record = json.loads((run / "results.json").read_text())
    assert record["test"]["top1"] == result.test["top1"] and record["params"] == result.params
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == "wavemix_lite"
    assert saved["model_args"] == {**RECIPES["digits"]["model_args"], **TINY, "in_chans": 1, "num_classes": 10}
    # the best checkpoint rebuilds the model alone and holds the best-on-val weights
    model = wavevision.create_model(checkpoint=run / "best.safetensors")
    assert _same_weights(model.state_dict(), result.model.state_dict())
    meta = json.loads((run / "best.json").read_text())["extra"]
    assert meta["task"] == "classification" and meta["epoch"] == result.best_epoch
    assert meta["dataset"]["class_names"] == [str(d) for d in range(10)]
    assert "digits" in result.summary() and "test" in result.summary()


@pytest.mark.slow
def test_token_labeling_wave_vit_trains_with_its_loss(tmp_path):
    """Wave-ViT returns a TokenLabelOutput in training: the engine uses the token-labeling loss and class logits."""
    vit = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4], stem_hidden_dim=8)
    result = train(_digits(tmp_path, "vit", model="wave_vit_s", model_args=vit, dataset_args={"image_size": 32},
                           epochs=1))
    assert math.isfinite(result.history[0]["train_loss"]) and 0 <= result.history[0]["train_top1"] <= 100
    assert result.model.aux_head is not None and 0 <= result.test["top1"] <= 100


def test_segmentation_on_digit_scenes(tmp_path):
    result = train(dataset="digit-scenes", model_args=dict(final_dim=16, ff_channel=16, depth=1, level=2),
                   dataset_args=dict(num_scenes=8), epochs=1, batch_size=4, output=str(tmp_path / "seg"), **QUICK)
    assert result.task == "segmentation" and result.model_name == "wavemix_seg"
    assert 0 <= result.test["miou"] <= 100 and 0 <= result.test["pixel_acc"] <= 100
    assert result.model.num_classes == 11


def test_super_resolution_on_photos_reports_bicubic_beside(tmp_path):
    result = train(dataset="photos", model_args=dict(final_dim=16, ff_channel=16, depth=1),
                   dataset_args=dict(num_patches=8, patch_size=32, eval_size=64), epochs=1, batch_size=4,
                   output=str(tmp_path / "sr"), **QUICK)
    assert result.task == "super_resolution" and result.test["images"] == 2
    for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim"):
        assert key in result.test and result.test[key] == result.test[key]
    assert result.test["bicubic_psnr"] > 15  # a sane baseline on real photos


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A deterministic run, with dropout, whose weights resumed runs must reproduce exactly."""
    tmp = tmp_path_factory.mktemp("ref")
    cfg = _resume_cfg(tmp, "ref")
    train(cfg)
    return cfg, tmp / "ref"


def _resume_cfg(tmp_path: Path, name: str) -> dict:
    return _digits(tmp_path, name, epochs=2, max_train_batches=4, max_eval_batches=1, deterministic=True,
                   model_args={**TINY, "dropout": 0.3}, test=False, checkpoint_every=3)


def test_stopped_and_resumed_run_ends_with_the_same_weights(tmp_path, uninterrupted):
    ref_cfg, ref_dir = uninterrupted

    class StopAtStep(Callback):
        def on_step_end(self, state):
            if state.global_step == 6:  # inside epoch 2
                signal.raise_signal(signal.SIGTERM)

    cfg = _resume_cfg(tmp_path, "stopped")
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 2.*--resume"):
        train(cfg, callbacks=[StopAtStep()])
    assert len((tmp_path / "stopped" / "log.jsonl").read_text().splitlines()) == 1
    result = train({**cfg, "resume": True})
    assert _same_weights(_weights(tmp_path / "stopped"), _weights(ref_dir))
    ref_log = [json.loads(line) for line in (ref_dir / "log.jsonl").read_text().splitlines()]
    assert _without_timings(result.history) == _without_timings(ref_log)


@pytest.mark.slow
def test_process_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, uninterrupted):
    _, ref_dir = uninterrupted
    cfg = _resume_cfg(tmp_path, "killed")
    script = textwrap.dedent(f"""
        import os, signal
        from wavevision.engine import Callback, train

        class Kill(Callback):
            def on_step_end(self, state):
                if state.global_step == 7:  # epoch 2, step 3: the last save was at step 6
                    os.kill(os.getpid(), signal.SIGKILL)

        train({cfg!r}, callbacks=[Kill()])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    state = torch.load(tmp_path / "killed" / "last.state.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)  # saved inside epoch 2 by checkpoint_every=3
    assert (tmp_path / "killed" / ".wavevision.lock").exists()  # the dead process's lock file does not block
    train({**cfg, "resume": True})
    assert _same_weights(_weights(tmp_path / "killed"), _weights(ref_dir))


@pytest.mark.slow
def test_existing_run_is_not_overwritten_without_permission(tmp_path):
    cfg = _digits(tmp_path, "run", epochs=1, max_train_batches=1, max_eval_batches=1, test=False)
    train(cfg)
    own = tmp_path / "run" / "notes.txt"
    own.write_text("mine")
    before = (tmp_path / "run" / "last.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a run.*--resume.*--overwrite"):
        train({**cfg, "seed": 1})
    assert (tmp_path / "run" / "last.safetensors").read_bytes() == before
    train({**cfg, "seed": 1, "overwrite": True})
    assert (tmp_path / "run" / "last.safetensors").read_bytes() != before
    assert own.read_text() == "mine"  # --overwrite replaces the run's files only


def test_resume_with_another_configuration_is_refused(tmp_path):
    cfg = _digits(tmp_path, "run", epochs=1, max_train_batches=1, max_eval_batches=1, test=False)
    train(cfg)
    with pytest.raises(ValueError, match=r"another configuration \(lr: 0.003 in the run, 0.1 now\)"):
        train({**cfg, "lr": 0.1, "resume": True})
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train({**cfg, "output": str(tmp_path / "nothing"), "resume": True})


def test_task_mismatch_and_dataset_conflicts_are_clear(tmp_path):
    with pytest.raises(ValueError, match="'wavemix_paper_sr' is a super-resolution model but dataset 'digits'.*wavemix_lite"):
        train(_digits(tmp_path, "x", model="wavemix_paper_sr", model_args={}))
    with pytest.raises(ValueError, match="num_classes=5 does not fit dataset 'digits', which has num_classes=10"):
        train(_digits(tmp_path, "x", model_args={**TINY, "num_classes": 5}))
    with pytest.raises(ValueError, match="fp16 needs an accelerator"):
        train(_digits(tmp_path, "x", amp="fp16", device="cpu"))


def _tensor_split(labels, info):
    from wavevision.data.datasets import TensorClassification

    images = torch.rand(len(labels), 1, 8, 8)
    return TensorClassification(images, torch.tensor(labels)), info


def test_label_out_of_range_and_empty_split_are_named(tmp_path):
    from wavevision.data import DatasetInfo

    info = DatasetInfo(name="mine", task="classification", in_chans=1, num_classes=3, class_names=None,
                       image_size=(8, 8), mean=(), std=())
    good = _tensor_split([0, 1, 2, 1], info)
    model = wavevision.create_model("wavemix_lite", num_classes=3, in_chans=1, **TINY)
    cfg = dict(epochs=1, batch_size=4, output=str(tmp_path / "bad"), **QUICK)
    with pytest.raises(ValueError, match="label 7 is out of range for dataset 'mine' with 3 classes"):
        train(cfg, model=model, datasets={"train": _tensor_split([0, 7, 1, 2], info), "val": good, "test": good})
    with pytest.raises(ValueError, match="empty val split"):
        train(cfg, model=model, datasets={"train": good, "val": _tensor_split([], info), "test": good})


def test_warmup_then_cosine_schedule_by_hand():
    from wavevision.engine.trainer import WarmupCosine

    s = WarmupCosine(total_steps=12, warmup_steps=2, min_ratio=0.1)
    assert [s(0), s(1)] == pytest.approx([1 / 3, 2 / 3])  # linear warm-up, never 0
    assert s(2) == pytest.approx(1.0)
    assert s(7) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert s(12) == pytest.approx(0.1) and s(50) == pytest.approx(0.1)
    assert WarmupCosine(12, 2, 0.1, "constant")(9) == 1.0


def test_sgd_clipping_bf16_and_label_smoothing_train(tmp_path):
    result = train(_digits(tmp_path, "sgd", optimizer="sgd", lr=0.05, clip_grad=1.0, amp="bf16", label_smoothing=0.1,
                           scheduler="constant", warmup_epochs=0.5, epochs=1, test=False))
    assert math.isfinite(result.history[0]["train_loss"])
    assert result.history[0]["lr"] == pytest.approx(0.05)  # constant after warm-up
    torch.manual_seed(0)
    init = wavevision.create_model("wavemix_lite", in_chans=1, num_classes=10,
                                   **{**RECIPES["digits"]["model_args"], **TINY})
    assert not _same_weights(init.state_dict(), result.model.state_dict())


@pytest.mark.slow
def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "wavevision", "train", "--model-arg", "final_dim=16", "--model-arg", "ff_channel=16",
           "--model-arg", "depth=1", "--model-arg", "dropout=0.2", "--epochs", "2", "--batch-size", "16",
           "--max-train-batches", "3", "--threads", "1", "--no-progress", "--no-plots", "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wavemix_lite on digits") == 1  # only the first process reports
    record = json.loads((out / "results.json").read_text())
    assert record["world_size"] == 2
    digests = record["weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # both processes hold the same weights
    assert record["test"]["images"] == 359  # sharded evaluation counts every test image once
    # the all-reduced test metrics equal one pass of one process over the same best weights
    from wavevision.data import build_dataset
    from wavevision.engine import evaluate

    data, info = build_dataset("digits", "test")
    single = evaluate(wavevision.create_model(checkpoint=out / "best.safetensors"), data, info, device="cpu")
    assert single["top1"] == pytest.approx(record["test"]["top1"]) and single["top5"] == pytest.approx(record["test"]["top5"])
    assert record["history"][-1]["train_images"] == 2 * 3 * 16
    # a second writer under torchrun: every process stops with the lock error, none waits forever
    from wavevision.engine import RunDir

    holder = RunDir(out)
    holder.open({}, resume=True)
    try:
        proc = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300, env=env)
    finally:
        holder.close()
    assert proc.returncode != 0 and "in use by another training" in proc.stderr, proc.stderr[-3000:]


def test_without_progress_bars_each_epoch_prints_one_line_as_it_ends(tmp_path, capsys):
    seen = []

    class Peek(Callback):
        def on_epoch_end(self, state, record):
            seen.append(capsys.readouterr().err)             # what the user has read by now

    train(_digits(tmp_path, "quiet", test=False), callbacks=[Peek()])  # QUICK: progress=False
    assert [s.count("\n") for s in seen] == [1, 1]
    assert seen[0].startswith("epoch 1/2  train loss ") and "val top1 " in seen[0]
    assert seen[1].startswith("epoch 2/2  ") and "\r" not in "".join(seen)   # plain lines, no bars
