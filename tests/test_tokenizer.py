"""Our tokenizer against transformers.SqueezeBertTokenizer (the slow, pure-Python reference), built
from the same real vocab: every QQP pair of the shared data, then the edge cases."""
import json

import numpy as np
import pytest
import transformers

from squeezebert_paddle.tokenizer import SqueezeBertTokenizer, truncate_longest_first


@pytest.fixture(scope="module")
def ours(vocab_file):
    return SqueezeBertTokenizer(vocab_file)


@pytest.fixture(scope="module")
def ref(vocab_file):
    return transformers.SqueezeBertTokenizer(str(vocab_file))


def _ref_pairs(ref, a, b, max_len):
    out = ref(a, b, max_length=max_len, truncation="longest_first" if max_len else False)
    return list(zip(out["input_ids"], out["token_type_ids"]))


def test_every_qqp_pair_matches_hf(ours, ref, real_qqp_jsonl):
    with open(real_qqp_jsonl, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    assert len(rows) == 8999
    a, b = [r["sentence1"] for r in rows], [r["sentence2"] for r in rows]
    expected = _ref_pairs(ref, a, b, 128)
    got = ours.encode_pairs(a, b, 128)
    bad = [i for i, (e, g) in enumerate(zip(expected, got)) if (list(e[0]), list(e[1])) != (g[0], g[1])]
    assert not bad, f"{len(bad)} of {len(rows)} pairs differ, first {bad[:5]}: {a[bad[0]]!r} / {b[bad[0]]!r}"
    assert len(got) == len(rows)
    # The sample does reach the truncation path (a few pairs exceed 128 word pieces).
    assert sum(len(ids) == 128 for ids, _ in got) >= 3


EDGE_TEXTS = [
    "", " ", "\t\n", "café au lait", "Ñandú", "naïve résumé", "a\u0301 combining", "İstanbul ß ẞ",
    "你好世界", "中文abc混合", "日本語のテキスト", "한국어", "emoji 😀👍🏽🇫🇷 ok", "😀",
    "ctrl\x00\x01\x7f chars", "tab\there\r\nnewline", "zero\u200bwidth\u00adsoft", "\ufeffbom",
    "\u00a0nbsp\u3000ideographic space", "ǅ ﬁ ℌ Ⅻ ① 𝒳", "Mr. O'Neil's dog-house, 1,234.56 $%&!?",
    "[SEP]", "[MASK]", "a [MASK] b", "a[MASK]b", "[CLS] x [SEP] y [PAD] [UNK]", "[sep] [mask] lower",
    "[ SEP ]", "[SEP][SEP]", "x" * 101, "x" * 100, " ".join(["antidisestablishmentarianism"] * 5),
    "UPPER lower MiXeD", "\u0130", "https://example.com/a?b=c&d=e", "e-mail@example.org",
]


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=[repr(t)[:30] for t in EDGE_TEXTS])
def test_single_sentence_edge_cases(ours, ref, text):
    expected = ref(text)
    got = ours(text)
    assert got["input_ids"] == expected["input_ids"]
    assert got["token_type_ids"] == expected["token_type_ids"]
    assert ours.tokenize(text) == ref.tokenize(text)


def test_pairs_of_edge_cases(ours, ref):
    a = EDGE_TEXTS
    b = EDGE_TEXTS[::-1]
    assert ours.encode_pairs(a, b, 64) == [(list(i), list(t)) for i, t in _ref_pairs(ref, a, b, 64)]


def test_special_tokens_written_in_text_stay_whole(ours):
    ids = ours("a [MASK] b [SEP]")["input_ids"]
    assert ids == [ours.cls_token_id, ours.vocab["a"], ours.mask_token_id, ours.vocab["b"],
                   ours.sep_token_id, ours.sep_token_id]
    assert ours.mask_token_id == 103 and ours.sep_token_id == 102 and ours.cls_token_id == 101


LONG = ("the quick brown fox jumps over the lazy dog " * 40).strip()       # 360 word pieces
SHORT = "how are you today"
LENGTHS = {"short": SHORT, "long": LONG, "long2": LONG + " again and again"}


@pytest.mark.parametrize("max_len", [4, 5, 9, 10, 31, 32, 127, 128, 512])
@pytest.mark.parametrize("sides", [("long", "short"), ("short", "long"), ("long", "long"),
                                   ("long", "long2"), ("long2", "long"), ("short", "short")])
def test_pair_truncation_matches_hf(ours, ref, max_len, sides):
    a, b = LENGTHS[sides[0]], LENGTHS[sides[1]]
    (e_ids, e_types), = _ref_pairs(ref, [a], [b], max_len)
    (g_ids, g_types), = ours.encode_pairs([a], [b], max_len)
    assert (g_ids, g_types) == (list(e_ids), list(e_types))
    total = len(ref.tokenize(a)) + len(ref.tokenize(b)) + 3
    assert len(g_ids) == min(max_len, total)


# (max_len 2 leaves no room for words: HF logs an error and returns the text untruncated, ours returns
# [CLS] [SEP]; that degenerate case is left out.)
@pytest.mark.parametrize("max_len", [3, 8, 9, 128, 512])
@pytest.mark.parametrize("text", [SHORT, LONG])
def test_single_sentence_truncation_matches_hf(ours, ref, text, max_len):
    expected = ref(text, max_length=max_len, truncation=True)
    got = ours(text, max_seq_len=max_len)
    assert got["input_ids"] == expected["input_ids"]
    assert got["input_ids"][0] == 101 and got["input_ids"][-1] == 102


def test_no_truncation_when_max_len_is_none(ours, ref):
    got = ours(LONG, LONG, max_seq_len=None)
    expected = ref(LONG, LONG)
    assert got["input_ids"] == expected["input_ids"] and len(got["input_ids"]) == 723


def test_truncate_longest_first_trims_the_longer_side_second_on_ties():
    assert truncate_longest_first([1] * 7, [2] * 3, 6) == ([1] * 3, [2] * 3)
    assert truncate_longest_first([1] * 3, [2] * 7, 6) == ([1] * 3, [2] * 3)
    assert truncate_longest_first([1] * 4, [2] * 4, 7) == ([1] * 4, [2] * 3)      # tie: second side
    assert truncate_longest_first([1] * 5, [2] * 4, 6) == ([1] * 3, [2] * 3)
    assert truncate_longest_first([1] * 5, [2] * 5, 10) == ([1] * 5, [2] * 5)
    assert truncate_longest_first([1, 2, 3], None, 2) == ([1, 2], None)


def test_lists_are_padded_with_an_attention_mask(ours, ref):
    texts = ["a short one", "a much longer sentence with many more word pieces in it", ""]
    pairs = ["x", "", "the second side"]
    got = ours(texts, pairs, return_tensors="np")
    expected = ref(texts, pairs, padding=True, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert got[key].dtype == np.int64
        np.testing.assert_array_equal(got[key], expected[key])
    assert got["attention_mask"].sum(1).tolist() == [len(ours(t, p)["input_ids"]) for t, p in zip(texts, pairs)]
    plain = ours(texts)
    assert plain["input_ids"] == ref(texts, padding=True)["input_ids"]
    assert "attention_mask" not in ours(texts[0])


def test_save_and_from_pretrained_round_trip(ours, ref, tmp_path):
    ours.save_pretrained(tmp_path)
    again = SqueezeBertTokenizer.from_pretrained(tmp_path)
    assert again.vocab == ours.vocab and again.vocab_size == 30522 == len(again)
    assert (tmp_path / "vocab.txt").read_bytes() == ours.vocab_file.read_bytes()
    sample = ["Is café open?", "你好 😀 [MASK]"]
    assert again(sample, sample[::-1]) == ours(sample, sample[::-1])
    # transformers reads the saved directory too, and agrees.
    hf_again = transformers.SqueezeBertTokenizer.from_pretrained(str(tmp_path))
    assert hf_again(sample, sample[::-1])["input_ids"] == ours(sample, sample[::-1])["input_ids"]


def test_from_pretrained_reads_tokenizer_config(ours, tmp_path):
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.update(do_lower_case=False, model_max_length=64)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    cased = SqueezeBertTokenizer.from_pretrained(tmp_path)
    assert cased.do_lower_case is False and cased.model_max_length == 64
    assert cased.tokenize("Hello") != ours.tokenize("Hello")


def test_missing_vocab_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download"):
        SqueezeBertTokenizer.from_pretrained(tmp_path)


def test_vocab_is_smaller_than_the_model_embedding_table(ours):
    from squeezebert_paddle.configuration import RELEASED_CONFIGS
    assert ours.vocab_size == 30522
    for fields in RELEASED_CONFIGS.values():
        assert fields["vocab_size"] == 30528
    # Every id the tokenizer can produce indexes the model's table; ids past the vocab decode to [UNK].
    assert max(ours.vocab.values()) == 30521
    assert ours.convert_ids_to_tokens(30525) == "[UNK]"


@pytest.mark.parametrize("pair,max_len", [(True, 1), (True, 2), (True, 3), (False, 1), (False, 2)])
def test_a_length_without_room_for_text_is_refused(ours, pair, max_len):
    """Below the special tokens plus one word piece the budget would go negative (and slices count from
    the end: 15 tokens for a "maximum" of 1); refused instead."""
    with pytest.raises(ValueError, match=rf"^max_seq_len {max_len} leaves no room for text: "):
        ours.encode_pairs([LONG], [SHORT] if pair else None, max_len)
    with pytest.raises(ValueError, match="budget of -1 word pieces is negative"):
        truncate_longest_first([1, 2], [3] if pair else None, -1)
