"""Crafted model inputs (config files, vocabularies, weights files) end in one line naming the file
and what is wrong: an ExpectedError, never a library traceback, a hang or a silent acceptance."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from helpers import tiny
from squeezebert_paddle.checkpoint import (CONFIG_FILE, WEIGHTS_FILE, CheckpointError, read_pdparams,
                                           require_model_dir, write_pdparams)
from squeezebert_paddle.configuration import ConfigError, SqueezeBertConfig
from squeezebert_paddle.conversion import ConversionError, convert_hf_dir, paddle_to_hf
from squeezebert_paddle.errors import ExpectedError
from squeezebert_paddle.tokenizer import SPECIAL_TOKENS, SqueezeBertTokenizer, TokenizerFileError

WORDS = [*SPECIAL_TOKENS.values(), "the", "a", "##s", "cat", "dog"]


# Opens the FIFO for writing and closes it, every 0.1 s once the time is up: a blocked reader gets EOF.
RELEASER = """
import os, sys, time
time.sleep(float(sys.argv[2]))
while True:
    try:
        os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK))
        print("released", flush=True)
    except OSError:
        pass                 # ENXIO: nobody is reading it
    time.sleep(0.1)
"""


@contextmanager
def never_blocks(fifo, seconds: float = 10):
    """Fail instead of hanging: once `seconds` have passed, a reader blocked on `fifo` (opening a FIFO
    for reading waits for a writer) is released by another process, as often as it reopens it, and the
    test fails. (Not a signal or a thread: a library blocked in C or Rust may hold the GIL.)"""
    releaser = subprocess.Popen([sys.executable, "-c", RELEASER, str(fifo), str(seconds)],
                                stdout=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        releaser.kill()
        released = releaser.communicate()[0]
    assert not released, f"blocked on {fifo} for {seconds} s"


def write_vocab(directory, words=WORDS):
    (directory / "vocab.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_paddle_dir(tmp_path_factory):
    """A tiny SqueezeBertForSequenceClassification directory (vocab_size 99, its own 10-word vocab.txt)."""
    from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
    path = tmp_path_factory.mktemp("tiny") / "model"
    SqueezeBertForSequenceClassification(SqueezeBertConfig(**tiny())).save_pretrained(path)
    write_vocab(path)
    return path


def copy_of(model_dir, tmp_path):
    return shutil.copytree(model_dir, tmp_path / "copy")


# -- config files ------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("architectures", 5, "architectures must be a list of model class names, got 5"),
    ("architectures", "SqueezeBertForSequenceClassification", "architectures must be a list"),
    ("architectures", ["BertModel"], r"architectures \['BertModel'\] are not SqueezeBERT model classes"),
    ("vocab_size", 2**40, f"vocab_size {2**40} is too large: at most {2**31 - 1}"),
    ("max_position_embeddings", 2**40, "max_position_embeddings 1099511627776 is too large"),
    ("num_labels", 2**40, "num_labels 1099511627776 is too large"),
    ("vocab_size", 2**31 - 1, r"these sizes make 7.09e\+10 parameters, .* GiB in float32, more than this machine's"),
    ("num_hidden_layers", 2.0, "num_hidden_layers must be a positive integer, got 2.0"),
    ("pad_token_id", 1.5, r"pad_token_id 1.5 must be an integer id inside the vocabulary"),
    ("pad_token_id", 99, r"pad_token_id 99 must be an integer id inside the vocabulary, in \[0, vocab_size 99\)"),
    ("initializer_range", "x", "initializer_range must be a finite number, got 'x'"),
    ("initializer_range", float("nan"), "initializer_range must be a finite number, got nan"),
    ("layer_norm_eps", "1e-5", "layer_norm_eps must be a finite number, got '1e-5'"),
    ("hidden_dropout_prob", None, "hidden_dropout_prob must be a finite number"),
    ("hidden_act", ["gelu"], "hidden_act must be a string"),
    ("id2label", {"a": "x", "b": "y"}, r"id2label keys must be class ids \(integers\), got \['a', 'b'\]"),
    ("id2label", ["x", "y"], "id2label must be a JSON object"),
    ("extra", "abc", "extra must be a JSON object"),
])
def test_config_file_fields_are_checked_with_file_and_key(tmp_path, key, value, message):
    values = {**SqueezeBertConfig(**tiny()).to_dict(), key: value}
    path = tmp_path / CONFIG_FILE
    path.write_text(json.dumps(values))
    with pytest.raises(ConfigError, match=f"^{path}: config: {message}"):
        SqueezeBertConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("[" * 100000 + "]" * 100000, "JSON nested too deeply to read"),
    ('{"vocab_size": ' + "9" * 5000 + "}", "unreadable JSON"),
    ("[1, 2]", "expected a JSON object, found list"),
])
def test_unreadable_config_json_is_one_line(tmp_path, text, message):
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError, match=f"^{tmp_path / CONFIG_FILE}: {message}"):
        SqueezeBertConfig.from_pretrained(tmp_path)


def test_a_config_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / CONFIG_FILE)
    with never_blocks(tmp_path / CONFIG_FILE), pytest.raises(ConfigError, match="model_config.json: a FIFO .named pipe., not a regular file"):
        SqueezeBertConfig.from_pretrained(tmp_path)


def test_valid_configs_still_read(tmp_path):
    values = {**SqueezeBertConfig(**tiny()).to_dict(), "architectures": ["SqueezeBertModel"],
              "id2label": {"0": "no", "1": "yes"}, "initializer_range": 0}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(values))
    config = SqueezeBertConfig.from_pretrained(tmp_path)
    assert config.architectures == ["SqueezeBertModel"] and config.id2label == {0: "no", 1: "yes"}


# -- vocabularies and tokenizer_config.json ---------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (bytes(range(128, 256)) * 20, r"not UTF-8 text \(byte 0x80 at offset 0\)"),
    (b"", r"special tokens .* are not in the vocabulary \(the file is empty\)"),
    ("".join(w + "\n" for w in WORDS if w != "[CLS]").encode(), r"special tokens \['\[CLS\]'\] are not in"),
])
def test_unusable_vocab_is_one_line(tmp_path, content, message):
    (tmp_path / "vocab.txt").write_bytes(content)
    with pytest.raises(TokenizerFileError, match=f"^{tmp_path / 'vocab.txt'}: {message}"):
        SqueezeBertTokenizer.from_pretrained(tmp_path)
    assert issubclass(TokenizerFileError, ExpectedError)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "a directory, not a regular file"),
    (lambda p: p.symlink_to(p.name), "a symbolic link loop, not a regular file"),
    (lambda p: os.mkfifo(p), r"a FIFO \(named pipe\), not a regular file"),
])
def test_a_vocab_that_is_no_file_is_refused_not_replaced(tmp_path, make, message):
    make(tmp_path / "vocab.txt")
    with never_blocks(tmp_path / "vocab.txt"), pytest.raises(TokenizerFileError, match=f"^{tmp_path / 'vocab.txt'}: {message}"):
        SqueezeBertTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("{bad", "not valid JSON"),
    ('["do_lower_case"]', "expected a JSON object, found list"),
    ('{"model_max_length": "big"}', "model_max_length must be an integer, got 'big'"),
    ('{"model_max_length": 0}', "model_max_length must be positive, got 0"),
    ('{"do_lower_case": "no"}', "do_lower_case must be true or false, got 'no'"),
])
def test_bad_tokenizer_config_is_one_line(tmp_path, text, message):
    write_vocab(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(text)
    with pytest.raises(TokenizerFileError, match=f"^{tmp_path / 'tokenizer_config.json'}: {message}"):
        SqueezeBertTokenizer.from_pretrained(tmp_path)


def test_paddlenlp_tokenizer_refuses_the_same_files(tmp_path):
    from squeezebert_paddle.paddlenlp_tokenizer import SqueezeBertTokenizer as PaddleNLPTokenizer
    (tmp_path / "vocab.txt").mkdir()
    with pytest.raises(TokenizerFileError, match="vocab.txt: a directory, not a regular file"):
        PaddleNLPTokenizer.from_pretrained(str(tmp_path))
    (tmp_path / "vocab.txt").rmdir()
    write_vocab(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": "no"}')
    with pytest.raises(TokenizerFileError, match="do_lower_case must be true or false"):
        PaddleNLPTokenizer.from_pretrained(str(tmp_path))
    (tmp_path / "vocab.txt").write_bytes(b"\xff\xfe[PAD]\n")
    with pytest.raises(TokenizerFileError, match="cannot read the WordPiece vocabulary"):
        PaddleNLPTokenizer(str(tmp_path / "vocab.txt"))


def test_a_vocab_larger_than_the_embedding_table_is_refused(tiny_paddle_dir, tmp_path):
    model_dir = copy_of(tiny_paddle_dir, tmp_path)
    assert require_model_dir(model_dir) == model_dir                  # 10 words for 99 rows: fine
    write_vocab(model_dir, WORDS + [f"w{i}" for i in range(99 - len(WORDS))])
    assert require_model_dir(model_dir) == model_dir                  # exactly 99: fine
    write_vocab(model_dir, WORDS + [f"w{i}" for i in range(100 - len(WORDS))])
    with pytest.raises(CheckpointError, match=f"^{model_dir / 'vocab.txt'} has 100 entries but the model's "
                                              f"vocab_size is 99: ids past 98 have no embedding"):
        require_model_dir(model_dir)


# -- .pdparams contents and weights ----------------------------------------------------------------

@pytest.mark.parametrize("entry, message", [
    (np.array(["a", "b"]), r"entries w \(<U1\) are not numeric tensors"),
    (np.array([1, "x"], dtype=object), r"entries w \(object\) are not numeric tensors"),
    (np.zeros(2, dtype=[("a", "<f4")]), r"entries w \(\[\('a', '<f4'\)\]\) are not numeric tensors"),
    (np.array(["2020-01-01"], dtype="datetime64[s]"), r"entries w \(datetime64\[s\]\) are not numeric"),
])
def test_read_pdparams_takes_numeric_arrays_only(tmp_path, entry, message):
    path = tmp_path / WEIGHTS_FILE
    path.write_bytes(pickle.dumps({"ok": np.zeros(2, np.float32), "w": entry}, protocol=4))
    with pytest.raises(CheckpointError, match=f"^{path}: {message}"):
        read_pdparams(path)


def test_read_pdparams_takes_string_names_only(tmp_path):
    path = tmp_path / WEIGHTS_FILE
    path.write_bytes(pickle.dumps({"ok": np.zeros(2, np.float32), 1: np.zeros(2, np.float32)}, protocol=4))
    with pytest.raises(CheckpointError, match=rf"^{path}: entry names \[1\] are not strings"):
        read_pdparams(path)
    assert set(read_pdparams(_saved(tmp_path / "fine.pdparams", {"a": np.arange(3), "b": np.ones(2, bool)}))) == {"a", "b"}


def _saved(path, state):
    write_pdparams(path, state)
    return path


@pytest.mark.parametrize("spoil, message", [
    (lambda v: np.full_like(v, np.nan), "hold NaN or infinite values"),
    (lambda v: np.where(v > 0, np.inf, v), "hold NaN or infinite values"),
    (lambda v: (v * 100).astype(np.int64), r"\(int64\) .*are not floating-point"),
    (lambda v: v > 0, r"\(bool\) .*are not floating-point"),
    (lambda v: v.astype(np.complex64), r"\(complex64\) .*are not floating-point"),
])
def test_from_pretrained_refuses_weights_that_are_not_finite_floats(tiny_paddle_dir, tmp_path, spoil, message):
    from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
    model_dir = copy_of(tiny_paddle_dir, tmp_path)
    state = read_pdparams(model_dir / WEIGHTS_FILE)
    state["classifier.weight"] = spoil(state["classifier.weight"])
    write_pdparams(model_dir / WEIGHTS_FILE, state)
    with pytest.raises(CheckpointError, match=f"^{model_dir / WEIGHTS_FILE}: tensors classifier.weight.*{message}"):
        SqueezeBertForSequenceClassification.from_pretrained(model_dir)


# -- the converter ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_hf_state(tiny_paddle_dir):
    """The tiny model's weights under Hugging Face's names and layouts."""
    return paddle_to_hf(read_pdparams(tiny_paddle_dir / WEIGHTS_FILE), SqueezeBertConfig(**tiny()),
                        "SqueezeBertForSequenceClassification")


def hf_dir(tmp_path, state=None, bin_state=None):
    """A tiny HF checkpoint directory: config.json, vocab.txt and (given) weights."""
    path = tmp_path / "hf"
    path.mkdir()
    config = SqueezeBertConfig(**tiny(), architectures=["SqueezeBertForSequenceClassification"])
    (path / "config.json").write_text(config.to_json_string())
    write_vocab(path)
    if state is not None:
        from safetensors.numpy import save_file
        save_file(state, str(path / "model.safetensors"))
    if bin_state is not None:
        import torch
        torch.save(bin_state, path / "pytorch_model.bin")
    return path


@pytest.mark.parametrize("spoil, message", [
    (lambda v: np.full_like(v, np.nan), "hold NaN or infinite values"),
    (lambda v: (v * 100).astype(np.int64), r"\(int64\) .*are not floating-point"),
])
def test_converter_refuses_weights_that_are_not_finite_floats(tmp_path, tiny_hf_state, spoil, message):
    key = "classifier.weight"
    src = hf_dir(tmp_path, {**tiny_hf_state, key: spoil(tiny_hf_state[key])})
    with pytest.raises(ConversionError, match=f"^{src / 'model.safetensors'}: tensors {key}.*{message}"):
        convert_hf_dir(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layout, message", [
    ("sparse", r"tensors \['classifier.bias'\] are sparse"),
    ("complex", r"classifier.bias \(complex64\) .*are not floating-point"),
])
def test_converter_refuses_sparse_and_complex_bin_tensors(tmp_path, tiny_hf_state, layout, message):
    import torch
    state = {k: torch.from_numpy(v.copy()) for k, v in tiny_hf_state.items()}
    bias = state["classifier.bias"]
    state["classifier.bias"] = bias.to_sparse() if layout == "sparse" else bias.to(torch.complex64)
    src = hf_dir(tmp_path, bin_state=state)
    with pytest.raises(ConversionError, match=f"^{src / 'pytorch_model.bin'}: .*{message}"):
        convert_hf_dir(src, tmp_path / "out")


@pytest.mark.parametrize("name", ["config.json", "vocab.txt", "model.safetensors", "shard"])
def test_converter_refuses_fifos_without_blocking(tmp_path, tiny_hf_state, name):
    src = hf_dir(tmp_path, tiny_hf_state)
    if name == "shard":
        (src / "model.safetensors").unlink()
        (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "shard1.safetensors"}}))
        name = "shard1.safetensors"
    else:
        (src / name).unlink()
    os.mkfifo(src / name)
    with never_blocks(src / name), pytest.raises(ConversionError, match=rf"^{src / name}: a FIFO \(named pipe\), not a regular file"):
        convert_hf_dir(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_converter_cli_says_what_a_non_file_is_in_one_line(tmp_path, tiny_hf_state, capsys):
    import convert_torch_to_paddle
    from squeezebert_paddle.errors import run_main
    os.mkfifo(tmp_path / "vocab.fifo")
    with never_blocks(tmp_path / "vocab.fifo"):
        code = run_main(lambda: convert_torch_to_paddle.main(
            ["--demo", "--models_root", str(tmp_path / "models"), "--vocab", str(tmp_path / "vocab.fifo")]), "convert")
    assert code == 1 and capsys.readouterr().err == (
        f"convert: error: vocab file {tmp_path / 'vocab.fifo'} is a FIFO (named pipe), not a regular file; pass "
        f"--vocab PATH to the uncased WordPiece vocab.txt\n")
    src = hf_dir(tmp_path, tiny_hf_state)
    (src / "config.json").write_text('{"architectures": "SqueezeBertModel"}')
    code = run_main(lambda: convert_torch_to_paddle.main(["--model_dir", str(src), "--no_progress"]), "convert")
    assert code == 1 and capsys.readouterr().err == (
        f"convert: error: {src / 'config.json'}: config: architectures must be a list of model class names, got "
        f"'SqueezeBertModel'\n")


# -- the same checks where the torch script and fine-tuning meet a model directory ------------------

def test_torch_side_and_run_glue_refuse_a_vocab_larger_than_the_embeddings(tiny_qqp, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from squeezebert_paddle import qqp_benchmark as qb
    from squeezebert_paddle.training.settings import model_dir_problem
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_qqp["dir"], model_dir)
    vocab_size = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    with open(model_dir / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("".join(f"extra{i}\n" for i in range(5)))
    args = SimpleNamespace(random_init=False, model_type="squeezebert", model_path=model_dir)
    with pytest.raises(qb.UsageError, match=rf"vocab.txt has {vocab_size + 5} entries but the model's "
                                            rf"vocab_size is {vocab_size}"):
        qb.check_model_dir(args, "torch")
    settings = SimpleNamespace(model_name_or_path=str(model_dir), model_type="squeezebert")
    assert f"has {vocab_size + 5} entries" in model_dir_problem(settings)


def test_best_weights_with_nan_are_refused_when_loaded_back(tiny_paddle_dir, tmp_path):
    from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
    from squeezebert_paddle.training.errors import TrainingError
    from squeezebert_paddle.training.models import load_weights_from
    model_dir = copy_of(tiny_paddle_dir, tmp_path)
    state = read_pdparams(model_dir / WEIGHTS_FILE)
    name = next(iter(state))
    state[name] = np.full_like(state[name], np.nan)
    write_pdparams(model_dir / WEIGHTS_FILE, state)
    model = SqueezeBertForSequenceClassification.from_pretrained(tiny_paddle_dir)
    with pytest.raises(TrainingError, match=rf"{WEIGHTS_FILE}: .*{name}"):
        load_weights_from(model, model_dir)
