"""A hostile Hub mirror cannot write outside the Hub cache, hang a download or fill the disk.

A server on 127.0.0.1 (``HF_ENDPOINT``) answers the Hub's ``resolve`` requests the way a
malicious or broken mirror would: ETags and commits that are paths, an ETag naming an existing
file, a HEAD it never answers, a body trickled a byte at a time, a ``config.json`` without end,
bytes that do not match their ETag. Each case must fail with one line naming the mirror, leave
every file outside the cache as it was, and finish within the short timeouts set here through the
environment (``HF_HUB_ETAG_TIMEOUT``, ``WAVEVISION_DOWNLOAD_STALL``, ``WAVEVISION_DOWNLOAD_DEADLINE``).
"""
from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

import wavevision

from _deadline import finishes
from _optional import require

COMMIT = "0123456789abcdef0123456789abcdef01234567"
BODY = b'{"architecture": "wavemix_lite"}\n' + b" " * 967  # 1000 bytes


class _Mirror(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stop = threading.Event()
        self.reset()

    def reset(self) -> None:
        self.body = BODY
        self.etag: str | None = None  # None: the body's SHA-256, quoted (what the Hub sends for LFS files)
        self.commit = COMMIT
        self.length: str | None = "auto"  # Content-Length of HEAD and GET; None: not sent
        self.location: str | None = None  # a redirect of the HEAD
        self.head_hangs = False
        self.trickle: float | None = None  # seconds between single bytes of the body
        self.endless = False  # a body without end
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Mirror

    def log_message(self, *args) -> None:  # quiet
        pass

    def _headers(self, redirect: bool) -> None:
        m = self.server
        self.send_response(302 if m.location and redirect else 200)
        self.send_header("ETag", m.etag if m.etag is not None else f'"{hashlib.sha256(m.body).hexdigest()}"')
        self.send_header("X-Repo-Commit", m.commit)
        if m.location and redirect:
            self.send_header("Location", m.location)
        if m.length is not None and not (m.endless and self.command == "GET"):
            self.send_header("Content-Length", str(len(m.body)) if m.length == "auto" else m.length)
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append(f"HEAD {self.path}")
        if self.server.head_hangs:
            self.server.stop.wait(30)  # never answers (until the test ends)
            return
        self._headers(redirect=True)

    def do_GET(self) -> None:  # noqa: N802
        m = self.server
        m.requests.append(f"GET {self.path}")
        self._headers(redirect=not self.path.startswith("/cdn/"))
        try:
            if m.endless:
                while not m.stop.is_set():
                    self.wfile.write(b" " * 65536)
            elif m.trickle is not None:
                for i in range(len(m.body)):
                    self.wfile.write(m.body[i:i + 1])
                    self.wfile.flush()
                    if m.stop.wait(m.trickle):
                        break
            else:
                self.wfile.write(m.body)
        except OSError:  # the client hung up: what a refusal does
            pass
        self.close_connection = True


@pytest.fixture(scope="module")
def mirror_server():
    server = _Mirror()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def mirror(mirror_server, tmp_path, monkeypatch):
    """The hostile mirror as ``HF_ENDPOINT``, an empty Hub cache under ``tmp_path/hf``, short bounds."""
    require("huggingface_hub")
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", mirror_server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    monkeypatch.setenv("WAVEVISION_DOWNLOAD_STALL", "1")
    monkeypatch.setenv("WAVEVISION_DOWNLOAD_DEADLINE", "3")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    mirror_server.stop.clear()
    mirror_server.reset()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_text("keep me\n")
    yield mirror_server
    mirror_server.stop.set()  # lets a hanging handler go


def _outside(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` except the Hub cache ``root/hf``: kind, size, mtime, link target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and "hf" in dirnames:
            dirnames.remove("hf")
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            found[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, os.readlink(p) if p.is_symlink() else None)
    return found


def _links_leave_the_cache(cache: Path) -> list[str]:
    bad = []
    for dirpath, dirnames, filenames in os.walk(cache):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink() and not p.resolve().is_relative_to(cache.resolve()):
                bad.append(str(p))
    return bad


def _download(filename: str = "config.json", **kwargs):
    from wavevision.models._hub_download import hub_download

    kwargs.setdefault("max_bytes", 1 << 20)
    return finishes(lambda: hub_download("me/mine", filename, **kwargs), 30, "the Hub download")


def _refused(tmp_path: Path, match: str, **kwargs) -> None:
    before = _outside(tmp_path)
    with pytest.raises(OSError, match=match):
        _download(**kwargs)
    assert _outside(tmp_path) == before
    assert _links_leave_the_cache(tmp_path / "hf") == []


# --------------------------------------------------------------------------------------
# Names the mirror sends


@pytest.mark.parametrize("etag", ["{outside}/evil.pth", '"{outside}/evil.pth"', '"../../../../outside/evil.pth"',
                                  'W/"../../../../../../outside/evil.pth"', '"{outside}/victim.txt"',
                                  '"../../../../outside/victim.txt"', '"0123abc"', '"' + "g" * 64 + '"'])
def test_an_etag_that_is_not_hex_writes_nothing(mirror, tmp_path, etag):
    """Absolute, ``../`` and existing-file ETags (huggingface_hub 2.4 writes or links them) are refused."""
    mirror.etag = etag.format(outside=tmp_path / "outside")
    _refused(tmp_path, r"the mirror http://127.0.0.1:\d+ sent ETag .* not a 40- or 64-hex Hub ETag; refusing it")
    assert not (tmp_path / "outside" / "evil.pth").exists()
    assert (tmp_path / "outside" / "victim.txt").read_text() == "keep me\n"
    assert [r.split()[0] for r in mirror.requests] == ["HEAD"]  # nothing fetched


@pytest.mark.parametrize("commit", ["../../../outside", "{outside}", "0123456789abcdef", "main"])
def test_a_commit_that_is_not_40_hex_writes_nothing(mirror, tmp_path, commit):
    mirror.commit = commit.format(outside=tmp_path / "outside")
    _refused(tmp_path, r"the mirror http://127.0.0.1:\d+ sent commit .* not a 40-hex commit; refusing it")


@pytest.mark.parametrize("revision", ["../../x", "..", "/tmp/x", "a/b", "main/../../x", "refs/pr/../x", "x\\..\\y", ""])
def test_a_revision_with_path_parts_is_refused_before_any_request(mirror, tmp_path, revision):
    before = _outside(tmp_path)
    with pytest.raises(ValueError, match=r"(revision .* is not a branch or tag name|names no Hub repo)"):
        finishes(lambda: wavevision.create_model(f"hf-hub:me/mine@{revision}" if revision else "hf-hub:me/mine@/"), 30)
    assert mirror.requests == [] and _outside(tmp_path) == before


@pytest.mark.parametrize("spec", ["hf-hub:../mine", "hf-hub:me/..", "hf-hub:me/mi--ne", "hf-hub:.me/x"])
def test_a_repo_id_with_path_parts_is_refused_before_any_request(mirror, spec):
    with pytest.raises(ValueError, match=r"is not a Hub repo id; write ORG/NAME"):
        wavevision.create_model(spec)
    assert mirror.requests == []


def test_a_redirect_to_something_other_than_http_is_refused(mirror, tmp_path):
    mirror.location = f"file://{tmp_path / 'outside' / 'victim.txt'}"
    _refused(tmp_path, r"redirects .* to 'file://.*', not an http\(s\) URL; refusing it")


# --------------------------------------------------------------------------------------
# Bytes the mirror sends


def test_bytes_that_do_not_hash_to_their_etag_are_deleted(mirror, tmp_path):
    mirror.etag = '"' + hashlib.sha256(b"another file").hexdigest() + '"'
    _refused(tmp_path, r"config.json from http://127.0.0.1:\d+ does not match its ETag .* the download was deleted")
    assert not [p for p in (tmp_path / "hf").rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_a_known_sha256_of_the_record_is_checked(mirror, tmp_path):
    _refused(tmp_path, r"does not match the record's sha256 \(0{64}", sha256="0" * 64)


def test_a_size_other_than_the_records_is_refused(mirror, tmp_path):
    _refused(tmp_path, r"offers 1,000 bytes for .*config.json, more than the 999 expected", size=999)


@pytest.mark.parametrize("declared", [None, "100"])
def test_an_endless_config_json_stops_at_its_cap_and_is_deleted(mirror, tmp_path, declared):
    """A config.json streamed without end (its HEAD saying nothing, or 100 bytes) is cut off at the
    cap while it streams: 1 MiB, or the size the HEAD declared."""
    mirror.endless, mirror.length = True, declared
    cap = "1,048,576" if declared is None else "100"
    before = _outside(tmp_path)
    with pytest.raises(OSError, match=rf"config.json sent more than the expected {cap} bytes; the partial file was "
                                      r"deleted \(check the mirror\)"):
        finishes(lambda: wavevision.create_model("hf-hub:me/mine"), 30, "create_model")
    assert _outside(tmp_path) == before
    assert sum(p.stat().st_size for p in (tmp_path / "hf").rglob("*") if p.is_file()) < 1 << 20


def test_a_mirror_that_never_answers_the_head_fails_within_its_timeout(mirror, tmp_path):
    mirror.head_hangs = True
    before = _outside(tmp_path)
    with pytest.raises(ConnectionError, match=r"could not download http://127.0.0.1:\d+/me/mine/resolve/main/config.json: "
                                              r"http://127.0.0.1:\d+ did not answer within 1 s \(set HF_HUB_ETAG_TIMEOUT "
                                              r"to wait longer\) and the file is not in the Hugging Face cache"):
        finishes(lambda: wavevision.create_model("hf-hub:me/mine"), 30, "create_model")
    assert _outside(tmp_path) == before


@pytest.mark.slow
def test_a_mirror_trickling_slower_than_the_stall_timeout_stalls_out(mirror, tmp_path):
    mirror.trickle = 2.0
    _refused(tmp_path, r"download of .*config.json stalled: no data for 1 s after 1 bytes; run again to resume it, or "
                       r"set WAVEVISION_DOWNLOAD_STALL to wait longer")


@pytest.mark.slow
def test_a_mirror_trickling_faster_than_the_stall_timeout_meets_the_deadline(mirror, tmp_path):
    mirror.trickle = 0.2
    _refused(tmp_path, r"download of .*config.json took longer than the 3 s deadline .*set WAVEVISION_DOWNLOAD_DEADLINE")


@pytest.mark.slow
def test_released_weights_from_a_hanging_mirror_fail_from_the_command_line(mirror, tmp_path, capsys):
    """``wavevision eval --pretrained`` (which hung on such a mirror) ends with one line naming --checkpoint."""
    from wavevision.cli import main

    mirror.head_hangs = True
    (tmp_path / "cifar" / "cifar-10-batches-py").mkdir(parents=True)
    code = finishes(lambda: main(["eval", "--model", "wavemix_lite_144_7.cifar10", "--pretrained", "--dataset",
                                  "cifar10", "--data-root", str(tmp_path / "cifar"), "--no-progress"]), 60, "eval")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "did not answer within 1 s" in err and "--checkpoint FILE" in err and "pretrained_cfg_overlay" not in err


# --------------------------------------------------------------------------------------
# What the Hub itself sends still works


def test_a_git_blob_etag_and_a_redirect_to_another_host_work_and_huggingface_hub_reads_the_cache(mirror, tmp_path):
    """Non-LFS files have the git blob id as ETag; LFS files redirect to a CDN (here the same
    server under another name): both land in huggingface_hub's own cache layout."""
    hub = require("huggingface_hub")
    mirror.etag = '"' + hashlib.sha1(b"blob %d\0" % len(BODY) + BODY).hexdigest() + '"'
    path = _download()
    assert path.read_bytes() == BODY
    assert Path(hub.try_to_load_from_cache("me/mine", "config.json", cache_dir=tmp_path / "hf" / "hub")) == path
    mirror.reset()
    mirror.location = mirror.url.replace("127.0.0.1", "localhost") + "/cdn/blob"
    path = _download("weights.bin")
    assert path.read_bytes() == BODY and path.is_symlink()
    assert [r.split()[0] for r in mirror.requests] == ["HEAD", "GET"] and mirror.requests[1].endswith("/cdn/blob")


def test_a_nearly_full_disk_names_the_hub_cache_variable(mirror, tmp_path, monkeypatch):
    """The disk guard names HF_HOME (what moves the Hub cache), not the dataset cache's variable."""
    from wavevision.data import downloads

    monkeypatch.setattr(downloads, "_free_bytes", lambda folder: 1 << 20)  # under the 256 MiB reserve
    before = _outside(tmp_path)
    with pytest.raises(OSError, match=r"more than the disk holding .* can take while keeping 256 MiB free; "
                                      r"make room or set HF_HOME"):
        finishes(lambda: wavevision.create_model("hf-hub:me/mine"), 30, "create_model")
    assert _outside(tmp_path) == before
