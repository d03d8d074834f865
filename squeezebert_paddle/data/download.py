"""Fetch a GLUE task (network) and write it out as GLUE's original TSV files, so that the one TSV
reader (`readers.read_glue_tsv`) reads downloaded data exactly like data from GLUE's own script.

The source is the Hugging Face dataset `nyu-mll/glue` (through the `datasets` library); a fallback
the caller passes (run_glue.py: PaddleNLP's GLUE download, whose hosts are often unreachable) is
tried only when the hub fails. Framework-free: `datasets` is imported when a download starts.

The hub has the texts, the label and an index; GLUE's other columns (MNLI's parses and annotator
labels, QQP's question ids, STS-B's genre, ...) are left empty. Each file is written atomically, after
the whole task has been fetched and converted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..fileio import atomic_write_bytes, atomic_write_text
from .tasks import GLUE_TASKS, GlueDataError, TaskSpec, sample_data_dir, split_files

logger = logging.getLogger("squeezebert_paddle.data")

HUB_DATASET = "nyu-mll/glue"

_STSB = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
_MNLI = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
         "sentence1_parse", "sentence2_parse", "sentence1", "sentence2")
_MRPC = ("#1 ID", "#2 ID", "#1 String", "#2 String")
_PAIR = ("index", "sentence1", "sentence2")
_QNLI = ("index", "question", "sentence")


@dataclass(frozen=True)
class HubLayout:
    """How one task sits on the hub, and the header rows of GLUE's files."""

    config: str                                # configuration name of nyu-mll/glue
    text_fields: tuple[str, ...]               # the hub's columns for text_a (and text_b)
    header: tuple[str, ...] | None             # train.tsv's (and dev's); None: no header row (CoLA)
    test_header: tuple[str, ...]
    dev_header: tuple[str, ...] | None = None  # where dev differs from train (MNLI)

    def header_of(self, split: str) -> tuple[str, ...] | None:
        if split == "test":
            return self.test_header
        return self.dev_header if split == "dev" and self.dev_header else self.header


HUB_LAYOUTS = {
    "COLA": HubLayout("cola", ("sentence",), None, ("index", "sentence")),
    "SST-2": HubLayout("sst2", ("sentence",), ("sentence", "label"), ("index", "sentence")),
    "MRPC": HubLayout("mrpc", ("sentence1", "sentence2"), ("Quality", *_MRPC), ("index", *_MRPC)),
    "STS-B": HubLayout("stsb", ("sentence1", "sentence2"), (*_STSB, "score"), _STSB),
    "QQP": HubLayout("qqp", ("question1", "question2"),
                     ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                     ("id", "question1", "question2")),
    "MNLI": HubLayout("mnli", ("premise", "hypothesis"), (*_MNLI, "label1", "gold_label"), _MNLI,
                      dev_header=(*_MNLI, "label1", "label2", "label3", "label4", "label5", "gold_label")),
    "QNLI": HubLayout("qnli", ("question", "sentence"), (*_QNLI, "label"), _QNLI),
    "RTE": HubLayout("rte", ("sentence1", "sentence2"), (*_PAIR, "label"), _PAIR),
    "WNLI": HubLayout("wnli", ("sentence1", "sentence2"), (*_PAIR, "label"), _PAIR),
}
assert set(HUB_LAYOUTS) == set(GLUE_TASKS)


def hub_split_name(file_stem: str) -> str:
    """GLUE file stem -> the hub's split: dev -> validation, dev_matched -> validation_matched."""
    return file_stem.replace("dev", "validation", 1)


def _cell(text: Any) -> str:
    # GLUE's files are read with csv's QUOTE_NONE: a tab or line break inside a text would split it.
    return " ".join(str(text).split())


def _label_text(task: TaskSpec, value: Any, names: list[str] | None) -> str:
    """The hub's label as GLUE writes it: a score with 3 decimals for STS-B, the label name where
    GLUE uses names (MNLI, QNLI, RTE), else the class index ("0"/"1")."""
    if task.is_regression:
        return f"{float(value):.3f}"
    if names and names[int(value)] in task.label_list:
        return names[int(value)]
    text = str(int(value))
    if text not in task.label_list:
        raise GlueDataError(f"{HUB_DATASET} {HUB_LAYOUTS[task.name].config}: label {value!r} does not "
                            f"map to one of GLUE {task.name}'s labels {task.label_list}")
    return text


def tsv_text(task: TaskSpec, split: str, rows: list[dict], label_names: list[str] | None) -> str:
    """One GLUE file's text from hub rows ({"idx", text fields, "label"}); `split` is train, dev or test."""
    layout, fmt = HUB_LAYOUTS[task.name], task.split_format(split)
    header = layout.header_of(split)
    lines = ["\t".join(header)] if header is not None else []
    for row in rows:
        cells = [""] * fmt.n_columns
        if header is not None and header[0] in ("index", "id"):
            cells[0] = str(row["idx"])
        cells[fmt.text_a] = _cell(row[layout.text_fields[0]])
        if fmt.text_b is not None:
            cells[fmt.text_b] = _cell(row[layout.text_fields[1]])
        if fmt.label is not None:
            cells[fmt.label] = _label_text(task, row["label"], label_names)
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def files_from_hub(task: TaskSpec) -> dict[str, str]:
    """{file name: TSV text} of the task's train, dev and (when the hub has them) test files."""
    logging.getLogger("datasets").setLevel(logging.WARNING)    # its default; not its import notices
    import datasets
    dataset = datasets.load_dataset(HUB_DATASET, HUB_LAYOUTS[task.name].config)
    files = {}
    for split in ("train", "dev", "test"):
        for path in split_files(task, ".", split):
            name = hub_split_name(path.stem)
            if name not in dataset:
                if split == "test":
                    continue
                raise GlueDataError(f"{HUB_DATASET} {HUB_LAYOUTS[task.name].config} has no split {name!r} "
                                    f"(it has {', '.join(dataset)})")
            part = dataset[name]
            names = getattr(part.features.get("label"), "names", None)
            files[path.name] = tsv_text(task, split, part.to_list(), names)
    return files


Fallback = tuple[str, Callable[[TaskSpec], dict[str, bytes]]]     # (what it is, task -> {file: bytes})


def _from_fallback(task: TaskSpec, fallback: Fallback | None, hub_error: BaseException) -> dict[str, bytes]:
    problem = f"from the Hugging Face hub ({_one_line(hub_error)})"
    if fallback is not None:
        name, fetch = fallback
        logger.warning("the Hugging Face hub failed (%s); trying %s", _one_line(hub_error), name)
        try:
            return dict(fetch(task))
        except Exception as err:  # noqa: BLE001 -- every failure ends in the one line below
            problem += f" nor with {name} ({_one_line(err)})"
    raise GlueDataError(f"could not download GLUE {task.name} {problem}; without network use --data_dir "
                        f"with GLUE TSV files, or the shipped sample: --data_dir {sample_data_dir(task)}")


def download_glue(task: TaskSpec, target: str | Path, fallback: Fallback | None = None) -> Path:
    """Fetch `task` from the hub (else with `fallback`, which returns the bytes of GLUE's own
    files) and write its GLUE TSV files into `target`; one-line GlueDataError when nothing can."""
    target = Path(target)
    logger.info("downloading GLUE %s from the Hugging Face hub (%s) into %s", task.name, HUB_DATASET, target)
    try:
        files: dict[str, str | bytes] = dict(files_from_hub(task))
    except GlueDataError:
        raise
    except Exception as hub_error:  # noqa: BLE001 -- offline, missing library, hub errors
        files = dict(_from_fallback(task, fallback, hub_error))
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        write = atomic_write_text if isinstance(content, str) else atomic_write_bytes
        write(target / name, content)
    logger.info("wrote %s into %s", ", ".join(files), target)
    return target
