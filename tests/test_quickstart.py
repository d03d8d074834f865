"""quickstart.py: the whole chain on random-weight checkpoints (converted, compared, timed, fine-tuned),
its summary and JSON report; and where its weights come from."""
import json

import pytest

import quickstart
from helpers import link_tree, run_script


@pytest.fixture(scope="module")
def quick_run(demo_hf, tmp_path_factory):
    root = tmp_path_factory.mktemp("qs")
    models = root / "models"
    for name, path in demo_hf.items():      # Hugging Face files only: quickstart converts them
        link_tree(path, models / name)
    out = root / "out"
    proc = run_script("quickstart.py", "--models_root", models, "--output_dir", out, "--pairs", 24,
                      "--train_steps", 2, timeout=900)
    return proc, models, out


def test_quickstart_runs_every_step_and_reports_them(quick_run):
    proc, models, out = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split("]")[0] for line in lines if line.startswith("[")] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert f"      RANDOM demo checkpoints found in {models}; converting them" in lines
    for name in ("squeezebert-uncased", "squeezebert-mnli", "squeezebert-mnli-headless"):
        assert (models / name / "model_state.pdparams").is_file()            # converted in place
    report = json.loads((out / "quickstart.json").read_text())
    assert report["parity"]["passed"] == 3 and len(report["parity"]["models"]) == 3
    summary = report["summary"]
    assert summary["parity (Paddle vs PyTorch)"].startswith("3 of 3 models within 1e-05")
    assert summary["weights"] == f"RANDOM demo checkpoints in {models}"
    if not (quickstart.ROOT / "data" / "QQP").exists() and not (quickstart.ROOT / "glue_data" / "QQP").exists():
        from squeezebert_paddle.assets import SAMPLE_GLUE_DIR, SAMPLE_QQP_DEV
        assert summary["data"] == f"24 QQP pairs from {SAMPLE_QQP_DEV}; fine-tuning on {SAMPLE_GLUE_DIR / 'QQP'}"
    # every timing row comes from its script's own report, on the same 24 pairs
    rows = [r for r in ("torch-fp32", "paddle-fp32", "paddle-bf16") if f"QQP {r}" in summary]
    assert rows[:2] == ["torch-fp32", "paddle-fp32"]
    timed = {r: json.loads((out / f"qqp_{r}.json").read_text()) for r in rows}
    for r in rows:
        assert timed[r]["examples"] == 24
        assert summary[f"QQP {r}"].startswith(f"{timed[r]['examples_per_second']:.1f} pairs/s")
    same = sum(a == b for a, b in zip(timed["paddle-fp32"]["predictions"], timed["torch-fp32"]["predictions"]))
    assert f"same prediction on {same / 24:.1%}" in summary["QQP paddle-fp32"]
    assert same == 24                          # fp32 Paddle and torch agree on every pair
    # the fine-tuning step: 2 steps, evaluated on dev, curve written
    dev = report["dev"]
    assert dev["step"] == 2 and 0.0 <= dev["dev/accuracy"] <= 1.0
    assert (out / "glue_qqp" / "training_curves.png").stat().st_size > 1000
    assert "random start: not a quality figure" in summary["fine-tuned QQP dev (step 2)"]
    assert "quickstart summary" in proc.stdout and f"report written to {out / 'quickstart.json'}" in lines


def test_weights_fall_back_to_demo_when_there_are_no_checkpoints_and_no_hub(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(quickstart, "run_script", lambda name, *flags, log: calls.append((name, flags)))
    monkeypatch.setattr(quickstart, "hub_reachable", lambda: "ConnectionError")
    args = quickstart.parse_args(["--models_root", str(tmp_path / "none"), "--output_dir", str(tmp_path / "o")])
    root = quickstart.get_weights(args, tmp_path / "logs")
    assert root == tmp_path / "o" / "demo_models"
    assert calls == [("convert_torch_to_paddle.py", ("--demo", "--models_root", root, "--no_progress"))]
    out = capsys.readouterr().out
    assert "hub is unreachable (ConnectionError): using RANDOM demo weights" in out


def test_weights_download_when_the_hub_answers(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(quickstart, "run_script", lambda name, *flags, log: calls.append((name, flags)))
    monkeypatch.setattr(quickstart, "hub_reachable", lambda: None)
    args = quickstart.parse_args(["--models_root", str(tmp_path / "m")])
    assert quickstart.get_weights(args, tmp_path / "logs") == tmp_path / "m"
    assert calls == [("convert_torch_to_paddle.py", ("--download", "--models_root", tmp_path / "m", "--no_progress"))]


def test_a_failing_step_ends_in_one_line_naming_its_log(tmp_path, capsys):
    # compare.py on a directory without checkpoints exits 1: quickstart names it and its log
    (tmp_path / "logs").mkdir()
    with pytest.raises(quickstart.StepFailed) as err:
        quickstart.run_script("compare.py", "--models_root", tmp_path, log=tmp_path / "logs" / "x.log")
    assert "compare.py exited with 1: compare.py: error: no converted models under" in str(err.value)
    assert str(tmp_path / "logs" / "x.log") in str(err.value)
    assert (tmp_path / "logs" / "x.log").read_text().startswith("$ ")


def test_an_unwritable_output_dir_is_one_line_before_any_step(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = run_script("quickstart.py", "--output_dir", blocker / "sub")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip() == (f"quickstart.py: error: --output_dir {blocker / 'sub'} cannot be written "
                                   f"(Not a directory); choose another --output_dir")


def test_a_second_quickstart_on_the_same_output_dir_is_refused(tmp_path):
    with quickstart.claim_output_dir(tmp_path):
        proc = run_script("quickstart.py", "--output_dir", tmp_path)
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip() == (f"quickstart.py: error: another quickstart.py is writing to {tmp_path}; "
                                   f"wait for it or choose another --output_dir")
    with quickstart.claim_output_dir(tmp_path):          # free again once the holder is done
        pass


def test_a_step_does_not_outlive_a_killed_quickstart(tmp_path):
    """kill -9 of quickstart (nothing can be cleaned up in it) still ends the step it was running."""
    import os
    import signal
    import subprocess
    import sys
    import time
    step = tmp_path / "step.py"
    step.write_text(f"import os, time\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
                    f"time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", f"import quickstart; quickstart.run_script({str(step)!r}, "
                               f"log=__import__('pathlib').Path({str(tmp_path / 'log')!r}))"],
                              cwd=quickstart.ROOT)
    pid_file = tmp_path / "pid"
    for _ in range(200):
        if pid_file.is_file() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):                       # the step gets SIGTERM from the kernel when its parent dies
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as f:
            if f.read().split()[2] == "Z":      # exited, not yet reaped (its parent was init's child)
                return
        time.sleep(0.05)
    raise AssertionError(f"step {child} still running 5 s after quickstart was killed")
