"""SqueezeBertTokenizer: uncased WordPiece on the Rust `tokenizers` library, with BERT's pair format.

Framework-free (no Paddle or torch import), so both benchmark scripts share it and feed the two
frameworks identical ids. The WordPiece itself is the maintained Rust implementation; only the
pair layout and HF's "longest_first" truncation (drop the last token of the longer side, one at a
time; the second side on ties) are written here, where they are a few lines and must match exactly.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers

from .configuration import HUB_IDS
from .errors import ExpectedError
from .input_files import file_problem, is_present, read_json_object, require_regular_file, utf8_problem

VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                      mask_token="[MASK]")
# tokenizer_config.json keys we read, and the types they must have.
TOKENIZER_OPTIONS = {"do_lower_case": (bool, "true or false"), "model_max_length": (int, "an integer")}


class TokenizerFileError(ExpectedError, ValueError):
    """A vocab.txt or tokenizer_config.json that cannot make a tokenizer; the message names the file."""


class VocabNotFoundError(ExpectedError, FileNotFoundError):
    """No vocab.txt where one is needed; the message says where to get it."""


def read_vocab(vocab_file: Path) -> dict[str, int]:
    """token -> id (its first line number) from a UTF-8 vocab.txt holding BERT's special tokens."""
    if file_problem(vocab_file) == "not found":
        raise VocabNotFoundError(f"{vocab_file}: vocabulary file not found; a SqueezeBERT model "
                                 f"directory needs the uncased WordPiece vocab.txt")
    require_regular_file(vocab_file, TokenizerFileError,
                         "a model directory needs the uncased WordPiece vocab.txt file")
    vocab = {}
    try:
        with open(vocab_file, encoding="utf-8") as f:
            for index, line in enumerate(f):
                vocab.setdefault(line.rstrip("\n"), index)
    except UnicodeDecodeError as err:
        raise TokenizerFileError(utf8_problem(vocab_file, err)) from None
    missing = [t for t in SPECIAL_TOKENS.values() if t not in vocab]
    if missing:
        raise TokenizerFileError(f"{vocab_file}: special tokens {missing} are not in the vocabulary"
                                 f"{' (the file is empty)' if not vocab else ''}; use the uncased WordPiece "
                                 f"vocab.txt the checkpoint ships with")
    return vocab


def read_tokenizer_options(config_file: Path) -> dict:
    """The options we use from a tokenizer_config.json (do_lower_case, model_max_length), type-checked."""
    saved = read_json_object(config_file, TokenizerFileError)
    options = {k: saved[k] for k in TOKENIZER_OPTIONS if k in saved}
    for key, (kind, what) in TOKENIZER_OPTIONS.items():
        value = options.get(key)
        if key in options and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise TokenizerFileError(f"{config_file}: {key} must be {what}, got {value!r}")
    if options.get("model_max_length", 1) < 1:
        raise TokenizerFileError(f"{config_file}: model_max_length must be positive, got {options['model_max_length']}")
    if options.get("model_max_length", 0) > 10**6:   # HF writes a huge sentinel for "none"
        options.pop("model_max_length")
    return options


class SqueezeBertTokenizer:
    """Uncased WordPiece tokenizer giving the same ids as `transformers.SqueezeBertTokenizer`.

    The class attributes are the hooks PaddleNLP's tooling reads on a tokenizer class. The released
    vocabularies are the Hugging Face hub's: the resource map gives the hub id (`HUB_IDS`) whose
    vocab.txt the converter fetches, not a download URL.
    """

    resource_files_names = {"vocab_file": VOCAB_FILE}
    pretrained_resource_files_map = {"vocab_file": dict(HUB_IDS)}
    pretrained_init_configuration = {name: {"do_lower_case": True} for name in HUB_IDS}
    max_model_input_sizes = {name: 512 for name in HUB_IDS}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"

    def __init__(self, vocab_file: str | os.PathLike, do_lower_case: bool = True,
                 model_max_length: int = 512):
        vocab_file = Path(vocab_file)
        vocab = read_vocab(vocab_file)
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.model_max_length = model_max_length
        self.vocab = vocab
        self._ids_to_tokens = {i: t for t, i in vocab.items()}
        self._tokenizer = self._build(vocab, do_lower_case)
        for name, token in SPECIAL_TOKENS.items():
            setattr(self, name, token)
            setattr(self, name + "_id", vocab[token])

    @staticmethod
    def _build(vocab: dict[str, int], lowercase: bool) -> Tokenizer:
        tokenizer = wordpiece_pipeline(vocab, lowercase)
        # Special tokens written in the text stay whole, as HF's tokenizers treat them.
        tokenizer.add_special_tokens([AddedToken(t, normalized=False) for t in SPECIAL_TOKENS.values()])
        return tokenizer

    # -- loading and saving ------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike) -> "SqueezeBertTokenizer":
        model_dir = Path(model_dir)
        vocab_file = model_dir / VOCAB_FILE
        if not is_present(vocab_file):        # a directory or link loop there is refused by read_vocab
            raise VocabNotFoundError(
                f"{vocab_file} not found: the model directory needs the uncased WordPiece vocab "
                f"(it ships with every SqueezeBERT checkpoint, e.g. `huggingface-cli download "
                f"squeezebert/squeezebert-uncased vocab.txt --local-dir {model_dir}`)")
        config_file = model_dir / TOKENIZER_CONFIG_FILE
        options = read_tokenizer_options(config_file) if is_present(config_file) else {}
        return cls(vocab_file, **options)

    def save_pretrained(self, model_dir: str | os.PathLike) -> None:
        from .fileio import atomic_write_text
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        vocab = "".join(self._ids_to_tokens[i] + "\n" for i in range(len(self._ids_to_tokens)))
        atomic_write_text(model_dir / VOCAB_FILE, vocab)
        config = {"tokenizer_class": "SqueezeBertTokenizer", "do_lower_case": self.do_lower_case,
                  "model_max_length": self.model_max_length, **SPECIAL_TOKENS}
        atomic_write_text(model_dir / TOKENIZER_CONFIG_FILE, json.dumps(config, indent=2) + "\n")

    # -- tokens and ids ----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]):
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]):
        if isinstance(ids, int):
            return self._ids_to_tokens.get(ids, self.unk_token)
        return [self._ids_to_tokens.get(i, self.unk_token) for i in ids]

    def _word_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    # -- model inputs ------------------------------------------------------------------------

    def encode_pairs(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None,
                     max_seq_len: int | None = 128) -> list[tuple[list[int], list[int]]]:
        """Encode many sentences (or pairs) to ([CLS] a [SEP] (b [SEP])) ids and token types."""
        ids_a = self._word_ids(texts_a)
        ids_b = self._word_ids(texts_b) if texts_b is not None else [None] * len(ids_a)
        if len(ids_a) != len(ids_b):
            raise ValueError(f"text and text_pair differ in length: {len(ids_a)} vs {len(ids_b)}")
        return [self.build_inputs(a, b, max_seq_len) for a, b in zip(ids_a, ids_b)]

    def build_inputs(self, ids_a: list[int], ids_b: list[int] | None,
                     max_seq_len: int | None) -> tuple[list[int], list[int]]:
        if max_seq_len is not None:
            pair = ids_b is not None
            if max_seq_len < min_sequence_length(pair):
                what = "a pair" if pair else "a text"
                raise ValueError(f"max_seq_len {max_seq_len} leaves no room for text: {what} needs at least "
                                 f"{min_sequence_length(pair)} tokens, special tokens included")
            ids_a, ids_b = truncate_longest_first(ids_a, ids_b, max_seq_len - special_token_count(pair))
        ids = [self.cls_token_id, *ids_a, self.sep_token_id]
        types = [0] * len(ids)
        if ids_b is not None:
            ids += [*ids_b, self.sep_token_id]
            types += [1] * (len(ids_b) + 1)
        return ids, types

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None,
                 max_seq_len: int | None = 128, padding: bool | None = None,
                 return_attention_mask: bool | None = None, return_tensors: str | None = None):
        """Tokenize one text (or pair), or a list of them.

        Returns a dict with `input_ids` and `token_type_ids`; for a list (or padding=True) also
        `attention_mask`, padded to the longest sequence. return_tensors="np" gives int64 arrays.
        """
        single = isinstance(text, str)
        texts_a = [text] if single else list(text)
        texts_b = None if text_pair is None else ([text_pair] if single else list(text_pair))
        encoded = self.encode_pairs(texts_a, texts_b, max_seq_len)
        padding = (not single) if padding is None else padding
        if return_attention_mask is None:
            return_attention_mask = padding
        if padding:
            width = max(len(ids) for ids, _ in encoded)
            out = {"input_ids": [ids + [self.pad_token_id] * (width - len(ids)) for ids, _ in encoded],
                   "token_type_ids": [t + [0] * (width - len(t)) for _, t in encoded]}
            if return_attention_mask:
                out["attention_mask"] = [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in encoded]
        else:
            out = {"input_ids": [ids for ids, _ in encoded], "token_type_ids": [t for _, t in encoded]}
            if return_attention_mask:
                out["attention_mask"] = [[1] * len(ids) for ids, _ in encoded]
        if single:
            out = {k: v[0] for k, v in out.items()}
        if return_tensors == "np":
            out = {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
        return out

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        special = set(SPECIAL_TOKENS.values()) if skip_special_tokens else set()
        tokens = [t for t in self.convert_ids_to_tokens(list(ids)) if t not in special]
        return " ".join(tokens).replace(" ##", "")


def wordpiece_pipeline(vocab: dict[str, int], lowercase: bool, strip_accents: bool | None = None,
                       handle_chinese_chars: bool = True, basic_split: bool = True,
                       unk_token: str = SPECIAL_TOKENS["unk_token"]) -> Tokenizer:
    """BERT's text -> word pieces as the Rust `tokenizers` library runs it (HF's BasicTokenizer rules:
    clean control characters, space out CJK, lowercase, strip accents, split on punctuation), with no
    special tokens registered. basic_split=False is HF's do_basic_tokenize=False: whitespace only."""
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=100))
    if basic_split:
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=handle_chinese_chars, strip_accents=strip_accents,
            lowercase=lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tokenizer


def special_token_count(pair: bool) -> int:
    """[CLS] a [SEP] (b [SEP]): the tokens a sequence holds besides its text."""
    return 3 if pair else 2


def min_sequence_length(pair: bool) -> int:
    """The shortest max_seq_len the tokenizer takes: the special tokens plus one word piece (as in
    HF, a pair may then keep a piece of one text only)."""
    return special_token_count(pair) + 1


def sequence_length_problem(value: int, flag: str, limit: int, pair: bool = True) -> str | None:
    """Why `value` cannot be the `flag` sequence length of a model with `limit` positions, or None.
    The scripts' flags ask for room for a word piece of every text. The one line gives the range."""
    low = special_token_count(pair) + (2 if pair else 1)
    if low <= value <= limit:
        return None
    room = "[CLS] a [SEP] b [SEP] with a token of each text" if pair else "[CLS] a [SEP] with a token of the text"
    return (f"{flag} {value} is out of range: it must lie between {low} ({room}) and {limit} (the model's "
            f"max_position_embeddings)")


def truncate_longest_first(ids_a: list[int], ids_b: list[int] | None, budget: int):
    """Shorten the pair to `budget` >= 0 word pieces, always trimming the currently longer side
    (the second on ties), like HF's "longest_first" strategy."""
    if budget < 0:
        raise ValueError(f"a truncation budget of {budget} word pieces is negative")
    if ids_b is None:
        return ids_a[:budget], None
    excess = len(ids_a) + len(ids_b) - budget
    if excess <= 0:
        return ids_a, ids_b
    la, lb = len(ids_a), len(ids_b)
    # Trimming one at a time from the longer side first evens the two lengths, then alternates.
    for _ in range(excess):
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return ids_a[:la], ids_b[:lb]
