"""Writing files so that a reader, or a run killed at any moment, never sees half of one.

Framework-free (standard library and numpy): every writer in the package goes through here.

- `atomic_write_bytes` / `atomic_write_text` / `atomic_write_json`: the data goes to a fresh
  temporary file beside the target (created exclusively, so a planted symlink is never followed),
  is flushed to disk, then renamed over the target. The file gets the usual `0666 & ~umask` mode.
- `atomic_directory`: a directory filled under a temporary name, then renamed into place.
- `atomic_files`: several files that appear in an existing directory together (see its guarantee).
- `clean_interrupted_writes`: what a killed writer left behind in a directory, removed (or put back);
  a temporary whose writer is still running (it holds an flock on it) is left alone.
- `remove_atomically`: a file or directory gone whole (a kill leaves it, or a temporary the cleanup removes).
- `unwritable_reason` / `unwritable_file_reason`: why a directory, or a file, could not be created
  or written, checked before any work.
- `user_cache_dir`: the package's per-user cache directory.
- `open_regular`: read only regular files, never blocking (a FIFO would block a reader forever).
- `write_cache_record` / `read_cache_record` / `manifest_problem`: a record of a cache directory's files
  (size, mtime, head/tail digest) written beside them, and whether they still match it: how a cache
  verifies what it reuses. `foreign_entry`: something not ours where a cache directory goes.
- `hold_lock`: an exclusive lock on a lock file, for "one run at a time in this directory".
- `path_flag`: an argparse `type` for path flags that refuses "" (which would mean the current directory).
- `json_text`: the one JSON encoding of the package (numpy scalars and arrays, paths).
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .input_files import file_problem, mode_problem

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK          # what open() would give a new file
DIR_MODE = 0o777 & ~_UMASK           # what mkdir() would give a new directory

# Temporary names: ".<name>.<random>.tmp" for files; ".tmp-<name>-<random>" for a directory being
# filled and ".old-<name>-<random>" for the one it replaces (random parts never contain "-").
_OLD_DIR = re.compile(r"^\.old-(.+)-[A-Za-z0-9_]+$")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)    # "a writer is alive": clean_interrupted_writes leaves it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)          # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:   # write/fsync name no file: name it
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_text(obj: Any) -> str:
    """`obj` as indented JSON ending in a newline; numpy values become Python numbers and lists,
    paths strings. Anything else unknown raises TypeError."""
    return json.dumps(obj, indent=2, default=_json_default) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """`json_text(obj)` written atomically; the parent directory is created if needed. The text is
    encoded before anything is written, so an unserialisable value leaves the old file as it was."""
    path = Path(path)
    text = json_text(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text)


def atomic_directory(final: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Call `fill(tmp)` on a new temporary directory beside `final`, then rename it to `final`,
    replacing an existing one. Killed at any moment, this leaves the old directory or the new one
    (a replacement caught between its two renames is put back by `clean_interrupted_writes`)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    lock = _lock(tmp)                     # held until renamed; released however this process ends
    try:
        try:
            os.chmod(tmp, DIR_MODE)       # mkdtemp makes 0700
            fill(tmp)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _named_for(err, tmp, final)
        if not final.exists():
            os.rename(tmp, final)
            return final
        old = tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent)
        os.rename(final, old)             # onto the empty placeholder: a unique name
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return final
    finally:
        os.close(lock)


def atomic_files(directory: str | os.PathLike, fill: Callable[[Path], None], last: str) -> list[str]:
    """Call `fill(tmp)` on a temporary directory inside `directory`, then move the files it wrote into
    `directory`, `last` last; returns their names. A directory that does not exist yet appears whole
    (`atomic_directory`). In an existing one (other files kept) the guarantee is this: every file is
    complete; nothing changes until all are written (a failure or kill before that leaves the old
    files and a temporary that `clean_interrupted_writes` removes); then an old `last` is removed first
    and the new one renamed in last, so whenever `last` exists, the files beside it are all of its set
    (a kill during the renames, microseconds, leaves the set without `last`: run again)."""
    directory = Path(directory)
    if not directory.exists():
        atomic_directory(directory, fill)
        return sorted(p.name for p in directory.iterdir())
    stage = Path(tempfile.mkdtemp(prefix=".tmp-files-", dir=directory))
    lock = _lock(stage)
    try:
        try:
            fill(stage)
        except BaseException as err:
            raise _named_for(err, stage, directory)
        names = sorted((p.name for p in stage.iterdir()), key=lambda n: n == last)
        if last in names:
            (directory / last).unlink(missing_ok=True)
        for name in names:
            os.replace(stage / name, directory / name)   # replaces a planted link, never follows it
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        os.close(lock)
    return names


def _named_for(err: BaseException, tmp: Path, final: Path) -> BaseException:
    """`err`, naming the file it will have (under `final`) instead of its temporary (under `tmp`): a full
    disk then says which output it was writing."""
    if isinstance(err, OSError) and err.filename and str(err.filename).startswith(f"{tmp}{os.sep}"):
        renamed = OSError(err.errno, err.strerror, str(final / Path(err.filename).relative_to(tmp)))
        renamed.__cause__ = err
        return renamed
    return err


def _lock(path: Path) -> int:
    """An open descriptor holding an exclusive flock on `path` (a directory or file) until closed."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def hold_lock(path: str | os.PathLike):
    """Open the lock file `path` (created if missing, never through a link: O_NOFOLLOW, and never
    truncated) and take an exclusive flock on it. Returns the open file, which holds the lock until it
    is closed or the process ends however it ends (a killed holder's lock is free again), or None
    when another process holds it. An OSError when it cannot be created (a planted link: ELOOP)."""
    lock = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666), "r+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def _writer_alive(path: Path) -> bool:
    """Whether a running writer holds the flock of its temporary `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove_atomically(path: str | os.PathLike) -> None:
    """Remove a file, or a directory by renaming it to a temporary name first, so that a kill mid-way
    leaves the whole directory or a temporary that `clean_interrupted_writes` removes, never half."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return
    trash = tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    os.rename(path, trash)                # onto the empty placeholder: a unique name
    shutil.rmtree(trash, ignore_errors=True)


def user_cache_dir() -> Path:
    """The package's per-user cache: $XDG_CACHE_HOME/squeezebert_paddle, else ~/.cache/squeezebert_paddle."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "squeezebert_paddle"


def path_flag(text: str) -> Path:
    """argparse `type=` for a path flag: "" is refused at parse time (as a path it is the current
    directory, where outputs would land unasked)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path: pass a file or directory")
    return Path(text)


def unwritable_reason(directory: str | os.PathLike) -> str | None:
    """Why `directory` could not be created (parents included) and written into, or None: its first
    existing ancestor (itself, if it exists) is a file, or is not writable (read-only filesystem, no
    permission). Creates nothing."""
    ancestor = Path(directory).absolute()
    while not os.path.exists(ancestor) and ancestor != ancestor.parent:    # False also for no access
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        read_only = os.statvfs(ancestor).f_flag & os.ST_RDONLY
        return f"{ancestor} is not writable ({'read-only filesystem' if read_only else 'no permission'})"
    return None


def unwritable_file_reason(path: str | os.PathLike) -> str | None:
    """Why `atomic_write_*` could not write the file `path` (parents created as needed), or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a directory"
    return unwritable_reason(path.parent)


def output_json_problem(path: str | os.PathLike | None) -> str | None:
    """A script's --output_json checked before any work (the report is written after all of it), or None."""
    reason = unwritable_file_reason(path) if path is not None else None
    if reason is None:
        return None
    return f"--output_json {path} cannot be written: {reason}; pass a file in a writable directory"


def clean_interrupted_writes(directory: str | os.PathLike) -> None:
    """Remove the temporaries a killed writer left in `directory`; put back a directory whose
    replacement was interrupted between its two renames."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for path in directory.glob(".old-*"):
        match = _OLD_DIR.match(path.name)
        if path.is_symlink():             # never ours: we rename directories there, not links
            path.unlink()
        elif match and not (directory / match.group(1)).exists() and not (directory / match.group(1)).is_symlink():
            os.rename(path, directory / match.group(1))
        else:
            shutil.rmtree(path, ignore_errors=True)
    for path in directory.glob(".tmp-*"):
        if path.is_symlink():
            path.unlink()
        elif not _writer_alive(path):
            shutil.rmtree(path, ignore_errors=True)
    for path in directory.glob(".*.tmp"):
        if path.is_file() and not path.is_symlink() and not _writer_alive(path):
            path.unlink(missing_ok=True)


def open_regular(path: str | os.PathLike, mode: str = "rb", **kwargs):
    """`open(path, mode)` for reading, refusing anything but a regular file with an OSError that names it
    (errno EINVAL), without blocking: the file is opened non-blocking and checked with fstat, so a FIFO
    swapped in after any earlier check cannot hang the reader either."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        what = mode_problem(os.fstat(fd).st_mode)
        if what:
            raise OSError(errno.EINVAL, what, os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def file_record(path: str | os.PathLike) -> dict:
    """What `manifest_problem` checks a file against: size, mtime_ns, and a SHA-256 of its first and last
    MiB. Hashing a whole full-size export (~200 MB) costs about 0.3 s on every run; this costs milliseconds
    and still catches truncation, replacement, and an edit that changes the mtime (a same-size overwrite
    of the middle that keeps the mtime is not caught). Raises OSError for anything but a regular file."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
        info = os.fstat(f.fileno())
        digest.update(f.read(1 << 20))
        if info.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
        digest.update(f.read())
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "head_tail_sha256": digest.hexdigest()}


def directory_manifest(directory: str | os.PathLike) -> dict[str, dict]:
    """`file_record` of every regular file directly in `directory`, by name (for `manifest_problem`)."""
    return {p.name: file_record(p) for p in sorted(Path(directory).iterdir())
            if p.is_file() and not p.is_symlink()}


def manifest_problem(directory: str | os.PathLike, recorded: Any, required: tuple[str, ...] = ()) -> str | None:
    """Why the files in `directory` no longer match `recorded` (a `directory_manifest`), as a few words,
    or None when they all do. Every name in `required` (what a reader will load) must be recorded too:
    a record that lists fewer files cannot vouch for them."""
    if not isinstance(recorded, dict) or not recorded:
        return "no files recorded"
    directory = Path(directory)
    for name, record in recorded.items():
        if not isinstance(name, str) or Path(name).name != name:
            return f"the record names {name!r}, not a file of the directory"
        problem = file_problem(directory / name)
        if problem == "not found":
            return f"{name} is missing"
        if problem is not None:
            return f"{name}: {problem}"
        try:
            if file_record(directory / name) != record:
                return f"{name} differs from what was recorded"
        except OSError as err:
            return f"{name} unreadable: {err.strerror}"
    unrecorded = [name for name in required if name not in recorded]
    return f"{unrecorded[0]} is not in the record" if unrecorded else None


def write_cache_record(directory: str | os.PathLike, record_name: str, **fields: Any) -> None:
    """Write `record_name` in `directory`: `fields` plus "files", the `directory_manifest` of the files
    already there (call it last, once the cache is complete)."""
    directory = Path(directory)
    atomic_write_json(directory / record_name, {**fields, "files": directory_manifest(directory)})


def read_cache_record(directory: str | os.PathLike, record_name: str) -> tuple[dict, str | None]:
    """(the record `write_cache_record` left in `directory`, None), or ({}, why there is none usable:
    "none yet" when the directory does not exist). A FIFO in its place cannot block (`open_regular`)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}, "none yet"
    try:
        with open_regular(directory / record_name, "r", encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        return {}, f"no {record_name}"
    except (OSError, ValueError) as err:
        return {}, f"{record_name} unreadable: {err.strerror if isinstance(err, OSError) else err}"
    if not isinstance(record, dict):
        return {}, f"{record_name} records no files"
    return record, None


def foreign_entry(path: str | os.PathLike) -> str | None:
    """"a symbolic link" or "a file" when that is what sits where a directory of ours should go (replacing
    it would lose it, or write through the link), None when nothing or a real directory is there."""
    path = Path(path)
    if path.is_symlink():
        return "a symbolic link"
    if path.exists() and not path.is_dir():
        return "a file"
    return None
