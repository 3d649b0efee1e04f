"""Normalisation statistics of the datasets the models were published on: one place for each
number, which datasets, model records and recipes import.

Each is a per-channel ``(R, G, B)`` tuple of pixel values in [0, 1].
"""
from __future__ import annotations

__all__ = [
    "CIFAR100_MEAN", "CIFAR100_STD", "CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_GRAY_MEAN", "IMAGENET_GRAY_STD",
    "IMAGENET_MEAN", "IMAGENET_STD",
]

# ImageNet-1k's training images: the statistics torchvision, timm and MMSegmentation normalise with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The same for one-channel images: the mean over the three channels.
IMAGENET_GRAY_MEAN = (0.449,)
IMAGENET_GRAY_STD = (0.226,)
# The official CIFAR training images (well-known values).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
