"""Mixup / CutMix: timm's Mixup called with the recipe's settings, soft targets that sum to 1,
training with them, and one-line errors (another task; timm missing in the core install)."""
from __future__ import annotations

import sys

import pytest
import torch

from wavevision.engine import train
from wavevision.engine.config import TrainConfig, resolve_config
from wavevision.engine.mixing import build_mix
from wavevision.engine.recipe import missing_pieces
from wavevision.engine.tasks import get_task
from wavevision.recipes import get_recipe

from _optional import require

QUICK = dict(threads=1, progress=False, plots=False)


def test_the_deit_recipe_calls_timm_mixup_with_the_reference_settings(monkeypatch):
    timm_data = require("timm.data")
    seen = {}

    class Recorder:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(timm_data, "Mixup", Recorder)
    cfg = resolve_config(overrides=dict(recipe="wave_vit_s_in1k_deit"))
    assert isinstance(build_mix(cfg, get_task("classification"), 1000), Recorder)
    # DeiT main.py: --mixup 0.8 --cutmix 1.0 --mixup-prob 1.0 --mixup-switch-prob 0.5 --mixup-mode batch --smoothing 0.1
    assert seen == dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
                        label_smoothing=0.1, num_classes=1000)
    gaps = " ".join(missing_pieces(get_recipe("wave_vit_s_in1k_deit")))
    assert "Mixup" not in gaps and "label smoothing" not in gaps


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("alphas", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_soft_targets_sum_to_one_and_mix_two_labels(mode, alphas):
    require("timm.data")
    cfg = TrainConfig(mixup_alpha=alphas[0], cutmix_alpha=alphas[1], mix_mode=mode, label_smoothing=0.1)
    mix = build_mix(cfg, get_task("classification"), 10)
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 10
    mixed, target = mix(x.clone(), y)
    assert target.shape == (8, 10) and mixed.shape == x.shape
    assert torch.allclose(target.sum(1), torch.ones(8), atol=1e-6)
    off = 0.1 / 10  # the smoothing floor; each row's mass above it sits on its label and its partner's
    for i in range(8):
        top = set(torch.nonzero(target[i] > off + 1e-6).flatten().tolist())
        assert top <= {int(y[i]), int(y[7 - i])} and int(y[i]) in top | {int(y[7 - i])}


def test_training_with_mixup_and_cutmix(tmp_path):
    require("timm.data")
    result = train(dict(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1), epochs=1,
                        batch_size=15, max_train_batches=2, max_eval_batches=1, test=False, mixup_alpha=0.8,
                        cutmix_alpha=1.0, label_smoothing=0.1, output=str(tmp_path / "run"), **QUICK))
    record = result.history[0]
    assert record["train_images"] == 28  # two odd batches of 15, each mixed without its last sample
    assert 0 < record["train_loss"] < 10


def test_mixing_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="super_resolution dataset: set both to 0") as e:
        build_mix(TrainConfig(mixup_alpha=0.8), get_task("super_resolution"), None)
    assert "\n" not in str(e.value)
    monkeypatch.setitem(sys.modules, "timm.data", None)  # as in the core install
    with pytest.raises(ValueError, match=r"not installed: install the vision extra: pip install 'wavevision\[vision\]'"):
        train(dict(dataset="digits", cutmix_alpha=1.0, output=str(tmp_path / "r"), **QUICK))
    assert not (tmp_path / "r").exists()
    for bad in (dict(mixup_alpha=-1.0), dict(mix_prob=1.5), dict(mix_mode="cutout")):
        with pytest.raises(ValueError) as e:
            TrainConfig.from_dict(bad)
        assert "\n" not in str(e.value)


def test_without_timm_the_recipe_names_the_extra(monkeypatch):
    import wavevision.engine.recipe as recipe_mod

    monkeypatch.setattr(recipe_mod, "have_timm", lambda: False)
    gaps = missing_pieces(get_recipe("wave_vit_s_in1k_deit"))
    line = next(g for g in gaps if "Mixup" in g)
    assert "pip install 'wavevision[vision]'" in line
    assert "mixup_alpha" not in recipe_mod.engine_values(get_recipe("wave_vit_s_in1k_deit"))


def test_the_classification_loss_on_soft_targets_is_timms_soft_target_cross_entropy():
    SoftTargetCrossEntropy = require("timm.loss").SoftTargetCrossEntropy
    from wavevision.engine.tasks import get_task

    torch.manual_seed(0)
    logits, target = torch.randn(6, 10), torch.softmax(torch.randn(6, 10), 1)
    ours = get_task("classification").loss(None, label_smoothing=0.0)(logits, target)
    assert torch.allclose(ours, SoftTargetCrossEntropy()(logits, target), atol=1e-6)


@pytest.mark.slow
def test_a_stopped_run_with_mixup_resumes_to_the_same_weights(tmp_path):
    require("timm.data")
    import signal

    from wavevision.engine import Callback, TrainingInterrupted
    from wavevision.models._builder import load_safetensors

    def cfg(name):
        return dict(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1), epochs=2, batch_size=16,
                    max_train_batches=3, max_eval_batches=1, test=False, deterministic=True, mixup_alpha=0.8,
                    cutmix_alpha=1.0, mix_mode="elem", output=str(tmp_path / name), **QUICK)

    train(cfg("ref"))

    class Stop(Callback):
        def on_step_end(self, state):
            if state.global_step == 4:  # inside epoch 2: Mixup's NumPy and Python draws must resume
                signal.raise_signal(signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        train(cfg("stopped"), callbacks=[Stop()])
    train({**cfg("stopped"), "resume": True})
    a = load_safetensors(str(tmp_path / "ref" / "last.safetensors"))[0]
    b = load_safetensors(str(tmp_path / "stopped" / "last.safetensors"))[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
