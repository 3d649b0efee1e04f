"""Gradient accumulation: accum_steps batches per optimizer step equal one batch of their total
size; accum_steps derived from a global batch, with one-line errors when the world size cannot
reach it; recipes on fewer processes than their reference reach its global batch; clipping once per step."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from wavevision.cli import build_parser
from wavevision.cli.train import build_config
from wavevision.engine import Callback, train
from wavevision.engine.config import TrainConfig, resolve_config
from wavevision.engine.plan import accumulation_steps
from wavevision.engine.recipe import missing_pieces
from wavevision.recipes import get_recipe

QUICK = dict(threads=1, progress=False, plots=False)


def _net() -> nn.Module:
    torch.manual_seed(0)  # no BatchNorm: the statistics of a half batch would differ from the whole one's
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.GELU(), nn.Dropout(0.0), nn.Linear(32, 10))


class _Steps(Callback):
    def __init__(self):
        self.seen = []

    def on_step_end(self, state):
        self.seen.append((state.step, state.global_step, float(state.totals["n"])))


def _run(tmp_path, name, **kw):
    net, steps = _net(), _Steps()
    # no augmentation: it is drawn per batch (SeededSamples), so batches of another size see other draws
    cfg = dict(dataset="digits", dataset_args={"image_size": 8}, augment=False, epochs=2, max_train_batches=3, max_eval_batches=1,
               test=False, lr=0.01, weight_decay=0.0, output=str(tmp_path / name), **QUICK)
    cfg.update(kw)
    result = train(cfg, model=net, callbacks=[steps])
    return net, result, steps.seen


def test_accumulated_batches_equal_one_batch_of_their_size(tmp_path):
    one, r1, s1 = _run(tmp_path, "one", batch_size=24)
    acc, r3, s3 = _run(tmp_path, "acc", batch_size=8, accum_steps=3)
    glob, _, _ = _run(tmp_path, "glob", batch_size=8, global_batch=24)
    for a, b, c in zip(one.state_dict().values(), acc.state_dict().values(), glob.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6) and torch.equal(b, c)
    assert s1 == s3 == [(1, 1, 24.0), (2, 2, 48.0), (3, 3, 72.0), (1, 4, 24.0), (2, 5, 48.0), (3, 6, 72.0)]
    for x, y in zip(r1.history, r3.history):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-5) and x["train_images"] == y["train_images"]


def test_the_last_short_step_weighs_each_sample_once(tmp_path):
    # 1259 training digits: the second step is 259 images, two batches of 250 and 9 with accumulation
    one, _, _ = _run(tmp_path, "one", batch_size=1000, max_train_batches=None, epochs=1)
    acc, _, _ = _run(tmp_path, "acc", batch_size=250, accum_steps=4, max_train_batches=None, epochs=1)
    for a, b in zip(one.state_dict().values(), acc.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_global_batch_gives_the_accumulation_or_a_one_line_error():
    assert accumulation_steps(TrainConfig(batch_size=128, global_batch=1024), 1) == 8
    assert accumulation_steps(TrainConfig(batch_size=128, global_batch=1024), 8) == 1
    assert accumulation_steps(TrainConfig(batch_size=128, accum_steps=3), 4) == 3
    for cfg, world, words in ((TrainConfig(batch_size=128, global_batch=1024), 3, "cannot be reached"),
                              (TrainConfig(batch_size=128, global_batch=64), 1, "cannot be reached"),
                              (TrainConfig(batch_size=8, global_batch=32, accum_steps=2), 1, "disagrees")):
        with pytest.raises(ValueError, match=words) as e:
            accumulation_steps(cfg, world)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="accum_steps"):
        TrainConfig.from_dict({"accum_steps": 0})


def test_train_refuses_an_unreachable_global_batch_before_writing(tmp_path):
    with pytest.raises(ValueError, match="global_batch 20 cannot be reached with batch_size 8 on 1 process"):
        train(dict(dataset="digits", batch_size=8, global_batch=20, output=str(tmp_path / "r"), **QUICK))
    assert not (tmp_path / "r").exists()


def test_flags_and_recipes():
    cfg = build_config(build_parser().parse_args(["train", "--accum-steps", "4", "--clip-grad", "1.0"]))
    assert (cfg.accum_steps, cfg.clip_grad) == (4, 1.0)
    assert build_config(build_parser().parse_args(["train", "--global-batch", "256"])).global_batch == 256
    vit = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_tl"))
    assert (vit.batch_size, vit.global_batch, accumulation_steps(vit, 1), accumulation_steps(vit, 8)) == (128, 1024, 8, 1)
    assert "gradient accumulation" not in " ".join(missing_pieces(get_recipe("wave_vit_s_in1k_tl")))
    assert resolve_config(overrides=dict(dataset="digits")).global_batch is None  # one-device recipes: unchanged


def test_clipping_applies_once_to_the_accumulated_gradient(tmp_path):
    class Norms(Callback):
        def __init__(self):
            self.norms = []

        def on_step_end(self, state):  # after the step: the gradients the optimizer used
            grads = [p.grad for p in state.model.parameters() if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    norms = Norms()
    train(dict(dataset="digits", dataset_args={"image_size": 8}, epochs=1, max_train_batches=2, batch_size=8,
               accum_steps=2, clip_grad=1e-3, test=False, max_eval_batches=1, output=str(tmp_path / "c"), **QUICK),
          model=_net(), callbacks=[norms])
    assert norms.norms == pytest.approx([1e-3, 1e-3], rel=1e-4)


@pytest.mark.slow
def test_ddp_accumulates_to_the_global_batch_with_ema(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "wavevision", "train", "--model-arg", "final_dim=16", "--model-arg", "ff_channel=16",
           "--model-arg", "depth=1", "--epochs", "1", "--batch-size", "8", "--global-batch", "32", "--ema-decay", "0.9",
           "--max-train-batches", "3", "--max-eval-batches", "1", "--no-test", "--threads", "1", "--no-progress",
           "--no-plots", "--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    assert record["world_size"] == 2 and record["config"]["global_batch"] == 32
    assert len(set(record["weights_sha256"])) == 1  # no_sync on the first batch, synchronised on the second
    assert record["history"][-1]["train_images"] == 3 * 32  # 3 steps of 2 processes x 2 batches x 8
