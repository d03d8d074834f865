"""Fine-tune SqueezeBERT (or PaddleNLP's BERT, for comparison) on a GLUE task, offline.

    python -u run_glue.py --model_type squeezebert --model_name_or_path ./models/squeezebert-mnli-headless \\
      --task_name QQP --batch_size 16 --learning_rate 4e-5 --num_train_epochs 5 --logging_steps 10 \\
      --save_steps 2000 --output_dir ./tmp/QQP/ --device gpu --lr_scheduler 1 --seed 5
    python -m paddle.distributed.launch --gpus 0,1 run_glue.py ...    # data parallel, same flags

`--batch_size` is per process: N processes train on global batches of N x batch_size examples.
The logic lives in squeezebert_paddle/training.py; this file parses and checks the flags.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from squeezebert_paddle import data as glue

TASKS = tuple(glue.GLUE_TASKS)


def task_name(value: str) -> str:
    try:
        return glue.get_task(value).name
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--task_name", type=task_name, required=True, choices=TASKS, metavar="TASK",
      help=f"GLUE task, case-insensitive: {', '.join(TASKS)}")
    a("--model_type", type=str.lower, default="squeezebert", choices=("squeezebert", "bert"),
      help="squeezebert (this package) or bert (PaddleNLP's BertForSequenceClassification)")
    a("--model_name_or_path", required=True,
      help="local model directory (weights, config, vocab.txt); a head is added if it has none")
    a("--output_dir", required=True, help="where checkpoints, best/, final/, metrics and plots go")
    a("--data_dir", default=None, help="directory of the task's GLUE TSV files (default ./glue_data/<TASK>)")
    a("--download", action="store_true",
      help="if the data directory is missing, fetch the task with PaddleNLP's load_dataset (network)")
    a("--max_seq_length", type=int, default=128, help="truncate pairs to this many tokens (1..512)")
    a("--batch_size", type=int, default=32, help="training examples per process per micro-batch")
    a("--eval_batch_size", type=int, default=None, help="evaluation batch size (default: --batch_size)")
    a("--learning_rate", type=float, default=1e-4, help="peak learning rate of AdamW")
    a("--num_train_epochs", type=int, default=3, help="epochs to train (ignored with --max_steps)")
    a("--max_steps", type=int, default=-1, help="if > 0: optimizer steps to train, overriding epochs")
    a("--lr_scheduler", type=int, default=1, choices=(0, 1),
      help="1: linear warmup then linear decay to 0 (HF get_linear_schedule_with_warmup); "
           "0: warmup then constant")
    a("--warmup_steps", type=int, default=0, help="linear warmup steps (exclusive with --warmup_proportion)")
    a("--warmup_proportion", type=float, default=0.0, help="warmup as a fraction of the total steps, in [0, 1)")
    a("--weight_decay", type=float, default=0.0,
      help="decoupled AdamW weight decay of every tensor with 2+ dimensions (not biases/LayerNorm)")
    a("--adam_epsilon", type=float, default=1e-6, help="AdamW epsilon")
    a("--max_grad_norm", type=float, default=0.0,
      help="clip gradients to this global L2 norm; 0 disables (HF's Trainer uses 1.0)")
    a("--gradient_accumulation_steps", type=int, default=1,
      help="micro-batches per optimizer step; the step's loss is the mean over all their examples")
    a("--hidden_dropout_prob", type=float, default=None, help="override the model config's hidden dropout")
    a("--attention_probs_dropout_prob", type=float, default=None,
      help="override the model config's attention dropout")
    a("--ignore_mismatched_sizes", action="store_true",
      help="re-initialise a classifier head whose label count differs from the task's")
    a("--logging_steps", type=int, default=100, help="log loss, lr and speed every N optimizer steps")
    a("--save_steps", type=int, default=100, help="write OUTPUT/checkpoint-<step>/ every N steps")
    a("--eval_steps", type=int, default=None, help="evaluate on dev every N steps (default: --save_steps)")
    a("--seed", type=int, default=42, help="seed of the data order (per epoch) and of dropout")
    a("--device", default=None, choices=("cpu", "gpu"),
      help="device (default: gpu when this Paddle build has CUDA, else cpu)")
    a("--amp", action="store_true", help="float16 autocast with dynamic loss scaling (GPU only)")
    a("--cpu_threads", type=int, default=None,
      help="math-library threads per process on CPU (default: available cores / processes on the node)")
    a("--resume_from_checkpoint", default=None, metavar="DIR",
      help="continue exactly from OUTPUT/checkpoint-<step>/ (same seed and global batch)")
    a("--overwrite_output_dir", action="store_true",
      help="allow an output directory that already holds checkpoints of another run")
    a("--do_predict", action="store_true",
      help="write GLUE test predictions (OUTPUT/predictions/<TASK>.tsv) with the best model")
    return p


def check_args(args) -> str | None:
    """The first problem with the flags, as one sentence, or None."""
    positive = ("batch_size", "eval_batch_size", "learning_rate", "gradient_accumulation_steps",
                "logging_steps", "save_steps", "eval_steps", "adam_epsilon")
    for name in positive:
        if getattr(args, name) <= 0:
            return f"--{name} must be positive, got {getattr(args, name)}"
    if args.cpu_threads is not None and args.cpu_threads < 1:
        return f"--cpu_threads must be positive, got {args.cpu_threads}"
    if args.max_steps <= 0 and args.num_train_epochs < 1:
        return "give --num_train_epochs >= 1 or --max_steps > 0"
    if not 1 <= args.max_seq_length <= 512:
        return f"--max_seq_length must be in 1..512, got {args.max_seq_length}"
    if args.warmup_steps < 0 or not 0.0 <= args.warmup_proportion < 1.0:
        return "--warmup_steps must be >= 0 and --warmup_proportion in [0, 1)"
    if args.warmup_steps > 0 and args.warmup_proportion > 0:
        return "pass --warmup_steps or --warmup_proportion, not both"
    if args.weight_decay < 0 or args.max_grad_norm < 0:
        return "--weight_decay and --max_grad_norm must be >= 0"
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value < 1.0:
            return f"--{name} must be in [0, 1), got {value}"
    return check_paths(args)


def check_paths(args) -> str | None:
    model_dir = Path(args.model_name_or_path)
    config = "model_config.json" if args.model_type == "squeezebert" else "config.json"
    needed = (config, "model_state.pdparams", "vocab.txt")
    if not model_dir.is_dir():
        return (f"--model_name_or_path {model_dir}: no such directory (it needs {', '.join(needed)}; "
                f"convert a checkpoint with convert_torch_to_paddle.py)")
    if args.model_type == "bert" and (model_dir / "model_config.json").is_file():
        needed = needed[1:]         # older PaddleNLP versions name the config model_config.json
    missing = [n for n in needed if not (model_dir / n).is_file()]
    if missing:
        return f"--model_name_or_path {model_dir} lacks {', '.join(missing)}"
    task = glue.get_task(args.task_name)
    if not args.download:
        from squeezebert_paddle.training import missing_data_message
        message = missing_data_message(task, Path(args.data_dir), args.do_predict)
        if message:
            return message
    output = Path(args.output_dir)
    if output.exists() and not output.is_dir():
        return f"--output_dir {output} is a file"
    if args.resume_from_checkpoint:
        state = Path(args.resume_from_checkpoint) / "trainer_state.json"
        if not state.is_file():
            return f"--resume_from_checkpoint: {state} not found; pass an OUTPUT/checkpoint-<step> directory"
    elif not args.overwrite_output_dir and output.is_dir() and any(output.glob("checkpoint-*")):
        return (f"--output_dir {output} already holds checkpoints; continue that run with "
                f"--resume_from_checkpoint {output}/checkpoint-<step>, or pass --overwrite_output_dir")
    return None


def check_device(args) -> str | None:
    import paddle
    has_cuda = paddle.is_compiled_with_cuda()
    if args.device is None:
        args.device = "gpu" if has_cuda else "cpu"
    if args.device == "gpu" and not has_cuda:
        return (f"--device gpu: this Paddle build (paddlepaddle {paddle.__version__}) has no CUDA support; "
                f"install paddlepaddle-gpu or pass --device cpu")
    if args.amp and args.device != "gpu":
        return "--amp needs --device gpu (float16 training on CPU is not supported)"
    return None


def parse_args(argv=None):
    """Parse and fill the defaults that depend on other flags."""
    args = build_parser().parse_args(argv)
    if args.eval_steps is None:
        args.eval_steps = args.save_steps
    if args.eval_batch_size is None:
        args.eval_batch_size = args.batch_size
    if args.data_dir is None:
        args.data_dir = str(Path("glue_data") / glue.get_task(args.task_name).dir_name)
    return args


def main(argv=None) -> int:
    warnings.filterwarnings("ignore", message=".*ccache.*")
    args = parse_args(argv)
    problem = check_args(args) or check_device(args)
    if problem:
        print(f"run_glue.py: error: {problem}", file=sys.stderr)
        return 2
    from squeezebert_paddle import training
    training.configure_logging(training.launched_rank())
    try:
        training.train(args)
    except training.TrainingError as err:
        print(f"run_glue.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
