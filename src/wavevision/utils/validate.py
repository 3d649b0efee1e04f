"""One place for argument checks: integers with bounds, finite floats, choices and paths.

Every check raises a ValueError whose message names the setting, the value it got and what
would be accepted, so a user can fix the call or the flag without reading a traceback.
NaN and infinity are never valid floats: a comparison with NaN is always false, so a bound
check alone would let it through.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

__all__ = ["PathLike", "check_bool", "check_choice", "check_float", "check_int", "check_nested", "check_per_stage",
           "short_repr"]

PathLike = Union[str, "os.PathLike[str]"]

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 8, 8, 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters (long lists, strings and deep nesting
    elided with ``...``), for error messages about values read from files."""
    return _SHORT.repr(value)


def _bounds(name: str, value: float, *, min: float | None, max: float | None, gt: float | None,
            lt: float | None) -> None:
    for bound, bad, word in ((min, min is not None and value < min, ">="), (gt, gt is not None and value <= gt, ">"),
                             (max, max is not None and value > max, "<="), (lt, lt is not None and value >= lt, "<")):
        if bad:
            raise ValueError(f"{name} must be {word} {bound}, got {value!r}")


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` as an int within ``[min, max]``; bools, floats and strings are refused.

    An integral float (``3.0``) is accepted as ``3``.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    _bounds(name, value, min=min, max=max, gt=None, lt=None)
    return value


def check_float(name: str, value: Any, *, min: float | None = None, max: float | None = None,
                gt: float | None = None, lt: float | None = None) -> float:
    """``value`` as a finite float within the bounds (``min``/``max`` inclusive, ``gt``/``lt`` strict)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    _bounds(name, value, min=min, max=max, gt=gt, lt=lt)
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], *, hint: str = "") -> Any:
    """``value`` if it is one of ``choices``; otherwise a ValueError listing them (and the closest).

    ``hint`` is appended to the message, for what is accepted besides the choices
    (``" (or a path to a dataset folder or file)"``).
    """
    options = list(choices)
    if value in options:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in options], n=1)
    maybe = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{name}: {value!r} is not a valid choice{maybe}; choose one of {', '.join(map(str, options))}{hint}")


def check_per_stage(name: str, value: Any, stages: int) -> tuple[Any, ...]:
    """``value`` as a tuple if it is a sequence (not a string) of exactly ``stages`` entries, one
    per stage of a model; the entries themselves are the caller's to check."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != stages:
        raise ValueError(f"{name} must list one value per stage ({stages}), got {value!r}")
    return tuple(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool; also ``"true"/"false"/"yes"/"no"/"on"/"off"/"1"/"0"`` strings."""
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
        return value.lower() in ("true", "yes", "1", "on")
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_nested(name: str, value: Any, *, max_depth: int = 16, _depth: int = 0) -> None:
    """Refuse NaN and infinity anywhere in ``value`` (lists, tuples and mappings searched), and
    nesting deeper than ``max_depth``; errors name the entry as ``name.key``.

    For values read from files (JSON allows ``NaN``, YAML ``.inf``) before they reach code.
    """
    if _depth > max_depth:
        raise ValueError(f"{name} is nested more than {max_depth} levels deep; give plain values or lists")
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        check_float(name, value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_nested(name, item, max_depth=max_depth, _depth=_depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_nested(f"{name}.{key}", item, max_depth=max_depth, _depth=_depth + 1)
