"""The ``wavevision`` command line: a thin layer over the library.

Each subcommand is one module of this package (``wavevision/cli/<command>.py``, found by
name, modules starting with ``_`` excluded) defining:

* ``HELP``: a one-line description;
* ``add_arguments(parser)``: its flags (optional packages such as onnx or timm are imported in ``run``);
* ``run(args) -> int | None``: the work, calling the library; ``None`` means exit code 0;
* optionally ``NAME`` when the command differs from the module name (``list`` lives in
  ``list_models.py``).

Errors a user can fix (bad values, missing files, a missing optional package) end as one
line ``wavevision CMD: error: ...`` and exit code 2, with no traceback; set
``WAVEVISION_TRACEBACK=1`` (or pass ``--traceback``) to see it anyway.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__

__all__ = ["CLIError", "build_parser", "main"]

# Exceptions whose message is the whole story for a user (the library raises these with the fix).
# MemoryError: a size refused before allocation, with the estimate (wavevision.utils.memory.check_memory).
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError, KeyError, MemoryError)


class CLIError(Exception):
    """A problem with the command line or its inputs, reported as one line without a traceback."""


_REPORTED: tuple[type[BaseException], ...] = (CLIError, *_USER_ERRORS)


def _commands() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[getattr(module, "NAME", info.name)] = module
    return found


def _one_line(message: str) -> str:
    """The error itself, without the worker traceback torch's DataLoader wraps around an error
    raised in a worker process ("Caught X in DataLoader worker process N. Original Traceback ...":
    its last line is ``X: message``)."""
    if "in DataLoader worker process" not in message or "Original Traceback" not in message:
        return message
    last = [line for line in message.splitlines() if line.strip()][-1].strip()
    kind, sep, text = last.partition(": ")
    return text if sep and kind.replace(".", "").replace("_", "").isalnum() else last


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands)."""
    parser = argparse.ArgumentParser(
        prog="wavevision",
        description="Resource-efficient wavelet vision networks: train, evaluate, benchmark and export.",
    )
    parser.add_argument("--version", action="version", version=f"wavevision {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _commands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    show_tb = args.traceback or os.environ.get("WAVEVISION_TRACEBACK", "") not in ("", "0")
    try:
        code = args._run(args)
    except BrokenPipeError:  # e.g. `wavevision list | head`: the reader left, which is no error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 0
    except KeyboardInterrupt:
        print(f"wavevision {args.command}: interrupted", file=sys.stderr)
        return 130
    except _REPORTED as e:
        if show_tb:
            raise
        message = _one_line(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))
        if isinstance(e, KeyError) and message.replace("_", "").replace(".", "").isalnum():  # a bare key: say what it is
            message = f"missing key {message!r} in an input read by this command; rerun with --traceback to see where"
        print(f"wavevision {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)
