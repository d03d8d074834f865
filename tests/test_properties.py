"""Property-based tests (hypothesis): the data readers over any row content, and the tokenizer's
truncation against transformers' for any text and any allowed length.

Examples are kept modest (max_examples 60, no deadline) so the file runs in well under a minute.
"""
import json

import pytest
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezebert_paddle.data import GLUE_TASKS, GlueDataError, read_glue_tsv, read_pairs
from squeezebert_paddle.data.readers import STSB_RANGE
from squeezebert_paddle.tokenizer import SqueezeBertTokenizer, min_sequence_length

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# A field of a well-formed row: any text without the TSV's separators (tab, line end).
FIELD = st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), max_size=30)


def label_of(task: str):
    spec = GLUE_TASKS[task]
    if spec.label_list is not None:
        return st.sampled_from(spec.label_list)
    return st.floats(*STSB_RANGE).map(repr)


def valid_row(task: str):
    """(the row's bytes, (text_a, text_b, label)) for a well-formed train row of `task`."""
    fmt = GLUE_TASKS[task].train

    def build(fields, text_a, text_b, label):
        fields[fmt.text_a] = text_a
        if fmt.text_b is not None:
            fields[fmt.text_b] = text_b
        fields[fmt.label] = label
        expected_label = float(label) if GLUE_TASKS[task].label_list is None else label
        return ("\t".join(fields).encode("utf-8"),
                (text_a, text_b if fmt.text_b is not None else None, expected_label))

    return st.builds(build, st.lists(FIELD, min_size=fmt.n_columns, max_size=fmt.n_columns),
                     FIELD.filter(str.strip), FIELD, label_of(task))


# Anything at all: random bytes with tabs, line ends and bytes that are not UTF-8.
JUNK = st.binary(max_size=40) | st.lists(st.sampled_from([b"\t", b"\n", b"\r", b"\xff", b"\xe9", b"x", b"1",
                                                          b"nan", b"entailment", b" "]), max_size=12).map(b"".join)
ROWS = lambda task: st.lists(st.one_of(valid_row(task), JUNK.map(lambda b: (b, None))), max_size=12)  # noqa: E731


def physical_lines(data: bytes, blank=lambda line: not line) -> list[bytes]:
    """The lines a reader sees: split at \\n, one trailing \\r dropped, blank ones left out."""
    lines = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    return [line for line in lines if not blank(line)]


@pytest.mark.parametrize("task", ["SST-2", "QQP", "STS-B", "MNLI"])
@PROPERTY
@given(data=st.data())
def test_glue_reader_counts_every_row_and_keeps_the_good_ones(tmp_path, task, data):
    rows = data.draw(ROWS(task))
    path = tmp_path / "train.tsv"
    body = b"\n".join(row for row, _ in rows) + b"\n"
    path.write_bytes(b"header line\n" + body)
    wanted = [expected for _, expected in rows if expected is not None]
    try:
        examples, skipped = read_glue_tsv(path, task, "train")
    except GlueDataError as err:
        assert not wanted and str(err).startswith(f"{path} holds no usable rows")
        return
    assert len(examples) + skipped == len(physical_lines(body)) == len(examples) + len(skipped.rows)
    got = iter([(e.text_a, e.text_b, e.label) for e in examples])
    assert all(expected in got for expected in wanted)           # in order: a subsequence
    assert all(line >= 2 for line, _ in skipped.rows)


def blank_json_line(line: bytes) -> bool:
    try:
        return not line.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


@PROPERTY
@given(rows=st.lists(st.one_of(
    st.builds(lambda a, b, label: (json.dumps({"sentence1": a, "sentence2": b, "label": label}).encode(),
                                   (a, b, str(label))), st.text(), st.text(), st.sampled_from([0, 1])),
    JUNK.map(lambda b: (b, None))), max_size=12))
def test_pairs_reader_counts_every_line_and_keeps_the_good_ones(tmp_path, rows):
    path = tmp_path / "pairs.jsonl"
    body = b"\n".join(row for row, _ in rows) + b"\n"
    path.write_bytes(body)
    wanted = [expected for _, expected in rows if expected is not None]
    try:
        examples, skipped = read_pairs(path)
    except GlueDataError as err:
        assert not wanted and "holds no usable rows" in str(err)
        return
    assert len(examples) + skipped == len(physical_lines(body, blank_json_line))
    got = iter([(e.text_a, e.text_b, e.label) for e in examples])
    assert all(expected in got for expected in wanted)


# -- the tokenizer's truncation against transformers' -----------------------------------------------

@pytest.fixture(scope="module")
def tokenizers(vocab_file):
    return SqueezeBertTokenizer(vocab_file), transformers.BertTokenizer(str(vocab_file), do_lower_case=True)


# Words the vocabulary knows, unknown ones, punctuation, accents, CJK and odd whitespace, joined; or
# any text of assigned code points. Left out, because the two WordPiece front ends split them
# differently (a tokenization difference, not a truncation one; test_tokenizer covers the text the
# model sees): code points this Python's Unicode tables leave unassigned (transformers' Python
# tokenizer drops them, the Rust one may see CJK characters), CJK Extension E's first 256 (not split
# off as CJK by the Rust normalizer) and the CJK compatibility ideographs U+F900-U+FAFF.
WORDS = st.sampled_from(["the", "question", "quora", "running", "unbelievable", "xqzv", "café", "naïve", "?",
                         "!", "...", "don't", "12,000", "東京", "zürich", "ß", "\u00a0", "\t", "  ", "-", "😀"])
SPLIT_DIFFERENTLY = (range(0x2B820, 0x2B920), range(0xF900, 0xFB00))
ASSIGNED = st.characters(codec="utf-8", exclude_categories=("Cn", "Co", "Cs")).filter(
    lambda c: not any(ord(c) in r for r in SPLIT_DIFFERENTLY))
TEXT = st.lists(WORDS, max_size=60).map(" ".join) | st.text(ASSIGNED, max_size=80)


@PROPERTY
@given(text_a=TEXT, text_b=TEXT, data=st.data())
def test_pair_truncation_fits_and_equals_transformers(tokenizers, text_a, text_b, data):
    ours, ref = tokenizers
    max_len = data.draw(st.integers(min_sequence_length(True), 512), label="max_len")
    ids, types = ours.encode_pairs([text_a], [text_b], max_len)[0]
    expected = ref(text_a, text_b, max_length=max_len, truncation="longest_first")
    assert len(ids) <= max_len
    assert (ids, types) == (expected["input_ids"], expected["token_type_ids"])


@PROPERTY
@given(text=TEXT, data=st.data())
def test_single_truncation_fits_and_equals_transformers(tokenizers, text, data):
    ours, ref = tokenizers
    max_len = data.draw(st.integers(min_sequence_length(False), 512), label="max_len")
    ids, types = ours.encode_pairs([text], None, max_len)[0]
    expected = ref(text, max_length=max_len, truncation=True)
    assert len(ids) <= max_len
    assert (ids, types) == (expected["input_ids"], expected["token_type_ids"])
