"""Optional test dependencies (the vision stack: torchvision, timm, pycocotools).

Where a package is absent the tests that need it are skipped, except under ``CI=true``: CI
installs the vision stack, so a missing or broken package there is a failure, never a skip.
The one exception is CI's core-only environment (``WAVEVISION_TEST_STACK=core``), which
proves the package and its tests work without the optional packages: there they skip.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

__all__ = ["core_only", "in_ci", "require"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def core_only() -> bool:
    """Whether this is the environment without the optional packages (CI's core-only run)."""
    return os.environ.get("WAVEVISION_TEST_STACK", "").lower() == "core"


# The extra that installs a module, where it is not the vision stack.
_EXTRA = {"pywt": "wavelets", "sklearn": "data", "skimage": "data", "matplotlib": "plot", "mkdocs": "docs",
          "onnx": "onnx", "onnxscript": "onnx", "onnxruntime": "onnx", "huggingface_hub": "hub"}


def require(module: str) -> ModuleType:
    """Import ``module`` for a test; skip without it (fail under CI=true)."""
    try:
        return importlib.import_module(module)
    except Exception as e:  # torchvision beside the wrong torch raises RuntimeError, not ImportError
        reason = f"{module} is not usable here ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); " \
                 f"install it: pip install -e '.[{_EXTRA.get(module.split('.')[0], 'vision')}]'"
        if in_ci() and not core_only():
            pytest.fail(f"under CI the vision stack must be installed: {reason}")
        pytest.skip(reason)
