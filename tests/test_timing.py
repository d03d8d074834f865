"""Tests of the benchmark timing helpers, with a fake clock so the numbers are exact."""
import sys
from pathlib import Path

import numpy as np
import pytest

import squeezebert_paddle.timing as timing
from squeezebert_paddle.timing import (
    classification_report, peak_memory_mb, summarize, time_batches,
)


class FakeClock:
    """perf_counter stand-in: time moves only when a batch 'runs'; every event is logged."""

    def __init__(self):
        self.now, self.log = 0.0, []

    def perf_counter(self):
        self.log.append("clock")
        return self.now

    def sync(self):
        self.log.append("sync")

    def run(self, batch):
        self.log.append(f"run{batch}")
        self.now += batch / 10  # batch b takes b/10 seconds
        return batch * 100


def test_time_batches_warmup_sync_and_order(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    outputs, seconds = time_batches(clock.run, [1, 2], warmup=3, sync=clock.sync)
    assert outputs == [100, 200]
    assert seconds == pytest.approx([0.1, 0.2])
    # Warm-up cycles over the batches untimed; then sync precedes every clock read.
    assert clock.log == ["run1", "run2", "run1",
                         "sync", "clock", "run1", "sync", "clock",
                         "sync", "clock", "run2", "sync", "clock"]


def test_time_batches_with_progress_bar_and_no_sync():
    outputs, seconds = time_batches(lambda b: b + 1, [1, 2, 3], progress=True, desc="test")
    assert outputs == [2, 3, 4] and len(seconds) == 3 and all(s >= 0 for s in seconds)
    assert time_batches(lambda b: b, [], warmup=2) == ([], [])


def test_summarize():
    summary = summarize([0.1, 0.2, 0.3, 0.4], examples=40, tokens=1000)
    assert summary == pytest.approx({
        "seconds": 1.0, "batches": 4, "examples": 40, "tokens": 1000,
        "examples_per_second": 40.0, "tokens_per_second": 1000.0,
        # median of 100..400 ms is 250; p90 interpolates 300 + 0.7 * (400 - 300).
        "ms_per_batch_median": 250.0, "ms_per_batch_p90": 370.0,
    })
    with pytest.raises(ValueError, match="no timed batches"):
        summarize([], 0, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_memory_is_at_least_current_rss():
    ballast = np.ones(32 * 1024 * 1024 // 8)  # touch 32 MiB so the peak is clearly non-trivial
    status = Path("/proc/self/status").read_text()
    rss_kib = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    peak = peak_memory_mb()
    assert peak >= rss_kib / 1024 - 1 and peak > 32
    assert peak < 1024 * 1024  # MiB, not KiB or bytes
    del ballast


def test_classification_report():
    report = classification_report(np.array([1, 0, 1, 1, 0, 1]), [1, 0, 0, 1, 1, 1])
    assert report == pytest.approx({"accuracy": 4 / 6, "f1": 0.75, "examples": 6})


def test_busy_machine_note_only_when_the_load_exceeds_the_cores(monkeypatch):
    from squeezebert_paddle import timing
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (1.9, 0.0, 0.0))
    assert timing.busy_machine_note() is None
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (3.25, 0.0, 0.0))
    assert timing.busy_machine_note().startswith("NOTE: this machine is busy (load average 3.2 on 2 cores)")
