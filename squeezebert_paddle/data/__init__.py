"""GLUE and QQP data, framework-free (standard library and numpy; the PyTorch benchmark uses it too).

    tasks.py     the GLUE task table: files, column layouts, labels, metric; where a task's data is
    readers.py   GLUE TSV and QQP pair readers (malformed rows skipped and counted)
    batches.py   tokenized examples, label arrays, dynamic-padding batches
    splits.py    a fine-tuning run's files: located (given, ./glue_data, or the shipped sample), tokenized
    download.py  GLUE from the Hugging Face hub, written out as GLUE's own TSV files
"""
from .batches import Batch, PairTokenizer, encode_examples, encode_labels, make_batches, restore_order
from .readers import Example, read_glue_tsv, read_pairs
from .splits import Split, load_glue_splits, locate_glue_data, missing_data_message, prepare_glue_data
from .tasks import (GLUE_DATA_FILES, GLUE_TASKS, SPLITS, GlueDataError, SplitFormat, TaskSpec, get_task,
                    required_files, split_files)

__all__ = [
    "Batch", "PairTokenizer", "encode_examples", "encode_labels", "make_batches", "restore_order",
    "Example", "read_glue_tsv", "read_pairs",
    "Split", "load_glue_splits", "locate_glue_data", "missing_data_message", "prepare_glue_data",
    "GLUE_DATA_FILES", "GLUE_TASKS", "SPLITS", "GlueDataError", "SplitFormat", "TaskSpec", "get_task",
    "required_files", "split_files",
]
