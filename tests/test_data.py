"""Tests of squeezebert_paddle.data against the real GLUE/QQP samples and hand-made bad files."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from squeezebert_paddle.data import (
    GLUE_TASKS, Example, encode_examples, encode_labels, get_task, make_batches, read_glue_tsv,
    read_pairs, required_files, restore_order, split_files,
)

ROOT = Path(__file__).resolve().parents[1]

# (task, file stem, split, rows read). Counts checked by hand: `wc -l` minus the header row, except
# CoLA (no header) whose dev.tsv lacks a final newline, so wc reports 1042 for its 1043 rows.
GLUE_SAMPLES = [
    ("CoLA", "train", "train", 315), ("CoLA", "dev", "dev", 1043),
    ("SST-2", "train", "train", 500), ("SST-2", "dev", "dev", 872),
    ("MRPC", "train", "train", 303), ("MRPC", "dev", "dev", 408),
    ("STS-B", "train", "train", 308), ("STS-B", "dev", "dev", 1500),
    ("QQP", "train", "train", 329), ("QQP", "dev", "dev", 9), ("QQP", "test", "test", 9),
    ("MNLI", "train", "train", 480), ("MNLI", "dev_matched", "dev", 1),
    ("MNLI", "dev_mismatched", "dev", 1),
    ("RTE", "train", "train", 301), ("RTE", "dev", "dev", 277),
]


def _read(glue_dir, task, stem, split):
    return read_glue_tsv(glue_dir / task / f"{stem}.tsv", task, split)


@pytest.mark.parametrize("task,stem,split,rows", GLUE_SAMPLES)
def test_real_glue_files_read_completely(glue_dir, task, stem, split, rows):
    examples, skipped = _read(glue_dir, task, stem, split)
    assert (len(examples), skipped) == (rows, 0)
    spec = get_task(task)
    pair_task = spec.train.text_b is not None
    assert all((e.text_b is not None) == pair_task for e in examples)
    if split == "test":
        assert all(e.label is None for e in examples)
    elif spec.is_regression:
        assert all(isinstance(e.label, float) and 0.0 <= e.label <= 5.0 for e in examples)
    else:
        assert {e.label for e in examples} <= set(spec.label_list)


def test_real_glue_known_rows(glue_dir):
    cola, _ = _read(glue_dir, "CoLA", "train", "train")  # no header: first line is data
    assert cola[0] == Example("train-0", "Bill seems to be obnoxious, but I don't think that Sam tends.",
                              None, "0")
    cola_dev, _ = _read(glue_dir, "CoLA", "dev", "dev")  # last line has no newline
    assert (cola_dev[-1].text_a, cola_dev[-1].label) == ("John talked to Bill about himself.", "1")
    assert sum(e.label == "1" for e in cola_dev) == 721
    sst, _ = _read(glue_dir, "SST-2", "dev", "dev")  # trailing space before the tab is kept
    assert (sst[0].text_a, sst[0].label) == ("it 's a charming and often affecting journey . ", "1")
    mrpc, _ = _read(glue_dir, "MRPC", "dev", "dev")  # BOM header skipped; quotes are plain text
    assert mrpc[0].text_b.startswith('" The foodservice pie business does not fit')
    assert (mrpc[0].label, sum(e.label == "1" for e in mrpc)) == ("1", 279)
    stsb, _ = _read(glue_dir, "STS-B", "train", "train")
    assert (stsb[0].text_a, stsb[0].text_b, stsb[0].label) == (
        "sheep standing in afield.", "A sheep grazing in a field.", 3.2)
    mnli, _ = _read(glue_dir, "MNLI", "dev_mismatched", "dev")  # 16 columns, gold label last
    assert (mnli[0].text_b, mnli[0].label) == (
        "Your contributions were of no help with our students' education.", "contradiction")
    mnli_train, _ = _read(glue_dir, "MNLI", "train", "train")
    assert [sum(e.label == lab for e in mnli_train) for lab in GLUE_TASKS["MNLI"].label_list] == [160] * 3
    rte, _ = _read(glue_dir, "RTE", "dev", "dev")
    assert '"The burden of proof in the Scott Parkin' in rte[-1].text_a
    assert rte[-1].label == "not_entailment"


def test_task_table_and_lookup():
    assert list(GLUE_TASKS) == ["COLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"]
    for alias, name in [("sst2", "SST-2"), ("Sst-2", "SST-2"), ("sts-b", "STS-B"), ("STSB", "STS-B"),
                        ("cola", "COLA"), ("qqp", "QQP"), ("mnli", "MNLI")]:
        assert get_task(alias).name == name
    with pytest.raises(ValueError, match="unknown GLUE task 'squad'.*QQP"):
        get_task("squad")
    assert GLUE_TASKS["MNLI"].label_list == ("contradiction", "entailment", "neutral")
    assert GLUE_TASKS["QNLI"].label_list == GLUE_TASKS["RTE"].label_list == ("entailment", "not_entailment")
    assert GLUE_TASKS["STS-B"].label_list is None and GLUE_TASKS["STS-B"].num_labels == 1
    assert GLUE_TASKS["MNLI"].submission_files == ("MNLI-m.tsv", "MNLI-mm.tsv")
    assert GLUE_TASKS["COLA"].submission_files == ("CoLA.tsv",)
    assert not GLUE_TASKS["COLA"].has_header and GLUE_TASKS["COLA"].test.has_header
    assert GLUE_TASKS["QQP"].test.n_columns == 3 and GLUE_TASKS["MNLI"].test.n_columns == 10


def test_required_and_split_files(tmp_path):
    assert [p.name for p in required_files("mnli", tmp_path)] == [
        "train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"]
    assert split_files("MNLI", tmp_path, "test") == [tmp_path / "test_matched.tsv",
                                                     tmp_path / "test_mismatched.tsv"]
    assert required_files("qqp", tmp_path, ("test",)) == [tmp_path / "test.tsv"]
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        split_files("qqp", tmp_path, "valid")


def _write(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_malformed_glue_rows_are_skipped_and_counted(tmp_path):
    rows = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            "1\t2\t3\tgood one?\tgood two?\t1",
            "2\t3\t4\tonly five columns\t0",          # wrong column count
            "3\t4\t5\tq1\tq2\t",                       # empty label
            "4\t5\t6\tq1\tq2\t2",                      # label not in label_list
            "",                                        # blank line: not a row
            '5\t6\t7\t"unbalanced quote\tq2\t0']
    examples, skipped = read_glue_tsv(_write(tmp_path / "train.tsv", rows), "qqp", "train")
    assert skipped == 3
    assert [(e.guid, e.text_a, e.label) for e in examples] == [
        ("train-0", "good one?", "1"), ("train-4", '"unbalanced quote', "0")]


def test_stsb_bad_scores_and_cola_without_header(tmp_path):
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    row = "0\tg\tf\t2012\t0\tnone\tnone\tA man.\tA woman.\t{}"
    path = _write(tmp_path / "dev.tsv", [head] + [row.format(s) for s in ("1.5", "abc", "nan", "", "4")])
    examples, skipped = read_glue_tsv(path, "sts-b", "dev")
    assert ([e.label for e in examples], skipped) == ([1.5, 4.0], 3)
    cola = _write(tmp_path / "cola.tsv", ["src\t1\t\tFirst.", "src\t0\t*\tSecond.", "src\tyes\t\tBad."])
    examples, skipped = read_glue_tsv(cola, "cola", "train")
    assert ([(e.text_a, e.label) for e in examples], skipped) == ([("First.", "1"), ("Second.", "0")], 1)


def test_glue_file_errors(tmp_path, glue_dir):
    with pytest.raises(FileNotFoundError, match=r"dev_matched.tsv not found.*train.tsv, "
                                                r"dev_matched.tsv, dev_mismatched.tsv"):
        read_glue_tsv(tmp_path / "dev_matched.tsv", "mnli", "dev")
    # A 16-column MNLI dev file read as train (12 columns) has no usable rows: a clear error.
    with pytest.raises(ValueError, match=r"dev_matched.tsv holds no usable rows \(1 malformed"):
        read_glue_tsv(glue_dir / "MNLI" / "dev_matched.tsv", "mnli", "train")
    with pytest.raises(ValueError, match="unknown split"):
        read_glue_tsv(glue_dir / "QQP" / "dev.tsv", "qqp", "validation")


def test_read_pairs_real_files(qqp_jsonl, glue_dir):
    examples, skipped = read_pairs(qqp_jsonl)
    assert (len(examples), skipped) == (8999, 0)
    assert examples[0] == Example(
        "pair-0", "How do I get inside University College London being an Indian?",
        "Which is better, masters in computer science at Arizona State University or University "
        "College London for a foreigner (Indian National)?", "0")
    assert sum(e.label == "1" for e in examples) == 3252
    dev, skipped = read_pairs(glue_dir / "QQP" / "dev.tsv")
    assert (len(dev), skipped, dev[0].text_b, dev[0].label) == (9, 0, "Why are hispanics so beautiful?", "0")
    test, _ = read_pairs(glue_dir / "QQP" / "test.tsv")
    assert len(test) == 9 and all(e.label is None for e in test)
    assert test[1].text_a == "What are the top ten Consumer-to-Consumer E-commerce online?"


def test_read_pairs_malformed_jsonl(tmp_path):
    lines = ['{"sentence1": "a?", "sentence2": "b?", "label": 1}',
             '{"sentence1": "c?", "sentence2": "d?"',          # bad JSON
             '{"sentence1": "e?", "label": 0}',                # missing sentence2
             '["f?", "g?"]',                                   # not an object
             '{"sentence1": "h?", "sentence2": "i?", "label": "maybe"}',
             "   ",
             '{"sentence1": "j?", "sentence2": "k?"}']         # unlabelled is fine
    examples, skipped = read_pairs(_write(tmp_path / "pairs.txt", lines))  # detected by content
    assert skipped == 4
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [("a?", "b?", "1"), ("j?", "k?", None)]


def test_read_pairs_tsv_detection_and_errors(tmp_path):
    tsv = tmp_path / "pairs.txt"
    tsv.write_text("\ufeffid\tquestion1\tquestion2\n7\tx?\ty?\n8\tbroken\n", encoding="utf-8")
    examples, skipped = read_pairs(tsv)
    assert ([(e.text_a, e.text_b, e.label) for e in examples], skipped) == ([("x?", "y?", None)], 1)
    with pytest.raises(FileNotFoundError, match="missing.jsonl not found"):
        read_pairs(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"empty.jsonl holds no usable rows \(0 malformed"):
        read_pairs(tmp_path / "empty.jsonl")
    _write(tmp_path / "other.tsv", ["a\tb", "1\t2"])
    with pytest.raises(ValueError, match="other.tsv: not a GLUE QQP TSV"):
        read_pairs(tmp_path / "other.tsv")


class FakeTokenizer:
    """[CLS]=1 + one id per word (its length + 10) + [SEP]=2, then text b with type 1."""

    def encode_pairs(self, texts_a, texts_b, max_seq_len):
        self.calls = (list(texts_a), texts_b, max_seq_len)
        out = []
        for i, text in enumerate(texts_a):
            ids = [1] + [len(w) + 10 for w in text.split()] + [2]
            types = [0] * len(ids)
            if texts_b is not None:
                extra = [len(w) + 10 for w in texts_b[i].split()] + [2]
                ids, types = ids + extra, types + [1] * len(extra)
            out.append((ids[:max_seq_len], types[:max_seq_len]))
        return out


def test_encode_examples_and_labels():
    tok = FakeTokenizer()
    pairs = [Example("a", "hi there", "yo", "entailment"), Example("b", "x", "abc d", "neutral")]
    assert encode_examples(tok, pairs, 16) == [([1, 12, 15, 2, 12, 2], [0, 0, 0, 0, 1, 1]),
                                               ([1, 11, 2, 13, 11, 2], [0, 0, 0, 1, 1, 1])]
    assert tok.calls == (["hi there", "x"], ["yo", "abc d"], 16)
    single = [Example("c", "one two three")]
    assert encode_examples(tok, single, 3) == [([1, 13, 13], [0, 0, 0])]
    assert tok.calls[1] is None
    with pytest.raises(ValueError, match="1 of 2 examples have text_b"):
        encode_examples(tok, [pairs[0], single[0]], 8)
    labels = encode_labels("mnli", pairs)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 2]
    scores = encode_labels("stsb", [Example("s", "a", "b", 3.2), Example("t", "a", "b", 0.0)])
    assert scores.dtype == np.float32 and scores.tolist() == pytest.approx([3.2, 0.0])
    with pytest.raises(ValueError, match="1 examples have no label"):
        encode_labels("mnli", single)


# Five rows of lengths 3, 5, 2, 4, 1; row i's ids are 10*(i+1) + position, type ids 0 then 1.
ENCODED = [([10 * (i + 1) + p for p in range(n)], [0] * (n // 2) + [1] * (n - n // 2))
           for i, n in enumerate([3, 5, 2, 4, 1])]


def _check_batch(batch, encoded, pad_id):
    for row, i in enumerate(batch.indices):
        ids, types = encoded[i]
        n = len(ids)
        assert batch.input_ids[row, :n].tolist() == ids
        assert batch.token_type_ids[row, :n].tolist() == types
        assert (batch.input_ids[row, n:] == pad_id).all() and (batch.token_type_ids[row, n:] == 0).all()
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (batch.input_ids.shape[1] - n)


def test_make_batches_in_input_order():
    batches = make_batches(ENCODED, batch_size=2, pad_id=7, labels=[0, 1, 1, 0, 1])
    assert [b.input_ids.shape for b in batches] == [(2, 5), (2, 4), (1, 1)]
    assert [b.indices.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[1].input_ids.tolist() == [[30, 31, 7, 7], [40, 41, 42, 43]]
    assert batches[1].attention_mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batches[1].token_type_ids.tolist() == [[0, 1, 0, 0], [0, 0, 1, 1]]
    assert [b.labels.tolist() for b in batches] == [[0, 1], [1, 0], [1]]
    for b in batches:
        assert b.input_ids.dtype == b.token_type_ids.dtype == b.attention_mask.dtype == np.int64
        assert b.labels.dtype == np.int64
        _check_batch(b, ENCODED, 7)


def test_make_batches_sorted_and_restored():
    batches = make_batches(ENCODED, batch_size=2, sort_by_length=True, labels=[0.5, 1.0, 2.0, 3.0, 4.5])
    assert [b.indices.tolist() for b in batches] == [[4, 2], [0, 3], [1]]
    assert [b.input_ids.shape for b in batches] == [(2, 2), (2, 4), (1, 5)]
    assert batches[0].labels.dtype == np.float32 and batches[0].labels.tolist() == [4.5, 2.0]
    for b in batches:
        _check_batch(b, ENCODED, 0)
    # Per-row outputs (here each row's first id) come back in the original input order.
    restored = restore_order(batches, [b.input_ids[:, 0] for b in batches])
    assert restored.tolist() == [10, 20, 30, 40, 50]
    logits = restore_order(batches, [np.stack([b.indices, -b.indices], 1) for b in batches])
    assert logits.tolist() == [[i, -i] for i in range(5)]


def test_make_batches_stable_sort_and_errors():
    ties = [([1, 2], [0, 0]), ([3], [0]), ([4, 5], [0, 0]), ([6], [0])]
    batches = make_batches(ties, batch_size=4, sort_by_length=True)
    assert batches[0].indices.tolist() == [1, 3, 0, 2] and batches[0].labels is None
    assert make_batches([], batch_size=4) == []
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        make_batches(ties, batch_size=0)
    with pytest.raises(ValueError, match=r"labels have shape \(3,\), expected \(4,\)"):
        make_batches(ties, batch_size=2, labels=[0, 1, 0])
    with pytest.raises(ValueError, match="row 0: 2 input_ids but 1 token_type_ids"):
        make_batches([([1, 2], [0])], batch_size=1)


def test_modules_do_not_import_deep_learning_frameworks():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import squeezebert_paddle.data, squeezebert_paddle.metrics, squeezebert_paddle.timing; "
            "bad = [m for m in ('paddle', 'paddlenlp', 'torch', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
