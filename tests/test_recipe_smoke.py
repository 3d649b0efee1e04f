"""benchmarks/recipe_smoke.py end to end at tiny sizes: the three recipes' generated data train one step and the JSON holds the figures."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from _optional import require

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "recipe_smoke.py"


@pytest.mark.slow
def test_recipe_smoke_tiny_writes_the_json(tmp_path, capsys):
    require("torchvision")
    require("pycocotools")
    spec = importlib.util.spec_from_file_location("recipe_smoke", SCRIPT)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    out = tmp_path / "smoke.json"
    assert smoke.main(["--tiny", "--steps", "1", "--device", "cpu", "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["tiny"] is True and report["device"] == "cpu" and report["steps"] == 1
    assert [r["recipe"] for r in report["recipes"]] == list(smoke.RECIPES)
    for r in report["recipes"]:
        assert r["steps"] == 1 and r["steps_per_second"] > 0 and r["peak_memory_bytes"] > 0
        assert r["projected_hours"] == r["full_steps"] / r["steps_per_second"] / 3600
        assert r["amp"] == "none"  # the recipes' fp16 needs an accelerator
    full = {r["recipe"]: r["full_steps"] for r in report["recipes"]}
    # at --tiny's 2 images a step: 310 epochs x 1,252 optimizer steps of 1,024 images; 12 epochs of 117,266
    # images; 160,000 iterations of 16 images
    assert {r["batch_per_step"] for r in report["recipes"]} == {2}
    assert full == {"wave_vit_s_in1k_tl": 310 * math.ceil(1_281_167 / 1024) * 512,
                    "mask_rcnn_wave_vit_s_coco_1x": 12 * math.ceil(117_266 / 2),
                    "upernet_wave_vit_s_ade20k_160k": 160_000 * 8}
    assert "projected hours" in capsys.readouterr().out
