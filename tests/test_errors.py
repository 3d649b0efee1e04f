"""Bad input gets a clear error naming the problem and the fix."""
from __future__ import annotations

import pytest
import torch

import wavevision
from wavevision.ops import haar_dwt2, haar_idwt2, haar_wavedec2


def _tiny(**kw):
    return wavevision.create_model("wavemix", depth=1, final_dim=16, ff_channel=16, num_classes=3, **kw)


def test_wrong_number_of_channels():
    with pytest.raises(ValueError, match=r"built for 3 input channel\(s\) but the input has 1.*in_chans=1"):
        _tiny()(torch.rand(1, 1, 32, 32))


def test_non_4d_input():
    with pytest.raises(ValueError, match="4D input.*unsqueeze"):
        _tiny()(torch.rand(3, 32, 32))


def test_integer_input():
    with pytest.raises(TypeError, match="floating point.*x.float"):
        _tiny()(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize("level", [0, -1, 1.5, "2"])
def test_bad_level(level):
    with pytest.raises(ValueError, match="level must be an integer >= 1"):
        _tiny(level=level)


def test_final_dim_not_divisible_by_4():
    with pytest.raises(ValueError, match="final_dim must be a positive multiple of 4.*try 16 or 20"):
        wavevision.create_model("wavemix", final_dim=18, ff_channel=18)


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match="unknown model 'wavemix_lit'.*'wavemix_lite'"):
        wavevision.create_model("wavemix_lit")


def test_unknown_override_lists_accepted_names():
    with pytest.raises(TypeError, match="unknown argument.*'levels'.*accepted"):
        wavevision.create_model("wavemix", levels=2)


@pytest.mark.parametrize("kw,match", [
    (dict(initial_conv="conv"), "unknown initial_conv 'conv'.*patchify"),
    (dict(upsample="bicubic"), "unknown upsample 'bicubic'.*convtranspose"),
    (dict(upsample="bilinear", ff_channel=8), "parameter-free upsample.*ff_channel == final_dim"),
    (dict(num_classes=-1), "num_classes must be an integer >= 0"),
    (dict(depth=0), "depth must be an integer >= 1"),
    (dict(dropout=1.5), r"dropout must be in \[0, 1\)"),
])
def test_bad_config_values(kw, match):
    base = dict(depth=1, final_dim=16, ff_channel=16)
    with pytest.raises(ValueError, match=match):
        wavevision.create_model("wavemix", **{**base, **kw})


def test_sr_scale():
    with pytest.raises(ValueError, match="scale must be 2 or 4"):
        wavevision.create_model("wavemix_sr", scale=3)


def test_pretrained_and_missing_name():
    with pytest.raises(ValueError, match="hosts no pretrained weights.*checkpoint=PATH"):
        wavevision.create_model("wavemix", pretrained=True)
    with pytest.raises(ValueError, match="needs a model name"):
        wavevision.create_model()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wavevision.create_model("wavemix", checkpoint=tmp_path / "nope.pth")


def test_checkpoint_of_another_architecture(tmp_path):
    path = tmp_path / "level2.pth"
    torch.save(_tiny(level=2).state_dict(), path)
    with pytest.raises(wavevision.CheckpointMismatchError, match="does not fit.*(missing|unexpected) key"):
        wavevision.create_model("wavemix", checkpoint=path, depth=1, final_dim=16, ff_channel=16, num_classes=3, level=3)
    path32 = tmp_path / "wide.pth"
    torch.save(wavevision.create_model("wavemix", depth=1, final_dim=32, ff_channel=32, num_classes=3).state_dict(), path32)
    with pytest.raises(wavevision.CheckpointMismatchError, match=r"shape mismatch.*checkpoint \(64, 48, 1, 1\) vs model \(32, 24, 1, 1\)"):
        wavevision.create_model("wavemix", checkpoint=path32, depth=1, final_dim=16, ff_channel=16, num_classes=3)


def test_corrupt_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="could not read .*corrupt.pth"):
        wavevision.create_model("wavemix", checkpoint=path)


def test_transform_errors():
    with pytest.raises(ValueError, match="4D"):
        haar_dwt2(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="multiple of 4 channels"):
        haar_idwt2(torch.rand(1, 6, 4, 4))
    with pytest.raises(ValueError, match="does not fit coefficients"):
        haar_idwt2(torch.rand(1, 4, 4, 4), size=(5, 8))
    with pytest.raises(ValueError, match="levels must be an integer >= 1"):
        haar_wavedec2(torch.rand(1, 1, 8, 8), 0)
    with pytest.raises(ValueError, match="unknown Haar channel layout"):
        haar_dwt2(torch.rand(1, 1, 8, 8), layout="interleaved")
