"""The shared argument checks: bounds, NaN/inf refused, choices, booleans."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wavevision.utils.validate import check_bool, check_choice, check_float, check_int


def test_check_int_accepts_integers_and_integral_floats():
    assert check_int("depth", 4, min=1) == 4
    assert check_int("depth", np.int64(3)) == 3
    assert check_int("depth", 2.0) == 2


@pytest.mark.parametrize("value", [True, 2.5, "3", None, float("nan")])
def test_check_int_refuses_non_integers(value):
    with pytest.raises(ValueError, match="depth must be an integer"):
        check_int("depth", value)


def test_check_int_bounds_name_the_setting():
    with pytest.raises(ValueError, match=r"--seed must be <= 4294967295, got 4294967296"):
        check_int("--seed", 2**32, min=0, max=2**32 - 1)
    with pytest.raises(ValueError, match=r"depth must be >= 1, got -1"):
        check_int("depth", -1, min=1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -math.inf, np.float32("nan")])
def test_check_float_refuses_nan_and_infinity(value):
    with pytest.raises(ValueError, match="--lr must be a finite number"):
        check_float("--lr", value, gt=0.0)


def test_check_float_bounds():
    assert check_float("lr", 1) == 1.0
    with pytest.raises(ValueError, match=r"lr must be > 0.0, got 0.0"):
        check_float("lr", 0.0, gt=0.0)
    with pytest.raises(ValueError, match=r"smoothing must be < 1.0, got 1.0"):
        check_float("smoothing", 1.0, min=0.0, lt=1.0)
    with pytest.raises(ValueError, match="must be a number"):
        check_float("lr", "fast")


def test_check_choice_and_bool():
    assert check_choice("amp", "bf16", ("none", "bf16")) == "bf16"
    with pytest.raises(ValueError, match=r"did you mean 'bf16'\?.*none, bf16"):
        check_choice("amp", "bf61", ("none", "bf16"))
    with pytest.raises(ValueError, match=r"^split: 'tset' is not a valid choice \(did you mean 'test'\?\); "
                                         r"choose one of train, val, test \(or a path\)$"):
        check_choice("split", "tset", ("train", "val", "test"), hint=" (or a path)")
    assert check_bool("augment", "off") is False
    with pytest.raises(ValueError, match="augment must be true or false"):
        check_bool("augment", 2)
