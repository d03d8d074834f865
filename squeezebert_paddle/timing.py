"""Timing helpers shared by the Paddle and PyTorch QQP benchmarks (framework-free).

Both benchmarks time the same way so their numbers compare: warm-up calls first (not counted), then
each batch timed with time.perf_counter, calling `sync` (e.g. a device synchronize) before every
clock read so asynchronous GPU work is inside the measured interval.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from .metrics import acc_and_f1

B = TypeVar("B")
R = TypeVar("R")


def _noop() -> None:
    return None


def time_batches(fn: Callable[[B], R], batches: Sequence[B], warmup: int = 0,
                 sync: Callable[[], Any] | None = None, progress: bool = False,
                 desc: str = "batches") -> tuple[list[R], list[float]]:
    """Call fn on every batch; returns (outputs, seconds per batch).

    First `warmup` extra calls run on the leading batches (cycling if there are fewer) and are
    neither timed nor returned, so the timed calls cover every batch exactly once.
    """
    sync = sync or _noop
    for i in range(warmup if batches else 0):
        fn(batches[i % len(batches)])
    iterator: Any = batches
    if progress:
        from tqdm import tqdm  # only when asked: keeps plain imports light

        iterator = tqdm(batches, desc=desc, unit="batch")
    outputs, seconds = [], []
    for batch in iterator:
        sync()
        start = time.perf_counter()
        outputs.append(fn(batch))
        sync()
        seconds.append(time.perf_counter() - start)
    return outputs, seconds


def _per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def summarize(batch_seconds: Sequence[float], examples: int, tokens: int) -> dict[str, float]:
    """Throughput and per-batch latency of a timed run."""
    if len(batch_seconds) == 0:
        raise ValueError("no timed batches to summarize")
    ms = np.asarray(batch_seconds, dtype=np.float64) * 1000.0
    total = float(ms.sum() / 1000.0)
    return {
        "seconds": total,
        "batches": len(ms),
        "examples": int(examples),
        "tokens": int(tokens),
        "examples_per_second": _per_second(examples, total),
        "tokens_per_second": _per_second(tokens, total),
        "ms_per_batch_median": float(np.median(ms)),
        "ms_per_batch_p90": float(np.percentile(ms, 90)),
    }


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def classification_report(predictions: Sequence[int] | np.ndarray,
                          labels: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Accuracy and binary F1 of the benchmark's duplicate/not-duplicate predictions."""
    scores = acc_and_f1(predictions, labels)
    return {"accuracy": scores["accuracy"], "f1": scores["f1"], "examples": len(labels)}


def busy_machine_note() -> str | None:
    """A NOTE line when other processes already keep this machine's cores busy (1-minute load average
    above the core count): speeds measured now are low and their ratios unreliable. None otherwise."""
    try:
        load = os.getloadavg()[0]
    except OSError:                  # not available on this platform
        return None
    cores = os.cpu_count() or 1
    if load <= cores:
        return None
    return (f"NOTE: this machine is busy (load average {load:.1f} on {cores} cores): other processes share "
            f"the CPU, so the speeds below are low and their ratios unreliable; measure on an idle machine")
