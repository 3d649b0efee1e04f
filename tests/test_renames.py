"""Renamed models, classes and modules (issue 21): every old name warns once (a FutureWarning naming the
new name) and then gives exactly what the new name gives; new names are listed, old ones hidden."""
from __future__ import annotations

import importlib
import sys
import warnings

import pytest
import torch

import wavevision
from wavevision.models import _deprecated

MODEL_RENAMES = {
    "wavemix_sr": "wavemix_paper_sr",
    "wavemix_sr_144_4_x2": "wavemix_paper_sr_144_4_x2",
    "wavemix_sr_144_4_x4": "wavemix_paper_sr_144_4_x4",
    "wavemixsr_x2": "wavemixsr_v1_x2",
}
CLASS_RENAMES = [
    ("wavevision.models", "WaveMixSR", "WaveMixPaperSR"),
    ("wavevision.models", "WaveMixSRY", "WaveMixSRV1"),
    ("wavevision.models.wavemix", "WaveMixSR", "WaveMixPaperSR"),
    ("wavevision.models.wavemixsr", "WaveMixSRY", "WaveMixSRV1"),
]
SMALL = dict(depth=1, final_dim=16, ff_channel=16)


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees the first use of an old name (the one-time record is per process)."""
    saved = set(_deprecated._warned)
    _deprecated._warned.clear()
    yield
    _deprecated._warned.clear()
    _deprecated._warned.update(saved)


def _future_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("old,new", MODEL_RENAMES.items())
def test_old_model_name_warns_once_and_builds_the_same_model(old, new):
    torch.manual_seed(0)
    ours, first = _future_warnings(lambda: wavevision.create_model(old, **SMALL))
    assert len(first) == 1 and repr(old) in first[0] and repr(new) in first[0]
    _, second = _future_warnings(lambda: wavevision.create_model(old, **SMALL))
    assert second == []  # once per process
    torch.manual_seed(0)
    theirs = wavevision.create_model(new, **SMALL)
    assert type(ours) is type(theirs) and ours.model_name == new
    assert ours.pretrained_cfg == theirs.pretrained_cfg
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_new_names_are_listed_and_old_ones_hidden_unless_asked():
    listed = wavevision.list_models()
    assert set(MODEL_RENAMES.values()) <= set(listed)
    assert not set(MODEL_RENAMES) & set(listed)
    assert set(MODEL_RENAMES) <= set(wavevision.list_models(include_deprecated=True))
    assert wavevision.list_models("wavemix_sr*", include_deprecated=True) == sorted(
        k for k in MODEL_RENAMES if k.startswith("wavemix_sr"))
    assert wavevision.models.deprecated_models() == MODEL_RENAMES
    assert "wavemix_sr" in wavevision.list_models(task="super_resolution", include_deprecated=True)


def test_old_names_resolve_in_info_tags_and_pretrained_cfgs():
    entry, warned = _future_warnings(lambda: wavevision.get_entry("wavemixsr_x2.div2k"))
    assert entry.name == "wavemixsr_v1_x2" and len(warned) == 1
    assert wavevision.get_pretrained_cfg("wavemixsr_x2.df2k") == wavevision.get_pretrained_cfg("wavemixsr_v1_x2.df2k")
    model = wavevision.create_model("wavemixsr_x2.df2k", **SMALL)
    assert model.model_name == "wavemixsr_v1_x2" and model.pretrained_cfg["tag"] == "df2k"


def test_an_old_name_cannot_be_registered_again():
    with pytest.raises(ValueError, match="registered twice"):
        wavevision.models.register_model_deprecations({"wavemix_sr": "wavemix_paper_sr"})
    with pytest.raises(ValueError, match="not registered"):
        wavevision.models.register_model_deprecations({"old_name_for_test": "no_such_model"})


@pytest.mark.parametrize("module,old,new", CLASS_RENAMES)
def test_old_class_names_import_with_one_warning(module, old, new):
    mod = importlib.import_module(module)
    cls, first = _future_warnings(lambda: getattr(mod, old))
    assert cls is getattr(mod, new) and len(first) == 1 and old in first[0] and new in first[0]
    assert _future_warnings(lambda: getattr(mod, old))[1] == []
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchClass'"):
        _ = mod.NoSuchClass


def test_old_module_path_imports_the_new_module_with_one_warning():
    sys.modules.pop("wavevision.models.wavemix_sr", None)
    old, first = _future_warnings(lambda: importlib.import_module("wavevision.models.wavemix_sr"))
    new = importlib.import_module("wavevision.models.wavemixsr")
    assert old is new and len(first) == 1 and "wavevision.models.wavemixsr" in first[0]
    sys.modules.pop("wavevision.models.wavemix_sr", None)
    assert _future_warnings(lambda: importlib.import_module("wavevision.models.wavemix_sr"))[1] == []
    from wavevision.models.wavemix_sr import WaveMixSRV2  # the statement form too

    assert WaveMixSRV2 is new.WaveMixSRV2


def test_a_checkpoint_saved_under_an_old_name_loads(tmp_path):
    model = wavevision.create_model("wavemix_paper_sr", **SMALL)
    path = wavevision.save_checkpoint(model, tmp_path / "m.safetensors")
    config = path.with_suffix(".json")
    config.write_text(config.read_text().replace('"wavemix_paper_sr"', '"wavemix_sr"'))  # as saved before the rename
    loaded, warned = _future_warnings(lambda: wavevision.create_model(checkpoint=path))
    assert loaded.model_name == "wavemix_paper_sr" and len(warned) == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    for name in ("wavemix_sr", "wavemix_paper_sr"):  # naming the model either way agrees with the file
        assert wavevision.create_model(name, checkpoint=path).model_name == "wavemix_paper_sr"


def test_the_command_line_takes_old_names_and_says_where_they_went(capsys):
    from wavevision.cli import main

    with pytest.warns(FutureWarning, match="'wavemixsr_x2' is deprecated .* now 'wavemixsr_v1_x2'"):
        assert main(["info", "wavemixsr_x2"]) == 0
    assert "1,704,385" in capsys.readouterr().out
    assert main(["list", "wavemix_sr*"]) != 0  # old names are not listed; the error names the new ones
    err = capsys.readouterr().err
    assert "no model matches 'wavemix_sr*' (renamed: wavemix_sr is now wavemix_paper_sr" in err
    assert len(err.strip().splitlines()) == 1
