"""Fine-tune SqueezeBERT (or PaddleNLP's BERT, for comparison) on a GLUE task, offline.

    python -u run_glue.py --model_type squeezebert --model_name_or_path ./models/squeezebert-mnli-headless \\
      --task_name QQP --batch_size 16 --learning_rate 4e-5 --num_train_epochs 5 --logging_steps 10 \\
      --save_steps 2000 --output_dir ./output/QQP/ --device gpu --lr_scheduler 1 --seed 5
    python -m paddle.distributed.launch --gpus 0,1 run_glue.py ...    # data parallel, same flags

`--batch_size` is per process: N processes train on global batches of N x batch_size examples.
Without --data_dir the task's files come from ./glue_data/<TASK>, else from the small GLUE-format
sample shipped in squeezebert_paddle/assets/glue_sample (said in the log). This file parses the flags;
the run is squeezebert_paddle/training (settings, defaults and checks in training/settings.py).
"""
from __future__ import annotations

import argparse
import sys
import warnings

from squeezebert_paddle.data import GLUE_TASKS, get_task
from squeezebert_paddle.errors import run_main
from squeezebert_paddle.training.settings import EPOCHS_LIMIT, MAX_STEPS_LIMIT, RunSettings, default_values

TASKS = tuple(GLUE_TASKS)


def task_name(value: str) -> str:
    try:
        return get_task(value).name
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class _HelpWithDefaults(argparse.RawDescriptionHelpFormatter):
    """Each flag's help ends with its default (from RunSettings) when it has a plain one."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return f"{action.help} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """Every flag is a RunSettings field; the defaults are the fields' own (set once, at the end)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpWithDefaults)
    a = p.add_argument
    a("--task_name", type=task_name, required=True, choices=TASKS, metavar="TASK",
      help=f"GLUE task, case-insensitive: {', '.join(TASKS)}")
    a("--model_type", type=str.lower, choices=("squeezebert", "bert"),
      help="squeezebert (this package) or bert (PaddleNLP's BertForSequenceClassification)")
    a("--model_name_or_path", "--model_path", "--model_dir", dest="model_name_or_path", required=True,
      help="local model directory (weights, config, vocab.txt); a head is added if it has none")
    a("--output_dir", required=True, help="where checkpoints, best/, final/, metrics and plots go")
    a("--data_dir", help="directory of the task's GLUE TSV files (default: ./glue_data/<TASK> when it "
                         "holds them, else the sample shipped in squeezebert_paddle/assets/glue_sample)")
    a("--download", action="store_true",
      help="if the task's files are missing, fetch them from the Hugging Face hub (nyu-mll/glue; "
           "PaddleNLP as fallback) into --data_dir or ./glue_data/<TASK> (network)")
    a("--max_seq_length", type=int,
      help="truncate inputs to this many tokens, special tokens included: at least 5 for pairs, 3 for "
           "single sentences, at most the model's max_position_embeddings")
    a("--batch_size", type=int, help="training examples per process per micro-batch")
    a("--eval_batch_size", type=int, help="evaluation batch size (default: --batch_size)")
    a("--learning_rate", type=float, help="peak learning rate of AdamW")
    a("--num_train_epochs", type=int, help=f"epochs to train, at most {EPOCHS_LIMIT} (ignored with --max_steps)")
    a("--max_steps", type=int, help=f"if > 0: optimizer steps to train (at most {MAX_STEPS_LIMIT}), overriding epochs")
    a("--lr_scheduler", type=int, choices=(0, 1),
      help="1: linear warmup then linear decay to 0 (HF get_linear_schedule_with_warmup); "
           "0: warmup then constant")
    a("--warmup_steps", type=int, help="linear warmup steps (exclusive with --warmup_proportion)")
    a("--warmup_proportion", type=float, help="warmup as a fraction of the total steps, in [0, 1)")
    a("--weight_decay", type=float,
      help="decoupled AdamW weight decay of every tensor with 2+ dimensions (not biases/LayerNorm)")
    a("--adam_epsilon", type=float, help="AdamW epsilon")
    a("--max_grad_norm", type=float, help="clip gradients to this global L2 norm; 0 disables (HF's Trainer uses 1.0)")
    a("--gradient_accumulation_steps", type=int,
      help="micro-batches per optimizer step; the step's loss is the mean over all their examples")
    a("--hidden_dropout_prob", type=float, help="override the model config's hidden dropout")
    a("--attention_probs_dropout_prob", type=float, help="override the model config's attention dropout")
    a("--ignore_mismatched_sizes", action="store_true",
      help="re-initialise a classifier head whose label count differs from the task's")
    a("--logging_steps", type=int, help="log loss, lr and speed every N optimizer steps")
    a("--save_steps", type=int, help="write OUTPUT/checkpoint-<step>/ every N steps")
    a("--eval_steps", type=int, help="evaluate on dev every N steps (default: --save_steps)")
    a("--seed", type=int, help="seed of the data order (per epoch) and of dropout")
    a("--device", choices=("cpu", "gpu"), help="device (default: gpu when this Paddle build has CUDA, else cpu)")
    a("--amp", action="store_true", help="float16 autocast with dynamic loss scaling (GPU only)")
    a("--cpu_threads", type=int,
      help="math-library threads per process on CPU, 1 to 4 per core (default: available cores / processes "
           "on the node)")
    a("--resume_from_checkpoint", metavar="DIR",
      help="continue exactly from OUTPUT/checkpoint-<step>/; the settings that define the run (task, "
           "model, learning rate and schedule, sequence length, batch, seed, ...) must be the same")
    a("--allow_changed_settings", action="store_true",
      help="resume although settings recorded in the checkpoint changed (each change is logged; a "
           "changed task starts the best-model record afresh)")
    a("--overwrite_output_dir", action="store_true",
      help="start afresh in an --output_dir that holds another run: its outputs (checkpoints, best/, "
           "final/, metrics, VisualDL records, plots, predictions) are removed first; other files stay")
    a("--do_predict", action="store_true",
      help="write GLUE test predictions (OUTPUT/predictions/<TASK>.tsv) with the best model")
    p.set_defaults(**default_values())
    return p


def parse_args(argv=None) -> RunSettings:
    return RunSettings(**vars(build_parser().parse_args(argv)))


def main(argv=None) -> int:
    warnings.filterwarnings("ignore", message=".*ccache.*")
    from squeezebert_paddle.training import run_command
    return run_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_main(main))
