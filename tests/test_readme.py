"""Every ```python block of the README and of docs/*.md runs as pasted, the way doctest would.

Each block runs on its own, in a fresh namespace, in an empty folder (what it writes, such as
``runs/``, lands there), so a block that uses a name it never imports or a file it never makes
fails here. Blocks that need an optional package skip without it (never under ``CI=true``);
the few that train or compile for long are marked ``slow`` (``-m "not slow"`` leaves them out).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from _deadline import finishes
from _optional import require

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]

# What a block needs beyond the core install, found by a string it contains.
NEEDS = {
    "import timm": ("timm",),
    "mask_rcnn_": ("torchvision",),
    "export_onnx": ("onnx", "onnxscript", "onnxruntime"),
    "sklearn": ("sklearn",),
    'build_dataset("digits"': ("sklearn",),
    'build_dataset("photos"': ("skimage",),
    'wavelet="db2"': ("pywt",),
}
# Blocks that take more than a few seconds on a 2-core CPU (why, in the test id's mark).
SLOW = {
    'train(dataset="digits", epochs=5': "trains 5 epochs",
    "compile_model(": "a cold torch.compile takes 20-120 s on a CPU",
    "mask_rcnn_wave_vit_s_fpn_1x": "a Mask R-CNN step at 800x1066",
    "benchmark([": "memory is measured in fresh processes",
}


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of every fenced ```python block in ``path``."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    start = None
    for i, line in enumerate(lines, 1):
        if start is None and re.match(r"^```python\s*$", line):
            start = i
        elif start is not None and line.startswith("```"):
            blocks.append((start, "\n".join(lines[start:i - 1]) + "\n"))
            start = None
    return blocks


def _cases():
    for path in DOCS:
        for line, code in python_blocks(path):
            marks = [pytest.mark.slow] if any(key in code for key in SLOW) else []
            yield pytest.param(code, id=f"{path.relative_to(ROOT)}:{line}", marks=marks)


def test_the_readme_and_docs_have_python_blocks():
    assert len(python_blocks(ROOT / "README.md")) >= 1
    assert sum(len(python_blocks(p)) for p in DOCS) >= 15


@pytest.mark.parametrize("code", list(_cases()))
def test_block_runs_as_pasted(code, tmp_path, monkeypatch):
    for key, modules in NEEDS.items():
        if key in code:
            for module in modules:
                require(module)
    if "compile_model(" in code:
        from wavevision.export import find_cxx_compiler

        if find_cxx_compiler() is None:
            pytest.skip("Inductor needs a C++ compiler")
    monkeypatch.chdir(tmp_path)
    environ = dict(os.environ)
    try:
        finishes(lambda: exec(compile(code, "<README block>", "exec"), {"__name__": "__main__"}),
                 seconds=600, what="the block")
    finally:
        os.environ.clear()
        os.environ.update(environ)
