"""Opening the files a user hands us: regular files only, JSON objects, text; each failure one line.

Framework-free (standard library). Opening a FIFO for reading blocks until a writer comes, a device
never ends, and a directory or a symlink loop fails deep inside a library with its own traceback, so
`file_problem` says what a path is, from its stat, before anything opens it.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path


def file_problem(path: str | os.PathLike) -> str | None:
    """None when `path` is a regular file (symlinks followed); else what it is, e.g. "not found",
    "a FIFO (named pipe), not a regular file", "a symbolic link loop"."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a dangling symbolic link" if os.path.islink(path) else "not found"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop, not a regular file"
        return err.strerror or os.strerror(err.errno)
    return mode_problem(mode)


def mode_problem(mode: int) -> str | None:
    """None for a regular file's st_mode; else what the file is, as `file_problem` says it."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory, not a regular file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    return "a device or socket, not a regular file"


def is_present(path: str | os.PathLike) -> bool:
    """Whether anything (a dangling link included) is at `path`: such a thing is read, or refused
    with what it is, never taken for a missing file."""
    return os.path.lexists(path)


def require_regular_file(path: str | os.PathLike, error: type[Exception], hint: str) -> Path:
    """`path` when it is a regular file; else `error("<path>: <what it is>; <hint>")`."""
    problem = file_problem(path)
    if problem:
        raise error(f"{path}: {problem}; {hint}")
    return Path(path)


def utf8_problem(path: str | os.PathLike, err: UnicodeDecodeError) -> str:
    return (f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
            f"restore the file from the checkpoint's source")


def read_json_object(path: str | os.PathLike, error: type[Exception]) -> dict:
    """The JSON object in the UTF-8 file `path`; anything else is `error` with one line naming the file
    (not a regular file, not UTF-8, invalid JSON, nested too deep for the parser, not an object)."""
    if file_problem(path) == "not found":
        raise error(f"{path}: not found")
    require_regular_file(path, error, "restore the file from the checkpoint's source")
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except UnicodeDecodeError as err:
        raise error(utf8_problem(path, err)) from None
    except json.JSONDecodeError as err:
        raise error(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); restore the file "
                    f"from the checkpoint's source") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to read; restore the file from the checkpoint's "
                    f"source") from None
    except ValueError as err:        # e.g. an integer of more digits than Python converts
        raise error(f"{path}: unreadable JSON ({' '.join(str(err).split())[:120]}); restore the file "
                    f"from the checkpoint's source") from None
    if not isinstance(value, dict):
        raise error(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value
