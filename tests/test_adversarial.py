"""An adversary's round against the hardened surfaces: cases the other hostile-input tests miss.

Each case is one a fresh adversarial round could try (a mirror redirecting in a loop, a JSON
integer of 5,000 digits, a pickle where weights belong, ...) and each failed before its fix: the
error must be one line naming the file or URL, and nothing may hang or be lost.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
import torch

import wavevision

from _deadline import finishes
from _optional import require

COMMIT = "0123456789abcdef0123456789abcdef01234567"
BODY = b'{"architecture": "wavemix_lite"}\n'


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def _small():
    torch.manual_seed(0)
    return wavevision.create_model("wavemix_lite", num_classes=3, depth=1, final_dim=8, ff_channel=8).eval()


# --------------------------------------------------------------------------------------
# A mirror that redirects without end


class _Looping(http.server.ThreadingHTTPServer):
    daemon_threads = True
    get_only = False  # HEAD answers normally, GET redirects forever


class _LoopHandler(http.server.BaseHTTPRequestHandler):
    server: _Looping

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        loop = self.command == "GET" or not self.server.get_only
        self.send_response(302 if loop else 200)
        self.send_header("ETag", f'"{hashlib.sha256(BODY).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        if loop:  # an absolute URL on the same host: urllib follows it until it sees the loop
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}{self.path}x")
        self.send_header("Content-Length", "0" if loop else str(len(BODY)))
        self.end_headers()

    do_HEAD = do_GET = _answer  # noqa: N815 - http.server's names


def _hub_at(server, tmp_path, monkeypatch) -> None:
    """Point the Hub at ``server`` on 127.0.0.1, with an empty cache and a 1 s metadata timeout."""
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")


@pytest.fixture
def looping(tmp_path, monkeypatch):
    require("huggingface_hub")
    server = _Looping(("127.0.0.1", 0), _LoopHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _hub_at(server, tmp_path, monkeypatch)
    monkeypatch.setenv("WAVEVISION_DOWNLOAD_STALL", "1")
    monkeypatch.setenv("WAVEVISION_DOWNLOAD_DEADLINE", "3")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("get_only", [False, True], ids=["head-and-get", "get"])
def test_a_mirror_redirecting_in_a_loop_is_one_line(looping, get_only):
    from wavevision.models._hub_download import hub_download

    looping.get_only = get_only
    with pytest.raises(OSError, match="redirects in a loop") as info:
        finishes(lambda: hub_download("me/mine", "config.json", max_bytes=1 << 20), 20, "the Hub download")
    _one_line(info.value)


# --------------------------------------------------------------------------------------
# Hostile JSON sidecars and folders


def test_a_folder_config_with_a_5000_digit_integer_names_the_file(tmp_path):
    wavevision.save_pretrained(_small(), tmp_path)
    (tmp_path / "config.json").write_text('{"architecture": "wavemix_lite", "num_classes": ' + "9" * 5000 + "}")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON") as info:
        wavevision.create_model(f"local-dir:{tmp_path}")
    _one_line(info.value)


def test_a_checkpoint_config_with_a_5000_digit_integer_names_the_file(tmp_path):
    path = wavevision.save_checkpoint(_small(), tmp_path / "best.safetensors")
    path.with_suffix(".json").write_text('{"format": 1, "version": ' + "9" * 5000 + "}")
    with pytest.raises(ValueError, match=r"best\.json is not valid JSON") as info:
        wavevision.create_model(checkpoint=path)
    _one_line(info.value)


def test_a_pickle_in_place_of_legacy_weights_is_refused_in_one_line(tmp_path):
    wavevision.save_pretrained(_small(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    marker = tmp_path / "ran"
    (tmp_path / "pytorch_model.bin").write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(ValueError, match="could not read .*pytorch_model.bin") as info:
        wavevision.create_model(f"local-dir:{tmp_path}")
    _one_line(info.value)
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Memory: what is alive at once, not only the largest layer


class _Residual(torch.nn.Module):
    """``x + conv1(x) + conv2(conv1(x))``: at the last addition x, a, b, a + b and the sum are alive."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(8, 8, 1)
        self.conv2 = torch.nn.Conv2d(8, 8, 1)

    def forward(self, x):
        a = self.conv1(x)
        b = self.conv2(a)
        return a + b + x


def test_inference_memory_counts_every_tensor_alive_at_once():
    from wavevision.engine.sizing import activation_bytes, meta_model

    model = meta_model(_Residual).eval()
    one = 8 * 64 * 64 * 4  # bytes of one (1, 8, 64, 64) float32 tensor
    # before: the input and twice the largest layer output (3 tensors); five are alive at the end
    assert activation_bytes(model, (1, 8, 64, 64), train=False) == 5 * one


def test_predict_refuses_an_image_size_whose_forward_pass_cannot_fit(tmp_path, monkeypatch):
    from wavevision.engine import sizing
    from wavevision.engine.sizing import activation_bytes, meta_model

    model = meta_model(lambda: wavevision.create_model("wavemix_lite_8_10")).eval()
    need = activation_bytes(model, (1, 1, 256, 256), train=False)
    old = 256 * 256 * 4 + 2 * 8 * 256 * 256 * 4  # the input and twice the largest layer output
    assert need > old
    monkeypatch.setattr(sizing, "device_memory", lambda device: (need + old) // 2)  # between them
    with pytest.raises(MemoryError, match="would need about"):
        sizing.check_fits_memory(model, what="predicting", fix="smaller", input_shape=(1, 1, 256, 256))


# --------------------------------------------------------------------------------------
# predict: hostile names and shapes


def test_resizing_a_sliver_to_cover_a_square_is_one_line_naming_the_sizes():
    from wavevision.data.image import resize_and_crop

    with pytest.raises(ValueError, match=r"1x30000 pixels would be resized to 16x480000 .* crop the image") as info:
        resize_and_crop(torch.zeros(1, 1, 30000), 16)
    _one_line(info.value)


def test_predict_into_an_output_that_is_a_file_names_it_and_keeps_it(tmp_path):
    from wavevision.engine.predict import predict

    target = tmp_path / "results.png"
    target.write_bytes(b"keep me")
    with pytest.raises(NotADirectoryError, match=r"--output .*results\.png is a file, not a folder") as info:
        predict(_trained(), [tmp_path / "x.png"], output=target)
    _one_line(info.value)
    assert target.read_bytes() == b"keep me"


def _trained():
    """Just enough of a loaded checkpoint for predict's checks of its arguments."""
    from wavevision.engine.predict import Trained

    info = type("Info", (), {"image_size": 16, "in_chans": 3, "mean": (0.5,) * 3, "std": (0.5,) * 3})()
    return Trained(model=_small(), path=Path("run/best.safetensors"), task="classification", info=info)


# --------------------------------------------------------------------------------------
# Run directories: a finished run's results.json, damaged or copied


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from wavevision.engine import train

    root = tmp_path_factory.mktemp("finished")
    train(dict(dataset="digits", model_args=dict(final_dim=16, ff_channel=16, depth=1), epochs=1, batch_size=32,
               max_train_batches=1, max_eval_batches=1, test=False, output=str(root / "run"), threads=1,
               progress=False, plots=False))
    return root / "run"


@pytest.mark.parametrize("results", ["[1", "[]", '{"task": "nope"}'], ids=["not-json", "a-list", "missing-fields"])
def test_resuming_a_finished_run_with_a_damaged_results_file_is_one_line(finished_run, tmp_path, capsys, results):
    import shutil

    from wavevision.cli import main

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    (run / "results.json").write_text(results)
    assert main(["train", "--resume", str(run), "--no-progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert f"{run / 'results.json'} is not a readable run result" in err
    assert (run / "results.json").read_text() == results  # nothing rewritten


def test_resuming_a_copied_finished_run_names_the_copy(finished_run, tmp_path, capsys):
    import shutil

    from wavevision.cli import main

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    assert main(["train", "--resume", str(run), "--no-progress", "--threads", "1"]) == 0
    assert f"run directory: {run}\n" in capsys.readouterr().out  # not the folder it was copied from


# --------------------------------------------------------------------------------------
# A mirror that trickles its headers


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        try:  # a status line, then a header line that never ends
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(40):
                self.wfile.write(b"X")
                self.wfile.flush()
                if self.server.stop.wait(0.1):
                    break
        except OSError:
            pass


@pytest.mark.slow
def test_headers_cut_off_by_the_timeout_are_a_timeout_not_a_missing_etag(tmp_path, monkeypatch):
    require("huggingface_hub")
    from wavevision.models._hub_download import HubUnavailableError, hub_download

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _hub_at(server, tmp_path, monkeypatch)
    try:
        with pytest.raises(HubUnavailableError, match=r"did not answer within 1 s") as info:
            finishes(lambda: hub_download("me/mine", "config.json", max_bytes=1 << 20), 20, "the Hub download")
        _one_line(info.value)
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("value", ["0.5"])
def test_an_etag_timeout_huggingface_hub_cannot_read_is_one_line_before_its_import(tmp_path, monkeypatch, value):
    require("huggingface_hub")
    import subprocess
    import sys

    code = ("from wavevision.models._hub_download import hub_download\n"
            "try:\n    hub_download('me/mine', 'config.json', max_bytes=1)\n"
            "except ValueError as e:\n    print(e)\n")
    src = str(Path(wavevision.__file__).resolve().parents[1])
    env = {**os.environ, "HF_HUB_ETAG_TIMEOUT": value, "HF_ENDPOINT": "http://127.0.0.1:9",
           "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("HF_HUB_ETAG_TIMEOUT must be a whole number of seconds > 0"), out.stdout + out.stderr


# --------------------------------------------------------------------------------------
# A depth of a million: refused before an hour of building modules


@pytest.mark.slow
def test_a_checkpoint_config_asking_for_a_million_blocks_is_refused_quickly(tmp_path):
    path = wavevision.save_checkpoint(_small(), tmp_path / "best.safetensors")
    config = json.loads(path.with_suffix(".json").read_text())
    config["kwargs"]["depth"] = 10**6
    path.with_suffix(".json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"makes more than 10,000 tensors.*use smaller model arguments") as info:
        finishes(lambda: wavevision.create_model(checkpoint=path), 15, "loading the checkpoint")
    _one_line(info.value)


@pytest.mark.parametrize("name", ["wave_vit_l", "mask_rcnn_wave_vit_b_fpn_1x"])
def test_the_largest_registered_models_build_well_within_the_tensor_limit(name):
    from wavevision.engine.sizing import MAX_BUILD_TENSORS, _SizeGuard

    if name.startswith("mask_rcnn"):
        require("torchvision")  # the detectors are torchvision models
    guard = _SizeGuard()
    with torch.device("meta"), guard:
        wavevision.create_model(name)
    assert 0 < guard.made < MAX_BUILD_TENSORS // 10


@pytest.mark.parametrize("key, value", [("checkpoint", "{victim}"), ("pretrained", True),
                                        ("pretrained_cfg_overlay", {"file": "{victim}"})])
def test_a_checkpoint_config_cannot_ask_for_loading_other_weights(tmp_path, key, value):
    from wavevision.engine.predict import load_trained

    victim = tmp_path / "other.pth"
    torch.save(_small().state_dict(), victim)
    path = wavevision.save_checkpoint(_small(), tmp_path / "best.safetensors", extra={"task": "classification"})
    config = json.loads(path.with_suffix(".json").read_text())
    config["kwargs"][key] = json.loads(json.dumps(value).replace("{victim}", str(victim)))
    if key == "pretrained_cfg_overlay":
        config["kwargs"]["pretrained"] = True
    path.with_suffix(".json").write_text(json.dumps(config))
    for load in (lambda: wavevision.create_model(checkpoint=path), lambda: load_trained(path)):
        with pytest.raises(ValueError, match=r"best\.json asks for loading with kwargs\.") as info:
            load()
        _one_line(info.value)
