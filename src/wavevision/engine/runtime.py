"""Process-wide settings a training run changes (threads, determinism, seeds) and its stop flag."""
from __future__ import annotations

import os
import random
import signal
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .config import TrainConfig
from .evaluate import autocast

__all__ = ["Globals", "StopFlag", "apply_runtime", "seed_all"]

@dataclass
class Globals:
    """Process-wide torch settings a run changes, put back when it ends."""

    threads: int
    deterministic: bool
    cudnn_benchmark: bool

    @classmethod
    def capture(cls) -> Globals:
        return cls(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                   torch.backends.cudnn.benchmark)

    def restore(self) -> None:
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.deterministic)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark


def apply_runtime(cfg: TrainConfig, device: torch.device) -> None:
    """Threads, deterministic algorithms, and an early check that ``amp`` suits ``device``."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    if cfg.amp != "none":
        autocast(device, cfg.amp)  # fails early on fp16 without an accelerator


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step (a second Ctrl-C stops at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
