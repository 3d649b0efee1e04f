"""The run directory: a failed start never loses or blocks a run, one writer at a time, hostile
files give a clear error instead of a hang, states from other runs are refused, files follow the
umask, and a finished run says so on --resume."""
from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import wavevision
from wavevision.cli import main
from wavevision.engine import Callback, train

TINY = dict(final_dim=16, ff_channel=16, depth=1)
QUICK = dict(threads=1, progress=False, plots=False)
SRC = str(Path(wavevision.__file__).resolve().parents[1])


def _cfg(tmp_path: Path, name: str = "run", **kw) -> dict:
    cfg = dict(dataset="digits", model_args=TINY, epochs=1, batch_size=32, max_train_batches=2, max_eval_batches=1,
               test=False, output=str(tmp_path / name), **QUICK)
    cfg.update(kw)
    return cfg


def _snapshot(run: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


# -- overwrite: validate everything before anything on disk changes ---------------------------


def _finished(tmp_path_factory, name):
    tmp = tmp_path_factory.mktemp(name)
    cfg = _cfg(tmp)
    result = train(cfg)
    return cfg, tmp / "run", result


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run the overwrite tests try to replace."""
    return _finished(tmp_path_factory, "finished")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A finished run no test changes."""
    return _finished(tmp_path_factory, "pristine")


@pytest.mark.parametrize("bad, message", [
    (dict(model_args={**TINY, "depth": -1}), "depth"),
    (dict(model_args={**TINY, "final_dim": 6}), "final_dim"),
    (dict(lr=math.nan), "lr"),
    (dict(lr=1e-3, min_lr=math.inf), "min_lr"),
    (dict(seed=2**70), "seed"),
    (dict(model_args={**TINY, "final_dim": 2**20, "ff_channel": 2**20}), "would need about"),
    (dict(dataset_args={"image_sise": 8}), "image_sise"),
])
def test_overwrite_with_a_bad_setting_keeps_the_old_run(finished, bad, message):
    cfg, run, _ = finished
    before = _snapshot(run)
    with pytest.raises((ValueError, TypeError, MemoryError, OverflowError), match=message):
        train({**cfg, **bad, "overwrite": True})
    assert _snapshot(run) == before  # the old run is whole: nothing was deleted or rewritten


def test_absurd_width_is_refused_before_allocation_with_the_estimate(tmp_path):
    with pytest.raises(MemoryError, match=r"would need about [\d.]+ [TP]iB.*smaller"):
        train(_cfg(tmp_path, model_args={**TINY, "final_dim": 2**20, "ff_channel": 2**20}))
    assert not (tmp_path / "run").exists()


# -- overwrite: the old run is set aside, and comes back if the new one fails before saving -----------


class _OnStep(Callback):
    def __init__(self, action) -> None:
        self.action = action

    def on_step_end(self, state) -> None:
        self.action(state)


def _poison(state) -> None:
    """A NaN weight after the first step: the loss diverges to NaN in epoch 1."""
    with torch.no_grad():
        next(state.model.parameters()).fill_(math.nan)


def _crash(state) -> None:
    raise RuntimeError("a bug in a callback")


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def replaced(tmp_path_factory):
    """A finished run that overwrites try, and fail, to replace."""
    return _finished(tmp_path_factory, "replaced")


@pytest.mark.parametrize("how, error, message", [
    ("nan", ValueError, "training loss became nan in epoch 1"),
    ("full disk", OSError, "No space left"),
    ("exception", RuntimeError, "a bug in a callback"),
])
def test_an_overwrite_that_fails_before_its_first_state_puts_the_old_run_back(replaced, how, error, message, monkeypatch,
                                                                              tmp_path):
    from wavevision.engine import checkpoint

    cfg, finished_run, _ = replaced
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    cfg = {**cfg, "output": str(run)}
    before = _snapshot(run)
    assert "best.safetensors" in before
    callbacks = {"nan": [_OnStep(_poison)], "exception": [_OnStep(_crash)]}.get(how, [])
    if how == "full disk":
        monkeypatch.setattr(checkpoint, "save_state", _full_disk)
    with pytest.raises(error, match=message):
        train({**cfg, "overwrite": True, "seed": 1}, callbacks=callbacks)
    assert _snapshot(run) == before  # every file of the old run is back, byte for byte
    assert not (run / ".wavevision-replaced").exists()


@pytest.mark.slow
def test_an_overwrite_deletes_the_old_run_only_once_the_new_one_saved_a_state(tmp_path):
    cfg = _cfg(tmp_path)
    train(cfg)
    run = Path(cfg["output"])
    old = _snapshot(run)
    seen = []

    def look(state):
        seen.append(sorted(p.name for p in (run / ".wavevision-replaced").iterdir()))

    train({**cfg, "overwrite": True, "seed": 1}, callbacks=[_OnStep(look)])
    assert "best.safetensors" in seen[0] and "last.state.pt" in seen[0]  # aside while the new run trained
    assert not (run / ".wavevision-replaced").exists() and _snapshot(run)["last.state.pt"] != old["last.state.pt"]


def test_an_overwrite_killed_before_its_first_state_gets_the_old_run_back_next_time(tmp_path, capsys):
    from wavevision.engine import RunDir

    cfg = _cfg(tmp_path)
    train(cfg)
    run = Path(cfg["output"])
    before = _snapshot(run)
    killed = RunDir(run)
    killed.open({"model": "another"}, resume=False)  # the old run aside, a new config written ...
    killed._unlock()  # ... and the process dies: the kernel drops its lock, nothing else happens
    assert set(_snapshot(run)) == {"config.yaml"}
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(cfg)  # without --overwrite the set-aside run is still a run
    again = RunDir(run)
    again.open({"model": "again"}, resume=False)
    assert "put back the run that an interrupted --overwrite had set aside" in capsys.readouterr().err
    again.close(failed=True)
    assert _snapshot(run) == before


# -- a failed start leaves nothing behind -------------------------------------------------------


def test_a_run_that_fails_to_start_does_not_block_the_next_attempt(tmp_path):
    from wavevision.data import DatasetInfo
    from wavevision.data.datasets import TensorClassification

    info = DatasetInfo(name="mine", task="classification", in_chans=1, num_classes=3, class_names=None,
                       image_size=(8, 8), mean=(), std=())

    def split(labels):
        return TensorClassification(torch.rand(len(labels), 1, 8, 8), torch.tensor(labels)), info

    good = split([0, 1, 2, 1])
    cfg = dict(epochs=1, batch_size=4, output=str(tmp_path / "run"), **QUICK)
    with pytest.raises(ValueError, match="label 7 is out of range"):
        train(cfg, model=wavevision.create_model("wavemix_lite", num_classes=3, in_chans=1, **TINY),
              datasets={"train": split([0, 7, 1, 2]), "val": good, "test": good})
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    result = train(cfg, model=wavevision.create_model("wavemix_lite", num_classes=3, in_chans=1, **TINY),
                   datasets={"train": good, "val": good, "test": good})  # no --overwrite needed
    assert result.best_epoch == 1


# -- one run directory, one writer ---------------------------------------------------------------


_HOLDER = """
import sys, time
from pathlib import Path
from wavevision.engine import Callback, train

cfg, go = {cfg!r}, Path({go!r})

class Wait(Callback):
    def on_step_end(self, state):
        if state.global_step == 1:
            Path(cfg["output"], "started").write_text("1")
            deadline = time.time() + 120
            while not go.exists() and time.time() < deadline:
                time.sleep(0.05)

train(cfg, callbacks=[Wait()])
"""


@pytest.mark.slow
def test_two_trainings_into_one_directory_do_not_both_proceed(tmp_path):
    cfg = _cfg(tmp_path, max_train_batches=2)
    go = tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(cfg=cfg, go=str(go))], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "run" / "started").exists():
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.05)
        for second in (dict(overwrite=True), dict(resume=True)):
            with pytest.raises(OSError, match=r"in use by another training \(process \d+\)"):
                train({**cfg, **second, "seed": 0})
        assert (tmp_path / "run" / "config.yaml").exists()  # the first run's files were left alone
    finally:
        go.write_text("go")
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    assert (tmp_path / "run" / "results.json").exists()


# -- hostile files ---------------------------------------------------------------------------------


_HOSTILE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # reading /dev/zero whole must fail, not swap
from wavevision.engine import train, evaluate_checkpoint
cfg = {cfg!r}
for action, output in {cases!r}:
    print("CASE", output, flush=True)
    try:
        if action == "resume":
            train({{**cfg, "output": output, "resume": True}})
        else:
            evaluate_checkpoint(output, split="val", max_batches=1)
        print("OK", flush=True)
    except Exception as e:
        print("ERROR", type(e).__name__, str(e).replace(chr(10), " "), flush=True)
"""

_HOSTILE_CASES = [
    ("config.yaml", "fifo", "resume"),
    ("last.state.pt", "fifo", "resume"),
    ("last.state.pt", "zero", "resume"),
    ("best.safetensors", "zero", "resume"),
    ("log.jsonl", "fifo", "resume"),
    ("best.safetensors", "zero", "eval"),
    ("best.json", "fifo", "eval"),
]


def _hostile_dir(tmp_path: Path, finished_run: Path, name: str, kind: str, action: str) -> Path:
    run = tmp_path / f"{name}-{kind}-{action}"
    shutil.copytree(finished_run, run)
    target = run / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    return run


@pytest.mark.slow
def test_hostile_run_files_give_a_clear_error_not_a_hang(tmp_path, pristine):
    """Every case in one process (a process per case costs seconds); each prints its outcome."""
    cfg, run, _ = pristine
    cases = [(action, str(_hostile_dir(tmp_path, run, name, kind, action))) for name, kind, action in _HOSTILE_CASES]
    try:
        proc = subprocess.run([sys.executable, "-c", _HOSTILE.format(cfg=cfg, cases=cases)], env=_env(),
                              capture_output=True, text=True, timeout=180)
        out = proc.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    lines = [block.splitlines() for block in out.split("CASE ")[1:]]
    outcomes = {block[0]: (block[1] if len(block) > 1 else "HANG") for block in lines}
    for (name, kind, action), (_, output) in zip(_HOSTILE_CASES, cases):
        outcome = outcomes.get(output, "not reached")
        assert outcome.startswith("ERROR ValueError"), f"{name} as a {kind}, {action}: {outcome}"
        assert name in outcome and ("FIFO" in outcome or "device" in outcome), outcome


@pytest.mark.slow
def test_a_state_file_of_another_configuration_is_refused_naming_the_mismatch(tmp_path):
    a, b = _cfg(tmp_path, "a", epochs=2, max_train_batches=2), _cfg(tmp_path, "b", epochs=2, lr=0.002)
    train({**a, "epochs": 1})
    train({**b, "epochs": 1})
    # b's config.yaml asks for 1 epoch and lr 0.002; a's state (lr 0.003) copied in must not be taken for b's
    shutil.copy(tmp_path / "a" / "last.state.pt", tmp_path / "b" / "last.state.pt")
    with pytest.raises(ValueError, match=r"last.state.pt.*another (run|configuration).*lr: 0.003.*0.002"):
        train({**b, "epochs": 1, "resume": True})


def _edit_state(state, key, value):
    if key == "epoch":
        state["epoch"] = value
    elif key == "history":
        state["history"] = state["history"] * 2
    else:
        gen, field = key.split(".")
        rng = state["rng"][0]
        if gen == "torch":
            rng["torch"] = rng["torch"][:value]
        elif gen == "numpy":
            rng["numpy"][1] = rng["numpy"][1][:value]
        else:
            rng["python"][1] = rng["python"][1][:value]


@pytest.mark.parametrize("key, value, message", [
    ("torch.state", 100, r"rng\[0\]\.torch must be \d+ bytes \(uint8\), got 100 bytes"),
    ("numpy.keys", 10, r"rng\[0\]\.numpy must be NumPy's Mersenne Twister state"),
    ("python.state", 10, r"rng\[0\]\.python must be Python's Mersenne Twister state"),
    ("epoch", -1, r"'epoch' must be an integer >= 0, got -1"),
    ("epoch", 7, r"'epoch' is 7 but the run has 1 epochs"),
    ("history", None, r"'history' holds 2 record\(s\) for 1 finished epoch"),
])
def test_a_damaged_state_is_refused_naming_the_entry(tmp_path, pristine, key, value, message, capsys):
    cfg, run, _ = pristine
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = torch.load(copy / "last.state.pt", weights_only=True)
    _edit_state(state, key, value)
    torch.save(state, copy / "last.state.pt")
    with pytest.raises(ValueError, match=r"last\.state\.pt: " + message + r".*--overwrite"):
        train({**cfg, "output": str(copy), "resume": True})
    err = _error(capsys, ["train", "--resume", str(copy), "--no-progress"])
    assert err.count("\n") == 1 and re.search(message, err)


def test_a_checkpoint_whose_config_asks_for_an_absurd_model_is_refused_before_building(tmp_path, capsys):
    model = wavevision.create_model("wavemix_lite_8_10", depth=1)
    wavevision.save_checkpoint(model, tmp_path / "m.safetensors")
    config = json.loads((tmp_path / "m.json").read_text())
    config["kwargs"].update(final_dim=2**20, ff_channel=2**20)
    (tmp_path / "m.json").write_text(json.dumps(config))
    err = _error(capsys, ["predict", str(tmp_path / "m.safetensors"), str(tmp_path / "any.png")])
    assert re.search(r"m.safetensors would need about [\d.]+ [TP]iB", err)


# -- files a user shares -------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_run_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        train(_cfg(tmp_path, plots=True, test=True))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").rglob("*") if not p.is_dir()]  # TensorBoard's event files included
    assert {"config.yaml", "best.safetensors", "best.json", "last.safetensors", "last.json", "last.state.pt",
            "log.jsonl", "results.json", "curves.png"} <= {p.name for p in files}
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == mode, (p.name, oct(p.stat().st_mode))


# -- friendliness ------------------------------------------------------------------------------------------


def test_resume_of_a_finished_run_says_it_is_complete(tmp_path, pristine, capsys):
    cfg, pristine_run, first = pristine
    run = tmp_path / "copy"
    shutil.copytree(pristine_run, run)
    cfg = {**cfg, "output": str(run)}
    before = (run / "results.json").read_bytes()
    result = train({**cfg, "resume": True})
    assert (run / "results.json").read_bytes() == before  # nothing re-measured or rewritten
    assert result.best_epoch == first.best_epoch and result.val == first.val
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "complete" in captured.err + captured.out and "epoch 2" not in captured.err + captured.out


def test_eval_max_batches_zero_is_an_error(pristine, capsys):
    _, run, _ = pristine
    assert "--max-batches" in _error(capsys, ["eval", str(run), "--max-batches", "0", "--no-progress"])


def test_nan_weights_and_nan_outputs_are_reported(tmp_path, capsys):
    model = wavevision.create_model("wavemix_lite_8_10", depth=1, in_chans=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    nan_weights = {k: v.clone() for k, v in state.items()}
    nan_weights[next(k for k in state if k.endswith("weight"))].view(-1)[0] = math.nan
    model.load_state_dict(nan_weights)
    wavevision.save_checkpoint(model, tmp_path / "nanw.safetensors")
    err = _error(capsys, ["eval", str(tmp_path / "nanw.safetensors"), "--dataset", "digits",
                          "--dataset-arg", "image_size=28", "--no-progress"])
    assert "NaN" in err and "weight" in err
    # finite weights whose outputs are NaN: a BatchNorm with a negative running variance
    outputs = {k: v.clone() for k, v in state.items()}
    var = next(k for k in state if k.endswith("running_var"))
    outputs[var].fill_(-1.0)
    model.load_state_dict(outputs)
    wavevision.save_checkpoint(model, tmp_path / "nano.safetensors")
    err = _error(capsys, ["eval", str(tmp_path / "nano.safetensors"), "--dataset", "digits",
                          "--dataset-arg", "image_size=28", "--no-progress"])
    assert "NaN" in err and "output" in err and "nan %" not in err


# -- shared machines: the command makes OpenMP threads sleep, not spin -----------------------------------------


_SITE = """
import atexit, builtins, os, sys
_seen = {}
_real = builtins.__import__
def _hook(name, *args, **kwargs):
    if name == "torch" and "torch" not in _seen:
        _seen["torch"] = os.environ.get("OMP_WAIT_POLICY")
    return _real(name, *args, **kwargs)
builtins.__import__ = _hook
atexit.register(lambda: sys.stderr.write("POLICY-AT-TORCH-IMPORT=%s\\n" % _seen.get("torch")))
"""


def _policy_at_torch_import(tmp_path: Path, argv: list) -> str:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITE)
    env = {k: v for k, v in _env().items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr.rsplit("POLICY-AT-TORCH-IMPORT=", 1)[1].split()[0]


@pytest.mark.slow
def test_the_command_sets_a_passive_openmp_wait_policy_before_torch_loads(tmp_path):
    module = [sys.executable, "-m", "wavevision", "list", "wavemix_lite_8_10"]
    assert _policy_at_torch_import(tmp_path, module) == "PASSIVE"
    script = tmp_path / "bin" / "wavevision"  # what the console entry point runs
    script.parent.mkdir()
    script.write_text("import sys\nfrom wavevision.cli import main\nsys.exit(main())\n")
    assert _policy_at_torch_import(tmp_path, [sys.executable, str(script), "list", "wavemix_lite_8_10"]) == "PASSIVE"


@pytest.mark.parametrize("argv, orig_argv, user, expected", [
    (["-m"], ["python", "-X", "importtime", "-u", "-m", "wavevision", "train"], None, "PASSIVE"),  # also torchrun's
    (["/venv/bin/wavevision"], ["python", "/venv/bin/wavevision", "train"], "ACTIVE", "ACTIVE"),  # the user's wins
    (["-c"], ["python", "-c", "import wavevision"], None, None),  # a library user's import changes nothing
    (["job.py"], ["python", "job.py", "-m", "wavevision"], None, None),
    (["-m"], ["python", "-m", "mypackage"], None, None),
])
def test_which_processes_get_the_passive_policy(monkeypatch, argv, orig_argv, user, expected):
    from wavevision._launch import prefer_passive_openmp

    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv, raising=False)
    if user is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", user)
    prefer_passive_openmp()
    assert os.environ.get("OMP_WAIT_POLICY") == expected


# -- the pieces: RunDir and TrainState ------------------------------------------------------------


def test_rundir_lock_is_exclusive_released_and_cleaned_up(tmp_path):
    import yaml

    from wavevision.engine import RunDir, RunDirLocked
    from wavevision.engine.rundir import LOCK_FILE

    a, b = RunDir(tmp_path / "r"), RunDir(tmp_path / "r")
    a.open({"x": 1}, resume=False)
    with pytest.raises(RunDirLocked, match=rf"in use by another training \(process {os.getpid()}\)"):
        b.open({"x": 2}, resume=False)
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text()) == {"x": 1}  # b changed nothing
    a.close()
    assert not (tmp_path / "r" / LOCK_FILE).exists() and (tmp_path / "r" / "config.yaml").exists()
    (tmp_path / "r" / LOCK_FILE).write_text("999999 elsewhere\n")  # a stale lock file: no process holds it
    b.open({"x": 2}, resume=False)
    b.close(failed=True)  # a new run that saved nothing leaves the folder as it found it (a's config back)
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text()) == {"x": 1} and (tmp_path / "r").is_dir()
    c = RunDir(tmp_path / "new" / "r")
    c.open({"x": 3}, resume=False)
    c.close(failed=True)
    assert not (tmp_path / "new" / "r").exists()


def test_train_state_round_trip_and_fingerprint(tmp_path):
    from wavevision.engine import TrainState
    from wavevision.engine.checkpoint import capture_rng

    def state(seed):
        torch.manual_seed(seed)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
        return TrainState(model=model, optimizer=opt, scheduler=sched, scaler=torch.amp.GradScaler("cpu", enabled=False))

    a = state(0)
    a.model(torch.ones(4, 3)).sum().backward()
    a.optimizer.step()
    a.scheduler.step()
    a.epoch, a.step, a.global_step, a.history = 1, 2, 7, [{"epoch": 1, "train_loss": 0.5}]
    a.zero_totals(("loss", "n"), torch.device("cpu"))
    a.totals["loss"] += 3.0
    a.save(tmp_path, rngs=[capture_rng()], fingerprint={"lr": 0.1, "seed": 0})
    expected_draw = torch.rand(3)
    b = state(1)
    b.zero_totals(("loss", "n"), torch.device("cpu"))
    torch.manual_seed(123)
    assert b.load(tmp_path, fingerprint={"lr": 0.1, "seed": 0})
    assert torch.equal(torch.rand(3), expected_draw)  # the generators are back where they were saved
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert b.optimizer.state_dict()["state"][0]["step"] == 1 and b.scheduler.last_epoch == 1
    assert (b.epoch, b.step, b.global_step, b.history) == (1, 2, 7, a.history) and float(b.totals["loss"]) == 3.0
    with pytest.raises(ValueError, match=r"another run or configuration \(lr: 0.1 in the state, 0.2 now\)"):
        state(2).load(tmp_path, fingerprint={"lr": 0.2, "seed": 0})
    assert not state(3).load(tmp_path / "none", fingerprint={})


def test_nan_validation_outputs_in_training_name_the_epoch_and_the_training_fix(tmp_path):
    """Finite training, NaN validation (BatchNorm running variances frozen at -1): the run stops
    with the training's advice, not "load another checkpoint"."""
    from wavevision.engine import train

    model = wavevision.create_model("wavemix_lite_8_10", depth=1, in_chans=1, final_dim=8, ff_channel=8)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.0
            m.running_var.fill_(-1.0)
    with pytest.raises(ValueError, match=r"^validation in epoch 1: the model's outputs are NaN or infinite for \d+ of "
                                         r"\d+ images of dataset 'digits'; the training diverged: lower --lr"):
        train(model=model, dataset="digits", epochs=2, max_train_batches=2, output=str(tmp_path / "run"),
              threads=1, progress=False, plots=False, dataset_args={"image_size": 28})
