"""Prove the converted Paddle models compute what Hugging Face's PyTorch models compute.

    python compare.py                         # every converted model under models/
    python compare.py --model_dir DIR         # one directory with both the HF and the Paddle files

Exit code 0 only when every max |difference| is within --tolerance and both tokenizers agree.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from squeezebert_paddle.fileio import path_flag

ROOT = Path(__file__).resolve().parent
PROG = "compare.py"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", "--model_path", dest="model_dir", type=path_flag, action="append",
                   help="directory holding config.json + HF weights and the converted Paddle files "
                        "(repeatable); default: every converted directory under --models_root")
    p.add_argument("--models_root", type=path_flag, default=ROOT / "models")
    p.add_argument("--tolerance", type=float, default=1e-5, help="largest allowed max |difference|")
    p.add_argument("--repeats", type=int, default=5, help="timed forward passes per framework")
    p.add_argument("--output_json", type=path_flag, help="also write every model's differences here")
    args = p.parse_args(argv)
    if not math.isfinite(args.tolerance) or args.tolerance < 0:
        p.error(f"--tolerance {args.tolerance:g} is out of range: it must be a finite number, 0 or more")
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats} is out of range: it must be at least 1")
    return args


def find_converted(root: Path) -> list[Path]:
    from squeezebert_paddle.checkpoint import HF_CONFIG_FILE, WEIGHTS_FILE
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if (d / WEIGHTS_FILE).is_file() and (d / HF_CONFIG_FILE).is_file())


def report(result, tolerance: float) -> str:
    from squeezebert_paddle.demo import is_demo
    lines = [f"{result.model_dir} ({result.architecture}{', RANDOM demo weights' if is_demo(result.model_dir) else ''})",
             f"  tokenizer ids identical: {'yes' if result.tokenizers_agree else 'NO'}"]
    for name, (mean, worst) in result.diffs.items():
        flag = "ok" if worst <= tolerance else "FAIL"
        lines.append(f"  {name:<21} mean |diff| {mean:.3e}   max |diff| {worst:.3e}   {flag}")
    lines.append(f"  forward (batch of 6 pairs, median): torch {result.torch_ms:.1f} ms, "
                 f"paddle {result.paddle_ms:.1f} ms")
    lines.append(f"  => {'PASS' if result.ok(tolerance) else 'FAIL'} (tolerance {tolerance:g})")
    return "\n".join(lines)


def as_json(result, tolerance: float) -> dict:
    return {"model_dir": str(result.model_dir), "architecture": result.architecture,
            "tokenizers_agree": result.tokenizers_agree, "ok": result.ok(tolerance),
            "diffs": {name: {"mean_abs_diff": mean, "max_abs_diff": worst}
                      for name, (mean, worst) in result.diffs.items()},
            "torch_ms": result.torch_ms, "paddle_ms": result.paddle_ms}


def main(argv=None) -> int:
    from squeezebert_paddle.errors import ExpectedError
    from squeezebert_paddle.fileio import output_json_problem
    args = parse_args(argv)
    problem = output_json_problem(args.output_json)
    if problem:                    # checked before the comparisons, which take minutes
        raise ExpectedError(problem)
    dirs = args.model_dir or find_converted(args.models_root)
    if not dirs:
        raise ExpectedError(f"no converted models under {args.models_root}; run `python convert_torch_to_paddle.py` "
                            f"first (or `--demo` for random-weight ones)")
    from squeezebert_paddle.checkpoint import hf_load_error_line, is_hf_checkpoint
    from squeezebert_paddle.demo import model_line
    from squeezebert_paddle.parity import compare_dir
    failures, results = 0, []
    for model_dir in dirs:
        print(model_line(model_dir), flush=True)
        if model_dir.is_dir() and not is_hf_checkpoint(model_dir):    # (a Paddle-only model, e.g. run_glue's)
            print(f"{PROG}: error: {model_dir}: no Hugging Face checkpoint (config.json with model.safetensors or "
                  f"pytorch_model.bin) to compare against; for a Paddle-only model, `convert_torch_to_paddle.py "
                  f"--reverse --model_dir {model_dir} --output_dir NEW` then `convert_torch_to_paddle.py --model_dir "
                  f"NEW` make a directory holding both", file=sys.stderr)
            failures += 1
            continue
        try:
            result = compare_dir(model_dir, repeats=args.repeats)
        except Exception as err:   # noqa: BLE001 (a damaged directory is one line, the others still run)
            line = str(err) if isinstance(err, ExpectedError) else hf_load_error_line(err)
            if line is None:
                raise
            where = "" if str(model_dir) in line else f"{model_dir}: "
            print(f"{PROG}: error: {where}{line}", file=sys.stderr)   # run_main's form; the other models still run
            failures += 1
            continue
        print(report(result, args.tolerance), flush=True)
        failures += not result.ok(args.tolerance)
        results.append(as_json(result, args.tolerance))
    print(f"{len(dirs) - failures} of {len(dirs)} models match within {args.tolerance:g}")
    if args.output_json:
        from squeezebert_paddle.fileio import atomic_write_json
        atomic_write_json(args.output_json, {"tolerance": args.tolerance, "passed": len(dirs) - failures,
                                             "models": results})
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main, prog=PROG))
