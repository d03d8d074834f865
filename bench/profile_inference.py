"""Time repeated passes of the exported SqueezeBERT predictor (or, with --backend kernels, the project's
CPU kernels) over QQP pairs, and optionally print paddle.inference's per-operator profile (or the
kernels' ms per batch of each stage). For finding where the time goes, not for the headline table
(use bench_qqp.py for that).

    python bench/profile_inference.py --precision bf16 --passes 3            # pairs/s of each pass
    python bench/profile_inference.py --precision bf16 --profile             # + per-op table at exit
    python bench/profile_inference.py --pad_multiple 1                       # no length padding
    python bench/profile_inference.py --backend kernels --precision bf16 --profile   # the CPU kernels' stages

The first pass over the data builds oneDNN kernels for every new shape; later passes reuse them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", "--model_path", dest="model_dir", type=Path,
                   default=ROOT / "models" / "squeezebert-mnli")
    p.add_argument("--data_path", type=Path,
                   help="QQP pairs (default: as bench_qqp.py: the developers' pairs, else GLUE's dev.tsv, else "
                        "the shipped sample)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--pad_multiple", type=int, default=16)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--profile", action="store_true",
                   help="inference: oneDNN's per-operator table at exit; kernels: ms per batch of each stage "
                        "over the last pass")
    p.add_argument("--backend", choices=("inference", "kernels"), default="inference",
                   help="the exported predictor, or the project's CPU kernels (cpu_encoder.py)")
    args = p.parse_args()
    from squeezebert_paddle.checkpoint import CONFIG_FILE, require_model_dir
    from squeezebert_paddle.configuration import SqueezeBertConfig
    from squeezebert_paddle.data import encode_examples, make_batches, read_pairs
    from squeezebert_paddle.inference import Predictor, cached_export
    from squeezebert_paddle.tokenizer import SqueezeBertTokenizer
    from bench_qqp import default_data_path          # bench/ is this script's directory
    require_model_dir(args.model_dir)
    examples, _ = read_pairs(args.data_path or default_data_path())
    tokenizer = SqueezeBertTokenizer.from_pretrained(args.model_dir)
    encoded = encode_examples(tokenizer, examples[:args.limit], 128)
    batches = make_batches(encoded, args.batch_size, tokenizer.pad_token_id)
    config = SqueezeBertConfig.from_json_file(args.model_dir / CONFIG_FILE)
    if args.backend == "kernels":
        from squeezebert_paddle.cpu_encoder import CpuEncoder
        from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
        run = CpuEncoder(SqueezeBertForSequenceClassification.from_pretrained(args.model_dir), args.precision,
                         args.threads)
    else:
        prefix, _ = cached_export(args.model_dir)
        run = Predictor(prefix, "cpu", args.precision, args.threads, pad_multiple=args.pad_multiple,
                        max_length=config.max_position_embeddings, profile=args.profile)
    for k in range(args.passes):
        if args.backend == "kernels" and args.profile and k == args.passes - 1:
            run.profile(True)                      # the last pass only: the first ones build kernels
        start = time.perf_counter()
        for b in batches:
            run(b.input_ids, b.attention_mask, b.token_type_ids)
        seconds = time.perf_counter() - start
        print(f"pass {k + 1}: {len(encoded)} pairs in {seconds:.2f} s ({len(encoded) / seconds:.1f}/s)", flush=True)
    if args.backend == "kernels" and args.profile:
        print_stages(run.profile(False), seconds)


def print_stages(stages: dict, pass_seconds: float) -> None:
    """ms per batch of each stage of the kernels' op, and its share of the pass. When each thread encodes
    its own sequences, the stages are the first thread's; the rest of the pass ("other") is the op's packing
    and head, waiting for the other threads, and Python between the calls."""
    calls = stages.pop("calls")
    print(f"\nstage (kernels op, last pass, {calls} batches)   ms/batch   share of the pass")
    for name, seconds in stages.items():
        print(f"  {name:<32} {1e3 * seconds / calls:8.2f}   {100 * seconds / pass_seconds:5.1f}%")
    rest = pass_seconds - sum(stages.values())
    print(f"  {'other (packing, head, waits, Python)':<32} {1e3 * rest / calls:8.2f}   {100 * rest / pass_seconds:5.1f}%")


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
