"""What a run holds while it trains (`Run`, `TrainState`), and its checkpoints: everything a resumed
run needs to continue exactly (optimizer moments, schedule, loss scale, data position, every
process's dropout generator). File names: output_layout.py.
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from ..checkpoint import CheckpointError, read_pdparams, write_pdparams
from ..data import Split, TaskSpec
from ..errors import ENVIRONMENT_ERRNOS
from ..fileio import atomic_directory, atomic_write_json
from .errors import TrainingError
from .models import save_model_dir, unwrap
from .optim import StepPlan
from .output_layout import (BEST_DIR, EVAL_RESULTS_FILE, OPTIMIZER_FILE, RNG_FILE, SCALER_FILE,
                            SCHEDULER_FILE, TRAINER_STATE_FILE, checkpoint_dir)
from .processes import Dist
from .settings import GLOBAL_BATCH, RUN_DEFINING, RunSettings, run_record, setting_changes

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
    first_loss: float | None = None                 # step 1's training loss: the untrained reference
    checkpoint_losses: list = field(default_factory=list)   # {"step", "path", "from_step", "loss"}


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
    losses_since_checkpoint: list = field(default_factory=list)   # step losses since the last save
    best_source: Path | None = None     # a resumed run's best/ to copy into a new output directory

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


def expected_accumulators(optimizer, model) -> dict[str, tuple[int, ...]]:
    """{"<structured parameter name>::<accumulator>": shape} of every AdamW accumulator a step creates:
    the two moments shaped like their parameter, the two beta powers of shape (1,)."""
    shapes = {optimizer._moment1_acc_str: None, optimizer._moment2_acc_str: None,
              optimizer._beta1_pow_acc_str: (1,), optimizer._beta2_pow_acc_str: (1,)}
    return {f"{name}::{acc}": shape or tuple(p.shape) for name, p in model.named_parameters()
            for acc, shape in shapes.items()}


def optimizer_mismatches(expected: dict[str, tuple[int, ...]], arrays: dict[str, np.ndarray]) -> list[str]:
    """What keeps `arrays` from being the accumulators `expected`: missing, unknown, wrong shape or type."""
    found = [f"unknown {k}" for k in arrays if k not in expected]
    found += [f"{k} is {v.dtype} {v.shape}, expected floats {expected[k]}" for k, v in arrays.items()
              if k in expected and (v.shape != expected[k] or v.dtype.kind != "f")]
    return found + [f"missing {k}" for k in expected if k not in arrays]


def load_optimizer_arrays(optimizer, model, arrays: dict[str, np.ndarray], source: Path) -> None:
    """Inverse of `optimizer_arrays`, after checking every accumulator's name and shape. The
    accumulators are created lazily at the first step under the names `<tensor name>_<accumulator>_0`
    (train() runs in a fresh unique-name scope)."""
    problems = optimizer_mismatches(expected_accumulators(optimizer, model), arrays)
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise TrainingError(f"{source}: optimizer state does not match the model ({'; '.join(problems[:3])}"
                            f"{more}); resume from a checkpoint run_glue.py saved for this model")
    params = dict(model.named_parameters())
    state = {}
    for key, value in arrays.items():
        name, _, accumulator = key.partition("::")
        state[f"{params[name].name}_{accumulator}_0"] = paddle.to_tensor(value)
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
            "world_size": run.dist.world, "model_type": run.settings.model_type, "task": run.task.name,
            "run_settings": run_record(run.settings, run.plan.global_batch)}

    def fill(tmp: Path) -> None:
        save_model_dir(model, run.tokenizer, tmp, run.settings.model_name_or_path)
        write_pdparams(tmp / OPTIMIZER_FILE, optimizer_arrays(run.optimizer, model))
        atomic_write_json(tmp / SCHEDULER_FILE, run.scheduler.state_dict())
        atomic_write_json(tmp / RNG_FILE, {"world_size": run.dist.world, "ranks": rng_states})
        if run.scaler is not None:
            atomic_write_json(tmp / SCALER_FILE, _scaler_state(run.scaler))
        atomic_write_json(tmp / TRAINER_STATE_FILE, state | meta)

    with saving(run, final):
        atomic_directory(final, fill)
    logger.info("saved %s", final)
    return final


@contextlib.contextmanager
def saving(run: Run, target: Path):
    """Turn a failed write of `target` caused by the environment (full disk, read-only filesystem,
    ...) into one line naming it and the last checkpoint, which the atomic writers left intact."""
    try:
        yield
    except OSError as err:
        if err.errno not in ENVIRONMENT_ERRNOS:
            raise
        last = run.state.last_checkpoint
        kept = (f"; nothing of it was left and {last} is intact: continue with --resume_from_checkpoint "
                f"{last}" if last else "; nothing of it was left")
        raise TrainingError(f"could not write {target}: {err.strerror or os.strerror(err.errno)}{kept}, "
                            f"after freeing some space or with another --output_dir") from None


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise TrainingError(f"{path} not found: not a complete checkpoint directory") from None
    except json.JSONDecodeError as err:
        raise TrainingError(f"{path}: not valid JSON ({err.msg}); the checkpoint is damaged") from None
    except UnicodeDecodeError as err:
        raise TrainingError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                            f"{err.start}); the checkpoint is damaged") from None


# trainer_state.json fields a resume needs, beyond TrainState's own defaults: each a count >= 0.
RESUME_COUNTS = ("global_step", "epoch", "batches_done", "seed", "global_batch", "accumulation", "total_steps")
# The history lists of trainer_state.json: each entry an object with these number fields.
HISTORY_FIELDS = {"train_log": ("step", "loss"), "eval_log": ("step",),
                  "checkpoint_losses": ("step", "from_step", "loss")}


def trainer_state_problem(saved: Any) -> str | None:
    """What makes a checkpoint's trainer_state.json unusable for a resume, or None."""
    if not isinstance(saved, dict):
        return f"a JSON {type(saved).__name__}, not an object"
    for key in RESUME_COUNTS:
        if key not in saved:
            return f"lacks {key!r}"
        value = saved[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key!r} is {value!r}, not a count"
    for key, fields in HISTORY_FIELDS.items():
        history = saved.get(key, [])
        if not isinstance(history, list):
            return f"{key!r} is not a list"
        for i, entry in enumerate(history):
            if not _history_entry_ok(key, entry):
                wanted = ", ".join(fields) + (" and a path" if key == "checkpoint_losses" else "")
                return f"{key!r} entry {i} is {json.dumps(entry)[:40]}, not an object with numbers {wanted}"
    for key in ("best_metric", "first_loss"):
        value = saved.get(key)
        if value is not None and not _is_number(value):
            return f"{key!r} is {value!r}, not a number"
    return run_settings_problem(saved)


def _history_entry_ok(key: str, entry: Any) -> bool:
    if not isinstance(entry, dict) or not all(_is_number(entry.get(f)) for f in HISTORY_FIELDS[key]):
        return False
    if key != "checkpoint_losses":
        return True
    return isinstance(entry.get("path"), str) and (entry.get("next_loss") is None or _is_number(entry["next_loss"]))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def run_settings_problem(saved: dict) -> str | None:
    """A "run_settings" record that lacks settings (it would let their changes through unseen). A
    checkpoint without the record at all is older than it, and is taken (see `check_resumable`)."""
    if "run_settings" not in saved:
        return None
    recorded = saved["run_settings"]
    if not isinstance(recorded, dict):
        return f"'run_settings' is {json.dumps(recorded)[:40]}, not an object"
    missing = [k for k in (*RUN_DEFINING, GLOBAL_BATCH) if k not in recorded]
    if missing:
        return f"'run_settings' lacks {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}"
    return None


def check_scheduler_state(path: Path, global_step: int) -> None:
    """lr_scheduler.json, checked: the schedule has stepped once per optimizer step. (The rate itself is
    re-derived from this run's schedule, see `resume_state`.)"""
    saved = read_json(path)
    epoch = saved.get("last_epoch") if isinstance(saved, dict) else None
    lr = saved.get("last_lr") if isinstance(saved, dict) else None
    if (isinstance(epoch, bool) or not isinstance(epoch, int) or isinstance(lr, bool)
            or not isinstance(lr, (int, float)) or not math.isfinite(lr)):
        raise TrainingError(f"{path}: expected {{\"last_epoch\": <step>, \"last_lr\": <number>}}, found "
                            f"{json.dumps(saved)[:80]}; the checkpoint is damaged: resume from another "
                            f"checkpoint-<step>")
    if epoch != global_step:
        raise TrainingError(f"{path}: the schedule is at step {epoch}, the checkpoint at step {global_step}; "
                            f"the checkpoint is damaged: resume from another checkpoint-<step>")


def check_resumable(saved: dict, run: Run, ckpt: Path) -> bool:
    """Refuse a resume whose run-defining settings differ from the checkpoint's (unless
    --allow_changed_settings, which logs each change); returns whether the task changed."""
    recorded = saved.get("run_settings")
    if recorded is None:                          # checkpoints written before the record existed
        recorded = {"seed": saved["seed"], "global_batch_size": saved["global_batch"],
                    "gradient_accumulation_steps": saved["accumulation"]}
        recorded |= {k: saved[v] for k, v in (("task_name", "task"), ("model_type", "model_type")) if v in saved}
        logger.warning("%s records only %s of the run's settings; the others are taken as given", ckpt,
                       ", ".join(recorded))
    now = run_record(run.settings, run.plan.global_batch)
    changes = setting_changes(recorded, now)
    if changes and not run.settings.allow_changed_settings:
        raise TrainingError(f"{ckpt} was saved by a run with other settings ({'; '.join(changes)}); resume "
                            f"with the checkpoint's values, or pass --allow_changed_settings to continue "
                            f"with the new ones")
    for change in changes:
        logger.warning("--allow_changed_settings: %s", change)
    if saved["total_steps"] != run.plan.total_steps:
        logger.warning("%s: total steps change from %d to %d; the learning-rate schedule changes with it",
                       ckpt, saved["total_steps"], run.plan.total_steps)
    return recorded.get("task_name", now["task_name"]) != now["task_name"]


def best_model_source(run: Run, ckpt: Path, task_changed: bool) -> Path | None:
    """Keep the checkpoint's best-model record only when this run's best/ will hold that model: the
    same output directory, or a new one that gets the checkpoint run's best/ copied (when it holds
    the recorded step). Otherwise the record starts afresh, said in the log. Returns what to copy."""
    state = run.state
    if state.best_step is None:
        return None
    source, target = ckpt.parent / BEST_DIR, run.output_dir / BEST_DIR
    why = None
    if task_changed:
        why = f"the task changed to {run.task.name}"
    elif os.path.abspath(source) == os.path.abspath(target):
        return None
    else:
        results = source / EVAL_RESULTS_FILE
        recorded = read_json(results) if results.is_file() else None
        step = recorded.get("step") if isinstance(recorded, dict) else None
        if step == state.best_step:
            logger.info("the best model so far (step %d) is copied from %s to %s", step, source, target)
            return source
        why = f"{source} does not hold the best model of step {state.best_step}"
    logger.warning("%s: the best-model record (%.4f at step %d) starts afresh in %s", why,
                   state.best_metric, state.best_step, run.output_dir)
    state.best_metric = state.best_step = None
    return None


def copy_best_model(source: Path, output_dir: Path) -> None:
    atomic_directory(output_dir / BEST_DIR, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))


def read_optimizer_arrays(path: Path) -> dict[str, np.ndarray]:
    """optimizer.pdparams through the allow-list reader (numpy arrays only, never arbitrary pickles)."""
    if not path.is_file():
        raise TrainingError(f"{path} not found: the checkpoint lacks its optimizer state (AdamW moments); "
                            f"resume from another checkpoint-<step>, or start a new run from its weights "
                            f"with --model_name_or_path {path.parent} (the optimizer starts afresh)")
    try:
        return read_pdparams(path)
    except CheckpointError as err:
        raise TrainingError(f"{path}: refused as optimizer state ({str(err).removeprefix(f'{path}: ')}); "
                            f"resume from another checkpoint-<step>") from None


def resume_state(run: Run, ckpt: Path) -> None:
    """Restore optimizer, schedule, loss scale, data position and this rank's generator (the model
    weights were loaded from `ckpt` already)."""
    saved = read_json(ckpt / TRAINER_STATE_FILE)
    problem = trainer_state_problem(saved)
    if problem:
        raise TrainingError(f"{ckpt / TRAINER_STATE_FILE}: {problem}; the checkpoint is damaged or not "
                            f"run_glue.py's: resume from another checkpoint-<step>")
    task_changed = check_resumable(saved, run, ckpt)
    known = TrainState.__dataclass_fields__
    run.state = TrainState(**{k: v for k, v in saved.items() if k in known})
    relocate_checkpoints(run.state, ckpt)
    run.best_source = best_model_source(run, ckpt, task_changed)
    arrays = read_optimizer_arrays(ckpt / OPTIMIZER_FILE)
    load_optimizer_arrays(run.optimizer, unwrap(run.model), arrays, ckpt / OPTIMIZER_FILE)
    check_scheduler_state(ckpt / SCHEDULER_FILE, run.state.global_step)
    # The rate from this run's schedule at the checkpoint's step, not the saved one: a changed
    # --learning_rate or schedule (--allow_changed_settings) applies from the first resumed step.
    run.scheduler.step(run.state.global_step)
    if run.scaler is not None and (ckpt / SCALER_FILE).is_file():
        run.scaler.load_state_dict(read_json(ckpt / SCALER_FILE))
    restore_rng(run, ckpt / RNG_FILE)
    logger.info("resumed from %s at step %d (epoch %d, batch %d of the epoch)", ckpt,
                run.state.global_step, run.state.epoch, run.state.batches_done)


def relocate_checkpoints(state: TrainState, ckpt: Path) -> None:
    """Point the run's checkpoint records at where they are now (a run moved or copied elsewhere
    keeps its paths of then): `ckpt` itself, and its siblings of the recorded names that exist."""
    state.last_checkpoint = str(ckpt)
    for record in state.checkpoint_losses:
        here = ckpt if record["step"] == state.global_step else ckpt.parent / Path(record["path"]).name
        if here.is_dir():
            record["path"] = str(here)


def restore_rng(run: Run, path: Path) -> None:
    rng = read_json(path)
    ranks = rng.get("ranks") if isinstance(rng, dict) else None
    if not isinstance(ranks, list):
        raise TrainingError(f"{path}: no \"ranks\" list of generator states; the checkpoint is damaged: "
                            f"resume from another checkpoint-<step>")
    if run.dist.rank >= len(ranks):
        logger.warning("%s: no generator state for rank %d (saved by %d processes); dropout masks "
                       "will differ from the original run", path.parent, run.dist.rank, len(ranks))
        return
    try:
        rng_restore(ranks[run.dist.rank])
    except (KeyError, TypeError, ValueError) as err:
        raise TrainingError(f"{path}: generator state of rank {run.dist.rank} is unusable ({err!r}); the "
                            f"checkpoint is damaged: resume from another checkpoint-<step>") from None
