"""A whole fine-tuning run from its settings: `train(settings)` (the library entry) and
`run_command(settings)` (run_glue.py's: checks first, one-line errors, an exit status).

`train` runs in a fresh unique-name scope so that parameter and optimizer-state names are the same in
every run, which lets a checkpoint's optimizer state be matched to a new process's tensors.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import paddle

from .. import cpu_kernels
from ..data import TaskSpec, load_glue_splits, prepare_glue_data, split_files
from ..demo import MARKER_FILE, is_demo
from ..errors import run_main
from ..fileio import atomic_directory, atomic_write_json, clean_interrupted_writes, hold_lock
from .errors import TrainingError
from .evaluation import MetricsWriter, plot_curves, write_predictions
from .loop import evaluate_and_keep_best, fractional_epoch, train_loop
from .models import (load_glue_model, load_glue_tokenizer, load_weights_from, save_model_dir,
                     switch_to_fused_kernels, unwrap)
from .optim import build_optimizer, build_scheduler, plan_steps
from .output_layout import (ARGS_FILE, BEST_DIR, CURVES_FILE, FINAL_DIR, PREDICTIONS_DIR,
                            RUN_LOCK_FILE, TRAINER_STATE_FILE, remove_run_outputs)
from .processes import Dist, barrier, configure_logging, launched_rank, setup_distributed
from .settings import RunSettings, default_device, first_problem, output_dir_problem
from .state import Run, copy_best_model, resume_state, saving

logger = logging.getLogger("squeezebert_paddle.training")


@contextlib.contextmanager
def _quiet_paddlenlp():
    """PaddleNLP prints notices when imported and two lines per failed download retry; the caller
    reports what failed, in one line."""
    loggers = [logging.getLogger("PaddleNLP"), logging.getLogger("paddle.utils.download")]
    disabled = [log.disabled for log in loggers]
    for log in loggers:
        log.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, was in zip(loggers, disabled):
            log.disabled = was


def paddlenlp_glue_files(task: TaskSpec) -> dict[str, bytes]:
    """GLUE's own files as PaddleNLP's `load_dataset('glue', ...)` fetches and unpacks them (the
    fallback of `--download` when the Hugging Face hub fails; its hosts are often unreachable)."""
    paths = [p for split in ("train", "dev", "test") for p in split_files(task, ".", split)]
    with _quiet_paddlenlp():
        from paddlenlp.datasets import load_dataset
        from paddlenlp.utils.env import DATA_HOME
        load_dataset("glue", name=task.name.lower(), splits=[p.stem for p in paths])
    fetched = Path(DATA_HOME) / "Glue" / task.dir_name
    return {p.name: (fetched / p.name).read_bytes() for p in paths if (fetched / p.name).is_file()}


def log_run_summary(run: Run) -> None:
    plan, settings = run.plan, run.settings
    dev = ", ".join(f"{len(s)} ({s.name})" for s in run.splits["dev"])
    logger.info("***** Running training *****")
    logger.info("  task %s (%s), metric %s; model %s from %s", run.task.name,
                "regression" if run.task.is_regression else f"{run.task.num_labels} labels",
                run.metric_key, settings.model_type, settings.model_name_or_path)
    if is_demo(settings.model_name_or_path):
        logger.warning("  RANDOM WEIGHTS: %s carries %s (demo weights, not a released checkpoint); the "
                       "metrics say nothing about SqueezeBERT", settings.model_name_or_path, MARKER_FILE)
    logger.info("  train examples %d; dev examples %s", plan.examples, dev)
    logger.info("  processes %d x batch %d x accumulation %d = %d examples per step", run.dist.world,
                settings.batch_size, plan.accumulation, plan.global_batch * plan.accumulation)
    logger.info("  epochs %d, steps per epoch %d, total steps %d, warmup steps %d", plan.epochs,
                plan.steps_per_epoch, plan.total_steps, plan.warmup_steps)
    if settings.device == "cpu" and settings.model_type == "squeezebert":
        reason = cpu_kernels.failure() or "the model's groups do not fit them"
        logger.info("  CPU kernels: %s", "fused (squeezebert_paddle/kernels)" if run.fused_kernels
                    else f"Paddle's own ops ({reason})")


def resolved_settings(settings: RunSettings, run: Run, data_dir: Path) -> dict:
    """args.json: the settings as given, plus what the run derived from them."""
    plan = run.plan
    return {**asdict(settings), "data_dir": str(data_dir), "world_size": run.dist.world,
            "global_batch_size": plan.global_batch * plan.accumulation,
            "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
            "num_train_epochs_resolved": plan.epochs, "warmup_steps_resolved": plan.warmup_steps,
            "paddle_version": paddle.__version__}


def build_run(settings: RunSettings, ctx: Dist) -> Run:
    task = settings.task
    resume = Path(settings.resume_from_checkpoint) if settings.resume_from_checkpoint else None
    data_dir = prepare_glue_data(task, settings.data_dir, settings.do_predict, settings.download,
                                 fallback=("PaddleNLP", paddlenlp_glue_files))
    tokenizer = load_glue_tokenizer(settings.model_type, settings.model_name_or_path)
    splits = load_glue_splits(task, data_dir, tokenizer, settings.max_seq_length, settings.do_predict)
    paddle.seed(settings.seed + ctx.rank)
    model = load_glue_model(settings.model_type, resume or settings.model_name_or_path, task.num_labels,
                            settings.config_overrides(), settings.ignore_mismatched_sizes)
    fused = switch_to_fused_kernels(model, settings.device)
    positions = model.config.max_position_embeddings
    if settings.max_seq_length > positions:
        raise TrainingError(f"--max_seq_length {settings.max_seq_length} exceeds the model's "
                            f"max_position_embeddings ({positions})")
    plan = plan_steps(len(splits["train"][0]), settings.batch_size, ctx.world,
                      settings.gradient_accumulation_steps, settings.num_train_epochs, settings.max_steps,
                      settings.warmup_steps, settings.warmup_proportion)
    scheduler = build_scheduler(settings.learning_rate, settings.lr_scheduler, plan.warmup_steps,
                                plan.total_steps)
    optimizer = build_optimizer(model, scheduler, settings.weight_decay, settings.adam_epsilon,
                                settings.max_grad_norm)
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if settings.amp else None
    if ctx.world > 1:
        model = paddle.DataParallel(model)
    output_dir = Path(settings.output_dir)
    run = Run(settings, ctx, task, output_dir, tokenizer, model, splits, plan, scheduler, optimizer,
              scaler, fused)
    if resume is not None:
        resume_state(run, resume)
    if ctx.is_main:
        with saving(run, output_dir):
            prepare_output_dir(run, data_dir)
    return run


def prepare_output_dir(run: Run, data_dir: Path) -> None:
    """The output directory cleaned of interrupted writes (and, with --overwrite_output_dir, of the
    previous run), a resumed run's best/ carried over, and args.json (rank 0 only)."""
    settings, output_dir = run.settings, run.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    clean_interrupted_writes(output_dir)
    if settings.overwrite_output_dir and not settings.resume_from_checkpoint:
        removed = remove_run_outputs(output_dir)
        if removed:
            logger.info("--overwrite_output_dir: removed the previous run's %s from %s",
                        ", ".join(removed), output_dir)
    if run.best_source is not None:
        copy_best_model(run.best_source, output_dir)
    atomic_write_json(output_dir / ARGS_FILE, resolved_settings(settings, run, data_dir))


def finish_run(run: Run) -> None:
    """Final model, trainer state, curves, and (with --do_predict) predictions from the best model."""
    out = run.output_dir
    if run.dist.is_main:
        with saving(run, out / FINAL_DIR):
            atomic_directory(out / FINAL_DIR, lambda tmp: save_model_dir(unwrap(run.model), run.tokenizer, tmp,
                                                                           run.settings.model_name_or_path))
        logger.info("saved the final model to %s", out / FINAL_DIR)
        with saving(run, out / TRAINER_STATE_FILE):
            atomic_write_json(out / TRAINER_STATE_FILE, asdict(run.state))
        with saving(run, out / CURVES_FILE):
            plot_curves(out / CURVES_FILE, run.state.train_log, run.state.eval_log, run.metric_key)
    if run.settings.do_predict and run.dist.is_main:
        source = out / BEST_DIR if (out / BEST_DIR).is_dir() else out / FINAL_DIR
        load_weights_from(unwrap(run.model), source)
        logger.info("predicting the test files with %s", source)
        with saving(run, out / PREDICTIONS_DIR):
            write_predictions(run, out / PREDICTIONS_DIR)
    barrier(run.dist)
    logger.info("best %s %.4f at step %s", run.metric_key, run.state.best_metric, run.state.best_step)


def train(settings: RunSettings) -> dict:
    """Fine-tune, evaluate, checkpoint and (with do_predict) predict. Returns the last evaluation."""
    settings.device = settings.device or default_device()
    ctx = setup_distributed(settings.device, settings.cpu_threads)
    with paddle.utils.unique_name.guard():
        run = build_run(settings, ctx)
        run.writer = MetricsWriter(run.output_dir, run.state.eval_log, ctx.is_main)
        try:
            log_run_summary(run)
            train_loop(run)
            state = run.state                 # (no best model recorded: a resume that starts it afresh)
            if not state.eval_log or state.eval_log[-1]["step"] != state.global_step or state.best_step is None:
                evaluate_and_keep_best(run, fractional_epoch(run))
            finish_run(run)
        finally:
            run.writer.close()
    return run.state.eval_log[-1]


def run_command(settings: RunSettings, prog: str = "run_glue.py") -> int:
    """run_glue.py's run: exit 2 with one line for a problem found before training, 1 (through
    `errors.run_main`) for an expected failure during it, 0 when done. A failed run that wrote nothing
    leaves no output directory of its own behind."""
    problem = first_problem(settings)
    lock, created = None, []
    if not problem and launched_rank() == 0:
        created = missing_dirs(Path(settings.output_dir))
        lock, problem = claim_output_dir(settings)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    with lock or contextlib.nullcontext():
        configure_logging(launched_rank())
        code = 1
        try:
            code = run_main(lambda: train(settings) and None, prog)
        finally:
            if code and lock is not None:
                remove_if_unused(created)
        return code


def missing_dirs(path: Path) -> list[Path]:
    """`path` and its parents that do not exist (yet), deepest first: what `mkdir(parents=True)` creates.
    Resolved first: in `new/../old` the directory meant is `old`, which exists, not `new`."""
    path = Path(os.path.realpath(path))
    return list(itertools.takewhile(lambda p: not os.path.lexists(p), (path, *path.parents)))


def remove_if_unused(created: list[Path]) -> None:
    """After a failed run (a --download without network): the output directory it created, with its
    parents, when it holds nothing but the run's lock file. Removed under the lock, so that no other
    run can be holding it; a directory that something else wrote into stays."""
    with contextlib.suppress(OSError):
        if not created or [p.name for p in created[0].iterdir()] != [RUN_LOCK_FILE]:
            return
        (created[0] / RUN_LOCK_FILE).unlink()
        for directory in created:
            directory.rmdir()


def claim_output_dir(settings: RunSettings) -> tuple[Any, str | None]:
    """(the held OUTPUT/.run_glue.lock, None), or (None, why not): two runs writing one directory would
    mix their checkpoints and metrics. The directory is checked again under the lock, as another run
    may have written there since the first check."""
    output = Path(settings.output_dir)
    try:
        output.mkdir(parents=True, exist_ok=True)
        lock = hold_lock(output / RUN_LOCK_FILE)
    except OSError as err:
        return None, f"--output_dir {output} cannot be written ({err.strerror}); choose another --output_dir"
    if lock is None:
        return None, (f"another run_glue.py is writing to --output_dir {output}; wait for it to end or "
                      f"choose another --output_dir")
    problem = output_dir_problem(settings)
    if problem:
        lock.close()
        return None, problem
    return lock, None
