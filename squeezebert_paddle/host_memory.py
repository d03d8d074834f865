"""Host memory policy for training on the CPU (framework-free: the torch benchmark worker uses it too)."""
from __future__ import annotations

import contextlib
import ctypes


def retain_freed_memory() -> None:
    """Have glibc keep freed blocks up to 32 MiB for reuse instead of unmapping them.

    By default a freed tensor of a few MiB goes back to the kernel, and the next one of that size is
    paged in again on first touch: in a training step that is a page fault per 4 KiB of every
    activation and gradient, which doubled the time of some matmuls here. Process-wide; glibc only.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)          # M_MMAP_THRESHOLD: serve blocks up to 32 MiB from the heap
        libc.mallopt(-1, 1 << 30)           # M_TRIM_THRESHOLD: keep up to 1 GiB of free heap
