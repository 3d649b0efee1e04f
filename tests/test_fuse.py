"""wavevision.fuse: BatchNorm folded into convolutions, dropout removed, eval only, any model."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from _slow import FEWER_MODELS, small_build_cases
from wavevision.fuse import fuse, fuse_conv_bn

from _small import small_model, timm_models

NAMES = timm_models()


pytestmark = pytest.mark.usefixtures("one_thread")  # two OpenMP threads per op wait on each other here


def _randomize_bn(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial running statistics and affine parameters, so folding is exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) * 0.3 + 1)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)


def _out(y):
    return y if isinstance(y, torch.Tensor) else y[0]


def _count(model: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_fused_matches_eval_model(name):
    model = small_model(name)
    for m in model.modules():  # dropout is an identity in eval mode; removing it must not change anything either
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.3
    _randomize_bn(model)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    side = getattr(model, "min_input_size", 0) or 16
    x = torch.rand(2, model.in_chans, side, side, generator=torch.Generator().manual_seed(0))
    fused = fuse(model)
    with torch.no_grad():
        ref, out = _out(model(x)), _out(fused(x))
    assert _rel(out, ref) <= 1e-4
    assert _count(fused, nn.modules.dropout._DropoutNd) == 0
    assert _count(fused, nn.modules.batchnorm._BatchNorm) <= _count(model, nn.modules.batchnorm._BatchNorm)
    # The original is untouched.
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["wavemix", "wavemix_lite_8_10", "wavemix_seg", "wavemix_paper_sr", "wave_vit_s"])
def test_every_provable_pair_is_folded(name):
    """WaveMix MLPs (convT -> BN, or conv -> parameter-free upsample -> BN) and conv-BN stems lose their BN;
    only a BatchNorm behind a non-linearity (the patchify stem's, after GELU) stays."""
    model = small_model(name).eval()
    fused = fuse(model)
    left = [n for n, m in fused.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(n == "conv.4" for n in left), left


def test_train_mode_is_refused_with_the_fix():
    model = small_model("wavemix_lite_8_10").train()
    with pytest.raises(ValueError, match=r"eval mode.*model\.eval\(\)"):
        fuse(model)
    model.eval()
    model.layers[0].train()  # one submodule left in training mode is caught too
    with pytest.raises(ValueError, match="layers.0"):
        fuse(model)


def test_fused_model_is_eval_only():
    model = small_model("wavemix_lite_8_5").eval()
    fused = model.fuse()  # the method on WaveMix models
    x = torch.rand(1, 1, 28, 28)
    fused(x)
    fused.train()
    with pytest.raises(RuntimeError, match="fused for inference"):
        fused(x)
    fused.eval()
    torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-4)


def test_fuse_is_idempotent_and_inplace():
    model = small_model("wavemix_lite_8_5").eval()
    x = torch.rand(1, 1, 16, 16)
    ref = model(x)
    once = fuse(model)
    twice = fuse(once)
    torch.testing.assert_close(twice(x), once(x), atol=0, rtol=0)
    same = fuse(model, inplace=True)
    assert same is model and _count(model, nn.BatchNorm2d) == 0
    torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=1e-4)


def _check(seq: nn.Module, x: torch.Tensor, expect_bn: int) -> nn.Module:
    _randomize_bn(seq)
    seq.eval()
    fused = fuse(seq)
    with torch.no_grad():
        assert _rel(fused(x), seq(x)) <= 1e-5
    assert _count(fused, nn.modules.batchnorm._BatchNorm) == expect_bn
    return fused


def test_generic_sequential_patterns():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 7)
    # Conv without bias (a bias is created), grouped transposed conv, dropout and identity in between.
    _check(nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU()), x, 0)
    _check(nn.Sequential(nn.ConvTranspose2d(4, 6, 4, 2, 1, groups=2), nn.Dropout(0.5), nn.Identity(), nn.BatchNorm2d(6)), x, 0)
    # A parameter-free bilinear or nearest upsample commutes with the per-channel affine map.
    for mode in ("bilinear", "nearest"):
        _check(nn.Sequential(nn.Conv2d(4, 6, 1), nn.Upsample(scale_factor=2, mode=mode), nn.BatchNorm2d(6)), x, 0)
    # Not provable: a non-linearity between, or a BatchNorm without running statistics.
    _check(nn.Sequential(nn.Conv2d(4, 6, 1), nn.ReLU(), nn.BatchNorm2d(6)), x, 1)
    _check(nn.Sequential(nn.Conv2d(4, 6, 1), nn.BatchNorm2d(6, track_running_stats=False)), x, 1)
    # 1D and 3D convolutions, Linear + BatchNorm1d, BatchNorm without affine parameters.
    _check(nn.Sequential(nn.Conv1d(4, 5, 3), nn.BatchNorm1d(5, affine=False)), torch.randn(3, 4, 11), 0)
    _check(nn.Sequential(nn.Conv3d(4, 5, 1), nn.BatchNorm3d(5)), torch.randn(2, 4, 3, 3, 3), 0)
    _check(nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5)), torch.randn(6, 4), 0)


class _Branchy(nn.Module):
    """A forward that is not a Sequential; it declares its adjacent pair through the hook."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.side = nn.Conv2d(3, 8, 1)
        self.side_norm = nn.BatchNorm2d(8)  # consumes side's output, but side's output is reused: not declared

    def fuse_pairs(self):
        return [("conv", "norm")]

    def forward(self, x):
        s = self.side(x)
        return self.norm(self.conv(x)) + self.side_norm(s) + s


def test_fuse_pairs_hook():
    torch.manual_seed(0)
    model = _Branchy()
    fused = _check(model, torch.randn(2, 3, 8, 8), 1)
    assert isinstance(fused.norm, nn.Identity) and isinstance(fused.side_norm, nn.BatchNorm2d)


def test_hook_naming_an_unfoldable_pair_is_an_error():
    class Bad(_Branchy):
        def fuse_pairs(self):
            return [("conv", "side")]

    with pytest.raises(ValueError, match="cannot be folded"):
        fuse(Bad().eval())
    with pytest.raises(ValueError, match="cannot fold"):
        fuse_conv_bn(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(5))
    with pytest.raises(TypeError, match="nn.Module"):
        fuse("model")


def test_float64_and_half_models_keep_their_dtype():
    model = small_model("wavemix_lite_8_5").eval().double()
    _randomize_bn(model)
    fused = fuse(model)
    assert all(p.dtype == torch.float64 for p in fused.parameters())
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    assert _rel(fused(x), model(x)) <= 1e-12
