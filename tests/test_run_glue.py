"""run_glue.py end to end on tiny models and GLUE files (the real samples, or on a clone the shipped
GLUE-format sample): outputs, every task shape (pairs, MNLI's two dev sets, STS-B regression), flag
errors, BERT through PaddleNLP, a kill during training, and data parallel on CPU (2 processes x 8 ==
1 process x 16)."""
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import run_glue
from squeezebert_paddle import SqueezeBertForSequenceClassification
from squeezebert_paddle.assets import SAMPLE_GLUE_DIR
from squeezebert_paddle.checkpoint import read_pdparams
from squeezebert_paddle.data import read_glue_tsv
from squeezebert_paddle.demo import MARKER_FILE
from squeezebert_paddle.training import fine_tune, models
from squeezebert_paddle.training.settings import RunSettings, output_dir_problem
from test_data import fake_hub
from test_training import TINY, subset_glue_dir, trainer_state

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def headless_dir(tmp_path_factory, vocab_file):
    """Like squeezebert-mnli-headless: an encoder without a classifier head."""
    import paddle
    from squeezebert_paddle import SqueezeBertConfig, SqueezeBertModel, SqueezeBertTokenizer
    path = tmp_path_factory.mktemp("headless")
    paddle.seed(0)
    with paddle.utils.unique_name.guard():
        SqueezeBertModel(SqueezeBertConfig(**TINY)).save_pretrained(path)
    SqueezeBertTokenizer(vocab_file).save_pretrained(path)
    return path


def main(argv) -> int:
    """run_glue.main in this process (faster than a subprocess; the CLI path is the same)."""
    return run_glue.main([str(a) for a in argv])


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-u", str(ROOT / "run_glue.py"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kwargs)


def flags(model_dir, data_dir, output_dir, task, *extra):
    return ["--task_name", task, "--model_name_or_path", str(model_dir), "--data_dir", str(data_dir),
            "--output_dir", str(output_dir), "--device", "cpu", "--max_seq_length", "64",
            *map(str, extra)]


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def with_test_file(src: Path, dst: Path, dev_name: str, test_name: str, columns: int, rows: int = 12) -> None:
    """A GLUE-format test file made from dev rows (their leading columns are the test columns)."""
    dev = read_tsv(src / dev_name)
    (dst / test_name).write_text("".join("\t".join(r[:columns]) + "\n" for r in dev[:1 + rows]), encoding="utf-8")


# -- end to end --------------------------------------------------------------------------------

def test_qqp_reference_command_end_to_end(tmp_path, headless_dir, glue_dir):
    """The reference QQP command's flags, shortened, on the QQP files, as a subprocess."""
    out = tmp_path / "QQP"
    run = cli("--model_type", "squeezebert", "--model_name_or_path", headless_dir, "--task_name", "qqp",
              "--data_dir", glue_dir / "QQP", "--batch_size", 16, "--learning_rate", 4e-5,
              "--num_train_epochs", 5, "--max_steps", 8, "--logging_steps", 2, "--save_steps", 4,
              "--output_dir", out, "--device", "cpu", "--lr_scheduler", 1, "--seed", 5, "--do_predict")
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stderr
    assert "newly initialised" in log and "classifier.weight" in log
    train_rows = len(read_glue_tsv(glue_dir / "QQP" / "train.tsv", "qqp", "train")[0])    # 329 real rows
    per_epoch = math.ceil(train_rows / 16)
    assert f"train examples {train_rows}" in log
    assert f"steps per epoch {per_epoch}, total steps 8, warmup steps 0" in log
    assert f"step 2/8 | epoch {2 / per_epoch:.2f} | loss " in log and "step 8/8" in log
    assert "CPU kernels: fused" in log
    args = json.loads((out / "args.json").read_text())
    assert (args["task_name"], args["total_steps"], args["world_size"], args["eval_steps"]) == ("QQP", 8, 1, 4)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8]
    assert {"dev/accuracy", "dev/f1", "dev/acc_and_f1", "dev/loss"} <= set(records[0])
    for name in ("checkpoint-4", "checkpoint-8", "best", "final"):
        model = SqueezeBertForSequenceClassification.from_pretrained(out / name)
        assert model.classifier.weight.shape == [32, 2]
        assert not (out / name / MARKER_FILE).exists()          # real weights in: no random-weights mark
    final = read_pdparams(out / "final" / "model_state.pdparams")
    assert np.array_equal(final["classifier.weight"],
                          read_pdparams(out / "checkpoint-8" / "model_state.pdparams")["classifier.weight"])
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((out / "visualdl").iterdir())
    rows = read_tsv(out / "predictions" / "QQP.tsv")
    assert rows[0] == ["index", "prediction"]
    test_rows = len(read_glue_tsv(glue_dir / "QQP" / "test.tsv", "qqp", "test")[0])
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(test_rows)]
    assert {r[1] for r in rows[1:]} <= {"0", "1"}


def test_mnli_scores_both_dev_sets_and_writes_both_submissions(tmp_path, headless_dir, glue_dir):
    data = tmp_path / "MNLI"
    data.mkdir()
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        (data / name).write_bytes((glue_dir / "MNLI" / name).read_bytes())
    with_test_file(data, data, "dev_matched.tsv", "test_matched.tsv", 10)
    with_test_file(data, data, "dev_mismatched.tsv", "test_mismatched.tsv", 10)
    out = tmp_path / "out"
    code = main(flags(headless_dir, data, out, "mnli", "--batch_size", 16, "--max_steps", 3,
                               "--save_steps", 3, "--do_predict"))
    assert code == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"dev_matched/accuracy", "dev_mismatched/accuracy", "dev_matched/loss"} <= set(record)
    assert trainer_state(out)["best_metric"] == trainer_state(out)["eval_log"][0]["dev_matched/accuracy"]
    for name, test_name in (("MNLI-m.tsv", "test_matched.tsv"), ("MNLI-mm.tsv", "test_mismatched.tsv")):
        rows = read_tsv(out / "predictions" / name)
        assert rows[0] == ["index", "prediction"] and len(rows) == len(read_tsv(data / test_name))
        assert {r[1] for r in rows[1:]} <= {"contradiction", "entailment", "neutral"}


def test_stsb_is_regression_with_correlation_metrics(tmp_path, headless_dir, glue_dir):
    data = subset_glue_dir(glue_dir / "STS-B", tmp_path / "STS-B", 64, 40)
    with_test_file(data, data, "dev.tsv", "test.tsv", 9)
    out = tmp_path / "out"
    assert main(flags(headless_dir, data, out, "sts-b", "--batch_size", 16, "--max_steps", 4,
                               "--save_steps", 4, "--learning_rate", 1e-3, "--do_predict")) == 0
    record = json.loads((out / "metrics.jsonl").read_text())
    assert {"dev/pearson", "dev/spearmanr", "dev/corr", "dev/loss"} <= set(record)
    assert -1.0 <= record["dev/pearson"] <= 1.0
    assert SqueezeBertForSequenceClassification.from_pretrained(out / "final").classifier.weight.shape == [32, 1]
    rows = read_tsv(out / "predictions" / "STS-B.tsv")
    assert len(rows) == 13 and all(len(r[1].split(".")[1]) == 3 for r in rows[1:])   # scores, 3 decimals


def test_malformed_rows_are_skipped_and_counted(tmp_path, headless_dir, glue_dir, caplog):
    data = subset_glue_dir(glue_dir / "RTE", tmp_path / "RTE", 40, 20)
    with open(data / "train.tsv", "a", encoding="utf-8") as f:
        f.write("9998\tonly two columns\n9999\tpremise\thypothesis\tmaybe\n")
    caplog.set_level("INFO")
    assert main(flags(headless_dir, data, tmp_path / "out", "rte", "--batch_size", 8,
                               "--max_steps", 2, "--save_steps", 2)) == 0
    assert (f"{data / 'train.tsv'}: skipped 2 malformed rows, kept 40 (line 42: 2 tab-separated columns, "
            f"expected 4; line 43: label 'maybe' is not one of entailment, not_entailment)") in caplog.text
    assert "train examples 40" in caplog.text


# -- flag and data errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("extra,expected", [
    (["--learning_rate", "0"], "--learning_rate must be positive"),
    (["--warmup_steps", "5", "--warmup_proportion", "0.1"], "not both"),
    (["--max_seq_length", "1000"], "--max_seq_length 1000 is out of range: it must lie between 5"),
    (["--learning_rate", "nan"], "--learning_rate must be a finite number, got nan"),
    (["--max_grad_norm", "inf"], "--max_grad_norm must be a finite number, got inf"),
    (["--seed", "-1"], "--seed must be in 0..4294967295, got -1"),
    (["--hidden_dropout_prob", "1.5"], "--hidden_dropout_prob must be in [0, 1)"),
    (["--amp"], "--amp needs --device gpu"),
    (["--resume_from_checkpoint", "/nonexistent/checkpoint-9"], "trainer_state.json not found"),
    (["--output_dir", ""], '--output_dir is empty; give a path ("." for the current directory)'),
    (["--data_dir", ""], "--data_dir is empty"),
    (["--resume_from_checkpoint", ""], "--resume_from_checkpoint is empty"),
    (["--cpu_threads", "100000"], "--cpu_threads 100000 is out of range: it must lie between 1 and"),
    (["--max_steps", "99999999999999999999"], "--max_steps must be at most 1000000000 and --num_train_epochs "
                                               "at most 10000, got 99999999999999999999 and 3"),
    (["--num_train_epochs", "99999999999999999999"], "got -1 and 99999999999999999999"),
    (["--data_dir", str(ROOT / "run_glue.py")], f"--data_dir {ROOT / 'run_glue.py'} is not a directory; pass"),
])
def test_bad_flags_fail_with_one_line(tmp_path, headless_dir, glue_dir, capsys, extra, expected):
    code = main(flags(headless_dir, glue_dir / "QQP", tmp_path / "out", "QQP", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("run_glue.py: error: ") and expected in err and "\n" not in err


def test_missing_data_names_the_files_without_traceback(tmp_path, headless_dir):
    run = cli(*flags(headless_dir, tmp_path / "nowhere" / "MNLI", tmp_path / "out", "MNLI"))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv", "--download"):
        assert name in lines[0]


def test_a_data_row_that_is_not_utf8_is_skipped_and_named(tmp_path, headless_dir, glue_dir, caplog):
    """One Latin-1 row costs that row, not the file: skipped, counted and named by its line."""
    data = subset_glue_dir(glue_dir / "RTE", tmp_path / "RTE", 40, 8)
    with open(data / "train.tsv", "ab") as f:
        f.write(b"9999\tLatin-1 text: caf\xe9\tanother sentence\tentailment\n")
    caplog.set_level("INFO")
    assert main(flags(headless_dir, data, tmp_path / "out", "rte", "--max_steps", 1, "--batch_size", 8)) == 0
    assert (f"{data / 'train.tsv'}: skipped 1 malformed rows, kept 40 (line 42: not UTF-8 (byte 0xe9 at "
            f"column 23))") in caplog.text


def test_model_dir_and_device_problems(tmp_path, headless_dir, glue_dir, capsys):
    import paddle
    assert main(flags(tmp_path, glue_dir / "QQP", tmp_path / "o", "QQP")) == 2
    assert "lacks model_config.json, model_state.pdparams, vocab.txt" in capsys.readouterr().err
    if not paddle.is_compiled_with_cuda():
        assert main([*flags(headless_dir, glue_dir / "QQP", tmp_path / "o", "QQP"), "--device", "gpu"]) == 2
        assert "has no CUDA support" in capsys.readouterr().err
    (tmp_path / "o" / "checkpoint-5").mkdir(parents=True)
    assert main(flags(headless_dir, glue_dir / "QQP", tmp_path / "o", "QQP")) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run_glue.parse_args(["--task_name", "squad", "--model_name_or_path", "m", "--output_dir", "o"])
    assert exit_.value.code == 2 and "unknown GLUE task 'squad'" in capsys.readouterr().err
    assert run_glue.parse_args(["--task_name", "sst2", "--model_name_or_path", "m", "--output_dir", "o"]
                               ).task_name == "SST-2"


def test_diverging_run_exits_with_one_line(tmp_path, headless_dir, glue_dir, capsys, monkeypatch):
    real = models.forward_batch
    monkeypatch.setattr(models, "forward_batch", lambda m, b, with_labels: (
        (real(m, b, with_labels)[0] * float("inf"), None) if with_labels and m.training else real(m, b, with_labels)))
    assert main(flags(headless_dir, glue_dir / "QQP", tmp_path / "o", "QQP", "--max_steps", 2)) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]      # after the run's own log lines
    assert last == "run_glue.py: error: step 1: training loss is inf; stopping, no checkpoint was saved before it"


def test_sequence_longer_than_the_model_exits_with_one_line(tmp_path, headless_dir, glue_dir, capsys):
    """Refused before anything loads: the model's max_position_embeddings is read from its config."""
    assert main(flags(headless_dir, glue_dir / "QQP", tmp_path / "o", "QQP", "--max_seq_length", 200)) == 2
    assert capsys.readouterr().err == (
        "run_glue.py: error: --max_seq_length 200 is out of range: it must lie between 5 ([CLS] a [SEP] b "
        "[SEP] with a token of each text) and 128 (the model's max_position_embeddings)\n")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("task,length,low", [("QQP", 1, 5), ("QQP", 2, 5), ("QQP", 4, 5), ("SST-2", 2, 3)])
def test_max_seq_length_below_the_special_tokens_is_refused(tmp_path, headless_dir, glue_dir, capsys, task,
                                                            length, low):
    assert main(flags(headless_dir, glue_dir / task, tmp_path / "o", task, "--max_seq_length", length)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"run_glue.py: error: --max_seq_length {length} is out of range: it must lie "
                          f"between {low} ") and err.endswith(" and 128 (the model's max_position_embeddings)\n")


@pytest.mark.parametrize("task,length", [("QQP", 5), ("SST-2", 3)])
def test_the_shortest_allowed_sequence_trains(tmp_path, headless_dir, glue_dir, task, length):
    """At the lowest --max_seq_length the truncation budget is one word piece per text, never negative."""
    data = subset_glue_dir(glue_dir / task, tmp_path / task, 16, 8)
    out = tmp_path / "out"
    assert main(flags(headless_dir, data, out, task, "--max_seq_length", length, "--batch_size", 16,
                      "--max_steps", 1, "--save_steps", 1)) == 0
    assert trainer_state(out)["global_step"] == 1


def test_config_files_that_are_not_utf8_end_in_one_line(tmp_path, headless_dir, glue_dir, capsys):
    bad_config, bad_tokenizer = (shutil.copytree(headless_dir, tmp_path / n) for n in ("config", "tok"))
    (bad_config / "model_config.json").write_bytes(b'{"hidden_size": 32, "name": "caf\xe9"}')
    assert main(flags(bad_config, glue_dir / "QQP", tmp_path / "o1", "QQP")) == 2
    assert capsys.readouterr().err == (f"run_glue.py: error: {bad_config / 'model_config.json'}: not UTF-8 text "
                                       f"(byte 0xe9 at offset 32); restore the file from the checkpoint's source\n")
    (bad_tokenizer / "tokenizer_config.json").write_bytes(b'{"do_lower_case": true, "x": "caf\xe9"}')
    assert main(flags(bad_tokenizer, glue_dir / "QQP", tmp_path / "o2", "QQP", "--max_steps", 1)) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f"run_glue.py: error: {bad_tokenizer / 'tokenizer_config.json'}: not UTF-8 text (byte 0xe9 "
                    f"at offset 33); restore the file from the checkpoint's source")


# -- where the data comes from, random weights, a used output directory ------------------------------

def test_derived_defaults_are_decided_by_the_settings():
    settings = run_glue.parse_args(["--task_name", "sst2", "--model_name_or_path", "m", "--output_dir", "o",
                                    "--save_steps", "7", "--batch_size", "5"])
    assert (settings.eval_steps, settings.eval_batch_size, settings.data_dir) == (7, 5, None)
    assert settings.learning_rate == RunSettings("SST-2", "m", "o").learning_rate


def test_shipped_sample_and_random_weights_are_announced(tmp_path, headless_dir, monkeypatch, caplog):
    """No --data_dir and no ./glue_data/RTE: the run trains on the shipped sample and says so; a
    model directory marked RANDOM_WEIGHTS.txt is announced in the start summary."""
    model = tmp_path / "demo-model"
    shutil.copytree(headless_dir, model)
    (model / MARKER_FILE).write_text("RANDOM WEIGHTS")
    monkeypatch.chdir(tmp_path)
    caplog.set_level("INFO")
    out = tmp_path / "out"
    assert main(["--task_name", "rte", "--model_name_or_path", model, "--output_dir", out, "--device", "cpu",
                 "--max_seq_length", 64, "--batch_size", 8, "--max_steps", 1, "--save_steps", 1000]) == 0
    sample = SAMPLE_GLUE_DIR / "RTE"
    assert f"using the small GLUE-format sample shipped with the package, {sample}" in caplog.text
    assert f"RANDOM WEIGHTS: {model} carries RANDOM_WEIGHTS.txt" in caplog.text
    assert json.loads((out / "args.json").read_text())["data_dir"] == str(sample)
    # the fine-tuned model carries the mark on, so that run_qqp_*.py and compare.py say so too
    assert f"demo (random) weights in {model}" in (out / "final" / MARKER_FILE).read_text()
    assert (out / "best" / MARKER_FILE).is_file()


def test_download_through_the_command(tmp_path, headless_dir, monkeypatch):
    """--download with a stand-in hub: GLUE QQP files written into --data_dir, then trained on."""
    calls = []
    fake_hub(monkeypatch, calls)
    data, out = tmp_path / "QQP", tmp_path / "out"
    assert main(flags(headless_dir, data, out, "QQP", "--download", "--batch_size", 4, "--max_steps", 1,
                      "--save_steps", 1000, "--do_predict")) == 0
    assert calls == [("nyu-mll/glue", "qqp")]
    assert sorted(p.name for p in data.iterdir()) == ["dev.tsv", "test.tsv", "train.tsv"]
    assert read_tsv(data / "train.tsv")[0] == ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    assert len(read_tsv(out / "predictions" / "QQP.tsv")) == 5


def go_offline(monkeypatch, then=None):
    """The Hugging Face hub and PaddleNLP's host both unreachable, as --download meets them without
    network; `then()` runs when the last of them fails."""
    datasets = pytest.importorskip("datasets")

    def offline(path, name):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (ConnectionError)")

    def dead_host(task):
        if then is not None:
            then()
        raise RuntimeError("Download from https://dataset.bj.bcebos.com/glue/QQP.zip failed. Retry limit reached")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(fine_tune, "paddlenlp_glue_files", dead_host)


def test_download_offline_ends_in_one_line(tmp_path, headless_dir, monkeypatch, capsys):
    go_offline(monkeypatch)
    assert main(flags(headless_dir, tmp_path / "QQP", tmp_path / "out", "QQP", "--download")) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "run_glue.py: error: could not download GLUE QQP from the Hugging Face hub (Couldn't reach "
        "'nyu-mll/glue' on the Hub (ConnectionError)) nor with PaddleNLP (Download from "
        "https://dataset.bj.bcebos.com/glue/QQP.zip failed. Retry limit reached); without network use "
        f"--data_dir with GLUE TSV files, or the shipped sample: --data_dir {SAMPLE_GLUE_DIR / 'QQP'}")


@pytest.mark.parametrize("before, during, left", [
    (None, None, None),                               # created by the run, nothing written: removed
    ("", None, [".run_glue.lock"]),                   # there before the run: stays
    (None, "notes.txt", [".run_glue.lock", "notes.txt"]),    # something else written there meanwhile: stays
])
def test_a_failed_download_leaves_no_output_dir_behind(tmp_path, headless_dir, monkeypatch, capsys, before,
                                                       during, left):
    """A run that fails before writing anything removes the output directory it created (with its
    parents) and its lock file; a directory that was there, or that holds anything else, stays."""
    out = tmp_path / "runs" / "out"
    if before is not None:
        out.mkdir(parents=True)
    go_offline(monkeypatch, then=during and (lambda: (out / during).write_text("not the run's")))
    assert main(flags(headless_dir, tmp_path / "QQP", out, "QQP", "--download")) == 1
    assert "could not download GLUE QQP" in capsys.readouterr().err
    if left is None:
        assert not (tmp_path / "runs").exists()
    else:
        assert sorted(p.name for p in out.iterdir()) == left


def test_a_failed_run_keeps_a_directory_reached_through_dot_dot(tmp_path, headless_dir, monkeypatch, capsys):
    """--output_dir new/../old names old, which was there before the run: it stays."""
    (tmp_path / "old").mkdir()
    go_offline(monkeypatch)
    assert main(flags(headless_dir, tmp_path / "QQP", tmp_path / "new" / ".." / "old", "QQP", "--download")) == 1
    assert "could not download GLUE QQP" in capsys.readouterr().err
    assert (tmp_path / "old").is_dir()


@pytest.mark.parametrize("left", ["args.json", "metrics.jsonl", "best", "final"])
def test_output_dir_of_another_run_is_refused(tmp_path, headless_dir, glue_dir, capsys, left):
    out = tmp_path / "o"
    out.mkdir()
    (out / left).mkdir() if "." not in left else (out / left).write_text("{}")
    shown = left if "." in left else left + "/"
    assert main(flags(headless_dir, glue_dir / "QQP", out, "QQP")) == 2
    assert capsys.readouterr().err == (
        f"run_glue.py: error: --output_dir {out} already holds another run ({shown}); choose another "
        f"--output_dir, or pass --overwrite_output_dir to write over it\n")
    (out / "checkpoint-10").mkdir()
    (out / "checkpoint-9").mkdir()
    assert main(flags(headless_dir, glue_dir / "QQP", out, "QQP")) == 2
    assert capsys.readouterr().err == (
        f"run_glue.py: error: --output_dir {out} already holds checkpoints of another run (checkpoint-9/, "
        f"checkpoint-10/, {shown}); continue it with --resume_from_checkpoint {out}/checkpoint-<step>, or "
        f"pass --overwrite_output_dir to write over it\n")
    for allowed in (["--overwrite_output_dir"], ["--resume_from_checkpoint", glue_dir]):
        settings = run_glue.parse_args(flags(headless_dir, glue_dir / "QQP", out, "QQP", *allowed))
        assert output_dir_problem(settings) == (None if allowed[0] == "--overwrite_output_dir" else
                                                f"--resume_from_checkpoint: {glue_dir / 'trainer_state.json'} "
                                                f"not found; pass an OUTPUT/checkpoint-<step> directory")


def test_overwrite_output_dir_removes_the_previous_run(tmp_path, headless_dir, glue_dir, caplog):
    """A 2-step run, then a 1-step run over it: none of the first run's outputs survive beside the
    second's (a stale checkpoint-2 would be resumed as if it were this run's); unknown files stay."""
    data = subset_glue_dir(glue_dir / "RTE", tmp_path / "RTE", 16, 8)
    with_test_file(glue_dir / "RTE", data, "dev.tsv", "test.tsv", 3, rows=4)
    out = tmp_path / "ow"
    common = ["--batch_size", 8, "--save_steps", 1, "--logging_steps", 1]
    assert main(flags(headless_dir, data, out, "rte", *common, "--max_steps", 2, "--do_predict")) == 0
    assert json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
    (out / "visualdl" / "vdlrecords.1000.log").write_bytes(b"an older run's scalars")
    (out / "notes.txt").write_text("mine")
    caplog.set_level("INFO")
    assert main(flags(headless_dir, data, out, "rte", *common, "--max_steps", 1, "--overwrite_output_dir")) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".run_glue.lock", "args.json", "best", "checkpoint-1", "final", "metrics.jsonl", "notes.txt",
        "trainer_state.json", "training_curves.png", "visualdl"]
    assert (out / "notes.txt").read_text() == "mine"
    assert trainer_state(out)["global_step"] == 1
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    new_records = [p.name for p in (out / "visualdl").iterdir()]    # (named by the second: may repeat)
    assert len(new_records) == 1 and new_records != ["vdlrecords.1000.log"]
    assert (f"--overwrite_output_dir: removed the previous run's checkpoint-1/, checkpoint-2/, args.json, "
            f"metrics.jsonl, trainer_state.json, best/, final/, predictions/, visualdl/, training_curves.png "
            f"from {out}") in caplog.text


def test_output_dir_that_cannot_be_written_is_refused_before_the_run(tmp_path, headless_dir, glue_dir):
    afile = tmp_path / "afile"
    afile.write_text("x")
    run = cli(*flags(headless_dir, glue_dir / "QQP", afile / "sub", "QQP"))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (f"run_glue.py: error: --output_dir {afile / 'sub'} cannot be written: {afile} is a "
                          f"file, not a directory; choose another --output_dir\n")


def test_output_dir_on_a_read_only_filesystem_is_refused(tmp_path, headless_dir, glue_dir):
    """run_glue.py in a private mount namespace where tmp_path/ro is a read-only bind mount."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mount = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}"
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", mount], capture_output=True).returncode:
        pytest.skip("no private mount namespace here (unshare -m needs CAP_SYS_ADMIN)")
    command = " ".join(map(shlex.quote, [sys.executable, str(ROOT / "run_glue.py"),
                                         *flags(headless_dir, glue_dir / "QQP", ro / "out", "QQP")]))
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mount} && {command}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (f"run_glue.py: error: --output_dir {ro / 'out'} cannot be written: {ro} is not "
                          f"writable (read-only filesystem); choose another --output_dir\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a directory without write permission")
def test_output_dir_without_write_permission_is_refused(tmp_path, headless_dir, glue_dir, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main(flags(headless_dir, glue_dir / "QQP", locked / "a" / "b", "QQP")) == 2
    assert capsys.readouterr().err == (f"run_glue.py: error: --output_dir {locked / 'a' / 'b'} cannot be "
                                       f"written: {locked} is not writable (no permission); choose another "
                                       f"--output_dir\n")
    assert not (locked / "a").exists()


# -- BERT through PaddleNLP ------------------------------------------------------------------------

def test_bert_model_type_trains_through_paddlenlp(tmp_path, vocab_file, glue_dir):
    import paddle
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification, BertTokenizer
    model_dir = tmp_path / "tiny-bert"
    paddle.seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=64)).save_pretrained(model_dir)
    BertTokenizer(str(vocab_file)).save_pretrained(model_dir)
    out = tmp_path / "out"
    assert main(["--model_type", "bert", *flags(model_dir, glue_dir / "QQP", out, "QQP"),
                          "--batch_size", 16, "--max_steps", 4, "--save_steps", 2, "--do_predict"]) == 0
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [2, 4]
    reloaded = BertForSequenceClassification.from_pretrained(out / "checkpoint-4")
    final = paddle.load(str(out / "final" / "model_state.pdparams"))
    assert np.array_equal(reloaded.classifier.weight.numpy(), final["classifier.weight"].numpy())
    # Resume works for PaddleNLP models too (their optimizer state maps by parameter name).
    assert main(["--model_type", "bert", *flags(model_dir, glue_dir / "QQP", out, "QQP"),
                          "--batch_size", 16, "--max_steps", 4, "--save_steps", 2,
                          "--resume_from_checkpoint", out / "checkpoint-2"]) == 0
    resumed = paddle.load(str(out / "final" / "model_state.pdparams"))
    assert np.array_equal(resumed["classifier.weight"].numpy(), final["classifier.weight"].numpy())
    assert len(read_tsv(out / "predictions" / "QQP.tsv")) == len(read_tsv(glue_dir / "QQP" / "test.tsv"))


# -- a kill at any moment ---------------------------------------------------------------------------

def test_sigkill_during_training_leaves_every_checkpoint_usable(tmp_path, headless_dir, glue_dir):
    out = tmp_path / "out"
    args = flags(headless_dir, glue_dir / "QQP", out, "QQP", "--batch_size", 8, "--max_steps", 12,
                 "--save_steps", 1, "--eval_steps", 1000, "--logging_steps", 1000)
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_glue.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint-3").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.013)                     # somewhere inside a later step or checkpoint write
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) >= 3
    for ckpt in checkpoints:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        assert state["global_step"] == int(ckpt.name.split("-")[1])
        read_pdparams(ckpt / "optimizer.pdparams")
        SqueezeBertForSequenceClassification.from_pretrained(ckpt)
    assert main([*args, "--resume_from_checkpoint", checkpoints[-1]]) == 0
    assert not list(out.glob(".tmp-*")) and (out / "checkpoint-12").is_dir()


# -- data parallel -----------------------------------------------------------------------------------

def test_two_processes_of_8_follow_one_process_of_16(tmp_path, headless_dir, glue_dir):
    """`--batch_size` is per process: gloo data parallel on CPU with 2 x 8 takes the same global
    batches as 1 x 16, so with dropout off the loss trajectories and weights agree."""
    common = ["--num_train_epochs", 2, "--learning_rate", 2e-3, "--save_steps", 4, "--logging_steps", 1,
              "--hidden_dropout_prob", 0, "--attention_probs_dropout_prob", 0, "--seed", 3]
    data = subset_glue_dir(glue_dir / "QQP", tmp_path / "QQP", 100, 9)      # 100: a short last batch
    assert main(flags(headless_dir, data, tmp_path / "one", "QQP", "--batch_size", 16, *common)) == 0
    launch = subprocess.run(
        [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
         str(tmp_path / "log"), str(ROOT / "run_glue.py"),
         *flags(headless_dir, data, tmp_path / "two", "QQP", "--batch_size", 8, *common)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    logs = {r: (tmp_path / "log" / f"workerlog.{r}").read_text() for r in (0, 1)}
    assert launch.returncode == 0, logs[0][-3000:] + logs[1][-3000:]
    one, two = trainer_state(tmp_path / "one"), trainer_state(tmp_path / "two")
    assert len(one["train_log"]) == 14                       # 2 epochs x ceil(100 / 16) steps
    losses_one, losses_two = (np.array([r["loss"] for r in t["train_log"]]) for t in (one, two))
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-5)
    a = read_pdparams(tmp_path / "one" / "final" / "model_state.pdparams")
    b = read_pdparams(tmp_path / "two" / "final" / "model_state.pdparams")
    param_diff = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    print(f"2 x 8 vs 1 x 16 over {len(losses_one)} steps: max relative loss difference "
          f"{float(np.max(np.abs(losses_two - losses_one) / np.abs(losses_one))):.2e}, "
          f"max parameter difference {param_diff:.2e}")
    assert param_diff < 1e-5
    assert json.loads((tmp_path / "two" / "args.json").read_text())["world_size"] == 2
    assert "step 1/14" in logs[0] and "step 1/14" not in logs[1]        # rank 0 alone logs


# -- resume: damaged, hostile and changed checkpoints; a full disk; divergence ----------------------

@pytest.fixture(scope="module")
def rte_run(tmp_path_factory, headless_dir, glue_dir):
    """A finished 4-step RTE run with checkpoint-2 and checkpoint-4 (never modify it: copy it)."""
    root = tmp_path_factory.mktemp("rte_run")
    data = subset_glue_dir(glue_dir / "RTE", root / "RTE", 32, 8)
    out = root / "out"
    common = ["--batch_size", 8, "--max_steps", 4, "--save_steps", 2, "--learning_rate", 2e-5]
    assert main(flags(headless_dir, data, out, "RTE", *common)) == 0
    return {"out": out, "data": data, "common": common}


def resume_args(headless_dir, rte_run, out, ckpt, *changed, task="RTE"):
    return [*flags(headless_dir, rte_run["data"], out, task, *rte_run["common"]), *map(str, changed),
            "--resume_from_checkpoint", str(ckpt)]


def copied_checkpoint(rte_run, tmp_path, step=2) -> Path:
    return shutil.copytree(rte_run["out"] / f"checkpoint-{step}", tmp_path / "run" / f"checkpoint-{step}")


def last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("damage,expected", [
    (lambda c: (c / "trainer_state.json").write_text(json.dumps(
        {k: v for k, v in json.loads((c / "trainer_state.json").read_text()).items() if k != "seed"})),
     "{c}/trainer_state.json: lacks 'seed'; the checkpoint is damaged or not run_glue.py's: resume from another "
     "checkpoint-<step>"),
    (lambda c: (c / "lr_scheduler.json").write_text('{"last_epoch": "x"}'),
     "{c}/lr_scheduler.json: expected {{\"last_epoch\": <step>, \"last_lr\": <number>}}, found "
     "{{\"last_epoch\": \"x\"}}; the checkpoint is damaged: resume from another checkpoint-<step>"),
    (lambda c: (c / "lr_scheduler.json").write_text('{"last_epoch": 7, "last_lr": 1e-05}'),
     "{c}/lr_scheduler.json: the schedule is at step 7, the checkpoint at step 2; the checkpoint is damaged: "
     "resume from another checkpoint-<step>"),
    (lambda c: (c / "rng_state.json").write_bytes(b'{"ranks": "caf\xe9"}'),
     "{c}/rng_state.json: not UTF-8 text (byte 0xe9 at offset 14); the checkpoint is damaged"),
    (lambda c: (c / "optimizer.pdparams").unlink(),
     "{c}/optimizer.pdparams not found: the checkpoint lacks its optimizer state (AdamW moments); resume from "
     "another checkpoint-<step>, or start a new run from its weights with --model_name_or_path {c} (the "
     "optimizer starts afresh)"),
    (lambda c: rewrite_optimizer(c, lambda arrays: arrays | {"classifier.bias::moment1": np.zeros(3, "float32")}),
     "{c}/optimizer.pdparams: optimizer state does not match the model (classifier.bias::moment1 is float32 (3,), "
     "expected floats (2,)); resume from a checkpoint run_glue.py saved for this model"),
    (lambda c: rewrite_optimizer(c, lambda arrays: arrays | {"classifier.bias::bogus": np.zeros(2, "float32")}),
     "{c}/optimizer.pdparams: optimizer state does not match the model (unknown classifier.bias::bogus); resume "
     "from a checkpoint run_glue.py saved for this model"),
    (lambda c: rewrite_trainer_state(c, run_settings={}),
     "{c}/trainer_state.json: 'run_settings' lacks task_name, model_type, model_name_or_path, max_seq_length, "
     "...; the checkpoint is damaged or not run_glue.py's: resume from another checkpoint-<step>"),
    (lambda c: rewrite_trainer_state(c, checkpoint_losses=["bad"]),
     "{c}/trainer_state.json: 'checkpoint_losses' entry 0 is \"bad\", not an object with numbers step, "
     "from_step, loss and a path; the checkpoint is damaged or not run_glue.py's: resume from another "
     "checkpoint-<step>"),
])
def test_damaged_checkpoint_ends_in_one_line(tmp_path, headless_dir, rte_run, capsys, damage, expected):
    ckpt = copied_checkpoint(rte_run, tmp_path)
    damage(ckpt)
    assert main(resume_args(headless_dir, rte_run, tmp_path / "run", ckpt)) == 1
    assert last_error(capsys) == "run_glue.py: error: " + expected.format(c=ckpt)


def rewrite_optimizer(ckpt: Path, change) -> None:
    from squeezebert_paddle.checkpoint import write_pdparams
    write_pdparams(ckpt / "optimizer.pdparams", change(read_pdparams(ckpt / "optimizer.pdparams")))


def rewrite_trainer_state(ckpt: Path, **fields) -> None:
    path = ckpt / "trainer_state.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | fields))


def test_crafted_pickle_in_optimizer_state_runs_nothing(tmp_path, headless_dir, rte_run, capsys):
    """optimizer.pdparams goes through the allow-list reader like the weights: the payload's command
    never runs, and the refusal names the file."""
    import pickle

    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    ckpt = copied_checkpoint(rte_run, tmp_path)
    (ckpt / "optimizer.pdparams").write_bytes(pickle.dumps({"x": Payload()}))
    assert main(resume_args(headless_dir, rte_run, tmp_path / "run", ckpt)) == 1
    assert not marker.exists()
    line = last_error(capsys)
    assert line.startswith(f"run_glue.py: error: {ckpt / 'optimizer.pdparams'}: refused as optimizer state ("
                           f"refusing to load posix.system") and line.endswith("; resume from another checkpoint-<step>")


def test_resume_with_changed_settings_is_refused_naming_each(tmp_path, headless_dir, rte_run, glue_dir, capsys):
    ckpt = rte_run["out"] / "checkpoint-2"
    out = tmp_path / "out"
    assert main(resume_args(headless_dir, rte_run, out, ckpt, "--learning_rate", 3e-5, "--max_seq_length", 48,
                            "--warmup_steps", 1)) == 1
    assert last_error(capsys) == (
        f"run_glue.py: error: {ckpt} was saved by a run with other settings (--max_seq_length: checkpoint 64, "
        f"now 48; --learning_rate: checkpoint 2e-05, now 3e-05; --warmup_steps: checkpoint 0, now 1); resume "
        f"with the checkpoint's values, or pass --allow_changed_settings to continue with the new ones")
    args = resume_args(headless_dir, rte_run, out, ckpt, task="SST-2")
    args[args.index("--data_dir") + 1] = str(subset_glue_dir(glue_dir / "SST-2", tmp_path / "SST-2", 32, 8))
    assert main(args) == 1
    assert "(--task_name: checkpoint RTE, now SST-2)" in last_error(capsys)


def test_allowed_task_change_logs_it_and_starts_the_best_record_afresh(tmp_path, headless_dir, rte_run, glue_dir,
                                                                      caplog):
    """An RTE checkpoint continued on SST-2: RTE's best score is not SST-2's; best/ is SST-2's own."""
    ckpt = rte_run["out"] / "checkpoint-4"
    rte_best = trainer_state(rte_run["out"])["best_metric"]
    sst2 = subset_glue_dir(glue_dir / "SST-2", tmp_path / "SST-2", 32, 8)
    out = tmp_path / "out"
    caplog.set_level("INFO")
    args = resume_args(headless_dir, rte_run, out, ckpt, "--allow_changed_settings", task="SST-2")
    args[args.index("--data_dir") + 1] = str(sst2)
    assert main(args) == 0
    assert "--allow_changed_settings: --task_name: checkpoint RTE, now SST-2" in caplog.text
    assert (f"the task changed to SST-2: the best-model record ({rte_best:.4f} at step "
            f"{trainer_state(rte_run['out'])['best_step']}) starts afresh in {out}") in caplog.text
    best = json.loads((out / "best" / "eval_results.json").read_text())
    state = trainer_state(out)
    assert best["step"] == state["best_step"] == 4 and best["dev/accuracy"] == state["best_metric"]
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1]) == best


def test_resume_into_a_new_output_dir_carries_best(tmp_path, headless_dir, rte_run, caplog):
    """Resumed from the last checkpoint into a new directory, nothing is left to evaluate: the
    best model the log reports is copied along, not missing."""
    out = tmp_path / "new"
    caplog.set_level("INFO")
    assert main(resume_args(headless_dir, rte_run, out, rte_run["out"] / "checkpoint-4")) == 0
    state, original = trainer_state(out), trainer_state(rte_run["out"])
    assert (state["best_step"], state["best_metric"]) == (original["best_step"], original["best_metric"])
    assert json.loads((out / "best" / "eval_results.json").read_text())["step"] == state["best_step"]
    a = read_pdparams(out / "best" / "model_state.pdparams")
    b = read_pdparams(rte_run["out"] / "best" / "model_state.pdparams")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert f"is copied from {rte_run['out'] / 'best'} to {out / 'best'}" in caplog.text


def test_full_disk_while_saving_is_one_line_and_leaves_the_last_checkpoint(tmp_path, headless_dir, rte_run,
                                                                          capsys, monkeypatch):
    """ENOSPC (no file name, as a failed write() gives it) in the second checkpoint's optimizer file."""
    import errno

    from squeezebert_paddle.training import state as state_module
    real, calls = state_module.write_pdparams, []

    def full_disk_on_second(path, arrays):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, arrays)

    monkeypatch.setattr(state_module, "write_pdparams", full_disk_on_second)
    out = tmp_path / "out"
    assert main(flags(headless_dir, rte_run["data"], out, "RTE", *rte_run["common"])) == 1
    assert last_error(capsys) == (
        f"run_glue.py: error: could not write {out / 'checkpoint-4'}: No space left on device; nothing of it "
        f"was left and {out / 'checkpoint-2'} is intact: continue with --resume_from_checkpoint "
        f"{out / 'checkpoint-2'}, after freeing some space or with another --output_dir")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("checkpoint-", "."))) == [
        ".run_glue.lock", "checkpoint-2"]                  # the lock file stays; flock dies with its process
    monkeypatch.setattr(state_module, "write_pdparams", real)
    assert main(resume_args(headless_dir, rte_run, out, out / "checkpoint-2")) == 0


def test_divergence_names_the_last_checkpoint_whose_loss_was_sane(tmp_path, headless_dir, rte_run, capsys,
                                                                  monkeypatch):
    """Steps 4-5 have a loss 50x step 1's (diverged but finite, so checkpoint-4 is saved), step 6 is
    nan: the stop names checkpoint-2 (step 3, on its weights, was fine), not checkpoint-4, and says
    how it judged."""
    real, calls, losses = models.forward_batch, [], []

    def diverging(model, batch, with_labels):
        out = real(model, batch, with_labels)
        if not (with_labels and model.training):
            return out
        calls.append(1)
        factor = {4: 50.0, 5: 50.0, 6: float("nan")}.get(len(calls), 1.0)
        losses.append(float(out[0]) * factor)
        return out[0] * factor, out[1]

    monkeypatch.setattr(models, "forward_batch", diverging)
    out = tmp_path / "out"
    args = flags(headless_dir, rte_run["data"], out, "RTE", "--batch_size", 8, "--max_steps", 6,
                 "--save_steps", 2, "--logging_steps", 1)
    assert main(args) == 1
    line = last_error(capsys)
    saved = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["checkpoint_losses"]
    first, second, step3 = saved[0]["loss"], saved[1]["loss"], saved[0]["next_loss"]
    assert second > 4 * first and step3 < 4 * first
    assert line == (f"run_glue.py: error: step 6: training loss is nan; stopping, the last sane checkpoint is "
                    f"{out / 'checkpoint-2'} (judged by its training loss: the mean over steps 1-2, {first:.4g}, and "
                    f"step 3's on its weights, {step3:.4g}, are within 4x the lowest before it, "
                    f"{saved_first_loss(out):.4g}; later ones are not: checkpoint-4 (mean loss {second:.4g}, then "
                    f"{losses[4]:.4g})); continue with --resume_from_checkpoint {out / 'checkpoint-2'} "
                    f"--allow_changed_settings and a lower --learning_rate or a --max_grad_norm")


def saved_first_loss(out: Path) -> float:
    return json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["first_loss"]


def test_a_second_run_into_the_same_output_dir_is_refused(tmp_path, headless_dir, rte_run, capsys):
    """Another run holds OUTPUT/.run_glue.lock: refused in one line before anything loads; the lock
    of a run that is gone (the file is left, its flock died with the process) blocks nothing."""
    from squeezebert_paddle.fileio import hold_lock
    out = tmp_path / "out"
    out.mkdir()
    args = flags(headless_dir, rte_run["data"], out, "RTE", "--batch_size", 8, "--max_steps", 1)
    with hold_lock(out / ".run_glue.lock"):
        assert main(args) == 2
    assert last_error(capsys) == (f"run_glue.py: error: another run_glue.py is writing to --output_dir {out}; "
                                  f"wait for it to end or choose another --output_dir")
    assert sorted(p.name for p in out.iterdir()) == [".run_glue.lock"]
    assert main(args) == 0 and (out / "final").is_dir()


def test_divergence_after_resuming_a_moved_run_names_where_its_checkpoints_are_now(tmp_path, headless_dir,
                                                                                  rte_run, capsys, monkeypatch):
    """The run's directory copied elsewhere and resumed from there: step 4 is nan, and the stop names
    the copy's checkpoint-2 (step 3, on its weights, was fine), not the original run's."""
    moved = Path(shutil.copytree(rte_run["out"], tmp_path / "moved"))
    real, calls = models.forward_batch, []

    def nan_at_second_step(model, batch, with_labels):
        out = real(model, batch, with_labels)
        if with_labels and model.training:
            calls.append(1)
            return (out[0] * float("nan"), out[1]) if len(calls) == 2 else out
        return out

    monkeypatch.setattr(models, "forward_batch", nan_at_second_step)
    assert main(resume_args(headless_dir, rte_run, tmp_path / "out", moved / "checkpoint-2")) == 1
    line = last_error(capsys)
    assert line.startswith(f"run_glue.py: error: step 4: training loss is nan; stopping, the last sane checkpoint "
                           f"is {moved / 'checkpoint-2'} (judged by")
    assert line.endswith(f"continue with --resume_from_checkpoint {moved / 'checkpoint-2'} --allow_changed_settings "
                         f"and a lower --learning_rate or a --max_grad_norm")
    assert str(rte_run["out"]) not in line
