"""Readers of GLUE TSV files and of QQP pairs (GLUE QQP TSV or JSON lines).

Framework-free (standard library and numpy). Readers never drop a row silently: every malformed row
is skipped and counted, and the count is returned beside the examples so callers can report it.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .tasks import GLUE_DATA_FILES, GLUE_TASKS, SplitFormat, TaskSpec, get_task, required_files


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


def _kept(parsed: Iterable[Example | None]) -> tuple[list[Example], int]:
    """The examples parsed, and the number of rows that were not (None)."""
    examples, skipped = [], 0
    for example in parsed:
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    return examples, skipped


def _not_utf8_error(path: Path, kind: str) -> ValueError:
    """The one-line error for a file that does not decode as UTF-8, naming the first bad byte and its
    line (found in the raw bytes: a text stream's error only knows its position in one buffer)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        where = "an undecodable byte"             # the file changed since it was read
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        where = f"byte 0x{data[err.start]:02x} at line {line}"
    return ValueError(f"{path}: not UTF-8 text ({where}); {kind} are UTF-8: re-download or re-encode it")


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
    try:
        if fmt.has_header:
            next(rows, None)
        parsed = (_row_example(row, fmt, spec, f"{split}-{index}") for index, row in enumerate(rows))
        examples, skipped = _kept(parsed)
    except UnicodeDecodeError:
        raise _not_utf8_error(path, "GLUE files") from None
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
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line for line in handle if line.strip()]
    return _kept(_json_pair(line, f"pair-{index}") for index, line in enumerate(lines))


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
    return _kept(_row_example(row, fmt, spec, f"pair-{index}") for index, row in enumerate(rows))


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
    try:
        reader = _read_jsonl_pairs if _looks_like_jsonl(path) else _read_tsv_pairs
        examples, skipped = reader(path)
    except UnicodeDecodeError:
        raise _not_utf8_error(path, "GLUE QQP files and JSON lines") from None
    if not examples:
        raise _no_rows_error(path, skipped, "expected QQP question pairs")
    return examples, skipped
