"""Datasets for training and evaluating wavevision models.

``build_dataset(name, split, root=..., download=..., augment=..., **options)`` returns
``(dataset, info)`` for embedded real datasets (``digits``, ``digit-scenes``, ``photos``),
local standard formats (ImageFolder trees, CIFAR, MNIST-family IDX, Galaxy10 DECals HDF5,
Cityscapes, ADE20K, super-resolution folders) and a path whose format is detected.
"""
from __future__ import annotations

from ._base import DatasetInfo
from ._build import build_dataset, list_datasets
from .detect import detect_format
from .downloads import DownloadError, cache_dir, download, extract_archive, fetch_dataset
from .image import (
    DataFileError,
    MissingDataFile,
    bicubic_downsample,
    bicubic_upsample,
    convert_channels,
    load_image,
    prepare_image,
)

__all__ = [
    "DataFileError",
    "DatasetInfo",
    "DownloadError",
    "MissingDataFile",
    "bicubic_downsample",
    "bicubic_upsample",
    "build_dataset",
    "cache_dir",
    "convert_channels",
    "detect_format",
    "download",
    "extract_archive",
    "fetch_dataset",
    "list_datasets",
    "load_image",
    "prepare_image",
]
