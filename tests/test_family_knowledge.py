"""Generic code holds no model family's knowledge (issue 21): tasks own their output types, the builder
owns no family's checkpoint keys, detection asks a backbone what it provides, and the small test builds
come from the registry."""
from __future__ import annotations

import ast
from pathlib import Path

import wavevision
from wavevision import outputs

SRC = Path(wavevision.__file__).parent
FAMILY_MODULES = ("wavemix", "wave_vit", "wavemixsr", "upernet", "detection", "ablation")


def _imported_modules(path: Path) -> list[str]:
    """Dotted names (relative ones as written, dots included) of every ``from X import`` in ``path``."""
    tree = ast.parse(path.read_text())
    return ["." * n.level + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]


def test_tasks_and_losses_import_no_model_family():
    files = [*sorted((SRC / "engine" / "tasks").glob("*.py")), SRC / "losses.py"]
    for path in files:
        for module in _imported_modules(path):
            parts = module.lstrip(".").split(".")
            assert not ("models" in parts and parts[-1] in FAMILY_MODULES), f"{path.name} imports {module}"


def test_output_types_live_with_the_tasks_and_old_paths_still_import():
    from wavevision.engine.tasks import SegmentationOutput, TokenLabelOutput
    from wavevision.models import SegmentationOutput as models_seg, TokenLabelOutput as models_tl
    from wavevision.models.upernet import SegmentationOutput as upernet_seg
    from wavevision.models.wave_vit import TokenLabelOutput as vit_tl, box_area

    assert TokenLabelOutput is outputs.TokenLabelOutput is models_tl is vit_tl
    assert SegmentationOutput is outputs.SegmentationOutput is models_seg is upernet_seg
    assert TokenLabelOutput.__module__ == SegmentationOutput.__module__ == "wavevision.outputs"
    assert box_area is outputs.box_area and outputs.box_area((1, 2, 4, 3)) == 3 and outputs.box_area((2, 0, 1, 5)) == 0
