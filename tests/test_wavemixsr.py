"""WaveMixSR and WaveMixSR-V2 against the public layout, the BT.601 colour conversions, the SR
evaluation protocol (PSNR on Y by hand), the sr-folder paths and the errors on bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import wavevision
from wavevision.data import build_dataset
from wavevision.engine.metrics import psnr
from wavevision.models import CheckpointMismatchError
from wavevision.ops.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb

from _public_wavemix import import_public_wavemix


class PublicWaveMixSR(nn.Module):
    """WaveMixSR as the authors' ``wavemixsr/model.py`` lays it out, built from the public package's block."""

    def __init__(self, block: type, *, depth: int, mult: int, ff_channel: int, final_dim: int, dropout: float) -> None:
        super().__init__()
        half = final_dim // 2
        self.layers = nn.ModuleList(
            block(mult=mult, ff_channel=ff_channel, final_dim=final_dim, dropout=dropout) for _ in range(depth))
        self.final = nn.Sequential(nn.Conv2d(final_dim, half, 3, 1, 1), nn.Conv2d(half, 1, 1))
        self.path1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False),
                                   nn.Conv2d(1, half, 3, 1, 1), nn.Conv2d(half, final_dim, 3, 1, 1))
        self.path2 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        y = self.path1(img[:, :1])
        for layer in self.layers:
            y = layer(y) + y
        return torch.cat([self.final(y), self.path2(img[:, 1:])], dim=1)


RELEASED = dict(depth=4, mult=1, ff_channel=144, final_dim=144, dropout=0.3)


@pytest.fixture(scope="module")
def public():
    pkg = import_public_wavemix()[0]
    torch.manual_seed(0)
    return pkg, PublicWaveMixSR(pkg.Level1Waveblock, **RELEASED).eval()


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomise_norms(model: nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so eval-mode parity tests them too."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


# ------------------------------------------------------------------------------------------------
# WaveMixSR: the public layout, released size, parity


def test_released_config_loads_strictly_and_matches_the_public_model(public, tmp_path):
    _, ref = public
    _randomise_norms(ref)
    assert _n(ref) == 1_704_385 == wavevision.get_entry("wavemixsr_v1_x2").params
    path = tmp_path / "bsd100_2x_y_div2k_33.08.pth"
    torch.save(ref.state_dict(), path)  # the released files are plain state dicts of this layout
    ours = wavevision.create_model("wavemixsr_v1_x2", checkpoint=path, color="ycbcr").eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.rand(2, 3, 18, 22, generator=torch.Generator().manual_seed(1))  # YCbCr, the public interface
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
        # RGB for the user: the same network between the full-range conversions
        rgb = wavevision.create_model("wavemixsr_v1_x2", checkpoint=path).eval()
        expect = ycbcr_to_rgb(ref(rgb_to_ycbcr(x, full_range=True)), full_range=True)
        torch.testing.assert_close(rgb(x), expect, atol=1e-5, rtol=1e-5)


def test_v2_block_matches_the_public_transform_and_the_paper(public):
    pkg, _ = public
    torch.manual_seed(0)
    block = wavevision.create_model("wavemixsr_v2_x2", final_dim=16).SR_blocks[0].layers[0].eval()
    _randomise_norms(block)
    ff = block.feedforward
    assert [type(m).__name__ for m in ff] == ["PointwiseConv2d", "GELU", "FastDropout", "PointwiseConv2d",
                                              "PixelShuffle", "Conv2d", "BatchNorm2d"]
    assert ff[3].out_channels == 4 * 16 and ff[5].in_channels == 16  # PixelShuffle(2) of 4C channels gives C
    x = torch.randn(2, 16, 10, 14, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        r = block.reduction(x)
        low, high = pkg.DWTForward(J=1, mode="zero", wave="db1")(r)  # the public file's transform
        bands = torch.cat([low, high[0].reshape(2, 12, 5, 7)], dim=1)
        torch.testing.assert_close(block(x), ff(bands), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,stages,out", [("wavemixsr_v2_x2", 1, (14, 18)), ("wavemixsr_v2_x4", 2, (28, 36)),
                                             ("wavemixsr_v2_x8", 3, (56, 72))])
def test_v2_stages_and_output_sizes_on_odd_inputs(name, stages, out):
    torch.manual_seed(0)
    model = wavevision.create_model(name, final_dim=16, depth=1).eval()
    assert len(model.SR_blocks) == stages and model.scale == 2**stages
    with torch.no_grad():
        y = model(torch.rand(1, 3, 7, 9))
    assert y.shape == (1, 3, *out) and torch.isfinite(y).all()
    # each stage's chroma is a bicubic x2 of the previous one: flat colour stays flat
    grey = torch.full((1, 3, 5, 6), 0.4)
    with torch.no_grad():
        ycc = rgb_to_ycbcr(model(grey), full_range=True)
    torch.testing.assert_close(ycc[:, 1:], torch.full_like(ycc[:, 1:], 0.5), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", wavevision.list_models("wavemixsr*"))
def test_records_state_scale_colour_and_head(name):
    cfg = wavevision.get_pretrained_cfg(name)
    with torch.device("meta"):
        model = wavevision.create_model(name)
    assert cfg["scale"] == model.scale and cfg["pool_size"] == (64 * model.scale,) * 2
    assert "YCbCr" in cfg["color_space"] and cfg["task"] == "super_resolution"


def test_v2_record_and_params_follow_the_paper_not_the_public_file():
    model = wavevision.create_model("wavemixsr_v2_x8")
    assert _n(model) == 3 * _n(wavevision.create_model("wavemixsr_v2_x2")) == model.pretrained_cfg["params"]
    assert model.pretrained_cfg["classifier"] == "SR_blocks.2.final.1"
    assert wavevision.get_pretrained_cfg("wavemixsr_v1_x2.df2k")["metrics"] == {"psnr": 33.2}
    assert not any(".feedforward.4.weight" in k for k in model.state_dict())  # no transposed conv


def test_luma_model_and_the_timm_head_contract():
    torch.manual_seed(0)
    model = wavevision.create_model("wavemixsr_v1_x2", final_dim=16, ff_channel=16, depth=1).eval()
    x = torch.rand(1, 3, 8, 10)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (1, 18, 16, 20)  # C block channels + the upsampled Cb, Cr
        torch.testing.assert_close(model.forward_head(feats), model(x))
    luma = wavevision.create_model("wavemixsr_v1_x2", final_dim=16, ff_channel=16, depth=1, in_chans=1).eval()
    with torch.no_grad():
        assert luma(x[:, :1]).shape == (1, 1, 16, 20) and luma.num_features == 16


# ------------------------------------------------------------------------------------------------
# Colour conversion and the evaluation protocol


def test_ycbcr_known_values_and_round_trip():
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    img = colours.T.reshape(3, 1, 4)
    studio = rgb_to_ycbcr(img).reshape(3, 4).T * 255
    want = torch.tensor([[16, 128, 128], [235, 128, 128], [16 + 65.481, 128 - 37.797, 240], [16 + 24.966, 240, 128 - 18.214]],
                        dtype=torch.float64)
    torch.testing.assert_close(studio, want, atol=1e-9, rtol=0)
    full = rgb_to_ycbcr(img, full_range=True).reshape(3, 4).T
    torch.testing.assert_close(full[:, 0], torch.tensor([0.0, 1.0, 0.299, 0.114], dtype=torch.float64))
    torch.testing.assert_close(full[2, 2], torch.tensor(1.0, dtype=torch.float64))  # red: Cr at the top of the range
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for full_range in (False, True):
        back = ycbcr_to_rgb(rgb_to_ycbcr(x, full_range=full_range), full_range=full_range)
        torch.testing.assert_close(back, x, atol=1e-12, rtol=0)
    skcolor = pytest.importorskip("skimage.color")  # scikit-image's studio-range conversion (0-255 output)
    ref = torch.from_numpy(skcolor.rgb2ycbcr(x[0].permute(1, 2, 0).numpy())).permute(2, 0, 1) / 255
    torch.testing.assert_close(rgb_to_ycbcr(x[0]), ref, atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="3, H, W.*grayscale or RGBA"):
        rgb_to_ycbcr(torch.rand(1, 4, 3, 3))


def test_psnr_on_y_with_border_crop_by_hand():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 12, 10, generator=g), torch.rand(1, 3, 12, 10, generator=g)
    a64, b64 = a.double().numpy()[0], b.double().numpy()[0]
    ya = (16 + 65.481 * a64[0] + 128.553 * a64[1] + 24.966 * a64[2]) / 255
    yb = (16 + 65.481 * b64[0] + 128.553 * b64[1] + 24.966 * b64[2]) / 255
    mse = np.mean((ya[2:-2, 2:-2] - yb[2:-2, 2:-2]) ** 2)
    assert float(psnr(a, b, border=2)) == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    assert float(rgb_to_y(a)[0, 0, 3, 4]) == pytest.approx(ya[3, 4], abs=1e-6)


# ------------------------------------------------------------------------------------------------
# sr-folder with given LR images, and the eval command


def _save(path, size, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255


def test_sr_folder_reads_given_lr_and_refuses_mismatched_pairs(tmp_path):
    root = tmp_path / "BSD100"
    hr = _save(root / "HR" / "3096.png", (21, 17), 0)  # cropped to 20x16 for x2
    lr = _save(root / "LR_bicubic" / "X2" / "3096x2.png", (10, 8), 1)
    data, info = build_dataset("sr-folder", "test", root=root, scale=2)
    x, y = data[0]
    torch.testing.assert_close(x, lr)
    torch.testing.assert_close(y, hr[:, :16, :20])
    made, _ = build_dataset("sr-folder", "test", root=root, scale=2, lr_source="bicubic")
    assert not torch.equal(made[0][0], lr)
    _save(root / "LR_bicubic" / "X4" / "3096x4.png", (6, 4), 2)
    bad, _ = build_dataset("sr-folder", "test", root=root, scale=4)
    with pytest.raises(ValueError, match=r"6x4 but its HR image .* is 20x16 .*not a x4 pair \(expected an LR of 5x4\)"):
        bad[0]
    with pytest.raises(FileNotFoundError, match="lr_source=given, but .* no LR images for x8"):
        build_dataset("sr-folder", "test", root=root, scale=8, lr_source="given")


def test_eval_command_on_a_public_state_dict(tmp_path, capsys):
    from wavevision.cli import main

    root = tmp_path / "Set5"
    for i in range(2):
        _save(root / f"img{i}.png", (20, 16), i)
    torch.manual_seed(0)
    pth = tmp_path / "weights.pth"
    torch.save(wavevision.create_model("wavemixsr_v1_x2").state_dict(), pth)
    args = ["eval", "--model", "wavemixsr_v1_x2", "--checkpoint", str(pth), "--dataset", "sr-folder", "--data-root",
            str(root), "--no-progress"]
    assert main([*args, "--scale", "2", "--json", str(tmp_path / "m.json")]) == 0
    result = __import__("json").loads((tmp_path / "m.json").read_text())
    assert result["images"] == 2 and result["model"] == "wavemixsr_v1_x2" and result["bicubic_psnr"] > 5
    assert main([*args, "--scale", "4"]) != 0
    assert "for x2, but dataset 'sr-folder' is x4" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_images_scales_and_checkpoints(tmp_path):
    model = wavevision.create_model("wavemixsr_v1_x2", final_dim=16, ff_channel=16, depth=1)
    with pytest.raises(ValueError, match=r"3 input channel\(s\) but the input has 4.*drop the alpha channel"):
        model(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"has 1 .*repeat the grey channel to RGB"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="WaveMixSR is an x2 model.*wavemixsr_v2_x4"):
        wavevision.create_model("wavemixsr_v1_x2", scale=4)
    with pytest.raises(ValueError, match="wavemixsr_v2_x2 is built for x2, got scale=4; use wavemixsr_v2_x4"):
        wavevision.create_model("wavemixsr_v2_x2", scale=4)
    with pytest.raises(ValueError, match="scale must be one of"):
        wavevision.create_model("wavemixsr_v2_x2").__class__(scale=3)
    small = dict(final_dim=16, depth=1)
    cases = [(wavevision.create_model("wavemixsr_v1_x2", ff_channel=16, **small), "wavemixsr_v2_x2",
              "WaveMixSR \\(WACV 2024\\) x2 checkpoint; build wavemixsr_v1_x2"),
             (wavevision.create_model("wavemixsr_v2_x4", **small), "wavemixsr_v2_x2",
              "WaveMixSR-V2 x4 checkpoint; build wavemixsr_v2_x4"),
             (wavevision.create_model("wavemix_paper_sr", ff_channel=16, **small), "wavemixsr_v1_x2", "wavemix.sisr checkpoint")]
    for source, target, message in cases:
        path = tmp_path / f"{target}.pth"
        torch.save(source.state_dict(), path)
        with pytest.raises(CheckpointMismatchError, match=message):
            wavevision.create_model(target, checkpoint=path, **small)


@pytest.mark.slow
def test_photos_recipe_trains_wavemixsr_v2_at_x4(tmp_path):
    from wavevision.engine import train

    result = train(dict(dataset="photos", model="wavemixsr_v2_x4", model_args=dict(final_dim=16, depth=1),
                        dataset_args=dict(scale=4, num_patches=4, patch_size=32, eval_size=32), epochs=1, batch_size=4,
                        output=str(tmp_path / "sr"), threads=1, progress=False, plots=False))
    assert result.task == "super_resolution" and result.test["images"] == 2
    assert math.isfinite(result.test["psnr"]) and result.test["bicubic_psnr"] > 15
    with pytest.raises(ValueError, match="WaveMixSR is an x2 model, got scale=4"):
        train(dict(dataset="photos", model="wavemixsr_v1_x2", dataset_args=dict(scale=4), epochs=1,
                   output=str(tmp_path / "x4"), threads=1, progress=False, plots=False))
