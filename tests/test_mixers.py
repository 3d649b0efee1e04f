"""Token mixers and the ablation models: shapes, gradients, hand counts, independent references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wavevision
from wavevision.layers import MIXERS, TokenMixerBlock, WaveMixBlock, build_token_mixer, mixer_block
from wavevision.models import MixerNet
from wavevision.ops.haar import haar_dwt2

SPATIAL = [m for m in MIXERS if m != "dwt"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _options(name, size=(6, 8)):
    return {"tokens": size} if name == "mlp" else {}


# ------------------------------------------------------------------------------------
# The spatial mixers


@pytest.mark.parametrize("name", SPATIAL)
def test_mixer_keeps_shape_and_passes_gradients(name):
    torch.manual_seed(0)
    mixer = build_token_mixer(name, 5, **_options(name))
    x = torch.randn(2, 5, 6, 8, requires_grad=True)
    y = mixer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for k, p in mixer.named_parameters():
        if not p.requires_grad:  # WTConv's fixed wavelet filters (parameters in the public layout, never trained)
            assert p.grad is None and k.endswith("wt_filter"), k
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), k


@pytest.mark.parametrize(
    "name,expected",
    [
        ("pool", 0),
        ("fourier", 0),
        ("random", 0),
        ("identity", 0),
        ("dwconv", 5 * 3 * 3 + 5),  # depthwise weights + bias
        ("mlp", (48 * 48 + 48) + (48 * 48 + 48)),  # 6x8 = 48 tokens, expansion 1
        # base 5x5 depthwise + bias, base scale, 2 levels of (20-channel 5x5 depthwise, 20 scales),
        # and the fixed 2x2 Haar analysis and synthesis filters (20 x 4 each) the public layer stores
        ("wtconv", (5 * 25 + 5) + 5 + 2 * (20 * 25 + 20) + 2 * 20 * 4),
    ],
)
def test_mixer_parameter_counts_by_hand(name, expected):
    assert _n_params(build_token_mixer(name, 5, **_options(name))) == expected


def test_mlp_hidden_follows_expansion():
    m = build_token_mixer("mlp", 4, tokens=(4, 4), expansion=0.5)
    assert (m.fc1.in_features, m.fc1.out_features, m.fc2.out_features) == (16, 8, 16)
    assert _n_params(m) == 16 * 8 + 8 + 8 * 16 + 16


def test_pool_against_hand_computation():
    x = torch.arange(12, dtype=torch.float64).reshape(1, 1, 3, 4) ** 1.5
    y = build_token_mixer("pool", 1)(x)
    a = x[0, 0].numpy()
    want = np.zeros_like(a)
    for i in range(3):
        for j in range(4):
            # PoolFormer: the mean over the neighbours that exist (padding not counted)
            window = a[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            want[i, j] = window.sum() / window.size
    np.testing.assert_allclose(y[0, 0].numpy(), want, rtol=1e-12)


def test_fourier_against_numpy_fft():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 5, 6))
    y = build_token_mixer("fourier", 3)(torch.from_numpy(a))
    assert y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), np.fft.fft2(a, norm="ortho").real, rtol=1e-10, atol=1e-12)
    # orthonormal: a constant map keeps its energy in the DC term
    ones = torch.ones(1, 1, 4, 4)
    out = build_token_mixer("fourier", 1)(ones)
    assert out[0, 0, 0, 0].item() == pytest.approx(4.0) and out[0, 0].abs().sum().item() == pytest.approx(4.0)


def test_fourier_runs_in_bfloat16():
    x = torch.randn(1, 2, 4, 4)
    out = build_token_mixer("fourier", 2)(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), torch.fft.fft2(x, norm="ortho").real, atol=0.05, rtol=0.02)


def test_random_filters_are_fixed_seeded_buffers():
    a = build_token_mixer("random", 4, kernel_size=3, seed=7)
    b = build_token_mixer("random", 4, kernel_size=3, seed=7)
    c = build_token_mixer("random", 4, kernel_size=3, seed=8)
    assert list(a.parameters()) == [] and "weight" in a.state_dict()
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    # seed=None draws from the global generator: torch.manual_seed fixes it
    torch.manual_seed(3)
    d = build_token_mixer("random", 4)
    torch.manual_seed(3)
    assert torch.equal(d.weight, build_token_mixer("random", 4).weight)
    # unit gain: N(0, 1/k^2) weights
    big = build_token_mixer("random", 2000, kernel_size=5, seed=0)
    assert big.weight.std().item() == pytest.approx(1 / 5, rel=0.03)


def test_random_filter_is_a_depthwise_correlation():
    mixer = build_token_mixer("random", 2, kernel_size=3, seed=1)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    y = mixer.double()(x)
    w = mixer.weight.double()
    padded = F.pad(x, (1, 1, 1, 1))
    for ch in range(2):
        for i in range(4):
            for j in range(5):
                want = (padded[0, ch, i:i + 3, j:j + 3] * w[ch, 0]).sum()
                assert y[0, ch, i, j].item() == pytest.approx(want.item(), abs=1e-12)


def test_token_mlp_against_hand_computation():
    torch.manual_seed(0)
    m = build_token_mixer("mlp", 3, tokens=(2, 3), expansion=2.0)
    x = torch.randn(2, 3, 2, 3)
    y = m(x)
    for b in range(2):
        for c in range(3):
            v = x[b, c].reshape(6)
            h = m.fc1.weight @ v + m.fc1.bias
            h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))  # exact GELU
            want = (m.fc2.weight @ h + m.fc2.bias).reshape(2, 3)
            torch.testing.assert_close(y[b, c], want, atol=1e-6, rtol=1e-5)


def test_token_mlp_size_policy():
    strict = build_token_mixer("mlp", 2, tokens=(4, 4))
    with pytest.raises(ValueError, match=r"fixed 4x4 token grid.*got a 6x4 map.*img_size.*resize"):
        strict(torch.randn(1, 2, 6, 4))
    loose = build_token_mixer("mlp", 2, tokens=(4, 4), resize=True)
    loose.load_state_dict(strict.state_dict())
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(loose(x), strict(x))
    for size in [(1, 1), (7, 3), (9, 12)]:
        assert loose(torch.randn(2, 2, *size)).shape == (2, 2, *size)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: build_token_mixer("dwcov", 4), ValueError, "did you mean 'dwconv'"),
        (lambda: build_token_mixer("dwt", 4), ValueError, "mixer_block"),
        (lambda: build_token_mixer("pool", 4, kernel_size=2), ValueError, "odd integer"),
        (lambda: build_token_mixer("pool", 4, seed=1), TypeError, "accepts.*kernel_size"),
        (lambda: build_token_mixer("identity", 4, kernel_size=3), TypeError, "no options"),
        (lambda: build_token_mixer("mlp", 4), ValueError, "token grid"),
        (lambda: mixer_block("pool", dim=8, level=2), ValueError, "dwt mixer only"),
        (lambda: mixer_block("dwt", dim=8, kernel_size=3), TypeError, "set level"),
        (lambda: TokenMixerBlock(dim=10, mixer="pool"), ValueError, "multiple of 4"),
        (lambda: build_token_mixer("wtconv", 4, wavelet=3), TypeError, "wavelet must be a PyWavelets name"),
        (lambda: build_token_mixer("wtconv", 4, levels=2), TypeError, "accepts.*wt_levels"),
        (lambda: build_token_mixer("wtconv", 4, wt_levels=3)(torch.zeros(1, 4, 4, 4)), ValueError,
         "wt_levels=3 needs inputs of at least 5x5"),
    ],
)
def test_mixer_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------------
# Blocks


@pytest.mark.parametrize("name", MIXERS)
@pytest.mark.parametrize("size", [(8, 8), (5, 7)])
def test_blocks_keep_shape_and_train(name, size):
    torch.manual_seed(0)
    opts = {"tokens": tuple(-(-s // 2) * 2 for s in size)} if name == "mlp" else {}
    block = mixer_block(name, dim=8, ff_channel=8, **opts)
    x = torch.randn(2, 8, *size, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for k, p in block.named_parameters():
        if not p.requires_grad:  # WTConv's fixed wavelet filters
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), k


def test_block_parameter_count_by_hand():
    c, mult, ff = 32, 2, 32
    reduction = c * (c // 4) + c // 4
    mlp = (c * c * mult + c * mult) + (c * mult * ff + ff) + (ff * c * 16 + c) + 2 * c  # 1x1, 1x1, ConvT 4x4, BN
    assert _n_params(mixer_block("pool", dim=c, mult=mult, ff_channel=ff)) == reduction + mlp
    assert _n_params(mixer_block("dwt", dim=c, mult=mult, ff_channel=ff)) == reduction + mlp
    assert _n_params(mixer_block("dwconv", dim=c, ff_channel=ff)) == reduction + mlp + (c // 4) * 10


def test_dwt_block_is_the_wavemix_block():
    torch.manual_seed(0)
    block = mixer_block("dwt", dim=16, level=3, ff_channel=8)
    assert type(block) is WaveMixBlock and block.level == 3
    ref = WaveMixBlock(dim=16, level=3, ff_channel=8)
    ref.load_state_dict(block.state_dict())
    x = torch.randn(2, 16, 16, 16)
    block.eval(), ref.eval()
    torch.testing.assert_close(block(x), ref(x), atol=0, rtol=0)


def _haar_matrix(c: int) -> torch.Tensor:
    """M with haar_dwt2(x) == M applied to the channels of pixel_unshuffle(x, 2) (WaveMix layout)."""
    h = 0.5 * torch.tensor([[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]], dtype=torch.float64)
    m = torch.zeros(4 * c, 4 * c, dtype=torch.float64)
    for ch in range(c):
        rows = [ch] + [c + 3 * ch + b for b in range(3)]  # LL_ch, then LH/HL/HH of ch
        for band, row in enumerate(rows):
            m[row, 4 * ch:4 * ch + 4] = h[band]
    return m


def test_level1_dwt_equals_identity_mixer_up_to_the_haar_matrix():
    """The skeleton claim in the docs: dwt at level 1 = identity + space-to-depth, reparametrised."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    m = _haar_matrix(4)
    unshuffled = F.pixel_unshuffle(x, 2)
    torch.testing.assert_close(haar_dwt2(x), torch.einsum("oc,bchw->bohw", m, unshuffled))

    dwt = mixer_block("dwt", dim=16, ff_channel=16).double().eval()
    ident = mixer_block("identity", dim=16, ff_channel=16).double().eval()
    sd = dwt.state_dict()
    sd["feedforward.0.weight"] = (sd["feedforward.0.weight"][:, :, 0, 0] @ _haar_matrix(4))[:, :, None, None]
    ident.load_state_dict(sd)
    z = torch.randn(2, 16, 10, 6, dtype=torch.float64)
    torch.testing.assert_close(ident(z), dwt(z))


# ------------------------------------------------------------------------------------
# The registered ablation models


ABLATION = wavevision.list_models("mixer_*")


def test_every_mixer_is_registered():
    kinds = {wavevision.create_model(n, depth=1).mixer_type for n in ABLATION}
    assert kinds == set(MIXERS)


def test_ablation_parameter_counts_by_hand_and_similar():
    stem = (1 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 32 * 4 + 32) + 2 * 32
    block = (32 * 8 + 8) + (32 * 64 + 64) + (64 * 32 + 32) + (32 * 32 * 16 + 32) + 64
    head = 32 * 10 + 10
    assert wavevision.get_entry("mixer_dwt").params == stem + 4 * block + head == 87_466
    assert wavevision.get_entry("mixer_dwconv").params == 87_466 + 4 * (8 * 9 + 8)
    counts = {n: wavevision.get_entry(n).params for n in ABLATION}
    # the documented promise: every ablation model within 5 % of every other
    assert max(counts.values()) <= 1.05 * min(counts.values()), counts


def test_mixer_dwt_is_wavemix_with_the_same_weights():
    torch.manual_seed(0)
    ours = wavevision.create_model("mixer_dwt", level=2).eval()
    ref = wavevision.create_model(
        "wavemix", num_classes=10, depth=4, final_dim=32, ff_channel=32, dropout=0.0, level=2,
        initial_conv="pachify", patch_size=2, in_chans=1,
    ).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=0, rtol=0)


def test_one_seed_gives_every_mixer_the_same_stem_and_head():
    nets = {}
    for name in ("mixer_pool", "mixer_fourier", "mixer_dwt"):
        torch.manual_seed(5)
        nets[name] = wavevision.create_model(name)
    for part in ("conv", "pool"):
        sds = [getattr(n, part).state_dict() for n in nets.values()]
        for sd in sds[1:]:
            assert all(torch.equal(sd[k], sds[0][k]) for k in sd)


def test_mlp_model_size_policy_and_img_size():
    model = wavevision.create_model("mixer_mlp", depth=1).eval()
    assert model.layers[0].mixer.tokens == (8, 8)
    with pytest.raises(ValueError, match="fixed 8x8 token grid"):
        model(torch.rand(1, 1, 20, 20))
    wide = wavevision.create_model("mixer_mlp", depth=1, img_size=(20, 28)).eval()
    assert wide.layers[0].mixer.tokens == (10, 14)
    with torch.no_grad():
        assert wide(torch.rand(1, 1, 20, 28)).shape == (1, 10)
    odd = wavevision.create_model("mixer_mlp", depth=1, img_size=13)  # stem -> 7, padded to 8
    assert odd.layers[0].mixer.tokens == (8, 8)


def test_wtconv_mixer_is_the_wtconv_layer():
    """The mixer is WTConv2d itself: its state dict loads into the layer (the public key layout) and
    both give the same output; the layer's wavelet branch is really used (2 levels, 5x5)."""
    from wavevision.layers.wtconv import WTConv2d

    torch.manual_seed(0)
    mixer = build_token_mixer("wtconv", 6)
    layer = WTConv2d(6, 6, 5, wt_levels=2)
    layer.load_state_dict({k.removeprefix("wtconv."): v for k, v in mixer.state_dict().items()}, strict=True)
    assert {k.split(".")[1] for k in mixer.state_dict()} == {"wt_filter", "iwt_filter", "base_conv", "base_scale",
                                                            "wavelet_convs", "wavelet_scale"}
    x = torch.randn(2, 6, 8, 8)
    torch.testing.assert_close(mixer(x), layer(x), atol=0, rtol=0)
    base = layer.base_scale(layer.base_conv(x))
    assert (mixer(x) - base).abs().max() > 1e-3  # the wavelet levels add to the base convolution


def test_mixer_wtconv_size_wavelet_and_checkpoint(tmp_path):
    model = wavevision.create_model("mixer_wtconv")
    # the 5 % budget: WTConv's 2,136 parameters per block, paid for by ff_channel 28 (4 x 577 fewer per block)
    layer = (8 * 25 + 8) + 8 + 2 * (32 * 25 + 32) + 2 * 32 * 4
    assert layer == 2136 and sum(p.numel() for p in model.parameters()) == 87_466 - 4 * 4 * 577 + 4 * layer == 86_778
    wt = model.layers[0].mixer.wtconv
    assert (wt.wt_levels, wt.base_conv.kernel_size, wt.wt_type, model.layers[0].feedforward[3].out_channels) == (
        2, (5, 5), "haar", 28)
    path = wavevision.save_checkpoint(model, tmp_path / "wtconv.safetensors")
    again = wavevision.create_model(checkpoint=path).eval()
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(again(x), model.eval()(x))
    deeper = wavevision.create_model("mixer_wtconv", mixer_kwargs={"wt_levels": 3, "kernel_size": 3})
    assert deeper.layers[0].mixer.wtconv.wt_levels == 3 and deeper(x).shape == (2, 10)


def test_mixer_wtconv_takes_the_models_wavelet():
    from _optional import require

    require("pywt")
    model = wavevision.create_model("mixer_wtconv", wavelet="db2")
    assert {blk.mixer.wtconv.wt_type for blk in model.layers} == {"db2"}
    assert model.layers[0].mixer.wtconv.wt_filter.shape == (32, 1, 4, 4)  # db2: 4 taps
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 10)


ABLATION_POOL = wavevision.create_model("mixer_pool", depth=1)


def test_ablation_model_errors():
    with pytest.raises(ValueError, match="dwt mixer only"):
        wavevision.create_model("mixer_pool", level=2)
    with pytest.raises(TypeError, match="dwt mixer takes no mixer_kwargs"):
        wavevision.create_model("mixer_dwt", mixer_kwargs={"kernel_size": 3})
    with pytest.raises(ValueError, match="unknown token mixer 'fft'"):
        MixerNet(mixer="fft")
    with pytest.raises(ValueError, match="img_size"):
        wavevision.create_model("mixer_pool", img_size=(0, 3))
    with pytest.raises(ValueError, match="apply to the dwt and wtconv mixers only"):
        wavevision.create_model("mixer_pool", wavelet="db2")
    with pytest.raises(ValueError, match="WTConv pads as its public code does"):
        wavevision.create_model("mixer_wtconv", mode="symmetric")
    with pytest.raises(TypeError, match="wavelet=..., not in mixer_kwargs"):
        wavevision.create_model("mixer_wtconv", mixer_kwargs={"wavelet": "db2"})
    # 4 levels need 9x9 maps: 17x17 inputs (patch 2 -> 9, padded to 10); 16x16 gives 8x8 maps
    deep = wavevision.create_model("mixer_wtconv", mixer_kwargs={"wt_levels": 4})
    with pytest.raises(ValueError, match=r"too small for MixerNet: the minimum is 17x17 \(the wtconv mixer's 4 wavelet "
                                         r"levels need 9x9 maps\)"):
        deep(torch.zeros(1, 1, 16, 17))
    assert deep(torch.zeros(1, 1, 17, 17)).shape == (1, 10)
    assert wavevision.create_model("mixer_wtconv").min_input_size == 5 and not hasattr(ABLATION_POOL, "min_input_size")


def test_random_mixer_seed_differs_per_block_and_survives_checkpoints(tmp_path):
    model = wavevision.create_model("mixer_random", depth=2, mixer_kwargs={"seed": 11, "kernel_size": 5})
    w0, w1 = (blk.mixer.weight for blk in model.layers)
    assert w0.shape == (8, 1, 5, 5) and not torch.equal(w0, w1)
    path = wavevision.save_checkpoint(model, tmp_path / "random.safetensors")
    again = wavevision.create_model(checkpoint=path)
    assert torch.equal(again.layers[1].mixer.weight, w1)
