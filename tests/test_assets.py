"""The files shipped in squeezebert_paddle/assets: the vocab is the checkpoints' own, the GLUE-format
sample reads completely through the project's readers in every task's layout, looks like QQP where it
stands in for QQP, is what tools/make_glue_sample.py writes, and shares no text with the real data;
and the scripts' defaults fall back to these files."""
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import transformers

from helpers import ROOT
from squeezebert_paddle import qqp_benchmark
from squeezebert_paddle.assets import SAMPLE_GLUE_DIR, SAMPLE_QQP_DEV, VOCAB_FILE
from squeezebert_paddle.data import GLUE_TASKS, read_glue_tsv, read_pairs, split_files
from squeezebert_paddle.tokenizer import SqueezeBertTokenizer

VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"   # ../shared/data/README.md
# rows of each file: (task, file, split, rows)
SAMPLE_FILES = [
    ("QQP", "train.tsv", "train", 200), ("QQP", "dev.tsv", "dev", 300), ("QQP", "test.tsv", "test", 20),
    ("COLA", "train.tsv", "train", 64), ("COLA", "dev.tsv", "dev", 32), ("COLA", "test.tsv", "test", 16),
    ("SST-2", "train.tsv", "train", 96), ("SST-2", "dev.tsv", "dev", 48), ("SST-2", "test.tsv", "test", 16),
    ("MRPC", "train.tsv", "train", 128), ("MRPC", "dev.tsv", "dev", 40), ("MRPC", "test.tsv", "test", 16),
    ("STS-B", "train.tsv", "train", 80), ("STS-B", "dev.tsv", "dev", 48), ("STS-B", "test.tsv", "test", 16),
    ("RTE", "train.tsv", "train", 48), ("RTE", "dev.tsv", "dev", 24), ("RTE", "test.tsv", "test", 12),
    ("QNLI", "train.tsv", "train", 48), ("QNLI", "dev.tsv", "dev", 24), ("QNLI", "test.tsv", "test", 12),
    ("WNLI", "train.tsv", "train", 32), ("WNLI", "dev.tsv", "dev", 16), ("WNLI", "test.tsv", "test", 8),
    ("MNLI", "train.tsv", "train", 48), ("MNLI", "dev_matched.tsv", "dev", 24),
    ("MNLI", "dev_mismatched.tsv", "dev", 24), ("MNLI", "test_matched.tsv", "test", 12),
    ("MNLI", "test_mismatched.tsv", "test", 12),
]


def sample_path(task: str, name: str) -> Path:
    return SAMPLE_GLUE_DIR / GLUE_TASKS[task].dir_name / name


def qqp_sample(split: str):
    return read_pairs(SAMPLE_GLUE_DIR / "QQP" / f"{split}.tsv")[0]


def test_shipped_vocab_is_the_checkpoints_vocab():
    data = VOCAB_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == VOCAB_SHA256
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == 30522
    assert [lines[i] for i in (0, 100, 101, 102, 103)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_sample_has_every_file_each_task_reads():
    listed = {(GLUE_TASKS[task].dir_name, name) for task, name, _, _ in SAMPLE_FILES}
    needed = {(path.parent.name, path.name) for spec in GLUE_TASKS.values()
              for split in ("train", "dev", "test") for path in split_files(spec, spec.dir_name, split)}
    on_disk = {(path.parent.name, path.name) for path in SAMPLE_GLUE_DIR.glob("*/*.tsv")}
    assert listed == needed == on_disk


@pytest.mark.parametrize("task,name,split,rows", SAMPLE_FILES, ids=[f"{t}/{n}" for t, n, _, _ in SAMPLE_FILES])
def test_sample_file_reads_completely_with_both_labels(task, name, split, rows):
    spec = GLUE_TASKS[task]
    examples, skipped = read_glue_tsv(sample_path(task, name), task, split)
    assert (len(examples), skipped) == (rows, 0)
    assert all((e.text_b is not None) == (spec.train.text_b is not None) for e in examples)
    assert all(e.text_a.strip() and (e.text_b is None or e.text_b.strip()) for e in examples)
    labels = [e.label for e in examples]
    if split == "test":
        assert labels == [None] * rows
    elif spec.is_regression:
        assert all(isinstance(x, float) and 0.0 <= x <= 5.0 for x in labels)
        assert min(labels) < 1.0 and max(labels) > 4.0
    else:
        assert set(labels) == set(spec.label_list)               # every label, nothing else
    assert len({(e.text_a, e.text_b) for e in examples}) == rows  # no repeated row


def test_sample_layouts_match_glue():
    first = {f"{t}/{n}": sample_path(t, n).read_bytes().split(b"\n", 1)[0] for t, n, _, _ in SAMPLE_FILES}
    assert first["MRPC/train.tsv"] == first["MRPC/dev.tsv"] == "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String".encode()
    assert first["MRPC/test.tsv"] == b"index\t#1 ID\t#2 ID\t#1 String\t#2 String"       # no BOM
    assert first["QQP/dev.tsv"] == b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    assert first["QQP/test.tsv"] == b"id\tquestion1\tquestion2"
    assert first["COLA/test.tsv"] == first["SST-2/test.tsv"] == b"index\tsentence"
    assert first["STS-B/train.tsv"].endswith(b"\tsentence1\tsentence2\tscore")
    assert first["MNLI/train.tsv"].endswith(b"\tsentence1\tsentence2\tlabel1\tgold_label")
    assert first["MNLI/dev_matched.tsv"].endswith(b"\tlabel4\tlabel5\tgold_label")
    for name in ("COLA/train.tsv", "COLA/dev.tsv"):                                  # no header row
        source, label, mark, _ = first[name].decode().split("\t")
        assert label in ("0", "1") and mark == ("*" if label == "0" else "")
    sst = sample_path("SST-2", "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert all(line.endswith((" \t0", " \t1")) for line in sst)                      # GLUE's trailing space


def test_mnli_gold_label_is_the_annotators_majority():
    for name in ("dev_matched.tsv", "dev_mismatched.tsv"):
        rows = [line.split("\t") for line in sample_path("MNLI", name).read_text(encoding="utf-8").splitlines()[1:]]
        for row in rows:
            (label, votes), = Counter(row[10:15]).most_common(1)
            assert label == row[15] and votes >= 3
    genres = {line.split("\t")[3] for line in sample_path("MNLI", "dev_mismatched.tsv").read_text().splitlines()[1:]}
    assert genres.isdisjoint({"fiction", "government", "slate", "telephone", "travel"})     # the unseen genres


def test_qqp_sample_looks_like_qqp():
    tokenizer = SqueezeBertTokenizer(VOCAB_FILE)
    labelled = qqp_sample("train") + qqp_sample("dev")
    for split in ("train", "dev"):
        share = np.mean([e.label == "1" for e in qqp_sample(split)])
        assert 0.33 <= share <= 0.41, (split, share)                 # QQP: 36.9% duplicates
    every = labelled + qqp_sample("test")
    lengths = np.array([len(ids) for ids, _ in tokenizer.encode_pairs(
        [e.text_a for e in every], [e.text_b for e in every], 10_000)])
    assert 27 <= lengths.mean() <= 35, lengths.mean()                # real QQP pairs: 30.8 WordPiece tokens
    assert (lengths >= 55).sum() >= 10 and lengths.min() <= 20        # a long tail and short ones
    pairs = [frozenset((e.text_a, e.text_b)) for e in every]
    assert len(set(pairs)) == len(pairs)                             # no pair twice, in any split or order
    assert all(e.text_a != e.text_b for e in every)

    def shared_words(e):
        words = [set(re.findall(r"[a-z]{4,}", t.lower())) for t in (e.text_a, e.text_b)]
        return len(words[0] & words[1])
    # non-duplicates are mostly about the same thing, not random pairs
    assert np.mean([shared_words(e) >= 1 for e in labelled if e.label == "0"]) > 0.6


def test_qqp_sample_ids_as_in_glue():
    rows = [line.split("\t") for name in ("train.tsv", "dev.tsv")
            for line in (SAMPLE_GLUE_DIR / "QQP" / name).read_text(encoding="utf-8").splitlines()[1:]]
    assert len({row[0] for row in rows}) == len(rows)                 # pair ids unique
    qid_of = {}
    for _, qid1, qid2, q1, q2, _ in rows:                             # one qid per question text
        assert qid_of.setdefault(q1, qid1) == qid1 and qid_of.setdefault(q2, qid2) == qid2
    assert len(set(qid_of.values())) == len(qid_of)


def test_our_tokenizer_matches_hf_on_the_qqp_sample():
    """The tokenizer identity test on the shipped pairs (the 8,999 real pairs are in test_tokenizer.py)."""
    every = qqp_sample("train") + qqp_sample("dev") + qqp_sample("test")
    a, b = [e.text_a for e in every], [e.text_b for e in every]
    ref = transformers.SqueezeBertTokenizer(str(VOCAB_FILE))(a, b, max_length=64, truncation="longest_first")
    got = SqueezeBertTokenizer(VOCAB_FILE).encode_pairs(a, b, 64)
    assert got == [(list(i), list(t)) for i, t in zip(ref["input_ids"], ref["token_type_ids"])]
    assert sum(len(ids) == 64 for ids, _ in got) >= 3                  # truncation reached


def test_generator_rebuilds_the_shipped_sample(tmp_path):
    out = tmp_path / "glue_sample"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_glue_sample.py"), "--output_dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shipped = sorted(p.relative_to(SAMPLE_GLUE_DIR) for p in SAMPLE_GLUE_DIR.rglob("*") if p.is_file())
    assert shipped == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert all((out / rel).read_bytes() == (SAMPLE_GLUE_DIR / rel).read_bytes() for rel in shipped)
    assert "QQP dev: 300 pairs, 37.0% duplicates, mean " in proc.stdout


def _real_texts(real_qqp_jsonl: Path, real_glue_dir: Path) -> set[str]:
    texts = set()
    for line in real_qqp_jsonl.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        texts.update((record["sentence1"], record["sentence2"]))
    for path in real_glue_dir.glob("*/*.tsv"):
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            texts.update(line.split("\t"))
    return {" ".join(t.lower().split()) for t in texts}


def test_sample_copies_no_text_of_the_real_data(real_qqp_jsonl, real_glue_dir):
    real = _real_texts(real_qqp_jsonl, real_glue_dir)
    ours = {" ".join(t.lower().split()) for task, name, split, _ in SAMPLE_FILES
            for e in read_glue_tsv(sample_path(task, name), task, split)[0] for t in (e.text_a, e.text_b) if t}
    assert len(ours) > 1500 and len(real) > 20_000
    copied = sorted(t for t in ours & real if len(t.split()) > 2)    # "dull and flat ." may occur anywhere
    assert not copied, copied[:5]


# -- the scripts' defaults fall back to the shipped files -------------------------------------------

def test_qqp_default_data_is_glue_dev_then_the_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert qqp_benchmark.default_data_path() == SAMPLE_QQP_DEV
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("NOTE: ") and str(SAMPLE_QQP_DEV) in out[0]
    assert "written for this project (not GLUE's dev set)" in out[0] and "--data_path" in out[0]
    assert "run_glue.py --task_name QQP --download" in out[0]
    for found in (qqp_benchmark.DOWNLOADED_DATA, qqp_benchmark.DEFAULT_DATA):     # the latter wins
        found.parent.mkdir(parents=True)
        found.write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n", encoding="utf-8")
        assert qqp_benchmark.default_data_path() == found and capsys.readouterr().out == ""
    args = qqp_benchmark.build_parser("test").parse_args([])
    assert args.data_path is None                         # resolved when the data is read, with the note


def test_vocab_defaults_are_the_shipped_vocab(monkeypatch, tmp_path):
    import convert_torch_to_paddle
    monkeypatch.delenv("SQUEEZEBERT_VOCAB", raising=False)
    assert qqp_benchmark.build_parser("test").parse_args([]).vocab == VOCAB_FILE
    assert convert_torch_to_paddle.parse_args(["--demo"]).vocab == VOCAB_FILE
    monkeypatch.setenv("SQUEEZEBERT_VOCAB", str(tmp_path / "v.txt"))
    assert qqp_benchmark.build_parser("test").parse_args([]).vocab == tmp_path / "v.txt"
    assert convert_torch_to_paddle.parse_args(["--demo"]).vocab == tmp_path / "v.txt"


# -- package metadata ---------------------------------------------------------------------------------

def test_pyproject_ships_every_package_data_file():
    """`pip install .` copies what package-data names: every non-Python file of the package must match."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["squeezebert_paddle"]
    package = ROOT / "squeezebert_paddle"
    data_files = {p.relative_to(package).as_posix() for p in package.rglob("*")
                  if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts}
    covered = {f for f in data_files if any(_glob_match(f, pattern) for pattern in patterns)}
    assert data_files and covered == data_files, sorted(data_files - covered)
    assert {"assets/vocab.txt", "assets/glue_sample/QQP/dev.tsv", "kernels/fused_cpu.cc", "kernels/inference_cpu.cc",
            "kernels/onednn_c_api.h"} <= covered


def _glob_match(path: str, pattern: str) -> bool:
    """setuptools' package-data glob: `**` spans directories, `*` does not."""
    regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None
