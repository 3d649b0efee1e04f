"""Optional test dependencies (the vision stack: torchvision, timm, pycocotools).

Where a package is absent the tests that need it are skipped, except under ``CI=true``: CI
installs the vision stack, so a missing or broken package there is a failure, never a skip.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

__all__ = ["in_ci", "require"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(module: str) -> ModuleType:
    """Import ``module`` for a test; skip without it (fail under CI=true)."""
    try:
        return importlib.import_module(module)
    except Exception as e:  # torchvision beside the wrong torch raises RuntimeError, not ImportError
        reason = f"{module} is not usable here ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); " \
                 "install the vision stack: pip install -e '.[vision]'"
        if in_ci():
            pytest.fail(f"under CI the vision stack must be installed: {reason}")
        pytest.skip(reason)
