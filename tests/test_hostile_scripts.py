"""The scripts and caches against a hostile tester's findings (issue 11, second pass): damaged or
foreign export caches (ONNX and Paddle), FIFOs where files go, thread counts that abort OpenMP, flags
out of range or empty, a pickled .bin, data and vocab paths that are not regular files. Each is one
line, checked before the work, or healed; in-process where the check allows it."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT, link_tree
from squeezebert_paddle import fileio, qqp_benchmark as qb
from squeezebert_paddle.errors import ExpectedError, max_threads, run_main

sys.path.insert(0, str(ROOT / "bench"))          # bench scripts import their neighbours, as when run


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_qqp_onnx = _load(ROOT / "bench" / "run_qqp_onnx.py")
bench_qqp = _load(ROOT / "bench" / "bench_qqp.py")
compare = _load(ROOT / "compare.py")
quickstart = _load(ROOT / "quickstart.py")


def _one_line(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- the ONNX export cache verifies what it reuses ---------------------------------------------------

def test_a_damaged_onnx_cache_is_exported_again(tmp_path, monkeypatch):
    """torch.onnx.export and the model load are stubbed (the cache logic is what is tested): a truncated
    or garbled model.onnx is exported again with one line saying why, never handed to the runtime."""
    import torch
    import run_qqp_torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    exports = []

    def fake_export(model, example, path, **kwargs):
        exports.append(path)
        Path(path).write_bytes(b"onnx" * 1000 + bytes([len(exports)]))

    monkeypatch.setattr(torch.onnx, "export", fake_export)
    monkeypatch.setattr(run_qqp_torch, "load_model", lambda args: torch.nn.Identity())
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    args = argparse.Namespace(model_type="squeezebert", random_init=False, model_path=model_dir)
    said = []
    path = run_qqp_onnx.onnx_export(args, say=said.append)
    assert len(exports) == 1 and said == []
    assert run_qqp_onnx.onnx_export(args, say=said.append) == path and len(exports) == 1    # reused
    for damage, reason in ((lambda: path.write_bytes(path.read_bytes()[:100]), "model.onnx differs"),
                           (lambda: path.write_text("garbage"), "model.onnx differs"),
                           (lambda: path.unlink(), "model.onnx is missing")):
        damage()
        said.clear()
        assert run_qqp_onnx.onnx_export(args, say=said.append) == path
        (line,) = said
        assert line.startswith(f"export: the ONNX cache in {path.parent} is not usable ({reason}"), line
        assert path.read_bytes()[-1] == len(exports)                   # the fresh export is what is there


# -- the Paddle export cache: what the predictor loads, FIFOs, a file or link in its place ----------------

def _fake_cache(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "model.json").write_text('{"program": 1}')
    (cache / "model.pdiparams").write_bytes(b"\1" * 4096)
    fileio.write_cache_record(cache, "export.json", fingerprint="key")


def test_the_cache_check_covers_the_files_the_predictor_loads(tmp_path):
    from squeezebert_paddle import inference
    cache = tmp_path / "inference"
    _fake_cache(cache)
    assert inference._cache_problem(cache, "key") is None
    meta = json.loads((cache / "export.json").read_text())
    meta["files"] = {"model.json": meta["files"]["model.json"]}        # the record left out the parameters
    (cache / "export.json").write_text(json.dumps(meta))
    (cache / "model.pdiparams").write_bytes(b"\1" * 10)
    assert inference._cache_problem(cache, "key") == "model.pdiparams is not in the record"


def _finishes(call, seconds: float = 10.0):
    """call() run in a thread; its result (or its exception, raised here), or a failure when it is still
    blocked after `seconds`."""
    result = []

    def target():
        try:
            result.append((call(), None))
        except Exception as err:      # noqa: BLE001 (handed to the caller)
            result.append((None, err))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"blocked for {seconds} s"
    value, err = result[0]
    if err is not None:
        raise err
    return value


def test_an_export_record_that_is_a_fifo_does_not_block(tmp_path):
    from squeezebert_paddle import inference
    cache = tmp_path / "inference"
    _fake_cache(cache)
    (cache / "export.json").unlink()
    os.mkfifo(cache / "export.json")
    problem = _finishes(lambda: inference._cache_problem(cache, "key"))
    assert problem.startswith("export.json unreadable") and "not a regular file" in problem
    (cache / "export.json").unlink()
    fileio.write_cache_record(cache, "export.json", fingerprint="key")
    (cache / "model.pdiparams").unlink()
    os.mkfifo(cache / "model.pdiparams")                                 # a recorded file turned FIFO
    assert "model.pdiparams" in _finishes(lambda: inference._cache_problem(cache, "key"))


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_file_or_link_where_the_cache_goes_is_refused_before_the_work(kind, tiny_qqp, tmp_path, monkeypatch):
    import run_qqp_paddle
    from squeezebert_paddle import inference
    model_dir = link_tree(tiny_qqp["dir"], tmp_path / "model")
    if kind == "file":
        (model_dir / "inference").write_text("x")
    else:
        (tmp_path / "elsewhere").mkdir()
        (model_dir / "inference").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setattr(inference, "export", lambda *a, **k: pytest.fail("exported"))
    what = "a file" if kind == "file" else "a symbolic link"
    with pytest.raises(ExpectedError, match=f"inference is {what}, not the export cache directory; remove"):
        inference.cached_export(model_dir, say=lambda line: None)
    args = argparse.Namespace(backend="inference", model_type="squeezebert", random_init=False, model_path=model_dir)
    with pytest.raises(qb.UsageError, match=f"--model_path: .*inference is {what}"):
        run_qqp_paddle.check_export_location(args)
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".")) == []
    assert (model_dir / "inference").is_symlink() == (kind == "symlink")


# -- thread counts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("script", ["run_qqp_paddle.py", "run_qqp_torch.py", "bench/run_qqp_onnx.py"])
def test_threads_beyond_the_bound_is_one_line(script, tmp_path, monkeypatch, capsys):
    module = _load(ROOT / script)
    monkeypatch.setattr(sys, "argv", [script, "--random_init", "--threads", "100000"])
    assert run_main(module.main, prog=Path(script).name) == 2
    line = _one_line(capsys)
    assert line == (f"{Path(script).name}: error: --threads 100000 is out of range: it must lie between 1 and "
                    f"{max_threads()} (4 per core; this machine has {os.cpu_count()})")


def test_quickstart_and_bench_bound_threads(capsys):
    with pytest.raises(SystemExit) as exit_:
        quickstart.parse_args(["--threads", "100000"])
    assert exit_.value.code == 2 and "--threads 100000 is out of range" in capsys.readouterr().err
    assert run_main(lambda: bench_qqp.main(["--threads", "100000"]), prog="bench_qqp.py") == 2
    assert _one_line(capsys).startswith("bench_qqp.py: error: --threads 100000 is out of range")


# -- flags ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--tolerance", "nan"], "--tolerance nan is out of range"),
    (["--tolerance", "inf"], "--tolerance inf is out of range"),
    (["--tolerance", "-1"], "--tolerance -1 is out of range"),
    (["--repeats", "0"], "--repeats 0 is out of range: it must be at least 1"),
])
def test_compare_checks_its_numbers_when_parsing(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        compare.parse_args(flags)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_bench_checks_flags_before_looking_for_data(capsys):
    """Without --data_path: the bad flag is the one line; no default data was looked up and announced."""
    for flags, message in ((["--limit", "-1"], "--limit must be 0"), (["--repeats", "0"], "--repeats must be"),
                           (["--rows", "nope"], "unknown --rows ['nope']")):
        assert run_main(lambda: bench_qqp.main(flags), prog="bench_qqp.py") == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"bench_qqp.py: error: {message}") and err.count("\n") == 1, (out, err)


@pytest.mark.parametrize("parse, flag", [
    (lambda v: qb.build_parser("x").parse_args(["--model_path", v]), "--model_path/--model_dir"),
    (lambda v: qb.build_parser("x").parse_args(["--random_init", "--output_json", v]), "--output_json"),
    (lambda v: compare.parse_args(["--output_json", v]), "--output_json"),
    (lambda v: bench_qqp.parse_args(["--data_path", v]), "--data_path"),
    (lambda v: quickstart.parse_args(["--output_dir", v]), "--output_dir"),
])
def test_an_empty_path_flag_is_refused(parse, flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("")
    assert exit_.value.code == 2 and f"argument {flag}: empty path" in capsys.readouterr().err


# -- a pickled pytorch_model.bin ----------------------------------------------------------------------------

class _Marker:
    """Unpickled unsafely, this creates the file `path`."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.fixture
def pickled_bin(tiny_qqp, tmp_path):
    """The tiny model with its safetensors replaced by a pickled pytorch_model.bin that would run a
    command; returns (directory, marker file the command would create)."""
    model_dir = link_tree(tiny_qqp["dir"], tmp_path / "model", skip=("model.safetensors",))
    marker = tmp_path / "PWNED"
    (model_dir / "pytorch_model.bin").write_bytes(pickle.dumps({"w": _Marker(marker)}, protocol=2))
    return model_dir, marker


def test_a_pickled_bin_is_refused_as_unsafe_by_the_torch_scripts(pickled_bin, capsys):
    import run_qqp_torch
    model_dir, marker = pickled_bin
    args = argparse.Namespace(random_init=False, model_type="squeezebert", model_path=model_dir)
    with pytest.raises(qb.UsageError) as err:
        run_qqp_torch.load_model(args)
    message = str(err.value)
    assert f"{model_dir / 'pytorch_model.bin'}: refused as unsafe" in message and "from_tf" not in message
    assert not marker.exists()
    assert compare.main(["--model_dir", str(model_dir), "--repeats", "1"]) == 1
    line = [x for x in capsys.readouterr().err.splitlines() if "error" in x][0]
    assert line.startswith("compare.py: error: ") and "pytorch_model.bin: refused as unsafe" in line, line
    assert not marker.exists()


# -- data and vocab paths that are not regular files ------------------------------------------------------------

def test_a_data_path_that_is_a_directory_or_fifo_says_so(tmp_path):
    os.mkfifo(tmp_path / "pairs.jsonl")
    for path, what in ((tmp_path, "a directory"), (tmp_path / "pairs.jsonl", "a FIFO")):
        args = argparse.Namespace(data_path=path)
        with pytest.raises(qb.UsageError, match=f"--data_path {path}: {what}") as err:
            _finishes(lambda: qb.load_workload(args, tokenizer=None))
        assert "not found" not in str(err.value)


@pytest.mark.parametrize("kind", ["directory", "symlink loop"])
def test_an_unreadable_model_vocab_is_refused_not_replaced(kind, tmp_path):
    vocab = tmp_path / "vocab.txt"
    if kind == "directory":
        vocab.mkdir()
    else:
        vocab.symlink_to(tmp_path / "vocab.txt")
    args = argparse.Namespace(model_path=tmp_path, vocab=qb.DEFAULT_VOCAB)
    with pytest.raises(qb.UsageError, match=f"--model_path: {vocab}: .*{kind.split()[-1]}"):
        qb.tokenizer_for(args)
