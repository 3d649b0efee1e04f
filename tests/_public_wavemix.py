"""Import helper for the public ``wavemix`` 0.2.4 package used as the parity reference.

wavemix 0.2.4 imports ``numpy.lib.function_base`` (gone in NumPy 2) for an unused name;
registering a stub module first lets it import under any NumPy. Under CI (``CI=true``) a
missing package is an error, so parity tests can never be skipped silently there (except in
CI's core-only environment, see ``_optional.core_only``).
"""
from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest

from _optional import core_only, in_ci


def import_public_wavemix():
    """Return the modules (wavemix, classification, SemSegment, sisr) or skip/fail."""
    if "numpy.lib.function_base" not in sys.modules:
        try:
            importlib.import_module("numpy.lib.function_base")
        except ImportError:
            stub = types.ModuleType("numpy.lib.function_base")
            stub.hamming = np.hamming
            sys.modules["numpy.lib.function_base"] = stub
    try:
        pkg = importlib.import_module("wavemix")
        cls = importlib.import_module("wavemix.classification")
        seg = importlib.import_module("wavemix.SemSegment")
        sr = importlib.import_module("wavemix.sisr")
    except ImportError as e:
        if in_ci() and not core_only():
            raise RuntimeError(
                "parity tests need the public package under CI: pip install --no-deps wavemix==0.2.4 pywavelets einops"
            ) from e
        pytest.skip(f"public wavemix package not importable ({e}); pip install --no-deps wavemix==0.2.4 pywavelets einops")
    return pkg, cls, seg, sr
