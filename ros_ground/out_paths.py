"""Where the command line writes (an overlay file, a folder of results), checked before the long
work it follows: a run of minutes should not end in "could not write" or "[Errno 17] File exists".
Each check raises OSError with one line naming the path and what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path


def check_output_file(path: str) -> None:
    """`path` can be written as a file: it is no folder, its folder exists, and this user may
    write there (or to the file it replaces)."""
    target = Path(path)
    if target.is_dir():
        raise OSError(f"cannot write {path}: it is a folder")
    folder = target.parent
    if not folder.is_dir():
        raise OSError(f"cannot write {path}: no folder {folder}")
    if not os.access(target if target.exists() else folder, os.W_OK):
        raise OSError(f"cannot write {path}: permission denied")


def check_output_folder(path: str, flag: str) -> None:
    """`path` (given as `flag`) can be a folder to write into, created where missing: the
    nearest part of it that exists is a folder this user may write in."""
    target = Path(path).absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        what = "is a file" if existing == target else f"cannot be made: {existing} is a file"
        raise OSError(f"{flag} {path}: {what}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"{flag} {path}: {existing} is not writable (permission denied)")
