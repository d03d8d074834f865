"""Tokenized examples, labels as arrays, and dynamic-padding batches.

Framework-free (numpy only): the PyTorch benchmark builds its batches here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from .readers import Example
from .tasks import TaskSpec, get_task


class PairTokenizer(Protocol):
    def encode_pairs(self, texts_a: Sequence[str], texts_b: Sequence[str] | None,
                     max_seq_len: int) -> list[tuple[list[int], list[int]]]: ...


def encode_examples(tokenizer: PairTokenizer, examples: Sequence[Example],
                    max_seq_len: int) -> list[tuple[list[int], list[int]]]:
    """Tokenize examples into (input_ids, token_type_ids) pairs, one per example, in order."""
    with_b = sum(example.text_b is not None for example in examples)
    if 0 < with_b < len(examples):
        raise ValueError(f"{with_b} of {len(examples)} examples have text_b: "
                         "encode single sentences and sentence pairs separately")
    texts_a = [example.text_a for example in examples]
    texts_b = [example.text_b for example in examples] if with_b else None
    encoded = tokenizer.encode_pairs(texts_a, texts_b, max_seq_len)
    if len(encoded) != len(examples):
        raise ValueError(f"tokenizer returned {len(encoded)} encodings for {len(examples)} examples")
    return [(list(map(int, ids)), list(map(int, types))) for ids, types in encoded]


def encode_labels(task: str | TaskSpec, examples: Sequence[Example]) -> np.ndarray:
    """Labels as label_list indices (int64), or float32 scores for STS-B."""
    spec = get_task(task)
    missing = [example.guid for example in examples if example.label is None]
    if missing:
        raise ValueError(f"{len(missing)} examples have no label (first: {missing[0]}); "
                         "test splits cannot be scored")
    if spec.label_list is None:
        return np.array([float(example.label) for example in examples], dtype=np.float32)
    index = {label: i for i, label in enumerate(spec.label_list)}
    return np.array([index[str(example.label)] for example in examples], dtype=np.int64)


@dataclass
class Batch:
    input_ids: np.ndarray  # int64 [B, L], L = longest sequence in this batch
    token_type_ids: np.ndarray  # int64 [B, L], padded with 0
    attention_mask: np.ndarray  # int64 [B, L], 1 for real tokens, 0 for padding
    indices: np.ndarray  # int64 [B], positions of the rows in the input order
    labels: np.ndarray | None = None  # int64 or float32 [B]

    def __len__(self) -> int:
        return len(self.indices)


def _label_array(labels: Any, count: int) -> np.ndarray | None:
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.shape != (count,):
        raise ValueError(f"labels have shape {array.shape}, expected ({count},) like the inputs")
    dtype = np.float32 if np.issubdtype(array.dtype, np.floating) else np.int64
    return array.astype(dtype)


def _pad_batch(encoded: Sequence[tuple[list[int], list[int]]], rows: list[int],
               pad_id: int, labels: np.ndarray | None) -> Batch:
    width = max(len(encoded[i][0]) for i in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, i in enumerate(rows):
        input_ids, type_ids = encoded[i]
        if len(input_ids) != len(type_ids):
            raise ValueError(f"row {i}: {len(input_ids)} input_ids but {len(type_ids)} token_type_ids")
        ids[r, :len(input_ids)] = input_ids
        types[r, :len(type_ids)] = type_ids
        mask[r, :len(input_ids)] = 1
    indices = np.array(rows, dtype=np.int64)
    return Batch(ids, types, mask, indices, None if labels is None else labels[indices])


def make_batches(encoded: Sequence[tuple[Sequence[int], Sequence[int]]], batch_size: int,
                 pad_id: int = 0, sort_by_length: bool = False,
                 labels: Sequence[int] | Sequence[float] | np.ndarray | None = None,
                 max_tokens: int | None = None) -> list[Batch]:
    """Split encoded rows into dynamically padded batches.

    With sort_by_length the rows are ordered by length first (stable), which cuts padding;
    each batch's `indices` say where its rows came from (see `restore_order`). With `max_tokens`
    a batch takes rows, in order, while rows x its longest row stays within the budget (at least one
    row), instead of `batch_size` rows: sorted, short rows then travel in large batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    label_array = _label_array(labels, len(encoded))
    order = list(range(len(encoded)))
    if sort_by_length:
        order.sort(key=lambda i: len(encoded[i][0]))
    groups = (_token_budget_groups(order, [len(ids) for ids, _ in encoded], max_tokens) if max_tokens
              else [order[start:start + batch_size] for start in range(0, len(order), batch_size)])
    return [_pad_batch(encoded, rows, pad_id, label_array) for rows in groups]


def _token_budget_groups(order: list[int], lengths: list[int], max_tokens: int) -> list[list[int]]:
    """`order` cut into consecutive groups whose padded size (rows x longest) fits `max_tokens`."""
    groups, current, longest = [], [], 0
    for i in order:
        wider = max(longest, lengths[i])
        if current and wider * (len(current) + 1) > max_tokens:
            groups.append(current)
            current, wider = [], lengths[i]
        current.append(i)
        longest = wider
    return groups + [current] if current else groups


def restore_order(batches: Sequence[Batch], outputs: Sequence[Any]) -> np.ndarray:
    """Put per-batch outputs (e.g. predictions or logits) back into the original input order."""
    if len(outputs) != len(batches):
        raise ValueError(f"{len(outputs)} outputs for {len(batches)} batches")
    indices = np.concatenate([batch.indices for batch in batches])
    values = np.concatenate([np.asarray(output) for output in outputs])
    if len(values) != len(indices):
        raise ValueError(f"{len(values)} output rows for {len(indices)} input rows")
    result = np.empty_like(values)
    result[indices] = values
    return result
