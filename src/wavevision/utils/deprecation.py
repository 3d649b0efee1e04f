"""Old names kept working for a while: each warns once per process, naming the new one."""
from __future__ import annotations

import warnings

__all__ = ["warn_deprecated"]

_WARNED: set[str] = set()


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (a ``FutureWarning``, shown by default) the first time ``old`` is used, saying to use ``new``.

    ``stacklevel=3`` points at the caller of the function that calls this.
    """
    if old in _WARNED:
        return
    _WARNED.add(old)
    warnings.warn(f"{old} is deprecated and will be removed; use {new}", FutureWarning, stacklevel=stacklevel)
