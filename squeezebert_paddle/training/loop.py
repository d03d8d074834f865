"""The training loop: optimizer steps over the planned data order, with logging, dev evaluation,
the best model and checkpoints at their intervals.

One optimizer step works on one *global* batch of `batch_size x processes` examples (times
`gradient_accumulation_steps`); each process takes its slice (data_order.py), and its loss is
weighted so that the averaged gradient equals that of the whole global batch.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm import tqdm

from ..fileio import atomic_directory, atomic_write_json
from . import models
from .data_order import epoch_batches, gather_rows, rank_share
from .errors import TrainingError
from .evaluation import evaluate_dev
from .output_layout import BEST_DIR, EVAL_RESULTS_FILE, checkpoint_dir
from .processes import all_gather, barrier
from .state import Run, rng_snapshot, save_checkpoint, saving

logger = logging.getLogger("squeezebert_paddle.training")

# A checkpoint counts as sane when the mean training loss of the steps that led to it (since the
# previous checkpoint), and the loss of the step after it (the only one computed with the saved
# weights: a step's loss is taken before its update), are finite and at most this many times the
# lowest reference so far: the first step's loss (the untrained model's) and the earlier
# checkpoints' means. A diverging run's loss climbs far past the untrained model's before it
# overflows; noise stays well within the factor.
SANE_LOSS_FACTOR = 4.0


class NonFiniteLoss(TrainingError):
    pass


def train_step(run: Run, chunk: Sequence[np.ndarray]) -> float:
    """One optimizer step over `chunk` (global micro-batches of row indices); returns the mean loss
    over all of the step's examples, the same on every process."""
    n_step = sum(len(rows) for rows in chunk)
    loss_sum = paddle.zeros([1], dtype="float32")
    for i, rows in enumerate(chunk):
        local, weight = rank_share(rows, run.dist.rank, run.dist.world)
        batch = gather_rows(run.splits["train"][0], local, run.tokenizer.pad_token_id)
        last = i == len(chunk) - 1
        sync = contextlib.nullcontext() if last or run.dist.world == 1 else run.model.no_sync()
        with sync:
            with run.autocast():
                loss, _ = models.forward_batch(run.model, batch, with_labels=True)
            if loss.dtype != paddle.float32:
                loss = loss.astype("float32")
            # The averaged gradient over processes then equals the gradient of the mean over the step.
            scale = weight * len(local) * run.dist.world / n_step
            scaled = loss * scale if scale != 1.0 else loss
            (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
        loss_sum += loss.detach().reshape([1]) * (weight * len(local))
    if run.dist.world > 1:
        dist.all_reduce(loss_sum)
    value = loss_sum.item() / n_step
    if not math.isfinite(value):
        raise non_finite_error(run, value)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.clear_grad()
    return value


def judge_checkpoints(state, failed: float | None = None) -> list[tuple[dict, bool, float | None]]:
    """(checkpoint record, sane, reference it was held to) for each checkpoint of the run, in order
    (see SANE_LOSS_FACTOR). `failed`: the loss of step `global_step + 1`, which stopped the run."""
    reference, judged = state.first_loss, []
    for record in state.checkpoint_losses:
        after = failed if record["step"] == state.global_step else record.get("next_loss")
        losses = [record["loss"]] + ([after] if after is not None else [])
        sane = all(math.isfinite(x) and (reference is None or x <= SANE_LOSS_FACTOR * reference) for x in losses)
        judged.append((record | {"next_loss": after}, sane, reference))
        if math.isfinite(record["loss"]):
            reference = record["loss"] if reference is None else min(reference, record["loss"])
    return judged


def non_finite_error(run: Run, value: float) -> NonFiniteLoss:
    """The stop, naming the newest checkpoint that still exists and whose training loss was sane."""
    judged = [j for j in judge_checkpoints(run.state, value) if Path(j[0]["path"]).is_dir()]
    sane = [j for j in judged if j[1]]
    if sane:
        record, _, reference = sane[-1]
        rule = (f"{SANE_LOSS_FACTOR:g}x the lowest before it, {reference:.4g}" if reference is not None
                else "finite")
        later = [f"{Path(r['path']).name} (mean loss {r['loss']:.4g}"
                 + (f", then {r['next_loss']:.4g}" if r["next_loss"] is not None else "") + ")"
                 for r, ok, _ in judged if r["step"] > record["step"]]
        after = (f" and step {record['step'] + 1}'s on its weights, {record['next_loss']:.4g}, are"
                 if record["next_loss"] is not None else " is")
        where = (f"the last sane checkpoint is {record['path']} (judged by its training loss: the mean over "
                 f"steps {record['from_step']}-{record['step']}, {record['loss']:.4g},{after} within {rule}"
                 + (f"; later ones are not: {', '.join(later)}" if later else "")
                 + f"); continue with --resume_from_checkpoint {record['path']} --allow_changed_settings and "
                   f"a lower --learning_rate or a --max_grad_norm")
    elif judged:
        where = (f"no checkpoint's training loss was sane (mean over its steps, and the next step's on its "
                 f"weights, within {SANE_LOSS_FACTOR:g}x the lowest before it): start again with a lower --learning_rate or a --max_grad_norm")
    else:
        where = "no checkpoint was saved before it"
    return NonFiniteLoss(f"step {run.state.global_step + 1}: training loss is {value}; stopping, {where}")


def fractional_epoch(run: Run) -> float:
    return run.state.epoch + run.state.batches_done / run.plan.batches_per_epoch


def log_training(run: Run, window: list, clock: list, lr: float) -> None:
    """The mean loss of the steps since the last log line, into the log, the history and VisualDL."""
    step, epoch = run.state.global_step, fractional_epoch(run)
    mean = sum(window) / len(window)
    speed = len(window) / max(time.perf_counter() - clock[0], 1e-9)
    run.state.train_log.append({"step": step, "epoch": round(epoch, 4), "loss": mean, "lr": lr})
    logger.info("step %d/%d | epoch %.2f | loss %.6f | lr %.3e | %.2f steps/s", step,
                run.plan.total_steps, epoch, mean, lr, speed)
    if run.writer:
        run.writer.scalars({"train/loss": mean, "train/lr": lr}, step)
    window.clear()
    clock[0] = time.perf_counter()


def after_step(run: Run, loss: float, lr: float, window: list, clock: list) -> None:
    """Logging, evaluation, best model and checkpoints after optimizer step `global_step`."""
    step, settings, last = run.state.global_step, run.settings, run.plan.total_steps
    window.append(loss)
    run.losses_since_checkpoint.append(loss)
    saved = run.state.checkpoint_losses
    if saved and saved[-1]["step"] == step - 1:
        saved[-1]["next_loss"] = loss          # computed with that checkpoint's weights
    if run.state.first_loss is None:
        run.state.first_loss = loss
    if step % settings.logging_steps == 0 or step == last:
        log_training(run, window, clock, lr)
    if step % settings.eval_steps == 0 or step == last:
        evaluate_and_keep_best(run, fractional_epoch(run))
    if step % settings.save_steps == 0:
        losses, run.losses_since_checkpoint = run.losses_since_checkpoint, []
        run.state.checkpoint_losses.append({"step": step, "path": str(checkpoint_dir(run.output_dir, step)),
                                            "from_step": step - len(losses) + 1,
                                            "loss": sum(losses) / len(losses)})
        rng_states = all_gather(rng_snapshot(), run.dist)
        if run.dist.is_main:
            save_checkpoint(run, rng_states)
        run.state.last_checkpoint = str(checkpoint_dir(run.output_dir, step))
        barrier(run.dist)
        clock[0] = time.perf_counter()


def evaluate_and_keep_best(run: Run, epoch: float) -> dict:
    """Evaluate on dev, record it, and save best/ when the task's metric improved."""
    results = evaluate_dev(run)
    state = run.state
    record = {"step": state.global_step, "epoch": round(epoch, 4), **results}
    state.eval_log.append(record)
    logger.info("eval at step %d: %s", state.global_step,
                ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    if run.writer:
        with saving(run, run.writer.path):
            run.writer.evaluation(record)
    value = results[run.metric_key]
    if state.best_metric is None or value > state.best_metric:
        state.best_metric, state.best_step = value, state.global_step
        if run.dist.is_main:
            def fill(tmp: Path) -> None:
                models.save_model_dir(models.unwrap(run.model), run.tokenizer, tmp, run.settings.model_name_or_path)
                atomic_write_json(tmp / EVAL_RESULTS_FILE, record)
            with saving(run, run.output_dir / BEST_DIR):
                atomic_directory(run.output_dir / BEST_DIR, fill)
            logger.info("new best %s %.4f at step %d -> %s", run.metric_key, value,
                        state.global_step, run.output_dir / BEST_DIR)
    return results


def train_loop(run: Run) -> None:
    """Optimizer steps from the run's position (0, or a resumed checkpoint's) to the planned total."""
    state, plan = run.state, run.plan
    run.model.train()
    window: list[float] = []
    clock = [time.perf_counter()]
    bar = tqdm(total=plan.total_steps, initial=state.global_step, desc="train", unit="step",
               disable=None if run.dist.is_main else True)
    with bar:
        for epoch in range(state.epoch, plan.epochs):
            if epoch != state.epoch:
                state.epoch, state.batches_done = epoch, 0
            batches = epoch_batches(run.settings.seed, epoch, plan.examples, plan.global_batch)
            for start in range(state.batches_done, len(batches), plan.accumulation):
                if state.global_step >= plan.total_steps:
                    return
                chunk = batches[start:start + plan.accumulation]
                lr = run.scheduler.get_lr()
                loss = train_step(run, chunk)
                state.global_step += 1
                state.batches_done = start + len(chunk)
                bar.update(1)
                after_step(run, loss, lr, window, clock)
