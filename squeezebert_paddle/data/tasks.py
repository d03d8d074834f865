"""The GLUE task table: each task's files, TSV column layout per split, labels and metric.

Framework-free (standard library only).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..assets import SAMPLE_GLUE_DIR
from ..errors import ExpectedError

GLUE_DATA_FILES = (
    "GLUE data layout (as written by GLUE's download script): one directory per task holding "
    "train.tsv, dev.tsv and optionally test.tsv; MNLI holds train.tsv, dev_matched.tsv, "
    "dev_mismatched.tsv, test_matched.tsv and test_mismatched.tsv."
)

SPLITS = ("train", "dev", "test")
DEFAULT_GLUE_ROOT = Path("glue_data")          # where run_glue.py looks first: glue_data/<TASK>


class GlueDataError(ExpectedError, ValueError):
    """GLUE files that are missing, unreadable or cannot be fetched; the message says what to do.
    (A ValueError too, the type the readers raised before it.)"""


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
    def is_pair(self) -> bool:
        """Whether the task's inputs are sentence pairs (else single sentences: CoLA, SST-2)."""
        return self.train.text_b is not None

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


def default_data_dir(task: TaskSpec) -> Path:
    return DEFAULT_GLUE_ROOT / task.dir_name


def sample_data_dir(task: TaskSpec) -> Path:
    return SAMPLE_GLUE_DIR / task.dir_name
