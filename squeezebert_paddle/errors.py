"""How every script ends on an expected failure: one line on stderr, a non-zero exit, no traceback.

Framework-free. The package's error types (ConfigError, CheckpointError, ConversionError, UsageError,
GlueDataError, TrainingError) derive from `ExpectedError`; each script's entry point is
`sys.exit(run_main(main))`. An `OSError` from the environment (full disk, read-only filesystem,
missing permission, a file where a directory should be) is expected too when it names its file;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import errno
import os
import sys
from typing import Callable

# Failures the user fixes outside the program; a message that names the file says all there is to say.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES,
                                errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EEXIST,
                                errno.ENAMETOOLONG, errno.ELOOP, errno.EIO})


class ExpectedError(Exception):
    """A failure whose message names the file, key or flag and what to do. Printed as one line."""
    exit_code = 1


def os_error_line(err: OSError) -> str | None:
    """`err` as one line naming its file and what to do, or None when it is not the environment's doing."""
    if err.errno not in ENVIRONMENT_ERRNOS or not err.filename:
        return None
    where = os.fspath(err.filename)
    if err.filename2:
        where += f" -> {os.fspath(err.filename2)}"
    hint = {errno.ENOSPC: "free some space or write elsewhere",
            errno.EDQUOT: "free some space or write elsewhere",
            errno.EROFS: "write elsewhere (the filesystem is read-only)",
            errno.EACCES: "check its permissions or write elsewhere",
            errno.EPERM: "check its permissions or write elsewhere"}.get(err.errno, "check the path")
    return f"{where}: {err.strerror or os.strerror(err.errno)}; {hint}"


def run_main(main: Callable[[], int | None], prog: str | None = None) -> int:
    """Run a script's `main`; return its exit code, turning expected failures into one line."""
    prog = prog or os.path.basename(sys.argv[0]) or "squeezebert_paddle"
    try:
        return main() or 0
    except ExpectedError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        line = os_error_line(err)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def max_threads() -> int:
    """The most math threads a flag may ask for: 4 per core here. Far beyond the cores only slows
    down, and OpenMP aborts the process outright at tens of thousands."""
    return 4 * (os.cpu_count() or 1)


def threads_problem(flag: str, value: int) -> str | None:
    """Why `value` cannot be the thread count `flag`, as one line with the allowed range, or None."""
    if 1 <= value <= max_threads():
        return None
    return (f"{flag} {value} is out of range: it must lie between 1 and {max_threads()} "
            f"(4 per core; this machine has {os.cpu_count()})")
