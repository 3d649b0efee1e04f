"""The core install: ``import wavevision`` and the core paths need none of the optional packages.

CI proves it twice: these tests run in the vision environment and in a core-only one
(``WAVEVISION_TEST_STACK=core``: torch, ``.[data,plot]`` and pytest), where the whole suite
runs with the tests that need optional packages skipped.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _optional import core_only, in_ci

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
# Never imported by the core: the vision stack, the hub client, and the extras' heavy packages.
OPTIONAL = ("timm", "torchvision", "huggingface_hub", "pycocotools", "matplotlib", "onnx", "onnxruntime", "onnxscript",
            "pywt", "einops", "wavemix")
VISION_STACK = ("timm", "torchvision", "pycocotools")


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_importing_every_module_and_the_cli_pulls_in_no_optional_package():
    # wavevision.integrations.<library> are the opt-in bridges (importing one is asking for that
    # library); their package itself imports nothing.
    code = (
        "import importlib, pkgutil, sys, json, wavevision, wavevision.cli\n"
        "names = [i.name for i in pkgutil.walk_packages(wavevision.__path__, 'wavevision.')\n"
        "         if not i.name.startswith('wavevision.integrations.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "wavevision.cli.build_parser()\n"
        "wavevision.list_pretrained(); wavevision.create_model('wavemix_lite_144_7.cifar10')  # no download: no hub\n"
        f"bad = sorted(m for m in {OPTIONAL!r} if m in sys.modules)\n"
        "print(json.dumps({'modules': len(names), 'bad': bad}))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["modules"] > 40 and result["bad"] == []


def test_ci_environments_are_what_they_claim():
    """Under CI the core-only environment lacks the optional packages and the vision one has them."""
    if not in_ci():
        pytest.skip("describes CI's two environments (CI=true)")
    found = {m: importlib.util.find_spec(m) is not None for m in OPTIONAL if m != "matplotlib"}  # .[plot] has it
    if core_only():
        assert not any(found.values()), found
    else:
        assert all(found[m] for m in VISION_STACK), found


@pytest.mark.slow
def test_bench_without_timm_skips_its_models_and_measures_ours(tmp_path):
    """timm made unimportable in a fresh process: the suite's timm rows are skipped with the fix,
    ours are measured, and the command succeeds."""
    code = (
        "import sys; sys.modules['timm'] = None\n"
        "from wavevision.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = _python(code, "bench", "--suite", "cifar", "--only", "wavemix_lite_32_7", "--only", "resnet10t",
                  "--input-size", "16", "--batch-size", "2", "--repeats", "1", "--warmup", "0", "--no-memory",
                  "--no-plot", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = {r["label"]: r for r in json.loads((tmp_path / "suite-cifar.json").read_text())["results"]}
    assert rows["WaveMix-Lite-32/7"]["status"] == "ok" and rows["WaveMix-Lite-32/7"]["params"] == 37_058
    assert rows["ResNet-10-T"]["status"] == "skipped" and "pip install timm" in rows["ResNet-10-T"]["note"]
    assert "timm not importable" in out.stdout


def test_ci_runs_the_readme_commands():
    """.ci/run installs and runs what the README tells users to (main command, tests, vision stack)."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    main_cmd = re.search(r"^pip install (torch==[\d.]+) && pip install -e \"(\.\[[a-z,]+\])\" && (wavevision train)$",
                         readme, re.M)
    assert main_cmd, "the README's main command changed: update this test and .ci/run together"
    torch_pin, extras, train = main_cmd.groups()
    assert f"install -q {torch_pin}" in ci and f'-e "{extras}"' in ci and f"{train}\n" in ci
    assert "python -m pytest -q\n" in readme and "-m pytest -q" in ci
    vision = re.search(r"pip install (torch==[\d.]+ torchvision==[\d.]+)", readme)
    assert vision and f"install -q {vision.group(1)}" in ci and '-e ".[vision,test]"' in ci
