"""The fast subset of the tests parametrised over every registered model.

``pytest -m "not slow"`` (the quick run while working; CI runs everything) keeps one build per
model class (two for WaveMix, one per stem), listed in :data:`FAST_MODELS`, and one per task for the
checks beyond the forward pass (:data:`FEWER_MODELS`); the other registered variants of the same
class (other widths, depths, levels, scales) run in the full suite only.
A test file that loops over the models parametrises with :func:`model_cases` instead of the
bare names, so the rule lives here once; a test of the small builds (``tests/_small.py``) with
:func:`small_build_cases`, which also runs each group of identical small builds once.
"""
from __future__ import annotations

from collections.abc import Iterable

import pytest

from _small import distinct_small_builds

# One build per model class, plus WaveMix's second stem (strided, with a one-channel input).
FAST_MODELS = frozenset({
    "mixer_dwt",              # MixerNet with the wavelet mixer (the other mixers: tests/test_mixers.py)
    "upernet_wave_vit_s",     # UperNet
    "wave_vit_s",             # WaveViT
    "wavemix",                # WaveMix, patchify stem, level 3
    "wavemix_lite_8_10",      # WaveMix, strided stem, level 1, one input channel
    "wavemix_seg",            # WaveMixSeg (strided stem, level 4)
    "wavemix_seg_192_16_l3",  # WaveMixPatchSeg
    "wavemix_paper_sr",       # WaveMixPaperSR
    "wavemixsr_v2_x2",        # WaveMixSRV2
    "wavemixsr_v1_x2",        # WaveMixSRV1
    "wtconvnext_tiny",        # WTConvNeXt
})


# For the checks beyond the forward pass (export, tracing, fusing, checkpointing, features, timm's checks):
# one model per task, and the transformer.
FEWER_MODELS = frozenset({"wavemix_lite_8_10", "wave_vit_s", "wavemix_seg", "wavemixsr_v2_x2"})


def model_cases(names: Iterable[str], fast: Iterable[str] = FAST_MODELS) -> list:
    """``names`` (or ``name.tag`` of pretrained records) as parametrize values: those of the ``fast``
    models plain, every other one marked ``slow``."""
    keep = set(fast)
    return [n if n.split(".")[0] in keep else pytest.param(n, marks=pytest.mark.slow) for n in names]


def small_build_cases(names: Iterable[str], fast: Iterable[str] = FAST_MODELS) -> list:
    """:func:`model_cases` of one name per distinct small build (``tests/_small.py``
    :func:`distinct_small_builds`, keeping the fast model of a group): for the tests that check
    ``small_model(name)``, not the registered default or record."""
    return model_cases(distinct_small_builds(names, prefer=FAST_MODELS), fast)
