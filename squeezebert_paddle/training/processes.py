"""The processes of a run: device and thread setup, the data-parallel group, and the console log.

`paddle.distributed.launch` starts one process per device (gloo on CPU, NCCL on GPU); every process
runs the same code, only rank 0 logs and writes.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import paddle
import paddle.distributed as dist
from tqdm import tqdm

from .. import cpu_kernels, host_memory


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_rank() -> int:
    """This process's rank as `paddle.distributed.launch` sets it (0 when not launched)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def cpu_threads(requested: int | None) -> int:
    """`requested`, else the cores this process may use divided among the processes on this node."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("PADDLE_LOCAL_SIZE", "1")))


def setup_distributed(device: str, threads: int | None = None) -> Dist:
    """Select the device; join the process group when started by `paddle.distributed.launch`
    (gloo on CPU, NCCL on GPU). On CPU, let the math library (MKL GEMMs) use `cpu_threads`
    threads: Paddle's default is one, whatever OMP_NUM_THREADS says."""
    paddle.set_device(device)
    if device == "cpu":
        count = cpu_threads(threads)
        paddle.base.core.set_num_threads(count)
        cpu_kernels.set_threads(count)              # the fused kernels' OpenMP runtime
        host_memory.retain_freed_memory()
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    if world > 1:
        dist.init_parallel_env()
        return Dist(dist.get_rank(), dist.get_world_size())
    return Dist()


def all_gather(obj: Any, ctx: Dist) -> list:
    if ctx.world == 1:
        return [obj]
    gathered: list = []
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(ctx: Dist) -> None:
    if ctx.world > 1:
        dist.barrier()


class _TqdmHandler(logging.Handler):
    """Log lines to the current stderr that do not break a running progress bar."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 -- logging must never raise
            self.handleError(record)


def configure_logging(rank: int) -> None:
    """The console log of run_glue.py: INFO on rank 0, warnings only on the other ranks.

    Replaces plain console handlers on the root logger (importing Paddle under
    `paddle.distributed.launch` installs one, which would print every line twice); handler
    subclasses, such as pytest's capture, stay.
    """
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if type(h) not in (logging.StreamHandler, _TqdmHandler)]
    root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
