"""The fast Haar transform against PyWavelets, its inverse, gradients and memory behaviour."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wavevision.ops.haar import haar_dwt2, haar_idwt2, haar_wavedec2, haar_waverec2

pywt = pytest.importorskip("pywt")

SIZES = [(8, 12), (7, 9), (1, 1), (2, 5), (33, 16)]


def _rand(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _split(y, layout):
    c = y.shape[1] // 4
    if layout == "band":
        return [y[:, i * c : (i + 1) * c] for i in range(4)]
    det = y[:, c:].unflatten(1, (c, 3))
    return [y[:, :c], det[:, :, 0], det[:, :, 1], det[:, :, 2]]


@pytest.mark.parametrize("layout", ["wavemix", "band"])
@pytest.mark.parametrize("size", SIZES)
def test_single_level_matches_pywt(layout, size):
    x = _rand(2, 3, *size)
    ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), "haar", mode="zero")
    for ours, ref in zip(_split(haar_dwt2(x, layout), layout), [ca, ch, cv, cd]):
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(32, 48), (37, 21)])
def test_multilevel_matches_pywt_wavedec2(levels, size):
    x = _rand(2, 2, *size)
    ref = pywt.wavedec2(x.numpy(), "haar", mode="zero", level=levels)
    ours = haar_wavedec2(x, levels, layout="band")
    assert len(ours) == levels
    np.testing.assert_allclose(_split(ours[-1], "band")[0].numpy(), ref[0], atol=1e-12)
    for j in range(levels):  # ours finest first, pywt coarsest first
        _, lh, hl, hh = _split(ours[j], "band")
        for a, b in zip((lh, hl, hh), ref[levels - j]):
            np.testing.assert_allclose(a.numpy(), b, atol=1e-12)
    rec = haar_waverec2(ours, layout="band", size=size)
    np.testing.assert_allclose(rec.numpy(), x.numpy(), atol=1e-12)
    np.testing.assert_allclose(rec.numpy(), pywt.waverec2(ref, "haar", mode="zero")[..., : size[0], : size[1]], atol=1e-12)


@pytest.mark.parametrize("layout", ["wavemix", "band"])
@pytest.mark.parametrize("size", SIZES)
def test_perfect_reconstruction(layout, size):
    x = _rand(3, 4, *size)
    y = haar_dwt2(x, layout)
    torch.testing.assert_close(haar_idwt2(y, layout, size), x, atol=1e-12, rtol=0)


def test_hand_computed_patch():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]])
    a, b, c, d = 1.0, 2.0, 3.0, 5.0
    expected = torch.tensor([a + b + c + d, a + b - c - d, a - b + c - d, a - b - c + d]) / 2
    assert torch.equal(haar_dwt2(x, "band").flatten(), expected)
    assert torch.equal(haar_dwt2(x, "wavemix").flatten(), expected)


def test_layouts_differ_only_by_channel_permutation():
    x = _rand(2, 3, 6, 6)
    wm, band = haar_dwt2(x, "wavemix"), haar_dwt2(x, "band")
    c = 3
    perm = list(range(c)) + [c + 3 * i + k for k in range(3) for i in range(c)]
    torch.testing.assert_close(wm[:, perm], band)


@pytest.mark.parametrize("size", [(6, 8), (5, 7)])
def test_gradcheck_forward_and_inverse(size):
    x = _rand(2, 2, *size).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: haar_dwt2(t, "wavemix"), (x,))
    y = _rand(2, 8, (size[0] + 1) // 2, (size[1] + 1) // 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: haar_idwt2(t, "band", size), (y,))
    assert torch.autograd.gradgradcheck(lambda t: haar_dwt2(t, "band") ** 2, (x,))


def test_backward_is_the_inverse_and_saves_nothing():
    x = _rand(2, 3, 8, 8).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = haar_dwt2(x)
        z = haar_idwt2(y * 1.0)
    # Only the multiplication's scalar-free path; the transforms themselves save no tensor.
    assert all(t.numel() <= 1 for t in saved)
    g = _rand(*y.shape, seed=1)
    (grad,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(grad, haar_idwt2(g))
    assert z.shape == x.shape


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_dtypes(dtype, tol):
    x = _rand(2, 3, 10, 6, dtype=torch.float32)
    ref = haar_dwt2(x.double())
    y = haar_dwt2(x.to(dtype))
    assert y.dtype == dtype
    torch.testing.assert_close(y.double(), ref, atol=tol * 10, rtol=tol)
    xr = haar_idwt2(y)
    assert xr.dtype == dtype
    torch.testing.assert_close(xr.double(), x.double(), atol=tol * 20, rtol=tol * 10)


def test_channels_last_in_and_out():
    x = _rand(2, 8, 10, 12, dtype=torch.float32)
    xc = x.to(memory_format=torch.channels_last)
    y, yc = haar_dwt2(x), haar_dwt2(xc)
    assert yc.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, yc, atol=0, rtol=0)
    torch.testing.assert_close(haar_idwt2(yc), x, atol=1e-6, rtol=0)
    xg = xc.clone().requires_grad_()
    haar_dwt2(xg).square().sum().backward()
    torch.testing.assert_close(xg.grad, 2 * x, atol=1e-5, rtol=0)


def test_energy_preserved():
    x = _rand(2, 3, 16, 16)
    assert torch.allclose(haar_dwt2(x).square().sum(), x.square().sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = _rand(2, 3, 9, 14, dtype=torch.float32)
    torch.testing.assert_close(haar_dwt2(x.cuda()).cpu(), haar_dwt2(x))
    torch.testing.assert_close(haar_idwt2(haar_dwt2(x.cuda()), size=(9, 14)).cpu(), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layout", ["wavemix", "band"])
@pytest.mark.parametrize("size", SIZES)
def test_traced_path_equals_eager_path(layout, size):
    """The tensor-op formulation used under torch.compile / jit.trace / ONNX export, against the eager kernels."""
    from wavevision.ops import haar as h

    x = _rand(2, 3, *size).requires_grad_()
    y = h._HaarDWT.apply(x, layout)
    y_ops = h._forward_ops(x, layout)
    torch.testing.assert_close(y_ops, y, atol=1e-12, rtol=0)
    g = _rand(*y.shape, seed=1)
    torch.testing.assert_close(torch.autograd.grad(y_ops, x, g)[0], torch.autograd.grad(y, x, g)[0], atol=1e-12, rtol=0)
    yd = y.detach()
    torch.testing.assert_close(h._inverse_ops(yd, layout, size), h._HaarIDWT.apply(yd, layout, size), atol=1e-12, rtol=0)


def test_jit_trace_records_plain_ops_with_a_dynamic_batch():
    import warnings

    x = _rand(2, 3, 8, 10, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(lambda t: haar_idwt2(haar_dwt2(t, "band") * 2.0, "band"), x)
    assert "PythonOp" not in str(traced.graph)  # no autograd Function: serializable and exportable
    x5 = _rand(5, 3, 8, 10, dtype=torch.float32, seed=3)
    torch.testing.assert_close(traced(x5), 2 * x5, atol=1e-6, rtol=0)
