"""DWT2d / IDWT2d modules: both paths agree with PyWavelets, filters behave as buffers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wavevision.ops import DWT2d, IDWT2d, haar_wavedec2, pack_bands, unpack_bands

pywt = pytest.importorskip("pywt")


def _rand(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("wave,mode", [("haar", "zero"), ("db2", "symmetric"), ("sym4", "periodization"), ("haar", "reflect")])
@pytest.mark.parametrize("levels", [1, 2])
def test_module_matches_pywt_and_inverts(wave, mode, levels):
    x = _rand(2, 3, 30, 27)
    dwt = DWT2d(wave, levels=levels, mode=mode, layout="band").double()
    coeffs = dwt(x)
    ref = pywt.wavedec2(x.numpy(), wave, mode=mode, level=levels)
    ll, _ = unpack_bands(coeffs[-1], "band")
    np.testing.assert_allclose(ll.numpy(), ref[0], atol=1e-10)
    for j in range(levels):
        _, highs = unpack_bands(coeffs[j], "band")
        for k in range(3):
            np.testing.assert_allclose(highs[:, :, k].numpy(), ref[levels - j][k], atol=1e-10)
    rec = IDWT2d(wave, mode=mode, layout="band").double()(coeffs, size=(30, 27))
    torch.testing.assert_close(rec, x, atol=1e-9, rtol=0)


def test_fast_haar_path_equals_general_path():
    x = _rand(2, 4, 16, 24)  # even at every level, where Haar's modes coincide
    fast = DWT2d("haar", levels=3, mode="zero")
    assert fast.fast_haar
    general = DWT2d("haar", levels=3, mode="symmetric")  # same numbers on even sizes for Haar
    for a, b in zip(fast.double()(x), general.double()(x)):
        torch.testing.assert_close(a, b)
    for a, b in zip(fast(x), haar_wavedec2(x, 3)):
        assert torch.equal(a, b)


def test_filters_are_non_persistent_buffers_that_follow_to():
    dwt = DWT2d("db2", levels=1, mode="zero")
    assert dwt.state_dict() == {} and "filters" in dict(dwt.named_buffers())
    assert dwt.double().filters.dtype == torch.float64
    assert dwt.half().filters.dtype == torch.float16
    assert IDWT2d("db2").state_dict() == {}


@pytest.mark.parametrize("layout", ["wavemix", "band"])
def test_pack_unpack_round_trip(layout):
    ll, highs = _rand(2, 3, 4, 5), _rand(2, 3, 3, 4, 5, seed=1)
    a, b = unpack_bands(pack_bands(ll, highs, layout), layout)
    assert torch.equal(a, ll) and torch.equal(b, highs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="levels must be an integer >= 1"):
        DWT2d(levels=0)
    with pytest.raises(ValueError, match="unknown mode"):
        DWT2d(mode="circular")
    with pytest.raises(ValueError, match="unknown Haar channel layout"):
        DWT2d(layout="interleaved")
