"""Small helpers shared by the library and the command line (files, devices, tables)."""
from __future__ import annotations

from .device import available_devices, parse_dtype, resolve_device
from .io import append_jsonl, atomic_write_bytes, atomic_write_text, read_bytes, read_text, write_csv, write_json
from .table import SI, format_table

__all__ = [
    "SI",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_text",
    "available_devices",
    "format_table",
    "parse_dtype",
    "read_bytes",
    "read_text",
    "resolve_device",
    "write_csv",
    "write_json",
]
