"""From a fresh clone to a result in one command: weights, conversion, parity, QQP timing, fine-tuning.

    python quickstart.py                  # real checkpoints from models/ or the Hugging Face hub, else demo
    python quickstart.py --demo           # RANDOM-weight checkpoints at the released configurations
    python quickstart.py --pairs 1000 --train_steps 100

Each step runs one of the project's scripts in its own process (so the PyTorch and Paddle timings never
share a process), with its whole log in OUTPUT/logs/:
  1. weights   convert_torch_to_paddle.py   (--download, or --demo when there is neither a checkpoint
                                             in models/ nor a network)
  2. parity    compare.py                   Paddle vs PyTorch on the same inputs, all three checkpoints
  3. QQP       run_qqp_torch.py, run_qqp_paddle.py (fp32, and bf16 where the CPU has it; the
                                             project's CPU kernels where they build), same pairs
  4. GLUE      run_glue.py                  a short QQP fine-tuning run with a dev evaluation
Then a summary table; OUTPUT/quickstart.json holds every figure, OUTPUT/glue_qqp/training_curves.png
the training curve. Data: data/QQP/dev.tsv and glue_data/QQP/ when present, else the small sample
shipped in squeezebert_paddle/assets/glue_sample/ (written for this project; not GLUE's data).
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from squeezebert_paddle.checkpoint import is_hf_checkpoint
from squeezebert_paddle.configuration import RELEASED_CONFIGS
from squeezebert_paddle.demo import is_demo
from squeezebert_paddle.errors import ExpectedError, run_main, threads_problem
from squeezebert_paddle.fileio import atomic_write_json, atomic_write_text, hold_lock, path_flag
from squeezebert_paddle.qqp_benchmark import cpu_has_bf16
from squeezebert_paddle.timing import busy_machine_note

ROOT = Path(__file__).resolve().parent
CLASSIFIER, HEADLESS = "squeezebert-mnli", "squeezebert-mnli-headless"


class StepFailed(ExpectedError):
    """A script exited non-zero; the message names it, its last line and its log."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", type=path_flag, default=ROOT / "output" / "quickstart",
                   help="where logs, reports, demo weights and the fine-tuned model go")
    p.add_argument("--models_root", type=path_flag, default=ROOT / "models",
                   help="where the Hugging Face checkpoints are (or are downloaded to)")
    p.add_argument("--demo", action="store_true", help="use RANDOM demo weights even if real ones are there")
    p.add_argument("--pairs", type=int, default=300, help="QQP pairs to time in each runtime")
    p.add_argument("--train_steps", type=int, default=30, help="fine-tuning steps (batch 16)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: all cores)")
    args = p.parse_args(argv)
    for name in ("pairs", "train_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    problem = threads_problem("--threads", args.threads) if args.threads is not None else None
    if problem:
        p.error(problem)
    return args


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when quickstart dies, even by kill -9 (Linux), so that no step
    outlives it and writes into a later run's outputs."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG


def run_script(name: str, *flags, log: Path) -> str:
    """Run one of the project's scripts; returns its stdout. Its stdout and stderr go to `log`."""
    command = [sys.executable, str(ROOT / name), *map(str, flags)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=_die_with_parent) as proc:
        try:
            stdout, stderr = proc.communicate()
        except BaseException:                 # Ctrl-C, SIGTERM (see main): stop the step too
            proc.terminate()
            raise
    atomic_write_text(log, f"$ {' '.join(command)}\n{stdout}\n--- stderr ---\n{stderr}")
    if proc.returncode != 0:
        last = (stderr.strip() or stdout.strip() or "no output").splitlines()[-1]
        raise StepFailed(f"{name} exited with {proc.returncode}: {last} (whole log: {log})")
    return stdout


def claim_output_dir(out: Path):
    """Create OUTPUT/logs and hold OUTPUT/.quickstart.lock: one line and exit 2 when OUTPUT cannot be
    written or another quickstart is using it (two runs would mix their reports)."""
    try:
        (out / "logs").mkdir(parents=True, exist_ok=True)
        lock = hold_lock(out / ".quickstart.lock")      # a planted link is refused, its target untouched
    except OSError as err:
        raise SystemExit(f"quickstart.py: error: --output_dir {out} cannot be written ({err.strerror}); "
                         f"choose another --output_dir")
    if lock is None:
        raise SystemExit(f"quickstart.py: error: another quickstart.py is writing to {out}; wait for it "
                         f"or choose another --output_dir")
    return lock


def has_checkpoints(root: Path) -> bool:
    return all(is_hf_checkpoint(root / name) for name in RELEASED_CONFIGS)


def hub_reachable() -> str | None:
    """None when the Hugging Face hub answers, else why not (one line)."""
    try:
        from huggingface_hub import HfApi
        HfApi().model_info(f"squeezebert/{CLASSIFIER}", timeout=10)
        return None
    except Exception as err:       # offline, DNS, proxy, hub down: all mean "use the demo weights"
        return type(err).__name__


def get_weights(args, logs: Path) -> Path:
    """Step 1: converted checkpoints; returns the directory that holds the three of them."""
    if not args.demo and has_checkpoints(args.models_root):
        kind = "RANDOM demo" if is_demo(args.models_root / CLASSIFIER) else "real"
        print(f"      {kind} checkpoints found in {args.models_root}; converting them")
        run_script("convert_torch_to_paddle.py", "--models_root", args.models_root, "--no_progress",
                   log=logs / "1_convert.log")
        return args.models_root
    why = "--demo given" if args.demo else hub_reachable()
    if why is None:
        print(f"      downloading the released checkpoints into {args.models_root}")
        run_script("convert_torch_to_paddle.py", "--download", "--models_root", args.models_root, "--no_progress",
                   log=logs / "1_convert.log")
        return args.models_root
    root = args.output_dir / "demo_models"
    reason = why if args.demo else f"no checkpoints in {args.models_root} and the Hugging Face hub is unreachable ({why})"
    print(f"      {reason}: using RANDOM demo weights in {root} (timings are real, predictions are not)")
    run_script("convert_torch_to_paddle.py", "--demo", "--models_root", root, "--no_progress",
               log=logs / "1_convert.log")
    return root


def check_parity(root: Path, out: Path, logs: Path) -> dict:
    """Step 2: compare.py on the three checkpoints; returns its JSON report."""
    report = out / "parity.json"
    run_script("compare.py", "--models_root", root, "--repeats", 2, "--output_json", report,
               log=logs / "2_parity.log")
    return json.loads(report.read_text(encoding="utf-8"))


def time_qqp(args, model: Path, out: Path, logs: Path) -> dict:
    """Step 3: the same QQP pairs through torch fp32 and Paddle fp32 (and bf16); returns the reports."""
    # No --data_path: the scripts' own default (data/QQP/dev.tsv, glue_data/QQP/dev.tsv, else the sample)
    common = ["--model_path", model, "--limit", args.pairs, "--no_progress"]
    if args.threads:
        common += ["--threads", args.threads]
    backend = paddle_backend()
    runs = [("torch-fp32", "run_qqp_torch.py", []), ("paddle-fp32", "run_qqp_paddle.py", ["--backend", backend])]
    if cpu_has_bf16():
        runs.append(("paddle-bf16", "run_qqp_paddle.py", ["--backend", backend, "--precision", "bf16"]))
    reports = {}
    print("      one pass each; bench/bench_qqp.py alternates runtimes for steadier ratios", flush=True)
    busy = busy_machine_note()
    if busy:
        print(f"      {busy}", flush=True)
    for row, script, extra in runs:
        path = out / f"qqp_{row}.json"
        run_script(script, *common, *extra, "--output_json", path, log=logs / f"3_qqp_{row}.log")
        reports[row] = json.loads(path.read_text(encoding="utf-8"))
        print(f"      {row}: {reports[row]['examples_per_second']:.1f} pairs/s")
    return reports


def paddle_backend() -> str:
    """The project's CPU kernels when they build here (said in one line), else the exported predictor."""
    from squeezebert_paddle import cpu_encoder
    if cpu_encoder.available(quiet=True):           # (said below, in one line)
        print("      Paddle rows: --backend kernels (the project's CPU inference kernels)", flush=True)
        return "kernels"
    print(f"      Paddle rows: --backend inference (the CPU kernels are unavailable: "
          f"{cpu_encoder.unavailable_reason()})", flush=True)
    return "inference"


def fine_tune(args, model: Path, out: Path, logs: Path) -> dict:
    """Step 4: a short QQP fine-tuning run of the headless checkpoint; returns the last dev evaluation."""
    steps = args.train_steps
    # No --data_dir: run_glue's own default (glue_data/QQP, else the shipped sample)
    flags = ["--task_name", "QQP", "--model_name_or_path", model,
             "--output_dir", out, "--overwrite_output_dir", "--device", "cpu", "--batch_size", 16,
             "--learning_rate", 4e-5, "--max_steps", steps, "--save_steps", steps, "--eval_steps", steps,
             "--logging_steps", max(1, steps // 5), "--seed", 5]
    if args.threads:
        flags += ["--cpu_threads", args.threads]
    run_script("run_glue.py", *flags, log=logs / "4_glue.log")
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


def agreement(a: dict, b: dict) -> float:
    """Share of pairs on which two runtimes predict the same class."""
    same = sum(x == y for x, y in zip(a["predictions"], b["predictions"]))
    return same / max(1, len(a["predictions"]))


def summary_rows(weights: Path, parity: dict, qqp: dict, dev: dict, out: Path) -> list[tuple[str, str]]:
    demo = is_demo(weights / CLASSIFIER)
    worst = max(d["max_abs_diff"] for m in parity["models"] for d in m["diffs"].values())
    torch_rate = qqp["torch-fp32"]["examples_per_second"]
    glue_data = json.loads((out / "glue_qqp" / "args.json").read_text(encoding="utf-8"))["data_dir"]
    rows = [("weights", f"{'RANDOM demo' if demo else 'released'} checkpoints in {weights}"),
            ("parity (Paddle vs PyTorch)", f"{parity['passed']} of {len(parity['models'])} models within "
                                          f"{parity['tolerance']:g}; largest max |diff| {worst:.2e}"),
            ("data", f"{qqp['torch-fp32']['examples']} QQP pairs from {qqp['torch-fp32']['data_path']}; "
                     f"fine-tuning on {glue_data}")]
    for row, report in qqp.items():
        rate = report["examples_per_second"]
        note = "" if row == "torch-fp32" else (
            f" = {rate / torch_rate:.2f}x torch fp32, same prediction on {agreement(report, qqp['torch-fp32']):.1%}")
        rows.append((f"QQP {row}", f"{rate:.1f} pairs/s{note}"))
    metrics = ", ".join(f"{k.split('/')[-1]} {v:.4f}" for k, v in dev.items() if k.startswith("dev"))
    rows.append((f"fine-tuned QQP dev (step {dev['step']})", metrics + (" (random start: not a quality figure)"
                                                                       if demo else "")))
    rows.append(("outputs", str(out)))
    return rows


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print("\n" + "=" * 30 + " quickstart summary " + "=" * 30)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def run_steps(args, out: Path) -> dict:
    """The four steps, each announced with the time so far; returns what the summary needs."""
    logs, start = out / "logs", time.perf_counter()
    steps = ["weights and conversion", "parity against PyTorch", "QQP inference timing", "QQP fine-tuning"]

    def header(i):
        print(f"[{i + 1}/{len(steps)}] {steps[i]}  ({time.perf_counter() - start:.0f} s elapsed)", flush=True)

    header(0)
    weights = get_weights(args, logs)
    header(1)
    parity = check_parity(weights, out, logs)
    header(2)
    qqp = time_qqp(args, weights / CLASSIFIER, out, logs)
    header(3)
    dev = fine_tune(args, weights / HEADLESS, out / "glue_qqp", logs)
    return dict(weights=weights, parity=parity, qqp=qqp, dev=dev, seconds=time.perf_counter() - start)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.output_dir.resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))   # run_script stops its step
    with claim_output_dir(out):
        result = run_steps(args, out)          # a StepFailed ends in one line through run_main
        parity, qqp = result["parity"], result["qqp"]
        rows = summary_rows(result["weights"], parity, qqp, result["dev"], out)
        rows.insert(-1, ("training curve", str(out / "glue_qqp" / "training_curves.png")))
        rows.insert(-1, ("wall time", f"{result['seconds']:.0f} s"))
        print_table(rows)
        atomic_write_json(out / "quickstart.json", {
            "summary": dict(rows), "seconds": result["seconds"], "parity": parity, "dev": result["dev"],
            "qqp": {row: {k: v for k, v in r.items() if k not in ("logits", "predictions")}
                    for row, r in qqp.items()}})
        print(f"report written to {out / 'quickstart.json'}")
    return 0 if parity["passed"] == len(parity["models"]) else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
