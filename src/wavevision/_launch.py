"""What the ``wavevision`` command sets before torch loads (this module must not import torch).

OpenMP's default wait policy lets idle threads spin for a while before they sleep. On a
machine shared with other busy processes a spinning thread steals the core another thread
needs, and every parallel region waits for a descheduled thread: a 15 s training took 163 s
at a load of 2 to 6 on a 2-core machine, and about half that with ``OMP_WAIT_POLICY=PASSIVE``.
The policy is read once, when the OpenMP runtime loads with torch, so the command sets it here,
at the top of ``import wavevision``, and only when this process is the ``wavevision`` command
(the console script or ``python -m wavevision``, also under torchrun) and the user set none.
A library user's ``import wavevision`` changes nothing; the engine's ``train``, ``evaluate`` and
``bench`` call :func:`warn_spin_waiting`, which says once how to fix it when the machine is busy.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

__all__ = ["SPIN_WAIT_FIX", "is_command", "prefer_passive_openmp", "spin_waiting_hurts", "warn_spin_waiting"]

SPIN_WAIT_FIX = ("set OMP_WAIT_POLICY=PASSIVE before torch is imported (in the shell, or "
                 "os.environ['OMP_WAIT_POLICY'] = 'PASSIVE' at the top of the script), or use fewer threads "
                 "(torch.set_num_threads(n), or threads=n)")
_warned = False

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


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def spin_waiting_hurts(threads: int) -> str | None:
    """Why OpenMP's default spin-waiting will slow this process down, or ``None`` when it will not.

    It hurts when no wait policy is set, this is not the ``wavevision`` command (which sets
    one), and ``threads`` exceeds the idle cores (CPUs minus the 1-minute load average) by at
    least one: a thread then spins on a core another process needs. Without a load average
    (not Unix) nothing is said.
    """
    if "OMP_WAIT_POLICY" in os.environ or threads < 2:
        return None
    if is_command(getattr(sys, "argv", None) or [], getattr(sys, "orig_argv", None) or []):
        return None
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cpus = _cpus()
    idle = max(0.0, cpus - load)
    if threads < idle + 1:
        return None
    return (f"{threads} torch threads on {cpus} CPU(s) at a load average of {load:.1f} ({idle:.1f} idle) "
            "with OpenMP's default spin-waiting: threads that wait spin on cores other processes need, "
            "which made training several times slower on a shared machine")


def warn_spin_waiting(threads: int) -> bool:
    """Warn once per process (``RuntimeWarning``) when :func:`spin_waiting_hurts`; returns whether it warned."""
    global _warned
    if _warned:
        return False
    why = spin_waiting_hurts(threads)
    if why is None:
        return False
    _warned = True
    warnings.warn(f"{why}; {SPIN_WAIT_FIX}", RuntimeWarning, stacklevel=3)
    return True
