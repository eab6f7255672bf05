"""Atomic writing: every output is written to a temporary name and renamed when complete, so an
interrupted run (Ctrl-C, an error, ``kill -9``) never leaves a half-written file in place of a
good one.

Temporaries are hidden names beside the target, ``.NAME.XXXXXXXX.tmp``; an exception or Ctrl-C
removes them, a killed process leaves them behind, and :func:`remove_temporaries` clears them
where one writer owns the folder (checkpoints). With ``fsync=True`` the data reach the disk
before the rename, so a power cut leaves the old or the new version, never an empty file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_dir", "remove_temporaries", "TEMP_SUFFIX"]

#: The suffix of every temporary file or folder made here.
TEMP_SUFFIX = ".tmp"


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = False):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    >>> with atomic_path("out.fits") as tmp:   # doctest: +SKIP
    ...     hdul.writeto(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    os.remove(tmp)  # writers such as h5py and astropy want to create the file themselves
    try:
        yield Path(tmp)
        if os.path.isfile(tmp):   # as open() would make it: some writers (safetensors) use 0600
            os.chmod(tmp, 0o666 & ~_umask())
        if fsync:
            _fsync(Path(tmp))
        os.replace(tmp, path)
        if fsync:
            _fsync(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, fsync: bool = False):
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    Replacing an existing folder takes two renames (old away, new in); a kill between them
    leaves ``path`` missing and the old version as ``.NAME.old``, never a mixed folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX))
    os.chmod(tmp, 0o777 & ~_umask())             # as os.mkdir would make it, not mkdtemp's 0700
    try:
        yield tmp
        if fsync:
            _fsync_tree(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        if fsync:
            _fsync(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_temporaries(folder: str | os.PathLike, prefix: str = ".") -> list[Path]:
    """Delete the temporaries (``.*.tmp``) and replaced folders (``.*.old``) a killed writer
    left in ``folder`` whose names start with ``prefix``; returns what was removed. Only for
    folders that a single writer owns, while it is not writing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name.startswith(".")
             and p.name.endswith((TEMP_SUFFIX, ".old"))]
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale
