"""The framework-free half of run_qqp_paddle.py and run_qqp_torch.py: flags, data, batches, report.

Both scripts parse the same flags, read and tokenize the same pairs with the same tokenizer (outside
the timed region), batch them identically, time with the same warm-up rule and report the same
fields, so their numbers compare like for like. Importing this imports neither framework.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .configuration import GROUP_FIELDS, SqueezeBertConfig
from .flops import BERT_BASE, SQUEEZEBERT, EncoderShape, packed_flops, sequence_flops, workload_flops
from .assets import SAMPLE_QQP_DEV, VOCAB_FILE
from .data import Batch, encode_examples, make_batches, read_pairs, restore_order
from .checkpoint import (CONFIG_FILE, GET_CHECKPOINTS, HF_CONFIG_FILE, HF_WEIGHTS_FILES, CheckpointError,
                         check_vocab_fits, is_hf_checkpoint, max_positions, require_model_dir)
from .demo import MNLI_LABELS, model_line
from .errors import ExpectedError, threads_problem
from .fileio import atomic_write_json, output_json_problem, path_flag
from .input_files import file_problem, is_present
from .timing import classification_report, peak_memory_mb, summarize, time_batches
from .tokenizer import VOCAB_FILE as VOCAB_NAME, sequence_length_problem

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("data/QQP/dev.tsv")
DOWNLOADED_DATA = Path("glue_data/QQP/dev.tsv")      # where `run_glue.py --task_name QQP --download` puts it
DEFAULT_VOCAB = VOCAB_FILE                           # the uncased vocab all three checkpoints share
CPU_DEFAULT_LIMIT = 1000
QQP_DEV_PAIRS = 40430                                # GLUE QQP dev.tsv
MNLI_LABEL_NAMES = sorted(MNLI_LABELS.values())


class UsageError(ExpectedError):
    """Bad flags or inputs: printed as one line, exit code 2."""
    exit_code = 2


def build_parser(framework: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"QQP inference timing in {framework}.")
    p.add_argument("--model_type", choices=("squeezebert", "bert"), default="squeezebert")
    p.add_argument("--model_path", "--model_dir", dest="model_path", type=path_flag,
                   help="model directory (converted SqueezeBERT for Paddle, HF directory for torch; "
                        "for BERT a local bert-base-uncased directory); --model_dir is the same flag, as in "
                        "the other scripts")
    p.add_argument("--random_init", action="store_true",
                   help="random weights at the squeezebert-uncased / bert-base-uncased configuration, "
                        "for timing without weights (2-label classifier head)")
    p.add_argument("--vocab", type=path_flag, default=Path(os.environ.get("SQUEEZEBERT_VOCAB") or DEFAULT_VOCAB),
                   help="vocab.txt when the model directory has none (e.g. with --random_init); default: "
                        "$SQUEEZEBERT_VOCAB, else the uncased vocab shipped in squeezebert_paddle/assets")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default: all cores)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--data_path", type=path_flag, default=None,
                   help=f"GLUE QQP TSV (dev.tsv) or JSON lines with sentence1, sentence2[, label] (default: "
                        f"{DEFAULT_DATA} or {DOWNLOADED_DATA}, else the small sample shipped with the package)")
    p.add_argument("--limit", type=int,
                   help=f"first N pairs; 0 = all (default: {CPU_DEFAULT_LIMIT} on cpu, all on gpu)")
    p.add_argument("--batch_size", type=int, default=16, help="rows per batch (not with --max_tokens)")
    p.add_argument("--max_seq_len", type=int, default=128)
    p.add_argument("--sort_by_length", action="store_true", help="batch pairs of similar length together")
    p.add_argument("--max_tokens", type=int,
                   help="fill each batch up to this many padded tokens (rows x longest row) instead of "
                        "--batch_size rows; with --sort_by_length, short pairs run in large batches (whole "
                        "files: try 2048)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up batches")
    p.add_argument("--output_json", type=path_flag, help="also write the report here")
    p.add_argument("--no_progress", action="store_true")
    return p


def check_args(args) -> None:
    if args.model_path is None and not args.random_init:
        raise UsageError("give --model_path DIR, or --random_init to time random weights")
    if args.model_path is not None and not args.model_path.is_dir():
        raise UsageError(f"--model_path {args.model_path}: no such directory; {GET_CHECKPOINTS}; or time random "
                         f"weights with --random_init")
    for name, low in (("batch_size", 1), ("warmup", 0)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name} {getattr(args, name)} is out of range: it must be at least {low}")
    problem = threads_problem("--threads", args.threads)
    if problem:
        raise UsageError(problem)
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit {args.limit} is out of range: it must be 0 (all pairs) or more")
    if args.random_init and args.model_path is not None:     # (the report would name weights never read)
        raise UsageError(f"--random_init builds random weights and does not read --model_path {args.model_path}; "
                         f"pass one or the other")
    if args.precision == "fp16" and args.device == "cpu":
        raise UsageError("--precision fp16 needs --device gpu; on CPU use fp32 or bf16")
    if args.precision == "bf16" and args.device == "cpu" and not cpu_has_bf16():
        raise UsageError("--precision bf16: this CPU has neither AMX nor AVX-512 BF16; use fp32")
    problem = output_json_problem(args.output_json)
    if problem:
        raise UsageError(problem)
    if args.limit is None and args.device == "cpu":
        args.limit = CPU_DEFAULT_LIMIT


def parse_checked(parser: argparse.ArgumentParser, framework: str):
    """Parse the flags, check them and the model directory, print the start line; returns args.
    `framework` ("paddle" or "torch") decides which files a model directory must hold."""
    args = parser.parse_args()
    check_args(args)
    check_model_dir(args, framework)
    check_max_seq_len(args, framework)
    print(model_summary(args), flush=True)
    return args


def check_max_seq_len(args, framework: str) -> None:
    """--max_seq_len between the room a pair's special tokens need and the model's position table
    (from the config file `framework` loads)."""
    names = (CONFIG_FILE, HF_CONFIG_FILE) if framework == "paddle" else (HF_CONFIG_FILE,)
    try:
        limit = max_positions(None if args.random_init else args.model_path, names)
    except CheckpointError as err:
        raise UsageError(f"--model_path: {err}") from None
    problem = sequence_length_problem(args.max_seq_len, "--max_seq_len", limit)
    if problem:
        raise UsageError(problem)
    if args.max_tokens is not None and args.max_tokens < args.max_seq_len:
        raise UsageError(f"--max_tokens {args.max_tokens} is out of range: it must be at least --max_seq_len "
                         f"({args.max_seq_len}), so that a batch holds the longest pair")


def check_model_dir(args, framework: str) -> None:
    """--model_path holds the SqueezeBERT files `framework` ("paddle" or "torch") loads, checked before the
    tokenizer reads the directory (which would otherwise ask for --vocab): else one line with the fix."""
    if args.random_init or args.model_type != "squeezebert":
        return
    path = args.model_path
    if framework == "paddle":
        try:
            require_model_dir(path)
        except CheckpointError as err:
            raise UsageError(f"--model_path: {err}") from None
    elif not is_hf_checkpoint(path):
        state = "is empty" if not any(path.iterdir()) else (
            f"has no Hugging Face checkpoint ({HF_CONFIG_FILE} with {' or '.join(HF_WEIGHTS_FILES)}), which "
            f"PyTorch loads")
        fix = (f"write one from this Paddle model with `python convert_torch_to_paddle.py --reverse --model_dir "
               f"{path} --output_dir HF_DIR`" if (path / CONFIG_FILE).is_file() else GET_CHECKPOINTS)
        raise UsageError(f"--model_path {path} {state}: {fix}")
    else:
        try:
            check_vocab_fits(path)             # require_model_dir checks it on the Paddle side
        except CheckpointError as err:
            raise UsageError(f"--model_path: {err}") from None


def model_summary(args) -> str:
    """The start-summary line naming the model (flagged when its weights are random)."""
    if args.random_init:
        shape = "squeezebert-uncased" if args.model_type == "squeezebert" else "bert-base-uncased"
        return model_line(f"{args.model_type} at the {shape} configuration, 2-label head", "--random_init")
    return model_line(args.model_path)


def label_names(model_path: Path | None) -> list[str]:
    """The model's label names in id order, from id2label in its config (Paddle's or HF's); [] if none."""
    for name in (CONFIG_FILE, HF_CONFIG_FILE):
        try:
            id2label = json.loads((model_path / name).read_text(encoding="utf-8")).get("id2label")
            return [str(id2label[k]) for k in sorted(id2label, key=int)]
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return []


def no_accuracy_reason(args, num_labels: int | None) -> str:
    """Why a run on labelled pairs reports no accuracy: the model has no classification head, or not
    QQP's two labels (e.g. the 3-label MNLI checkpoint)."""
    fix = f"fine-tune a QQP classifier with `python run_glue.py --task_name QQP --model_name_or_path {args.model_path}"
    if num_labels is None:
        return f"no accuracy: the model has no classification head (an encoder: timing only); {fix}`"
    names = label_names(args.model_path) if args.model_path is not None else []
    known = f" ({'MNLI: ' if sorted(names) == MNLI_LABEL_NAMES else ''}{', '.join(names)})" if names else ""
    return (f"no accuracy: the model has {num_labels} labels{known}, the data's labels are QQP's 0/1; {fix} "
            f"--ignore_mismatched_sizes` (a new 2-label head)")


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" amx_bf16", " avx512_bf16"))


@dataclass
class Workload:
    batches: list[Batch]
    labels: np.ndarray | None
    examples: int
    skipped: int
    tokens: int


def load_workload(args, tokenizer) -> Workload:
    """Read, tokenize and batch the pairs; all before any clock starts."""
    path = args.data_path = args.data_path or default_data_path()
    problem = file_problem(path)
    if problem:
        hint = (" (the default; download GLUE QQP to data/QQP/ or pass --data_path, e.g. "
                "../shared/data/qqp/qqp_pairs.jsonl)") if path == DEFAULT_DATA else ""
        raise UsageError(f"--data_path {path}: {problem}{hint}")
    try:
        examples, skipped = read_pairs(path)
    except ValueError as err:
        raise UsageError(str(err)) from None
    examples = examples[:args.limit] if args.limit else examples
    encoded = encode_examples(tokenizer, examples, args.max_seq_len)
    labels = None
    if all(e.label is not None for e in examples):
        labels = np.array([int(e.label) for e in examples], dtype=np.int64)
    batches = make_batches(encoded, args.batch_size, tokenizer.pad_token_id, args.sort_by_length,
                           max_tokens=args.max_tokens)
    tokens = int(sum(len(ids) for ids, _ in encoded))
    return Workload(batches, labels, len(examples), skipped, tokens)


def default_data_path() -> Path:
    """GLUE's QQP dev.tsv where the README puts it (or run_glue.py's download does), else the shipped
    sample, said in one line: its pairs are written for this project, so accuracy on it means nothing."""
    for path in (DEFAULT_DATA, DOWNLOADED_DATA):
        if path.is_file():
            return path
    print(f"NOTE: no --data_path and no {DEFAULT_DATA} or {DOWNLOADED_DATA}: using {SAMPLE_QQP_DEV}, a small "
          f"sample of question pairs written for this project (not GLUE's dev set); for GLUE QQP run "
          f"`python run_glue.py --task_name QQP --download ...` (writes {DOWNLOADED_DATA.parent}/) or pass "
          f"--data_path")
    return SAMPLE_QQP_DEV


def encoder_shape(args) -> EncoderShape:
    """The encoder shape for the FLOP count: the model directory's config (hidden size, layers,
    groups), else the released squeezebert-uncased / bert-base-uncased shape (as --random_init)."""
    default = SQUEEZEBERT if args.model_type == "squeezebert" else BERT_BASE
    if args.random_init or args.model_path is None:
        return default
    for name in (CONFIG_FILE, HF_CONFIG_FILE):
        try:
            fields = json.loads((args.model_path / name).read_text(encoding="utf-8"))
            if not isinstance(fields, dict) or "hidden_size" not in fields:
                continue
            if args.model_type == "bert":       # BERT: SqueezeBERT's layout with every group count 1
                fields = {**fields, **dict.fromkeys(GROUP_FIELDS, 1), "embedding_size": fields["hidden_size"]}
            return EncoderShape.of(SqueezeBertConfig.from_dict(fields))
        except (OSError, ValueError, TypeError):
            continue
    return default


def tokenizer_for(args):
    """The model directory's tokenizer when it has a vocab.txt, else one on --vocab. A vocab.txt that is
    there but unreadable (a directory, a FIFO, a link loop) is refused, never replaced by --vocab."""
    from .tokenizer import SqueezeBertTokenizer
    if args.model_path is not None and is_present(args.model_path / VOCAB_NAME):
        problem = file_problem(args.model_path / VOCAB_NAME)
        if problem:
            raise UsageError(f"--model_path: {args.model_path / VOCAB_NAME}: {problem}; restore the model's "
                             f"vocabulary file (or remove it to use --vocab)")
        return SqueezeBertTokenizer.from_pretrained(args.model_path)
    problem = file_problem(args.vocab)
    if problem:
        raise UsageError(f"--vocab {args.vocab}: {problem}; pass the uncased WordPiece vocab.txt")
    # bert-base-uncased and SqueezeBERT share this uncased WordPiece vocabulary.
    return SqueezeBertTokenizer(args.vocab)


def run(args, workload: Workload, forward, sync=None, packed_multiple: int | None = None,
        per_sequence: bool = False) -> dict:
    """Time `forward(batch) -> logits or None` over the workload; return the report fields.

    `gflop` counts the padded batches' FLOPs (what a plain implementation computes). For our packed
    inference export, `packed_multiple` is its predictor's length multiple: the executed FLOPs then
    count the projections on real tokens only. `per_sequence` (the kernels backend) counts attention
    over each sequence's real tokens too."""
    outputs, seconds = time_batches(forward, workload.batches, warmup=args.warmup, sync=sync,
                                    progress=not args.no_progress, desc="qqp")
    report = summarize(seconds, workload.examples, workload.tokens)
    shape = encoder_shape(args)
    gflop = workload_flops(shape, [b.input_ids.shape for b in workload.batches]) / 1e9
    report["gflop"] = gflop
    report["gflop_per_second"] = gflop / report["seconds"]
    # What the hardware executed: the same as `gflop` unless the path skips the padding.
    executed = gflop
    if per_sequence:
        executed = sum(sequence_flops(shape, b.attention_mask.sum(axis=1)) for b in workload.batches) / 1e9
    elif packed_multiple:
        executed = sum(packed_flops(shape, *b.input_ids.shape, int(b.attention_mask.sum()), packed_multiple)
                       for b in workload.batches) / 1e9
    report["executed_gflop_per_second"] = executed / report["seconds"]
    report["skipped_rows"] = workload.skipped
    report["peak_memory_mb"] = peak_memory_mb()
    # At this rate, GLUE's whole QQP dev set: meaningful for a whole-file run (--limit 0, sorted).
    report["qqp_dev_seconds_at_this_rate"] = QQP_DEV_PAIRS / report["examples_per_second"]
    if outputs and outputs[0] is not None:
        logits = restore_order(workload.batches, outputs)
        report["predictions"] = logits.argmax(-1).tolist()
        report["logits"] = logits.tolist()
        if workload.labels is not None and logits.shape[-1] == 2:
            report.update(classification_report(np.asarray(report["predictions"]), workload.labels))
    if workload.labels is not None and "accuracy" not in report:
        report["no_accuracy"] = no_accuracy_reason(args, np.shape(report["logits"])[-1] if "logits" in report
                                                   else None)
    return report


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def common_fields(args, framework: str, versions: dict, backend: str) -> dict:
    return {"framework": framework, "versions": {"python": platform.python_version(), **versions},
            "device": args.device, "cpu": cpu_name(),
            "threads": args.threads, "backend": backend, "precision": args.precision,
            "model_type": args.model_type, "model_path": str(args.model_path) if args.model_path else None,
            "random_init": args.random_init,
            "batch_size": None if args.max_tokens else args.batch_size,    # (a token budget sizes the batches)
            "max_tokens": args.max_tokens,
            "max_seq_len": args.max_seq_len, "sort_by_length": args.sort_by_length,
            "warmup_batches": args.warmup, "data_path": str(args.data_path)}


def print_report(report: dict) -> None:
    skip = {"predictions", "logits", "versions", "no_accuracy"}
    width = max(len(k) for k in report)
    for key, value in report.items():
        if key in skip:
            continue
        if isinstance(value, float):
            value = f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
        print(f"{key:<{width}}  {value}")
    print(f"{'versions':<{width}}  " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    if report.get("random_init"):
        print("NOTE: random weights (--random_init): timings are real, predictions are meaningless")
    if "no_accuracy" in report:
        print(report["no_accuracy"])


def finish(args, report: dict) -> None:
    print_report(report)
    if args.output_json:
        atomic_write_json(args.output_json, report)
        print(f"report written to {args.output_json}")
