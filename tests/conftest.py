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
