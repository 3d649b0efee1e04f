"""The train, eval, predict, list and info commands, in process: happy paths and clear errors."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import wavevision
from wavevision.bench import count_macs
from wavevision.cli import main
from wavevision.engine import train

TINY_FLAGS = ["--model-arg", "final_dim=16", "--model-arg", "ff_channel=16", "--model-arg", "depth=1"]
QUICK_FLAGS = ["--threads", "1", "--no-progress", "--no-plots"]
QUICK = dict(threads=1, progress=False, plots=False)


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _save_png(tensor: torch.Tensor, path: Path) -> Path:
    from PIL import Image

    array = tensor.clamp(0, 1).mul(255).round().to(torch.uint8)
    img = Image.fromarray(array[0].numpy()) if array.shape[0] == 1 else Image.fromarray(array.permute(1, 2, 0).numpy())
    img.save(path)
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits"
    argv = ["train", *TINY_FLAGS, "--epochs", "1", "--batch-size", "32", "--max-train-batches", "4",
            "--max-eval-batches", "1", *QUICK_FLAGS, "--output", str(out)]
    assert main(argv) == 0
    return out


# -- list / info -------------------------------------------------------------------------


def test_list_shows_task_params_and_reference(capsys):
    assert main(["list", "wavemix_lite_8*"]) == 0
    out = capsys.readouterr().out
    assert "wavemix_lite_8_10" in out and "3,566" in out and "MNIST top1 99.0" in out
    assert "wavemix_seg" not in out
    assert main(["list", "--task", "super-resolution", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["task"] for r in rows} == {"super-resolution"}
    assert {r["name"] for r in rows} == set(wavevision.list_models(task="super_resolution"))


def test_help_texts_name_every_registered_task():
    from wavevision.cli import build_parser
    from wavevision.engine import get_task, list_tasks

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    helps = {name: [p.description] + [a.help for a in p._actions] for name, p in sub.choices.items()}
    words = [t.replace("_", "-") for t in list_tasks()]
    assert "detection" in words
    assert all(w in helps["train"][0] for w in words)  # the command's own line
    assert any(all(w in (h or "") for w in words) for h in helps["list"])  # --task
    for command in ("info", "export"):  # the default input size of each task
        sizes = ["x".join(map(str, get_task(t).input_size)) + " for " + w for t, w in zip(list_tasks(), words)]
        assert any(all(s in (h or "") for s in sizes) for h in helps[command]), command
    assert "800x1280 for detection" in " ".join(h or "" for h in helps["info"])
    assert all(f"{get_task(t).metric} ({w})" in helps["eval"][0] for t, w in zip(list_tasks(), words))


def test_list_errors(capsys):
    assert "unknown task 'vision'; choose one of classification, segmentation, super-resolution" in _error(
        capsys, ["list", "--task", "vision"])
    assert "no model matches 'nothing*'" in _error(capsys, ["list", "nothing*"])


def test_info_layer_table_params_and_macs(capsys):
    assert main(["info", "wavemix_lite_8_10"]) == 0
    out = capsys.readouterr().out
    model = wavevision.create_model("wavemix_lite_8_10")
    assert "parameters: 3,566" in out and "at 28x28" in out  # MNIST size from the reference
    assert f"multiply-accumulates: {count_macs(model, (28, 28)):,}" in out
    assert "layers.9" in out and "WaveMixBlock" in out
    assert main(["info", "wavemix_lite_8_10", "--size", "32", "--json", "--model-arg", "depth=2"]) == 0
    record = json.loads(capsys.readouterr().out)
    small = wavevision.create_model("wavemix_lite_8_10", depth=2)
    assert record["macs"] == count_macs(small, (32, 32)) and record["input"] == [1, 1, 32, 32]
    assert sum(r["macs"] for r in record["layers"] if "." not in r["layer"].strip()) == record["macs"]
    # a model registered for one input size (the ablation's token-MLP mixer) is measured at that size
    assert main(["info", "mixer_mlp"]) == 0
    assert "at 16x16" in capsys.readouterr().out


def test_info_errors(capsys):
    assert "did you mean 'wavemix'" in _error(capsys, ["info", "wavemx"]).lower()
    assert "unknown argument(s) ['dept']" in _error(capsys, ["info", "wavemix_lite_8_10", "--model-arg", "dept=2"])


# -- train -------------------------------------------------------------------------------


def test_train_command_writes_a_complete_run(digits_run, capsys):
    for name in ("config.yaml", "best.safetensors", "last.state.pt", "log.jsonl", "results.json"):
        assert (digits_run / name).exists()
    saved = yaml.safe_load((digits_run / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["model_args"]["final_dim"] == 16


def test_train_yaml_and_flags_precedence(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"epochs": 1, "lr": 0.01, "batch_size": 16, "max_train_batches": 2,
                                   "max_eval_batches": 1, "test": False, "model_args": {"depth": 1}}))
    out = tmp_path / "run"
    assert main(["train", "-c", str(cfg), "--lr", "0.02", "--model-arg", "final_dim=16",
                 "--model-arg", "ff_channel=16", *QUICK_FLAGS, "-o", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["lr"] == 0.02 and saved["batch_size"] == 16  # flag over file, file over recipe
    assert saved["model_args"]["depth"] == 1 and saved["model_args"]["final_dim"] == 16
    assert record["config"]["lr"] == 0.02 and record["test"] is None
    # the saved configuration reruns the same job
    assert main(["train", "-c", str(out / "config.yaml"), "--overwrite", "--json", *QUICK_FLAGS]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["weights_sha256"] == record["weights_sha256"]


def test_train_resume_command_uses_the_saved_configuration(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", *TINY_FLAGS, "--epochs", "2", "--batch-size", "16", "--max-train-batches", "2",
            "--max-eval-batches", "1", "--no-test", *QUICK_FLAGS]
    assert main([*base, "--epochs", "1", "-o", str(out)]) == 0
    capsys.readouterr()
    assert "another configuration (epochs: 1 in the run, 2 now)" in _error(capsys, [*base, "--resume", str(out)])
    assert main(["train", "--resume", str(out), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1
    assert "nothing to resume" in _error(capsys, ["train", "--resume", str(tmp_path / "none")])


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "adam"], "optimizer: 'adam' is not a valid choice (did you mean 'adamw'?); choose one of adamw, sgd"),
    (["--amp", "fp8"], "choose one of none, bf16, fp16"),
    (["--model", "wavemix_litte"], "unknown model 'wavemix_litte'"),
    (["--model-arg", "depth"], "--model-arg 'depth' must look like KEY=VALUE"),
    (["--dataset", "digitz"], "dataset: 'digitz' is not a valid choice (did you mean 'digits'"),
    (["--dataset-arg", "image_sise=16"], "image_sise"),
    (["--device", "tpu:3"], "tpu:3"),
])
def test_train_bad_values_list_the_choices(capsys, tmp_path, argv, message):
    assert message in _error(capsys, ["train", *argv, "-o", str(tmp_path / "x"), *QUICK_FLAGS])


def test_train_bad_dataset_paths(capsys, tmp_path):
    missing = tmp_path / "missing"
    assert "does not exist" in _error(capsys, ["train", "--dataset", "imagefolder", "--data-root", str(missing),
                                               "-o", str(tmp_path / "x"), *QUICK_FLAGS])
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _error(capsys, ["train", "--dataset", str(empty), "-o", str(tmp_path / "x"), *QUICK_FLAGS])
    assert str(empty) in err or "empty" in err


def test_train_names_a_corrupt_image(capsys, tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(10):
            _save_png(torch.rand(3, 8, 8), tmp_path / "data" / cls / f"{i}.png")
    for i in range(10):  # every split holds some of them
        (tmp_path / "data" / "a" / f"{i}.png").write_bytes(b"not an image")
    err = _error(capsys, ["train", "--dataset", str(tmp_path / "data"), *TINY_FLAGS, "--dataset-arg", "image_size=8",
                          "--epochs", "1", "-o", str(tmp_path / "x"), *QUICK_FLAGS])
    assert "corrupt" in err and str(tmp_path / "data" / "a") in err


def test_train_refuses_to_overwrite(digits_run, capsys):
    err = _error(capsys, ["train", *TINY_FLAGS, *QUICK_FLAGS, "--output", str(digits_run)])
    assert "already holds a run" in err and "--overwrite" in err


# -- eval --------------------------------------------------------------------------------


def test_eval_command_on_run_directory_and_json(digits_run, tmp_path, capsys):
    out_json = tmp_path / "metrics.json"
    assert main(["eval", str(digits_run), "--split", "val", "--json", str(out_json), "--no-progress"]) == 0
    out = capsys.readouterr().out
    record = json.loads(out_json.read_text())
    assert record["split"] == "val" and record["images"] == 179 and record["dataset"] == "digits"
    assert "top1" in out and f"{record['top1']:.4g}" in out
    # the same numbers as the library's evaluate on the same weights
    from wavevision.data import build_dataset
    from wavevision.engine import evaluate

    model = wavevision.create_model(checkpoint=digits_run / "best.safetensors")
    data, info = build_dataset("digits", "val")
    assert evaluate(model, data, info, batch_size=50, device="cpu")["top1"] == pytest.approx(record["top1"])
    assert "already exists" in _error(capsys, ["eval", str(digits_run), "--json", str(out_json)])


def test_eval_errors(digits_run, capsys, tmp_path):
    err = _error(capsys, ["eval", str(digits_run), "--dataset", "photos", "--no-progress"])
    assert "holds a classification model (wavemix_lite), but dataset 'photos' is for super-resolution" in err
    assert "does not exist" in _error(capsys, ["eval", str(tmp_path / "nope.safetensors")])
    assert "holds no best.safetensors" in _error(capsys, ["eval", str(tmp_path)])
    other = tmp_path / "other.safetensors"
    wavevision.save_checkpoint(wavevision.create_model("wavemix_lite_8_10", depth=1), other)
    err = _error(capsys, ["eval", str(other), "--dataset", "digit-scenes", "--no-progress"])
    assert "holds a classification model (wavemix_lite_8_10), but dataset 'digit-scenes' is for segmentation" in err
    five = tmp_path / "five.safetensors"
    wavevision.save_checkpoint(wavevision.create_model("wavemix_lite_8_10", depth=1, num_classes=5), five)
    err = _error(capsys, ["eval", str(five), "--dataset", "digits", "--no-progress"])
    assert "with 5 classes, but dataset 'digits' has 10" in err
    assert "pass --dataset NAME" in _error(capsys, ["eval", str(five), "--no-progress"])


# -- predict -----------------------------------------------------------------------------


def test_predict_classification_top_k_with_class_names(digits_run, tmp_path, capsys):
    from wavevision.data.embedded import load_digits_tensor

    images, labels = load_digits_tensor()
    paths = [_save_png(images[i], tmp_path / f"digit{int(labels[i])}.png") for i in range(2)]
    assert main(["predict", str(digits_run), *map(str, paths), "-k", "3", "-o", str(tmp_path / "pred")]) == 0
    out = capsys.readouterr().out
    assert "digit0.png" in out and "probability %" in out
    record = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert len(record) == 2 and len(record[0]["top"]) == 3
    assert record[0]["top"][0]["name"] in [str(d) for d in range(10)]
    assert sum(t["probability"] for t in record[0]["top"]) <= 1.0 + 1e-6
    assert "already exists" in _error(capsys, ["predict", str(digits_run), str(paths[0]), "-o", str(tmp_path / "pred")])


def test_predict_errors(digits_run, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert "broken.png" in _error(capsys, ["predict", str(digits_run), str(bad)])
    assert "does not exist" in _error(capsys, ["predict", str(digits_run), str(tmp_path / "none.png")])


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "run"
    train(dataset="digit-scenes", model_args=dict(final_dim=16, ff_channel=16, depth=1, level=2),
          dataset_args=dict(num_scenes=4), epochs=1, batch_size=4, test=False, output=str(out), **QUICK)
    return out


def test_predict_segmentation_writes_mask_and_overlay(scene_run, tmp_path, capsys):
    from PIL import Image

    from wavevision.data import build_dataset

    data, _ = build_dataset("digit-scenes", "test", num_scenes=1)
    scene = data.images[0] if hasattr(data, "images") else None
    scene = torch.rand(1, 64, 64) if scene is None else scene.float()
    path = _save_png(scene, tmp_path / "scene.png")
    assert main(["predict", str(scene_run), str(path), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    mask, overlay = Image.open(tmp_path / "out" / "scene_mask.png"), Image.open(tmp_path / "out" / "scene_overlay.png")
    assert mask.size == (64, 64) and overlay.height == 384 and overlay.width > 384 and overlay.mode == "RGB"  # + legend
    assert int(np.asarray(mask).max()) < 11 and "%" in out
    assert "pass an output folder" in _error(capsys, ["predict", str(scene_run), str(path)])


def test_predict_images_sharing_a_name_get_results_of_their_own(scene_run, tmp_path, capsys):
    from wavevision.engine.predict import output_names

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = _save_png(torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0)), tmp_path / "a" / "x.png")
    second = _save_png(torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(1)), tmp_path / "b" / "x.png")
    out = tmp_path / "out"
    assert main(["predict", str(scene_run), str(first), str(second), "-o", str(out)]) == 0
    masks = {p.name: p.read_bytes() for p in out.iterdir() if p.name.endswith("_mask.png")}
    assert set(masks) == {"a-x_mask.png", "b-x_mask.png"} and masks["a-x_mask.png"] != masks["b-x_mask.png"]
    assert output_names([Path("d/x.png"), Path("d/x.jpg"), Path("y.png")]) == ["x-png", "x-jpg", "y"]
    err = _error(capsys, ["predict", str(scene_run), str(first), str(first), "-o", str(tmp_path / "twice")])
    assert f"{first} and {first} would both write" in err and not (tmp_path / "twice").exists()


def test_predict_refuses_sizes_that_cannot_fit_before_decoding(digits_run, scene_run, tmp_path, capsys, monkeypatch):
    import wavevision.engine.sizing as sizing
    from wavevision.engine import load_trained, predict

    image = _save_png(torch.rand(1, 16, 16), tmp_path / "d.png")
    err = _error(capsys, ["predict", str(digits_run), str(image), "--image-size", "300000"])
    assert "at 300000x300000 (--image-size) would need about" in err and "smaller --image-size" in err
    assert "--image-size must be >= 1" in _error(capsys, ["predict", str(digits_run), str(image), "--image-size", "0"])
    trained = load_trained(scene_run)  # a dense task predicts at the image's own size: the header's size is checked
    big = _save_png(torch.zeros(1, 1000, 1000), tmp_path / "big.png")
    monkeypatch.setattr(sizing, "device_memory", lambda device: 32 << 20)
    predict_module = importlib.import_module("wavevision.engine.predict")  # the package exports a function of that name
    monkeypatch.setattr(predict_module, "load_image", lambda path: pytest.fail("decoded before the check"))
    with pytest.raises(MemoryError, match=r"big.png \(1000x1000 pixels\) would need about .*shrink the image"):
        predict(trained, [big], output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_predict_and_erf_keep_existing_results_unless_overwrite(digits_run, tmp_path, capsys):
    """One rule for every command that writes results: an existing file is replaced only with --overwrite."""
    out = tmp_path / "erf"
    argv = ["erf", "wavemix_lite_8_10", "--model-arg", "depth=1", "--samples", "1", "--input-size", "16", "--out", str(out)]
    assert main(argv) == 0
    png = out / "erf_wavemix_lite_8_10.png"
    png.write_bytes(b"my picture")
    err = _error(capsys, argv)
    assert f"{png} already exists" in err and "--overwrite" in err and png.read_bytes() == b"my picture"
    assert main([*argv, "--overwrite"]) == 0 and png.read_bytes() != b"my picture"
    image = _save_png(torch.rand(1, 16, 16), tmp_path / "d.png")
    assert main(["predict", str(digits_run), str(image), "-o", str(tmp_path / "pred")]) == 0
    assert "--overwrite" in _error(capsys, ["predict", str(digits_run), str(image), "-o", str(tmp_path / "pred")])
    assert main(["predict", str(digits_run), str(image), "-o", str(tmp_path / "pred"), "--overwrite"]) == 0
    from wavevision.cli import build_parser

    helps = {name: build_parser()._subparsers._group_actions[0].choices[name].format_help() for name in ("predict", "erf")}
    assert all("unless --overwrite" in " ".join(text.split()) for text in helps.values())


def test_predict_super_resolution_writes_upscaled_and_comparison(tmp_path, capsys):
    out = tmp_path / "sr"
    train(dataset="photos", model_args=dict(final_dim=16, ff_channel=16, depth=1),
          dataset_args=dict(num_patches=4, patch_size=32, eval_size=64), epochs=1, batch_size=4, test=False,
          output=str(out), **QUICK)
    from PIL import Image

    path = _save_png(torch.rand(3, 20, 30), tmp_path / "small.png")
    assert main(["predict", str(out), str(path), "-o", str(tmp_path / "pred")]) == 0
    assert "30x20 -> 60x40" in capsys.readouterr().out
    assert Image.open(tmp_path / "pred" / "small_x2.png").size == (60, 40)
    compare = Image.open(tmp_path / "pred" / "small_compare.png")
    assert compare.width > 2 * 60 and compare.height > 40


def test_info_and_export_refuse_absurd_sizes_with_an_estimate(capsys, tmp_path):
    err = _error(capsys, ["info", "wavemix_lite_8_10", "--size", "300000"])
    assert "would need about" in err and "--size" in err
    out = tmp_path / "m.onnx"
    err = _error(capsys, ["export", "wavemix_lite_8_10", "-o", str(out), "--input-size", "300000", "300000"])
    assert "would need about" in err and "--input-size" in err and not out.exists()
    err = _error(capsys, ["info", "wavemix_lite", "--model-arg", "final_dim=1048576", "--model-arg", "ff_channel=1048576"])
    assert "would need about" in err and "final_dim" in err
    from wavevision.bench import benchmark

    (row,) = benchmark(["wavemix_lite_8_10"], input_size=300000, memory=False, warmup=0, repeats=1)
    assert row.status == "oom" and "would need about" in row.note and row.params is None  # refused before building


def test_an_error_in_a_dataloader_worker_is_one_line(capsys, monkeypatch):
    """Any user error raised inside a worker process (not only the data readers' own) is printed
    as its last line, without the traceback torch wraps around it."""
    from torch.utils.data import DataLoader, Dataset

    import wavevision.cli as cli
    import wavevision.cli.list_models as list_cmd

    class Broken(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise ValueError("sample 0 has 5 channels; expected 3")

    def run(args):
        next(iter(DataLoader(Broken(), num_workers=1)))

    monkeypatch.setattr(list_cmd, "run", run)
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["wavevision list: error: sample 0 has 5 channels; expected 3"]
