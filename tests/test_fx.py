"""``torch.fx`` symbolic tracing of every model (what timm's and torchvision's feature extractors use).

Shape checks, padding and the run-time choices of the CPU fast paths are single graph nodes
(``torch.fx.wrap``), so a traced graph computes exactly what the module computes.
"""
from __future__ import annotations

import pytest
import torch
import torch.fx

import wavevision
from _slow import FEWER_MODELS, model_cases, small_build_cases

from _small import small_model, takes_depth, timm_models

NAMES = timm_models()


def _x(model, n=2, side=None, dtype=torch.float32, seed=1):
    side = side or (max(32, model.min_input_size) if model.in_chans == 3 and hasattr(model, "min_input_size") else 12)
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, model.in_chans, side, side + 3, generator=g, dtype=torch.float64).to(dtype)


def _outputs(out):
    return [out] if isinstance(out, torch.Tensor) else [out.logits, out.aux_logits]


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_traced_eval_graph_equals_the_module_exactly(name):
    model = small_model(name, depth=2) if takes_depth(name) else small_model(name)
    model.eval()
    graph = torch.fx.symbolic_trace(model)
    targets = {getattr(n.target, "__name__", str(n.target)) for n in graph.graph.nodes if n.op == "call_function"}
    assert "check_image" in targets  # the input check is one node, run on every call
    x = _x(model)
    with torch.no_grad():
        assert torch.equal(graph(x), model(x))
    with torch.no_grad():  # another size: nothing about the sizes was frozen into the graph
        y = _x(model, n=1, side=x.shape[-2] + 5)
        assert torch.equal(graph(y), model(y))
    with pytest.raises(ValueError, match="input channel"):
        graph(torch.rand(1, model.in_chans + 1, 16, 16))


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_traced_training_graph_gives_the_modules_gradients(name):
    """In training the graph records the plain modules (the lean paths are eager-only): same
    random numbers in the same order (dropout, MixToken), gradients equal to float64 rounding."""
    kw = {"depth": 2} if takes_depth(name) else {}
    model = small_model(name, **kw).double().train()
    twin = small_model(name, **kw).double().train()
    twin.load_state_dict(model.state_dict())
    graph = torch.fx.symbolic_trace(twin)
    x = _x(model, dtype=torch.float64)
    results = []
    for m in (model, graph):
        torch.manual_seed(5)
        out = _outputs(m(x))
        sum((o * torch.linspace(-1, 1, o.shape[-1], dtype=o.dtype)).sum() for o in out).backward()
        results.append(({k: p.grad for k, p in m.named_parameters()}, out))
    (grads_a, out_a), (grads_b, out_b) = results
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    for k, g in grads_a.items():
        torch.testing.assert_close(grads_b[k], g, rtol=1e-9, atol=1e-12, msg=k)


@pytest.mark.parametrize("name", ["wavemix_192_16_l3", "wave_vit_s", "wavemix_seg"])
def test_forward_intermediates_and_backbones_trace(name):
    model = small_model(name).eval()
    x = _x(model)

    class Intermediates(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, t):
            return self.m.forward_intermediates(t, intermediates_only=True)

    graph = torch.fx.symbolic_trace(Intermediates(model))
    with torch.no_grad():
        for a, b in zip(graph(x), model.forward_intermediates(x, intermediates_only=True)):
            assert torch.equal(a, b)
    backbone = small_model(name, features_only=True).eval()
    traced = torch.fx.symbolic_trace(backbone)
    with torch.no_grad():
        for a, b in zip(traced(x), backbone(x)):
            assert torch.equal(a, b)


def test_checkpointing_is_left_out_of_traced_graphs():
    """A checkpointed model traces to the plain graph (torch.utils.checkpoint cannot take a Proxy)."""
    model = small_model("wavemix", depth=2).train()
    model.set_grad_checkpointing()
    graph = torch.fx.symbolic_trace(model)
    assert not any("checkpoint" in str(n.target) for n in graph.graph.nodes)
    x = torch.rand(2, 3, 16, 16)
    torch.manual_seed(0)
    a = graph(x)
    torch.manual_seed(0)
    torch.testing.assert_close(model(x), a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_torch_jit_trace_passes_its_own_check_and_equals_the_module(name):
    """``torch.jit.trace(model.eval(), x)`` as users and timm's tests call it: gradients enabled,
    and the default check re-traces without them, so both runs must record the same graph."""
    model = small_model(name, depth=2) if takes_depth(name) else small_model(name)
    model.eval()
    x = _x(model)
    traced = torch.jit.trace(model, x)
    y = _x(model, n=1, seed=3)
    with torch.no_grad():
        for got, want in zip(_outputs(traced(y)), _outputs(model(y))):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS)
                         + model_cases(sorted(set(wavevision.list_models()) - set(NAMES)), fast=FEWER_MODELS))
def test_the_readme_tracing_statement_holds(name, tmp_path):
    """README, "torch.fx" / "TorchScript": every model but the detectors traces with ``torch.fx.symbolic_trace``
    and ``torch.jit.trace`` (the tests above check each of them, NAMES); a detector's whole forward (lists of
    images in, one dict per image out, data-dependent post-processing) traces with neither, while its
    ``model.backbone`` (backbone + FPN) traces with both; no model compiles with ``torch.jit.script``."""
    detector = wavevision.get_entry(name).task == "detection"
    assert (name not in NAMES) == detector
    if detector:
        from _optional import require

        require("torchvision")
        from test_detection import tiny

        model = tiny(name).eval()
        x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # FCOS's GroupNorm needs 2 at P7's 1x1
        with pytest.raises(torch.fx.proxy.TraceError):
            torch.fx.symbolic_trace(model)
        with pytest.raises(RuntimeError, match="Only tensors, lists, tuples of tensors, or dictionary of tensors"):
            torch.jit.trace(model, x)
        from wavevision.export import export_torchscript

        with pytest.raises(TypeError, match="one dict per image: a detector's whole forward does not trace"):
            export_torchscript(model, tmp_path / "det.pt", example=x)
        assert not (tmp_path / "det.pt").exists()
        graph, traced = torch.fx.symbolic_trace(model.backbone), torch.jit.trace(model.backbone, x, strict=False)
        with torch.no_grad():
            want = model.backbone(x)
            for got in (graph(x), traced(x)):
                assert list(got) == list(want)
                for k in want:
                    torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
    else:
        model = small_model(name).eval()
    with pytest.raises(Exception):  # noqa: B017 - TorchScript's compiler raises several types
        torch.jit.script(model)
