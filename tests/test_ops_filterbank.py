"""General wavelet transforms (wavevision.ops.filterbank) against PyWavelets.

Coefficients, reconstructions, perfect reconstruction, gradients, dtypes / memory formats
and argument errors. Everything is float64 and seeded unless a test says otherwise.
"""
from __future__ import annotations

import sys
import warnings
import zlib

import numpy as np
import pytest
import torch

from wavevision.ops import filterbank as fb
from wavevision.ops.filterbank import (
    WAVELET_MODES,
    dwt2,
    filter_bank,
    idwt2,
    wavedec2,
    wavelet_filters,
    waverec2,
)

pywt = pytest.importorskip("pywt")

WAVELETS = ["haar", "db2", "sym4", "coif1", "bior2.2"]
MODES = ["zero", "symmetric", "reflect", "periodization"]
SIZES = [(32, 40), (33, 27)]


def _rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _pywt_wavedec2(x: np.ndarray, wave: str, mode: str, level: int) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Level value ... too high: boundary effects" for long filters
        return pywt.wavedec2(x, wave, mode=mode, level=level)


def _assert_coeffs_equal(ours: list, ref: list, atol: float = 1e-10) -> None:
    assert len(ours) == len(ref)
    assert ours[0].shape == ref[0].shape
    np.testing.assert_allclose(ours[0].numpy(), ref[0], rtol=0, atol=atol)
    for highs, (ch, cv, cd) in zip(ours[1:], ref[1:]):
        assert highs.shape == (*ch.shape[:2], 3, *ch.shape[2:])
        for band, r in enumerate((ch, cv, cd)):
            np.testing.assert_allclose(highs[:, :, band].numpy(), r, rtol=0, atol=atol)


# --------------------------------------------------------------------------- parity with pywt


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wave", WAVELETS)
def test_wavedec2_waverec2_match_pywt_and_reconstruct(wave, mode, size):
    x = _rand(2, 3, *size, seed=zlib.crc32(f"{wave}/{mode}/{size}".encode()))
    for level in (1, 2, 3):
        ours = wavedec2(x, wave, level=level, mode=mode)
        ref = _pywt_wavedec2(x.numpy(), wave, mode, level)
        _assert_coeffs_equal(ours, ref)
        rec = waverec2(ours, wave, mode=mode)
        ref_rec = pywt.waverec2(ref, wave, mode=mode)
        assert rec.shape == ref_rec.shape
        np.testing.assert_allclose(rec.numpy(), ref_rec, rtol=0, atol=1e-10)
        # Perfect reconstruction; pywt's output is one sample larger along odd axes.
        assert rec.shape[-2] - size[0] in (0, 1) and rec.shape[-1] - size[1] in (0, 1)
        np.testing.assert_allclose(rec[..., : size[0], : size[1]].numpy(), x.numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("mode", list(WAVELET_MODES))
@pytest.mark.parametrize("wave", ["haar", "db2", "sym4", "coif1", "bior2.2", "rbio3.1"])
def test_dwt2_idwt2_match_pywt_all_modes(wave, mode):
    # Tiny sizes too: extensions longer than the signal repeat (e.g. sym4 on 3 samples).
    for size in [(11, 14), (3, 2), (7, 5)]:
        x = _rand(2, 2, *size, seed=1)
        ll, highs = dwt2(x, wave, mode)
        ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), wave, mode=mode)
        assert ll.shape == ca.shape and highs.shape == (2, 2, 3, *ca.shape[-2:])
        for ours, ref in zip([ll, highs[:, :, 0], highs[:, :, 1], highs[:, :, 2]], [ca, ch, cv, cd]):
            np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-10)
        ref_rec = pywt.idwt2((ca, (ch, cv, cd)), wave, mode=mode)
        rec = idwt2(ll, highs, wave, mode)
        assert rec.shape == ref_rec.shape
        np.testing.assert_allclose(rec.numpy(), ref_rec, rtol=0, atol=1e-10)


def test_idwt2_of_arbitrary_coefficients_matches_pywt():
    # Not just round trips: independent random coefficients, odd coefficient sizes.
    ll, highs = _rand(1, 2, 7, 9, seed=2), _rand(1, 2, 3, 7, 9, seed=3)
    for wave in ("db2", "bior2.2"):
        for mode in ("zero", "periodization", "symmetric"):
            ref = pywt.idwt2((ll.numpy(), tuple(highs[:, :, k].numpy() for k in range(3))), wave, mode=mode)
            np.testing.assert_allclose(idwt2(ll, highs, wave, mode).numpy(), ref, rtol=0, atol=1e-10)
            # A (cH, cV, cD) tuple works as well as the stacked tensor.
            np.testing.assert_allclose(idwt2(ll, tuple(highs.unbind(2)), wave, mode).numpy(), ref, rtol=0, atol=1e-10)


def test_default_level_is_pywt_max_level():
    x = _rand(1, 1, 64, 50)
    for wave in ("haar", "db2", "sym4"):
        ours = wavedec2(x, wave, mode="symmetric")
        ref = pywt.wavedec2(x.numpy(), wave, mode="symmetric")
        assert len(ours) == len(ref) == 1 + pywt.dwtn_max_level((64, 50), wave)
        _assert_coeffs_equal(ours, ref)
    # Smaller than the filter: pywt decomposes 0 levels and returns [x]; so do we, and back.
    tiny = _rand(1, 1, 5, 6)
    assert len(pywt.wavedec2(tiny.numpy(), "sym4")) == 1
    coeffs = wavedec2(tiny, "sym4")
    assert len(coeffs) == 1 and coeffs[0] is tiny and waverec2(coeffs, "sym4") is tiny


def test_deep_levels_beyond_pywt_max_level_match():
    # pywt only warns past dwt_max_level; we allow it while levels still shrink the image.
    x = _rand(1, 1, 20, 18)
    ours = wavedec2(x, "sym4", level=3, mode="reflect")
    _assert_coeffs_equal(ours, _pywt_wavedec2(x.numpy(), "sym4", "reflect", 3))


def test_pywt_wavelet_object_tuple_and_filter_tensor_are_equivalent():
    x = _rand(2, 1, 12, 10)
    w = pywt.Wavelet("db3")
    ref = pywt.dwt2(x.numpy(), w, mode="symmetric")[0]
    for spec in (w, "db3", "DB3", (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi), filter_bank("db3", dtype=torch.float64)):
        np.testing.assert_allclose(dwt2(x, spec, "symmetric")[0].numpy(), ref, rtol=0, atol=1e-12)
    bank = filter_bank("db3", dtype=torch.float32)
    assert bank.shape == (4, 6) and bank.dtype == torch.float32
    assert filter_bank("haar").dtype == torch.get_default_dtype()


def test_odd_length_custom_filters_are_padded_like_pywt():
    lo, hi = np.array([0.2, 0.5, 0.3]), np.array([0.1, -0.4, 0.7])
    bank = (lo, hi, lo[::-1], hi[::-1])
    filters = wavelet_filters(bank)
    assert all(f.shape == (4,) and f[-1] == 0 for f in filters)
    custom = pywt.Wavelet("odd", filter_bank=bank)
    x = _rand(1, 1, 9, 8)
    ll, highs = dwt2(x, bank, "periodization")
    ca, (ch, _, _) = pywt.dwt2(x.numpy(), custom, mode="periodization")
    np.testing.assert_allclose(ll.numpy(), ca, rtol=0, atol=1e-12)
    np.testing.assert_allclose(highs[:, :, 0].numpy(), ch, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- filters


def test_wavelet_filters_match_pywt_and_are_fresh_float64():
    for name in ("haar", "db1", "db2", "sym4", "coif1", "bior2.2"):
        w = pywt.Wavelet(name)
        ours = wavelet_filters(name)
        assert len(ours) == 4 and all(f.dtype == np.float64 and f.ndim == 1 for f in ours)
        for f, ref in zip(ours, (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi)):
            np.testing.assert_array_equal(f, np.asarray(ref))
    wavelet_filters("db2")[0][:] = 0  # mutating a result must not corrupt the cache
    np.testing.assert_array_equal(wavelet_filters("db2")[0], pywt.Wavelet("db2").dec_lo)


def test_haar_works_without_pywt_and_other_names_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pywt", None)  # makes `import pywt` raise ImportError
    fb._pywt_filters.cache_clear()
    try:
        lo, hi, rlo, rhi = wavelet_filters("haar")
        s = np.sqrt(0.5)
        np.testing.assert_array_equal(np.stack([lo, hi, rlo, rhi]), [[s, s], [-s, s], [s, s], [s, -s]])
        ll, highs = dwt2(_rand(1, 1, 4, 4), "db1")
        assert ll.shape == (1, 1, 2, 2) and highs.shape == (1, 1, 3, 2, 2)
        with pytest.raises(ImportError, match=r"pip install 'wavevision\[wavelets\]'"):
            wavelet_filters("db2")
        with pytest.raises(ImportError, match="PyWavelets"):
            dwt2(_rand(1, 1, 4, 4), "sym4")
    finally:
        fb._pywt_filters.cache_clear()


# --------------------------------------------------------------------------- autograd


@pytest.mark.parametrize(
    "wave,mode", [("db2", "zero"), ("sym4", "periodization"), ("bior2.2", "reflect"), ("coif1", "symmetric")]
)
def test_gradcheck(wave, mode):
    x = _rand(1, 2, 7, 6, seed=4).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: dwt2(t, wave, mode), (x,))
    ll, highs = dwt2(x.detach(), wave, mode)
    ll, highs = ll.clone().requires_grad_(), highs.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, h: idwt2(a, h, wave, mode), (ll, highs))


def test_gradients_reach_a_filter_tensor():
    bank = filter_bank("db2", dtype=torch.float64).requires_grad_()
    x = _rand(1, 1, 6, 5)
    assert torch.autograd.gradcheck(lambda b: dwt2(x, b, "symmetric"), (bank,))


# --------------------------------------------------------------------------- dtypes, layouts, shapes


def test_float32_channels_last_and_half_precision():
    x = _rand(2, 5, 16, 19, dtype=torch.float32)
    ll, highs = dwt2(x, "db2", "symmetric")
    assert ll.dtype == highs.dtype == torch.float32
    ref = pywt.dwt2(x.double().numpy(), "db2", mode="symmetric")[0]
    np.testing.assert_allclose(ll.numpy(), ref, rtol=0, atol=1e-5)
    ll_cl, highs_cl = dwt2(x.to(memory_format=torch.channels_last), "db2", "symmetric")
    torch.testing.assert_close(ll_cl, ll, rtol=0, atol=0)
    torch.testing.assert_close(highs_cl, highs, rtol=0, atol=0)
    rec = idwt2(ll, highs, "db2", "symmetric")
    rec_cl = idwt2(ll.contiguous(memory_format=torch.channels_last), highs, "db2", "symmetric")
    torch.testing.assert_close(rec_cl, rec, rtol=0, atol=0)
    for dtype in (torch.float16, torch.bfloat16):
        coeffs = wavedec2(x.to(dtype), "sym4", level=2, mode="reflect")
        assert all(c.dtype == dtype for c in coeffs)
        ref32 = wavedec2(x, "sym4", level=2, mode="reflect")
        for a, b in zip(coeffs, ref32):
            torch.testing.assert_close(a.float(), b, atol=0.1, rtol=0.05)
        back = waverec2(coeffs, "sym4", mode="reflect")
        assert back.dtype == dtype
        torch.testing.assert_close(back[..., :16, :19].float(), x, atol=0.1, rtol=0.05)


def test_any_batch_and_channel_count():
    for b, c in [(0, 3), (1, 1), (3, 7)]:
        x = _rand(b, c, 9, 10)
        coeffs = wavedec2(x, "db2", level=2, mode="periodization")
        assert coeffs[0].shape[:2] == (b, c) and coeffs[1].shape[:3] == (b, c, 3)
        assert waverec2(coeffs, "db2", mode="periodization").shape == (b, c, 10, 10)


# --------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
    x = _rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"unknown mode 'circular'; choose one of zero, symmetric"):
        dwt2(x, "db2", "circular")
    with pytest.raises(ValueError, match=r"4D tensor .*got shape \(8, 8\).*x\[None, None\]"):
        dwt2(x[0, 0], "db2")
    with pytest.raises(TypeError, match="floating-point tensor, got torch.int64; convert it"):
        wavedec2(x.long(), "db2")
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        dwt2(x.numpy(), "db2")
    with pytest.raises(ValueError, match=r"unknown discrete wavelet 'db999'.*pywt.wavelist"):
        dwt2(x, "db999")
    with pytest.raises(TypeError, match="wavelet must be a name"):
        dwt2(x, 3)
    with pytest.raises(ValueError, match="same length"):
        wavelet_filters(([1, 1], [1, -1], [1, 1], [1, -1, 0, 0]))
    with pytest.raises(ValueError, match=r"shape \(4, L\)"):
        dwt2(x, torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2 sample"):
        dwt2(_rand(1, 1, 1, 8), "haar", "reflect")


def test_bad_levels_raise_clear_errors():
    x = _rand(1, 1, 32, 27)
    with pytest.raises(ValueError, match="level must be an integer >= 1"):
        wavedec2(x, "db2", level=0)
    with pytest.raises(ValueError, match="level must be an integer >= 1"):
        wavedec2(x, "db2", level=-2)
    with pytest.raises(TypeError, match="level must be an integer >= 1"):
        wavedec2(x, "db2", level=2.0)
    with pytest.raises(TypeError, match="level must be an integer >= 1"):
        wavedec2(x, "db2", level=True)
    assert len(wavedec2(x, "db2", level=np.int64(2))) == 3
    # sym4 (8 taps): 27 -> 17 -> 12 -> 9 -> 8 -> 7 columns; a 6th level would not shrink.
    assert len(wavedec2(x, "sym4", level=5)) == 6
    with pytest.raises(ValueError, match=r"level 6 is too high for a 32x27 input .* the maximum is 5"):
        wavedec2(x, "sym4", level=6)
    with pytest.raises(ValueError, match=r"level 9 is too high .*'periodization': the maximum is 5"):
        wavedec2(x, "haar", level=9, mode="periodization")


def test_mismatched_coefficients_raise_clear_errors():
    x = _rand(2, 3, 16, 16)
    ll, highs = dwt2(x, "db2")
    with pytest.raises(ValueError, match=r"shape \(B, C, 3, h, w\)"):
        idwt2(ll, highs[:, :, :2], "db2")
    with pytest.raises(ValueError, match=r"shape \(B, C, 3, h, w\)"):
        idwt2(ll, highs[:1], "db2")
    with pytest.raises(ValueError, match="spatial size .* must match"):
        idwt2(ll, highs[..., :-1], "db2")
    with pytest.raises(ValueError, match="5D tensor"):
        idwt2(ll, highs[:, :, 0], "db2")
    with pytest.raises(ValueError, match="too small for a 8-tap wavelet"):
        idwt2(ll[..., :2, :2], highs[..., :2, :2], "sym4")
    coeffs = wavedec2(x, "db2", level=2)
    with pytest.raises(ValueError, match=r"coeffs\[1\].*do not fit the approximation"):
        waverec2([coeffs[0][..., :-2, :]] + coeffs[1:], "db2")
    with pytest.raises(ValueError, match=r"coeffs\[2\].*do not fit"):
        waverec2(coeffs[:2] + [coeffs[2][..., :7, :7]], "db2")
    with pytest.raises(ValueError, match="non-empty list"):
        waverec2([], "db2")
