"""Checks of output paths, run before any work starts.

An output that cannot be written (a file where a folder should be, a folder under a file, a read-only
place) must fail in one line at the start, not as a traceback after hours of work. Nothing here writes:
``os.access`` answers for permissions and read-only file systems alike (EROFS), also for root.
"""

from __future__ import annotations

import os
from pathlib import Path

from visplay.errors import UserError


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (a dangling symlink counts as existing)."""
    current = path
    while not os.path.lexists(current):
        if current.parent == current:
            break
        current = current.parent
    return current


def _writable_dir(folder: Path, what: str, shown: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        where = "" if folder == shown else f" (its folder {folder} is not writable)"
        raise UserError(f"{what} {shown} cannot be written{where}: permission denied or a read-only file system")


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Raise UserError unless ``path`` is, or can be created as, a writable folder. Writes nothing."""
    path = Path(path).expanduser()
    existing = _nearest_existing(path)
    if existing == path:
        if not path.is_dir():
            raise UserError(f"{what} {path} is a file; give a folder")
        _writable_dir(path, what, path)
        return path
    if not existing.is_dir():
        raise UserError(f"{what} {path} cannot be created: {existing} is a file, not a folder")
    _writable_dir(existing, what, path)
    return path


def check_output_file(path: str | os.PathLike, what: str = "--out", overwrite: bool = False,
                      overwrite_flag: str = "--overwrite") -> Path:
    """Raise UserError unless ``path`` can be written as a file (an existing one only with ``overwrite``)."""
    path = Path(path).expanduser()
    if os.path.lexists(path):
        if path.is_dir():
            raise UserError(f"{what} {path} is a folder; give a file name")
        if not overwrite:
            raise UserError(f"{what} {path} already exists; add {overwrite_flag} to replace it, or choose another name")
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise UserError(f"{what} {path} cannot be created: {existing} is a file, not a folder")
    # The file is written beside its final name and renamed, so the folder must be writable.
    _writable_dir(existing, what, path)
    return path
