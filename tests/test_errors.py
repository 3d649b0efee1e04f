"""Bad input gets a clear error naming the problem and the fix."""
from __future__ import annotations

import json
import os
import re

import pytest
import torch

import wavevision
from wavevision.layers import WaveMixBlock
from wavevision.ops import haar_dwt2, haar_idwt2, haar_wavedec2

from _deadline import finishes

TINY = dict(depth=1, final_dim=16, ff_channel=16, num_classes=3)


def _tiny(**kw):
    return wavevision.create_model("wavemix", **{**TINY, **kw})


# ------------------------------------------------------------------------------------
# Inputs


def test_wrong_number_of_channels():
    with pytest.raises(ValueError, match=r"built for 3 input channel\(s\) but the input has 1.*in_chans=1"):
        _tiny()(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize("name", ["wavemix_lite_8_10", "wavemix_seg", "wavemix_paper_sr"])
def test_wrong_number_of_channels_every_task(name):
    model = wavevision.create_model(name, depth=1)
    wrong = 4 if model.in_chans != 4 else 2
    with pytest.raises(ValueError, match=rf"built for {model.in_chans} input channel\(s\) but the input has {wrong}.*in_chans={wrong}"):
        model(torch.rand(1, wrong, 16, 16))


def test_non_4d_input():
    with pytest.raises(ValueError, match=r"4D input.*got shape \(3, 32, 32\).*unsqueeze\(0\)"):
        _tiny()(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r"4D input.*got shape \(1, 1, 3, 32, 32\)"):
        _tiny()(torch.rand(1, 1, 3, 32, 32))


def test_non_tensor_input():
    with pytest.raises(TypeError, match="expects a torch.Tensor, got list"):
        _tiny()([[0.0]])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_input(dtype):
    with pytest.raises(TypeError, match=rf"floating point, got dtype {re.escape(str(dtype))}.*x\.float\(\)"):
        _tiny()(torch.zeros(1, 3, 32, 32, dtype=dtype))


def test_bad_intermediate_indices():
    model = _tiny(depth=2)
    with pytest.raises(IndexError, match="block index 2 out of range for 2 blocks"):
        model.forward_intermediates(torch.rand(1, 3, 16, 16), indices=[2])
    with pytest.raises(ValueError, match="indices=3 asks for the last 3 blocks of 2"):
        model.forward_intermediates(torch.rand(1, 3, 16, 16), indices=3)


# ------------------------------------------------------------------------------------
# Configurations


@pytest.mark.parametrize("level", [0, -1, 1.5, "2", None])
def test_bad_level(level):
    with pytest.raises(ValueError, match=rf"level must be an integer >= 1, got {re.escape(repr(level))}"):
        _tiny(level=level)


@pytest.mark.parametrize("name", ["wavemix_lite", "wavemix_seg", "wavemix_paper_sr"])
def test_level_zero_every_family(name):
    with pytest.raises(ValueError, match="level must be an integer >= 1, got 0"):
        wavevision.create_model(name, depth=1, level=0)


def test_level_zero_block():
    with pytest.raises(ValueError, match="level must be an integer >= 1"):
        WaveMixBlock(dim=16, level=0)


@pytest.mark.parametrize("name", ["wavemix", "wavemix_seg", "wavemix_paper_sr"])
def test_final_dim_not_divisible_by_4(name):
    with pytest.raises(ValueError, match="final_dim must be a positive multiple of 4.*got 18; try 16 or 20"):
        wavevision.create_model(name, depth=1, final_dim=18, ff_channel=18)


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match=r"unknown model 'wavemix_lit'\..*Did you mean.*'wavemix_lite'.*list_models"):
        wavevision.create_model("wavemix_lit")
    with pytest.raises(ValueError, match=r"unknown model 'resnet50'\. See wavevision\.list_models\(\)"):
        wavevision.get_entry("resnet50")


def test_model_name_must_be_a_string():
    with pytest.raises(TypeError, match="model name must be a string, got int"):
        wavevision.create_model(3)


def test_unknown_override_lists_accepted_names():
    with pytest.raises(TypeError, match=r"wavemix: unknown argument\(s\) \['levels'\]; accepted: \[.*'level'.*\]"):
        wavevision.create_model("wavemix", levels=2)
    # The message lists what the family takes instead.
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['classes'\].*'scale'"):
        wavevision.create_model("wavemix_paper_sr", classes=3)


@pytest.mark.parametrize("kw,match", [
    (dict(initial_conv="conv"), r"unknown initial_conv 'conv'; choose one of \('patchify', 'pachify', 'strided'\)"),
    (dict(upsample="bicubic"), r"unknown upsample 'bicubic'; choose one of \('convtranspose', 'bilinear', 'nearest'\)"),
    (dict(upsample="bilinear", ff_channel=8), r"parameter-free upsample \('bilinear'\) needs ff_channel == final_dim \(16\), got 8.*convtranspose"),
    (dict(upsample="nearest", ff_channel=32), r"parameter-free upsample \('nearest'\) needs ff_channel == final_dim"),
    (dict(num_classes=-1), "num_classes must be an integer >= 0, got -1"),
    (dict(depth=0), "depth must be an integer >= 1, got 0"),
    (dict(in_chans=0), "in_chans must be an integer >= 1, got 0"),
    (dict(mult=0), "mult must be an integer >= 1, got 0"),
    (dict(dropout=1.5), r"dropout must be in \[0, 1\), got 1.5"),
    (dict(patch_size=0), "patch_size must be >= 1, got 0"),
])
def test_bad_config_values(kw, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kw)


def test_num_classes_negative_every_task_and_reset():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0, got -2"):
        wavevision.create_model("wavemix_seg", depth=1, num_classes=-2)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0, got -1"):
        _tiny().reset_classifier(-1)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0, got -1"):
        wavevision.create_model("wavemix_paper_sr", depth=1).reset_classifier(-1)


@pytest.mark.parametrize("scale", [3, 1, 8])
def test_sr_scale(scale):
    with pytest.raises(ValueError, match=rf"scale must be 2 or 4, got {scale}"):
        wavevision.create_model("wavemix_paper_sr", scale=scale)


# ------------------------------------------------------------------------------------
# create_model and checkpoints


def test_pretrained_explains_no_hosted_weights():
    with pytest.raises(ValueError, match="wavemix has no released weights.*checkpoint=PATH"):
        wavevision.create_model("wavemix", pretrained=True)


def test_neither_name_nor_checkpoint():
    with pytest.raises(ValueError, match=r"needs a model name.*list_models\(\).*checkpoint=PATH"):
        wavevision.create_model()


def test_missing_checkpoint(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=rf"checkpoint {re.escape(str(path))} does not exist"):
        wavevision.create_model("wavemix", checkpoint=path)


def test_plain_state_dict_needs_a_name(tmp_path):
    path = tmp_path / "x.pth"
    torch.save(_tiny().state_dict(), path)
    with pytest.raises(ValueError, match="plain state dict: pass the model name"):
        wavevision.create_model(checkpoint=path)


def test_checkpoint_of_another_level(tmp_path):
    path = tmp_path / "x.pth"
    torch.save(_tiny(level=2).state_dict(), path)
    with pytest.raises(wavevision.CheckpointMismatchError, match=r"does not fit model 'wavemix'.*missing key\(s\), e\.g\. \['layers\.0\.feedforward3\.") as info:
        wavevision.create_model("wavemix", checkpoint=path, level=3, **TINY)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    # The coarsest MLP of a level-2 block takes C channels, a level-3 block's second MLP 3C/2.
    assert "shape mismatch" in str(info.value) and "layers.0.feedforward2.0.weight" in str(info.value)
    # The other direction: the level-3 checkpoint has a key the level-2 model lacks.
    path3 = tmp_path / "y.pth"
    torch.save(_tiny(level=3).state_dict(), path3)
    with pytest.raises(wavevision.CheckpointMismatchError, match=r"unexpected key\(s\), e\.g\. \['layers\.0\.feedforward3\."):
        wavevision.create_model("wavemix", checkpoint=path3, level=2, **TINY)


def test_checkpoint_of_another_width(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(_tiny(final_dim=32, ff_channel=32).state_dict(), path)
    with pytest.raises(wavevision.CheckpointMismatchError, match=r"shape mismatch.*checkpoint \(64, 48, 1, 1\) vs model \(32, 24, 1, 1\)"):
        wavevision.create_model("wavemix", checkpoint=path, **TINY)


def test_corrupt_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(torch.randint(0, 256, (1024,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(ValueError, match=rf"could not read {re.escape(str(path))} as a PyTorch state dict"):
        wavevision.create_model("wavemix", checkpoint=path, **TINY)


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match="tensor.pth is not a state dict: expected a state dict.*got Tensor"):
        wavevision.create_model("wavemix", checkpoint=path, **TINY)


# ------------------------------------------------------------------------------------
# Transforms


def test_haar_dwt2_on_3d():
    with pytest.raises(ValueError, match=r"haar_dwt2 input must be 4D.*got shape \(3, 8, 8\).*unsqueeze\(0\)"):
        haar_dwt2(torch.rand(3, 8, 8))


def test_haar_dwt2_integer_and_layout():
    with pytest.raises(TypeError, match="floating-point tensor, got dtype torch.int64"):
        haar_dwt2(torch.zeros(1, 1, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"unknown Haar channel layout 'interleaved'; choose one of \('wavemix', 'band'\)"):
        haar_dwt2(torch.rand(1, 1, 8, 8), layout="interleaved")


def test_haar_idwt2_channels_not_divisible_by_4():
    with pytest.raises(ValueError, match="haar_idwt2 input needs a multiple of 4 channels, got 6"):
        haar_idwt2(torch.rand(1, 6, 4, 4))


@pytest.mark.parametrize("size", [(5, 8), (8, 10), (9, 8), (1, 1)])
def test_haar_idwt2_impossible_size(size):
    with pytest.raises(ValueError, match=rf"size \({size[0]}, {size[1]}\) does not fit coefficients of spatial size \(4, 4\); expected height 7 or 8"):
        haar_idwt2(torch.rand(1, 4, 4, 4), size=size)


@pytest.mark.parametrize("levels", [0, -1, 1.0])
def test_haar_wavedec2_bad_levels(levels):
    with pytest.raises(ValueError, match=rf"levels must be an integer >= 1, got {re.escape(repr(levels))}"):
        haar_wavedec2(torch.rand(1, 1, 8, 8), levels)


# ------------------------------------------------------------------------------------
# The JSON config beside a checkpoint is checked before use


@pytest.fixture
def saved(tmp_path):
    path = wavevision.save_checkpoint(_tiny(), tmp_path / "tiny.safetensors")
    return path, path.with_suffix(".json")


def _rewrite(cfg_path, **changes):
    cfg = {**json.loads(cfg_path.read_text()), **changes}
    cfg_path.write_text(json.dumps(cfg))


@pytest.mark.parametrize("changes, message", [
    (dict(format="other-tool"), r"'format' must be 'wavevision-checkpoint', got 'other-tool'"),
    (dict(version=99), r"'version' 99 is newer than this wavevision reads \(1\); upgrade wavevision"),
    (dict(version="1"), r"'version' must be an integer >= 1, got '1'"),
    (dict(model=3), r"'model' must be a model name \(a string\), got 3"),
    (dict(model=["wavemix"]), r"'model' must be a model name \(a string\), got \['wavemix'\]"),
    (dict(kwargs=[1, 2]), r"'kwargs' must be a mapping of argument names to values, got list"),
    (dict(kwargs={"depth": {"$type": "os.system"}, "x": None}), None),  # plain JSON nests: accepted here
    (dict(extra="notes"), r"'extra' must be a mapping, got str"),
])
def test_checkpoint_config_types_are_checked(saved, changes, message):
    path, cfg_path = saved
    _rewrite(cfg_path, **changes)
    if message is None:
        with pytest.raises(TypeError, match="depth"):  # the model itself refuses the value
            wavevision.create_model(checkpoint=path)
        return
    with pytest.raises(ValueError, match=rf"^checkpoint config {re.escape(str(cfg_path))}: {message}"):
        wavevision.create_model(checkpoint=path)


@pytest.mark.parametrize("text, message", [
    ('{"format": "wavevision-checkpoint", "version": 1, "model": "wavemix", "kwargs": {"dropout": NaN}}',
     r"kwargs.dropout must be a finite number, got nan"),
    ('{"format": "wavevision-checkpoint", "version": 1, "model": "wavemix", "kwargs": {"a": [1, Infinity]}}',
     r"kwargs.a must be a finite number, got inf"),
    ('{"format": "wavevision-checkpoint", "version": 1, "kwargs": {}}', r"has no 'model'"),
    ('{"format": "wavevision-checkpoint", "version": 1, "model": "wavemix", "kwargs": {"a": '
     + "[" * 40 + "]" * 40 + "}}", r"kwargs.a is nested more than 16 levels deep"),
    ("[" * 100_000 + "]" * 100_000, r"is nested too deeply"),
    ("[1, 2]", r"must hold a JSON object, got list"),
    ('{"format": ', r"is not valid JSON"),
])
def test_checkpoint_config_values_are_checked(saved, text, message):
    path, cfg_path = saved
    cfg_path.write_text(text)
    with pytest.raises(ValueError, match=rf"^checkpoint config {re.escape(str(cfg_path))}:? {message}") as info:
        wavevision.create_model(checkpoint=path)
    assert "\n" not in str(info.value)


def test_checkpoint_config_size_and_kind_are_limited(saved, tmp_path):
    path, cfg_path = saved
    cfg_path.write_bytes(b" " * (2 << 20) + b"{}")
    with pytest.raises(ValueError, match=rf"checkpoint config {re.escape(str(cfg_path))} is 2,097,154 bytes, more than"):
        wavevision.create_model(checkpoint=path)
    if not hasattr(os, "mkfifo"):
        return
    cfg_path.unlink()
    os.mkfifo(cfg_path)
    with pytest.raises(ValueError, match="is a FIFO, not a regular file"):
        finishes(lambda: wavevision.create_model(checkpoint=path), 30, "reading a FIFO as the checkpoint config")


# ------------------------------------------------------------------------------------
# Model arguments of the wrong kind, or ignored (issue 23.7)


@pytest.mark.parametrize("kw, match", [
    (dict(final_dim="eight"), r"wavemix_lite: argument final_dim must be an integer, got 'eight'"),
    (dict(ff_channel="x"), r"wavemix_lite: argument ff_channel must be an integer, got 'x'"),
    (dict(final_dim=16.0, ff_channel=16), r"argument final_dim must be an integer, got 16.0"),
    (dict(patch_size=0), r"argument patch_size=0 has no effect: the strided stem .*initial_conv='patchify'"),
    (dict(patch_size=8), r"argument patch_size=8 has no effect"),
])
def test_model_arguments_of_the_wrong_kind_or_ignored_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        wavevision.create_model("wavemix_lite", **kw)


def test_an_ignored_stride_is_refused_and_a_used_one_accepted():
    with pytest.raises(ValueError, match=r"wavemix: argument stride=3 has no effect: the patchify stem"):
        wavevision.create_model("wavemix", stride=3)
    model = wavevision.create_model("wavemix", initial_conv="strided", stride=1, depth=1, final_dim=16, ff_channel=16)
    assert model.model_kwargs["stride"] == 1


# ------------------------------------------------------------------------------------
# Checkpoints whose own description contradicts itself


def test_a_checkpoint_whose_task_disagrees_with_its_model_is_one_clear_line(tmp_path):
    from wavevision.engine import load_trained

    model = wavevision.create_model("wavemix_lite", **TINY)
    path = wavevision.save_checkpoint(model, tmp_path / "best.safetensors", extra={"task": "segmentation"})
    with pytest.raises(ValueError, match=r"best.json: extra.task is 'segmentation' but its model wavemix_lite is a "
                                         r"classification model"):
        load_trained(path)
    dataset = dict(name="x", task="segmentation", in_chans=3, num_classes=3, class_names=None, image_size=None,
                   mean=[], std=[])
    wavevision.save_checkpoint(model, path, extra={"task": "classification", "dataset": dataset})
    with pytest.raises(ValueError, match=r"extra.dataset.task is 'segmentation' but its model wavemix_lite"):
        load_trained(path)


# ------------------------------------------------------------------------------------
# The command line's error paths: one line that says what and where, never a bare key


def _bad_commands(tmp_path):
    from PIL import Image

    model = wavevision.create_model("wavemix_lite", **TINY)
    lite = wavevision.save_checkpoint(model, tmp_path / "lite" / "best.safetensors")
    wrong_task = wavevision.save_checkpoint(model, tmp_path / "task" / "best.safetensors", extra={"task": "detection"})
    image = tmp_path / "x.png"
    Image.new("RGB", (16, 16)).save(image)
    return [
        ["info", "wavemix_lite", "--model-arg", "final_dim=eight"],
        ["info", "wavemix_lite", "--model-arg", "patch_size=0"],
        ["export", "wavemix_lite", "--model-arg", "depth=two", "-o", str(tmp_path / "a.onnx")],
        ["export", str(tmp_path / "no" / "run"), "-o", str(tmp_path / "b.onnx")],
        ["export", "wavemix", "--checkpoint", str(lite), "-o", str(tmp_path / "c.onnx")],
        ["export", "wavemix_lite", "--checkpoint", str(lite), "--model-arg", "final_dim=32", "-o", str(tmp_path / "d.onnx")],
        ["predict", str(wrong_task), str(image)],
        ["predict", str(tmp_path / "lite"), str(image), "--image-size", "-3"],
        ["bench", "wavemix_lite_8_10", "--memory-limit-mb", "-1", "--out", str(tmp_path / "bench")],
        ["bench", "wavemix_lite_8_10", "--accuracy", "wavemix_lite_8_10=nan", "--out", str(tmp_path / "bench")],
        ["train", "--model-arg", "final_dim=eight", "--epochs", "1", "-o", str(tmp_path / "run")],
        ["erf", "wavemix_lite", "--model-arg", "stride=x", "--out", str(tmp_path / "erf")],
    ]


def test_cli_error_paths_are_one_line_naming_what_and_where(tmp_path, capsys):
    from wavevision.cli import main

    for argv in _bad_commands(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        prefix = f"wavevision {argv[0]}: error: "
        assert err.startswith(prefix) and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        message = err[len(prefix):].strip()
        assert len(message.split()) >= 6, (argv, message)  # a sentence, not a bare key such as "bbox"
        assert "not all arguments converted" not in message and not re.fullmatch(r"[\w.'\"]+", message), (argv, message)
    assert not (tmp_path / "bench").exists() and not (tmp_path / "run").exists()


def test_a_bare_key_error_becomes_a_sentence(capsys, monkeypatch):
    import wavevision.cli.list_models as list_cmd
    from wavevision.cli import main

    def run(args):
        raise KeyError("bbox")

    monkeypatch.setattr(list_cmd, "run", run)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == ("wavevision list: error: missing key 'bbox' in an input read by this command; "
                                       "rerun with --traceback to see where\n")


def test_bench_refuses_a_negative_memory_limit_and_a_nan_accuracy_before_measuring():
    from wavevision.bench import benchmark
    from wavevision.bench.suites import run_suite

    with pytest.raises(ValueError, match=r"memory_limit_mb must be > 0, got -1"):
        benchmark(["wavemix_lite_8_10"], memory_limit_mb=-1)
    with pytest.raises(ValueError, match=r"accuracies\['wavemix_lite_8_10'\] must be a finite number, got nan"):
        benchmark(["wavemix_lite_8_10"], accuracies={"wavemix_lite_8_10": float("nan")})
    with pytest.raises(ValueError, match=r"memory_limit_mb must be > 0"):
        run_suite("cifar", memory_limit_mb=0)
