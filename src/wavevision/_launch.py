"""What the ``wavevision`` command sets before torch loads (this module must not import torch).

OpenMP's default wait policy lets idle threads spin for a while before they sleep. On a
machine shared with other busy processes a spinning thread steals the core another thread
needs, and every parallel region waits for a descheduled thread: a 15 s training took 163 s
at a load of 2 to 6 on a 2-core machine, and about half that with ``OMP_WAIT_POLICY=PASSIVE``.
The policy is read once, when the OpenMP runtime loads with torch, so the command sets it here,
at the top of ``import wavevision``, and only when this process is the ``wavevision`` command
(the console script or ``python -m wavevision``, also under torchrun) and the user set none.
A library user's ``import wavevision`` changes nothing.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["is_command", "prefer_passive_openmp"]

_SCRIPT_NAMES = ("wavevision", "wavevision.exe", "wavevision-script.py")
_MODULE_NAMES = ("wavevision", "wavevision.__main__")


def is_command(argv: Sequence[str], orig_argv: Sequence[str]) -> bool:
    """Whether the interpreter runs the ``wavevision`` console script or ``python -m wavevision``."""
    if argv and os.path.basename(argv[0]).lower() in _SCRIPT_NAMES:
        return True
    args = list(orig_argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "-m":
            return bool(args) and args[0] in _MODULE_NAMES
        if arg.startswith("-m") and not arg.startswith("--"):
            return arg[2:] in _MODULE_NAMES
        if arg in ("-X", "-W") and args:
            args.pop(0)  # the option's value
        elif arg == "-c" or arg == "-" or not arg.startswith("-"):
            return False  # -c code or a script: what follows are its own arguments
    return False


def prefer_passive_openmp() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for the ``wavevision`` command unless the user set a policy.

    Returns whether it set it.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    if not is_command(getattr(sys, "argv", None) or [], getattr(sys, "orig_argv", None) or []):
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
