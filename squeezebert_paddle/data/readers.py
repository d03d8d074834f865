"""Readers of GLUE TSV files and of QQP pairs (GLUE QQP TSV or JSON lines).

Framework-free (standard library and numpy). Readers never drop a row silently: every malformed row
(wrong column count, a label outside the task's set or range, text that is not UTF-8, bad JSON) is
skipped and counted, and the count is returned beside the examples, with each skipped row's line and
reason (`SkippedRows`), so callers can report it. Each line is decoded on its own, so one bad byte
costs one row. A file with no usable row is a `GlueDataError` naming the file, lines and reasons.
"""
from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .tasks import (GLUE_DATA_FILES, GLUE_TASKS, GlueDataError, SplitFormat, TaskSpec, get_task,
                    required_files)


@dataclass
class Example:
    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None  # str for classification, float for STS-B, None unlabelled


STSB_RANGE = (0.0, 5.0)             # STS-B similarity scores


class SkippedRows(int):
    """The number of rows a reader skipped (an int, as before), with `.rows`: (line number, reason)
    of each, in file order."""

    rows: list[tuple[int, str]]

    def __new__(cls, rows: Iterable[tuple[int, str]] = ()):
        rows = list(rows)
        count = super().__new__(cls, len(rows))
        count.rows = rows
        return count

    def describe(self, limit: int = 3) -> str:
        """'line 42: not UTF-8 (byte 0xe9 at column 17); line 50: ... and 3 more'."""
        shown = "; ".join(f"line {line}: {reason}" for line, reason in self.rows[:limit])
        more = len(self.rows) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


class RowError(Exception):
    """Why one row is not an example (becomes a SkippedRows entry)."""


def _check_exists(path: Path, hint: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; {hint}")


def _lines(path: Path) -> Iterator[tuple[int, str | RowError]]:
    """(line number, text) of each non-blank line, the text decoded on its own (a RowError when it
    is not UTF-8). Lines end at \n only (a stray \r or form feed inside GLUE text stays text)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            raw = raw.rstrip(b"\n")
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            if number == 1 and raw.startswith(codecs.BOM_UTF8):     # MRPC's files start with one
                raw = raw[len(codecs.BOM_UTF8):]
            if not raw:
                continue                                            # blank lines are not rows
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, RowError(f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})")


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str] | RowError]]:
    """(line number, tab-separated fields) of each row of a GLUE TSV (GLUE's text is not quoted)."""
    for number, text in _lines(path):
        yield number, text if isinstance(text, RowError) else text.split("\t")


def _parse_label(raw: str, spec: TaskSpec) -> str | float:
    """Label of one row; RowError when it is missing or outside the task's labels or range."""
    raw = raw.strip()
    if not raw:
        raise RowError("no label")
    if spec.label_list is not None:
        if raw not in spec.label_list:
            raise RowError(f"label {raw[:20]!r} is not one of {', '.join(spec.label_list)}")
        return raw
    try:
        value = float(raw)
    except ValueError:
        raise RowError(f"score {raw[:20]!r} is not a number") from None
    low, high = STSB_RANGE
    if math.isnan(value):
        raise RowError("score is nan")
    if not low <= value <= high:
        raise RowError(f"score {raw[:20]} is outside [{low:g}, {high:g}]")
    return value


def _row_example(row: list[str] | RowError, fmt: SplitFormat, spec: TaskSpec, guid: str) -> Example:
    if isinstance(row, RowError):
        raise row
    if len(row) != fmt.n_columns:
        raise RowError(f"{len(row)} tab-separated columns, expected {fmt.n_columns}")
    label = _parse_label(row[fmt.label], spec) if fmt.label is not None else None
    text_b = row[fmt.text_b] if fmt.text_b is not None else None
    return Example(guid, row[fmt.text_a], text_b, label)


def _kept(rows: Iterable[tuple[int, Any]], parse: Callable[[Any, int], Example]) -> tuple[list[Example], SkippedRows]:
    """The examples `parse(row, index)` makes of numbered rows, and the rows it refused (RowError)."""
    examples, skipped = [], []
    for index, (number, row) in enumerate(rows):
        try:
            examples.append(parse(row, index))
        except RowError as err:
            skipped.append((number, str(err)))
    return examples, SkippedRows(skipped)


def _no_rows_error(path: Path, skipped: SkippedRows, why: str) -> GlueDataError:
    if skipped and all(reason.startswith("not UTF-8") for _, reason in skipped.rows):
        why = "no line is UTF-8 text; GLUE files and JSON lines are UTF-8: re-download or re-encode it"
    elif skipped and all(reason == "score is nan" for _, reason in skipped.rows):
        why = "every score is nan: the file has no gold scores; use a file with STS-B's 0-5 scores"
    where = f"; {skipped.describe()}" if skipped else ""
    return GlueDataError(f"{path} holds no usable rows ({skipped} malformed rows skipped{where}); {why}")


def read_glue_tsv(path: str | Path, task: str | TaskSpec,
                  split: str) -> tuple[list[Example], SkippedRows]:
    """Read one GLUE TSV file as shipped; returns (examples, the malformed rows skipped: a count
    with their lines and reasons).

    `split` is "train", "dev" or "test" (MNLI's dev_matched/dev_mismatched are "dev").
    """
    spec, path = get_task(task), Path(path)
    fmt = spec.split_format(split)
    needed = ", ".join(p.name for p in required_files(spec, path.parent, ("train", "dev")))
    _check_exists(path, f"GLUE {spec.name} needs {needed} in its directory. {GLUE_DATA_FILES}")
    rows = _tsv_rows(path)
    if fmt.has_header:
        next(rows, None)
    examples, skipped = _kept(rows, lambda row, i: _row_example(row, fmt, spec, f"{split}-{i}"))
    if not examples:
        why = f"{spec.name} {split} rows have {fmt.n_columns} tab-separated columns and a valid label"
        if fmt.label is None:
            why = f"{spec.name} {split} rows have {fmt.n_columns} tab-separated columns"
        raise _no_rows_error(path, skipped, why)
    return examples, skipped


def _json_pair(line: str | RowError, guid: str) -> Example:
    if isinstance(line, RowError):
        raise line
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise RowError("not valid JSON") from None
    except ValueError:                      # an integer longer than Python reads (4300 digits)
        raise RowError("a number too long to read") from None
    if not isinstance(record, dict):
        raise RowError(f"a JSON {type(record).__name__}, not an object")
    text_a, text_b = record.get("sentence1"), record.get("sentence2")
    if not isinstance(text_a, str) or not isinstance(text_b, str):
        raise RowError("sentence1 and sentence2 must be strings")
    if "label" not in record or record["label"] is None:
        return Example(guid, text_a, text_b, None)
    label = str(record["label"]).strip()
    if label not in ("0", "1"):
        raise RowError(f"label {label[:20]!r} is not 0 or 1")
    return Example(guid, text_a, text_b, label)


def _read_jsonl_pairs(path: Path) -> tuple[list[Example], SkippedRows]:
    lines = ((n, text) for n, text in _lines(path) if not isinstance(text, str) or text.strip())
    return _kept(lines, lambda line, i: _json_pair(line, f"pair-{i}"))


def _read_tsv_pairs(path: Path) -> tuple[list[Example], SkippedRows]:
    rows = _tsv_rows(path)
    _, header = next(rows, (0, []))
    if isinstance(header, RowError) or "question1" not in header or "question2" not in header:
        found = header if isinstance(header, RowError) else header[:6]
        raise GlueDataError(f"{path}: not a GLUE QQP TSV (header needs question1 and question2 "
                            f"columns, found {found}) at line 1")
    q1, q2 = header.index("question1"), header.index("question2")
    label_col = header.index("is_duplicate") if "is_duplicate" in header else None
    fmt = SplitFormat(len(header), q1, q2, label_col)
    spec = GLUE_TASKS["QQP"]
    return _kept(rows, lambda row, i: _row_example(row, fmt, spec, f"pair-{i}"))


def _looks_like_jsonl(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".json"):
        return True
    if path.suffix.lower() == ".tsv":
        return False
    with open(path, "rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    return first.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"{")


def read_pairs(path: str | Path) -> tuple[list[Example], SkippedRows]:
    """Read QQP sentence pairs from a GLUE QQP TSV or JSON lines (sentence1, sentence2[, label]).

    Labels are "0"/"1" strings as in GLUE_TASKS["QQP"].label_list, or None when absent.
    Returns (examples, the malformed rows skipped: a count with their lines and reasons).
    """
    path = Path(path)
    _check_exists(path, "pass a GLUE QQP TSV (train/dev/test.tsv) or a JSON-lines file of "
                        '{"sentence1", "sentence2", "label"} objects')
    reader = _read_jsonl_pairs if _looks_like_jsonl(path) else _read_tsv_pairs
    examples, skipped = reader(path)
    if not examples:
        raise _no_rows_error(path, skipped, "expected QQP question pairs")
    return examples, skipped
