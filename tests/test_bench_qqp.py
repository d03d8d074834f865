"""bench/bench_qqp.py's own logic: inputs checked before any row starts, and a non-zero exit when a row
fails. The rows (run_qqp_*.py processes) and the matmul peak are stood in for: no benchmark runs here."""
import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT
from squeezebert_paddle.errors import run_main

sys.path.insert(0, str(ROOT / "bench"))     # as when run as a script: it imports its neighbour run_qqp_onnx
spec = importlib.util.spec_from_file_location("bench_qqp", ROOT / "bench" / "bench_qqp.py")
bench_qqp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_qqp)


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """The busy-machine NOTE depends on what else runs now; these tests read the other lines."""
    monkeypatch.setattr(bench_qqp, "busy_machine_note", lambda: None)


@pytest.fixture
def inputs(tmp_path):
    """A data file and a model directory with every file the rows look for (weights unread here)."""
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model_state.pdparams", "model.safetensors"):
        (model / name).write_text("")
    for name in ("model_config.json", "config.json"):          # the default configuration
        (model / name).write_text("{}")
    shutil.copyfile(bench_qqp.qqp_benchmark.DEFAULT_VOCAB, model / "vocab.txt")
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"sentence1": "a?", "sentence2": "b?", "label": 0}\n')
    return {"--model_dir": model, "--data_path": data, "--vocab": model / "vocab.txt"}


def argv(inputs, **changes):
    flags = {**inputs, **{f"--{k}": v for k, v in changes.items()}}
    return [str(item) for pair in flags.items() for item in pair]


@pytest.fixture
def no_benchmark(monkeypatch):
    def forbidden(*args):
        raise AssertionError("the benchmark started")
    monkeypatch.setattr(bench_qqp, "run_row", forbidden)
    monkeypatch.setattr(bench_qqp, "peak", forbidden)


BAD_INPUTS = {
    # name: (changed flags (a path under tmp_path where "{tmp}" is given), substrings of the one line)
    "missing-data": (dict(data_path="{tmp}/nope.jsonl"), ["--data_path", "nope.jsonl", "not found"]),
    "unknown-row": (dict(rows="paddle-inference-fp32,paddle-turbo"), ["--rows", "paddle-turbo", "choose from"]),
    "no-rows": (dict(rows=","), ["--rows", "choose from"]),
    "missing-model": (dict(model_dir="{tmp}/none"), ["--model_dir", "none", "does not exist", "--demo"]),
    "hf-only-model": (dict(model_dir="{tmp}/hf"), ["--model_dir", "Hugging Face checkpoint",
                                                   "convert_torch_to_paddle.py --model_dir"]),
    "paddle-only-model": (dict(model_dir="{tmp}/paddle", rows="torch-eager-fp32"),
                          ["--model_dir", "config.json", "model.safetensors", "--download"]),
    "missing-vocab": (dict(vocab="{tmp}/no_vocab.txt", rows="bert-paddle-inference-fp32"),
                      ["--vocab", "no_vocab.txt", "not found"]),
    "zero-repeats": (dict(repeats="0"), ["--repeats must be at least 1, got 0"]),
    "negative-limit": (dict(limit="-1"), ["--limit must be 0 (all pairs) or more, got -1"]),
    "output-json-under-a-file": (dict(output_json="{tmp}/pairs.jsonl/r.json"),
                                 ["--output_json", "pairs.jsonl is a file, not a directory"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_before_any_row(case, inputs, tmp_path, no_benchmark, capsys):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "hf" / "model.safetensors").write_text("")
    (tmp_path / "paddle").mkdir()
    for name in ("model_config.json", "model_state.pdparams", "vocab.txt"):
        (tmp_path / "paddle" / name).write_text("")
    changes, expected = BAD_INPUTS[case]
    flags = argv(inputs, **{k: v.format(tmp=tmp_path) for k, v in changes.items()})
    assert run_main(lambda: bench_qqp.main(flags), prog="bench_qqp.py") == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("bench_qqp.py: error: "), err
    assert all(s in lines[0] for s in expected), lines[0]


def test_bad_input_from_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_qqp.py"), "--data_path",
                           str(tmp_path / "nope.jsonl")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "nope.jsonl" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_default_data_is_the_developers_file_else_glue_dev_else_the_shipped_sample(inputs, tmp_path,
                                                                                   monkeypatch, capsys):
    """Without --data_path on a clone (no ../shared): data/QQP/dev.tsv when there, else the shipped
    sample, as run_qqp_*.py decide; the developers' file first where it exists. Each said in one line."""
    used = []
    monkeypatch.setattr(bench_qqp, "peak", lambda threads: {})
    monkeypatch.setattr(bench_qqp, "run_row", lambda name, args: used.append(args.data_path) or fake_row(name))
    monkeypatch.setattr(bench_qqp, "DATA", tmp_path / "shared" / "qqp_pairs.jsonl")
    monkeypatch.chdir(tmp_path)
    no_data = argv({k: v for k, v in inputs.items() if k != "--data_path"}, rows="torch-eager-fp32", repeats=1)

    assert bench_qqp.main(no_data) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("NOTE")]
    assert used.pop() == bench_qqp.SAMPLE and len(notes) == 1 and f"using {bench_qqp.SAMPLE}" in notes[0]

    glue = tmp_path / "data" / "QQP" / "dev.tsv"
    glue.parent.mkdir(parents=True)
    glue.write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\ta?\tb?\t0\n")
    assert bench_qqp.main(no_data) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("NOTE")]
    assert used.pop() == glue and notes == ["NOTE: no --data_path: using data/QQP/dev.tsv"]

    bench_qqp.DATA.parent.mkdir()
    bench_qqp.DATA.write_text('{"sentence1": "a?", "sentence2": "b?"}\n')
    assert bench_qqp.main(no_data) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("NOTE")]
    assert used.pop() == bench_qqp.DATA
    assert notes == [f"NOTE: no --data_path: using {bench_qqp.DATA} (the developers' QQP pairs)"]


def fake_row(name):
    framework, model, _ = bench_qqp.ROWS[name]
    return {"framework": framework, "backend": "eager", "precision": "fp32", "model_type": model,
            "examples_per_second": 10.0, "gflop_per_second": 5.0, "logits": [[0.0, 1.0]]}


@pytest.mark.parametrize("failing", [None, "paddle-inference-fp32"])
def test_exit_code_says_whether_every_row_ran(failing, inputs, monkeypatch, capsys):
    monkeypatch.setattr(bench_qqp, "peak", lambda threads: {"fp32": 100.0, "bf16": 200.0})
    monkeypatch.setattr(bench_qqp, "run_row",
                        lambda name, args: {"error": "error: it broke"} if name == failing else fake_row(name))
    rows = "torch-eager-fp32,paddle-inference-fp32"
    rc = bench_qqp.main(argv(inputs, rows=rows, repeats=1))
    out, err = capsys.readouterr()
    assert "| torch-eager-fp32 |" in out
    if failing is None:
        assert rc == 0 and "failed" not in out + err
    else:
        assert rc == 1 and f"| {failing} | failed: error: it broke |" in out
        assert err.strip().splitlines()[-1] == (f"error: 1 row(s) failed: {failing} (their errors are in the "
                                                f"table above)")



def test_the_peak_is_measured_each_round_and_the_highest_kept(inputs, monkeypatch, capsys):
    """A round measured while the machine was slow must not flatter the rows' share of the peak."""
    measured = iter([{"fp32": 100.0, "bf16": 200.0}, {"fp32": 50.0, "bf16": 400.0}])
    order = []
    monkeypatch.setattr(bench_qqp, "peak", lambda threads: order.append("peak") or next(measured))
    monkeypatch.setattr(bench_qqp, "run_row", lambda name, args: order.append(name) or fake_row(name))
    assert bench_qqp.main(argv(inputs, rows="torch-eager-fp32", repeats=2)) == 0
    out = capsys.readouterr().out
    assert order == ["peak", "torch-eager-fp32", "peak", "torch-eager-fp32"]
    assert "each measured before its rows: fp32 100, 50; bf16 200, 400) fp32 100 GFLOP/s, bf16 400 GFLOP/s" in out
    row = next(line for line in out.splitlines() if line.startswith("| torch-eager-fp32 |"))
    assert "| 5.0 | 5% |" in row                          # 5 GFLOP/s of the best fp32 round's 100


def test_agreement_counts_flips_and_balances_the_classes():
    sys.path.insert(0, str(ROOT / "bench"))
    from agreement import agreement
    reference = np.array([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.5, 0.0]])     # class 0 everywhere
    other = reference.copy()
    other[2, 0] = 1.6                                                           # a bigger margin, same class
    same, counts = agreement(other, reference, balance=False)
    assert same == 1.0 and counts.tolist() == [4, 0]
    same, counts = agreement(other, reference, balance=True)   # split at the medians: pair 2 now differs
    assert counts.tolist() == [2, 2] and same == 0.75


def test_each_paddle_row_names_its_backend():
    """A row runs the backend its name says, whatever run_qqp_paddle.py's default (auto) picks."""
    for name, (script, _, flags) in bench_qqp.ROWS.items():
        if script != "paddle":
            continue
        backend = flags[flags.index("--backend") + 1] if "--backend" in flags else None
        assert backend is not None and f"-{backend}-" in f"-{name}-", (name, flags)
