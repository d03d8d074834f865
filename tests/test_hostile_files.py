"""Hostile and broken input to the loading and writing paths (issue 11, items 1-7): crafted pickles on the
BERT paths, sequence lengths the model cannot take, a damaged or unwritable export cache, a disk that
fills mid-write, links planted where temporaries or locks go, files in the wrong encoding. Every case
must end in one line naming the file or flag, run no foreign code, and leave nothing half-written.

Full disks and read-only directories are injected (the tests run as any user, without mounts): a write
whose fsync fails with ENOSPC, `unwritable_reason` reporting a read-only filesystem.
"""
import errno
import json
import os
import pickle
import shutil
import sys

import numpy as np
import pytest

from conftest import TINY_QQP
from helpers import batch, hf_model, leftovers, link_tree, max_diff
from squeezebert_paddle import checkpoint, fileio, inference, tokenizer
from squeezebert_paddle.errors import run_main

BERT_TINY = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=40)


class _Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted_pdparams(path, marker):
    """A model_state.pdparams that runs `touch marker` when unpickled by paddle.load."""
    with open(path, "wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": _Evil(marker)}, f, protocol=4)


def _one_error_line(err: str, prog: str) -> str:
    lines = [line for line in err.splitlines() if "error" in line.lower()]   # not Paddle's import warnings
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{prog}.py: error: "), lines[0]
    return lines[0]


def _run(module, argv, monkeypatch, capsys):
    """A script's main through run_main with `argv`; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *map(str, argv)])
    code = run_main(module.main)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, vocab_file):
    """A tiny PaddleNLP BERT classifier saved by PaddleNLP (config.json, model_state.pdparams) with
    the uncased vocab, and its logits on a fixed batch."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification
    paddle.seed(0)
    model = BertForSequenceClassification(BertConfig(**BERT_TINY, num_labels=2)).eval()
    path = tmp_path_factory.mktemp("bert") / "tiny-bert"
    model.save_pretrained(str(path))
    shutil.copyfile(vocab_file, path / "vocab.txt")
    ids, mask, types = batch(2, 9, vocab=30522)
    with paddle.no_grad():
        logits = model(paddle.to_tensor(ids), token_type_ids=paddle.to_tensor(types),
                       attention_mask=paddle.to_tensor(mask)).numpy()
    return {"dir": path, "batch": (ids, mask, types), "logits": logits, "model": model}


@pytest.fixture
def evil_bert(bert_dir, tmp_path):
    path = link_tree(bert_dir["dir"], tmp_path / "evil-bert", skip={"model_state.pdparams"})
    marker = tmp_path / "PWNED"
    _crafted_pdparams(path / "model_state.pdparams", marker)
    return path, marker


# -- 1. no unpickling of untrusted files on the BERT paths --------------------------------------------

def test_run_qqp_paddle_bert_refuses_a_crafted_pickle(evil_bert, qqp_jsonl, monkeypatch, capsys):
    import run_qqp_paddle
    path, marker = evil_bert
    code, out, err = _run(run_qqp_paddle, ["--model_type", "bert", "--model_path", path, "--data_path", qqp_jsonl,
                                           "--limit", 2, "--threads", 1, "--warmup", 0, "--no_progress",
                                           "--max_seq_len", 16], monkeypatch, capsys)
    assert not marker.exists(), "the crafted pickle ran its command"
    assert code == 2
    line = _one_error_line(err, "run_qqp_paddle")
    assert f"{path / 'model_state.pdparams'}: refusing to load posix.system" in line, line


def test_glue_bert_model_refuses_a_crafted_pickle(evil_bert):
    from squeezebert_paddle.training.errors import TrainingError
    from squeezebert_paddle.training.models import load_glue_model
    path, marker = evil_bert
    with pytest.raises(TrainingError, match="refusing to load posix.system"):
        load_glue_model("bert", path, num_labels=2, overrides={})
    assert not marker.exists(), "the crafted pickle ran its command"


@pytest.mark.parametrize("safetensors", [False, True])
def test_safe_bert_loader_gives_paddlenlps_model(bert_dir, tmp_path, safetensors):
    """The same weights as PaddleNLP's own loader would give: logits, the base model, a new head size."""
    import paddle
    from paddlenlp.transformers import BertForSequenceClassification, BertModel
    path = bert_dir["dir"]
    if safetensors:
        path = tmp_path / "st"
        bert_dir["model"].save_pretrained(str(path), safe_serialization=True)
        assert (path / "model.safetensors").is_file() and not (path / "model_state.pdparams").exists()
    ids, mask, types = (paddle.to_tensor(a) for a in bert_dir["batch"])
    model = checkpoint.load_paddlenlp_model(BertForSequenceClassification, path)
    with paddle.no_grad():
        assert max_diff(model(ids, token_type_ids=types, attention_mask=mask), bert_dir["logits"]) == 0.0
        base = checkpoint.load_paddlenlp_model(BertModel, path)
        pooled = bert_dir["model"].bert(ids, token_type_ids=types, attention_mask=mask)[1]
        assert max_diff(base(ids, token_type_ids=types, attention_mask=mask)[1], pooled) == 0.0
    three = checkpoint.load_paddlenlp_model(BertForSequenceClassification, path, num_labels=3,
                                            ignore_mismatched_sizes=True, hidden_dropout_prob=0.0)
    assert three.classifier.weight.shape == [32, 3] and three.config.hidden_dropout_prob == 0.0
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"shape mismatch for .*classifier.weight: expected \(32, 3\), found \(32, 2\)"):
        checkpoint.load_paddlenlp_model(BertForSequenceClassification, path, num_labels=3)


def test_run_qqp_paddle_bert_runs_on_safely_loaded_weights(bert_dir, qqp_jsonl, tmp_path, monkeypatch, capsys):
    import run_qqp_paddle
    out_json = tmp_path / "r.json"
    code, out, err = _run(run_qqp_paddle, ["--model_type", "bert", "--model_path", bert_dir["dir"], "--data_path",
                                           qqp_jsonl, "--limit", 4, "--threads", 1, "--warmup", 0, "--no_progress",
                                           "--max_seq_len", 40, "--backend", "dygraph", "--output_json", out_json],
                          monkeypatch, capsys)
    assert code == 0, err
    assert np.shape(json.loads(out_json.read_text())["logits"]) == (4, 2)


# -- 2/3. flag ranges at parse time ---------------------------------------------------------------

def _parse(module_name, argv, monkeypatch):
    from squeezebert_paddle import qqp_benchmark as qb
    monkeypatch.setattr(sys, "argv", [f"{module_name}.py", *map(str, argv)])
    parser = qb.build_parser(module_name)
    return qb.parse_checked(parser, "paddle" if module_name.endswith("paddle") else "torch")


@pytest.mark.parametrize("framework", ["run_qqp_paddle", "run_qqp_torch"])
def test_max_seq_len_between_the_special_tokens_and_the_position_table(framework, tiny_qqp, monkeypatch, capsys):
    from squeezebert_paddle.qqp_benchmark import UsageError
    limit = TINY_QQP["max_position_embeddings"]          # 128, read from the model directory's config
    for ok in (5, limit):
        assert _parse(framework, ["--model_path", tiny_qqp["dir"], "--max_seq_len", ok], monkeypatch).max_seq_len == ok
    for bad in (1, 2, 4, limit + 1, 513):
        with pytest.raises(UsageError) as err:
            _parse(framework, ["--model_path", tiny_qqp["dir"], "--max_seq_len", bad], monkeypatch)
        assert str(err.value) == (f"--max_seq_len {bad} is out of range: it must lie between 5 ([CLS] a [SEP] b "
                                  f"[SEP] with a token of each text) and {limit} (the model's "
                                  f"max_position_embeddings)")
    assert _parse(framework, ["--random_init", "--max_seq_len", 512], monkeypatch).max_seq_len == 512
    with pytest.raises(UsageError, match="and 512"):
        _parse(framework, ["--random_init", "--max_seq_len", 513], monkeypatch)
    capsys.readouterr()


@pytest.mark.parametrize("flag, value, expected", [
    ("--warmup", -1, "--warmup -1 is out of range: it must be at least 0"),
    ("--batch_size", 0, "--batch_size 0 is out of range: it must be at least 1"),
    ("--threads", 0, f"--threads 0 is out of range: it must lie between 1 and {4 * os.cpu_count()} (4 per core; "
                     f"this machine has {os.cpu_count()})"),
    ("--limit", -1, "--limit -1 is out of range: it must be 0 (all pairs) or more"),
    ("--max_tokens", 127, "--max_tokens 127 is out of range: it must be at least --max_seq_len (128), so that "
                          "a batch holds the longest pair"),
])
def test_numeric_flags_are_checked_with_their_range(flag, value, expected, monkeypatch):
    from squeezebert_paddle.qqp_benchmark import UsageError
    with pytest.raises(UsageError) as err:
        _parse("run_qqp_paddle", ["--random_init", flag, value], monkeypatch)
    assert str(err.value) == expected


def test_sequence_length_bound_for_single_texts():
    assert tokenizer.sequence_length_problem(3, "--max_seq_length", 512, pair=False) is None
    assert "between 3" in tokenizer.sequence_length_problem(2, "--max_seq_length", 512, pair=False)
    assert checkpoint.max_positions(None) == 512


# -- 4. the export cache verifies what it reuses ---------------------------------------------------

@pytest.fixture
def exported(tiny_qqp, tmp_path):
    """A private copy of the tiny model with its export cache written; returns (model_dir, predictor
    output on a fixed batch)."""
    model_dir = link_tree(tiny_qqp["dir"], tmp_path / "model")
    prefix, reused = inference.cached_export(model_dir, say=lambda line: None)
    assert not reused
    ids, mask, types = batch(2, 9, vocab=30522)
    return model_dir, inference.Predictor(prefix, "cpu", "fp32", threads=1)(ids, mask, types)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated model.pdiparams": (lambda d: _truncate(d / "inference" / "model.pdiparams"),
                                  "model.pdiparams differs from what was recorded"),
    "deleted model.json": (lambda d: (d / "inference" / "model.json").unlink(), "model.json is missing"),
    "garbled export.json": (lambda d: (d / "inference" / "export.json").write_text("{oops"),
                            "export.json unreadable"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_export_cache_is_exported_again(case, exported):
    model_dir, reference = exported
    damage, reason = DAMAGE[case]
    damage(model_dir)
    said = []
    prefix, reused = inference.cached_export(model_dir, say=said.append)
    assert reused is False
    (line,) = said
    assert line.startswith(f"export: the cache in {model_dir / 'inference'} is not usable ({reason}") and \
        line.endswith("); exporting again"), line
    ids, mask, types = batch(2, 9, vocab=30522)
    assert max_diff(inference.Predictor(prefix, "cpu", "fp32", threads=1)(ids, mask, types), reference) == 0.0
    assert inference.cached_export(model_dir, say=said.append) == (prefix, True)


def test_a_read_only_model_directory_caches_in_the_user_cache(tiny_qqp, tmp_path, monkeypatch):
    model_dir = link_tree(tiny_qqp["dir"], tmp_path / "model")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_only = f"{model_dir} is not writable (read-only filesystem)"
    real = inference.unwritable_reason
    monkeypatch.setattr(inference, "unwritable_reason", lambda d: read_only if d == model_dir else real(d))
    before = sorted(p.name for p in model_dir.iterdir())
    os.chmod(model_dir, 0o555)           # (root writes anyway: the injected reason is what the code sees)
    try:
        said = []
        prefix, reused = inference.cached_export(model_dir, say=said.append)
        assert reused is False
        assert prefix.parent.parent == tmp_path / "xdg" / "squeezebert_paddle" / "exports"
        assert said == [f"export: {read_only}; the export is cached in {prefix.parent} instead"]
        assert sorted(p.name for p in model_dir.iterdir()) == before
        assert inference.cached_export(model_dir, say=said.append) == (prefix, True)
    finally:
        os.chmod(model_dir, 0o755)


def test_an_interrupted_export_leaves_nothing(tiny_qqp, tmp_path, monkeypatch):
    model_dir = link_tree(tiny_qqp["dir"], tmp_path / "model")
    stale = model_dir / ".tmp-inference-k1lled"          # what a kill -9 during an export leaves
    stale.mkdir()
    (stale / "model.pdiparams").write_bytes(b"\0" * 100)
    real_export = inference.export

    def disk_full(model, out_dir, packed=True):
        (out_dir / "model.pdiparams").write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "model.pdiparams"))

    monkeypatch.setattr(inference, "export", disk_full)
    with pytest.raises(OSError):
        inference.cached_export(model_dir, say=lambda line: None)
    assert leftovers(model_dir) == [] and not (model_dir / "inference").exists()
    monkeypatch.setattr(inference, "export", real_export)
    assert inference.cached_export(model_dir, say=lambda line: None)[1] is False
    assert leftovers(model_dir) == []


# -- 5/6. whole outputs, no planted link followed -----------------------------------------------------

def _tiny_hf(path, vocab_file, **config):
    hf_model("SqueezeBertForSequenceClassification", **config).save_pretrained(path)
    shutil.copyfile(vocab_file, path / "vocab.txt")
    return path


def _fsync_fails_on(monkeypatch, name):
    """ENOSPC from the fsync of the temporary file written for `name`."""
    real = os.fsync

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{name}."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)


def test_converter_on_a_full_disk_writes_nothing(tmp_path, vocab_file, monkeypatch, capsys):
    import convert_torch_to_paddle
    model_dir = _tiny_hf(tmp_path / "ckpt", vocab_file)
    before = sorted(p.name for p in model_dir.iterdir())
    _fsync_fails_on(monkeypatch, "vocab.txt")            # the last file written: the others are done by then
    code, out, err = _run(convert_torch_to_paddle, ["--model_dir", model_dir, "--output_dir", tmp_path / "out",
                                                    "--no_progress"], monkeypatch, capsys)
    assert code == 1 and not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    line = _one_error_line(err, "convert_torch_to_paddle")
    assert f"{tmp_path / 'out' / 'vocab.txt'}: No space left on device; free some space or write elsewhere" in line
    # in place (no vocab.txt to write): the config, written after the weights, fails; neither appears
    _fsync_fails_on(monkeypatch, "model_config.json")
    code, out, err = _run(convert_torch_to_paddle, ["--model_dir", model_dir, "--no_progress"], monkeypatch, capsys)
    assert code == 1 and sorted(p.name for p in model_dir.iterdir()) == before
    assert f"{model_dir / 'model_config.json'}: No space left on device" in _one_error_line(
        err, "convert_torch_to_paddle")


def test_converter_into_an_existing_directory_keeps_others_and_ends_with_the_weights(tmp_path, vocab_file):
    from squeezebert_paddle.conversion import convert_hf_dir
    model_dir = _tiny_hf(tmp_path / "ckpt", vocab_file)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    (out / "vocab.txt").symlink_to(victim)              # a planted link at an output name is replaced
    convert_hf_dir(model_dir, out)
    assert victim.read_text() == "untouched" and not (out / "vocab.txt").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["model_config.json", "model_state.pdparams", "notes.txt",
                                                      "vocab.txt"]
    assert (out / "vocab.txt").read_bytes() == vocab_file.read_bytes()


def test_cleanup_spares_a_running_writer_and_follows_no_link(tmp_path):
    live = tmp_path / ".tmp-model-l1ve"
    live.mkdir()
    lock = fileio._lock(live)
    dead = tmp_path / ".tmp-model-d3ad"
    dead.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / ".old-model-pl4nted").symlink_to(target)    # would become "model" -> elsewhere
    fileio.clean_interrupted_writes(tmp_path)
    assert live.is_dir() and not dead.exists()
    assert not (tmp_path / "model").exists() and not (tmp_path / "model").is_symlink() and target.is_dir()
    os.close(lock)
    fileio.clean_interrupted_writes(tmp_path)
    assert not live.exists()


def test_kernel_lock_never_follows_a_planted_link(tmp_path, monkeypatch):
    from squeezebert_paddle import cpu_kernels
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path / "kernels"))
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", None)
    monkeypatch.setattr(cpu_kernels, "_build", lambda directory: (object(), False))
    directory = cpu_kernels.cache_dir()
    directory.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (directory / ".lock").symlink_to(victim)
    cpu_kernels.load()
    assert victim.read_text() == "precious"


def test_quickstart_lock_never_follows_a_planted_link(tmp_path):
    import quickstart
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".quickstart.lock").symlink_to(victim)
    with pytest.raises(SystemExit, match="cannot be written"):
        quickstart.claim_output_dir(tmp_path / "out")
    assert victim.read_text() == "precious"


def test_demo_cleans_what_a_killed_run_left(tmp_path, monkeypatch, capsys):
    import convert_torch_to_paddle
    from squeezebert_paddle import demo
    root = tmp_path / "models"
    (root / ".tmp-squeezebert-mnli-k1lled").mkdir(parents=True)
    monkeypatch.setattr(demo, "write_demo_checkpoint", lambda name, out_dir, vocab, seed: out_dir)
    convert_torch_to_paddle.write_demo(root, convert_torch_to_paddle.DEFAULT_VOCAB)
    assert list(root.iterdir()) == []


def test_demo_on_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import convert_torch_to_paddle
    _fsync_fails_on(monkeypatch, "pytorch_model.bin")    # torch.save's file: the first demo's weights
    code, out, err = _run(convert_torch_to_paddle, ["--demo", "--models_root", tmp_path / "models"], monkeypatch,
                          capsys)
    assert code == 1
    line = _one_error_line(err, "convert_torch_to_paddle")
    assert f"{tmp_path / 'models' / 'squeezebert-uncased' / 'pytorch_model.bin'}: No space left on device" in line
    assert list((tmp_path / "models").iterdir()) == []


# -- 7. one line instead of a traceback -------------------------------------------------------------

LATIN1 = '{"hidden_size": 32, "note": "caf\xe9"}'.encode("latin-1")


def test_non_utf8_configs_are_one_line(tmp_path, vocab_file, tiny_qqp, qqp_jsonl, monkeypatch, capsys):
    import compare
    import convert_torch_to_paddle
    import run_qqp_torch
    hf = _tiny_hf(tmp_path / "hf", vocab_file)
    (hf / "config.json").write_bytes(LATIN1)
    code, _, err = _run(convert_torch_to_paddle, ["--model_dir", hf, "--no_progress"], monkeypatch, capsys)
    assert code == 1 and f"{hf / 'config.json'}: not UTF-8 text (byte 0xe9" in _one_error_line(
        err, "convert_torch_to_paddle")
    paddle_dir = link_tree(tiny_qqp["dir"], tmp_path / "pd", skip={"model_config.json"})
    (paddle_dir / "model_config.json").write_bytes(LATIN1)
    code, _, err = _run(convert_torch_to_paddle, ["--reverse", "--model_dir", paddle_dir, "--output_dir",
                                                  tmp_path / "back"], monkeypatch, capsys)
    assert code == 1 and "model_config.json: not UTF-8 text" in _one_error_line(err, "convert_torch_to_paddle")
    torch_dir = link_tree(tiny_qqp["dir"], tmp_path / "torch", skip={"config.json"})
    (torch_dir / "config.json").write_bytes(LATIN1)
    code, _, err = _run(run_qqp_torch, ["--model_path", torch_dir, "--data_path", qqp_jsonl, "--limit", 2],
                        monkeypatch, capsys)
    assert code == 2 and "config.json: not UTF-8 text" in _one_error_line(err, "run_qqp_torch")
    code, _, err = _run(compare, ["--model_dir", torch_dir, "--repeats", 1], monkeypatch, capsys)
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("compare.py: error: ")][0].count("config.json") >= 1


@pytest.mark.parametrize("index, expected", [
    ("{oops", "model.safetensors.index.json: not valid JSON"),
    ('{"metadata": {}}', 'model.safetensors.index.json: no "weight_map"'),
    ('{"weight_map": {"a": "../../etc/passwd"}}', "point outside"),
])
def test_a_bad_shard_index_is_one_line(index, expected, tmp_path, vocab_file, monkeypatch, capsys):
    import convert_torch_to_paddle
    hf = _tiny_hf(tmp_path / "hf", vocab_file)
    (hf / "model.safetensors").unlink()
    (hf / "model.safetensors.index.json").write_text(index)
    code, _, err = _run(convert_torch_to_paddle, ["--model_dir", hf, "--no_progress"], monkeypatch, capsys)
    assert code == 1 and expected in _one_error_line(err, "convert_torch_to_paddle")


def test_a_bin_of_non_tensors_is_one_line(tmp_path, vocab_file, monkeypatch, capsys):
    import torch

    import convert_torch_to_paddle
    hf = _tiny_hf(tmp_path / "hf", vocab_file)
    (hf / "model.safetensors").unlink()
    torch.save({"transformer.embeddings.word_embeddings.weight": [1, 2, 3]}, hf / "pytorch_model.bin")
    code, _, err = _run(convert_torch_to_paddle, ["--model_dir", hf, "--no_progress"], monkeypatch, capsys)
    assert code == 1
    assert "pytorch_model.bin: entries ['transformer.embeddings.word_embeddings.weight'] are not tensors" in \
        _one_error_line(err, "convert_torch_to_paddle")


def test_run_qqp_torch_on_damaged_weights_is_one_line(tiny_qqp, qqp_jsonl, tmp_path, monkeypatch, capsys):
    import run_qqp_torch
    truncated = link_tree(tiny_qqp["dir"], tmp_path / "truncated", skip={"model.safetensors"})
    data = (tiny_qqp["dir"] / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    code, _, err = _run(run_qqp_torch, ["--model_path", truncated, "--data_path", qqp_jsonl, "--limit", 2],
                        monkeypatch, capsys)
    assert code == 2 and "unreadable safetensors file" in _one_error_line(err, "run_qqp_torch")
    mismatch = link_tree(tiny_qqp["dir"], tmp_path / "mismatch", skip={"config.json"})
    config = json.loads((tiny_qqp["dir"] / "config.json").read_text())
    (mismatch / "config.json").write_text(json.dumps({**config, "num_labels": 3, "id2label": {
        "0": "a", "1": "b", "2": "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}))
    code, _, err = _run(run_qqp_torch, ["--model_path", mismatch, "--data_path", qqp_jsonl, "--limit", 2],
                        monkeypatch, capsys)
    assert code == 2 and "the weights do not match config.json" in _one_error_line(err, "run_qqp_torch")


def test_compare_checks_output_json_before_comparing(tmp_path, monkeypatch, capsys):
    import compare
    from squeezebert_paddle import parity
    monkeypatch.setattr(parity, "compare_dir", lambda *a, **k: pytest.fail("compared before checking"))
    (tmp_path / "model").mkdir()
    code, out, err = _run(compare, ["--model_dir", tmp_path / "model", "--output_json", tmp_path], monkeypatch,
                          capsys)
    assert code == 1 and out == ""
    assert f"--output_json {tmp_path} cannot be written: {tmp_path} is a directory" in _one_error_line(err, "compare")


def test_token_budget_flag_reaches_the_batches(qqp_jsonl, vocab_file, monkeypatch, capsys):
    from squeezebert_paddle import qqp_benchmark as qb
    from squeezebert_paddle.tokenizer import SqueezeBertTokenizer
    args = _parse("run_qqp_torch", ["--random_init", "--data_path", qqp_jsonl, "--limit", 40, "--sort_by_length",
                                    "--max_tokens", 1024, "--max_seq_len", 64], monkeypatch)
    workload = qb.load_workload(args, SqueezeBertTokenizer(vocab_file))
    sizes = [b.input_ids.size for b in workload.batches]
    assert sum(len(b) for b in workload.batches) == 40
    assert max(sizes) <= 1024 and max(len(b) for b in workload.batches) > 16     # not --batch_size rows
    report = qb.common_fields(args, "torch", {}, "eager")
    assert report["max_tokens"] == 1024 and report["batch_size"] is None          # not the unused default 16
    capsys.readouterr()
