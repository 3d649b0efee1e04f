"""Each fact is stated once: the package defines these names in one module only, and no other
module restates the values (a second copy drifts: TASKS once did, so a registered task was
refused by the datasets)."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import wavevision

ROOT = Path(wavevision.__file__).parent

# name -> the one module (relative to the package) that defines it
ONE_PLACE = {
    "PathLike": "utils/validate.py",
    "check_choice": "utils/validate.py",
    "IMAGENET_MEAN": "data/constants.py",
    "IMAGENET_STD": "data/constants.py",
    "CIFAR10_MEAN": "data/constants.py",
    "CIFAR10_STD": "data/constants.py",
    "SPLITS": "data/_base.py",
    "rgb_to_y": "ops/color.py",
    "load_backbone_checkpoint": "models/_backbone.py",
}


@functools.cache
def _trees() -> tuple[tuple[str, ast.Module], ...]:
    return tuple((p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(), filename=str(p))) for p in sorted(ROOT.rglob("*.py")))


@functools.cache
def _definitions() -> dict[str, list[str]]:
    """Module-level assignments and function definitions, name -> modules."""
    found: dict[str, list[str]] = {}
    for where, tree in _trees():
        for node in tree.body:
            names: list[str] = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            for name in names:
                found.setdefault(name, []).append(where)
    return found


@pytest.mark.parametrize("name", sorted(ONE_PLACE))
def test_defined_in_one_module(name):
    assert _definitions().get(name) == [ONE_PLACE[name]]


@functools.cache
def _literal_tuples() -> dict[tuple, list[str]]:
    found: dict[tuple, list[str]] = {}
    for where, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List)) and node.elts and all(isinstance(e, ast.Constant) for e in node.elts):
                found.setdefault(tuple(e.value for e in node.elts), []).append(where)
    return found


@pytest.mark.parametrize("value, home", [
    ((0.485, 0.456, 0.406), "data/constants.py"),  # ImageNet's mean
    ((0.229, 0.224, 0.225), "data/constants.py"),
    ((0.4914, 0.4822, 0.4465), "data/constants.py"),  # CIFAR-10's
    (("train", "val", "test"), "data/_base.py"),
    (("classification", "segmentation", "super_resolution", "detection"), "utils/task_names.py"),
])
def test_values_are_not_restated(value, home):
    assert _literal_tuples().get(value) == [home]  # a tuple or list literal with exactly these items
