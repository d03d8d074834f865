"""Side-by-side QQP inference benchmark: Paddle backends and precisions against PyTorch, SqueezeBERT
against BERT-base, on the same pairs, batches and weights, in one run. Prints a Markdown table.

    python bench/bench_qqp.py                                  # the issue's CPU workload
    python bench/bench_qqp.py --full                           # + whole-file passes, sorted by length
    python bench/bench_qqp.py --rows paddle-inference-fp32,torch-eager-fp32 --limit 200

The paddle-kernels rows run the project's own CPU kernels (`run_qqp_paddle.py --backend kernels`).
Every row is a separate process of run_qqp_paddle.py / run_qqp_torch.py / bench/run_qqp_onnx.py (one
framework per process; the ONNX Runtime and OpenVINO rows run Hugging Face's ONNX export of the same
checkpoint, and are skipped with the reason when their package is missing);
the rows run round-robin `--repeats` times (default 3) and each reports its median run, so a slow
drift of a shared machine cannot favour one row.
SqueezeBERT rows load the same converted checkpoint (--model_dir, default models/squeezebert-mnli,
made by `python convert_torch_to_paddle.py --demo` when you have no real weights); BERT rows use
random bert-base-uncased weights, so only their speed is compared.
The pairs (--data_path) default to the developers' ../shared/data/qqp/qqp_pairs.jsonl when it exists,
else to what run_qqp_*.py read without --data_path (GLUE's QQP dev.tsv, else the shipped sample).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from squeezebert_paddle import qqp_benchmark  # noqa: E402
from squeezebert_paddle.assets import SAMPLE_QQP_DEV as SAMPLE  # noqa: E402
from squeezebert_paddle.checkpoint import (GET_CHECKPOINTS, HF_CONFIG_FILE, HF_WEIGHTS_FILES,  # noqa: E402
                                           CheckpointError, is_hf_checkpoint, require_model_dir)
from squeezebert_paddle.errors import threads_problem  # noqa: E402
from squeezebert_paddle.fileio import output_json_problem  # noqa: E402
from squeezebert_paddle.input_files import file_problem  # noqa: E402
from squeezebert_paddle.timing import busy_machine_note  # noqa: E402
from run_qqp_onnx import missing_runtime  # noqa: E402  (bench/ is this script's directory)

DATA = ROOT.parent / "shared" / "data" / "qqp" / "qqp_pairs.jsonl"     # on the developers' machines only

# name -> (script, model, extra flags)
ROWS = {
    "torch-eager-fp32": ("torch", "squeezebert", []),
    "torch-autocast-bf16": ("torch", "squeezebert", ["--precision", "bf16"]),
    "torch-compile-fp32": ("torch", "squeezebert", ["--compile"]),
    "paddle-dygraph-fp32": ("paddle", "squeezebert", ["--backend", "dygraph"]),
    "paddle-inference-fp32": ("paddle", "squeezebert", ["--backend", "inference"]),
    "paddle-inference-bf16": ("paddle", "squeezebert", ["--backend", "inference", "--precision", "bf16"]),
    # the project's own CPU kernels (squeezebert_paddle/cpu_encoder.py)
    "paddle-kernels-fp32": ("paddle", "squeezebert", ["--backend", "kernels"]),
    "paddle-kernels-bf16": ("paddle", "squeezebert", ["--backend", "kernels", "--precision", "bf16"]),
    "bert-torch-eager-fp32": ("torch", "bert", []),
    "bert-paddle-inference-fp32": ("paddle", "bert", ["--backend", "inference"]),
    "bert-paddle-inference-bf16": ("paddle", "bert", ["--backend", "inference", "--precision", "bf16"]),
    # BERT-base through the same kernels (SqueezeBERT with groups 1, random weights)
    "bert-paddle-kernels-fp32": ("paddle", "bert", ["--backend", "kernels"]),
    "bert-paddle-kernels-bf16": ("paddle", "bert", ["--backend", "kernels", "--precision", "bf16"]),
    # peers: Hugging Face's ONNX export of the same checkpoint (bench/run_qqp_onnx.py)
    "onnxruntime-fp32": ("onnx", "squeezebert", ["--runtime", "onnxruntime"]),
    "openvino-fp32": ("onnx", "squeezebert", ["--runtime", "openvino"]),
    "openvino-bf16": ("onnx", "squeezebert", ["--runtime", "openvino", "--precision", "bf16"]),
}
SCRIPTS = {"torch": ROOT / "run_qqp_torch.py", "paddle": ROOT / "run_qqp_paddle.py",
           "onnx": ROOT / "bench" / "run_qqp_onnx.py"}
DEFAULT_ROWS = [r for r in ROWS
                if r not in ("torch-compile-fp32", "bert-torch-eager-fp32", "bert-paddle-kernels-fp32")]
BASELINE = "torch-eager-fp32"


def run_row(name: str, args, more: tuple[str, ...] = ()) -> dict:
    script, model, extra = ROWS[name]
    if "kernels" in extra and args.device != "cpu":
        return {"skipped": "the kernels backend runs on the CPU only"}
    if script == "onnx":
        skipped = missing_runtime(extra[1])
        if skipped:
            return {"skipped": skipped}
    with tempfile.TemporaryDirectory(prefix="bench_qqp_") as scratch:      # (the report is read, then gone)
        return run_row_in(name, args, more, Path(scratch) / f"{name}.json")


def run_row_in(name: str, args, more: tuple[str, ...], out: Path) -> dict:
    """Row `name` in its own process, its report written to `out` and returned (or {"error": ...})."""
    script, model, extra = ROWS[name]
    cmd = [sys.executable, str(SCRIPTS[script]), "--data_path", str(args.data_path),
           "--batch_size", str(args.batch_size), "--max_seq_len", str(args.max_seq_len),
           "--threads", str(args.threads), "--device", args.device, "--output_json", str(out),
           "--no_progress", "--model_type", model, "--vocab", str(args.vocab), *extra, *more]
    cmd += ["--limit", str(args.limit)]
    cmd += ["--sort_by_length"] if args.sort_by_length else []
    cmd += ["--max_tokens", str(args.max_tokens)] if args.max_tokens else []
    cmd += ["--random_init"] if model == "bert" else ["--model_path", str(args.model_dir)]
    print(f"[{name}] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        print(f"[{name}] FAILED: {tail}", file=sys.stderr)
        return {"error": tail}
    return json.loads(out.read_text())


def run_rounds(rows: list[str], args, peaks: list[dict] | None = None) -> dict:
    """Every row `--repeats` times, round-robin (so slow drifts of a shared machine hit all rows alike);
    each row keeps its median run, with the spread of its throughputs. With `peaks` (a list), the matmul
    peak is measured before each round and appended."""
    runs: dict[str, list[dict]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        if peaks is not None:
            peaks.append(peak(args.threads))
        for name in rows:
            runs[name].append(run_row(name, args))
    results = {}
    for name, rs in runs.items():
        good = sorted((r for r in rs if "error" not in r and "skipped" not in r), key=lambda r: r["examples_per_second"])
        if not good:
            results[name] = rs[0]
            continue
        results[name] = dict(good[(len(good) - 1) // 2],
                             spread=[good[0]["examples_per_second"], good[-1]["examples_per_second"]],
                             rounds=[r.get("examples_per_second") for r in rs])
    return results


def best_peaks(rounds: list[dict]) -> dict:
    """Each precision's highest peak over the rounds (a round measured while the machine was slow would
    make every share of the peak look better than it is)."""
    return {prec: max((r.get(prec, 0.0) for r in rounds), default=0.0) for prec in ("fp32", "bf16")}


def peak(threads: int) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "peak_matmul.py"), "--threads", str(threads)],
                          capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def agreement(row: dict, base: dict) -> str:
    if "logits" not in row or "logits" not in base or row.get("model_type") != base.get("model_type"):
        return "-"
    a, b = np.asarray(row["logits"]), np.asarray(base["logits"])
    same = float(np.mean(a.argmax(-1) == b.argmax(-1))) * 100
    return f"{same:.1f}% (max logit diff {np.abs(a - b).max():.1e})"


def table(results: dict, peaks: dict) -> str:
    base = results.get(BASELINE, {})
    lines = ["| row | backend | precision | model | examples/s (median) | min-max | vs torch fp32 | "
             "GFLOP/s (padded work) | GFLOP/s executed | % of peak | predictions identical to torch fp32 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r or "skipped" in r:
            why = f"failed: {r['error']}" if "error" in r else f"skipped: {r['skipped']}"
            lines.append(f"| {name} | {why} | | | | | | | | | |")
            continue
        ratio = r["examples_per_second"] / base["examples_per_second"] if "examples_per_second" in base else float("nan")
        lo, hi = r.get("spread", [r["examples_per_second"]] * 2)
        prec_peak = peaks.get("bf16" if r["precision"] == "bf16" else "fp32", 0.0)
        executed = r.get("executed_gflop_per_second", r["gflop_per_second"])
        pct = 100 * executed / prec_peak if prec_peak else float("nan")
        lines.append(f"| {name} | {r['framework']} {r['backend']} | {r['precision']} | {r['model_type']} | "
                     f"{r['examples_per_second']:.1f} | {lo:.1f}-{hi:.1f} | {ratio:.2f}x | {r['gflop_per_second']:.1f} | "
                     f"{executed:.1f} | "
                     f"{pct:.0f}% | {agreement(r, base)} |")
    return "\n".join(lines)


RATIOS = [("paddle-kernels-bf16", "openvino-bf16"), ("paddle-kernels-fp32", "onnxruntime-fp32"),
          ("paddle-kernels-bf16", "torch-eager-fp32"), ("paddle-kernels-fp32", "torch-eager-fp32"),
          ("paddle-kernels-fp32", "openvino-fp32"), ("paddle-kernels-bf16", "torch-autocast-bf16"),
          ("paddle-kernels-bf16", "paddle-inference-bf16"), ("paddle-kernels-fp32", "paddle-inference-fp32"),
          ("paddle-kernels-bf16", "bert-paddle-kernels-bf16"), ("paddle-kernels-fp32", "bert-paddle-kernels-fp32"),
          ("paddle-inference-fp32", "torch-eager-fp32"), ("paddle-inference-bf16", "torch-eager-fp32"),
          ("paddle-inference-bf16", "torch-autocast-bf16"),
          ("paddle-inference-fp32", "onnxruntime-fp32"), ("paddle-inference-fp32", "openvino-fp32"),
          ("paddle-inference-bf16", "openvino-bf16"),
          ("paddle-inference-fp32", "bert-paddle-inference-fp32"),
          ("paddle-inference-bf16", "bert-paddle-inference-bf16")]


def ratio_lines(results: dict) -> list[str]:
    """Median ratios, and each round's (the rows ran round-robin, so round k of two rows ran minutes apart
    at most)."""
    def eps(name):
        return results.get(name, {}).get("examples_per_second")
    lines = []
    for a, b in RATIOS:
        if not (eps(a) and eps(b)):
            continue
        rounds = [x / y for x, y in zip(results[a].get("rounds", []), results[b].get("rounds", [])) if x and y]
        each = f" (rounds: {', '.join(f'{r:.2f}x' for r in rounds)})" if len(rounds) > 1 else ""
        lines.append(f"- {a} / {b}: {eps(a) / eps(b):.2f}x{each}")
    return lines


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", "--model_path", dest="model_dir", type=qqp_benchmark.path_flag,
                   default=ROOT / "models" / "squeezebert-mnli")
    p.add_argument("--data_path", type=qqp_benchmark.path_flag,
                   help=f"QQP pairs, GLUE TSV or JSON lines (default: {DATA} when it exists, else "
                        f"{qqp_benchmark.DEFAULT_DATA} or {qqp_benchmark.DOWNLOADED_DATA}, else the shipped "
                        f"sample)")
    p.add_argument("--vocab", type=qqp_benchmark.path_flag, default=qqp_benchmark.build_parser("").get_default("vocab"),
                   help="vocab.txt for rows whose model directory has none (the BERT rows)")
    p.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated, from {', '.join(ROWS)}")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_seq_len", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--sort_by_length", action="store_true")
    p.add_argument("--max_tokens", type=int, help="token budget per batch instead of --batch_size rows "
                                                   "(run_qqp_*.py --max_tokens)")
    p.add_argument("--repeats", type=int, default=3, help="runs per row, round-robin; the median is reported")
    p.add_argument("--full", action="store_true",
                   help="also time whole-file passes (all pairs, --sort_by_length) for the Paddle rows")
    p.add_argument("--output_json", type=qqp_benchmark.path_flag)
    return p.parse_args(argv)


def flag_problem(args, rows: list[str]) -> str | None:
    """What is wrong with the numbers and row names given (checked before anything is read), or None."""
    for name in ("repeats", "batch_size", "max_seq_len"):
        if getattr(args, name) < 1:
            return f"--{name} must be at least 1, got {getattr(args, name)}"
    if args.limit < 0:
        return f"--limit must be 0 (all pairs) or more, got {args.limit}"
    if args.max_tokens is not None and args.max_tokens < args.max_seq_len:
        return f"--max_tokens must be at least --max_seq_len ({args.max_seq_len}), got {args.max_tokens}"
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        return f"unknown --rows {unknown or args.rows!r}; choose from {', '.join(ROWS)}"
    return threads_problem("--threads", args.threads)


def input_problem(args, rows: list[str]) -> str | None:
    """What stops the rows from running (checked before any row starts, after `flag_problem`), as one
    line, or None."""
    what = file_problem(args.data_path)
    if what:
        return (f"--data_path {args.data_path}: {what}; pass a GLUE QQP dev.tsv or JSON lines with "
                f"sentence1, sentence2 (the shipped sample: {SAMPLE})")
    frameworks = {ROWS[r][0] for r in rows if ROWS[r][1] == "squeezebert"}
    if "paddle" in frameworks:
        try:
            require_model_dir(args.model_dir)
        except CheckpointError as err:
            return f"--model_dir: {err}"
    if frameworks & {"torch", "onnx"} and not is_hf_checkpoint(args.model_dir):
        return (f"--model_dir {args.model_dir} lacks the Hugging Face files ({HF_CONFIG_FILE}, "
                f"{' or '.join(HF_WEIGHTS_FILES)}) that the PyTorch and ONNX rows load: {GET_CHECKPOINTS}")
    bert_rows = any(ROWS[r][1] == "bert" for r in rows)
    if (bert_rows or not (args.model_dir / "vocab.txt").is_file()) and not args.vocab.is_file():
        return f"--vocab {args.vocab}: not found; pass the uncased WordPiece vocab.txt"
    return output_json_problem(args.output_json)


def default_data_path() -> Path:
    """The developers' pairs when present, else run_qqp_*.py's default; said in one line."""
    if DATA.is_file():
        print(f"NOTE: no --data_path: using {DATA} (the developers' QQP pairs)")
        return DATA
    path = qqp_benchmark.default_data_path()          # announces the shipped sample itself
    if path != SAMPLE:
        print(f"NOTE: no --data_path: using {path}")
    return path


def failed_rows(results: dict, full: dict) -> list[str]:
    return [name for name, r in [*results.items(), *((f"{n} (whole file)", r) for n, r in full.items())]
            if "error" in r]


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    problem = flag_problem(args, rows)            # before the default data is looked for and announced
    if problem is None:
        args.data_path = args.data_path or default_data_path()
        problem = input_problem(args, rows)
    if problem:
        raise qqp_benchmark.UsageError(problem)
    # the rows run in ROOT: relative paths given here would point elsewhere there
    args.data_path, args.model_dir, args.vocab = (p.resolve() for p in (args.data_path, args.model_dir,
                                                                        args.vocab))
    busy = busy_machine_note()
    if busy:
        print(busy, flush=True)
    rounds: list[dict] | None = [] if args.device == "cpu" else None
    results = run_rounds(rows, args, rounds)
    peaks = best_peaks(rounds) if rounds else {}
    each = "; ".join(f"{prec} " + ", ".join(f"{r.get(prec, 0):.0f}" for r in rounds) for prec in ("fp32", "bf16")) \
        if rounds else ""
    print(f"\nQQP pairs: first {args.limit} of {args.data_path.name}, batch {args.batch_size}, max_seq_len "
          f"{args.max_seq_len}, {'sorted' if args.sort_by_length else 'unsorted'}, {args.threads} threads, "
          f"{args.device}, median of {args.repeats} round-robin runs per row; matmul peak (the highest of the "
          f"rounds, each measured before its rows: {each}) fp32 {peaks.get('fp32', 0):.0f} GFLOP/s, "
          f"bf16 {peaks.get('bf16', 0):.0f} GFLOP/s\n")
    print(table(results, peaks))
    print("\n" + "\n".join(ratio_lines(results)))
    full = {}
    if args.full:
        args.limit, args.sort_by_length = 0, True
        for name in ("paddle-kernels-bf16", "paddle-kernels-fp32", "paddle-inference-bf16"):
            full[name] = run_row(name, args)
        if args.max_tokens is None:      # the batching for whole files: a token budget per batch
            full["paddle-kernels-bf16, --max_tokens 2048"] = run_row("paddle-kernels-bf16", args,
                                                                     ("--max_tokens", "2048"))
        print(f"\nWhole file ({args.data_path.name}, sorted by length):")
        for name, r in full.items():
            if "error" not in r:
                print(f"- {name}: {r['examples']} pairs in {r['seconds']:.1f} s ({r['examples_per_second']:.1f}/s; "
                      f"GLUE QQP dev's {qqp_benchmark.QQP_DEV_PAIRS} pairs at this rate: "
                      f"{r['qqp_dev_seconds_at_this_rate']:.0f} s)")
    if args.output_json:
        from squeezebert_paddle.fileio import atomic_write_json
        strip = lambda r: {k: v for k, v in r.items() if k not in ("logits", "predictions")}  # noqa: E731
        atomic_write_json(args.output_json, {"peaks": peaks, "peak_rounds": rounds or [], "rows": {k: strip(v) for k, v in results.items()},
                                             "full": {k: strip(v) for k, v in full.items()}})
    failed = failed_rows(results, full)
    if failed:
        print(f"error: {len(failed)} row(s) failed: {', '.join(failed)} (their errors are in the table above)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
