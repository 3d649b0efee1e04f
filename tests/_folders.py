"""Generated image folders shared by the data tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def class_tree(root: Path, *, height: int, width: int, per_class: int) -> Path:
    """An ImageNet-style ``train/`` and ``val/`` tree of two classes (``n01``, ``n02``) of seeded
    random RGB PNGs of ``height`` x ``width``; returns ``root``."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.png")
    return root
