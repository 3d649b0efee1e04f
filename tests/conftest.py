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
