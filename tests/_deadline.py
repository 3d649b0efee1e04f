"""Running code that a regression could make hang, with a deadline, so the suite fails instead."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest


def finishes(fn: Callable[[], Any], seconds: float = 30.0, what: str = "the call") -> Any:
    """``fn()`` in a daemon thread; fail when it has not returned after ``seconds`` (for calls that
    would block, not spin: a thread cannot be stopped). Its exception is raised here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (handed to the caller)
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} was still running after {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def in_subprocess(code: str, seconds: float = 60.0, what: str = "the code") -> subprocess.CompletedProcess:
    """``python -c code`` with this test run's import path; fail when it runs past ``seconds``
    (for work that would spin or fill memory on a regression)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not finish within {seconds:.0f} s")
