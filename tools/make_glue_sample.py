"""Write squeezebert_paddle/assets/glue_sample/: a small labelled sample in each GLUE task's TSV layout.

    python tools/make_glue_sample.py [--output_dir DIR]   # rebuilds it (seeded: the same bytes each time)

Every sentence comes from the templates in tools/sample_text_qqp.py and tools/sample_text_glue.py,
written for this project; nothing is taken from GLUE, Quora or any other dataset. The layouts follow
GLUE's files as its download script writes them (and as squeezebert_paddle.data reads them): header
rows, CoLA train/dev without one, MRPC train/dev headers with a UTF-8 BOM, STS-B's ten columns and
float scores, MNLI's 12-column train and 16-column dev files, test files without labels.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sample_text_glue as glue_text  # noqa: E402
import sample_text_qqp as qqp_text  # noqa: E402
from squeezebert_paddle.assets import SAMPLE_GLUE_DIR, VOCAB_FILE  # noqa: E402
from squeezebert_paddle.fileio import atomic_directory  # noqa: E402

SEED = 20240611
# rows per split: (train, dev, test); MNLI counts premises, each with three hypotheses
SIZES = {"QQP": (200, 300, 20), "CoLA": (64, 32, 16), "SST-2": (96, 48, 16), "MRPC": (128, 40, 16),
         "STS-B": (80, 48, 16), "RTE": (48, 24, 12), "WNLI": (32, 16, 8), "QNLI": (48, 24, 12)}
MNLI_PREMISES = {"train": 16, "dev_matched": 8, "dev_mismatched": 8, "test_matched": 4,
                 "test_mismatched": 4}
MNLI_MISMATCHED_GENRES = ("letters", "verbatim", "facetoface", "oup", "nineeleven")
QQP_DUPLICATE_SHARE = 0.37           # as in GLUE QQP

Row = list[str]


def distinct(rng: random.Random, make: Callable[[random.Random], tuple], count: int,
             key: Callable[[tuple], object] = lambda item: item, seen: set | None = None) -> list[tuple]:
    """`count` items from `make` whose keys are new (to this call and to `seen`, which is updated)."""
    seen = set() if seen is None else seen
    items = []
    for _ in range(count * 200):
        item = make(rng)
        if key(item) not in seen:
            seen.add(key(item))
            items.append(item)
            if len(items) == count:
                return items
    raise RuntimeError(f"only {len(items)} distinct items of {count}: add templates to {make.__name__}")


def split_items(rng: random.Random, make: Callable, sizes: tuple[int, ...], **kw) -> list[list[tuple]]:
    """Disjoint lists of distinct items, one per split size."""
    pool = distinct(rng, make, sum(sizes), **kw)
    starts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    return [pool[a:b] for a, b in zip(starts, starts[1:])]


# -- QQP ---------------------------------------------------------------------------------------------

def qqp_pairs(rng: random.Random, count: int, seen: set) -> list[tuple[str, str, str]]:
    """(question1, question2, "1"/"0") with round(count * 0.37) duplicates, shuffled."""
    duplicates = round(count * QQP_DUPLICATE_SHARE)

    def key(pair):
        return frozenset(pair[:2])
    labelled = [(*pair, "1") for pair in distinct(rng, qqp_text.duplicate_pair, duplicates, key, seen)]
    labelled += [(*pair, "0") for pair in distinct(rng, qqp_text.different_pair, count - duplicates, key, seen)]
    assert all(q1 != q2 for q1, q2, _ in labelled)
    rng.shuffle(labelled)
    return labelled


def qqp_files(rng: random.Random) -> dict[str, tuple[Row, list[Row]]]:
    seen, qids = set(), {}
    ids = iter(rng.sample(range(1000, 400_000), sum(SIZES["QQP"])))

    def qid(text: str) -> str:
        return str(qids.setdefault(text, len(qids) + 1))
    files = {}
    for split, count in zip(("train", "dev"), SIZES["QQP"]):
        rows = [[str(next(ids)), qid(q1), qid(q2), q1, q2, label]
                for q1, q2, label in qqp_pairs(rng, count, seen)]
        files[f"{split}.tsv"] = (["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows)
    test = qqp_pairs(rng, SIZES["QQP"][2], seen)
    files["test.tsv"] = (["id", "question1", "question2"], [[str(i), q1, q2] for i, (q1, q2, _) in enumerate(test)])
    return files


# -- the other tasks -----------------------------------------------------------------------------------

def cola_files(rng: random.Random) -> dict:
    train, dev, test = split_items(rng, glue_text.cola_item, SIZES["CoLA"], key=lambda item: item[0])

    def rows(items):      # source, label, the source's own mark ("*" = unacceptable), sentence
        return [[f"sb{rng.randint(1, 6):02d}", label, "" if label == "1" else "*", text] for text, label in items]
    return {"train.tsv": (None, rows(train)), "dev.tsv": (None, rows(dev)),
            "test.tsv": (["index", "sentence"], [[str(i), text] for i, (text, _) in enumerate(test)])}


def sst2_files(rng: random.Random) -> dict:
    train, dev, test = split_items(rng, glue_text.sst2_item, SIZES["SST-2"], key=lambda item: item[0])
    return {"train.tsv": (["sentence", "label"], [list(item) for item in train]),
            "dev.tsv": (["sentence", "label"], [list(item) for item in dev]),
            "test.tsv": (["index", "sentence"], [[str(i), text] for i, (text, _) in enumerate(test)])}


def mrpc_files(rng: random.Random) -> dict:
    splits = split_items(rng, glue_text.mrpc_item, SIZES["MRPC"], key=lambda item: item[:2])
    ids = iter(rng.sample(range(100_000, 4_000_000), 2 * sum(SIZES["MRPC"])))
    head = ["#1 ID", "#2 ID", "#1 String", "#2 String"]
    rows = [[[label, str(next(ids)), str(next(ids)), a, b] for a, b, label in items] for items in splits]
    return {"train.tsv": (["\ufeffQuality", *head], rows[0]), "dev.tsv": (["\ufeffQuality", *head], rows[1]),
            "test.tsv": (["index", *head], [[str(i), *row[1:]] for i, row in enumerate(rows[2])])}


def stsb_files(rng: random.Random) -> dict:
    splits = split_items(rng, glue_text.stsb_item, SIZES["STS-B"], key=lambda item: item[:2])
    head = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]

    def rows(items, year):
        return [[str(i), "main-captions", "MSRvid", year, f"{i:04d}", "none", "none", a, b,
                 f"{round(score * 5) / 5:.3f}"] for i, (a, b, score) in enumerate(items)]
    test = [row[:-1] for row in rows(splits[2], "2012test")]
    return {"train.tsv": ([*head, "score"], rows(splits[0], "2012train")),
            "dev.tsv": ([*head, "score"], rows(splits[1], "2012test")), "test.tsv": (head, test)}


def nli_files(rng: random.Random, task: str, make: Callable, head: list[str]) -> dict:
    """RTE, QNLI, WNLI: index, two texts, label (none in test.tsv)."""
    splits = split_items(rng, make, SIZES[task], key=lambda item: item[:2])
    labelled = [[[str(i), *item] for i, item in enumerate(items)] for items in splits]
    return {"train.tsv": ([*head, "label"], labelled[0]), "dev.tsv": ([*head, "label"], labelled[1]),
            "test.tsv": (head, [row[:-1] for row in labelled[2]])}


def _tokens(text: str) -> list[str]:
    return text.replace(",", " ,").replace(".", " .").replace("?", " ?").split()


def binary_parse(text: str) -> str:
    """A right-branching bracketing of the tokens: MNLI's parse columns, which no reader uses."""
    tokens = _tokens(text)
    tree = tokens[-1]
    for token in reversed(tokens[:-1]):
        tree = f"( {token} {tree} )"
    return tree


def flat_parse(text: str) -> str:
    tags = {"the": "DT", "a": "DT", "and": "CC", "to": "TO", ",": ",", ".": ".", "?": "."}
    return "(ROOT (S " + " ".join(f"({tags.get(t.lower(), 'NN')} {t})" for t in _tokens(text)) + "))"


def _annotators(rng: random.Random, gold: str) -> list[str]:
    """Five annotator labels, gold in at least four of them."""
    labels = [gold] * 5
    if rng.random() < 0.4:
        labels[rng.randint(1, 4)] = rng.choice([x for x in glue_text.MNLI_LABELS if x != gold])
    return labels


def mnli_files(rng: random.Random) -> dict:
    head = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
            "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
    splits = split_items(rng, glue_text.mnli_premise, tuple(MNLI_PREMISES.values()), key=lambda item: item[1])
    files = {}
    for (name, _), premises in zip(MNLI_PREMISES.items(), splits):
        rows = []
        for genre, premise, hypotheses in premises:
            prompt = rng.randint(1000, 150_000)
            if "mismatched" in name:
                genre = rng.choice(MNLI_MISMATCHED_GENRES)
            for label, hypothesis in zip(glue_text.MNLI_LABELS, hypotheses):
                row = ["", str(prompt), f"{prompt}{label[0]}", genre, binary_parse(premise),
                       binary_parse(hypothesis), flat_parse(premise), flat_parse(hypothesis), premise, hypothesis]
                row += [] if name.startswith("test") else _annotators(rng, label)[:1 if name == "train" else 5]
                rows.append(row + ([] if name.startswith("test") else [label]))
        rng.shuffle(rows)
        for index, row in enumerate(rows):
            row[0] = str(index)
        extra = [] if name.startswith("test") else ["label1", "gold_label"] if name == "train" else \
            [f"label{i}" for i in range(1, 6)] + ["gold_label"]
        files[f"{name}.tsv"] = ([*head, *extra], rows)
    return files


# -- writing -------------------------------------------------------------------------------------------

def build() -> dict[str, dict]:
    """task directory -> file name -> (header or None, rows). Each task draws from its own seeded
    generator, so editing one task's templates leaves the other files as they are."""
    def rng(task: str) -> random.Random:
        return random.Random(f"{SEED}-{task}")
    return {
        "QQP": qqp_files(rng("QQP")), "CoLA": cola_files(rng("CoLA")), "SST-2": sst2_files(rng("SST-2")),
        "MRPC": mrpc_files(rng("MRPC")), "STS-B": stsb_files(rng("STS-B")), "MNLI": mnli_files(rng("MNLI")),
        "RTE": nli_files(rng("RTE"), "RTE", glue_text.rte_item, ["index", "sentence1", "sentence2"]),
        "QNLI": nli_files(rng("QNLI"), "QNLI", glue_text.qnli_item, ["index", "question", "sentence"]),
        "WNLI": nli_files(rng("WNLI"), "WNLI", glue_text.wnli_item, ["index", "sentence1", "sentence2"]),
    }


def tsv_text(header: Row | None, rows: list[Row]) -> str:
    lines = ([header] if header else []) + rows
    for line in lines:
        if any("\t" in field or "\n" in field for field in line):
            raise ValueError(f"a field holds a tab or newline: {line}")
    return "".join("\t".join(line) + "\n" for line in lines)


def write_sample(tasks: dict[str, dict], target: Path) -> None:
    def fill(tmp: Path) -> None:
        (tmp / "README.md").write_text(README, encoding="utf-8")
        for task, files in tasks.items():
            (tmp / task).mkdir()
            for name, (header, rows) in files.items():
                (tmp / task / name).write_text(tsv_text(header, rows), encoding="utf-8")
    atomic_directory(target, fill)


def qqp_stats(directory: Path) -> str:
    """Rows, duplicate share and mean WordPiece length ([CLS] a [SEP] b [SEP]) of the QQP files."""
    from squeezebert_paddle.data import read_pairs
    from squeezebert_paddle.tokenizer import SqueezeBertTokenizer
    tokenizer = SqueezeBertTokenizer(VOCAB_FILE)
    lines = []
    for name in ("train", "dev", "test"):
        examples, _ = read_pairs(directory / "QQP" / f"{name}.tsv")
        lengths = [len(ids) for ids, _ in tokenizer.encode_pairs(
            [e.text_a for e in examples], [e.text_b for e in examples], 100_000)]
        labelled = [e.label for e in examples if e.label is not None]
        share = f"{sum(x == '1' for x in labelled) / len(labelled):.1%} duplicates, " if labelled else ""
        lines.append(f"QQP {name}: {len(examples)} pairs, {share}mean {sum(lengths) / len(lengths):.1f} "
                     f"WordPiece tokens per pair (max {max(lengths)})")
    return "\n".join(lines)


README = """# GLUE-format sample written for this project

Made by `python tools/make_glue_sample.py` from templates written for this project; no row comes from
GLUE, Quora or any other dataset. Each directory follows its GLUE task's TSV layout, so `run_glue.py`,
`run_qqp_paddle.py` and `run_qqp_torch.py` run on it offline. It is not a benchmark: a model's
figures on it say nothing about its quality. For the real data: `python run_glue.py --download`
writes GLUE's TSV files, or pass `--data_dir` / `--data_path`.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=SAMPLE_GLUE_DIR,
                        help="where to write the task directories (default: the package's glue_sample)")
    out = parser.parse_args(argv).output_dir
    write_sample(build(), out)
    for path in sorted(out.glob("*/*.tsv")):
        rows = len(path.read_text(encoding="utf-8-sig").splitlines())
        print(f"{path.relative_to(out)}: {rows} lines")
    print(qqp_stats(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
