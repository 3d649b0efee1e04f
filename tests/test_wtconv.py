"""WTConv2d / WTConv1d (layers/wtconv.py) against the public modules, PyWavelets and themselves.

The public modules' state dicts, inputs and float64 outputs are in ``tests/data/wtconv_public.pt``,
written by ``benchmarks/wtconv_parity.py`` from BGU-CS-VIL/WTConv (db1, db2, db3, sym4; levels
0-5; stride 1 and 2; odd sizes; several widths and kernel sizes), so no copy of the public code
is needed here.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.fx

from wavevision.layers import WTConv1d, WTConv2d, min_wtconv_size
from wavevision.layers.wtconv import max_wtconv_levels, wavelet_conv_filters, wtconv_dwt2, wtconv_idwt2
from wavevision.models._builder import CheckpointMismatchError, load_state_dict_strict

from _optional import require

FIXTURE = torch.load(Path(__file__).parent / "data" / "wtconv_public.pt", weights_only=True)
HAAR = ("db1", "haar")


def _unpack(case: dict) -> dict[str, torch.Tensor]:
    """The public state dict of a fixture case (benchmarks/wtconv_parity.py's ``pack_state``)."""
    sizes = [int(torch.Size(s).numel()) for s in case["shapes"]]
    values = case["values"].split(sizes)
    return {k: v.reshape(s) for k, v, s in zip(case["keys"], values, case["shapes"])}


def _case_id(case: dict) -> str:
    a = case["args"]
    return f"{a['wt_type']}-l{a['wt_levels']}-s{a['stride']}-c{a['in_channels']}-k{a['kernel_size']}"


def _needs_pywt(wavelet: str) -> None:
    if wavelet not in HAAR:
        require("pywt")  # filters of other wavelets come from PyWavelets


def _check_public_case(cls: type, case: dict) -> None:
    args = case["args"]
    _needs_pywt(args["wt_type"])
    layer = cls(**args)
    assert sum(p.numel() for p in layer.parameters()) == case["params"]
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == case["trainable"]
    public = _unpack(case)
    # Our filters are the public ones bit for bit, and the whole state dict loads strictly.
    assert torch.equal(layer.wt_filter, public["wt_filter"]) and torch.equal(layer.iwt_filter, public["iwt_filter"])
    assert list(layer.state_dict()) == case["keys"]
    load_state_dict_strict(layer, public)
    x, want = case["input"], case["output"]
    with torch.no_grad():
        got32 = layer(x)
        got64 = layer.double()(x.double())
    assert got32.dtype == torch.float32 and got32.shape == want.shape
    torch.testing.assert_close(got32.double(), want, rtol=0, atol=1e-5)
    # float64: the same arithmetic as the public code to rounding; the fast Haar kernels use the
    # exact 1/2 where the public filters hold sqrt(1/2) rounded to float32 (a 1e-7 relative change).
    fast = getattr(layer, "fast_haar", False)
    torch.testing.assert_close(got64, want, rtol=0, atol=1e-6 if fast else 1e-12)
    if fast:
        layer.use_fast_haar = False  # the public arithmetic on the stored filters
        with torch.no_grad():
            torch.testing.assert_close(layer(x.double()), want, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # kernel_size 4, as the public code
@pytest.mark.parametrize("case", FIXTURE["2d"], ids=_case_id)
def test_wtconv2d_loads_the_public_state_dict_and_reproduces_its_output(case):
    _check_public_case(WTConv2d, case)


@pytest.mark.parametrize("case", FIXTURE["1d"], ids=_case_id)
def test_wtconv1d_loads_the_public_state_dict_and_reproduces_its_output(case):
    _check_public_case(WTConv1d, case)


def test_the_fixture_covers_what_the_issue_asks():
    cases = [c["args"] for c in FIXTURE["2d"]]
    for wavelet in ("db1", "db2"):
        assert {a["wt_levels"] for a in cases if a["wt_type"] == wavelet} >= {1, 2, 3, 4, 5}
        assert {a["stride"] for a in cases if a["wt_type"] == wavelet} == {1, 2}
    assert {"db3", "sym4"} <= {a["wt_type"] for a in cases}
    assert any(c["input"].shape[-1] % 2 and c["input"].shape[-2] % 2 for c in FIXTURE["2d"])  # odd sizes
    assert len({a["kernel_size"] for a in cases}) >= 3 and len({a["in_channels"] for a in cases}) >= 3


def test_output_shape_and_defaults():
    layer = WTConv2d(6, 6)
    assert (layer.kernel_size, layer.stride, layer.wt_levels, layer.wt_type) == (5, 1, 1, "db1")
    assert layer.base_conv.bias is not None and not layer.wt_filter.requires_grad and not layer.iwt_filter.requires_grad
    assert WTConv2d(6, 6, stride=2, wt_levels=3)(torch.rand(2, 6, 13, 16)).shape == (2, 6, 7, 8)
    assert WTConv1d(6, 6, stride=2, wt_levels=2)(torch.rand(2, 6, 13)).shape == (2, 6, 6)
    assert "wt_levels=1" in repr(layer) and "kernel_size=5" in repr(layer)


def test_min_size_and_max_levels_agree():
    assert [min_wtconv_size(n) for n in range(7)] == [1, 2, 3, 5, 9, 17, 33]
    for side in range(1, 70):
        levels = max_wtconv_levels(side)
        assert min_wtconv_size(levels) <= side < min_wtconv_size(levels + 1)
    WTConv2d(2, 2, wt_levels=5)(torch.rand(1, 2, 17, 17))  # the smallest map five levels take
    x = torch.rand(1, 2, 5, 5)  # three levels: 5 -> 3 -> 2, and the last level splits two samples
    assert WTConv2d(2, 2, wt_levels=3)(x).shape == x.shape


# --------------------------------------------------------------------------- the transforms


@pytest.mark.parametrize("shape", [(2, 3, 9, 12), (1, 2, 11, 7)])
def test_haar_level_equals_pywt_dwt2_and_the_filter_path(shape):
    """One analysis level: the fast Haar kernels (band-major), the stored-filter convolution (float64
    filters, bands per channel) and PyWavelets' dwt2 (mode 'zero': odd sides padded at the end)
    agree; synthesis inverts it."""
    pywt = require("pywt")
    x = torch.randn(shape, dtype=torch.float64)
    dec, rec = wavelet_conv_filters("db1", shape[1], dtype=torch.float64)
    bands = [torch.from_numpy(b) for b in _flat(pywt.dwt2(x.numpy(), "haar", mode="zero"))]
    refs = {True: torch.cat(bands, dim=1), False: torch.stack(bands, dim=2).flatten(1, 2)}
    for fast, ref in refs.items():
        torch.testing.assert_close(wtconv_dwt2(x, dec, fast), ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(wtconv_idwt2(ref, rec, shape[-2:], fast), x, rtol=0, atol=1e-12)


def _flat(coeffs: tuple) -> list:
    """pywt.dwt2's ``(cA, (cH, cV, cD))`` as ``[cA, cH, cV, cD]`` (LL, LH, HL, HH)."""
    return [coeffs[0], *coeffs[1]]


@pytest.mark.parametrize("wavelet", ["db2", "sym4"])
def test_longer_filters_are_pywt_periodization_away_from_the_border(wavelet):
    """The public transform correlates with the reversed filters at offset L/2 - 1, which is
    PyWavelets' 'periodization' alignment with zeros outside the map: on a map whose border
    is zero the two extensions agree, so the coefficients equal pywt.dwt2's exactly."""
    pywt = require("pywt")
    taps = pywt.Wavelet(wavelet).dec_len
    x = torch.zeros(1, 2, 4 * taps, 4 * taps + 2, dtype=torch.float64)
    x[..., taps:-taps, taps:-taps] = torch.randn(1, 2, 2 * taps, 2 * taps + 2, dtype=torch.float64)
    dec, _ = wavelet_conv_filters(wavelet, 2, dtype=torch.float64)
    bands = [torch.from_numpy(b) for b in _flat(pywt.dwt2(x.numpy(), wavelet, mode="periodization"))]
    torch.testing.assert_close(wtconv_dwt2(x, dec, False), torch.stack(bands, dim=2).flatten(1, 2), rtol=0, atol=1e-12)


def _exact_haar(layer: WTConv2d) -> WTConv2d:
    """``layer`` in float64 with the exact Haar filters (the stored ones are float32-rounded)."""
    layer = layer.double()
    dec, rec = wavelet_conv_filters("db1", layer.in_channels, dtype=torch.float64)
    with torch.no_grad():
        layer.wt_filter.copy_(dec)
        layer.iwt_filter.copy_(rec)
    return layer


@pytest.mark.parametrize("levels,stride,size", [(1, 1, (8, 10)), (3, 2, (13, 11)), (5, 1, (17, 23))])
def test_fast_haar_path_equals_the_filter_path_of_the_same_layer(levels, stride, size):
    torch.manual_seed(levels)
    layer = _exact_haar(WTConv2d(3, 3, 3, stride=stride, wt_levels=levels))
    for scale in layer.wavelet_scale:
        torch.nn.init.uniform_(scale.weight, -1, 1)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    results = []
    for fast in (True, False):
        layer.use_fast_haar = fast
        assert layer.fast_haar is fast
        x.grad = None
        layer.zero_grad()
        y = layer(x)
        y.backward(torch.ones_like(y))
        results.append([y.detach(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters() if p.requires_grad])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_channels_last_convolutions_on_large_maps_change_nothing(fmt, monkeypatch):
    """The accel pass's FastWTConv2d runs the depthwise convolutions of CPU maps of 28x28 and more
    channels-last (a speed choice): outputs and gradients equal the plain layer's, in the input's format."""
    from wavevision import accel
    from wavevision.accel import wtconv as fast_wtconv

    torch.manual_seed(0)
    layer = WTConv2d(3, 3, 5, stride=2, wt_levels=2).double()
    x = torch.randn(2, 3, 59, 61, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    assert fast_wtconv.conv_layout(x).is_contiguous(memory_format=torch.channels_last)
    small = x[..., :27, :28]
    assert fast_wtconv.conv_layout(small) is small
    runs = []
    for enable in (True, False):
        accel.accelerate(layer, enable=enable)
        assert (type(layer) is accel.FastWTConv2d) is enable
        x.grad = None
        layer.zero_grad()
        y = layer(x)
        assert y.is_contiguous(memory_format=fmt)
        y.backward(torch.cos(y.detach()))
        runs.append([y.detach(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters() if p.requires_grad])
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("side", [12, 28])
@pytest.mark.parametrize("fast", [True, False])
def test_the_input_is_saved_for_backward_once(side, fast):
    """Autograd keeps one copy of the input: an even map is not padded into a copy before its
    transform, and the channels-last copy of a large map feeds both the base convolution and the
    first transform (the public module also saves its input once)."""
    layer = WTConv2d(2, 2, 3, wt_levels=2)
    layer.use_fast_haar = fast
    x = torch.randn(2, 2, side, side)
    saved: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x.requires_grad_())
    copies = [t for t in saved.values() if t.shape == x.shape and torch.equal(t, x)]
    assert len(copies) == 1


# --------------------------------------------------------------------------- gradients


def _gradcheck(layer: torch.nn.Module, x: torch.Tensor) -> None:
    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    fixed = {n: p for n, p in layer.named_parameters() if not p.requires_grad}
    params = tuple(layer.get_parameter(n).detach().clone().requires_grad_() for n in names)

    def f(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, {**fixed, **dict(zip(names, ps))}, (x,))

    assert torch.autograd.gradcheck(f, (x, *params), fast_mode=True)


@pytest.mark.parametrize("wavelet,levels,stride", [("db1", 1, 2), ("db1", 2, 1), ("db1", 3, 2),
                                                   ("db2", 1, 1), ("db2", 2, 2), ("db2", 3, 1)])
def test_gradcheck_float64(wavelet, levels, stride):
    _needs_pywt(wavelet)
    torch.manual_seed(0)
    layer = WTConv2d(2, 2, 3, stride=stride, wt_levels=levels, wt_type=wavelet).double()
    x = torch.randn(1, 2, 9, 7, dtype=torch.float64, requires_grad=True)
    _gradcheck(layer, x)


@pytest.mark.parametrize("wavelet", ["db1", "db2"])
def test_gradcheck_float64_1d(wavelet):
    _needs_pywt(wavelet)
    torch.manual_seed(0)
    layer = WTConv1d(2, 2, 3, stride=2, wt_levels=2, wt_type=wavelet).double()
    _gradcheck(layer, torch.randn(2, 2, 11, dtype=torch.float64, requires_grad=True))


def test_gradcheck_float64_haar_filter_path():
    torch.manual_seed(0)
    layer = WTConv2d(2, 2, 3, stride=2, wt_levels=2).double()
    layer.use_fast_haar = False
    _gradcheck(layer, torch.randn(1, 2, 7, 9, dtype=torch.float64, requires_grad=True))


# --------------------------------------------------------------------------- formats and tracing


@pytest.mark.parametrize("wavelet", ["db1", "db2"])
def test_channels_last_float64_and_bfloat16(wavelet):
    _needs_pywt(wavelet)
    torch.manual_seed(0)
    layer = WTConv2d(4, 4, 5, wt_levels=3, wt_type=wavelet)
    assert layer.fast_haar is (wavelet == "db1")
    x = torch.randn(2, 4, 19, 22)
    ref = layer(x)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    y = layer(xc)
    y.sum().backward()
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-6)
    assert xc.grad is not None and xc.grad.shape == x.shape
    y64 = layer.double()(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), ref, rtol=1e-5, atol=1e-5)
    yb = layer.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.float(), ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("wavelet", ["db1", "db2"])
def test_fx_symbolic_trace_and_jit_trace_equal_the_module(wavelet):
    _needs_pywt(wavelet)
    torch.manual_seed(0)
    layer = WTConv2d(3, 3, 5, stride=2, wt_levels=3, wt_type=wavelet).double().eval()
    x = torch.randn(2, 3, 19, 22, dtype=torch.float64)
    graph = torch.fx.symbolic_trace(layer)
    targets = {getattr(n.target, "__name__", str(n.target)) for n in graph.graph.nodes if n.op == "call_function"}
    assert {"wtconv_check_input", "wtconv_dwt2", "wtconv_idwt2"} <= targets
    with torch.no_grad():
        assert torch.equal(graph(x), layer(x))
        y = x[:, :, :17, :15]  # nothing about the size was frozen into the graph
        assert torch.equal(graph(y), layer(y))
    with pytest.raises(ValueError, match="built for 3 channels"):
        graph(torch.rand(1, 4, 16, 16, dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.trace's deprecation and shape-to-bool warnings
        traced = torch.jit.trace(layer, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), layer(x), rtol=0, atol=1e-12)
    line = WTConv1d(3, 3, 3, wt_levels=2, wt_type=wavelet)
    s = torch.randn(2, 3, 21)
    assert torch.equal(torch.fx.symbolic_trace(line)(s), line(s))


@pytest.mark.slow  # a cold Dynamo trace per wavelet (seconds)
@pytest.mark.parametrize("wavelet", ["db1", "db2"])
def test_torch_compile_is_one_graph_and_equals_the_module(wavelet):
    _needs_pywt(wavelet)
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = WTConv2d(3, 3, 5, stride=2, wt_levels=3, wt_type=wavelet).double()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)  # fullgraph: any graph break fails
    x = torch.randn(2, 3, 30, 29, dtype=torch.float64, requires_grad=True)
    runs = []
    for f in (layer, compiled):
        x.grad = None
        y = f(x)
        y.backward(torch.cos(y.detach()))
        runs.append([y.detach(), x.grad.clone()])
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- errors


def _one_line(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("cls", [WTConv2d, WTConv1d])
def test_in_channels_must_equal_out_channels(cls):
    with pytest.raises(ValueError) as e:
        cls(8, 16)
    assert "out_channels must equal in_channels" in _one_line(e) and "1x1 convolution" in str(e.value)


@pytest.mark.parametrize("name,close", [("hasr", "haar"), ("db99", "db9"), ("sym", "sym")])
def test_unknown_wavelet_suggests_close_names(name, close):
    require("pywt")
    with pytest.raises(ValueError) as e:
        WTConv2d(4, 4, wt_type=name)
    message = _one_line(e)
    assert repr(name) in message and f"did you mean '{close}" in message


def test_other_wavelets_without_pywavelets_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pywt", None)  # import pywt raises ImportError
    with pytest.raises(ImportError) as e:
        WTConv2d(4, 4, wt_type="db2")
    assert "wt_type='db2' needs PyWavelets" in _one_line(e) and "wavevision[wavelets]" in str(e.value)
    assert WTConv2d(4, 4, wt_type="haar").fast_haar  # Haar needs nothing else


def test_bad_arguments():
    for kwargs, what in [({"kernel_size": 0}, "kernel_size"), ({"stride": 1.5}, "stride"), ({"wt_levels": -1}, "wt_levels")]:
        with pytest.raises(ValueError, match=what) as e:
            WTConv2d(4, 4, **kwargs)
        _one_line(e)


def test_levels_deeper_than_the_map_allows():
    layer = WTConv2d(2, 2, wt_levels=4)
    with pytest.raises(ValueError) as e:
        layer(torch.rand(1, 2, 16, 8))
    message = _one_line(e)
    assert "at least 9x9" in message and "got 16x8" in message and "at most 3 here" in message
    with pytest.raises(ValueError, match="at least 5 samples") as e:
        WTConv1d(2, 2, wt_levels=3)(torch.rand(1, 2, 4))
    _one_line(e)


def test_wrong_inputs():
    layer = WTConv2d(3, 3)
    for x, error, what in [(torch.rand(1, 4, 8, 8), ValueError, "built for 3 channels, got 4"),
                           (torch.rand(3, 8, 8), ValueError, "x.unsqueeze"),
                           (torch.rand(1, 1, 3, 8, 8), ValueError, "4D"),
                           (torch.ones(1, 3, 8, 8, dtype=torch.long), TypeError, "x.float()"),
                           ([[1.0]], TypeError, "got list")]:
        with pytest.raises(error, match=what.replace("(", r"\(").replace(")", r"\)")) as e:
            layer(x)
        _one_line(e)
    with pytest.raises(ValueError, match=r"\(batch, channels, length\)") as e:
        WTConv1d(3, 3)(torch.rand(1, 3, 8, 8))
    _one_line(e)


def test_a_state_dict_of_another_size_names_the_first_mismatching_key():
    small, big = WTConv2d(4, 4, 3, wt_levels=2), WTConv2d(4, 4, 5, wt_levels=2)
    with pytest.raises(CheckpointMismatchError) as e:
        load_state_dict_strict(small, big.state_dict())
    message = _one_line(e)
    assert "'base_conv.weight': checkpoint (4, 1, 5, 5) vs model (4, 1, 3, 3)" in message
    with pytest.raises(CheckpointMismatchError) as e:
        load_state_dict_strict(small, WTConv2d(4, 4, 3, wt_levels=3).state_dict())
    assert "unexpected key(s), e.g. ['wavelet_convs.2.weight'" in _one_line(e)
