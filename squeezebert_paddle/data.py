"""GLUE task table, GLUE/QQP readers and dynamic-padding batches.

Framework-free on purpose: the PyTorch benchmark imports this module and must never pull in Paddle,
so only the standard library and numpy are used here.

Readers never drop a row silently: every malformed row is skipped and counted, and the count is
returned beside the examples so callers can report it.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

GLUE_DATA_FILES = (
    "GLUE data layout (as written by GLUE's download script): one directory per task holding "
    "train.tsv, dev.tsv and optionally test.tsv; MNLI holds train.tsv, dev_matched.tsv, "
    "dev_mismatched.tsv, test_matched.tsv and test_mismatched.tsv."
)

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class SplitFormat:
    """Where the fields sit in one split's TSV file (column indices are 0-based)."""

    n_columns: int
    text_a: int
    text_b: int | None
    label: int | None  # None: the split has no label (GLUE test files)
    has_header: bool = True


@dataclass(frozen=True)
class TaskSpec:
    """Everything the readers, metrics and GLUE submission writer need to know about a task."""

    name: str  # canonical upper-case key of GLUE_TASKS
    dir_name: str  # directory name used by GLUE's download script
    train: SplitFormat
    dev: SplitFormat
    test: SplitFormat
    label_list: tuple[str, ...] | None  # None: regression (STS-B)
    metric: str  # key of metrics.compute_metrics' result used to pick the best checkpoint
    dev_files: tuple[str, ...] = ("dev.tsv",)
    test_files: tuple[str, ...] = ("test.tsv",)
    submission_files: tuple[str, ...] = ()  # parallel to test_files

    @property
    def has_header(self) -> bool:
        """Whether train/dev files start with a header row (GLUE test files always do)."""
        return self.train.has_header

    @property
    def is_regression(self) -> bool:
        return self.label_list is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_list is None else len(self.label_list)

    def split_format(self, split: str) -> SplitFormat:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        return getattr(self, split)


def _single(n: int, text: int, label: int | None, header: bool = True) -> SplitFormat:
    return SplitFormat(n, text, None, label, header)


def _pair(n: int, a: int, label: int | None) -> SplitFormat:
    return SplitFormat(n, a, a + 1, label)


_NLI = ("entailment", "not_entailment")
_BINARY = ("0", "1")

GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        # CoLA train/dev: source, label, original mark, sentence -- and no header row.
        TaskSpec("COLA", "CoLA", _single(4, 3, 1, header=False), _single(4, 3, 1, header=False),
                 _single(2, 1, None), _BINARY, "mcc", submission_files=("CoLA.tsv",)),
        TaskSpec("SST-2", "SST-2", _single(2, 0, 1), _single(2, 0, 1), _single(2, 1, None),
                 _BINARY, "accuracy", submission_files=("SST-2.tsv",)),
        TaskSpec("MRPC", "MRPC", _pair(5, 3, 0), _pair(5, 3, 0), _pair(5, 3, None),
                 _BINARY, "acc_and_f1", submission_files=("MRPC.tsv",)),
        TaskSpec("STS-B", "STS-B", _pair(10, 7, 9), _pair(10, 7, 9), _pair(9, 7, None),
                 None, "corr", submission_files=("STS-B.tsv",)),
        TaskSpec("QQP", "QQP", _pair(6, 3, 5), _pair(6, 3, 5), _pair(3, 1, None),
                 _BINARY, "acc_and_f1", submission_files=("QQP.tsv",)),
        # MNLI train has 12 columns, dev 16 (five annotator labels); gold_label is last in both.
        TaskSpec("MNLI", "MNLI", _pair(12, 8, 11), _pair(16, 8, 15), _pair(10, 8, None),
                 ("contradiction", "entailment", "neutral"), "accuracy",
                 dev_files=("dev_matched.tsv", "dev_mismatched.tsv"),
                 test_files=("test_matched.tsv", "test_mismatched.tsv"),
                 submission_files=("MNLI-m.tsv", "MNLI-mm.tsv")),
        TaskSpec("QNLI", "QNLI", _pair(4, 1, 3), _pair(4, 1, 3), _pair(3, 1, None),
                 _NLI, "accuracy", submission_files=("QNLI.tsv",)),
        TaskSpec("RTE", "RTE", _pair(4, 1, 3), _pair(4, 1, 3), _pair(3, 1, None),
                 _NLI, "accuracy", submission_files=("RTE.tsv",)),
        TaskSpec("WNLI", "WNLI", _pair(4, 1, 3), _pair(4, 1, 3), _pair(3, 1, None),
                 _BINARY, "accuracy", submission_files=("WNLI.tsv",)),
    )
}


def _alias_key(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


_ALIASES = {_alias_key(key): key for key in GLUE_TASKS}


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Look a task up by name, case-insensitively; "sst2", "sts-b", "STSB" all work."""
    if isinstance(name, TaskSpec):
        return name
    key = _ALIASES.get(_alias_key(str(name)))
    if key is None:
        raise ValueError(f"unknown GLUE task {name!r}: known tasks are {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def split_files(task: str | TaskSpec, data_dir: str | Path, split: str) -> list[Path]:
    """Paths of one split's files inside a task directory (e.g. glue_data/MNLI)."""
    spec = get_task(task)
    spec.split_format(split)  # validates the split name
    names = {"train": ("train.tsv",), "dev": spec.dev_files, "test": spec.test_files}[split]
    return [Path(data_dir) / name for name in names]


def required_files(task: str | TaskSpec, data_dir: str | Path,
                   splits: Sequence[str] = ("train", "dev")) -> list[Path]:
    """Files a task directory must hold for the given splits, for error messages and checks."""
    return [path for split in splits for path in split_files(task, data_dir, split)]


@dataclass
class Example:
    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None  # str for classification, float for STS-B, None unlabelled


def _check_exists(path: Path, hint: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; {hint}")


def _tsv_rows(path: Path) -> Iterator[list[str] | None]:
    """Yield the rows of a GLUE TSV; None for a line the csv module cannot parse."""
    # utf-8-sig drops MRPC's BOM; QUOTE_NONE because GLUE text has unbalanced quote characters.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield None
                continue
            if row:  # blank lines are not rows
                yield row


def _parse_label(raw: str, spec: TaskSpec) -> str | float | None:
    """Label of one row, or None when it is missing or invalid."""
    raw = raw.strip()
    if not raw:
        return None
    if spec.label_list is not None:
        return raw if raw in spec.label_list else None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _row_example(row: list[str] | None, fmt: SplitFormat, spec: TaskSpec,
                 guid: str) -> Example | None:
    if row is None or len(row) != fmt.n_columns:
        return None
    label = None
    if fmt.label is not None:
        label = _parse_label(row[fmt.label], spec)
        if label is None:
            return None
    text_b = row[fmt.text_b] if fmt.text_b is not None else None
    return Example(guid, row[fmt.text_a], text_b, label)


def _no_rows_error(path: Path, skipped: int, why: str) -> ValueError:
    return ValueError(f"{path} holds no usable rows ({skipped} malformed rows skipped; {why})")


def read_glue_tsv(path: str | Path, task: str | TaskSpec,
                  split: str) -> tuple[list[Example], int]:
    """Read one GLUE TSV file as shipped; returns (examples, number of malformed rows skipped).

    `split` is "train", "dev" or "test" (MNLI's dev_matched/dev_mismatched are "dev").
    """
    spec, path = get_task(task), Path(path)
    fmt = spec.split_format(split)
    needed = ", ".join(p.name for p in required_files(spec, path.parent, ("train", "dev")))
    _check_exists(path, f"GLUE {spec.name} needs {needed} in its directory. {GLUE_DATA_FILES}")
    rows = _tsv_rows(path)
    if fmt.has_header:
        next(rows, None)
    examples, skipped = [], 0
    for index, row in enumerate(rows):
        example = _row_example(row, fmt, spec, f"{split}-{index}")
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    if not examples:
        why = f"{spec.name} {split} rows need {fmt.n_columns} tab-separated columns"
        raise _no_rows_error(path, skipped, why)
    return examples, skipped


def _json_pair(line: str, guid: str) -> Example | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    text_a, text_b = record.get("sentence1"), record.get("sentence2")
    if not isinstance(text_a, str) or not isinstance(text_b, str):
        return None
    if "label" not in record or record["label"] is None:
        return Example(guid, text_a, text_b, None)
    label = str(record["label"]).strip()
    return Example(guid, text_a, text_b, label) if label in ("0", "1") else None


def _read_jsonl_pairs(path: Path) -> tuple[list[Example], int]:
    examples, skipped = [], 0
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line for line in handle if line.strip()]
    for index, line in enumerate(lines):
        example = _json_pair(line, f"pair-{index}")
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    return examples, skipped


def _read_tsv_pairs(path: Path) -> tuple[list[Example], int]:
    rows = _tsv_rows(path)
    header = next(rows, None) or []
    if "question1" not in header or "question2" not in header:
        raise ValueError(f"{path}: not a GLUE QQP TSV (header needs question1 and question2 "
                         f"columns, found {header[:6]})")
    q1, q2 = header.index("question1"), header.index("question2")
    label_col = header.index("is_duplicate") if "is_duplicate" in header else None
    fmt = SplitFormat(len(header), q1, q2, label_col)
    spec = GLUE_TASKS["QQP"]
    examples, skipped = [], 0
    for index, row in enumerate(rows):
        example = _row_example(row, fmt, spec, f"pair-{index}")
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    return examples, skipped


def _looks_like_jsonl(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".json"):
        return True
    if path.suffix.lower() == ".tsv":
        return False
    with open(path, encoding="utf-8-sig") as handle:
        first = next((line for line in handle if line.strip()), "")
    return first.lstrip().startswith("{")


def read_pairs(path: str | Path) -> tuple[list[Example], int]:
    """Read QQP sentence pairs from a GLUE QQP TSV or JSON lines (sentence1, sentence2[, label]).

    Labels are "0"/"1" strings as in GLUE_TASKS["QQP"].label_list, or None when absent.
    Returns (examples, number of malformed rows skipped).
    """
    path = Path(path)
    _check_exists(path, "pass a GLUE QQP TSV (train/dev/test.tsv) or a JSON-lines file of "
                        '{"sentence1", "sentence2", "label"} objects')
    reader = _read_jsonl_pairs if _looks_like_jsonl(path) else _read_tsv_pairs
    examples, skipped = reader(path)
    if not examples:
        raise _no_rows_error(path, skipped, "expected QQP question pairs")
    return examples, skipped


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
                 labels: Sequence[int] | Sequence[float] | np.ndarray | None = None) -> list[Batch]:
    """Split encoded rows into dynamically padded batches.

    With sort_by_length the rows are ordered by length first (stable), which cuts padding;
    each batch's `indices` say where its rows came from (see `restore_order`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    label_array = _label_array(labels, len(encoded))
    order = list(range(len(encoded)))
    if sort_by_length:
        order.sort(key=lambda i: len(encoded[i][0]))
    return [_pad_batch(encoded, order[start:start + batch_size], pad_id, label_array)
            for start in range(0, len(order), batch_size)]


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
