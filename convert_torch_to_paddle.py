"""Convert Hugging Face PyTorch SqueezeBERT checkpoints into Paddle model directories (and back).

    python convert_torch_to_paddle.py                      # every released checkpoint found in models/
    python convert_torch_to_paddle.py --model_dir DIR [--output_dir OUT]
    python convert_torch_to_paddle.py --reverse --model_dir PADDLE_DIR --output_dir HF_DIR
    python convert_torch_to_paddle.py --download           # fetch the released checkpoints (network)
    python convert_torch_to_paddle.py --demo               # random-weight checkpoints, for trying it out

The conversion is strict: every weight must map, every shape must match, or nothing is written.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from squeezebert_paddle.assets import VOCAB_FILE
from squeezebert_paddle.configuration import RELEASED_CONFIGS
from squeezebert_paddle.conversion import ConversionError

ROOT = Path(__file__).resolve().parent
RELEASED = tuple(RELEASED_CONFIGS)
DEFAULT_VOCAB = VOCAB_FILE           # the uncased vocab all three released checkpoints use
HF_FILES = ["config.json", "vocab.txt", "model.safetensors", "pytorch_model.bin", "tokenizer_config.json"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", "--model_path", dest="model_dir", type=Path, action="append",
                   help="a checkpoint directory to convert (repeatable); default: each of "
                        f"{', '.join(RELEASED)} found under --models_root")
    p.add_argument("--output_dir", type=Path, help="where to write (default: in place, beside the input)")
    p.add_argument("--models_root", type=Path, default=ROOT / "models", help="where checkpoints live")
    p.add_argument("--reverse", action="store_true",
                   help="convert a Paddle model directory to Hugging Face format (model.safetensors)")
    p.add_argument("--download", action="store_true",
                   help="download the released checkpoints from the Hugging Face hub first (needs network)")
    p.add_argument("--demo", action="store_true",
                   help="write RANDOM-weight checkpoints at the released configurations into --models_root")
    p.add_argument("--vocab", type=Path, default=Path(os.environ.get("SQUEEZEBERT_VOCAB") or DEFAULT_VOCAB),
                   help="uncased WordPiece vocab.txt for --demo (default: $SQUEEZEBERT_VOCAB, else the "
                        "one shipped in squeezebert_paddle/assets)")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.output_dir and args.model_dir and len(args.model_dir) > 1:
        p.error("--output_dir takes a single --model_dir")
    if args.reverse and not (args.model_dir and args.output_dir):
        p.error("--reverse needs --model_dir (a Paddle model directory) and --output_dir")
    return args


def how_to_get(root: Path) -> str:
    lines = [f"No SqueezeBERT checkpoints found under {root}. Get them with one of:"]
    lines += [f"  huggingface-cli download squeezebert/{n} --local-dir {root / n}" for n in RELEASED]
    lines += ["  python convert_torch_to_paddle.py --download      (the same, through huggingface_hub)",
              "  python convert_torch_to_paddle.py --demo          (random weights, to try the pipeline)",
              "then run this script again."]
    return "\n".join(lines)


def download(root: Path) -> None:
    from huggingface_hub import snapshot_download
    for name in RELEASED:
        print(f"downloading squeezebert/{name} -> {root / name}")
        try:
            snapshot_download(f"squeezebert/{name}", local_dir=root / name, allow_patterns=HF_FILES)
        except Exception as err:  # offline, auth, missing repo: one line, not a traceback
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConversionError(f"could not download squeezebert/{name} from the Hugging Face hub ({reason}); "
                                  f"without network, `python convert_torch_to_paddle.py --demo` writes random-weight "
                                  f"checkpoints at the released configurations") from None


def write_demo(root: Path, vocab: Path) -> None:
    from squeezebert_paddle.demo import write_demo_checkpoint
    from squeezebert_paddle.fileio import clean_interrupted_writes
    from squeezebert_paddle.input_files import file_problem
    problem = file_problem(vocab)
    if problem:
        raise ConversionError(f"vocab file {vocab} {'not found' if problem == 'not found' else 'is ' + problem}; "
                              f"pass --vocab PATH to the uncased WordPiece vocab.txt")
    root.mkdir(parents=True, exist_ok=True)
    clean_interrupted_writes(root)           # what a killed --demo left (.tmp-<name>-*)
    for seed, name in enumerate(RELEASED):
        start = time.perf_counter()
        path = write_demo_checkpoint(name, root / name, vocab, seed=seed)
        print(f"{path}: RANDOM-weight Hugging Face checkpoint written ({time.perf_counter() - start:.1f} s)")


def convert(model_dir: Path, output_dir: Path | None, progress: bool) -> None:
    from squeezebert_paddle.conversion import convert_hf_dir
    from squeezebert_paddle.demo import is_demo, model_line
    if is_demo(model_dir):
        print(model_line(model_dir), flush=True)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = lambda items: tqdm(items, desc=model_dir.name, unit="tensor", leave=False,  # noqa: E731
                                 disable=None)   # no bar when stderr is not a terminal (logs, pipes)
    start = time.perf_counter()
    report = convert_hf_dir(model_dir, output_dir, progress=bar)
    note = " [RANDOM demo weights]" if is_demo(model_dir) else ""
    print(f"{model_dir} -> {output_dir or model_dir}: {report.architecture}, {report.tensors} tensors, "
          f"{report.parameters / 1e6:.2f}M parameters, transposed {len(report.transposed)}, "
          f"dropped {len(report.dropped)} ({', '.join(report.dropped) or 'none'}), "
          f"{time.perf_counter() - start:.1f} s{note}")


def check_output(directory: Path, flag: str) -> None:
    """The directory the conversion writes into, checked before any reading or converting."""
    from squeezebert_paddle.fileio import unwritable_reason
    reason = unwritable_reason(directory)
    if reason:
        raise ConversionError(f"{flag} {directory} cannot be written: {reason}; pass a writable --output_dir")


def main(argv=None) -> int:
    args = parse_args(argv)
    from squeezebert_paddle.conversion import convert_paddle_dir
    if args.demo or args.download:
        check_output(args.models_root, "--models_root")
    if args.demo:
        write_demo(args.models_root, args.vocab)
    if args.download:
        download(args.models_root)
    if args.reverse:
        check_output(args.output_dir, "--output_dir")
        arch = convert_paddle_dir(args.model_dir[0], args.output_dir)
        print(f"{args.model_dir[0]} -> {args.output_dir}: {arch} in Hugging Face format "
              f"(model.safetensors, config.json, vocab.txt)")
        return 0
    dirs = args.model_dir or [args.models_root / n for n in RELEASED if (args.models_root / n).is_dir()]
    if not dirs:
        print(how_to_get(args.models_root), file=sys.stderr)
        return 1
    for model_dir in dirs:
        check_output(args.output_dir or model_dir, "--output_dir" if args.output_dir else "--model_dir")
    for model_dir in dirs:
        convert(model_dir, args.output_dir, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    from squeezebert_paddle.errors import run_main
    sys.exit(run_main(main))
