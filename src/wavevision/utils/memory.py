"""Refusing work that cannot fit in memory before it starts, with the estimate in the message.

An allocation far beyond the machine's memory ends in an allocator traceback at best and in
the kernel's OOM killer (no message at all) at worst. Callers that can tell the size of what
they are about to allocate (a resized dataset, a model's weights, a padded feature map) ask
:func:`check_memory` first.
"""
from __future__ import annotations

import os

__all__ = ["available_memory", "check_memory", "format_bytes"]


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it at or above 1 (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def available_memory() -> int | None:
    """Bytes this process may still allocate: ``MemAvailable`` (Linux), capped by a cgroup limit.

    None where the platform does not say.
    """
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    limit = _cgroup_limit()
    if limit is not None:
        avail = limit if avail is None else min(avail, limit)
    return avail


def check_memory(need: float, what: str, fix: str, *, available: int | None = None) -> None:
    """Raise a MemoryError if ``need`` bytes exceed the memory available.

    Args:
        need: the estimated bytes.
        what: what would need them, e.g. ``"resizing 60,000 images to 4096x4096"``.
        fix: how to need less, e.g. ``"use a smaller --dataset-arg image_size"``.
        available: bytes available (default: :func:`available_memory`; nothing is checked if unknown).
    """
    avail = available_memory() if available is None else available
    if avail is not None and need > avail:
        raise MemoryError(f"{what} would need about {format_bytes(need)}, more than the {format_bytes(avail)} "
                          f"of memory available; {fix}")
