"""SqueezeBertTokenizer with PaddleNLP's `PretrainedTokenizer` API and Hugging Face's word pieces.

PaddleNLP's tokenizer base gives the API its users write against (`encode`, `batch_encode`,
`__call__` with truncation/padding strategies, `pad`, `add_tokens`, offsets, `save_pretrained` /
`from_pretrained(dir, **kwargs)`, special-token maps). Only the text -> word-piece split is ours: the
Rust `tokenizers` pipeline of tokenizer.py, which gives transformers' ids where PaddleNLP's own
BasicTokenizer does not (it also splits off Unicode symbols such as `´` and `₹`).

This module imports paddlenlp (and so paddle); the framework-free tokenizer.py never imports it.
"""
from __future__ import annotations

import os
import re

from paddlenlp.transformers import BertTokenizer
from paddlenlp.transformers.tokenizer_utils_base import AddedToken

from .configuration import HOW_TO_GET_RELEASED, HUB_IDS
from .checkpoint import CheckpointError
from .tokenizer import SqueezeBertTokenizer as FrameworkFreeTokenizer
from .input_files import file_problem, is_present, require_regular_file
from .tokenizer import TOKENIZER_CONFIG_FILE, VOCAB_FILE, TokenizerFileError, read_tokenizer_options, wordpiece_pipeline


class SqueezeBertTokenizer(BertTokenizer):
    """PaddleNLP's BERT tokenizer API over the word pieces `transformers.SqueezeBertTokenizer` gives.

    Arguments are PaddleNLP's / HF's BertTokenizer ones; `never_split` words are kept whole when
    they stand between spaces, as HF's BasicTokenizer keeps them. With do_basic_tokenize=False the text
    is only split on whitespace, but still lowercased (PaddleNLP's base does that before the split; HF
    does not). The class hooks are tokenizer.py's (the resource map names hub ids, not download URLs).
    """

    resource_files_names = FrameworkFreeTokenizer.resource_files_names
    pretrained_resource_files_map = FrameworkFreeTokenizer.pretrained_resource_files_map
    pretrained_init_configuration = FrameworkFreeTokenizer.pretrained_init_configuration
    max_model_input_sizes = FrameworkFreeTokenizer.max_model_input_sizes
    padding_side = FrameworkFreeTokenizer.padding_side

    def __init__(self, vocab_file, do_lower_case=True, do_basic_tokenize=True, never_split=None,
                 unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                 mask_token="[MASK]", tokenize_chinese_chars=True, strip_accents=None, **kwargs):
        # BertTokenizer.__init__ is not called: it would build PaddleNLP's BasicTokenizer, and (being
        # tracked by PaddleNLP's metaclass) overwrite the init_kwargs that save_pretrained writes.
        try:
            self.vocab = self.load_vocabulary(vocab_file, unk_token=unk_token)
        except (OSError, TypeError, UnicodeDecodeError) as err:
            reason = file_problem(vocab_file) if isinstance(vocab_file, (str, os.PathLike)) else None
            raise TokenizerFileError(f"{vocab_file}: cannot read the WordPiece vocabulary "
                                     f"({reason or ' '.join(str(err).split())[:120]}); pass a vocab.txt path or "
                                     f"use SqueezeBertTokenizer.from_pretrained(model_dir)") from None
        self.do_lower_case = do_lower_case
        self.do_basic_tokenize = do_basic_tokenize
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self._pipeline = wordpiece_pipeline(
            dict(self.vocab.token_to_idx), do_lower_case, strip_accents=strip_accents,
            handle_chinese_chars=tokenize_chinese_chars, basic_split=do_basic_tokenize, unk_token=unk_token)
        # Special tokens written in the text stay whole, as in HF's tokenizers (PaddleNLP's own class
        # registers them only in from_pretrained).
        self.sanitize_special_tokens()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """From a local directory (or PaddleNLP's community names). A released name reads the directory
        of that name when there is one, as the model classes do; there is no Paddle download of it, so
        otherwise it says how to get one instead of fetching a URL that does not exist."""
        name = str(pretrained_model_name_or_path)
        if name in HUB_IDS or name in HUB_IDS.values():
            if not os.path.isdir(name):
                raise CheckpointError(f"{name}: there is no PaddleNLP download of this tokenizer's vocab.txt "
                                      f"and no directory of that name; {HOW_TO_GET_RELEASED}")
            # With a trailing separator the base class takes it for the directory it is, not a name.
            pretrained_model_name_or_path = os.path.join(name, "")
        if os.path.isdir(name):
            vocab = os.path.join(name, VOCAB_FILE)
            if not is_present(vocab):
                raise CheckpointError(f"{vocab} not found: a tokenizer directory holds the uncased WordPiece "
                                      f"{VOCAB_FILE} (every SqueezeBERT checkpoint ships it)")
            require_regular_file(vocab, TokenizerFileError,
                                 f"a tokenizer directory holds the uncased WordPiece {VOCAB_FILE} file")
            config = os.path.join(name, TOKENIZER_CONFIG_FILE)
            if is_present(config):
                read_tokenizer_options(config)     # one line for a broken file, before PaddleNLP reads it
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def _words(self, text: str) -> list[tuple[int, str]]:
        """(start, text) spans of `text` for the Rust pipeline, `never_split` words as their own spans."""
        if not (self.never_split and self.do_basic_tokenize):
            return [(0, text)]
        spans, start = [], 0
        for match in re.finditer(r"\S+", text):
            if match.group() in self.never_split:
                spans += [(start, text[start:match.start()]), (match.start(), match.group())]
                start = match.end()
        return [span for span in spans + [(start, text[start:])] if span[1]]

    def _pieces(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        """Word pieces of a text holding no added tokens, with their (start, end) in `text`."""
        out = []
        for start, span in self._words(text):
            if span in self.never_split:
                out.append((span, (start, start + len(span))))
                continue
            encoding = self._pipeline.encode(span, add_special_tokens=False)
            out += [(token, (start + a, start + b))
                    for token, (a, b) in zip(encoding.tokens, encoding.offsets)]
        return out

    def _tokenize(self, text, **kwargs):
        return [token for token, _ in self._pieces(text)]

    def get_offset_mapping(self, text: str, split_tokens=None):
        """(start, end) character span in `text` of each token `tokenize(text)` returns.

        Replays the base class's split on added tokens (lowercasing, the trie, the spaces eaten around
        them) keeping each part's position, and takes the Rust pipeline's offsets inside each part.
        """
        if text is None:
            return None
        lowered, origin = self._lowered_with_origin(text)
        no_split = set(self.unique_no_split_tokens)
        spans = []
        for part, start in self._added_token_parts(lowered):
            pieces = [(0, len(part))] if part in no_split else [span for _, span in self._pieces(part)]
            spans += [(start + a, start + b) for a, b in pieces]
        return [(origin[a], origin[b - 1] + 1) for a, b in spans]

    def _added_token_parts(self, lowered: str) -> list[tuple[str, int]]:
        """The parts PretrainedTokenizer.tokenize splits the lowered text into, each with its start."""
        parts, position = [], 0
        for part in self.tokens_trie.split(lowered):
            parts.append([part, position])
            position += len(part)
        no_split = set(self.unique_no_split_tokens)
        extended = self._extended_special_tokens()
        for i, (part, _) in enumerate(parts):
            if part not in no_split:
                continue
            # As the base does: an added token eats the spaces beside it, unless its AddedToken says not.
            token = extended.get(part)
            if i + 1 < len(parts) and (token is None or token.rstrip):
                nxt = parts[i + 1]
                nxt[1] += len(nxt[0]) - len(nxt[0].lstrip())
                nxt[0] = nxt[0].lstrip()
            if i > 0 and (token is None or token.lstrip):
                parts[i - 1][0] = parts[i - 1][0].rstrip()
        return [(part, start) for part, start in parts if part]

    def _extended_special_tokens(self) -> dict:
        return {str(t): t for t in self.all_special_tokens_extended if isinstance(t, AddedToken)}

    def _lowered_with_origin(self, text: str) -> tuple[str, list[int]]:
        """`text` lowercased as PretrainedTokenizer.tokenize does (added and special tokens kept), and
        for each character of the result the index of the original character it came from (lowercasing
        can change a character's length)."""
        if not self.do_lower_case:
            return text, list(range(len(text)))
        keep = self.unique_no_split_tokens + self.all_special_tokens    # the base's order: first match wins
        pattern = re.compile("|".join(re.escape(t) for t in keep)) if keep else None
        out, origin, i = [], [], 0
        while i < len(text):
            match = pattern.match(text, i) if pattern else None
            if match:
                out.append(match.group())
                origin += range(i, match.end())
                i = match.end()
            else:   # the base's regex lowercases one character at a time and skips newlines
                chunk = text[i] if text[i] == "\n" else text[i].lower()
                out.append(chunk)
                origin += [i] * len(chunk)
                i += 1
        return "".join(out), origin
