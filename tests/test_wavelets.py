"""Swappable wavelets (``wavelet=`` / ``mode=``): WaveMix blocks and models, Wave-ViT's wavelet
attention, the ablation. Coefficients inside the layers are checked against PyWavelets."""
from __future__ import annotations

import contextlib
import json
import sys

import numpy as np
import pytest
import torch

import wavevision
from wavevision.layers import WaveMixBlock
from wavevision.layers import wave_attention as attn_mod
from wavevision.layers import wavemix_block as block_mod
from wavevision.layers.wave_attention import WaveAttention
from wavevision.ops.haar import haar_dwt2, haar_idwt2, haar_wavedec2
from wavevision.ops.transform import (
    DEFAULT_MODE,
    check_wavelet,
    wavelet_bank,
    wavelet_dwt2,
    wavelet_idwt2,
    wavelet_pyramid,
)

from _optional import require

pytestmark = pytest.mark.usefixtures("one_thread")

WAVELETS = ["db2", "sym4", "bior2.2"]


@contextlib.contextmanager
def float64_default():
    """Build layers whose filter buffers hold PyWavelets' float64 coefficients exactly."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _record(monkeypatch, module, name):
    """Wrap ``module.name`` (the transform a layer calls) and keep each call's input and output."""
    calls = []
    inner = getattr(module, name)

    def wrapper(x, *args, **kwargs):
        out = inner(x, *args, **kwargs)
        calls.append((x.detach().clone(), out))
        return out

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _details(y: torch.Tensor, c: int, layout: str = "wavemix") -> np.ndarray:
    """(B, C, 3, h, w) details (cH, cV, cD) out of a packed (B, 4C, h, w) tensor."""
    det = y[:, c:]
    if layout == "wavemix":
        det = det.unflatten(1, (c, 3))
    else:
        det = det.unflatten(1, (3, c)).transpose(1, 2)
    return det.detach().numpy()


def _centre(a: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (a.shape[-2] - h) // 2, (a.shape[-1] - w) // 2
    return a[..., top : top + h, left : left + w]


# --------------------------------------------------------------------------------------------
# Haar stays the fast path, bit for bit


def test_haar_default_is_the_fast_path_bit_for_bit(monkeypatch):
    torch.manual_seed(0)
    model = wavevision.create_model("wavemix_lite_8_10").eval()
    for blk in model.layers:
        assert blk.wavelet == "haar" and blk.mode == DEFAULT_MODE and blk.wavelet_bank is None
        assert "wavelet_bank" not in blk.state_dict()
    x = torch.linspace(0, 1, 28 * 28).reshape(1, 1, 28, 28)
    with torch.no_grad():
        y = model(x)
        # The pre-wavelet= computation written out: the Haar transform called directly.
        h = model.conv(x)
        for blk in model.layers:
            h = blk.feedforward(haar_dwt2(blk.reduction(h), layout="wavemix")) + h
        assert torch.equal(y, model.pool[2](h.mean((2, 3))))
    # db1 and any mode give the same Haar model (with even sizes a 2-tap filter never pads).
    for kwargs in ({"wavelet": "db1"}, {"mode": "zero"}, {"wavelet": "HAAR", "mode": "symmetric"}):
        torch.manual_seed(0)
        other = wavevision.create_model("wavemix_lite_8_10", **kwargs).eval()
        with torch.no_grad():
            assert torch.equal(other(x), y), kwargs


@pytest.mark.parametrize("level", [1, 3])
def test_haar_pyramid_in_a_block_is_haar_wavedec2(level, monkeypatch):
    calls = _record(monkeypatch, block_mod, "wavelet_pyramid")
    block = WaveMixBlock(dim=8, level=level, ff_channel=8).eval()
    with torch.no_grad():
        block(torch.randn(2, 8, 16, 12))
    (r, coeffs), = calls
    for got, want in zip(coeffs, haar_wavedec2(r, level, layout="wavemix")):
        assert torch.equal(got, want)


def test_haar_needs_no_pywavelets(monkeypatch):
    monkeypatch.setitem(sys.modules, "pywt", None)  # import pywt raises ImportError
    model = wavevision.create_model("wavemix_lite_8_10", wavelet="haar")
    assert model(torch.rand(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(ImportError, match=r"pip install 'wavevision\[wavelets\]'"):
        wavevision.create_model("wavemix_lite_8_10", wavelet="db2")


# --------------------------------------------------------------------------------------------
# Other wavelets: PyWavelets' coefficients inside the layers


@pytest.mark.filterwarnings("ignore:Level value")  # pywt warns that small maps have boundary effects
@pytest.mark.parametrize("wave", WAVELETS)
def test_block_coefficients_equal_pywt_wavedec2_periodization(wave, monkeypatch):
    pywt = require("pywt")
    calls = _record(monkeypatch, block_mod, "wavelet_pyramid")
    with float64_default():
        block = WaveMixBlock(dim=8, level=2, ff_channel=8, wavelet=wave).eval()
    x = torch.randn(2, 8, 16, 12, dtype=torch.float64)
    with torch.no_grad():
        out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    (r, coeffs), = calls
    c = r.shape[1]
    assert [tuple(t.shape) for t in coeffs] == [(2, 4 * c, 8, 6), (2, 4 * c, 4, 3)]  # each level halves exactly
    ref = pywt.wavedec2(r.numpy(), wave, mode="periodization", level=2, axes=(-2, -1))  # [cA2, d2, d1]
    for j, (got, details) in enumerate(zip(coeffs, [ref[2], ref[1]])):
        np.testing.assert_allclose(_details(got, c), np.stack(details, 2), atol=1e-12, err_msg=f"level {j + 1}")
    np.testing.assert_allclose(coeffs[1][:, :c].numpy(), ref[0], atol=1e-12)
    level1_ll = pywt.wavedec2(r.numpy(), wave, mode="periodization", level=1, axes=(-2, -1))[0]
    np.testing.assert_allclose(coeffs[0][:, :c].numpy(), level1_ll, atol=1e-12)


@pytest.mark.parametrize("mode", ["zero", "symmetric", "reflect"])
def test_block_coefficients_other_modes_are_centred_pywt_dwt2(mode, monkeypatch):
    """Modes other than periodization: pywt.dwt2 per level, the extra border coefficients cropped."""
    pywt = require("pywt")
    calls = _record(monkeypatch, block_mod, "wavelet_pyramid")
    with float64_default():
        block = WaveMixBlock(dim=8, level=2, ff_channel=8, wavelet="db2", mode=mode).eval()
    with torch.no_grad():
        block(torch.randn(1, 8, 12, 16, dtype=torch.float64))
    (r, coeffs), = calls
    c = r.shape[1]
    cur = r.numpy()
    for got in coeffs:
        h, w = got.shape[-2:]
        assert (h, w) == ((cur.shape[-2] + 1) // 2, (cur.shape[-1] + 1) // 2)
        ca, dets = pywt.dwt2(cur, "db2", mode=mode, axes=(-2, -1))
        assert ca.shape[-2:] == (h + 1, w + 1)  # db2: one extra coefficient per axis, cropped
        np.testing.assert_allclose(got[:, :c].numpy(), _centre(ca, h, w), atol=1e-12)
        np.testing.assert_allclose(_details(got, c), _centre(np.stack(dets, 2), h, w), atol=1e-12)
        cur = got[:, :c].numpy()


@pytest.mark.parametrize("wave", WAVELETS)
def test_wave_attention_transform_equals_pywt_and_inverts(wave, monkeypatch):
    pywt = require("pywt")
    fwd = _record(monkeypatch, attn_mod, "wavelet_dwt2")
    inv = _record(monkeypatch, attn_mod, "wavelet_idwt2")
    with float64_default():
        attn = WaveAttention(16, 2, sr_ratio=2, wavelet=wave).eval()
    x = torch.randn(2, 8 * 12, 16, dtype=torch.float64)
    with torch.no_grad():
        out = attn(x, (8, 12))
    assert out.shape == x.shape and torch.isfinite(out).all()
    (grid, bands), = fwd
    c = grid.shape[1]
    ca, dets = pywt.dwt2(grid.numpy(), wave, mode="periodization", axes=(-2, -1))
    np.testing.assert_allclose(bands[:, :c].numpy(), ca, atol=1e-12)
    np.testing.assert_allclose(_details(bands, c, "band"), np.stack(dets, 2), atol=1e-12)
    (filtered, local), = inv
    ll, highs = filtered[:, :c].numpy(), tuple(_details(filtered, c, "band").transpose(2, 0, 1, 3, 4))
    np.testing.assert_allclose(local.numpy(), pywt.idwt2((ll, highs), wave, mode="periodization", axes=(-2, -1)),
                               atol=1e-12)


@pytest.mark.parametrize("size", [(32, 28), (136, 41)])  # one matrix product per axis; extend-and-convolve (> 128)
@pytest.mark.parametrize("mode", ["periodization", "zero", "symmetric"])
@pytest.mark.parametrize("layout", ["wavemix", "band"])
def test_dwt_equals_pywt_and_inverts(size, mode, layout):
    """Both code paths give pywt.dwt2's (centred) coefficients; periodization inverts exactly,
    the cropping modes exactly away from the borders."""
    pywt = require("pywt")
    with float64_default():
        bank = wavelet_bank("sym4", mode)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    y = wavelet_dwt2(x, bank, mode, layout)
    h, w = (size[0] + 1) // 2, (size[1] + 1) // 2
    assert y.shape == (2, 12, h, w)
    ca, dets = pywt.dwt2(x.numpy(), "sym4", mode=mode, axes=(-2, -1))
    np.testing.assert_allclose(y[:, :3].numpy(), _centre(ca, h, w), atol=1e-12)
    np.testing.assert_allclose(_details(y, 3, layout), _centre(np.stack(dets, 2), h, w), atol=1e-12)
    back = wavelet_idwt2(y, bank, mode, layout, size=size)
    assert back.shape == x.shape
    inner = (back - x)[..., 8:-8, 8:-8] if mode != "periodization" else back - x
    assert inner.abs().max() < 1e-10


def test_outputs_keep_the_input_memory_format():
    """channels_last in, channels_last out (as the Haar path): CPU inference runs the blocks channels-last,
    and an NCHW pyramid there made every MLP and residual sum convert layouts."""
    require("pywt")
    bank = wavelet_bank("db2")
    x = torch.randn(2, 4, 16, 16).contiguous(memory_format=torch.channels_last)
    outs = [*wavelet_pyramid(x, 2, bank), wavelet_dwt2(x, bank), wavelet_idwt2(wavelet_dwt2(x, bank), bank)]
    outs += [wavelet_idwt2(torch.randn(1, 8, 80, 80).contiguous(memory_format=torch.channels_last), bank)]  # > 128
    for y, ref in zip(outs, [*haar_wavedec2(x, 2), haar_dwt2(x), x, torch.empty(1, 2, 160, 160)]):
        assert y.shape == ref.shape and y.is_contiguous(memory_format=torch.channels_last)
    assert wavelet_dwt2(x.contiguous(), bank).is_contiguous()


def test_haar_filter_bank_equals_the_fast_path():
    """The general path with Haar's filters gives the fast path's sub-bands, in both layouts."""
    pywt = require("pywt")
    bank = torch.tensor(np.stack(pywt.Wavelet("haar").filter_bank))
    x = torch.randn(2, 3, 8, 12)
    for layout in ("wavemix", "band"):
        for got, want in zip(wavelet_pyramid(x, 2, bank, DEFAULT_MODE, layout), haar_wavedec2(x, 2, layout)):
            torch.testing.assert_close(got, want)
        y = haar_dwt2(x, layout)
        torch.testing.assert_close(wavelet_idwt2(y, bank, DEFAULT_MODE, layout), haar_idwt2(y, layout))


@pytest.mark.parametrize("wave,mode", [("db2", "periodization"), ("bior2.2", "symmetric")])
def test_block_gradcheck_float64(wave, mode):
    require("pywt")
    torch.manual_seed(0)
    with float64_default():
        block = WaveMixBlock(dim=4, level=2, mult=1, ff_channel=4, wavelet=wave, mode=mode).eval()
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("wave", WAVELETS)
def test_models_with_any_wavelet_same_parameters_and_state_dict(wave):
    require("pywt")
    for name, kwargs, shape in [("wavemix_lite_8_10", {}, (2, 1, 28, 28)),
                                ("wavemix", {"depth": 1, "final_dim": 16, "ff_channel": 16, "num_classes": 3}, (2, 3, 50, 70)),
                                ("wavemix_seg_256_16_l4", {"depth": 1, "final_dim": 16, "ff_channel": 16}, (1, 3, 40, 36)),
                                ("wave_vit_s", {"depths": (1, 1, 1, 1), "num_classes": 5}, (1, 3, 64, 64))]:
        torch.manual_seed(0)
        haar = wavevision.create_model(name, **kwargs)
        other = wavevision.create_model(name, wavelet=wave, **kwargs)
        assert sum(p.numel() for p in other.parameters()) == sum(p.numel() for p in haar.parameters()), name
        assert list(other.state_dict()) == list(haar.state_dict()), name  # the filters are not state
        other.load_state_dict(haar.state_dict())  # strict: Haar weights load into any wavelet's model
        other.train()
        out = other(torch.rand(*shape))
        logits = out.logits if hasattr(out, "logits") else out
        logits.float().sum().backward()
        grads = [p.grad for p in other.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name
        first = other.layers[0].reduction if hasattr(other, "layers") else other.block1[0].attn.reduce[0]
        assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0, name  # through the transform


def test_create_model_records_and_rebuilds_the_wavelet(tmp_path):
    require("pywt")
    model = wavevision.create_model("wavemix_lite_8_10", wavelet="db2", mode="symmetric").eval()
    assert model.model_kwargs == {"wavelet": "db2", "mode": "symmetric"}
    path = wavevision.save_checkpoint(model, tmp_path / "m")
    config = json.loads(path.with_suffix(".json").read_text())
    assert json.dumps(config).count('"db2"') == 1
    again = wavevision.create_model(checkpoint=path).eval()
    folder = wavevision.save_pretrained(model, tmp_path / "hub")  # timm-style folder: config.json model_args
    assert json.loads((folder / "config.json").read_text())["model_args"]["wavelet"] == "db2"
    from_folder = wavevision.create_model(f"local-dir:{folder}").eval()
    x = torch.rand(1, 1, 28, 28)
    for rebuilt in (again, from_folder):
        assert rebuilt.layers[0].wavelet == "db2" and rebuilt.layers[0].mode == "symmetric"
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(x), model(x))


def test_filters_follow_the_module_and_fx_traces():
    require("pywt")
    block = WaveMixBlock(dim=8, level=2, ff_channel=8, wavelet="db2").eval()
    assert block.wavelet_bank.dtype == torch.float32 and "wavelet=" in repr(block)
    block = block.double()
    assert block.wavelet_bank.dtype == torch.float64
    x = torch.randn(1, 8, 10, 14, dtype=torch.float64)
    traced = torch.fx.symbolic_trace(block, concrete_args={"residual": None})
    with torch.no_grad():
        torch.testing.assert_close(traced(x), block(x))


# --------------------------------------------------------------------------------------------
# Errors


def test_bad_wavelet_and_mode_give_one_line_errors_with_the_fix():
    require("pywt")
    cases = [
        ({"wavelet": "db2x"}, ValueError, "did you mean 'db2'"),
        ({"wavelet": "sym44"}, ValueError, "'sym4'"),
        ({"wavelet": "morl"}, ValueError, "continuous wavelet"),
        ({"mode": "periodisation"}, ValueError, "did you mean 'periodization'"),
        ({"mode": "wrap"}, ValueError, "choose one of zero, symmetric"),
        ({"wavelet": 2}, TypeError, "such as 'haar' or 'db2'"),
        ({"mode": None}, TypeError, "mode must be a string"),
    ]
    for kwargs, err, text in cases:
        with pytest.raises(err, match=text) as info:
            wavevision.create_model("wavemix_lite_8_10", **kwargs)
        assert "\n" not in str(info.value), kwargs
    with pytest.raises(ValueError, match="did you mean 'bior2.2'"):
        WaveAttention(16, 2, wavelet="bior22")
    with pytest.raises(ValueError, match="apply to the dwt and wtconv mixers only"):
        wavevision.create_model("mixer_pool", wavelet="db2")
    assert check_wavelet(" DB2 ", "Zero") == ("db2", "zero")


# --------------------------------------------------------------------------------------------
# The ablation compares wavelets


@pytest.mark.slow
def test_ablation_compares_wavelets(tmp_path, capsys):
    require("pywt")
    from wavevision.bench.ablation import _variants, ablate, format_ablation
    from wavevision.cli import main

    assert _variants(["dwt", "pool", "dwt_l2:sym4"], ["haar", "db2"]) == [
        ("dwt", "mixer_dwt", {}), ("dwt:db2", "mixer_dwt", {"wavelet": "db2"}), ("pool", "mixer_pool", {}),
        ("dwt_l2:sym4", "mixer_dwt_l2", {"wavelet": "sym4"})]
    with pytest.raises(ValueError, match="only the dwt and wtconv mixers take a wavelet"):
        _variants(["pool:db2"], ["haar"])
    with pytest.raises(ValueError, match="did you mean 'db2'"):
        _variants(["dwt"], ["haar", "db2x"])
    # The command line passes --wavelets on (its error is ablate's, before anything is written).
    assert main(["ablate", "--mixers", "dwt", "--wavelets", "haar", "db22x", "--out", str(tmp_path / "no")]) == 2
    assert "did you mean 'db22'" in capsys.readouterr().err and not (tmp_path / "no").exists()

    report = ablate(["dwt"], wavelets=["haar", "bior2.2"], out_dir=tmp_path, epochs=1, seeds=1, jobs=1,
                    train_args={"max_train_batches": 1, "max_eval_batches": 1}, memory=False)
    rows = {r.mixer: r for r in report.rows}
    assert sorted(rows) == ["dwt", "dwt:bior2.2"] and "dwt:bior2.2" in format_ablation(report)
    assert rows["dwt"].params == rows["dwt:bior2.2"].params
    assert rows["dwt:bior2.2"].macs > rows["dwt"].macs  # the 6-tap filter bank's convolutions are counted
    saved = json.loads((tmp_path / "runs" / "dwt-bior2.2-seed0" / "ablation_run.json").read_text())
    assert saved["request"]["model_args"]["wavelet"] == "bior2.2"
    results = json.loads((tmp_path / "runs" / "dwt-bior2.2-seed0" / "results.json").read_text())
    assert results["model_name"] == "mixer_dwt"


@pytest.mark.slow
def test_non_haar_models_compile_to_one_graph(wave="sym4", mode="symmetric"):
    """torch.compile(fullgraph=True) through the matrix path (a recording backend: no Inductor compile)."""
    require("pywt")
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    model = wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, num_classes=3, level=2,
                                    wavelet=wave, mode=mode).eval()
    x = torch.rand(2, 3, 40, 48)
    with torch.no_grad():
        out, ref = torch.compile(model, backend=record, fullgraph=True, dynamic=False)(x), model(x)
    assert len(graphs) == 1
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
