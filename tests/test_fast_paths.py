"""The CPU fast paths compute what the plain modules compute: the composed patchify stem, 1x1
convolutions as batched matrix products, the byte-mask dropout, and channels_last inputs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import wavevision
from wavevision.accel import FastDropout, PointwiseConv2d
from wavevision.bench import count_macs
from wavevision.layers import stems
from wavevision.layers.stems import PatchifyStem, patchify_stem

pytestmark = pytest.mark.usefixtures("one_thread")  # two OpenMP threads per op wait on each other here


def _plain(stem: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for m in stem:
        x = m(x)
    return x


@pytest.mark.parametrize(
    "cin,dim,patch,size",
    [(3, 64, 4, (16, 20)), (3, 192, 4, (8, 8)), (1, 32, 2, (6, 4)), (3, 64, 3, (9, 6)), (3, 192, 1, (5, 3)), (3, 64, 4, (4, 4))],
)
def test_composed_stem_equals_three_convolutions(cin, dim, patch, size, monkeypatch):
    """float64: outputs and the gradients of the input and of every stem parameter agree to rounding."""
    monkeypatch.setattr(stems, "_MIN_SAVING", 0)  # these inputs are too small to compose by default
    torch.manual_seed(0)
    stem = patchify_stem(cin, dim, patch).double().train()
    assert stem._composable()
    x = torch.randn(2, cin, *size, dtype=torch.float64, requires_grad=True)
    params = [x, *stem.parameters()]
    g = torch.randn(2, dim, size[0] // patch, size[1] // patch, dtype=torch.float64)
    ref = _plain(stem, x)
    ref_grads = torch.autograd.grad(ref, params, g)
    out = stem(x)
    grads = torch.autograd.grad(out, params, g)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def test_stem_runs_the_convolutions_when_composing_saves_nothing():
    assert not patchify_stem(3, 16, 1)._composable()  # narrow, patch 1: composed would cost more
    stem = patchify_stem(3, 64, 4)
    stem.compose = False
    assert not stem._composable()
    stem = patchify_stem(3, 64, 4)
    stem[1].register_forward_hook(lambda *a: None)  # a hook on a conv must see it run
    assert not stem._composable()
    assert isinstance(wavevision.create_model("wavemix").conv, PatchifyStem)
    big = patchify_stem(3, 64, 4)
    assert big._saving(torch.empty(32, 3, 64, 64)) > stems._MIN_SAVING > big._saving(torch.empty(1, 3, 64, 64))


def test_operation_counts_stay_those_of_the_architecture():
    """count_macs (a dispatch mode) sees the three convolutions, not the cheaper composition."""
    stem = patchify_stem(3, 64, 4).eval()
    expected = 32 * 32 * (16 * 3 * 9 + 32 * 16 * 9) + 8 * 8 * 64 * 32 * 16
    assert count_macs(stem, torch.zeros(1, 3, 32, 32)) == expected


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_equals_conv2d(fmt, bias):
    torch.manual_seed(0)
    fast = PointwiseConv2d(6, 5, bias=bias).double()
    ref = nn.Conv2d(6, 5, 1, bias=bias).double()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(3, 6, 7, 9, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
    out, want = fast(x), ref(x)
    torch.testing.assert_close(out, want, atol=1e-12, rtol=1e-12)
    g = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad(out, [x, *fast.parameters()], g), torch.autograd.grad(want, [x, *ref.parameters()], g)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    assert list(fast.state_dict()) == list(ref.state_dict())


def test_dropout_statistics_gradient_and_memory():
    drop = FastDropout(0.3).train()
    torch.manual_seed(0)
    x = torch.full((200_000,), 2.0, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = drop(x)
    kept = (y != 0).double().mean().item()
    assert abs(kept - 0.7) < 5 * math.sqrt(0.21 / 200_000)  # binomial, 5 sigma
    values = y.unique().tolist()  # p rounds to 19661/65536; kept values scaled by the inverse keep rate
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(2.0 / (1 - 19661 / 65536), rel=1e-6)
    assert [t.dtype for t in saved] == [torch.uint8]  # a 1-byte mask, not a float one
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, y.detach() / 2.0)
    # Seeded: the same mask again; unseeded: a fresh one; eval and p=0: identity.
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)
    assert not torch.equal(drop(x), y)
    assert drop.eval()(x) is x and FastDropout(0.0).train()(x) is x
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros_like(x))


def test_dropout_expectation_is_exact_and_layouts_kept():
    drop = FastDropout(0.5).train()
    torch.manual_seed(1)
    x = torch.ones(64, 16, 8, 8).to(memory_format=torch.channels_last)
    y = drop(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert abs(y.mean().item() - 1.0) < 5 * math.sqrt(1.0 / y.numel())
    nc = drop(torch.ones(4, 3, 5, 5)[:, :, 1:])  # a non-contiguous view
    assert nc.shape == (4, 3, 4, 5)


@pytest.mark.parametrize("name", ["wavemix", "wavemix_lite_8_5", "wavemix_seg"])
def test_channels_last_inputs_give_the_same_result(name):
    torch.manual_seed(0)
    kwargs = dict(depth=1, final_dim=64, ff_channel=64) if name == "wavemix" else dict(depth=1)
    model = wavevision.create_model(name, **kwargs).eval()
    x = torch.rand(2, model.in_chans, 32, 32)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
