"""GLUE fine-tuning in Paddle: the logic behind `run_glue.py`.

One optimizer step works on one *global* batch of `batch_size x processes` examples (times
`gradient_accumulation_steps`); each process takes its slice of every global batch, and its loss is
weighted so that the averaged gradient equals that of the whole global batch, exactly as one process
would compute it. The order of examples is a permutation drawn from `numpy.random.default_rng([seed,
epoch])`, so a resumed run replays it; a checkpoint stores the position inside the epoch and every
process's dropout generator.

Checkpoint layout (`OUTPUT/checkpoint-<step>/`, written into a temporary directory then renamed):
    model_config.json, model_state.pdparams   the model (loads with `from_pretrained`)
    vocab.txt, tokenizer_config.json          the tokenizer
    optimizer.pdparams                        AdamW moments keyed "<parameter name>::<accumulator>"
    lr_scheduler.json, trainer_state.json     schedule position; step, epoch, data position, history
    rng_state.json                            each process's Paddle generator state
    grad_scaler.json                          dynamic loss scale (only with --amp)
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
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm import tqdm

from . import cpu_kernels
from . import data as glue
from . import host_memory
from .checkpoint import CheckpointError, atomic_write_text, read_pdparams, write_pdparams
from .metrics import compute_metrics

logger = logging.getLogger("squeezebert_paddle.training")

TRAINER_STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pdparams"
SCHEDULER_FILE = "lr_scheduler.json"
RNG_FILE = "rng_state.json"
SCALER_FILE = "grad_scaler.json"
METRICS_FILE = "metrics.jsonl"


class TrainingError(Exception):
    """An expected failure (bad data, bad checkpoint, diverged loss); the message says what to do."""


# -- processes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_rank() -> int:
    """This process's rank as `paddle.distributed.launch` sets it (0 when not launched)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def cpu_threads(requested: int | None) -> int:
    """`requested`, else the cores this process may use divided among the processes on this node."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("PADDLE_LOCAL_SIZE", "1")))


def setup_distributed(device: str, threads: int | None = None) -> Dist:
    """Select the device; join the process group when started by `paddle.distributed.launch`
    (gloo on CPU, NCCL on GPU). On CPU, let the math library (MKL GEMMs) use `cpu_threads`
    threads: Paddle's default is one, whatever OMP_NUM_THREADS says."""
    paddle.set_device(device)
    if device == "cpu":
        count = cpu_threads(threads)
        paddle.base.core.set_num_threads(count)
        cpu_kernels.set_threads(count)              # the fused kernels' OpenMP runtime
        host_memory.retain_freed_memory()
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    if world > 1:
        dist.init_parallel_env()
        return Dist(dist.get_rank(), dist.get_world_size())
    return Dist()


def all_gather(obj: Any, ctx: Dist) -> list:
    if ctx.world == 1:
        return [obj]
    gathered: list = []
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(ctx: Dist) -> None:
    if ctx.world > 1:
        dist.barrier()


class _TqdmHandler(logging.Handler):
    """Log lines to the current stderr that do not break a running progress bar."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 -- logging must never raise
            self.handleError(record)


def configure_logging(rank: int) -> None:
    """The console log of run_glue.py: INFO on rank 0, warnings only on the other ranks.

    Replaces plain console handlers on the root logger (importing Paddle under
    `paddle.distributed.launch` installs one, which would print every line twice); handler
    subclasses, such as pytest's capture, stay.
    """
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if type(h) not in (logging.StreamHandler, _TqdmHandler)]
    root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)


# -- data --------------------------------------------------------------------------------------

@dataclass
class Split:
    """One encoded GLUE file."""

    name: str                                  # file stem: train, dev, dev_matched, test_mismatched
    encoded: list[tuple[list[int], list[int]]]
    labels: np.ndarray | None                  # None for test files
    guids: list[str]

    def __len__(self) -> int:
        return len(self.encoded)


def missing_data_message(task: glue.TaskSpec, data_dir: Path, do_predict: bool) -> str | None:
    """None when `data_dir` holds every file the run needs, else a sentence naming them."""
    splits = ("train", "dev", "test") if do_predict else ("train", "dev")
    needed = glue.required_files(task, data_dir, splits)
    missing = [p.name for p in needed if not p.is_file()]
    if not missing:
        return None
    partial = "" if len(missing) == len(needed) else f" (of {', '.join(p.name for p in needed)})"
    return (f"GLUE {task.name} data not found: {data_dir} lacks {', '.join(missing)}{partial}; "
            f"download GLUE there, pass --data_dir, or add --download to fetch it with PaddleNLP")


def download_glue(task: glue.TaskSpec, loader: Callable | None = None,
                  data_home: str | os.PathLike | None = None) -> Path:
    """Fetch a task's original TSV files with PaddleNLP's `load_dataset('glue', ...)` (network);
    returns the directory it unpacked them into, which the TSV readers then read as usual."""
    if loader is None or data_home is None:
        from paddlenlp.datasets import load_dataset
        from paddlenlp.utils.env import DATA_HOME
        loader, data_home = loader or load_dataset, data_home or DATA_HOME
    splits = [p.stem for s in ("train", "dev", "test") for p in glue.split_files(task, ".", s)]
    logger.info("downloading GLUE %s (%s) with PaddleNLP", task.name, ", ".join(splits))
    loader("glue", name=task.name.lower(), splits=splits)
    return Path(data_home) / "Glue" / task.dir_name


def read_split(task: glue.TaskSpec, path: Path, split: str) -> list[glue.Example]:
    try:
        examples, skipped = glue.read_glue_tsv(path, task, split)
    except (FileNotFoundError, ValueError) as err:
        raise TrainingError(str(err)) from None
    if skipped:
        logger.warning("%s: skipped %d malformed rows, kept %d", path, skipped, len(examples))
    else:
        logger.info("%s: %d examples", path, len(examples))
    return examples


def encode_split(task: glue.TaskSpec, path: Path, split: str, tokenizer, max_seq_length: int) -> Split:
    examples = read_split(task, path, split)
    encoded = glue.encode_examples(tokenizer, examples, max_seq_length)
    labels = glue.encode_labels(task, examples) if split != "test" else None
    return Split(path.stem, encoded, labels, [e.guid for e in examples])


def load_glue_splits(task: glue.TaskSpec, data_dir: Path, tokenizer, max_seq_length: int,
                     do_predict: bool) -> dict[str, list[Split]]:
    """{"train": [Split], "dev": [Split, ...], "test": [...]}, tokenized."""
    splits = ("train", "dev", "test") if do_predict else ("train", "dev")
    return {split: [encode_split(task, path, split, tokenizer, max_seq_length)
                    for path in glue.split_files(task, data_dir, split)] for split in splits}


# -- models and tokenizers ---------------------------------------------------------------------

class PaddleNLPPairTokenizer:
    """PaddleNLP's BertTokenizer behind the `encode_pairs` interface that data.py uses."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.pad_token_id = tokenizer.pad_token_id

    def encode_pairs(self, texts_a, texts_b, max_seq_len):
        out = self.tokenizer(list(texts_a), list(texts_b) if texts_b is not None else None,
                             max_length=max_seq_len, truncation=True)
        return list(zip(out["input_ids"], out["token_type_ids"]))

    def save_pretrained(self, directory) -> None:
        self.tokenizer.save_pretrained(str(directory))


def load_tokenizer(model_type: str, model_dir: str | os.PathLike):
    if model_type == "squeezebert":
        from .tokenizer import SqueezeBertTokenizer
        return SqueezeBertTokenizer.from_pretrained(model_dir)
    from paddlenlp.transformers import BertTokenizer
    return PaddleNLPPairTokenizer(BertTokenizer.from_pretrained(str(model_dir)))


def load_model(model_type: str, model_dir: str | os.PathLike, num_labels: int,
               overrides: dict[str, float], ignore_mismatched_sizes: bool = False):
    """A sequence classifier with `num_labels` outputs; `overrides` replace config fields
    (dropout probabilities). A head absent from the directory is newly initialised (and logged)."""
    if model_type == "squeezebert":
        from .configuration import ConfigError
        from .modeling import SqueezeBertForSequenceClassification
        try:
            return SqueezeBertForSequenceClassification.from_pretrained(
                model_dir, num_labels=num_labels, ignore_mismatched_sizes=ignore_mismatched_sizes,
                **overrides)
        except (CheckpointError, ConfigError) as err:
            raise TrainingError(str(err)) from None
    from paddlenlp.transformers import BertForSequenceClassification
    try:
        return BertForSequenceClassification.from_pretrained(
            str(model_dir), num_labels=num_labels, ignore_mismatched_sizes=ignore_mismatched_sizes,
            **overrides)
    except (RuntimeError, ValueError, OSError) as err:
        raise TrainingError(f"{model_dir}: " + " ".join(str(err).split())) from None


def load_weights(model, model_dir: Path) -> None:
    """Overwrite `model`'s weights with those saved in `model_dir` (a best/ or checkpoint dir)."""
    state = read_pdparams(model_dir / "model_state.pdparams")
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})


def save_model(model, tokenizer, directory: Path) -> None:
    """Model and tokenizer files into `directory`, loadable with `from_pretrained`."""
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(directory)


def unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def forward(model, batch: glue.Batch, with_labels: bool):
    """(loss, logits) with labels, else logits. Both model families take these keywords."""
    inputs = dict(input_ids=paddle.to_tensor(batch.input_ids),
                  attention_mask=paddle.to_tensor(batch.attention_mask),
                  token_type_ids=paddle.to_tensor(batch.token_type_ids))
    if with_labels:
        inputs["labels"] = paddle.to_tensor(batch.labels)
    return model(**inputs)


# -- steps, schedule, optimizer ------------------------------------------------------------------

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
    """kind 1: linear warmup then linear decay to 0; kind 0: warmup then constant. Paddle's
    LambdaDecay computes `base_lr * factor(step)`, as torch's LambdaLR does."""
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


# -- data order ------------------------------------------------------------------------------------

def epoch_batches(seed: int, epoch: int, examples: int, global_batch: int) -> list[np.ndarray]:
    """The global micro-batches of one epoch: a permutation seeded by (seed, epoch), cut in order."""
    order = np.random.default_rng([seed, epoch]).permutation(examples)
    return [order[i:i + global_batch] for i in range(0, examples, global_batch)]


def rank_share(rows: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
    """This process's slice of a global batch, and its weight (1, or 0 for a stand-in row when a
    short last batch has fewer rows than processes: every process must still run a backward)."""
    share = np.array_split(rows, world)[rank]
    if len(share) == 0:
        return rows[:1], 0.0
    return share, 1.0


def gather_rows(split: Split, rows: np.ndarray, pad_id: int) -> glue.Batch:
    encoded = [split.encoded[i] for i in rows]
    labels = split.labels[rows] if split.labels is not None else None
    return glue.make_batches(encoded, len(encoded), pad_id, labels=labels)[0]


# -- trainer state and checkpoints -------------------------------------------------------------------

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


def write_dir_atomically(final: Path, fill: Callable[[Path], None]) -> None:
    """Fill a temporary directory beside `final`, then rename it into place: a run killed at any
    moment leaves either the old directory or the complete new one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.parent / f".old-{final.name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def clean_interrupted_writes(output_dir: Path) -> None:
    """Remove temporaries a killed run left; restore a directory caught mid-replacement."""
    for path in output_dir.glob(".old-*"):
        name = re.sub(r"^\.old-(.*)-\d+$", r"\1", path.name)
        if not (output_dir / name).exists():
            os.rename(path, output_dir / name)
        else:
            shutil.rmtree(path, ignore_errors=True)
    for path in output_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


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


def _json_text(obj: Any) -> str:
    def default(value):
        if isinstance(value, (np.generic, np.ndarray)):
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return json.dumps(obj, indent=1, default=default) + "\n"


def _scaler_state(scaler) -> dict:
    return {k: (np.asarray(v).tolist() if hasattr(v, "shape") else v)
            for k, v in scaler.state_dict().items()}


def save_checkpoint(run: "Run", rng_states: list) -> Path:
    """checkpoint-<step>/ with everything a resumed run needs (rank 0 only)."""
    final = run.output_dir / f"checkpoint-{run.state.global_step}"
    model = unwrap(run.model)
    state = asdict(run.state) | {"last_checkpoint": str(final)}
    meta = {"seed": run.args.seed, "global_batch": run.plan.global_batch,
            "accumulation": run.plan.accumulation, "total_steps": run.plan.total_steps,
            "world_size": run.dist.world, "model_type": run.args.model_type, "task": run.task.name}

    def fill(tmp: Path) -> None:
        save_model(model, run.tokenizer, tmp)
        write_pdparams(tmp / OPTIMIZER_FILE, optimizer_arrays(run.optimizer, model))
        atomic_write_text(tmp / SCHEDULER_FILE, _json_text(run.scheduler.state_dict()))
        atomic_write_text(tmp / RNG_FILE, _json_text({"world_size": run.dist.world, "ranks": rng_states}))
        if run.scaler is not None:
            atomic_write_text(tmp / SCALER_FILE, _json_text(_scaler_state(run.scaler)))
        atomic_write_text(tmp / TRAINER_STATE_FILE, _json_text(state | meta))

    write_dir_atomically(final, fill)
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


def resume_state(run: "Run", ckpt: Path) -> None:
    """Restore optimizer, schedule, loss scale, data position and this rank's generator (the model
    weights were loaded from `ckpt` already)."""
    saved = read_json(ckpt / TRAINER_STATE_FILE)
    if saved["global_batch"] * saved["accumulation"] != run.plan.global_batch * run.plan.accumulation:
        raise TrainingError(
            f"{ckpt}: saved with {saved['global_batch']} examples x {saved['accumulation']} "
            f"accumulation per step, this run takes {run.plan.global_batch} x {run.plan.accumulation}; "
            f"keep batch_size x processes x gradient_accumulation_steps equal to resume")
    if saved["seed"] != run.args.seed:
        raise TrainingError(f"{ckpt}: saved with --seed {saved['seed']}, this run has {run.args.seed}; "
                            f"the data order depends on it")
    if saved["total_steps"] != run.plan.total_steps:
        logger.warning("%s: total steps change from %d to %d; the learning-rate schedule changes with it",
                       ckpt, saved["total_steps"], run.plan.total_steps)
    known = TrainState.__dataclass_fields__
    run.state = TrainState(**{k: v for k, v in saved.items() if k in known})
    model = unwrap(run.model)
    try:
        arrays = read_pdparams(ckpt / OPTIMIZER_FILE)
    except CheckpointError as err:
        raise TrainingError(str(err)) from None
    load_optimizer_arrays(run.optimizer, model, arrays, ckpt / OPTIMIZER_FILE)
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


# -- evaluation and predictions ----------------------------------------------------------------------

def eval_batches(split: Split, batch_size: int, pad_id: int) -> list[glue.Batch]:
    return glue.make_batches(split.encoded, batch_size, pad_id, sort_by_length=True, labels=split.labels)


@paddle.no_grad()
def predict_logits(run: "Run", split: Split, desc: str,
                   ctx: Dist | None = None) -> tuple[np.ndarray, float | None]:
    """Logits in file order and the mean loss, if labelled. Each of `ctx`'s processes (default: all)
    runs every world-th batch; all of them receive the merged result."""
    ctx = ctx or run.dist
    model = unwrap(run.model)
    was_training = model.training
    model.eval()
    batches = eval_batches(split, run.args.eval_batch_size, run.tokenizer.pad_token_id)
    mine = batches[ctx.rank::ctx.world]
    results = []
    for batch in tqdm(mine, desc=desc, unit="batch", leave=False, disable=None if ctx.is_main else True):
        with run.autocast():
            out = forward(model, batch, with_labels=batch.labels is not None)
        loss, logits = out if batch.labels is not None else (None, out)
        loss_sum = float(loss) * len(batch) if loss is not None else 0.0
        results.append((batch.indices, logits.astype("float32").numpy(), loss_sum))
    if was_training:
        model.train()
    merged = [r for part in all_gather(results, ctx) for r in part]
    indices = np.concatenate([r[0] for r in merged])
    logits = np.empty((len(split), merged[0][1].shape[1]), dtype=np.float32)
    logits[indices] = np.concatenate([r[1] for r in merged])
    mean_loss = sum(r[2] for r in merged) / len(split) if split.labels is not None else None
    return logits, mean_loss


def to_predictions(task: glue.TaskSpec, logits: np.ndarray) -> np.ndarray:
    return logits[:, 0] if task.is_regression else logits.argmax(axis=-1)


def evaluate(run: "Run") -> dict[str, float]:
    """Metrics of every dev file, keyed "<file stem>/<metric>" (e.g. dev_matched/accuracy)."""
    results = {}
    for split in run.splits["dev"]:
        logits, loss = predict_logits(run, split, f"eval {split.name}")
        scores = compute_metrics(run.task, to_predictions(run.task, logits), split.labels)
        results.update({f"{split.name}/{k}": v for k, v in scores.items()})
        results[f"{split.name}/loss"] = loss
    return results


def write_predictions(run: "Run", directory: Path) -> list[Path]:
    """GLUE submission files (`index<TAB>prediction`, label strings) for every test file; rank 0
    alone, so that no other node needs the saved best model."""
    written = []
    for split, name in zip(run.splits["test"], run.task.submission_files):
        logits, _ = predict_logits(run, split, f"predict {split.name}", ctx=Dist())
        preds = to_predictions(run.task, logits)
        lines = ["index\tprediction"]
        for guid, pred in zip(split.guids, preds):
            label = f"{float(pred):.3f}" if run.task.is_regression else run.task.label_list[int(pred)]
            lines.append(f"{guid.rsplit('-', 1)[1]}\t{label}")
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / name, "\n".join(lines) + "\n")
        written.append(directory / name)
        logger.info("wrote %d predictions to %s", len(preds), directory / name)
    return written


# -- outputs -----------------------------------------------------------------------------------------

class MetricsWriter:
    """metrics.jsonl (one JSON object per evaluation) and VisualDL scalars; rank 0 only."""

    def __init__(self, output_dir: Path, history: list[dict], enabled: bool):
        self.enabled = enabled
        self.path = output_dir / METRICS_FILE
        self.vdl = None
        if enabled:
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in history))
            from visualdl import LogWriter
            self.vdl = LogWriter(logdir=str(output_dir / "visualdl"))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.vdl is not None:
            for tag, value in values.items():
                self.vdl.add_scalar(tag, float(value), step)

    def evaluation(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.scalars({k: v for k, v in record.items() if "/" in k}, record["step"])

    def close(self) -> None:
        if self.vdl is not None:
            self.vdl.close()


def plot_curves(path: Path, train_log: list[dict], eval_log: list[dict], metric_key: str) -> None:
    """PNG with the training loss and the dev metrics against the step (Agg canvas, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    loss_ax, metric_ax = fig.subplots(1, 2)
    loss_ax.plot([r["step"] for r in train_log], [r["loss"] for r in train_log])
    loss_ax.set(xlabel="step", ylabel="training loss", title="training loss")
    keys = [k for k in (eval_log[0] if eval_log else {}) if "/" in k and not k.endswith("/loss")]
    for key in keys:
        metric_ax.plot([r["step"] for r in eval_log], [r[key] for r in eval_log], marker="o", label=key,
                       linewidth=2.5 if key == metric_key else 1.0)
    metric_ax.set(xlabel="step", ylabel="dev metric", title=f"dev metrics (best by {metric_key})")
    if keys:
        metric_ax.legend(fontsize="small")
    fig.tight_layout()
    tmp = path.parent / f".{path.name}.tmp"
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, path)


# -- the run -----------------------------------------------------------------------------------------

@dataclass
class Run:
    """Everything the training loop touches."""

    args: Any
    dist: Dist
    task: glue.TaskSpec
    output_dir: Path
    tokenizer: Any
    model: Any                 # paddle.DataParallel when world > 1
    splits: dict[str, list[Split]]
    plan: StepPlan
    scheduler: Any
    optimizer: Any
    scaler: Any                # paddle.amp.GradScaler with --amp, else None
    writer: MetricsWriter | None = None
    state: TrainState = field(default_factory=TrainState)

    @property
    def metric_key(self) -> str:
        return f"{self.splits['dev'][0].name}/{self.task.metric}"

    def autocast(self):
        if self.scaler is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, level="O1", dtype="float16")


class NonFiniteLoss(TrainingError):
    pass


def train_step(run: Run, chunk: Sequence[np.ndarray]) -> float:
    """One optimizer step over `chunk` (global micro-batches); returns the mean loss over all of the
    step's examples, the same on every process."""
    n_step = sum(len(rows) for rows in chunk)
    loss_sum = paddle.zeros([1], dtype="float32")
    for i, rows in enumerate(chunk):
        local, weight = rank_share(rows, run.dist.rank, run.dist.world)
        batch = gather_rows(run.splits["train"][0], local, run.tokenizer.pad_token_id)
        last = i == len(chunk) - 1
        sync = contextlib.nullcontext() if last or run.dist.world == 1 else run.model.no_sync()
        with sync:
            with run.autocast():
                loss, _ = forward(run.model, batch, with_labels=True)
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


def non_finite_error(run: Run, value: float) -> NonFiniteLoss:
    where = (f"the last good checkpoint is {run.state.last_checkpoint} (continue with "
             f"--resume_from_checkpoint {run.state.last_checkpoint} and a lower --learning_rate or a "
             f"--max_grad_norm)" if run.state.last_checkpoint else "no checkpoint was saved before it")
    return NonFiniteLoss(f"step {run.state.global_step + 1}: training loss is {value}; stopping, {where}")


def fractional_epoch(run: Run) -> float:
    return run.state.epoch + run.state.batches_done / run.plan.batches_per_epoch


def after_step(run: Run, loss: float, lr: float, window: list, clock: list) -> None:
    """Logging, evaluation, best model and checkpoints after optimizer step `global_step`."""
    state, args = run.state, run.args
    step, epoch = state.global_step, fractional_epoch(run)
    window.append(loss)
    if step % args.logging_steps == 0 or step == run.plan.total_steps:
        mean = sum(window) / len(window)
        speed = len(window) / max(time.perf_counter() - clock[0], 1e-9)
        state.train_log.append({"step": step, "epoch": round(epoch, 4), "loss": mean, "lr": lr})
        logger.info("step %d/%d | epoch %.2f | loss %.6f | lr %.3e | %.2f steps/s", step,
                    run.plan.total_steps, epoch, mean, lr, speed)
        if run.writer:
            run.writer.scalars({"train/loss": mean, "train/lr": lr}, step)
        window.clear()
        clock[0] = time.perf_counter()
    if step % args.eval_steps == 0 or step == run.plan.total_steps:
        evaluate_and_keep_best(run, epoch)
    if step % args.save_steps == 0:
        rng_states = all_gather(rng_snapshot(), run.dist)
        if run.dist.is_main:
            save_checkpoint(run, rng_states)
        state.last_checkpoint = str(run.output_dir / f"checkpoint-{step}")
        barrier(run.dist)
        clock[0] = time.perf_counter()


def evaluate_and_keep_best(run: Run, epoch: float) -> dict:
    results = evaluate(run)
    state = run.state
    record = {"step": state.global_step, "epoch": round(epoch, 4), **results}
    state.eval_log.append(record)
    logger.info("eval at step %d: %s", state.global_step,
                ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    if run.writer:
        run.writer.evaluation(record)
    value = results[run.metric_key]
    if state.best_metric is None or value > state.best_metric:
        state.best_metric, state.best_step = value, state.global_step
        if run.dist.is_main:
            def fill(tmp: Path) -> None:
                save_model(unwrap(run.model), run.tokenizer, tmp)
                atomic_write_text(tmp / "eval_results.json", _json_text(record))
            write_dir_atomically(run.output_dir / "best", fill)
            logger.info("new best %s %.4f at step %d -> %s", run.metric_key, value,
                        state.global_step, run.output_dir / "best")
    return results


def train_loop(run: Run) -> None:
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
            batches = epoch_batches(run.args.seed, epoch, plan.examples, plan.global_batch)
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


def resolve_data_dir(args, task: glue.TaskSpec) -> Path:
    data_dir = Path(args.data_dir) if args.data_dir else Path("glue_data") / task.dir_name
    if missing_data_message(task, data_dir, args.do_predict) is None:
        return data_dir
    if args.download:
        data_dir = download_glue(task)
    message = missing_data_message(task, data_dir, args.do_predict)
    if message:
        raise TrainingError(message)
    return data_dir


def summarize(run: Run) -> None:
    plan, args = run.plan, run.args
    dev = ", ".join(f"{s.name} {len(s)}" for s in run.splits["dev"])
    logger.info("***** Running training *****")
    logger.info("  task %s (%s), metric %s; model %s from %s", run.task.name,
                "regression" if run.task.is_regression else f"{run.task.num_labels} labels",
                run.metric_key, args.model_type, args.model_name_or_path)
    logger.info("  train examples %d; dev examples %s", plan.examples, dev)
    logger.info("  processes %d x batch %d x accumulation %d = %d examples per step", run.dist.world,
                args.batch_size, plan.accumulation, plan.global_batch * plan.accumulation)
    logger.info("  epochs %d, steps per epoch %d, total steps %d, warmup steps %d", plan.epochs,
                plan.steps_per_epoch, plan.total_steps, plan.warmup_steps)
    if args.device == "cpu" and args.model_type == "squeezebert":
        logger.info("  CPU kernels: %s", "fused (squeezebert_paddle/kernels)" if cpu_kernels.load() is not None
                    else f"Paddle's own ops ({cpu_kernels.failure()})")


def resolved_args(args, run_plan: StepPlan, ctx: Dist, data_dir: Path) -> dict:
    return {**vars(args), "data_dir": str(data_dir), "world_size": ctx.world,
            "global_batch_size": run_plan.global_batch * run_plan.accumulation,
            "steps_per_epoch": run_plan.steps_per_epoch, "total_steps": run_plan.total_steps,
            "num_train_epochs_resolved": run_plan.epochs, "warmup_steps_resolved": run_plan.warmup_steps,
            "paddle_version": paddle.__version__}


def build_run(args, ctx: Dist) -> Run:
    task = glue.get_task(args.task_name)
    output_dir = Path(args.output_dir)
    resume = Path(args.resume_from_checkpoint) if args.resume_from_checkpoint else None
    data_dir = resolve_data_dir(args, task)
    tokenizer = load_tokenizer(args.model_type, args.model_name_or_path)
    splits = load_glue_splits(task, data_dir, tokenizer, args.max_seq_length, args.do_predict)
    paddle.seed(args.seed + ctx.rank)
    overrides = {k: getattr(args, k) for k in ("hidden_dropout_prob", "attention_probs_dropout_prob")
                 if getattr(args, k) is not None}
    model = load_model(args.model_type, resume or args.model_name_or_path, task.num_labels, overrides,
                       args.ignore_mismatched_sizes)
    positions = unwrap(model).config.max_position_embeddings
    if args.max_seq_length > positions:
        raise TrainingError(f"--max_seq_length {args.max_seq_length} exceeds the model's "
                            f"max_position_embeddings ({positions})")
    plan = plan_steps(len(splits["train"][0]), args.batch_size, ctx.world, args.gradient_accumulation_steps,
                      args.num_train_epochs, args.max_steps, args.warmup_steps, args.warmup_proportion)
    scheduler = build_scheduler(args.learning_rate, args.lr_scheduler, plan.warmup_steps, plan.total_steps)
    optimizer = build_optimizer(model, scheduler, args.weight_decay, args.adam_epsilon, args.max_grad_norm)
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if args.amp else None
    if ctx.world > 1:
        model = paddle.DataParallel(model)
    run = Run(args, ctx, task, output_dir, tokenizer, model, splits, plan, scheduler, optimizer, scaler)
    if resume is not None:
        resume_state(run, resume)
    if ctx.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        clean_interrupted_writes(output_dir)
        atomic_write_text(output_dir / "args.json", _json_text(resolved_args(args, plan, ctx, data_dir)))
    return run


def train(args) -> dict:
    """Fine-tune, evaluate, checkpoint and (with --do_predict) predict. Returns the last evaluation.

    Runs in a fresh unique-name scope so that parameter and optimizer-state names are the same in
    every run, which lets a checkpoint's optimizer state be matched to a new process's tensors.
    """
    ctx = setup_distributed(args.device, args.cpu_threads)
    with paddle.utils.unique_name.guard():
        run = build_run(args, ctx)
        run.writer = MetricsWriter(run.output_dir, run.state.eval_log, ctx.is_main)
        try:
            summarize(run)
            train_loop(run)
            if not run.state.eval_log or run.state.eval_log[-1]["step"] != run.state.global_step:
                evaluate_and_keep_best(run, fractional_epoch(run))
            finish(run)
        finally:
            run.writer.close()
    return run.state.eval_log[-1]


def finish(run: Run) -> None:
    """Final model, predictions (from the best model), curves."""
    out = run.output_dir
    if run.dist.is_main:
        write_dir_atomically(out / "final", lambda tmp: save_model(unwrap(run.model), run.tokenizer, tmp))
        logger.info("saved the final model to %s", out / "final")
        atomic_write_text(out / TRAINER_STATE_FILE, _json_text(asdict(run.state)))
        plot_curves(out / "training_curves.png", run.state.train_log, run.state.eval_log, run.metric_key)
    if run.args.do_predict and run.dist.is_main:
        source = out / "best" if (out / "best").is_dir() else out / "final"
        load_weights(unwrap(run.model), source)
        logger.info("predicting the test files with %s", source)
        write_predictions(run, out / "predictions")
    barrier(run.dist)
    logger.info("best %s %.4f at step %s", run.metric_key, run.state.best_metric, run.state.best_step)
