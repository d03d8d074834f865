"""Optimizer steps of a run: how many (the step plan), the learning-rate schedule, and AdamW.

The schedules are HF's `get_linear_schedule_with_warmup` / `get_constant_schedule_with_warmup`
multipliers written the same way, run by Paddle's `LambdaDecay` (base_lr * factor(step), as torch's
LambdaLR does), so the learning rate equals HF's bit for bit at every step. Paddle's own
`LinearWarmup` + `PolynomialDecay` give the same schedule but round differently (1 ulp at some
steps: `lr * step / warmup` against `lr * (step / warmup)`, `1 - a/b` against `(b - a) / b`), which
tests/test_training.py shows, so they are not used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import paddle


@dataclass(frozen=True)
class StepPlan:
    examples: int
    global_batch: int        # examples per micro-batch over all processes
    accumulation: int
    batches_per_epoch: int   # global micro-batches
    steps_per_epoch: int     # optimizer steps
    total_steps: int
    epochs: int
    warmup_steps: int


def plan_steps(examples: int, batch_size: int, world: int, accumulation: int, epochs: int,
               max_steps: int, warmup_steps: int, warmup_proportion: float) -> StepPlan:
    """Step counts as HF derives them: a partial last batch counts, `max_steps > 0` overrides
    epochs, warmup is `warmup_steps` or ceil(total x proportion)."""
    global_batch = batch_size * world
    batches = math.ceil(examples / global_batch)
    steps_per_epoch = math.ceil(batches / accumulation)
    total = max_steps if max_steps > 0 else steps_per_epoch * epochs
    warmup = warmup_steps if warmup_steps > 0 else math.ceil(total * warmup_proportion)
    return StepPlan(examples, global_batch, accumulation, batches, steps_per_epoch, total,
                    math.ceil(total / steps_per_epoch), warmup)


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """HF get_linear_schedule_with_warmup's multiplier, written the same way so the float values
    agree bit for bit."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return float(step) / float(max(1, warmup_steps))
        return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))
    return factor


def constant_schedule(warmup_steps: int) -> Callable[[int], float]:
    """HF get_constant_schedule_with_warmup's multiplier."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return float(step) / float(max(1.0, warmup_steps))
        return 1.0
    return factor


def build_scheduler(learning_rate: float, kind: int, warmup_steps: int, total_steps: int):
    """kind 1: linear warmup then linear decay to 0; kind 0: warmup then constant."""
    factor = linear_schedule(warmup_steps, total_steps) if kind == 1 else constant_schedule(warmup_steps)
    return paddle.optimizer.lr.LambdaDecay(learning_rate, factor)


def decay_parameter_names(model) -> set[str]:
    """Weight decay by rank: matrices and embeddings decay, biases and LayerNorm scales do not."""
    return {p.name for p in model.parameters() if p.ndim >= 2}


def build_optimizer(model, scheduler, weight_decay: float, epsilon: float, max_grad_norm: float):
    """AdamW with decoupled decay (p -= lr * wd * p, as torch.optim.AdamW) and global-norm clipping."""
    decay = decay_parameter_names(model)
    clip = paddle.nn.ClipGradByGlobalNorm(max_grad_norm) if max_grad_norm > 0 else None
    return paddle.optimizer.AdamW(
        learning_rate=scheduler, beta1=0.9, beta2=0.999, epsilon=epsilon,
        parameters=model.parameters(), weight_decay=weight_decay,
        apply_decay_param_fun=decay.__contains__, grad_clip=clip, lazy_mode=False,
        multi_precision=False)
