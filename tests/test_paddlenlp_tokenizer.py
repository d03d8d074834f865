"""paddlenlp_tokenizer.SqueezeBertTokenizer: PaddleNLP's tokenizer API with transformers' ids.

Its ids are checked against transformers.SqueezeBertTokenizer (the slow reference) and our
framework-free tokenizer on the shipped vocab, on the characters where PaddleNLP's own tokenizer
differs; then the PaddleNLP call API, offsets, added tokens, the save/load round trip and the hooks."""
import json

import pytest
import transformers
from paddlenlp.transformers import SqueezeBertTokenizer as PaddleNLPTokenizer

from squeezebert_paddle import tokenizer as framework_free
from squeezebert_paddle.checkpoint import CheckpointError
from squeezebert_paddle.configuration import HUB_IDS
from squeezebert_paddle.paddlenlp_tokenizer import SqueezeBertTokenizer
from test_tokenizer import EDGE_TEXTS

# Where PaddleNLP's BasicTokenizer splits differently from HF's (it also splits off Unicode symbols).
SYMBOL_TEXTS = ["don´t stop", "₹500 or £5 or €3", "2×3 = 6 ± 1", "©2020 ™ °C", "5°C", "¬p ∧ q", "a→b"]
TEXTS = SYMBOL_TEXTS + EDGE_TEXTS


@pytest.fixture(scope="module")
def ours(vocab_file):
    return SqueezeBertTokenizer(str(vocab_file))


@pytest.fixture(scope="module")
def ref(vocab_file):
    return transformers.SqueezeBertTokenizer(str(vocab_file))


@pytest.fixture(scope="module")
def fast(vocab_file):
    return framework_free.SqueezeBertTokenizer(vocab_file)


def test_texts_exercise_paddlenlps_difference(vocab_file, ref):
    """The symbol texts are ones PaddleNLP's own tokenizer gets wrong, so the checks below can fail."""
    paddlenlp_own = PaddleNLPTokenizer(str(vocab_file))
    assert all(paddlenlp_own.tokenize(t) != ref.tokenize(t) for t in SYMBOL_TEXTS)


@pytest.mark.parametrize("text", TEXTS, ids=[repr(t)[:30] for t in TEXTS])
def test_tokens_and_ids_equal_transformers_and_ours(ours, ref, fast, text):
    assert ours.tokenize(text) == ref.tokenize(text)
    assert ours(text)["input_ids"] == ref(text)["input_ids"] == fast(text)["input_ids"]


@pytest.mark.parametrize("options", [dict(tokenize_chinese_chars=False), dict(strip_accents=False),
                                     dict(never_split=["keepMe!"]),
                                     dict(do_lower_case=False, never_split=["keepMe!"])],
                         ids=["no_chinese_split", "keep_accents", "never_split", "cased_never_split"])
def test_options_split_as_transformers_does(vocab_file, options):
    text = "Hello WORLD-class 的人有 naïve don´t [MASK] keepMe! x keepMe"
    ours = SqueezeBertTokenizer(str(vocab_file), **options)
    ref = transformers.SqueezeBertTokenizer(str(vocab_file), **options)
    assert ours.tokenize(text) == ref.tokenize(text) and ours(text)["input_ids"] == ref(text)["input_ids"]


def test_pairs_with_truncation_equal_transformers_and_ours(ours, ref, fast):
    a, b = TEXTS, TEXTS[::-1]
    for max_length in (6, 16, 64):
        got = ours(a, b, max_length=max_length, truncation=True)
        expected = ref(a, b, max_length=max_length, truncation=True)
        assert got["input_ids"] == expected["input_ids"]
        assert got["token_type_ids"] == expected["token_type_ids"]
        assert [ids for ids, _ in fast.encode_pairs(a, b, max_length)] == got["input_ids"]


def test_every_qqp_pair_equals_transformers(ours, ref, real_qqp_jsonl):
    with open(real_qqp_jsonl, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    a, b = [r["sentence1"] for r in rows], [r["sentence2"] for r in rows]
    got = ours(a, b, max_length=128, truncation=True)["input_ids"]
    expected = ref(a, b, max_length=128, truncation=True)["input_ids"]
    bad = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert len(got) == len(rows) == 8999 and not bad, f"{len(bad)} pairs differ, first: {a[bad[0]]!r}"


def test_paddlenlp_call_api(ours):
    out = ours("A man is eating a pizza.", "Someone eats.", max_length=8, truncation=True,
               return_attention_mask=True)
    words_a, words_b = ours.tokenize("A man is eating a pizza."), ours.tokenize("Someone eats.")
    assert out["input_ids"] == ours.convert_tokens_to_ids(
        ["[CLS]", *words_a[:3], "[SEP]", *words_b[:2], "[SEP]"])     # longest_first: 5 of 8 for text
    assert out["token_type_ids"] == [0] * 5 + [1] * 3 and out["attention_mask"] == [1] * 8
    batch = ours(["a b c", "a"], padding=True, return_attention_mask=True)
    assert batch["input_ids"][1][-2:] == [ours.pad_token_id] * 2
    assert batch["attention_mask"][1] == [1, 1, 1, 0, 0]
    overflow = ours.encode("a b c d e f", max_length=5, truncation=True, stride=1,
                           return_overflowing_tokens=True)
    assert overflow["overflowing_tokens"] == ours.convert_tokens_to_ids(["c", "d", "e", "f"])


def test_offsets_are_the_characters_of_each_token(ours):
    text = "A, naïve [MASK] AllenNLP İstanbul ₹5 中文 don´t."
    out = ours.encode(text, return_offsets_mapping=True)
    tokens = ours.convert_ids_to_tokens(out["input_ids"])
    spans = [text[a:b] for a, b in out["offset_mapping"]]
    assert len(spans) == len(tokens)
    assert spans[1:5] == ["A", ",", "naïve", "[MASK]"] and "İstanbul" in spans and spans[-2:] == [".", ""]
    assert out["offset_mapping"][0] == (0, 0)
    assert [s.lower() for s in spans[5:8]] == ["allen", "nl", "p"] and tokens[6:8] == ["##nl", "##p"]


def test_added_tokens_stay_whole_and_keep_offsets(vocab_file):
    tok = SqueezeBertTokenizer(str(vocab_file))
    base = len(tok)
    assert tok.add_tokens(["squeezeformer", "Grouped-Conv"]) == 2
    text = "The SqueezeFormer uses grouped-conv layers"
    tokens = tok.tokenize(text)
    assert tokens == ["the", "squeezeformer", "uses", "grouped-conv", "layers"] and len(tok) == base + 2
    assert tok.convert_tokens_to_ids("grouped-conv") == base + 1
    spans = [text[a:b] for a, b in tok.get_offset_mapping(text)]
    assert spans == ["The", "SqueezeFormer", "uses", "grouped-conv", "layers"]


def test_save_and_from_pretrained_round_trip(vocab_file, tmp_path):
    tok = SqueezeBertTokenizer(str(vocab_file), strip_accents=False)
    tok.add_tokens(["squeezeformer"])
    tok.save_pretrained(str(tmp_path))
    again = SqueezeBertTokenizer.from_pretrained(str(tmp_path), model_max_length=64)
    text = "naïve squeezeformer"
    assert again.strip_accents is False and again.tokenize(text) == tok.tokenize(text)
    assert again.tokenize(text)[0] != "naive"                      # the accent was kept, as saved
    assert again(text)["input_ids"] == tok(text)["input_ids"] and again.model_max_length == 64
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8") == vocab_file.read_text(encoding="utf-8")


def test_class_hooks_are_the_framework_free_tokenizers(vocab_file):
    for hook in ("resource_files_names", "pretrained_resource_files_map", "pretrained_init_configuration",
                 "max_model_input_sizes"):
        assert getattr(SqueezeBertTokenizer, hook) is getattr(framework_free.SqueezeBertTokenizer, hook)
    assert SqueezeBertTokenizer.pretrained_resource_files_map["vocab_file"] == HUB_IDS
    assert SqueezeBertTokenizer.max_model_input_sizes["squeezebert-mnli"] == 512


@pytest.mark.parametrize("name", ["squeezebert-uncased", "squeezebert/squeezebert-mnli"])
def test_released_names_say_how_to_get_them_instead_of_downloading(name):
    with pytest.raises(CheckpointError, match="convert_torch_to_paddle.py --download"):
        SqueezeBertTokenizer.from_pretrained(name)


def test_a_released_name_reads_the_directory_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "squeezebert-mnli").mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "squeeze", "##bert"]
    (tmp_path / "squeezebert-mnli" / "vocab.txt").write_text("".join(t + "\n" for t in vocab))
    tok = SqueezeBertTokenizer.from_pretrained("squeezebert-mnli")
    assert tok("SqueezeBERT!")["input_ids"] == [2, 5, 6, 1, 3]          # [CLS] squeeze ##bert [UNK] [SEP]


def test_a_directory_without_vocab_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path}/vocab.txt not found"):
        SqueezeBertTokenizer.from_pretrained(tmp_path)
