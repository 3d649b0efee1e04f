"""Model EMA: the update against hand-computed averages (timm's ModelEmaV3 and the core's own),
the engine validating and saving the average, and a stopped run resuming it bit-exactly."""
from __future__ import annotations

import signal

import pytest
import torch
import torch.nn as nn

import wavevision
from wavevision.engine import Callback, TrainingInterrupted, train
from wavevision.engine.config import TrainConfig
from wavevision.engine.ema import OwnEma, build_ema
from wavevision.engine.recipe import missing_pieces
from wavevision.models._builder import load_safetensors
from wavevision.recipes import EMA, get_recipe

from _optional import core_only, require

TINY = dict(final_dim=16, ff_channel=16, depth=1)
QUICK = dict(threads=1, progress=False, plots=False)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def _hand_average(states, decay):
    """e_0 = w_0, e_i = decay * e_(i-1) + (1 - decay) * w_i for floats; integers follow the model."""
    avg = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in states[0].items()}
    for s in states[1:]:
        for k, v in s.items():
            avg[k] = decay * avg[k] + (1 - decay) * v.double() if v.is_floating_point() else v.clone()
    return avg


def _check_ema(make, decay=0.75, k=5):
    torch.manual_seed(0)
    net = _Net()
    states = [{k_: v.clone() for k_, v in net.state_dict().items()}]
    ema = make(net, decay)
    for _ in range(k):
        with torch.no_grad():
            for t in net.state_dict().values():
                if t.is_floating_point():
                    t.copy_(torch.randn_like(t))
                else:
                    t.add_(1)
        states.append({k_: v.clone() for k_, v in net.state_dict().items()})
        ema.update(net)
    want = _hand_average(states, decay)
    got = ema.module.state_dict()
    for key, value in want.items():
        assert torch.allclose(got[key].double(), value, rtol=1e-6, atol=1e-7) if value.is_floating_point() \
            else torch.equal(got[key], value), key
    assert int(got["bn.num_batches_tracked"]) == k  # integers copied, not averaged
    assert not ema.module.training


def test_own_ema_equals_the_hand_average():
    _check_ema(OwnEma)


def test_timm_ema_equals_the_hand_average():
    require("timm")
    from timm.utils import ModelEmaV3

    assert isinstance(build_ema(_Net(), 0.5), ModelEmaV3)
    _check_ema(lambda net, d: build_ema(net, d))


def test_without_timm_the_own_ema_is_used(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm.utils", None)  # import fails as if timm were absent
    assert isinstance(build_ema(_Net(), 0.5), OwnEma)
    if core_only():
        assert isinstance(build_ema(_Net(), 0.5), OwnEma)


def test_ema_decay_setting_and_recipe():
    assert TrainConfig().ema_decay is None
    for bad in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="ema_decay") as e:
            TrainConfig.from_dict({"ema_decay": bad})
        assert "\n" not in str(e.value)
    from wavevision.cli import build_parser
    from wavevision.cli.train import build_config

    assert build_config(build_parser().parse_args(["train", "--ema-decay", "0.999"])).ema_decay == 0.999
    recipe = get_recipe("wave_vit_s_in1k_tl")
    import dataclasses

    with_ema = dataclasses.replace(recipe, ema=EMA(0.99996))
    assert "model EMA" not in " ".join(missing_pieces(with_ema))
    from wavevision.engine.recipe import engine_values

    assert engine_values(with_ema)["ema_decay"] == 0.99996 and "ema_decay" not in engine_values(recipe)


class _Record(Callback):
    """The live weights after every step."""

    def __init__(self):
        self.states = []

    def on_step_end(self, state):
        self.states.append({k: v.detach().clone() for k, v in state.model.state_dict().items()})


def test_training_keeps_validates_and_saves_the_average(tmp_path):
    torch.manual_seed(0)
    model = wavevision.create_model("wavemix_lite", in_chans=1, num_classes=10, **TINY)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    rec = _Record()
    cfg = dict(dataset="digits", epochs=1, batch_size=32, max_train_batches=4, max_eval_batches=1, test=False,
               ema_decay=0.5, output=str(tmp_path / "run"), **QUICK)
    result = train(cfg, model=model, callbacks=[rec])
    want = _hand_average([start, *rec.states], 0.5)
    last = load_safetensors(str(tmp_path / "run" / "last.safetensors"))[0]
    for key, value in want.items():
        assert (torch.allclose(last[key].double(), value, rtol=1e-5, atol=1e-6) if value.is_floating_point()
                else torch.equal(last[key], value)), key
    live = rec.states[-1]
    assert any(not torch.equal(last[k], live[k].cpu()) for k in last if last[k].is_floating_point())  # the average
    best = load_safetensors(str(tmp_path / "run" / "best.safetensors"))[0]
    assert all(torch.equal(best[k], last[k]) for k in best)  # one epoch: the best is the last average
    assert all(torch.equal(result.model.state_dict()[k].cpu(), best[k]) for k in best)


def _resume_cfg(tmp_path, name):
    return dict(dataset="digits", model_args={**TINY, "dropout": 0.3}, epochs=2, batch_size=32, max_train_batches=4,
                max_eval_batches=1, deterministic=True, test=False, checkpoint_every=3, ema_decay=0.9,
                output=str(tmp_path / name), **QUICK)


@pytest.mark.slow
def test_stopped_run_resumes_the_average_bit_exactly(tmp_path):
    ref = train(_resume_cfg(tmp_path, "ref"))

    class StopAtStep(Callback):
        def on_step_end(self, state):
            if state.global_step == 6:  # inside epoch 2
                signal.raise_signal(signal.SIGTERM)

    cfg = _resume_cfg(tmp_path, "stopped")
    with pytest.raises(TrainingInterrupted):
        train(cfg, callbacks=[StopAtStep()])
    saved = torch.load(tmp_path / "stopped" / "last.state.pt", weights_only=True)
    assert "ema" in saved and saved["ema"].keys() == saved["model"].keys()
    result = train({**cfg, "resume": True})
    for which in ("last", "best"):
        a = load_safetensors(str(tmp_path / "stopped" / f"{which}.safetensors"))[0]
        b = load_safetensors(str(tmp_path / "ref" / f"{which}.safetensors"))[0]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), which
    a = torch.load(tmp_path / "stopped" / "last.state.pt", weights_only=True)
    b = torch.load(tmp_path / "ref" / "last.state.pt", weights_only=True)
    assert all(torch.equal(a["ema"][k], b["ema"][k]) and torch.equal(a["model"][k], b["model"][k]) for k in a["ema"])
    assert [r["val_top1"] for r in result.history] == [r["val_top1"] for r in ref.history]


def test_a_state_without_the_average_is_refused(tmp_path):
    cfg = {**_resume_cfg(tmp_path, "run"), "epochs": 2, "checkpoint_every": 0, "deterministic": False}
    train({**cfg, "epochs": 2, "max_train_batches": 1})
    path = tmp_path / "run" / "last.state.pt"
    state = torch.load(path, weights_only=True)
    del state["ema"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="holds no moving average") as e:
        train({**cfg, "max_train_batches": 1, "resume": True})
    assert "\n" not in str(e.value)
