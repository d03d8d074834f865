"""The settings of one GLUE fine-tuning run: a typed field per run_glue.py flag, each default decided
here (run_glue.py's parser takes its defaults from these fields), and the checks that can fail
before any training starts. Framework-free until the device check, which asks Paddle about CUDA.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, max_positions, vocab_problem
from ..data import TaskSpec, get_task, locate_glue_data, missing_data_message
from ..errors import threads_problem
from ..fileio import unwritable_reason
from ..tokenizer import VOCAB_FILE, sequence_length_problem as length_problem
from .output_layout import TRAINER_STATE_FILE, run_outputs

PADDLENLP_CONFIG_FILE = "config.json"       # PaddleNLP's BERT directories (older versions: CONFIG_FILE)


@dataclass
class RunSettings:
    task_name: str                                  # canonical GLUE task key: "QQP", "SST-2", "MNLI", ...
    model_name_or_path: str                         # a local model directory
    output_dir: str
    model_type: str = "squeezebert"                 # or "bert": PaddleNLP's BertForSequenceClassification
    data_dir: str | None = None                     # None: ./glue_data/<TASK>, else the shipped sample
    download: bool = False                          # fetch the task when its directory lacks files
    max_seq_length: int = 128
    batch_size: int = 32                            # examples per process per micro-batch
    eval_batch_size: int | None = None              # None: batch_size
    learning_rate: float = 1e-4
    num_train_epochs: int = 3
    max_steps: int = -1                             # > 0: optimizer steps, overriding the epochs
    lr_scheduler: int = 1                           # 1: warmup, linear decay to 0; 0: warmup, constant
    warmup_steps: int = 0
    warmup_proportion: float = 0.0
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-6
    max_grad_norm: float = 0.0                      # 0: no clipping
    gradient_accumulation_steps: int = 1
    hidden_dropout_prob: float | None = None        # None: the model config's
    attention_probs_dropout_prob: float | None = None
    ignore_mismatched_sizes: bool = False
    logging_steps: int = 100
    save_steps: int = 100
    eval_steps: int | None = None                   # None: save_steps
    seed: int = 42
    device: str | None = None                       # None: gpu when this Paddle has CUDA, else cpu
    amp: bool = False
    cpu_threads: int | None = None                  # None: the cores available / processes on the node
    resume_from_checkpoint: str | None = None
    allow_changed_settings: bool = False            # resume although run-defining settings changed
    overwrite_output_dir: bool = False
    do_predict: bool = False

    def __post_init__(self):
        self.task_name = get_task(self.task_name).name
        if self.eval_steps is None:
            self.eval_steps = self.save_steps
        if self.eval_batch_size is None:
            self.eval_batch_size = self.batch_size

    @property
    def task(self) -> TaskSpec:
        return get_task(self.task_name)

    def config_overrides(self) -> dict[str, float]:
        """The model-config fields these settings replace (the dropout probabilities given)."""
        return {k: getattr(self, k) for k in ("hidden_dropout_prob", "attention_probs_dropout_prob")
                if getattr(self, k) is not None}


# The settings that define a run, recorded in each checkpoint: a resume with other values is refused
# unless --allow_changed_settings. (Not here: where the run reads and writes, logging and saving
# intervals, the device and threads: they change nothing the run computes.)
RUN_DEFINING = ("task_name", "model_type", "model_name_or_path", "max_seq_length", "learning_rate",
                "lr_scheduler", "warmup_steps", "warmup_proportion", "num_train_epochs", "max_steps",
                "weight_decay", "adam_epsilon", "max_grad_norm", "gradient_accumulation_steps", "seed",
                "hidden_dropout_prob", "attention_probs_dropout_prob", "amp")
GLOBAL_BATCH = "global_batch_size"          # batch_size x processes: what the data order depends on


def run_record(s: "RunSettings", global_batch: int) -> dict:
    """The run-defining settings as a checkpoint records them (the model directory as an absolute path)."""
    record = {name: getattr(s, name) for name in RUN_DEFINING}
    record["model_name_or_path"] = os.path.abspath(s.model_name_or_path)
    return record | {GLOBAL_BATCH: global_batch}


def setting_changes(recorded: dict, now: dict) -> list[str]:
    """'--learning_rate: checkpoint 2e-05, now 3e-05' for each recorded setting that differs."""
    flag = {GLOBAL_BATCH: "--batch_size x processes"}
    return [f"{flag.get(k, '--' + k)}: checkpoint {recorded[k]}, now {now[k]}"
            for k in now if k in recorded and recorded[k] != now[k]]


def default_values() -> dict:
    """{field: default} of every setting that has one."""
    return {f.name: f.default for f in dataclasses.fields(RunSettings) if f.default is not dataclasses.MISSING}


SEED_LIMIT = 2 ** 32          # numpy's generators and paddle.seed take seeds in [0, 2**32)
# Far beyond any fine-tuning run (GLUE's largest task is ~12k steps an epoch at batch 32), yet step
# counts stay well inside int64 whatever the data: a typo of extra digits is refused, not run for ever.
MAX_STEPS_LIMIT = 10 ** 9
EPOCHS_LIMIT = 10 ** 4
PATH_FLAGS = ("model_name_or_path", "output_dir", "data_dir", "resume_from_checkpoint")


def value_problem(s: RunSettings) -> str | None:
    """The first flag with an impossible value, as one sentence, or None. (--max_seq_length needs the
    model's config: `sequence_length_problem`.)"""
    for field in dataclasses.fields(RunSettings):
        value = getattr(s, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            return f"--{field.name} must be a finite number, got {value}"
    positive = ("batch_size", "eval_batch_size", "learning_rate", "gradient_accumulation_steps",
                "logging_steps", "save_steps", "eval_steps", "adam_epsilon")
    for name in positive:
        if getattr(s, name) <= 0:
            return f"--{name} must be positive, got {getattr(s, name)}"
    for name in PATH_FLAGS:
        value = getattr(s, name)
        if value is not None and not str(value).strip():
            return f"--{name} is empty; give a path (\".\" for the current directory)"
    threads = s.cpu_threads is not None and threads_problem("--cpu_threads", s.cpu_threads)
    if threads:
        return threads
    if s.max_steps <= 0 and s.num_train_epochs < 1:
        return "give --num_train_epochs >= 1 or --max_steps > 0"
    if s.max_steps > MAX_STEPS_LIMIT or s.num_train_epochs > EPOCHS_LIMIT:
        return (f"--max_steps must be at most {MAX_STEPS_LIMIT} and --num_train_epochs at most {EPOCHS_LIMIT}, "
                f"got {s.max_steps} and {s.num_train_epochs}")
    if not 0 <= s.seed < SEED_LIMIT:
        return f"--seed must be in 0..{SEED_LIMIT - 1}, got {s.seed}"
    if s.warmup_steps < 0 or not 0.0 <= s.warmup_proportion < 1.0:
        return "--warmup_steps must be >= 0 and --warmup_proportion in [0, 1)"
    if s.warmup_steps > 0 and s.warmup_proportion > 0:
        return "pass --warmup_steps or --warmup_proportion, not both"
    if s.weight_decay < 0 or s.max_grad_norm < 0:
        return "--weight_decay and --max_grad_norm must be >= 0"
    for name, value in s.config_overrides().items():
        if not 0.0 <= value < 1.0:
            return f"--{name} must be in [0, 1), got {value}"
    return None


def model_dir_problem(s: RunSettings) -> str | None:
    model_dir = Path(s.model_name_or_path)
    config = CONFIG_FILE if s.model_type == "squeezebert" else PADDLENLP_CONFIG_FILE
    needed = (config, WEIGHTS_FILE, VOCAB_FILE)
    if not model_dir.is_dir():
        return (f"--model_name_or_path {model_dir}: no such directory (it needs {', '.join(needed)}; "
                f"convert a checkpoint with convert_torch_to_paddle.py: --download for the released ones, "
                f"--demo for random weights offline)")
    if s.model_type == "bert" and (model_dir / CONFIG_FILE).is_file():
        needed = needed[1:]
    missing = [n for n in needed if not (model_dir / n).is_file()]
    if missing:
        return f"--model_name_or_path {model_dir} lacks {', '.join(missing)}"
    try:
        return vocab_problem(model_dir)          # token ids must be rows of the embedding table
    except CheckpointError as err:
        return str(err)


def sequence_length_problem(s: RunSettings) -> str | None:
    """--max_seq_length against what the task's inputs need and the model's max_position_embeddings
    (read from its config before anything loads)."""
    try:
        limit = max_positions(s.model_name_or_path)
    except CheckpointError as err:
        return str(err)
    return length_problem(s.max_seq_length, "--max_seq_length", limit, pair=s.task.is_pair)


def output_dir_problem(s: RunSettings) -> str | None:
    """A file in the way, a directory that cannot be written, a resume point that is not a checkpoint,
    or the outputs of another run that this one would overwrite (refused unless --overwrite_output_dir,
    which removes them when the run starts)."""
    output = Path(s.output_dir)
    if output.exists() and not output.is_dir():
        return f"--output_dir {output} is a file"
    blocked = unwritable_reason(output)
    if blocked:
        return f"--output_dir {output} cannot be written: {blocked}; choose another --output_dir"
    if s.resume_from_checkpoint:
        state = Path(s.resume_from_checkpoint) / TRAINER_STATE_FILE
        if not state.is_file():
            return f"--resume_from_checkpoint: {state} not found; pass an OUTPUT/checkpoint-<step> directory"
        return None
    found = [] if s.overwrite_output_dir else run_outputs(output)
    if not found:
        return None
    listed = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
    if found[0].startswith("checkpoint-"):
        return (f"--output_dir {output} already holds checkpoints of another run ({listed}); continue it "
                f"with --resume_from_checkpoint {output}/checkpoint-<step>, or pass --overwrite_output_dir "
                f"to write over it")
    return (f"--output_dir {output} already holds another run ({listed}); choose another --output_dir, "
            f"or pass --overwrite_output_dir to write over it")


def default_device() -> str:
    import paddle
    return "gpu" if paddle.is_compiled_with_cuda() else "cpu"


def device_problem(s: RunSettings) -> str | None:
    """Also decides the default device: gpu when this Paddle build has CUDA, else cpu."""
    import paddle
    has_cuda = paddle.is_compiled_with_cuda()
    s.device = s.device or default_device()
    if s.device == "gpu" and not has_cuda:
        return (f"--device gpu: this Paddle build (paddlepaddle {paddle.__version__}) has no CUDA support; "
                f"install paddlepaddle-gpu or pass --device cpu")
    if s.amp and s.device != "gpu":
        return "--amp needs --device gpu (float16 training on CPU is not supported)"
    return None


def data_problem(s: RunSettings) -> str | None:
    """The task files the run would read, if some are missing (with --download they are fetched)."""
    if s.data_dir is not None and Path(s.data_dir).exists() and not Path(s.data_dir).is_dir():
        return f"--data_dir {s.data_dir} is not a directory; pass the directory of the task's GLUE TSV files"
    if s.download:
        return None
    return missing_data_message(s.task, locate_glue_data(s.task, s.data_dir, s.do_predict), s.do_predict)


def first_problem(s: RunSettings) -> str | None:
    """What stops the run before it starts, as one sentence, or None."""
    return (value_problem(s) or model_dir_problem(s) or sequence_length_problem(s) or data_problem(s)
            or output_dir_problem(s) or device_problem(s))
