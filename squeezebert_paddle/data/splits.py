"""A GLUE task's files as a fine-tuning run reads them: where they are, and each file tokenized.

Framework-free. The data directory is decided here, once: `--data_dir` when given; else
`./glue_data/<TASK>` when it holds the task's files; else the labelled sample shipped in the package
(`squeezebert_paddle/assets/glue_sample/<TASK>`), said in a log line.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batches import encode_examples, encode_labels
from .download import download_glue
from .readers import Example, read_glue_tsv
from .tasks import (GlueDataError, TaskSpec, default_data_dir, required_files, sample_data_dir,
                    split_files)

logger = logging.getLogger("squeezebert_paddle.data")


@dataclass
class Split:
    """One encoded GLUE file."""

    name: str                                  # file stem: train, dev, dev_matched, test_mismatched
    encoded: list[tuple[list[int], list[int]]]
    labels: np.ndarray | None                  # [N] int64 label ids, float32 scores, or None for test files
    guids: list[str]

    def __len__(self) -> int:
        return len(self.encoded)


def run_splits(do_predict: bool) -> tuple[str, ...]:
    return ("train", "dev", "test") if do_predict else ("train", "dev")


def missing_data_message(task: TaskSpec, data_dir: Path, do_predict: bool) -> str | None:
    """None when `data_dir` holds every file the run needs, else a sentence naming them."""
    needed = required_files(task, data_dir, run_splits(do_predict))
    missing = [p.name for p in needed if not p.is_file()]
    if not missing:
        return None
    partial = "" if len(missing) == len(needed) else f" (of {', '.join(p.name for p in needed)})"
    return (f"GLUE {task.name} data not found: {data_dir} lacks {', '.join(missing)}{partial}; "
            f"put GLUE's files there, pass --data_dir, or add --download to fetch them")


def locate_glue_data(task: TaskSpec, data_dir: str | Path | None, do_predict: bool) -> Path:
    """The directory a run reads (see the module docstring); it may still lack files."""
    if data_dir is not None:
        return Path(data_dir)
    default = default_data_dir(task)
    if missing_data_message(task, default, do_predict) is None:
        return default
    return sample_data_dir(task)


def prepare_glue_data(task: TaskSpec, data_dir: str | Path | None, do_predict: bool, download: bool,
                      fallback=None) -> Path:
    """`locate_glue_data`, after fetching the task (`download.download_glue`, with its `fallback`)
    when `download` and its directory (the given one, or ./glue_data/<TASK>) lacks files; logs when
    the shipped sample is used."""
    if download:
        target = Path(data_dir) if data_dir is not None else default_data_dir(task)
        if missing_data_message(task, target, do_predict) is not None:
            download_glue(task, target, fallback)
    found = locate_glue_data(task, data_dir, do_predict)
    message = missing_data_message(task, found, do_predict)
    if message:
        raise GlueDataError(message)
    if found == sample_data_dir(task):
        logger.info("no %s: using the small GLUE-format sample shipped with the package, %s (for the "
                    "real data pass --data_dir, or --download)", default_data_dir(task), found)
    return found


def read_split(task: TaskSpec, path: Path, split: str) -> list[Example]:
    """The examples of one GLUE file; malformed rows are skipped and the count logged."""
    try:
        examples, skipped = read_glue_tsv(path, task, split)
    except (FileNotFoundError, ValueError) as err:
        raise GlueDataError(str(err)) from None
    if skipped:
        logger.warning("%s: skipped %d malformed rows, kept %d (%s)", path, skipped, len(examples),
                       skipped.describe())
    else:
        logger.info("%s: %d examples", path, len(examples))
    return examples


def encode_split(task: TaskSpec, path: Path, split: str, tokenizer, max_seq_length: int) -> Split:
    examples = read_split(task, path, split)
    encoded = encode_examples(tokenizer, examples, max_seq_length)
    labels = encode_labels(task, examples) if split != "test" else None
    return Split(path.stem, encoded, labels, [e.guid for e in examples])


def load_glue_splits(task: TaskSpec, data_dir: Path, tokenizer, max_seq_length: int,
                     do_predict: bool) -> dict[str, list[Split]]:
    """{"train": [Split], "dev": [Split, ...], "test": [...]}, tokenized."""
    return {split: [encode_split(task, path, split, tokenizer, max_seq_length)
                    for path in split_files(task, data_dir, split)] for split in run_splits(do_predict)}
