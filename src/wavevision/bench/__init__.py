"""Measuring models: parameters, MACs, latency, throughput, peak memory, receptive fields.

``benchmark(models, ...)`` returns one :class:`BenchResult` per model; ``format_results`` and
``write_results`` turn them into a table, JSON/CSV records and a PNG scatter. ``run_suite``
measures a named suite (wavevision models beside timm baselines) and ``write_suite`` reports it.
"""
from __future__ import annotations

from .complexity import count_macs, count_parameters
from .memory import MemoryResult, MemorySpec, accelerator_peak_memory, cpu_peak_memory
from .report import format_results, plot_results, write_results
from .runner import BenchResult, ModelSpec, benchmark, default_input_shape, resolve_model
from .suites import SUITES, format_suite, run_suite, write_suite

__all__ = [
    "BenchResult",
    "MemoryResult",
    "MemorySpec",
    "ModelSpec",
    "SUITES",
    "accelerator_peak_memory",
    "benchmark",
    "count_macs",
    "count_parameters",
    "cpu_peak_memory",
    "default_input_shape",
    "format_results",
    "format_suite",
    "plot_results",
    "resolve_model",
    "run_suite",
    "write_results",
    "write_suite",
]
