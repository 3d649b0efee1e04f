"""The engine's warning about OpenMP spin-waiting on a busy machine (issue 22, item 2).

The load average and the CPUs are faked, so the tests do not depend on what else the machine runs.
"""
from __future__ import annotations

import os
import sys
import warnings

import pytest
import torch

from wavevision import _launch
from wavevision.bench import benchmark
from wavevision.data import build_dataset
from wavevision.engine import evaluate, train
from wavevision.models import create_model

SCRIPT = (["script.py"], ["python", "script.py"])           # a user's script, not the command


@pytest.fixture
def busy(monkeypatch):
    """A 2-CPU machine at load 6, no wait policy set, this process a user's script; warning not yet given."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 5.0, 4.0))
    monkeypatch.setattr(_launch, "_cpus", lambda: 2)
    monkeypatch.setattr(sys, "argv", SCRIPT[0])
    monkeypatch.setattr(sys, "orig_argv", SCRIPT[1], raising=False)
    monkeypatch.setattr(_launch, "_warned", False)


def _spin_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "OMP_WAIT_POLICY=PASSIVE" in str(w.message)]


def test_when_it_hurts(busy, monkeypatch):
    why = _launch.spin_waiting_hurts(2)
    assert why is not None and "load average of 6.0" in why and "2 CPU(s)" in why
    assert _launch.spin_waiting_hurts(1) is None                   # one thread has nobody to wait for
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert _launch.spin_waiting_hurts(2) is None                   # an idle machine
    monkeypatch.setattr(_launch, "_cpus", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert _launch.spin_waiting_hurts(4) is None                   # 5 idle cores for 4 threads
    assert _launch.spin_waiting_hurts(8) is not None               # 8 threads, 5 idle cores


def test_a_set_policy_or_the_command_is_left_alone(busy, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")                # the user chose: not ours to question
    assert _launch.spin_waiting_hurts(2) is None
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(sys, "argv", ["/venv/bin/wavevision", "train"])
    assert _launch.spin_waiting_hurts(2) is None                   # the command sets PASSIVE itself
    monkeypatch.setattr(sys, "argv", ["-m"])
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "wavevision", "train"], raising=False)
    assert _launch.spin_waiting_hurts(2) is None


def test_no_load_average_no_warning(busy, monkeypatch):
    def missing():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", missing)
    assert _launch.spin_waiting_hurts(2) is None


def test_evaluate_warns_once_with_the_fix(busy, one_thread):
    torch.set_num_threads(2)
    data, info = build_dataset("digits", "val")
    model = create_model("wavemix_lite", in_chans=1, num_classes=10, final_dim=16, ff_channel=16, depth=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        evaluate(model, data, info, max_batches=1)
        evaluate(model, data, info, max_batches=1)
    messages = _spin_warnings(record)
    assert len(messages) == 1, messages
    assert "os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'" in messages[0] and "torch.set_num_threads(n)" in messages[0]
    assert record[0].category is RuntimeWarning


@pytest.mark.slow
def test_train_warns_for_its_own_threads(busy, one_thread, tmp_path):
    cfg = dict(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1), epochs=1, batch_size=32,
               max_train_batches=1, max_eval_batches=1, test=False, progress=False, plots=False,
               output=str(tmp_path / "run"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train(cfg, threads=1)                                        # one thread: nothing to say
    assert _spin_warnings(record) == []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train(cfg, threads=2, overwrite=True)
    assert len(_spin_warnings(record)) == 1


def test_bench_warns(busy, one_thread):
    torch.set_num_threads(2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        benchmark(["wavemix_lite_8_10"], batch_size=2, warmup=0, repeats=1, memory=False, train=False)
    assert len(_spin_warnings(record)) == 1
