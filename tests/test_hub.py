"""Released weights from the Hugging Face Hub and Hub-style folders, against a local Hub.

A server on 127.0.0.1 answers like the Hub's ``resolve`` endpoint (HEAD with ``ETag``,
``X-Repo-Commit`` and ``Content-Length``; GET with the body) and ``HF_ENDPOINT`` points at it,
so ``huggingface_hub.hf_hub_download`` runs for real and nothing touches the internet. The files
it serves are the public ``wavemix`` package's models with seeded random weights, saved at the
exact paths of REFERENCE.md section 6: every tag downloads into the Hub cache, loads strictly,
has the reference parameter count, and gives the public model's outputs.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import threading
from pathlib import Path

import pytest
import torch

import wavevision
from _slow import model_cases
from wavevision.models import CheckpointMismatchError

from _optional import require
from _public_wavemix import import_public_wavemix

PREFIX = "cloudwalker/wavemix/Saved_Models_Weights/"
# REFERENCE.md section 6: path, the public WaveMix's configuration, exact parameters.
_P4 = dict(initial_conv="pachify", patch_size=4)
_S1 = dict(initial_conv="strided", stride=1)
RELEASED = {
    "wavemix_192_16_l3.in1k": ("ImageNet/wavemix_192_16_75.06.pth", dict(num_classes=1000, depth=16, dim=192, level=3, **_P4), 27_857_608),
    "wavemix_192_16_l1.in1k": ("ImageNet/wavemixlite_71.18.pth", dict(num_classes=1000, depth=16, dim=192, level=1, **_P4), 12_494_536),
    "wavemix_256_16_l3.in1k": ("ImageNet/ImageNet73.03.pth", dict(num_classes=1000, depth=16, dim=256, level=3, **_P4), 49_416_808),
    "wavemix_256_16_l4.in1k": ("ImageNet/imagenet4level_70.42.pth",
                               dict(num_classes=1000, depth=16, dim=256, level=4, initial_conv="strided", stride=2), 62_764_776),
    "wavemix_256_12_l2.places365": ("Places365/places365_54.94.pth",
                                    dict(num_classes=365, depth=12, dim=256, level=2, initial_conv="pachify", patch_size=8),
                                    28_449_261),
    "wavemix_lite_144_7.cifar10": ("cifar10/cifar10_94.58.pth", dict(num_classes=10, depth=7, dim=144, level=1, **_S1), 3_042_550),
    "wavemix_lite_320_8.cifar10": ("cifar10/cifar10_95.37.pth", dict(num_classes=10, depth=8, dim=320, level=1, **_S1), 17_073_610),
    "wavemix_lite_256_8.cifar100": ("cifar100/cifar100_77.82.pth", dict(num_classes=100, depth=8, dim=256, level=1, **_S1), 10_954_084),
    "wavemix_lite_256_10.cifar100": ("cifar100/cifar100_78.81.pth", dict(num_classes=100, depth=10, dim=256, level=1, **_S1), 13_611_492),
    "wavemix_lite_256_12.tiny_imagenet": ("tinyimagenet/tinyimagenet_62.51.pth",
                                          dict(num_classes=200, depth=12, dim=256, level=1, **_S1), 16_294_600),
    "wavemix_192_16_l3.tiny_imagenet": ("tinyimagenet/tiny_71.69.pth", dict(num_classes=200, depth=16, dim=192, level=3, **_P4), 27_703_208),
    "wavemix_192_16_l3.tiny_imagenet_128": ("tinyimagenet/tiny_78.76.pth", dict(num_classes=200, depth=16, dim=192, level=3, **_P4),
                                            27_703_208),
    "wavemix_192_16_l1.galaxy10_decals": ("galaxy10/galaxy_90.23.pth", dict(num_classes=10, depth=16, dim=192, level=1, **_P4), 12_303_466),
    "wavemix_192_16_l3.galaxy10_decals": ("galaxy10/galaxy_95.42.pth", dict(num_classes=10, depth=16, dim=192, level=3, **_P4), 27_666_538),
    "wavemix_seg_192_16_l3.cityscapes": ("cityscapes_83.04.pth", dict(num_classes=1000, depth=16, dim=192, level=3, **_P4), 28_190_388),
}


# --------------------------------------------------------------------------------------
# A local Hub


class _Hub(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}  # "org/name/path" -> body
        self.truncated: set[str] = set()  # send half the body, then close
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Hub

    def log_message(self, *args) -> None:  # quiet
        pass

    def _body(self) -> tuple[str, bytes | None]:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return "", None
        key = "/".join(parts[:2] + parts[4:])
        return key, self.server.files.get(key)

    def _head(self, key: str, body: bytes | None) -> None:
        self.server.requests.append(f"{self.command} {key}")
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._head(*self._body())

    def do_GET(self) -> None:  # noqa: N802
        key, body = self._body()
        self._head(key, body)
        if body is not None:
            self.wfile.write(body[: len(body) // 2] if key in self.server.truncated else body)
            if key in self.server.truncated:
                self.close_connection = True


@pytest.fixture(scope="module")
def hub_server():
    server = _Hub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hub(hub_server, tmp_path, monkeypatch):
    """The local Hub as ``HF_ENDPOINT``, with an empty Hub cache under ``HF_HOME``."""
    require("huggingface_hub")
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    hub_server.files.clear()
    hub_server.truncated.clear()
    hub_server.requests.clear()
    return hub_server


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _public_model(tag: str, seed: int = 0) -> torch.nn.Module:
    """The public package's model of a released file, with seeded random weights and BN statistics."""
    _, cls, _, _ = import_public_wavemix()
    spec = dict(RELEASED[tag][1])
    dim = spec.pop("dim")
    torch.manual_seed(seed)
    model = cls.WaveMix(mult=2, ff_channel=dim, final_dim=dim, dropout=0.5, **spec)
    if tag.endswith(".cityscapes"):  # the authors' loader: the classifier with its pool replaced
        model.pool = torch.nn.Sequential(
            torch.nn.ConvTranspose2d(192, 128, 4, stride=2, padding=1),
            torch.nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
            torch.nn.Conv2d(64, 20, 1),
        )
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def _serve_public(hub: _Hub, tag: str, seed: int = 0) -> torch.nn.Module:
    model = _public_model(tag, seed)
    hub.files[PREFIX + RELEASED[tag][0]] = _saved(model.state_dict())
    return model


def _input(tag: str) -> torch.Tensor:
    size = (32, 64) if tag.endswith(".cityscapes") else (32, 32) if "lite" in tag else (64, 64)
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(7))


# --------------------------------------------------------------------------------------
# Every released file


def test_every_released_file_is_a_tag():
    on_hub = [t for t in wavevision.list_pretrained() if wavevision.get_pretrained_cfg(t).get("hf_hub_id")]
    assert sorted(on_hub) == sorted(RELEASED)
    # The other released files are WTConvNeXt's, on Google Drive (a url, not downloaded: loaded from a local file)
    assert sorted(set(wavevision.list_pretrained()) - set(on_hub)) == [f"wtconvnext_{s}.in1k" for s in ("base", "small", "tiny")]
    for tag, (path, _, params) in RELEASED.items():
        cfg = wavevision.get_pretrained_cfg(tag)
        assert (cfg["hf_hub_id"], cfg["hf_hub_filename"]) == ("cloudwalker/wavemix", f"Saved_Models_Weights/{path}")
        assert cfg["params"] == params and cfg["metrics"] and cfg["dataset"]
    assert wavevision.get_entry("wavemix_192_16_l3").tags[0] == "wavemix_192_16_l3.in1k"  # the default tag
    assert wavevision.list_pretrained("*.cifar10") == ["wavemix_lite_144_7.cifar10", "wavemix_lite_320_8.cifar10"]
    assert wavevision.list_pretrained("wavemix_192_16_l1") == ["wavemix_192_16_l1.in1k", "wavemix_192_16_l1.galaxy10_decals"]


@pytest.mark.parametrize("tag", model_cases(sorted(RELEASED)))
def test_pretrained_downloads_into_the_hub_cache_loads_strictly_and_equals_the_public_model(hub, tag, tmp_path):
    public = _serve_public(hub, tag)
    ours = wavevision.create_model(tag, pretrained=True).eval()
    cached = list((tmp_path / "hf" / "hub" / "models--cloudwalker--wavemix" / "snapshots").glob(f"*/Saved_Models_Weights/{RELEASED[tag][0]}"))
    assert len(cached) == 1 and cached[0].stat().st_size == len(hub.files[PREFIX + RELEASED[tag][0]])
    assert sum(p.numel() for p in ours.parameters()) == RELEASED[tag][2]
    assert list(ours.state_dict()) == list(public.state_dict())  # the public layout, key for key
    x = _input(tag)
    with torch.no_grad():
        want, got = public(x), ours(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    if tag.endswith(".cityscapes"):
        assert got.shape == (1, 20, 32, 64)  # 20 classes at the input's resolution


def test_a_second_call_uses_the_cache_and_offline_mode_works_with_it(hub, monkeypatch):
    tag = "wavemix_lite_144_7.cifar10"
    _serve_public(hub, tag)
    first = wavevision.create_model(tag, pretrained=True)
    gets = [r for r in hub.requests if r.startswith("GET")]
    assert len(gets) == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    again = wavevision.create_model(tag, pretrained=True)
    assert hub.requests == []  # offline: the cache alone
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_offline_with_a_cold_cache_says_so(hub, monkeypatch):
    _serve_public(hub, "wavemix_lite_144_7.cifar10")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"cifar10_94.58.pth is not in the Hugging Face cache .* offline mode is "
                                                r"on \(HF_HUB_OFFLINE=1\).*pretrained_cfg_overlay=dict\(file=PATH\)"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)
    assert hub.requests == []


def test_no_network_says_so_at_once_and_how_to_use_a_local_file(hub, monkeypatch):
    """A refused connection is "no network": one attempt, no retries (huggingface_hub's backoff
    printed half a minute of "Retrying in 8s" lines first), the local-file alternative named."""
    import huggingface_hub.utils._http as http

    def no_retries(seconds):
        raise AssertionError(f"a retry after {seconds} s: no network was not detected")

    monkeypatch.setattr(http.time, "sleep", no_retries)
    closed = hub.url.rsplit(":", 1)[0] + ":9"  # the discard port: nothing listens
    monkeypatch.setenv("HF_ENDPOINT", closed)
    with pytest.raises(ConnectionError, match=r"could not download http://127.0.0.1:9/cloudwalker/wavemix/resolve/main/"
                                              r"Saved_Models_Weights/cifar10/cifar10_94.58.pth: no network \(the "
                                              r"connection was refused\).*pretrained_cfg_overlay=dict\(file=PATH\)"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)


def test_a_local_file_needs_no_hub(hub, tmp_path):
    public = _public_model("wavemix_lite_144_7.cifar10")
    path = tmp_path / "cifar10_94.58.pth"
    path.write_bytes(_saved(public.state_dict()))
    ours = wavevision.create_model("wavemix_lite_144_7", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    x = _input("wavemix_lite_144_7.cifar10")
    torch.testing.assert_close(ours.eval()(x), public(x), atol=1e-5, rtol=1e-5)
    assert hub.requests == []


def test_another_num_classes_keeps_a_fresh_head_with_a_note(hub):
    tag = "wavemix_lite_144_7.cifar10"
    public = _serve_public(hub, tag)
    with pytest.warns(UserWarning, match=r"10-class head and the model 5 classes: its classifier \(pool.2.weight, "
                                         r"pool.2.bias\) is not loaded"):
        ours = wavevision.create_model(tag, pretrained=True, num_classes=5)
    assert ours.get_classifier().out_features == 5
    sd, ref = ours.state_dict(), public.state_dict()
    assert all(torch.equal(sd[k], ref[k]) for k in ref if not k.startswith("pool.2."))
    with torch.no_grad():  # the backbone is the released one: the same pooled features
        x = _input(tag)
        torch.testing.assert_close(ours.eval().forward_head(ours.forward_features(x), pre_logits=True),
                                   public.pool[1](public.pool[0](_features(public, x))), atol=1e-5, rtol=1e-5)


def _features(public: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = public.conv(x)
    for block in public.layers:
        y = block(y) + y
    return y


def test_the_tag_brings_its_head_size():
    model = wavevision.create_model("wavemix_192_16_l3.tiny_imagenet", depth=1)
    assert model.num_classes == 200 and model.pretrained_cfg["input_size"] == (3, 64, 64)
    assert model.model_kwargs["num_classes"] == 200  # recorded: a checkpoint of it rebuilds the same head
    assert wavevision.create_model("wavemix_192_16_l3", depth=1).num_classes == 1000
    facts = wavevision.get_entry("wavemix_192_16_l3").reference_for("wavemix_192_16_l3.tiny_imagenet")
    assert (facts["dataset"], facts["top1"], facts["params"]) == ("Tiny-ImageNet", 71.69, 27_703_208)  # what info shows


# --------------------------------------------------------------------------------------
# Bad input


def test_an_unknown_tag_suggests_close_ones():
    with pytest.raises(ValueError, match=r"wavemix_192_16_l3 has no pretrained tag 'in1' \(did you mean "
                                         r"'wavemix_192_16_l3.in1k' or .*\?\); known: 'wavemix_192_16_l3.in1k', "):
        wavevision.create_model("wavemix_192_16_l3.in1", pretrained=True)
    with pytest.raises(ValueError, match=r"did you mean 'wavemix_lite_144_7.cifar10'"):
        wavevision.create_model("wavemix_lite_144_7.cifar100", pretrained=True)


def test_a_file_that_is_not_a_state_dict(hub):
    hub.files[PREFIX + "cifar10/cifar10_94.58.pth"] = _saved([torch.zeros(3)])
    with pytest.raises(ValueError, match=r"cifar10_94.58.pth is not a state dict.*save model.state_dict\(\)"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)


def test_a_truncated_download_is_an_error_not_a_broken_model(hub, monkeypatch):
    import huggingface_hub.file_download as download

    monkeypatch.setattr(download.time, "sleep", lambda s: None)  # its resume attempts, without the waiting
    _serve_public(hub, "wavemix_lite_144_7.cifar10")
    hub.truncated.add(PREFIX + "cifar10/cifar10_94.58.pth")
    with pytest.raises(OSError, match=r"download of .*cifar10_94.58.pth stopped after [0-9,]+ of [0-9,]+ bytes; run "
                                      r"again to resume it"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)


def test_a_checkpoint_of_another_layout_names_the_first_mismatch(hub):
    hub.files[PREFIX + "cifar10/cifar10_95.37.pth"] = _saved(_public_model("wavemix_lite_144_7.cifar10").state_dict())
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch\(es\), first 'layers.0.feedforward.0.weight': "
                                                      r"checkpoint \(288, 144, 1, 1\) vs model \(640, 320, 1, 1\)"):
        wavevision.create_model("wavemix_lite_320_8.cifar10", pretrained=True)


def test_a_file_far_larger_than_its_model_is_refused_before_it_is_downloaded(hub):
    """The 17 M-parameter file offered for the 3 M-parameter model: more than twice the model's size."""
    hub.files[PREFIX + "cifar10/cifar10_94.58.pth"] = _saved(_public_model("wavemix_lite_320_8.cifar10").state_dict())
    with pytest.raises(OSError, match=r"the mirror http://127.0.0.1:\d+ offers [0-9,]+ bytes for .*cifar10_94.58.pth, "
                                      r"more than the [0-9,]+ expected"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)
    assert not [r for r in hub.requests if r.startswith("GET")]


def test_a_missing_file_on_the_hub(hub):
    with pytest.raises(FileNotFoundError, match=r"cifar10_94.58.pth does not exist on the Hub"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)


def test_without_huggingface_hub_pretrained_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r"needs huggingface_hub .*pip install huggingface_hub"):
        wavevision.create_model("wavemix_lite_144_7.cifar10", pretrained=True)


def test_pretrained_for_a_model_without_released_weights():
    with pytest.raises(ValueError, match=r"wave_vit_s.in1k has no released weights"):
        wavevision.create_model("wave_vit_s", pretrained=True, depths=(1, 1, 1, 1))


# --------------------------------------------------------------------------------------
# Our own models as Hub-style folders


def _small():
    torch.manual_seed(0)
    return wavevision.create_model("wavemix_lite", depth=2, final_dim=16, ff_channel=16, num_classes=4).eval()


def test_save_pretrained_round_trips_through_local_dir(tmp_path):
    model = _small()
    folder = wavevision.save_pretrained(model, tmp_path / "mine")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "wavemix_lite" and config["num_classes"] == 4
    assert config["model_args"] == dict(depth=2, final_dim=16, ff_channel=16, num_classes=4)
    assert config["pretrained_cfg"]["params"] == sum(p.numel() for p in model.parameters())
    loaded = wavevision.create_model(f"local-dir:{folder}").eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))
    assert loaded.pretrained_cfg["input_size"] == (3, 32, 32)  # tuples again after JSON
    with pytest.raises(FileExistsError, match="already holds model.safetensors, config.json; pass overwrite=True"):
        wavevision.save_pretrained(model, folder)
    wavevision.save_pretrained(model, folder, overwrite=True)


def test_hf_hub_prefix_loads_a_folder_from_the_hub(hub, tmp_path):
    model = _small()
    folder = wavevision.save_pretrained(model, tmp_path / "mine")
    for name in ("config.json", "model.safetensors"):
        hub.files[f"me/mine/{name}"] = (folder / name).read_bytes()
    loaded = wavevision.create_model("hf-hub:me/mine").eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))
    with pytest.warns(UserWarning, match="4-class head and the model 3 classes"):
        wavevision.create_model("hf-hub:me/mine", num_classes=3)


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder; point local-dir: at a folder written by"):
        wavevision.create_model(f"local-dir:{tmp_path / 'none'}")
    (tmp_path / "f").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        wavevision.create_model(f"local-dir:{tmp_path / 'f'}")
    (tmp_path / "f" / "config.json").write_text('{"architecture": "resnet50", "model_args": {}}')
    (tmp_path / "f" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"names architecture 'resnet50', which is not a wavevision model.*timm.create_model"):
        wavevision.create_model(f"local-dir:{tmp_path / 'f'}")
    (tmp_path / "f" / "config.json").write_text('{"architecture": "wavemix_lite", "model_args": {"depth": NaN}}')
    with pytest.raises(ValueError, match=r"model_args.depth"):
        wavevision.create_model(f"local-dir:{tmp_path / 'f'}")
    with pytest.raises(ValueError, match="names no Hub repo; write hf-hub:ORG/NAME"):
        wavevision.create_model("hf-hub:justaname")
    with pytest.raises(ValueError, match="save_pretrained needs a model made by wavevision.create_model"):
        wavevision.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")


# --------------------------------------------------------------------------------------
# The command line


def _cifar10_test_split(root: Path, model: torch.nn.Module, n: int = 48, wrong: int = 12) -> float:
    """A CIFAR-10 folder whose test labels are ``model``'s predictions except for ``wrong`` of
    them, so the expected top-1 is known: returns it (percent)."""
    import pickle

    import numpy as np

    from wavevision.data.cifar import _STATS

    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in _STATS["cifar10"])
    x = (torch.from_numpy(data).view(n, 3, 32, 32).float() / 255 - mean) / std
    with torch.no_grad():
        pred = model(x).argmax(1)
    labels = [int(p) if i >= wrong else (int(p) + 1) % 10 for i, p in enumerate(pred)]
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(pickle.dumps({b"data": data[:4], b"labels": labels[:4]}, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}, protocol=2))
    return 100.0 * (n - wrong) / n


@pytest.mark.slow
def test_eval_a_released_model_on_its_dataset_from_the_command_line(hub, tmp_path, capsys):
    from wavevision.cli import main

    tag = "wavemix_lite_144_7.cifar10"
    public = _serve_public(hub, tag)
    expected = _cifar10_test_split(tmp_path / "cifar", public)
    out = tmp_path / "metrics.json"
    argv = ["eval", "--model", tag, "--pretrained", "--dataset", "cifar10", "--data-root", str(tmp_path / "cifar"),
            "--no-progress", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "published: top1 94.58" in printed
    result = json.loads(out.read_text())
    assert result["top1"] == pytest.approx(expected) and result["images"] == 48
    assert result["weights"] == "cloudwalker/wavemix/Saved_Models_Weights/cifar10/cifar10_94.58.pth"
    # the same weights from a file: --checkpoint
    path = tmp_path / "w.pth"
    path.write_bytes(hub.files[PREFIX + RELEASED[tag][0]])
    assert main(["eval", "--model", "wavemix_lite_144_7", "--checkpoint", str(path), "--dataset", "cifar10",
                 "--data-root", str(tmp_path / "cifar"), "--no-progress", "--json", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["top1"] == pytest.approx(expected)


def test_eval_flags_that_do_not_go_together(capsys):
    from wavevision.cli import main

    for argv, message in (
        (["eval", "--model", "wavemix_lite_144_7.cifar10", "--dataset", "cifar10"], "exactly one of --pretrained"),
        (["eval", "--model", "wavemix_lite_144_7.cifar10", "--pretrained"], "--model needs --dataset"),
        (["eval", "--pretrained"], "give one run directory or checkpoint"),
        (["eval", "--model", "wavemix_lite_144_7.cifar1", "--pretrained", "--dataset", "cifar10"], "did you mean"),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_renormalized_maps_one_normalisation_to_another():
    from torch.utils.data import TensorDataset

    from wavevision.engine.evaluate import Renormalized

    raw = torch.rand(3, 3, 4, 4)
    src, dst = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)), ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in src)
    data = Renormalized(TensorDataset((raw - mean) / std, torch.arange(3)), src, dst)
    x, y = data[1]
    torch.testing.assert_close(x, raw[1]) and int(y) == 1


def test_list_pretrained_shows_every_released_tag_with_its_result(capsys):
    from wavevision.cli import main

    assert main(["list", "--pretrained"]) == 0
    printed = capsys.readouterr().out
    for tag in RELEASED:
        assert tag in printed
    assert "Cityscapes val miou 83.04" in printed and "ImageNet-1k top1 75.06" in printed
    assert "wave_vit_s" not in printed
    assert main(["list", "--pretrained", "--json", "*cityscapes"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["wavemix_seg_192_16_l3.cityscapes"]
    assert rows[0]["weights"] == "hf-hub:cloudwalker/wavemix/Saved_Models_Weights/cityscapes_83.04.pth"
    assert rows[0]["params"] == 28_190_388


@pytest.mark.slow
def test_export_a_run_as_a_hub_folder(tmp_path, capsys):
    from wavevision.cli import main
    from wavevision.engine import train
    from wavevision.engine.predict import load_trained

    run = tmp_path / "run"
    train(dict(dataset="digits", model="wavemix_lite", model_args=dict(depth=1, final_dim=8, ff_channel=8),
               epochs=1, batch_size=64, output=str(run), progress=False, plots=False))
    folder = tmp_path / "hub"
    assert main(["export", str(run), "--format", "hub", "-o", str(folder)]) == 0
    assert "local-dir:" in capsys.readouterr().out
    loaded = wavevision.create_model(f"local-dir:{folder}").eval()
    trained = load_trained(run).model
    cfg = loaded.pretrained_cfg
    assert cfg["dataset"] == "digits" and cfg["label_names"] == tuple(str(i) for i in range(10))
    x = torch.rand(2, *cfg["input_size"])
    assert torch.equal(loaded(x), trained(x))
    assert main(["export", str(run), "--format", "hub", "-o", str(folder)]) == 2  # no --overwrite: kept
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "--format", "hub", "-o", str(tmp_path / "o")]) == 2
    assert "nope does not exist; give a run directory" in capsys.readouterr().err


def test_timm_create_model_loads_the_released_weights_too(hub):
    timm = require("timm")
    wavevision.register_timm()
    tag = "wavemix_192_16_l3.tiny_imagenet"
    public = _serve_public(hub, tag)
    model = timm.create_model(tag, pretrained=True).eval()
    assert model.num_classes == 200
    x = _input(tag)
    with torch.no_grad():
        torch.testing.assert_close(model(x), public(x), atol=1e-5, rtol=1e-5)
    assert timm.data.resolve_data_config({}, model=model)["mean"] == (0.4803, 0.4481, 0.3975)


# --------------------------------------------------------------------------------------
# Offline, from the command line (issue 22)


def test_eval_without_network_names_checkpoint_not_the_python_overlay(hub, tmp_path, capsys, monkeypatch):
    from wavevision.cli import main

    monkeypatch.setenv("HF_ENDPOINT", hub.url.rsplit(":", 1)[0] + ":9")  # nothing listens: connection refused
    (tmp_path / "cifar").mkdir()
    argv = ["eval", "--model", "wavemix_lite_144_7.cifar10", "--pretrained", "--dataset", "cifar10",
            "--data-root", str(tmp_path / "cifar"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Retrying" not in err
    assert "no network (the connection was refused)" in err
    assert err.endswith("or download the file yourself and pass --checkpoint FILE")
    assert "pretrained_cfg_overlay" not in err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline mode with a cold cache: says so, names --checkpoint too
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in err and "--checkpoint FILE" in err
    assert "pretrained_cfg_overlay" not in err


def test_eval_names_a_missing_data_folder_before_downloading_weights(hub, tmp_path, capsys):
    from wavevision.cli import main

    _serve_public(hub, "wavemix_lite_144_7.cifar10")
    for model in ("wavemix_lite_144_7.cifar10", "hf-hub:me/mine"):
        assert main(["eval", "--model", model, "--pretrained", "--dataset", "cifar10",
                     "--data-root", str(tmp_path / "missing")]) == 2
        assert f"dataset path '{tmp_path / 'missing'}' does not exist" in capsys.readouterr().err
    assert hub.requests == []


# --------------------------------------------------------------------------------------
# Folder configs describe an architecture; they cannot ask for loading (issue 23)


def _folder(tmp_path, **changes):
    folder = wavevision.save_pretrained(_small(), tmp_path / "f", overwrite=True)
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        scope, _, name = key.rpartition("__")
        (config[scope] if scope else config)[name] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("key, value, named", [
    ("model_args__pretrained", True, "model_args.'pretrained'"),
    ("model_args__pretrained_cfg_overlay", {"file": "/etc/passwd"}, "model_args.'pretrained_cfg_overlay'"),
    ("model_args__checkpoint", "x.pth", "model_args.'checkpoint'"),
    ("model_args__pretrained_cfg", {"hf_hub_id": "evil/repo"}, "model_args.'pretrained_cfg'"),
    ("pretrained_cfg__file", "/etc/passwd", "pretrained_cfg.'file'"),
    ("pretrained_cfg__hf_hub_id", "evil/repo", "pretrained_cfg.'hf_hub_id'"),
    ("pretrained_cfg__url", "https://example.com/w.pth", "pretrained_cfg.'url'"),
    ("pretrained", True, "'pretrained'"),
    ("checkpoint", "/tmp/w.pth", "'checkpoint'"),
])
def test_a_folder_config_that_asks_for_loading_is_refused(tmp_path, key, value, named):
    folder = _folder(tmp_path, **{key: value})
    with pytest.raises(ValueError, match=rf"config.json asks for loading with {re.escape(named)}; a folder's config "
                                         r"describes an architecture"):
        wavevision.create_model(f"local-dir:{folder}")


@pytest.mark.parametrize("value", ["hf-hub:evil/repo", "https://example.com/x", "/etc/passwd", "../w.pth", "~/w",
                                   ["ok", {"nested": "local-dir:/x"}]])
def test_a_file_url_or_hub_id_inside_model_args_is_refused(tmp_path, value):
    folder = _folder(tmp_path, model_args__stem=value)
    with pytest.raises(ValueError, match=r"model_args.stem holds .* which names a file, URL or Hub repo"):
        wavevision.create_model(f"local-dir:{folder}")


def test_a_num_classes_disagreement_names_both_values(tmp_path):
    folder = _folder(tmp_path, num_classes=7)  # model_args says 4
    with pytest.raises(ValueError, match=r"num_classes 7 disagrees with model_args.num_classes 4"):
        wavevision.create_model(f"local-dir:{folder}")
    config = json.loads((folder / "config.json").read_text())
    del config["model_args"]["num_classes"]  # the architecture's default (1000) then
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"num_classes 7 disagrees with the 1000 classes its model_args build"):
        wavevision.create_model(f"local-dir:{folder}")


# --------------------------------------------------------------------------------------
# Sizes are estimated before anything is allocated or downloaded (issue 23)


def test_a_folder_asking_for_an_absurd_width_is_refused_before_its_weights_are_read(tmp_path):
    folder = _folder(tmp_path, model_args__final_dim=10**9)
    (folder / "model.safetensors").write_bytes(b"not read")
    with pytest.raises(MemoryError, match=r"the model of local-dir:.* would need more than [0-9.]+ [PE]iB \(a tensor "
                                          r"of shape \(.*1000000000.*\)\), more than any machine has"):
        wavevision.create_model(f"local-dir:{folder}")
    folder = _folder(tmp_path, model_args__final_dim=2**20, model_args__ff_channel=2**20)  # describable, too big
    with pytest.raises(MemoryError, match=r"the model of local-dir:.* would need about [0-9.]+ [TP]iB, more than the"):
        wavevision.create_model(f"local-dir:{folder}")


def test_a_hub_folder_asking_for_an_absurd_width_is_refused_before_its_weights_download(hub, tmp_path):
    folder = _folder(tmp_path, model_args__final_dim=10**9)
    for name in ("config.json", "model.safetensors"):
        hub.files[f"me/mine/{name}"] = (folder / name).read_bytes()
    with pytest.raises(MemoryError, match=r"the model of hf-hub:me/mine would need more than"):
        wavevision.create_model("hf-hub:me/mine")
    assert [r for r in hub.requests if "model.safetensors" in r] == []


def test_a_checkpoint_config_with_a_width_of_1e9_is_a_memory_error_not_an_overflow(tmp_path):
    """The estimator's own arithmetic: "Storage size calculation overflowed" came out of it before."""
    from wavevision.engine.predict import load_trained
    from wavevision.models import save_checkpoint

    path = save_checkpoint(_small(), tmp_path / "m.safetensors")
    config = json.loads(path.with_suffix(".json").read_text())
    config["kwargs"]["final_dim"] = 10**9
    path.with_suffix(".json").write_text(json.dumps(config))
    with pytest.raises(MemoryError, match=r"the model of .*m.safetensors would need more than .* more than any machine"):
        wavevision.create_model(checkpoint=path)
    with pytest.raises(MemoryError, match=r"more than any machine has"):
        load_trained(path)


def test_the_estimator_counts_in_python_integers():
    from wavevision.engine.sizing import ModelTooLargeError, check_model_fits, meta_model

    with pytest.raises(ModelTooLargeError) as caught:
        meta_model(lambda: torch.nn.Linear(10**10, 10**10))
    assert caught.value.nbytes == 4 * 10**20 and caught.value.shape == (10**10, 10**10)  # the weight: exact
    sized = check_model_fits(lambda: torch.nn.Linear(1000, 10), what="a layer", fix="none")
    assert sized.weight.is_meta and sized.weight.shape == (10, 1000)


def test_without_network_a_cached_file_is_used_and_a_missing_one_is_named(hub, tmp_path, monkeypatch):
    model = _small()
    folder = wavevision.save_pretrained(model, tmp_path / "mine")
    hub.files["me/mine/config.json"] = (folder / "config.json").read_bytes()
    hub.files["me/mine/model.safetensors"] = (folder / "model.safetensors").read_bytes()
    wavevision.create_model("hf-hub:me/mine")
    monkeypatch.setenv("HF_ENDPOINT", hub.url.rsplit(":", 1)[0] + ":9")  # no network now: the cache answers
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(wavevision.create_model("hf-hub:me/mine").eval()(x), model(x))
    for path in (tmp_path / "hf" / "hub").glob("models--me--mine/snapshots/*/model.safetensors"):
        path.unlink()  # config cached, weights not: the error names the weights, not the legacy name
    with pytest.raises(ConnectionError, match=r"could not download .*/me/mine/resolve/main/model.safetensors: no network"):
        wavevision.create_model("hf-hub:me/mine")


def test_a_record_with_a_sha256_and_size_verifies_the_download(hub):
    """Where a record carries ``file_sha256`` / ``file_size`` (torchvision's check_hash idea), the
    download must match them; the released files publish none, so an overlay states them here."""
    tag = "wavemix_lite_144_7.cifar10"
    public = _serve_public(hub, tag)
    body = hub.files[PREFIX + RELEASED[tag][0]]
    with pytest.raises(OSError, match=r"cifar10_94.58.pth from http://127.0.0.1:\d+ does not match the record's sha256 "
                                      r"\(0{64}; the bytes give [0-9a-f]{64}\); the download was deleted"):
        wavevision.create_model(tag, pretrained=True, pretrained_cfg_overlay=dict(file_sha256="0" * 64))
    wavevision.create_model(tag, pretrained=True)  # now cached: the record's hash is still checked
    with pytest.raises(OSError, match=r"cifar10_94.58.pth from http://127.0.0.1:\d+ is not the file the record names"):
        wavevision.create_model(tag, pretrained=True, pretrained_cfg_overlay=dict(file_sha256="0" * 64))
    with pytest.raises(OSError, match=rf"offers {len(body):,} bytes for .*cifar10_94.58.pth, more than the "
                                      rf"{len(body) - 1:,} expected"):
        wavevision.create_model(tag, pretrained=True, pretrained_cfg_overlay=dict(file_size=len(body) - 1))
    ours = wavevision.create_model(tag, pretrained=True, pretrained_cfg_overlay=dict(
        file_sha256=hashlib.sha256(body).hexdigest(), file_size=len(body))).eval()
    x = _input(tag)
    torch.testing.assert_close(ours(x), public(x), atol=1e-5, rtol=1e-5)
