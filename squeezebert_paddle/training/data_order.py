"""Which examples each optimizer step trains on, and each process's share of them.

The order is a permutation drawn from `numpy.random.default_rng([seed, epoch])`, so a resumed run
replays it. Each process takes its slice of every global batch; its loss is weighted so that the
averaged gradient equals that of the whole global batch, exactly as one process would compute it.
"""
from __future__ import annotations

import numpy as np

from ..data import Batch, Split, make_batches


def epoch_batches(seed: int, epoch: int, examples: int, global_batch: int) -> list[np.ndarray]:
    """The global micro-batches of one epoch: a permutation seeded by (seed, epoch), cut in order."""
    order = np.random.default_rng([seed, epoch]).permutation(examples)
    return [order[i:i + global_batch] for i in range(0, examples, global_batch)]


def rank_share(rows: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
    """This process's slice of a global batch, and its weight (1, or 0 for a stand-in row when a
    short last batch has fewer rows than processes: every process must still run a backward)."""
    share = np.array_split(rows, world)[rank]
    if len(share) == 0:
        return rows[:1], 0.0
    return share, 1.0


def gather_rows(split: Split, rows: np.ndarray, pad_id: int) -> Batch:
    """The examples `rows` of `split` as one padded batch, in that order."""
    encoded = [split.encoded[i] for i in rows]
    labels = split.labels[rows] if split.labels is not None else None
    return make_batches(encoded, len(encoded), pad_id, labels=labels)[0]
