"""The ``slow`` marker stays honest: registered, and the fast subset still builds every model class;
the registered variants whose small builds are one module run once, and every one of them is stated."""
from __future__ import annotations

import torch

import wavevision
from _slow import FAST_MODELS, FEWER_MODELS, model_cases, small_build_cases

from _small import distinct_small_builds, small_build_groups, small_model, timm_models


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


# The registered variants whose small builds (tests/_small.py) are one module: the overrides replace
# exactly what tells them apart. UperNet-WTConvNeXt-S is not among them: its drop-path rate (0.3) is not
# T's and B's (0.4).
SAME_SMALL_BUILD = [
    ["upernet_wave_vit_b", "upernet_wave_vit_s"],
    ["upernet_wtconvnext_base", "upernet_wtconvnext_tiny"],
    ["wave_vit_b", "wave_vit_l", "wave_vit_s"],
    ["wavemix", "wavemix_192_16_l3"],
    ["wavemix_lite_256_10", "wavemix_lite_256_8"],
    ["wavemix_paper_sr", "wavemix_paper_sr_144_4_x2"],
    ["wavemix_seg", "wavemix_seg_256_16_l4"],
    ["wtconvnext_base", "wtconvnext_small", "wtconvnext_tiny"],
]


def test_the_groups_of_identical_small_builds_are_the_stated_ones():
    names = timm_models()
    groups = small_build_groups(names)
    assert sorted(g for g in groups if len(g) > 1) == SAME_SMALL_BUILD, "a variant's small build changed: update SAME_SMALL_BUILD"
    assert sorted(n for g in groups for n in g) == sorted(names)
    kept = distinct_small_builds(names, prefer=FAST_MODELS)
    assert len(kept) == len(groups) and all(sum(n in g for n in kept) == 1 for g in groups)
    for g in groups:  # the fast subset keeps its model of each group, and holds at most one of a group
        assert len(FAST_MODELS & set(g)) <= 1, g
        assert not FAST_MODELS & set(g) or (FAST_MODELS & set(g)) <= set(kept), g
    assert {p if isinstance(p, str) else p.values[0] for p in small_build_cases(names)} == set(kept)


def _same_build(kept: str, dropped: str) -> None:
    a, b = small_model(kept).eval(), small_model(dropped).eval()  # one seed each
    assert type(a) is type(b) and repr(a) == repr(b), dropped
    assert a.model_kwargs == b.model_kwargs, dropped
    for key in ("task", "family"):
        assert getattr(wavevision.get_entry(kept), key) == getattr(wavevision.get_entry(dropped), key), (dropped, key)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb), dropped
    for k in sa:
        assert sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), (dropped, k)
    side = max(getattr(a, "min_input_size", 0) or 16, 16)
    x = torch.rand(1, a.in_chans, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a(x), b(x)), dropped


def test_every_dropped_variant_builds_the_kept_ones_module():
    """Nothing is lost by running each group once: every name left out builds, seeded alike, the kept
    name's module (class, repr, recorded overrides, state dict keys, shapes and values, outputs)."""
    names = timm_models()
    kept = set(distinct_small_builds(names, prefer=FAST_MODELS))
    for group in small_build_groups(names):
        (first,) = kept & set(group)
        for name in group:
            if name != first:
                _same_build(first, name)
