"""CUDA behaviour: same results as CPU, autocast, channels_last, no device-bound globals.

Skipped where no GPU is present (CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``.
"""
from __future__ import annotations

import pytest
import torch

import wavevision
from _slow import small_build_cases

from _small import small_model, timm_models

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.usefixtures("exact_fp32"),
]

def _model(name):
    model = small_model(name).eval()
    x = torch.rand(2, model.in_chans, 37, 45, generator=torch.Generator().manual_seed(1))
    return model, x


def _tensor(out):
    """A training-mode output as one tensor (Wave-ViT with token labeling returns logits and per-token logits)."""
    return out.logits.float().sum() + out.aux_logits.float().sum() if hasattr(out, "aux_logits") else out


@pytest.mark.parametrize("name", small_build_cases(timm_models()))
def test_cuda_matches_cpu_forward_and_backward(name):
    model, x = _model(name)
    cpu_out = model(x)
    gpu = model.to("cuda")
    out = gpu(x.cuda())
    torch.testing.assert_close(out.cpu(), cpu_out, atol=1e-4, rtol=1e-4)
    gpu.train()
    xg = x.cuda().requires_grad_()
    _tensor(gpu(xg)).square().mean().backward()
    assert torch.isfinite(xg.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gpu.parameters())


@pytest.mark.parametrize("name", small_build_cases(timm_models()))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_forward_backward(name, dtype):
    model, x = _model(name)
    ref = model(x)
    model = model.cuda().train()
    with torch.autocast("cuda", dtype=dtype):
        out = _tensor(model(x.cuda()))
    out.float().square().mean().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        out = model(x.cuda()).float().cpu()
    scale = ref.abs().max().item() + 1e-6
    assert (out - ref).abs().max().item() / scale < 0.1


@pytest.mark.parametrize("name", ["wavemix_lite_64_6", "wavemix_seg", "wavemix_paper_sr"])
def test_channels_last_cuda(name):
    model, x = _model(name)
    model = model.cuda()
    ref = model(x.cuda())
    out = model.to(memory_format=torch.channels_last)(x.cuda().to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_half_model_and_dwt_modules_follow_to():
    from wavevision.ops.modules import DWT2d, IDWT2d

    for wave in ("haar", "db2"):
        if wave != "haar":
            pytest.importorskip("pywt")
        dwt, idwt = DWT2d(wave, levels=2, mode="periodization" if wave != "haar" else "zero"), None
        idwt = IDWT2d(wave, mode=dwt.mode)
        dwt, idwt = dwt.cuda().half(), idwt.cuda().half()
        assert dwt.filters.device.type == "cuda" and dwt.filters.dtype == torch.float16
        x = torch.rand(2, 3, 16, 16, device="cuda", dtype=torch.float16)
        torch.testing.assert_close(idwt(dwt(x), size=(16, 16)), x, atol=2e-2, rtol=2e-2)


def test_parity_with_public_package_on_cuda():
    from _public_wavemix import import_public_wavemix

    _, cls, _, _ = import_public_wavemix()
    kw = dict(num_classes=10, depth=2, mult=2, ff_channel=16, final_dim=16, level=4, patch_size=4, dropout=0.5)
    torch.manual_seed(0)
    ref = cls.WaveMix(**kw).cuda().eval()
    ours = wavevision.create_model("wavemix", **kw).cuda().eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 64, 64, device="cuda")
    assert (ours(x) - ref(x)).abs().max().item() <= 1e-5
