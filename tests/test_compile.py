"""torch.compile: one graph (no graph break) for every registered model, a training step through
AOTAutograd, one Inductor smoke test, and the C++-compiler check of ``compile_model``."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from _slow import small_build_cases
from wavevision.export import compile_model, find_cxx_compiler

from _small import small_model, timm_models

NAMES = timm_models()


pytestmark = pytest.mark.usefixtures("one_thread")  # two OpenMP threads per op wait on each other here


class _Graphs:
    """A torch.compile backend that records the graphs Dynamo hands it and runs them as they are."""

    def __init__(self) -> None:
        self.graphs: list = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs):
        self.graphs.append(gm)
        return gm.forward


def _input(model, n: int = 2) -> torch.Tensor:
    side = getattr(model, "min_input_size", 0) or 16
    return torch.rand(n, model.in_chans, side, side, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=()))  # a cold Dynamo trace each (seconds)
def test_whole_model_is_one_graph(name):
    """fullgraph=True fails on any graph break, inside the blocks or anywhere else."""
    torch._dynamo.reset()
    model = small_model(name).eval()
    x = _input(model)
    backend = _Graphs()
    compiled = torch.compile(model, backend=backend, fullgraph=True, dynamic=False)
    with torch.no_grad():
        out, ref = compiled(x), model(x)
    assert len(backend.graphs) == 1
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    # The traced graph uses the traceable Haar path: no custom autograd Function inside it.
    assert not any("HaarDWT" in str(n.target) for n in backend.graphs[0].graph.nodes)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wavemix", "wavemix_lite_8_10"])
def test_training_step_through_aot_autograd(name):
    """Train mode (dropout masks from the custom op, BatchNorm batch statistics) with backward, one graph."""
    torch._dynamo.reset()
    narrow = dict(final_dim=32, ff_channel=32) if name == "wavemix" else {}  # level 3, patchify stem, narrower
    model = small_model(name, dropout=0.5, **narrow).train()
    x = _input(model, 4).requires_grad_()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.manual_seed(0)
    out = compiled(x)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in model.parameters())
    # Without dropout the compiled step equals eager, gradients included (float64: the tiny training-mode
    # batch statistics would amplify float32 rounding).
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    model.double()
    x = x.detach().double().requires_grad_()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    grads = []
    for fn in (compiled, model):
        x.grad = None
        model.zero_grad()
        fn(x).square().sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-9 * max(1.0, b.abs().max().item()), rtol=1e-7)


@pytest.mark.slow
def test_compiled_dropout_mask_is_consistent_between_forward_and_backward():
    from wavevision.layers.wavemix_block import FastDropout

    torch._dynamo.reset()
    drop = FastDropout(0.5).train()
    fn = torch.compile(lambda t: drop(t) * 3.0, backend="aot_eager", fullgraph=True)
    x = torch.rand(64, 32, 4, 4) + 0.5  # no zeros of its own
    x.requires_grad_()
    y = fn(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    kept = y != 0
    assert 0.45 < kept.float().mean().item() < 0.55
    torch.testing.assert_close(g, kept.float() * 6.0)  # d/dx of 3 * x * mask * 2
    assert not torch.equal(fn(x) != 0, kept)  # fresh masks on every call


@pytest.mark.slow
@pytest.mark.skipif(find_cxx_compiler() is None, reason="Inductor needs a C++ compiler")
def test_inductor_smoke():
    """The real Inductor backend (a cold compile, kept small): the Haar pyramid and its inverse, odd size."""
    from wavevision.ops import haar_wavedec2, haar_waverec2

    torch._dynamo.reset()

    def roundtrip(t):
        coeffs = haar_wavedec2(t, 3)
        return haar_waverec2([c * 2.0 for c in coeffs], size=t.shape[-2:]), coeffs[0]

    x = torch.rand(2, 3, 13, 10)
    compiled = compile_model(roundtrip, device="cpu", fullgraph=True)
    rec, first = compiled(x)
    torch.testing.assert_close(rec, 2 * x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first, roundtrip(x)[1], atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_compile_without_a_cxx_compiler_names_the_fix(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = small_model("wavemix_lite_8_10")
    with pytest.raises(RuntimeError, match=r"C\+\+ compiler.*apt-get install g\+\+.*aot_eager"):
        compile_model(model)
    assert find_cxx_compiler() is None
    compiled = compile_model(model, backend="aot_eager")  # backends that generate no code still work
    assert callable(compiled)
