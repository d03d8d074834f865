"""What a run holds while it trains (`Run`, `TrainState`), and its checkpoints: everything a resumed
run needs to continue exactly (optimizer moments, schedule, loss scale, data position, every
process's dropout generator). File names: output_layout.py.
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from ..checkpoint import CheckpointError, read_pdparams, write_pdparams
from ..data import Split, TaskSpec
from ..fileio import atomic_directory, atomic_write_json
from .errors import TrainingError
from .models import save_model_dir, unwrap
from .optim import StepPlan
from .output_layout import (OPTIMIZER_FILE, RNG_FILE, SCALER_FILE, SCHEDULER_FILE, TRAINER_STATE_FILE,
                            checkpoint_dir)
from .processes import Dist
from .settings import RunSettings

logger = logging.getLogger("squeezebert_paddle.training")


@dataclass
class TrainState:
    global_step: int = 0
    epoch: int = 0
    batches_done: int = 0              # global micro-batches of `epoch` already trained on
    best_metric: float | None = None
    best_step: int | None = None
    last_checkpoint: str | None = None
    train_log: list = field(default_factory=list)   # {"step", "epoch", "loss", "lr"}
    eval_log: list = field(default_factory=list)    # {"step", "epoch", "<split>/<metric>": ...}


@dataclass
class Run:
    """Everything the training loop touches."""

    settings: RunSettings
    dist: Dist
    task: TaskSpec
    output_dir: Path
    tokenizer: Any
    model: Any                 # paddle.DataParallel when world > 1
    splits: dict[str, list[Split]]
    plan: StepPlan
    scheduler: Any
    optimizer: Any
    scaler: Any                # paddle.amp.GradScaler with --amp, else None
    fused_kernels: bool = False
    writer: Any = None         # evaluation.MetricsWriter once the run starts
    state: TrainState = field(default_factory=TrainState)

    @property
    def metric_key(self) -> str:
        return f"{self.splits['dev'][0].name}/{self.task.metric}"

    def autocast(self):
        if self.scaler is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, level="O1", dtype="float16")


def optimizer_arrays(optimizer, model) -> dict[str, np.ndarray]:
    """AdamW accumulators keyed "<structured parameter name>::<accumulator>" (Paddle's own keys
    embed generated tensor names that depend on creation order)."""
    owners = {p.name: n for n, p in model.named_parameters()}
    out = {}
    for key, value in optimizer.state_dict().items():
        if key in ("LR_Scheduler", "master_weights"):
            continue
        owner = max((p for p in owners if key.startswith(p + "_")), key=len, default=None)
        if owner is None:
            raise TrainingError(f"optimizer state {key} belongs to no model parameter")
        accumulator = re.sub(r"_\d+$", "", key[len(owner) + 1:])
        out[f"{owners[owner]}::{accumulator}"] = value.numpy()
    return out


def load_optimizer_arrays(optimizer, model, arrays: dict[str, np.ndarray], source: Path) -> None:
    """Inverse of `optimizer_arrays`. The accumulators are created lazily at the first step under
    the names `<tensor name>_<accumulator>_0` (train() runs in a fresh unique-name scope)."""
    params = dict(model.named_parameters())
    state, unknown = {}, []
    for key, value in arrays.items():
        name, _, accumulator = key.partition("::")
        if name not in params:
            unknown.append(name)
            continue
        state[f"{params[name].name}_{accumulator}_0"] = paddle.to_tensor(value)
    missing = sorted(set(params) - {k.partition("::")[0] for k in arrays})
    if unknown or missing:
        raise TrainingError(f"{source}: optimizer state does not match the model (missing "
                            f"{missing[:3]}, unknown {unknown[:3]}); resume with the same model type")
    optimizer.set_state_dict(state)


def rng_snapshot() -> list[dict]:
    """This process's Paddle generator states (the current device's) as JSON-able dicts."""
    out = []
    for state in paddle.get_rng_state():
        device, seed, offset, engine = state.__getstate__()
        out.append({"device": device, "seed": seed, "offset": offset,
                    "engine": base64.b64encode(bytes(engine)).decode("ascii")})
    return out


def rng_restore(snapshot: list[dict]) -> None:
    states = paddle.get_rng_state()
    if len(states) != len(snapshot):
        raise TrainingError(f"checkpoint holds {len(snapshot)} generator states, this device has "
                            f"{len(states)}; resume on the same kind of device")
    restored = []
    for state, saved in zip(states, snapshot):
        fresh = type(state).__new__(type(state))     # pybind's __setstate__ only builds new objects
        fresh.__setstate__((saved["device"], saved["seed"], saved["offset"],
                            list(base64.b64decode(saved["engine"]))))
        restored.append(fresh)
    paddle.set_rng_state(restored)


def _scaler_state(scaler) -> dict:
    return {k: (np.asarray(v).tolist() if hasattr(v, "shape") else v)
            for k, v in scaler.state_dict().items()}


def save_checkpoint(run: Run, rng_states: list) -> Path:
    """checkpoint-<step>/ with everything a resumed run needs (rank 0 only)."""
    final = checkpoint_dir(run.output_dir, run.state.global_step)
    model = unwrap(run.model)
    state = asdict(run.state) | {"last_checkpoint": str(final)}
    meta = {"seed": run.settings.seed, "global_batch": run.plan.global_batch,
            "accumulation": run.plan.accumulation, "total_steps": run.plan.total_steps,
            "world_size": run.dist.world, "model_type": run.settings.model_type, "task": run.task.name}

    def fill(tmp: Path) -> None:
        save_model_dir(model, run.tokenizer, tmp)
        write_pdparams(tmp / OPTIMIZER_FILE, optimizer_arrays(run.optimizer, model))
        atomic_write_json(tmp / SCHEDULER_FILE, run.scheduler.state_dict())
        atomic_write_json(tmp / RNG_FILE, {"world_size": run.dist.world, "ranks": rng_states})
        if run.scaler is not None:
            atomic_write_json(tmp / SCALER_FILE, _scaler_state(run.scaler))
        atomic_write_json(tmp / TRAINER_STATE_FILE, state | meta)

    atomic_directory(final, fill)
    logger.info("saved %s", final)
    return final


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise TrainingError(f"{path} not found: not a complete checkpoint directory") from None
    except json.JSONDecodeError as err:
        raise TrainingError(f"{path}: not valid JSON ({err.msg}); the checkpoint is damaged") from None


def check_resumable(saved: dict, run: Run, ckpt: Path) -> None:
    """The data order must be the same: same seed, same examples per optimizer step."""
    if saved["global_batch"] * saved["accumulation"] != run.plan.global_batch * run.plan.accumulation:
        raise TrainingError(
            f"{ckpt}: saved with {saved['global_batch']} examples x {saved['accumulation']} "
            f"accumulation per step, this run takes {run.plan.global_batch} x {run.plan.accumulation}; "
            f"keep batch_size x processes x gradient_accumulation_steps equal to resume")
    if saved["seed"] != run.settings.seed:
        raise TrainingError(f"{ckpt}: saved with --seed {saved['seed']}, this run has {run.settings.seed}; "
                            f"the data order depends on it")
    if saved["total_steps"] != run.plan.total_steps:
        logger.warning("%s: total steps change from %d to %d; the learning-rate schedule changes with it",
                       ckpt, saved["total_steps"], run.plan.total_steps)


def resume_state(run: Run, ckpt: Path) -> None:
    """Restore optimizer, schedule, loss scale, data position and this rank's generator (the model
    weights were loaded from `ckpt` already)."""
    saved = read_json(ckpt / TRAINER_STATE_FILE)
    check_resumable(saved, run, ckpt)
    known = TrainState.__dataclass_fields__
    run.state = TrainState(**{k: v for k, v in saved.items() if k in known})
    try:
        arrays = read_pdparams(ckpt / OPTIMIZER_FILE)
    except CheckpointError as err:
        raise TrainingError(str(err)) from None
    load_optimizer_arrays(run.optimizer, unwrap(run.model), arrays, ckpt / OPTIMIZER_FILE)
    run.scheduler.set_state_dict(read_json(ckpt / SCHEDULER_FILE))
    if run.scaler is not None and (ckpt / SCALER_FILE).is_file():
        run.scaler.load_state_dict(read_json(ckpt / SCALER_FILE))
    rng = read_json(ckpt / RNG_FILE)
    if run.dist.rank < len(rng["ranks"]):
        rng_restore(rng["ranks"][run.dist.rank])
    else:
        logger.warning("%s: no generator state for rank %d (saved by %d processes); dropout masks "
                       "will differ from the original run", ckpt, run.dist.rank, rng["world_size"])
    logger.info("resumed from %s at step %d (epoch %d, batch %d of the epoch)", ckpt,
                run.state.global_step, run.state.epoch, run.state.batches_done)
