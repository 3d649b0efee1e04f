"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def exact_fp32():
    """Full float32 convolutions and matmuls on CUDA (no TF32), for tight comparisons."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def pytest_addoption(parser):
    parser.addoption(
        "--regen-expected", action="store_true", default=False,
        help="rewrite tests/data/expected_outputs.json from the current code (on purpose only)",
    )


@pytest.fixture
def regen_expected(request) -> bool:
    return bool(request.config.getoption("--regen-expected"))


@pytest.fixture
def one_thread():
    """torch on one thread for the test (the CI machine has 2 cores shared by parallel work)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------------------------
# The fast subset (pytest -m "not slow"): its time, and the tests in it that belong in "slow"

FAST_TEST_SECONDS = 3.0  # a fast test takes under this on the 2-core CI machine (setup included)
_durations: dict[str, float] = {}


def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, config):
    """After ``-m "not slow"``: the subset's total and its tests over :data:`FAST_TEST_SECONDS`
    (candidates for ``pytest.mark.slow``; a hint, never a failure: tests do not assert timings)."""
    if "not slow" not in (config.getoption("markexpr") or "") or not _durations:
        return
    over = sorted(((t, n) for n, t in _durations.items() if t > FAST_TEST_SECONDS), reverse=True)
    terminalreporter.write_sep("-", f"fast subset: {len(_durations)} tests, {sum(_durations.values()):.0f} s in tests")
    for t, n in over[:20]:
        terminalreporter.write_line(f"{t:6.1f} s  {n}  (over {FAST_TEST_SECONDS:.0f} s: mark it slow?)")
    files: dict[str, float] = {}
    for n, t in _durations.items():
        files[n.split("::")[0]] = files.get(n.split("::")[0], 0.0) + t
    top = sorted(files.items(), key=lambda kv: -kv[1])[:8]
    terminalreporter.write_line("most time: " + ", ".join(f"{f} {t:.0f} s" for f, t in top))
