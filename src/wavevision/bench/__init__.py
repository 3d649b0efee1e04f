"""Measuring models: parameters and multiply-accumulates (more tools join here)."""
from .complexity import count_macs, count_parameters

__all__ = ["count_macs", "count_parameters"]
