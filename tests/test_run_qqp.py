"""run_qqp_paddle.py and run_qqp_torch.py end to end, as subprocesses, on a tiny 2-label SqueezeBERT
(HF and converted Paddle files side by side) and the first 40 QQP pairs (real ones, or the shipped sample
on a clone): the report's fields, the same predictions from Paddle inference, Paddle dygraph and
PyTorch (and with --sort_by_length), bf16, the GLUE TSV form, --random_init, the export cache, and
one-line errors with exit code 2 on bad inputs (one process per kind of error; the rest through the
scripts' run_main(main) in this process).
All script runs happen once, in the module fixture `runs`; the tests read their results.
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import TINY_QQP, TINY_QQP_MAX_LEN, TINY_QQP_PAIRS
from helpers import link_tree, run_script
from squeezebert_paddle.data import encode_examples, make_batches, read_pairs
from squeezebert_paddle.flops import SQUEEZEBERT, EncoderShape, forward_flops, packed_flops, workload_flops
from squeezebert_paddle.metrics import acc_and_f1
from squeezebert_paddle.qqp_benchmark import cpu_has_bf16
from squeezebert_paddle.tokenizer import SqueezeBertTokenizer

N = TINY_QQP_PAIRS
BATCH = 8
TINY_SHAPE = EncoderShape(hidden=TINY_QQP["hidden_size"], layers=TINY_QQP["num_hidden_layers"],
                          convs=((64, 64, 4), (64, 64, 4), (64, 64, 4), (64, 64, 1), (64, 128, 4), (128, 64, 4)))
SPEC_FIELDS = ("framework", "versions", "device", "threads", "backend", "precision", "model_type",
               "batch_size", "max_seq_len", "examples", "seconds", "examples_per_second",
               "ms_per_batch_median", "ms_per_batch_p90", "tokens_per_second", "peak_memory_mb",
               "predictions", "gflop", "gflop_per_second")
RANDOM_NOTE = "NOTE: random weights (--random_init)"
PARALLEL = 2          # script runs at a time


def script(name, *args, env=None):
    return run_script(f"run_qqp_{name}.py", *map(str, args), timeout=400, env=env)


def bench_args(model_dir, data, out, *extra):
    return ("--model_path", model_dir, "--data_path", data, "--limit", N, "--batch_size", BATCH,
            "--output_json", out, "--no_progress", "--threads", 1, "--warmup", 1, *extra)


def random_init_args(qqp_jsonl, vocab_file, out):
    return ("--random_init", "--data_path", qqp_jsonl, "--vocab", vocab_file, "--limit", 2, "--batch_size", 2,
            "--max_seq_len", 16, "--no_progress", "--threads", 1, "--warmup", 1, "--output_json", out)


def expected_gflop(vocab_file, examples, sort_by_length=False):
    encoded = encode_examples(SqueezeBertTokenizer(vocab_file), examples, TINY_QQP_MAX_LEN)
    batches = make_batches(encoded, BATCH, 0, sort_by_length)
    return workload_flops(TINY_SHAPE, [b.input_ids.shape for b in batches]) / 1e9


def expected_executed_gflop(vocab_file, examples):
    """The packed export's work: projections on real tokens, attention on lengths padded to 16."""
    encoded = encode_examples(SqueezeBertTokenizer(vocab_file), examples, TINY_QQP_MAX_LEN)
    batches = make_batches(encoded, BATCH, 0)
    return sum(packed_flops(TINY_SHAPE, *b.input_ids.shape, int(b.attention_mask.sum()), 16)
               for b in batches) / 1e9


def test_packed_flops_count_real_tokens_and_the_padded_grid():
    # no padding and no rounding: exactly the padded-batch count
    assert packed_flops(SQUEEZEBERT, 4, 32, 4 * 32, multiple=1) == forward_flops(SQUEEZEBERT, 4, 32)
    # half the tokens padded: projections halve, attention stays on the (rounded) grid
    full, half = forward_flops(SQUEEZEBERT, 4, 32), packed_flops(SQUEEZEBERT, 4, 30, 60, 16)
    assert half < 0.6 * full
    assert packed_flops(SQUEEZEBERT, 4, 30, 60, 16) == packed_flops(SQUEEZEBERT, 4, 32, 60, 16)


@pytest.fixture(scope="module")
def pairs(qqp_jsonl):
    examples, _ = read_pairs(qqp_jsonl)
    return examples[:N]


@pytest.fixture(scope="module")
def labels(pairs):
    return np.array([int(e.label) for e in pairs])


@pytest.fixture(scope="module")
def model_dir(tiny_qqp, tmp_path_factory):
    """A private copy of the tiny model directory, without an export cache yet."""
    path = link_tree(tiny_qqp["dir"], tmp_path_factory.mktemp("qqp_model") / "tiny")
    assert not (path / "inference").exists()
    return path


@pytest.fixture(scope="module")
def malformed_jsonl(qqp_jsonl, tmp_path_factory):
    """The first 40 pairs with 4 malformed lines (and a blank one, which is not a row) between them."""
    lines = qqp_jsonl.read_text(encoding="utf-8").splitlines()[:N]
    bad = {3: "this is not json", 10: '{"sentence1": "only one side"}', 20: "[1, 2]",
           30: '{"sentence1": "a?", "sentence2": "b?", "label": 7}'}
    out = []
    for i, line in enumerate(lines):
        if i in bad:
            out.append(bad[i])
        if i == 15:
            out.append("")
        out.append(line)
    path = tmp_path_factory.mktemp("malformed") / "some_bad.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path, len(bad)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.jsonl").write_text("", encoding="utf-8")
    (root / "all_bad.tsv").write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                      "1\t2\t3\tonly four columns\n4\t5\t6\ta?\tb?\tmaybe\n", encoding="utf-8")
    (root / "latin1.jsonl").write_bytes(b'{"sentence1": "caf\xe9?", "sentence2": "b?"}\n')   # its only row
    (root / "all_bad.jsonl").write_text('not json\n{"sentence1": "x"}\n[1]\n{"sentence1": 1, "sentence2": "y"}\n',
                                        encoding="utf-8")
    for directory, files in {"hf_only": ("config.json", "model.safetensors", "vocab.txt"), "empty_model": (),
                             "paddle_only": ("model_config.json", "model_state.pdparams", "vocab.txt")}.items():
        (root / directory).mkdir()
        for name in files:              # (their contents are never read: the directory is diagnosed first)
            (root / directory / name).write_text("{}")
    return root


def _has_cuda(framework):
    if framework == "paddle":
        import paddle
        return paddle.device.is_compiled_with_cuda()
    import torch
    return torch.cuda.is_available()


ERRORS = {
    # name: (script, flags replacing the defaults (None: drop the flag), substrings of the one error line)
    # run as processes:
    "unknown-precision": ("paddle", ["--precision", "int4"], ["--precision", "int4"]),        # argparse
    "gpu-paddle": ("paddle", ["--device", "gpu"], ["--device gpu"]),
    "gpu-torch": ("torch", ["--device", "gpu"], ["--device gpu"]),
    "missing-data": ("paddle", ["--data_path", "{bad}/nope.jsonl"], ["--data_path", "nope.jsonl", "not found"]),
}
# the same checks through the scripts' run_main(main) in this process (a process each is seconds of
# start-up for the same code path)
IN_PROCESS_ERRORS = {
    "missing-data-torch": ("torch", ["--data_path", "{bad}/nope.jsonl"], ["--data_path", "nope.jsonl", "not found"]),
    "empty-data": ("paddle", ["--data_path", "{bad}/empty.jsonl"], ["empty.jsonl", "no usable rows"]),
    "empty-data-torch": ("torch", ["--data_path", "{bad}/empty.jsonl"], ["empty.jsonl", "no usable rows"]),
    "all-malformed": ("paddle", ["--data_path", "{bad}/all_bad.jsonl"], ["all_bad.jsonl", "4 malformed"]),
    "all-malformed-tsv": ("paddle", ["--data_path", "{bad}/all_bad.tsv"], ["all_bad.tsv", "2 malformed"]),
    # an undecodable row is skipped and counted like any malformed one: here it was the only row
    "not-utf8": ("paddle", ["--data_path", "{bad}/latin1.jsonl"],
                 ["latin1.jsonl holds no usable rows", "line 1: not UTF-8 (byte 0xe9", "re-encode"]),
    # --output_json is written after the whole run: checked before any of it
    "output-json-under-a-file": ("paddle", ["--output_json", "{bad}/empty.jsonl/r.json"],
                                 ["--output_json {bad}/empty.jsonl/r.json cannot be written: "
                                  "{bad}/empty.jsonl is a file, not a directory"]),
    "output-json-is-a-directory": ("torch", ["--output_json", "{bad}/hf_only"],
                                   ["--output_json {bad}/hf_only cannot be written: {bad}/hf_only is a directory"]),
    "fp16-on-cpu": ("paddle", ["--precision", "fp16"], ["--precision fp16"]),
    # Paddle's AMP is a no-op on CPU: dygraph "bf16" would silently be fp32 under a bf16 label
    "bf16-dygraph-cpu": ("paddle", ["--precision", "bf16", "--backend", "dygraph"],
                         ["--precision bf16", "dygraph"] if cpu_has_bf16() else ["--precision bf16"]),
    "fp16-on-cpu-torch": ("torch", ["--precision", "fp16"], ["--precision fp16"]),
    "no-model-dir": ("paddle", ["--model_path", "{bad}/no_such_model"], ["--model_path", "no_such_model"]),
    "no-model-dir-torch": ("torch", ["--model_path", "{bad}/no_such_model"], ["--model_path", "no_such_model"]),
    "no-model": ("paddle", ["--model_path", None], ["--model_path", "--random_init"]),
    "missing-model-dir": ("paddle", ["--model_path", "{bad}/no_such_model"], ["no such directory", "--download",
                                                                               "--demo", "--random_init"]),
    # an unconverted HF checkpoint: the exact conversion command
    "hf-dir-paddle": ("paddle", ["--model_path", "{bad}/hf_only"],
                      ["is a Hugging Face checkpoint (config.json, model.safetensors)",
                       "`python convert_torch_to_paddle.py --model_dir {bad}/hf_only`"]),
    # an empty directory: what it should hold and how to get it, not a missing --vocab
    "empty-dir-paddle": ("paddle", ["--model_path", "{bad}/empty_model", "--vocab", "{bad}/no_vocab.txt"],
                         ["empty_model is empty", "model_config.json, model_state.pdparams and vocab.txt",
                          "`python convert_torch_to_paddle.py --download`", "`python convert_torch_to_paddle.py --demo`"]),
    "empty-dir-torch": ("torch", ["--model_path", "{bad}/empty_model", "--vocab", "{bad}/no_vocab.txt"],
                        ["empty_model is empty", "`python convert_torch_to_paddle.py --download`",
                         "`python convert_torch_to_paddle.py --demo`"]),
    "paddle-dir-torch": ("torch", ["--model_path", "{bad}/paddle_only"],
                         ["has no Hugging Face checkpoint", "--reverse --model_dir {bad}/paddle_only"]),
    "no-model-torch": ("torch", ["--model_path", None], ["--model_path", "--random_init"]),
}


def error_args(extra, model_dir, qqp_jsonl, bad_files):
    args = {"--model_path": str(model_dir), "--data_path": str(qqp_jsonl)}
    for flag, value in zip(extra[::2], extra[1::2]):
        if value is None:
            args.pop(flag)
        else:
            args[flag] = value.format(bad=bad_files)
    return [*[item for pair in args.items() for item in pair], "--limit", "4", "--no_progress", "--threads", "1",
            "--warmup", "0"]


@pytest.fixture(scope="module")
def runs(model_dir, qqp_jsonl, glue_dir, vocab_file, malformed_jsonl, bad_files, tmp_path_factory):
    """Every script run of this module, started a few at a time (they are independent: only their
    timings, which no test checks, feel the others). Phase 1 holds the only first Paddle inference-backend
    run on model_dir (it writes the export cache); phase 2 the inference runs that must find it.

    name -> {"proc": CompletedProcess, "report": the --output_json report or None, "tmp": its TMPDIR}."""
    root = tmp_path_factory.mktemp("runs")
    glue = glue_dir / "QQP" / "dev.tsv"
    phase1 = {
        "paddle_first": ("paddle", bench_args(model_dir, qqp_jsonl, root / "paddle_first.json", "--backend",
                                              "inference")),
        "torch": ("torch", bench_args(model_dir, qqp_jsonl, root / "torch.json")),
        "dygraph": ("paddle", bench_args(model_dir, malformed_jsonl[0], root / "dygraph.json",
                                         "--backend", "dygraph")),
        "torch_random": ("torch", random_init_args(qqp_jsonl, vocab_file, root / "torch_random.json")),
        **{f"error:{case}": (ERRORS[case][0], error_args(ERRORS[case][1], model_dir, qqp_jsonl, bad_files))
           for case in ERRORS if not (case.startswith("gpu-") and _has_cuda(ERRORS[case][0]))},
    }
    phase2 = {
        "paddle_sorted": ("paddle", bench_args(model_dir, qqp_jsonl, root / "paddle_sorted.json",
                                               "--sort_by_length", "--backend", "inference")),
        "glue": ("paddle", ("--model_path", model_dir, "--data_path", glue, "--batch_size", 4, "--output_json",
                            root / "glue.json", "--no_progress", "--threads", 1, "--warmup", 1)),   # default backend
        "paddle_random": ("paddle", (*random_init_args(qqp_jsonl, vocab_file, root / "paddle_random.json"),
                                     "--backend", "dygraph")),
    }
    if cpu_has_bf16():
        phase2["bf16"] = ("paddle", bench_args(model_dir, qqp_jsonl, root / "bf16.json", "--precision", "bf16",
                                               "--backend", "inference"))

    def one(item):
        name, (which, args) = item
        tmp = root / f"tmp_{name.replace(':', '_')}"
        tmp.mkdir()
        proc = script(which, *args, env={"TMPDIR": str(tmp)})
        out = root / f"{name}.json"
        report = json.loads(out.read_text()) if proc.returncode == 0 and out.is_file() else None
        return name, {"proc": proc, "report": report, "tmp": tmp}

    results = {}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results.update(pool.map(one, phase1.items()))
        results.update(pool.map(one, phase2.items()))
    return results


def ok(runs, name):
    """(process, report) of a run that must have succeeded."""
    run = runs[name]
    proc = run["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert run["report"] is not None
    return proc, run["report"]


def check_report(report, framework, backend, precision, examples, labels, gflop):
    missing = [f for f in SPEC_FIELDS if f not in report]
    assert not missing, missing
    assert report["framework"] == framework
    assert framework in report["versions"] and "python" in report["versions"]
    assert (report["device"], report["threads"], report["backend"], report["precision"]) == \
        ("cpu", 1, backend, precision)
    assert (report["model_type"], report["batch_size"], report["max_seq_len"]) == ("squeezebert", BATCH, 128)
    assert report["examples"] == examples
    assert report["seconds"] > 0 and report["peak_memory_mb"] > 0
    assert report["examples_per_second"] == pytest.approx(examples / report["seconds"])
    assert report["tokens_per_second"] == pytest.approx(report["tokens"] / report["seconds"])
    assert 0 < report["ms_per_batch_median"] <= report["ms_per_batch_p90"]
    predictions = report["predictions"]
    assert len(predictions) == examples and all(isinstance(p, int) and p in (0, 1) for p in predictions)
    scores = acc_and_f1(np.array(predictions), labels)
    assert report["accuracy"] == pytest.approx(scores["accuracy"])
    assert report["f1"] == pytest.approx(scores["f1"])
    # FLOPs of the model that ran (tiny), not of the released full-size shape
    assert report["gflop"] == pytest.approx(gflop, rel=1e-9)
    assert report["gflop_per_second"] == pytest.approx(report["gflop"] / report["seconds"])


# -- end to end --------------------------------------------------------------------------------

def test_paddle_inference_report(runs, tiny_qqp, labels, pairs, vocab_file):
    proc, report = ok(runs, "paddle_first")
    check_report(report, "paddle", "inference", "fp32", N, labels, expected_gflop(vocab_file, pairs))
    assert report["executed_gflop_per_second"] * report["seconds"] == pytest.approx(
        expected_executed_gflop(vocab_file, pairs), rel=1e-9)
    assert report["executed_gflop_per_second"] < report["gflop_per_second"]     # the padding was skipped
    assert report["skipped_rows"] == 0
    reference = tiny_qqp["logits"]
    assert 5 <= sum(report["predictions"]) <= N - 5          # both classes: the comparisons are live
    assert report["predictions"] == reference.argmax(-1).tolist()
    assert np.abs(np.array(report["logits"]) - reference).max() <= 1e-4
    assert "accuracy" in proc.stdout and RANDOM_NOTE not in proc.stdout


def test_torch_report_and_predictions_match_paddle(runs, tiny_qqp, labels, pairs, vocab_file):
    _, report = ok(runs, "torch")
    check_report(report, "torch", "eager", "fp32", N, labels, expected_gflop(vocab_file, pairs))
    assert report["executed_gflop_per_second"] == report["gflop_per_second"]
    _, paddle_report = ok(runs, "paddle_first")
    assert report["predictions"] == paddle_report["predictions"]
    assert np.abs(np.array(report["logits"]) - np.array(paddle_report["logits"])).max() <= 1e-4
    assert np.abs(np.array(report["logits"]) - tiny_qqp["logits"]).max() <= 1e-4


def test_dygraph_matches_inference_and_counts_malformed_rows(runs, malformed_jsonl, labels, pairs, vocab_file):
    _, report = ok(runs, "dygraph")
    check_report(report, "paddle", "dygraph", "fp32", N, labels, expected_gflop(vocab_file, pairs))
    assert report["skipped_rows"] == malformed_jsonl[1]
    _, inference_report = ok(runs, "paddle_first")
    assert report["predictions"] == inference_report["predictions"]
    assert np.abs(np.array(report["logits"]) - np.array(inference_report["logits"])).max() <= 1e-4


def test_sort_by_length_keeps_input_order(runs, labels, pairs, vocab_file):
    _, plain = ok(runs, "paddle_first")
    _, report = ok(runs, "paddle_sorted")
    check_report(report, "paddle", "inference", "fp32", N, labels, expected_gflop(vocab_file, pairs, True))
    assert report["sort_by_length"] is True
    assert report["predictions"] == plain["predictions"]
    assert np.abs(np.array(report["logits"]) - np.array(plain["logits"])).max() <= 1e-4
    assert report["gflop"] < plain["gflop"]          # less padding


def test_export_cache_written_then_reused(runs, model_dir):
    first, _ = ok(runs, "paddle_first")
    assert "export: written" in first.stdout
    for name in ("paddle_sorted", "bf16"):
        if name in runs:
            proc, _ = ok(runs, name)
            assert "export: reused cache" in proc.stdout, name
    assert (model_dir / "inference" / "export.json").is_file()


@pytest.mark.skipif(not cpu_has_bf16(), reason="bf16 on CPU needs amx_bf16 or avx512_bf16")
def test_paddle_bf16_agrees_with_fp32(runs, labels, pairs, vocab_file):
    _, report = ok(runs, "bf16")
    check_report(report, "paddle", "inference", "bf16", N, labels, expected_gflop(vocab_file, pairs))
    _, fp32 = ok(runs, "paddle_first")
    agree = np.mean(np.array(report["predictions"]) == np.array(fp32["predictions"]))
    assert agree >= 0.9, agree
    diff = np.abs(np.array(report["logits"]) - np.array(fp32["logits"])).max()
    assert 1e-3 < diff < 0.1, diff         # bf16 really in effect (fp32 differs by ~1e-6), and close


def test_glue_tsv(runs, model_dir, glue_dir):
    import paddle

    from squeezebert_paddle import SqueezeBertForSequenceClassification
    examples, skipped = read_pairs(glue_dir / "QQP" / "dev.tsv")       # GLUE's 9 rows, or the sample's 300
    assert len(examples) >= 9 and skipped == 0
    proc, report = ok(runs, "glue")
    assert report["examples"] == len(examples) and report["skipped_rows"] == 0 and report["batch_size"] == 4
    # the default backend (auto): the CPU kernels where they build here, else the exported predictor, saying why
    from squeezebert_paddle import cpu_encoder
    if cpu_encoder.available():
        assert report["backend"] == "kernels" and "export:" not in proc.stdout and "NOTE: backend" not in proc.stdout
    else:
        assert report["backend"] == "inference" and "NOTE: backend inference, not kernels: " in proc.stdout
    glue_labels = np.array([int(e.label) for e in examples])
    scores = acc_and_f1(np.array(report["predictions"]), glue_labels)
    assert report["accuracy"] == pytest.approx(scores["accuracy"])
    # the same predictions as our model in this process on the same rows
    tokenizer = SqueezeBertTokenizer(model_dir / "vocab.txt")
    batch = make_batches(encode_examples(tokenizer, examples, 128), len(examples))[0]
    model = SqueezeBertForSequenceClassification.from_pretrained(model_dir)
    with paddle.no_grad():
        logits = model(*(paddle.to_tensor(a) for a in (batch.input_ids, batch.attention_mask,
                                                        batch.token_type_ids))).numpy()
    assert report["predictions"] == logits.argmax(-1).tolist()
    assert np.abs(np.array(report["logits"]) - logits).max() <= 1e-4


def test_default_backend_falls_back_to_the_predictor_where_the_kernels_cannot_build(runs, model_dir, qqp_jsonl,
                                                                                   tmp_path):
    """--backend auto with the kernels unusable (their cache directory is a file): the exported predictor
    runs, and one NOTE line says why; --backend kernels stops instead."""
    ok(runs, "paddle_first")                 # (the export cache exists: this run only reads it)
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    env = {"SQUEEZEBERT_KERNEL_DIR": str(blocker)}
    proc = script("paddle", *bench_args(model_dir, qqp_jsonl, tmp_path / "r.json"), env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    notes = [l for l in proc.stdout.splitlines() if l.startswith("NOTE: backend")]
    assert len(notes) == 1 and "NOTE: backend inference, not kernels: the CPU inference kernels are unavailable" \
        in notes[0] and "SQUEEZEBERT_KERNEL_DIR" in notes[0], notes
    assert "unavailable" not in proc.stderr                # (no warning besides the NOTE)
    assert json.loads((tmp_path / "r.json").read_text())["backend"] == "inference"
    proc = script("paddle", *bench_args(model_dir, qqp_jsonl, tmp_path / "k.json", "--backend", "kernels"), env=env)
    assert proc.returncode == 1 and "--backend kernels: the CPU inference kernels are unavailable" in proc.stderr
    assert not (tmp_path / "k.json").exists()


# -- --random_init: the full-size squeezebert-uncased shape, so only 2 pairs of 16 tokens ----------

@pytest.mark.parametrize("name", ["paddle_random", "torch_random"])
def test_random_init(runs, name, pairs, vocab_file):
    proc, report = ok(runs, name)
    assert RANDOM_NOTE in proc.stdout
    assert report["random_init"] is True and report["model_path"] is None
    assert len(report["predictions"]) == 2 and np.array(report["logits"]).shape == (2, 2)
    # FLOPs of the released shape (12 layers of 768 channels), not of a tiny model
    shape = make_batches(encode_examples(SqueezeBertTokenizer(vocab_file), pairs[:2], 16), 2)[0].input_ids.shape
    assert report["gflop"] == pytest.approx(workload_flops(SQUEEZEBERT, [shape]) / 1e9, rel=1e-9)


# -- bad inputs: exit code 2, one line naming the flag or file, no traceback ---------------------

@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_exits_2_with_one_line(runs, case):
    if f"error:{case}" not in runs:
        pytest.skip(f"{ERRORS[case][0]} sees a CUDA device here")
    proc = runs[f"error:{case}"]["proc"]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert all(s in lines[0] for s in ERRORS[case][2]), lines[0]
    assert "examples_per_second" not in proc.stdout


@pytest.mark.parametrize("case", list(IN_PROCESS_ERRORS))
def test_bad_input_in_process(case, model_dir, qqp_jsonl, bad_files, monkeypatch, capsys):
    import run_qqp_paddle
    import run_qqp_torch
    from squeezebert_paddle.errors import run_main
    name, extra, expected = IN_PROCESS_ERRORS[case]
    monkeypatch.setattr(sys, "argv", [f"run_qqp_{name}.py", *error_args(extra, model_dir, qqp_jsonl, bad_files)])
    rc = run_main({"paddle": run_qqp_paddle, "torch": run_qqp_torch}[name].main)
    out, err = capsys.readouterr()
    assert rc == 2
    lines = [line for line in err.splitlines() if "error" in line.lower()]   # not Paddle's import warnings
    assert len(lines) == 1 and lines[0].startswith(f"run_qqp_{name}.py: error: "), err
    assert all(s.format(bad=bad_files) in lines[0] for s in expected), lines[0]
    assert "examples_per_second" not in out and "--vocab" not in lines[0]


def test_uncached_export_leaves_no_temporary_directory(tiny_qqp, tmp_path, monkeypatch):
    """--random_init exports to a temporary directory (no model directory to cache in); the predictor
    has read the files once built, so the directory must go (a full-size export is ~200 MB)."""
    import argparse
    import tempfile

    import paddle

    import run_qqp_paddle
    from squeezebert_paddle import SqueezeBertForSequenceClassification
    from helpers import batch
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = SqueezeBertForSequenceClassification.from_pretrained(tiny_qqp["dir"])
    args = argparse.Namespace(model_type="squeezebert", random_init=True, model_path=None, device="cpu",
                              precision="fp32", threads=1, tensorrt=False)
    predictor = run_qqp_paddle.predictor_for(args, model)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("qqp_export_")] == []
    ids, mask, types = batch(3, 11, vocab=30522)
    with paddle.no_grad():
        ref = model(*(paddle.to_tensor(a) for a in (ids, mask, types))).numpy()
    assert np.abs(predictor(ids, mask, types) - ref).max() <= 1e-5


# -- what the start summary and the report say about the model -----------------------------------

@pytest.mark.parametrize("name", ["paddle_first", "torch", "paddle_random", "torch_random"])
def test_start_summary_names_the_model_and_random_weights(runs, model_dir, name):
    proc, _ = ok(runs, name)
    first = proc.stdout.splitlines()[0]
    if "random" in name:
        assert first == ("model: squeezebert at the squeezebert-uncased configuration, 2-label head (RANDOM "
                         "WEIGHTS from --random_init: timings are real, predictions are not)")
    else:
        assert first == f"model: {model_dir}"         # real (not --demo) weights: no flag


@pytest.fixture(scope="module")
def mnli_demo(tmp_path_factory, vocab_file):
    """A tiny 3-label MNLI-style classifier (HF files and their conversion) marked as --demo weights."""
    import shutil

    from helpers import hf_model
    from squeezebert_paddle.conversion import convert_hf_dir
    from squeezebert_paddle.demo import MARKER_FILE, MNLI_LABELS
    path = tmp_path_factory.mktemp("mnli") / "tiny-mnli"
    hf_model("SqueezeBertForSequenceClassification", id2label=MNLI_LABELS, **TINY_QQP).save_pretrained(path)
    shutil.copyfile(vocab_file, path / "vocab.txt")
    (path / MARKER_FILE).write_text("RANDOM WEIGHTS\n")
    convert_hf_dir(path)
    return path


@pytest.mark.parametrize("framework", ["paddle", "torch"])
def test_label_count_mismatch_says_why_no_accuracy(framework, mnli_demo, qqp_jsonl, tmp_path, monkeypatch, capsys):
    import run_qqp_paddle
    import run_qqp_torch
    from squeezebert_paddle.errors import run_main
    out_json = tmp_path / "report.json"
    argv = [f"run_qqp_{framework}.py", "--model_path", str(mnli_demo), "--data_path", str(qqp_jsonl), "--limit", "4",
            "--no_progress", "--threads", "1", "--warmup", "0", "--output_json", str(out_json)]
    monkeypatch.setattr(sys, "argv", argv + (["--backend", "dygraph"] if framework == "paddle" else []))
    assert run_main({"paddle": run_qqp_paddle, "torch": run_qqp_torch}[framework].main) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"model: {mnli_demo} (RANDOM WEIGHTS from --demo: timings are real, predictions are not)"
    reason = (f"no accuracy: the model has 3 labels (MNLI: contradiction, entailment, neutral), the data's labels "
              f"are QQP's 0/1; fine-tune a QQP classifier with `python run_glue.py --task_name QQP "
              f"--model_name_or_path {mnli_demo} --ignore_mismatched_sizes` (a new 2-label head)")
    assert reason in lines
    report = json.loads(out_json.read_text())
    assert np.shape(report["logits"]) == (4, 3) and "accuracy" not in report and report["no_accuracy"] == reason


def test_bert_export_runs_the_whole_paddlenlp_model(monkeypatch, tmp_path):
    """--model_type bert: PaddleNLP's BERT (here a tiny one) is exported whole, and the predictor gives
    its dygraph logits."""
    import argparse
    import tempfile

    import paddle
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification

    import run_qqp_paddle
    from helpers import batch
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    paddle.seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=4, intermediate_size=64,
                                                     max_position_embeddings=40, num_labels=2)).eval()
    args = argparse.Namespace(model_type="bert", random_init=True, model_path=None, device="cpu",
                              precision="fp32", threads=1, tensorrt=False)
    predictor = run_qqp_paddle.predictor_for(args, model)
    ids, mask, types = batch(3, 11, vocab=99)
    with paddle.no_grad():
        ref = model(paddle.to_tensor(ids), token_type_ids=paddle.to_tensor(types),
                    attention_mask=paddle.to_tensor(mask)).numpy()
    got = predictor(ids, mask, types)
    assert got.shape == (3, 2) and np.abs(got - ref).max() <= 1e-5


def test_the_model_directory_flag_has_both_spellings(tmp_path):
    """--model_path and --model_dir name the same flag in every script that takes a model directory."""
    import compare
    import convert_torch_to_paddle
    from squeezebert_paddle import qqp_benchmark as qb
    for framework in ("Paddle", "torch"):
        parser = qb.build_parser(framework)
        assert parser.parse_args(["--model_dir", str(tmp_path)]).model_path == tmp_path
        assert parser.parse_args(["--model_path", str(tmp_path)]).model_path == tmp_path
    import run_glue
    for flag in ("--model_name_or_path", "--model_path", "--model_dir"):
        args = run_glue.build_parser().parse_args(["--task_name", "QQP", "--output_dir", "o", flag, str(tmp_path)])
        assert args.model_name_or_path == str(tmp_path)
    for module in (compare, convert_torch_to_paddle):
        assert module.parse_args(["--model_path", str(tmp_path)]).model_dir == [tmp_path]
        assert module.parse_args(["--model_dir", str(tmp_path), "--model_path", str(tmp_path / "b")]).model_dir == \
            [tmp_path, tmp_path / "b"]


def test_random_init_with_a_model_path_is_refused(tmp_path):
    """--random_init reads no weights: with --model_path too, the report would name a model never read."""
    from squeezebert_paddle import qqp_benchmark as qb
    args = qb.build_parser("x").parse_args(["--random_init", "--model_dir", str(tmp_path)])
    with pytest.raises(qb.UsageError, match=f"^--random_init builds random weights and does not read --model_path "
                                            f"{tmp_path}; pass one or the other$"):
        qb.check_args(args)
