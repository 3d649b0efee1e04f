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
    from wavevision.models import SegmentationOutput as models_seg
    from wavevision.models import TokenLabelOutput as models_tl
    from wavevision.models.upernet import SegmentationOutput as upernet_seg
    from wavevision.models.wave_vit import TokenLabelOutput as vit_tl
    from wavevision.models.wave_vit import box_area

    assert TokenLabelOutput is outputs.TokenLabelOutput is models_tl is vit_tl
    assert SegmentationOutput is outputs.SegmentationOutput is models_seg is upernet_seg
    assert TokenLabelOutput.__module__ == SegmentationOutput.__module__ == "wavevision.outputs"
    assert box_area is outputs.box_area and outputs.box_area((1, 2, 4, 3)) == 3 and outputs.box_area((2, 0, 1, 5)) == 0


def test_the_builder_holds_no_family_keys_and_families_register_their_filters():
    import torch

    from wavevision.models import _builder
    from wavevision.models.detection import WaveDetector
    from wavevision.models.detection import checkpoint_filter_fn as detector_filter
    from wavevision.models.wave_vit import WaveViT
    from wavevision.models.wave_vit import checkpoint_filter_fn as vit_filter

    source = Path(_builder.__file__).read_text()
    assert "attn.dwt" not in source and "idwt" not in source
    for module in _imported_modules(Path(_builder.__file__)):
        assert module.lstrip(".").split(".")[-1] not in FAMILY_MODULES, module
    assert _builder._CHECKPOINT_FILTERS[WaveViT] is vit_filter
    assert _builder._CHECKPOINT_FILTERS[WaveDetector] is detector_filter
    try:
        _builder.register_checkpoint_filter(WaveViT, vit_filter)
    except ValueError as e:
        assert "already has a checkpoint filter" in str(e)
    else:
        raise AssertionError("a second filter for one class was accepted")

    # The reference's buffers stay without a model (no family is assumed) and go with a Wave-ViT.
    model = wavevision.create_model("wave_vit_s", depths=(1, 1, 1, 1), embed_dims=(16, 32, 48, 64),
                                    num_heads=(1, 2, 3, 4), stem_hidden_dim=8)
    ref = {f"module.{k}": v for k, v in model.state_dict().items()}
    ref["module.block1.0.attn.dwt.w_ll"] = torch.zeros(1, dtype=torch.float16)
    assert "block1.0.attn.dwt.w_ll" in wavevision.convert_official_state_dict(ref)
    assert list(wavevision.convert_official_state_dict(ref, model)) == list(model.state_dict())
    wavevision.models.load_state_dict_strict(model, wavevision.convert_official_state_dict(ref))  # filtered on load

    class Subclass(WaveViT):  # a subclass without a filter of its own takes its family's
        pass

    assert _builder._filtered(Subclass.__new__(Subclass), {"a.attn.idwt.filters": torch.zeros(1)}) == {}


def test_detection_asks_the_backbone_what_it_provides():
    import torch.nn as nn

    from wavevision.models import detection
    from wavevision.models._features import pyramid_taps

    path = Path(detection.__file__)
    assert "isinstance(trunk" not in path.read_text()
    for module in _imported_modules(path):
        assert module.lstrip(".").split(".")[-1] not in ("wave_vit", "wavemix"), module
    vit = wavevision.create_model("wave_vit_s", depths=(1, 1, 1, 1), embed_dims=(16, 32, 48, 64),
                                  num_heads=(1, 2, 3, 4), stem_hidden_dim=8)
    mix = wavevision.create_model("wavemix_192_16_l3", depth=6, final_dim=16, ff_channel=16)
    assert vit.pyramid_indices() == (0, 1, 2, 3) and mix.pyramid_indices() == pyramid_taps(6) == (1, 2, 3, 5)
    vit_body = detection.PyramidBody(vit.as_backbone(vit.pyramid_indices()), frozen_stages=1)
    assert all(isinstance(r, nn.Identity) for r in vit_body.resample)  # a hierarchical backbone is used as it is
    assert {n.split(".")[0] for n, p in vit.named_parameters() if not p.requires_grad} == {"patch_embed1", "block1", "norm1"}
    mix_body = detection.PyramidBody(mix.as_backbone(mix.pyramid_indices()), frozen_stages=2)
    assert [type(r).__name__ for r in mix_body.resample] == ["Identity", "Conv2d", "Conv2d", "Conv2d"]  # stem stride 4
    frozen = {n.split(".")[0] if n.startswith("conv.") else ".".join(n.split(".")[:2])
              for n, p in mix.named_parameters() if not p.requires_grad}
    assert frozen == {"conv", "layers.0", "layers.1", "layers.2"}  # the stem and the blocks up to the second tap


def test_small_test_builds_come_from_the_family_the_registry_reports():
    import _small

    assert "startswith" not in (Path(__file__).parent / "_small.py").read_text()
    families = {n: wavevision.get_entry(n).family for n in wavevision.list_models()}
    assert families["wavemix_paper_sr"] == "wavemix" and families["wavemixsr_v2_x4"] == "wavemixsr"
    assert families["wave_vit_s"] == "wave_vit" and families["mask_rcnn_wave_vit_s_fpn_1x"] == "detection"
    for name in _small.timm_models():  # every family with the timm interface has its small build
        assert _small.small_overrides(name) == _small.BY_MODEL.get(name, _small.BY_FAMILY[families[name]])
