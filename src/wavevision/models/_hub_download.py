"""One file of a Hugging Face Hub repo, downloaded into the Hub cache without trusting the mirror.

huggingface_hub (2.4, the version tested) builds its cache paths from the revision it is given and
from the server's ``ETag`` and ``X-Repo-Commit`` headers as they come: a mirror named by
``HF_ENDPOINT`` can send an ETag that is an absolute path or holds ``../`` (the download is
written outside the cache), or names an existing file (the cache entry becomes a link to it),
and a revision ``../../x`` writes a refs file outside the cache. Its transfers have a read
timeout but no deadline (a server trickling a byte every few seconds holds them forever) and no
size limit, and with no network it retries for about half a minute before saying so.

So wavevision makes the metadata request and the transfer itself and writes huggingface_hub's
cache layout (``models--ORG--NAME/blobs/ETAG``, ``snapshots/COMMIT/FILE`` linking to the blob,
``refs/REVISION`` holding the commit), which every Hub tool reads, from validated names only:

* the repo id is ``ORG/NAME``, the revision a branch or tag name (no ``/``, no ``..``), a
  40-hex commit or ``refs/pr/N``, the file name a relative path without ``..``; all checked
  before any request;
* the ETag must be one of the two forms the Hub uses, a 40-hex git blob id or a 64-hex SHA-256
  (quotes and ``W/`` removed, as huggingface_hub does), and the commit 40 hex; the downloaded
  bytes must then hash to the ETag (so the ETag is a checksum too), and to the record's
  ``sha256`` where one is known;
* the metadata request (lookup, connection and headers) must finish within ``HF_HUB_ETAG_TIMEOUT``
  seconds (huggingface_hub's variable, default 10); the transfer has the dataset downloader's
  stall timeout (``WAVEVISION_DOWNLOAD_STALL``, default 60 s) and deadline
  (``WAVEVISION_DOWNLOAD_DEADLINE``, default 2 h) and a size cap given by the caller;
* a refused connection or a failed name lookup means no network: one attempt, no retries, the
  cached copy when there is one, else an error naming the local-file alternative.

huggingface_hub itself is still required (its token is sent to the Hub, never to a server it
redirects to) and is imported only when a download is made.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.downloads import file_lock, head, transfer
from ..utils.io import atomic_write_text, read_text

__all__ = ["CLI_FIX", "ETAG_TIMEOUT_ENV", "HubOfflineError", "HubUnavailableError", "hub_cache_dir", "hub_download", "parse_etag",
           "validate_filename", "validate_repo_id", "validate_revision"]

ETAG_TIMEOUT_ENV = "HF_HUB_ETAG_TIMEOUT"  # huggingface_hub's name for the same bound
_DEFAULT_ETAG_TIMEOUT = 10.0
_DEFAULT_ENDPOINT = "https://huggingface.co"
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_ETAG = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}|refs/pr/[0-9]{1,9}")
_FILE_PART = re.compile(r"[A-Za-z0-9._+@=-][A-Za-z0-9._+@= -]{0,199}")
_MAX_REDIRECTS = 5
PYTHON_FIX = ("or download the file yourself and pass pretrained_cfg_overlay=dict(file=PATH) "
              "(wavevision.create_model(NAME, checkpoint=PATH) for a plain state dict)")
CLI_FIX = "or download the file yourself and pass --checkpoint FILE"


class HubUnavailableError(ConnectionError):
    """The file is not in the Hub cache and the Hub cannot be asked for it (no network, a mirror
    that does not answer). ``problem`` is the message without the fix, so the command line can
    name its own (``--checkpoint FILE``, :data:`CLI_FIX`) instead of the Python one."""

    def __init__(self, problem: str, fix: str = PYTHON_FIX) -> None:
        super().__init__(f"{problem}, {fix}")
        self.problem = problem


class HubOfflineError(HubUnavailableError, FileNotFoundError):
    """Offline mode (``HF_HUB_OFFLINE=1``) is on and the file is not in the Hub cache."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hub cache: ``cache_dir``, else ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache/huggingface/hub``): huggingface_hub's rule."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "huggingface" / "hub"


# --------------------------------------------------------------------------------------
# Names: checked before they reach a URL or a path


def validate_repo_id(repo: str) -> str:
    """``ORG/NAME``: two parts of letters, digits, ``.``, ``_``, ``-`` (no ``..``, no ``--``)."""
    parts = repo.split("/") if isinstance(repo, str) else []
    if len(parts) != 2 or not all(_PART.fullmatch(p) and ".." not in p and "--" not in p for p in parts):
        raise ValueError(f"{repo!r} is not a Hub repo id; write ORG/NAME (letters, digits, '.', '_', '-')")
    return repo


def validate_revision(revision: str) -> str:
    """A branch or tag name (no ``/``, no ``..``), a 40-hex commit or ``refs/pr/N``."""
    if not isinstance(revision, str) or not _BRANCH.fullmatch(revision) or ".." in revision:
        raise ValueError(f"revision {revision!r} is not a branch or tag name, a 40-hex commit or refs/pr/N; "
                         "a revision may not hold '/', '..' or other path parts")
    return revision


def validate_filename(filename: str) -> str:
    """A relative path inside the repo: ``/``-separated plain names, no ``..``, no absolute path."""
    parts = filename.split("/") if isinstance(filename, str) else []
    if not parts or not all(_FILE_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise ValueError(f"{filename!r} is not a file name inside a Hub repo; give a relative path without '..'")
    return filename


def parse_etag(value: str | None) -> str | None:
    """The ETag as huggingface_hub normalises it (``W/`` and quotes removed, lower case) when it
    is one of the Hub's forms (a 40-hex git blob id or a 64-hex SHA-256), else None."""
    if value is None:
        return None
    etag = value.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    etag = etag.strip('"').lower()
    return etag if _ETAG.fullmatch(etag) else None


def _inside(root: Path, path: Path) -> Path:
    """``path``, which must lie inside ``root`` (lexically: the names were validated; this keeps it so)."""
    root_n, path_n = os.path.normpath(root), os.path.normpath(path)
    if os.path.commonpath([root_n, path_n]) != root_n:
        raise ValueError(f"{path} would lie outside the Hub cache {root}; refusing to write it")
    return path


# --------------------------------------------------------------------------------------
# Metadata


@dataclass(frozen=True)
class _Meta:
    etag: str
    commit: str
    size: int | None
    location: str


def _etag_timeout() -> float:
    text = os.environ.get(ETAG_TIMEOUT_ENV)
    if not text:
        return _DEFAULT_ETAG_TIMEOUT
    try:  # huggingface_hub reads the same variable with int() when imported: a fraction would fail there
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError(f"{ETAG_TIMEOUT_ENV} must be a whole number of seconds > 0 (huggingface_hub reads it too), "
                         f"got {text[:40]!r}")
    return float(seconds)


def _offline_reason(error: OSError) -> str | None:
    """What says "no network" in ``error``: a refused connection, a failed lookup, an unreachable net."""
    if isinstance(error, socket.gaierror):
        return f"looking up the host failed: {error.strerror or error}"
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused"
    if getattr(error, "errno", None) in (101, 113):  # ENETUNREACH, EHOSTUNREACH
        return "the network is unreachable"
    return None


def _metadata(url: str, endpoint: str, headers: dict[str, str], private: dict[str, str]) -> _Meta:
    """The HEAD of ``url``: ETag, commit, size and where the bytes are, validated."""
    timeout = _etag_timeout()
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            status, reply = head(url, timeout=timeout, headers=headers, private_headers=private)
        except OSError as e:
            reason = _offline_reason(e)
            if reason is not None:
                raise HubUnavailableError(f"no network ({reason})") from None
            if isinstance(e, TimeoutError):
                raise HubUnavailableError(f"{endpoint} did not answer within {timeout:g} s (set {ETAG_TIMEOUT_ENV} "
                                          "to wait longer)") from None
            raise HubUnavailableError(f"{endpoint} cannot be reached ({e})") from None
        location = reply.get("Location")
        parts = urllib.parse.urlsplit(location or "")
        if 300 <= status < 400 and location and not parts.scheme and not parts.netloc:
            url = urllib.parse.urljoin(url, location)  # the Hub's relative redirect of a renamed repo
            continue
        break
    else:
        raise OSError(f"{url} redirects more than {_MAX_REDIRECTS} times; check HF_ENDPOINT")
    if status in (401, 403, 404):
        code = (reply.get("X-Error-Code") or {404: "not found"}.get(status, "access denied"))[:40]
        raise FileNotFoundError(f"{url} does not exist on the Hub ({code}); check the repo id, revision and "
                                "file name (a private or gated repo needs `huggingface-cli login`)")
    if status >= 500:  # the Hub is down: a cached copy still serves (huggingface_hub's rule)
        raise HubUnavailableError(f"{endpoint} answered HTTP {status}")
    if not (200 <= status < 400):
        raise OSError(f"{endpoint} answered HTTP {status} for {url}; try again later or check HF_ENDPOINT")
    return _validated(url, endpoint, status, reply)


def _validated(url: str, endpoint: str, status: int, reply: Any) -> _Meta:
    raw_etag = reply.get("X-Linked-Etag") or reply.get("ETag")
    etag = parse_etag(raw_etag)
    if etag is None:
        raise OSError(f"the mirror {endpoint} sent ETag {str(raw_etag)[:80]!r} for {url}, not a 40- or 64-hex "
                      "Hub ETag; refusing it (check HF_ENDPOINT: the Hub names files by their hash)")
    commit = (reply.get("X-Repo-Commit") or "").strip()
    if not _COMMIT.fullmatch(commit):
        raise OSError(f"the mirror {endpoint} sent commit {commit[:80]!r} for {url}, not a 40-hex commit; "
                      "refusing it (check HF_ENDPOINT)")
    length = (reply.get("X-Linked-Size") or reply.get("Content-Length") or "").strip()
    size = int(length) if length.isdigit() and len(length) < 19 else None
    location = reply.get("Location") if 300 <= status < 400 else None
    if location and urllib.parse.urlsplit(location).scheme not in ("http", "https"):
        raise OSError(f"the mirror {endpoint} redirects {url} to {location[:80]!r}, not an http(s) URL; refusing it")
    return _Meta(etag, commit, size, location or url)


# --------------------------------------------------------------------------------------
# The cache


def _cached(repo_dir: Path, revision: str, filename: str) -> Path | None:
    """The cached snapshot of ``filename`` at ``revision``, if there is one."""
    commit = revision
    if not _COMMIT.fullmatch(revision):
        ref = repo_dir / "refs" / revision
        if not ref.is_file():
            return None
        commit = read_text(ref, max_bytes=1024, what="Hub cache ref").strip()
        if not _COMMIT.fullmatch(commit):
            return None
    path = repo_dir / "snapshots" / commit / filename
    return path if path.is_file() else None


def _git_blob_id(path: Path) -> str:
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(path: Path, algorithm: str) -> str:
    if algorithm == "git":
        return _git_blob_id(path)
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_hashes(part: Path, url: str, endpoint: str, etag: str, sha256: str | None) -> None:
    """The bytes must hash to the ETag (a git blob id or a SHA-256) and to the record's ``sha256``."""
    checks = [("git" if len(etag) == 40 else "sha256", etag, "its ETag")]
    if sha256:
        checks.append(("sha256", sha256.lower(), "the record's sha256"))
    for algorithm, want, what in checks:
        got = _digest(part, algorithm)
        if got != want:
            part.unlink(missing_ok=True)
            raise OSError(f"{url} from {endpoint} does not match {what} ({want}; the bytes give {got}); the "
                          "download was deleted: run again, or check HF_ENDPOINT")


def _link(blob: Path, snapshot: Path) -> None:
    """``snapshot`` -> ``blob`` as a relative link (a copy where links are not allowed), atomically."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(os.path.relpath(blob, snapshot.parent), tmp)
    except OSError:
        shutil.copyfile(blob, tmp)
    os.replace(tmp, snapshot)


# --------------------------------------------------------------------------------------
# The one entry point


def hub_download(repo_id: str, filename: str, *, max_bytes: int, cache_dir: str | os.PathLike | None = None,
                 sha256: str | None = None, size: int | None = None) -> Path:
    """Download ``filename`` of Hub repo ``repo_id`` (``ORG/NAME`` or ``ORG/NAME@REVISION``) into the
    Hub cache, or find it there, and return its path.

    Args:
        max_bytes: the most bytes the file may have (a mirror offering or sending more is cut off).
        cache_dir: the Hub cache (default: :func:`hub_cache_dir`).
        sha256: the file's known SHA-256; the download must match it.
        size: the file's known size in bytes; the download must have exactly that many.

    Raises:
        ImportError: huggingface_hub is not installed (says what to install).
        ValueError: a repo id, revision or file name that is not one (before any request).
        FileNotFoundError: the repo, revision or file does not exist.
        HubUnavailableError: not cached, and offline mode is on or the Hub cannot be reached.
        OSError: the mirror sent something refused (an ETag or commit that is not hex, bytes that
            do not match), or the transfer failed (stalled, past the deadline, too large).
    """
    repo, _, revision = repo_id.partition("@")
    repo, revision, filename = validate_repo_id(repo), validate_revision(revision or "main"), validate_filename(filename)
    _etag_timeout()  # checked before huggingface_hub's import reads it
    hub = _hub_module()
    endpoint = (os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT).rstrip("/")
    url = f"{endpoint}/{repo}/resolve/{urllib.parse.quote(revision, safe='')}/{urllib.parse.quote(filename)}"
    cache = hub_cache_dir(cache_dir)
    repo_dir = _inside(cache, cache / ("models--" + repo.replace("/", "--")))
    cached = _cached(repo_dir, revision, filename)
    where = f"the Hugging Face cache ({cache})"
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        if cached is not None:
            return cached
        raise HubOfflineError(f"{url} is not in {where} and offline mode is on (HF_HUB_OFFLINE=1): run once with "
                              "network access to fill the cache")
    if cached is not None and revision == cached.parent.name and _COMMIT.fullmatch(revision):
        return cached  # a commit never changes
    token = hub.get_token()
    private = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        meta = _metadata(url, endpoint, {"Accept-Encoding": "identity"}, private)
    except HubUnavailableError as e:
        if cached is not None:  # huggingface_hub's rule: the cached copy when the Hub cannot be asked
            return cached
        raise HubUnavailableError(f"could not download {url}: {e.problem} and the file is not in {where}; check "
                                  "the network (HF_ENDPOINT names a mirror)") from None
    limit = size if size is not None else max_bytes
    if meta.size is not None and meta.size > limit:
        raise OSError(f"the mirror {endpoint} offers {meta.size:,} bytes for {url}, more than the {limit:,} expected; "
                      "refusing it (check HF_ENDPOINT)")
    blob = _inside(cache, repo_dir / "blobs" / meta.etag)
    snapshot = _inside(cache, repo_dir / "snapshots" / meta.commit / filename)
    with file_lock(_inside(cache, cache / ".locks" / repo_dir.name / f"{meta.etag}.lock")):
        if not blob.is_file():
            _fetch(meta, blob, url, endpoint, private, size=size if size is not None else meta.size,
                   max_bytes=max_bytes, sha256=sha256)
        elif sha256 and (meta.etag if len(meta.etag) == 64 else _digest(blob, "sha256")) != sha256.lower():
            # cached before the record knew its hash: a SHA-256 ETag was checked against the bytes then
            raise OSError(f"{url} from {endpoint} is not the file the record names (sha256 {sha256}); check "
                          "HF_ENDPOINT")
        _link(blob, snapshot)
        if revision != meta.commit:
            ref = _inside(cache, repo_dir / "refs" / revision)
            ref.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(ref, meta.commit)
    return snapshot


def _fetch(meta: _Meta, blob: Path, url: str, endpoint: str, private: dict[str, str], *, size: int | None,
           max_bytes: int, sha256: str | None) -> None:
    """The bytes of ``meta`` into ``blob``: streamed to ``blob.part`` (resumed), hashed, renamed."""
    blob.parent.mkdir(parents=True, exist_ok=True)
    part = blob.with_name(blob.name + ".part")
    same_host = urllib.parse.urlsplit(meta.location).netloc == urllib.parse.urlsplit(url).netloc
    # a DownloadError (an OSError) names the URL, what happened and the fix
    transfer(meta.location, part, size=size, max_bytes=max_bytes, headers={"Accept-Encoding": "identity"},
             private_headers=private if same_host else None,
             progress=not _truthy(os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")),
             unreachable_fix="check the network (HF_ENDPOINT names a mirror)", cache_env="HF_HOME")
    _check_hashes(part, url, endpoint, meta.etag, sha256)
    os.replace(part, blob)


def _hub_module() -> Any:
    try:
        import huggingface_hub  # optional: only a download needs it
    except ImportError as e:
        raise ImportError(
            f"downloading from the Hugging Face Hub needs huggingface_hub ({e}): pip install huggingface_hub "
            f"(or pip install 'wavevision[hub]'), {PYTHON_FIX}"
        ) from None
    return huggingface_hub
