"""Tests of squeezebert_paddle.data: the real GLUE/QQP samples, hand-made bad files, where a run finds its
files, and --download against a local stand-in of the Hugging Face hub (no network)."""
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from squeezebert_paddle.assets import SAMPLE_GLUE_DIR
from squeezebert_paddle.data import (
    GLUE_TASKS, Example, GlueDataError, encode_examples, encode_labels, get_task, locate_glue_data,
    make_batches, prepare_glue_data, read_glue_tsv, read_pairs, required_files, restore_order, split_files,
)
from squeezebert_paddle.data.download import download_glue

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
def test_real_glue_files_read_completely(real_glue_dir, task, stem, split, rows):
    examples, skipped = _read(real_glue_dir, task, stem, split)
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


def test_real_glue_known_rows(real_glue_dir):
    cola, _ = _read(real_glue_dir, "CoLA", "train", "train")  # no header: first line is data
    assert cola[0] == Example("train-0", "Bill seems to be obnoxious, but I don't think that Sam tends.",
                              None, "0")
    cola_dev, _ = _read(real_glue_dir, "CoLA", "dev", "dev")  # last line has no newline
    assert (cola_dev[-1].text_a, cola_dev[-1].label) == ("John talked to Bill about himself.", "1")
    assert sum(e.label == "1" for e in cola_dev) == 721
    sst, _ = _read(real_glue_dir, "SST-2", "dev", "dev")  # trailing space before the tab is kept
    assert (sst[0].text_a, sst[0].label) == ("it 's a charming and often affecting journey . ", "1")
    mrpc, _ = _read(real_glue_dir, "MRPC", "dev", "dev")  # BOM header skipped; quotes are plain text
    assert mrpc[0].text_b.startswith('" The foodservice pie business does not fit')
    assert (mrpc[0].label, sum(e.label == "1" for e in mrpc)) == ("1", 279)
    stsb, _ = _read(real_glue_dir, "STS-B", "train", "train")
    assert (stsb[0].text_a, stsb[0].text_b, stsb[0].label) == (
        "sheep standing in afield.", "A sheep grazing in a field.", 3.2)
    mnli, _ = _read(real_glue_dir, "MNLI", "dev_mismatched", "dev")  # 16 columns, gold label last
    assert (mnli[0].text_b, mnli[0].label) == (
        "Your contributions were of no help with our students' education.", "contradiction")
    mnli_train, _ = _read(real_glue_dir, "MNLI", "train", "train")
    assert [sum(e.label == lab for e in mnli_train) for lab in GLUE_TASKS["MNLI"].label_list] == [160] * 3
    rte, _ = _read(real_glue_dir, "RTE", "dev", "dev")
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
    dev_matched = glue_dir / "MNLI" / "dev_matched.tsv"
    rows = len(dev_matched.read_text(encoding="utf-8").splitlines()) - 1          # after the header
    with pytest.raises(ValueError, match=rf"dev_matched.tsv holds no usable rows \({rows} malformed"):
        read_glue_tsv(dev_matched, "mnli", "train")
    with pytest.raises(ValueError, match="unknown split"):
        read_glue_tsv(glue_dir / "QQP" / "dev.tsv", "qqp", "validation")


def test_read_pairs_real_files(real_qqp_jsonl, real_glue_dir):
    examples, skipped = read_pairs(real_qqp_jsonl)
    assert (len(examples), skipped) == (8999, 0)
    assert examples[0] == Example(
        "pair-0", "How do I get inside University College London being an Indian?",
        "Which is better, masters in computer science at Arizona State University or University "
        "College London for a foreigner (Indian National)?", "0")
    assert sum(e.label == "1" for e in examples) == 3252
    dev, skipped = read_pairs(real_glue_dir / "QQP" / "dev.tsv")
    assert (len(dev), skipped, dev[0].text_b, dev[0].label) == (9, 0, "Why are hispanics so beautiful?", "0")
    test, _ = read_pairs(real_glue_dir / "QQP" / "test.tsv")
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


def test_rows_that_are_not_utf8_are_skipped_counted_and_named(tmp_path):
    """A Latin-1 row on line 402 of a TSV (past any text stream's first buffer) and on line 2 of JSON
    lines costs that row only: skipped, counted, and named by line and byte; the rest is read."""
    rows = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"]
    rows += [f"{i}\t{i}\t{i + 1}\tquestion number {i}?\tanother one?\t0" for i in range(400)]
    tsv = tmp_path / "train.tsv"
    tsv.write_bytes(("\n".join(rows) + "\n").encode() + b"400\t1\t2\tcaf\xe9 \xff?\tb?\t1\n"
                    + b"401\t1\t2\tlast one?\tyes\t1\n")
    for examples, skipped in (read_glue_tsv(tsv, "qqp", "train"), read_pairs(tsv)):
        assert (len(examples), skipped) == (401, 1)
        assert skipped.rows == [(402, "not UTF-8 (byte 0xe9 at column 12)")]
        assert examples[-1].text_a == "last one?" and examples[-2].text_a == "question number 399?"
    for name in ("pairs.jsonl", "pairs.txt"):                  # .txt: sniffed by its first line
        jsonl = tmp_path / name
        jsonl.write_bytes(b'{"sentence1": "a?", "sentence2": "b?"}\n{"sentence1": "\xff"}\n'
                          b'{"sentence1": "c?", "sentence2": "d?"}\n')
        examples, skipped = read_pairs(jsonl)
        assert [e.text_a for e in examples] == ["a?", "c?"]
        assert skipped.describe() == "line 2: not UTF-8 (byte 0xff at column 16)"


def glue_data_error(path: Path, task: str, split: str) -> str:
    with pytest.raises(GlueDataError) as err:
        read_glue_tsv(path, task, split)
    return str(err.value)


def test_a_file_with_no_utf8_row_is_one_line_naming_file_and_lines(tmp_path):
    latin1 = tmp_path / "dev.tsv"
    latin1.write_bytes("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n".encode()
                       + b"1\t1\t2\tcaf\xe9?\tb?\t1\n2\t1\t2\tna\xefve?\tb?\t0\n")
    assert glue_data_error(latin1, "qqp", "dev") == (
        f"{latin1} holds no usable rows (2 malformed rows skipped; line 2: not UTF-8 (byte 0xe9 at column "
        f"10); line 3: not UTF-8 (byte 0xef at column 9)); no line is UTF-8 text; GLUE files and JSON "
        f"lines are UTF-8: re-download or re-encode it")


STSB_HEAD = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
STSB_ROW = "0\tg\tf\t2012\t0\tnone\tnone\tA man.\tA woman.\t{}"


def test_stsb_scores_outside_0_to_5_are_skipped_with_their_line(tmp_path):
    path = _write(tmp_path / "dev.tsv", [STSB_HEAD] + [STSB_ROW.format(s) for s in
                                                       ("0", "5.0", "5.2", "-0.5", "inf", "2.5", "1e3")])
    examples, skipped = read_glue_tsv(path, "sts-b", "dev")
    assert [e.label for e in examples] == [0.0, 5.0, 2.5]
    assert skipped.rows == [(4, "score 5.2 is outside [0, 5]"), (5, "score -0.5 is outside [0, 5]"),
                            (6, "score inf is outside [0, 5]"), (8, "score 1e3 is outside [0, 5]")]


def test_stsb_file_whose_scores_are_all_nan_says_so(tmp_path):
    path = _write(tmp_path / "dev.tsv", [STSB_HEAD] + [STSB_ROW.format("nan")] * 5)
    assert glue_data_error(path, "sts-b", "dev") == (
        f"{path} holds no usable rows (5 malformed rows skipped; line 2: score is nan; line 3: score is nan; "
        f"line 4: score is nan; and 2 more); every score is nan: the file has no gold scores; use a file "
        f"with STS-B's 0-5 scores")


def test_classification_labels_outside_the_task_set_are_named(tmp_path):
    rows = ["index\tsentence1\tsentence2\tlabel", "0\tA.\tB.\tentailment", "1\tA.\tB.\tneutral",
            "2\tA.\tB.\t0", "3\tA.\tB.\tnot_entailment"]
    examples, skipped = read_glue_tsv(_write(tmp_path / "train.tsv", rows), "rte", "train")
    assert [e.label for e in examples] == ["entailment", "not_entailment"]
    assert skipped.describe() == ("line 3: label 'neutral' is not one of entailment, not_entailment; "
                                  "line 4: label '0' is not one of entailment, not_entailment")


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


def test_make_batches_with_a_token_budget():
    # lengths 3, 5, 2, 4, 1; sorted: row 4 (1), 2 (2), 0 (3), 3 (4), 1 (5)
    batches = make_batches(ENCODED, batch_size=1, sort_by_length=True, max_tokens=8)
    assert [b.indices.tolist() for b in batches] == [[4, 2], [0, 3], [1]]     # 3 rows x 3 = 9 would not fit
    assert [b.input_ids.shape for b in batches] == [(2, 2), (2, 4), (1, 5)]
    for b in batches:
        _check_batch(b, ENCODED, 0)
    assert restore_order(batches, [b.input_ids[:, 0] for b in batches]).tolist() == [10, 20, 30, 40, 50]
    # unsorted: consecutive rows only
    assert [b.indices.tolist() for b in make_batches(ENCODED, 1, max_tokens=8)] == [[0], [1], [2, 3], [4]]
    # a row longer than the budget travels alone
    assert [b.input_ids.shape for b in make_batches(ENCODED, 1, max_tokens=4)][1] == (1, 5)
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        make_batches(ENCODED, batch_size=1, max_tokens=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=60), st.integers(1, 200), st.booleans())
def test_token_budget_batches_cover_every_row_once_within_budget(lengths, budget, sort):
    encoded = [([7] * n, [0] * n) for n in lengths]
    batches = make_batches(encoded, batch_size=1, sort_by_length=sort, max_tokens=budget)
    rows = sorted(i for b in batches for i in b.indices.tolist())
    assert rows == list(range(len(lengths)))
    for b in batches:
        assert b.input_ids.size <= budget or len(b) == 1
    # greedy: the next batch's first row would not have fitted
    for a, b in zip(batches, batches[1:]):
        width = max(a.input_ids.shape[1], lengths[b.indices[0]])
        assert width * (len(a) + 1) > budget


# -- --download: the hub's GLUE written out as GLUE's TSV files (a local stand-in, no network) -------

# The hub's (nyu-mll/glue) configuration, text columns and label names per task, as its dataset card
# lists them; GLUE's TSV files use the names for MNLI/QNLI/RTE and the class index elsewhere.
HUB = {
    "COLA": ("cola", ("sentence",), ["unacceptable", "acceptable"]),
    "SST-2": ("sst2", ("sentence",), ["negative", "positive"]),
    "MRPC": ("mrpc", ("sentence1", "sentence2"), ["not_equivalent", "equivalent"]),
    "STS-B": ("stsb", ("sentence1", "sentence2"), None),
    "QQP": ("qqp", ("question1", "question2"), ["not_duplicate", "duplicate"]),
    "MNLI": ("mnli", ("premise", "hypothesis"), ["entailment", "neutral", "contradiction"]),
    "QNLI": ("qnli", ("question", "sentence"), ["entailment", "not_entailment"]),
    "RTE": ("rte", ("sentence1", "sentence2"), ["entailment", "not_entailment"]),
    "WNLI": ("wnli", ("sentence1", "sentence2"), ["not_entailment", "entailment"]),
}
HUB_LABELS = [1, 0, 2, 1]           # STS-B: these / 2 + 0.25 as scores; binary tasks: modulo 2


def hub_rows(task: str, split: str, n: int = 4) -> dict:
    """Columns of one hub split: texts with a tab and a line break inside, labels -1 on test."""
    _, fields, names = HUB[task]
    columns = {field: [f"{split} {field} {i}\twith a tab\nand a line" for i in range(n)] for field in fields}
    if names is None:
        columns["label"] = [-1.0] * n if split.startswith("test") else [v / 2 + 0.25 for v in HUB_LABELS[:n]]
    else:
        columns["label"] = [-1] * n if split.startswith("test") else [v % len(names) for v in HUB_LABELS[:n]]
    columns["idx"] = list(range(100, 100 + n))
    return columns


def fake_hub(monkeypatch, calls: list):
    """datasets.load_dataset answering nyu-mll/glue from memory (Dataset.from_dict)."""
    datasets = pytest.importorskip("datasets")

    def load_dataset(path, name):
        calls.append((path, name))
        task = next(t for t, (config, _, _) in HUB.items() if config == name)
        _, fields, names = HUB[task]
        label = datasets.Value("float32") if names is None else datasets.ClassLabel(names=names)
        features = datasets.Features({**{f: datasets.Value("string") for f in fields}, "label": label,
                                      "idx": datasets.Value("int32")})
        splits = (["train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"]
                  if task == "MNLI" else ["train", "validation", "test"])
        return datasets.DatasetDict({s: datasets.Dataset.from_dict(hub_rows(task, s), features=features)
                                     for s in splits})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


@pytest.mark.parametrize("task", list(GLUE_TASKS))
def test_download_writes_glue_tsv_files_the_reader_reads(tmp_path, monkeypatch, task):
    calls = []
    fake_hub(monkeypatch, calls)
    spec = get_task(task)
    assert download_glue(spec, tmp_path / spec.dir_name) == tmp_path / spec.dir_name
    assert calls == [("nyu-mll/glue", HUB[task][0])]
    names = HUB[task][2]
    for split in ("train", "dev", "test"):
        for path in split_files(spec, tmp_path / spec.dir_name, split):
            hub_split = path.stem.replace("dev", "validation")
            examples, skipped = read_glue_tsv(path, spec, split)
            assert skipped == 0 and len(examples) == 4
            fields = HUB[task][1]
            assert examples[2].text_a == f"{hub_split} {fields[0]} 2 with a tab and a line"
            if len(fields) == 2:
                assert examples[3].text_b == f"{hub_split} {fields[1]} 3 with a tab and a line"
            if split == "test":
                assert all(e.label is None for e in examples)
                assert read_tsv_column(path, 0)[1:] == ["100", "101", "102", "103"]   # GLUE's index column
                continue
            labels = encode_labels(spec, examples).tolist()
            if names is None:
                assert labels == pytest.approx([0.75, 0.25, 1.25, 0.75])
            else:     # the hub's class, by name (MNLI/QNLI/RTE) or index, is the class read back
                ours = [spec.label_list[i] for i in labels]
                if task in ("MNLI", "QNLI", "RTE"):
                    assert ours == [names[v % len(names)] for v in HUB_LABELS]
                else:
                    assert ours == [str(v % len(names)) for v in HUB_LABELS]


def read_tsv_column(path: Path, column: int) -> list[str]:
    return [line.split("\t")[column] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("task,file", [("QQP", "train.tsv"), ("QQP", "dev.tsv"), ("QQP", "test.tsv"),
                                       ("MNLI", "train.tsv"), ("MNLI", "dev_matched.tsv"),
                                       ("MRPC", "dev.tsv"), ("STS-B", "dev.tsv"), ("RTE", "dev.tsv"),
                                       ("SST-2", "dev.tsv"), ("CoLA", "dev.tsv")])
def test_downloaded_files_have_glue_headers(tmp_path, monkeypatch, glue_dir, task, file):
    """Header rows (and CoLA's lack of one) as in the real GLUE files."""
    fake_hub(monkeypatch, [])
    download_glue(get_task(task), tmp_path)
    ours = (tmp_path / file).read_text(encoding="utf-8").splitlines()[0].split("\t")
    real = (glue_dir / task / file).read_text(encoding="utf-8-sig").splitlines()[0].split("\t")
    if task == "CoLA":                       # no header: the first line is a 4-column data row
        assert len(ours) == len(real) == 4 and ours[0] != "index"
    else:
        assert ours == real


def test_download_offline_is_one_line_naming_the_alternative(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(path, name):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (ConnectionError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    task = get_task("qqp")
    with pytest.raises(GlueDataError) as err:
        download_glue(task, tmp_path / "QQP")
    assert str(err.value) == (
        "could not download GLUE QQP from the Hugging Face hub (Couldn't reach 'nyu-mll/glue' on the Hub "
        f"(ConnectionError)); without network use --data_dir with GLUE TSV files, or the shipped sample: "
        f"--data_dir {SAMPLE_GLUE_DIR / 'QQP'}")
    assert not (tmp_path / "QQP").exists()

    def dead_host(task):
        raise RuntimeError("Download from https://dataset.bj.bcebos.com/glue/QQP.zip failed.\nRetry limit reached")

    with pytest.raises(GlueDataError, match=r"hub \(.*\) nor with PaddleNLP \(Download from .* failed\. Retry "
                                            r"limit reached\); without network") as err:
        download_glue(task, tmp_path / "QQP", fallback=("PaddleNLP", dead_host))
    assert "\n" not in str(err.value)


def test_data_dir_is_given_else_glue_data_else_the_shipped_sample(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    task = get_task("rte")
    assert locate_glue_data(task, tmp_path / "mine", False) == tmp_path / "mine"
    assert locate_glue_data(task, None, False) == SAMPLE_GLUE_DIR / "RTE"
    caplog.set_level("INFO")
    assert prepare_glue_data(task, None, do_predict=True, download=False) == SAMPLE_GLUE_DIR / "RTE"
    assert "using the small GLUE-format sample shipped with the package" in caplog.text
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "glue_data" / "RTE").mkdir(parents=True, exist_ok=True)
        (tmp_path / "glue_data" / "RTE" / name).write_text("index\tsentence1\tsentence2\tlabel\n")
    assert locate_glue_data(task, None, False) == Path("glue_data") / "RTE"
    assert locate_glue_data(task, None, True) == SAMPLE_GLUE_DIR / "RTE"      # no test.tsv there
    with pytest.raises(GlueDataError, match=r"mine lacks train.tsv, dev.tsv; .* --download"):
        prepare_glue_data(task, tmp_path / "mine", do_predict=False, download=False)


def test_download_only_when_the_files_are_missing(tmp_path, monkeypatch, glue_dir):
    calls = []
    fake_hub(monkeypatch, calls)
    task = get_task("rte")
    assert prepare_glue_data(task, glue_dir / "RTE", False, download=True) == glue_dir / "RTE"
    assert calls == []
    monkeypatch.chdir(tmp_path)
    assert prepare_glue_data(task, None, False, download=True) == Path("glue_data") / "RTE"
    assert calls == [("nyu-mll/glue", "rte")] and (tmp_path / "glue_data" / "RTE" / "test.tsv").is_file()


def test_a_label_too_long_to_read_costs_its_row_only(tmp_path):
    """json refuses integers over 4300 digits with a ValueError (not a JSONDecodeError): one row."""
    path = tmp_path / "pairs.jsonl"
    good = '{"sentence1": "a b", "sentence2": "c d", "label": 1}\n'
    path.write_text(good * 2 + '{"sentence1": "x", "sentence2": "y", "label": ' + "9" * 5000 + "}\n" + good)
    examples, skipped = read_pairs(path)
    assert [e.label for e in examples] == ["1", "1", "1"]
    assert skipped.rows == [(3, "a number too long to read")]
