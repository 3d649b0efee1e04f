"""Plain-text tables for command-line summaries."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["SI", "format_table"]

_PREFIXES = ("", "K", "M", "G", "T", "P", "E")


class SI(float):
    """A number shown in the largest SI unit that keeps it at least 1 (``SI(296_107_760_640)``
    prints ``296.11 G``, ``SI(73_845_312)`` ``73.85 M``); a table right-aligns it like any number."""

    def __str__(self) -> str:
        value, k = float(self), 0
        while abs(value) >= 1000 and k < len(_PREFIXES) - 1:
            value, k = value / 1000, k + 1
        return f"{value:.2f} {_PREFIXES[k]}" if k else f"{value:g}"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, SI):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def format_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 headers: Mapping[str, str] | None = None) -> str:
    """A left/right aligned text table (numbers right-aligned, thousands separated).

    Args:
        rows: dict rows.
        columns: which keys, in order (default: keys of the first row).
        headers: display names for some keys.
    """
    rows = [dict(r) for r in rows]
    if columns is None:
        columns = list(rows[0]) if rows else []
    headers = dict(headers or {})
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    titles = [headers.get(c, c) for c in columns]
    widths = [max([len(t)] + [len(row[i]) for row in cells]) for i, t in enumerate(titles)]
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) and rows for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(titles), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)
