"""The ``slow`` marker stays honest: registered, and the fast subset still builds every model class."""
from __future__ import annotations

import wavevision
from _slow import FAST_MODELS, FEWER_MODELS, model_cases

from _small import small_model, timm_models


def test_slow_is_a_registered_marker(pytestconfig):
    assert any(line.startswith("slow:") for line in pytestconfig.getini("markers"))
    assert pytestconfig.getoption("strict_markers") or "--strict-markers" in pytestconfig.getini("addopts")


def test_the_fast_models_are_registered_and_cover_every_model_class():
    names = timm_models()
    assert FAST_MODELS <= set(names), sorted(FAST_MODELS - set(names))
    assert FEWER_MODELS <= FAST_MODELS, sorted(FEWER_MODELS - FAST_MODELS)
    kind = {n: type(small_model(n)).__name__ for n in names}
    missing = set(kind.values()) - {kind[n] for n in FAST_MODELS}
    assert not missing, f"no fast case for {sorted(missing)}: add one to tests/_slow.py"
    for task in {wavevision.get_entry(n).task for n in names}:
        assert any(wavevision.get_entry(n).task == task for n in FEWER_MODELS), task


def test_model_cases_mark_all_but_the_fast_models():
    cases = model_cases(["wavemix", "wavemix_lite_320_8"])
    assert cases[0] == "wavemix"
    (param,) = cases[1:]
    assert param.values == ("wavemix_lite_320_8",) and [m.name for m in param.marks] == ["slow"]
