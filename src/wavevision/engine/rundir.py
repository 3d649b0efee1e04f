"""The run directory: one folder per training run, and the only code that changes it as a whole.

:class:`RunDir` checks a folder before a run starts without changing it (:meth:`RunDir.check`:
is there a run, may it be replaced or resumed, are its files real files), then, once
everything else about the run is known to be valid, takes the folder (:meth:`RunDir.open`:
an exclusive lock, ``config.yaml`` written) and gives it back (:meth:`RunDir.close`: a run
that failed before it saved anything leaves nothing behind, so the next attempt starts cleanly).

``overwrite`` loses nothing: the old run's files move aside (into ``.wavevision-replaced`` in
the folder) and are deleted only once the new run has saved its first complete state
(:meth:`RunDir.saved`). A new run that fails before that (a loss diverging to NaN in its first
epoch, a full disk, any exception) puts them back; one killed before that gets them back at the
next :meth:`RunDir.open` of the folder.

The lock is ``fcntl.flock`` on ``.wavevision.lock`` in the folder: the kernel releases it
when its process ends, however it ends, so a lock left by a killed run never blocks the next.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_text, file_kind, read_text
from . import checkpoint as ckpt
from .config import TrainConfig, config_diff, load_yaml, resolve_config

__all__ = ["LOCK_FILE", "RunDir", "RunDirLocked", "command_config", "default_output"]

LOCK_FILE = ".wavevision.lock"
_CONFIG = "config.yaml"
_REPLACED = ".wavevision-replaced"  # an --overwrite's old run, until the new run has saved a state
# Files that exist only once a run has trained: a folder holding config.yaml alone is a start that failed.
_PROGRESS = (ckpt.STATE_FILE, "last.safetensors", "best.safetensors", "log.jsonl", "results.json")


class RunDirLocked(OSError):
    """Another process is training into the run directory."""


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return keep.strip("-.") or "run"


def default_output(cfg: TrainConfig) -> Path:
    """``runs/DATASET-MODEL``, the run directory when the configuration names none."""
    dataset = Path(cfg.dataset).name if (os.sep in cfg.dataset or os.path.exists(cfg.dataset)) else cfg.dataset
    return Path("runs") / f"{_slug(dataset)}-{_slug(str(cfg.model))}"


def check_regular(path: Path, what: str) -> None:
    """Raise a ValueError if ``path`` exists but is not a regular file (a FIFO, a device, a link to one)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise ValueError(f"{what} {path} is a link to nothing; remove it") from None
        return
    if not stat.S_ISREG(mode):
        raise ValueError(f"{what} {path} is {file_kind(mode)}, not a regular file; remove it or give another --output")


class RunDir:
    """The folder of one training run (see the module docstring).

    Args:
        path: the folder (created by :meth:`open` when missing).
    """

    files = ckpt.RUN_FILES

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._created = False
        self._wrote_config = False
        self._aside: Path | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def existing(self) -> list[str]:
        """The run files present (links included, whatever they point to)."""
        return [n for n in self.files if os.path.lexists(self.path / n)]

    def check_files(self) -> None:
        """Refuse run files that are FIFOs, devices, links to them or to nothing (a clear error, not a hang)."""
        for name in self.existing():
            check_regular(self.path / name, "run file")

    def has_trained(self) -> bool:
        """Whether the folder holds more than a configuration: a state, weights, a log or results
        (or the run an interrupted ``overwrite`` set aside)."""
        return any(os.path.lexists(self.path / n) for n in (*_PROGRESS, _REPLACED))

    def read_config(self) -> dict[str, Any]:
        """The saved ``config.yaml``, read with a size limit."""
        return load_yaml(self.path / _CONFIG)

    def check(self, cfg: TrainConfig) -> dict[str, Any] | None:
        """Check the folder against ``cfg.resume``/``cfg.overwrite`` without changing anything.

        Returns:
            The saved configuration when resuming, else None.

        Raises:
            FileNotFoundError: nothing to resume. FileExistsError: a run is there and neither
            ``resume`` nor ``overwrite`` is set. ValueError: a run file is not a regular file,
            or the saved configuration differs from ``cfg`` in what the run computes.
        """
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"--output {self.path} is a file, not a folder; give a folder")
        if cfg.resume:
            if not os.path.lexists(self.path / _CONFIG):
                raise FileNotFoundError(f"nothing to resume in {self.path}: it holds no {_CONFIG} (is this the run "
                                        "directory? drop --resume to start a new run)")
            self.check_files()
            saved = self.read_config()
            self.check_same_config(saved, cfg)
            return saved
        if self.has_trained() and not cfg.overwrite:
            existing = self.existing()
            if os.path.lexists(self.path / _REPLACED):
                existing.append(_REPLACED)  # the run an interrupted --overwrite set aside
            raise FileExistsError(f"{self.path} already holds a run ({', '.join(existing[:3])}...); pass --resume to "
                                  "continue it, --overwrite to replace it, or --output DIR for a new one")
        return None

    def check_same_config(self, saved: Mapping[str, Any], cfg: TrainConfig) -> None:
        diff = config_diff(saved, cfg.to_dict())
        if diff:
            shown = "; ".join(f"{k}: {a!r} in the run, {b!r} now" for k, (a, b) in list(diff.items())[:5])
            raise ValueError(
                f"cannot resume {self.path}: it was made with another configuration ({shown}); resume with the "
                "same settings (wavevision train --resume DIR alone reuses them) or start a new run"
            )

    def open(self, config: Mapping[str, Any], *, resume: bool) -> None:
        """Take the folder: lock it, and for a new run set the old run's files aside and write ``config.yaml``.

        Raises:
            RunDirLocked: another process holds the lock (the message names it).
        """
        self._created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._recover()
            if resume:
                self.check_files()  # again, now that no other writer can change them
                return
            self._set_aside()
            import yaml

            atomic_write_text(self.path / _CONFIG, yaml.safe_dump(dict(config), sort_keys=False))
            self._wrote_config = True
        except BaseException:
            self.close(failed=True)
            raise

    def saved(self) -> None:
        """The new run has written a complete state: the run it replaced is deleted now."""
        if self._aside is not None:
            shutil.rmtree(self._aside)
            self._aside = None

    def close(self, *, failed: bool = False) -> None:
        """Release the folder; after a failed new run that saved no state, remove what it wrote
        and put back the run it was replacing."""
        if failed and self._wrote_config and (self._aside is not None or not os.path.lexists(self.path / ckpt.STATE_FILE)):
            for name in self.existing():
                (self.path / name).unlink()
        if failed and self._aside is not None:
            self._put_back(self._aside)
            self._aside = None
        self._wrote_config = False
        self._unlock()
        if self._created:
            try:
                self.path.rmdir()  # only if empty
            except OSError:
                pass
            self._created = False

    # -- overwrite: the old run aside until the new one has saved ---------------------------------
    def _set_aside(self) -> None:
        names = self.existing()
        if not names:
            return
        aside = self.path / _REPLACED
        aside.mkdir()  # _recover has removed any earlier one
        self._aside = aside
        for name in names:
            os.replace(self.path / name, aside / name)  # a rename in one folder: no copy, no disk space

    def _put_back(self, aside: Path) -> None:
        for name in os.listdir(aside):
            if name in self.files:
                os.replace(aside / name, self.path / name)
        shutil.rmtree(aside)

    def _recover(self) -> None:
        """Finish what an ``overwrite`` killed before :meth:`close` left: a new run that saved a
        state keeps the folder; otherwise its files go and the old run comes back."""
        aside = self.path / _REPLACED
        if not os.path.lexists(aside):
            return
        if not aside.is_dir() or aside.is_symlink():
            raise ValueError(f"{aside} is not a folder; remove it (it should hold a run set aside by --overwrite)")
        if os.path.lexists(self.path / ckpt.STATE_FILE):
            shutil.rmtree(aside)
            return
        for name in self.existing():
            (self.path / name).unlink()
        self._put_back(aside)
        print(f"note: {self.path}: put back the run that an interrupted --overwrite had set aside", file=sys.stderr)

    # -- the lock --------------------------------------------------------------------------------
    def _lock(self) -> None:
        path = self.path / LOCK_FILE
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
            except OSError as e:
                raise ValueError(f"cannot use the lock file {path} ({e.strerror}); remove it") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise ValueError(f"the lock file {path} is not a regular file; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunDirLocked(f"{self.path} is in use by another training ({self._holder(path)}); wait for it "
                                   "to end, or give another --output") from None
            except OSError as e:  # a filesystem without locks: train, but say that nothing guards the folder
                print(f"warning: cannot lock {path} ({e.strerror}); make sure no other training writes to "
                      f"{self.path}", file=sys.stderr)
                break
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder unlinked while we waited for it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd

    @staticmethod
    def _holder(path: Path) -> str:
        try:
            pid, _, host = read_text(path, max_bytes=4096, what="lock file").strip().partition(" ")
        except (OSError, ValueError):
            return "process unknown"
        return f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")

    def _unlock(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path / LOCK_FILE)  # while still held: a waiting process sees another file
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def command_config(file: str | os.PathLike[str] | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """The configuration the command line asks for (errors name the flags as spelled there).

    Without ``resume``: defaults < recipe < ``file`` < ``overrides``. With ``resume`` (True or a
    run directory): the run's saved ``config.yaml`` < ``file`` < ``overrides``, so
    ``wavevision train --resume DIR`` alone continues the run as it was started.
    """
    overrides = dict(overrides)
    resume = overrides.pop("resume", False)
    if not resume:
        return resolve_config(file, overrides, from_flags=True)
    if isinstance(resume, (str, os.PathLike)):
        overrides["output"] = os.fspath(resume)
    run_dir = overrides.get("output")
    if run_dir is None:
        cfg = resolve_config(file, overrides, from_flags=True)
        if cfg.model is None:
            raise ValueError("give the run directory to resume: --resume RUN_DIR")
        run_dir = str(default_output(cfg))
    folder = RunDir(run_dir)
    if not os.path.lexists(folder / _CONFIG):
        raise FileNotFoundError(f"nothing to resume in {run_dir}: no {_CONFIG} there; "
                                "give the run directory (--resume RUN_DIR) or drop --resume")
    check_regular(folder / _CONFIG, "run configuration")
    overrides.update(resume=True, output=run_dir)
    return resolve_config(file, overrides, base=folder.read_config(), from_flags=True)
