"""Run directories and resumable training state.

A run directory holds:

* ``config.yaml``: the resolved configuration (``wavevision train -c config.yaml`` reruns it);
* ``best.safetensors`` + ``best.json``: the weights that scored best on the validation split,
  with the model name, its hyperparameters, the epoch and the metric
  (``wavevision.create_model(checkpoint="best.safetensors")`` rebuilds the model);
* ``last.safetensors`` + ``last.json``: the latest weights;
* ``last.state.pt``: everything a resume needs: weights, optimizer, scheduler, loss scaler,
  the random generators of every process, the position in the epoch and the history. It is
  one file written atomically, so it is always consistent even when the process is killed
  while saving;
* ``log.jsonl`` (one line per epoch), ``results.json``, ``curves.png``.

Every file is written through a temporary file and a rename (``wavevision.utils``), so it
gets the permissions the umask gives a new file. :class:`~wavevision.engine.RunDir` owns the
folder (locking, overwrite, resume); :class:`~wavevision.engine.TrainState` the state file.
"""
from __future__ import annotations

import io
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..utils.io import atomic_write_bytes, read_bytes

__all__ = [
    "RUN_FILES",
    "capture_rng",
    "check_rng",
    "load_state",
    "parse_state",
    "restore_rng",
    "save_state",
]

STATE_FILE = "last.state.pt"
STATE_VERSION = 2  # 2: the state holds the run's fingerprint (version 1 files are still read)
_READABLE_VERSIONS = (1, 2)
# Everything a run writes: --overwrite replaces these (and only these) in the directory.
RUN_FILES = (
    "config.yaml", "best.safetensors", "best.json", "last.safetensors", "last.json", STATE_FILE,
    "log.jsonl", "results.json", "curves.png",
)


def capture_rng() -> dict[str, Any]:
    """The state of torch's, NumPy's and Python's generators (and the accelerator's), as tensors and ints."""
    np_state = cast(tuple, np.random.get_state(legacy=True))  # the legacy tuple (name, keys, pos, ...)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *[float(v) for v in np_state[2:]]],
        "python": _python_state_to_list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["accelerator"] = torch.cuda.get_rng_state_all()
    return state


def _python_state_to_list(state: Any) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


_MT_WORDS = 624  # the Mersenne Twister state of NumPy's and Python's generators (Python adds the position)


def check_rng(states: Any, path: Path | str) -> None:
    """Raise a ValueError naming ``path`` and the entry unless ``states`` is a list of what
    :func:`capture_rng` returns, each of the sizes this torch, NumPy and Python use (checked
    before :func:`restore_rng` hands them to generators that fail with a traceback)."""
    fix = "the file is damaged or from another torch: put back this run's own state or start a new run with --overwrite"
    if not isinstance(states, list) or not states:
        raise ValueError(f"{path}: 'rng' must be a list of generator states, one per process; {fix}")
    want = torch.get_rng_state().numel()
    for i, state in enumerate(states):
        where = f"{path}: rng[{i}]"
        if not isinstance(state, Mapping) or not {"torch", "numpy", "python"} <= set(state):
            raise ValueError(f"{where} must hold the torch, numpy and python generators; {fix}")
        t = state["torch"]
        if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.numel() != want:
            got = f"{t.numel()} bytes of {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{where}.torch must be {want} bytes (uint8), got {got}; {fix}")
        np_state = state["numpy"]
        if (not isinstance(np_state, (list, tuple)) or len(np_state) != 5 or not isinstance(np_state[1], torch.Tensor)
                or np_state[1].numel() != _MT_WORDS or not isinstance(np_state[2], (int, float))
                or not 0 <= np_state[2] <= _MT_WORDS):
            raise ValueError(f"{where}.numpy must be NumPy's Mersenne Twister state ({_MT_WORDS} words and a position); {fix}")
        py = state["python"]
        if (not isinstance(py, (list, tuple)) or len(py) != 3 or not isinstance(py[1], (list, tuple))
                or len(py[1]) != _MT_WORDS + 1 or not all(isinstance(v, int) and 0 <= v < 2**32 for v in py[1])):
            raise ValueError(f"{where}.python must be Python's Mersenne Twister state ({_MT_WORDS + 1} integers); {fix}")


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back what :func:`capture_rng` saved."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "accelerator" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["accelerator"])


def save_state(run_dir: Path, state: Mapping[str, Any]) -> Path:
    """Write the resumable state atomically (``torch.save`` of tensors and plain values)."""
    buf = io.BytesIO()
    torch.save({"version": STATE_VERSION, **state}, buf)
    return atomic_write_bytes(Path(run_dir) / STATE_FILE, buf.getvalue())


def parse_state(data: bytes, path: Path | str) -> dict[str, Any]:
    """The training state in ``data`` (the bytes of ``path``), or a ValueError naming the file."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ValueError(f"cannot read the training state {path} ({type(e).__name__}: {e}); "
                         "start a new run with --overwrite") from None
    if not isinstance(state, dict) or state.get("version") not in _READABLE_VERSIONS:
        raise ValueError(f"{path} is not a wavevision training state of version {STATE_VERSION}")
    return state


def load_state(run_dir: Path, *, max_bytes: int = 1 << 40) -> dict[str, Any] | None:
    """The saved state of ``run_dir`` (``None`` when the run saved none yet).

    A state file that is not a regular file (a FIFO, a device) or larger than ``max_bytes``
    raises a ValueError instead of being read.
    """
    path = Path(run_dir) / STATE_FILE
    if not path.exists() and not path.is_symlink():
        return None
    return parse_state(read_bytes(path, max_bytes=max_bytes, what="training state"), path)
