"""How often two run_qqp_*.py reports (--output_json) predict the same class for the same pairs.

    python bench/agreement.py kernels_bf16.json torch_fp32.json             # as the heads predict
    python bench/agreement.py kernels_bf16.json torch_fp32.json --balance   # classes split evenly

With random demo weights the head predicts one class for nearly every pair, so plain agreement says
little; --balance moves both heads' biases by the same vector (minus the second report's median logit
per class), which splits the second report's predictions about evenly across classes and makes every
flipped pair count.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def agreement(a: np.ndarray, b: np.ndarray, balance: bool) -> tuple[float, np.ndarray]:
    """Share of rows whose argmax agrees, and the class counts of `b`'s predictions; logits [N, C]."""
    shift = np.median(b, axis=0) if balance else 0.0
    pa, pb = (a - shift).argmax(-1), (b - shift).argmax(-1)
    return float(np.mean(pa == pb)), np.bincount(pb, minlength=b.shape[-1])


def logits_of(path: Path) -> np.ndarray:
    report = json.loads(path.read_text(encoding="utf-8"))
    if "logits" not in report:
        from squeezebert_paddle.errors import ExpectedError
        raise ExpectedError(f"{path}: no logits (a report of a model with a classification head is needed)")
    return np.asarray(report["logits"], dtype=np.float64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--balance", action="store_true")
    args = p.parse_args(argv)
    a, b = logits_of(args.first), logits_of(args.second)
    if a.shape != b.shape:
        from squeezebert_paddle.errors import ExpectedError
        raise ExpectedError(f"the reports hold different pairs: logits {a.shape} and {b.shape}")
    same, counts = agreement(a, b, args.balance)
    print(f"{len(a)} pairs; {args.second.name}'s predictions per class {counts.tolist()}"
          f"{' (balanced)' if args.balance else ''}; same prediction on {same:.2%}; "
          f"max |logit difference| {np.abs(a - b).max():.2e}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
