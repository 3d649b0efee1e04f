"""Downloading datasets that have stable public URLs: one table of URLs and official checksums,
a cache folder, resume of partial files (HTTP Range), checksum verification, atomic renames and
safe extraction.

The cache is ``~/.cache/wavevision`` (``WAVEVISION_CACHE`` overrides it). ``WAVEVISION_DATA_MIRROR``
(or ``base_url=``) replaces the base URL of every file, e.g. to use a local mirror.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

__all__ = [
    "CACHE_ENV",
    "DOWNLOADS",
    "MIRROR_ENV",
    "DownloadError",
    "Resource",
    "Source",
    "cache_dir",
    "download",
    "extract_archive",
    "fetch_dataset",
    "file_digest",
]

PathLike = Union[str, "os.PathLike[str]"]
CACHE_ENV = "WAVEVISION_CACHE"
MIRROR_ENV = "WAVEVISION_DATA_MIRROR"
_CHUNK = 1 << 20


class DownloadError(OSError):
    """A download failed (unreachable server, HTTP error, interrupted transfer, bad checksum)."""


@dataclass(frozen=True)
class Resource:
    """One file of a dataset: its name on the server, official MD5, and whether to unpack it."""

    filename: str
    md5: str
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
        Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    )),
    "fashion-mnist": Source("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
        Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    )),
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/", (
        Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", extract=True),
    ), creates="cifar-10-batches-py"),
    "cifar100": Source("https://www.cs.toronto.edu/~kriz/", (
        Resource("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", extract=True),
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
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` so processes (e.g. DDP ranks) don't download twice."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    # locks live in the cache, not beside the data: nothing is left in a user's dataset folder
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    lock = cache_dir() / "locks" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def download(
    url: str,
    dest: PathLike | None = None,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and return its path.

    ``dest`` is a file path, a folder (the URL's file name is kept) or ``None`` (the cache's
    ``downloads`` folder). A file already there with the right checksum is not fetched again.
    Bytes go to ``<dest>.part`` first; an interrupted transfer is resumed from there with an
    HTTP Range request on the next call. The finished file is checked against ``md5`` or
    ``sha256`` (a mismatch deletes it and raises) and renamed into place atomically.

    Raises:
        DownloadError: the server is unreachable, answers an HTTP error, the transfer stops
            early (run again to resume) or the checksum does not match.
    """
    expected = _expected(md5, sha256)
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
        _transfer(url, part, progress=progress, timeout=timeout)
        if expected is not None:
            got = file_digest(part, expected[0])
            if got != expected[1]:
                part.unlink()
                raise DownloadError(
                    f"checksum mismatch for {url}: expected {expected[0]} {expected[1]}, got {got}; "
                    "the bad file was deleted, run again to download it afresh (or check the mirror)"
                )
        os.replace(part, dest)
    return dest


def _transfer(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """Fetch ``url`` into ``part``, continuing from its current size when the server allows."""
    from tqdm.auto import tqdm

    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "wavevision"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing left to send: the partial file is complete
            return
        raise DownloadError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url} ({reason}); check the network, or set {MIRROR_ENV} "
                            "to a mirror, or put the files in the dataset folder yourself") from None
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the Range request: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        written = start
        with open(part, "ab" if start else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name[: -len(".part")], disable=not progress, leave=False,
        ) as bar:
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    f.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, OSError) as e:
                f.flush()
                raise DownloadError(f"download of {url} was interrupted after {written} bytes ({e}); "
                                    "run again to resume it") from None
            f.flush()
            os.fsync(f.fileno())
    if total is not None and written != total:
        raise DownloadError(f"download of {url} stopped after {written} of {total} bytes; run again to resume it")


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
                for member in t.getmembers():
                    _safe_target(tmp, member.name)
                    if not (member.isfile() or member.isdir()):
                        raise DownloadError(f"archive {archive} holds a link or device {member.name!r}; refusing to extract")
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
    from ._base import check_choice

    check_choice("downloadable dataset", name, sorted(DOWNLOADS))
    source = DOWNLOADS[name]
    root = Path(root).expanduser() if root is not None else cache_dir() / name
    base = base_url or os.environ.get(MIRROR_ENV) or source.base_url
    if source.creates is not None and (root / source.creates).is_dir():
        return root
    for res in source.files:
        path = download(base.rstrip("/") + "/" + res.filename, root / res.filename, md5=res.md5, progress=progress)
        if res.extract:
            extract_archive(path, root)
    return root
