"""Downloads against a local HTTP server on 127.0.0.1 (Range support, an interrupted transfer,
a wrong checksum, a 404); nothing here touches the internet."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
import time

import numpy as np
import pytest

from wavevision.data import DownloadError, build_dataset, download, extract_archive, fetch_dataset
from wavevision.data import downloads as download_module

from _deadline import finishes


class Server:
    """Serves ``files`` (name -> bytes); names in ``cut`` are cut in half on their next request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                owner.requests.append((name, rng))
                if name not in owner.files:
                    self.send_error(404, "Not Found")
                    return
                data, start = owner.files[name], 0
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in owner.cut:
                    owner.cut.discard(name)
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEVISION_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WAVEVISION_DATA_MIRROR", raising=False)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_verifies_and_caches(server, tmp_path):
    data = np.random.default_rng(0).bytes(300_000)
    server.files["blob.bin"] = data
    path = download(f"{server.url}/blob.bin", md5=md5(data), progress=False)
    assert path == tmp_path / "cache" / "downloads" / "blob.bin" and path.read_bytes() == data
    assert download(f"{server.url}/blob.bin", tmp_path / "here", sha256=hashlib.sha256(data).hexdigest(),
                    progress=False).read_bytes() == data
    count = len(server.requests)
    assert download(f"{server.url}/blob.bin", md5=md5(data), progress=False) == path
    assert len(server.requests) == count  # verified copy in the cache: no request


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = np.random.default_rng(1).bytes(200_000)
    server.files["big.bin"] = data
    server.cut.add("big.bin")
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        download(f"{server.url}/big.bin", dest, md5=md5(data), progress=False)
    part = tmp_path / "big.bin.part"
    assert not dest.exists() and part.stat().st_size == 100_000
    path = download(f"{server.url}/big.bin", dest, md5=md5(data), progress=True)
    assert path.read_bytes() == data and not part.exists()
    assert server.requests[-1] == ("big.bin", "bytes=100000-")


def test_checksum_mismatch_deletes_the_file(server, tmp_path):
    server.files["bad.bin"] = b"these are not the bytes you want"
    with pytest.raises(DownloadError, match="checksum mismatch.*expected md5 0{32}.*deleted"):
        download(f"{server.url}/bad.bin", tmp_path, md5="0" * 32, progress=False)
    assert not list(tmp_path.glob("bad.bin*"))  # neither the file nor a .part is left


def test_http_errors_are_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/missing.bin", tmp_path, progress=False)
    closed = server.url.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens there
    with pytest.raises(DownloadError, match="cannot reach"):
        download(f"{closed}/x.bin", tmp_path, progress=False, timeout=5)
    with pytest.raises(ValueError, match="md5 or sha256, not both"):
        download(f"{server.url}/x", tmp_path, md5="a", sha256="b")


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_build_dataset_downloads_mnist_from_a_mirror(server, monkeypatch, tmp_path):
    rng = np.random.default_rng(2)
    files = {}
    for prefix, n in (("train", 30), ("t10k", 10)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_bytes(np.arange(n) % 10)
    server.files.update(files)
    resources = tuple(download_module.Resource(name, md5(data)) for name, data in files.items())
    monkeypatch.setitem(download_module.DOWNLOADS, "mnist",
                        download_module.Source("https://example.invalid/mnist/", resources))
    monkeypatch.setenv("WAVEVISION_DATA_MIRROR", server.url)
    ds, info = build_dataset("mnist", "test", download=True)
    assert len(ds) == 10 and info.num_classes == 10
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").glob("*.gz")) == sorted(files)
    # a second build finds the verified files and asks the server for nothing
    count = len(server.requests)
    assert len(build_dataset("mnist", "train", download=True)[0]) == 27
    assert len(server.requests) == count
    with pytest.raises(ValueError, match="dataset 'emnist' has no download.*downloadable: cifar10"):
        build_dataset("emnist", "train", download=True)
    # without download=True a later run finds the cached copy by itself
    monkeypatch.delenv("WAVEVISION_DATA_MIRROR")
    assert len(build_dataset("mnist", "val")[0]) == 3


def test_cifar_archive_is_extracted(server, monkeypatch, tmp_path):
    buf = io.BytesIO()
    rng = np.random.default_rng(3)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, obj) -> None:
            payload = pickle.dumps(obj, protocol=2)
            member = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))

        for i in range(1, 6):
            add(f"data_batch_{i}", {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]})
        add("test_batch", {b"data": rng.integers(0, 256, (5, 3072), dtype=np.uint8), b"labels": [9, 8, 7, 6, 5]})
        add("batches.meta", {b"label_names": [str(i).encode() for i in range(10)]})
    archive = buf.getvalue()
    server.files["cifar-10-python.tar.gz"] = archive
    monkeypatch.setitem(download_module.DOWNLOADS, "cifar10", download_module.Source(
        server.url, (download_module.Resource("cifar-10-python.tar.gz", md5(archive), extract=True),),
        creates="cifar-10-batches-py"))
    ds, _ = build_dataset("cifar10", "test", root=tmp_path / "data", download=True)
    assert [y for _, y in (ds[i] for i in range(5))] == [9, 8, 7, 6, 5]
    assert (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert fetch_dataset("cifar10", tmp_path / "data") == tmp_path / "data"  # already there


def test_extraction_refuses_paths_outside(tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 2
        tar.addfile(member, io.BytesIO(b"hi"))
    with pytest.raises(DownloadError, match="outside"):
        extract_archive(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(DownloadError, match="not a tar or zip archive"):
        extract_archive(tmp_path / "junk.tar.gz", tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# Hostile or broken servers: stalls, trickles, endless bodies, missing or wrong lengths


class Misbehaving:
    """A raw HTTP server on 127.0.0.1 whose GET handler is ``behaviour(handler, data, start)``."""

    def __init__(self, data: bytes, behaviour) -> None:
        self.data, self.behaviour, self.requests = data, behaviour, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                owner.requests.append(rng)
                start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
                try:
                    owner.behaviour(self, owner.data, start)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.bin"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def misbehaving():
    servers = []

    def make(data: bytes, behaviour) -> Misbehaving:
        servers.append(Misbehaving(data, behaviour))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def good(handler, data: bytes, start: int) -> None:
    handler.send_response(206 if start else 200)
    if start:
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    handler.send_header("Content-Length", str(len(data) - start))
    handler.end_headers()
    handler.wfile.write(data[start:])


def stalls_halfway(handler, data: bytes, start: int) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data[: len(data) // 2])
    handler.wfile.flush()
    time.sleep(5)


def trickles(handler, data: bytes, start: int) -> None:
    """One byte every 50 ms: never a stall, never done."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    for i in range(len(data)):
        handler.wfile.write(data[i:i + 1])
        handler.wfile.flush()
        time.sleep(0.05)


def trickles_headers(handler, data: bytes, start: int) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(10_000):
        handler.wfile.write(b"a")
        handler.wfile.flush()
        time.sleep(0.05)


def sends_forever(handler, data: bytes, start: int) -> None:
    handler.send_response(200)
    handler.end_headers()  # no Content-Length: the body ends when the connection does
    while True:
        handler.wfile.write(b"\0" * 65536)


def no_length_ends_early(handler, data: bytes, start: int) -> None:
    handler.send_response(200)
    handler.end_headers()
    handler.wfile.write(data[: len(data) // 2])
    handler.close_connection = True


def declares_a_terabyte(handler, data: bytes, start: int) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(10**12))
    handler.end_headers()
    handler.wfile.write(data)
    handler.close_connection = True


def declares_half(handler, data: bytes, start: int) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data) // 2))
    handler.end_headers()
    handler.wfile.write(data)
    handler.close_connection = True


DATA = np.random.default_rng(7).bytes(20_000)


def test_a_stalled_transfer_times_out_and_resumes(misbehaving, tmp_path):
    server = misbehaving(DATA, stalls_halfway)
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match=r"stalled: no data for 0\.5 s after 10,000 bytes; run again to resume"):
        finishes(lambda: download(server.url, dest, md5=md5(DATA), progress=False, timeout=0.5))
    assert (tmp_path / "file.bin.part").stat().st_size == 10_000
    server.behaviour = good
    assert download(server.url, dest, md5=md5(DATA), progress=False).read_bytes() == DATA
    assert server.requests[-1] == "bytes=10000-"


@pytest.mark.slow
def test_a_trickle_meets_the_overall_deadline(misbehaving, tmp_path, monkeypatch):
    server = misbehaving(DATA, trickles)
    monkeypatch.setenv("WAVEVISION_DOWNLOAD_DEADLINE", "1")  # the environment sets it for every download
    with pytest.raises(DownloadError, match=r"took longer than the 1 s deadline \(\d+ bytes arrived\); run again to "
                                            r"resume it, or set WAVEVISION_DOWNLOAD_DEADLINE"):
        finishes(lambda: download(server.url, tmp_path, md5=md5(DATA), progress=False, timeout=5))
    server.behaviour = trickles_headers  # the deadline covers the headers too
    with pytest.raises(DownloadError, match=r"took longer than the 0\.5 s deadline"):
        finishes(lambda: download(server.url, tmp_path / "other.bin", progress=False, timeout=5, deadline=0.5))
    monkeypatch.setenv("WAVEVISION_DOWNLOAD_DEADLINE", "soon")
    with pytest.raises(ValueError, match="WAVEVISION_DOWNLOAD_DEADLINE must be a number of seconds > 0, got 'soon'"):
        download(server.url, tmp_path, progress=False)


def test_a_server_sending_more_than_the_file_is_cut_off(misbehaving, tmp_path, monkeypatch):
    server = misbehaving(DATA, sends_forever)
    monkeypatch.setitem(download_module.DOWNLOADS, "mnist", download_module.Source(
        server.url.rsplit("/", 1)[0], (download_module.Resource("file.bin", md5(DATA), len(DATA)),)))
    with pytest.raises(DownloadError, match=r"^http://\S+ sent more than the expected 20,000 bytes; the partial file was deleted \(check the mirror\)$"):
        finishes(lambda: fetch_dataset("mnist", tmp_path / "mnist", progress=False))
    assert not list((tmp_path / "mnist").iterdir())
    server.behaviour = declares_a_terabyte  # refused before a byte is written
    with pytest.raises(DownloadError, match=r"offers 1,000,000,000,000 bytes, more than the expected 20,000"):
        finishes(lambda: fetch_dataset("mnist", tmp_path / "mnist", progress=False))
    assert not list((tmp_path / "mnist").iterdir())


def test_without_a_known_size_the_disk_is_not_filled(misbehaving, tmp_path, monkeypatch):
    server = misbehaving(DATA, sends_forever)
    part = tmp_path / "file.bin.part"
    reserve = download_module._DISK_RESERVE
    # the disk "has" 40 MiB above the reserve before the download, less as the file grows
    monkeypatch.setattr(download_module, "_free_bytes",
                        lambda folder: reserve + (40 << 20) - (part.stat().st_size if part.exists() else 0))
    with pytest.raises(DownloadError, match=r"^download of \S+ stopped after [\d,]+ bytes: the disk holding .* has less than 256 MiB "
                                            r"free; the partial file was deleted, make room or set WAVEVISION_CACHE$"):
        finishes(lambda: download(server.url, tmp_path, progress=False))
    assert not part.exists()


def test_an_early_end_without_a_length_is_not_complete(misbehaving, tmp_path):
    server = misbehaving(DATA, no_length_ends_early)
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match=r"stopped after 10,000 of 20,000 bytes; run again to resume it"):
        finishes(lambda: download(server.url, dest, md5=md5(DATA), size=len(DATA), progress=False))
    assert not dest.exists() and (tmp_path / "file.bin.part").read_bytes() == DATA[:10_000]
    server.behaviour = good
    assert download(server.url, dest, md5=md5(DATA), size=len(DATA), progress=False).read_bytes() == DATA
    # without the size, the checksum still refuses it, and says why it may differ
    server.behaviour = no_length_ends_early
    with pytest.raises(DownloadError, match=r"checksum mismatch.*the server sent no length, so the transfer may have "
                                            r"been cut short"):
        finishes(lambda: download(server.url, tmp_path / "again.bin", md5=md5(DATA), progress=False))


def test_a_wrong_content_length_is_not_trusted(misbehaving, tmp_path):
    server = misbehaving(DATA, declares_half)
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match=r"stopped after 10,000 of 20,000 bytes"):
        finishes(lambda: download(server.url, dest, md5=md5(DATA), size=len(DATA), progress=False))
    server.behaviour = good
    assert download(server.url, dest, md5=md5(DATA), size=len(DATA), progress=False).read_bytes() == DATA


def test_every_official_download_has_its_size():
    for name, source in download_module.DOWNLOADS.items():
        for res in source.files:
            assert isinstance(res.size, int) and res.size > 1000, (name, res.filename)


def test_a_name_lookup_that_never_answers_is_given_up(server, tmp_path, monkeypatch):
    """The system resolver has no timeout: a host name whose lookup hangs fails after the stall
    timeout, naming the host; other names still resolve (and connect) as before."""
    real = download_module.socket.getaddrinfo
    hang = threading.Event()

    def getaddrinfo(host, *args, **kwargs):
        if host == "unanswered.example":
            hang.wait(30)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(download_module.socket, "getaddrinfo", getaddrinfo)
    try:
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"cannot reach http://unanswered\.example:\d+/x \(looking up "
                                                r"'unanswered\.example' took longer than 0\.5 s; check the DNS"):
            finishes(lambda: download("http://unanswered.example:9/x", tmp_path, progress=False, timeout=0.5),
                     seconds=10)
        assert time.monotonic() - started < 5
    finally:
        hang.set()
    server.files["blob.bin"] = DATA  # a name that resolves: every address is tried in turn (::1, then 127.0.0.1)
    port = server.httpd.server_address[1]
    assert download(f"http://localhost:{port}/blob.bin", tmp_path / "here", md5=md5(DATA),
                    progress=False, timeout=5).read_bytes() == DATA
