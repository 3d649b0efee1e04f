"""Downloading datasets that have stable public URLs: one table of URLs and official checksums,
a cache folder, resume of partial files (HTTP Range), checksum verification, atomic renames and
safe extraction.

The cache is ``~/.cache/wavevision`` (``WAVEVISION_CACHE`` overrides it). ``WAVEVISION_DATA_MIRROR``
(or ``base_url=``) replaces the base URL of every file, e.g. to use a local mirror.

A server cannot hold a download hostage or fill the disk: every transfer has a stall timeout
(no byte for ``WAVEVISION_DOWNLOAD_STALL`` seconds, default 60) and an overall deadline
(``WAVEVISION_DOWNLOAD_DEADLINE``, default 2 hours, headers included), and a host name that
takes longer than the stall timeout to look up fails (the system resolver has no timeout of
its own); a file whose size is
known is refused as soon as the server offers or sends more, and is not complete until all of
it arrived, whatever the server said; any transfer stops before the disk's free space falls
under 256 MiB.

:func:`transfer` and :func:`head` give the same bounded transfer, and a bounded HEAD request, to
callers that keep their own cache layout (the Hugging Face Hub's, ``models._hub_download``).
"""
from __future__ import annotations

import contextlib
import email.message
import hashlib
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..utils.validate import PathLike, check_choice, check_float, check_int

__all__ = [
    "CACHE_ENV",
    "DEADLINE_ENV",
    "DOWNLOADS",
    "MIRROR_ENV",
    "STALL_ENV",
    "DownloadError",
    "Resource",
    "Source",
    "cache_dir",
    "deadline_seconds",
    "download",
    "extract_archive",
    "fetch_dataset",
    "file_digest",
    "file_lock",
    "head",
    "stall_seconds",
    "transfer",
]

CACHE_ENV = "WAVEVISION_CACHE"
MIRROR_ENV = "WAVEVISION_DATA_MIRROR"
STALL_ENV = "WAVEVISION_DOWNLOAD_STALL"
DEADLINE_ENV = "WAVEVISION_DOWNLOAD_DEADLINE"
_CHUNK = 1 << 20
_DEFAULT_STALL = 60.0
_DEFAULT_DEADLINE = 2 * 3600.0
# A transfer stops before the free space of the disk it writes to falls under this.
_DISK_RESERVE = 256 << 20
_DISK_CHECK_EVERY = 16 << 20


class DownloadError(OSError):
    """A download failed (unreachable server, HTTP error, interrupted transfer, bad checksum)."""


@dataclass(frozen=True)
class Resource:
    """One file of a dataset: its name on the server, official MD5, size in bytes (``None``
    when unknown) and whether to unpack it."""

    filename: str
    md5: str
    size: int | None = None
    extract: bool = False


@dataclass(frozen=True)
class Source:
    """Where a dataset's files live, and what unpacking them creates (to skip work already done)."""

    base_url: str
    files: tuple[Resource, ...]
    creates: str | None = None


# The one table of download URLs and official checksums.
DOWNLOADS: dict[str, Source] = {
    "mnist": Source("https://ossci-datasets.s3.amazonaws.com/mnist/", (
        Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
        Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28_881),
        Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
        Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4_542),
    )),
    "fashion-mnist": Source("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
        Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880),
        Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29_515),
        Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4_422_102),
        Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5_148),
    )),
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/", (
        Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", 170_498_071, extract=True),
    ), creates="cifar-10-batches-py"),
    "cifar100": Source("https://www.cs.toronto.edu/~kriz/", (
        Resource("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", 169_001_437, extract=True),
    ), creates="cifar-100-python"),
}


def cache_dir() -> Path:
    """The download cache: ``$WAVEVISION_CACHE`` or ``~/.cache/wavevision``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "wavevision").expanduser()


def file_digest(path: PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected(md5: str | None, sha256: str | None) -> tuple[str, str] | None:
    if md5 and sha256:
        raise ValueError("give md5 or sha256, not both")
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


@contextlib.contextmanager
def file_lock(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (made with its folder if missing), so that
    processes (e.g. DDP ranks) don't download the same file twice. No lock where the platform
    has no ``fcntl`` (not POSIX)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _locked(path: Path) -> contextlib.AbstractContextManager[None]:
    """The lock of a download to ``path``: it lives in the cache, not beside the data, so nothing is
    left in a user's dataset folder."""
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return file_lock(cache_dir() / "locks" / f"{key}.lock")


def download(
    url: str,
    dest: PathLike | None = None,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float | None = None,
    deadline: float | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and return its path.

    ``dest`` is a file path, a folder (the URL's file name is kept) or ``None`` (the cache's
    ``downloads`` folder). A file already there with the right checksum is not fetched again.
    Bytes go to ``<dest>.part`` first; an interrupted transfer is resumed from there with an
    HTTP Range request on the next call. The finished file is checked against ``md5`` or
    ``sha256`` (a mismatch deletes it and raises) and renamed into place atomically.

    Args:
        size: the file's size in bytes when known: a server offering or sending more is cut
            off (the partial file deleted), and fewer bytes are never taken for the whole file.
        timeout: stall timeout, seconds without a byte arriving (default ``$WAVEVISION_DOWNLOAD_STALL``
            or 60).
        deadline: seconds the whole transfer may take, headers included (default
            ``$WAVEVISION_DOWNLOAD_DEADLINE`` or 7200).

    Raises:
        DownloadError: the server is unreachable, answers an HTTP error, stalls, misses the
            deadline, sends more than ``size``, the transfer stops early (run again to resume),
            the disk is nearly full or the checksum does not match.
    """
    expected = _expected(md5, sha256)
    limits = _Limits(stall=stall_seconds(timeout), deadline=deadline_seconds(deadline),
                     size=None if size is None else check_int("size", size, min=0))
    name = Path(urllib.request.url2pathname(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1])).name
    if dest is None:
        dest = cache_dir() / "downloads" / name
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if dest.exists():
            if expected is None or file_digest(dest, expected[0]) == expected[1]:
                return dest
            dest.unlink()  # a stale or damaged copy: fetch it again
        part = dest.with_name(dest.name + ".part")
        declared = _transfer(url, part, progress=progress, limits=limits)
        if expected is not None:
            got = file_digest(part, expected[0])
            if got != expected[1]:
                part.unlink()
                cut = "" if declared else " (the server sent no length, so the transfer may have been cut short)"
                raise DownloadError(
                    f"checksum mismatch for {url}: expected {expected[0]} {expected[1]}, got {got}{cut}; "
                    "the bad file was deleted, run again to download it afresh (or check the mirror)"
                )
        os.replace(part, dest)
    return dest


_UNREACHABLE_FIX = f"check the network, or set {MIRROR_ENV} to a mirror, or put the files in the dataset folder yourself"


@dataclass(frozen=True)
class _Limits:
    stall: float
    deadline: float
    size: int | None  # the exact size when known
    cap: int | None = None  # at most this many bytes when the size is not known
    headers: tuple[tuple[str, str], ...] = ()
    private: tuple[tuple[str, str], ...] = ()  # sent to this URL only, never to a redirect (a token)
    unreachable_fix: str = _UNREACHABLE_FIX
    cache_env: str = CACHE_ENV  # the variable that moves this cache (named when the disk is full)

    @property
    def most(self) -> int | None:
        return self.size if self.size is not None else self.cap


def stall_seconds(value: float | None = None) -> float:
    """The stall timeout: ``value``, else ``$WAVEVISION_DOWNLOAD_STALL``, else 60 s."""
    return _seconds("timeout", value, STALL_ENV, _DEFAULT_STALL)


def deadline_seconds(value: float | None = None) -> float:
    """The overall deadline of one transfer: ``value``, else ``$WAVEVISION_DOWNLOAD_DEADLINE``, else 2 h."""
    return _seconds("deadline", value, DEADLINE_ENV, _DEFAULT_DEADLINE)


def transfer(url: str, part: Path, *, size: int | None = None, max_bytes: int | None = None,
             headers: dict[str, str] | None = None, private_headers: dict[str, str] | None = None,
             progress: bool = True, unreachable_fix: str = _UNREACHABLE_FIX, cache_env: str = CACHE_ENV) -> bool:
    """The bounded transfer behind :func:`download`, for callers that keep their own cache layout
    (the Hub's): GET ``url`` into ``part`` (resumed from its current size), with the stall
    timeout, the deadline, the disk reserve, ``size`` (exact) or ``max_bytes`` (at most).

    ``private_headers`` (a token) go to ``url`` only, never to a server it redirects to.
    ``cache_env`` is the environment variable that moves the caller's cache, named when the
    disk is nearly full (``WAVEVISION_CACHE``; the Hub's is ``HF_HOME``).
    Returns whether the complete length was known. Raises :class:`DownloadError`.
    """
    limits = _Limits(stall=stall_seconds(), deadline=deadline_seconds(), size=size, cap=max_bytes,
                     headers=tuple((headers or {}).items()), private=tuple((private_headers or {}).items()),
                     unreachable_fix=unreachable_fix, cache_env=cache_env)
    return _transfer(url, part, progress=progress, limits=limits)


class _HttpOnlyRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only (urllib also follows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"{msg}: a redirect to {newurl[:80]!r} is refused",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows nothing: a 3xx becomes the HTTPError whose status and headers :func:`head` returns."""

    def http_error_302(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                       headers: http.client.HTTPMessage) -> None:
        return None

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def head(url: str, *, timeout: float, headers: dict[str, str] | None = None,
         private_headers: dict[str, str] | None = None) -> tuple[int, email.message.Message]:
    """``(status, headers)`` of a HEAD request to ``url``, redirects not followed (a 3xx is returned).

    The whole request (name lookup, connection and headers) must finish within ``timeout``
    seconds: a server that never answers, or trickles its headers, fails then.

    Raises:
        OSError: the server cannot be reached (``ConnectionRefusedError``, ``socket.gaierror``,
            ``TimeoutError`` or another ``OSError`` as the ``reason``).
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "wavevision", **(headers or {})})
    for key, value in (private_headers or {}).items():
        request.add_unredirected_header(key, value)
    with _Watchdog(timeout, lookup=timeout) as watchdog:
        try:
            with watchdog.opener(_NoRedirect).open(request, timeout=timeout) as response:
                if watchdog.fired:  # the headers were cut off mid-way: what arrived is not the answer
                    raise TimeoutError(f"no answer within {timeout:g} s")
                return response.status, response.headers
        except urllib.error.HTTPError as e:
            return e.code, e.headers
        except urllib.error.URLError as e:
            reason = e.reason if isinstance(e.reason, OSError) else OSError(_one_line(e.reason))
            raise (TimeoutError(f"no answer within {timeout:g} s") if watchdog.fired else reason) from None
        except (http.client.HTTPException, OSError) as e:
            if watchdog.fired or isinstance(e, TimeoutError):
                raise TimeoutError(f"no answer within {timeout:g} s") from None
            raise OSError(_one_line(e) or type(e).__name__) from None


def _seconds(name: str, value: float | None, env: str, default: float) -> float:
    """A positive finite number of seconds: ``value``, else ``$env``, else ``default``."""
    if value is not None:
        return check_float(name, value, gt=0.0)
    text = os.environ.get(env)
    if not text:
        return default
    try:
        return check_float(env, float(text), gt=0.0)
    except ValueError:
        raise ValueError(f"{env} must be a number of seconds > 0, got {text!r}") from None


class _Watchdog:
    """Shuts the sockets of one transfer down when its deadline passes, so a blocked read (a
    server trickling bytes, or headers) returns at once; ``fired`` tells what happened."""

    def __init__(self, seconds: float, lookup: float) -> None:
        self.lookup = lookup
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def track(self, sock: socket.socket | None) -> None:
        with self._lock:
            if sock is not None:
                self._sockets.append(sock)
            fired = self.fired
        if fired:
            self._fire()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def opener(self, *handlers: type) -> urllib.request.OpenerDirector:
        """urllib's opener (proxies and redirects included, ``handlers`` added) whose connections
        this watchdog tracks."""
        watchdog = self

        def tracked(cls: type) -> type:
            class Tracked(cls):
                def connect(self) -> None:
                    self._create_connection = _connector(watchdog.lookup)
                    super().connect()
                    watchdog.track(self.sock)

            return Tracked

        class HTTP(urllib.request.HTTPHandler):
            def do_open(self, http_class, req, **kwargs):
                return super().do_open(tracked(http_class), req, **kwargs)

        class HTTPS(urllib.request.HTTPSHandler):
            def do_open(self, http_class, req, **kwargs):
                return super().do_open(tracked(http_class), req, **kwargs)

        return urllib.request.build_opener(HTTP, HTTPS, *(handlers or (_HttpOnlyRedirect,)))


def _lookup(host: str, port: int, seconds: float) -> list[tuple]:
    """``socket.getaddrinfo`` for a TCP connection, given up after ``seconds``: the resolver can
    block far longer (an unanswered DNS server), and its thread is left to finish on its own."""
    found: dict[str, object] = {}

    def resolve() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as e:
            found["error"] = e

    thread = threading.Thread(target=resolve, name=f"wavevision lookup {host}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise OSError(f"looking up {host!r} took longer than {seconds:g} s; check the DNS settings, or set "
                      f"{STALL_ENV} to wait longer")
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    return found["infos"]  # type: ignore[return-value]


def _connector(seconds: float) -> Callable[..., socket.socket]:
    """``socket.create_connection`` whose name lookup is bounded by ``seconds`` (each resolved
    address is then tried in turn, as ``create_connection`` does)."""
    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address[0], address[1]
        error: OSError | None = None
        for *_, sockaddr in _lookup(host, port, seconds):
            try:
                return socket.create_connection((sockaddr[0], port), *args, **kwargs)
            except OSError as e:
                error = e
        raise error or OSError(f"{host!r} resolved to no address")

    return create_connection


def _transfer(url: str, part: Path, *, progress: bool, limits: _Limits) -> bool:
    """Fetch ``url`` into ``part``, continuing from its current size when the server allows.

    Returns whether the complete length was known (declared by the server or ``limits.size``).
    """
    start = part.stat().st_size if part.exists() else 0
    if limits.most is not None and start > limits.most:
        part.unlink()  # longer than the file can be: not a prefix of it
        start = 0
    written = start
    with _Watchdog(limits.deadline, lookup=min(limits.stall, limits.deadline)) as watchdog:
        try:
            response = _open(watchdog.opener(), url, start, limits)
            if response is None:
                return True
            with response:
                start, total = _expected_total(response, url, part, start, limits)
                written = _copy(response, url, part, start, total, limits, progress)
        except DownloadError:
            if watchdog.fired:
                raise _late(url, written, limits) from None
            raise
    if watchdog.fired:  # the deadline cut the stream: what arrived may look complete
        raise _late(url, written, limits)
    if total is not None and written != total:
        raise DownloadError(f"download of {url} stopped after {written:,} of {total:,} bytes; run again to resume it")
    return total is not None


def _late(url: str, written: int, limits: _Limits) -> DownloadError:
    return DownloadError(f"download of {url} took longer than the {limits.deadline:g} s deadline ({written:,} bytes "
                         f"arrived); run again to resume it, or set {DEADLINE_ENV} to allow more time")


def _open(opener: urllib.request.OpenerDirector, url: str, start: int,
          limits: _Limits) -> http.client.HTTPResponse | None:
    """The server's response to a GET from byte ``start``, or None when nothing is left to fetch."""
    headers = {"User-Agent": "wavevision", **dict(limits.headers)}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    for key, value in limits.private:
        request.add_unredirected_header(key, value)
    try:
        return opener.open(request, timeout=limits.stall)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start and limits.size in (None, start):  # nothing left: the partial file is complete
            return None
        if 300 <= e.code < 400:  # urllib's own text for this spans lines
            raise DownloadError(f"downloading {url} failed: the server redirects in a loop or more than "
                                f"{urllib.request.HTTPRedirectHandler.max_redirections} times; check the mirror") from None
        raise DownloadError(f"downloading {url} failed: HTTP {e.code} {_one_line(e.reason)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url} ({_one_line(reason)}); {limits.unreachable_fix}") from None


def _one_line(reason: object) -> str:
    """A server's or library's reason as one short line (a status text can be anything)."""
    return " ".join(str(reason).split())[:200]


def _expected_total(response: http.client.HTTPResponse, url: str, part: Path, start: int,
                    limits: _Limits) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's total length (``limits.size`` when known)."""
    size, most = limits.size, limits.most
    if start and response.status != 206:
        start = 0  # the server ignored the Range request: start over
    if start and not (response.headers.get("Content-Range") or "").startswith(f"bytes {start}-"):
        part.unlink()
        raise DownloadError(f"{url} answered the request to resume at byte {start:,} with another range; the "
                            "partial file was deleted, run again")
    length = response.headers.get("Content-Length")
    offered = start + int(length) if length is not None and length.strip().isdigit() else None
    if most is not None and offered is not None and offered > most:
        raise DownloadError(f"{url} offers {offered:,} bytes, more than the expected {most:,}; the server sends "
                            "another file (check the mirror)")
    free = _free_bytes(part.parent) - _DISK_RESERVE
    needed = (size if size is not None else offered or 0) - start
    if needed > free:
        raise DownloadError(f"{url} needs {needed:,} bytes, more than the disk holding {part.parent} can take "
                            f"while keeping {_DISK_RESERVE >> 20} MiB free; make room or set {limits.cache_env}")
    return start, size if size is not None else offered


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _copy(response: http.client.HTTPResponse, url: str, part: Path, start: int, total: int | None, limits: _Limits,
          progress: bool) -> int:
    """Stream the body into ``part`` (appending after ``start``); returns the file's size after."""
    from tqdm.auto import tqdm

    written, checked = start, start
    with open(part, "ab" if start else "wb") as f, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
        desc=part.name[: -len(".part")], disable=not progress, leave=False,
    ) as bar:
        try:
            for chunk in iter(lambda: response.read1(_CHUNK), b""):
                f.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
                if limits.most is not None and written > limits.most:
                    raise _refuse(part, f"{url} sent more than the expected {limits.most:,} bytes; the partial "
                                        "file was deleted (check the mirror)")
                if written - checked >= _DISK_CHECK_EVERY:
                    checked = written
                    if _free_bytes(part.parent) < _DISK_RESERVE:
                        raise _refuse(part, f"download of {url} stopped after {written:,} bytes: the disk holding "
                                            f"{part.parent} has less than {_DISK_RESERVE >> 20} MiB free; the partial "
                                            f"file was deleted, make room or set {limits.cache_env}")
        except DownloadError:  # a refusal above: already says what happened (an OSError, so before that clause)
            raise
        except TimeoutError:
            raise DownloadError(f"download of {url} stalled: no data for {limits.stall:g} s after {written:,} bytes; "
                                f"run again to resume it, or set {STALL_ENV} to wait longer") from None
        except (http.client.HTTPException, OSError) as e:
            raise DownloadError(f"download of {url} was interrupted after {written:,} bytes ({e}); "
                                "run again to resume it") from None
        finally:
            f.flush()
            if part.exists():
                os.fsync(f.fileno())
    return written


def _refuse(part: Path, message: str) -> DownloadError:
    part.unlink(missing_ok=True)
    return DownloadError(message)


def _safe_target(base: Path, member: str) -> None:
    target = (base / member).resolve()
    if not target.is_relative_to(base.resolve()):
        raise DownloadError(f"archive member {member!r} would be written outside {base}; refusing to extract")


def extract_archive(archive: PathLike, dest: PathLike) -> Path:
    """Unpack a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` archive into ``dest`` (members that
    would land outside ``dest`` are refused). Unpacks into a temporary folder first and moves
    the top-level entries into place, so an interrupted extraction leaves nothing half-written."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    _safe_target(tmp, member)
                z.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for info in t.getmembers():
                    _safe_target(tmp, info.name)
                    if not (info.isfile() or info.isdir()):
                        raise DownloadError(f"archive {archive} holds a link or device {info.name!r}; refusing to extract")
                if hasattr(tarfile, "data_filter"):
                    t.extractall(tmp, filter="data")
                else:
                    t.extractall(tmp)
        else:
            raise DownloadError(f"{archive} is not a tar or zip archive; delete it and download again")
        for entry in tmp.iterdir():
            target = dest / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_dataset(name: str, root: PathLike | None = None, *, base_url: str | None = None,
                  progress: bool = True) -> Path:
    """Download (and unpack) the files of dataset ``name`` into ``root`` (default: the cache's
    folder of that name); files already present and verified are kept. Returns ``root``."""
    check_choice("downloadable dataset", name, sorted(DOWNLOADS))
    source = DOWNLOADS[name]
    root = Path(root).expanduser() if root is not None else cache_dir() / name
    base = base_url or os.environ.get(MIRROR_ENV) or source.base_url
    if source.creates is not None and (root / source.creates).is_dir():
        return root
    for res in source.files:
        path = download(base.rstrip("/") + "/" + res.filename, root / res.filename, md5=res.md5, size=res.size,
                        progress=progress)
        if res.extract:
            extract_archive(path, root)
    return root
