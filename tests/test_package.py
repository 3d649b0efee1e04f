"""Package hygiene: quiet import, no module-level tensors, registry rules, the README example."""
from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wavevision
from wavevision.models._registry import register_model

ROOT = Path(__file__).resolve().parents[1]


def test_import_prints_nothing_and_pulls_no_optional_packages():
    code = (
        "import sys, wavevision, wavevision.ops, wavevision.models;"
        "bad = [m for m in ('pywt', 'safetensors', 'einops', 'torchvision', 'timm', 'wavemix') if m in sys.modules];"
        "assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


def test_no_module_level_tensors():
    for info in pkgutil.walk_packages(wavevision.__path__, "wavevision."):
        if info.name.startswith("wavevision.integrations."):
            continue  # bridges import their library (timm), which the core does not have
        module = importlib.import_module(info.name)
        tensors = [k for k, v in vars(module).items() if isinstance(v, torch.Tensor)]
        assert not tensors, f"{info.name} holds module-level tensors {tensors}"


def test_no_cuda_literals_outside_device_selection():
    for path in (ROOT / "src" / "wavevision").rglob("*.py"):
        if path.relative_to(ROOT / "src" / "wavevision").as_posix() == "utils/device.py":
            continue  # the one place that selects devices
        assert not re.search(r"""["']cuda(:\d)?["']""", path.read_text()), path


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        @register_model
        def wavemix(**kwargs):  # noqa: F811 - the point of the test
            raise AssertionError


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = text.split("## Example", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README example", "exec"), namespace)
    assert namespace["logits"].shape == (4, 10)
    assert namespace["features"].shape == (2, 64, 17, 16)
    assert (tmp_path / "runs" / "custom.json").exists()


def test_register_timm_without_timm_says_how_to_get_it():
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="register_timm needs timm.*pip install timm"):
            wavevision.register_timm()
    else:
        assert wavevision.register_timm() is not None  # registers (or finds registered) every model
        assert set(wavevision.list_models()) <= set(timm.list_models())
