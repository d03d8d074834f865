"""What a fine-tuning run writes into its output directory (`--output_dir`), by name:

    args.json                 the run's settings, resolved (data dir, world size, steps)
    metrics.jsonl             one JSON object per dev evaluation, with "step"
    visualdl/                 VisualDL scalars (loss, lr, dev metrics)
    training_curves.png       training loss and dev metrics against the step
    trainer_state.json        step, epoch, data position, best metric, loss and eval history, each
                              checkpoint's mean training loss (the divergence stop judges by it)
    checkpoint-<step>/        a model directory `from_pretrained` loads, plus:
        vocab.txt, tokenizer_config.json          the tokenizer
        optimizer.pdparams                        AdamW moments keyed "<parameter name>::<accumulator>"
        lr_scheduler.json, trainer_state.json     schedule position; step, epoch, data position, history,
                                                  the run-defining settings a resume must match
        rng_state.json                            each process's Paddle generator state
        grad_scaler.json                          dynamic loss scale (only with --amp)
    best/, final/             model directories (best by the task's dev metric; the last step)
    predictions/<TASK>.tsv    GLUE submission files, from best/ (--do_predict)
    .run_glue.lock            held (flock) while a run writes here: a second run into it is refused

Every directory is written under a temporary name and renamed (`fileio.atomic_directory`), every
file atomically, so a run killed at any moment leaves the earlier outputs intact. Framework-free.
"""
from __future__ import annotations

from pathlib import Path

from ..fileio import remove_atomically

ARGS_FILE = "args.json"
RUN_LOCK_FILE = ".run_glue.lock"
METRICS_FILE = "metrics.jsonl"
VISUALDL_DIR = "visualdl"
CURVES_FILE = "training_curves.png"
TRAINER_STATE_FILE = "trainer_state.json"
CHECKPOINT_PREFIX = "checkpoint-"
OPTIMIZER_FILE = "optimizer.pdparams"
SCHEDULER_FILE = "lr_scheduler.json"
RNG_FILE = "rng_state.json"
SCALER_FILE = "grad_scaler.json"
BEST_DIR = "best"
FINAL_DIR = "final"
EVAL_RESULTS_FILE = "eval_results.json"
PREDICTIONS_DIR = "predictions"
# Beside the checkpoints, everything above that sits directly in the output directory.
RUN_OUTPUT_NAMES = (ARGS_FILE, METRICS_FILE, TRAINER_STATE_FILE, BEST_DIR, FINAL_DIR, PREDICTIONS_DIR,
                    VISUALDL_DIR, CURVES_FILE)


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"{CHECKPOINT_PREFIX}{step}"


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """The run's checkpoint-<step> directories, by step."""
    found = [p for p in output_dir.glob(CHECKPOINT_PREFIX + "*") if p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def run_outputs(output_dir: Path) -> list[str]:
    """Names of what a run leaves in `output_dir` that is there now ("checkpoint-4/", "args.json")."""
    if not output_dir.is_dir():
        return []
    found = [p.name + "/" for p in checkpoint_dirs(output_dir)]
    for name in RUN_OUTPUT_NAMES:
        path = output_dir / name
        if path.exists():
            found.append(name + "/" if path.is_dir() else name)
    return found


def remove_run_outputs(output_dir: Path) -> list[str]:
    """Remove what a previous run left in `output_dir` (`run_outputs`; files it does not name stay);
    returns their names."""
    found = run_outputs(output_dir)
    for name in found:
        remove_atomically(output_dir / name.rstrip("/"))
    return found
