"""General wavelet transforms against PyWavelets: coefficients, reconstructions, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wavevision.ops.filterbank import WAVELET_MODES, dwt2, filter_bank, idwt2, wavedec2, wavelet_filters, waverec2

pywt = pytest.importorskip("pywt")

WAVELETS = ["haar", "db2", "sym4", "coif1", "bior2.2"]
MODES = ["zero", "symmetric", "reflect", "periodization"]


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.filterwarnings("ignore:Level value")
@pytest.mark.parametrize("wave", WAVELETS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("size", [(32, 40), (33, 27)])
def test_wavedec2_and_waverec2_match_pywt(wave, mode, level, size):
    x = _rand(2, 2, *size)
    ours = wavedec2(x, wave, level=level, mode=mode)
    ref = pywt.wavedec2(x.numpy(), wave, mode=mode, level=level)
    np.testing.assert_allclose(ours[0].numpy(), ref[0], atol=1e-10)
    for k in range(1, level + 1):
        for band in range(3):
            np.testing.assert_allclose(ours[k][:, :, band].numpy(), ref[k][band], atol=1e-10)
    rec = waverec2(ours, wave, mode=mode)
    ref_rec = pywt.waverec2(ref, wave, mode=mode)
    assert rec.shape == ref_rec.shape
    np.testing.assert_allclose(rec.numpy(), ref_rec, atol=1e-10)
    # Perfect reconstruction (pywt's output can be one sample larger on odd sizes).
    np.testing.assert_allclose(rec[..., : size[0], : size[1]].numpy(), x.numpy(), atol=1e-9)


@pytest.mark.parametrize("wave", ["db2", "bior2.2"])
@pytest.mark.parametrize("mode", ["periodic", "symmetric"])
def test_single_level_matches_pywt(wave, mode):
    x = _rand(1, 3, 11, 14)
    ll, highs = dwt2(x, wave, mode)
    ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), wave, mode=mode)
    for a, b in zip([ll, highs[:, :, 0], highs[:, :, 1], highs[:, :, 2]], [ca, ch, cv, cd]):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-10)
    np.testing.assert_allclose(idwt2(ll, highs, wave, mode).numpy(), pywt.idwt2((ca, (ch, cv, cd)), wave, mode=mode), atol=1e-10)


@pytest.mark.parametrize("wave,mode", [("db2", "zero"), ("sym4", "periodization"), ("bior2.2", "reflect")])
def test_gradcheck(wave, mode):
    x = _rand(1, 2, 9, 8).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: dwt2(t, wave, mode), (x,))
    ll, highs = dwt2(x.detach(), wave, mode)
    assert torch.autograd.gradcheck(lambda a, h: idwt2(a, h, wave, mode), (ll.requires_grad_(), highs.requires_grad_()))


def test_float32_channels_last_and_half_precision():
    x = _rand(2, 4, 16, 18, dtype=torch.float32)
    ll, highs = dwt2(x, "db2", "symmetric")
    ll_cl, highs_cl = dwt2(x.to(memory_format=torch.channels_last), "db2", "symmetric")
    torch.testing.assert_close(ll_cl, ll)
    torch.testing.assert_close(highs_cl, highs)
    for dtype in (torch.float16, torch.bfloat16):
        a, h = dwt2(x.to(dtype), "db2", "symmetric")
        assert a.dtype == dtype and h.dtype == dtype
        torch.testing.assert_close(a.float(), ll, atol=0.1, rtol=0.05)


def test_filters_without_pywt_for_haar_and_bank_shape():
    lo, hi, rlo, rhi = wavelet_filters("haar")
    np.testing.assert_allclose(lo, pywt.Wavelet("haar").dec_lo)
    np.testing.assert_allclose(hi, pywt.Wavelet("haar").dec_hi)
    bank = filter_bank("db2", dtype=torch.float64)
    assert bank.shape == (4, 4)
    ll, _ = dwt2(_rand(1, 1, 8, 8), bank, "zero")  # a filter tensor skips the name lookup
    np.testing.assert_allclose(ll.numpy(), pywt.dwt2(_rand(1, 1, 8, 8).numpy(), "db2", mode="zero")[0], atol=1e-12)


def test_bad_arguments():
    x = _rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown mode"):
        dwt2(x, "db2", "circular")
    with pytest.raises(ValueError, match="4D"):
        dwt2(x[0], "db2")
    with pytest.raises(TypeError, match="floating point"):
        dwt2(x.long(), "db2")
    with pytest.raises(ValueError, match="unknown wavelet"):
        dwt2(x, "db999")
    with pytest.raises(ValueError, match="level must be an integer >= 1"):
        wavedec2(x, "db2", level=0)
    ll, highs = dwt2(x, "db2")
    with pytest.raises(ValueError, match="details must have shape"):
        idwt2(ll, highs[:, :, :2])
    assert set(MODES) <= set(WAVELET_MODES)
